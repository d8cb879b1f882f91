"""A synthetic benchmark matrix of any size whose exact SVD is known in closed form.

:class:`SyntheticMatrix` describes an ``n_rows x n_features`` matrix (a billion rows and beyond)
that is never stored: :meth:`~SyntheticMatrix.to_dask` generates it chunk by chunk, lazily, and
:meth:`~SyntheticMatrix.gram` gives its exact Gram matrix ``XᵀX`` from d x d float64 matrices
only, so the exact singular values and basis of a billion-row matrix cost milliseconds.

Construction. Rows come in *blocks* of ``block_rows`` (B) rows on a fixed grid (block ``b`` is
rows ``b·B … b·B + B − 1``), independent of any dask chunking, so every chunking generates the
same rows. Block ``b`` is a fixed base block times a small per-block mixing matrix,

    X_b = Z M_b · 2^-A,   M_b = c·I + N_k1 ± N'_k2,

where ``Z`` (B x d) is the base block, ``N_k`` and ``N'_k`` are two families of ``variants``
signed permutation matrices, ``c`` is ``base_weight`` and ``(k1, k2, ±)`` is drawn from a
counter-based hash of (seed, b). So a block costs one elementwise add of two cached B x d
arrays (``Z (cI + N_k1)`` and ``Z N'_k2``) — cheaper than any solver's pass over it — and

    XᵀX = 2^-2A Σ_b M_bᵀ (ZᵀZ) M_b

is a sum over at most ``2 · variants²`` distinct d x d terms weighted by how often each occurs.

Exactness. ``Z`` has integer entries and the ``M_b`` small integer ones, bounded so that every
entry (and every partial sum a BLAS kernel may form) of ``Z M_b`` stays below 2^24 in magnitude:
the generated float32 values are therefore the exact values, whatever the BLAS, thread count or
summation order, and ``ZᵀZ`` is exact in int64. The only rounding left is float64's in the d x d
sums (relative 1e-16), far below the 1e-6 a float32 fit can resolve. ``Z`` itself is built from
integer draws and one correctly rounded scaling per entry (no BLAS reduction), so every process
on every machine builds the same ``Z``.

Spectrum. ``Z = rint(U · diag(s)) H`` with ``U`` uniform integers, ``s`` the requested spectrum
shape and ``H`` a block-diagonal Hadamard matrix with random column signs and order (orthogonal
up to scale), so ``ZᵀZ ≈ (B E[U²]) Hᵀ diag(s)² H``: singular values proportional to ``s``, basis
``H``'s columns. The mixing adds a floor: ``σ_j² ∝ c² s_j² + 2 Σ s² / d``. The exact values come
from :meth:`~SyntheticMatrix.exact_svd`; the requested shape is only what they approximate.

Subdomain keys. With ``n_keys > 0`` every block is cut into groups of ``group_rows`` rows; each
(block, group) gets a key in ``[0, n_keys)`` from the same hash, and
:meth:`~SyntheticMatrix.key_grams` gives the exact Gram matrix of every key's rows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from .errors import InvalidParameterError

__all__ = ["SyntheticMatrix"]

#: Entries of ``Z M_b`` (integers) stay strictly below this, so float32 holds them exactly.
_EXACT_LIMIT = 2**24
#: Blocks hashed / counted at a time by the closed forms (bounds their memory at any size).
_COUNT_BATCH = 1 << 20
_U_BITS = 20
#: Base-block entries are below 2**24 / 18 < 2**19.9, so a Gram entry of up to 8192 rows sums to
#: less than 2**53: exact in float64.
_MAX_BLOCK_ROWS = 8192


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic, vectorised)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hadamard(n: int) -> np.ndarray:
    h = np.ones((1, 1), dtype=np.int64)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def _mixing_matrix(d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Block-diagonal Hadamard (blocks of the powers of two that sum to ``d``), shuffled.

    Returns the integer matrix and, per row, the size of its Hadamard block (``HHᵀ`` is that
    size on the diagonal), so a spectrum divided by its square root comes out unscaled.
    """
    h = np.zeros((d, d), dtype=np.int64)
    size = np.zeros(d)
    start = 0
    for bit in reversed(range(d.bit_length())):
        n = 1 << bit
        if d & n:
            h[start:start + n, start:start + n] = _hadamard(n)
            size[start:start + n] = n
            start += n
    perm = rng.permutation(d)
    signs = rng.choice(np.array([-1, 1]), size=d)
    return h[:, perm] * signs, size


@dataclass(frozen=True)
class _Design:
    """The per-process cache of one matrix design: base block, variants, their closed forms."""

    z: np.ndarray              # (B, d) int64 base block
    shift: int                 # A: generated values are integers times 2**-shift
    perm1: np.ndarray          # (K, d) signed permutations N_k: column j takes sign*Z[:, perm]
    sign1: np.ndarray
    perm2: np.ndarray
    sign2: np.ndarray
    plus: np.ndarray           # (K, B, d) Z (c I + N_k) * 2**-shift in the output dtype
    extra: np.ndarray          # (K, B, d) Z N'_k * 2**-shift


@functools.lru_cache(maxsize=4)
def _design(seed: int, d: int, block_rows: int, spectrum: tuple[float, ...], base_weight: int,
            variants: int, dtype: str) -> _Design:
    rng = np.random.default_rng([seed, 0x5EED])
    s = np.asarray(spectrum, dtype=np.float64)
    h, size = _mixing_matrix(d, rng)
    u = rng.integers(-(2**_U_BITS), 2**_U_BITS, size=(block_rows, d))
    # One correctly rounded product and one rint per entry: the same on every machine.
    z0 = np.rint(u * (s / s.max() / np.sqrt(size)))
    zf = z0 @ h  # integer matrix product, exact in float64 (|entries| < 2**53)
    bound = (_EXACT_LIMIT - 1) // (base_weight + 2)
    shift = 0
    while np.abs(zf).max() * 2.0**-shift > bound:
        shift += 1
    z = np.rint(zf * 2.0**-shift).astype(np.int64)  # exact scaling by a power of two, then rint
    if np.abs(z).max() > bound:  # pragma: no cover - rint can add at most 0.5
        z = np.clip(z, -bound, bound)
    perm1 = np.stack([rng.permutation(d) for _ in range(variants)])
    sign1 = rng.choice(np.array([-1, 1]), size=(variants, d))
    perm2 = np.stack([rng.permutation(d) for _ in range(variants)])
    sign2 = rng.choice(np.array([-1, 1]), size=(variants, d))
    out_shift = max(0, int(np.abs(z).max()).bit_length())  # values O(1): at most c + 2
    scale = 2.0**-out_shift
    plus = np.stack([(base_weight * z + z[:, p] * g) * scale for p, g in zip(perm1, sign1)])
    extra = np.stack([(z[:, p] * g) * scale for p, g in zip(perm2, sign2)])
    return _Design(z, out_shift, perm1, sign1, perm2, sign2, plus.astype(dtype),
                   extra.astype(dtype))


@dataclass(frozen=True)
class SyntheticMatrix:
    """A deterministic ``n_rows x n_features`` benchmark matrix with a closed-form exact SVD.

    See the module docstring for the construction. Nothing is generated or cached until a
    chunk is computed or a closed form asked for; the object is small and pickles cheaply.

    Parameters
    ----------
    n_rows, n_features : int
        Shape (any size: 10**9 x 64 is 256 GB of float32 that never exists at once).
    seed : int, default=0
        Seed of everything: the same parameters give the same matrix on every machine.
    decay : float, default=0.9
        Spectrum shape ``s_j = decay**j`` when ``spectrum`` is not given.
    spectrum : sequence of float, optional
        Explicit spectrum shape (``n_features`` non-negative values, not all zero).
    n_keys : int, default=0
        Subdomain keys drawn per (block, group) in ``[0, n_keys)``; 0 means none.
    dtype : {"float32", "float64"}, default="float32"
        Values are exact in either.
    block_rows : int, default=4096
        Rows of the base block (the generation grid).
    group_rows : int, default=512
        Rows sharing one subdomain key; must divide ``block_rows``.
    base_weight : int, default=16
        ``c`` in ``M_b = c I + N + N'``: larger means blocks closer to one another.
    variants : int, default=8
        Signed permutations per family (``2 · variants²`` distinct blocks).

    Notes
    -----
    Memory: each process that generates chunks caches ``2 · variants · block_rows ·
    n_features`` values (16 MiB for 64 float32 features at the defaults).
    Determinism: values depend on the parameters only, never on chunks, workers or BLAS.

    Examples
    --------
    >>> m = SyntheticMatrix(10_000, 8, seed=1)
    >>> x = m.to_dask(chunk_rows=3_000)
    >>> x.chunks[0]
    (3000, 3000, 3000, 1000)
    >>> s, _ = m.exact_svd()
    >>> bool(np.allclose(s, np.linalg.svd(x.compute(), compute_uv=False), rtol=1e-5))
    True
    """

    n_rows: int
    n_features: int
    seed: int = 0
    decay: float = 0.9
    spectrum: tuple[float, ...] | None = None
    n_keys: int = 0
    dtype: str = "float32"
    block_rows: int = 4096
    group_rows: int = 512
    base_weight: int = 16
    variants: int = 8

    def __post_init__(self) -> None:
        for name in ("n_rows", "n_features", "block_rows", "group_rows", "base_weight",
                     "variants"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise InvalidParameterError(f"{name} must be an int >= 1; got {v!r}.")
        if isinstance(self.n_keys, bool) or not isinstance(self.n_keys, (int, np.integer)) \
                or self.n_keys < 0:
            raise InvalidParameterError(f"n_keys must be an int >= 0; got {self.n_keys!r}.")
        if self.block_rows % self.group_rows:
            raise InvalidParameterError(
                f"group_rows ({self.group_rows}) must divide block_rows ({self.block_rows}).")
        if self.block_rows > _MAX_BLOCK_ROWS:
            raise InvalidParameterError(
                f"block_rows must be <= {_MAX_BLOCK_ROWS} (the base block's Gram matrix is exact "
                f"in float64 up to there); got {self.block_rows}.")
        if self.variants > 256:
            raise InvalidParameterError(f"variants must be <= 256; got {self.variants}.")
        if str(np.dtype(self.dtype)) not in ("float32", "float64"):
            raise InvalidParameterError(
                f"dtype must be 'float32' or 'float64'; got {self.dtype!r}.")
        if self.spectrum is not None:
            s = np.asarray(self.spectrum, dtype=np.float64)
            if s.shape != (self.n_features,) or not np.all(np.isfinite(s)) or np.any(s < 0) \
                    or not np.any(s > 0):
                raise InvalidParameterError(
                    f"spectrum must hold {self.n_features} finite values >= 0, not all zero; "
                    f"got shape {s.shape}.")
            object.__setattr__(self, "spectrum", tuple(float(v) for v in s))
        elif not 0 < self.decay <= 1:
            raise InvalidParameterError(f"decay must be in (0, 1]; got {self.decay!r}.")

    # ----------------------------------------------------------------------------- internals
    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.n_rows), int(self.n_features))

    @property
    def nbytes(self) -> int:
        """Logical size in bytes (the matrix never exists at once)."""
        return int(self.n_rows) * int(self.n_features) * np.dtype(self.dtype).itemsize

    def _spectrum(self) -> tuple[float, ...]:
        if self.spectrum is not None:
            return self.spectrum
        return tuple(float(self.decay) ** j for j in range(self.n_features))

    def _design(self) -> _Design:
        return _design(int(self.seed), int(self.n_features), int(self.block_rows),
                       self._spectrum(), int(self.base_weight), int(self.variants),
                       str(np.dtype(self.dtype)))

    def _hash(self, salt: int, counters: np.ndarray) -> np.ndarray:
        base = _mix64(np.array([self.seed & (2**64 - 1)], dtype=np.uint64) ^ np.uint64(salt))
        return _mix64(counters.astype(np.uint64) ^ base)

    def _variants_of(self, blocks: np.ndarray) -> np.ndarray:
        """Variant index ``(k1 * K + k2) * 2 + minus`` of each block."""
        h = self._hash(0xB10C, blocks)
        k = np.uint64(self.variants)
        k1 = h % k
        k2 = (h >> np.uint64(16)) % k
        minus = (h >> np.uint64(40)) & np.uint64(1)
        return ((k1 * k + k2) * np.uint64(2) + minus).astype(np.int64)

    def _group_keys(self, blocks: np.ndarray) -> np.ndarray:
        """Key of every (block, group): shape (len(blocks), groups per block)."""
        groups = self.block_rows // self.group_rows
        counters = blocks.astype(np.uint64)[:, None] * np.uint64(groups) + np.arange(
            groups, dtype=np.uint64)
        return (self._hash(0x4E75, counters) % np.uint64(self.n_keys)).astype(np.int64)

    # ---------------------------------------------------------------------------- generation
    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a numpy array (what every chunk covering them computes)."""
        start, stop = max(0, int(start)), min(int(self.n_rows), int(stop))
        des = self._design()
        out = np.empty((max(0, stop - start), self.n_features), dtype=self.dtype)
        if stop <= start:
            return out
        b_rows = self.block_rows
        blocks = np.arange(start // b_rows, (stop - 1) // b_rows + 1)
        for b, v in zip(blocks.tolist(), self._variants_of(blocks).tolist()):
            lo, hi = max(start, b * b_rows), min(stop, (b + 1) * b_rows)
            k1, rest = divmod(v, 2 * self.variants)
            k2, minus = divmod(rest, 2)
            zlo, zhi = lo - b * b_rows, hi - b * b_rows
            op = np.subtract if minus else np.add
            op(des.plus[k1, zlo:zhi], des.extra[k2, zlo:zhi], out=out[lo - start:hi - start])
        return out

    def row_keys(self, start: int, stop: int) -> np.ndarray:
        """Subdomain keys (int32) of rows ``start:stop``."""
        if not self.n_keys:
            raise InvalidParameterError("this SyntheticMatrix has n_keys=0; pass n_keys > 0.")
        start, stop = max(0, int(start)), min(int(self.n_rows), int(stop))
        if stop <= start:
            return np.empty(0, dtype=np.int32)
        g0, g1 = start // self.group_rows, (stop - 1) // self.group_rows + 1
        per = self.block_rows // self.group_rows
        groups = np.arange(g0, g1)
        keys = self._group_keys(np.unique(groups // per))
        flat = keys.ravel()[groups - (g0 // per) * per]
        out = np.repeat(flat, self.group_rows).astype(np.int32)
        off = start - g0 * self.group_rows
        return out[off:off + stop - start]

    def to_dask(self, chunk_rows: int) -> da.Array:
        """The matrix as a lazy dask array with row chunks of ``chunk_rows`` (one column chunk).

        Any ``chunk_rows`` gives the same values. The graph is one blockwise layer (dask can
        fuse it with the kernel that consumes it) of ``ceil(n_rows / chunk_rows)`` tasks.
        """
        rows = self._chunks(chunk_rows)
        out: da.Array = da.map_blocks(
            _chunk, self, int(chunk_rows), chunks=(rows, (self.n_features,)),
            dtype=np.dtype(self.dtype), meta=np.empty((0, 0), dtype=self.dtype),
            name="veob-synthetic-" + da.core.tokenize(self, int(chunk_rows)))
        return out

    def keys(self, chunk_rows: int) -> da.Array:
        """Subdomain keys as a lazy int32 dask array with the row chunks of ``to_dask``."""
        if not self.n_keys:
            raise InvalidParameterError("this SyntheticMatrix has n_keys=0; pass n_keys > 0.")
        rows = self._chunks(chunk_rows)
        out: da.Array = da.map_blocks(
            _key_chunk, self, int(chunk_rows), chunks=(rows,), dtype=np.int32,
            meta=np.empty((0,), dtype=np.int32),
            name="veob-synthetic-keys-" + da.core.tokenize(self, int(chunk_rows)))
        return out

    def _chunks(self, chunk_rows: int) -> tuple[int, ...]:
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) \
                or chunk_rows < 1:
            raise InvalidParameterError(f"chunk_rows must be an int >= 1; got {chunk_rows!r}.")
        full, rest = divmod(int(self.n_rows), int(chunk_rows))
        return (int(chunk_rows),) * full + ((rest,) if rest else ())

    # ---------------------------------------------------------------------------- closed forms
    def _mixing(self, v: int) -> np.ndarray:
        """``M_v`` (d x d, float64, small integers)."""
        des = self._design()
        d = self.n_features
        k1, rest = divmod(v, 2 * self.variants)
        k2, minus = divmod(rest, 2)
        m = float(self.base_weight) * np.eye(d)
        cols = np.arange(d)
        m[des.perm1[k1], cols] += des.sign1[k1]
        m[des.perm2[k2], cols] += -des.sign2[k2] if minus else des.sign2[k2]
        return m

    def _sandwich(self, v: int, c: np.ndarray) -> np.ndarray:
        """``M_vᵀ C M_v`` for a stack of d x d matrices ``c`` (..., d, d), by index operations.

        ``M_v = c I + N + N'`` with signed permutations, so ``Y = C M`` is ``c C`` plus two
        signed column gathers, and ``Mᵀ Y`` the same on rows: O(d²) instead of two matmuls.
        """
        des = self._design()
        k1, rest = divmod(v, 2 * self.variants)
        k2, minus = divmod(rest, 2)
        w = float(self.base_weight)
        p1, s1 = des.perm1[k1], des.sign1[k1].astype(np.float64)
        p2, s2 = des.perm2[k2], des.sign2[k2].astype(np.float64) * (-1.0 if minus else 1.0)
        y = w * c + c[..., :, p1] * s1 + c[..., :, p2] * s2
        return w * y + s1[:, None] * y[..., p1, :] + s2[:, None] * y[..., p2, :]

    def _tail(self) -> tuple[int, int]:
        """(number of whole blocks, rows of the last partial block)."""
        return divmod(int(self.n_rows), int(self.block_rows))

    def _variant_counts(self) -> np.ndarray:
        n_var = 2 * self.variants**2
        whole, _ = self._tail()
        counts = np.zeros(n_var, dtype=np.int64)
        for lo in range(0, whole, _COUNT_BATCH):
            blocks = np.arange(lo, min(whole, lo + _COUNT_BATCH))
            counts += np.bincount(self._variants_of(blocks), minlength=n_var)
        return counts

    def _scale2(self) -> float:
        return 2.0 ** (-2 * self._design().shift)

    def gram(self) -> np.ndarray:
        """Exact ``XᵀX`` (d x d, float64) from d x d terms only; no row is generated.

        Cost: one hash per block (vectorised) and ``2 · variants²`` d x d sandwiches.
        """
        des = self._design()
        c = _exact_gram(des.z)
        counts = self._variant_counts()
        g = np.zeros((self.n_features, self.n_features))
        for v in np.flatnonzero(counts):
            g += counts[v] * self._sandwich(int(v), c)
        whole, rest = self._tail()
        if rest:
            v = int(self._variants_of(np.array([whole]))[0])
            g += self._sandwich(v, _exact_gram(des.z[:rest]))
        return (g + g.T) / 2 * self._scale2()

    def exact_svd(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact singular values (descending) and right singular vectors (rows) of the matrix.

        From ``eigh`` of :meth:`gram`; the signs of the vectors are arbitrary.
        """
        lam, vec = np.linalg.eigh(self.gram())
        order = np.argsort(lam)[::-1]
        return np.sqrt(np.clip(lam[order], 0.0, None)), vec[:, order].T

    def key_grams(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact per-key Gram matrices.

        Returns
        -------
        keys : ndarray of shape (m,)
            The keys that occur, sorted.
        grams : ndarray of shape (m, d, d)
            ``X_keyᵀ X_key`` for each.
        counts : ndarray of shape (m,)
            Rows per key.
        """
        if not self.n_keys:
            raise InvalidParameterError("this SyntheticMatrix has n_keys=0; pass n_keys > 0.")
        des = self._design()
        d, g_rows = self.n_features, self.group_rows
        per = self.block_rows // g_rows
        n_var = 2 * self.variants**2
        cnt = self._key_counts(n_var, per)           # (n_keys, n_var, per)
        cg = np.stack([_exact_gram(des.z[i * g_rows:(i + 1) * g_rows]) for i in range(per)])
        grams = np.zeros((self.n_keys, d * d))
        for v in np.flatnonzero(cnt.sum(axis=(0, 2))):
            grams += cnt[:, v, :] @ self._sandwich(int(v), cg).reshape(per, d * d)
        grams = grams.reshape(self.n_keys, d, d)
        rows = cnt.sum(axis=(1, 2)) * g_rows
        whole, rest = self._tail()
        if rest:
            v = int(self._variants_of(np.array([whole]))[0])
            keys = self._group_keys(np.array([whole]))[0]
            for i in range(-(-rest // g_rows)):
                zg = des.z[i * g_rows:min(rest, (i + 1) * g_rows)]
                grams[keys[i]] += self._sandwich(v, _exact_gram(zg))
                rows[keys[i]] += zg.shape[0]
        present = np.flatnonzero(rows)
        out = grams[present]
        return present, (out + out.transpose(0, 2, 1)) / 2 * self._scale2(), rows[present]

    def _key_counts(self, n_var: int, per: int) -> np.ndarray:
        whole, _ = self._tail()
        cnt = np.zeros(self.n_keys * n_var * per, dtype=np.int64)
        batch = max(1, _COUNT_BATCH // per)
        for lo in range(0, whole, batch):
            blocks = np.arange(lo, min(whole, lo + batch))
            v = self._variants_of(blocks)[:, None]
            k = self._group_keys(blocks)
            idx = (k * n_var + v) * per + np.arange(per)
            cnt += np.bincount(idx.ravel(), minlength=cnt.size)
        return cnt.reshape(self.n_keys, n_var, per).astype(np.float64)

    def describe(self) -> dict[str, Any]:
        """Parameters as JSON-ready values (for benchmark configs)."""
        out = {k: getattr(self, k) for k in ("n_rows", "n_features", "seed", "decay", "n_keys",
                                              "dtype", "block_rows", "group_rows",
                                              "base_weight", "variants")}
        out["spectrum"] = None if self.spectrum is None else list(self.spectrum)
        return out


def _exact_gram(z: np.ndarray) -> np.ndarray:
    """``zᵀz`` of an integer block, exact: every product and partial sum is an integer below
    2**53 (see ``_MAX_BLOCK_ROWS``), so float64 BLAS rounds nothing, in any order."""
    zf = z.astype(np.float64)
    return zf.T @ zf


def _chunk(matrix: SyntheticMatrix, chunk_rows: int,
           block_id: Sequence[int] | None = None) -> np.ndarray:
    start = (block_id or (0,))[0] * chunk_rows
    return matrix.rows(start, start + chunk_rows)


def _key_chunk(matrix: SyntheticMatrix, chunk_rows: int,
               block_id: Sequence[int] | None = None) -> np.ndarray:
    start = (block_id or (0,))[0] * chunk_rows
    return matrix.row_keys(start, start + chunk_rows)

