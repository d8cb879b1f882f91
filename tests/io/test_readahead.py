"""Read-ahead of local stores: the right storage files are hinted, once, and results don't change."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import dask
import numpy as np
import pytest
import zarr

from veob_dask.io import read_array, write_array
from veob_dask.io import readahead as ra


class Recorder(list):
    """Paths under ``root`` the background thread hinted; ``wait_for(n)`` waits (at most 10 s)
    for n. Paths elsewhere are left out: an earlier test's advisor thread may still be sending
    its hints when this test has patched in its recorder (seen in CI: two files of the test
    before it in the recorder of ``test_readahead_does_not_change_results``)."""

    def __init__(self, root: str) -> None:
        super().__init__()
        self.root = root
        self.cond = threading.Condition()

    def __call__(self, path: str) -> None:
        if not path.startswith(self.root):
            return
        with self.cond:
            self.append(path)
            self.cond.notify_all()

    def wait_for(self, n: int) -> list[str]:
        with self.cond:
            self.cond.wait_for(lambda: len(self) >= n, timeout=10)
        return list(self)


@pytest.fixture
def hinted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Recorder:
    """The fadvise call replaced by a recorder of this test's files, and a fresh advisor (no
    memo of other tests)."""
    rec = Recorder(str(tmp_path) + os.sep)
    monkeypatch.setattr(ra, "_willneed", rec)
    monkeypatch.setattr(ra, "_ADVISOR", ra._Advisor())
    return rec


def _chunk_files(store: Path, name: str = "X") -> list[str]:
    return sorted(str(p) for p in (store / name / "c").rglob("*") if p.is_file())


def test_a_full_pass_hints_every_chunk_file_once(tmp_path: Path, hinted: Recorder) -> None:
    x = np.random.default_rng(0).standard_normal((1000, 8)).astype(np.float32)
    write_array(x, tmp_path / "s.zarr", chunk_rows=100)
    files = _chunk_files(tmp_path / "s.zarr")
    assert len(files) == 10
    with dask.config.set({"scheduler": "sync", "veob_dask.readahead_bytes": 2**20}):
        y = read_array(tmp_path / "s.zarr").compute()
        read_array(tmp_path / "s.zarr").sum().compute()  # a second pass hints nothing new
    np.testing.assert_array_equal(y, x)
    got = hinted.wait_for(10)
    assert sorted(got) == files  # each file once, none outside the store


def test_off_by_default(tmp_path: Path, hinted: Recorder) -> None:
    write_array(np.ones((400, 4), np.float32), tmp_path / "s.zarr", chunk_rows=100)
    assert ra.readahead_bytes() == 0
    with dask.config.set(scheduler="sync"):
        read_array(tmp_path / "s.zarr").sum().compute()
    arr = zarr.open_group(tmp_path / "s.zarr", mode="r")["X"]
    assert ra.advise_rows(str(tmp_path / "s.zarr"), arr, 0, 100) == []
    assert list(hinted) == []


def test_distance_bounds_the_files_hinted(tmp_path: Path, hinted: Recorder) -> None:
    x = np.zeros((1000, 8), np.float32)  # 32 bytes a row, 100 rows (3,200 bytes) a file
    write_array(x, tmp_path / "s.zarr", chunk_rows=100)
    arr = zarr.open_group(tmp_path / "s.zarr", mode="r")["X"]
    with dask.config.set({"veob_dask.readahead_bytes": 6400}):  # 200 rows past the read
        paths = ra.advise_rows(str(tmp_path / "s.zarr"), arr, 0, 100)
    assert [Path(p).parts[-2] for p in paths] == ["0", "1", "2"]
    assert all(os.path.isfile(p) for p in paths)
    with dask.config.set({"veob_dask.readahead_bytes": 6400}):
        again = ra.advise_rows(str(tmp_path / "s.zarr"), arr, 100, 200)
    assert [Path(p).parts[-2] for p in again] == ["3"]  # 1 and 2 were hinted already
    with dask.config.set({"veob_dask.readahead_bytes": 0}):
        assert ra.advise_rows(str(tmp_path / "s.zarr"), arr, 500, 600) == []


def test_sharded_arrays_hint_shard_files(tmp_path: Path, hinted: Recorder) -> None:
    group = zarr.open_group(tmp_path / "sh.zarr", mode="w")
    arr = group.create_array("X", shape=(1000, 4), dtype="float32", chunks=(50, 4),
                             shards=(200, 4))
    arr[:] = 1.0
    with dask.config.set({"veob_dask.readahead_bytes": 16 * 250}):  # 250 rows past the read
        paths = ra.advise_rows(str(tmp_path / "sh.zarr"), arr, 150, 200)
    assert [Path(p).parts[-2] for p in paths] == ["0", "1", "2"]  # rows 150-449: shards 0-2
    assert all(os.path.isfile(p) for p in paths)
    assert ra.storage_rows(arr) == 200


def test_readahead_does_not_change_results(tmp_path: Path, hinted: Recorder) -> None:
    x = np.random.default_rng(1).standard_normal((3000, 6))
    write_array(x, tmp_path / "s.zarr", chunk_rows=250)
    with dask.config.set({"scheduler": "threads", "veob_dask.readahead_bytes": 0}):
        off = read_array(tmp_path / "s.zarr").sum(axis=0).compute()
    with dask.config.set({"scheduler": "threads", "veob_dask.readahead_bytes": 2**20}):
        on = read_array(tmp_path / "s.zarr").sum(axis=0).compute()
    assert len(hinted.wait_for(12)) == 12  # it was on: every chunk file hinted
    np.testing.assert_array_equal(on, off)
    np.testing.assert_allclose(on, x.sum(axis=0))
