r"""Tokenisation rules for the text examples (no spaCy model needed).

The paper's author split IMDB reviews with spaCy's ``en_core_web_sm`` (ALGORITHMS.md §5.2). No
spaCy model can be downloaded here, so veob_dask uses its own small, documented rules, applied in
this order:

1. **Bytes** are decoded as UTF-8; bytes that are not valid UTF-8 are replaced (U+FFFD), never
   raised on (:func:`decode_bytes`).
2. **Markup**: ``<br />`` (and any other ``<tag>``) becomes a space.
3. **Non-ASCII**: curly quotes and dashes are mapped to their ASCII counterparts (``’`` → ``'``,
   ``“`` → ``"``, ``—`` → ``-``); then the text is Unicode-NFKD normalised, combining marks
   (accents) are removed and the rest is recomposed (NFC), so ``"café"`` becomes ``"cafe"`` and
   ``"ﬁ"`` becomes ``"fi"``, while letters with no ASCII form (``ß``, ``ø``, Cyrillic, Greek,
   CJK...) are kept as they are: a word is never silently shortened or emptied. Replacement
   characters vanish.
4. **Sentences** are split *before* lower-casing with the regular expression
   ``(?<=[.!?])\s+(?=[A-Z0-9"'(])``: after ``.``, ``!`` or ``?`` plus white space, when the
   next character starts a sentence (upper-case letter, digit, quote or parenthesis). A sentence
   glued to the previous full stop (``"Guardian.At first"``) is split too when a lower-case word of
   two or more letters is followed by ``.`` and an upper-case letter. No break follows the
   abbreviations ``Mr. Mrs. Ms. Dr. St. Jr. Sr. vs. Prof. Mt.``.
5. **Lower-case**, then **words**: a word is a run of letters/digits (of any script), optionally
   joined by apostrophes inside it (``don't``, ``o'brien``, ``rock'n'roll`` stay one token). Every other
   non-space character is a token of its own (``,`` ``.`` ``!`` ``-`` ``"``...), so punctuation is
   split from words; a run of the same punctuation (``...``, ``!!!``) is one token. Leading or
   trailing apostrophes are quote marks, so ``'back`` gives ``'`` and ``back``. Numbers with a
   decimal point or thousands separator (``3.5``, ``10,000``) are one token.

Empty sentences (only white space) are dropped. The rules are deterministic and depend only on
the Python standard library.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

__all__ = [
    "decode_bytes",
    "is_word",
    "normalize",
    "sentences_tokens",
    "split_sentences",
    "tokenize",
]

_TAG = re.compile(r"<[^<>]{0,100}>")
_ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "vs", "Prof", "Mt")
_SENTENCE_BREAK = re.compile(
    "".join(rf"(?<!\b{a}\.)" for a in _ABBREVIATIONS) + r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])"
)
_GLUED_BREAK = re.compile(r"(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])")
# A word character is a letter or digit of any script (\w without "_"); anything else that is
# not white space is punctuation.
_TOKEN = re.compile(r"[0-9]+(?:[.,][0-9]+)+|[^\W_]+(?:'[^\W_]+)*|([^\s\w]|_)\1*")
_WORD = re.compile(r"[0-9]+(?:[.,][0-9]+)+|[^\W_]+(?:'[^\W_]+)*")
_SPACE = re.compile(r"\s+")
_ASCII_MAP = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "\u0060": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2026": "...", "\u00a0": " ", "\ufffd": " ",
    # Windows-1252 punctuation decoded as Latin-1 (C1 control codes, common in IMDB reviews)
    "\x91": "'", "\x92": "'", "\x93": '"', "\x94": '"', "\x96": "-", "\x97": "-",
    "\x85": "...", "\xad": "",
})


def decode_bytes(data: bytes) -> str:
    """Decode UTF-8 bytes, replacing invalid sequences instead of raising.

    Parameters
    ----------
    data : bytes
        Raw bytes of a review or a line.

    Returns
    -------
    str
        The decoded text; each invalid byte sequence becomes U+FFFD (removed later by
        :func:`normalize`).
    """
    return data.decode("utf-8", errors="replace")


def normalize(text: str) -> str:
    """Strip markup, remove accents and collapse white space (case is kept).

    Parameters
    ----------
    text : str
        Raw text (may contain ``<br />`` markup and non-ASCII characters).

    Returns
    -------
    str
        Text with single spaces, accents removed (``"café"`` → ``"cafe"``) and letters with
        no ASCII form kept (``"straße"`` stays).
    """
    text = _TAG.sub(" ", text).translate(_ASCII_MAP)
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text)
                       if not unicodedata.combining(c))
        text = unicodedata.normalize("NFC", text)
    return _SPACE.sub(" ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Split raw text into normalised sentences (case kept).

    Parameters
    ----------
    text : str
        Raw text of one document.

    Returns
    -------
    list of str
        Non-empty sentences, in order.
    """
    text = _GLUED_BREAK.sub(" ", normalize(text))
    return [s for s in _SENTENCE_BREAK.split(text) if s.strip()]


def tokenize(sentence: str) -> list[str]:
    """Lower-case one sentence and split it into word and punctuation tokens.

    Parameters
    ----------
    sentence : str
        One sentence (already normalised, or raw: it is normalised again cheaply).

    Returns
    -------
    list of str
        Tokens; words keep inner apostrophes, punctuation runs are separate tokens.
    """
    text = normalize(sentence).lower()
    return [m.group(0) for m in _TOKEN.finditer(text)]


def sentences_tokens(text: str) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(sentence_text, tokens)`` for each non-empty sentence of a document.

    Parameters
    ----------
    text : str
        Raw text of one document.

    Yields
    ------
    tuple of (str, list of str)
        The normalised sentence (case kept) and its lower-case tokens (never empty).
    """
    for sentence in split_sentences(text):
        tokens = [m.group(0) for m in _TOKEN.finditer(sentence.lower())]
        if tokens:
            yield sentence, tokens


def is_word(token: str) -> bool:
    """Whether a token is a word (letters/digits, inner apostrophes) rather than punctuation."""
    return _WORD.fullmatch(token) is not None
