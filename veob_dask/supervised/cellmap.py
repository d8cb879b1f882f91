"""The §8 estimators: :class:`CellMapClassifier` and :class:`CellMapRegressor`.

The method (joint embedding, cells, a map per cell regularised toward its parent's, held-out
pruning, routing) is described in :mod:`veob_dask.supervised._base` and
:mod:`veob_dask.supervised._maps`; the defaults below were chosen by cross-validation on
stratified splits (``benchmarks/README.md``, "Supervised defaults").
"""

from __future__ import annotations

import numbers
from typing import Any

import dask
import dask.array as da
import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets

from ..errors import InvalidParameterError
from ..svd.gram import spectrum_from_gram
from ._base import CellMapBase, _choose_k

__all__ = ["CellMapClassifier", "CellMapRegressor"]


def _onehot_block(codes: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((codes.shape[0], n_classes))
    out[np.arange(codes.shape[0]), codes] = 1.0
    return out


def _codes_block(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return np.searchsorted(classes, labels).astype(np.int64)


def _label_block(scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return classes[np.argmax(scores, axis=1)]


def _proba_block(scores: np.ndarray) -> np.ndarray:
    p = np.clip(scores, 0.0, None)
    return p / p.sum(axis=1, keepdims=True)


def _targets_block(y: np.ndarray) -> np.ndarray:
    y64 = np.asarray(y, dtype=np.float64)
    return y64[:, None] if y64.ndim == 1 else y64


def _back_block(p: np.ndarray, basis: np.ndarray | None, flat: bool) -> np.ndarray:
    out = p if basis is None else p @ basis
    return out[:, 0] if flat else out


_COMMON_DOC = """
    Parameters
    ----------
    n_components : int, float or None, default=None
        Size of the input embedding ``P_x`` (the SVD of X, uncentred), or the fraction of its
        energy to keep; None uses the inputs as they are (they already are an embedding, e.g.
        after :class:`~veob_dask.svd.SVDEmbedding` in a Pipeline).
    n_cells : int or "auto", default="auto"
        First-level cells per partition; "auto" is one per 800 training rows.
    max_depth : int, default=4
        Further levels of subdivision below the first cells, at most 62 (with ``prune``, kept only where
        held-out error improves).
    branching : int, default=2
        Children of a subdivided cell (``cells="kmeans"``; the tree is binary).
    min_samples : int, default=50
        A cell is subdivided only when it holds at least ``branching * min_samples`` rows.
    cells : {"kmeans", "tree"}, default="kmeans"
        Hierarchical k-means cells, or the §5 principal-direction tree, in the cell space.
    routing : {"nearest", "descend", "reconstruction"}, default="nearest"
        How a row picks its cell from ``P_x`` alone: nearest leaf centroid, nearest child
        centroid level by level, or the paper's §8.2 reconstruction rule (needs ``alpha > 0``).
    alpha : float or "balanced", default=0.0
        Weight of ``P_y`` in the joint embedding ``Z = [P_x, α P_y]`` the cells are placed in;
        "balanced" is the paper's equal energy; 0 places cells in ``P_x``.
    n_components_joint : int or None, default=None
        Components of ``P_z`` (all by default).
    shrinkage : float or "auto", default="auto"
        λ, the pull of a cell's map toward its parent's, in rows; "auto" picks it from
        ``LAMBDA_GRID`` by held-out error.
    local_model : {"linear", "constant"}, default="linear"
        Affine map per cell, or the cell mean of ``P_y`` (class frequencies), shrunk likewise.
    n_partitions : int, default=8
        Independent partitions whose predictions are averaged.
    prune : bool, default=False
        Keep a subdivision only when it lowers held-out error by more than its noise; off by
        default, since the pull toward the parent's map (λ chosen on held-out rows) already
        keeps fine cells from overfitting, and pruning cost accuracy in cross-validation.
    val_fraction : float, default=0.2
        Rows held out (a hash of the row number) to choose λ and the pruning; the final maps use
        every row.
    max_samples : int or "auto", default="auto"
        Rows per partition the cells are built on (a uniform sample, in memory); "auto" is
        ``max(10000, 64 * n_cells * branching**max_depth)``.
    random_state : int or None, default=0
        Seed of the sample, the k-means starts and the held-out rows.
"""

_COMMON_NOTES = """
    Notes
    -----
    Laziness: ``fit`` computes, in a fixed number of passes over the rows (see
    :mod:`veob_dask.supervised._base`); ``predict`` and friends return numpy for numpy input and
    lazy dask arrays, with the input's row chunks, for dask input.
    Chunks: X may have any row chunks; columns are merged into one chunk.
    Memory: one row chunk per task, plus per-cell sums of
    ``n_leaves * 2 * (k+1) * (k+2+n_targets)`` float64 in ``fit``, at most 1 GiB per task (the
    partitions are summed in one more pass per GiB beyond the first); the sample of
    ``max_samples * n_partitions`` rows of ``[P_x, P_y]``.
    Determinism: fixed by ``random_state``; the held-out rows do not depend on the chunking.
"""


class CellMapClassifier(ClassifierMixin, CellMapBase):
    __doc__ = ("""§8 classifier: a linear map per cell from ``P_x`` to the one-hot labels.

    The class is the arg-max of the averaged cell scores; ``predict_proba`` is those scores
    (local linear estimates of the class probabilities, which sum to one; at a cell's mean they
    are the cell's class frequencies) clipped at zero and renormalised. With
    ``local_model="constant"`` they are the per-cell class frequencies themselves, shrunk
    toward the parent cell's.
""" + _COMMON_DOC + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    x_components_ : ndarray of shape (k, n_features) or None
        ``V_x`` when ``n_components`` is set.
    alpha_ : float
        The α used.
    joint_components_ : ndarray of shape (k_z, k + n_classes) or None
        ``V_z`` when ``alpha_ > 0``.
    node_parent_, node_first_child_, node_n_children_, node_depth_ : ndarrays of int
        The cell hierarchies (all partitions, breadth-first, children consecutive).
    node_centroids_ : ndarray of shape (n_nodes, k)
        Routing centroids in ``P_x``.
    node_counts_ : ndarray of shape (n_nodes,)
        Training rows per cell.
    node_maps_ : ndarray of shape (n_nodes, k + 1, n_classes)
        Affine map of every cell (last row: the intercept).
    node_target_ : ndarray of shape (n_nodes,)
        The cell whose map serves the rows routed to a leaf (itself, or a pruned subtree's root).
    partition_roots_ : ndarray of shape (n_partitions,)
    shrinkage_ : float
        λ used; ``shrinkage_scores_`` holds (λ, held-out squared error) for every λ tried.
    n_cells_ : int
        Cells in use, over all partitions.
    n_passes_ : int
        Passes ``fit`` made over X (the SVD's, the joint Gram's if any, the sample's, and one
        per group of partitions whose sums fit the budget).
    n_features_in_ : int
""" + _COMMON_NOTES + """
    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CellMapClassifier().fit(X[:1400], y[:1400])
    >>> bool(clf.score(X[1400:], y[1400:]) > 0.9)
    True
    """)

    _is_classifier = True

    def _check_y_numpy(self, y: np.ndarray) -> np.ndarray:
        """Labels of any type (strings too) become codes into ``classes_``."""
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        self._numpy_classes = classes
        return codes.astype(np.int64)

    def _encode_targets(self, y: da.Array) -> da.Array:
        classes = self.__dict__.pop("_numpy_classes", None)
        if classes is None:
            (classes,) = dask.compute(da.unique(y))
            codes = da.map_blocks(_codes_block, y, np.asarray(classes), dtype=np.int64)
        else:
            codes = y
        classes = np.asarray(classes)
        if classes.size < 2:
            raise InvalidParameterError(
                f"CellMapClassifier needs at least 2 classes in y; got the one class "
                f"{classes.tolist()}.")
        self.classes_ = classes
        return da.map_blocks(_onehot_block, codes, classes.size, dtype=np.float64, new_axis=1,
                             chunks=(y.chunks[0], (classes.size,)))

    def fit(self, X: Any, y: Any) -> CellMapClassifier:
        """Fit on inputs ``X`` (n, d) and labels ``y`` (n,), numpy or dask."""
        self._fit(X, y)
        return self

    def predict(self, X: Any) -> Any:
        """Class of each row; numpy in, numpy out; dask in, lazy dask out."""
        s = self._scores(X)
        if isinstance(s, da.Array):
            return da.map_blocks(_label_block, s, self.classes_, drop_axis=1,
                                 dtype=self.classes_.dtype)
        return _label_block(s, self.classes_)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities of each row, (n, n_classes), rows summing to one."""
        s = self._scores(X)
        if isinstance(s, da.Array):
            return da.map_blocks(_proba_block, s, dtype=np.float64)
        return _proba_block(s)


class CellMapRegressor(RegressorMixin, CellMapBase):
    __doc__ = ("""§8 regressor: a linear map per cell from ``P_x`` to ``P_y``.

    Single targets are used as they are; multi-output targets ``Y`` (n, m) can be embedded first,
    ``P_y = Y V_yᵀ`` with the top ``n_components_y`` right singular vectors of ``Y`` (the
    paper's ``P_y = U_yᵀ Y``), and predictions are mapped back, ``Ŷ = P̂_y V_y``.
""" + _COMMON_DOC + """    n_components_y : int, float or None, default=None
        Components of the SVD of a multi-output ``Y`` (or the energy fraction to keep); None uses
        ``Y`` as it is.

    Attributes
    ----------
    y_components_ : ndarray of shape (k_y, n_targets) or None
        ``V_y`` when ``n_components_y`` is set.
    target_ndim_ : int
        1 or 2, the shape of ``y`` seen in ``fit`` (predictions have the same).
    x_components_, alpha_, joint_components_, node_*, partition_roots_, shrinkage_, n_cells_
        As for :class:`CellMapClassifier`, with ``k_y`` outputs per map.
""" + _COMMON_NOTES + """
    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-3, 3, size=(4000, 2)); y = np.abs(X[:, 0]) + X[:, 1]
    >>> reg = CellMapRegressor(n_partitions=1).fit(X, y)
    >>> bool(reg.score(X, y) > 0.99)
    True
    """)

    def __init__(self, n_components: float | None = None, *,
                 n_cells: int | str = "auto", max_depth: int = 4, branching: int = 2,
                 min_samples: int = 50, cells: str = "kmeans", routing: str = "nearest",
                 alpha: float | str = 0.0, n_components_joint: int | None = None,
                 shrinkage: float | str = "auto", local_model: str = "linear",
                 n_partitions: int = 8, prune: bool = False, val_fraction: float = 0.2,
                 max_samples: int | str = "auto", random_state: int | None = 0,
                 n_components_y: float | None = None) -> None:
        super().__init__(n_components, n_cells=n_cells, max_depth=max_depth,
                         branching=branching, min_samples=min_samples, cells=cells,
                         routing=routing, alpha=alpha, n_components_joint=n_components_joint,
                         shrinkage=shrinkage, local_model=local_model,
                         n_partitions=n_partitions, prune=prune, val_fraction=val_fraction,
                         max_samples=max_samples, random_state=random_state)
        self.n_components_y = n_components_y

    def _encode_targets(self, y: da.Array) -> da.Array:
        self.target_ndim_ = int(y.ndim)
        m = 1 if y.ndim == 1 else int(y.shape[1])
        return da.map_blocks(_targets_block, y, dtype=np.float64,
                             chunks=(y.chunks[0], (m,)),
                             **({"new_axis": 1} if y.ndim == 1 else {}))

    def _y_basis(self, g_yy: np.ndarray, s_y: np.ndarray, n: float) -> np.ndarray | None:
        m = g_yy.shape[0]
        k = self.n_components_y
        ok = (isinstance(k, numbers.Integral) and not isinstance(k, bool) and 1 <= k <= m) or (
            isinstance(k, float) and 0 < k <= 1)
        if not ok:
            raise InvalidParameterError(
                f"n_components_y must be None, an int in [1, n_targets={m}] or a float in "
                f"(0, 1]; got {k!r}.")
        aug = np.zeros((m + 1, m + 1))
        aug[:m, :m], aug[:m, m], aug[m, :m], aug[m, m] = g_yy, s_y, s_y, n
        res = spectrum_from_gram(aug, center=False)
        return res.components[:_choose_k(res.singular_values, k)]

    def fit(self, X: Any, y: Any) -> CellMapRegressor:
        """Fit on inputs ``X`` (n, d) and targets ``y`` (n,) or (n, m), numpy or dask."""
        self._fit(X, y)
        return self

    def predict(self, X: Any) -> Any:
        """Predicted targets, shaped like the ``y`` seen in ``fit``; dask in, lazy dask out."""
        p = self._scores(X)
        flat = self.target_ndim_ == 1
        basis = self.y_components_
        if isinstance(p, da.Array):
            m = int(p.shape[1] if basis is None else basis.shape[1])
            kwargs: dict[str, Any] = {"drop_axis": 1} if flat else {
                "chunks": (p.chunks[0], (m,))}
            return da.map_blocks(_back_block, p, basis, flat, dtype=np.float64, **kwargs)
        return _back_block(p, basis, flat)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
