"""Write-behind for local stores written by this process: a task hands its file write to a
background thread and goes on to its next chunk.

A task of a transform reads a chunk, projects it and writes the result. Writing in the task
leaves the disk idle while both of a 2-core machine's task threads compute; handed to one
background writer per process, the write runs while the task reads its next chunk.

It is used only where the write is certain to be waited for: :func:`writing_behind` (entered
by :func:`~veob_dask.io.publish.compute_writes` around a threaded or synchronous compute of a
local store) registers the store's temporary directory for the current process, and on exit
waits for every write handed over under it, then raises the first one that failed (the store
is then not published). Writes from other processes (``distributed`` workers, a process pool)
are never handed over: a worker that died after its task returned would lose them. The bytes
waiting at once are bounded (:data:`WRITE_BEHIND_BYTES`), so memory stays bounded by chunks.

The writer takes the writes waiting when it is free, up to :data:`MERGE_BYTES`, and joins
those that extend one another (a write with a ``merged(other)`` method: chunks in place at
consecutive offsets of one shard file), so the disk sees fewer, larger writes between the
tasks' reads.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["MERGE_BYTES", "WRITE_BEHIND_BYTES", "in_writer_thread", "submit", "writing_behind"]

#: Most bytes handed over and not yet written, per process (a task waits beyond it).
WRITE_BEHIND_BYTES = 128 << 20
#: Most bytes the writer takes from the queue at once to join into larger writes.
MERGE_BYTES = 64 << 20

_WRITER = threading.local()


@dataclass
class _Session:
    """The writes handed over under one registered directory."""

    root: str
    pid: int
    pending: int = 0
    error: BaseException | None = None


_COND = threading.Condition()
_SESSIONS: dict[str, _Session] = {}
_STATE = {"pid": -1, "bytes": 0}
_QUEUE: queue.SimpleQueue[tuple[_Session, Callable[[], None], int]] = queue.SimpleQueue()


def _session_for(path: str) -> _Session | None:
    if not _SESSIONS:
        return None
    pid, path = os.getpid(), os.path.abspath(path)
    with _COND:
        for s in _SESSIONS.values():
            if s.pid == pid and path.startswith(s.root):
                return s
    return None


def in_writer_thread() -> bool:
    """Whether the calling thread is the writer thread (it writes joined, larger writes)."""
    return bool(getattr(_WRITER, "on", False))


def _join(write: Callable[[], None], other: Callable[[], None]) -> Callable[[], None] | None:
    """One write doing ``write`` and ``other`` (either may go first), or None."""
    for a, b in ((write, other), (other, write)):
        merged = getattr(a, "merged", None)
        joined = merged(b) if merged is not None else None
        if joined is not None:
            return joined  # type: ignore[no-any-return]
    return None


def _batch(items: list[tuple[_Session, Callable[[], None], int]]
           ) -> list[tuple[_Session, Callable[[], None], int, int]]:
    """``items`` joined where they extend one another (same session): (session, write,
    bytes, number of items it stands for)."""
    runs: list[tuple[_Session, Callable[[], None], int, int]] = []
    for session, write, nbytes in items:
        count = 1
        joined = True
        while joined:  # a new piece may close the gap between two runs
            joined = False
            for i, (s, w, b, c) in enumerate(runs):
                one = _join(w, write) if s is session else None
                if one is not None:
                    del runs[i]
                    write, nbytes, count, joined = one, nbytes + b, count + c, True
                    break
        runs.append((session, write, nbytes, count))
    return runs


def _run(q: queue.SimpleQueue[tuple[_Session, Callable[[], None], int]]) -> None:
    _WRITER.on = True
    while True:
        items = [q.get()]
        size = items[0][2]
        while size < MERGE_BYTES:
            try:
                items.append(q.get_nowait())
            except queue.Empty:
                break
            size += items[-1][2]
        for session, write, nbytes, count in _batch(items):
            try:
                write()
            except BaseException as exc:  # noqa: BLE001 -- raised again by writing_behind
                with _COND:
                    session.error = session.error or exc
            finally:
                with _COND:
                    session.pending -= count
                    _STATE["bytes"] -= nbytes
                    _COND.notify_all()


def submit(path: str, write: Callable[[], None], nbytes: int) -> bool:
    """Hand ``write`` (of the file ``path``, ``nbytes`` held until it is done) to the writer
    thread when ``path`` lies under a directory :func:`writing_behind` registered in this
    process; False (nothing done) otherwise, and the caller writes it itself."""
    session = _session_for(path)
    if session is None:
        return False
    global _QUEUE
    with _COND:
        if _STATE["pid"] != os.getpid():  # first use, or a forked child: its own thread
            _STATE["pid"], _STATE["bytes"] = os.getpid(), 0
            _QUEUE = queue.SimpleQueue()
            threading.Thread(target=_run, args=(_QUEUE,), daemon=True,
                             name="veob-write-behind").start()
        while _STATE["bytes"] and _STATE["bytes"] + nbytes > WRITE_BEHIND_BYTES:
            _COND.wait()
        if session.error is not None:  # a write already failed: stop handing more over
            raise session.error
        _STATE["bytes"] += nbytes
        session.pending += 1
        _QUEUE.put((session, write, nbytes))
    return True


@contextlib.contextmanager
def writing_behind(root: str) -> Iterator[None]:
    """Within: file writes under directory ``root`` by this process may be handed to the
    writer thread (:func:`submit`); on exit, every one has been done, and the first that failed
    is raised (unless the block itself raised)."""
    prefix = os.path.join(os.path.abspath(root), "")
    session = _Session(prefix, os.getpid())
    with _COND:
        if prefix in _SESSIONS:  # nested or concurrent: the outer one waits for all
            session = None  # type: ignore[assignment]
        else:
            _SESSIONS[prefix] = session
    if session is None:
        yield
        return
    failed = True
    try:
        yield
        failed = False
    finally:
        with _COND:
            while session.pending:
                _COND.wait()
            del _SESSIONS[prefix]
        if session.error is not None and not failed:
            raise session.error
