"""The default chunk-size rule: its rules, each where it binds; the sharding rule."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from veob_dask.errors import InvalidParameterError
from veob_dask.io import chunking
from veob_dask.io.chunking import (
    CHUNKS_PER_SHARD,
    MAX_CHUNK_BYTES,
    MAX_TASKS,
    MIN_CHUNK_BYTES,
    SHARD_ABOVE_CHUNKS,
    SLOT_CHUNK_BYTES,
    TARGET_CHUNK_BYTES,
    chunk_rows,
    shard_rows,
)


@pytest.mark.parametrize(("shape", "dtype"), [(64, "float32"), (256, "float32"), (784, "float64"),
                                              ((28, 28), "uint8"), (10**8, "float64")])
def test_target_bytes_without_a_row_count(shape, dtype):
    rows = chunk_rows(shape, dtype)
    row_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    assert rows >= 1
    if row_bytes <= TARGET_CHUNK_BYTES:
        assert rows * row_bytes <= TARGET_CHUNK_BYTES < (rows + 1) * row_bytes
    else:
        assert rows == 1  # one row is bigger than the target: one row per chunk


@pytest.mark.parametrize("n_rows", [1, 1000, 10**5, 10**6, 10**7, 10**9, 10**10, 10**12])
@pytest.mark.parametrize(("workers", "threads"), [(1, 1), (2, 1), (10, 4), (1000, 2)])
def test_rules_hold_for_any_size(n_rows, workers, threads):
    d, slots = 64, workers * threads
    rows = chunk_rows(d, n_rows=n_rows, workers=workers, threads_per_worker=threads)
    tasks = -(-n_rows // rows)
    target = max(TARGET_CHUNK_BYTES, min(MAX_CHUNK_BYTES, SLOT_CHUNK_BYTES * slots))  # 1, 5
    assert 1 <= rows <= n_rows
    assert tasks <= MAX_TASKS                                    # rule 4 always
    if rows * d * 4 > target:                                    # only rule 4 makes it bigger
        assert rows == -(-n_rows // MAX_TASKS)
    if n_rows * d * 4 >= MIN_CHUNK_BYTES and tasks < MAX_TASKS:  # rule 2 when the data allows
        assert rows * d * 4 >= MIN_CHUNK_BYTES or rows == n_rows
    if rows < target // (d * 4) and rows * d * 4 > MIN_CHUNK_BYTES and tasks < MAX_TASKS:
        assert rows == -(-n_rows // (chunking.TASKS_PER_SLOT * slots))  # rule 3 binds


def test_large_clusters_get_larger_chunks():
    """Rule 5: enough work per task for the central scheduler to keep every slot busy."""
    rows = [chunk_rows(64, workers=w, threads_per_worker=2) for w in (1, 10, 100, 1000)]
    assert rows[0] * 256 == TARGET_CHUNK_BYTES
    assert rows[1] * 256 == 20 * SLOT_CHUNK_BYTES and rows[2] * 256 == 200 * SLOT_CHUNK_BYTES
    assert rows[3] * 256 == MAX_CHUNK_BYTES


def test_more_slots_split_a_small_matrix_finer():
    sizes = [chunk_rows(64, n_rows=10**6, workers=w) for w in (1, 2, 4, 8)]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] > sizes[-1]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"row_shape": 0}, "row_shape must be an int >= 1"),
    ({"row_shape": (28, 0)}, "row_shape must be"),
    ({"row_shape": 8, "dtype": "not-a-dtype"}, "dtype must be a numpy dtype"),
    ({"row_shape": 8, "n_rows": 0}, "n_rows must be"),
    ({"row_shape": 8, "n_rows": 10, "workers": 0}, "workers must be"),
    ({"row_shape": 8, "target_bytes": True}, "target_bytes must be"),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        chunk_rows(**kwargs)


@pytest.mark.parametrize("chunk", [1, 7, 1000])
@pytest.mark.parametrize("n_chunks", [1, 15, 16, 17, SHARD_ABOVE_CHUNKS, SHARD_ABOVE_CHUNKS + 1,
                                      10**5])
@pytest.mark.parametrize("above", [None, 0, 16])
def test_shards_are_whole_chunks_and_only_above_the_threshold(chunk, n_chunks, above):
    n_rows = chunk * n_chunks - (chunk // 2)  # a ragged last chunk
    rows = shard_rows(n_rows, chunk, shard_above=above)
    threshold = SHARD_ABOVE_CHUNKS if above is None else above
    if n_chunks <= threshold:
        assert rows is None
        return
    assert rows % chunk == 0
    assert rows == chunk * min(CHUNKS_PER_SHARD, n_chunks)
    assert rows - chunk < n_rows  # never a shard of padding only


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_rows": 0, "chunk_rows": 1}, "n_rows must be"),
    ({"n_rows": 10, "chunk_rows": 0}, "chunk_rows must be"),
    ({"n_rows": 10, "chunk_rows": 1, "shard_above": -1}, "shard_above must be"),
    ({"n_rows": 10, "chunk_rows": 1, "shard_above": True}, "shard_above must be"),
    ({"n_rows": 10, "chunk_rows": 1, "chunks_per_shard": 0}, "chunks_per_shard must be"),
])
def test_invalid_shard_arguments(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        shard_rows(**kwargs)


def test_docstring_examples():
    assert doctest.testmod(chunking, raise_on_error=False).failed == 0
