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

import gzip
import lzma
import os
import re
import unicodedata
import zlib
from collections.abc import Iterator
from typing import Any

__all__ = [
    "READ_ERRORS",
    "decode_bytes",
    "decode_text_file",
    "guess_encoding",
    "is_word",
    "normalize",
    "open_text_file",
    "read_error",
    "read_text_file",
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


def guess_encoding(data: bytes) -> str:
    """Name the likely encoding of bytes that are not UTF-8, for error messages.

    Byte-order marks name UTF-16/UTF-32; NUL bytes at every other position name UTF-16 without
    a mark, other NUL bytes binary data; bytes in 0x80-0x9F that Windows-1252 maps to
    punctuation name Windows-1252; any other 8-bit text is taken as Latin-1 (ISO-8859-1).
    """
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32 (it starts with a UTF-32 byte-order mark)"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 (it starts with a UTF-16 byte-order mark)"
    head = data[:4096]
    if b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        if min(even.count(0) / max(1, len(even)), odd.count(0) / max(1, len(odd))) < 0.1 < max(
                even.count(0) / max(1, len(even)), odd.count(0) / max(1, len(odd))):
            return "UTF-16 without a byte-order mark (every other byte is 0)"
        return "binary data, not text (it holds NUL bytes)"
    high = bytes(b for b in data if b >= 0x80)
    if any(0x80 <= b <= 0x9F for b in high):
        try:
            high.decode("cp1252")
            return "Windows-1252"
        except UnicodeDecodeError:
            return "an 8-bit encoding other than UTF-8, or binary data"
    return "Latin-1 (ISO-8859-1)"


def decode_text_file(data: bytes, where: str) -> tuple[str, int]:
    """Decode a text file's bytes as UTF-8 (a UTF-8 byte-order mark is dropped).

    A few invalid byte sequences are replaced (U+FFFD) and counted, as :func:`decode_bytes`
    does; a file in another encoding is refused with its likely encoding named: a UTF-16/32
    byte-order mark or NUL bytes, or more than three invalid sequences and no more valid
    non-ASCII characters than invalid sequences (a Latin-1 file, typically).

    Returns
    -------
    tuple of (str, int)
        The text and the number of invalid byte sequences replaced.

    Raises
    ------
    DataError
        Naming ``where`` and the likely encoding.
    """
    from ..errors import DataError

    hint = "convert it to UTF-8, e.g. iconv -f {enc} -t utf-8 FILE > FILE.utf8"
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")) or b"\x00" in data:
        enc = guess_encoding(data)
        raise DataError(f"{where} is not UTF-8 text: it looks like {enc}; "
                        + hint.format(enc="utf-16" if "UTF-16" in enc else "ENCODING") + ".")
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    bad = text.count("\ufffd") - data.count(b"\xef\xbf\xbd")
    if bad > 3:
        good = sum(1 for ch in text if ord(ch) > 127) - text.count("\ufffd")
        if good < bad:
            enc = guess_encoding(data)
            try:
                data.decode("utf-8")
                first = 0
            except UnicodeDecodeError as err:
                first = err.start
            raise DataError(
                f"{where} is not UTF-8 text: {bad} byte sequences are not valid UTF-8 (the first "
                f"at byte {first}, 0x{data[first]:02x}); it looks like {enc}; "
                + hint.format(enc="cp1252" if "1252" in enc else "latin1") + ".")
    return text, max(0, bad)


#: What reading a truncated or corrupt compressed file raises (gzip.BadGzipFile is an OSError).
READ_ERRORS = (EOFError, lzma.LZMAError, zlib.error, OSError)


def open_text_file(path: str | os.PathLike[str]) -> Any:
    """Open a file for reading bytes, through xz or gzip when its name ends in ``.xz``/``.gz``."""
    name = str(path).lower()
    if name.endswith(".xz"):
        return lzma.open(path, "rb")
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_error(path: str | os.PathLike[str], err: BaseException) -> Exception:
    """The one-line DataError for an error raised while reading ``path`` (see READ_ERRORS)."""
    from ..errors import DataError

    if isinstance(err, FileNotFoundError):
        return err
    kind = ("xz" if str(path).lower().endswith(".xz") else "gzip"
            if str(path).lower().endswith(".gz") else "")
    what = f"is truncated or not a valid {kind} file" if kind else "cannot be read"
    return DataError(f"{str(path)!r} {what} ({type(err).__name__}: {err}).")


def read_text_file(path: str | os.PathLike[str], what: str = "file") -> tuple[str, int]:
    """Read a whole (possibly ``.xz``/``.gz``) text file and decode it with
    :func:`decode_text_file`; a truncated or corrupt file raises one DataError naming it."""
    try:
        with open_text_file(path) as fh:
            data = fh.read()
    except READ_ERRORS as err:
        raise read_error(path, err) from err
    return decode_text_file(data, f"{what} {str(path)!r}")


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
