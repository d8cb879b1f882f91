"""Inflected forms → dictionary lemmas: WordNet's *morphy* detachment rules and exception lists.

A dictionary defines lemmas (``run``, ``child``, ``happy``); word-similarity files and glosses
use inflected forms (``running``, ``children``, ``happier``). :class:`Lemmatizer` maps a form to
the first candidate lemma that the dictionary defines, trying in this order:

1. the **exception lists** of WordNet (``noun.exc``, ``verb.exc``, ``adj.exc``, ``adv.exc``:
   ``children child``, ``ran run``, ``better good well``...), read by :func:`load_exceptions`;
2. the **detachment rules** of WordNet's ``morphy`` (``wninput(5WN)``, "Morphy"): noun ``-s``,
   ``-ses``→``-s``, ``-xes``→``-x``, ``-zes``→``-z``, ``-ches``→``-ch``, ``-shes``→``-sh``,
   ``-men``→``-man``, ``-ies``→``-y``; verb ``-s``, ``-ies``→``-y``, ``-es``→``-e``, ``-es``,
   ``-ed``→``-e``, ``-ed``, ``-ing``→``-e``, ``-ing``; adjective ``-er``, ``-est``, ``-er``→``-e``,
   ``-est``→``-e``;
3. two rules morphy leaves to its exception lists, so that a source without them still maps
   regular forms: a doubled final consonant (``stopped``, ``running`` → ``stop``, ``run``) and
   ``-ied``/``-ier``/``-iest``→``-y`` (``carried``, ``happier``).

A form the dictionary defines itself is its own lemma. The rules only ever propose candidates;
a candidate counts only if the dictionary defines it, so ``bus`` never becomes ``bu``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container, Iterable
from pathlib import Path

__all__ = ["EXCEPTION_FILES", "Lemmatizer", "lemma_candidates", "load_exceptions"]

EXCEPTION_FILES = ("noun.exc", "verb.exc", "adj.exc", "adv.exc")

#: (suffix, replacement) in morphy's order (nouns, verbs, adjectives), then the extra rules
_RULES = (
    ("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
    ("men", "man"), ("ies", "y"),
    ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", ""),
    ("er", ""), ("est", ""), ("er", "e"), ("est", "e"),
    ("ied", "y"), ("ier", "y"), ("iest", "y"),
)
_DOUBLED = ("ed", "ing", "er", "est")
#: the rules and doubled-consonant suffixes by the last letter of their suffix, in order (a
#: suffix can only match a word ending in its last letter)
_BY_LAST = {c: (tuple(r for r in _RULES if r[0][-1] == c),
                tuple(x for x in _DOUBLED if x[-1] == c))
            for c in {suffix[-1] for suffix, _ in _RULES}}
_NO_RULES: tuple[tuple[tuple[str, str], ...], tuple[str, ...]] = ((), ())


def load_exceptions(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read WordNet's ``*.exc`` files under ``path``: ``{inflected form: [lemmas]}``.

    Each line is ``form lemma [lemma...]``, underscores for spaces; missing files are skipped
    (an empty mapping when there are none).
    """
    out: dict[str, list[str]] = {}
    for name in EXCEPTION_FILES:
        f = Path(path) / name
        if not f.is_file():
            continue
        with open(f, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.replace("_", " ").split(" ")
                fields = [x.strip() for x in fields if x.strip()]
                if len(fields) >= 2:
                    lemmas = out.setdefault(fields[0], [])
                    lemmas.extend(x for x in fields[1:] if x not in lemmas)
    return out


def lemma_candidates(word: str, exceptions: dict[str, list[str]] | None = None) -> list[str]:
    """Possible lemmas of ``word``, most likely first (exceptions, then the rules).

    Examples
    --------
    >>> lemma_candidates("buses")
    ['buse', 'bus']
    >>> "run" in lemma_candidates("running")
    True
    >>> lemma_candidates("children", {"children": ["child"]})[0]
    'child'
    """
    out = list((exceptions or {}).get(word, ()))
    rules, doubled = _BY_LAST.get(word[-1:], _NO_RULES)
    for suffix, repl in rules:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            out.append(word[:len(word) - len(suffix)] + repl)
    for suffix in doubled:
        stem = word[:len(word) - len(suffix)]
        if word.endswith(suffix) and len(stem) >= 3 and stem[-1] == stem[-2]:
            out.append(stem[:-1])
    return list(dict.fromkeys(out))


class Lemmatizer:
    """Map words to lemmas that a dictionary defines (see the module docstring).

    Parameters
    ----------
    known : container of str
        The words the dictionary defines (candidate lemmas must be in it).
    exceptions : dict, optional
        Irregular forms, from :func:`load_exceptions`.

    Examples
    --------
    >>> lem = Lemmatizer({"bus", "run", "child", "stop"}, {"children": ["child"]})
    >>> [lem(w) for w in ("buses", "running", "children", "stopped", "bus", "xyz")]
    ['bus', 'run', 'child', 'stop', 'bus', 'xyz']
    """

    def __init__(self, known: Container[str],
                 exceptions: dict[str, list[str]] | None = None) -> None:
        self.known = known
        self.exceptions = exceptions or {}
        self._cache: dict[str, str] = {}

    def __call__(self, word: str) -> str:
        """The lemma of ``word``: itself if defined, else its first defined candidate, else
        itself."""
        hit = self._cache.get(word)
        if hit is None:
            hit = word
            if word not in self.known:
                hit = next((c for c in lemma_candidates(word, self.exceptions)
                            if c in self.known), word)
            self._cache[word] = hit
        return hit

    def map(self, words: Iterable[str]) -> list[str]:
        """:meth:`__call__` on each word."""
        f: Callable[[str], str] = self
        return [f(w) for w in words]
