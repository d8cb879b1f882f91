"""The paper's Fashion-MNIST experiment (§6.6) on the real IDX files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from veob_dask.cli import main
from veob_dask.datasets import DEFAULT_FASHION_MNIST

pytestmark = pytest.mark.skipif(
    not Path(DEFAULT_FASHION_MNIST, "train-images-idx3-ubyte.gz").exists(),
    reason="needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)")


def test_fashion_mnist_top3_hit_rate_reaches_paper(capsys):
    assert main(["demo", "--dataset", "fashion-mnist", "--scheduler", "threads", "--json",
                 "--train-eval-size", "2000", "--no-report"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert (res["n_train"], res["n_test"], res["n_components"]) == (60000, 10000, 30)
    assert res["top3_hit_rate"] >= 0.977  # the paper's figure
    assert 0.80 < res["top1_accuracy"] < res["knn3_hit_rate"] < res["top3_hit_rate"]
    assert res["train"]["top1_accuracy"] == 1.0
