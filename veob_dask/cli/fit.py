"""``veob fit``: fit an embedding model on a Zarr dataset store and save it as a Zarr group."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import dask.array as da
import numpy as np
from sklearn.pipeline import Pipeline

from ..errors import InvalidParameterError
from ..io import check_output, read_matrix
from ..persistence import save
from ..runtime import scheduler_context
from ..spectral import SpectralTransform2D
from ..svd import SVDEmbedding
from ..svd.checkpoint import fit_checkpointed, remove_checkpoint
from ._common import Stages, emit_json, parse_n_components
from ._options import add_scheduler

SOLVER_CHOICES = ["auto", "gram", "tsqr", "randomized", "incremental"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit", help="fit an SVD embedding on a Zarr store",
        description="Fit the orthonormal basis (top right singular vectors) of the data in a "
        "Zarr dataset store, reading it chunk by chunk, and save the model as a Zarr group. "
        "Image stores (n, h, w) can go through the 2-D spectral transform first (--spectral). "
        "The solver and the reason it was chosen are printed.")
    p.add_argument("store", help="input dataset store (from `veob ingest`)")
    p.add_argument("model", help="output model store")
    p.add_argument("-k", "--n-components", type=parse_n_components, default=30,
                   help="components to keep (int), or the fraction of energy to keep (0-1]; "
                   "default 30")
    p.add_argument("--spectral", choices=["none", "dct2", "paper"], default="none",
                   help="2-D cosine transform of images before the SVD (default none)")
    p.add_argument("--solver", choices=SOLVER_CHOICES, default="auto",
                   help="gram/tsqr: exact, one pass; randomized: wide or sparse data; "
                   "incremental: one-pass merge tree with checkpoints; auto picks (default)")
    p.add_argument("--center", action="store_true", help="subtract column means (PCA)")
    p.add_argument("--n-oversamples", type=int, default=None,
                   help="extra directions (randomized) or extra working rank (incremental)")
    p.add_argument("--n-iter", type=int, default=None, help="passes of the randomized solver")
    p.add_argument("--seed", type=int, default=0, help="random seed (randomized solver)")
    p.add_argument("--checkpoint", default=None,
                   help="incremental: checkpoint path (default MODEL.checkpoint)")
    p.add_argument("--checkpoint-every", type=int, default=8,
                   help="incremental: chunks merged between checkpoints (default 8)")
    p.add_argument("--no-refine", action="store_true",
                   help="incremental: skip the Rayleigh–Ritz pass that makes the singular values "
                   "exact for the basis found (one pass over the data; values biased low)")
    add_scheduler(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing model store")
    p.add_argument("--json", action="store_true", help="end with one JSON summary line")
    p.set_defaults(func=run)


def make_model(args: argparse.Namespace) -> Any:
    """The estimator (or spectral + SVD pipeline) that the options describe."""
    kwargs: dict[str, Any] = {"n_components": args.n_components, "solver": args.solver,
                              "center": args.center, "random_state": args.seed}
    if args.n_oversamples is not None:
        kwargs["n_oversamples"] = args.n_oversamples
    if args.n_iter is not None:
        kwargs["n_iter"] = args.n_iter
    svd = SVDEmbedding(**kwargs)
    if args.spectral == "none":
        return svd
    return Pipeline([("spectral", SpectralTransform2D(basis=args.spectral)), ("svd", svd)])


def model_input(x: da.Array, model: Any) -> da.Array:
    """Flatten samples with more than one axis unless the model starts with a spectral step."""
    if x.ndim > 2 and not isinstance(model, Pipeline):
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
    return x


def default_checkpoint_path(model: str) -> str:
    """``<model>.checkpoint`` beside the model store."""
    return str(model).rstrip("/\\") + ".checkpoint"


def _log(text: str) -> None:
    print(f"[incremental] {text}", file=sys.stderr, flush=True)


def run_incremental(args: argparse.Namespace) -> int:
    """``--solver incremental``: a checkpointed, resumable one-pass fit (see
    :func:`veob_dask.svd.checkpoint.fit_checkpointed`); the checkpoint is removed once the
    model is written."""
    t0 = time.perf_counter()
    if args.spectral != "none":
        raise InvalidParameterError(
            "--solver incremental works on flat feature rows; run `veob fit --spectral` with "
            "another solver, or transform the images into a store first.")
    check_output(args.model, overwrite=args.overwrite, inputs=[args.store])
    checkpoint = args.checkpoint or default_checkpoint_path(args.model)
    check_output(checkpoint, overwrite=True, inputs=[args.store, args.model])
    x = model_input(read_matrix(args.store), None)
    source = str(args.store) if "://" in str(args.store) else os.path.abspath(args.store)
    _log(f"input {args.store}")
    with scheduler_context(args.scheduler):
        fitted = fit_checkpointed(
            x, checkpoint=checkpoint, checkpoint_every=int(args.checkpoint_every),
            n_components=args.n_components, n_oversamples=args.n_oversamples,
            center=bool(args.center), refine=not args.no_refine,
            random_state=int(args.seed or 0), source=source, progress=_log)
    est, r, resumed = fitted.estimator, fitted.working_rank, fitted.resumed_from_chunk
    save(est, args.model, overwrite=args.overwrite)
    remove_checkpoint(checkpoint)
    seconds = round(time.perf_counter() - t0, 3)
    top = ", ".join(f"{s:.4g}" for s in est.singular_values_[:5])
    print(f"solver: incremental (Brand merge tree, working rank {r}, "
          f"{fitted.n_chunks - resumed} of {fitted.n_chunks} chunks merged in this run"
          + (f", resumed from chunk {resumed}" if resumed else "")
          + ("; singular values from one Rayleigh–Ritz pass" if est.refine else "") + ")")
    print(f"components: {est.n_components_}, energy kept "
          f"{float(est.explained_energy_ratio_.sum()):.4f}, top singular values {top}")
    print(f"model written to {args.model} in {seconds:.2f} s; checkpoint removed")
    if args.json:
        emit_json({
            "store": str(args.store), "model": str(args.model), "solver": "incremental",
            "n_samples": est.n_samples_seen_, "n_features": est.n_features_in_,
            "n_components": est.n_components_, "working_rank": r,
            "n_chunks": fitted.n_chunks, "resumed_from_chunk": resumed,
            "refined": bool(est.refine), "energy_ratio": float(est.explained_energy_ratio_.sum()),
            "singular_values": est.singular_values_.tolist(), "seconds": seconds})
    return 0


def run(args: argparse.Namespace) -> int:
    if args.solver == "incremental":
        return run_incremental(args)
    check_output(args.model, overwrite=args.overwrite, inputs=[args.store])
    stages = Stages()
    model = make_model(args)
    x = model_input(read_matrix(args.store), model)
    stages.say(f"input {args.store}: shape {x.shape}, dtype {x.dtype}, {x.numblocks[0]} chunks")
    with scheduler_context(args.scheduler), stages.stage("fit", "fitting (one pass per solver "
                                                         "sweep over the store)"):
        model.fit(x)
    svd = model[-1] if isinstance(model, Pipeline) else model
    with stages.stage("save", f"saving model to {args.model}"):
        save(model, args.model, overwrite=args.overwrite)
    top = ", ".join(f"{s:.4g}" for s in svd.singular_values_[:5])
    print(f"solver: {svd.solver_} ({svd.solver_reason_})")
    print(f"components: {svd.n_components_}, energy kept {svd.explained_energy_ratio_.sum():.4f}, "
          f"top singular values {top}")
    print(f"model written to {args.model} in {stages.total:.2f} s")
    if args.json:
        emit_json({"store": args.store, "model": args.model, "solver": svd.solver_,
                   "solver_reason": svd.solver_reason_, "n_samples": svd.n_samples_seen_,
                   "n_features": svd.n_features_in_, "n_components": svd.n_components_,
                   "energy_ratio": float(svd.explained_energy_ratio_.sum()),
                   "singular_values": svd.singular_values_.tolist(),
                   "seconds": stages.total, "stage_seconds": stages.seconds})
    return 0
