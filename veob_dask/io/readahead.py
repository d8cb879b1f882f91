"""Read-ahead of local stores: the kernel fetches the next storage files while tasks compute.

A task that reads a row chunk from a local store waits for the disk, then computes; without
help, a 2-thread pass leaves the disk idle whenever both threads compute, and a cold pass costs
about the disk time plus the compute time instead of the larger of the two. Before each read,
:func:`advise_rows` asks the kernel (``posix_fadvise(..., POSIX_FADV_WILLNEED)``) to start
reading the storage files — shards of a sharded array, chunk files otherwise — that hold the
next ``readahead_bytes`` of rows. The hint is sent by one background thread per process, so a
task never waits for it; it only fills the page cache (the kernel may drop it under memory
pressure), changes no result, and is skipped for object stores (fsspec caches those itself).

The distance is the Dask config value ``veob_dask.readahead_bytes`` (default
:data:`READAHEAD_BYTES`; ``0`` turns read-ahead off)::

    with dask.config.set({"veob_dask.readahead_bytes": 0}):
        ...
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

import dask

__all__ = ["READAHEAD_BYTES", "advise_rows", "readahead_bytes"]

#: Bytes of rows (uncompressed) past a read that the kernel is asked to fetch: more than one
#: default shard (16 chunks of 24 MiB), so the next shard is requested when a task first reads
#: from the current one. On a 4.1 GB, 11-shard store of this machine (2 cores, ~1.1 GB/s cold
#: disk), a cold threaded read pass took 5.4 s with read-ahead against 5.8-6.1 s without, and a
#: Gram fit 6.8-6.9 s against 7.3 s (benchmarks/README.md, "Read-ahead").
READAHEAD_BYTES = 512 * 2**20

_MEMO_LIMIT = 8192


class _Advisor:
    """One daemon thread per process that sends the hints, and the files already hinted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = -1
        self.queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.hinted: set[str] = set()

    def submit(self, paths: list[str]) -> None:
        with self.lock:
            if self.pid != os.getpid():  # first use, or a forked child: its own thread
                self.pid, self.queue, self.hinted = os.getpid(), queue.SimpleQueue(), set()
                threading.Thread(target=self._run, args=(self.queue,), daemon=True,
                                 name="veob-readahead").start()
            if len(self.hinted) > _MEMO_LIMIT:
                self.hinted.clear()
            new = [p for p in paths if p not in self.hinted]
            self.hinted.update(new)
        for p in new:
            self.queue.put(p)

    @staticmethod
    def _run(q: queue.SimpleQueue[str]) -> None:
        while True:
            _willneed(q.get())


def _willneed(path: str) -> None:
    """Ask the kernel to read the whole file ``path`` into the page cache (a hint: errors are
    ignored; a missing file is reported by the read itself)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except (OSError, AttributeError):
        pass
    finally:
        os.close(fd)


_ADVISOR = _Advisor()


def readahead_bytes() -> int:
    """The read-ahead distance in force (Dask config ``veob_dask.readahead_bytes``)."""
    value = dask.config.get("veob_dask.readahead_bytes", READAHEAD_BYTES)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return READAHEAD_BYTES


def storage_rows(arr: Any) -> int:
    """Rows of one storage file of the row-chunked Zarr array ``arr`` (a shard when sharded)."""
    shards = getattr(arr, "shards", None)
    return int((shards or arr.chunks)[0])


def advise_rows(root: str, arr: Any, start: int, stop: int) -> list[str]:
    """Hint the storage files of ``arr`` holding rows ``[start, stop + readahead)``.

    ``root`` is the local directory of the store; ``arr`` a row-chunked Zarr array in it.
    Files hinted before by this process are skipped. Returns the paths newly handed to the
    background thread (for tests).
    """
    distance = readahead_bytes()
    if distance <= 0 or not arr.shape or arr.shape[0] == 0:
        return []
    per_file = storage_rows(arr)
    row_bytes = max(1, arr.dtype.itemsize * int(_prod(arr.shape[1:])))
    last_row = min(arr.shape[0], stop + distance // row_bytes) - 1
    first, last = max(0, start) // per_file, max(0, last_row) // per_file
    tail = (0,) * (len(arr.shape) - 1)
    base = os.path.join(root, arr.path) if arr.path else root
    paths = [os.path.join(base, arr.metadata.encode_chunk_key((i, *tail)))
             for i in range(first, last + 1)]
    with _ADVISOR.lock:
        hinted = set(_ADVISOR.hinted) if _ADVISOR.pid == os.getpid() else set()
    fresh = [p for p in paths if p not in hinted]
    if fresh:
        _ADVISOR.submit(fresh)
    return fresh


def _prod(values: tuple[int, ...]) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out
