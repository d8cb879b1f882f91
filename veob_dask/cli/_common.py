"""Small helpers shared by the subcommands: stage timing, progress, human and JSON output.

Every command prints through one :class:`Stages`: progress lines go to stderr; result lines go
to stdout, or to stderr under ``--json``, where stdout receives exactly one JSON document
(:meth:`Stages.emit`) so that ``json.loads(stdout)`` works.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

import numpy as np

from ..errors import InvalidParameterError

__all__ = ["Stages", "check_text", "computing", "parse_n_components", "to_json"]


def parse_n_components(text: str) -> int | float:
    """``"30"`` -> 30 components; ``"0.9"`` -> keep 90 % of the energy."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or (value > 1 and not value.is_integer()):
        raise argparse.ArgumentTypeError(
            f"n_components must be ≥ 1 or a fraction in (0, 1]; got {text}")
    return int(value) if value.is_integer() and value >= 1 else value


def check_text(text: str, what: str) -> str:
    """Refuse a command-line text argument that is not valid UTF-8 (Python keeps such bytes as
    lone surrogates, which cannot be printed or matched)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        code = ord(text[err.start])
        bad = (f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF
               else f"code point U+{code:04X}")
        raise InvalidParameterError(
            f"{what} is not valid UTF-8 text ({bad} at position {err.start}); set the "
            "terminal to UTF-8 or convert the text, e.g. with iconv -f latin1 -t utf-8.") from err
    return text


class Stages:
    """Times named stages and routes a command's output.

    Parameters
    ----------
    json : bool
        ``--json`` was given: result lines go to stderr and :meth:`emit` prints the one JSON
        document on stdout.
    quiet : bool
        Drop progress lines.
    """

    def __init__(self, *, json: bool = False, quiet: bool = False) -> None:
        self.seconds: dict[str, float] = {}
        self.json = json
        self.quiet = quiet
        self.start = time.perf_counter()

    def say(self, text: str) -> None:
        """A progress line (stderr)."""
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def show(self, text: str = "") -> None:
        """A result line for people: stdout, or stderr under ``--json``."""
        print(text, file=sys.stderr if self.json else sys.stdout, flush=True)

    def emit(self, payload: Any) -> None:
        """Under ``--json``, print ``payload`` as the one JSON document on stdout."""
        if self.json:
            print(json.dumps(payload, default=to_json), flush=True)

    @contextlib.contextmanager
    def stage(self, name: str, what: str, *, progress: bool = True) -> Iterator[Any]:
        """Time a stage and show the progress of the Dask tasks it runs (stderr: a bar on a
        terminal, a line every 10 s otherwise; see :mod:`veob_dask.cli._progress`).

        Yields the stage's renderer: ``update(done, total)`` reports progress that is not a
        Dask computation (rows streamed by ``ingest``).
        """
        from ._progress import Renderer, progress_for

        self.say(f"[{name}] {what} ...")
        t0 = time.perf_counter()
        display = progress_for(name) if progress and not self.quiet else None
        with display or contextlib.nullcontext():
            yield display.renderer if display else Renderer(name, tty=False, every=1e9)
        self.seconds[name] = round(time.perf_counter() - t0, 3)
        self.say(f"[{name}] done in {self.seconds[name]:.2f} s")

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self.start, 3)


@contextlib.contextmanager
def computing(args: Any, stages: Stages, *, threads_per_core: int = 1) -> Iterator[Any]:
    """Compute where the options say (``--scheduler``, ``--scheduler-file``, TLS files,
    ``DASK_SCHEDULER_ADDRESS``, the command's default), yielding the ``distributed`` client or
    None; the threaded scheduler and a LocalCluster run ``threads_per_core`` threads a core
    (:func:`veob_dask.runtime.scheduler_context`).

    Starting or connecting to a cluster and shutting it down (or disconnecting) are timed as
    their own stages, ``cluster_start`` and ``cluster_stop``; the dashboard's address is printed
    when the scheduler serves one.
    """
    from ..runtime import dashboard_link, scheduler_address, scheduler_context, tls_security

    security = tls_security(getattr(args, "tls_ca_file", None), getattr(args, "tls_cert", None),
                            getattr(args, "tls_key", None))
    where = scheduler_address(getattr(args, "scheduler", None),
                              getattr(args, "scheduler_file", None)) \
        or getattr(args, "_scheduler_default", None)
    if where in (None, "threads", "sync"):
        with scheduler_context(where, threads_per_core=threads_per_core):
            yield None
        return
    what = ("starting a LocalCluster of worker processes on 127.0.0.1" if where == "local"
            else f"connecting to the scheduler at {where}")
    context = scheduler_context(where, security=security, dashboard=True,
                                threads_per_core=threads_per_core)
    with stages.stage("cluster_start", what, progress=False):
        client = context.__enter__()
        workers = client.scheduler_info().get("workers", {})
        stages.say(f"[cluster_start] {len(workers)} workers, "
                   f"{sum(w.get('nthreads', 0) for w in workers.values())} threads")
        link = dashboard_link(client)
        if link:
            stages.say(f"[cluster_start] dashboard: {link}")
    try:
        yield client
    except BaseException:
        if not context.__exit__(*sys.exc_info()):
            raise
    else:
        verb = "shutting the LocalCluster down" if where == "local" else "disconnecting"
        with stages.stage("cluster_stop", verb, progress=False):
            context.__exit__(None, None, None)


def to_json(value: Any) -> Any:
    """``json.dumps`` fallback for numpy scalars and arrays and paths."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
