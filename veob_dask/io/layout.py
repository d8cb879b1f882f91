"""The on-disk layout of every veob_dask artifact: keys, kinds, one format version (constants only).

Every store this library writes is a Zarr v3 group whose root attributes hold one key::

    attrs["veob_dask"] = {"format_version": 2, "kind": "dataset", "created": "2026-...Z",
                          "writer": "veob_dask 0.1.0", ...kind-specific fields...}

A store whose root ``zarr.json`` carries this key (or one of the version-1 keys in
:data:`LEGACY_KEYS`) is *ours*: only such a store may be replaced, and only when asked.

Every array carries Zarr v3 ``dimension_names``; within one group a name always means one size
(``sample`` is the row axis of every per-sample array), so ``xarray.open_zarr`` opens any
artifact as a Dataset.
"""

from __future__ import annotations

__all__ = [
    "ATTR_KEY",
    "FORMAT_VERSION",
    "KINDS",
    "KIND_NAMES",
    "LEGACY_KEYS",
    "LEGACY_MODEL_KINDS",
    "READABLE_VERSIONS",
    "dataset_dims",
    "extra_dims",
]

#: The one root attribute key of every artifact.
ATTR_KEY = "veob_dask"

#: The format version this release writes.
FORMAT_VERSION = 2

#: Format versions this release reads (version 1: the previous release, mapped on read).
READABLE_VERSIONS = (1, 2)

#: Artifact kinds: what a store holds.
KINDS = (
    "dataset",      # X (samples x ...) and optional y, extra per-sample arrays
    "sparse",       # a row-chunked CSR matrix (indptr, indices, data)
    "model",        # a fitted (or unfitted) estimator or Pipeline
    "index",        # a nearest-neighbour index
    "ragged",       # variable-length sequences (values, offsets)
    "corpus",       # a tokenised text corpus
    "wordvectors",  # a vocabulary and its vectors
    "sentences",    # a sentence embedding model
    "checkpoint",   # the running state of a resumable incremental fit
)

#: What each kind is called in messages.
KIND_NAMES = {
    "dataset": "dataset store", "sparse": "sparse store", "model": "saved veob_dask model",
    "index": "veob_dask index store", "ragged": "ragged-sequence store",
    "corpus": "veob_dask text corpus", "wordvectors": "word-vector model",
    "sentences": "sentence model", "checkpoint": "incremental-fit checkpoint",
}

#: Version-1 root attribute keys (previous release) and the kind each one meant. A dataset store
#: of version 1 carried ``veob_dataset`` or nothing at the root (provenance on the array only).
LEGACY_KEYS = {
    "veob_dataset": "dataset",
    "sparse": "sparse",
    "veob_index": "index",
    "veob_ragged": "ragged",
    "veob_wordvectors": "wordvectors",
    "veob_sentences": "sentences",
}

#: Version-1 model stores named their class as ``module:qualname``; these are the only ones
#: mapped (to the kind names of the version-2 table). Nothing is imported from the file.
LEGACY_MODEL_KINDS = {
    "veob_dask.svd.embedding:SVDEmbedding": "SVDEmbedding",
    "veob_dask.svd.incremental_embedding:IncrementalSVDEmbedding": "IncrementalSVDEmbedding",
    "veob_dask.subdomain.embedding:SubdomainEmbedding": "SubdomainEmbedding",
    "veob_dask.spectral.image:SpectralTransform2D": "SpectralTransform2D",
    "veob_dask.spectral.sequence:SequenceTransform": "SequenceTransform",
    "veob_dask.partition.tree:PartitionTree": "PartitionTree",
    "veob_dask.partition.kmeans:KMeansCells": "KMeansCells",
    "veob_dask.supervised.cellmap:CellMapClassifier": "CellMapClassifier",
    "veob_dask.supervised.cellmap:CellMapRegressor": "CellMapRegressor",
    "sklearn.pipeline:Pipeline": "Pipeline",
}

#: Version-1 corpus stores carried ``kind`` at the top level of the root attributes.
LEGACY_CORPUS_KIND = "veob_text_corpus"

# -- array and group names ---------------------------------------------------------------------
DATA = "X"
LABELS = "y"
DOMAINS = "domains"        # subdomain key of each sample (veob ingest --domains)
SPARSE_ARRAYS = ("indptr", "indices", "data")
RAGGED_ARRAYS = ("values", "offsets")
MODEL_STEPS = "steps"      # a Pipeline's steps: steps/0, steps/1, ...
MODEL_FITTED = "fitted"    # fitted sub-estimators: fitted/<attr>_

# -- dimension names -----------------------------------------------------------------------------
SAMPLE = "sample"
_FEATURE_AXES = {2: ("feature",), 3: ("height", "width")}


def dataset_dims(ndim: int) -> tuple[str, ...]:
    """Dimension names of a per-sample data array of ``ndim`` axes.

    ``("sample",)``, ``("sample", "feature")``, ``("sample", "height", "width")``, then
    ``("sample", "axis_1", ..., "axis_<ndim-1>")``.
    """
    if ndim < 1:
        raise ValueError(f"a per-sample array has at least one axis; got ndim={ndim}.")
    if ndim == 1:
        return (SAMPLE,)
    rest = _FEATURE_AXES.get(ndim) or tuple(f"axis_{i}" for i in range(1, ndim))
    return (SAMPLE, *rest)


def extra_dims(name: str, ndim: int) -> tuple[str, ...]:
    """Dimension names of an extra per-sample array ``name``: ``sample`` then ``<name>_<i>``."""
    return (SAMPLE, *(f"{name}_{i}" for i in range(1, ndim)))
