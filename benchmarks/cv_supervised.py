"""Choose the defaults of ``CellMapClassifier`` by cross-validation on stratified splits.

Data: the 60,000 Fashion-MNIST training images only (the test set is never looked at here), as
the issue's features (2-D DCT-II, uncentred 30-d SVD; ``_supervised_data.py``). Splits:
``StratifiedKFold(--folds, shuffle=True, random_state=0)``; every configuration is fitted on the
same folds and scored on the held-out fold; mean and standard deviation over the folds.

Coordinate search: starting from ``BASE`` (one partition), one parameter at a time is swept over
its values (simplest or cheapest first) with the others at their current choice. The choice is
the simplest value whose mean accuracy is within one standard error of the best mean (Breiman's
one-SE rule), so a more expensive setting has to earn its cost. The sweep over the one-partition
parameters is repeated until no choice changes (at most ``--rounds``).

The number of partitions (whose predictions are averaged) is chosen last, under a prediction
budget: a query is compared with every leaf centroid of every partition, so the total number of
leaves must stay at most ``n_train / --budget`` (8: a prediction then compares a query with an
eighth as many centroids as 5-NN compares training rows, which measured 15-18x the 5-NN
throughput; the issue asks for at least 10x). Candidates: the chosen cells and the same with
``min_samples`` doubled and quadrupled (fewer, larger leaves), each with 1, 2, 4, 8 or 16
partitions, skipping those whose leaves (one partition's times the count) exceed the budget;
the one-SE rule picks among them in order of total leaves. Then the chosen defaults are checked on
scikit-learn's digits (1,797 images, raw pixels) with ``RepeatedStratifiedKFold(5, 2)``
against one global map and a few cell counts, since ``n_cells="auto"`` must also suit small data.

    python benchmarks/cv_supervised.py                 # the run recorded in benchmarks/README.md
    python benchmarks/cv_supervised.py --limit 12000 --folds 2 --stages rows_per_cell  # quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import dask
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_result_json
from _supervised_data import fashion_features

from veob_dask.supervised import CellMapClassifier

#: The starting point: one partition, flat cells, every optional mechanism off but pruning.
BASE: dict[str, Any] = {"rows_per_cell": 200, "max_depth": 0, "min_samples": 50, "branching": 2,
                        "routing": "nearest",
                        "cells": "kmeans", "alpha": 0.0, "local_model": "linear",
                        "shrinkage": "auto", "prune": True, "n_partitions": 1}

#: Values per parameter, simplest (or cheapest) first; stages run in this order.
STAGES: dict[str, list[Any]] = {
    "rows_per_cell": [800, 400, 200, 100, 50],
    "max_depth": [0, 1, 2, 3, 4, 5],
    "min_samples": [100, 50, 25],
    "branching": [2, 4],
    "routing": ["nearest", "descend"],
    "cells": ["kmeans", "tree"],
    "alpha": [0.0, "balanced"],
    "local_model": ["constant", "linear"],
    "shrinkage": ["auto", 1.0, 10.0, 100.0],
    "prune": [True, False],
    "n_partitions": [1, 2, 4, 8, 16],
}


def make(cfg: dict[str, Any], n_train: int) -> CellMapClassifier:
    params = {k: v for k, v in cfg.items() if k != "rows_per_cell"}
    params["n_cells"] = max(1, round(n_train / cfg["rows_per_cell"]))
    return CellMapClassifier(**params)


def cv_score(cfg: dict[str, Any], x: np.ndarray, y: np.ndarray, splits: list[Any]) -> dict:
    accs, fit_s, leaves = [], [], []
    for tr, va in splits:
        t0 = time.perf_counter()
        clf = make(cfg, tr.size).fit(x[tr], y[tr])
        fit_s.append(time.perf_counter() - t0)
        accs.append(float(clf.score(x[va], y[va])))
        leaves.append(int(np.sum(clf.node_first_child_ < 0)))
    return {"accuracy": statistics.mean(accs), "sd": statistics.stdev(accs) if len(accs) > 1
            else 0.0, "folds": accs, "fit_s": statistics.median(fit_s),
            "leaves": statistics.mean(leaves)}


def one_se_choice(rows: list[dict[str, Any]], n_folds: int) -> Any:
    """The first (simplest) value within one standard error of the best mean."""
    best = max(rows, key=lambda r: r["accuracy"])
    se = best["sd"] / np.sqrt(n_folds)
    return next(r["value"] for r in rows if r["accuracy"] >= best["accuracy"] - se)


def sweep_stage(name: str, cfg: dict[str, Any], x: np.ndarray, y: np.ndarray,
                splits: list[Any], label: str) -> list[dict[str, Any]]:
    rows = []
    for value in STAGES[name]:
        trial = {**cfg, name: value}
        res = cv_score(trial, x, y, splits)
        rows.append({"method": f"{label}{name}={value}", "stage": name, "value": value,
                     "ours": True, **res, "config": dict(trial)})
        print(f"  {name}={value!s:>9}: accuracy {res['accuracy']:.4f} ± {res['sd']:.4f} "
              f"(fit {res['fit_s']:.1f} s)", flush=True)
    choice = one_se_choice(rows, len(splits))
    for r in rows:
        r["chosen"] = r["value"] == choice
    print(f"stage {name}: chose {choice!r}", flush=True)
    return rows


def budget_stage(cfg: dict[str, Any], x: np.ndarray, y: np.ndarray, splits: list[Any],
                 budget: float) -> list[dict[str, Any]]:
    """Partitions and leaf size under the leaf budget (see the module docstring)."""
    limit = min(tr.size for tr, _ in splits) / budget
    rows = []
    for factor in (1, 2, 4):
        base = {**cfg, "min_samples": cfg["min_samples"] * factor}
        one = None
        for t in STAGES["n_partitions"]:
            if one is not None and one["leaves"] * t > limit:
                print(f"  min_samples={base['min_samples']} n_partitions={t}: skipped, about "
                      f"{one['leaves'] * t:.0f} leaves > {limit:.0f}", flush=True)
                continue
            trial = {**base, "n_partitions": t}
            res = cv_score(trial, x, y, splits)
            one = res if t == 1 else one
            row = {"method": f"min_samples={base['min_samples']} n_partitions={t}",
                   "stage": "n_partitions", "value": t, "ours": True, **res,
                   "config": dict(trial), "within_budget": res["leaves"] <= limit}
            print(f"  {row['method']}: accuracy {res['accuracy']:.4f} ± {res['sd']:.4f}, "
                  f"{res['leaves']:.0f} leaves (fit {res['fit_s']:.1f} s)", flush=True)
            rows.append(row)
    ok = sorted((r for r in rows if r["within_budget"]), key=lambda r: r["leaves"])
    best = max(ok, key=lambda r: r["accuracy"])
    se = best["sd"] / np.sqrt(len(splits))
    chosen = next(r for r in ok if r["accuracy"] >= best["accuracy"] - se)
    for r in rows:
        r["chosen"] = r is chosen
    print(f"stage n_partitions: chose {chosen['method']}", flush=True)
    return rows


def coordinate_search(x: np.ndarray, y: np.ndarray, folds: int, stages: list[str], rounds: int,
                      budget: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y))
    cfg = dict(BASE)
    results: list[dict[str, Any]] = []
    single = [s for s in stages if s != "n_partitions"]
    for r in range(rounds):
        before = dict(cfg)
        for name in single:
            rows = sweep_stage(name, cfg, x, y, splits, f"round {r + 1}: ")
            cfg[name] = next(row["value"] for row in rows if row["chosen"])
            results += rows
        if cfg == before:
            break
    if "n_partitions" in stages:
        rows = budget_stage(cfg, x, y, splits, budget)
        best = next(row for row in rows if row["chosen"])
        cfg["n_partitions"], cfg["min_samples"] = best["value"], best["config"]["min_samples"]
        results += rows
    return cfg, results


def digits_check(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The chosen defaults on the digits against one global map and other cell sizes."""
    x, y = load_digits(return_X_y=True)
    splits = list(RepeatedStratifiedKFold(n_splits=5, n_repeats=2, random_state=0).split(x, y))
    rows = []
    one_map = {"rows_per_cell": 10**9, "max_depth": 0, "n_partitions": 1}
    for label, change in [("chosen defaults", {}), ("one global map", one_map),
                          ("rows_per_cell=50", {"rows_per_cell": 50}),
                          ("rows_per_cell=400", {"rows_per_cell": 400})]:
        res = cv_score({**cfg, **change}, x, y, splits)
        rows.append({"method": f"digits: {label}", "stage": "digits", "ours": True, **res})
        print(f"  digits {label}: {res['accuracy']:.4f} ± {res['sd']:.4f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("-k", type=int, default=30, help="feature dimension (30)")
    p.add_argument("--limit", type=int, default=None, help="first N training images (size knob)")
    p.add_argument("--stages", nargs="*", default=list(STAGES), choices=list(STAGES))
    p.add_argument("--rounds", type=int, default=2, help="sweeps of the one-partition stages")
    p.add_argument("--budget", type=float, default=8.0,
                   help="total leaves at most n_train / BUDGET (default 8)")
    p.add_argument("--skip-digits", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    dask.config.set(scheduler="threads")
    feats = fashion_features(args.k)
    x, y = feats["xtr"], feats["ytr"]
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    print(f"Fashion-MNIST training set {x.shape}, {args.folds} stratified folds", flush=True)
    cfg, rows = coordinate_search(x, y, args.folds, args.stages, args.rounds, args.budget)
    if not args.skip_digits:
        rows += digits_check(cfg)
    print_table([{k: r.get(k) for k in ("method", "accuracy", "sd", "leaves", "fit_s", "chosen")}
                 for r in rows])
    print(f"chosen: {cfg}")
    config = {"folds": args.folds, "rounds": args.rounds, "budget": args.budget, "k": args.k, "n_train": int(x.shape[0]), "base": BASE,
              "stages": {k: STAGES[k] for k in args.stages}, "chosen": cfg}
    out = write_result_json("cv_supervised", config, rows, args.json)
    print(f"wrote {out}")
    return {"chosen": cfg, "results": rows}


if __name__ == "__main__":
    main()
