"""A neighbourhood-preserving 2-D map of an embedding sample (t-SNE, or UMAP when installed)."""

from __future__ import annotations

import importlib.util

import numpy as np

from ..errors import InvalidParameterError

__all__ = ["PROJECTIONS", "neighbourhood_map"]

PROJECTIONS = ("auto", "tsne", "umap", "none")


def neighbourhood_map(z: np.ndarray, *, method: str = "auto", random_state: int = 0,
                      ) -> tuple[np.ndarray, str] | None:
    """Project the rows of ``z`` to 2-D keeping near neighbours near.

    Parameters
    ----------
    z : ndarray of shape (m, k)
        Embedding sample (a few thousand rows at most: the cost grows like m log m per step).
    method : {"auto", "tsne", "umap", "none"}, default="auto"
        ``"tsne"``: scikit-learn's Barnes-Hut t-SNE (PCA start, 500 steps, perplexity 30 or
        less for small samples, one OpenMP thread); ``"umap"``: umap-learn; ``"auto"``: UMAP when umap-learn is
        installed, else t-SNE; ``"none"``: no map.
    random_state : int, default=0

    Returns
    -------
    (ndarray of shape (m, 2), str) or None
        Coordinates and a caption naming the method; None for ``"none"``, fewer than 10 rows
        or fewer than 2 columns.

    Raises
    ------
    InvalidParameterError
        For an unknown method, or ``"umap"`` without umap-learn installed.
    """
    if method not in PROJECTIONS:
        raise InvalidParameterError(f"projection must be one of {PROJECTIONS}; got {method!r}.")
    has_umap = importlib.util.find_spec("umap") is not None
    if method == "umap" and not has_umap:
        raise InvalidParameterError("projection 'umap' needs umap-learn (pip install "
                                    "umap-learn); use 'tsne' instead.")
    z = np.asarray(z, dtype=np.float64)
    if method == "none" or z.shape[0] < 10 or z.ndim != 2 or z.shape[1] < 2:
        return None
    if method == "umap" or (method == "auto" and has_umap):
        import umap

        coords = umap.UMAP(n_components=2, random_state=random_state).fit_transform(z)
        return np.asarray(coords, dtype=np.float64), "UMAP (umap-learn)"
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (z.shape[0] - 1) / 3.0))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                max_iter=500, random_state=random_state)
    # One OpenMP thread: sklearn's Barnes-Hut gradient spin-waits its threads on a busy machine
    # (benchmarks/README.md, "Measurements behind choices in the code").
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        coords = tsne.fit_transform(z)
    return np.asarray(coords, dtype=np.float64), f"t-SNE (scikit-learn, perplexity {perplexity:g})"
