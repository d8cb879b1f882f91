"""Sharded Zarr v3 stores: read back by inner chunk, missing and corrupt shards named, the
sharding rule, and the writers (``write_array``, ``ArtifactWriter.store``, ingest) sharding."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from veob_dask.errors import StoreFormatError
from veob_dask.io import read_array


def _zarr_sharded(path: Path, x: np.ndarray, chunk_rows: int, shard_rows: int) -> Path:
    """A sharded dataset store written by zarr itself (not by veob_dask's writer)."""
    group = zarr.open_group(path, mode="w")
    arr = group.create_array("X", shape=x.shape, dtype=x.dtype, chunks=(chunk_rows, x.shape[1]),
                             shards=(shard_rows, x.shape[1]), dimension_names=("sample", "f"))
    arr[...] = x
    return path


def _data(n: int = 1000, d: int = 3) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


def test_a_store_sharded_by_zarr_reads_back_by_inner_chunk(tmp_path):
    x = _data()
    path = _zarr_sharded(tmp_path / "s.zarr", x, chunk_rows=10, shard_rows=160)
    got = read_array(path)
    assert got.chunks[0][0] == 10  # one task per inner chunk, not per shard
    np.testing.assert_array_equal(got.compute(), x)


def test_a_missing_shard_is_named_with_its_rows(tmp_path):
    path = _zarr_sharded(tmp_path / "s.zarr", _data(), chunk_rows=10, shard_rows=160)
    os.remove(path / "X" / "c" / "2" / "0")
    with pytest.raises(StoreFormatError, match=r"shard c/2/0 .* is missing \(rows 320-479\)"):
        read_array(path)[330:340].compute()
    (path / "X" / "c" / "2" / "0").write_bytes(b"")  # zarr would read an empty shard as zeros
    with pytest.raises(StoreFormatError, match=r"shard c/2/0 .* is missing \(rows 320-479\)"):
        read_array(path).compute()


def test_the_missing_last_shard_is_found_on_open(tmp_path):
    path = _zarr_sharded(tmp_path / "s.zarr", _data(), chunk_rows=10, shard_rows=160)
    os.remove(path / "X" / "c" / "6" / "0")
    with pytest.raises(StoreFormatError, match=r"shards of 160, but shard c/6/0 .* is missing"):
        read_array(path)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_shard_cannot_be_decoded(tmp_path, damage):
    path = _zarr_sharded(tmp_path / "s.zarr", _data(), chunk_rows=10, shard_rows=160)
    shard = path / "X" / "c" / "2" / "0"
    size = shard.stat().st_size
    if damage == "truncated":
        os.truncate(shard, size // 2)
    else:
        shard.write_bytes(np.random.default_rng(1).bytes(size))
    with pytest.raises(StoreFormatError, match=r"could not decode rows 330-340 .* corrupt"):
        read_array(path)[330:340].compute()
    np.testing.assert_array_equal(read_array(path)[:320].compute(), _data()[:320])
