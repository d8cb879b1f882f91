"""Model summaries: the rule that chose k, the spectrum, word-model tables and samples."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from veob_dask.diagnostics import (
    describe,
    embedding_sample,
    neighbor_table,
    query_examples,
)
from veob_dask.errors import InvalidParameterError
from veob_dask.spectral import SpectralTransform2D
from veob_dask.svd import SVDEmbedding
from veob_dask.text.wordvectors import WordVectors


def test_describe_states_the_rule_that_chose_k(low_rank):
    frac = describe(SVDEmbedding(n_components=0.95).fit(low_rank))
    cum = frac.cumulative_energy()
    assert frac.energy_threshold == 0.95 and "reaches 95.0%" in frac.rule
    assert cum[frac.n_components - 1] >= 0.95 > cum[frac.n_components - 2]
    assert frac.facts["solver"] == "gram" and "Gram" in frac.facts["why this solver"]
    fixed = describe(SVDEmbedding(n_components=7).fit(low_rank))
    assert fixed.rule == "n_components=7, fixed by the caller" and fixed.energy_threshold is None
    assert fixed.spectrum.size == 40  # the exact route knows every singular value
    np.testing.assert_allclose(fixed.total_energy, np.sum(low_rank**2), rtol=1e-9)
    pipe = Pipeline([("spectral", SpectralTransform2D()), ("svd", SVDEmbedding(n_components=3))])
    pipe.fit(np.random.default_rng(3).random((8, 4, 6)))
    assert describe(pipe).image_shape == (4, 6)
    assert describe(pipe).name == "SpectralTransform2D(dct2) → SVDEmbedding"
    with pytest.raises(InvalidParameterError, match="not fitted"):
        describe(SVDEmbedding())


def test_word_model_tables_and_sample():
    rng = np.random.default_rng(0)
    words = ["bus", "buses", "omnibus", "happiness", "felicity", "joy"] + \
        [f"word{i}" for i in range(40)]
    wv = WordVectors(words, rng.normal(size=(len(words), 5)),
                     {"model": "dictionary", "singular_values": [5.0, 4.0, 3.0, 2.0, 1.0]})
    assert query_examples(wv, n=2) == ["bus", "happiness"]  # the paper's §6.4 queries
    table = neighbor_table(wv, ["bus", "nope"], k=3)
    assert table[0]["rows"][0][0] == "bus" and len(table[0]["rows"]) == 3
    assert table[1]["rows"] == [] and "not in the vocabulary" in table[1]["note"]
    coords, names = embedding_sample(wv, 10, random_state=0)
    assert coords.shape == (10, 5) and all(wv.vector(n)[0] == c for n, c in zip(names,
                                                                                 coords[:, 0]))
    s = describe(wv)
    assert (s.kind, s.n_components) == ("words", 5) and "set when the model was built" in s.rule
    np.testing.assert_allclose(s.cumulative_energy()[-1], 1.0)


def test_built_word_models_record_the_energy_they_left_out():
    from veob_dask.text.spelling import build_spelling

    words = ["bus", "buses", "omnibus", "happiness", "felicity", "joy", "jump", "jumped",
             "spectral", "spectrum", "matrix", "matrices"]
    wv, _ = build_spelling(words, n_components=4)
    x_energy = wv.metadata["total_energy"]
    kept = np.sum(np.square(wv.metadata["singular_values"]))
    assert 0 < kept < x_energy  # 4 of many components: energy left out
    s = describe(wv)
    np.testing.assert_allclose(s.cumulative_energy()[-1], kept / x_energy, rtol=1e-9)
    assert s.cumulative_energy()[-1] < 1.0


def test_a_spectrum_rule_recorded_by_the_builder_is_the_rule_shown():
    wv = WordVectors(["a", "b", "c"], np.eye(3)[:, :2],
                     {"model": "dictionary", "singular_values": [3.0, 2.0], "k_ratio": 0.28,
                      "max_components": 5})
    assert describe(wv).rule == "singular values at least 0.28 σ₁ among the 5 computed (k = 2)"
