"""Sharded Zarr v3 stores: read back by inner chunk, missing and corrupt shards named, the
sharding rule, and the writers (``write_array``, ``ArtifactWriter.store``, ingest) sharding."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr

from veob_dask import SVDEmbedding
from veob_dask.errors import DataError, StoreFormatError
from veob_dask.io import read_array, write_array
from veob_dask.io.ingest import _write_blocks, ingest
from veob_dask.io.writer import create_artifact


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


def _files(path: Path, name: str = "X") -> int:
    return sum(1 for p in (path / name / "c").rglob("*") if p.is_file())


def _check_sharded(path: Path, x: np.ndarray, chunk: int, shard: int, name: str = "X") -> None:
    """``name`` of ``path`` is stored in shards of ``shard`` rows (one file each) of inner chunks
    of ``chunk`` rows, and reads back equal to ``x`` through veob_dask, dask and xarray."""
    arr = zarr.open_group(path, mode="r")[name]
    assert arr.chunks[0] == chunk and arr.shards[0] == shard
    assert _files(path, name) == -(-len(x) // shard)  # one file per shard, not per chunk
    got = read_array(path, name)
    assert got.chunks[0][0] == chunk  # tasks read inner chunks
    np.testing.assert_array_equal(got.compute(), x)
    np.testing.assert_array_equal(da.from_zarr(str(path), component=name).compute(), x)
    xr = pytest.importorskip("xarray")
    np.testing.assert_array_equal(xr.open_zarr(path, consolidated=False)[name].values, x)


@pytest.mark.parametrize("in_chunks", [1000, 37, 160, (500, 3, 497)])
def test_write_array_shards_whatever_the_input_chunking(tmp_path, in_chunks):
    x = _data()
    y = np.arange(len(x)) % 7
    xd = da.from_array(x, chunks=(in_chunks, 3))
    write_array(xd, tmp_path / "s.zarr", chunk_rows=10, shard_above=8, extra={"y": y})
    _check_sharded(tmp_path / "s.zarr", x, 10, 160)
    assert zarr.open_group(tmp_path / "s.zarr", mode="r")["y"].shards is None  # one chunk


def test_each_store_task_writes_whole_shards(tmp_path):
    x = _data()
    with create_artifact(tmp_path / "s.zarr", "dataset") as w:
        w.store("X", da.from_array(x, chunks=(37, 3)), dims=("sample", "feature"),
                chunk_rows=10, shard_above=0)
        (stored,) = w._pending
    # one write per shard: each task covers the rows of one shard exactly
    writes = [k for k in stored.dask if k[0].startswith("store-map")]
    assert len(writes) == 7
    _check_sharded(tmp_path / "s.zarr", x, 10, 160)


@pytest.mark.parametrize("in_chunks", [10, 37])
def test_uncompressed_chunks_are_written_one_per_task_in_place(tmp_path, in_chunks):
    x = _data()
    with create_artifact(tmp_path / "s.zarr", "dataset") as w:
        w.store("X", da.from_array(x, chunks=(in_chunks, 3)), dims=("sample", "feature"),
                chunk_rows=10, shard_above=0, codec="none")
        (stored,) = w._pending
    # one write per chunk: no task waits for, or copies, the other chunks of its shard
    writes = [k for k in stored.dask if k[0].startswith("store-map")]
    assert len(writes) == 100
    _check_sharded(tmp_path / "s.zarr", x, 10, 160)
    # the bytes zarr writes for the same array
    ref = zarr.open_group(tmp_path / "ref.zarr", mode="w").create_array(
        "X", shape=x.shape, dtype=x.dtype, chunks=(10, 3), shards=(160, 3), compressors=None,
        config={"write_empty_chunks": True})
    ref[...] = x
    for f in sorted((tmp_path / "ref.zarr" / "X" / "c").rglob("*")):
        if f.is_file():
            mine = tmp_path / "s.zarr" / f.relative_to(tmp_path / "ref.zarr")
            assert mine.read_bytes() == f.read_bytes()


def test_a_chunk_not_written_in_place_fails_the_store(tmp_path, monkeypatch):
    from veob_dask.errors import StoreError
    from veob_dask.io import writer as writer_mod

    monkeypatch.setattr(writer_mod, "write_rows", lambda *a: False)
    with pytest.raises(StoreError, match="could not be written in place"):
        write_array(da.from_array(_data(), chunks=(10, 3)), tmp_path / "s.zarr",
                    chunk_rows=10, shard_above=0, codec="none")
    assert not (tmp_path / "s.zarr").exists()  # zarr never rewrote a shard under the others


def test_below_the_threshold_a_store_is_unchanged(tmp_path):
    x = _data()
    write_array(x, tmp_path / "s.zarr", chunk_rows=10)  # 100 chunks: below 1,024
    meta = json.loads((tmp_path / "s.zarr" / "X" / "zarr.json").read_text())
    assert "sharding_indexed" not in json.dumps(meta)
    assert _files(tmp_path / "s.zarr") == 100
    write_array(x, tmp_path / "t.zarr", chunk_rows=10, shard_above=100)
    assert zarr.open_group(tmp_path / "t.zarr", mode="r")["X"].shards is None
    write_array(x, tmp_path / "u.zarr", chunk_rows=10, shard_above=99)
    assert zarr.open_group(tmp_path / "u.zarr", mode="r")["X"].shards == (160, 3)


@pytest.mark.parametrize("labels", [False, True])
def test_ingest_shards(tmp_path, labels):
    x = _data(1003)
    np.save(tmp_path / "x.npy", x)
    y = np.arange(len(x)) % 5 if labels else None
    ingest(tmp_path / "x.npy", tmp_path / "s.zarr", labels=y, chunk_rows=25, shard_above=0)
    _check_sharded(tmp_path / "s.zarr", x, 25, 400)
    if labels:
        _check_sharded(tmp_path / "s.zarr", y, 25, 400, name="y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr", "x.npy"]


class _Recorder:
    def __init__(self, n: int) -> None:
        self.data = np.zeros((n, 2))
        self.writes: list[tuple[int, int]] = []

    def __setitem__(self, key: slice, value: np.ndarray) -> None:
        self.writes.append((key.start, key.stop))
        self.data[key] = value


@pytest.mark.parametrize("block", [1, 5, 16, 23, 100])
def test_ingest_buffers_blocks_into_whole_shards(block):
    x = np.arange(200.0).reshape(100, 2)
    rec = _Recorder(100)
    seen = []
    blocks = (x[i : i + block] for i in range(0, 100, block))
    _write_blocks(rec, "X", x.shape, x.dtype, blocks, 16, lambda d, n: seen.append(d))
    assert rec.writes == [(i, min(i + 16, 100)) for i in range(0, 100, 16)]
    np.testing.assert_array_equal(rec.data, x)
    assert seen[-1] == 100


def test_ingest_refuses_more_rows_than_announced():
    x = np.ones((20, 2))
    with pytest.raises(DataError, match="expected 10 rows, read more"):
        _write_blocks(_Recorder(10), "X", (10, 2), x.dtype, [x[:8], x[8:]], 16, None)


def test_an_embedding_written_by_transform_is_sharded(tmp_path, low_rank):
    emb = SVDEmbedding(5).fit(low_rank).transform(da.from_array(low_rank, chunks=(100, 40)))
    write_array(emb, tmp_path / "e.zarr", shard_above=4)  # 12 chunks of 100 rows
    _check_sharded(tmp_path / "e.zarr", emb.compute(), 100, 1200)
    assert _files(tmp_path / "e.zarr") == 1
