"""Sentence embedding (paper §6.5): word vectors of a sentence → spectral transform → SVD 200.

Each sentence of at most ``max_words`` tokens (the paper: 32) is the sequence of its words'
context vectors (§6.3, :mod:`veob_dask.text.context`); the cosine spectral transform of
:mod:`veob_dask.spectral.sequence` (``N = 15``, harmonics ``1 ≤ m ≤ 6``, the paper's text) turns
it into ``6 · dim`` features — every word adds its contribution ``s(N, m, k) · v_word`` to block
``m``, i.e. the contributions are **summed**. The author's code assigned them instead, keeping
only one word per block (ALGORITHMS.md §5.2), which is why the paper's sentence table shows the
same distance for every match; here distances differ. The ``n_sentences x 6 · dim`` matrix
(tall: ~470k x 300 for IMDB) goes to :class:`veob_dask.svd.SVDEmbedding` (``"gram"``: one pass,
exact) and each sentence keeps ``n_components`` (200) coordinates.

Position ``k`` of a word is its index in the sentence; with ``N = 15`` words past the 15th are
dropped by the transform (``long="truncate"``; the count is recorded as
``metadata["truncated"]``). The author's notebook used ``N = 32`` (every word of a ≤ 32-word
sentence kept); pass ``n=32`` for that. Words without a vector (absent from the word model)
keep their position and add nothing.

A :class:`SentenceModel` store (Zarr group of kind ``"sentences"``, written atomically, no
pickle)::

    attrs["veob_dask"] = {"format_version": 2, "kind": "sentences", "n_sentences": n,
                          "metadata": {...}}
    embedding            (n_sentences, k) float32, row chunks   dims ("sentence", "component")
    components           (k, M · dim) float64 SVD basis          dims ("component", "feature")
    singular_values      (k,)                                    dims ("component",)
    text/values,offsets  sentence text (UTF-8, ragged)
    source/values,offsets  source file of each sentence (ragged), e.g. "test/pos/0_10.txt"
    corpus_index         (n_sentences,) int64 sentence index in the corpus store
    words/               the word model (a nested "wordvectors" group)

Version-1 models (``attrs["veob_sentences"]``, same arrays) load too.

Queries tokenise the text with the corpus rules, transform it with the same parameters and
project it on the stored basis, then scan the embedding in row blocks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import zarr

from veob_dask.errors import DataError, InvalidParameterError, StoreFormatError
from veob_dask.index.exact import METRICS, exact_kneighbors
from veob_dask.io.location import Location, PathLike, as_location
from veob_dask.io.metadata import check_chunks_written
from veob_dask.io.ragged import Ragged, RaggedWriter, open_ragged
from veob_dask.io.store import open_artifact, read_arrays, store_header
from veob_dask.io.writer import ArtifactWriter, create_artifact
from veob_dask.text.corpus import Corpus
from veob_dask.text.tokenize import tokenize
from veob_dask.text.wordvectors import UnknownWordError, WordVectors

__all__ = ["SentenceModel", "build_sentences", "corpus_embedding_matrix",
           "sentence_features"]

_QUERY_ROWS = 65_536
_TEXT_WINDOW = 200_000


def corpus_embedding_matrix(corpus: Corpus, words: WordVectors) -> tuple[np.ndarray, int]:
    """Word vectors indexed by corpus token id (zero rows for words without a vector).

    Returns
    -------
    matrix : ndarray of shape (corpus.vocab_size, dim), float64
    n_found : int
        Corpus words that have a vector.
    """
    out = np.zeros((corpus.vocab_size, words.dim), dtype=np.float64)
    found = 0
    for i, w in enumerate(corpus.vocabulary):
        if w in words:
            out[i] = words.vectors[words.index(w)]
            found += 1
    return out, found


def sentence_features(corpus: Corpus, embedding: np.ndarray, *, n: int = 15, m: int = 6,
                      basis: str = "paper", chunk_sequences: int = 50_000) -> da.Array:
    """Lazy spectral features (n_sentences, m · dim) of every corpus sentence.

    Each Dask task reads one block of token ids from the corpus store (Zarr).
    """
    from veob_dask.spectral.sequence import SequenceTransform

    st = SequenceTransform(n, m, basis=basis, embedding=embedding, long="truncate",
                           chunk_sequences=chunk_sequences)
    return st.transform(corpus.location.child("tokens"))


def _weights(n: int, m: int, basis: str) -> np.ndarray:
    from veob_dask.spectral.basis import cosine_basis

    return cosine_basis(n, basis, keep=m)


def build_sentences(corpus: Corpus | str | os.PathLike[str], words: WordVectors, *,
                    n_components: int = 200, max_words: int = 32, n: int = 15, m: int = 6,
                    basis: str = "paper", solver: str = "gram",
                    chunk_sequences: int = 50_000,
                    out: str | os.PathLike[str] | None = None, overwrite: bool = False,
                    ) -> tuple[SentenceModel, dict[str, float]]:
    """Build the §6.5 sentence embedding of every corpus sentence of 1..max_words tokens.

    Parameters
    ----------
    corpus : Corpus or path-like
        Corpus store (:func:`veob_dask.text.corpus.build_corpus`).
    words : WordVectors
        Word vectors (the §6.3 context embedding).
    n_components : int, default=200
        Sentence embedding dimension.
    max_words : int, default=32
        Longest sentence kept (tokens, punctuation included).
    n, m, basis
        Spectral transform (the paper: N = 15, m ≤ 6, its own cosine basis; ``"dct2"`` for the
        orthonormal DCT-II).
    solver : str, default="gram"
        :class:`~veob_dask.svd.SVDEmbedding` solver (the matrix is tall and 6 · dim wide).
    chunk_sequences : int, default=50_000
        Sentences per Dask task.
    out : path-like, optional
        Write the model store here while building (streamed: the embedding goes to Zarr
        block by block, the texts window by window) and return it opened lazily. Without
        ``out`` the model is built in memory (call :meth:`SentenceModel.save`).
    overwrite : bool, default=False
        Replace an existing ``out``.

    Returns
    -------
    model : SentenceModel
    seconds : dict
        Wall seconds of ``"fit"`` (transform + SVD pass), ``"embed"`` (transform + projection)
        and ``"total"``.

    Notes
    -----
    Laziness/Chunks: the spectral features are never stored; the Gram pass and the projection
    pass each recompute them from the token ids, one block per task. Memory: one block of
    features (``chunk_sequences x m · dim`` float64) per task plus the output embedding.
    Scheduler: the Dask client in scope, else dask's threaded scheduler.
    """
    from veob_dask.svd import SVDEmbedding

    if not isinstance(corpus, Corpus):
        corpus = Corpus(corpus)
    t0 = time.perf_counter()
    x, keep, found = _sentence_rows(corpus, words, n_components=n_components,
                                    max_words=max_words, n=n, m=m, basis=basis,
                                    chunk_sequences=chunk_sequences)
    svd = SVDEmbedding(n_components=int(n_components), solver=solver)
    sources = corpus.source_names(range(corpus.n_reviews))
    sources = [sources[r] for r in corpus.sentence_review[keep]]
    meta = {"model": "sentences", "section": "6.5", "n": n, "m": m, "basis": basis,
            "max_words": max_words, "word_model": dict(words.metadata), "corpus": corpus.path,
            "n_sentences": int(keep.size), "words_with_vectors": found,
            "truncated": int((corpus.sentence_lengths[keep] > n).sum())}
    if out is not None:
        with create_artifact(out, "sentences", overwrite=overwrite,
                             inputs=[corpus.location]) as w:
            t1, t2 = _stream_model(w, svd, x, keep, corpus, words, sources)
            w.header.update(n_sentences=int(keep.size),
                            metadata=_metadata(meta, svd, t0, t1, t2))
        return SentenceModel.load(out), {"fit": t1 - t0, "embed": t2 - t1, "total": t2 - t0}
    svd.fit(x)
    t1 = time.perf_counter()
    embedding = np.asarray(svd.transform(x).compute(), dtype=np.float32)
    t2 = time.perf_counter()
    model = SentenceModel(
        embedding=embedding, components=np.asarray(svd.components_),
        singular_values=np.asarray(svd.singular_values_), words=words,
        text=corpus.sentence_text(keep), source=sources, corpus_index=keep,
        metadata=_metadata(meta, svd, t0, t1, t2))
    return model, {"fit": t1 - t0, "embed": t2 - t1, "total": t2 - t0}


def _sentence_rows(corpus: Corpus, words: WordVectors, *, n_components: int, max_words: int,
                   n: int, m: int, basis: str, chunk_sequences: int
                   ) -> tuple[Any, np.ndarray, int]:
    """Lazy spectral rows of the sentences with 1..max_words tokens, their corpus rows, and
    how many corpus words have a vector."""
    if max_words < 1:
        raise InvalidParameterError(f"max_words must be >= 1; got {max_words!r}.")
    emb_matrix, found = corpus_embedding_matrix(corpus, words)
    if found == 0:
        raise DataError("no corpus word has a vector in the word model; build the word model "
                        "from the same corpus.")
    lengths = corpus.sentence_lengths
    keep = np.flatnonzero((lengths >= 1) & (lengths <= max_words))
    if keep.size <= n_components:
        raise DataError(f"only {keep.size} sentences have 1..{max_words} tokens; need more "
                        f"than n_components={n_components}.")
    feats = sentence_features(corpus, emb_matrix, n=n, m=m, basis=basis,
                              chunk_sequences=chunk_sequences)
    mask = np.zeros(corpus.n_sentences, dtype=bool)
    mask[keep] = True
    return feats[mask], keep, found


def _stream_model(w: ArtifactWriter, svd: Any, x: Any, keep: np.ndarray, corpus: Corpus,
                  words: WordVectors, sources: list[str]) -> tuple[float, float]:
    """Fit ``svd`` on ``x``, then write the embedding block by block and the tables, texts and
    word model; return the times the fit and the embedding ended."""
    svd.fit(x)
    t1 = time.perf_counter()
    k = int(svd.n_components_)
    proj = svd.transform(x).astype(np.float32).rechunk((_QUERY_ROWS, k))
    w.store("embedding", proj, dims=("sentence", "component"), chunk_rows=_QUERY_ROWS)
    w.flush()
    t2 = time.perf_counter()
    _write_tables(w, np.asarray(svd.components_), np.asarray(svd.singular_values_), keep)
    _write_strings(w, corpus, keep, sources)
    words.write_into(w.subgroup("words", "wordvectors"))
    return t1, t2


def _metadata(meta: dict[str, Any], svd: Any, t0: float, t1: float,
              t2: float) -> dict[str, Any]:
    """The model's metadata: the build settings, the fitted SVD and the timings."""
    return {**meta, "n_components": int(svd.n_components_), "solver": svd.solver_,
            "seconds": {"fit": round(t1 - t0, 3), "embed": round(t2 - t1, 3),
                        "total": round(t2 - t0, 3)}}


def _write_strings(w: ArtifactWriter, corpus: Corpus, keep: np.ndarray,
                   sources: list[str]) -> None:
    """The text and source of the kept sentences, as ragged UTF-8 groups, window by window."""
    for name in ("text", "source"):
        rag = RaggedWriter(w, name, np.uint8, chunk=1 << 22)
        for lo in range(0, keep.size, _TEXT_WINDOW):
            strings = (corpus.sentence_text(keep[lo:lo + _TEXT_WINDOW]) if name == "text"
                       else sources[lo:lo + _TEXT_WINDOW])
            rag.append_bytes([x.encode("utf-8") for x in strings])


def _write_tables(w: ArtifactWriter, components: np.ndarray, singular_values: np.ndarray,
                  corpus_index: np.ndarray) -> None:
    w.array("components", np.asarray(components, dtype=np.float64),
            dims=("component", "feature"))
    w.array("singular_values", np.asarray(singular_values, dtype=np.float64),
            dims=("component",))
    n = int(corpus_index.size)
    w.array("corpus_index", corpus_index.astype(np.int64), dims=("sentence",),
            chunks=(max(1, min(1 << 20, n)),))


class SentenceModel:
    """Sentence embeddings with their text and source, and nearest-sentence queries.

    Parameters
    ----------
    embedding : array of shape (n_sentences, k)
    components : array of shape (k, m · dim)
        SVD basis of the spectral features.
    singular_values : array of shape (k,)
    words : WordVectors
        Word vectors used for the features.
    text, source : sequence of str
        Sentence text and source file (one per row).
    corpus_index : array of int, optional
        Row of each sentence in its corpus.
    metadata : dict
        Must hold ``n``, ``m``, ``basis`` (the spectral transform).

    Notes
    -----
    Memory: :meth:`load` keeps the embedding in Zarr and :meth:`neighbors` scans it in row
    blocks of 65,536; text and source are read only for the hits.
    """

    def __init__(self, *, embedding: Any, components: np.ndarray, singular_values: np.ndarray,
                 words: WordVectors, text: Sequence[str] | None, source: Sequence[str] | None,
                 corpus_index: np.ndarray | None = None,
                 metadata: dict[str, Any] | None = None, group: zarr.Group | None = None
                 ) -> None:
        self.embedding = embedding
        self.components = np.asarray(components, dtype=np.float64)
        self.singular_values = np.asarray(singular_values, dtype=np.float64)
        self.words = words
        self._text = None if text is None else list(text)
        self._source = None if source is None else list(source)
        self.corpus_index = None if corpus_index is None else np.asarray(corpus_index)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._group = group
        self._ragged: dict[str, Ragged] = {}
        for key in ("n", "m", "basis"):
            if key not in self.metadata:
                raise DataError(f"sentence-model metadata lacks {key!r}.")
        if self.components.shape[0] != int(embedding.shape[1]):
            raise DataError(f"{embedding.shape[1]} embedding columns but "
                            f"{self.components.shape[0]} components.")
        if self.components.shape[1] != int(self.metadata["m"]) * words.dim:
            raise DataError(f"components have {self.components.shape[1]} features; m x word "
                            f"dim = {int(self.metadata['m']) * words.dim}.")

    def __len__(self) -> int:
        return int(self.embedding.shape[0])

    def __repr__(self) -> str:
        return (f"SentenceModel({len(self)} sentences, dim={self.embedding.shape[1]}, "
                f"N={self.metadata['n']}, m={self.metadata['m']})")

    # -- encoding -----------------------------------------------------------------------------
    def tokens(self, text: str) -> tuple[list[str], list[str]]:
        """Tokens of ``text`` and those without a word vector."""
        toks = tokenize(text)
        return toks, [t for t in toks if t not in self.words]

    def encode(self, texts: Sequence[str] | str) -> np.ndarray:
        """Embed sentences (tokenised with the corpus rules) into the model space.

        Raises
        ------
        UnknownWordError
            If a sentence has no word with a vector (the message suggests spellings).
        """
        if isinstance(texts, str):
            texts = [texts]
        w = _weights(int(self.metadata["n"]), int(self.metadata["m"]), self.metadata["basis"])
        m, n = w.shape
        out = np.zeros((len(texts), self.components.shape[0]))
        for row, text in enumerate(texts):
            toks, unknown = self.tokens(text)
            if len(unknown) == len(toks):
                word = unknown[0] if unknown else text
                raise UnknownWordError(word, self.words.suggest(word) if unknown else [],
                                       "sentence model")
            feat = np.zeros((m, self.words.dim))
            for k, tok in enumerate(toks[:n]):
                if tok in self.words:
                    feat += np.outer(w[:, k], self.words.vectors[self.words.index(tok)])
            out[row] = self.components @ feat.ravel()
        return out

    # -- queries ------------------------------------------------------------------------------
    def neighbors(self, text: str, k: int = 7, metric: str = "sqeuclidean"
                  ) -> list[tuple[str, float, str]]:
        """The ``k`` nearest sentences: ``(text, distance, source)``, nearest first.

        ``metric``: ``"sqeuclidean"`` (the paper's Chroma ``l2``) or ``"cosine"`` (1 - cos).
        """
        if int(k) < 1:
            raise InvalidParameterError(f"k must be >= 1; got {k!r}.")
        if metric not in METRICS:
            raise InvalidParameterError(f"metric must be one of {METRICS}; got {metric!r}.")
        q = self.encode(text)
        base = self.embedding if isinstance(self.embedding, np.ndarray) else \
            da.from_array(self.embedding, chunks=(_QUERY_ROWS, -1))  # read a block at a time
        idx, dist = exact_kneighbors(q, base, min(int(k), len(self)), metric=metric)
        hits, dists = idx[0], dist[0]
        texts, sources = self.text(hits), self.source(hits)
        return [(t, float(v), s) for t, v, s in zip(texts, dists, sources, strict=True)]

    def text(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        """Text of the given rows."""
        return self._strings("text", self._text, rows)

    def source(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        """Source file of the given rows."""
        return self._strings("source", self._source, rows)

    def _strings(self, name: str, cache: list[str] | None, rows: Any) -> list[str]:
        if cache is not None:
            return [cache[int(r)] for r in rows]
        assert self._group is not None
        if name not in self._ragged:
            sub = self._group.get(name)
            if not isinstance(sub, zarr.Group):
                raise StoreFormatError(f"the sentence model lacks its {name!r} group.")
            self._ragged[name] = open_ragged(sub, f"the sentence model's {name!r}",
                                             headerless=True)
        rag = self._ragged[name]
        out = []
        for r in rows:
            try:
                out.append(rag[int(r)].tobytes().decode("utf-8"))
            except UnicodeDecodeError as err:
                raise StoreFormatError(f"the sentence model's {name} is not UTF-8.") from err
        return out

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: PathLike | Location, *, overwrite: bool = False,
             chunk_rows: int = 65_536, storage_options: Mapping[str, Any] | None = None) -> None:
        """Write the model as a Zarr group (atomically)."""
        n = len(self)
        with create_artifact(path, "sentences", overwrite=overwrite,
                             storage_options=storage_options, n_sentences=n,
                             metadata=self.metadata) as w:
            emb = w.array("embedding", shape=self.embedding.shape, dtype=np.float32,
                          dims=("sentence", "component"),
                          chunks=(max(1, min(chunk_rows, n)), int(self.embedding.shape[1])))
            for lo in range(0, n, chunk_rows):
                emb[lo:lo + chunk_rows] = np.asarray(self.embedding[lo:lo + chunk_rows],
                                                     dtype=np.float32)
            idx = (np.full(n, -1, np.int64) if self.corpus_index is None
                   else self.corpus_index.astype(np.int64))
            _write_tables(w, self.components, self.singular_values, idx)
            for name in ("text", "source"):
                strings = self._strings(name, self._text if name == "text" else self._source,
                                        range(n))
                RaggedWriter(w, name, np.uint8, chunk=1 << 22).append_bytes(
                    [s.encode("utf-8") for s in strings])
            self.words.write_into(w.subgroup("words", "wordvectors"))

    @classmethod
    def load(cls, path: PathLike | Location, *,
             storage_options: Mapping[str, Any] | None = None) -> SentenceModel:
        """Open a model written by :meth:`save` (the embedding stays in Zarr).

        Raises
        ------
        StoreNotFoundError
            If nothing is stored at ``path``.
        StoreFormatError
            If the store is not a sentence model or is incomplete.
        """
        loc = as_location(path, storage_options)
        where = repr(str(loc))
        group, header = open_artifact(loc, "sentences")
        info = header.get("legacy") if header.get("format_version") == 1 else header
        emb = group.get("embedding")
        if not isinstance(emb, zarr.Array) or emb.ndim != 2 or \
                np.dtype(str(emb.dtype)).kind != "f":
            raise StoreFormatError(f"{where} lacks a 2-D float array 'embedding'; the model is "
                                   "incomplete.")
        check_chunks_written(emb, where, "embedding")  # read lazily later: missing = zeros
        arrays = read_arrays(group, ["components", "singular_values", "corpus_index"], where)
        comps, sv, idx = arrays["components"], arrays["singular_values"], arrays["corpus_index"]
        for name, value in (("components", comps), ("singular_values", sv)):
            if value.dtype.kind != "f" or not np.all(np.isfinite(value)):
                raise StoreFormatError(f"{where}: {name} must be finite floats.")
        words_group = group.get("words")
        words_header = store_header(words_group) if isinstance(words_group, zarr.Group) else None
        if words_header is None or words_header.get("kind") != "wordvectors":
            raise StoreFormatError(f"{where} lacks its word model ('words'); the model is "
                                   "incomplete.")
        words = WordVectors.from_group(words_group, words_header, f"{where}/words")
        if not isinstance(info, Mapping) or emb.shape[0] != info.get("n_sentences", -1) \
                or idx.shape != (emb.shape[0],):
            raise StoreFormatError(f"{where}: embedding rows disagree with the recorded "
                                   "sentence count; the model is corrupt.")
        metadata = info.get("metadata") or {}
        try:
            return cls(embedding=emb, components=comps, singular_values=sv, words=words,
                       text=None, source=None, corpus_index=idx,
                       metadata=metadata if isinstance(metadata, dict) else {}, group=group)
        except DataError as err:
            raise StoreFormatError(f"{where}: {err}") from err
