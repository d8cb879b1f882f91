"""WordVectors: a vocabulary and its embedding matrix, stored as a Zarr group, with k-NN queries.

Every text model of the library (spelling §6.2, context §6.3, dictionary §6.4) ends as a
:class:`WordVectors`: ``words`` (list of str, row ``i`` of ``vectors`` is ``words[i]``), a float
matrix ``vectors`` and a JSON ``metadata`` dict (which model, its parameters, build times...).

Store layout (one Zarr v3 group of kind ``"wordvectors"``, written atomically; no pickle)::

    attrs["veob_dask"] = {"format_version": 2, "kind": "wordvectors", "n_words": n, "dim": d,
                          "metadata": {...}}
    vectors        (n, d) float array, row chunks
    words_utf8     (total_bytes,) uint8: the UTF-8 bytes of all words, concatenated
    words_offsets  (n + 1,) int64: word i is words_utf8[offsets[i]:offsets[i + 1]]
    extra_<name>   optional model arrays (e.g. the SVD basis a spelling model needs to embed
                   words outside its vocabulary)

Version-1 models (``attrs["veob_wordvectors"]``, same arrays) load too.

Distances follow the paper's tables: ``"sqeuclidean"`` (squared Euclidean, what Chroma's ``l2``
returns) or ``"cosine"`` (``1 - cos``). An unknown query word raises :class:`UnknownWordError`
(a ``KeyError`` and a :class:`~veob_dask.errors.VeobError`) whose message lists the vocabulary
words closest in spelling (Levenshtein distance, vectorised over the vocabulary).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from ..errors import DataError, InvalidParameterError, StoreFormatError, VeobError
from ..index.exact import METRICS, exact_kneighbors
from ..io.location import Location, PathLike, as_location
from ..io.store import open_artifact, read_arrays
from ..io.writer import ArtifactWriter, create_artifact

__all__ = ["METRICS", "UnknownWordError", "WordVectors", "edit_distances"]
#: Rows scored per step of a neighbour query (bounds the temporary memory to ~rows x dim x 8 B).
_QUERY_ROWS = 16_384


class UnknownWordError(VeobError, KeyError):
    """A query word is not in the vocabulary; ``suggestions`` holds close spellings."""

    def __init__(self, word: str, suggestions: Sequence[str] = (), model: str = "") -> None:
        self.word = word
        self.suggestions = list(suggestions)
        where = f" of {model}" if model else ""
        hint = (f" Did you mean: {', '.join(self.suggestions)}?" if self.suggestions
                else " No vocabulary word is close in spelling.")
        super().__init__(f"{word!r} is not in the vocabulary{where}.{hint}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def _encode_words(words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [w.encode("utf-8") for w in words]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return data, offsets


def _decode_words(data: np.ndarray, offsets: np.ndarray) -> list[str]:
    raw = data.tobytes()
    try:
        return [raw[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(offsets.size - 1)]
    except UnicodeDecodeError as err:
        raise StoreFormatError(f"the stored vocabulary is not valid UTF-8 ({err}).") from err


def edit_distances(query: str, words: Sequence[str] | np.ndarray, *, max_len: int = 40,
                   codes: np.ndarray | None = None,
                   lengths: np.ndarray | None = None) -> np.ndarray:
    """Levenshtein distance from ``query`` to every word, vectorised over the words.

    Words (and the query) longer than ``max_len`` characters are compared on their first
    ``max_len`` characters. ``codes``/``lengths`` (from :meth:`WordVectors._spelling_table`) skip
    re-encoding the vocabulary.
    """
    if codes is None or lengths is None:
        codes, lengths = _char_table(list(words), max_len)
    q = np.array([ord(c) for c in query[:max_len]], dtype=np.int32)
    n, width = codes.shape
    prev = np.broadcast_to(np.arange(width + 1, dtype=np.int32), (n, width + 1)).copy()
    for i, qc in enumerate(q, start=1):
        cur = np.empty_like(prev)
        cur[:, 0] = i
        cost = (codes != qc).astype(np.int32)
        for j in range(1, width + 1):
            cur[:, j] = np.minimum(np.minimum(prev[:, j] + 1, cur[:, j - 1] + 1),
                                   prev[:, j - 1] + cost[:, j - 1])
        prev = cur
    return prev[np.arange(n), lengths]


def _char_table(words: list[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([min(len(w), max_len) for w in words], dtype=np.int64)
    width = int(lengths.max()) if lengths.size else 0
    codes = np.full((len(words), width), -1, dtype=np.int32)
    for i, w in enumerate(words):
        if w:
            codes[i, :lengths[i]] = [ord(c) for c in w[:max_len]]
    return codes, lengths


class WordVectors:
    """A vocabulary with one embedding vector per word.

    Parameters
    ----------
    words : sequence of str
        Distinct words; ``words[i]`` labels row ``i`` of ``vectors``.
    vectors : array-like of shape (n_words, dim)
        Finite float embedding matrix (kept as float32 or float64).
    metadata : mapping, optional
        JSON-serialisable description (model kind, parameters, timings).
    extras : mapping of str to ndarray, optional
        Numeric arrays saved with the model (e.g. ``"components"``: the SVD basis).

    Raises
    ------
    DataError
        Duplicate or empty words, a row count that differs from the vocabulary size, or
        non-finite vectors.

    Notes
    -----
    Memory: the matrix is held in memory (a vocabulary model is small next to the data it was
    built from: 121k x 300 float32 is 146 MB); queries score it in bounded row blocks.
    Determinism: ties in a neighbour query are broken by row order.

    Examples
    --------
    >>> wv = WordVectors(["cat", "cats", "dog"], [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> [w for w, _ in wv.neighbors("cat", k=2)]
    ['cat', 'cats']
    """

    def __init__(self, words: Sequence[str], vectors: Any,
                 metadata: Mapping[str, Any] | None = None,
                 extras: Mapping[str, Any] | None = None) -> None:
        words = [str(w) for w in words]
        vecs = np.asarray(vectors)
        if vecs.ndim != 2:
            raise DataError(f"vectors must be 2-D (n_words, dim); got shape {vecs.shape}.")
        if vecs.dtype not in (np.float32, np.float64):
            vecs = vecs.astype(np.float64)
        if vecs.shape[0] != len(words):
            raise DataError(f"{len(words)} words but {vecs.shape[0]} vector rows; they must match.")
        if not np.all(np.isfinite(vecs)):
            raise DataError("vectors contain NaN or inf values.")
        index = {w: i for i, w in enumerate(words)}
        if len(index) != len(words):
            seen: set[str] = set()
            dup = next(w for w in words if w in seen or seen.add(w))  # type: ignore[func-returns-value]
            raise DataError(f"the vocabulary must hold distinct words; {dup!r} is repeated.")
        if "" in index:
            raise DataError(f"the vocabulary holds an empty word (row {index['']}).")
        self.words = words
        self.vectors = vecs
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.extras: dict[str, np.ndarray] = {}
        for name, arr in dict(extras or {}).items():
            if not str(name).isidentifier():
                raise DataError(f"extra array names must be identifiers; got {name!r}.")
            value = np.asarray(arr)
            if value.dtype.kind not in "biuf":
                raise DataError(f"extra array {name!r} must be numeric; got {value.dtype}.")
            self.extras[str(name)] = value
        self._index = index
        self._nfc_index: dict[str, int] | None = None
        self._norms: np.ndarray | None = None
        self._spelling: tuple[np.ndarray, np.ndarray] | None = None

    # -- basic access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self._find(word) is not None

    def _find(self, word: str) -> int | None:
        """Row of ``word``, also when it and the vocabulary spell an accented letter differently
        (composed "é" against "e" + combining accent: both are compared in NFC)."""
        row = self._index.get(word)
        if row is not None or word.isascii():
            return row
        nfc = unicodedata.normalize("NFC", word)
        if self._nfc_index is None:
            self._nfc_index = {}
            for i, w in enumerate(self.words):
                if not w.isascii():
                    self._nfc_index.setdefault(unicodedata.normalize("NFC", w), i)
        return self._index.get(nfc, self._nfc_index.get(nfc))

    def __repr__(self) -> str:
        kind = self.metadata.get("model", "?")
        return f"WordVectors(n_words={len(self)}, dim={self.dim}, model={kind!r})"

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.vectors.shape[1])

    def index(self, word: str) -> int:
        """Row of ``word`` (any Unicode normal form); :class:`UnknownWordError` with suggestions
        when absent."""
        row = self._find(word)
        if row is None:
            raise UnknownWordError(word, self.suggest(word), str(self.metadata.get("model", "")))
        return row

    def vector(self, word: str) -> np.ndarray:
        """The embedding vector of ``word`` (a read-only view)."""
        row = self.vectors[self.index(word)]
        row = row.view()
        row.setflags(write=False)
        return row

    # -- spelling suggestions -----------------------------------------------------------------
    def suggest(self, word: str, k: int = 5, max_distance: int = 3) -> list[str]:
        """Up to ``k`` vocabulary words within ``max_distance`` edits of ``word``, closest first.

        A case-insensitive exact match comes first. Only words whose length differs by at most
        ``max_distance`` are scored (the distance is at least the length difference).
        """
        if not self.words or not word:
            return []
        if self._spelling is None:
            self._spelling = _char_table(self.words, 40)
        codes, lengths = self._spelling
        qlen = min(len(word), 40)
        cand = np.flatnonzero(np.abs(lengths - qlen) <= max_distance)
        if cand.size == 0:
            return []
        width = int(lengths[cand].max())
        dist = edit_distances(word, [], codes=codes[cand, :width], lengths=lengths[cand])
        lower = word.lower()
        dist = np.where(np.array([self.words[i].lower() == lower for i in cand]), -1, dist)
        keep = dist <= max_distance
        cand, dist = cand[keep], dist[keep]
        order = np.lexsort((cand, dist))[:k]
        return [self.words[i] for i in cand[order]]

    # -- queries ------------------------------------------------------------------------------
    def _row_norms(self) -> np.ndarray:
        if self._norms is None:
            self._norms = np.sqrt(np.einsum("ij,ij->i", self.vectors, self.vectors,
                                            dtype=np.float64))
        return self._norms

    def distances(self, query: Any, metric: str = "sqeuclidean") -> np.ndarray:
        """Distance from the vector ``query`` to every row (float64, in vocabulary order)."""
        if metric not in METRICS:
            raise InvalidParameterError(f"metric must be one of {METRICS}; got {metric!r}.")
        q = np.asarray(query, dtype=np.float64).reshape(-1)
        if q.size != self.dim:
            raise DataError(f"query vector has {q.size} values; the model has dim {self.dim}.")
        out = np.empty(len(self), dtype=np.float64)
        qq = float(q @ q)
        norms = self._row_norms()
        for lo in range(0, len(self), _QUERY_ROWS):
            block = self.vectors[lo:lo + _QUERY_ROWS]
            if metric == "sqeuclidean":  # exact differences: tiny distances keep their digits
                diff = block.astype(np.float64) - q
                out[lo:lo + block.shape[0]] = np.einsum("ij,ij->i", diff, diff)
            else:
                dots = block.astype(np.float64, copy=False) @ q
                denom = norms[lo:lo + block.shape[0]] * np.sqrt(qq)
                with np.errstate(invalid="ignore", divide="ignore"):
                    cos = np.where(denom > 0, dots / np.where(denom > 0, denom, 1.0), 0.0)
                out[lo:lo + block.shape[0]] = 1.0 - cos
        return out

    def neighbors_of_vector(self, query: Any, k: int = 10, metric: str = "sqeuclidean",
                            exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        """The ``k`` nearest words to a vector, closest first, as ``(word, distance)``
        (:func:`~veob_dask.index.exact_kneighbors`; ties by vocabulary order)."""
        if int(k) < 1:
            raise InvalidParameterError(f"k must be >= 1; got {k}.")
        if metric not in METRICS:
            raise InvalidParameterError(f"metric must be one of {METRICS}; got {metric!r}.")
        q = np.asarray(query, dtype=np.float64).reshape(-1)
        if q.size != self.dim:
            raise DataError(f"query vector has {q.size} values; the model has dim {self.dim}.")
        skip = {self._index[w] for w in exclude if w in self._index}
        want = min(int(k) + len(skip), len(self))
        idx, dist = exact_kneighbors(q[None, :], self.vectors, want, metric=metric)
        hits = [(self.words[i], float(v)) for i, v in zip(idx[0], dist[0], strict=True)
                if i not in skip]
        return hits[:int(k)]

    def neighbors(self, word: str, k: int = 10, metric: str = "sqeuclidean",
                  include_self: bool = True) -> list[tuple[str, float]]:
        """The ``k`` nearest vocabulary words to ``word``, closest first (the paper's tables).

        With ``include_self`` (default, as in the paper's tables) the word itself comes first
        at distance 0.
        """
        row = self.index(word)
        word = self.words[row]  # the vocabulary's spelling (another Unicode form may be asked)
        vec = self.vectors[row]
        if not np.any(vec):
            raise DataError(
                f"{word!r} has the zero vector in this {self.metadata.get('model', '')} model: "
                "it is equally far from every word, so it has no neighbours (the model holds "
                "no information about it).")
        exclude = () if include_self else (word,)
        out = self.neighbors_of_vector(vec, k, metric, exclude=exclude)
        if include_self:  # rounding can put an exact duplicate vector first: keep the word first
            out.sort(key=lambda t: (t[1], t[0] != word))
        return out

    def similarity(self, word1: str, word2: str) -> float:
        """Cosine similarity of two vocabulary words (0 when either vector is zero)."""
        a = self.vectors[self.index(word1)].astype(np.float64)
        b = self.vectors[self.index(word2)].astype(np.float64)
        den = float(np.linalg.norm(a) * np.linalg.norm(b))
        return float(a @ b / den) if den > 0 else 0.0

    def normalized(self) -> WordVectors:
        """A copy whose rows have unit Euclidean norm (zero rows stay zero)."""
        norms = self._row_norms()
        scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
        vecs = (self.vectors * scale[:, None]).astype(self.vectors.dtype)
        return WordVectors(self.words, vecs, {**self.metadata, "normalized": True}, self.extras)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: PathLike | Location, *, overwrite: bool = False,
             chunk_rows: int = 65_536, storage_options: Mapping[str, Any] | None = None) -> None:
        """Write the model as a Zarr group at ``path`` (atomically; see the module docstring).

        Raises
        ------
        StoreExistsError
            If ``path`` may not be written (see :func:`veob_dask.io.check_output`).
        DataError
            If ``metadata`` is not JSON-serialisable.
        """
        self._check_metadata()
        nbytes = int(self.vectors.nbytes) + sum(int(v.nbytes) for v in self.extras.values())
        with create_artifact(path, "wordvectors", overwrite=overwrite, nbytes=nbytes,
                             storage_options=storage_options) as w:
            self.write_into(w, chunk_rows=chunk_rows)

    def _check_metadata(self) -> None:
        try:
            json.dumps(self.metadata, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise DataError(f"metadata must be JSON-serialisable: {err}") from err

    def write_into(self, writer: ArtifactWriter, *, chunk_rows: int = 65_536) -> None:
        """Fill ``writer`` (a root or nested group of kind ``"wordvectors"``) with this model."""
        self._check_metadata()
        data, offsets = _encode_words(self.words)
        assert writer.header is not None
        writer.header.update(n_words=len(self), dim=self.dim, metadata=self.metadata)
        rows = max(1, min(chunk_rows, len(self)))
        writer.array("vectors", self.vectors, dims=("word", "dim"), chunks=(rows, self.dim))
        writer.array("words_utf8", data, dims=("byte",), chunks=(max(1, min(data.size, 1 << 22)),))
        writer.array("words_offsets", offsets, dims=("word_offset",),
                     chunks=(min(offsets.size, 1 << 20),))
        for name, value in self.extras.items():
            writer.array(f"extra_{name}", value,
                         dims=tuple(f"{name}_{i}" for i in range(value.ndim)))

    @classmethod
    def load(cls, path: PathLike | Location, *,
             storage_options: Mapping[str, Any] | None = None) -> WordVectors:
        """Read a model written by :meth:`save`.

        Raises
        ------
        StoreNotFoundError
            If nothing is stored at ``path``.
        StoreFormatError
            If the group is not a word-vector model or its arrays are inconsistent.
        """
        loc = as_location(path, storage_options)
        group, header = open_artifact(loc, "wordvectors")
        return cls.from_group(group, header, repr(str(loc)))

    @classmethod
    def from_group(cls, group: zarr.Group, header: Mapping[str, Any], where: str
                   ) -> WordVectors:
        """Read a model from an open group (its checked ``header`` given)."""
        info = header.get("legacy") if header.get("format_version") == 1 else header
        if not isinstance(info, Mapping):
            raise StoreFormatError(f"{where}: the word-vector header is damaged.")
        arrays = read_arrays(group, ["vectors", "words_utf8", "words_offsets"], where)
        vectors, data, offsets = (arrays[k] for k in ("vectors", "words_utf8", "words_offsets"))
        extra_names = [k for k in group.array_keys() if k.startswith("extra_")]
        extras = {k[len("extra_"):]: v for k, v in read_arrays(group, extra_names, where).items()}
        n = info.get("n_words", -1)
        if (not isinstance(n, int) or offsets.ndim != 1 or offsets.dtype.kind not in "iu"
                or data.ndim != 1 or offsets.size != n + 1 or vectors.ndim != 2
                or vectors.shape[0] != n or vectors.dtype.kind != "f" or offsets[0] != 0
                or offsets[-1] != data.size or np.any(np.diff(offsets) < 0)):
            raise StoreFormatError(f"{where}: vocabulary and vectors are inconsistent "
                                   f"({n} words, {vectors.shape[0]} rows, {offsets.size} "
                                   "offsets); the model is corrupt.")
        for name, value in extras.items():
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                raise StoreFormatError(f"{where}: extra array {name!r} holds NaN or inf.")
        metadata = info.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise StoreFormatError(f"{where}: the model metadata must be a JSON object.")
        try:
            return cls(_decode_words(data, offsets), vectors, metadata, extras)
        except DataError as err:
            raise StoreFormatError(f"{where}: {err}") from err
