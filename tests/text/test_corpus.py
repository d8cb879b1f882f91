"""Tests for veob_dask.text.corpus."""

from __future__ import annotations

import itertools
import lzma
from pathlib import Path

import numpy as np
import pytest

from veob_dask.errors import DataError, StoreExistsError, StoreFormatError, StoreNotFoundError
from veob_dask.text.corpus import Corpus, build_corpus, iter_review_chunks, iter_reviews

HEADER = b"split\tlabel\tid\trating\ttext\n"
ROWS = [
    b"train\tpos\t0\t9\tA great film. I loved it!<br /><br />The cast was great.\n",
    b"\n",
    b"train\tneg\t1\t2\tBad film. Really bad\xff\xfe acting.\n",
    b"test\tpos\t2\t8\tGreat fun. Don't miss it.\n",
    b"test\tneg\t3\t1\t   \n",
]


def write_table(tmp_path: Path, rows=ROWS, header=HEADER, xz=False) -> Path:
    data = header + b"".join(rows)
    path = tmp_path / ("reviews.tsv.xz" if xz else "reviews.tsv")
    path.write_bytes(lzma.compress(data) if xz else data)
    return path


def test_iter_reviews_table_skips_empty_lines_and_replaces_bad_bytes(tmp_path):
    reviews = list(iter_reviews(write_table(tmp_path, xz=True)))
    assert [r.id for r in reviews] == [0, 1, 2, 3]
    assert reviews[1].label == "neg" and "\ufffd" in reviews[1].text
    assert reviews[2].source == "test/pos/2_8.txt"
    assert [r.id for r in iter_reviews(write_table(tmp_path), splits=["test"])] == [2, 3]
    assert [len(c) for c in iter_review_chunks(write_table(tmp_path), 3)] == [3, 1]


def test_iter_reviews_folder(tmp_path):
    for split, label, name, text in [("train", "pos", "10_9.txt", b"Nice.\nVery nice."),
                                     ("train", "pos", "2_7.txt", b"Ok film."),
                                     ("test", "neg", "0_1.txt", b"Awful \xff film."),
                                     ("train", "unsup", "5_0.txt", b"Hmm.")]:
        folder = tmp_path / "aclImdb" / split / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(text)
    (tmp_path / "aclImdb" / "train" / "pos" / "notes.md").write_text("ignored")
    reviews = list(iter_reviews(tmp_path))  # parent of aclImdb/ works too
    assert [(r.split, r.label, r.id) for r in reviews] == [
        ("train", "pos", 2), ("train", "pos", 10), ("unsup", "unsup", 5), ("test", "neg", 0)]
    assert reviews[1].text == "Nice. Very nice."


@pytest.mark.parametrize("header,rows,match", [
    (b"a\tb\n", ROWS, "header"),
    (HEADER, [b"train\tpos\t0\n"], "5 tab-separated"),
    (HEADER, [b"train\tpos\tx\t1\ttext\n"], "integers"),
])
def test_malformed_table(tmp_path, header, rows, match):
    with pytest.raises(DataError, match=match):
        list(iter_reviews(write_table(tmp_path, rows, header)))


def test_missing_and_bad_paths(tmp_path):
    with pytest.raises(StoreNotFoundError):
        list(iter_reviews(tmp_path / "nope.tsv"))
    with pytest.raises(DataError, match="aclImdb"):
        list(iter_reviews(tmp_path))
    with pytest.raises(StoreNotFoundError):
        Corpus(tmp_path / "none.zarr")


def test_build_corpus_round_trip(tmp_path):
    corpus = build_corpus(write_table(tmp_path), tmp_path / "c.zarr", chunk_reviews=2)
    vocab, counts = corpus.vocabulary, corpus.counts
    # ids ordered by descending count; counts add up to the token total
    assert np.all(np.diff(counts) <= 0)
    assert counts.sum() == corpus.attrs["n_tokens"] == corpus.sentence_offsets[-1]
    assert len(vocab) == len(set(vocab)) == corpus.vocab_size
    sentences = []
    for _start, values, offsets in corpus.iter_sentence_chunks(2):
        for a, b in itertools.pairwise(offsets):
            sentences.append(" ".join(vocab[i] for i in values[a:b]))
    assert sentences == [
        "a great film .", "i loved it !", "the cast was great .",
        "bad film .", "really bad acting .",
        "great fun .", "don't miss it ."]
    assert corpus.sentence_text([1, 4]) == ["I loved it!", "Really bad acting."]
    assert corpus.sentence_review.tolist() == [0, 0, 0, 1, 1, 2, 2]
    rev = corpus.reviews()
    assert rev["sentence_offsets"].tolist() == [0, 3, 5, 7, 7]  # the blank review has none
    assert rev["label"].tolist() == [1, 0, 1, 0] and rev["split"].tolist() == [0, 0, 1, 1]
    assert corpus.source_names([3]) == ["test/neg/3_1.txt"]
    assert corpus.word_index["great"] == vocab.index("great")
    assert counts[corpus.word_index["great"]] == 3


def test_build_corpus_chunking_does_not_change_result(tmp_path):
    a = build_corpus(write_table(tmp_path), tmp_path / "a.zarr", chunk_reviews=1)
    b = build_corpus(write_table(tmp_path), tmp_path / "b.zarr", chunk_reviews=100)
    assert a.vocabulary == b.vocabulary
    np.testing.assert_array_equal(a.sentence_tokens(0, a.n_sentences)[0],
                                  b.sentence_tokens(0, b.n_sentences)[0])


def test_build_corpus_errors(tmp_path):
    table = write_table(tmp_path)
    build_corpus(table, tmp_path / "c.zarr")
    with pytest.raises(StoreExistsError):
        build_corpus(table, tmp_path / "c.zarr")
    empty = write_table(tmp_path, rows=[b"train\tpos\t0\t1\t<br />\n"])
    with pytest.raises(DataError, match="no tokens"):
        build_corpus(empty, tmp_path / "e.zarr")
    assert not (tmp_path / "e.zarr").exists()
    import zarr
    zarr.open_group(tmp_path / "other.zarr", mode="w").attrs["kind"] = "else"
    with pytest.raises(StoreFormatError):
        Corpus(tmp_path / "other.zarr")


def test_sentence_text_order_and_range(tmp_path):
    corpus = build_corpus(write_table(tmp_path), tmp_path / "c.zarr")
    assert corpus.sentence_text([4, 1, 4], window=2) == [
        "Really bad acting.", "I loved it!", "Really bad acting."]
    from veob_dask.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="sentence indices"):
        corpus.sentence_text([corpus.n_sentences])


def test_tokens_as_ragged(tmp_path):
    corpus = build_corpus(write_table(tmp_path), tmp_path / "c.zarr")
    rag = corpus.tokens
    assert len(rag) == corpus.n_sentences
    values, offsets = rag.block(1, 4)
    ref_values, ref_offsets = corpus.sentence_tokens(1, 4)
    np.testing.assert_array_equal(values, ref_values)
    np.testing.assert_array_equal(offsets, ref_offsets)


def test_words_beyond_ascii_are_kept_in_the_corpus(tmp_path):
    rows = ["train\tpos\t0\t9\tDie Straße in Tōkyō: 日本 at its best. Café naïve!\n".encode(),
            "train\tneg\t1\t2\tМосква was dull.\n".encode()]
    build_corpus(write_table(tmp_path, rows=rows), tmp_path / "c.zarr")
    corpus = Corpus(tmp_path / "c.zarr")
    vocab = set(corpus.vocabulary)
    assert {"straße", "tokyo", "日本", "cafe", "naive", "москва"} <= vocab
    assert corpus.sentence_text([0])[0].startswith("Die Straße in Tokyo")


def test_build_corpus_reports_progress_through_a_callback_or_logging(tmp_path, capsys, caplog):
    lines: list[str] = []
    build_corpus(write_table(tmp_path), tmp_path / "a.zarr", chunk_reviews=2,
                 progress=lines.append)
    assert [ln.split(",")[0] for ln in lines] == ["2 reviews", "4 reviews"]
    with caplog.at_level("DEBUG", logger="veob_dask.text.corpus"):
        build_corpus(write_table(tmp_path), tmp_path / "b.zarr", chunk_reviews=2)
    assert [r.getMessage().split(",")[0] for r in caplog.records] == ["2 reviews", "4 reviews"]
    assert capsys.readouterr() == ("", "")  # the library prints nothing
