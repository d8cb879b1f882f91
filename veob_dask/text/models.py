"""The paper's text models as scikit-learn estimators: ``fit`` on a source, ``transform`` words or
sentences into vectors.

=====================  ====================================  ===================================
estimator              ``fit(X)``: X is                      ``transform(X)``: X is
=====================  ====================================  ===================================
SpellingEmbedding      words, a word-list file or a corpus   any words (spelled out: also words
                       store (§6.2)                          outside the vocabulary)
ContextEmbedding       a corpus store (§6.3)                 vocabulary words
DictionaryEmbedding    dictionary files (definitions, or     vocabulary words
                       the §6.4 recipe)
SentenceEmbedding      a corpus store, and word vectors      sentences (§6.5)
                       (``words=``, else a context model
                       fitted on the same corpus)
=====================  ====================================  ===================================

Words and sentences come as a list, a 1-D numpy array of str (output: numpy, one row per item)
or a 1-D dask array of str (output: lazy dask, the input's chunks as row chunks). A word
without a vector raises :class:`~veob_dask.text.wordvectors.UnknownWordError` (a ``KeyError``)
with suggestions. ``word_vectors()`` gives the vocabulary as a
:class:`~veob_dask.text.wordvectors.WordVectors` for neighbour queries; the ``build_*``
functions of each model's module build that (and time the stages) for the command line.
Fitted state is small (vocabulary, vectors, bases), so ``veob_dask.save``/``load`` store the
estimators like any model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._contract import LazyOutputMixin, as_array_input
from ..errors import DataError, InvalidParameterError
from ..svd import SVDEmbedding
from .context import build_context
from .corpus import Corpus
from .definitions import build_definitions
from .dictionary import build_dictionary
from .sentences import SentenceModel, _sentence_rows
from .spelling import encode_words, load_word_list, spelling_embedding
from .wordvectors import WordVectors

__all__ = ["ContextEmbedding", "DictionaryEmbedding", "SentenceEmbedding", "SpellingEmbedding"]


def _items(X: Any, what: str) -> np.ndarray:
    """Words or sentences as a 1-D array of str (a single str is one item)."""
    if isinstance(X, str):
        return np.asarray([X])
    arr = np.asarray(X if not isinstance(X, Mapping) else list(X), dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or not all(isinstance(v, str) for v in arr.tolist()):
        raise DataError(f"X must be a 1-D sequence of {what} (str); got "
                        f"{type(X).__name__} of shape {arr.shape}.")
    return arr


def _encode_block(block: np.ndarray, model: _TextModel) -> np.ndarray:
    """Kernel: the vectors of one block of words or sentences."""
    return model._encode(_items(block, model._what))


class _TextModel(LazyOutputMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                 BaseEstimator):
    """Shared transform: in-memory items give numpy, a dask array gives lazy dask."""

    _what = "words"

    def _encode(self, items: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def transform(self, X: Any) -> Any:
        """Vectors of the words (or sentences) ``X``.

        Parameters
        ----------
        X : sequence of str, 1-D ndarray or 1-D dask.array.Array of str

        Returns
        -------
        ndarray or dask.array.Array of shape (n_items, n_components_)
            float32; lazy, with the input's chunks as row chunks, for dask input.
        """
        check_is_fitted(self, "n_components_")
        X = as_array_input(X)
        if isinstance(X, da.Array):
            if X.ndim != 1:
                raise DataError(f"X must be a 1-D array of {self._what}; got shape {X.shape}.")
            k = int(self.n_components_)
            out: da.Array = da.map_blocks(
                _encode_block, X, self, new_axis=1, chunks=(X.chunks[0], (k,)),
                dtype=np.float32, meta=np.empty((0, k), dtype=np.float32),
                name=f"veob-{type(self).__name__.lower()}-{tokenize(X.name, self._token())}")
            return out
        return self._encode(_items(X, self._what))

    def _token(self) -> str:
        token = getattr(self, "_token_cache", None)
        if token is None:
            token = tokenize(type(self).__name__, self.get_params(deep=False),
                             *[v for k, v in sorted(vars(self).items()) if k.endswith("_")])
            self._token_cache = token
        return token

    @property
    def _n_features_out(self) -> int:
        return int(self.n_components_)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        return tags


class _WordModel(_TextModel):
    """A vocabulary with vectors; ``transform`` looks words up."""

    def _set_words(self, wv: WordVectors, seconds: Mapping[str, float]) -> None:
        self.vocabulary_ = np.asarray(wv.words, dtype=str)
        self.vectors_ = np.asarray(wv.vectors, dtype=np.float32)
        self.metadata_ = dict(wv.metadata)
        self.fit_seconds_ = {key: float(v) for key, v in seconds.items()}
        self.n_components_ = int(self.vectors_.shape[1])
        self.__dict__.pop("_words_cache", None)
        self.__dict__.pop("_token_cache", None)

    def word_vectors(self) -> WordVectors:
        """The fitted vocabulary and vectors as :class:`WordVectors` (neighbour queries,
        similarity, ``save`` as a word-vector store)."""
        check_is_fitted(self, "vocabulary_")
        cached = self.__dict__.get("_words_cache")
        if cached is None:
            cached = WordVectors(self.vocabulary_.tolist(), self.vectors_, self.metadata_,
                                 self._extras())
            self._words_cache = cached
        return cached

    def _extras(self) -> dict[str, np.ndarray]:
        return {}

    def _encode(self, items: np.ndarray) -> np.ndarray:
        wv = self.word_vectors()
        rows = [wv.index(str(w)) for w in items.tolist()]
        return np.asarray(wv.vectors[rows], dtype=np.float32).reshape(len(rows), -1)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_words_cache", None)
        return state


class SpellingEmbedding(_WordModel):
    """§6.2 spelling embedding: letters → ``m`` harmonics of a cosine basis → SVD.

    Parameters
    ----------
    n_components : int, default=40
        Embedding dimension (paper: 40).
    n, m, basis
        Spectral transform (paper: N = 15, m <= 6, ``"paper"`` basis).
    scale : {"s1", "norm", "none"}, default="s1"
        Divide the vectors by σ₁ (author's notebook), by ‖σ‖, or not at all.
    layout : {"blocks", "summed"}, default="blocks"
        ``m x 127`` features (paper text) or harmonics summed per letter (author's code).
    solver : {"factored", "gram"}, default="factored"
        How the exact Gram-route SVD is computed.
    lowercase : bool, default=False
        Lower-case words before de-duplicating.
    letters_only : bool, optional
        Keep only words of letters (default: on for a corpus store).
    chunk_words : int, default=50_000
        Words per dask block of the features.

    Attributes
    ----------
    vocabulary_ : ndarray of str, shape (n_words,)
    vectors_ : ndarray of shape (n_words, n_components_), float32
    components_ : ndarray of shape (n_components_, n_spectral_features)
        The SVD basis of the spectral features.
    metadata_ : dict
        Every transform parameter, the alphabet beyond ASCII and the scale factor.
    fit_seconds_ : dict
        Seconds per stage.
    n_components_ : int

    Notes
    -----
    ``transform`` spells any word out (also one outside the vocabulary, like the paper's
    "twighlight"); a letter outside the model's alphabet is refused with its name.

    Examples
    --------
    >>> model = SpellingEmbedding(n_components=3).fit(["frown", "frowning", "crown", "brown"])
    >>> model.transform(["clown"]).shape
    (1, 3)
    """

    def __init__(self, n_components: int = 40, *, n: int = 15, m: int = 6, basis: str = "paper",
                 scale: str = "s1", layout: str = "blocks", solver: str = "factored",
                 lowercase: bool = False, letters_only: bool | None = None,
                 chunk_words: int = 50_000) -> None:
        self.n_components = n_components
        self.n = n
        self.m = m
        self.basis = basis
        self.scale = scale
        self.layout = layout
        self.solver = solver
        self.lowercase = lowercase
        self.letters_only = letters_only
        self.chunk_words = chunk_words

    def fit(self, X: Any, y: Any = None) -> SpellingEmbedding:
        """Embed the vocabulary ``X``.

        Parameters
        ----------
        X : sequence of str, or path
            Words, a word-list file or a corpus store.
        y : None
            Ignored. Present for API consistency.

        Returns
        -------
        self
        """
        source = X if isinstance(X, str | os.PathLike) else _items(X, "words").tolist()
        report: dict[str, int] = {}
        words = load_word_list(source, lowercase=self.lowercase, letters_only=self.letters_only,
                               report=report)
        seconds: dict[str, float] = {}
        vecs, emb, stats = spelling_embedding(
            words, n_components=self.n_components, n=self.n, m=self.m, basis=self.basis,
            scale=self.scale, layout=self.layout, solver=self.solver,
            chunk_words=self.chunk_words, timings=seconds)
        meta = {"model": "spelling", "section": "6.2", "n": self.n, "m": self.m,
                "basis": self.basis, "layout": self.layout, "n_components": int(vecs.shape[1]),
                "scale": self.scale, "read_report": report, **stats}
        self.components_ = np.asarray(emb.components_, dtype=np.float64)
        self._set_words(WordVectors(words, vecs.astype(np.float32), meta), seconds)
        return self

    def _extras(self) -> dict[str, np.ndarray]:
        return {"components": self.components_}

    def _encode(self, items: np.ndarray) -> np.ndarray:
        if items.size == 0:
            return np.empty((0, int(self.n_components_)), dtype=np.float32)
        return encode_words(self.word_vectors(), items.tolist()).astype(np.float32)


class ContextEmbedding(_WordModel):
    """§6.3 context embedding: bags of neighbouring words → (weighted) sparse matrix → SVD.

    Parameters
    ----------
    n_components : int, default=50
        Embedding dimension (the paper: 50).
    weighting : {"raw", "ppmi"}, default="raw"
    window : int, default=2
    max_words : int or None, default=32
    min_count : int, optional
    scale_exponent : float, optional
    solver, n_iter, n_oversamples, random_state
        Of the SVD.
    chunk_sentences, chunk_rows : int
        Blocks of the counting and of the SVD.

    See :func:`veob_dask.text.context.build_context` for each parameter's meaning.

    Attributes
    ----------
    vocabulary_ : ndarray of str, shape (n_words,)
    vectors_ : ndarray of shape (n_words, n_components_), float32
    metadata_ : dict
    fit_seconds_ : dict
    n_components_ : int
    """

    def __init__(self, n_components: int = 50, *, weighting: str = "raw", window: int = 2,
                 max_words: int | None = 32, min_count: int | None = None,
                 scale_exponent: float | None = None, solver: str = "randomized",
                 n_iter: int = 4, n_oversamples: int = 20, random_state: int = 0,
                 chunk_sentences: int = 50_000, chunk_rows: int = 20_000) -> None:
        self.n_components = n_components
        self.weighting = weighting
        self.window = window
        self.max_words = max_words
        self.min_count = min_count
        self.scale_exponent = scale_exponent
        self.solver = solver
        self.n_iter = n_iter
        self.n_oversamples = n_oversamples
        self.random_state = random_state
        self.chunk_sentences = chunk_sentences
        self.chunk_rows = chunk_rows

    def fit(self, X: Corpus | str | os.PathLike[str], y: Any = None) -> ContextEmbedding:
        """Count contexts in the corpus store ``X`` and decompose.

        Parameters
        ----------
        X : Corpus or path
            A corpus store (:func:`veob_dask.text.corpus.build_corpus`).
        y : None
            Ignored. Present for API consistency.

        Returns
        -------
        self
        """
        wv, seconds = build_context(X, **self.get_params(deep=False))
        self._set_words(wv, seconds)
        return self


class DictionaryEmbedding(_WordModel):
    """Dictionary embedding: the ``"definitions"`` recipe (default) or the paper's §6.4 recipe.

    Parameters
    ----------
    n_components : int, default=300
        ``"definitions"``: singular triplets computed, of which those with ``σ >= k_ratio · σ₁``
        are kept (``n_components_`` may be smaller); ``"paper"``: the embedding dimension.
    recipe : {"definitions", "paper"}, default="definitions"
        Definitions, related terms, synonyms and signed antonyms → PPMI → randomized SVD
        (:func:`veob_dask.text.definitions.build_definitions`, the ``veob words build
        dictionary`` default), or spelling + synonyms + antonyms → SVD
        (:func:`veob_dask.text.dictionary.build_dictionary`).
    k_ratio : float, default=0.28
        ``"definitions"`` only: keep the singular values at least ``k_ratio · σ₁``.
    scale_exponent : float, default=0.5
        ``"definitions"`` only: the vectors are ``U Σ^p`` (then unit length).
    spelling_components : int, default=30
        ``"paper"`` only: width of the orthography slice.
    n, m, basis
        ``"paper"`` only: spectral transform of the spelling part.
    solver : str, default="randomized"
        ``"paper"`` only: of the SVD (``"definitions"`` always uses the randomized solver).
    n_iter, random_state
        Of the randomized SVD.
    limit : int, optional
        Keep only the first ``limit`` entries (a size knob).
    chunk_rows : int, optional
    merge_columns : bool, default=True
        ``"paper"`` only.
    strict : bool, default=False
        Refuse malformed dictionary entries instead of skipping them.

    Attributes
    ----------
    vocabulary_ : ndarray of str, shape (n_words,)
    vectors_ : ndarray of shape (n_words, n_components_), float32
    metadata_ : dict
    fit_seconds_ : dict
    n_components_ : int
    """

    def __init__(self, n_components: int = 300, *, recipe: str = "definitions",
                 k_ratio: float = 0.28, scale_exponent: float = 0.5,
                 spelling_components: int = 30, n: int = 15, m: int = 6, basis: str = "paper",
                 solver: str = "randomized", n_iter: int = 1, limit: int | None = None,
                 chunk_rows: int | None = None, merge_columns: bool = True,
                 strict: bool = False, random_state: int = 0) -> None:
        self.n_components = n_components
        self.recipe = recipe
        self.k_ratio = k_ratio
        self.scale_exponent = scale_exponent
        self.spelling_components = spelling_components
        self.n = n
        self.m = m
        self.basis = basis
        self.solver = solver
        self.n_iter = n_iter
        self.limit = limit
        self.chunk_rows = chunk_rows
        self.merge_columns = merge_columns
        self.strict = strict
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> DictionaryEmbedding:
        """Read the dictionary ``X`` and embed its words.

        Parameters
        ----------
        X : path, list of paths or Dictionary
            Simple English Dictionary JSON files or WordNet folders (several are combined; see
            :func:`veob_dask.text.dictionary.load_dictionary`).
        y : None
            Ignored. Present for API consistency.

        Returns
        -------
        self
        """
        common = {"n_iter": self.n_iter, "limit": self.limit, "chunk_rows": self.chunk_rows,
                  "strict": self.strict, "random_state": self.random_state}
        if self.recipe == "definitions":
            wv, seconds = build_definitions(
                X, max_components=self.n_components, k_ratio=self.k_ratio,
                scale_exponent=self.scale_exponent, **common)
        elif self.recipe == "paper":
            wv, seconds = build_dictionary(
                X, n_components=self.n_components, spelling_components=self.spelling_components,
                n=self.n, m=self.m, basis=self.basis, solver=self.solver,
                merge_columns=self.merge_columns, **common)
        else:
            raise InvalidParameterError(f"recipe must be 'definitions' or 'paper'; got "
                                        f"{self.recipe!r}.")
        self._set_words(wv, seconds)
        return self


class SentenceEmbedding(_TextModel):
    """§6.5 sentence embedding: word vectors of a sentence → ``m`` cosine harmonics → SVD.

    Parameters
    ----------
    n_components : int, default=200
        Sentence embedding dimension.
    max_words : int, default=32
        Longest corpus sentence (tokens) used to fit.
    n, m, basis
        Spectral transform (the paper: N = 15, m <= 6, its own basis).
    solver : str, default="gram"
        Of the SVD (the feature matrix is tall and ``m · dim`` wide).
    chunk_sequences : int, default=50_000
        Sentences per dask task.

    Attributes
    ----------
    components_ : ndarray of shape (n_components_, m * word_dim)
    singular_values_ : ndarray of shape (n_components_,)
    words_ : ContextEmbedding, SpellingEmbedding or DictionaryEmbedding
        The word model whose vectors the sentences are made of.
    metadata_ : dict
    n_components_ : int

    Notes
    -----
    ``fit`` reads the corpus' token ids twice (the word model's counting, when fitted here, and
    the SVD pass); the embedding of the corpus sentences themselves (what ``veob sentences
    build`` stores with their text, :class:`~veob_dask.text.sentences.SentenceModel`) is
    ``transform`` of those sentences and is not kept.
    """

    _what = "sentences"

    def __init__(self, n_components: int = 200, *, max_words: int = 32, n: int = 15, m: int = 6,
                 basis: str = "paper", solver: str = "gram",
                 chunk_sequences: int = 50_000) -> None:
        self.n_components = n_components
        self.max_words = max_words
        self.n = n
        self.m = m
        self.basis = basis
        self.solver = solver
        self.chunk_sequences = chunk_sequences

    def fit(self, X: Corpus | str | os.PathLike[str], y: Any = None, *,
            words: _WordModel | None = None) -> SentenceEmbedding:
        """Fit the sentence basis on the corpus store ``X``.

        Parameters
        ----------
        X : Corpus or path
            A corpus store.
        y : None
            Ignored. Present for API consistency.
        words : fitted word model, optional
            Whose vectors the sentences are made of (a metadata parameter: request it with
            ``set_fit_request(words=True)`` inside a Pipeline). Default: a
            :class:`ContextEmbedding` fitted on ``X``.

        Returns
        -------
        self
        """
        corpus = X if isinstance(X, Corpus) else Corpus(X)
        if words is None:
            words = ContextEmbedding().fit(corpus)
        check_is_fitted(words, "vocabulary_")
        x, keep, found = _sentence_rows(
            corpus, words.word_vectors(), n_components=int(self.n_components),
            max_words=int(self.max_words), n=int(self.n), m=int(self.m), basis=self.basis,
            chunk_sequences=int(self.chunk_sequences))
        info = {"corpus": corpus.path, "n_sentences": int(keep.size),
                "words_with_vectors": found,
                "truncated": int((corpus.sentence_lengths[keep] > int(self.n)).sum())}
        svd = SVDEmbedding(n_components=int(self.n_components), solver=self.solver).fit(x)
        self.words_ = words
        self.components_ = np.asarray(svd.components_, dtype=np.float64)
        self.singular_values_ = np.asarray(svd.singular_values_, dtype=np.float64)
        self.metadata_ = {"model": "sentences", "section": "6.5", "n": int(self.n),
                          "m": int(self.m), "basis": self.basis, **info}
        self.n_components_ = int(svd.n_components_)
        self.__dict__.pop("_token_cache", None)
        return self

    def _encode(self, items: np.ndarray) -> np.ndarray:
        model = SentenceModel(embedding=np.empty((0, self.n_components_), dtype=np.float32),
                              components=self.components_,
                              singular_values=self.singular_values_,
                              words=self.words_.word_vectors(), text=[], source=[],
                              metadata=self.metadata_)
        if items.size == 0:
            return np.empty((0, int(self.n_components_)), dtype=np.float32)
        return model.encode(items.tolist()).astype(np.float32)
