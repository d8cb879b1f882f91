"""examples/supervised runs end to end (on scikit-learn's digits, at a tiny size)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_supervised_example(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "supervised_example", ROOT / "examples" / "supervised" / "supervised.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    res = module.main(["--dataset", "digits", "--limit", "300", "--workdir", str(tmp_path)])
    assert res["accuracy"] > 0.8
    assert res["r2"] > 0.0
    assert (tmp_path / "pred.zarr").exists()
