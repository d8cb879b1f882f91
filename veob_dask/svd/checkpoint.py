"""Checkpointed, resumable incremental fits: merge N chunks, write the state atomically, repeat.

The row chunks of the input are taken in *segments* of ``every`` chunks. Each segment is reduced
by the merge tree (in parallel on the workers), merged into the running summary (Brand's update,
the segment counting as newer data), and the running summary is written to the checkpoint file,
together with the index of the next chunk and a fingerprint of the fit. A fit that is killed
and started again with the same settings finds the checkpoint, checks the fingerprint and goes
on from the next chunk; since the segments are the same, the result is the same as an
uninterrupted run (to rounding).

The checkpoint is one ``.npz`` file (numpy arrays and a JSON string; read with
``allow_pickle=False``), written to a temporary file in the same directory, flushed and
``os.replace``-d into place, so a kill at any moment leaves either the old or the new checkpoint.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from ..errors import InvalidParameterError, StoreFormatError
from ._tree import compute_summary, tree_summary
from .incremental import SVDSummary, merge, reorthogonalize

__all__ = ["CHECKPOINT_VERSION", "fit_segments", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_VERSION = 1

#: Environment variable: seconds to sleep after each checkpoint (to exercise crash/resume).
PAUSE_ENV = "VEOB_INCREMENTAL_PAUSE_S"


def save_checkpoint(path: str | os.PathLike[str], summary: SVDSummary, *, next_chunk: int,
                    fingerprint: dict[str, Any]) -> None:
    """Write ``summary`` and progress to ``path`` atomically (temp file, fsync, rename)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    meta = {"version": CHECKPOINT_VERSION, "next_chunk": int(next_chunk),
            "fingerprint": fingerprint, "n_samples": summary.n_samples,
            "n_batches": summary.n_batches, "weight": summary.weight, "energy": summary.energy,
            "n_merges": summary.n_merges, "centered": summary.centered}
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, singular_values=summary.singular_values, components=summary.components,
                     mean=summary.mean if summary.mean is not None else np.zeros(0),
                     meta=np.array(json.dumps(meta)))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[SVDSummary, dict[str, Any]] | None:
    """Read a checkpoint; None if there is none at ``path``.

    Raises
    ------
    StoreFormatError
        If the file exists but is not a readable veob_dask checkpoint.
    """
    p = Path(path)
    if not p.exists():
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            s, w, mean = z["singular_values"], z["components"], z["mean"]
    except (OSError, ValueError, KeyError) as err:
        raise StoreFormatError(
            f"{str(p)!r} is not a readable incremental-fit checkpoint ({err}); delete it to "
            "start the fit from the beginning.") from err
    if meta.get("version") != CHECKPOINT_VERSION:
        raise StoreFormatError(f"checkpoint {str(p)!r} has version {meta.get('version')!r}; "
                               f"this veob_dask writes version {CHECKPOINT_VERSION}. Delete it.")
    summ = SVDSummary(s, w, int(meta["n_samples"]), int(meta["n_batches"]), float(meta["weight"]),
                      float(meta["energy"]), mean if meta["centered"] else None,
                      int(meta["n_merges"]))
    return summ, meta


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def fit_segments(x: da.Array, *, max_rank: int, every: int, checkpoint: str | os.PathLike[str],
                 fingerprint: dict[str, Any], center: bool = False, decay: float = 1.0,
                 split_every: int = 2, chunk_solver: str = "auto", n_iter: int = 2,
                 seed: int = 0, reorth_every: int = 50,
                 log: Callable[[str], None] = print) -> tuple[SVDSummary, int]:
    """Summarise all rows of ``x``, ``every`` chunks at a time, checkpointing after each segment.

    Parameters
    ----------
    x : dask.array.Array
        Input, one column chunk; its row chunks are the units of progress.
    max_rank, center, decay, split_every, chunk_solver, n_iter, seed, reorth_every
        As for :func:`~veob_dask.svd._tree.tree_summary`.
    every : int
        Chunks per segment (between checkpoints).
    checkpoint : path
        Checkpoint file; read first (resume) and rewritten after every segment.
    fingerprint : dict
        JSON description of the fit; a checkpoint with another fingerprint is refused.
    log : callable
        Receives one line per event (resume, segment merged).

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
