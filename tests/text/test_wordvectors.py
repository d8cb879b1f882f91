"""WordVectors: neighbours, unknown words with suggestions, Zarr round trip, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from veob_dask.errors import (
    DataError,
    InvalidParameterError,
    StoreExistsError,
    StoreFormatError,
    StoreNotFoundError,
    VeobError,
)
from veob_dask.text.wordvectors import UnknownWordError, WordVectors, edit_distances


@pytest.fixture
def wv(rng: np.random.Generator) -> WordVectors:
    words = ["cat", "cats", "dog", "dogs", "bird", "frowning", "frown", "Jerusalem", "café"]
    return WordVectors(words, rng.normal(size=(len(words), 7)), {"model": "test", "n": 3})


def test_neighbors_match_brute_force(wv: WordVectors) -> None:
    for metric in ("sqeuclidean", "cosine"):
        out = wv.neighbors("dog", k=4, metric=metric)
        q = wv.vectors[wv.index("dog")]
        if metric == "sqeuclidean":
            ref = ((wv.vectors - q) ** 2).sum(1)
        else:
            ref = 1 - wv.vectors @ q / (np.linalg.norm(wv.vectors, axis=1) * np.linalg.norm(q))
        order = np.argsort(ref)[:4]
        assert [w for w, _ in out] == [wv.words[i] for i in order]
        np.testing.assert_allclose([d for _, d in out], ref[order], atol=1e-12)
        assert out[0] == ("dog", pytest.approx(0.0, abs=1e-12))
    without = wv.neighbors("dog", k=3, include_self=False)
    assert "dog" not in [w for w, _ in without] and len(without) == 3


def test_k_larger_than_vocabulary_and_bad_k(wv: WordVectors) -> None:
    assert len(wv.neighbors("cat", k=100)) == len(wv)
    with pytest.raises(InvalidParameterError):
        wv.neighbors("cat", k=0)
    with pytest.raises(InvalidParameterError):
        wv.neighbors("cat", metric="manhattan")
    with pytest.raises(DataError):
        wv.neighbors_of_vector(np.zeros(3))


def test_unknown_word_suggests_spellings(wv: WordVectors) -> None:
    with pytest.raises(UnknownWordError) as info:
        wv.vector("frownig")
    err = info.value
    assert isinstance(err, KeyError) and isinstance(err, VeobError)
    assert err.suggestions[0] == "frowning"
    assert "frowning" in str(err) and "not in the vocabulary" in str(err)
    with pytest.raises(UnknownWordError) as info:
        wv.vector("jerusalem")
    assert info.value.suggestions[0] == "Jerusalem"  # case-insensitive match first
    with pytest.raises(UnknownWordError) as info:
        wv.vector("xxxxxxxxxxxxxxxxxxxxxx")
    assert info.value.suggestions == []


def test_edit_distances_against_known_values() -> None:
    d = edit_distances("kitten", ["sitting", "kitten", "", "kit", "mitten", "kittens"])
    assert d.tolist() == [3, 0, 6, 3, 1, 1]


def test_round_trip(tmp_path, wv: WordVectors) -> None:
    path = tmp_path / "model.zarr"
    wv.save(path)
    back = WordVectors.load(path)
    assert back.words == wv.words and back.metadata == wv.metadata
    np.testing.assert_array_equal(back.vectors, wv.vectors)
    with pytest.raises(StoreExistsError):
        wv.save(path)
    small = WordVectors(["a"], [[1.0]])
    small.save(path, overwrite=True)
    assert WordVectors.load(path).words == ["a"]
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_load_errors(tmp_path, wv: WordVectors) -> None:
    with pytest.raises(StoreNotFoundError):
        WordVectors.load(tmp_path / "absent.zarr")
    import zarr
    zarr.open_group(tmp_path / "other.zarr", mode="w").attrs["x"] = 1
    with pytest.raises(StoreFormatError, match="not a word-vector model"):
        WordVectors.load(tmp_path / "other.zarr")
    path = tmp_path / "m.zarr"
    wv.save(path)
    g = zarr.open_group(path, mode="r+")
    g["words_offsets"][1] = 10**6
    with pytest.raises(StoreFormatError, match="inconsistent"):
        WordVectors.load(path)


def test_constructor_rejects_bad_input() -> None:
    with pytest.raises(DataError, match="repeated"):
        WordVectors(["a", "a"], np.ones((2, 2)))
    with pytest.raises(DataError, match="match"):
        WordVectors(["a", "b"], np.ones((3, 2)))
    with pytest.raises(DataError, match="NaN"):
        WordVectors(["a"], [[np.nan, 1.0]])
    with pytest.raises(DataError, match="empty word"):
        WordVectors(["a", ""], np.ones((2, 2)))
    with pytest.raises(DataError):
        WordVectors(["a"], np.ones(2))
    with pytest.raises(DataError, match="JSON"):
        WordVectors(["a"], [[1.0]], {"bad": object()}).save("/tmp/never-written.zarr")


def test_normalized_rows_and_similarity(wv: WordVectors) -> None:
    unit = wv.normalized()
    np.testing.assert_allclose(np.linalg.norm(unit.vectors, axis=1), 1.0)
    assert unit.similarity("cat", "dog") == pytest.approx(wv.similarity("cat", "dog"))
    assert wv.similarity("cat", "cat") == pytest.approx(1.0)


def test_lookups_accept_any_unicode_form_and_refuse_zero_vectors():
    import unicodedata

    wv = WordVectors(["café", "naïve", "cafe", "void"],
                     [[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.0, 0.0]])
    nfd = unicodedata.normalize("NFD", "café")
    assert nfd != "café" and nfd in wv and wv.index(nfd) == 0
    assert [w for w, _ in wv.neighbors(nfd, k=1, include_self=False)] == ["cafe"]
    with pytest.raises(DataError, match=r"'void' has the zero vector .* no neighbours"):
        wv.neighbors("void")
