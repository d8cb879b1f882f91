"""examples/subdomains runs end to end on the real Fashion-MNIST files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from veob_dask.datasets import DEFAULT_FASHION_MNIST

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(not Path(DEFAULT_FASHION_MNIST, "t10k-images-idx3-ubyte.gz").exists(),
                    reason="needs Debian's dataset-fashion-mnist")
def test_subdomains_example(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "subdomains_example", ROOT / "examples" / "subdomains" / "subdomains.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    res = module.main(["--limit", "1000", "--workdir", str(tmp_path)])
    assert res["accuracy"] > 0.8
    assert res["footwear_only"]
    assert (tmp_path / "subdomains.zarr").exists()
