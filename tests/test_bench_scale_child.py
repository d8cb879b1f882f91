"""The scale benchmark's timed loop (``benchmarks/bench_scale.child``): how many calls a run makes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
bench_scale = pytest.importorskip("bench_scale")


def _spec(tmp_path, *, repeat, min_time):
    from veob_dask.datasets import SyntheticMatrix

    source = {"kind": "gen", "matrix": SyntheticMatrix(4_000, 8).describe()}
    return {"op": "gen", "source": source, "chunk_rows": 1_000, "scheduler": "threads",
            "workers": 1, "threads": 2, "cold": False, "readahead": None, "repeat": repeat,
            "min_time_s": min_time, "k": 4, "q": 1, "work": str(tmp_path)}


@pytest.fixture(autouse=True)
def _no_probe(monkeypatch):
    monkeypatch.setattr(bench_scale, "speed_probe", lambda: 1.0)


def test_a_run_makes_its_repeats_when_they_reach_the_minimum_time(tmp_path):
    out = bench_scale.child(_spec(tmp_path, repeat=2, min_time=0.0))
    assert len(out["times"]) == 2
    assert len(out["probes_s"]) == 2  # before the first call and after the last only


def test_a_run_of_long_calls_probes_before_each_and_scales_by_the_median(tmp_path,
                                                                        monkeypatch):
    probes = iter([0.30, 0.90, 0.32, 0.31])  # one probe off alone: the median ignores it
    monkeypatch.setattr(bench_scale, "speed_probe", lambda: next(probes))
    monkeypatch.setattr(bench_scale, "PROBE_BETWEEN_S", 0.0)  # every call counts as long
    out = bench_scale.child(_spec(tmp_path, repeat=3, min_time=0.0))
    assert len(out["times"]) == 3
    assert out["probes_s"] == [0.30, 0.90, 0.32, 0.31]  # before each call, after the last
    assert out["probe_s"] == pytest.approx(0.315)


def test_a_short_run_calls_again_up_to_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_scale, "MAX_CALLS", 5)
    out = bench_scale.child(_spec(tmp_path, repeat=2, min_time=3600.0))
    assert len(out["times"]) == 5  # far below an hour: stopped by the cap
    assert out["median_s"] == sorted(out["times"])[2]


def test_a_cold_run_probes_the_disk_before_each_call_and_after_the_last(tmp_path, monkeypatch):
    import _common

    from veob_dask.datasets import SyntheticMatrix

    store = tmp_path / "s.zarr"
    _common.write_sharded_store(SyntheticMatrix(8_000, 8), store, chunk_rows=1_000,
                                chunks_per_shard=2, codec="none")
    events, rates = [], iter([3e8, 1e9, 2e9])

    def fake_bandwidth(files, readers=2, *, direct=False):
        assert readers == 3 and direct  # read as the run reads
        events.append(("probe", tuple(files), readers))
        return {"disk_bytes_per_s": next(rates)}

    monkeypatch.setattr(bench_scale, "disk_bandwidth", fake_bandwidth)
    monkeypatch.setattr(bench_scale, "drop_page_cache", lambda: events.append("drop") or True)
    monkeypatch.setattr(bench_scale, "DISK_PROBE_BYTES", 2 * 16_000)  # one shard of 4
    source = {"kind": "store", "path": str(store)}
    args = type("A", (), {"repeat": 2, "min_time": 2.0, "k": 4, "q": 1, "work": tmp_path,
                          "codec": "none"})()
    spec = bench_scale._spec(args, "read", source, 1_000, threads=3, cold=True, direct=True,
                             probe_offset=1)
    assert spec["disk_probe"]["readers"] == 3 and spec["min_time_s"] == 0.0
    out = bench_scale.child(spec)
    assert len(out["times"]) == 2  # a cold run makes its repeats only
    # probe, drop, call; probe, drop, call; probe
    assert [e if e == "drop" else "probe" for e in events] == [
        "probe", "drop", "probe", "drop", "probe"]
    probed = [e[1] for e in events if e != "drop"]
    assert probed[0] != probed[1]  # one probe after the other reads other files
    # the part's probe read the first sample (offset 0); the run's start at its offset
    assert probed[0] != tuple(bench_scale.sample_files(store, 2 * 16_000))
    assert out["disk_probes_bps"] == [3e8, 1e9, 2e9] and out["disk_run_bps"] == 2e9  # the highest


def test_a_cold_run_is_predicted_with_its_own_disk_probes():
    import copy

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_cost_model import CAL

    cal = copy.deepcopy(CAL)
    row = {"part": "c", "op": "read", "rows": 10**8, "cols": 64, "chunk_rows": 100_000,
           "scheduler": "threads", "workers": 1, "threads_per_worker": 2, "store_bytes": 2 * 10**10,
           "cache_dropped": True, "disk_bytes_per_s": 1e9, "disk_run_bps": 5e8,
           "codec": "zstd", "median_s": 40.0, "cpu_s": 10.0}
    bench_scale._predict(row, cal)
    bench_scale._errors(row, cal)
    # the disk at half the part's bandwidth doubles the disk term
    assert row["predicted_io_s"] == pytest.approx(40.0)
    assert row["predicted_part_disk_s"] < row["predicted_s"]
    assert row["pred_err_part_disk"] == pytest.approx(row["predicted_part_disk_s"] / 40.0 - 1)
