"""The estimator contract (README "Estimator contract"): scikit-learn's checks and the shared
dask checks of :class:`veob_dask.testing.DaskEstimatorChecks` over every estimator."""

from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from veob_dask.index import CellIndex, ExactIndex
from veob_dask.index.adapters import VectorDBIndex
from veob_dask.partition import KMeansCells, PartitionTree
from veob_dask.spectral import SequenceTransform, SpectralTransform2D
from veob_dask.subdomain import SubdomainEmbedding
from veob_dask.supervised import CellMapClassifier, CellMapRegressor
from veob_dask.svd import IncrementalSVDEmbedding, SVDEmbedding
from veob_dask.testing import DaskEstimatorChecks, EstimatorCase
from veob_dask.text.corpus import build_corpus
from veob_dask.text.models import (
    ContextEmbedding,
    DictionaryEmbedding,
    SentenceEmbedding,
    SpellingEmbedding,
)

#: The vector-database adapter needs an optional package (the ``vectordb`` extra).
HAS_HNSWLIB = importlib.util.find_spec("hnswlib") is not None
_NEEDS_HNSWLIB = pytest.mark.skipif(not HAS_HNSWLIB, reason="needs hnswlib (vectordb extra)")


def _keys(X: np.ndarray) -> dict[str, np.ndarray]:
    return {"domains": np.arange(X.shape[0]) % 3}


_SENTENCES = ["The cat sat on the mat.", "The dog sat on the rug.", "A cat and a dog ran!",
              "The dog ate.", "The cat ate the fish.", "A dog ran on the mat.",
              "The fish sat on a rug.", "A cat ate and ran."]


def _scratch() -> Path:
    """A temporary folder removed when the test session ends."""
    folder = Path(tempfile.mkdtemp(prefix="veob-contract-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


@functools.cache
def _corpus() -> str:
    """A small corpus store (built once per session, in a temporary folder)."""
    folder = _scratch()
    reviews = [" ".join(np.random.default_rng(i).permutation(_SENTENCES)) for i in range(12)]
    rows = "".join(f"train\tpos\t{i}\t9\t{t}\n" for i, t in enumerate(reviews))
    (folder / "r.tsv").write_text("split\tlabel\tid\trating\ttext\n" + rows)
    return build_corpus(folder / "r.tsv", folder / "c.zarr").path


_WORDS = ["cat", "dog", "sat", "mat", "rug", "fish", "ate", "ran", "the", "on"]


def _words(rng: np.random.Generator) -> np.ndarray:
    return np.asarray(_WORDS)[rng.integers(0, len(_WORDS), size=240)]


_ENTRIES = {"CAT": ["Feline", "Kitty"], "DOG": ["Hound", "Canine"], "RUG": ["Mat", "Carpet"],
            "MAT": ["Rug"], "FISH": ["Trout"], "RAN": ["Sprinted"], "SAT": ["Rested"],
            "ATE": ["Dined"], "HOUND": ["Dog"], "KITTY": ["Cat"]}


@functools.cache
def _dictionary() -> str:
    """A small Simple-English-Dictionary file (written once per session)."""
    folder = _scratch()
    data = {w: {"MEANINGS": [], "SYNONYMS": syn, "ANTONYMS": []} for w, syn in _ENTRIES.items()}
    (folder / "merged.json").write_text(json.dumps(data))
    return str(folder / "merged.json")


def _entry_words(rng: np.random.Generator) -> np.ndarray:
    return np.asarray([w.lower() for w in _ENTRIES])[rng.integers(0, len(_ENTRIES), size=240)]


def _texts(rng: np.random.Generator) -> np.ndarray:
    return np.asarray(_SENTENCES)[rng.integers(0, len(_SENTENCES), size=240)]


CASES = [
    EstimatorCase("SVDEmbedding-gram", lambda: SVDEmbedding(n_components=4)),
    EstimatorCase("SVDEmbedding-randomized",
                  lambda: SVDEmbedding(n_components=3, solver="randomized", n_iter=2)),
    EstimatorCase("SVDEmbedding-tsqr", lambda: SVDEmbedding(n_components=0.9, solver="tsqr")),
    EstimatorCase("IncrementalSVDEmbedding", lambda: IncrementalSVDEmbedding(n_components=4)),
    EstimatorCase("SubdomainEmbedding", lambda: SubdomainEmbedding(n_components=3),
                  fit_params=_keys, method_params=_keys),
    EstimatorCase("SpectralTransform2D", lambda: SpectralTransform2D(image_shape=(3, 4))),
    EstimatorCase("SequenceTransform", lambda: SequenceTransform(12, 4, basis="dct2")),
    EstimatorCase("SequenceTransform-symbols", lambda: SequenceTransform(n_symbols=7),
                  data=lambda rng: rng.integers(0, 7, size=(240, 9)), dense_output=False),
    EstimatorCase("PartitionTree", lambda: PartitionTree(min_samples=20), method="predict"),
    EstimatorCase("PartitionTree-all-rows",
                  lambda: PartitionTree(max_depth=3, min_samples=20, max_samples=None),
                  method="predict"),
    EstimatorCase("KMeansCells", lambda: KMeansCells(6), method="predict"),
    EstimatorCase("ExactIndex", lambda: ExactIndex(n_neighbors=4), method="kneighbors",
                  load_params=lambda X: {"embedding": X}),
    EstimatorCase("CellIndex-tree", lambda: CellIndex(n_neighbors=4, min_samples=20),
                  method="kneighbors"),
    EstimatorCase("CellIndex-kmeans", lambda: CellIndex("kmeans", n_neighbors=4),
                  method="kneighbors"),
    EstimatorCase("SpellingEmbedding", lambda: SpellingEmbedding(n_components=4), data=_words,
                  source=lambda: [*_WORDS, "mats", "rugs", "fishes", "cats", "dogs"]),
    EstimatorCase("ContextEmbedding", lambda: ContextEmbedding(n_components=3), data=_words,
                  source=_corpus),
    EstimatorCase("SentenceEmbedding", lambda: SentenceEmbedding(n_components=3, n=4, m=2),
                  data=_texts, source=_corpus),
    EstimatorCase("DictionaryEmbedding-definitions",
                  lambda: DictionaryEmbedding(n_components=4, k_ratio=0.0), data=_entry_words,
                  source=_dictionary),
    EstimatorCase("DictionaryEmbedding-paper",
                  lambda: DictionaryEmbedding(n_components=4, recipe="paper"),
                  data=_entry_words, source=_dictionary),
    EstimatorCase("CellMapClassifier", lambda: CellMapClassifier(4, n_partitions=2),
                  method="predict", target=lambda X: (X[:, 0] > np.median(X[:, 0])).astype(int)),
    EstimatorCase("CellMapRegressor", lambda: CellMapRegressor(4, n_partitions=2, alpha=1.0),
                  method="predict", target=lambda X: X[:, :3] ** 2),
    pytest.param(EstimatorCase("VectorDBIndex-hnswlib", lambda: VectorDBIndex(n_neighbors=4),
                               method="kneighbors", saves=False),
                 marks=_NEEDS_HNSWLIB, id="VectorDBIndex-hnswlib"),
]


class TestContract(DaskEstimatorChecks):
    @pytest.fixture(params=CASES, ids=str)
    def case(self, request: pytest.FixtureRequest) -> EstimatorCase:
        return request.param


#: Instances scikit-learn's checks run on. Its data is small (tens of rows), hence the small
#: ``min_samples`` of the tree cells.
SKLEARN_CHECKED = [
    SVDEmbedding(n_components=1), SVDEmbedding(n_components=1, solver="tsqr"),
    SVDEmbedding(n_components=0.9, center=True),
    SVDEmbedding(n_components=1, solver="randomized", n_iter=1),
    IncrementalSVDEmbedding(n_components=0.9),
    IncrementalSVDEmbedding(n_components=1, n_oversamples=20),
    SubdomainEmbedding(n_components=1),
    SubdomainEmbedding(n_components=0.9, center=True, solver="incremental"),
    SpectralTransform2D(), SpectralTransform2D(basis="paper"),
    SequenceTransform(), SequenceTransform(4, 3, basis="dct2"),
    PartitionTree(min_samples=5), KMeansCells(),
    ExactIndex(), CellIndex(min_samples=5), CellIndex("kmeans"),
    # one partition keeps the ~100 checks fast; the partitions only average more maps
    CellMapClassifier(n_partitions=1), CellMapRegressor(n_partitions=1),
    *([VectorDBIndex()] if HAS_HNSWLIB else []),
]

#: Checks expected to fail, each with its reason (none today).
EXPECTED_FAILURES: dict[str, dict[str, str]] = {}


@parametrize_with_checks(SKLEARN_CHECKED,
                         expected_failed_checks=lambda est: EXPECTED_FAILURES.get(
                             type(est).__name__, {}))
def test_sklearn_checks(estimator, check):
    check(estimator)


def _blobs() -> np.ndarray:
    return CASES[0].data(np.random.default_rng(0))


def test_subdomain_keys_reach_a_pipeline_through_metadata_routing():
    import dask.array as da
    from sklearn import config_context
    from sklearn.pipeline import Pipeline

    from veob_dask.testing import forbid_compute

    X, keys = _blobs(), np.arange(240) % 3
    with config_context(enable_metadata_routing=True):
        sub = SubdomainEmbedding(n_components=2).set_fit_request(domains=True)
        pipe = Pipeline([("svd", SVDEmbedding(n_components=6)),
                         ("sub", sub.set_transform_request(domains=True))])
        out = pipe.fit_transform(X, domains=keys)
        alone = SubdomainEmbedding(n_components=2).fit(
            SVDEmbedding(n_components=6).fit_transform(X), domains=keys)
        np.testing.assert_allclose(out, alone.transform(
            SVDEmbedding(n_components=6).fit_transform(X), domains=keys))
        np.testing.assert_allclose(pipe.transform(X, domains=keys), out)
        xd = da.from_array(X, chunks=(60, -1))
        pipe.fit(xd, domains=keys)
        with forbid_compute():
            lazy = pipe.transform(xd, domains=da.from_array(keys, chunks=60))
        assert lazy.chunks == (xd.chunks[0], (2,))


@pytest.mark.parametrize("est", [PartitionTree(min_samples=20), KMeansCells(4)], ids=str)
def test_fit_predict_gives_every_rows_cell(est):
    import dask.array as da

    from veob_dask.testing import forbid_compute

    X = _blobs()
    labels = est.fit_predict(X)
    assert isinstance(labels, np.ndarray) and labels.shape == (240,)
    np.testing.assert_array_equal(labels, est.labels_)
    np.testing.assert_array_equal(labels, est.predict(X))
    xd = da.from_array(X, chunks=(60, -1))
    lazy = est.fit_predict(xd)  # fit computes; the labels stay lazy
    assert not hasattr(est, "labels_")  # n values are not kept for dask input
    with forbid_compute():
        assert isinstance(est.predict(xd), da.Array)
    np.testing.assert_array_equal(lazy.compute(), labels)


def test_other_containers_are_refused_clearly():
    import dask.array as da
    import xarray as xr

    from veob_dask.errors import DataError, InvalidParameterError

    X = _blobs()
    svd = SVDEmbedding(n_components=3).fit(X)
    with pytest.raises(DataError, match=r"xarray Dataset; pass one of its variables"):
        svd.transform(xr.Dataset({"x": (("sample", "feature"), X)}))
    np.testing.assert_allclose(svd.transform(xr.DataArray(X)), svd.transform(X))
    svd.set_output(transform="polars")
    with pytest.raises(InvalidParameterError, match="lazy output of dask input"):
        svd.transform(da.from_array(X, chunks=60))


TEXT_MODELS = [SpellingEmbedding(), ContextEmbedding(), DictionaryEmbedding(),
               SentenceEmbedding()]


@pytest.mark.parametrize("est", TEXT_MODELS, ids=lambda e: type(e).__name__)
def test_text_models_pass_sklearns_api_checks(est):
    """scikit-learn's data checks feed 2-D numbers, which text models do not take (their tags
    say so: parametrize_with_checks yields nothing for them); its API checks all apply."""
    from sklearn.utils import estimator_checks as ec

    for check in (ec.check_estimator_cloneable, ec.check_estimator_tags_renamed,
                  ec.check_valid_tag_types, ec.check_estimator_repr,
                  ec.check_no_attributes_set_in_init, ec.check_estimators_unfitted,
                  ec.check_do_not_raise_errors_in_init_or_set_params, ec.check_mixin_order,
                  ec.check_get_params_invariance, ec.check_set_params,
                  ec.check_parameters_default_constructible):
        check(type(est).__name__, est)
