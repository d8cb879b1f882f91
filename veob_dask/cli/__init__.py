"""The ``veob`` command line: one module per subcommand, each with ``register(subparsers)``.

A subcommand module defines ``register(subparsers) -> None``, which adds its parser and sets
``func=run`` through ``set_defaults``; ``run(args) -> int`` returns the exit code. To add a
subcommand, add its module name to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import Terminated, VeobError
from ..io import termination_as_exception

__all__ = ["COMMANDS", "build_parser", "main"]

#: Subcommand modules of this package, in the order ``veob --help`` lists them.
COMMANDS = ["demo", "ingest", "fit", "transform", "query", "index", "subdomains", "words",
            "sentences"]


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="veob",
        description="Out-of-core vector embeddings on orthonormal bases (SVD) and spectral "
        "transforms (DCT), on Dask and Zarr.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"veob_dask {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``veob`` command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with termination_as_exception():
            return int(args.func(args) or 0)
    except (VeobError, FileNotFoundError, FileExistsError) as err:
        print(f"veob {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"veob {args.command}: terminated (SIGTERM); nothing partial was left",
              file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"veob {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        # distributed raises KilledWorker when the workers running a task keep dying (out of
        # memory, killed); say so plainly instead of a traceback.
        if type(err).__name__ != "KilledWorker":
            raise
        print(f"veob {args.command}: error: Dask workers died while computing ({err}). Check "
              "worker memory limits and chunk sizes (a task holds one chunk), then run the same "
              "command again: nothing partial was written.", file=sys.stderr)
        return 3
