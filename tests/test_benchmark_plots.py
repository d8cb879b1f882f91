"""The benchmark scripts label their PNGs from the run's configuration, not fixed text."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")
BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def _last_figure():
    import matplotlib.pyplot as plt

    fig = plt.gcf()
    plt.close(fig)
    return fig


def test_out_of_core_plot_labels_follow_the_config(tmp_path: Path) -> None:
    ooc = _script("bench_out_of_core")
    config = {"k": 12, "repeat": 2, "cols": 100, "dtype": "float32", "chunk_rows": 7000,
              "cluster": "LocalCluster n_workers=3", "cpus": 4,
              "load_average_at_end": (0.5, 0.4, 0.3)}
    ooc.plot([10, 20], [1.0, 2.0], [100.0, 120.0], 1.5, config, tmp_path / "o.png")
    ax = _last_figure().axes[0]
    assert ax.get_xlabel() == "rows (100 float32 features, chunks of 7,000 rows)"
    assert "LocalCluster n_workers=3" in ax.get_title() and "4 CPUs" in ax.get_title()
    assert "256" not in ax.get_xlabel() + ax.get_title()
    assert (tmp_path / "o.png").stat().st_size > 0


def test_search_plot_labels_follow_the_config(tmp_path: Path) -> None:
    search = _script("bench_search")
    rows = [{"method": "veob cells n_probe=2", "recall_at_10": 0.9, "qps": 900.0},
            {"method": "faiss IVFFlat nprobe=2", "recall_at_10": 0.92, "qps": 1200.0}]
    config = {"k": 5, "n": 5000, "d": 16, "clusters": 7, "n_queries": 300, "threads": 1,
              "cpus": 2, "load_average_at_end": (1.0, 1.0, 1.0)}
    search.plot(rows, config, tmp_path / "s.png")
    ax = _last_figure().axes[0]
    assert ax.get_xlabel().startswith("recall@5")
    assert "5,000 x 16 float32" in ax.get_title() and "1 threads on 2 CPUs" in ax.get_title()
