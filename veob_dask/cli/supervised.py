"""``veob supervised fit|predict``: the §8 cell maps on Zarr dataset stores.

``veob supervised fit STORE -o MODEL --target y`` fits a :class:`CellMapClassifier` (labels) or
:class:`CellMapRegressor` (numeric targets) on array X of STORE, reading it chunk by chunk, and
saves the model as a Zarr group. ``veob supervised predict MODEL STORE -o OUT`` writes the
predictions (array ``y_pred``) and, for a classifier, the class probabilities (``proba``) of every
row of STORE to a new store, in one pass. With ``--json`` stdout holds exactly one JSON
document; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from ..errors import InvalidParameterError
from ..io import check_output, open_group, read_array, read_matrix, write_array
from ..io.store import provenance
from ..persistence import load, save
from ..spectral import SpectralTransform2D
from ..supervised import CellMapClassifier, CellMapRegressor
from ._common import Stages, computing, parse_n_components
from ._options import (
    add_json,
    add_n_components,
    add_output,
    add_overwrite,
    add_scheduler,
    add_seed,
    int_or,
    nonnegative_int,
    output_path,
    positive_int,
)
from .fit import model_input


def _float_or_balanced(text: str) -> float | str:
    """argparse type for ``--alpha``: a number >= 0 or ``"balanced"``."""
    if text == "balanced":
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a finite number >= 0 or 'balanced'; got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "supervised", help="fit or apply the §8 supervised cell maps",
        description="Supervised learning with cells and a linear map per cell (§8 of the paper). "
        "`fit` trains a classifier or regressor on a dataset store; `predict` writes its "
        "predictions for another store to Zarr.")
    ssub = p.add_subparsers(dest="supervised_command", metavar="ACTION", required=True)
    f = ssub.add_parser("fit", help="fit a model on a dataset store and save it",
                        description="Fit on array X of STORE with the target array named by "
                        "--target, and save the model to -o/--out MODEL (written to a temporary "
                        "path, then renamed). Integer, bool or string targets are classified, "
                        "float targets regressed (--task to choose).")
    f.add_argument("store", help="dataset store (Zarr group with array X and the target)")
    add_output(f, "model store to write", metavar="MODEL")
    f.add_argument("--target", default="y", help="target array in STORE (default y)")
    f.add_argument("--task", choices=["auto", "classify", "regress"], default="auto",
                   help="auto: classify integer, bool or string labels, regress floats")
    add_n_components(f, 30, what="size of the input embedding (the SVD of X)")
    f.add_argument("--raw", action="store_true",
                   help="use X as it is instead of its SVD (X already is an embedding)")
    f.add_argument("--spectral", choices=["none", "dct2", "paper"], default="none",
                   help="2-D cosine transform of images first (default none)")
    f.add_argument("--cells", type=int_or("auto"), default="auto",
                   help="first-level cells per partition (default auto)")
    f.add_argument("--depth", type=nonnegative_int, default=None,
                   help="levels of subdivision below the first cells (max_depth)")
    f.add_argument("--partitions", type=positive_int, default=None,
                   help="partitions whose predictions are averaged")
    f.add_argument("--routing", choices=["nearest", "descend", "reconstruction"], default=None,
                   help="how a row picks its cell (default nearest)")
    f.add_argument("--alpha", type=_float_or_balanced, default=None,
                   help="weight of y in the joint embedding the cells are placed in "
                   "('balanced' or a number; default 0)")
    f.add_argument("--n-components-y", type=parse_n_components, default=None,
                   help="regression: SVD size (or energy fraction) of a multi-output target")
    add_seed(f)
    add_scheduler(f)
    add_overwrite(f, "the model store")
    add_json(f)
    f.set_defaults(func=run_fit)
    q = ssub.add_parser("predict", help="predict every row of a store, writing a Zarr store",
                        description="Apply MODEL to array X of STORE and write y_pred (and proba "
                        "for a classifier) to -o/--out OUT in one pass over STORE.")
    q.add_argument("model", help="model store written by `veob supervised fit`")
    q.add_argument("store", help="input dataset store")
    add_output(q, "prediction store to write")
    q.add_argument("--target", default=None,
                   help="also score against this array of STORE (accuracy or R²)")
    add_scheduler(q)
    add_overwrite(q, "the prediction store")
    add_json(q)
    q.set_defaults(func=run_predict)


def _estimator(args: argparse.Namespace, y_dtype: np.dtype, y_ndim: int) -> Any:
    task = args.task
    if task == "auto":
        task = "classify" if y_ndim == 1 and y_dtype.kind in "biuUSO" else "regress"
    kwargs: dict[str, Any] = {"n_components": None if args.raw else args.n_components,
                              "n_cells": args.cells, "random_state": args.seed}
    for key, value in (("max_depth", args.depth), ("n_partitions", args.partitions),
                       ("routing", args.routing), ("alpha", args.alpha)):
        if value is not None:
            kwargs[key] = value
    if task == "classify":
        if args.n_components_y is not None:
            raise InvalidParameterError("--n-components-y applies to regression only; got a "
                                        "classification target. Drop it or pass --task regress.")
        est: Any = CellMapClassifier(**kwargs)
    else:
        est = CellMapRegressor(**kwargs, n_components_y=args.n_components_y)
    if args.spectral == "none":
        return est
    return Pipeline([("spectral", SpectralTransform2D(basis=args.spectral)), ("cells", est)])


def run_fit(args: argparse.Namespace) -> int:
    out = output_path(args)
    assert out is not None
    check_output(out, overwrite=args.overwrite, inputs=[args.store])
    stages = Stages(json=args.json)
    arrays = sorted(open_group(args.store).array_keys())
    if args.target not in arrays:
        raise InvalidParameterError(
            f"--target {args.target!r} is not an array of {args.store!r}; it holds {arrays}.")
    y = read_array(args.store, args.target)
    model = _estimator(args, np.dtype(y.dtype), y.ndim)
    x = model_input(read_matrix(args.store), model)
    stages.say(f"input {args.store}: shape {x.shape}, {x.numblocks[0]} chunks; target "
               f"{args.target} {y.shape} {y.dtype}")
    with computing(args, stages), stages.stage("fit", "fitting (a fixed number of passes over "
                                               "the store)"):
        model.fit(x, y)
    est = model[-1] if isinstance(model, Pipeline) else model
    with stages.stage("save", f"saving model to {out}"):
        save(model, out, overwrite=args.overwrite)
    kind = type(est).__name__
    stages.show(f"{kind}: {est.n_cells_} cells in {len(est.partition_roots_)} partitions, "
                f"shrinkage λ={est.shrinkage_:g}; model written to {out} in "
                f"{stages.total:.2f} s")
    stages.emit({"store": args.store, "model": out, "kind": kind,
                 "n_samples": int(x.shape[0]), "n_features": int(est.n_features_in_),
                 "n_cells": est.n_cells_, "n_partitions": len(est.partition_roots_),
                 "shrinkage": est.shrinkage_, "seconds": stages.total,
                 "stage_seconds": stages.seconds})
    return 0


def run_predict(args: argparse.Namespace) -> int:
    out = output_path(args)
    assert out is not None
    inputs = [args.model, args.store]
    check_output(out, overwrite=args.overwrite, inputs=inputs)
    stages = Stages(json=args.json)
    model = load(args.model)
    est = model[-1] if isinstance(model, Pipeline) else model
    if not isinstance(est, (CellMapClassifier, CellMapRegressor)):
        raise InvalidParameterError(
            f"{args.model!r} holds a {type(est).__name__}, not a model of `veob supervised "
            "fit`; use `veob transform` for embeddings.")
    x = model_input(read_matrix(args.store), model)
    pred = model.predict(x)
    extra = {"proba": model.predict_proba(x)} if isinstance(est, CellMapClassifier) else {}
    with computing(args, stages), stages.stage("predict", f"writing {out}"):
        # predict and predict_proba share their graph: one pass over STORE for both
        write_array(pred, out, "y_pred", extra=extra, overwrite=args.overwrite, inputs=inputs,
                    attrs=provenance(f"veob supervised predict {args.model} {args.store}",
                                     pred.shape, pred.dtype, model=str(args.model)))
        score = None
        if args.target is not None:
            score = _score(est, read_array(args.store, args.target).compute(),
                           read_array(out, "y_pred").compute())
    what = "accuracy" if isinstance(est, CellMapClassifier) else "r2"
    stages.show(f"wrote {out}: y_pred {pred.shape}" + (
        f", proba {extra['proba'].shape}" if extra else "") + (
        f"; {what} {score:.4f} against {args.target}" if score is not None else "") +
        f" in {stages.total:.2f} s")
    payload: dict[str, Any] = {"model": args.model, "store": args.store, "out": out,
                               "n_samples": int(pred.shape[0]), "arrays": ["y_pred", *extra],
                               "seconds": stages.total}
    if score is not None:
        payload[what] = score
    stages.emit(payload)
    return 0


def _score(est: Any, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score, r2_score

    if isinstance(est, CellMapClassifier):
        return float(accuracy_score(y_true, y_pred))
    return float(r2_score(y_true, y_pred))
