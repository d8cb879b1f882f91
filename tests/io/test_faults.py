"""Failures while writing: cleanup after errors and signals, full and read-only targets."""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest

from veob_dask import SVDEmbedding, save
from veob_dask.cli import main
from veob_dask.errors import StoreError
from veob_dask.io import read_array, write_array


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture
def model_and_data(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 12)).astype(np.float32)
    write_array(x, tmp_path / "data.zarr", chunk_rows=50)
    save(SVDEmbedding(4).fit(x), tmp_path / "model.zarr")
    return tmp_path / "model.zarr", tmp_path / "data.zarr"


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_corrupt_input_chunk_leaves_no_temporary(model_and_data, tmp_path: Path,
                                                 scheduler: str) -> None:
    model, data = model_and_data
    (data / "X" / "c" / "7" / "0").write_bytes(b"garbage")
    for _ in range(4):  # before, 2 of 3 failing runs left a temporary store behind
        assert main(["transform", str(model), str(data), "-o", str(tmp_path / "e.zarr"),
                     "--scheduler", scheduler]) == 2
        time.sleep(0.2)  # any straggling writer would have recreated files by now
        assert _listing(tmp_path) == ["data.zarr", "model.zarr"]


def test_errors_inside_the_threaded_write_stop_every_writer(tmp_path: Path) -> None:
    def slow_then_fail(block: np.ndarray, block_id=None) -> np.ndarray:
        if block_id[0] == 3:
            raise ZeroDivisionError("simulated")
        time.sleep(0.05)
        return block

    x = da.from_array(np.ones((400, 2)), chunks=10).map_blocks(slow_then_fail, dtype=float)
    with dask.config.set(scheduler="threads", num_workers=4), \
            pytest.raises(ZeroDivisionError):
        write_array(x, tmp_path / "o.zarr")
    time.sleep(0.3)
    assert _listing(tmp_path) == []


def test_keyboard_interrupt_cleans_up(tmp_path: Path) -> None:
    def interrupt(block: np.ndarray, block_id=None) -> np.ndarray:
        if block_id[0] == 2:
            raise KeyboardInterrupt
        return block

    x = da.from_array(np.ones((40, 2)), chunks=5).map_blocks(interrupt, dtype=float)
    with pytest.raises(KeyboardInterrupt):
        write_array(x, tmp_path / "o.zarr")
    assert _listing(tmp_path) == []


# -- signals, in a real `veob transform` ---------------------------------------------------------

def _transform(model: Path, data: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "veob_dask", "transform", str(model),
                             str(data), "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_chunks(folder: Path, name: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(glob.glob(str(folder / f".{name}.tmp-*" / "X" / "c" / "*"))) >= 5:
            return
        time.sleep(0.01)
    raise AssertionError("the transform ended before it could be signalled")


@pytest.fixture
def big(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(24_000, 16)).astype(np.float32)
    write_array(x, tmp_path / "data.zarr", chunk_rows=40)  # 600 chunks: a few seconds to write
    save(SVDEmbedding(4).fit(x[:1000]), tmp_path / "model.zarr")
    return tmp_path / "model.zarr", tmp_path / "data.zarr"


@pytest.mark.cluster
def test_sigterm_and_sigkill_during_transform(big, tmp_path: Path) -> None:
    model, data = big
    out = tmp_path / "e.zarr"
    proc = _transform(model, data, out)
    _wait_for_chunks(tmp_path, "e.zarr", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("veob transform: terminated")
    assert _listing(tmp_path) == ["data.zarr", "model.zarr"]  # nothing left behind

    proc = _transform(model, data, out)
    _wait_for_chunks(tmp_path, "e.zarr", proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    left = _listing(tmp_path)
    assert ".e.zarr.lock" in left and any(n.startswith(".e.zarr.tmp-") for n in left)

    proc = _transform(model, data, out)  # the next run removes the orphan and the stale lock
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert _listing(tmp_path) == ["data.zarr", "e.zarr", "model.zarr"]
    assert read_array(out).shape == (24_000, 4)


# -- full and read-only file systems ------------------------------------------------------------

@contextlib.contextmanager
def _tmpfs(where: Path, options: str):
    """Mount a small tmpfs at ``where`` (root only), or skip."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (CI runs as root)")
    where.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, f"veob-{uuid.uuid4().hex[:6]}",
                          str(where)], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_output_too_big_for_the_disk_fails_before_writing(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "small", "size=1m") as disk:
        with pytest.raises(StoreError, match=r"not enough free space .* needs about 4\.1 MiB"):
            write_array(np.ones((512 * 1024, 1)), disk / "big.zarr")
        assert _listing(disk) == []


def test_disk_filling_up_while_writing_is_one_line_and_cleaned(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "small", "size=512k") as disk:
        # 20 kB of data fits the size estimate, but 2,500 chunk files of 4 kB blocks do not
        x = np.arange(2_500.0).reshape(2_500, 1)
        with pytest.raises(StoreError, match="no space left on the device holding") as info:
            write_array(x, disk / "many.zarr", chunk_rows=1)
        assert "\n" not in str(info.value)
        assert _listing(disk) == []


def test_read_only_target_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        ctx = _tmpfs(tmp_path / "ro", "ro,size=1m")
    else:  # without root, permissions stop writes
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        ctx = contextlib.nullcontext(ro)
    with ctx as ro:
        with pytest.raises(StoreError, match=r"read-only file system|permission denied") as info:
            write_array(np.ones((4, 2)), ro / "out.zarr")
        assert "\n" not in str(info.value)
        assert _listing(ro) == []
        assert main(["ingest", str(tmp_path / "none.npy"), "-o", str(ro / "x.zarr")]) == 2


def _fail_on_block_2(block: np.ndarray, block_id=None) -> np.ndarray:
    if block_id[0] == 2:
        raise ZeroDivisionError("simulated failure on a worker")
    time.sleep(0.05)
    return block


@pytest.mark.cluster
def test_a_failing_write_on_a_process_cluster_leaves_nothing(process_client,
                                                             tmp_path: Path) -> None:
    from veob_dask.io.publish import compute_writes

    x = da.from_array(np.ones((200, 3)), chunks=5).map_blocks(_fail_on_block_2, dtype=float)
    with dask.config.set(scheduler=process_client):
        assert compute_writes(da.ones(3).sum()) == "distributed"
        for _ in range(2):
            with pytest.raises(ZeroDivisionError):
                write_array(x, tmp_path / "o.zarr")
            time.sleep(1.0)  # a worker task still running would have written by now
            assert _listing(tmp_path) == []
        write_array(da.ones((20, 3), chunks=5), tmp_path / "o.zarr")
    assert read_array(tmp_path / "o.zarr").sum().compute() == 60
