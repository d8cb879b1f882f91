"""Write-behind (``veob_dask.io.writebehind``): writes handed to the background thread are all
done when the block ends, their failures raised, their bytes bounded; nothing else handed."""

from __future__ import annotations

import threading
import time

import dask
import dask.array as da
import numpy as np
import pytest
import zarr

from veob_dask.io import direct as direct_mod
from veob_dask.io import read_array, write_array
from veob_dask.io import writebehind as wb


def test_writes_under_the_root_are_done_behind_and_all_done_at_exit(tmp_path):
    done: list[str] = []

    def write(i: int) -> None:
        time.sleep(0.01)
        done.append(threading.current_thread().name)

    with wb.writing_behind(str(tmp_path)):
        assert all(wb.submit(str(tmp_path / "a" / f"{i}"), lambda i=i: write(i), 10)
                   for i in range(20))
        assert not wb.submit(str(tmp_path.parent / "elsewhere"), lambda: None, 10)
    assert done == ["veob-write-behind"] * 20  # every one, by the writer thread (none joins)
    assert not wb.submit(str(tmp_path / "a" / "0"), lambda: None, 10)  # the block ended


class _Span:
    """A fake write of bytes [start, stop) that joins a span starting where it ends."""

    def __init__(self, start: int, stop: int, log: list[tuple[int, int]],
                 gate: threading.Event | None = None) -> None:
        self.start, self.stop, self.log, self.gate = start, stop, log, gate

    def __call__(self) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        self.log.append((self.start, self.stop))

    def merged(self, other):
        if isinstance(other, _Span) and other.start == self.stop and other.gate is None:
            return _Span(self.start, other.stop, self.log, self.gate)
        return None


def test_writes_waiting_together_are_joined_where_they_meet(tmp_path):
    log: list[tuple[int, int]] = []
    gate = threading.Event()
    with wb.writing_behind(str(tmp_path)):
        wb.submit(str(tmp_path / "f"), _Span(-1, -1, log, gate), 1)  # holds the writer
        time.sleep(0.05)
        # out of order, with a gap that the last one closes, and one that meets nothing
        for start, stop in ((20, 30), (0, 10), (40, 50), (10, 20), (60, 70)):
            wb.submit(str(tmp_path / "f"), _Span(start, stop, log), stop - start)
        gate.set()
    assert log[0] == (-1, -1)
    assert sorted(log[1:]) == [(0, 30), (40, 50), (60, 70)]
    assert wb._STATE["bytes"] == 0  # every joined write's bytes given back


def test_the_bytes_waiting_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(wb, "WRITE_BEHIND_BYTES", 100)
    peak = [0]

    def write() -> None:
        peak[0] = max(peak[0], wb._STATE["bytes"])
        time.sleep(0.005)

    with wb.writing_behind(str(tmp_path)):
        for i in range(30):
            wb.submit(str(tmp_path / f"{i}"), write, 40)
    assert 40 <= peak[0] <= 80  # two of 40 fit under 100, a third waits


def test_a_failed_write_is_raised_at_exit_and_stops_later_hand_overs(tmp_path):
    def fail() -> None:
        raise OSError(28, "No space left on device")

    def hand_over_after_a_failure() -> None:
        with wb.writing_behind(str(tmp_path)):
            wb.submit(str(tmp_path / "x"), fail, 1)
            time.sleep(0.1)
            wb.submit(str(tmp_path / "y"), lambda: None, 1)  # raises: the first one failed

    def fail_in_the_block() -> None:
        with wb.writing_behind(str(tmp_path)):
            wb.submit(str(tmp_path / "x"), fail, 1)
            raise KeyError("the block's")

    with pytest.raises(OSError, match="No space left"):
        hand_over_after_a_failure()
    with pytest.raises(KeyError):  # the block's own error wins over the writes'
        fail_in_the_block()


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_a_store_written_behind_is_whole_and_a_failed_write_publishes_nothing(
        tmp_path, monkeypatch, scheduler, codec):
    x = np.random.default_rng(0).normal(size=(1000, 8)).astype(np.float32)
    xd = da.from_array(x, chunks=(50, 8))
    threads: set[str] = set()
    real = direct_mod._write_chunks_at if codec == "none" else direct_mod._write_file
    name = "_write_chunks_at" if codec == "none" else "_write_file"

    def spy(*a, **k):
        threads.add(threading.current_thread().name)
        return real(*a, **k)

    monkeypatch.setattr(direct_mod, name, spy)
    with dask.config.set(scheduler=scheduler):
        write_array(xd, tmp_path / "s.zarr", chunk_rows=50, shard_above=0, codec=codec)
    assert threads == {"veob-write-behind"}
    np.testing.assert_array_equal(read_array(tmp_path / "s.zarr").compute(), x)
    assert zarr.open_group(tmp_path / "s.zarr", mode="r")["X"].shards is not None

    calls = [0]

    def fail_one(*a, **k):
        calls[0] += 1
        if calls[0] == 2:  # of 20 chunks (none), of 2 shards (zstd)
            raise OSError(5, "Input/output error")
        return real(*a, **k)

    monkeypatch.setattr(direct_mod, name, fail_one)
    with dask.config.set(scheduler=scheduler), pytest.raises(OSError, match="Input/output"):
        write_array(xd, tmp_path / "t.zarr", chunk_rows=50, shard_above=0, codec=codec)
    assert not (tmp_path / "t.zarr").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]  # no temporary left


def test_writes_of_a_distributed_worker_are_not_handed_over(tmp_path):
    # a registration belongs to the process that made it: another (a worker, a forked pool
    # process) has another pid and writes itself
    with wb.writing_behind(str(tmp_path)):
        session = wb._SESSIONS[str(tmp_path) + "/"]
        session.pid = -5
        assert not wb.submit(str(tmp_path / "x"), lambda: None, 1)
        session.pid = wb.os.getpid()


def test_chunks_in_place_waiting_together_are_written_joined_and_whole(tmp_path, monkeypatch):
    x = np.random.default_rng(1).normal(size=(4096, 64)).astype(np.float32)
    xd = da.from_array(x, chunks=(64, 64))  # 16 KiB chunks: whole pages, written O_DIRECT
    real = direct_mod._write_chunks_at
    sizes: list[int] = []

    def slow(path, parts, *a):
        sizes.append(len(parts))
        time.sleep(0.01)  # the tasks run ahead: their chunks wait together
        return real(path, parts, *a)

    monkeypatch.setattr(direct_mod, "_write_chunks_at", slow)
    with dask.config.set(scheduler="threads", num_workers=4,
                         **{"veob_dask.direct_writes": True}):
        write_array(xd, tmp_path / "s.zarr", chunk_rows=64, shard_above=0, codec="none")
    assert sum(sizes) == 64 and max(sizes) > 1  # every chunk once, some joined
    np.testing.assert_array_equal(read_array(tmp_path / "s.zarr").compute(), x)
