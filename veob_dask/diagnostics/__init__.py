"""What was fitted, in numbers: the data behind ``veob report`` and :mod:`veob_dask.plot`.

- :mod:`~veob_dask.diagnostics.model` — describe a fitted model (SVD estimator or pipeline,
  word vectors, sentence model): its spectrum, the chosen ``k`` and the rule that chose it,
  the solver and why, the input's provenance; neighbour tables for word and sentence models.
- :mod:`~veob_dask.diagnostics.sample` — one bounded pass over a dataset store: a uniform
  sample of rows (and labels) plus the energy each component captures, i.e. the
  reconstruction error as ``k`` grows; rebuilding sampled images from ``j`` components.
- :mod:`~veob_dask.diagnostics.projection` — a neighbourhood-preserving 2-D map of a sample
  (t-SNE from scikit-learn, or UMAP when installed).

This package sits above ``text`` and below :mod:`veob_dask.plot` in the import order.
"""

from .model import (
    ModelSummary,
    describe,
    embedding_sample,
    load_model,
    model_header,
    neighbor_table,
    query_examples,
    svd_step,
)
from .projection import neighbourhood_map
from .sample import StoreSample, model_features, reconstruct, sample_store

__all__ = [
    "ModelSummary",
    "StoreSample",
    "describe",
    "embedding_sample",
    "load_model",
    "model_features",
    "model_header",
    "neighbor_table",
    "neighbourhood_map",
    "query_examples",
    "reconstruct",
    "sample_store",
    "svd_step",
]
