"""Ingest into Zarr, lazy chunk-checked reads, atomic writes, IDX parsing."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr

from veob_dask.errors import (
    DataError,
    DimensionMismatchError,
    StoreExistsError,
    StoreFormatError,
    StoreNotFoundError,
)
from veob_dask.io import read_array, read_matrix, write_array
from veob_dask.io.idx import read_idx
from veob_dask.io.ingest import ingest


def _write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.float32): 0x0D}
    head = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as fh:
        fh.write(head + body)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_and_ingest(tmp_path, gz):
    imgs = np.random.default_rng(0).integers(0, 255, size=(50, 4, 3), dtype=np.uint8)
    labels = np.arange(50, dtype=np.uint8) % 10
    src = _write_idx(tmp_path / ("img-idx3-ubyte" + (".gz" if gz else "")), imgs, gz)
    lab = _write_idx(tmp_path / ("lab-idx1-ubyte" + (".gz" if gz else "")), labels, gz)
    np.testing.assert_array_equal(read_idx(src), imgs)
    out = tmp_path / "s.zarr"
    ingest(src, out, labels=lab, chunk_rows=16)
    x = read_array(out)
    assert x.chunks[0] == (16, 16, 16, 2)
    np.testing.assert_array_equal(x.compute(), imgs)
    np.testing.assert_array_equal(read_array(out, "y").compute(), labels)
    attrs = dict(zarr.open_group(out, mode="r")["X"].attrs)
    assert attrs["source"] == os.path.abspath(src)
    assert attrs["shape"] == [50, 4, 3] and attrs["dtype"] == "uint8" and attrs["created"]


def test_truncated_and_bogus_idx(tmp_path):
    imgs = np.zeros((10, 2, 2), dtype=np.uint8)
    src = _write_idx(tmp_path / "a-idx3-ubyte", imgs)
    src.write_bytes(src.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated"):
        ingest(src, tmp_path / "t.zarr")
    assert not (tmp_path / "t.zarr").exists()
    bogus = tmp_path / "b-idx3-ubyte"
    bogus.write_bytes(b"hello world")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(bogus)
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        ingest(tmp_path / "missing-idx3-ubyte", tmp_path / "m.zarr")


def test_ingest_npy_and_array(tmp_path):
    x = np.random.default_rng(1).normal(size=(30, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    ingest(tmp_path / "x.npy", tmp_path / "a.zarr", chunk_rows=7)
    np.testing.assert_array_equal(read_matrix(tmp_path / "a.zarr").compute(), x)
    ingest(x, tmp_path / "b.zarr", labels=np.arange(30))
    np.testing.assert_array_equal(read_array(tmp_path / "b.zarr", "y").compute(), np.arange(30))
    with pytest.raises(DataError, match="empty"):
        ingest(np.empty((0, 3)), tmp_path / "c.zarr")
    with pytest.raises(DataError, match="ragged rows"):
        ingest(np.array([[1, 2], [3]], dtype=object), tmp_path / "d.zarr")


def test_subdomain_keys_as_a_store_array_integers_or_text(tmp_path):
    x = np.arange(40.0).reshape(10, 4)
    (tmp_path / "keys.txt").write_text("\n".join(["en", "fr"] * 5) + "\n")
    ingest(x, tmp_path / "t.zarr", domains=tmp_path / "keys.txt", chunk_rows=4)
    keys = read_array(tmp_path / "t.zarr", "domains")
    assert keys.dtype == object and keys.chunks == ((4, 4, 2),)
    assert keys.compute().tolist() == ["en", "fr"] * 5
    group = zarr.open_group(str(tmp_path / "t.zarr"), mode="r")
    assert group["domains"].metadata.dimension_names == ("sample",)
    (tmp_path / "ints.txt").write_text("\n".join(map(str, range(10))))
    ingest(x, tmp_path / "i.zarr", labels=np.ones(10), domains=tmp_path / "ints.txt")
    np.testing.assert_array_equal(read_array(tmp_path / "i.zarr", "domains").compute(),
                                  np.arange(10))
    with pytest.raises(DimensionMismatchError, match="domains hold 3 entries"):
        ingest(x, tmp_path / "j.zarr", domains=np.arange(3))


def test_text_arrays_round_trip_as_variable_length_strings(tmp_path):
    from veob_dask.io import write_artifact
    from veob_dask.io.store import open_artifact, read_arrays

    names = np.array(["alpha", "be", "gamma delta"])
    write_artifact(tmp_path / "a.zarr", "dataset", {"names": names}, dims={"names": ("n",)})
    group, _ = open_artifact(tmp_path / "a.zarr", "dataset")
    got = read_arrays(group, ["names"], "a")["names"]
    assert got.dtype.kind == "U" and got.tolist() == names.tolist()


def test_missing_store_and_array(tmp_path):
    with pytest.raises(StoreNotFoundError, match="no Zarr store"):
        read_array(tmp_path / "nope.zarr")
    write_array(np.ones((4, 2)), tmp_path / "s.zarr")
    with pytest.raises(StoreFormatError, match="has no array 'Z'"):
        read_array(tmp_path / "s.zarr", "Z")


def test_missing_and_corrupt_chunks_are_named(tmp_path):
    out = tmp_path / "s.zarr"
    write_array(np.arange(40.0).reshape(20, 2), out, chunk_rows=5)
    os.remove(out / "X" / "c" / "2" / "0")
    with pytest.raises(StoreFormatError, match=r"chunk c/2/0 .* is missing \(rows 10-14\)"):
        read_array(out).compute()
    write_array(np.arange(40.0).reshape(20, 2), out, chunk_rows=5, overwrite=True)
    (out / "X" / "c" / "1" / "0").write_bytes(b"garbage")
    with pytest.raises(StoreFormatError, match="corrupt"):
        read_array(out).sum().compute()


def test_writes_are_atomic_and_refuse_to_overwrite(tmp_path):
    out = tmp_path / "s.zarr"
    write_array(np.ones((6, 2)), out)
    with pytest.raises(StoreExistsError, match="already exists"):
        write_array(np.zeros((6, 2)), out)
    def explode(block, block_id=None):
        if block_id[0] == 2:
            raise ZeroDivisionError("simulated failure while writing the last chunk")
        return block

    x = da.from_array(np.zeros((6, 2)), chunks=2).map_blocks(explode, dtype=float)
    with pytest.raises(ZeroDivisionError):
        write_array(x, out, overwrite=True)
    np.testing.assert_array_equal(read_array(out).compute(), np.ones((6, 2)))
    assert [p.name for p in tmp_path.iterdir()] == ["s.zarr"]


def test_memory_url_round_trip():
    write_array(np.arange(12.0).reshape(6, 2), "memory://veob-test/s.zarr", chunk_rows=4,
                overwrite=True)
    np.testing.assert_array_equal(read_array("memory://veob-test/s.zarr").compute(),
                                  np.arange(12.0).reshape(6, 2))


def test_all_zero_chunks_are_written_and_read(tmp_path):
    x = np.zeros((12, 3), dtype=np.float32)
    x[8:] = 1.0
    write_array(x, tmp_path / "a.zarr", chunk_rows=4)
    np.testing.assert_array_equal(read_array(tmp_path / "a.zarr").compute(), x)
    ingest(np.zeros((10, 2, 2), dtype=np.uint8), tmp_path / "b.zarr", labels=np.zeros(10),
           chunk_rows=5)
    assert read_array(tmp_path / "b.zarr").sum().compute() == 0


def test_a_store_replaced_at_the_same_path_is_reread(tmp_path: Path) -> None:
    """Opened arrays are shared per process; replacing the store must not serve stale data."""
    path = tmp_path / "x.zarr"
    write_array(np.zeros((10, 3), dtype=np.float32), path)
    assert read_array(path).compute().sum() == 0
    for value in (1.0, 2.0):
        write_array(np.full((12, 3), value, dtype=np.float32), path, overwrite=True)
        got = read_array(path).compute()
        assert got.shape == (12, 3) and np.all(got == value)


def test_describe_store_dense_and_sparse(tmp_path):
    import scipy.sparse as sp

    from veob_dask.io import describe_store
    from veob_dask.io.sparse import write_sparse

    imgs = np.random.default_rng(1).integers(0, 255, size=(50, 4, 3), dtype=np.uint8)
    src = _write_idx(tmp_path / "img-idx3-ubyte", imgs)
    ingest(src, tmp_path / "d.zarr", chunk_rows=16)
    d = describe_store(tmp_path / "d.zarr")
    assert d["store"] == str((tmp_path / "d.zarr").resolve()) and d["kind"] == "dataset"
    assert (d["shape"], d["chunks"], d["dtype"]) == ([50, 4, 3], [16, 4, 3], "uint8")
    assert d["source"] == str(src.resolve()) and d["format"] == "idx"
    assert d["writer"].startswith("veob_dask ") and d["format_version"] == 2 and d["created"]
    m = sp.random(30, 8, density=0.3, format="csr", random_state=0, dtype=np.float32)
    write_sparse(m, tmp_path / "s.zarr", chunk_rows=10)
    s = describe_store(tmp_path / "s.zarr")
    assert (s["kind"], s["shape"], s["chunks"], s["nnz"]) == ("sparse", [30, 8], [10, 8], m.nnz)
    with pytest.raises(StoreFormatError, match="has no array 'Z'"):
        describe_store(tmp_path / "d.zarr", "Z")
