"""One nearest-neighbour index per subdomain, and one ranked answer across subdomains (§9.2).

:class:`SubdomainIndex` embeds every row in its own subdomain's basis (``SubdomainEmbedding``),
builds one index per subdomain over those coordinates (exact, cells, k-means or a vector-database
adapter), and answers a query in three steps:

1. **route**: the subdomains to search are those matching a metadata filter (``where=``), or the
   ``routes`` subdomains whose bases hold the most of the query's energy
   (:mod:`veob_dask.subdomain.routing`), or both (the best ``routes`` among the matching ones);
2. **search** each routed subdomain's index with the query's coordinates in that basis;
3. **merge** the candidates of all routed subdomains into one list ranked by

       D(q, x) = ‖z_q − z_x‖² + e_q,     e_q = ‖q − μ_j‖² − ‖V_j (q − μ_j)‖²,

   the squared Euclidean distance, in the original feature space, from the query to the
   reconstruction ``x̂ = μ_j + V_jᵀ z_x`` of the row in its subdomain (Pythagoras: ``x̂`` lies in
   the subdomain's affine subspace, the query's residual ``e_q`` is orthogonal to it).

Why this distance: coordinates of different subdomains are in different bases, so their raw
distances are not comparable; ``D`` is a distance between points of one space (the input space)
for every subdomain. Inside one subdomain it ranks exactly as the embedding distance does (``e_q``
is a constant there), so each subdomain's index is used unchanged. Across subdomains it charges
each one for what its basis misses of the query, so a subdomain that does not describe the query
cannot win with a small in-basis distance. When the rows lie in their subdomain's subspace
(``x̂ = x``), ``D`` is the exact squared distance and the merged list is the exact global answer;
otherwise ``D − ‖q − x‖² = ‖r_x‖² − 2⟨r_q, r_x⟩`` with the rows' residuals ``r_x``. The rows'
own residuals are not used: storing them would cost as much as the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import zarr

from ..errors import (
    DataError,
    DimensionMismatchError,
    InvalidParameterError,
    NotFittedError,
    StoreFormatError,
)
from ..io.header import check_header
from ..io.location import Location, PathLike, as_location
from ..io.serialize import (
    NONE,
    ArraySpec,
    EstimatorSpec,
    ScalarSpec,
    check_arrays,
    is_choice,
    is_int,
    is_json,
    read_estimator,
    write_estimator,
)
from ..io.store import open_artifact, read_arrays, store_header
from ..io.writer import create_artifact
from ..subdomain import SubdomainEmbedding
from ..subdomain.routing import project_rows, route_block
from ..subdomain.schema import SPECS as SUBDOMAIN_SPECS
from .base import CellIndex, read_index, write_index
from .exact import merge_topk

__all__ = ["SubdomainIndex", "SubdomainResult"]

#: Index methods a subdomain index may build in each subdomain.
SUBDOMAIN_METHODS = ("exact", "cells", "tree", "kmeans", "hnswlib", "faiss-ivf", "faiss-flat")

_ARRAYS = {
    "order": ArraySpec(("row",), "iu", permutation=True),
    "offsets": ArraySpec(("domain_offset",), "iu", monotone=True, first=0, last="row"),
    "vectors": ArraySpec(("row", "component"), "f"),
    "row_codes": ArraySpec(("row",), "iu", low=0, high="domain"),
}
_STATE = EstimatorSpec(object, arrays=_ARRAYS,
                       scalars={"n_rows": ScalarSpec(is_int(1), dim="row"),
                                "n_domains": ScalarSpec(is_int(1), dim="domain"),
                                "n_components": ScalarSpec(is_int(1), dim="component")})
_PARAMS = {"method": is_choice(*SUBDOMAIN_METHODS), "routes": NONE | is_int(1),
           "n_probe": is_choice("all") | is_int(1), "params": NONE | is_json()}


def _checked_params(params: Any, where: str) -> dict[str, Any]:
    if not isinstance(params, dict) or set(params) - set(_PARAMS):
        raise StoreFormatError(f"{where}: the subdomain index parameters must be an object with "
                               f"keys {sorted(_PARAMS)}.")
    for name, value in params.items():
        if not _PARAMS[name].ok(value):
            raise StoreFormatError(f"{where}: index parameter {name!r} = {value!r} is not "
                                   f"allowed (expected {_PARAMS[name].expects}).")
    if isinstance(params.get("params"), dict) and not all(
            isinstance(k, str) and k.isidentifier() for k in params["params"]):
        raise StoreFormatError(f"{where}: the per-subdomain index parameters must be named.")
    return dict(params)


def _check_state(arrays: Mapping[str, np.ndarray], model: SubdomainEmbedding, n_rows: Any,
                 where: str) -> None:
    """The rows' order, offsets and codes agree with each other and with the model."""
    m = int(model.domains_.size)
    try:
        check_arrays(_STATE, dict(arrays), {"n_rows": n_rows, "n_domains": m,
                                            "n_components": int(model.n_components_)})
        codes, order, offsets = arrays["row_codes"], arrays["order"], arrays["offsets"]
        if offsets.size != m + 1:
            raise ValueError(f"offsets has {offsets.size} entries for {m} subdomains")
        if not np.array_equal(np.searchsorted(codes[order], np.arange(m + 1)), offsets):
            raise ValueError("order and offsets disagree with the rows' subdomains")
    except (ValueError, TypeError, IndexError) as err:
        raise StoreFormatError(f"{where}: the subdomain index is damaged: {err}.") from err

#: Queries searched at once (bounds the (queries x routes x n_neighbors) candidate arrays).
_QUERY_BLOCK = 1024


@dataclass(frozen=True)
class SubdomainResult:
    """Answer of :meth:`SubdomainIndex.search` for ``n`` queries.

    Attributes
    ----------
    indices : ndarray (n, n_neighbors) int64
        Row numbers of the indexed data, best first; -1 where fewer rows were reachable.
    sq_distances : ndarray (n, n_neighbors) float64
        ``D(q, x)`` (module notes), ascending; inf where ``indices`` is -1.
    domains : ndarray (n, n_neighbors)
        Subdomain key of each answer.
    routes : ndarray (n, r)
        The subdomains searched for each query, best first.
    shares : ndarray (n, r)
        Share of each query's energy that each searched subdomain's basis holds.
    """

    indices: np.ndarray
    sq_distances: np.ndarray
    domains: np.ndarray
    routes: np.ndarray
    shares: np.ndarray


class SubdomainIndex:
    """One index per subdomain of a fitted :class:`~veob_dask.subdomain.SubdomainEmbedding`.

    Parameters
    ----------
    method : {"exact", "cells", "tree", "kmeans", "hnswlib", "faiss-ivf", "faiss-flat"}
        Index built in every subdomain (see :func:`~veob_dask.index.build_index`).
    routes : int or None, default=None
        Subdomains searched per query: None searches every subdomain matching ``where`` when
        a filter is given, and the best one by content otherwise.
    n_probe : int or "all", default=8
        Cells probed per subdomain (cell and vector-database indexes).
    params : dict, optional
        Further parameters of every subdomain's index (``max_depth``, ``M``...).

    Attributes
    ----------
    model_ : SubdomainEmbedding
    order_ : ndarray (n_rows,) int64
        Row numbers sorted by subdomain; subdomain ``j`` holds ``order_[offsets_[j]:offsets_[j+1]]``.
    offsets_ : ndarray (n_domains + 1,) int64
    vectors_ : ndarray (n_rows, n_components)
        Every row's coordinates in its own subdomain's basis, in ``order_``.
    indexes_ : list
        One fitted index per subdomain (None for a subdomain without rows).
    n_rows_ : int

    Notes
    -----
    Memory: the coordinates of every row (``n_rows x n_components``) and the per-subdomain
    index structures are held in memory, like :class:`~veob_dask.index.CellIndex`.
    Queries are rows of the original features (``model_.n_features_in_`` wide), not
    embeddings. Determinism: fixed by the model and the indexes' ``random_state``.
    """

    method = "subdomains"

    def __init__(self, method: str = "exact", *, routes: int | None = None,
                 n_probe: int | str = 8, params: dict[str, Any] | None = None) -> None:
        self.index_method = method
        self.routes = routes
        self.n_probe = n_probe
        self.params = params

    def _build(self, vectors: np.ndarray) -> Any:
        from . import build_index

        kwargs = dict(self.params or {})
        if self.index_method != "exact":
            kwargs.setdefault("n_probe", self.n_probe)
        return build_index(vectors, self.index_method, **kwargs)

    def fit(self, model: SubdomainEmbedding, X: Any, domains: Any) -> SubdomainIndex:
        """Embed the rows of ``X`` in their subdomains and build one index per subdomain.

        Parameters
        ----------
        model : SubdomainEmbedding
            Fitted; every key of ``domains`` must be one of its subdomains.
        X : array-like or dask.array.Array of shape (n_rows, n_features)
        domains : array-like or dask.array.Array of shape (n_rows,)
            Subdomain key of each row.
        """
        if not hasattr(model, "components_"):
            raise NotFittedError("the SubdomainEmbedding is not fitted; fit it first.")
        z = model.transform(X, domains=domains)
        keys = domains
        if isinstance(z, da.Array) or isinstance(keys, da.Array):
            z, keys = dask.compute(z, keys)
        codes = model.codes(np.asarray(keys).ravel())
        order = np.argsort(codes, kind="stable")
        m = model.domains_.size
        offsets = np.searchsorted(codes[order], np.arange(m + 1)).astype(np.int64)
        vectors = np.ascontiguousarray(np.asarray(z)[order])
        indexes: list[Any] = []
        for j in range(m):
            a, b = offsets[j], offsets[j + 1]
            rank = max(1, int(model.ranks_[j]))
            indexes.append(self._build(vectors[a:b, :rank]) if b > a else None)
        self.model_ = model
        self.order_, self.offsets_, self.vectors_ = order.astype(np.int64), offsets, vectors
        self.row_codes_ = codes.astype(np.int64)
        self.indexes_ = indexes
        self.n_rows_ = int(codes.size)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "indexes_"):
            raise NotFittedError("this SubdomainIndex is not fitted; call fit(model, X, "
                                 "domains) first.")

    def _queries(self, queries: Any) -> np.ndarray:
        q = queries.compute() if isinstance(queries, da.Array) else queries
        q = np.asarray(q.toarray() if hasattr(q, "toarray") else q)
        d = self.model_.n_features_in_
        if q.ndim != 2:
            raise DataError(f"queries must be 2-D (n_queries, {d}); got shape {q.shape}.")
        if q.shape[1] != d:
            raise DimensionMismatchError(
                f"queries have {q.shape[1]} features but the subdomain model expects {d}; "
                "queries are rows of the original data, not embeddings.")
        if q.size and not np.all(np.isfinite(q)):
            raise DataError("queries contain NaN or inf values; clean them first.")
        return q

    def _n_routes(self, routes: Any, where: Any, n_allowed: int) -> int:
        r = self.routes if routes is None else routes
        if r is None:
            r = n_allowed if where is not None else 1
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
            raise InvalidParameterError(f"routes must be a positive int; got {r!r}.")
        return min(int(r), n_allowed)

    def _search_block(self, q: np.ndarray, tables: Any, r: int, n: int,
                      n_probe: Any) -> tuple[np.ndarray, ...]:
        model = self.model_
        raw = route_block(q, tables, r)
        codes = raw[:, :r].astype(np.int64)
        shares, resid = raw[:, r:2 * r], raw[:, 2 * r:]
        vals = np.full((q.shape[0], r, n), np.inf)
        idx = np.full((q.shape[0], r, n), -1, dtype=np.int64)
        for c in np.unique(codes).tolist():
            index = self.indexes_[c]
            if index is None:
                continue
            qi, slot = np.nonzero(codes == c)
            rank = max(1, int(model.ranks_[c]))
            z = project_rows(q[qi], np.full(qi.size, c), model.components_[:, :rank],
                             model.mean_, np.dtype(np.float64))
            kk = min(n, int(self.offsets_[c + 1] - self.offsets_[c]))
            sq, local = index.kneighbors(z, kk, n_probe=n_probe)
            ok = local >= 0
            vals[qi, slot, :kk] = np.where(ok, sq + resid[qi, slot][:, None], np.inf)
            idx[qi, slot, :kk] = np.where(ok, self.order_[self.offsets_[c] + np.maximum(local, 0)],
                                          -1)
        sq_d, ind = merge_topk([(vals.reshape(q.shape[0], -1), idx.reshape(q.shape[0], -1))], n)
        return ind, sq_d, codes, shares

    def search(self, queries: Any, n_neighbors: int = 10, *, routes: int | None = None,
               where: Any = None, n_probe: Any = None) -> SubdomainResult:
        """The ``n_neighbors`` nearest indexed rows across the routed subdomains, merged.

        Parameters
        ----------
        queries : array-like of shape (n_queries, n_features)
            Rows of the original features (dask input is computed: queries are small).
        n_neighbors : int, default=10
        routes : int, optional
            Overrides the index's ``routes``.
        where : filter, optional
            Search only subdomains whose metadata match (see
            :meth:`~veob_dask.subdomain.SubdomainEmbedding.select`).
        n_probe : int or "all", optional
            Overrides the per-subdomain indexes' ``n_probe``.

        Returns
        -------
        SubdomainResult
        """
        self._check_fitted()
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) \
                or n_neighbors < 1:
            raise InvalidParameterError(f"n_neighbors must be a positive int; got {n_neighbors!r}.")
        q = self._queries(queries)
        model = self.model_
        tables = model.route_tables(where)
        r = self._n_routes(routes, where, tables.codes.size)
        n = int(n_neighbors)
        parts = [self._search_block(q[a:a + _QUERY_BLOCK], tables, r, n, n_probe)
                 for a in range(0, q.shape[0], _QUERY_BLOCK)]
        if not parts:
            parts = [(np.empty((0, n), np.int64), np.empty((0, n)), np.empty((0, r), np.int64),
                      np.empty((0, r)))]
        ind, sq, codes, shares = (np.concatenate(p) for p in zip(*parts, strict=True))
        dom_codes = np.where(ind >= 0, self.row_codes_[np.maximum(ind, 0)], 0)
        return SubdomainResult(ind, sq, model.domains_[dom_codes], model.domains_[codes], shares)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: PathLike | Location, *, overwrite: bool = False,
             storage_options: Mapping[str, Any] | None = None) -> None:
        """Write the index to a Zarr group at ``path`` (temporary path, then published).

        Layout (an artifact of kind ``"index"``, ``method="subdomains"``): the model (group
        ``model``), the rows' coordinates and order (arrays ``vectors``, ``order``,
        ``offsets``, ``row_codes``) and, for cell indexes, each subdomain's index (group
        ``indexes/<j>``). Exact indexes store nothing more; vector-database adapters are
        rebuilt from ``vectors`` on load.
        """
        self._check_fitted()
        nbytes = sum(int(getattr(self, n + "_").nbytes) for n in _ARRAYS)
        with create_artifact(path, "index", overwrite=overwrite,
                             storage_options=storage_options, nbytes=nbytes,
                             method=self.method, params=self._params(),
                             n_rows=self.n_rows_) as w:
            for name, spec in _ARRAYS.items():
                w.array(name, getattr(self, name + "_"), dims=spec.dims)
            write_estimator(w.subgroup("model", "model"), self.model_, SUBDOMAIN_SPECS)
            for j, index in enumerate(self.indexes_):
                if isinstance(index, CellIndex):
                    write_index(w.subgroup(f"indexes/{j}", "index"), index)

    def _params(self) -> dict[str, Any]:
        return {"method": self.index_method, "routes": self.routes, "n_probe": self.n_probe,
                "params": self.params}

    @classmethod
    def load(cls, path: PathLike | Location, *,
             storage_options: Mapping[str, Any] | None = None) -> SubdomainIndex:
        """Load an index written by :meth:`save`, checking every part before using it.

        Raises
        ------
        StoreNotFoundError
            If nothing exists at ``path``.
        StoreFormatError
            If the store is not a subdomain index, or its parts disagree (row order, offsets,
            subdomain codes, the model, the per-subdomain indexes).
        """
        loc = as_location(path, storage_options)
        where = repr(str(loc))
        group, header = open_artifact(loc, "index")
        if header.get("method") != cls.method:
            raise StoreFormatError(f"{where} is a {header.get('method')!r} index, not a "
                                   "subdomain index; build one with `veob subdomains index`.")
        out = cls(**_checked_params(header.get("params"), where))
        sub = group.get("model")
        if not isinstance(sub, zarr.Group):
            raise StoreFormatError(f"{where} lacks its subdomain model; it is incomplete.")
        out.model_ = read_estimator(sub, f"{where}/model", SUBDOMAIN_SPECS)
        arrays = read_arrays(group, list(_ARRAYS), where)
        _check_state(arrays, out.model_, header.get("n_rows"), where)
        for name, arr in arrays.items():
            setattr(out, name + "_", arr)
        out.n_rows_ = int(arrays["order"].size)
        indexes: list[Any] = []
        for j in range(out.model_.domains_.size):
            a, b = int(out.offsets_[j]), int(out.offsets_[j + 1])
            vectors = out.vectors_[a:b, :max(1, int(out.model_.ranks_[j]))]
            if b == a:
                indexes.append(None)
            elif out.index_method in ("cells", "tree", "kmeans"):
                node = group.get(f"indexes/{j}")
                if not isinstance(node, zarr.Group):
                    raise StoreFormatError(f"{where} lacks the index of subdomain {j}.")
                indexes.append(read_index(node, check_header(
                    store_header(node), f"{where}/indexes/{j}", "index"),
                    f"{where}/indexes/{j}", embedding=vectors))
            else:
                indexes.append(out._build(vectors))
        out.indexes_ = indexes
        return out

    def kneighbors(self, queries: Any, k: int = 10, n_probe: Any = None, *,
                   routes: int | None = None, where: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, sq_distances)`` of :meth:`search` (the common index interface)."""
        res = self.search(queries, k, routes=routes, where=where, n_probe=n_probe)
        return res.indices, res.sq_distances
