"""Ragged sequences: construction, blocks, Zarr round trip, corrupt stores."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from veob_dask.errors import DataError, InvalidParameterError, StoreExistsError, StoreFormatError
from veob_dask.io.ragged import Ragged, read_ragged, write_ragged


def test_from_sequences_and_blocks() -> None:
    r = Ragged.from_sequences([[1, 2, 3], [], [4], [5, 6]], dtype=np.int32)
    assert len(r) == 4 and r.n_values == 6 and r.item_shape == ()
    assert r.lengths().tolist() == [3, 0, 1, 2]
    vals, off = r.block(1, 4)
    assert vals.tolist() == [4, 5, 6] and off.tolist() == [0, 0, 1, 3]
    assert [s.tolist() for s in r] == [[1, 2, 3], [], [4], [5, 6]]
    assert r[-1].tolist() == [5, 6]
    with pytest.raises(IndexError):
        r[4]
    with pytest.raises(InvalidParameterError):
        r.block(3, 2)
    assert list(r.iter_blocks(3)) == [(0, 3), (3, 4)]


def test_vector_items_and_mixed_shapes(rng: np.random.Generator) -> None:
    r = Ragged.from_sequences([rng.normal(size=(2, 3)), rng.normal(size=(0, 3))])
    assert r.item_shape == (3,) and len(r) == 2
    with pytest.raises(DataError, match="share one shape"):
        Ragged.from_sequences([np.ones((2, 3)), np.ones((1, 4))])


def test_bad_offsets() -> None:
    with pytest.raises(DataError, match="start at 0"):
        Ragged(np.arange(3), [1, 3])
    with pytest.raises(DataError, match="non-decreasing"):
        Ragged(np.arange(3), [0, 2, 1, 3])
    with pytest.raises(DataError, match="integers"):
        Ragged(np.arange(3), [0.0, 3.0])


def test_zarr_round_trip_is_lazy_and_exact(tmp_path, rng: np.random.Generator) -> None:
    seqs = [rng.normal(size=(int(rng.integers(0, 9)), 4)) for _ in range(57)]
    path = tmp_path / "r.zarr"
    write_ragged(seqs, path, chunk_values=10, chunk_offsets=7, attrs={"what": "test"})
    back = read_ragged(path)
    assert isinstance(back.values, zarr.Array)  # not loaded
    assert len(back) == 57 and back.attrs == {"what": "test"}
    for i in (0, 13, 56):
        np.testing.assert_array_equal(back[i], seqs[i])
    vals, off = back.block(10, 20)
    np.testing.assert_array_equal(vals, np.concatenate(seqs[10:20]))
    assert off[0] == 0 and off[-1] == vals.shape[0]
    loaded = read_ragged(path, load_offsets=True)
    assert isinstance(loaded.offsets, np.ndarray)
    with pytest.raises(StoreExistsError):
        write_ragged(seqs, path)
    write_ragged(seqs[:3], path, overwrite=True)
    assert len(read_ragged(path)) == 3


def test_corrupt_store(tmp_path) -> None:
    path = tmp_path / "r.zarr"
    write_ragged([[1, 2], [3]], path)
    g = zarr.open_group(path, mode="r+")
    g["offsets"][1] = 7
    with pytest.raises(StoreFormatError, match="corrupt"):
        read_ragged(path).block(0, 2)
    with pytest.raises(StoreFormatError):
        read_ragged(path, load_offsets=True)
    zarr.open_group(tmp_path / "x.zarr", mode="w")
    with pytest.raises(StoreFormatError, match="not a ragged"):
        read_ragged(tmp_path / "x.zarr")
