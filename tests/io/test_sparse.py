"""Sparse CSR Zarr stores: ingest (npz, COO), lazy reads, and errors on bad or damaged data."""

from __future__ import annotations

from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
import zarr

from veob_dask.errors import DataError, StoreExistsError, StoreFormatError, StoreNotFoundError
from veob_dask.io import read_matrix, write_array
from veob_dask.io.sparse import ingest_coo, ingest_npz, read_sparse, write_sparse
from veob_dask.runtime import parallelism
from veob_dask.svd import SVDEmbedding


@pytest.fixture
def csr() -> sp.csr_matrix:
    return sp.random(500, 700, density=0.02, random_state=2, format="csr", dtype=np.float32)


def _coo_store(path: Path, row: np.ndarray, col: np.ndarray, data: np.ndarray,
               shape: object) -> Path:
    g = zarr.open_group(path, mode="w")
    for name, values in (("row", row), ("col", col), ("data", data)):
        g.create_array(name, data=np.asarray(values), chunks=(max(1, len(values) // 3 + 1),))
    g.attrs["shape"] = shape
    return path


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_npz_roundtrip_row_chunked(tmp_path: Path, csr: sp.csr_matrix, fmt: str) -> None:
    sp.save_npz(tmp_path / "a.npz", csr.asformat(fmt))
    ingest_npz(tmp_path / "a.npz", tmp_path / "s.zarr", chunk_rows=120)
    assert sp.issparse(read_matrix(tmp_path / "s.zarr")._meta)
    x = read_sparse(tmp_path / "s.zarr", chunk_rows=120)
    assert isinstance(x, da.Array) and sp.issparse(x._meta)
    assert x.chunks[0] == (120, 120, 120, 120, 20) and x.dtype == np.float32
    blocks = [x.blocks[i].compute() for i in range(x.numblocks[0])]
    assert all(isinstance(b, sp.csr_matrix) for b in blocks)
    assert (sp.vstack(blocks) != csr).nnz == 0
    info = zarr.open_group(tmp_path / "s.zarr", mode="r").attrs["veob_dask"]
    assert info["kind"] == "sparse"
    assert info["shape"] == [500, 700] and info["nnz"] == csr.nnz and info["chunk_rows"] == 120


def test_default_chunking_and_rechunked_reads(tmp_path: Path, csr: sp.csr_matrix) -> None:
    write_sparse(csr, tmp_path / "s.zarr")
    # Default: one block per thread (7k entries is far below MAX_BLOCK_NNZ), equal entries.
    with dask.config.set(scheduler="threads", num_workers=2):
        assert parallelism() == 2
        assert read_sparse(tmp_path / "s.zarr").numblocks[0] == 2
    with dask.config.set(scheduler="sync"):
        assert read_sparse(tmp_path / "s.zarr").numblocks[0] == 1
    x = read_sparse(tmp_path / "s.zarr", n_blocks=3)
    counts = [b.nnz for b in dask.compute(*x.to_delayed().ravel())]
    assert len(counts) == 3 and sum(counts) == csr.nnz
    assert max(counts) - min(counts) <= 2 * np.diff(csr.indptr).max()
    assert (x.compute() != csr).nnz == 0
    with pytest.raises(DataError, match="n_blocks"):
        read_sparse(tmp_path / "s.zarr", n_blocks=0)
    x = read_sparse(tmp_path / "s.zarr", chunk_rows=77)
    assert x.chunks[0][0] == 77
    assert (x.compute() != csr).nnz == 0


def test_coo_ingest_sums_duplicates(tmp_path: Path) -> None:
    row = np.array([0, 2, 2, 4, 0])
    col = np.array([1, 3, 3, 0, 1])
    val = np.array([1.0, 2.0, 5.0, 3.0, 0.5])
    _coo_store(tmp_path / "coo.zarr", row, col, val, [5, 4])
    ingest_coo(tmp_path / "coo.zarr", tmp_path / "s.zarr", chunk_rows=2)
    got = read_sparse(tmp_path / "s.zarr").compute().toarray()
    want = np.zeros((5, 4))
    np.add.at(want, (row, col), val)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("bad", ["row", "col", "negative"])
def test_coo_out_of_range_indices_raise_and_write_nothing(tmp_path: Path, bad: str) -> None:
    row, col = np.array([0, 1, 2]), np.array([0, 1, 2])
    if bad == "row":
        row = np.array([0, 1, 5])
    elif bad == "col":
        col = np.array([0, 9, 2])
    else:
        col = np.array([0, -1, 2])
    _coo_store(tmp_path / "coo.zarr", row, col, np.ones(3), [5, 4])
    what = "row" if bad == "row" else "column"
    with pytest.raises(DataError, match=f"{what} index"):
        ingest_coo(tmp_path / "coo.zarr", tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["coo.zarr"]


def test_npz_out_of_range_column_raises_and_keeps_existing_store(tmp_path: Path,
                                                                csr: sp.csr_matrix) -> None:
    write_sparse(csr, tmp_path / "s.zarr")
    before = read_sparse(tmp_path / "s.zarr").compute()
    indices = csr.indices.copy()
    indices[3] = 700  # == n_cols: out of range
    np.savez(tmp_path / "bad.npz", format=np.array("csr"), shape=np.array(csr.shape),
             data=csr.data, indices=indices, indptr=csr.indptr)
    with pytest.raises(DataError, match="column index 700 is outside"):
        ingest_npz(tmp_path / "bad.npz", tmp_path / "s.zarr", overwrite=True)
    assert (read_sparse(tmp_path / "s.zarr").compute() != before).nnz == 0


def test_bad_sources_raise(tmp_path: Path, csr: sp.csr_matrix) -> None:
    with pytest.raises(StoreNotFoundError):
        ingest_npz(tmp_path / "nope.npz", tmp_path / "s.zarr")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="npz"):
        ingest_npz(tmp_path / "junk.npz", tmp_path / "s.zarr")
    np.savez(tmp_path / "dense.npz", x=np.ones(3))
    with pytest.raises(DataError, match="save_npz"):
        ingest_npz(tmp_path / "dense.npz", tmp_path / "s.zarr")
    sp.save_npz(tmp_path / "ok.npz", csr)
    ingest_npz(tmp_path / "ok.npz", tmp_path / "s.zarr")
    with pytest.raises(StoreExistsError):
        ingest_npz(tmp_path / "ok.npz", tmp_path / "s.zarr")
    _coo_store(tmp_path / "noshape.zarr", [0], [0], [1.0], "five by four")
    with pytest.raises(StoreFormatError, match="shape"):
        ingest_coo(tmp_path / "noshape.zarr", tmp_path / "t.zarr")
    g = zarr.open_group(tmp_path / "nocol.zarr", mode="w")
    g.create_array("row", data=np.zeros(2, np.int64))
    with pytest.raises(StoreFormatError, match="'col'"):
        ingest_coo(tmp_path / "nocol.zarr", tmp_path / "t.zarr")
    with pytest.raises(DataError, match="NaN"):
        write_sparse(sp.csr_matrix(np.array([[np.nan, 1.0]])), tmp_path / "n.zarr")
    with pytest.raises(StoreFormatError, match="not a sparse store"):
        read_sparse(tmp_path / "nocol.zarr")


def _chunk_files(array_dir: Path) -> list[Path]:
    return sorted(p for p in (array_dir / "c").rglob("*") if p.is_file())


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_damaged_sparse_chunk_fails_the_fit(tmp_path: Path, damage: str) -> None:
    x = sp.random(300, 5000, density=0.01, random_state=0, format="csr")
    write_sparse(x, tmp_path / "s.zarr", chunk_rows=100)
    victim = _chunk_files(tmp_path / "s.zarr" / "data")[0]
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(b"\x00garbage" * 10)
    emb = SVDEmbedding(n_components=3, solver="randomized")
    with pytest.raises(StoreFormatError, match=damage if damage == "missing" else "decode"):
        emb.fit(read_matrix(tmp_path / "s.zarr"))


def test_out_of_range_index_inside_a_store_is_caught_on_read(tmp_path: Path) -> None:
    x = sp.random(50, 40, density=0.1, random_state=0, format="csr")
    write_sparse(x, tmp_path / "s.zarr", chunk_rows=20)
    arr = zarr.open_array(tmp_path / "s.zarr" / "indices", mode="r+")
    arr[5] = 40
    with pytest.raises(StoreFormatError, match="outside"):
        SVDEmbedding(n_components=2).fit(read_matrix(tmp_path / "s.zarr"))


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_damaged_dense_chunk_fails_the_fit(tmp_path: Path, rng: np.random.Generator,
                                           damage: str) -> None:
    write_array(rng.normal(size=(400, 30)).astype(np.float32), tmp_path / "d.zarr",
                chunk_rows=100)
    victim = _chunk_files(tmp_path / "d.zarr" / "X")[2]
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 40)  # zstd magic, bad frame
    for solver in ("gram", "randomized"):
        with pytest.raises(StoreFormatError, match="rows 200"):
            SVDEmbedding(n_components=3, solver=solver).fit(read_matrix(tmp_path / "d.zarr"))


def test_damaged_chunk_during_transform_leaves_no_half_written_output(
        tmp_path: Path, rng: np.random.Generator) -> None:
    x = rng.normal(size=(400, 20)).astype(np.float32)
    write_array(x, tmp_path / "d.zarr", chunk_rows=100)
    model = SVDEmbedding(n_components=4).fit(read_matrix(tmp_path / "d.zarr"))
    write_array(model.transform(read_matrix(tmp_path / "d.zarr")), tmp_path / "emb.zarr")
    before = zarr.open_group(tmp_path / "emb.zarr", mode="r")["X"][:]
    _chunk_files(tmp_path / "d.zarr" / "X")[3].unlink()
    with pytest.raises(StoreFormatError, match="missing"):
        write_array(model.transform(read_matrix(tmp_path / "d.zarr")), tmp_path / "new.zarr")
    with pytest.raises(StoreFormatError, match="missing"):
        write_array(model.transform(read_matrix(tmp_path / "d.zarr")), tmp_path / "emb.zarr",
                    overwrite=True)
    assert not (tmp_path / "new.zarr").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zarr", "emb.zarr"]
    assert np.array_equal(zarr.open_group(tmp_path / "emb.zarr", mode="r")["X"][:], before)
