"""Spelling embedding (§6.2): factored Gram == plain Gram, OOV encoding, word lists, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from veob_dask.errors import DataError, InvalidParameterError
from veob_dask.text.spelling import (
    build_spelling,
    encode_words,
    load_word_list,
    paper_cells,
    spelling_alphabet,
    spelling_embedding,
    spelling_features,
    spelling_neighbors,
)
from veob_dask.text.wordvectors import WordVectors

DICT = Path("/usr/share/dict/american-english")
WORDS = ["frown", "frowns", "frowned", "frowning", "frog", "frogs", "froggy", "fronting", "frothing", "frosting", "twig", "twigs", "twiggy", "twilight", "twisting", "twirling", "twitch", "bus", "buses", "omnibus", "happiness", "happy", "felicity", "a", "an", "the", "cat", "cats", "catalogue", "dog", "dogs", "dogma", "internationalization"]


@pytest.mark.parametrize("layout", ["blocks", "summed"])
def test_factored_gram_equals_plain_gram(layout: str) -> None:
    ta: dict[str, float] = {}
    va, ea, _ = spelling_embedding(WORDS, n_components=8, layout=layout, solver="factored",
                                   chunk_words=7, timings=ta)
    with threadpool_limits(limits=1, user_api="blas"):  # fast eigh on a busy machine
        vb, eb, _ = spelling_embedding(WORDS, n_components=8, layout=layout, solver="gram",
                                       chunk_words=7)
    np.testing.assert_allclose(ea.singular_values_, eb.singular_values_, rtol=1e-9)
    np.testing.assert_allclose(np.abs(va), np.abs(vb), atol=1e-9)
    assert set(ta) == {"features", "svd", "project"}
    # the embedding is the SVD of the explicit feature matrix
    x = spelling_features(WORDS, layout=layout)[0].compute().toarray()
    s = np.linalg.svd(x, compute_uv=False)[:8]
    np.testing.assert_allclose(ea.singular_values_, s, rtol=1e-9)


def test_build_model_neighbors_and_oov_encoding(tmp_path: Path) -> None:
    wv, timings = build_spelling(WORDS, n_components=10)
    assert isinstance(wv, WordVectors) and wv.dim == 10
    assert timings["total"] >= timings["svd"] > 0
    assert wv.metadata["model"] == "spelling" and wv.metadata["truncated_words"] == 1
    near = [w for w, _ in wv.neighbors("frowning", k=4)]
    assert near[0] == "frowning" and any(w.startswith("fro") for w in near[1:])
    # encoding an in-vocabulary word reproduces its stored vector
    np.testing.assert_allclose(encode_words(wv, ["frowning", "bus"]),
                               wv.vectors[[wv.index("frowning"), wv.index("bus")]], atol=1e-6)
    # a word outside the vocabulary gets spelling neighbours
    out = spelling_neighbors(wv, "twighlight", k=3)
    assert len(out) == 3 and out[0][0].startswith("tw")
    wv.save(tmp_path / "m.zarr")
    back = WordVectors.load(tmp_path / "m.zarr")
    np.testing.assert_allclose(encode_words(back, ["twighlight"]),
                               encode_words(wv, ["twighlight"]))
    with pytest.raises(InvalidParameterError, match="not a spelling model"):
        encode_words(WordVectors(["a"], [[1.0]]), ["b"])


def test_word_list_file_with_bad_lines(tmp_path: Path) -> None:
    f = tmp_path / "words.txt"
    f.write_bytes(b"\xef\xbb\xbfcat\r\n\r\ndog 12\n\xff\xfebad\ncat\n   \nsupercalifragilistic\n")
    report: dict[str, int] = {}
    words = load_word_list(f, report=report)
    assert words == ["cat", "dog", "supercalifragilistic"]
    assert report == {"lines": 7, "empty": 2, "bad_utf8": 1, "duplicates": 1}
    wv, _ = build_spelling(f, n_components=2)
    assert len(wv) == 3
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="no words"):
        load_word_list(empty)
    with pytest.raises(FileNotFoundError):
        load_word_list(tmp_path / "absent.txt")
    with pytest.raises(InvalidParameterError):
        build_spelling(WORDS, layout="rows")
    with pytest.raises(InvalidParameterError):
        build_spelling(WORDS, scale="max")


def test_letters_only_filter() -> None:
    report: dict[str, int] = {}
    words = load_word_list(["don't", "a1", "--", "café", "x", "", "x"], letters_only=True,
                           report=report)
    assert words == ["don't", "café", "x"]
    assert report["not_letters"] == 2 and report["empty"] == 1 and report["duplicates"] == 1
    assert load_word_list(["a1", "--"]) == ["a1", "--"]  # off by default for word lists


def test_long_words_are_truncated_to_n() -> None:
    long = "abcdefghijklmnopqrstuvwxyz"
    x = spelling_features([long, long[:15]])[0].compute().toarray()
    np.testing.assert_array_equal(x[0], x[1])


@pytest.mark.slow
@pytest.mark.skipif(not DICT.is_file(), reason="wamerican word list not installed")
def test_full_word_list_builds() -> None:
    wv, _timings = build_spelling(DICT)
    assert len(wv) > 90_000 and wv.dim == 40
    assert next(w for w, _ in wv.neighbors("frowning", 3)) == "frowning"


def test_paper_cells_restrict_the_search_to_the_query_cell() -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(600)]
    # two far-apart clouds: the nearest cell of a query in cloud 0 holds only cloud-0 words
    vecs = np.vstack([rng.normal(size=(300, 4)), rng.normal(size=(300, 4)) + 50])
    wv = WordVectors(words, vecs.astype(np.float32), {"model": "test"})
    cells = paper_cells(wv, max_depth=3, min_samples=20)
    assert 1 < cells.n_cells_ <= 8
    exact = spelling_neighbors(wv, "w5", k=10)
    got = spelling_neighbors(wv, "w5", k=10, cells=cells)
    assert got[0] == ("w5", 0.0)
    label = cells.partition_.predict(vecs[[5]].astype(np.float64))[0]
    members = set(np.flatnonzero(cells.partition_.predict(vecs.astype(np.float64)) == label))
    assert {int(w[1:]) for w, _ in got} <= members  # only the query's cell
    # within the cell the order and distances are exact
    d = [dist for _, dist in got]
    assert d == sorted(d)
    assert {w for w, _ in got} <= {w for w, _ in spelling_neighbors(wv, "w5", k=300)}
    assert len(exact) == 10


MIXED = ["café", "cafe", "cafes", "naïve", "naive", "native", "straße", "strasse", "street",
         "strange", "日本", "cat", "cats", "dog", "frog"]


def test_letters_beyond_ascii_form_the_alphabet(tmp_path: Path) -> None:
    # issue 11: every non-ASCII word mapped to the zero vector, at distance 0 from every other.
    wv, _ = build_spelling(MIXED, n_components=8)
    assert wv.metadata["alphabet"] == "ßéï日本"  # sorted code points, taken from the words
    assert wv.metadata["n_symbols"] == 127 + 5
    assert np.all(np.linalg.norm(wv.vectors, axis=1) > 0)
    for word in ("café", "naïve", "straße", "日本"):
        dists = dict(wv.neighbors(word, k=len(MIXED)))
        assert dists[word] == 0 and min(v for w, v in dists.items() if w != word) > 1e-6
    assert all(w.startswith("str") for w, _ in wv.neighbors("straße", k=3))
    # words outside the vocabulary are embedded with the same alphabet, also after a round trip
    wv.save(tmp_path / "m.zarr")
    back = WordVectors.load(tmp_path / "m.zarr")
    np.testing.assert_allclose(encode_words(back, ["naïveté"]), encode_words(wv, ["naïveté"]))
    assert spelling_neighbors(back, "cafés", k=1)[0][0] == "café"


def test_letters_outside_the_alphabet_are_refused_by_name() -> None:
    wv, _ = build_spelling(MIXED, n_components=6)
    with pytest.raises(DataError, match=r"'smørrebrød' has letters outside this spelling "
                       r"model's alphabet: 'ø' \(U\+00F8\)"):
        encode_words(wv, ["smørrebrød"])
    with pytest.raises(DataError, match="no letter"):
        encode_words(wv, [""])
    old = WordVectors(wv.words, wv.vectors, {k: v for k, v in wv.metadata.items()
                                              if k != "alphabet"}, wv.extras)
    with pytest.raises(DataError, match=r"'é' \(U\+00E9\)"):  # a model from before alphabets
        encode_words(old, ["café"])


def test_alphabet_is_taken_in_nfc_and_bounded() -> None:
    import unicodedata

    x_nfc = spelling_features(["café"], alphabet="é")[0].compute().toarray()
    x_nfd = spelling_features([unicodedata.normalize("NFD", "café")], alphabet="é")[0]
    np.testing.assert_array_equal(x_nfd.compute().toarray(), x_nfc)
    assert spelling_alphabet([unicodedata.normalize("NFD", "é")]) == "é"
    many = [chr(0x4E00 + i) for i in range(200)]
    with pytest.raises(DataError, match=r"200 distinct letters beyond ASCII, more than the 128"):
        spelling_alphabet(many)
