"""Spectral transform of variable-length sequences (§4; §7.1 case 2), blockwise and lazy.

A sequence ``x_1..x_L`` of vectors becomes ``M`` spectral vectors ``f_m = Σ_k S[m, k] x_k``
(``S = cosine_basis(N, basis, keep=M)``), concatenated into one row of ``M · dim`` features
(feature ``m · dim + j`` is coordinate ``j`` of harmonic ``m``; harmonic-major, the paper's
"6 vectors of dimension 127 concatenated into one long column").

How a length-L sequence maps onto the N-point basis
---------------------------------------------------
Item ``k`` of the sequence (0-based) sits at basis position ``k``: a short sequence occupies
the first ``L`` points of the N-point grid and the rest count as zero vectors (zero padding);
items at positions ``k >= N`` are dropped (``long="truncate"``, the default; the number of
truncated sequences is returned by :meth:`SequenceTransform.count_truncated`) or rejected
(``long="error"``), or given the basis functions continued past N (``long="extend"``: the
cosine formula is evaluated at ``k >= N`` too — what the author's notebooks did, since they
never cut a word or sentence; the paper basis then repeats with period ``2(N-1)/(N-m)``). This
is what the paper implies: it fixes ``N = 15`` as "twice the token's
average length", i.e. a grid longer than a typical word onto which each word is laid without
stretching, and the author's code evaluates ``cos_fn(N, m, k)`` at each letter's own position
``k`` (ALGORITHMS.md §5.2). Stretching every sequence to N points would instead make "frown"
and "frowning" share no aligned letters. Note that the paper basis is not orthogonal on a
truncated grid; it is a feature map, not an invertible transform.

Accumulation
------------
Every item adds its contribution ``S[m, k] · x_k`` to harmonic block ``m`` — repeated symbols
(the two "g" of "frogging") and repeated words of a sentence are *summed*. The author's sentence
code assigned instead, so each block kept only the last word visited (ALGORITHMS.md §5.2, the
reason the paper's sentence table shows identical distances).

Inputs
------
* **Symbols** (one-hot items, e.g. letters as ASCII codes): ``values`` are integer codes in
  ``[0, n_symbols)``; the output is scipy CSR with ``M · n_symbols`` columns, computed from the
  codes directly — the one-hot matrix is never formed.
* **Vectors**: ``values`` of shape ``(n_values, dim)``; dense output ``(n_sequences, M · dim)``.
* **Token ids + embedding matrix**: ``values`` are row indices into ``embedding``
  (``(vocab, dim)``); a negative id is an unknown token that keeps its position but adds
  nothing. Dense output as above.
"""

from __future__ import annotations

import os
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin

from .._contract import FLOATS, LazyOutputMixin, check_input, finish
from ..errors import DataError, InvalidParameterError
from ..io.location import Location
from ..io.ragged import Ragged, read_ragged
from .basis import BASES, cosine_basis, cosine_weights

__all__ = ["LONG_POLICIES", "SequenceTransform", "extended_basis", "letter_codes",
           "sequence_transform",
           "transform_block_dense", "transform_block_symbols"]

LONG_POLICIES = ("truncate", "error", "extend")
#: ASCII symbols 1..127 map to one-hot slots 0..126 (the paper's 127 positions).
N_ASCII = 127


def extended_basis(n: int, m: int, basis: str, length: int) -> np.ndarray:
    """``(m, max(n, length))`` weights: the basis functions evaluated at positions ``0..L-1``.

    Columns ``0..n-1`` equal :func:`cosine_basis` ``(n, basis, keep=m)``; later columns continue
    the same cosine formula (``long="extend"``).
    """
    return cosine_weights(int(n), basis, int(m), max(int(n), int(length)))


def _positions(offsets: np.ndarray, n: int, long: str, first_row: int = 0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sequence id and position of every item, and the mask of items inside the N-point grid."""
    lengths = np.diff(offsets)
    if long == "error" and lengths.size and lengths.max() > n:
        bad = int(np.argmax(lengths > n))
        raise DataError(f"sequence {first_row + bad} has {int(lengths[bad])} items, more than "
                        f"N={n}; raise N or use long='truncate'.")
    seq = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
    pos = np.arange(int(offsets[-1] - offsets[0]), dtype=np.int64) - (offsets[:-1] - offsets[0])[seq]
    return seq, pos, pos < n


def _check_block(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    offsets = np.asarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.size < 1:
        raise DataError(f"offsets must be 1-D with n_sequences + 1 entries; got {offsets.shape}.")
    offsets = offsets - offsets[0]
    if offsets[-1] != values.shape[0] or np.any(np.diff(offsets) < 0):
        raise DataError(f"offsets must be non-decreasing and span the {values.shape[0]} values; "
                        f"got a span of {int(offsets[-1])}.")
    return offsets


def transform_block_symbols(codes: np.ndarray, offsets: np.ndarray, weights: np.ndarray,
                            n_symbols: int, *, long: str = "truncate", dtype: Any = np.float64,
                            first_row: int = 0) -> sp.csr_matrix:
    """Kernel: spectral features of symbol sequences, as CSR ``(n_seq, M · n_symbols)``.

    ``weights`` is the ``(M, N)`` basis. Entry ``(i, m · n_symbols + c)`` is
    ``Σ_{k < min(L_i, N): code_k = c} weights[m, k]`` — duplicates are summed.
    """
    codes = np.asarray(codes)
    offsets = _check_block(codes, offsets)
    if codes.ndim != 1 or codes.dtype.kind not in "iu":
        raise DataError(f"symbol codes must be a 1-D integer array; got {codes.dtype} with "
                        f"shape {codes.shape}.")
    if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= n_symbols):
        raise DataError(f"symbol codes must lie in [0, {n_symbols}); got "
                        f"{int(codes.min())}..{int(codes.max())}.")
    m, n = weights.shape
    n_seq = offsets.size - 1
    seq, pos, inside = _positions(offsets, n, long, first_row)
    seq, pos, code = seq[inside], pos[inside], codes[inside].astype(np.int64)
    rows = np.repeat(seq, m)
    cols = (np.arange(m, dtype=np.int64)[None, :] * n_symbols + code[:, None]).ravel()
    data = weights[:, pos].T.ravel().astype(dtype)
    out = sp.coo_matrix((data, (rows, cols)), shape=(n_seq, m * n_symbols)).tocsr()
    out.sum_duplicates()  # the accumulation: repeated symbols add up
    return out


def transform_block_dense(values: np.ndarray, offsets: np.ndarray, weights: np.ndarray, *,
                          embedding: np.ndarray | None = None, long: str = "truncate",
                          dtype: Any = np.float64, first_row: int = 0) -> np.ndarray:
    """Kernel: spectral features of vector sequences, dense ``(n_seq, M · dim)``.

    ``values`` holds vectors ``(n_values, dim)``, or token ids when ``embedding`` is given
    (negative ids contribute nothing). The weighted sum runs as one sparse-dense product
    ``A @ X`` with ``A[i · M + m, item] = weights[m, pos(item)]``, which accumulates every item.
    """
    values = np.asarray(values)
    offsets = _check_block(values, offsets)
    m, n = weights.shape
    n_seq = offsets.size - 1
    seq, pos, inside = _positions(offsets, n, long, first_row)
    if embedding is not None:
        if values.ndim != 1 or values.dtype.kind not in "iu":
            raise DataError(f"with an embedding matrix, values must be 1-D integer token ids; "
                            f"got {values.dtype} with shape {values.shape}.")
        if values.size and int(values.max()) >= embedding.shape[0]:
            raise DataError(f"token id {int(values.max())} is out of range for an embedding of "
                            f"{embedding.shape[0]} rows.")
        inside &= values >= 0
        x = embedding[values[inside]]
    else:
        if values.ndim != 2:
            raise DataError(f"vector sequences need values of shape (n_values, dim); got "
                            f"{values.shape}.")
        if values.size and not np.all(np.isfinite(values)):
            raise DataError(f"sequence values (sequences {first_row}+) contain NaN or inf.")
        x = values[inside]
    dim = int(embedding.shape[1] if embedding is not None else values.shape[1])
    seq, pos = seq[inside], pos[inside]
    rows = (seq[:, None] * m + np.arange(m)[None, :]).ravel()
    cols = np.repeat(np.arange(seq.size), m)
    data = weights[:, pos].T.ravel()
    a = sp.csr_matrix((data, (rows, cols)), shape=(n_seq * m, seq.size))
    out = np.asarray(a @ np.asarray(x, dtype=np.float64)).reshape(n_seq, m * dim)
    return out.astype(dtype, copy=False)


def letter_codes(words: Any, *, n_symbols: int = N_ASCII,
                 alphabet: str = "") -> tuple[np.ndarray, np.ndarray, int]:
    """Letter codes of ``words`` as ragged ``(codes, offsets)`` for the transform.

    Character ``c`` with ``1 <= ord(c) <= n_symbols`` gets slot ``ord(c) - 1``; the characters
    of ``alphabet`` (distinct, beyond ``n_symbols``, e.g. the non-ASCII letters of a vocabulary)
    get slots ``n_symbols, n_symbols + 1, ...`` in their order. Other characters (NUL, letters
    outside the alphabet) are dropped and counted. Returns ``(codes, offsets, n_dropped)``;
    codes lie in ``[0, n_symbols + len(alphabet))``.
    """
    words = list(words)
    lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    joined = "".join(words)
    raw = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    codes = raw - 1
    keep = (raw >= 1) & (raw <= n_symbols)
    if alphabet:
        extra = np.array([ord(c) for c in alphabet], dtype=np.int64)
        if np.unique(extra).size != extra.size or np.any(extra <= n_symbols):
            raise InvalidParameterError(
                f"alphabet must hold distinct characters beyond code {n_symbols}; got "
                f"{alphabet!r}.")
        order = np.argsort(extra)
        pos = np.minimum(np.searchsorted(extra[order], raw), extra.size - 1)
        found = extra[order][pos] == raw
        codes = np.where(found, n_symbols + order[pos], codes)
        keep |= found
    n_total = n_symbols + len(alphabet)
    n_dropped = int(raw.size - keep.sum())
    seq = np.repeat(np.arange(len(words)), lengths)
    kept_len = np.bincount(seq[keep], minlength=len(words)) if len(words) else lengths
    offsets = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum(kept_len, out=offsets[1:])
    return codes[keep].astype(np.uint8 if n_total <= 256 else np.int32), offsets, n_dropped


def _read_block(source: Any, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(source, tuple):  # in-memory (values, offsets) already cut to this block
        return source
    if isinstance(source, Location):  # a Zarr ragged store: reopen in the worker
        return read_ragged(source).block(lo, hi)
    return source.block(lo, hi)  # type: ignore[no-any-return]


def _block_task(source: Any, lo: int, hi: int, weights: np.ndarray, kind: str, n_symbols: int,
                embedding: np.ndarray | None, long: str, dtype: Any,
                extend: tuple[int, int, str] | None = None) -> Any:
    values, offsets = _read_block(source, lo, hi)
    if extend is not None:  # long="extend": continue the basis up to this block's longest item
        lengths = np.diff(np.asarray(offsets))
        weights = extended_basis(*extend, int(lengths.max()) if lengths.size else 0)
    if kind == "symbols":
        return transform_block_symbols(values, offsets, weights, n_symbols, long=long,
                                       dtype=dtype, first_row=lo)
    return transform_block_dense(values, offsets, weights, embedding=embedding, long=long,
                                 dtype=dtype, first_row=lo)


def _rows_block(block: Any, weights: np.ndarray, kind: str, n_symbols: int,
                embedding: np.ndarray | None, long: str, dtype: Any) -> Any:
    """Kernel: the rows of a 2-D block as equal-length sequences (one item per column)."""
    block = np.asarray(block)
    rows, length = block.shape
    offsets = np.arange(0, rows * length + 1, max(1, length), dtype=np.int64)[:rows + 1]
    if kind == "symbols":
        return transform_block_symbols(block.ravel(), offsets, weights, n_symbols, long=long,
                                       dtype=dtype)
    values = block.ravel() if embedding is not None else block.reshape(-1, 1)
    return transform_block_dense(values, offsets, weights, embedding=embedding, long=long,
                                 dtype=dtype)


class SequenceTransform(LazyOutputMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                        BaseEstimator):
    """Cosine spectral transform of sequences into fixed-size rows.

    Sequences come ragged (a :class:`~veob_dask.io.ragged.Ragged`, its store path, or a
    ``(values, offsets)`` tuple; the output is a lazy dask array) or as the rows of a 2-D array
    (numpy or dask: one sequence per row, one item per column — a number, a symbol code with
    ``n_symbols`` or a token id with ``embedding``; numpy in, numpy out; dask in, lazy dask out
    with the row chunks).

    Parameters
    ----------
    n : int, default=15
        Basis length N (the paper: twice the average word length).
    m : int, default=6
        Harmonics kept, ``1 <= m <= M`` (paper: 6).
    basis : {"paper", "dct2"}, default="paper"
        ``"paper"``: the paper's unnormalised ``s(N, m, k)`` (m = 1 is the highest frequency);
        ``"dct2"``: the orthonormal DCT-II, lowest M frequencies (see
        :func:`veob_dask.spectral.basis.cosine_basis`).
    n_symbols : int or None, default=None
        One-hot alphabet size for integer symbol sequences (127 for ASCII letters): sparse CSR
        output. ``None`` for vector or token-id sequences: dense output.
    embedding : ndarray of shape (vocab, dim), optional
        Token-id sequences are looked up in this matrix.
    long : {"truncate", "error", "extend"}, default="truncate"
        What to do with items beyond position N: drop them, raise, or continue the basis
        functions past N (the author's notebooks).
    chunk_sequences : int, default=50_000
        Sequences per dask block.
    dtype : {"float64", "float32"}, default="float64"

    Attributes
    ----------
    n_features_in_ : int
        Items per row, when fitted on a 2-D array.
    item_dim_ : int
        Features per item: ``n_symbols``, the embedding's width, the width of ragged vector
        items, or 1 for the numbers of a 2-D array. The output has ``m * item_dim_`` columns.
    n_passes_ : int
        Always 0: ``fit`` reads no data (the transform has no fitted state beyond shapes).

    Notes
    -----
    Laziness: :meth:`transform` of ragged input returns a dask array with one task per block of
    ``chunk_sequences`` sequences; a Zarr-backed :class:`~veob_dask.io.ragged.Ragged` is
    read by each task for its own block (pass its path for multi-process schedulers).
    ``transform`` needs no ``fit`` (a stateless transformer); ``fit`` checks the parameters and
    records the shapes for ``get_feature_names_out``.
    Memory: one block of items plus its output. Determinism: exact arithmetic order per block.

    Examples
    --------
    >>> from veob_dask.spectral.sequence import SequenceTransform, letter_codes
    >>> codes, offsets, _ = letter_codes(["frown", "frowning"])
    >>> st = SequenceTransform(n_symbols=127)
    >>> st.transform((codes, offsets)).compute().shape
    (2, 762)
    >>> SequenceTransform(n=4, m=2, basis="dct2").fit_transform(np.ones((3, 4))).shape
    (3, 2)
    """

    def __init__(self, n: int = 15, m: int = 6, *, basis: str = "paper",
                 n_symbols: int | None = None, embedding: np.ndarray | None = None,
                 long: str = "truncate", chunk_sequences: int = 50_000,
                 dtype: str = "float64") -> None:
        self.n = n
        self.m = m
        self.basis = basis
        self.n_symbols = n_symbols
        self.embedding = embedding
        self.long = long
        self.chunk_sequences = chunk_sequences
        self.dtype = dtype

    def _check(self) -> None:
        if self.basis not in BASES:
            raise InvalidParameterError(f"basis must be one of {BASES}; got {self.basis!r}.")
        if self.long not in LONG_POLICIES:
            raise InvalidParameterError(f"long must be one of {LONG_POLICIES}; got "
                                        f"{self.long!r}.")
        if int(self.chunk_sequences) < 1:
            raise InvalidParameterError(f"chunk_sequences must be >= 1; got "
                                        f"{self.chunk_sequences}.")
        if self.dtype not in ("float64", "float32"):
            raise InvalidParameterError(f"dtype must be 'float64' or 'float32'; got "
                                        f"{self.dtype!r}.")
        if self.n_symbols is not None and self.embedding is not None:
            raise InvalidParameterError("give n_symbols (one-hot symbols) or embedding (token "
                                        "ids), not both.")
        if self.n_symbols is not None and int(self.n_symbols) < 1:
            raise InvalidParameterError(f"n_symbols must be >= 1; got {self.n_symbols}.")

    @property
    def weights(self) -> np.ndarray:
        """The ``(M, N)`` basis matrix used."""
        return cosine_basis(int(self.n), self.basis, keep=int(self.m))

    def fit(self, X: Any = None, y: Any = None) -> SequenceTransform:
        """Check the parameters and record the input's shapes (no data is read).

        Parameters
        ----------
        X : Ragged, str, tuple, array-like or dask.array.Array, optional
            Sequences as :meth:`transform` takes them.
        y : None
            Ignored. Present for API consistency.

        Returns
        -------
        self
        """
        self._check()
        _ = self.weights  # checks m against n and the basis
        if X is None:
            self.item_dim_ = self.n_features_out(1) // int(self.m)
        elif _is_ragged(X):
            rag = _as_ragged(X)[0]
            dim = rag.item_shape[0] if rag.item_shape else None
            self.item_dim_ = self.n_features_out(dim) // int(self.m)
        else:
            self._rows(X, reset=True)
            self.item_dim_ = self.n_features_out(1) // int(self.m)
        self.n_passes_ = 0
        return self

    def _rows(self, X: Any, *, reset: bool) -> tuple[Any, bool]:
        """A 2-D array of sequences, checked (symbol codes and token ids must be integers)."""
        dtype = FLOATS if self.n_symbols is None and self.embedding is None else "numeric"
        x, lazy = check_input(self, X, reset=reset, dtype=dtype,
                              check_fitted_width=hasattr(self, "n_features_in_"))
        if dtype == "numeric" and np.dtype(x.dtype).kind not in "iu":
            raise DataError(f"symbol codes and token ids must be integers; got dtype {x.dtype}.")
        return x, lazy

    @property
    def _n_features_out(self) -> int:
        return int(self.m) * int(self.item_dim_)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    def n_features_out(self, dim: int | None = None) -> int:
        """Columns of the output: ``M · n_symbols`` or ``M · dim``."""
        if self.n_symbols is not None:
            return int(self.m) * int(self.n_symbols)
        if self.embedding is not None:
            return int(self.m) * int(np.asarray(self.embedding).shape[1])
        if dim is None:
            raise InvalidParameterError("dim is needed for vector sequences.")
        return int(self.m) * int(dim)

    def count_truncated(self, X: Any) -> int:
        """Number of sequences longer than N (items past N are dropped unless ``extend``)."""
        rag = read_ragged(X) if isinstance(X, (str, os.PathLike, Location)) else X
        if isinstance(rag, tuple):
            lengths = np.diff(np.asarray(rag[1]))
            return int((lengths > int(self.n)).sum())
        assert isinstance(rag, Ragged)
        total = 0
        for lo, hi in rag.iter_blocks(max(1, int(self.chunk_sequences))):
            total += int((rag.lengths(lo, hi) > int(self.n)).sum())
        return total

    def transform(self, X: Any) -> Any:
        """Spectral rows of the sequences ``X``.

        Parameters
        ----------
        X : Ragged, str, tuple, array-like or dask.array.Array
            A :class:`~veob_dask.io.ragged.Ragged` (in memory or from
            :func:`~veob_dask.io.ragged.read_ragged`), the path of a ragged Zarr store, or a
            ``(values, offsets)`` tuple of numpy arrays; or a 2-D array with one sequence per
            row.

        Returns
        -------
        dask.array.Array, ndarray or scipy.sparse.csr_matrix of shape (n_sequences, n_out)
            Lazy for ragged or dask input (blocks are scipy CSR for symbol input), in memory
            for in-memory 2-D input.
        """
        self._check()
        if not _is_ragged(X):
            return self._transform_rows(X)
        weights = np.ascontiguousarray(self.weights)
        dtype = np.dtype(self.dtype)
        rag, path = _as_ragged(X)
        kind = "symbols" if self.n_symbols is not None else "dense"
        n_symbols = int(self.n_symbols or 0)
        emb = None if self.embedding is None else np.asarray(self.embedding)
        if kind == "dense" and emb is None and len(rag.item_shape) != 1:
            raise DataError(f"vector sequences need items of shape (dim,); got item shape "
                            f"{rag.item_shape}. Pass n_symbols for symbol codes or embedding "
                            "for token ids.")
        n_out = self.n_features_out(rag.item_shape[0] if rag.item_shape else None)
        if len(rag) == 0:
            raise DataError("no sequences to transform.")
        token = tokenize(path.url if path else (rag.values, rag.offsets), weights, kind, n_symbols,
                         emb, self.long, str(dtype), self.chunk_sequences)
        emb_d = None if emb is None else dask.delayed(emb, pure=True, name=f"veob-emb-{token}")
        blocks = []
        for lo, hi in rag.iter_blocks(int(self.chunk_sequences)):
            src: Any = path if path is not None else rag.block(lo, hi)
            task = dask.delayed(_block_task, pure=True)(
                src, lo, hi, weights, kind, n_symbols, emb_d, self.long, dtype,
                (int(self.n), int(self.m), self.basis) if self.long == "extend" else None,
                dask_key_name=f"veob-seqst-{token}-{lo}")
            meta = (sp.csr_matrix((0, n_out), dtype=dtype) if kind == "symbols"
                    else np.empty((0, n_out), dtype=dtype))
            blocks.append(da.from_delayed(task, shape=(hi - lo, n_out), dtype=dtype, meta=meta))
        out: da.Array = blocks[0] if len(blocks) == 1 else da.concatenate(blocks, axis=0)
        return out

    def _transform_rows(self, X: Any) -> Any:
        x, lazy = self._rows(X, reset=False)
        if self.long == "extend":
            raise InvalidParameterError("long='extend' is for ragged sequences; rows of a 2-D "
                                        "array have one length: use a basis of that length.")
        kind = "symbols" if self.n_symbols is not None else "dense"
        emb = None if self.embedding is None else np.asarray(self.embedding)
        args = (np.ascontiguousarray(self.weights), kind, int(self.n_symbols or 0), emb,
                self.long, np.dtype(self.dtype))
        if not lazy:
            return _rows_block(x, *args)
        n_out = self.n_features_out(1)
        meta = (sp.csr_matrix((0, n_out), dtype=self.dtype) if kind == "symbols"
                else np.empty((0, n_out), dtype=self.dtype))
        out: da.Array = da.map_blocks(_rows_block, x, *args, dtype=np.dtype(self.dtype),
                                      chunks=(x.chunks[0], (n_out,)), meta=meta)
        return finish(out, lazy)


def _is_ragged(X: Any) -> bool:
    return isinstance(X, (str, os.PathLike, Location, tuple, Ragged))


def _as_ragged(X: Any) -> tuple[Ragged, Location | None]:
    """A :class:`Ragged` view of ragged input, and its store location when it has one."""
    if isinstance(X, (str, os.PathLike, Location)):
        rag = read_ragged(X)
        return rag, rag.location
    if isinstance(X, tuple):
        return Ragged(X[0], X[1]), None
    return X, X.location


def sequence_transform(X: Any, *, n: int = 15, m: int = 6, basis: str = "paper",
                       n_symbols: int | None = None, embedding: np.ndarray | None = None,
                       long: str = "truncate", chunk_sequences: int = 50_000,
                       dtype: str = "float64") -> da.Array:
    """Functional form of :class:`SequenceTransform`; returns the lazy dask array."""
    return SequenceTransform(n, m, basis=basis, n_symbols=n_symbols, embedding=embedding,
                             long=long, chunk_sequences=chunk_sequences,
                             dtype=dtype).transform(X)
