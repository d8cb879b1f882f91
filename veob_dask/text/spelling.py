"""Word orthography (spelling) embedding, §6.2: letters → 6 x 127 cosine features → SVD 40.

Pipeline (each stage timed by :func:`build_spelling`):

1. **words**: a vocabulary — the word list of an IMDB corpus store
   (:class:`veob_dask.text.corpus.Corpus`), a word-list file (one word per line, e.g.
   ``imdb.vocab`` or ``/usr/share/dict/american-english``), or any sequence of str;
2. **letters**: codes, ragged (:func:`veob_dask.spectral.sequence.letter_codes`): the 127
   ASCII symbols, then the *alphabet* of the vocabulary — every distinct character beyond ASCII
   in its words (NFC-normalised, so "é" is one letter however it was typed), sorted, at most
   :data:`MAX_EXTRA_LETTERS`. The alphabet is stored in the model's metadata; a word to embed
   later that uses a letter outside it is refused with a message naming the letter, never
   embedded with letters silently missing;
3. **transform**: :class:`~veob_dask.spectral.sequence.SequenceTransform` with the paper's
   ``N = 15``, ``1 <= m <= 6`` and its basis ``s(N, m, k)``, one-hot letters summed per harmonic
   block, giving a sparse ``(n_words, 6 · n_symbols)`` matrix (``n_symbols = 127`` plus the
   alphabet; a lazy dask array of CSR blocks; the one-hot letters are never densified). Letters
   past position 15 are dropped (see the module :mod:`veob_dask.spectral.sequence` for why
   position ``k`` is basis point ``k``);
4. **svd**: :class:`~veob_dask.svd.SVDEmbedding` with the exact one-pass Gram solver (the matrix
   is tall: 762 columns for an ASCII vocabulary), top 40 components;
5. **project**: rows ``X Vᵀ = U Σ``, divided by ``σ₁`` as the author's notebook does
   (ALGORITHMS.md §5.2), so squared Euclidean distances have the paper's magnitude.

The paper text describes the ``6 x 127`` layout (``layout="blocks"``, the default); the author's
notebook summed all six harmonics into one row per letter (ALGORITHMS.md §5.2), available as
``layout="summed"`` (``n_symbols`` features) to reproduce the paper's neighbour lists more
closely.

A spelling model keeps its SVD basis (``extras["components"]``) and every transform parameter
in its metadata, so :func:`encode_words` embeds *any* word — also one outside the vocabulary,
like the paper's query "twighlight" — exactly as the vocabulary was embedded.
"""

from __future__ import annotations

import os
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ..errors import DataError, InvalidParameterError
from ..spectral.sequence import N_ASCII, SequenceTransform, letter_codes
from ..svd import SVDEmbedding, project, total_energy
from ..svd.gram import gram_matrix, spectrum_from_gram
from ..svd.kernels import project_block
from .tokenize import decode_text_file
from .wordvectors import WordVectors

__all__ = ["LAYOUTS", "MAX_EXTRA_LETTERS", "SCALES", "build_spelling", "encode_words",
           "load_word_list", "paper_cells", "spelling_alphabet", "spelling_embedding",
           "spelling_features", "spelling_neighbors"]

SCALES = ("s1", "norm", "none")
LAYOUTS = ("blocks", "summed")
#: Letters beyond ASCII one spelling model can hold (6 x 255 features at most).
MAX_EXTRA_LETTERS = 128


def _nfc(words: Iterable[str]) -> list[str]:
    return [w if w.isascii() else unicodedata.normalize("NFC", w) for w in words]


def _describe(chars: Iterable[str], limit: int = 12) -> str:
    chars = list(chars)
    shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


def spelling_alphabet(words: Sequence[str]) -> str:
    """The letters beyond ASCII that ``words`` use (NFC), sorted: a spelling model's alphabet.

    Raises
    ------
    DataError
        If there are more than :data:`MAX_EXTRA_LETTERS` of them (the message names the most
        frequent), since each letter adds ``m`` columns to the spectral features.
    """
    counts: dict[str, int] = {}
    for w in _nfc(words):
        if not w.isascii():
            for c in w:
                if ord(c) > N_ASCII:
                    counts[c] = counts.get(c, 0) + 1
    if len(counts) > MAX_EXTRA_LETTERS:
        common = sorted(counts, key=lambda c: (-counts[c], c))
        raise DataError(
            f"the words use {len(counts)} distinct letters beyond ASCII, more than the "
            f"{MAX_EXTRA_LETTERS} a spelling model holds; the most frequent: "
            f"{_describe(common, 8)}. Build from a word list in fewer scripts (or transliterate "
            "it) first.")
    return "".join(sorted(counts))


_LETTERS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def load_word_list(source: str | os.PathLike[str] | Iterable[str], *,
                   lowercase: bool = False, letters_only: bool | None = None,
                   report: dict[str, int] | None = None) -> list[str]:
    """Distinct words, in first-seen order, from a corpus store, a word-list file or an iterable.

    ``letters_only`` keeps only words made of letters (with inner apostrophes: "don't"), as the
    author's notebook kept "letters only words"; by default it is on for a corpus store (whose
    vocabulary also holds punctuation and numbers) and off otherwise.

    A word-list file holds one word per line (the first white-space separated field is taken,
    so ``word<TAB>count`` files work); empty lines are skipped, and a line with bytes that are
    not UTF-8 is skipped and counted. A file in another encoding (UTF-16, Latin-1, binary...)
    is refused with its likely encoding named (see
    :func:`~veob_dask.text.tokenize.decode_text_file`). ``report`` (if given) receives the
    counts ``{"lines", "empty", "bad_utf8", "duplicates"}``.

    Raises
    ------
    FileNotFoundError
        If a path does not exist.
    DataError
        If the file is not UTF-8 text, or no word is found.
    """
    counts = {"lines": 0, "empty": 0, "bad_utf8": 0, "duplicates": 0}
    raw: Iterable[str]
    is_corpus = False
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            from .corpus import Corpus

            raw = Corpus(p).vocabulary
            is_corpus = True
        elif p.is_file():
            raw = _read_lines(p, counts)
        else:
            raise FileNotFoundError(f"no word list or corpus store at {str(p)!r}.")
    else:
        raw = source
    if letters_only is None:
        letters_only = is_corpus
    if letters_only:
        counts["not_letters"] = 0
    seen: dict[str, None] = {}
    for w in raw:
        counts["lines"] += is_corpus or not isinstance(source, (str, os.PathLike))
        w = w.strip()
        if not w:
            counts["empty"] += 1
            continue
        if letters_only and not _LETTERS.fullmatch(w):
            counts["not_letters"] += 1
            continue
        if lowercase:
            w = w.lower()
        if w in seen:
            counts["duplicates"] += 1
        else:
            seen[w] = None
    if report is not None:
        report.update(counts)
    if not seen:
        raise DataError(f"no words found in {source!r}.")
    return list(seen)


def _read_lines(path: Path, counts: dict[str, int]) -> list[str]:
    with open(path, "rb") as fh:
        data = fh.read()
    decode_text_file(data, f"word list {str(path)!r}")  # refuses another encoding, naming it
    out = []
    for line in data.splitlines():
        counts["lines"] += 1
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            counts["bad_utf8"] += 1
            continue
        field = text.split()
        if not field:
            counts["empty"] += 1
            continue
        out.append(field[0].lstrip("\ufeff"))
    return out


def _sum_blocks(block: Any, m: int, n_symbols: int = N_ASCII) -> Any:
    """Kernel: add the ``m`` harmonic blocks of ``n_symbols`` columns (the author's layout)."""
    fold = sp.vstack([sp.identity(n_symbols, format="csr")] * m, format="csr")
    return sp.csr_matrix(block @ fold)


def spelling_features(words: Sequence[str], *, n: int = 15, m: int = 6, basis: str = "paper",
                      layout: str = "blocks", chunk_words: int = 50_000,
                      alphabet: str = "") -> tuple[Any, int]:
    """Lazy sparse letter-spectrum matrix, and the count of dropped characters (NUL and letters
    outside ASCII and ``alphabet``).

    ``layout="blocks"``: ``(n_words, m · n_symbols)``; ``"summed"``: ``(n_words, n_symbols)``,
    with ``n_symbols = 127 + len(alphabet)``. Words are NFC-normalised first.
    """
    if layout not in LAYOUTS:
        raise InvalidParameterError(f"layout must be one of {LAYOUTS}; got {layout!r}.")
    if not len(words):
        raise DataError("no words to embed.")
    n_sym = N_ASCII + len(alphabet)
    codes, offsets, dropped = letter_codes(_nfc(words), alphabet=alphabet)
    st = SequenceTransform(n, m, basis=basis, n_symbols=n_sym, chunk_sequences=chunk_words)
    x = st.transform((codes, offsets))
    if layout == "summed":
        x = x.map_blocks(_sum_blocks, m, n_sym, chunks=(x.chunks[0], (n_sym,)), dtype=x.dtype,
                         meta=sp.csr_matrix((0, n_sym), dtype=x.dtype))
    return x, dropped


def _scale(emb: SVDEmbedding, scale: str) -> float:
    if scale not in SCALES:
        raise InvalidParameterError(f"scale must be one of {SCALES}; got {scale!r}.")
    s = emb.singular_values_
    if scale == "s1":
        return 1.0 / float(s[0]) if s[0] > 0 else 1.0
    if scale == "norm":
        nrm = float(np.linalg.norm(s))
        return 1.0 / nrm if nrm > 0 else 1.0
    return 1.0


def _onehot_block(codes: np.ndarray, offsets: np.ndarray, n: int,
                  n_symbols: int = N_ASCII) -> sp.csr_matrix:
    """Kernel: one nonzero per letter at column ``position · n_symbols + code`` (positions < n)."""
    lengths = np.diff(offsets)
    seq = np.repeat(np.arange(lengths.size), lengths)
    pos = np.arange(codes.size) - offsets[:-1][seq]
    keep = pos < n
    cols = pos[keep] * n_symbols + codes[keep].astype(np.int64)
    indptr = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(np.minimum(lengths, n), out=indptr[1:])
    out = sp.csr_matrix((np.ones(cols.size), cols, indptr),
                        shape=(lengths.size, n * n_symbols))
    out.sum_duplicates()
    return out


def _position_onehot(words: Sequence[str], n: int, chunk_words: int, alphabet: str = "") -> Any:
    """Lazy sparse ``(n_words, n · n_symbols)``: column ``k · n_symbols + c`` is 1 if letter
    ``k`` is ``c``."""
    n_sym = N_ASCII + len(alphabet)
    codes, offsets, _ = letter_codes(_nfc(words), alphabet=alphabet)
    blocks = []
    for lo in range(0, len(words), chunk_words):
        hi = min(len(words), lo + chunk_words)
        a, b = offsets[lo], offsets[hi]
        task = dask.delayed(_onehot_block, pure=True)(codes[a:b], offsets[lo:hi + 1] - a, n,
                                                      n_sym)
        blocks.append(da.from_delayed(task, shape=(hi - lo, n * n_sym), dtype=np.float64,
                                      meta=sp.csr_matrix((0, n * n_sym))))
    return blocks[0] if len(blocks) == 1 else da.concatenate(blocks, axis=0)


def _fold_matrix(weights: np.ndarray, layout: str, n_symbols: int = N_ASCII) -> sp.csr_matrix:
    """``K`` with ``X = Y K``: position one-hot ``Y`` to harmonic features ``X``."""
    k = sp.kron(sp.csr_matrix(weights.T), sp.identity(n_symbols), format="csr")
    if layout == "summed":
        k = k @ sp.vstack([sp.identity(n_symbols)] * weights.shape[0], format="csr")
    return sp.csr_matrix(k)


def _fold_gram(g_y: np.ndarray, weights: np.ndarray, layout: str,
               n_symbols: int = N_ASCII) -> np.ndarray:
    """Augmented ``[X, 1]ᵀ[X, 1]`` from augmented ``[Y, 1]ᵀ[Y, 1]`` by two small tensordots."""
    n = weights.shape[1]
    c = n_symbols
    g = g_y[:-1, :-1].reshape(n, c, n, c)
    g = np.tensordot(weights, g, axes=(1, 0))            # (m, c, n, c)
    g = np.tensordot(g, weights, axes=(2, 1))            # (m, c, c, m)
    g = g.transpose(0, 1, 3, 2)                          # (m1, c1, m2, c2)
    sums = weights @ g_y[:-1, -1].reshape(n, c)          # (m, c)
    if layout == "summed":
        g, sums = g.sum(axis=(0, 2)), sums.sum(axis=0)
    d = sums.size
    out = np.empty((d + 1, d + 1))
    out[:d, :d] = g.reshape(d, d)
    out[:d, d] = out[d, :d] = sums.ravel()
    out[d, d] = g_y[-1, -1]
    return out


def _fit_factored(words: Sequence[str], k: int, n: int, m: int, basis: str, layout: str,
                  chunk_words: int, alphabet: str = "") -> tuple[SVDEmbedding, Any, np.ndarray]:
    """Exact Gram-route SVD of ``X = Y K`` through the Gram matrix of ``Y`` (fewer nonzeros).

    Each word has ``L`` nonzeros in ``Y`` but ``≈ 6 L`` in ``X``, so ``YᵀY`` costs about
    ``L²`` per word instead of ``36 L²``; ``XᵀX = Kᵀ (YᵀY) K`` exactly.
    """
    n_sym = N_ASCII + len(alphabet)
    weights = SequenceTransform(n, m, basis=basis, n_symbols=n_sym).weights
    fold = _fold_matrix(weights, layout, n_sym)
    y = _position_onehot(words, n, chunk_words, alphabet)
    (g_y,) = dask.compute(gram_matrix(y))
    d = fold.shape[1]
    g_x = _fold_gram(np.asarray(g_y), weights, layout, n_sym)
    # One BLAS thread: on a busy machine a multi-threaded eigh of 762 x 762 oversubscribes the
    # cores (measured: benchmarks/README.md, "Measurements behind choices in the code").
    with threadpool_limits(limits=1, user_api="blas"):
        res = spectrum_from_gram(g_x, center=False)
    emb = SVDEmbedding(n_components=k, solver="gram")
    emb._set_state(res, k, d)
    emb.solver_ = "gram"
    emb.solver_reason_ = "exact Gram route, factored through the letter-position one-hot matrix"
    return emb, y, np.asarray((fold @ emb.components_.T).T)


def _check_letters(words: Sequence[str], alphabet: str, what: str) -> None:
    """Refuse words with letters outside ASCII + ``alphabet``, or with no letter at all."""
    known = set(alphabet)
    for w in _nfc(words):
        if w.isascii() and w.strip("\x00"):
            continue
        unknown = sorted({c for c in w if not 1 <= ord(c) <= N_ASCII and c not in known})
        if unknown:
            raise DataError(
                f"{w!r} has letters {what}: {_describe(unknown)}; a spelling model embeds the "
                f"127 ASCII symbols and the {len(alphabet)} letters beyond them found in its "
                "vocabulary when it was built. Rebuild it from a word list that has them.")
        if not w or not any(1 <= ord(c) <= N_ASCII or c in known for c in w):
            raise DataError(f"{w!r} has no letter to spell with; it would get the zero vector.")


def spelling_embedding(words: Sequence[str], *, n_components: int = 40, n: int = 15, m: int = 6,
                       basis: str = "paper", scale: str = "s1", layout: str = "blocks",
                       solver: str = "factored", chunk_words: int = 50_000,
                       timings: dict[str, float] | None = None, alphabet: str | None = None
                       ) -> tuple[np.ndarray, SVDEmbedding, dict[str, Any]]:
    """Spelling vectors ``(n_words, n_components)`` of ``words``, the fitted SVD and stats.

    ``alphabet`` (the letters beyond ASCII, see :func:`spelling_alphabet`) is taken from
    ``words`` by default; ``stats["alphabet"]`` and ``stats["n_symbols"]`` record it. A word
    with letters outside it (only possible when it is given) or with no letter at all is
    refused with a :class:`~veob_dask.errors.DataError` naming it.

    ``solver="gram"`` fits :class:`SVDEmbedding` (exact Gram route) on the spectral features
    ``X`` directly; ``"factored"`` (default) computes the same Gram matrix ``XᵀX`` as
    ``Kᵀ (YᵀY) K`` from the letter-position one-hot matrix ``Y`` (``X = Y K``, ``K`` built from
    the cosine basis), about six times fewer nonzeros per word, and projects ``Y (K Vᵀ)``.
    Both give the same basis up to rounding (tested). ``timings`` receives seconds for
    ``features`` (lazy graph), ``svd`` (one pass: features and Gram) and ``project`` (second
    pass).
    """
    if solver not in ("factored", "gram"):
        raise InvalidParameterError(f"solver must be 'factored' or 'gram'; got {solver!r}.")
    t = time.perf_counter()
    alpha = spelling_alphabet(words) if alphabet is None else alphabet
    _check_letters(words, alpha, "outside the alphabet given")
    x, dropped = spelling_features(words, n=n, m=m, basis=basis, layout=layout,
                                   chunk_words=chunk_words, alphabet=alpha)
    t1 = time.perf_counter()
    k = min(int(n_components), len(words), x.shape[1])
    if k < 1:
        raise InvalidParameterError(f"n_components must be >= 1; got {n_components}.")
    if solver == "gram":
        emb = SVDEmbedding(n_components=k, solver="gram").fit(x)
        t2 = time.perf_counter()
        (vecs,) = dask.compute(emb.transform(x))
    else:
        emb, y, comps_y = _fit_factored(words, k, n, m, basis, layout, chunk_words, alpha)
        t2 = time.perf_counter()
        (vecs,) = dask.compute(project(y, comps_y))
    factor = _scale(emb, scale)
    vecs = np.asarray(vecs) * factor
    t3 = time.perf_counter()
    if timings is not None:
        timings.update({"features": t1 - t, "svd": t2 - t1, "project": t3 - t2})
    stats = {"n_words": len(words), "dropped_chars": dropped, "alphabet": alpha,
             "n_symbols": N_ASCII + len(alpha),
             "truncated_words": int(sum(len(w) > n for w in words)),
             "singular_values": [float(v) for v in emb.singular_values_],
             "total_energy": total_energy(emb),
             "scale_factor": factor, "solver": solver}
    return vecs, emb, stats


def build_spelling(source: str | os.PathLike[str] | Iterable[str], *, n_components: int = 40,
                   n: int = 15, m: int = 6, basis: str = "paper", scale: str = "s1",
                   layout: str = "blocks", solver: str = "factored", limit: int | None = None,
                   lowercase: bool = False, letters_only: bool | None = None,
                   chunk_words: int = 50_000) -> tuple[WordVectors, dict[str, float]]:
    """Build the §6.2 spelling model from raw words; return it and seconds per stage.

    Parameters
    ----------
    source : path or iterable of str
        A corpus store, a word-list file or words (see :func:`load_word_list`).
    n_components : int, default=40
        Embedding dimension (paper: 40).
    n, m, basis
        Spectral transform (paper: N = 15, m <= 6, ``"paper"`` basis).
    scale : {"s1", "norm", "none"}, default="s1"
        Divide the vectors by σ₁ (author's notebook), by ‖σ‖, or not at all.
    layout : {"blocks", "summed"}, default="blocks"
        ``6 x 127`` features (paper text) or harmonics summed per letter (author's code).
    solver : {"factored", "gram"}, default="factored"
        How the exact Gram-route SVD is computed (see :func:`spelling_embedding`).
    limit : int, optional
        Keep only the first ``limit`` words (a size knob for examples and tests).
    lowercase : bool, default=False
        Lower-case words before de-duplicating.
    letters_only : bool, optional
        Keep only words of letters (default: on for a corpus store; see
        :func:`load_word_list`).
    chunk_words : int, default=50_000
        Words per dask block.

    Returns
    -------
    (WordVectors, dict)
        The model (metadata records every parameter) and ``{"read", "features", "svd",
        "project", "total"}`` seconds.
    """
    t0 = time.perf_counter()
    report: dict[str, int] = {}
    words = load_word_list(source, lowercase=lowercase, letters_only=letters_only,
                           report=report)
    if limit is not None:
        words = words[:int(limit)]
    timings: dict[str, float] = {"read": time.perf_counter() - t0}
    vecs, emb, stats = spelling_embedding(words, n_components=n_components, n=n, m=m,
                                          basis=basis, scale=scale, layout=layout,
                                          solver=solver, chunk_words=chunk_words,
                                          timings=timings)
    timings["total"] = time.perf_counter() - t0
    meta = {"model": "spelling", "section": "6.2", "n": n, "m": m, "basis": basis,
            "layout": layout, "n_components": int(vecs.shape[1]), "scale": scale,
            "source": str(source) if isinstance(source, (str, os.PathLike)) else "words",
            "read_report": report, **stats, "timings": timings}
    model = WordVectors(words, vecs.astype(np.float32), meta,
                        {"components": emb.components_})
    return model, timings


def encode_words(model: WordVectors, words: Sequence[str]) -> np.ndarray:
    """Embed ``words`` (in the vocabulary or not) with a spelling model's own transform and basis.

    Raises
    ------
    InvalidParameterError
        If ``model`` is not a spelling model with a stored basis.
    DataError
        If a word has a letter outside the model's alphabet (ASCII plus the letters of its
        vocabulary, ``metadata["alphabet"]``; models from before the alphabet have ASCII only)
        or no letter at all: the message names them.
    """
    meta = model.metadata
    if meta.get("model") != "spelling" or "components" not in model.extras:
        raise InvalidParameterError(
            f"{model!r} is not a spelling model with a stored basis; only spelling models can "
            "embed words outside their vocabulary.")
    alphabet = str(meta.get("alphabet", ""))
    words = list(words)
    _check_letters(words, alphabet, "outside this spelling model's alphabet")
    x, _ = spelling_features(words, n=int(meta["n"]), m=int(meta["m"]),
                             basis=str(meta["basis"]), layout=str(meta.get("layout", "blocks")),
                             alphabet=alphabet)
    feats = x.compute(scheduler="sync")
    out = project_block(feats, np.asarray(model.extras["components"])) * float(
        meta["scale_factor"])
    return out.astype(model.vectors.dtype)


def spelling_neighbors(model: WordVectors, word: str, k: int = 10,
                       metric: str = "sqeuclidean", *, cells: Any = None
                       ) -> list[tuple[str, float]]:
    """Nearest vocabulary words to ``word`` by spelling, also for a word outside the vocabulary.

    With ``cells`` (a :class:`~veob_dask.index.CellIndex` fitted on ``model.vectors``, e.g.
    from :func:`paper_cells`), the search is restricted to the index's ``n_probe`` nearest
    cells and distances are squared Euclidean, as the paper's tables were made.
    """
    if cells is None:
        if word in model:
            return model.neighbors(word, k, metric)
        return model.neighbors_of_vector(encode_words(model, [word])[0], k, metric)
    vec = model.vector(word) if word in model else encode_words(model, [word])[0]
    dist, idx = cells.kneighbors(np.asarray(vec, dtype=np.float64)[None, :], k)
    return [(model.words[int(i)], float(d)) for i, d in zip(idx[0], dist[0], strict=True)
            if i >= 0]


def paper_cells(model: WordVectors, *, n_probe: int = 1, max_depth: int = 8,
                min_samples: int = 100) -> Any:
    """The cells the paper's word tables were searched in: the §5 partition tree of the whole
    vocabulary with the author's ``max_level=9, min_samples=100`` (``max_depth = 8`` splits,
    at most 256 cells), searched in the query's nearest cell only (``n_probe=1``).

    The author's notebook answers a query with ``closest_cell`` then ``top_match_samples``
    inside that one cell (ALGORITHMS.md §5.2), so the published neighbour lists are the nearest
    words *of the query's cell*, not of the vocabulary: exact search ranks words across a cell
    boundary that the paper's lists cannot contain.
    """
    from ..index import CellIndex

    return CellIndex("tree", n_probe=n_probe, max_depth=max_depth, min_samples=min_samples,
                     max_samples=None).fit(np.asarray(model.vectors, dtype=np.float64))
