"""Tests for veob_dask.text.tokenize."""

from __future__ import annotations

import pytest

from veob_dask.text.tokenize import (
    decode_bytes,
    is_word,
    normalize,
    sentences_tokens,
    split_sentences,
    tokenize,
)


def test_markup_removed_and_lowercased():
    assert tokenize("Great<br /><br />FILM") == ["great", "film"]


def test_apostrophes_inside_words_kept():
    assert tokenize("I don't like O'Brien's rock'n'roll") == [
        "i", "don't", "like", "o'brien's", "rock'n'roll"]


def test_quotes_and_punctuation_split():
    assert tokenize("'Back to the Future' right?!") == [
        "'", "back", "to", "the", "future", "'", "right", "?", "!"]
    assert tokenize("Wait... what!!! movie-goers") == [
        "wait", "...", "what", "!!!", "movie", "-", "goers"]


def test_numbers():
    assert tokenize("3.5 stars, 10,000 fans, 1990s") == [
        "3.5", "stars", ",", "10,000", "fans", ",", "1990s"]


def test_non_ascii_folded():
    assert normalize("Café “naïve” — it’s") == "Cafe \"naive\" - it's"
    assert tokenize("Café “naïve” — it’s") == ["cafe", '"', "naive", '"', "-", "it's"]
    assert tokenize("日本 movie") == ["日本", "movie"]  # kept, not dropped (issue 11)


def test_invalid_utf8_replaced_not_raised():
    text = decode_bytes(b"good\xff\xfe movie \xc3")
    assert "\ufffd" in text
    assert tokenize(text) == ["good", "movie"]


@pytest.mark.parametrize("text", ["", "   ", "<br /><br />", "\ufffd\ufffd"])
def test_empty_input_gives_no_sentences(text):
    assert split_sentences(text) == []
    assert list(sentences_tokens(text)) == []


def test_sentence_split():
    text = ("I saw it.It was good! Was it? \"Yes,\" she said. Mr. Smith agreed. "
            "the end. 2 stars.")
    assert split_sentences(text) == [
        "I saw it.", "It was good!", "Was it?", '"Yes," she said.', "Mr. Smith agreed. the end.",
        "2 stars."]


def test_sentences_tokens_pairs_text_and_tokens():
    pairs = list(sentences_tokens("One two. Three!"))
    assert pairs == [("One two.", ["one", "two", "."]), ("Three!", ["three", "!"])]


def test_is_word():
    assert is_word("don't") and is_word("3.5") and is_word("abc")
    assert not is_word(",") and not is_word("...") and not is_word("'")


def test_letters_without_an_ascii_form_are_kept():
    # issue 11: non-ASCII letters were dropped, so "日本" vanished and "straße" became "strae".
    assert tokenize("Straße, Ærø und 日本 — Москва!") == ["straße", ",", "ærø", "und", "日本",
                                                          "-", "москва", "!"]
    assert tokenize("ﬁne café") == ["fine", "cafe"]
    assert all(is_word(t) for t in ["straße", "日本", "москва"])
    assert not is_word("—") and not is_word("_")


def test_windows_1252_punctuation_read_as_latin1_is_mapped():
    assert tokenize("good\x96bad \x93quoted\x94 it\x92s") == ["good", "-", "bad", '"', "quoted",
                                                             '"', "it's"]
