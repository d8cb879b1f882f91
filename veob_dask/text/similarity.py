"""Word-similarity evaluation: Spearman correlation of cosine similarity with human scores.

A word-pair file has one pair per line, ``word1 word2 score``, separated by tabs or spaces (the
format of WS-353, MEN, RW, SimLex, SimVerb... as distributed by wordvectors.org). CRLF line
ends, a UTF-8 byte-order mark, blank lines and ``#`` comment lines are accepted; a line that
does not hold two words and a finite number is *malformed*: it is skipped and reported
(:attr:`WordPairs.malformed`), or raises :class:`~veob_dask.errors.DataError` with
``strict=True``. A few bytes that are not UTF-8 are decoded with replacement characters and
the line is reported as malformed; a file in another encoding (UTF-16, Latin-1...) is refused
with its likely encoding named.

The evaluation (:func:`evaluate`) scores only the pairs with both words in the vocabulary
(*coverage* = scored pairs / all pairs) — the usual convention; the result says how many pairs
were skipped so that scores of models with different coverage are not compared blindly.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats

from ..errors import DataError
from .tokenize import decode_text_file
from .wordvectors import WordVectors

__all__ = ["SimilarityResult", "WordPairs", "evaluate", "load_word_pairs", "spearman"]


@dataclass
class WordPairs:
    """Word pairs with human similarity scores, as read from a file."""

    word1: list[str]
    word2: list[str]
    scores: np.ndarray
    name: str = ""
    #: ``(line_number, text, reason)`` of each skipped line (1-based line numbers).
    malformed: list[tuple[int, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.word1)


@dataclass
class SimilarityResult:
    """Outcome of :func:`evaluate` on one word-pair set."""

    name: str
    spearman: float
    n_pairs: int
    n_covered: int
    missing_words: list[str]
    n_malformed: int = 0

    @property
    def coverage(self) -> float:
        """Fraction of pairs with both words in the vocabulary."""
        return self.n_covered / self.n_pairs if self.n_pairs else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"name": self.name, "spearman": self.spearman, "n_pairs": self.n_pairs,
                "n_covered": self.n_covered, "coverage": self.coverage,
                "n_missing_words": len(self.missing_words), "n_malformed": self.n_malformed}


def load_word_pairs(path: str | os.PathLike[str], *, strict: bool = False,
                    name: str | None = None) -> WordPairs:
    """Read a ``word1 word2 score`` file.

    Parameters
    ----------
    path : path-like
        The file (plain text; tab or whitespace separated).
    strict : bool, default=False
        Raise on the first malformed line instead of skipping it.
    name : str, optional
        Name of the set; the file stem by default.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataError
        In strict mode for a malformed line; always when no valid pair is found.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"word-pair file {str(p)!r} does not exist.")
    raw = p.read_bytes()
    decode_text_file(raw, f"word-pair file {str(p)!r}")  # refuses another encoding, naming it
    w1: list[str] = []
    w2: list[str] = []
    scores: list[float] = []
    bad: list[tuple[int, str, str]] = []
    for number, line_bytes in enumerate(raw.splitlines(), start=1):
        try:
            line = line_bytes.decode("utf-8")
            reason = ""
        except UnicodeDecodeError:
            line = line_bytes.decode("utf-8", errors="replace")
            reason = "not valid UTF-8"
        if number == 1:
            line = line.lstrip("\ufeff")
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split("\t") if "\t" in text else text.split()
        parts = [x.strip() for x in parts if x.strip()]
        if not reason:
            if len(parts) != 3:
                reason = f"expected 3 fields (word1 word2 score), got {len(parts)}"
            else:
                try:
                    value = float(parts[2])
                    if not math.isfinite(value):
                        reason = f"score {parts[2]!r} is not finite"
                except ValueError:
                    reason = f"score {parts[2]!r} is not a number"
        if reason:
            if strict:
                raise DataError(f"{p}: line {number} is malformed ({reason}): {text[:80]!r}.")
            bad.append((number, text[:200], reason))
            continue
        w1.append(parts[0])
        w2.append(parts[1])
        scores.append(value)
    if not scores:
        raise DataError(f"{p}: no valid 'word1 word2 score' line found "
                        f"({len(bad)} malformed lines).")
    return WordPairs(w1, w2, np.asarray(scores, dtype=np.float64), name or p.stem, bad)


def spearman(a: Any, b: Any) -> float:
    """Spearman rank correlation (:func:`scipy.stats.spearmanr`; ties get average ranks).

    NaN when it is undefined: fewer than two values, or a constant input (checked here so that
    scipy's ``ConstantInputWarning`` is never raised).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(f"spearman needs two 1-D arrays of equal length; got {a.shape}, {b.shape}.")
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(scipy.stats.spearmanr(a, b).statistic)


def evaluate(model: WordVectors, pairs: WordPairs | str | os.PathLike[str], *,
             lowercase: bool = True) -> SimilarityResult:
    """Spearman correlation between the model's cosine similarity and the human scores.

    Parameters
    ----------
    model : WordVectors
    pairs : WordPairs or path-like
        Pairs, or a file for :func:`load_word_pairs`.
    lowercase : bool, default=True
        Look words up lower-cased when the exact spelling is absent (IMDB and dictionary
        vocabularies are lower case; WS-353 writes "Jerusalem").
    """
    if not isinstance(pairs, WordPairs):
        pairs = load_word_pairs(pairs)

    def find(word: str) -> str | None:
        if word in model:
            return word
        if lowercase and word.lower() in model:
            return word.lower()
        return None

    sims: list[float] = []
    human: list[float] = []
    missing: set[str] = set()
    for a, b, s in zip(pairs.word1, pairs.word2, pairs.scores, strict=True):
        fa, fb = find(a), find(b)
        if fa is None:
            missing.add(a)
        if fb is None:
            missing.add(b)
        if fa is None or fb is None:
            continue
        sims.append(model.similarity(fa, fb))
        human.append(float(s))
    rho = spearman(np.asarray(sims), np.asarray(human)) if sims else float("nan")
    return SimilarityResult(pairs.name, rho, len(pairs), len(sims), sorted(missing),
                            len(pairs.malformed))
