"""IMDB reviews → sentences → token ids, stored as ragged arrays in Zarr.

Two sources are read, both by path:

* the packed table ``imdb_labeled_50k.tsv[.xz|.gz]`` (tab separated, header
  ``split label id rating text``; one review per line);
* an unpacked ``aclImdb/`` folder (``{train,test}/{pos,neg,unsup}/{id}_{rating}.txt``), or the
  folder that contains it.

:func:`build_corpus` reads the reviews in chunks, splits and tokenises them with the rules of
:mod:`veob_dask.text.tokenize`, and writes a corpus store (layout below). :class:`Corpus` reads it
back chunk by chunk.

Store layout (a Zarr group of kind ``"corpus"``; version-1 stores, marked
``attrs["kind"] == "veob_text_corpus"``, are read too)::

    tokens/values, tokens/offsets     token ids of every sentence (ragged: int32 values, int64
                                      offsets of length n_sentences + 1)
    text/values, text/offsets         sentence text as UTF-8 bytes (ragged, uint8 values)
    sentence_review                   int32 review index of each sentence
    vocab/values, vocab/offsets       the words (UTF-8, ragged), id 0 = most frequent
    vocab_counts                      int64 count of each word in the corpus
    reviews/split, reviews/label      int8 codes (see ``SPLITS``/``LABELS``)
    reviews/id, reviews/rating        int32 / int8 from the file names
    reviews/sentence_offsets          int64, sentences of review r are [o[r], o[r+1])

Each ragged pair is a nested group of kind ``"ragged"`` (:mod:`veob_dask.io.ragged`), so
``veob_dask.io.read_ragged(path + "/tokens")`` (or :attr:`Corpus.tokens`) opens the token ids
lazily.

Token ids are sorted by descending corpus frequency (ties: first appearance), so the ``n`` most
frequent words are ids ``0..n-1``.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from veob_dask.errors import DataError, InvalidParameterError, StoreFormatError, StoreNotFoundError
from veob_dask.io.location import Location, PathLike, as_location
from veob_dask.io.ragged import Ragged, RaggedWriter, open_ragged, read_ragged
from veob_dask.io.store import open_artifact, open_group, read_arrays, store_exists, store_header
from veob_dask.io.writer import ArtifactWriter, create_artifact
from veob_dask.text.tokenize import (
    READ_ERRORS,
    decode_bytes,
    guess_encoding,
    open_text_file,
    read_error,
    sentences_tokens,
)

__all__ = [
    "LABELS",
    "SPLITS",
    "Corpus",
    "Review",
    "build_corpus",
    "ensure_corpus",
    "iter_review_chunks",
    "iter_reviews",
]

logger = logging.getLogger(__name__)

SPLITS = ("train", "test", "unsup")
LABELS = {"neg": 0, "pos": 1, "unsup": -1}
_LABEL_NAMES = {v: k for k, v in LABELS.items()}
_HEADER = ["split", "label", "id", "rating", "text"]
_FILE_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")


@dataclass(frozen=True)
class Review:
    """One review: where it comes from and its raw text."""

    split: str
    label: str
    id: int
    rating: int
    text: str

    @property
    def source(self) -> str:
        """File name as in the aclImdb folder, e.g. ``"test/pos/0_10.txt"``."""
        return f"{self.split}/{self.label}/{self.id}_{self.rating}.txt"


def _iter_table(path: Path, splits: Sequence[str] | None) -> Iterator[Review]:
    try:
        with open_text_file(path) as fh:
            yield from _parse_table(fh, path, splits)
    except READ_ERRORS as exc:
        raise read_error(path, exc) from exc


def _parse_table(fh: Any, path: Path, splits: Sequence[str] | None) -> Iterator[Review]:
    first = fh.readline()
    header = decode_bytes(first).rstrip("\r\n").split("\t")
    if header != _HEADER:
        try:
            first.decode("utf-8")
            enc = "" if b"\x00" not in first else f" (the file looks like {guess_encoding(first)})"
        except UnicodeDecodeError:
            enc = f" (the file is not UTF-8; it looks like {guess_encoding(first)})"
        raise DataError(
            f"review table {str(path)!r} must start with the header line "
            f"{' '.join(_HEADER)!r} (tab separated, UTF-8); got {header[:5]!r}{enc}."
        )
    for lineno, raw in enumerate(fh, start=2):
        line = decode_bytes(raw).rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t", 4)
        if len(fields) != 5:
            raise DataError(
                f"{str(path)!r} line {lineno}: expected 5 tab-separated fields "
                f"(split, label, id, rating, text); got {len(fields)}."
            )
        split, label, rid, rating, text = fields
        if splits is not None and split not in splits:
            continue
        try:
            yield Review(split, label, int(rid), int(rating), text)
        except ValueError as exc:
            raise DataError(
                f"{str(path)!r} line {lineno}: id and rating must be integers; "
                f"got {rid!r}, {rating!r}."
            ) from exc


def _aclimdb_root(path: Path) -> Path | None:
    for root in (path, path / "aclImdb"):
        if any((root / s).is_dir() for s in SPLITS[:2]):
            return root
    return None


def _iter_folder(root: Path, splits: Sequence[str] | None) -> Iterator[Review]:
    for split in ("train", "test"):
        if splits is not None and split not in splits:
            continue
        for label in ("pos", "neg", "unsup"):
            folder = root / split / label
            if not folder.is_dir():
                continue
            entries = []
            for entry in os.scandir(folder):
                m = _FILE_NAME.match(entry.name)
                if m:
                    entries.append((int(m.group(1)), int(m.group(2)), entry.path))
            for rid, rating, file in sorted(entries):
                with open(file, "rb") as fh:
                    text = decode_bytes(fh.read())
                yield Review(split if label != "unsup" else "unsup", label, rid, rating,
                             text.replace("\n", " "))


def iter_reviews(path: str | os.PathLike[str], *, splits: Sequence[str] | None = None,
                 limit: int | None = None) -> Iterator[Review]:
    """Yield reviews from a review table or an ``aclImdb/`` folder.

    Parameters
    ----------
    path : str or path-like
        ``imdb_labeled_50k.tsv.xz`` (or ``.tsv``/``.tsv.gz``), or an unpacked ``aclImdb`` folder
        (or its parent).
    splits : sequence of str, optional
        Keep only these splits (``"train"``, ``"test"``, ``"unsup"``).
    limit : int, optional
        Stop after this many reviews.

    Yields
    ------
    Review

    Raises
    ------
    StoreNotFoundError
        If ``path`` does not exist.
    DataError
        On a malformed table (bad header, wrong field count, non-integer id/rating).
    """
    p = Path(path)
    if not p.exists():
        raise StoreNotFoundError(
            f"IMDB reviews not found at {str(p)!r}; pass the imdb_labeled_50k.tsv.xz file or an "
            "unpacked aclImdb/ folder."
        )
    if limit is not None and limit < 1:
        raise InvalidParameterError(f"limit must be a positive integer; got {limit!r}.")
    if p.is_dir():
        root = _aclimdb_root(p)
        if root is None:
            raise DataError(f"{str(p)!r} is not an aclImdb folder (no train/ or test/ inside).")
        source: Iterable[Review] = _iter_folder(root, splits)
    else:
        source = _iter_table(p, splits)
    for n, review in enumerate(source):
        if limit is not None and n >= limit:
            return
        yield review


def iter_review_chunks(path: str | os.PathLike[str], chunk_size: int = 2000,
                       **kwargs: Any) -> Iterator[list[Review]]:
    """Yield lists of at most ``chunk_size`` reviews (see :func:`iter_reviews`)."""
    if chunk_size < 1:
        raise InvalidParameterError(f"chunk_size must be a positive integer; got {chunk_size!r}.")
    chunk: list[Review] = []
    for review in iter_reviews(path, **kwargs):
        chunk.append(review)
        if len(chunk) == chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --------------------------------------------------------------------------- build
def _tokenize_chunk(reviews: Sequence[Review], vocab: dict[str, int],
                    counts: list[int]) -> tuple[np.ndarray, np.ndarray, list[bytes], np.ndarray]:
    ids: list[int] = []
    lengths: list[int] = []
    texts: list[bytes] = []
    per_review = np.zeros(len(reviews), dtype=np.int64)
    for r, review in enumerate(reviews):
        for text, tokens in sentences_tokens(review.text):
            for tok in tokens:
                i = vocab.get(tok)
                if i is None:
                    i = vocab[tok] = len(counts)
                    counts.append(0)
                counts[i] += 1
                ids.append(i)
            lengths.append(len(tokens))
            texts.append(text.encode("utf-8"))
            per_review[r] += 1
    return (np.asarray(ids, dtype=np.int32), np.asarray(lengths, dtype=np.int64), texts,
            per_review)


def build_corpus(source: str | os.PathLike[str], path: str | os.PathLike[str], *,
                 chunk_reviews: int = 2500, splits: Sequence[str] | None = None,
                 limit: int | None = None, overwrite: bool = False,
                 progress: Callable[[str], None] | None = None) -> Corpus:
    """Tokenise reviews chunk by chunk and write a corpus store.

    Parameters
    ----------
    source : str or path-like
        Review table or ``aclImdb`` folder (see :func:`iter_reviews`).
    path : str or path-like
        Destination Zarr store (written to a temporary path, then renamed).
    chunk_reviews : int, default=2500
        Reviews tokenised and appended per step.
    splits, limit
        Passed to :func:`iter_reviews`.
    overwrite : bool, default=False
        Replace an existing store.
    progress : callable, optional
        Receives one line after each chunk of reviews; default: this module's logger at DEBUG
        level.

    Returns
    -------
    Corpus

    Notes
    -----
    Memory: one chunk of reviews plus the vocabulary dictionary (~110k words for IMDB) are held
    in memory; token ids go to Zarr as each chunk is done. A final pass renumbers the ids by
    frequency, one Zarr chunk at a time.
    Determinism: the same input gives the same store.
    """
    t0 = time.perf_counter()
    vocab: dict[str, int] = {}
    counts: list[int] = []
    n_reviews = 0
    with create_artifact(path, "corpus", overwrite=overwrite, inputs=[source]) as w:
        tokens = RaggedWriter(w, "tokens", np.int32, chunk=1 << 20)
        text = RaggedWriter(w, "text", np.uint8, chunk=1 << 22)
        sent_review = w.array("sentence_review", shape=(0,), dtype=np.int32,
                              dims=("sentence",), chunks=(1 << 20,))
        meta: dict[str, list[np.ndarray]] = {k: [] for k in ("split", "label", "id", "rating")}
        per_review: list[np.ndarray] = []
        for chunk in iter_review_chunks(source, chunk_reviews, splits=splits, limit=limit):
            ids, lengths, texts, n_sent = _tokenize_chunk(chunk, vocab, counts)
            tokens.append(ids, lengths)
            text.append_bytes(texts)
            owner = np.repeat(np.arange(n_reviews, n_reviews + len(chunk), dtype=np.int32), n_sent)
            if owner.size:
                sent_review.append(owner)
            per_review.append(n_sent)
            for key, value in _review_fields(chunk).items():
                meta[key].append(value)
            n_reviews += len(chunk)
            (progress or logger.debug)(f"{n_reviews} reviews, {len(tokens)} sentences, "
                                       f"{len(counts)} words, {time.perf_counter() - t0:.1f}s")
        if n_reviews == 0:
            raise DataError(f"no reviews found in {str(source)!r}.")
        n_tokens = int(tokens.values.shape[0])
        if n_tokens == 0:
            raise DataError(f"the reviews in {str(source)!r} contain no tokens.")
        order = _write_vocabulary(w, tokens, vocab, counts)
        _write_reviews(w, meta, per_review)
        w.header.update({
            "source": str(source),
            "limit": limit,
            "n_reviews": n_reviews,
            "n_sentences": len(tokens),
            "n_tokens": n_tokens,
            "vocab_size": int(order.size),
            "tokenizer": "veob_dask.text.tokenize v1",
            "build_seconds": round(time.perf_counter() - t0, 3),
        })
    return Corpus(path)



def _write_reviews(w: ArtifactWriter, meta: dict[str, list[np.ndarray]],
                   per_review: list[np.ndarray]) -> None:
    """The ``reviews`` tables: one row per review, and where its sentences start."""
    rev = w.subgroup("reviews")
    for key, parts in meta.items():
        rev.array(key, np.concatenate(parts), dims=("review",), chunks=(1 << 20,))
    sent_counts = np.concatenate(per_review)
    rev.array("sentence_offsets",
              np.concatenate([[0], np.cumsum(sent_counts)]).astype(np.int64),
              dims=("review_offset",), chunks=(1 << 20,))

def _review_fields(chunk: Sequence[Review]) -> dict[str, np.ndarray]:
    return {"split": np.array([SPLITS.index(r.split) for r in chunk], np.int8),
            "label": np.array([LABELS.get(r.label, -1) for r in chunk], np.int8),
            "id": np.array([r.id for r in chunk], np.int32),
            "rating": np.array([r.rating for r in chunk], np.int8)}


def _write_vocabulary(w: ArtifactWriter, tokens: RaggedWriter, vocab: dict[str, int],
                      counts: list[int]) -> np.ndarray:
    """Renumber the token ids by descending frequency (stable: ties keep first-appearance
    order), one Zarr chunk at a time, and write the vocabulary; return the new order."""
    count_arr = np.asarray(counts, dtype=np.int64)
    order = np.argsort(-count_arr, kind="stable")
    remap = np.empty_like(order, dtype=np.int32)
    remap[order] = np.arange(order.size, dtype=np.int32)
    n_tokens = int(tokens.values.shape[0])
    step = tokens.values.chunks[0]
    for lo in range(0, n_tokens, step):
        hi = min(n_tokens, lo + step)
        tokens.values[lo:hi] = remap[np.asarray(tokens.values[lo:hi])]
    words = list(vocab)
    RaggedWriter(w, "vocab", np.uint8).append_bytes([words[i].encode("utf-8") for i in order])
    w.array("vocab_counts", count_arr[order], dims=("word",), chunks=(1 << 20,))
    return order


def ensure_corpus(source: str | os.PathLike[str], corpus_path: str | os.PathLike[str] | None,
                  *, limit: int | None = None, overwrite: bool = False,
                  progress: Callable[[str], None] | None = None) -> Corpus:
    """Open ``source`` if it is a corpus store; otherwise build one from raw reviews.

    Parameters
    ----------
    source : path-like
        A corpus store, a review table or an ``aclImdb`` folder.
    corpus_path : path-like, optional
        Where to write the corpus built from raw reviews (required then). An existing corpus
        store there is reused unless ``overwrite``.
    limit, overwrite, progress
        Passed to :func:`build_corpus`.
    """
    if _is_corpus(source):
        return Corpus(source)
    if corpus_path is None:
        raise InvalidParameterError(
            f"{str(source)!r} is not a corpus store; give a path for the corpus built from it "
            "(CLI: --corpus PATH).")
    if store_exists(corpus_path) and not overwrite:
        corpus = Corpus(corpus_path)
        if corpus.attrs.get("source") == str(source) and corpus.attrs.get("limit") == limit:
            return corpus
        raise InvalidParameterError(
            f"{str(corpus_path)!r} holds a corpus of {corpus.attrs.get('source')!r} "
            f"(limit {corpus.attrs.get('limit')!r}); pass overwrite (CLI: --overwrite) to "
            "rebuild it.")
    return build_corpus(source, corpus_path, limit=limit, overwrite=True, progress=progress)


def _is_corpus(path: Any) -> bool:
    if not isinstance(path, (str, os.PathLike, Location)) or not store_exists(path):
        return False
    header = store_header(open_group(path))
    return header is not None and header.get("kind") == "corpus"


# --------------------------------------------------------------------------- read
class Corpus:
    """Read access to a corpus store written by :func:`build_corpus`.

    Parameters
    ----------
    path : str or path-like
        The corpus store.

    Notes
    -----
    Memory: the vocabulary and the per-sentence/per-review index arrays (a few MB for IMDB) are
    loaded on demand; token ids and texts are read in chunks by :meth:`iter_sentence_chunks`.
    """

    def __init__(self, path: PathLike | Location) -> None:
        self.location = as_location(path)
        self.path = str(self.location)
        if not store_exists(self.location):
            raise StoreNotFoundError(
                f"no corpus store at {self.path!r}; build one with build_corpus() or with "
                "`veob words build context REVIEWS --corpus CORPUS -o MODEL`."
            )
        self.group, header = open_artifact(self.location, "corpus")
        info = header.get("legacy") if header.get("format_version") == 1 else header
        self.attrs: dict[str, Any] = dict(info or {})
        for key in ("n_sentences", "n_reviews", "vocab_size", "n_tokens"):
            if not isinstance(self.attrs.get(key), int) or self.attrs[key] < 0:
                raise StoreFormatError(f"{self.path!r}: the corpus header lacks a valid "
                                       f"{key!r}; the store is damaged.")
        self._ragged: dict[str, Ragged] = {}
        self._vocab: list[str] | None = None
        self._index: dict[str, int] | None = None
        self._offsets: np.ndarray | None = None

    # -- sizes
    @property
    def n_sentences(self) -> int:
        return int(self.attrs["n_sentences"])

    @property
    def n_reviews(self) -> int:
        return int(self.attrs["n_reviews"])

    @property
    def vocab_size(self) -> int:
        return int(self.attrs["vocab_size"])

    # -- vocabulary
    @property
    def vocabulary(self) -> list[str]:
        """Words by id (id 0 is the most frequent)."""
        if self._vocab is None:
            values, offsets = self._part("vocab").block(0, self.vocab_size)
            blob = values.tobytes()
            self._vocab = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]
        return self._vocab

    @property
    def word_index(self) -> dict[str, int]:
        """Mapping word → id."""
        if self._index is None:
            self._index = {w: i for i, w in enumerate(self.vocabulary)}
        return self._index

    @property
    def counts(self) -> np.ndarray:
        """Corpus count of each word id."""
        return read_arrays(self.group, ["vocab_counts"], repr(self.path))["vocab_counts"]

    # -- sentences
    @property
    def sentence_offsets(self) -> np.ndarray:
        """int64 offsets into the token values (length ``n_sentences + 1``)."""
        if self._offsets is None:
            off = np.asarray(self._part("tokens").offsets[...], dtype=np.int64)
            if off.shape != (self.n_sentences + 1,) or off[0] != 0 or np.any(np.diff(off) < 0):
                raise StoreFormatError(f"{self.path!r}: the sentence offsets are damaged.")
            self._offsets = off
        return self._offsets

    @property
    def sentence_lengths(self) -> np.ndarray:
        """Number of tokens of each sentence."""
        return np.diff(self.sentence_offsets)

    @property
    def sentence_review(self) -> np.ndarray:
        """Review index of each sentence."""
        return read_arrays(self.group, ["sentence_review"], repr(self.path))["sentence_review"]

    @property
    def tokens(self) -> Any:
        """Token ids of every sentence as a lazy Zarr-backed
        :class:`~veob_dask.io.ragged.Ragged` (for :mod:`veob_dask.spectral.sequence`)."""
        return read_ragged(self.location.child("tokens"))

    def _part(self, name: str) -> Ragged:
        if name not in self._ragged:
            sub = self.group.get(name)
            if not isinstance(sub, zarr.Group):
                raise StoreFormatError(f"ragged array {name!r} is missing from {self.path!r}.")
            self._ragged[name] = open_ragged(sub, f"{self.path!r}/{name}")
        return self._ragged[name]

    def sentence_tokens(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of sentences ``start:stop``: ``(values, offsets)`` with offsets from 0."""
        return self._part("tokens").block(start, stop)

    def iter_sentence_chunks(self, chunk_sentences: int = 100_000
                             ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(start, values, offsets)`` for consecutive blocks of sentences."""
        if chunk_sentences < 1:
            raise InvalidParameterError(
                f"chunk_sentences must be a positive integer; got {chunk_sentences!r}.")
        for start in range(0, self.n_sentences, chunk_sentences):
            stop = min(self.n_sentences, start + chunk_sentences)
            values, offsets = self.sentence_tokens(start, stop)
            yield start, values, offsets

    def sentence_text(self, indices: Iterable[int], *, window: int = 200_000) -> list[str]:
        """Text (normalised, case kept) of the given sentences, in the order given.

        Reads the text store in windows of ``window`` consecutive sentences, so asking for
        every sentence costs one sequential pass, not one read per sentence.
        """
        idx = np.asarray(list(indices), dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_sentences):
            raise InvalidParameterError(
                f"sentence indices must be in [0, {self.n_sentences}); got {idx.min()}.."
                f"{idx.max()}.")
        out: list[str] = [""] * idx.size
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        pos = 0
        while pos < sorted_idx.size:
            lo = int(sorted_idx[pos])
            hi = min(self.n_sentences, lo + window)
            end = int(np.searchsorted(sorted_idx, hi, side="left"))
            values, offsets = self._part("text").block(lo, hi)
            blob = values.tobytes()
            for j in range(pos, end):
                r = int(sorted_idx[j]) - lo
                out[int(order[j])] = blob[offsets[r]:offsets[r + 1]].decode("utf-8")
            pos = end
        return out

    # -- reviews
    def reviews(self) -> dict[str, np.ndarray]:
        """Per-review arrays ``split``, ``label``, ``id``, ``rating``, ``sentence_offsets``."""
        rev = self.group.get("reviews")
        if not isinstance(rev, zarr.Group):
            raise StoreFormatError(f"{self.path!r} lacks its 'reviews' group.")
        return read_arrays(rev, ["split", "label", "id", "rating", "sentence_offsets"],
                           f"{self.path!r}/reviews")

    def source_names(self, review_indices: Iterable[int]) -> list[str]:
        """aclImdb-style file names (``"test/pos/0_10.txt"``) of the given reviews."""
        rev = self.reviews()
        return [f"{SPLITS[rev['split'][i]]}/{_LABEL_NAMES[int(rev['label'][i])]}/"
                f"{rev['id'][i]}_{rev['rating'][i]}.txt" for i in review_indices]

    def __repr__(self) -> str:
        return (f"Corpus({self.path!r}: {self.n_reviews} reviews, {self.n_sentences} sentences, "
                f"{self.attrs['n_tokens']} tokens, {self.vocab_size} words)")
