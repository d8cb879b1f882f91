"""Stores written by the previous release (format version 1) still load.

``data/v1_stores.tar.gz`` was written by release 37a0aa9 with ``data/make_v1_stores.py``.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from veob_dask import load
from veob_dask.cli import main
from veob_dask.errors import StoreExistsError
from veob_dask.index import load_index
from veob_dask.io import read_array, read_matrix, read_ragged, write_array
from veob_dask.text.corpus import Corpus
from veob_dask.text.sentences import SentenceModel
from veob_dask.text.wordvectors import WordVectors

ARCHIVE = Path(__file__).parent / "data" / "v1_stores.tar.gz"


@pytest.fixture(scope="module")
def v1(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("v1")
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(where, filter="data")
    return where


def test_v1_dataset_model_pipeline_and_embedding(v1: Path) -> None:
    x = read_array(v1 / "data.zarr").compute()
    model = load(v1 / "model.zarr")
    np.testing.assert_allclose(model.transform(x), read_array(v1 / "emb.zarr").compute(),
                               rtol=1e-5, atol=1e-6)
    assert load(v1 / "pipeline.zarr").transform(x).shape == (40, 3)
    np.testing.assert_array_equal(read_array(v1 / "data.zarr", "y").compute(),
                                  np.arange(40) % 3)


def test_v1_index_words_ragged_sparse(v1: Path) -> None:
    emb = read_array(v1 / "emb.zarr").compute()
    index = load_index(v1 / "index.zarr", embedding=emb)
    _, idx = index.kneighbors(emb[:5], 3, n_probe="all")
    assert idx[:, 0].tolist() == [0, 1, 2, 3, 4]
    words = WordVectors.load(v1 / "words.zarr")
    assert words.words == ["cat", "dog", "bird"] and words.metadata == {"model": "test"}
    rag = read_ragged(v1 / "ragged.zarr")
    assert [s.tolist() for s in rag] == [[1, 2, 3], [], [4, 5]] and rag.attrs == {"what": "v1"}
    assert read_matrix(v1 / "sparse.zarr").compute().shape == (12, 9)


def test_v1_corpus_and_sentences(v1: Path) -> None:
    corpus = Corpus(v1 / "corpus.zarr")
    assert corpus.n_reviews == 12 and len(corpus.vocabulary) == corpus.vocab_size
    assert len(corpus.tokens) == corpus.n_sentences
    model = SentenceModel.load(v1 / "sentences.zarr")
    assert len(model.neighbors("good film", k=2)) == 2


def test_v1_stores_count_as_ours(v1: Path, tmp_path: Path) -> None:
    """A version-1 store may be replaced with overwrite, and only with it."""
    import shutil

    shutil.copytree(v1 / "emb.zarr", tmp_path / "emb.zarr")
    with pytest.raises(StoreExistsError, match="already exists"):
        write_array(np.ones((2, 2)), tmp_path / "emb.zarr")
    assert main(["transform", str(v1 / "model.zarr"), str(v1 / "data.zarr"),
                 "-o", str(tmp_path / "emb.zarr"), "--overwrite", "--scheduler", "sync"]) == 0
