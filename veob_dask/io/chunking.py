"""The default row-chunk size of dense row-chunked data (one rule from features, dtype and
workers), and when a stored array groups its chunks into shards.

The rule comes from the cost model in ``benchmarks/cost_model.py`` (see the "Cost model" section
of ``benchmarks/README.md``), measured on the 2-core development machine:

1. **Target 24 MiB per chunk.** Every task allocates its chunk afresh (the decoded read, the
   generated block). glibc serves allocations up to its mmap threshold — which adapts upward to
   at most 32 MiB on 64-bit Linux — from a heap it reuses; larger ones are fresh ``mmap``s whose
   pages fault in on first touch. Allocating and filling 33–256 MiB arrays cost 1.7–2.1x as
   much per byte as 8–31 MiB ones, and a one-pass Gram fit of 64 features was fastest with
   24 MiB chunks among 6, 24, 61, 244 and 977 MiB.
2. **At least 4 MiB.** A task costs the scheduler about 0.1–0.3 ms (threaded) or 1–3 ms
   (distributed) on top of its compute; a one-pass kernel processes 100–300 MB/s per core, so
   a chunk below a few MiB spends more than a few per cent of its time in overhead.
3. **At least 4 chunks per task slot** (workers x threads) when the data is large enough, so
   the last wave of tasks leaves slots idle for at most a quarter of the run's per-slot work.
4. **At most 100,000 chunks per pass.** The distributed scheduler handles a few thousand tasks
   a second, so beyond ~1e5 tasks its time rivals the compute of a pass at any cluster size
   (and the graph costs about a kilobyte of scheduler memory per task).
5. **At least 2 MiB per task slot, up to 512 MiB.** The central scheduler hands out tasks one
   at a time (about 1 ms of its time each); a one-pass kernel costs about 1–1.5 ns per byte
   on one core, so ``S`` slots finish a chunk of ``b`` bytes every ``1.5 b / S`` ns on
   average, and the scheduler keeps up only while that is well above 1 ms: ``b >= ~2 MiB x
   S`` with a factor 2 of headroom. It binds from 13 slots on; past ~250 slots even 512 MiB
   chunks (the most a worker thread should hold, with the copies a task makes) leave the
   scheduler the bottleneck, and fewer, larger tasks (several chunks per task) are the way on.

Rules 4, then 2, then 3, then 5 take precedence over 1, in that order.

6. **Shards of 16 chunks above 1,024 chunks** (:func:`shard_rows`). Zarr stores one file (or
   object) per chunk, so 24 MiB chunks make about 43,700 files per TiB: file-system and
   object-store listings page through them (S3 lists 1,000 keys a request), inode counts and
   per-file metadata grow with them, and copying or deleting a store costs a request each.
   A sharded array (Zarr v3 ``sharding_indexed``) stores 16 consecutive chunks in one file
   of ~384 MiB with an index of their byte ranges at its end, so one task still reads one
   inner chunk (two ranged reads: the index, then the chunk) with 16 times fewer files.
   Measured with ``write_array`` (2,048 chunks of 64 x 8 float32): 2,050 files unsharded,
   130 sharded (128 shards and two ``zarr.json``), both read back in 2,048 tasks; the shard
   indexes add 16 bytes per chunk. Small arrays stay unsharded (one file per chunk is simplest to inspect
   and repair): 1,024 chunks are 24 GiB at the target size. Writes must cover whole shards (a
   partial write is a read-modify-write of the shard), so writers write one shard per task
   (see :mod:`veob_dask.io.writer`) and ingest buffers one shard.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InvalidParameterError

__all__ = ["CHUNKS_PER_SHARD", "MAX_CHUNK_BYTES", "MAX_TASKS", "MIN_CHUNK_BYTES",
           "SHARD_ABOVE_CHUNKS", "SLOT_CHUNK_BYTES", "TARGET_CHUNK_BYTES", "TASKS_PER_SLOT",
           "chunk_rows", "shard_rows"]

#: Target uncompressed bytes of one row chunk (below glibc's 32 MiB maximum mmap threshold).
TARGET_CHUNK_BYTES = 24 * 2**20
#: Smallest chunk worth a task.
MIN_CHUNK_BYTES = 4 * 2**20
#: Chunks per task slot wanted for load balance.
TASKS_PER_SLOT = 4
#: Most chunks one pass should have.
MAX_TASKS = 100_000
#: Chunk bytes per task slot that keep the central scheduler from binding (rule 5) ...
SLOT_CHUNK_BYTES = 2 * 2**20
#: ... up to this size of chunk.
MAX_CHUNK_BYTES = 512 * 2**20
#: A stored array with more row chunks than this is sharded (rule 6) ...
SHARD_ABOVE_CHUNKS = 1024
#: ... in shards of this many row chunks.
CHUNKS_PER_SHARD = 16


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidParameterError(f"{name} must be an int >= 1; got {value!r}.")
    return int(value)


def chunk_rows(row_shape: int | tuple[int, ...], dtype: Any = "float32", *,
               n_rows: int | None = None, workers: int = 1, threads_per_worker: int = 1,
               target_bytes: int = TARGET_CHUNK_BYTES) -> int:
    """Rows per chunk for data whose rows have ``row_shape`` values of ``dtype``.

    Parameters
    ----------
    row_shape : int or tuple of int
        Features per row (``n_features``), or the shape of one row (e.g. ``(28, 28)``).
    dtype : dtype-like, default="float32"
        Element type (its item size sets the bytes per row).
    n_rows : int, optional
        Total rows; when given, the load-balance and task-count rules apply and the result is
        at most ``n_rows``.
    workers, threads_per_worker : int, default=1
        The cluster the data will be processed on (task slots = their product).
    target_bytes : int, default=24 MiB
        The preferred chunk size (rule 1 of the module docstring); raised to 2 MiB per task
        slot, up to 512 MiB, on large clusters (rule 5).

    Returns
    -------
    int
        Rows per chunk, at least 1.

    Examples
    --------
    >>> chunk_rows(64)                      # 24 MiB of 64 float32 features
    98304
    >>> chunk_rows(64, n_rows=10**10)       # capped at 100,000 chunks
    100000
    >>> chunk_rows(64, n_rows=200_000, workers=2)    # 4 chunks per task slot
    25000
    >>> chunk_rows(64, n_rows=50_000, workers=2)     # but at least 4 MiB
    16384
    >>> chunk_rows(64, n_rows=10**10, workers=100, threads_per_worker=2)  # 400 MiB chunks
    1638400
    """
    shape = (row_shape,) if isinstance(row_shape, (int, np.integer)) else tuple(row_shape)
    values = 1
    for s in shape:
        values *= _positive_int("row_shape", s)
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError as err:
        raise InvalidParameterError(f"dtype must be a numpy dtype; got {dtype!r}.") from err
    row_bytes = max(1, values * itemsize)
    slots = _positive_int("workers", workers) * _positive_int("threads_per_worker",
                                                              threads_per_worker)
    target = max(_positive_int("target_bytes", target_bytes),
                 min(MAX_CHUNK_BYTES, SLOT_CHUNK_BYTES * slots))     # rule 5
    rows = max(1, target // row_bytes)
    if n_rows is None:
        return rows
    n = _positive_int("n_rows", n_rows)
    rows = min(rows, math.ceil(n / (TASKS_PER_SLOT * slots)))       # rule 3
    rows = max(rows, MIN_CHUNK_BYTES // row_bytes)                   # rule 2
    rows = max(rows, math.ceil(n / MAX_TASKS))                       # rule 4
    return max(1, min(rows, n))


def shard_rows(n_rows: int, chunk_rows: int, *, shard_above: int | None = SHARD_ABOVE_CHUNKS,
               chunks_per_shard: int = CHUNKS_PER_SHARD) -> int | None:
    """Rows per shard of a stored array of ``n_rows`` rows in chunks of ``chunk_rows``, or None
    when it is not to be sharded (rule 6 of the module docstring).

    Parameters
    ----------
    n_rows : int
        Rows of the array.
    chunk_rows : int
        Rows per (inner) chunk: what one task reads.
    shard_above : int or None, default=1024
        Shard only arrays with more row chunks than this (``None``: this default; ``0``: always).
    chunks_per_shard : int, default=16
        Row chunks per shard.

    Returns
    -------
    int or None
        ``chunk_rows * chunks_per_shard``, at most ``n_rows`` rounded up to a multiple of
        ``chunk_rows`` (a shard is always whole inner chunks); None for an unsharded array.

    Examples
    --------
    >>> shard_rows(10**6, 1000) is None          # 1,000 chunks: one file each
    True
    >>> shard_rows(10**7, 1000)                  # 10,000 chunks: shards of 16
    16000
    >>> shard_rows(2500, 1000, shard_above=0)    # fewer chunks than a shard holds
    3000
    """
    n = _positive_int("n_rows", n_rows)
    rows = _positive_int("chunk_rows", chunk_rows)
    above = SHARD_ABOVE_CHUNKS if shard_above is None else shard_above
    if isinstance(above, bool) or not isinstance(above, (int, np.integer)) or above < 0:
        raise InvalidParameterError(f"shard_above must be an int >= 0 or None; got {above!r}.")
    per_shard = _positive_int("chunks_per_shard", chunks_per_shard)
    n_chunks = math.ceil(n / rows)
    if n_chunks <= above:
        return None
    return rows * min(per_shard, n_chunks)
