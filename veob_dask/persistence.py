"""Save and load anything veob_dask writes, through one explicit table of loadable classes.

:data:`MODELS` maps the short kind name stored in a model file (``"SVDEmbedding"``) to the class
and its parameter and fitted-state rules (each package keeps its own entries in a ``schema``
module beside its classes). :func:`load` reads a store's header and dispatches on its artifact
kind: models through :func:`veob_dask.io.serialize.load_estimator` with this table, indexes,
word vectors and sentence models through their own loaders — nothing in a file can name a module,
a function, an address or a path that gets used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.pipeline import Pipeline

from .index import CellIndex, ExactIndex, SubdomainIndex, load_index
from .io.location import Location, PathLike
from .io.serialize import EstimatorSpec, ModelTable, load_estimator, save_estimator
from .io.store import open_group, store_header
from .partition.schema import SPECS as _PARTITION
from .spectral.schema import SPECS as _SPECTRAL
from .subdomain.schema import SPECS as _SUBDOMAIN
from .supervised.schema import SPECS as _SUPERVISED
from .svd.schema import SPECS as _SVD
from .text.schema import SPECS as _TEXT
from .text.sentences import SentenceModel
from .text.wordvectors import WordVectors

__all__ = ["MODELS", "load", "save"]

#: Every class a model file may name, by the short kind name stored in the file.
MODELS: ModelTable = {
    **_SVD, **_SPECTRAL, **_PARTITION, **_SUBDOMAIN, **_SUPERVISED, **_TEXT,
    "Pipeline": EstimatorSpec(Pipeline),
}


def save(obj: Any, path: PathLike | Location, *, overwrite: bool = False,
         storage_options: Mapping[str, Any] | None = None,
         provenance: Mapping[str, Any] | None = None) -> None:
    """Save an estimator, Pipeline, index, word-vector or sentence model to ``path``.

    ``provenance`` (estimators only): what the model was fitted on, e.g.
    :func:`veob_dask.io.describe_store` of the training store; recorded in the model's header
    as ``"input"`` (``veob report`` shows it).

    Raises
    ------
    TypeError
        For objects veob_dask cannot save, or ``provenance`` with a non-estimator.
    StoreExistsError
        The output may not be written (see :func:`veob_dask.io.check_output`).
    """
    if isinstance(obj, (ExactIndex, CellIndex, SubdomainIndex, WordVectors, SentenceModel)):
        if provenance is not None:
            raise TypeError(f"provenance is recorded for estimators; a {type(obj).__name__} "
                            "keeps its own metadata.")
        obj.save(path, overwrite=overwrite, storage_options=storage_options)
        return
    save_estimator(obj, path, MODELS, overwrite=overwrite, storage_options=storage_options,
                   provenance=provenance)


def load(path: PathLike | Location, *, embedding: Any = None,
         storage_options: Mapping[str, Any] | None = None) -> Any:
    """Load what :func:`save` wrote (the store's header says which kind it is).

    Parameters
    ----------
    path : str, path-like or Location
        The store.
    embedding : array, optional
        For an index: the embedding it was built from (required for an exact index).
    storage_options : dict, optional
        fsspec options for a URL.

    Raises
    ------
    StoreNotFoundError
        Nothing exists at ``path``.
    StoreFormatError
        Not a loadable veob_dask store, or one whose content fails its checks.
    """
    header = store_header(open_group(path, storage_options=storage_options))
    kind = header.get("kind") if header else None
    if kind == "index" and header.get("method") == SubdomainIndex.method:
        return SubdomainIndex.load(path, storage_options=storage_options)
    if kind == "index":
        return load_index(path, embedding=embedding, storage_options=storage_options)
    if kind == "wordvectors":
        return WordVectors.load(path, storage_options=storage_options)
    if kind == "sentences":
        return SentenceModel.load(path, storage_options=storage_options)
    return load_estimator(path, MODELS, storage_options=storage_options)
