"""The benchmark cost model's arithmetic, on a hand-made calibration (no timing here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
cost_model = pytest.importorskip("cost_model")


def _op(per_row: float, fixed: float = 0.0) -> dict[str, float]:
    return {"per_row": per_row, "fixed": fixed}


CAL = {
    "machine": {"cpus": 2},
    "per_d": {"64": {
        "chunk_rows": 100_000,
        "ops": {"sum": _op(1e-8), "gen": _op(1e-7), "keys": _op(1e-9),
                "gram": _op(1e-7, 0.05), "randomized": _op(2e-7, 0.1),
                "incremental": _op(3e-7), "subdomain": _op(1e-5),
                "transform": _op(5e-7),
                "read": {**_op(4e-7), "compression": 0.9, "disk_bytes_per_s": 5e8}},
        "efficiency": {"threads-2": 1.8, "cluster-2x1": 1.6, "cluster-1x1": 0.95}}},
    "task_s": {"sync": 1e-5, "threads": 1e-4, "cluster-2x1": 2e-3, "cluster-1x1": 1.5e-3},
    "graph_s_per_task": 1e-4,
    "tree": {"cluster": {"by_fan_in": {"4": {"seconds": 0.04, "depth": 4}}}},
}


def _p(**kw):
    base = {"op": "gram", "rows": 10**8, "cols": 64, "chunk_rows": 100_000}
    return cost_model.predict(CAL, **{**base, **kw})["predicted_s"]


def test_prediction_adds_up():
    # (1e8 rows x (gen + gram) + 1000 tasks x scheduler overhead) / 1.8 + fixed
    expected = (1e8 * 2e-7 + 1000 * (1e-4 - 1e-5)) / 1.8 + 0.05
    assert _p() == pytest.approx(expected)


def test_prediction_properties():
    assert _p(rows=2 * 10**8) > 1.9 * _p(rows=10**8) - 0.1
    assert _p(op="randomized") > 5 * _p(op="gram") * 0.5  # q + 1 = 5 passes of a 2x kernel
    assert _p(scheduler="cluster", workers=2, threads=1) > _p()  # lower efficiency, more overhead
    cold = _p(op="read", source="read", cold_bytes=10**12)  # a terabyte at 0.5 GB/s
    assert cold >= 10**12 / 5e8


def test_extrapolation_names_the_binding_term():
    rows = cost_model.extrapolate(CAL, rows=10**10, cols=64, workers=[10, 1000], threads=2,
                                  objstore_mbps=[10, 10_000], aggregate_gbps=1e6)
    by = {(r["workers"], r["objstore_mbps"]): r for r in rows}
    assert by[(10, 10)]["binding"] == "object store"
    assert by[(10, 10_000)]["binding"] == "workers (compute)"
    assert by[(1000, 10_000)]["binding"] == "scheduler"  # 1e5 tasks x 2 ms beat 1000 workers
    assert all(r["tasks"] <= 100_000 for r in rows)
    assert by[(1000, 10_000)]["predicted_s"] < by[(10, 10_000)]["predicted_s"]
