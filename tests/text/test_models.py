"""The text-model estimators wrap the builders: the same vectors, and transform looks them up
(or spells/encodes items the builders' models encode)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from veob_dask.errors import InvalidParameterError
from veob_dask.text.context import build_context
from veob_dask.text.corpus import build_corpus
from veob_dask.text.models import (
    ContextEmbedding,
    DictionaryEmbedding,
    SentenceEmbedding,
    SpellingEmbedding,
)
from veob_dask.text.sentences import build_sentences
from veob_dask.text.spelling import build_spelling
from veob_dask.text.wordvectors import UnknownWordError

from .test_sentences import random_reviews, write_reviews


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("models")
    return build_corpus(write_reviews(tmp, random_reviews()), tmp / "c.zarr")


def test_spelling_estimator_equals_builder():
    words = ["frown", "frowning", "crown", "brown", "clown", "crowned", "drown", "grown"]
    built, _ = build_spelling(words, n_components=3)
    est = SpellingEmbedding(n_components=3).fit(words)
    assert est.vocabulary_.tolist() == built.words
    np.testing.assert_allclose(est.vectors_, built.vectors, rtol=1e-6)
    np.testing.assert_allclose(est.transform(words), built.vectors, rtol=1e-5, atol=1e-6)
    assert est.transform(["browning"]).shape == (1, 3)  # spelled out, not looked up


def test_context_estimator_equals_builder(corpus):
    built, _ = build_context(corpus, n_components=4)
    est = ContextEmbedding(n_components=4).fit(corpus)
    assert est.vocabulary_.tolist() == built.words
    np.testing.assert_allclose(est.vectors_, built.vectors, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(est.transform(built.words[:5]), est.vectors_[:5])
    with pytest.raises(UnknownWordError):
        est.transform(["zzzzunknown"])


def test_sentence_estimator_encodes_like_the_built_model(corpus):
    words = ContextEmbedding(n_components=4).fit(corpus)
    model, _ = build_sentences(corpus, words.word_vectors(), n_components=3, n=6, m=2)
    est = SentenceEmbedding(n_components=3, n=6, m=2).fit(corpus, words=words)
    np.testing.assert_allclose(np.abs(est.components_), np.abs(model.components), atol=1e-6)
    texts = model.text(range(6))
    np.testing.assert_allclose(est.transform(texts), model.encode(texts), rtol=1e-4,
                               atol=1e-5)


def test_sentence_estimator_fits_its_own_word_model_by_default(corpus):
    est = SentenceEmbedding(n_components=3, n=6, m=2).fit(corpus)
    assert isinstance(est.words_, ContextEmbedding)
    assert clone(est).get_params() == est.get_params()


@pytest.mark.parametrize("recipe", ["definitions", "paper"])
def test_dictionary_estimator_equals_builder(tmp_path, recipe):
    from veob_dask.text.definitions import build_definitions
    from veob_dask.text.dictionary import build_dictionary

    from .test_dictionary import ENTRIES, _write

    path = _write(tmp_path, ENTRIES)
    if recipe == "paper":
        built, _ = build_dictionary(path, n_components=4)
    else:
        built, _ = build_definitions(path, max_components=4)
    est = DictionaryEmbedding(n_components=4, recipe=recipe).fit(path)
    assert est.vocabulary_.tolist() == built.words
    np.testing.assert_allclose(est.vectors_, built.vectors, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(est.transform(["bus", "car"]),
                                  est.vectors_[[built.words.index("bus"),
                                                built.words.index("car")]])
    with pytest.raises(InvalidParameterError, match="recipe must be"):
        DictionaryEmbedding(recipe="nope").fit(path)
