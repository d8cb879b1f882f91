"""One bounded pass over a dataset store: a row sample and the reconstruction error as k grows.

For a fitted SVD model with basis ``V`` (``components_``, k x d, orthonormal rows) and
optional mean ``μ``, the squared reconstruction error of the data ``X`` (n x d, after the
model's own transform, e.g. the 2-D cosine transform) from its first ``j`` components is

    ‖(X − μ) − (X − μ) V_jᵀ V_j‖²_F = ‖X − μ‖²_F − Σ_{i ≤ j} ‖(X − μ) v_iᵀ‖²,

so one pass that adds up ``‖X − μ‖²_F`` and the energy ``e_i = ‖(X − μ) v_iᵀ‖²`` of each
component gives the whole curve for ``j = 0 .. k``. On the training data ``e_i = σ_i²``; on
other data (a test split, newer rows) the curve says how well the basis carries over.

The same pass keeps a seeded uniform sample of rows (chosen up front: the row count is known
from the store's shape), their embedding and labels, and the raw values of a few of them (for
images rebuilt from ``j`` components). Each task reads one row chunk and returns a few numbers,
so memory is bounded by a chunk per worker thread whatever the store's size.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp

from ..errors import DimensionMismatchError
from .model import svd_step

__all__ = ["StoreSample", "model_features", "reconstruct", "sample_store"]

#: Rows converted to float64 at a time inside a chunk (bounds the temporary to ~rows x d x 8 B).
_SUB_ROWS = 8192


@dataclass
class StoreSample:
    """What one pass over a store gathered (see the module docstring).

    Attributes
    ----------
    rows : ndarray of shape (m,)
        Sampled row numbers, ascending.
    embedding : ndarray of shape (m, k)
        Their coordinates on the model's basis (float64).
    labels : ndarray of shape (m,) or None
        Their labels, when a label array was given.
    data_rows : ndarray of shape (r,)
        Rows whose raw values are kept (a random subset of ``rows``).
    data : ndarray of shape (r, ...) or None
        Their raw values, in the store's row shape (None for sparse stores).
    component_energy : ndarray of shape (k,)
        Energy of the data along each component, summed over every row.
    total_energy : float
        Squared Frobenius norm of the (centered) data over every row.
    n_rows, n_chunks : int
        Rows and row chunks read.
    """

    rows: np.ndarray
    embedding: np.ndarray
    labels: np.ndarray | None
    data_rows: np.ndarray
    data: np.ndarray | None
    component_energy: np.ndarray
    total_energy: float
    n_rows: int
    n_chunks: int

    def relative_error(self) -> np.ndarray:
        """``‖X − X_j‖²_F / ‖X‖²_F`` for ``j = 0 .. k`` components (float64, length k + 1)."""
        total = self.total_energy if self.total_energy > 0 else 1.0
        kept = np.concatenate([[0.0], np.cumsum(self.component_energy)])
        return np.clip(1.0 - kept / total, 0.0, 1.0)


def model_features(model: Any, x: Any) -> Any:
    """The rows the SVD step of ``model`` sees: ``x`` through every earlier pipeline step.

    Samples with more than one axis are flattened when the model has no such step (as
    ``veob fit`` does). Type in, type out: numpy gives numpy, dask gives lazy dask.
    """
    if hasattr(model, "steps") and isinstance(model.steps, list):
        out = x
        for _, step in model.steps[:-1]:
            out = step.transform(out)
        return out
    if getattr(x, "ndim", 2) > 2:
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
    return x


def _chunk_pass(block: Any, y: Any, local: np.ndarray, keep: np.ndarray, model: Any,
                comps_t: np.ndarray, mean: np.ndarray | None) -> tuple[Any, ...]:
    """Kernel: energy per component, total energy, sampled embeddings/labels/raw rows."""
    feats = model_features(model, block)
    k = comps_t.shape[1]
    mean_proj = None if mean is None else mean @ comps_t
    energy = np.zeros(k)
    total = 0.0
    emb = np.empty((local.size, k))
    for lo in range(0, feats.shape[0], _SUB_ROWS):
        f = feats[lo:lo + _SUB_ROWS]
        if sp.issparse(f):
            f = f.tocsr().astype(np.float64)
            sq = float(f.multiply(f).sum())
        else:
            f = np.asarray(f, dtype=np.float64)
            sq = float(np.einsum("ij,ij->", f, f))
        proj = np.asarray(f @ comps_t)
        if mean is not None:
            sq += -2.0 * float(np.asarray(f @ mean).sum()) + f.shape[0] * float(mean @ mean)
            proj -= mean_proj
        energy += np.einsum("ij,ij->j", proj, proj)
        total += sq
        here = (local >= lo) & (local < lo + f.shape[0])
        emb[here] = proj[local[here] - lo]
    raw = None
    if keep.size and not sp.issparse(block):
        raw = np.asarray(block[keep])
    labels = None if y is None else np.asarray(y)[local]
    return energy, total, emb, labels, raw


def sample_store(x: da.Array, model: Any, *, labels: da.Array | None = None,
                 n_sample: int = 2000, n_keep: int = 16, random_state: int = 0) -> StoreSample:
    """Read ``x`` once: reconstruction energies of every row and a seeded row sample.

    Parameters
    ----------
    x : dask.array.Array of shape (n, ...)
        The store's data (dense or ``scipy.sparse`` row blocks), as the model was fitted on it.
    model : estimator or Pipeline
        A fitted SVD model (see :func:`~veob_dask.diagnostics.model.svd_step`).
    labels : dask.array.Array of shape (n,), optional
        One label per row.
    n_sample : int, default=2000
        Rows sampled (uniformly without replacement, seeded).
    n_keep : int, default=16
        Sampled rows whose raw values are kept (dense stores only).
    random_state : int, default=0
        Seed of the sample.

    Returns
    -------
    StoreSample

    Raises
    ------
    DimensionMismatchError
        If the store's rows (after the model's transform) do not have the model's feature
        count, or ``labels`` has another length.

    Notes
    -----
    Laziness: computes one graph (``dask.compute``) with the current scheduler.
    Chunks: one task per row chunk; other axes must be whole (merged if not).
    Memory: per task one chunk, its transform and an 8,192-row float64 slice; the result is
    O(n_sample x k). Determinism: same seed, same sample; sums are over chunks in order.
    """
    svd = svd_step(model)
    n = int(x.shape[0])
    if x.ndim > 1 and any(len(c) > 1 for c in x.chunks[1:]):
        x = x.rechunk(dict.fromkeys(range(1, x.ndim), -1))
    d_in = int(model_features(model, x).shape[1])  # a lazy graph: nothing is read here
    if d_in != int(svd.n_features_in_):
        raise DimensionMismatchError(
            f"the store's rows have {d_in} features after the model's transform, but the model "
            f"was fitted on {svd.n_features_in_}; pass the store the model was fitted on (or one "
            "with the same row shape).")
    if labels is not None and int(labels.shape[0]) != n:
        raise DimensionMismatchError(f"the label array has {labels.shape[0]} entries but the "
                                     f"store has {n} rows; pass the store's own labels.")
    rng = np.random.default_rng(random_state)
    rows = np.sort(rng.choice(n, size=min(int(n_sample), n), replace=False))
    keep_rows = np.sort(rng.choice(rows, size=min(int(n_keep), rows.size), replace=False))
    bounds = np.concatenate([[0], np.cumsum(x.chunks[0])])
    comps_t = dask.delayed(np.ascontiguousarray(np.asarray(svd.components_, np.float64).T),
                           pure=True)
    mean = None if getattr(svd, "mean_", None) is None else np.asarray(svd.mean_, np.float64)
    model_d = dask.delayed(model, pure=True)
    blocks = x.to_delayed().ravel()
    ys = [None] * len(blocks) if labels is None else \
        labels.rechunk({0: x.chunks[0]}).to_delayed().ravel()
    tasks = []
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        local = rows[(rows >= lo) & (rows < hi)] - lo
        keep = keep_rows[(keep_rows >= lo) & (keep_rows < hi)] - lo
        tasks.append(dask.delayed(_chunk_pass, pure=True)(blocks[i], ys[i], local, keep, model_d,
                                                          comps_t, mean))
    parts = dask.compute(*tasks)
    k = int(svd.components_.shape[0])
    raws = [p[4] for p in parts if p[4] is not None and len(p[4])]
    return StoreSample(
        rows=rows,
        embedding=np.concatenate([p[2] for p in parts]) if parts else np.empty((0, k)),
        labels=None if labels is None else np.concatenate([p[3] for p in parts]),
        data_rows=keep_rows,
        data=np.concatenate(raws) if raws else None,
        component_energy=np.sum([p[0] for p in parts], axis=0) if parts else np.zeros(k),
        total_energy=float(sum(p[1] for p in parts)),
        n_rows=n, n_chunks=len(parts))


def reconstruct(model: Any, data: np.ndarray, n_components: int) -> np.ndarray:
    """Rebuild ``data`` from its first ``n_components`` coordinates, in its own row shape.

    The rows go through the model's transform, are projected on the first ``n_components``
    components and mapped back (through the earlier pipeline steps' ``inverse_transform``).
    """
    svd = svd_step(model)
    data = np.asarray(data)
    feats = np.asarray(model_features(model, data), dtype=np.float64)
    v = np.asarray(svd.components_[:int(n_components)], dtype=np.float64)
    mean = getattr(svd, "mean_", None)
    mu = 0.0 if mean is None else np.asarray(mean, dtype=np.float64)
    back: Any = (feats - mu) @ v.T @ v + mu
    if hasattr(model, "steps") and isinstance(model.steps, list):
        for _, step in reversed(model.steps[:-1]):
            back = step.inverse_transform(back)
    return np.asarray(back).reshape(data.shape)
