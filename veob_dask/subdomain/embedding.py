"""Subdomain partitions (§9.2): one SVD embedding per subdomain, fitted in a single pass.

For very large data the paper suggests splitting the samples into subdomains — by a metadata
key such as a category, a source or a time window — each with its own embedding and metadata.
:class:`SubdomainEmbedding` fits all subdomains in one pass over the rows: every row chunk
contributes one augmented Gram matrix per subdomain present in it, the per-subdomain sums are
combined as a tree reduction, and each subdomain's basis comes from its own ``eigh``.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import as_dask_2d, check_block_finite, check_n_features, parse_n_components
from ..errors import DataError, DimensionMismatchError, InvalidParameterError
from ..svd.gram import spectrum_from_gram

__all__ = ["SubdomainEmbedding"]


def _domain_grams(block: np.ndarray, keys: np.ndarray, domains: np.ndarray,
                  block_id: tuple[int, ...] | None = None) -> np.ndarray:
    """Kernel: one augmented Gram matrix ``[X, 1]ᵀ[X, 1]`` per subdomain, (1, m, d+1, d+1)."""
    check_block_finite(block, block_id)
    x = np.asarray(block, dtype=np.float64)
    d = x.shape[1]
    out = np.zeros((1, domains.size, d + 1, d + 1))
    keys = np.asarray(keys).ravel()
    idx = np.searchsorted(domains, keys)
    for j in np.unique(idx):
        xs = x[idx == j]
        out[0, j, :d, :d] = xs.T @ xs
        sums = xs.sum(axis=0)
        out[0, j, :d, d] = sums
        out[0, j, d, :d] = sums
        out[0, j, d, d] = xs.shape[0]
    return out


def _project_by_domain(block: np.ndarray, keys: np.ndarray, domains: np.ndarray,
                       comps: np.ndarray, means: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Kernel: project each row on the basis of its own subdomain."""
    check_block_finite(block)
    keys = np.asarray(keys).ravel()
    idx = np.searchsorted(domains, keys)
    bad = (idx >= domains.size) | (domains[np.minimum(idx, domains.size - 1)] != keys)
    if np.any(bad):
        raise DataError(f"subdomain {keys[bad][0]} was not seen in fit; known: "
                        f"{domains.tolist()[:10]}.")
    x = np.asarray(block, dtype=dtype)
    out = np.empty((x.shape[0], comps.shape[1]), dtype=dtype)
    for j in np.unique(idx):
        rows = idx == j
        out[rows] = (x[rows] - means[j].astype(dtype)) @ comps[j].T.astype(dtype)
    return out


def _keys(domains: Any, x: da.Array) -> da.Array:
    keys = domains if isinstance(domains, da.Array) else da.from_array(np.asarray(domains))
    if keys.ndim != 1 or keys.shape[0] != x.shape[0]:
        raise DimensionMismatchError(
            f"domains must be 1-D with one key per row ({x.shape[0]}); got shape {keys.shape}.")
    if keys.dtype.kind not in "iub":
        raise DataError(f"domain keys must be integers; got dtype {keys.dtype}. Encode them "
                        "first, e.g. with numpy.unique(keys, return_inverse=True).")
    return keys.rechunk((x.chunks[0],))


class SubdomainEmbedding(TransformerMixin, BaseEstimator):
    """One orthonormal basis per subdomain of the rows, all fitted in one pass.

    Parameters
    ----------
    n_components : int or float, default=30
        Components per subdomain (capped by each subdomain's rank), or an energy fraction.
    center : bool, default=False
        Subtract each subdomain's column means.
    metadata : dict, optional
        Annotations per subdomain key (``{key: {...}}``), stored with the model.

    Attributes
    ----------
    domains_ : ndarray of shape (n_domains,)
        Sorted subdomain keys.
    components_ : ndarray of shape (n_domains, n_components_, n_features_in_)
        Basis of each subdomain (rows); a subdomain with fewer samples than ``n_components_``
        has zero rows past its rank.
    singular_values_ : ndarray of shape (n_domains, n_components_)
    mean_ : ndarray of shape (n_domains, n_features_in_)
        Zeros unless ``center=True``.
    n_samples_ : ndarray of shape (n_domains,)
    explained_energy_ratio_ : ndarray of shape (n_domains, n_components_)
    n_components_, n_features_in_ : int

    Notes
    -----
    Laziness: ``fit`` computes one pass; ``transform`` of dask input is lazy. Memory: one row
    chunk plus ``n_domains`` (d+1)² float64 matrices per task, so keep subdomains to hundreds for
    wide data. Determinism: signs as :mod:`veob_dask.svd._signs`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, keys = rng.normal(size=(300, 6)), np.repeat([0, 1, 2], 100)
    >>> model = SubdomainEmbedding(n_components=2).fit(X, domains=keys)
    >>> model.components_.shape, model.transform(X, domains=keys).shape
    ((3, 2, 6), (300, 2))
    """

    def __init__(self, n_components: float = 30, *, center: bool = False,
                 metadata: dict[str, Any] | None = None) -> None:
        self.n_components = n_components
        self.center = center
        self.metadata = metadata

    def fit(self, X: Any, y: Any = None, *, domains: Any) -> SubdomainEmbedding:
        """Fit one basis per subdomain; ``domains`` holds one integer key per row."""
        x = as_dask_2d(X)
        keys = _keys(domains, x)
        n_comp = parse_n_components(self.n_components, x.shape[1])
        (uniq,) = dask.compute(da.unique(keys))
        grams = da.map_blocks(
            _domain_grams, x, keys[:, None], uniq, dtype=np.float64, new_axis=[2, 3],
            chunks=((1,) * x.numblocks[0], (uniq.size,), (x.shape[1] + 1,), (x.shape[1] + 1,)),
        ).sum(axis=0)
        (total,) = dask.compute(grams)
        results = [spectrum_from_gram(g, center=self.center) for g in total]
        self._set_state(results, uniq, n_comp, x.shape[1])
        return self

    def _set_state(self, results: list[Any], uniq: np.ndarray, n_comp: float,
                   d: int) -> None:
        if isinstance(n_comp, float):
            ks = []
            for r in results:
                cum = np.cumsum(r.singular_values**2) / max(r.total_energy, 1e-300)
                ks.append(int(np.searchsorted(cum, n_comp - 1e-12) + 1))
            k = min(max(ks), d)
        else:
            k = n_comp
        comps = np.zeros((uniq.size, k, d))
        svals = np.zeros((uniq.size, k))
        for j, r in enumerate(results):
            rank = min(k, r.n_samples)
            comps[j, :rank] = r.components[:rank]
            svals[j, :rank] = r.singular_values[:rank]
        self.domains_ = uniq
        self.components_ = comps
        self.singular_values_ = svals
        self.mean_ = np.stack([r.mean if r.mean is not None else np.zeros(d) for r in results])
        self.n_samples_ = np.array([r.n_samples for r in results])
        energy = np.array([max(r.total_energy, 1e-300) for r in results])
        self.explained_energy_ratio_ = svals**2 / energy[:, None]
        self.n_components_ = k
        self.n_features_in_ = d

    def transform(self, X: Any, domains: Any = None) -> Any:
        """Project each row on its subdomain's basis; dask in, lazy dask out."""
        check_is_fitted(self, "components_")
        if domains is None:
            raise InvalidParameterError("transform needs domains=: one subdomain key per row.")
        lazy = isinstance(X, da.Array)
        x = as_dask_2d(X)
        check_n_features(x.shape[1], self.n_features_in_, owner=type(self).__name__)
        keys = _keys(domains, x)
        dtype = np.dtype(np.float32) if x.dtype == np.float32 else np.dtype(np.float64)
        out = da.map_blocks(_project_by_domain, x, keys[:, None], self.domains_,
                            self.components_, self.mean_, dtype, dtype=dtype,
                            chunks=(x.chunks[0], (self.n_components_,)))
        return out if lazy else out.compute(scheduler="sync")

    def domain_model(self, key: int) -> dict[str, Any]:
        """Basis, singular values, sample count and metadata of one subdomain."""
        check_is_fitted(self, "components_")
        j = int(np.searchsorted(self.domains_, key))
        if j >= self.domains_.size or self.domains_[j] != key:
            raise InvalidParameterError(f"unknown subdomain {key!r}; known: "
                                        f"{self.domains_.tolist()[:10]}.")
        meta = (self.metadata or {}).get(str(key), {})
        return {"components": self.components_[j], "singular_values": self.singular_values_[j],
                "n_samples": int(self.n_samples_[j]), "metadata": meta}
