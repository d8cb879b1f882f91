"""§8 supervised cell maps against scikit-learn, dask-ml and a subspace classifier, one run.

Classification (Fashion-MNIST, 60,000 training and 10,000 test images): every method gets the
same features, the issue's 2-D DCT-II + uncentred ``k``-d SVD fitted on the training images, for
each ``k`` of ``--components`` (30, 50, 100). Peers: scikit-learn ``LogisticRegression`` and
``LinearSVC`` (both after ``StandardScaler``), ``KNeighborsClassifier`` (k = 1, 5; brute force),
dask-ml's ``LogisticRegression`` on dask arrays (binary only, so one-vs-rest over the 10 classes,
standardised, lbfgs), and a plain numpy subspace classifier: one ``k``-d uncentred SVD basis per
class of the 784 DCT coefficients (on the ``k``-d features a ``k``-d basis would span everything),
predicting the class whose basis keeps most of a test image's energy. Ours: ``CellMapClassifier``
with its defaults, with one partition, as one global map, and (at the first ``k``, one partition
each) the paper's variants: k-means cells and §5 tree cells placed in the joint embedding
(``alpha="balanced"``), the §8.2 reconstruction routing, routing by descending the tree, per-cell
class frequencies. Reported: accuracy, fit seconds and prediction seconds for
the 10,000 test images (medians of ``--repeat``; dask-ml once), ``qps`` (test images per second of
prediction) and ``qps_vs_knn5``.

Image completion: the bottom half (14 x 28 = 392 pixels) of each image from its top half; the
features are the top half's 2-D DCT + ``k``-d SVD (``k`` = the first of ``--components``). Ours
(``CellMapRegressor``, ``P_y`` = the SVD of the targets to ``--n-components-y``) against
``Ridge`` and ``KNeighborsRegressor(5)``: R² (scikit-learn's uniform average over the 392
pixels, and the variance-weighted one), fit and prediction seconds.

Sweep: test accuracy of ``CellMapClassifier`` (one partition) over first-level cell counts and
depths, mean and standard deviation over ``StratifiedKFold(--sweep-folds)`` splits of the training
set, with the default regularisation and without it (λ = 0.001, no pruning).

    python benchmarks/bench_supervised.py                    # the run in benchmarks/README.md
    python benchmarks/bench_supervised.py --limit 6000 --components 30 --repeat 1 --skip-dask-ml
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.linalg
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, timeit_median, write_result_json
from _supervised_data import completion_features, dct_images, fashion_features, load_images

from veob_dask.supervised import CellMapClassifier, CellMapRegressor


class SubspaceClassifier:
    """One ``k``-d uncentred SVD basis per class; predict the class keeping most energy."""

    def __init__(self, k: int) -> None:
        self.k = k

    def fit(self, x: np.ndarray, y: np.ndarray) -> SubspaceClassifier:
        self.classes_ = np.unique(y)
        bases = []
        d = x.shape[1]
        for c in self.classes_:
            xc = x[y == c].astype(np.float64)
            # top-k right singular vectors of xc: the top eigenvectors of its Gram matrix
            _, vecs = scipy.linalg.eigh(xc.T @ xc, subset_by_index=[d - self.k, d - 1])
            bases.append(vecs[:, ::-1].T)
        self.bases_ = np.concatenate(bases)  # (classes * k, d)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        proj = x.astype(np.float64) @ self.bases_.T
        energy = (proj**2).reshape(x.shape[0], self.classes_.size, self.k).sum(axis=2)
        return self.classes_[np.argmax(energy, axis=1)]


class DaskMLOneVsRest:
    """dask-ml's (binary) LogisticRegression, one per class, on standardised dask arrays."""

    def fit(self, x: da.Array, y: np.ndarray) -> DaskMLOneVsRest:
        from dask_ml.linear_model import LogisticRegression as DaskLR

        self.mean_, self.std_ = dask.compute(x.mean(axis=0), x.std(axis=0))
        xs = (x - self.mean_) / self.std_
        self.classes_ = np.unique(y)
        yd = da.from_array(y, chunks=(x.chunks[0],))
        self.models_ = [DaskLR(solver="lbfgs").fit(xs, (yd == c).astype(float))
                        for c in self.classes_]
        return self

    def predict(self, x: da.Array) -> np.ndarray:
        xs = (x - self.mean_) / self.std_
        scores = da.stack([m.decision_function(xs) for m in self.models_], axis=1)
        return self.classes_[np.argmax(scores.compute(), axis=1)]


def measure(name: str, make: Any, xtr: Any, ytr: np.ndarray, xte: Any, yte: np.ndarray,
            repeat: int, ours: bool, predict_repeat: int | None = None,
            **extra: Any) -> dict[str, Any]:
    """Fit ``repeat`` and predict ``predict_repeat`` (default ``repeat``) times; median
    seconds, accuracy of the last run."""
    fit_s, fit_times, model, peak = timeit_median(lambda: make().fit(xtr, ytr), repeat)
    pred_s, _, pred, _ = timeit_median(lambda: model.predict(xte), predict_repeat or repeat)
    acc = float(np.mean(np.asarray(pred) == yte))
    print(f"  {name:58s} accuracy {acc:.4f}  fit {fit_s:7.2f} s  predict {pred_s:6.3f} s",
          flush=True)
    return {"method": name, "ours": ours, "accuracy": acc, "median_s": fit_s,
            "fit_s": fit_s, "fit_times": fit_times, "predict_s": pred_s,
            "qps": yte.size / pred_s, "peak_mb": peak, **extra}


def classification(k: int, images: dict[str, np.ndarray], dct: tuple[np.ndarray, np.ndarray],
                   args: argparse.Namespace, first: bool) -> list[dict[str, Any]]:
    f = fashion_features(k, images)
    n = args.limit or f["xtr"].shape[0]
    xtr, ytr, xte, yte = f["xtr"][:n], f["ytr"][:n], f["xte"], f["yte"]
    print(f"classification, k={k}: features {xtr.shape} in {f['seconds']:.1f} s", flush=True)
    r, rows = args.repeat, []
    cfg: dict[str, Any] = {"components": k, "predict_repeat": args.predict_repeat or r}
    ours: list[tuple[str, Any]] = [
        ("veob CellMapClassifier (defaults)", CellMapClassifier),
        ("veob CellMapClassifier, one partition", lambda: CellMapClassifier(n_partitions=1)),
        ("veob CellMapClassifier, one global map",
         lambda: CellMapClassifier(n_cells=1, max_depth=0, n_partitions=1))]
    if first:
        ours += [
            ("veob CellMap, one partition, cells in P_z (alpha balanced)",
             lambda: CellMapClassifier(n_partitions=1, alpha="balanced")),
            ("veob CellMap, one partition, §5 tree cells in P_z (alpha balanced)",
             lambda: CellMapClassifier(n_partitions=1, alpha="balanced", cells="tree")),
            ("veob CellMap, one partition, descend routing",
             lambda: CellMapClassifier(n_partitions=1, routing="descend")),
            ("veob CellMap, one partition, §8.2 reconstruction routing",
             lambda: CellMapClassifier(n_partitions=1, alpha="balanced",
                                       routing="reconstruction", n_components_joint=k)),
            ("veob CellMap, one partition, per-cell class frequencies",
             lambda: CellMapClassifier(n_partitions=1, local_model="constant"))]
    for name, make in ours:
        rows.append(measure(name, make, xtr, ytr, xte, yte, r, True, **cfg))
    peers: list[tuple[str, Any]] = [
        ("sklearn LogisticRegression (standardised)",
         lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))),
        ("sklearn LinearSVC (standardised)",
         lambda: make_pipeline(StandardScaler(), LinearSVC())),
        ("sklearn KNeighborsClassifier k=1", lambda: KNeighborsClassifier(1)),
        ("sklearn KNeighborsClassifier k=5", lambda: KNeighborsClassifier(5))]
    for name, make in peers:
        rows.append(measure(name, make, xtr, ytr, xte, yte, r, False, **cfg))
    rows.append(measure(f"numpy subspace classifier ({k}-d basis per class, 784 DCT)",
                        lambda: SubspaceClassifier(k), dct[0][:n], ytr, dct[1], yte, r, False,
                        **cfg))
    if not args.skip_dask_ml:
        xd, xdt = (da.from_array(a.astype(np.float64), chunks=(10000, -1)) for a in (xtr, xte))
        rows.append(measure("dask-ml LogisticRegression (one-vs-rest, dask arrays; once)",
                            DaskMLOneVsRest, xd, ytr, xdt, yte, 1, False,
                            **{**cfg, "predict_repeat": 1}))
    knn5 = next(row["qps"] for row in rows if row["method"].endswith("k=5"))
    for row in rows:
        row["qps_vs_knn5"] = row["qps"] / knn5
    return rows


def completion(k: int, images: dict[str, np.ndarray], args: argparse.Namespace
               ) -> list[dict[str, Any]]:
    f = completion_features(k, images)
    n = args.limit or f["xtr"].shape[0]
    xtr, ytr, xte, yte = f["xtr"][:n], f["ytr"][:n], f["xte"], f["yte"]
    print(f"image completion, k={k}: features {xtr.shape}, targets {ytr.shape}", flush=True)
    methods: list[tuple[str, Any, bool]] = [
        (f"veob CellMapRegressor (n_components_y={args.n_components_y})",
         lambda: CellMapRegressor(n_components_y=args.n_components_y), True),
        (f"veob CellMapRegressor, one global map (n_components_y={args.n_components_y})",
         lambda: CellMapRegressor(n_cells=1, max_depth=0, n_partitions=1,
                                  n_components_y=args.n_components_y), True),
        ("sklearn Ridge", Ridge, False),
        ("sklearn KNeighborsRegressor k=5", lambda: KNeighborsRegressor(5), False)]
    rows = []
    for name, make, ours in methods:
        fit_s, _, model, peak = timeit_median(lambda make=make: make().fit(xtr, ytr),
                                              args.repeat)
        pred_s, _, pred, _ = timeit_median(lambda model=model: model.predict(xte), args.repeat)
        r2 = float(r2_score(yte, pred))
        r2w = float(r2_score(yte, pred, multioutput="variance_weighted"))
        print(f"  {name:58s} R² {r2:.4f} (variance-weighted {r2w:.4f})  fit {fit_s:6.2f} s  "
              f"predict {pred_s:6.3f} s", flush=True)
        rows.append({"method": name, "ours": ours, "task": "completion", "components": k,
                     "r2": r2, "r2_variance_weighted": r2w, "median_s": fit_s, "fit_s": fit_s,
                     "predict_s": pred_s, "qps": yte.shape[0] / pred_s, "peak_mb": peak})
    return rows


def sweep(images: dict[str, np.ndarray], args: argparse.Namespace) -> list[dict[str, Any]]:
    f = fashion_features(30, images)
    n = args.limit or f["xtr"].shape[0]
    x, y = f["xtr"][:n], f["ytr"][:n]
    splits = list(StratifiedKFold(args.sweep_folds, shuffle=True, random_state=1).split(x, y))
    print(f"sweep: {args.sweep_folds} stratified folds of {n} training images", flush=True)
    rows = []
    settings = [(c, 0) for c in args.sweep_cells] + [(c, d) for c in (1, 16, 64)
                                                    for d in (2, 4)]
    for reg in ("default", "none"):
        for n_cells, depth in settings:
            extra = {} if reg == "default" else {"shrinkage": 1e-3, "prune": False}
            accs, cells = [], []
            for tr, va in splits:
                clf = CellMapClassifier(n_cells=n_cells, max_depth=depth, n_partitions=1,
                                        **extra).fit(x[tr], y[tr])
                accs.append(float(clf.score(x[va], y[va])))
                cells.append(clf.n_cells_)
            row = {"method": f"sweep n_cells={n_cells} max_depth={depth} "
                             f"regularisation={reg}", "ours": True, "task": "sweep",
                   "n_cells": n_cells, "max_depth": depth, "regularisation": reg,
                   "accuracy": statistics.mean(accs), "accuracy_sd": statistics.stdev(accs),
                   "cells_used": statistics.mean(cells), "folds": accs}
            print(f"  {row['method']:58s} {row['accuracy']:.4f} ± {row['accuracy_sd']:.4f} "
                  f"({row['cells_used']:.0f} cells)", flush=True)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--components", type=int, nargs="+", default=[30, 50, 100])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--predict-repeat", type=int, default=None,
                   help="classification: predictions timed this many times (default --repeat)")
    p.add_argument("--limit", type=int, default=None, help="first N training images")
    p.add_argument("--n-components-y", type=int, default=30,
                   help="SVD size of the completion targets (ours)")
    p.add_argument("--sweep-folds", type=int, default=3)
    p.add_argument("--sweep-cells", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024])
    p.add_argument("--skip-dask-ml", action="store_true")
    p.add_argument("--skip-classification", action="store_true",
                   help="only the completion and the sweep (k = the first of --components)")
    p.add_argument("--skip-completion", action="store_true")
    p.add_argument("--skip-sweep", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # dask-ml's config keys
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # LinearSVC at 1000 iters
    dask.config.set(scheduler="threads")
    t0 = time.perf_counter()
    load_start = os.getloadavg()
    images = load_images()
    dct = (dct_images(images["xtr"][: args.limit]), dct_images(images["xte"]))
    rows: list[dict[str, Any]] = []
    for i, k in enumerate([] if args.skip_classification else args.components):
        rows += classification(k, images, dct, args, first=i == 0)
    if not args.skip_completion:
        rows += completion(args.components[0], images, args)
    if not args.skip_sweep:
        rows += sweep(images, args)
    cols = ["method", "components", "accuracy", "r2", "fit_s", "predict_s", "qps",
            "qps_vs_knn5"]
    print_table([r for r in rows if r.get("task") != "sweep"], cols)
    config = {"components": args.components, "repeat": args.repeat,
              "predict_repeat": args.predict_repeat, "limit": args.limit,
              "n_components_y": args.n_components_y, "sweep_folds": args.sweep_folds,
              "n_train": int(args.limit or images["xtr"].shape[0]), "n_test": 10000,
              "total_s": time.perf_counter() - t0,
              "loadavg_start": load_start, "loadavg_end": os.getloadavg()}
    out = write_result_json("bench_supervised", config, rows, args.json)
    print(f"wrote {out} in {config['total_s']:.0f} s; load average (1, 5, 15 min) "
          f"{load_start} at the start, {config['loadavg_end']} at the end")
    return {"config": config, "results": rows}


if __name__ == "__main__":
    main()
