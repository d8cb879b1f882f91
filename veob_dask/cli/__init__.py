"""The ``veob`` command line: one module per subcommand, each with ``register(subparsers)``.

A subcommand module defines ``register(subparsers) -> None``, which adds its parser and sets
``func=run`` through ``set_defaults``; ``run(args) -> int`` returns the exit code. To add a
subcommand, add its module name to :data:`COMMANDS`.

Exit codes: 0 success; 2 a bad input, option, address or file (one line on stderr naming it);
3 Dask workers died while computing; 130 interrupted; 143 terminated (SIGTERM); 1 an unexpected
error, which is a bug (one line, and ``VEOB_DEBUG=1`` in the environment re-raises it with its
traceback).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ..errors import Terminated, VeobError
from ..io import storage_defaults, termination_as_exception
from ._options import add_storage_option, storage_options

__all__ = ["COMMANDS", "ArgumentParser", "UsageError", "build_parser", "describe_error", "main"]

#: Subcommand modules of this package, in the order ``veob --help`` lists them.
COMMANDS = ["demo", "ingest", "fit", "transform", "query", "index", "subdomains", "words",
            "sentences", "supervised", "report"]


class UsageError(Exception):
    """A command line that does not parse; its text is the one line to print."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, but a parse error raises :class:`UsageError` (one line) instead of
    printing the usage and exiting; subparsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {_one_line(message)} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = ArgumentParser(
        prog="veob",
        description="Out-of-core vector embeddings on orthonormal bases (SVD) and spectral "
        "transforms (DCT), on Dask and Zarr.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"veob_dask {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    for leaf in _leaves(parser):
        add_storage_option(leaf)
    return parser


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


_ERRNO_TEXT = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EMFILE: "too many open files",
}


def _describe_os_error(err: OSError) -> str:
    what = _ERRNO_TEXT.get(err.errno or -1) or err.strerror or str(err)
    if err.errno == errno.EEXIST and err.filename is not None and os.path.isfile(err.filename):
        what = "a part of the path is a file, not a folder"  # mkdir over a file
    paths = [p for p in (err.filename, getattr(err, "filename2", None)) if p is not None]
    where = " -> ".join(repr(os.fsdecode(p)) if isinstance(p, bytes) else repr(str(p))
                        for p in paths)
    return f"{what} ({where})" if where else f"{what} ({err})"


def _raised_in(err: BaseException, modules: tuple[str, ...]) -> bool:
    """Whether the innermost frame of ``err``'s traceback is in one of ``modules``."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).startswith(modules)


def describe_error(err: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message for an exception that ended a command."""
    name = type(err).__name__
    module = type(err).__module__ or ""
    if isinstance(err, VeobError):
        return 2, str(err)
    if name == "KilledWorker":
        # distributed raises it when the workers running a task keep dying (out of memory,
        # killed); say so plainly instead of a traceback.
        return 3, (f"Dask workers died while computing ({err}). Check worker memory limits and "
                   "chunk sizes (a task holds one chunk), then run the same command again: "
                   "nothing partial was written.")
    if isinstance(err, (FileNotFoundError, FileExistsError)) and not err.filename:
        return 2, str(err)
    if isinstance(err, OSError):
        return 2, _describe_os_error(err)
    if isinstance(err, MemoryError):
        return 2, (f"not enough memory ({err or 'an allocation failed'}); the input claims "
                   "more than this machine holds, or needs smaller chunks (--chunk-rows).")
    if isinstance(err, RecursionError):
        return 2, f"an input is nested too deeply to read ({err})."
    if isinstance(err, UnicodeError):
        return 2, f"text that is not valid UTF-8 ({err})."
    if isinstance(err, EOFError):
        return 2, f"a file ended early; it is truncated ({err or 'end of file'})."
    if module.startswith(("zarr", "numcodecs")) or _raised_in(err, ("zarr", "numcodecs")):
        return 2, f"could not read a Zarr store ({name}: {err}); it may be damaged."
    if isinstance(err, ValueError):
        return 2, f"{err} ({name})"
    return 1, (f"{name}: {err} (this is a bug; run with VEOB_DEBUG=1 for the traceback)")
def _leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers that run a command (those without subcommands of their own)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [parser]
    return [leaf for child in dict(subs[0].choices).values() for leaf in _leaves(child)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``veob`` command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as err:
        print(err, file=sys.stderr)
        return 2
    func: Any = getattr(args, "func", None)
    if func is None:
        print("veob: error: a command is required (see `veob --help`)", file=sys.stderr)
        return 2
    where = f"veob {args.command}"
    try:
        with termination_as_exception(), storage_defaults(storage_options(args)):
            return int(func(args) or 0)
    except Terminated:
        print(f"{where}: terminated (SIGTERM); nothing partial was left", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    except UsageError as err:
        print(err, file=sys.stderr)
        return 2
    except Exception as err:
        if os.environ.get("VEOB_DEBUG", "") not in ("", "0"):
            raise
        code, message = describe_error(err)
        print(f"{where}: error: {_one_line(message)}", file=sys.stderr)
        return code
