"""§8 supervised learning end to end: images → Zarr → 2-D DCT → SVD → cells with a map each.

    python examples/supervised/supervised.py [--dataset fashion-mnist|digits] [--limit N]

Writes the training and test images to Zarr stores, then, reading them lazily chunk by chunk:

1. classification: ``SpectralTransform2D → SVDEmbedding(k) → CellMapClassifier`` fitted on the
   training store; the test predictions and class probabilities are written to a Zarr store in
   one pass and scored, beside one global linear map on the same features;
2. image completion: the bottom half of every image predicted from its top half
   (``CellMapRegressor``, targets through their own SVD), scored by R² beside scikit-learn's
   ``Ridge`` on the same features.

``--limit N`` keeps the first N training images (and N/6 test images), the size knob the tests use.
Fashion-MNIST comes from Debian's dataset-fashion-mnist (``--path`` for a copy elsewhere); digits
are scikit-learn's bundled 8 x 8 images.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import dask
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline

from veob_dask import SpectralTransform2D, SVDEmbedding
from veob_dask.datasets import DEFAULT_FASHION_MNIST, idx_files, load_digits_split
from veob_dask.io import read_array, write_array
from veob_dask.io.idx import read_idx
from veob_dask.supervised import CellMapClassifier, CellMapRegressor


def load(dataset: str, path: str, limit: int) -> tuple[np.ndarray, ...]:
    """Images scaled to [0, 1] and labels: (x_train, y_train, x_test, y_test)."""
    if dataset == "digits":
        x_tr, y_tr, x_te, y_te = load_digits_split()
        x_tr, x_te = x_tr / 16, x_te / 16
    else:
        f = idx_files(path)
        x_tr, y_tr = read_idx(f["train_images"]) / 255, read_idx(f["train_labels"])
        x_te, y_te = read_idx(f["test_images"]) / 255, read_idx(f["test_labels"])
    if limit:
        x_tr, y_tr, x_te, y_te = x_tr[:limit], y_tr[:limit], x_te[:limit // 6], y_te[:limit // 6]
    return (x_tr.astype(np.float32), y_tr.astype(np.int64), x_te.astype(np.float32),
            y_te.astype(np.int64))


def classify(work: Path, k: int) -> dict[str, float]:
    """Fit on the training store, write test predictions to Zarr, score them."""
    x_tr, y_tr = read_array(work / "train.zarr"), read_array(work / "train.zarr", "y").compute()
    x_te = read_array(work / "test.zarr")
    model = make_pipeline(SpectralTransform2D(), SVDEmbedding(k), CellMapClassifier())
    t0 = time.perf_counter()
    model.fit(x_tr, y_tr)
    fit_s = time.perf_counter() - t0
    # predict and predict_proba share their graph: one pass over the test store for both
    write_array(model.predict(x_te), work / "pred.zarr", "y_pred",
                extra={"proba": model.predict_proba(x_te)}, overwrite=True)
    y_te = read_array(work / "test.zarr", "y").compute()
    pred = read_array(work / "pred.zarr", "y_pred").compute()
    one = make_pipeline(SpectralTransform2D(), SVDEmbedding(k),
                        CellMapClassifier(n_cells=1, max_depth=0, n_partitions=1))
    one.fit(x_tr, y_tr)
    cells = model[-1]
    return {"accuracy": float(np.mean(pred == y_te)),
            "accuracy_one_map": float(one.score(x_te, y_te)), "fit_s": fit_s,
            "n_cells": cells.n_cells_, "shrinkage": cells.shrinkage_}


def complete(x_tr: np.ndarray, x_te: np.ndarray, k: int) -> dict[str, float]:
    """Bottom half of each image from its top half: ours against Ridge on the same features."""
    h = x_tr.shape[1] // 2
    feats = make_pipeline(SpectralTransform2D(), SVDEmbedding(k)).fit(x_tr[:, :h])
    f_tr, f_te = feats.transform(x_tr[:, :h]), feats.transform(x_te[:, :h])
    y_tr, y_te = x_tr[:, h:].reshape(len(x_tr), -1), x_te[:, h:].reshape(len(x_te), -1)
    reg = CellMapRegressor(n_components_y=min(30, y_tr.shape[1])).fit(f_tr, y_tr)
    ridge = Ridge().fit(f_tr, y_tr)
    return {"r2": float(r2_score(y_te, reg.predict(f_te))),
            "r2_ridge": float(r2_score(y_te, ridge.predict(f_te)))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=["fashion-mnist", "digits"], default="fashion-mnist")
    p.add_argument("--path", default=DEFAULT_FASHION_MNIST, help="directory of the 4 IDX files")
    p.add_argument("--limit", type=int, default=0, help="first N training images (0: all)")
    p.add_argument("-k", type=int, default=30, help="embedding size (default 30)")
    p.add_argument("--workdir", default=None, help="keep the Zarr stores here")
    args = p.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="veob-supervised-"))
    x_tr, y_tr, x_te, y_te = load(args.dataset, args.path, args.limit)
    k = min(args.k, x_tr.shape[1] * x_tr.shape[2] // 2)
    k_half = min(args.k, x_tr.shape[1] * x_tr.shape[2] // 4)  # digits: 32 pixels, a few always 0
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        write_array(x_tr, work / "train.zarr", extra={"y": y_tr}, overwrite=True)
        write_array(x_te, work / "test.zarr", extra={"y": y_te}, overwrite=True)
        res = {**classify(work, k), **complete(x_tr, x_te, k_half)}
    res["seconds"] = time.perf_counter() - t0
    print(f"{args.dataset}: {len(x_tr)} training, {len(x_te)} test images, k={k}")
    print(f"classification: accuracy {res['accuracy']:.4f} with {res['n_cells']} cells "
          f"(λ={res['shrinkage']:g}), {res['accuracy_one_map']:.4f} with one global map; "
          f"fit {res['fit_s']:.1f} s")
    print(f"image completion: R² {res['r2']:.4f}, Ridge {res['r2_ridge']:.4f}")
    print(f"done in {res['seconds']:.1f} s; stores in {work}")
    return res


if __name__ == "__main__":
    main()
