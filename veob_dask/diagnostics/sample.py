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

from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ..errors import DimensionMismatchError
from ..svd.kernels import project_block
from .model import svd_step

__all__ = ["StoreSample", "model_features", "reconstruct", "sample_store"]

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


def _local(rows: np.ndarray, block_info: dict[Any, Any] | None, n: int) -> np.ndarray:
    lo = block_info[0]["array-location"][0][0] if block_info else 0
    return rows[(rows >= lo) & (rows < lo + n)] - lo


def _stats_block(f: Any, w: np.ndarray, mean_vec: np.ndarray | None,
                 mean_proj: np.ndarray | None, mean_sq: float, rows: np.ndarray,
                 block_info: dict[Any, Any] | None = None) -> np.ndarray:
    """Kernel: row 0 = energy per component and total energy; then the sampled rows' embedding.

    With ``m`` the centering mean in feature space: projections ``f @ w − m Vᵀ``
    (``mean_proj``), total ``Σ‖f‖² − 2 Σ f·mean_vec + n ‖m‖²``. Products run in the data's
    precision (float32 stays float32, as the solvers do); every sum is accumulated in float64.
    """
    if f.ndim > 2:
        f = f.reshape(f.shape[0], -1)
    n, k = f.shape[0], w.shape[1]
    local = _local(rows, block_info, n)
    dtype = np.float32 if f.dtype == np.float32 else np.float64
    if sp.issparse(f):
        f = f.tocsr()
        sq = float(np.sum(np.square(f.data, dtype=np.float64)))
    else:
        f = np.asarray(f)
        sq = float(np.einsum("ij,ij->", f, f, dtype=np.float64))
    proj = np.asarray(f @ w.astype(dtype), dtype=np.float64)
    if mean_vec is not None and mean_proj is not None:
        sq += n * mean_sq - 2.0 * float(np.sum(f @ mean_vec.astype(dtype), dtype=np.float64))
        proj -= mean_proj
    out = np.zeros((1 + local.size, k + 1))
    out[0, :k] = np.einsum("ij,ij->j", proj, proj)
    out[0, k] = sq
    out[1:, :k] = proj[local]
    return out


def _orthonormal_map(model: Any, x: da.Array) -> np.ndarray | None:
    """``M`` with ``features = rows @ M`` and ``M Mᵀ = I``, when the model's earlier steps are
    such a map (the orthonormal 2-D DCT keeping every harmonic); else None.

    Then projections and energies come from the raw rows (``x @ (M Vᵀ)``, ``‖x M‖ = ‖x‖``)
    and the transform itself is never run over the store.
    """
    if not (hasattr(model, "steps") and isinstance(model.steps, list)) or x.ndim < 2:
        return None
    shape = tuple(int(s) for s in x.shape[1:])
    d = int(np.prod(shape))
    if d > 4096:
        return None
    m = np.asarray(model_features(model, np.eye(d).reshape(d, *shape)), dtype=np.float64)
    if m.shape != (d, d) or not np.allclose(m @ m.T, np.eye(d), atol=1e-9):
        return None
    probe = np.random.default_rng(0).normal(size=(3, *shape))
    linear = np.allclose(np.asarray(model_features(model, probe), dtype=np.float64),
                         probe.reshape(3, d) @ m, atol=1e-9)
    return m if linear else None


def _take_block(block: np.ndarray, rows: np.ndarray,
                block_info: dict[Any, Any] | None = None) -> np.ndarray:
    """Kernel: the given global rows that fall in this block."""
    return np.asarray(block[_local(rows, block_info, block.shape[0])])


def _counts(rows: np.ndarray, chunks: tuple[int, ...]) -> tuple[int, ...]:
    bounds = np.concatenate([[0], np.cumsum(chunks)])
    return tuple(int(c) for c in np.diff(np.searchsorted(rows, bounds)))


def _stats_graph(model: Any, svd: Any, x: da.Array, feats: da.Array, rows: np.ndarray,
                 counts: tuple[int, ...]) -> da.Array:
    """The per-chunk statistics (see :func:`_stats_block`), from the raw rows when the model's
    earlier steps are an orthonormal map, else from the transformed rows."""
    k = int(svd.components_.shape[0])
    comps_t = np.ascontiguousarray(np.asarray(svd.components_, np.float64).T)
    mean = None if getattr(svd, "mean_", None) is None else np.asarray(svd.mean_, np.float64)
    w, mean_vec, source = comps_t, mean, feats
    m = _orthonormal_map(model, x)
    if m is not None:  # project the raw rows on M Vᵀ: the transform is not run over the store
        w, source = m @ comps_t, x
        mean_vec = None if mean is None else m @ mean
    mean_proj = None if mean is None else mean @ comps_t
    mean_sq = 0.0 if mean is None else float(mean @ mean)
    out: da.Array = da.map_blocks(
        _stats_block, source, w, mean_vec, mean_proj, mean_sq, rows, dtype=np.float64,
        chunks=(tuple(c + 1 for c in counts), (k + 1,)),
        drop_axis=list(range(2, source.ndim)) or None, meta=np.empty((0, k + 1)))
    return out


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
    n_sample, n_keep : int, default=2000, 16
        Rows sampled (uniformly without replacement, seeded); sampled rows whose raw values
        are kept (dense stores only).
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
    Laziness: computes one graph (``dask.compute``, BLAS pinned to one thread per task) with
    the current scheduler; the model's transform runs blockwise inside it, and each stored
    chunk is read once (the raw-row and feature tasks share the read).
    Chunks: one task per row chunk; other axes must be whole (merged if not).
    Memory: per task one chunk and its transform; the result is O(n_sample x k).
    Determinism: same seed, same sample; per-chunk sums are added in chunk order.
    """
    svd = svd_step(model)
    n = int(x.shape[0])
    if x.ndim > 1 and any(len(c) > 1 for c in x.chunks[1:]):
        x = x.rechunk(dict.fromkeys(range(1, x.ndim), -1))
    feats = model_features(model, x)  # a lazy graph: nothing is read here
    if int(feats.shape[1]) != int(svd.n_features_in_):
        raise DimensionMismatchError(
            f"the store's rows have {feats.shape[1]} features after the model's transform, but "
            f"the model was fitted on {svd.n_features_in_}; pass the store the model was fitted "
            "on (or one with the same row shape).")
    if labels is not None and int(labels.shape[0]) != n:
        raise DimensionMismatchError(f"the label array has {labels.shape[0]} entries but the "
                                     f"store has {n} rows; pass the store's own labels.")
    if len(feats.chunks[1]) > 1:
        feats = feats.rechunk({1: -1})
    rng = np.random.default_rng(random_state)
    rows = np.sort(rng.choice(n, size=min(int(n_sample), n), replace=False))
    keep = np.sort(rng.choice(rows, size=min(int(n_keep), rows.size), replace=False))
    k = int(svd.components_.shape[0])
    counts = _counts(rows, x.chunks[0])
    wanted: list[Any] = [_stats_graph(model, svd, x, feats, rows, counts)]
    dense = not sp.issparse(getattr(x, "_meta", None))
    if dense and keep.size:
        wanted.append(da.map_blocks(_take_block, x, keep, dtype=x.dtype,
                                    chunks=(_counts(keep, x.chunks[0]), *x.chunks[1:]),
                                    meta=np.empty((0,) * x.ndim, dtype=x.dtype)))
    if labels is not None:
        y = labels.rechunk({0: x.chunks[0]})
        wanted.append(da.map_blocks(_take_block, y, rows, dtype=y.dtype,
                                    chunks=(_counts(rows, y.chunks[0]),),
                                    meta=np.empty((0,), dtype=y.dtype)))
    # One task per core already; BLAS threads on top of that only oversubscribe the cores.
    with threadpool_limits(1, user_api="blas"):
        done = list(dask.compute(*wanted))
    out = done.pop(0)
    heads = np.cumsum([0, *(c + 1 for c in counts[:-1])])
    body = np.delete(out, heads, axis=0)
    return StoreSample(
        rows=rows, embedding=body[:, :k], labels=done.pop() if labels is not None else None,
        data_rows=keep if dense else np.empty(0, dtype=np.int64),
        data=done[0] if dense and keep.size else None,
        component_energy=out[heads, :k].sum(axis=0), total_energy=float(out[heads, k].sum()),
        n_rows=n, n_chunks=len(counts))


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
    back: Any = project_block(feats, v, None if mean is None else mu) @ v + mu
    if hasattr(model, "steps") and isinstance(model.steps, list):
        for _, step in reversed(model.steps[:-1]):
            back = step.inverse_transform(back)
    return np.asarray(back).reshape(data.shape)
