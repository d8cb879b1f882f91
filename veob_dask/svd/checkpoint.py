"""Checkpointed, resumable incremental fits: merge N chunks, write the state atomically, repeat.

The row chunks of the input are taken in *segments* of ``every`` chunks. Each segment is reduced
by the merge tree (in parallel on the workers), merged into the running summary (Brand's update,
the segment counting as newer data), and the running summary is written to the checkpoint file,
together with the index of the next chunk and a fingerprint of the fit. A fit that is killed
and started again with the same settings finds the checkpoint, checks the fingerprint and goes
on from the next chunk; since the segments are the same, the result is the same as an
uninterrupted run (to rounding).

The checkpoint is a small Zarr store of kind ``"checkpoint"`` (arrays ``singular_values``,
``components``, ``mean``; progress and fingerprint in the header), written through
:mod:`veob_dask.io` like every other store: to a temporary sibling, then published over the
previous checkpoint, so a kill at any moment leaves either the old or the new one — on a local
disk or at any fsspec URL.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from .._validation import check_dask_2d
from ..errors import InvalidParameterError, StoreFormatError
from ..io.location import Location, PathLike, as_location
from ..io.publish import remove_store
from ..io.serialize import ArraySpec, EstimatorSpec, ScalarSpec, check_arrays, is_float, is_int
from ..io.store import open_artifact, read_arrays
from ..io.targets import target_state
from ..io.writer import write_artifact
from ._tree import compute_summary, tree_summary
from .incremental import SVDSummary, merge, reorthogonalize
from .incremental_embedding import IncrementalSVDEmbedding

__all__ = ["CHECKPOINT_VERSION", "CheckpointedFit", "fit_checkpointed", "fit_segments",
           "load_checkpoint", "remove_checkpoint", "save_checkpoint"]

logger = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1

#: Environment variable: seconds to sleep after each checkpoint (to exercise crash/resume).
PAUSE_ENV = "VEOB_INCREMENTAL_PAUSE_S"


_STATE = EstimatorSpec(object, arrays={
    "singular_values": ArraySpec(("rank",)), "components": ArraySpec(("rank", "feature")),
    "mean": ArraySpec(("mean_feature",))},
    scalars={"n_samples": ScalarSpec(is_int(0)), "n_batches": ScalarSpec(is_int(0)),
             "weight": ScalarSpec(is_float(0.0)), "energy": ScalarSpec(is_float(0.0)),
             "n_merges": ScalarSpec(is_int(0)), "next_chunk": ScalarSpec(is_int(0))})
_DIMS = {name: spec.dims for name, spec in _STATE.arrays.items()}


def save_checkpoint(path: PathLike | Location, summary: SVDSummary, *, next_chunk: int,
                    fingerprint: dict[str, Any],
                    storage_options: Mapping[str, Any] | None = None) -> None:
    """Write ``summary`` and progress to the checkpoint store at ``path`` (atomically, replacing
    the previous checkpoint)."""
    mean = summary.mean if summary.mean is not None else np.zeros(0)
    write_artifact(
        path, "checkpoint",
        {"singular_values": summary.singular_values, "components": summary.components,
         "mean": mean}, dims=_DIMS, overwrite=True, storage_options=storage_options,
        version=CHECKPOINT_VERSION, next_chunk=int(next_chunk), fingerprint=fingerprint,
        n_samples=int(summary.n_samples), n_batches=int(summary.n_batches),
        weight=float(summary.weight), energy=float(summary.energy),
        n_merges=int(summary.n_merges), centered=bool(summary.centered))


def load_checkpoint(path: PathLike | Location, *,
                    storage_options: Mapping[str, Any] | None = None
                    ) -> tuple[SVDSummary, dict[str, Any]] | None:
    """Read a checkpoint; None if there is none at ``path``.

    Raises
    ------
    StoreFormatError
        If something else is at ``path`` (an older ``.npz`` checkpoint, another store), or the
        checkpoint is damaged.
    """
    loc = as_location(path, storage_options)
    where = repr(str(loc))
    state, _ = target_state(loc)
    if state in ("absent", "empty"):
        return None
    if state != "ours":
        raise StoreFormatError(
            f"{where} is not an incremental-fit checkpoint of this veob_dask (an older .npz "
            "checkpoint, or another file); delete it to start the fit from the beginning.")
    try:
        group, meta = open_artifact(loc, "checkpoint")
        arrays = read_arrays(group, list(_DIMS), where)
        if meta.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"version {meta.get('version')!r}, this veob_dask writes "
                             f"version {CHECKPOINT_VERSION}")
        check_arrays(_STATE, arrays, meta)
        if not isinstance(meta.get("fingerprint"), dict):
            raise TypeError("no fingerprint")
        centered = bool(meta.get("centered"))
        if centered and arrays["mean"].shape != arrays["components"].shape[1:]:
            raise ValueError("the mean does not match the components")
    except (ValueError, TypeError) as err:
        raise StoreFormatError(f"{where} is not a readable incremental-fit checkpoint ({err}); "
                               "delete it to start the fit from the beginning.") from err
    summ = SVDSummary(arrays["singular_values"], arrays["components"], int(meta["n_samples"]),
                      int(meta["n_batches"]), float(meta["weight"]), float(meta["energy"]),
                      arrays["mean"] if centered else None, int(meta["n_merges"]))
    return summ, meta


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def fit_segments(x: da.Array, *, max_rank: int, every: int, checkpoint: PathLike | Location,
                 fingerprint: dict[str, Any], center: bool = False, decay: float = 1.0,
                 split_every: int = 2, chunk_solver: str = "auto", n_iter: int = 2,
                 seed: int = 0, reorth_every: int = 50,
                 log: Callable[[str], None] | None = None) -> tuple[SVDSummary, int]:
    """Summarise all rows of ``x``, ``every`` chunks at a time, checkpointing after each segment.

    Parameters
    ----------
    x : dask.array.Array
        Input, one column chunk; its row chunks are the units of progress.
    max_rank, center, decay, split_every, chunk_solver, n_iter, seed, reorth_every
        As for :func:`~veob_dask.svd._tree.tree_summary`.
    every : int
        Chunks per segment (between checkpoints).
    checkpoint : path, URL or Location
        Checkpoint store; read first (resume) and rewritten after every segment.
    fingerprint : dict
        JSON description of the fit; a checkpoint with another fingerprint is refused.
    log : callable, optional
        Receives one line per event (resume, segment merged); default: this module's logger
        at INFO level.

    Returns
    -------
    (SVDSummary, int)
        The summary of all rows (re-orthogonalised) and the chunk index the fit resumed from.

    Raises
    ------
    InvalidParameterError
        If a checkpoint of another fit (other data or settings) is at ``checkpoint``.
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise InvalidParameterError(f"checkpoint_every must be an int >= 1; got {every!r}.")
    log = log or logger.info
    if len(x.chunks[1]) != 1:
        x = x.rechunk({1: -1})
    n_chunks = x.numblocks[0]
    state: SVDSummary | None = None
    start = 0
    found = load_checkpoint(checkpoint)
    if found is not None:
        state, meta = found
        if meta["fingerprint"] != fingerprint:
            raise InvalidParameterError(
                f"the checkpoint {str(checkpoint)!r} belongs to another fit (it differs in "
                f"{_diff(meta['fingerprint'], fingerprint)}); delete it to start afresh, or "
                "pass another --checkpoint path.")
        start = int(meta["next_chunk"])
        log(f"resumed from chunk {start} of {n_chunks} (checkpoint {checkpoint}: "
            f"{state.n_samples} rows already merged)")
    resumed_from = start
    pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
    rows_before = sum(x.chunks[0][:start])
    for lo in range(start, n_chunks, every):
        hi = min(n_chunks, lo + every)
        seg = tree_summary(x.blocks[lo:hi], max_rank=max_rank, center=center,
                           split_every=split_every, decay=decay, chunk_solver=chunk_solver,
                           n_iter=n_iter, seed=seed + lo, reorth_every=reorth_every)
        part = compute_summary(seg)
        state = part if state is None else reorthogonalize(
            merge(state, part, max_rank=max_rank, decay=decay, reorth_every=reorth_every))
        save_checkpoint(checkpoint, state, next_chunk=hi, fingerprint=fingerprint)
        rows_before += sum(x.chunks[0][lo:hi])
        log(f"merged chunks {lo}-{hi - 1} of {n_chunks} ({rows_before} rows); checkpoint "
            f"written ({hi}/{n_chunks} chunks)")
        if pause > 0 and hi < n_chunks:
            time.sleep(pause)
    if state is None:  # pragma: no cover - x always has at least one chunk
        raise InvalidParameterError("no chunks to fit.")
    return state, resumed_from


def remove_checkpoint(path: PathLike | Location, *,
                      storage_options: Mapping[str, Any] | None = None) -> None:
    """Remove the checkpoint store at ``path``, if there is one.

    Raises
    ------
    StoreExistsError
        ``path`` holds something else (it is left alone).
    """
    remove_store(as_location(path, storage_options), kind="checkpoint")


@dataclass(frozen=True)
class CheckpointedFit:
    """What :func:`fit_checkpointed` did.

    Attributes
    ----------
    estimator : IncrementalSVDEmbedding
        The fitted estimator.
    working_rank : int
        Rank carried through the merges (``k + p``).
    n_chunks : int
        Row chunks of the input.
    resumed_from_chunk : int
        First chunk merged in this call (0 unless a checkpoint was found).
    """

    estimator: IncrementalSVDEmbedding
    working_rank: int
    n_chunks: int
    resumed_from_chunk: int


def fit_checkpointed(X: da.Array, *, checkpoint: PathLike | Location, checkpoint_every: int = 8,
                     n_components: float = 0.9, n_oversamples: int | None = None,
                     center: bool = False, refine: bool = True, random_state: int = 0,
                     source: str | None = None,
                     progress: Callable[[str], None] | None = None) -> CheckpointedFit:
    """Fit an :class:`IncrementalSVDEmbedding` on ``X``, resumable from a checkpoint.

    Every ``checkpoint_every`` row chunks the running state is written atomically to
    ``checkpoint``; called again with the same data and settings after a crash, the fit resumes
    from it. Then, with ``refine``, one more pass computes the singular values of the data on
    the basis found (Rayleigh–Ritz). The checkpoint is left in place: remove it
    (:func:`remove_checkpoint`) once the model is saved.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Input; its row chunks are the units of progress.
    checkpoint : path, URL or Location
        Checkpoint store (read first, rewritten after every segment).
    checkpoint_every : int, default=8
        Row chunks merged between checkpoints.
    n_components, n_oversamples, center, refine, random_state
        As for :class:`IncrementalSVDEmbedding`.
    source : str, optional
        Identity of the data (e.g. its store path), recorded in the checkpoint so that a
        checkpoint of other data is refused; default: the dask array's name.
    progress : callable, optional
        Receives one line per event; default: this module's logger at INFO level.

    Returns
    -------
    CheckpointedFit

    Raises
    ------
    InvalidParameterError
        Bad parameters, or a checkpoint of another fit at ``checkpoint``.
    """
    progress = progress or logger.info
    x = check_dask_2d(X)
    n, d = x.shape
    est = IncrementalSVDEmbedding(n_components=n_components, n_oversamples=n_oversamples,
                                  center=center, refine=refine, random_state=random_state)
    n_comp, r = est._rank(d)  # checks every parameter (one line each) before any work
    if isinstance(n_comp, int) and n_comp > min(n, d):
        raise InvalidParameterError(
            f"n_components={n_comp} exceeds min(n_samples={n}, n_features={d}); ask for fewer.")
    fingerprint: dict[str, Any] = {
        "store": str(source) if source is not None else x.name, "shape": [int(n), int(d)],
        "dtype": str(x.dtype), "row_chunks": [int(c) for c in x.chunks[0]]
        if x.numblocks[0] <= 4096 else [int(x.numblocks[0]), int(x.chunks[0][0])],
        "n_components": n_comp, "working_rank": r, "center": bool(center),
        "decay": est.decay, "split_every": est.split_every, "chunk_solver": est.chunk_solver,
        "n_iter": est.n_iter, "seed": int(random_state), "checkpoint_every": checkpoint_every,
    }
    progress(f"{n} x {d} {x.dtype}, {x.numblocks[0]} row chunks; working rank {r}, "
             f"checkpoint every {checkpoint_every} chunks to {checkpoint}")
    summ, resumed = fit_segments(
        x, max_rank=r, every=checkpoint_every, checkpoint=checkpoint, fingerprint=fingerprint,
        center=bool(center), decay=est.decay, split_every=est.split_every,
        chunk_solver=est.chunk_solver, n_iter=est.n_iter, seed=int(random_state),
        reorth_every=est.reorth_every, log=progress)
    if est.refine:
        progress("Rayleigh–Ritz pass: the singular values of the data on the basis found")
    est._finish(x, summ, n_comp)
    return CheckpointedFit(est, r, int(x.numblocks[0]), resumed)
