"""``veob fit --solver incremental``: a checkpointed, resumable one-pass fit over a Zarr store."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

from .._validation import check_dask_2d, parse_n_components
from ..errors import InvalidParameterError
from ..io import check_output, read_matrix
from ..io.publish import remove_store
from ..io.serialize import save_estimator
from ..runtime import scheduler_context
from .checkpoint import fit_segments
from .incremental_embedding import IncrementalSVDEmbedding
from .schema import SPECS

__all__ = ["default_checkpoint_path", "run_incremental_fit"]


def default_checkpoint_path(model: str) -> str:
    """``<model>.checkpoint`` beside the model store."""
    return str(model).rstrip("/\\") + ".checkpoint"


def _log(text: str) -> None:
    print(f"[incremental] {text}", file=sys.stderr, flush=True)


def run_incremental_fit(args: argparse.Namespace) -> int:
    """Fit an :class:`IncrementalSVDEmbedding` on ``args.store`` and save it to ``args.model``.

    Reads ``args.store``, ``model``, ``n_components``, ``n_oversamples``, ``center``,
    ``scheduler``, ``overwrite``, ``checkpoint``, ``checkpoint_every``, ``json`` (and ``seed``
    and ``no_refine`` when present). Every ``checkpoint_every`` chunks the running state is
    written atomically to the checkpoint; started again after a crash with the same command,
    the fit resumes from it. Then, unless ``no_refine``, one more pass computes the singular
    values of the data on the basis found (Rayleigh–Ritz). The checkpoint is removed once the
    model is written. Returns the exit code.
    """
    t0 = time.perf_counter()
    if getattr(args, "spectral", "none") not in (None, "none"):
        raise InvalidParameterError(
            "--solver incremental works on flat feature rows; run `veob fit --spectral` with "
            "another solver, or transform the images into a store first.")
    check_output(args.model, overwrite=args.overwrite, inputs=[args.store])
    checkpoint = args.checkpoint or default_checkpoint_path(args.model)
    check_output(checkpoint, overwrite=True, inputs=[args.store, args.model])
    every = int(args.checkpoint_every)
    x = read_matrix(args.store)
    if x.ndim > 2:
        x = x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
    x = check_dask_2d(x)
    n, d = x.shape
    n_comp = parse_n_components(args.n_components, d)
    if isinstance(n_comp, int) and n_comp > min(n, d):
        raise InvalidParameterError(
            f"n_components={n_comp} exceeds min(n_samples={n}, n_features={d}); ask for fewer.")
    seed = int(getattr(args, "seed", 0) or 0)
    est = IncrementalSVDEmbedding(n_components=n_comp, n_oversamples=args.n_oversamples,
                                  center=bool(args.center), random_state=seed,
                                  refine=not getattr(args, "no_refine", False))
    n_comp, r = est._rank(d)  # checks every parameter (one line each) before any work
    fingerprint: dict[str, Any] = {
        "store": os.path.abspath(args.store) if "://" not in str(args.store) else str(args.store),
        "shape": [int(n), int(d)], "dtype": str(x.dtype),
        "row_chunks": [int(c) for c in x.chunks[0]] if x.numblocks[0] <= 4096
        else [int(x.numblocks[0]), int(x.chunks[0][0])],
        "n_components": n_comp, "working_rank": r, "center": bool(args.center),
        "decay": est.decay, "split_every": est.split_every, "chunk_solver": est.chunk_solver,
        "n_iter": est.n_iter, "seed": seed, "checkpoint_every": every,
    }
    _log(f"input {args.store}: {n} x {d} {x.dtype}, {x.numblocks[0]} row chunks; working rank "
         f"{r}, checkpoint every {every} chunks to {checkpoint}")
    with scheduler_context(args.scheduler):
        summ, resumed = fit_segments(
            x, max_rank=r, every=every, checkpoint=checkpoint, fingerprint=fingerprint,
            center=bool(args.center), decay=est.decay, split_every=est.split_every,
            chunk_solver=est.chunk_solver, n_iter=est.n_iter, seed=seed,
            reorth_every=est.reorth_every, log=_log)
        if est.refine:
            _log("Rayleigh–Ritz pass: the singular values of the data on the basis found")
        est._finish(x, summ, n_comp)
    save_estimator(est, args.model, SPECS, overwrite=args.overwrite, inputs=[args.store])
    remove_store(checkpoint, kind="checkpoint")
    seconds = round(time.perf_counter() - t0, 3)
    top = ", ".join(f"{s:.4g}" for s in est.singular_values_[:5])
    print(f"solver: incremental (Brand merge tree, working rank {r}, "
          f"{x.numblocks[0] - resumed} of {x.numblocks[0]} chunks merged in this run"
          + (f", resumed from chunk {resumed}" if resumed else "")
          + ("; singular values from one Rayleigh–Ritz pass" if est.refine else "") + ")")
    print(f"components: {est.n_components_}, energy kept "
          f"{float(est.explained_energy_ratio_.sum()):.4f}, top singular values {top}")
    print(f"model written to {args.model} in {seconds:.2f} s; checkpoint removed")
    if args.json:
        print(json.dumps({
            "store": str(args.store), "model": str(args.model), "solver": "incremental",
            "n_samples": est.n_samples_seen_, "n_features": est.n_features_in_,
            "n_components": est.n_components_, "working_rank": r,
            "n_chunks": int(x.numblocks[0]), "resumed_from_chunk": resumed,
            "refined": bool(est.refine),
            "energy_ratio": float(est.explained_energy_ratio_.sum()),
            "singular_values": est.singular_values_.tolist(), "seconds": seconds}), flush=True)
    return 0
