"""Brand-style incremental SVD kernels: row-block updates and merges of truncated summaries (§9.1).

A *summary* of a row block ``A`` (n x d, rows are samples) is its top right singular structure,
``Aᵀ A ≈ Wᵀ diag(s)² W``: the singular values ``s`` (r,) and the orthonormal rows ``W`` (r, d).
The per-sample factor is never kept (gensim's ``Projection.merge`` does the same), so a summary
costs ``r (d + 1)`` floats whatever the number of rows it stands for.

Two summaries are combined with Brand's append (Brand 2006, "Fast low-rank modifications of the
thin singular value decomposition"), written with samples as rows: the rows ``C = diag(s_b) W_b``
of the second summary are appended to the first,

    L = C Wᵀ,   H = C − L W   (twice: "twice is enough" Gram–Schmidt),   Hᵀ = J K  (thin QR),
    core = [[diag(s), 0], [L, Kᵀ]] = Â diag(σ) B̂ᵀ,   W_new = B̂ᵀ [W; Jᵀ],   s_new = σ,

which is exact — ``[A; C]`` and ``core · [W; Jᵀ]`` have the same Gram matrix — until the result is
truncated to the working rank ``r = k + p``. Keep ``p`` extra directions through the stream and cut
to ``k`` once at the end (ALGORITHMS.md §1.6): the error concentrates in the trailing directions.

Centering (PCA) is exact too: merging blocks with means ``m_a``, ``m_b`` and weights ``n_a``,
``n_b`` appends one more row ``sqrt(n_a n_b / (n_a + n_b)) (m_a − m_b)`` (the between-block
scatter), as in scikit-learn's ``IncrementalPCA``.

Decay: ``decay < 1`` forgets old data. It multiplies the singular values of the older summary by
``decay`` once per batch (row chunk) that comes after it, so a tree of merges equals the
sequential stream: chunk ``i`` of ``N`` ends up weighted by ``decay ** (N - 1 - i)``.

Sign convention: after every merge the rows of ``W`` go through :func:`veob_dask.svd._signs.flip_signs`
(largest-|value| entry positive). Re-orthogonalisation (QR of ``Wᵀ`` and a small SVD) runs every
``reorth_every`` merges and whenever a caller asks (before a checkpoint, at the end of a fit).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from .._validation import check_block_finite
from ..errors import InvalidParameterError
from ._signs import flip_signs
from .kernels import EXACT_MAX_FEATURES, as_csr, augmented_gram, block_stats

__all__ = [
    "CHUNK_SOLVERS",
    "SVDSummary",
    "brand_update",
    "merge",
    "merge_many",
    "reorthogonalize",
    "summarize_block",
    "truncate",
]

#: How a single row chunk is reduced to a summary.
CHUNK_SOLVERS = ("auto", "gram", "randomized")

#: Singular values below this fraction of the largest are numerical zeros and are dropped.
RTOL = 1e-12


@dataclass(frozen=True)
class SVDSummary:
    """Truncated right-singular summary of some rows: ``Aᵀ A ≈ Wᵀ diag(s)² W``.

    Attributes
    ----------
    singular_values : ndarray of shape (r,)
        Descending, float64.
    components : ndarray of shape (r, n_features)
        Orthonormal rows ``W``, float64, signs per :mod:`veob_dask.svd._signs`.
    n_samples : int
        Rows summarised.
    n_batches : int
        Row chunks / batches summarised (the exponent unit of ``decay``).
    weight : float
        Effective number of rows (``n_samples`` when ``decay == 1``); weighs the means.
    energy : float
        Squared Frobenius norm of the (weighted, centered) rows: the denominator of the
        explained-energy ratio. It includes what truncation discarded.
    mean : ndarray of shape (n_features,) or None
        Weighted column means when the summary is centered.
    n_merges : int
        Merges since the last re-orthogonalisation.
    """

    singular_values: np.ndarray
    components: np.ndarray
    n_samples: int
    n_batches: int
    weight: float
    energy: float
    mean: np.ndarray | None = None
    n_merges: int = 0

    @property
    def rank(self) -> int:
        """Number of directions held."""
        return int(self.singular_values.size)

    @property
    def n_features(self) -> int:
        """Width of the rows summarised."""
        return int(self.components.shape[1])

    @property
    def centered(self) -> bool:
        """Whether the summary is of mean-centered rows."""
        return self.mean is not None


def _dense64(block: Any) -> np.ndarray:
    if sp.issparse(block):
        return np.asarray(block.toarray(), dtype=np.float64)
    if hasattr(block, "todense") and not isinstance(block, np.ndarray):  # pydata sparse
        return np.asarray(block.todense(), dtype=np.float64)
    return np.asarray(block, dtype=np.float64)


def _as_csr_or_dense(block: Any) -> Any:
    """scipy CSR (float64) for sparse blocks; dense float32/float64 blocks are not copied."""
    csr = as_csr(block, np.float64)
    if csr is not None:
        return csr
    arr = np.asarray(block)
    return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)


def _keep(s: np.ndarray, max_rank: int | None) -> int:
    """How many leading singular values to keep: non-negligible, at most ``max_rank``."""
    if s.size == 0 or s[0] <= 0:
        return 0
    n = int(np.count_nonzero(s > RTOL * s[0]))
    return n if max_rank is None else min(n, max_rank)


def _finish(s: np.ndarray, w: np.ndarray, max_rank: int | None) -> tuple[np.ndarray, np.ndarray]:
    n = _keep(s, max_rank)
    return np.ascontiguousarray(s[:n]), flip_signs(np.ascontiguousarray(w[:n]))


def _top_eigh(g: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``r`` eigenpairs of a symmetric PSD matrix, descending: (λ (r,), vectors (n, r))."""
    n = g.shape[0]
    r = min(r, n)
    g = (g + g.T) / 2
    if r < n // 2:
        lam, vec = scipy.linalg.eigh(g, subset_by_index=[n - r, n - 1], driver="evr")
    else:
        lam, vec = np.linalg.eigh(g)
        lam, vec = lam[n - r:], vec[:, n - r:]
    return np.clip(lam[::-1], 0.0, None), vec[:, ::-1]


def _gram_local(x: Any, mean: np.ndarray | None, max_rank: int, g: np.ndarray | None = None,
                n_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact local SVD (s, W) of a (centered) block through its smaller Gram matrix, float64.

    With ``g`` given (the d x d Gram matrix of ``n_rows`` rows) ``x`` is not read.
    """
    c, d = x.shape
    c = c if n_rows is None else n_rows
    if g is not None or c >= d or sp.issparse(x):
        if g is None:
            g = x.T @ x
            g = np.asarray(g.toarray() if sp.issparse(g) else g, dtype=np.float64)
        if mean is not None:
            g = g - c * np.outer(mean, mean)
        lam, vec = _top_eigh(g, max_rank)
        s = np.sqrt(lam)
        # eigenvalues below d·eps·λ₁ are rounding noise of the Gram matrix
        good = lam > max(lam[0] if lam.size else 0.0, 1e-300) * d * np.finfo(float).eps
        return s[good], vec[:, good].T
    xd = _dense64(x) if mean is None else _dense64(x) - mean
    lam, u = _top_eigh(xd @ xd.T, max_rank)
    good = lam > max(lam[0] if lam.size else 0.0, 1e-300) * c * np.finfo(float).eps
    s = np.sqrt(lam[good])
    w = (u[:, good].T @ xd) / s[:, None]
    return s, w


def _randomized_local(x: Any, mean: np.ndarray | None, max_rank: int, n_iter: int,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Halko range finder with ``n_iter`` power passes on one block (implicit centering)."""
    c, d = x.shape
    ell = min(max_rank + 10, c, d)

    def mul(m: np.ndarray) -> np.ndarray:  # X_c @ m
        out = np.asarray(x @ m)
        return out if mean is None else out - (mean @ m)[None, :]

    def rmul(m: np.ndarray) -> np.ndarray:  # X_cᵀ @ m
        out = np.asarray(x.T @ m)
        return out if mean is None else out - np.outer(mean, m.sum(axis=0))

    omega = np.random.default_rng(seed).standard_normal((d, ell))
    q, _ = np.linalg.qr(mul(omega))
    for _ in range(n_iter):
        z, _ = np.linalg.qr(rmul(q))
        q, _ = np.linalg.qr(mul(z))
    b = rmul(q).T  # (ell, d) = qᵀ X_c
    _, s, vt = np.linalg.svd(b, full_matrices=False)
    return s[:max_rank], vt[:max_rank]


def summarize_block(block: Any, *, max_rank: int, center: bool = False, chunk_solver: str = "auto",
                    n_iter: int = 2, seed: int = 0) -> SVDSummary:
    """Summary of one row block: its top ``max_rank`` right singular directions.

    Parameters
    ----------
    block : ndarray or sparse matrix of shape (c, d), or a list of them
        Rows are samples. Checked for NaN/inf here (no extra pass over the data). A list holds
        consecutive row chunks summarised together: their float64 Gram matrices are summed
        (no copy of the rows) and decomposed once, which is exact; it counts as that many
        batches.
    max_rank : int
        Working rank ``r`` kept.
    center : bool, default=False
        Summarise the block centered on its own column means (kept in ``mean``).
    chunk_solver : {"auto", "gram", "randomized"}, default="auto"
        ``"gram"``: exact, through the float64 Gram matrix of the smaller side and a partial
        ``eigh``. ``"randomized"``: Halko range finder with ``n_iter`` power passes (for wide
        blocks). ``"auto"``: ``"gram"`` up to 4096 features.
    n_iter : int, default=2
        Power passes of the randomized local solver.
    seed : int, default=0
        Seed of the randomized local solver.

    Returns
    -------
    SVDSummary

    Notes
    -----
    Memory: the block, plus a d x d (or c x c) float64 matrix for ``"gram"``.
    """
    if chunk_solver not in CHUNK_SOLVERS:
        raise InvalidParameterError(f"chunk_solver must be one of {CHUNK_SOLVERS}; got {chunk_solver!r}.")
    parts = list(block) if isinstance(block, list | tuple) else [block]
    for part in parts:
        check_block_finite(part)
    xs = [_as_csr_or_dense(part) for part in parts]
    c, d = sum(x.shape[0] for x in xs), xs[0].shape[1]
    if c == 0:
        return SVDSummary(np.zeros(0), np.zeros((0, d)), 0, len(xs), 0.0, 0.0,
                          np.zeros(d) if center else None)
    solver = chunk_solver
    if solver == "auto":
        solver = "gram" if d <= EXACT_MAX_FEATURES else "randomized"
    gram = None
    if solver == "gram" and c >= d and not any(sp.issparse(x) for x in xs):
        # one sweep gives the Gram matrix, the column sums and the energy
        acc = sum(augmented_gram(x) for x in xs)
        gram, sums = acc[:d, :d], acc[:d, d]
        energy = float(np.trace(gram))
        x = xs[0]
    else:
        x = xs[0] if len(xs) == 1 else (sp.vstack(xs, format="csr")
                                         if any(sp.issparse(v) for v in xs) else np.vstack(xs))
        stats = block_stats(x)
        sums, energy = stats[:d], float(stats[d])
    mean = sums / c if center else None
    if mean is not None:
        energy = max(0.0, energy - c * float(mean @ mean))
    if solver == "gram":
        s, w = _gram_local(x, mean, max_rank, gram, n_rows=c)
    else:
        s, w = _randomized_local(x, mean, max_rank, n_iter, seed)
    s, w = _finish(s, w, max_rank)
    return SVDSummary(s, w, c, len(xs), float(c), energy, mean)


def _append_rows(w: np.ndarray, s: np.ndarray, rows: np.ndarray,
                 max_rank: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Brand's exact append of ``rows`` (c, d) to the thin SVD (s, w); truncation at the end."""
    r = s.size
    if rows.shape[0] == 0:
        return _finish(s, w, max_rank)
    if r == 0:
        _, sig, vt = np.linalg.svd(rows, full_matrices=False)
        return _finish(sig, vt, max_rank)
    proj = rows @ w.T  # L (c, r)
    resid = rows - proj @ w  # H
    again = resid @ w.T  # second Gram–Schmidt pass against drift
    resid -= again @ w
    proj += again
    j, kk = np.linalg.qr(resid.T)  # Hᵀ = J K: J (d, q), K (q, c)
    q = j.shape[1]
    core = np.zeros((r + rows.shape[0], r + q))
    core[:r, :r] = np.diag(s)
    core[r:, :r] = proj
    core[r:, r:] = kk.T
    _, sig, bt = np.linalg.svd(core, full_matrices=False)
    n = _keep(sig, max_rank)
    w_new = bt[:n, :r] @ w + bt[:n, r:] @ j.T
    return np.ascontiguousarray(sig[:n]), flip_signs(w_new)


def reorthogonalize(summary: SVDSummary) -> SVDSummary:
    """Restore exact orthonormality of ``components`` (QR of ``Wᵀ``, then a small SVD)."""
    if summary.rank == 0:
        return replace(summary, n_merges=0)
    q, rr = np.linalg.qr(summary.components.T)  # Wᵀ = Q R  ->  diag(s) W = diag(s) Rᵀ Qᵀ
    _, sig, bt = np.linalg.svd(summary.singular_values[:, None] * rr.T)
    s, w = _finish(sig, bt @ q.T, None)
    return replace(summary, singular_values=s, components=w, n_merges=0)


def truncate(summary: SVDSummary, rank: int) -> SVDSummary:
    """Keep the leading ``rank`` directions (energy and counts unchanged)."""
    return replace(summary, singular_values=summary.singular_values[:rank].copy(),
                   components=summary.components[:rank].copy())


def _check_pair(a: SVDSummary, b: SVDSummary) -> None:
    if a.n_features != b.n_features:
        raise InvalidParameterError(
            f"cannot merge summaries of {a.n_features} and {b.n_features} features; both must "
            "come from data with the same columns.")
    if a.centered != b.centered:
        raise InvalidParameterError("cannot merge a centered summary with an uncentered one; "
                                    "use the same center= for every part.")


def merge(a: SVDSummary, b: SVDSummary, *, max_rank: int | None, decay: float = 1.0,
          reorth_every: int = 50) -> SVDSummary:
    """Summary of the rows of ``a`` followed by the rows of ``b`` (Brand append of ``b``'s rows).

    Parameters
    ----------
    a, b : SVDSummary
        The older and the newer part; only ``a`` is decayed.
    max_rank : int or None
        Working rank kept; None keeps every non-negligible direction (then the merge is exact).
    decay : float, default=1.0
        In (0, 1]: ``a``'s singular values are multiplied by ``decay ** b.n_batches``.
    reorth_every : int, default=50
        Re-orthogonalise once this many merges have accumulated.

    Returns
    -------
    SVDSummary
    """
    _check_pair(a, b)
    f = float(decay) ** b.n_batches if decay != 1.0 else 1.0
    wa = a.weight * f * f
    weight = wa + b.weight
    energy = a.energy * f * f + b.energy
    rows = b.singular_values[:, None] * b.components
    mean = None
    if a.mean is not None and b.mean is not None:
        mean = (wa * a.mean + b.weight * b.mean) / weight if weight > 0 else a.mean
        if wa > 0 and b.weight > 0:
            between = np.sqrt(wa * b.weight / weight) * (a.mean - b.mean)
            rows = np.vstack([rows, between[None, :]])
            energy += float(between @ between)
    s, w = _append_rows(a.components, a.singular_values * f, rows, max_rank)
    out = SVDSummary(s, w, a.n_samples + b.n_samples, a.n_batches + b.n_batches, weight, energy,
                     mean, max(a.n_merges, b.n_merges) + 1)
    if out.n_merges >= reorth_every:
        out = reorthogonalize(out)
    return out


def merge_many(parts: list[SVDSummary], *, max_rank: int | None, decay: float = 1.0,
               reorth_every: int = 50) -> SVDSummary:
    """Merge summaries in order (left fold); only the last merge truncates to ``max_rank``."""
    if not parts:
        raise InvalidParameterError("merge_many needs at least one summary.")
    acc = parts[0]
    for i, part in enumerate(parts[1:], start=2):
        acc = merge(acc, part, max_rank=max_rank if i == len(parts) else None, decay=decay,
                    reorth_every=reorth_every)
    return acc


def brand_update(summary: SVDSummary | None, rows: Any, *, max_rank: int, center: bool = False,
                 decay: float = 1.0, chunk_solver: str = "auto", n_iter: int = 2, seed: int = 0,
                 reorth_every: int = 50) -> SVDSummary:
    """Append a block of rows (one batch) to ``summary`` (None: start a new one).

    A block with at most ``max_rank`` rows goes straight into Brand's update (project, QR of the
    residual, small core SVD, rotate); a taller block is first reduced to its own summary
    (:func:`summarize_block`), whose rows are then appended the same way — the core SVD stays
    (2r) x (2r) whatever the block height.
    """
    check_block_finite(rows)
    x = _as_csr_or_dense(rows)
    if summary is not None and x.shape[1] != summary.n_features:
        raise InvalidParameterError(
            f"rows have {x.shape[1]} features; the summary has {summary.n_features}.")
    if x.shape[0] > max_rank or center or sp.issparse(x):
        new = summarize_block(x, max_rank=max_rank, center=center, chunk_solver=chunk_solver,
                              n_iter=n_iter, seed=seed)
        if summary is None:
            return new
        return merge(summary, new, max_rank=max_rank, decay=decay, reorth_every=reorth_every)
    # the literal Brand row update: the raw rows are appended to the old basis
    xd = _dense64(x)
    if summary is None:
        summary = SVDSummary(np.zeros(0), np.zeros((0, xd.shape[1])), 0, 0, 0.0, 0.0, None)
    if summary.centered:
        raise InvalidParameterError("cannot append uncentered rows to a centered summary.")
    f = float(decay) if summary.n_batches else 1.0
    s, w = _append_rows(summary.components, summary.singular_values * f, xd, max_rank)
    out = SVDSummary(s, w, summary.n_samples + xd.shape[0], summary.n_batches + 1,
                     summary.weight * f * f + xd.shape[0],
                     summary.energy * f * f + float(np.einsum("ij,ij->", xd, xd)), None,
                     summary.n_merges + 1)
    return reorthogonalize(out) if out.n_merges >= reorth_every else out
