"""``veob fit``: fit an embedding model on a Zarr dataset store and save it as a Zarr group."""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

import dask.array as da
import numpy as np
from sklearn.pipeline import Pipeline

from ..errors import InvalidParameterError, StoreFormatError
from ..io import check_output, describe_store, read_matrix, reads_direct
from ..persistence import save
from ..spectral import SpectralTransform2D
from ..svd import SVDEmbedding
from ..svd.checkpoint import fit_checkpointed, remove_checkpoint
from ._common import Stages, computing
from ._options import (
    add_json,
    add_n_components,
    add_output,
    add_overwrite,
    add_scheduler,
    add_seed,
    output_path,
    positive_int,
)

SOLVER_CHOICES = ["auto", "gram", "tsqr", "randomized", "incremental"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit", help="fit an SVD embedding on a Zarr store",
        description="Fit the orthonormal basis (top right singular vectors) of the data in a "
        "Zarr dataset store, reading it chunk by chunk, and save the model as a Zarr group. "
        "Image stores (n, h, w) can go through the 2-D spectral transform first (--spectral). "
        "The solver and the reason it was chosen are printed.")
    p.add_argument("store", help="input dataset store (from `veob ingest`)")
    add_output(p, "model store to write", metavar="MODEL", legacy_positional=True)
    add_n_components(p, 30)
    p.add_argument("--spectral", choices=["none", "dct2", "paper"], default="none",
                   help="2-D cosine transform of images before the SVD (default none)")
    p.add_argument("--solver", choices=SOLVER_CHOICES, default="auto",
                   help="gram/tsqr: exact, one pass; randomized: wide or sparse data; "
                   "incremental: one-pass merge tree with checkpoints; auto picks (default)")
    p.add_argument("--center", action="store_true", help="subtract column means (PCA)")
    p.add_argument("--n-oversamples", type=int, default=None,
                   help="extra directions (randomized) or extra working rank (incremental)")
    p.add_argument("--n-iter", type=int, default=None, help="passes of the randomized solver")
    add_seed(p)
    p.add_argument("--checkpoint", default=None,
                   help="incremental: checkpoint path (default MODEL.checkpoint)")
    p.add_argument("--checkpoint-every", type=positive_int, default=8,
                   help="incremental: chunks merged between checkpoints (default 8)")
    p.add_argument("--no-refine", action="store_true",
                   help="incremental: skip the Rayleigh–Ritz pass that makes the singular values "
                   "exact for the basis found (one pass over the data; values biased low)")
    add_scheduler(p)
    add_overwrite(p, "the model store")
    add_json(p)
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
    """Flatten samples with more than one axis unless the model starts with a spectral step.

    A spectral step needs images: an ``(n, h, w)`` store, or rows of a square number of pixels
    (the library would take any other width as 1 x d signals; on the command line that is
    almost surely a table given by mistake).
    """
    if x.ndim > 2 and not isinstance(model, Pipeline):
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
    if isinstance(model, Pipeline) and x.ndim == 2 and math.isqrt(x.shape[1]) ** 2 != x.shape[1]:
        raise InvalidParameterError(
            f"--spectral needs images: a store of shape (n, h, w) or rows of a square number "
            f"of pixels; got shape {x.shape}. Ingest the images with their shape, or fit "
            "without --spectral.")
    return x


def default_checkpoint_path(model: str) -> str:
    """``<model>.checkpoint`` beside the model store."""
    return str(model).rstrip("/\\") + ".checkpoint"


def _summary(args: argparse.Namespace, svd: Any, stages: Stages) -> dict[str, Any]:
    top = ", ".join(f"{s:.4g}" for s in svd.singular_values_[:5])
    stages.show(f"components: {svd.n_components_}, energy kept "
                f"{float(svd.explained_energy_ratio_.sum()):.4f}, top singular values {top}")
    return {"store": args.store, "model": args.out, "solver": svd.solver_,
            "solver_reason": svd.solver_reason_, "n_samples": svd.n_samples_seen_,
            "n_features": svd.n_features_in_, "n_components": svd.n_components_,
            "energy_ratio": float(svd.explained_energy_ratio_.sum()),
            "singular_values": svd.singular_values_.tolist()}


def threads_per_core(args: argparse.Namespace, stages: Stages) -> int:
    """Two threads a core for a store read with ``O_DIRECT`` (larger than memory), so that
    reads overlap compute; else one (:func:`veob_dask.runtime.scheduler_context`)."""
    try:
        direct = reads_direct(args.store)
    except StoreFormatError:  # a sparse store: read through zarr
        direct = False
    if direct:
        stages.say(f"input {args.store} is read with O_DIRECT (larger than memory): two "
                   "threads a core, so that reads overlap compute")
    return 2 if direct else 1


def run_incremental(args: argparse.Namespace, stages: Stages) -> int:
    """``--solver incremental``: a checkpointed, resumable one-pass fit (see
    :func:`veob_dask.svd.checkpoint.fit_checkpointed`); the checkpoint is removed once the
    model is written."""
    if args.spectral != "none":
        raise InvalidParameterError(
            "--solver incremental works on flat feature rows; run `veob fit --spectral` with "
            "another solver, or transform the images into a store first.")
    check_output(args.out, overwrite=args.overwrite, inputs=[args.store])
    checkpoint = args.checkpoint or default_checkpoint_path(args.out)
    check_output(checkpoint, overwrite=True, inputs=[args.store, args.out])
    x = model_input(read_matrix(args.store), None)
    source = str(args.store) if "://" in str(args.store) else os.path.abspath(args.store)
    stages.say(f"[incremental] input {args.store}")
    per_core = threads_per_core(args, stages)
    with computing(args, stages, threads_per_core=per_core), stages.stage(
            "fit", "incremental merge tree"):
        fitted = fit_checkpointed(
            x, checkpoint=checkpoint, checkpoint_every=args.checkpoint_every,
            n_components=args.n_components, n_oversamples=args.n_oversamples,
            center=bool(args.center), refine=not args.no_refine, random_state=args.seed,
            source=source, progress=lambda line: stages.say(f"[incremental] {line}"))
    est, resumed = fitted.estimator, fitted.resumed_from_chunk
    with stages.stage("save", f"saving model to {args.out}"):
        save(est, args.out, overwrite=args.overwrite, provenance=describe_store(args.store))
    remove_checkpoint(checkpoint)
    stages.show(f"solver: incremental (Brand merge tree, working rank {fitted.working_rank}, "
                f"{fitted.n_chunks - resumed} of {fitted.n_chunks} chunks merged in this run"
                + (f", resumed from chunk {resumed}" if resumed else "")
                + ("; singular values from one Rayleigh–Ritz pass" if est.refine else "") + ")")
    result = _summary(args, est, stages)
    stages.show(f"model written to {args.out} in {stages.total:.2f} s; checkpoint removed")
    stages.emit({**result, "working_rank": fitted.working_rank,
                 "n_chunks": fitted.n_chunks, "resumed_from_chunk": resumed,
                 "refined": bool(est.refine), "seconds": stages.total,
                 "stage_seconds": stages.seconds})
    return 0


def run(args: argparse.Namespace) -> int:
    output_path(args)
    stages = Stages(json=args.json)
    if args.solver == "incremental":
        return run_incremental(args, stages)
    check_output(args.out, overwrite=args.overwrite, inputs=[args.store])
    model = make_model(args)
    x = model_input(read_matrix(args.store), model)
    stages.say(f"input {args.store}: shape {x.shape}, dtype {x.dtype}, {x.numblocks[0]} chunks")
    per_core = threads_per_core(args, stages)
    with computing(args, stages, threads_per_core=per_core), stages.stage(
            "fit", "fitting (one pass per solver sweep over the store)"):
        model.fit(x)
    svd = model[-1] if isinstance(model, Pipeline) else model
    with stages.stage("save", f"saving model to {args.out}"):
        save(model, args.out, overwrite=args.overwrite, provenance=describe_store(args.store))
    stages.show(f"solver: {svd.solver_} ({svd.solver_reason_})")
    result = _summary(args, svd, stages)
    stages.show(f"model written to {args.out} in {stages.total:.2f} s")
    stages.emit({**result, "seconds": stages.total, "stage_seconds": stages.seconds})
    return 0
