"""Read-ahead of local stores, opt-in: the kernel fetches the next files while tasks compute.

A task that reads a row chunk from a local store waits for the disk, then computes. With
read-ahead on, before each read :func:`advise_rows` asks the kernel
(``posix_fadvise(..., POSIX_FADV_WILLNEED)``) to start reading the storage files — shards of a
sharded array, chunk files otherwise — that hold the next ``readahead_bytes`` of rows. The hint
is sent by one background thread per process, so a task never waits for it; it only fills the
page cache (the kernel may drop it under memory pressure), changes no result, and is skipped
for object stores (fsspec caches those itself).

It is **off by default**: on this project's 2-core machine (virtio disk, 8 MiB kernel
read-ahead per file) hinting whole 330–400 MB shards made threaded passes slower (likely: the
hinted reads queue ahead of those tasks wait for). For arrays larger than physical memory,
which :mod:`veob_dask.io.direct` reads with ``O_DIRECT`` past the page cache, the hints would
only fill the cache with data no task reads from it. Cold passes over two stores larger than memory, read-ahead
on against off, threaded scheduler: read 79.1 s / 68.0 s and Gram fit 99.3 s / 95.6 s (38e6 x 256, zstd);
read 46.3 s / 39.2 s and Gram fit 47.7 s / 44.4 s (128e6 x 64, uncompressed); on a 2-worker
LocalCluster the Gram fit took 119.6 s / 126.5 s and 53.1 s / 54.9 s (one run each,
``benchmarks/bench_scale.py --parts c``; benchmarks/README.md, "Scale"; a later run through
the page cache: read 31.0 s / 23.5 s, fit 35.3 s / 30.8 s threaded, 39.7 s / 34.2 s on the
cluster, 128e6 x 64 uncompressed). Try it where the disk
has a high latency per request and the kernel's read-ahead is small::

    with dask.config.set({"veob_dask.readahead_bytes": 512 * 2**20}):
        ...
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

import dask

__all__ = ["READAHEAD_BYTES", "advise_rows", "readahead_bytes"]

#: Bytes of rows (uncompressed) past a read that the kernel is asked to fetch, by default:
#: none (see the module docstring for the measurements).
READAHEAD_BYTES = 0

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
