"""Small helpers shared by the subcommands: stage timing, progress, JSON output."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["Stages", "emit_json", "parse_n_components"]


def parse_n_components(text: str) -> int | float:
    """``"30"`` -> 30 components; ``"0.9"`` -> keep 90 % of the energy."""
    value = float(text)
    return int(value) if value.is_integer() and value >= 1 else value


class Stages:
    """Times named stages and reports each as it ends (to stderr, or stdout when not JSON)."""

    def __init__(self, quiet: bool = False) -> None:
        self.seconds: dict[str, float] = {}
        self.quiet = quiet
        self.start = time.perf_counter()

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def stage(self, name: str, what: str) -> Iterator[None]:
        self.say(f"[{name}] {what} ...")
        t0 = time.perf_counter()
        bar = _progress_bar()
        with bar:
            yield
        self.seconds[name] = round(time.perf_counter() - t0, 3)
        self.say(f"[{name}] done in {self.seconds[name]:.2f} s")

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self.start, 3)


def _progress_bar() -> Any:
    """dask's text progress bar on an interactive terminal with a local scheduler, else nothing."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    try:
        from distributed import get_client

        get_client()
        return contextlib.nullcontext()  # the distributed dashboard shows progress
    except (ImportError, ValueError):
        from dask.diagnostics import ProgressBar

        return ProgressBar(minimum=2.0, out=sys.stderr)


def emit_json(payload: dict[str, Any]) -> None:
    """Print one JSON line (the last line of output)."""
    print(json.dumps(payload, default=float), flush=True)
