"""Subdomain partitions (§9.2): one SVD embedding per subdomain, fitted together, and routing.

For very large data the paper suggests splitting the samples into subdomains — by a metadata
key such as a category, a source or a time window — each with its own embedding and metadata.
:class:`SubdomainEmbedding` fits every subdomain's basis in one pass over the rows when the
memory budget allows (see :mod:`veob_dask.subdomain._passes`), keeps a metadata table per
subdomain, and routes rows to subdomains by a metadata filter (:meth:`~SubdomainEmbedding.select`)
or by content (:meth:`~SubdomainEmbedding.route`, :mod:`veob_dask.subdomain.routing`).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import dask
import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._contract import LazyOutputMixin, as_array_input, check_input, finish
from .._parallelism import parallelism
from .._validation import as_dask_2d, parse_n_components, parse_seed
from ..errors import DataError, DimensionMismatchError, InvalidParameterError
from ._passes import SOLVERS, parse_memory
from .metadata import build_table, match
from .routing import RouteTables, project_rows, route_block
from .solve import fit_bases

__all__ = ["SubdomainEmbedding"]


def _codes_block(keys: np.ndarray, domains: np.ndarray) -> np.ndarray:
    """Kernel: position of each key in ``domains``; a key not seen in fit is a DataError."""
    keys = _plain_keys(np.asarray(keys).ravel())
    idx = np.searchsorted(domains, keys)
    bad = (idx >= domains.size) | (domains[np.minimum(idx, domains.size - 1)] != keys)
    if np.any(bad):
        raise DataError(f"subdomain {keys[bad][0].item()!r} was not seen in fit; known: "
                        f"{domains.tolist()[:10]}{' ...' if domains.size > 10 else ''}.")
    return idx.astype(np.int64)


def _plain_keys(keys: np.ndarray) -> np.ndarray:
    return keys.astype(str) if keys.dtype == object else keys


def _project_keys(block: Any, keys: np.ndarray, domains: np.ndarray, comps: np.ndarray,
                  means: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Kernel: project each row on the basis of its own subdomain."""
    return project_rows(block, _codes_block(keys, domains), comps, means, dtype)


def _route_project(block: Any, tables: RouteTables, comps: np.ndarray, means: np.ndarray,
                   dtype: np.dtype) -> np.ndarray:
    """Kernel: project each row on the basis of the subdomain it is routed to by content."""
    codes = route_block(block, tables, 1)[:, 0].astype(np.int64)
    return project_rows(block, codes, comps, means, dtype)


def _take(codes: np.ndarray, domains: np.ndarray) -> np.ndarray:
    return domains[np.asarray(codes, dtype=np.int64)]


def _key_array(domains: Any, x: da.Array) -> da.Array:
    """The subdomain keys as a dask array with ``x``'s row chunks (checked, never computed)."""
    n = x.shape[0]
    if domains is None:
        return da.zeros(n, dtype=np.int64, chunks=(x.chunks[0],))
    domains = as_array_input(domains, "domains")
    keys = domains if isinstance(domains, da.Array) else np.asarray(domains)
    if keys.ndim == 2 and keys.shape[1] == 1:
        keys = keys.ravel()
    if keys.ndim != 1 or keys.shape[0] != n:
        raise DimensionMismatchError(
            f"domains must be 1-D with one key per row ({n}); got shape {keys.shape}.")
    kind = np.dtype(keys.dtype).kind
    if kind == "O":
        keys = keys.astype(str) if isinstance(keys, np.ndarray) else \
            da.map_blocks(_plain_keys, keys, dtype=np.dtype(str))
    elif kind not in "iubUS":
        raise DataError(f"domain keys must be integers or strings; got dtype {keys.dtype}. "
                        "Encode them first, e.g. with numpy.unique(keys, return_inverse=True).")
    if isinstance(keys, np.ndarray):
        return da.from_array(keys, chunks=(x.chunks[0],))
    return keys.rechunk((x.chunks[0],))


class SubdomainEmbedding(LazyOutputMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                         BaseEstimator):
    """One orthonormal basis per subdomain of the rows, fitted together; routing by content.

    Parameters
    ----------
    n_components : int or float, default=0.9
        Components per subdomain (capped by each subdomain's rank), or the energy fraction in
        (0, 1] each subdomain keeps (the default, as for every veob_dask embedding; the
        ``veob subdomains fit`` command defaults to 30 components).
    solver : {"auto", "gram", "incremental", "randomized"}, default="auto"
        ``"gram"``: exact, one (d+1)² Gram matrix per subdomain. ``"incremental"``: one pass,
        rank ``n_components + n_oversamples`` Brand summaries per subdomain (wide or sparse
        data; randomized local summaries past 4,096 features). ``"randomized"``: subspace
        iteration per subdomain, ``n_iter + 1`` passes, ``d x (n_components + n_oversamples)``
        per subdomain. ``"auto"``: ``"gram"`` when all subdomains fit the memory budget in one
        pass, else ``"incremental"``. ``solver_`` and ``solver_reason_`` record the choice.
    center : bool, default=False
        Subtract each subdomain's column means (PCA per subdomain).
    metadata : dict, optional
        Attributes per subdomain key, ``{key: {"lang": "en", ...}}`` (JSON-able; keys may be
        given as text), kept in ``metadata_`` and used by :meth:`select` and ``where=``.
    memory_budget : int, str or None, default="1GiB"
        Bytes the fit may hold at once for its accumulators, running tasks and fitted bases
        (``"512MiB"``, ``"2GB"``...). Subdomains are grouped into as many passes over the data
        as needed to stay under it; None: one pass whatever it takes.
    n_oversamples : int, default=10
        Extra working rank of the approximate solvers.
    n_iter : int, default=2
        Power steps of ``"randomized"`` (and of wide local summaries).
    max_components : int, default=256
        Cap on the components computed when ``n_components`` is a fraction.
    split_every : int, default=2
        Fan-in of the tree reduction over row chunks.
    random_state : int or None, default=0
        Seed of the approximate solvers.

    Attributes
    ----------
    domains_ : ndarray of shape (n_domains,)
        Sorted subdomain keys (integers or text).
    components_ : ndarray of shape (n_domains, n_components_, n_features_in_)
        Basis of each subdomain (rows); rows past ``ranks_[j]`` are zero.
    singular_values_ : ndarray of shape (n_domains, n_components_)
    ranks_ : ndarray of shape (n_domains,)
        Components each subdomain keeps.
    mean_ : ndarray of shape (n_domains, n_features_in_)
        Zeros unless ``center=True``.
    domain_counts_ : ndarray of shape (n_domains,)
        Rows of each subdomain.
    n_samples_seen_ : int
        Rows used in ``fit`` (the sum of ``domain_counts_``).
    energy_ : ndarray of shape (n_domains,)
        Squared Frobenius norm of each (centered) subdomain's rows.
    explained_energy_ratio_ : ndarray of shape (n_domains, n_components_)
    metadata_ : list of dict
        One row per subdomain: ``key``, ``n_samples`` and its metadata attributes.
    n_components_, n_features_in_ : int
    solver_, solver_reason_ : str
    n_passes_ : int
        Passes over the data the fit made.
    memory_estimate_ : int
        Bytes the plan expected the fit to hold at most.

    Notes
    -----
    Laziness: ``fit`` computes (one pass per group of subdomains); ``transform``, ``route`` and
    ``predict`` of dask input are lazy and keep its row chunks. Chunks: keys are rechunked to the
    row chunks of X. Memory: see ``memory_budget``; each task holds accumulators only for the
    subdomains present in its chunk. Determinism: signs as :mod:`veob_dask.svd._signs`; the same
    chunks and seed give the same bases. Keys reach ``fit``/``transform`` through scikit-learn's
    metadata routing (``set_fit_request(domains=True)``) inside a Pipeline. Without ``domains``,
    ``fit`` puts every row in one subdomain (key 0) and ``transform`` routes rows by content.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, keys = rng.normal(size=(300, 6)), np.repeat([0, 1, 2], 100)
    >>> model = SubdomainEmbedding(n_components=2).fit(X, domains=keys)
    >>> model.components_.shape, model.transform(X, domains=keys).shape
    ((3, 2, 6), (300, 2))
    >>> model.route(X[:2], n_routes=2)[0].shape
    (2, 2)
    """

    def __init__(self, n_components: float = 0.9, *, solver: str = "auto", center: bool = False,
                 metadata: dict[str, Any] | None = None, memory_budget: int | str | None = "1GiB",
                 n_oversamples: int = 10, n_iter: int = 2, max_components: int = 256,
                 split_every: int = 2, random_state: int | None = 0) -> None:
        self.n_components = n_components
        self.solver = solver
        self.center = center
        self.metadata = metadata
        self.memory_budget = memory_budget
        self.n_oversamples = n_oversamples
        self.n_iter = n_iter
        self.max_components = max_components
        self.split_every = split_every
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.solver not in SOLVERS:
            raise InvalidParameterError(f"solver must be one of {SOLVERS}; got {self.solver!r}.")
        for name, low in (("n_oversamples", 0), ("n_iter", 0), ("max_components", 1),
                          ("split_every", 2)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
                raise InvalidParameterError(f"{name} must be an int >= {low}; got {v!r}.")
        if self.metadata is not None and not isinstance(self.metadata, Mapping):
            raise InvalidParameterError(
                f"metadata must be a mapping {{key: {{attribute: value}}}} or None; got "
                f"{type(self.metadata).__name__}.")

    def _validated(self, X: Any, *, reset: bool) -> tuple[da.Array, bool]:
        x, lazy = check_input(self, X, reset=reset, accept_sparse="csr")
        return as_dask_2d(x), lazy

    def fit(self, X: Any, y: Any = None, *, domains: Any = None) -> SubdomainEmbedding:
        """Fit one basis per subdomain.

        Parameters
        ----------
        X : array-like, scipy.sparse or dask.array.Array of shape (n_samples, n_features)
        y : None
            Ignored.
        domains : array-like or dask.array.Array of shape (n_samples,), optional
            Subdomain key (integer or text) of each row. None: one subdomain, key 0.
        """
        self._check_params()
        budget = parse_memory(self.memory_budget)
        seed = parse_seed(self.random_state)
        x, _ = self._validated(X, reset=True)
        keys = _key_array(domains, x)
        n_comp = parse_n_components(self.n_components, x.shape[1])
        (uniq,) = dask.compute(da.unique(keys))
        bases = fit_bases(x, keys, np.asarray(uniq), n_components=n_comp, solver=self.solver,
                          center=self.center, n_oversamples=self.n_oversamples,
                          n_iter=self.n_iter, max_components=self.max_components,
                          memory_budget=budget, split_every=self.split_every, seed=seed,
                          threads=parallelism())
        self.domains_ = np.asarray(uniq)
        self.components_ = bases.components
        self.singular_values_ = bases.singular_values
        self.ranks_ = bases.ranks
        self.mean_ = bases.means
        self.domain_counts_ = bases.n_samples
        self.n_samples_seen_ = int(bases.n_samples.sum())
        self.energy_ = bases.energy
        self.explained_energy_ratio_ = bases.singular_values**2 / np.maximum(
            bases.energy, 1e-300)[:, None]
        self.metadata_ = build_table(self.domains_, self.domain_counts_, self.metadata)
        self.n_components_ = int(bases.components.shape[1])
        self.solver_, self.solver_reason_ = bases.plan.solver, bases.plan.reason
        self.n_passes_ = int(bases.plan.passes)
        self.memory_estimate_ = int(bases.plan.estimate_bytes)
        return self

    def fit_transform(self, X: Any, y: Any = None, *, domains: Any = None) -> Any:
        """Fit, then project each row on its own subdomain's basis (routed by content when
        ``domains`` is None)."""
        return self.fit(X, y, domains=domains).transform(X, domains=domains)

    def _dtype(self, x: da.Array) -> np.dtype:
        return np.dtype(np.float32) if x.dtype == np.float32 else np.dtype(np.float64)

    def transform(self, X: Any, domains: Any = None) -> Any:
        """Coordinates of each row in its subdomain's basis: ``(x - mean_j) @ components_[j].T``.

        With ``domains`` each row uses its own key's basis (an unseen key is a DataError);
        without, the subdomain it is routed to by content (:meth:`route`, one route). dask in,
        lazy dask out with the same row chunks.
        """
        check_is_fitted(self, "components_")
        x, lazy = self._validated(X, reset=False)
        dtype = self._dtype(x)
        chunks = (x.chunks[0], (self.n_components_,))
        if domains is None:
            tables = RouteTables(self.components_, self.mean_)
            out = da.map_blocks(_route_project, x, tables, self.components_, self.mean_, dtype,
                                dtype=dtype, chunks=chunks)
        else:
            keys = _key_array(domains, x)
            out = da.map_blocks(_project_keys, x, keys[:, None], self.domains_,
                                self.components_, self.mean_, dtype, dtype=dtype, chunks=chunks)
        return finish(out, lazy)

    def select(self, where: Any = None) -> np.ndarray:
        """Keys of the subdomains whose metadata match every condition of ``where``.

        See :mod:`veob_dask.subdomain.metadata` for the conditions (``"lang=en"``,
        ``"year>=2010"``, ``"band in 1,2"`` or a mapping).
        """
        check_is_fitted(self, "components_")
        return self.domains_[match(self.metadata_, where)]

    def codes(self, keys: Any) -> np.ndarray:
        """Positions in ``domains_`` of the given keys (DataError for unseen keys)."""
        check_is_fitted(self, "components_")
        return _codes_block(np.atleast_1d(np.asarray(keys)), self.domains_)

    def route_tables(self, where: Any = None) -> RouteTables:
        """Scoring tables over the subdomains matching ``where`` (all by default).

        Raises
        ------
        InvalidParameterError
            If no subdomain matches.
        """
        check_is_fitted(self, "components_")
        mask = match(self.metadata_, where)
        if not mask.any():
            attrs = sorted({a for row in self.metadata_ for a in row})
            raise InvalidParameterError(
                f"no subdomain matches the filter {where!r}; attributes present: {attrs}. "
                "Check the names and values (veob subdomains list shows them).")
        return RouteTables(self.components_, self.mean_, np.flatnonzero(mask))

    def route(self, X: Any, n_routes: int = 1, *, where: Any = None,
              return_residual: bool = False) -> tuple[Any, ...]:
        """The ``n_routes`` subdomains that best hold each row, and the share they hold.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n, n_features_in_)
        n_routes : int, default=1
            Subdomains per row, best first.
        where : filter, optional
            Route only among the subdomains whose metadata match (see :meth:`select`).
        return_residual : bool, default=False
            Also return each row's residual energy outside each chosen basis.

        Returns
        -------
        keys : ndarray or dask.array.Array of shape (n, n_routes)
            Subdomain keys, smallest residual energy first (see
            :mod:`veob_dask.subdomain.routing`).
        shares : ndarray or dask.array.Array of shape (n, n_routes)
            Fraction of each row's energy (about the subdomain mean) its basis captures.
        residual : ndarray or dask.array.Array of shape (n, n_routes)
            Only with ``return_residual``.
        """
        check_is_fitted(self, "components_")
        tables = self.route_tables(where)
        if isinstance(n_routes, bool) or not isinstance(n_routes, numbers.Integral) or \
                not 1 <= n_routes <= tables.codes.size:
            raise InvalidParameterError(
                f"n_routes must be an int in [1, {tables.codes.size}] (the subdomains that "
                f"may be chosen); got {n_routes!r}.")
        x, lazy = self._validated(X, reset=False)
        r = int(n_routes)
        raw = da.map_blocks(route_block, x, tables, r, dtype=np.float64,
                            chunks=(x.chunks[0], (3 * r,)))
        keys = da.map_blocks(_take, raw[:, :r], self.domains_, dtype=self.domains_.dtype)
        out = (keys, raw[:, r:2 * r]) + ((raw[:, 2 * r:],) if return_residual else ())
        if lazy:
            return out
        return tuple(dask.compute(*out, scheduler="sync"))

    def predict(self, X: Any) -> Any:
        """The subdomain key each row is routed to by content (a subspace classifier when the
        subdomains are classes)."""
        return self.route(X, 1)[0][:, 0]

    def domain_model(self, key: Any) -> dict[str, Any]:
        """Basis, singular values, sample count and metadata of one subdomain."""
        j = int(self.codes([key])[0])
        rank = int(self.ranks_[j])
        return {"components": self.components_[j, :rank],
                "singular_values": self.singular_values_[j, :rank],
                "mean": self.mean_[j], "n_samples": int(self.domain_counts_[j]),
                "metadata": {k: v for k, v in self.metadata_[j].items()
                             if k not in ("key", "n_samples")}}

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self) -> int:
        return int(self.n_components_)
