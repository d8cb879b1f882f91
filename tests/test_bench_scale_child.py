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


def test_a_short_run_calls_again_up_to_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_scale, "MAX_CALLS", 5)
    out = bench_scale.child(_spec(tmp_path, repeat=2, min_time=3600.0))
    assert len(out["times"]) == 5  # far below an hour: stopped by the cap
    assert out["median_s"] == sorted(out["times"])[2]
