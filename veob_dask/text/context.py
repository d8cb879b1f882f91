"""Context word embedding (paper §6.3): two bags of neighbouring words → sparse matrix → SVD.

For every token of every sentence (at most ``max_words`` tokens, the corpus of §6.5), the words
at positions −``window``..−1 are counted in the word's *before* bag and the words at
+1..+``window`` in its *after* bag. Row ``w`` of the count matrix ``C`` (vocabulary x
2·vocabulary) holds both bags: column ``c`` for "c came before w", column ``V + c`` for "c came
after w" (the paper's 83,590 x 167,180 for ``window = 2``; the paper writes the transposed
matrix, one column per word). Contexts never cross a sentence boundary.

Weightings (``weighting=``):

``"raw"`` — the paper's variant
    Each bag of each word is divided by its sum, so each non-empty bag sums to 1 (as the
    author's ``word_ctx2_imdb.jl`` does; ALGORITHMS.md §5.2).
``"ppmi"`` — beyond the paper
    Positive pointwise mutual information, computed per bag:
    ``max(0, log(n(w, c) · N / (n(w) · n_α(c))))`` with the context counts smoothed by
    ``α = 0.75`` (``n_α(c) = N · n(c)^α / Σ n(c')^α``), as in Levy, Goldberg & Dagan, "Improving
    Distributional Similarity with Lessons Learned from Word Embeddings", TACL 2015, §3.1–3.2.

The weighted matrix goes to :class:`veob_dask.svd.SVDEmbedding` (default
``solver="randomized"``, the range finder for wide sparse data) and each word's embedding is
the matching row of ``V · S^p`` where ``M = U S Vᵀ`` is the SVD of the transposed (2·vocabulary
x vocabulary, one column per word, as the paper) weighted matrix: ``p = 1`` is the paper's
projection ``Uᵀ M``; ``p = 0.5`` is the "eigenvalue weighting" Levy et al. recommend (§3.3).

Notes
-----
Chunks: the corpus is read in blocks of sentences; each Dask task reads one block of token ids
from Zarr, builds a scipy COO matrix of its (word, context) pairs, converts it to CSR (which
sums duplicates) and returns it; the partial matrices are summed as a tree (``split_every``
at a time). Memory: one block of token ids per task plus partial count matrices (bounded by
the number of distinct pairs, ~15 M for IMDB → ~130 MB in CSR). The SVD then reads the weighted
matrix in row chunks. Both stages compute on the Dask scheduler in scope (a ``distributed``
client, or dask's threaded scheduler by default); choosing one is the caller's business.
"""

from __future__ import annotations

import os
import time
from typing import Any

import dask
import numpy as np
import scipy.sparse as sp

from veob_dask._reduce import tree_reduce
from veob_dask.errors import InvalidParameterError
from veob_dask.svd.embedding import total_energy
from veob_dask.text.corpus import Corpus
from veob_dask.text.weighting import ppmi
from veob_dask.text.wordvectors import WordVectors

__all__ = ["WEIGHTINGS", "build_context", "context_counts", "weight_counts"]

WEIGHTINGS = ("raw", "ppmi")


def _block_counts(corpus_path: str, start: int, stop: int, n_words: int,
                  max_words: int | None, window: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Kernel: context counts and word counts of sentences ``start:stop`` (reads Zarr)."""
    values, offsets = Corpus(corpus_path).sentence_tokens(start, stop)
    lengths = np.diff(offsets)
    keep = (lengths > 0) if max_words is None else (lengths > 0) & (lengths <= max_words)
    if not keep.all():
        mask = np.repeat(keep, lengths)
        values = values[mask]
        lengths = lengths[keep]
    values = values.astype(np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = np.arange(values.size) - starts
    length_of = np.repeat(lengths, lengths)
    rows, cols = [], []
    for d in range(1, window + 1):
        i = np.flatnonzero(pos >= d)  # the word d positions before token i
        rows.append(values[i])
        cols.append(values[i - d])
        j = np.flatnonzero(pos + d < length_of)  # the word d positions after token j
        rows.append(values[j])
        cols.append(values[j + d] + n_words)
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    counts = sp.coo_matrix((np.ones(r.size, dtype=np.float32), (r, c)),
                           shape=(n_words, 2 * n_words)).tocsr()
    counts.sum_duplicates()
    return counts, np.bincount(values, minlength=n_words)


def _add(parts: list[tuple[sp.csr_matrix, np.ndarray]]) -> tuple[sp.csr_matrix, np.ndarray]:
    mat = parts[0][0]
    cnt = parts[0][1]
    for m, c in parts[1:]:
        mat = mat + m
        cnt = cnt + c
    return mat, cnt


def context_counts(corpus: Corpus | str | os.PathLike[str], *, window: int = 2,
                   max_words: int | None = 32, chunk_sentences: int = 50_000,
                   split_every: int = 4) -> tuple[sp.csr_matrix, np.ndarray]:
    """Count the before/after context words of every vocabulary word.

    Parameters
    ----------
    corpus : Corpus or path-like
        A corpus store (:func:`veob_dask.text.corpus.build_corpus`).
    window : int, default=2
        Context positions on each side (the paper: 2).
    max_words : int or None, default=32
        Use only sentences with at most this many tokens (the paper's subset); None: all.
    chunk_sentences : int, default=50_000
        Sentences per Dask task.
    split_every : int, default=4
        Fan-in of the tree sum.

    Returns
    -------
    counts : scipy.sparse.csr_matrix of shape (vocab_size, 2 * vocab_size), float32
        ``counts[w, c]``: times ``c`` occurred before ``w``; ``counts[w, V + c]``: after.
    word_counts : ndarray of shape (vocab_size,)
        Occurrences of each word in the sentences used.
    """
    if not isinstance(corpus, Corpus):
        corpus = Corpus(corpus)
    if int(window) != window or window < 1:
        raise InvalidParameterError(f"window must be a positive integer; got {window!r}.")
    if max_words is not None and max_words < 1:
        raise InvalidParameterError(f"max_words must be a positive integer or None; got "
                                    f"{max_words!r}.")
    if chunk_sentences < 1:
        raise InvalidParameterError(f"chunk_sentences must be >= 1; got {chunk_sentences!r}.")
    n = corpus.vocab_size
    tasks = [dask.delayed(_block_counts, pure=True)(corpus.path, lo,
                                                    min(lo + chunk_sentences, corpus.n_sentences),
                                                    n, max_words, int(window))
             for lo in range(0, corpus.n_sentences, chunk_sentences)]
    (counts, word_counts), = dask.compute(tree_reduce(tasks, _add, split_every=split_every,
                                                      name="veob-context-sum"))
    return counts, word_counts


def weight_counts(counts: sp.csr_matrix, weighting: str = "raw", *,
                  alpha: float = 0.75) -> sp.csr_matrix:
    """Weight a two-bag count matrix (see the module docstring).

    Parameters
    ----------
    counts : scipy.sparse matrix of shape (n, 2 * m)
        Before bag in the first ``m`` columns, after bag in the last ``m``.
    weighting : {"raw", "ppmi"}, default="raw"
    alpha : float, default=0.75
        Context-distribution smoothing of PPMI.

    Returns
    -------
    scipy.sparse.csr_matrix, float32, same shape and sparsity (PPMI drops non-positive cells).
    """
    if weighting not in WEIGHTINGS:
        raise InvalidParameterError(f"weighting must be one of {WEIGHTINGS}; got {weighting!r}.")
    if not 0 < alpha <= 1:
        raise InvalidParameterError(f"alpha must be in (0, 1]; got {alpha!r}.")
    c = sp.csr_matrix(counts, dtype=np.float64)
    if c.shape[1] % 2:
        raise InvalidParameterError(f"a two-bag matrix has an even number of columns; got "
                                    f"shape {c.shape}.")
    m = c.shape[1] // 2
    out = []
    for bag in (c[:, :m], c[:, m:]):
        bag = sp.csr_matrix(bag)
        row_sum = np.asarray(bag.sum(axis=1)).ravel()
        rows = np.repeat(np.arange(bag.shape[0]), np.diff(bag.indptr))
        if weighting == "raw":
            scale = np.divide(1.0, row_sum, out=np.zeros_like(row_sum), where=row_sum > 0)
            bag.data *= scale[rows]
        else:
            bag = ppmi(bag, alpha=alpha)
        out.append(bag)
    return sp.hstack(out, format="csr", dtype=np.float32)


def build_context(corpus: Corpus | str | os.PathLike[str], *, n_components: int = 50,
                  weighting: str = "raw", window: int = 2, max_words: int | None = 32,
                  min_count: int | None = None, scale_exponent: float | None = None,
                  solver: str = "randomized", n_iter: int = 4, n_oversamples: int = 20,
                  random_state: int = 0, chunk_sentences: int = 50_000,
                  chunk_rows: int = 20_000) -> tuple[WordVectors, dict[str, float]]:
    """Build the context word embedding of §6.3 from a corpus store.

    Parameters
    ----------
    corpus : Corpus or path-like
        Corpus store.
    n_components : int, default=50
        Embedding dimension (the paper: 50).
    weighting : {"raw", "ppmi"}, default="raw"
        ``"raw"``: bag frequencies as the paper; ``"ppmi"``: positive PMI (beyond the paper).
    window : int, default=2
        Context words on each side.
    max_words : int or None, default=32
        Sentences longer than this are skipped (the paper's corpus of §6.5).
    min_count : int, optional
        Words (rows and context columns) seen fewer times in those sentences are dropped.
        Default 1 for ``"raw"`` (every word, as the paper) and 5 for ``"ppmi"`` (gensim
        Word2Vec's default; PMI of rare words is noise).
    scale_exponent : float, optional
        ``p`` in ``U · S^p``; default 1 for ``"raw"`` (the paper) and 0.5 for ``"ppmi"``.
    solver, n_iter, n_oversamples, random_state
        Passed to :class:`veob_dask.svd.SVDEmbedding`.
    chunk_sentences : int, default=50_000
        Sentences per counting task.
    chunk_rows : int, default=20_000
        Rows (context columns) per chunk of the matrix handed to the SVD.

    Returns
    -------
    vectors : WordVectors
        One row per kept word; ``metadata`` records the parameters, shape, nnz and stage times.
    seconds : dict
        Wall seconds of the stages ``"count"``, ``"weight"``, ``"svd"`` and ``"total"``.
    """
    if weighting not in WEIGHTINGS:
        raise InvalidParameterError(f"weighting must be one of {WEIGHTINGS}; got {weighting!r}.")
    if min_count is None:
        min_count = 1 if weighting == "raw" else 5
    if int(min_count) != min_count or min_count < 1:
        raise InvalidParameterError(f"min_count must be a positive integer; got {min_count!r}.")
    if not isinstance(corpus, Corpus):
        corpus = Corpus(corpus)
    p = (1.0 if weighting == "raw" else 0.5) if scale_exponent is None else float(scale_exponent)
    t0 = time.perf_counter()
    counts, word_counts = context_counts(corpus, window=window, max_words=max_words,
                                         chunk_sentences=chunk_sentences)
    t1 = time.perf_counter()
    kept = np.flatnonzero(word_counts >= min_count)
    if kept.size < 2:
        raise InvalidParameterError(
            f"only {kept.size} words occur at least min_count={min_count} times; lower "
            "min_count or use a larger corpus.")
    n = corpus.vocab_size
    counts = counts[kept][:, np.concatenate([kept, kept + n])]
    weighted = weight_counts(counts, weighting)
    t2 = time.perf_counter()
    k = int(min(n_components, kept.size - 1))
    emb = _fit_columns(weighted, k, chunk_rows=chunk_rows, solver=solver, n_iter=n_iter,
                       n_oversamples=n_oversamples, random_state=random_state)
    s = np.asarray(emb.singular_values_, dtype=np.float64)
    proj = np.asarray(emb.components_, dtype=np.float64).T * (s ** p)
    t3 = time.perf_counter()
    vocab = corpus.vocabulary
    seconds = {"count": t1 - t0, "weight": t2 - t1, "svd": t3 - t2, "total": t3 - t0}
    meta = {
        "model": "context", "section": "6.3", "weighting": weighting, "window": window,
        "max_words": max_words, "min_count": min_count, "scale_exponent": p,
        "n_components": k, "solver": emb.solver_, "shape": [int(weighted.shape[0]),
                                                            int(weighted.shape[1])],
        "nnz": int(weighted.nnz), "singular_values": [float(v) for v in s],
        "total_energy": total_energy(emb),
        "corpus": corpus.path, "seconds": {key: round(v, 3) for key, v in seconds.items()},
    }
    return WordVectors([vocab[i] for i in kept], proj.astype(np.float32), meta), seconds


def _fit_columns(weighted: sp.csr_matrix, k: int, *, chunk_rows: int, **svd_params: Any) -> Any:
    """The fitted :class:`~veob_dask.svd.SVDEmbedding` of the matrix in the paper's
    orientation: one column per word (2V x V), so the SVD's feature side is the vocabulary and
    the word embeddings are ``S^p Vᵀ``, read off the fitted components directly."""
    import dask.array as da

    from veob_dask.svd import SVDEmbedding

    cols = sp.csr_matrix(weighted.T)
    x = da.from_array(cols, chunks=(min(chunk_rows, cols.shape[0]), -1), asarray=False)
    return SVDEmbedding(n_components=k, **svd_params).fit(x)
