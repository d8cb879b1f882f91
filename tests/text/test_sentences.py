"""Tests for veob_dask.text.sentences (§6.5 sentence embedding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from veob_dask.errors import DataError, StoreFormatError
from veob_dask.spectral.basis import cosine_basis
from veob_dask.text.context import build_context
from veob_dask.text.corpus import build_corpus
from veob_dask.text.sentences import SentenceModel, build_sentences, corpus_embedding_matrix
from veob_dask.text.wordvectors import UnknownWordError

WORDS = ["film", "movie", "actor", "plot", "story", "scene", "music", "ending", "cast", "director", "good", "bad", "great", "awful", "funny", "boring", "long", "short", "dark", "bright"]


def random_reviews(n_reviews: int = 40, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    reviews = []
    for _ in range(n_reviews):
        sentences = []
        for _ in range(rng.integers(2, 5)):
            words = rng.choice(WORDS, size=rng.integers(3, 12))
            sentences.append("The " + " ".join(words) + ".")
        reviews.append(" ".join(sentences))
    reviews.append("The film film film film film film film film film film film film film film "
                   "film film film film good good good.")  # 22 tokens, longer than N=15
    return reviews


def write_reviews(tmp_path: Path, reviews: list[str]) -> Path:
    table = tmp_path / "r.tsv"
    rows = "".join(f"{'train' if i % 2 else 'test'}\t{'pos' if i % 3 else 'neg'}\t{i}\t7\t{t}\n"
                   for i, t in enumerate(reviews))
    table.write_text("split\tlabel\tid\trating\ttext\n" + rows)
    return table


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sent")
    corpus = build_corpus(write_reviews(tmp, random_reviews()), tmp / "c.zarr")
    words, _ = build_context(corpus, n_components=8, solver="gram")
    model, seconds = build_sentences(corpus, words, n_components=12, chunk_sequences=25)
    return corpus, words, model, seconds, tmp


def test_features_sum_every_word(built):
    corpus, words, _, _, _ = built
    emb, found = corpus_embedding_matrix(corpus, words)
    assert found == len(words)
    from veob_dask.text.sentences import sentence_features

    feats = sentence_features(corpus, emb, chunk_sequences=7).compute()
    w = cosine_basis(15, "paper", keep=6)
    values, offsets = corpus.sentence_tokens(0, corpus.n_sentences)
    for i in (0, 5, corpus.n_sentences - 1):
        toks = values[offsets[i]:offsets[i + 1]][:15]
        expected = sum(np.outer(w[:, k], emb[t]) for k, t in enumerate(toks))
        np.testing.assert_allclose(feats[i], np.ravel(expected), atol=1e-10)


def test_encode_matches_stored_embedding(built):
    corpus, _, model, _, _ = built
    rows = [0, 3, len(model) - 1]
    texts = model.text(rows)
    np.testing.assert_allclose(model.encode(texts), model.embedding[rows], rtol=1e-4,
                               atol=1e-4 * float(np.abs(model.embedding).max()))
    assert model.metadata["truncated"] == 1  # the 22-token sentence, N = 15
    assert list(model.corpus_index[rows]) == [
        int(i) for i in np.flatnonzero(corpus.sentence_lengths <= 32)[rows]]


def test_neighbors_self_first_distinct_distances(built):
    _, _, model, _, _ = built
    query = model.text([4])[0]
    hits = model.neighbors(query, k=7)
    assert hits[0][0] == query and hits[0][1] == pytest.approx(0.0, abs=1e-3)
    dists = [d for _, d, _ in hits]
    assert dists == sorted(dists)
    assert len(set(np.round(dists[1:], 6))) > 1  # the paper's overwrite bug gave all-equal
    assert all(s.endswith(".txt") for _, _, s in hits)
    cos = model.neighbors(query, k=3, metric="cosine")
    assert cos[0][1] == pytest.approx(0.0, abs=1e-5)


def test_repeated_words_accumulate(built):
    _, _, model, _, _ = built
    one = model.encode("good film")[0]
    two = model.encode("good film good film")[0]
    assert not np.allclose(one, two)


def test_unknown_words(built):
    _, _, model, _, _ = built
    with pytest.raises(UnknownWordError, match="filmm"):
        model.encode("filmm")
    # unknown words keep their position but add nothing
    np.testing.assert_allclose(model.encode("good zzzz")[0] - model.encode("good")[0], 0,
                               atol=1e-12)
    _, unknown = model.tokens("good zzzz film")
    assert unknown == ["zzzz"]


def test_save_load_round_trip(built, tmp_path):
    _, _, model, seconds, _ = built
    assert seconds["total"] >= seconds["fit"] > 0
    model.save(tmp_path / "m.zarr")
    back = SentenceModel.load(tmp_path / "m.zarr")
    assert len(back) == len(model) and back.metadata == model.metadata
    query = model.text([2])[0]
    a, b = back.neighbors(query, k=5), model.neighbors(query, k=5)
    assert [(t, s) for t, _, s in a] == [(t, s) for t, _, s in b]
    assert [d for _, d, _ in a] == pytest.approx([d for _, d, _ in b])


def test_streamed_build_equals_in_memory(built, tmp_path):
    corpus, words, model, _, _ = built
    streamed, _ = build_sentences(corpus, words, n_components=12, chunk_sequences=25,
                                  out=tmp_path / "s.zarr")
    assert len(streamed) == len(model)
    np.testing.assert_allclose(np.asarray(streamed.embedding[:]), model.embedding,
                               atol=1e-5 * float(np.abs(model.embedding).max()))
    rows = [0, len(model) // 2, len(model) - 1]
    assert streamed.text(rows) == model.text(rows)
    assert streamed.source(rows) == model.source(rows)
    np.testing.assert_array_equal(streamed.corpus_index, model.corpus_index)
    from veob_dask.errors import StoreExistsError

    with pytest.raises(StoreExistsError):
        build_sentences(corpus, words, n_components=12, out=tmp_path / "s.zarr")


def test_bad_inputs(built, tmp_path):
    corpus, words, model, _, _ = built
    with pytest.raises(DataError, match="sentences"):
        build_sentences(corpus, words, n_components=10_000)
    import zarr
    zarr.open_group(tmp_path / "x.zarr", mode="w")
    with pytest.raises(StoreFormatError):
        SentenceModel.load(tmp_path / "x.zarr")
    from veob_dask.text.wordvectors import WordVectors
    stranger = WordVectors(["zebra", "yak"], np.eye(2))
    with pytest.raises(DataError, match="no corpus word"):
        build_sentences(corpus, stranger)
    from veob_dask.errors import InvalidParameterError
    with pytest.raises(InvalidParameterError):
        model.neighbors("good film", k=0)


IMDB = Path("/work/shared/data/imdb-aclImdb/imdb_labeled_50k.tsv.xz")


@pytest.mark.slow
@pytest.mark.skipif(not IMDB.is_file(), reason="IMDB review table not available")
def test_examples_build_from_raw_files(tmp_path):
    import importlib.util

    root = Path(__file__).resolve().parents[2] / "examples"
    results = {}
    for name in ("context", "sentences"):
        spec = importlib.util.spec_from_file_location(name, root / name / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        results[name] = mod.main(["--limit", "3000", "--work", str(tmp_path / name)])
    assert results["context"]["n_words"] > 20_000
    assert results["sentences"]["n_sentences"] > 25_000
    for hits in results["sentences"]["tables"].values():
        dists = [d for _, d, _ in hits]
        assert dists == sorted(dists) and len(set(np.round(dists, 6))) > 1
