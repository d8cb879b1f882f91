"""What a user sees while Dask computes: a bar on a terminal, a plain line every few seconds
otherwise (a log file, a CI job, ``kubectl logs``).

On dask's local schedulers the count comes from a :class:`dask.callbacks.Callback` (tasks of the
running graph); on a ``distributed`` cluster from the scheduler itself: a watcher thread notices
the futures the command's computation creates and follows every task they depend on through
distributed's own ``Progress`` plugin (the scheduler only needs ``distributed``). Everything is
written to stderr, so stdout stays clean for ``--json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from typing import Any, Self, TextIO

__all__ = ["ClusterProgress", "LocalProgress", "Renderer", "progress_for"]

#: Seconds between two plain progress lines when stderr is not a terminal.
PLAIN_EVERY = 10.0


class Renderer:
    """Draws ``done`` of ``total`` tasks for one stage: a bar redrawn in place on a terminal,
    else one line every ``every`` seconds (and one at the end)."""

    def __init__(self, label: str, *, out: TextIO | None = None, tty: bool | None = None,
                 every: float = PLAIN_EVERY, width: int = 30) -> None:
        self.label = label
        self.out = out or sys.stderr
        self.tty = self.out.isatty() if tty is None else tty
        self.every = every
        self.width = width
        self.start = time.monotonic()
        self._last = self.start
        self._drawn = False
        self._state = (0, 0)
        self._unit = "tasks"
        self._lock = threading.Lock()

    def update(self, done: int, total: int, unit: str = "tasks") -> None:
        """Show ``done`` of ``total`` (``unit``: what is counted)."""
        with self._lock:
            self._state = (done, total)
            self._unit = unit
            now = time.monotonic()
            if self.tty:
                if now - self._last < 0.1 and done < total:
                    return  # redraw at most ten times a second
                self._last = now
                frac = done / total if total else 1.0
                bar = "#" * int(self.width * frac)
                self._write(f"\r[{self.label}] [{bar:<{self.width}}] {100 * frac:3.0f}% "
                            f"{done}/{total} {unit} {now - self.start:6.1f} s")
                self._drawn = True
            elif now - self._last >= self.every:
                self._last = now
                self._line(done, total, now)

    def _line(self, done: int, total: int, now: float) -> None:
        pct = 100.0 * done / total if total else 100.0
        self._write(f"[{self.label}] {pct:.0f}% ({done}/{total} {self._unit}) after "
                    f"{now - self.start:.1f} s\n")

    def finish(self) -> None:
        """End the display (the terminal line is cleared; a plain log gets a last line if
        it printed any)."""
        with self._lock:
            if self.tty and self._drawn:
                self._write("\r\033[2K")
            elif not self.tty and self._last != self.start:
                self._line(*self._state, time.monotonic())
            self._drawn = False

    def _write(self, text: str) -> None:
        with contextlib.suppress(ValueError, OSError):  # a closed stream
            self.out.write(text)
            self.out.flush()


class LocalProgress:
    """Counts the tasks of graphs run by dask's local schedulers (a ``dask`` callback)."""

    def __init__(self, renderer: Renderer) -> None:
        from dask.callbacks import Callback

        self.renderer = renderer
        self._total = 0
        self._done = 0
        self._lock = threading.Lock()
        outer = self

        class _Counter(Callback):
            def _start_state(self, dsk: Any, state: Any) -> None:
                with outer._lock:
                    outer._total += sum(len(state[k]) for k in ("ready", "waiting", "running"))
                    outer.renderer.update(outer._done, outer._total)

            def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any
                          ) -> None:
                with outer._lock:
                    outer._done += 1
                    outer.renderer.update(outer._done, outer._total)

        self._callback = _Counter()

    def __enter__(self) -> Self:
        self._callback.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._callback.__exit__(*exc)
        self.renderer.finish()


class ClusterProgress:
    """Follows, on the scheduler, every task behind the futures a computation creates."""

    def __init__(self, client: Any, renderer: Renderer, *, interval: float = 0.25) -> None:
        self.client = client
        self.renderer = renderer
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="veob-progress", daemon=True)
        self._done_before = 0
        self._total_before = 0
        self._closed_at = 0.0

    def __enter__(self) -> Self:
        self._seen = set(self.client.futures)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        # the scheduler's feed handler notices the closed connection when it next wakes up;
        # give it that long, so that a cluster shut down right after does not cancel it
        wait = self.interval + 0.1 - (time.monotonic() - self._closed_at)
        if self._closed_at and wait > 0:
            time.sleep(wait)
        self.renderer.finish()

    def _run(self) -> None:
        while not self._stop.is_set():
            keys = [k for k in list(self.client.futures) if k not in self._seen]
            if not keys:
                self._stop.wait(0.2)
                continue
            self._seen.update(keys)
            try:
                asyncio.run(self._follow(keys))
            except Exception:  # noqa: BLE001 - progress is a courtesy: never fail the command
                return

    async def _follow(self, keys: list[Any]) -> None:
        from distributed.core import connect
        from distributed.diagnostics.progress import Progress
        from distributed.protocol.pickle import dumps

        async def setup(scheduler: Any) -> Any:
            p = Progress(keys, scheduler, complete=True)
            await p.setup()
            return p

        def function(scheduler: Any, p: Any) -> dict[str, Any]:
            return {"all": len(p.all_keys), "remaining": len(p.keys), "status": p.status}

        comm = await connect(self.client.scheduler.address, **self.client.connection_args)
        try:
            await comm.write({"op": "feed", "setup": dumps(setup), "function": dumps(function),
                              "interval": self.interval})
            total = done = 0
            while not self._stop.is_set():
                msg = await comm.read()
                total, done = int(msg["all"]), int(msg["all"]) - int(msg["remaining"])
                self.renderer.update(self._done_before + done, self._total_before + total)
                if msg["status"] in ("finished", "error"):
                    break
            self._done_before += done
            self._total_before += total
        finally:
            comm.abort()
            self._closed_at = time.monotonic()


def progress_for(label: str, *, out: TextIO | None = None, tty: bool | None = None,
                 every: float | None = None) -> Any:
    """The progress display for a stage: on the current ``distributed`` client if there is
    one, else on dask's local schedulers (``every``: seconds between plain lines, default
    :data:`PLAIN_EVERY`)."""
    renderer = Renderer(label, out=out, tty=tty, every=PLAIN_EVERY if every is None else every)
    client = _current_client()
    if client is not None:
        return ClusterProgress(client, renderer)
    return LocalProgress(renderer)


def _current_client() -> Any:
    import dask

    if dask.config.get("scheduler", None) in ("sync", "synchronous", "single-threaded",
                                               "threads", "threading"):
        return None
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        client = default_client()
    except ValueError:
        return None
    return client if client.status == "running" else None
