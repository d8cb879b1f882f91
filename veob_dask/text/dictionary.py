"""Dictionary embedding (§6.4): orthography slice + synonym slots + antonym slots → SVD 300.

Sources (loaders take a path):

* the **Simple English Dictionary** JSON the paper used (``merged.json``, or ``.json.xz`` /
  ``.json.gz``): ``{"WORD": {"MEANINGS": [...], "SYNONYMS": [...], "ANTONYMS": [...]}}``
  (:func:`load_simple_dictionary`);
* **WordNet** 3.x database files ``data.noun``, ``data.verb``, ``data.adj``, ``data.adv``
  (Debian ``wordnet-base``: ``/usr/share/wordnet``), parsed here (:func:`load_wordnet`): the
  synonyms of a word are the other lemmas of every synset it belongs to, its antonyms the
  targets of its lexical ``!`` pointers.

Both give a :class:`Dictionary`: entries ``word → (synonyms, antonyms)``, all lower-cased (as
the author's notebook does), with every word listed among its own synonyms (also the author's
choice: it makes a word and its synonyms share a slot), and the word's senses: definitions,
related terms (hypernyms) and example phrases, which the §6.4 recipe ignores and
:mod:`veob_dask.text.definitions` uses. Several sources combine into one
(:func:`combine_dictionaries`). Malformed entries (a value that is not an object, a synonym
that is not a string...) are skipped and counted in :attr:`Dictionary.report`; ``strict=True``
raises :class:`~veob_dask.errors.DataError` instead. A malformed sense is skipped and counted
(``bad_senses``) without dropping the entry. Bytes that are not UTF-8 are replaced (U+FFFD) and
counted; empty strings are dropped.

The matrix has one row per entry word and ``30 + n_synonyms + n_antonyms`` columns:

1. the **orthography slice**: the word's §6.2 spelling embedding (N = 15, m ≤ 6, 30 dims),
   divided by the norm of its singular values ‖σ‖ "to prevent spelling from overly influencing
   the final embedding" (paper §6.4);
2. **synonym slots**: 1 in the column of each synonym (the slot vocabulary is every distinct
   synonym string);
3. **antonym slots**: 1 in the column of each antonym.

Identical slot columns (e.g. the synonyms only one entry lists) are merged into one column of
weight √count, which leaves ``X Xᵀ`` — hence the row embedding — unchanged (153,399 → 116,731
slot columns for the Simple English Dictionary). The matrix is built as a lazy dask array of
scipy CSR row blocks and decomposed with
``SVDEmbedding(n_components=300, solver="randomized")``; the vectors are ``X Vᵀ = U Σ``, compared
with squared Euclidean distances as in the paper's table.
"""

from __future__ import annotations

import functools
import gc
import itertools
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp

from ..errors import DataError, InvalidParameterError
from ..svd import SVDEmbedding, total_energy
from .spelling import spelling_embedding
from .tokenize import read_text_file
from .wordvectors import WordVectors

__all__ = ["WORDNET_DIR", "WORDNET_RELATED", "Dictionary", "build_dictionary",
           "combine_dictionaries", "dictionary_matrix", "load_dictionary",
           "load_simple_dictionary", "load_wordnet", "merge_identical_columns"]

WORDNET_DIR = "/usr/share/wordnet"
_WN_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")


@dataclass
class Dictionary:
    """Words with their synonyms and antonyms (lower case; each word is its own synonym), and
    what a dictionary says about each sense: definitions, related terms, example phrases.

    The §6.4 recipe reads only ``entries``; :mod:`veob_dask.text.definitions` reads the rest.
    """

    entries: dict[str, tuple[list[str], list[str]]]
    source: str = ""
    #: counts of what the loader read, skipped and repaired
    report: dict[str, int] = field(default_factory=dict)
    #: first few malformed entries, ``(key, reason)``
    problems: list[tuple[str, str]] = field(default_factory=list)
    #: word -> its definitions (glosses), one string per sense
    glosses: dict[str, list[str]] = field(default_factory=dict)
    #: word -> terms related to its senses (Simple English Dictionary: the terms listed with
    #: each meaning, mostly its hypernyms; WordNet: lemmas of hypernym, instance-hypernym and
    #: similar-to synsets)
    related: dict[str, list[str]] = field(default_factory=dict)
    #: word -> example phrases of its senses
    examples: dict[str, list[str]] = field(default_factory=dict)
    #: irregular inflected form -> lemmas (WordNet's exception lists ``*.exc``)
    inflections: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries)

    def subset(self, words: Iterable[str]) -> Dictionary:
        """The entries of ``words`` only (with all their synonyms, antonyms and senses)."""
        keep = [w for w in words if w in self.entries]
        return Dictionary({w: self.entries[w] for w in keep}, self.source, self.report,
                          self.problems,
                          *({w: m[w] for w in keep if w in m}
                            for m in (self.glosses, self.related, self.examples)),
                          self.inflections)

    @property
    def words(self) -> list[str]:
        """Entry words, sorted."""
        return sorted(self.entries)

    def slot_vocabularies(self) -> tuple[list[str], list[str]]:
        """Sorted distinct synonyms and antonyms (the slot columns)."""
        syn: set[str] = set()
        ant: set[str] = set()
        for s, a in self.entries.values():
            syn.update(s)
            ant.update(a)
        return sorted(syn), sorted(ant)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _without_gc(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``func`` with the cyclic garbage collector paused. A reader builds millions of small
    lists, sets and dicts (none in a reference cycle), and each collection they trigger walks
    all of them again: pausing it halved the time to read the Simple English Dictionary."""
    @functools.wraps(func)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()
    return run


@functools.lru_cache(maxsize=1 << 18)
def _normalize(term: str) -> str:
    """Lower case, runs of white space as one space, none at the ends."""
    return " ".join(term.split()).lower()


def _normalize_all(terms: Iterable[str]) -> list[str]:
    """:func:`_normalize` of each term (empty results kept). A term that is not a string
    raises AttributeError: of the values JSON gives, only strings have ``split``."""
    return [" ".join(t.split()).lower() for t in terms]


def _string_lists(values: Iterable[Any]) -> list[list[str]] | None:
    """:func:`_normalize_all` of each value, or None when one is not a list of strings."""
    out = []
    try:
        for v in values:
            if not isinstance(v, list):
                return None
            out.append(_normalize_all(v))
    except AttributeError:  # a term that is not a string
        return None
    return out


class _Builder:
    def __init__(self, source: str, strict: bool) -> None:
        self.entries: dict[str, tuple[set[str], set[str]]] = {}
        self.report = {"entries_read": 0, "malformed": 0, "empty_terms": 0, "bad_utf8": 0}
        self.problems: list[tuple[str, str]] = []
        self.source = source
        self.strict = strict
        #: count terms holding U+FFFD (off when the decoder replaced no byte: none can)
        self.check_utf8 = True
        self.glosses: dict[str, list[str]] = {}
        self.related: dict[str, list[str]] = {}
        self.examples: dict[str, list[str]] = {}
        self.inflections: dict[str, list[str]] = {}

    def bad(self, key: str, reason: str) -> None:
        if self.strict:
            raise DataError(f"{self.source}: malformed entry {key!r}: {reason}.")
        self.report["malformed"] += 1
        if len(self.problems) < 20:
            self.problems.append((key, reason))

    def clean(self, term: str) -> str:
        t = _normalize(term)
        if self.check_utf8 and "\ufffd" in t:
            self.report["bad_utf8"] += 1
        return t

    def count_utf8(self, terms: list[str]) -> None:
        """Count the terms holding U+FFFD (when checked)."""
        if self.check_utf8:
            self.report["bad_utf8"] += sum("\ufffd" in t for t in terms)

    def normalized(self, terms: Iterable[str]) -> list[str]:
        """:func:`_normalize_all`, with bad UTF-8 counted."""
        out = _normalize_all(terms)
        self.count_utf8(out)
        return out

    def _nonempty(self, terms: list[str]) -> list[str]:
        """``terms`` without the empty ones, which are counted."""
        if "" not in terms:
            return terms
        self.report["empty_terms"] += terms.count("")
        return [t for t in terms if t]

    def add(self, word: str, synonyms: Iterable[str], antonyms: Iterable[str]) -> None:
        w = self.clean(word)
        if not w:
            self.report["empty_terms"] += 1
            return
        self.add_normalized(w, self.normalized(synonyms), self.normalized(antonyms))

    def add_normalized(self, w: str, synonyms: list[str], antonyms: list[str]) -> None:
        """:meth:`add` for a cleaned, non-empty word and normalized terms."""
        syn, ant = self.entries.setdefault(w, (set(), set()))
        syn.add(w)
        syn.update(self._nonempty(synonyms))
        ant.update(self._nonempty(antonyms))

    def add_sense(self, word: str, gloss: str, related: Iterable[str],
                  examples: Iterable[str]) -> None:
        w = self.clean(word)
        if w:
            self.add_sense_normalized(w, gloss, self.normalized(related),
                                      self.normalized(examples))

    def add_sense_normalized(self, w: str, gloss: str, related: list[str],
                             examples: list[str]) -> None:
        """:meth:`add_sense` for a cleaned, non-empty word and normalized terms (empty ones
        are dropped without counting)."""
        if gloss.strip():
            self.glosses.setdefault(w, []).append(gloss.lower())
        for target, values in ((self.related, related), (self.examples, examples)):
            if "" in values:
                values = [t for t in values if t]
            if values:
                target.setdefault(w, []).extend(values)

    def build(self) -> Dictionary:
        entries = {w: (sorted(s), sorted(a)) for w, (s, a) in self.entries.items()}
        self.report["entries"] = len(entries)
        self.report["senses"] = sum(len(g) for g in self.glosses.values())
        if not entries:
            raise DataError(f"{self.source}: no dictionary entry could be read "
                            f"({self.report['malformed']} malformed).")
        return Dictionary(entries, self.source, self.report, self.problems, self.glosses,
                          self.related, self.examples, self.inflections)


def _read_text(path: Path) -> tuple[str, int]:
    """The file's text (``.xz``/``.gz`` decompressed) and its count of invalid UTF-8 bytes;
    a truncated file or one in another encoding raises one DataError naming it."""
    return read_text_file(path, "dictionary file")


@_without_gc
def load_simple_dictionary(path: str | os.PathLike[str], *, strict: bool = False) -> Dictionary:
    """Read the Simple English Dictionary JSON (``merged.json``, ``.json.xz`` or ``.json.gz``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataError
        If the file is not JSON, not an object of entries, holds no valid entry, or (with
        ``strict``) holds a malformed entry.
    """
    p = Path(path)
    if p.is_dir():
        for name in ("merged.json", "merged.json.xz", "merged.json.gz"):
            if (p / name).is_file():
                p = p / name
                break
    if not p.is_file():
        raise FileNotFoundError(f"no dictionary file at {str(path)!r}.")
    text, n_bad = _read_text(p)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{p} is not valid JSON ({err}); expected the merged.json of "
                        "simple-english-dictionary.") from err
    except RecursionError as err:
        raise DataError(f"{p} holds JSON nested too deeply to read; expected the merged.json "
                        "of simple-english-dictionary (an object of entries).") from err
    if not isinstance(data, Mapping):
        raise DataError(f"{p}: expected a JSON object of entries; got {type(data).__name__}.")
    b = _Builder(str(p), strict)
    b.report["bad_utf8_bytes"] = n_bad
    b.check_utf8 = n_bad > 0
    for key, value in data.items():
        b.report["entries_read"] += 1
        if not isinstance(value, Mapping):
            b.bad(key, f"value is a {type(value).__name__}, not an object")
            continue
        terms = _string_lists((value.get("SYNONYMS", []), value.get("ANTONYMS", [])))
        if terms is None:
            b.bad(key, "SYNONYMS/ANTONYMS must be lists of strings")
            continue
        syn, ant = terms
        w = b.clean(key)
        if w:
            b.count_utf8(syn)
            b.count_utf8(ant)
            b.add_normalized(w, syn, ant)
        else:
            b.report["empty_terms"] += 1
        _add_meanings(b, key, w, value.get("MEANINGS", []))
    return b.build()


def _add_meanings(b: _Builder, key: str, w: str, meanings: Any) -> None:
    """Senses of one Simple English Dictionary entry (``w`` its cleaned word, senses of an
    empty one are checked but not kept):
    ``[pos, gloss, [related], [examples]]`` each (a malformed sense is skipped and counted in
    ``bad_senses``, or raises with ``strict``; the entry's synonyms and antonyms are kept
    either way)."""
    if isinstance(meanings, Mapping):  # the upstream letter files hold a dict of senses
        meanings = list(meanings.values())
    if not isinstance(meanings, list):
        meanings = [meanings]
    for m in meanings:
        ok = isinstance(m, list) and len(m) >= 2 and isinstance(m[1], str)
        parts = _string_lists(m[2:4]) if ok else None
        if parts is None:
            if b.strict:
                b.bad(key, "MEANINGS must hold [pos, gloss, [related], [examples]] lists")
            b.report["bad_senses"] = b.report.get("bad_senses", 0) + 1
            continue
        if w:
            if b.check_utf8:  # as :meth:`_Builder.add_sense` counts: the word, then the terms
                b.count_utf8([w, *(t for part in parts for t in part)])
            b.add_sense_normalized(w, m[1], *parts, *([],) * (2 - len(parts)))


def _wn_lemma(raw: str) -> str:
    word = raw.replace("_", " ")
    if word.endswith(")") and "(" in word:  # adjective markers: (a), (p), (ip)
        word = word[:word.rindex("(")]
    return word


#: WordNet pointers whose target lemmas become a sense's related terms: hypernym, instance
#: hypernym, similar to (adjective clusters)
WORDNET_RELATED = ("@", "@i", "&")
_QUOTED = re.compile(r'"([^"]*)"')


def _wn_parse(line: str) -> tuple[tuple[str, int], list[str], list[tuple[str, tuple[str, int],
                                                                          str]], str]:
    """One WordNet data line: ``((pos, offset), lemmas, [(symbol, target, "sstt")], gloss)``."""
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    offset, pos = int(fields[0]), fields[2]
    pos = "a" if pos == "s" else pos
    n_words = int(fields[3], 16)
    lemmas = [_wn_lemma(fields[4 + 2 * i]) for i in range(n_words)]
    at = 4 + 2 * n_words
    pointers = []
    for i in range(int(fields[at])):
        sym, toff, tpos, st = fields[at + 1 + 4 * i: at + 5 + 4 * i]
        int(st, 16)  # a malformed source/target raises here
        pointers.append((sym, ("a" if tpos == "s" else tpos, int(toff)), st))
    if len(lemmas) != n_words or not lemmas:
        raise ValueError("word count")
    return (pos, offset), lemmas, pointers, gloss.strip()


@_without_gc
def load_wordnet(path: str | os.PathLike[str] = WORDNET_DIR, *,
                 strict: bool = False) -> Dictionary:
    """Read WordNet ``data.*`` files into a :class:`Dictionary` (parsed here, no NLTK).

    A data line is ``offset lex_filenum ss_type w_cnt (word lex_id){w_cnt} p_cnt
    (symbol offset pos source/target){p_cnt} [frames] | gloss`` (``w_cnt`` and ``lex_id`` in
    hex). Synonyms: all lemmas of each synset of a word. Antonyms: for a ``!`` pointer whose
    source/target is ``sstt``, lemma ``ss`` of this synset is the antonym of lemma ``tt`` of
    the target synset (``0000`` would mean every lemma). Each synset is a sense of each of its
    lemmas: the gloss's definition (the text outside double quotes), its quoted examples, and
    as related terms the lemmas of the synsets its :data:`WORDNET_RELATED` pointers reach. The
    exception lists ``*.exc`` (irregular inflections) are read when present.

    Raises
    ------
    FileNotFoundError
        If none of the data files exists under ``path``.
    DataError
        With ``strict``, for a line that does not parse.
    """
    from .morphology import load_exceptions

    root = Path(path)
    files = [root / f for f in _WN_FILES if (root / f).is_file()]
    if not files:
        raise FileNotFoundError(f"no WordNet data.* files under {str(root)!r} (install the "
                                "Debian package wordnet-base, or give its dict/ folder).")
    b = _Builder(str(root), strict)
    synsets: dict[tuple[str, int], tuple[list[str], list[tuple[str, tuple[str, int], str]],
                                         str]] = {}
    for f in files:
        with open(f, "rb") as fh:
            for number, line_bytes in enumerate(fh, start=1):
                if line_bytes.startswith(b"  "):  # licence header
                    continue
                line = line_bytes.decode("utf-8", errors="replace")
                if not line.strip():
                    continue
                b.report["entries_read"] += 1
                try:
                    key, lemmas, pointers, gloss = _wn_parse(line)
                except (ValueError, IndexError):
                    b.bad(f"{f.name}:{number}", "line does not follow the WordNet data format")
                    continue
                synsets[key] = (lemmas, pointers, gloss)
    for (pos, off), (lemmas, pointers, gloss) in synsets.items():
        related: list[str] = []
        for sym, target, st in pointers:
            t = synsets.get(target)
            if t is None:
                b.bad(f"{pos}{off}", "pointer to a missing synset")
            elif sym == "!":
                src, tgt = int(st[:2], 16), int(st[2:], 16)  # noqa: FURB166
                for w in (lemmas if src == 0 else lemmas[src - 1:src]):
                    b.add(w, (), t[0] if tgt == 0 else t[0][tgt - 1:tgt])
            elif sym in WORDNET_RELATED:
                related.extend(t[0])
        examples = _QUOTED.findall(gloss)
        definition = " ".join(_QUOTED.sub(" ", gloss).replace(";", " ").split())
        for w in lemmas:
            b.add(w, lemmas, ())
            b.add_sense(w, definition, related, examples)
    b.inflections = load_exceptions(root)
    return b.build()


def combine_dictionaries(dictionaries: Iterable[Dictionary]) -> Dictionary:
    """One dictionary holding every entry, synonym, antonym and sense of the given ones
    (a word's lists are merged; its self-synonym stays one). The report sums the counts."""
    dics = list(dictionaries)
    if not dics:
        raise InvalidParameterError("combine_dictionaries needs at least one dictionary.")
    b = _Builder(" + ".join(d.source for d in dics), strict=False)
    b.report = {}
    for d in dics:
        for key, value in d.report.items():
            b.report[key] = b.report.get(key, 0) + value
        b.problems.extend(d.problems)
        for w, (syn, ant) in d.entries.items():
            b.add(w, syn, ant)
        for target, part in ((b.glosses, d.glosses), (b.related, d.related),
                             (b.examples, d.examples), (b.inflections, d.inflections)):
            for w, values in part.items():
                have = target.setdefault(w, [])
                have.extend(v for v in values if v not in have)
    return b.build()


def load_dictionary(path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                    strict: bool = False) -> Dictionary:
    """:func:`load_wordnet` for a folder with WordNet ``data.*`` files, else
    :func:`load_simple_dictionary`; several paths give their
    :func:`combine_dictionaries`."""
    if not isinstance(path, str | os.PathLike):
        paths = list(path)
        if len(paths) != 1:
            return combine_dictionaries(load_dictionary(p, strict=strict) for p in paths)
        path = paths[0]
    p = Path(path)
    if p.is_dir() and any((p / f).is_file() for f in _WN_FILES):
        return load_wordnet(p, strict=strict)
    return load_simple_dictionary(p, strict=strict)


def _block(spell: np.ndarray, slot_idx: np.ndarray, slot_w: np.ndarray, slot_ptr: np.ndarray,
           n_cols: int, dtype: Any = np.float32) -> sp.csr_matrix:
    """Kernel: one row block of ``[spelling | slots]`` as CSR (slot columns after spelling)."""
    rows, d_sp = spell.shape
    n_slot = np.diff(slot_ptr)
    indptr = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(d_sp + n_slot, out=indptr[1:])
    index_dtype = np.int32 if n_cols < 2**31 and indptr[-1] < 2**31 else np.int64
    indices = np.empty(int(indptr[-1]), dtype=index_dtype)
    data = np.empty(int(indptr[-1]), dtype=dtype)
    sp_at = (indptr[:-1, None] + np.arange(d_sp)[None, :]).ravel()
    indices[sp_at] = np.tile(np.arange(d_sp), rows)
    data[sp_at] = spell.ravel()
    row_of = np.repeat(np.arange(rows), n_slot)
    at = indptr[:-1][row_of] + d_sp + (np.arange(slot_idx.size) - slot_ptr[:-1][row_of])
    indices[at] = d_sp + slot_idx
    data[at] = slot_w
    return sp.csr_matrix((data, indices, indptr), shape=(rows, n_cols))


def merge_identical_columns(slot_idx: np.ndarray, slot_ptr: np.ndarray, n_slots: int
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Merge binary slot columns with identical row sets into one column of weight √count.

    ``c`` identical columns ``b`` contribute ``c · b bᵀ`` to ``X Xᵀ``, exactly what one column
    ``√c · b`` contributes, so the left singular vectors, the singular values and hence the
    row embedding ``X Vᵀ = U Σ`` are unchanged — with fewer columns for the solver (for the
    Simple English Dictionary 153,399 slots become 116,731). Returns
    ``(slot_idx, slot_weights, slot_ptr, n_merged)`` in the same row-major layout.
    """
    n_rows = slot_ptr.size - 1
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(slot_ptr))
    csc = sp.csc_matrix((np.ones(rows.size), (rows, slot_idx)), shape=(n_rows, n_slots))
    csc.sum_duplicates()
    group = np.empty(n_slots, dtype=np.int64)
    keys: dict[bytes, int] = {}
    for j in range(n_slots):
        key = csc.indices[csc.indptr[j]:csc.indptr[j + 1]].tobytes()
        group[j] = keys.setdefault(key, len(keys))
    n_groups = len(keys)
    counts = np.bincount(group, minlength=n_groups)
    pairs = np.unique(rows * n_groups + group[slot_idx])
    new_rows, new_cols = np.divmod(pairs, n_groups)
    new_ptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(new_rows, minlength=n_rows), out=new_ptr[1:])
    return new_cols, np.sqrt(counts[new_cols]).astype(np.float64), new_ptr, n_groups


def dictionary_matrix(dic: Dictionary, spelling: np.ndarray, *, chunk_rows: int | None = None,
                      merge_columns: bool = False, dtype: Any = np.float32
                      ) -> tuple[da.Array, list[str], dict[str, int]]:
    """Lazy sparse ``(n_words, d_spelling + n_synonyms + n_antonyms)`` matrix of §6.4.

    Rows follow ``dic.words`` (sorted); ``spelling`` holds the (scaled) orthography rows in that
    order. With ``merge_columns`` identical slot columns are merged (see
    :func:`merge_identical_columns`; same row embedding, fewer columns). Returns the dask array
    (CSR blocks of ``dtype``), the words and the slot counts.

    Blocks: ``chunk_rows`` rows each if given; by default one block per thread
    (:func:`veob_dask.runtime.parallelism`) with equal entry counts — a randomized-SVD pass
    writes one dense features x panel product per block, so few, even blocks are fastest.
    """
    words = dic.words
    if spelling.shape[0] != len(words):
        raise DataError(f"spelling has {spelling.shape[0]} rows for {len(words)} words.")
    syn_vocab, ant_vocab = dic.slot_vocabularies()
    syn_pos = {w: i for i, w in enumerate(syn_vocab)}
    ant_pos = {w: len(syn_vocab) + i for i, w in enumerate(ant_vocab)}
    lists = [[syn_pos[t] for t in dic.entries[w][0]] + [ant_pos[t] for t in dic.entries[w][1]]
             for w in words]
    slot_ptr = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum([len(x) for x in lists], out=slot_ptr[1:])
    slot_idx = np.fromiter((i for x in lists for i in x), dtype=np.int64, count=int(slot_ptr[-1]))
    n_slots = len(syn_vocab) + len(ant_vocab)
    n_syn_links = sum(len(dic.entries[w][0]) for w in words)
    counts = {"n_words": len(words), "n_synonym_slots": len(syn_vocab),
              "n_antonym_slots": len(ant_vocab), "n_synonym_links": n_syn_links,
              "n_antonym_links": int(slot_ptr[-1]) - n_syn_links}
    slot_w = np.ones(slot_idx.size)
    if merge_columns:
        slot_idx, slot_w, slot_ptr, n_slots = merge_identical_columns(slot_idx, slot_ptr,
                                                                      n_slots)
        counts["n_merged_slots"] = n_slots
    n_cols = spelling.shape[1] + n_slots
    counts["n_columns"] = n_cols
    n_rows = len(words)
    if chunk_rows is not None:
        if int(chunk_rows) < 1:
            raise InvalidParameterError(f"chunk_rows must be >= 1; got {chunk_rows}.")
        bounds = [*range(0, n_rows, int(chunk_rows)), n_rows]
    else:
        from .._parallelism import parallelism
        from ..io.sparse import balanced_row_bounds

        entries = np.arange(n_rows + 1) * spelling.shape[1] + slot_ptr  # the rows' indptr
        bounds = balanced_row_bounds(entries, parallelism())
    dtype = np.dtype(dtype)
    blocks = []
    for lo, hi in itertools.pairwise(bounds):
        a, z = slot_ptr[lo], slot_ptr[hi]  # each task gets only its own slices
        task = dask.delayed(_block, pure=True)(spelling[lo:hi], slot_idx[a:z], slot_w[a:z],
                                               slot_ptr[lo:hi + 1] - a, n_cols, dtype)
        blocks.append(da.from_delayed(task, shape=(hi - lo, n_cols), dtype=dtype,
                                      meta=sp.csr_matrix((0, n_cols), dtype=dtype)))
    x = blocks[0] if len(blocks) == 1 else da.concatenate(blocks, axis=0)
    return x, words, counts


def build_dictionary(source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
                     | Dictionary = WORDNET_DIR, *,
                     n_components: int = 300, spelling_components: int = 30, n: int = 15,
                     m: int = 6, basis: str = "paper", solver: str = "randomized",
                     n_iter: int = 1, limit: int | None = None, chunk_rows: int | None = None,
                     merge_columns: bool = True, strict: bool = False, random_state: int = 0
                     ) -> tuple[WordVectors, dict[str, float]]:
    """Build the §6.4 dictionary model from raw files; return it and seconds per stage.

    Parameters
    ----------
    source : path, list of paths or Dictionary
        Simple English Dictionary JSON (``merged.json[.xz]``) or a WordNet ``dict`` folder;
        several are combined (:func:`combine_dictionaries`).
    n_components : int, default=300
        Embedding dimension (paper: 300).
    spelling_components : int, default=30
        Orthography slice width (paper: 30), scaled by 1/‖σ‖.
    n, m, basis
        Spelling transform (paper: N = 15, m ≤ 6).
    solver : str, default="randomized"
        :class:`SVDEmbedding` solver for the wide sparse matrix.
    n_iter : int, default=1
        Power/Krylov steps of the randomized solver (``n_iter + 1`` data passes). One step is
        enough for neighbour lists; the author used a plain randomized SVD (``rsvd``).
    limit : int, optional
        Keep the first ``limit`` entry words (sorted), with all their slots (size knob).
    chunk_rows : int, optional
        Rows per dask block; default one block per thread with equal entry counts (see
        :func:`dictionary_matrix`).
    merge_columns : bool, default=True
        Merge identical slot columns (exact for the embedding; see
        :func:`merge_identical_columns`).
    strict : bool, default=False
        Raise on a malformed entry instead of skipping it.
    random_state : int, default=0

    Returns
    -------
    (WordVectors, dict)
        The model (metadata: sizes, loader report, parameters) and seconds for ``read``,
        ``spelling``, ``matrix``, ``svd``, ``project`` and ``total``.
    """
    t0 = time.perf_counter()
    dic = source if isinstance(source, Dictionary) else load_dictionary(source, strict=strict)
    if limit is not None:
        if int(limit) < 1:
            raise InvalidParameterError(f"limit must be >= 1; got {limit}.")
        dic = dic.subset(dic.words[:int(limit)])
    t1 = time.perf_counter()
    words = dic.words
    k_sp = min(int(spelling_components), len(words))
    spell, _, sp_stats = spelling_embedding(words, n_components=k_sp, n=n, m=m, basis=basis,
                                            scale="norm")
    t2 = time.perf_counter()
    x, words, counts = dictionary_matrix(dic, spell, chunk_rows=chunk_rows,
                                         merge_columns=merge_columns)
    t3 = time.perf_counter()
    k = min(int(n_components), *x.shape)
    emb = SVDEmbedding(n_components=k, solver=solver, n_iter=n_iter,
                       random_state=random_state).fit(x)
    t4 = time.perf_counter()
    (vecs,) = dask.compute(emb.transform(x))
    t5 = time.perf_counter()
    timings = {"read": t1 - t0, "spelling": t2 - t1, "matrix": t3 - t2, "svd": t4 - t3,
               "project": t5 - t4, "total": t5 - t0}
    meta = {"model": "dictionary", "section": "6.4", "source": dic.source,
            "n_components": int(vecs.shape[1]), "spelling_components": k_sp, "n": n, "m": m,
            "basis": basis, "spelling_scale": "norm", "solver": emb.solver_,
            "n_iter": n_iter, "random_state": random_state, **counts,
            "truncated_words": sp_stats["truncated_words"],
            "dropped_chars": sp_stats["dropped_chars"], "read_report": dic.report,
            "malformed_examples": [list(p) for p in dic.problems[:5]],
            "singular_values": [float(v) for v in emb.singular_values_],
            "total_energy": total_energy(emb),
            "timings": timings}
    return WordVectors(words, np.asarray(vecs, dtype=np.float32), meta), timings
