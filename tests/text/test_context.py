"""Tests for veob_dask.text.context (§6.3 context embedding)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from veob_dask.errors import InvalidParameterError
from veob_dask.text.context import build_context, context_counts, weight_counts
from veob_dask.text.corpus import build_corpus

TEXT = [
    "The cat sat on the mat. The dog sat on the rug. A cat and a dog ran!",
    "The dog ate. The cat ate the fish. A very long sentence here with many many words in it.",
]


def make_corpus(tmp_path: Path, texts=TEXT):
    rows = "".join(f"train\tpos\t{i}\t9\t{t}\n" for i, t in enumerate(texts))
    table = tmp_path / "r.tsv"
    table.write_text("split\tlabel\tid\trating\ttext\n" + rows)
    return build_corpus(table, tmp_path / "c.zarr")


def reference_counts(corpus, window, max_words):
    n = corpus.vocab_size
    ref = np.zeros((n, 2 * n))
    values, offsets = corpus.sentence_tokens(0, corpus.n_sentences)
    for a, b in itertools.pairwise(offsets):
        s = values[a:b]
        if max_words is not None and len(s) > max_words:
            continue
        for i, w in enumerate(s):
            for d in range(1, window + 1):
                if i - d >= 0:
                    ref[w, s[i - d]] += 1
                if i + d < len(s):
                    ref[w, n + s[i + d]] += 1
    return ref


@pytest.mark.parametrize("window,max_words,chunk", [(2, 32, 1), (2, 8, 2), (1, None, 100)])
def test_counts_match_reference(tmp_path, window, max_words, chunk):
    corpus = make_corpus(tmp_path)
    counts, word_counts = context_counts(corpus, window=window, max_words=max_words,
                                         chunk_sentences=chunk, split_every=2)
    ref = reference_counts(corpus, window, max_words)
    np.testing.assert_array_equal(counts.toarray(), ref)
    assert counts.shape == (corpus.vocab_size, 2 * corpus.vocab_size)
    if max_words is None:
        np.testing.assert_array_equal(word_counts, corpus.counts)


def test_counts_known_cells(tmp_path):
    corpus = make_corpus(tmp_path)
    counts, _ = context_counts(corpus)
    ix, n = corpus.word_index, corpus.vocab_size
    c = counts.toarray()
    # "the cat sat on the mat ." / "the cat ate the fish ." : "cat" follows "the" twice
    assert c[ix["cat"], ix["the"]] == 2
    # "sat" comes one or two places after "cat" ("the cat sat", "a cat and a dog ran")
    assert c[ix["cat"], n + ix["sat"]] == 1
    # contexts never cross sentences: "." is never before "the"
    assert c[ix["the"], ix["."]] == 0
    # the long sentence (> 8 tokens) is skipped with max_words=8
    short, _ = context_counts(corpus, max_words=8)
    assert short.toarray()[ix["many"]].sum() == 0 and c[ix["many"]].sum() > 0


def test_weight_raw_bags_sum_to_one():
    counts = sp.random(30, 60, density=0.1, random_state=1, format="csr")
    counts.data = np.ceil(counts.data * 10)
    dense = counts.toarray()
    w = weight_counts(counts, "raw").toarray()
    for lo in (0, 30):
        nonempty = dense[:, lo:lo + 30].sum(axis=1) > 0
        sums = w[:, lo:lo + 30].sum(axis=1)
        np.testing.assert_allclose(sums[nonempty], 1.0, rtol=1e-5)
        assert np.all(sums[~nonempty] == 0)
        # proportional to the counts within a bag
        row = int(np.flatnonzero(nonempty)[0])
        np.testing.assert_allclose(w[row, lo:lo + 30] * dense[row, lo:lo + 30].sum(),
                                   dense[row, lo:lo + 30], rtol=1e-5)


def test_weight_ppmi_matches_dense_formula():
    counts = np.array([[4, 0, 1, 2, 0, 0], [1, 3, 0, 0, 5, 1], [0, 2, 2, 1, 1, 1]], float)
    w = weight_counts(sp.csr_matrix(counts), "ppmi", alpha=0.75).toarray()
    for lo in (0, 3):
        bag = counts[:, lo:lo + 3]
        total = bag.sum()
        pw = bag.sum(1, keepdims=True) / total
        cs = bag.sum(0) ** 0.75
        pc = cs / cs.sum()
        with np.errstate(divide="ignore"):
            pmi = np.log(bag / total / pw / pc)
        np.testing.assert_allclose(w[:, lo:lo + 3], np.maximum(pmi, 0), atol=1e-6)
    assert (w >= 0).all()


def test_weight_bad_input():
    with pytest.raises(InvalidParameterError, match="weighting"):
        weight_counts(sp.csr_matrix(np.ones((2, 4))), "tfidf")
    with pytest.raises(InvalidParameterError, match="even"):
        weight_counts(sp.csr_matrix(np.ones((2, 3))), "raw")


@pytest.mark.parametrize("weighting", ["raw", "ppmi"])
def test_build_context_is_the_svd_of_the_weighted_matrix(tmp_path, weighting):
    corpus = make_corpus(tmp_path)
    n = corpus.vocab_size
    wv, seconds = build_context(corpus, weighting=weighting, n_components=n, min_count=1,
                                solver="gram", scale_exponent=1.0)
    assert wv.words == corpus.vocabulary and set(seconds) >= {"count", "svd", "total"}
    counts, _ = context_counts(corpus)
    m = weight_counts(counts, weighting).toarray().astype(np.float64)
    # full rank: (V S)(V S)^T == M M^T (rows are words)
    np.testing.assert_allclose(wv.vectors @ wv.vectors.T, m @ m.T, atol=1e-4)
    assert wv.metadata["weighting"] == weighting and wv.metadata["shape"] == [n, 2 * n]


def test_build_context_min_count_and_errors(tmp_path):
    corpus = make_corpus(tmp_path)
    wv, _ = build_context(corpus, n_components=3, min_count=2, solver="gram")
    counts = dict(zip(corpus.vocabulary, corpus.counts, strict=True))
    assert all(counts[w] >= 2 for w in wv.words) and wv.dim == 3
    with pytest.raises(InvalidParameterError, match="min_count"):
        build_context(corpus, min_count=1000, solver="gram")
    with pytest.raises(InvalidParameterError, match="weighting"):
        build_context(corpus, weighting="bm25")
    with pytest.raises(InvalidParameterError, match="window"):
        context_counts(corpus, window=0)
