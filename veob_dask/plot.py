"""Figures of a fitted model, as matplotlib figures (for notebooks and ``veob report``).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, safe in threads and scripts); a notebook shows it as the cell's value. matplotlib is
imported only when a figure is drawn: install it with ``pip install 'veob_dask[plot]'``.

Functions that need data take either a :class:`~veob_dask.diagnostics.StoreSample` (from
:func:`~veob_dask.diagnostics.sample_store`, so several figures share one pass over the
store) or a dataset store (path or dask array), which they sample themselves.

Examples
--------
>>> from veob_dask import plot                                         # doctest: +SKIP
>>> from veob_dask.diagnostics import load_model, sample_store         # doctest: +SKIP
>>> from veob_dask.io import read_array                                # doctest: +SKIP
>>> model = load_model("model.zarr")                                  # doctest: +SKIP
>>> plot.spectrum(model)                                              # doctest: +SKIP
>>> s = sample_store(read_array("train.zarr"), model,
...                  labels=read_array("train.zarr", "y"))            # doctest: +SKIP
>>> plot.embedding_map(model, s); plot.reconstruction_error(model, s)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .diagnostics import (
    ModelSummary,
    StoreSample,
    describe,
    embedding_sample,
    neighbourhood_map,
    reconstruct,
    sample_store,
    svd_step,
)
from .errors import MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "component_images",
    "embedding_map",
    "image_reconstructions",
    "reconstruction_error",
    "spectrum",
]

_KEPT, _REST, _MARK = "#1f5fa8", "#9aa5b1", "#c0392b"


def _figure(width: float, height: float) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise MissingDependencyError(
            "drawing figures needs matplotlib, which is not installed; install it with "
            "pip install 'veob_dask[plot]' (or pip install matplotlib).") from err
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _summary(model: Any) -> ModelSummary:
    return model if isinstance(model, ModelSummary) else describe(model)


def _as_sample(model: Any, data: Any, labels: str | None = None) -> StoreSample:
    if isinstance(data, StoreSample):
        return data
    if isinstance(data, (str, os.PathLike)):
        from .io import read_array, read_matrix

        return sample_store(read_matrix(data), model,
                            labels=None if labels is None else read_array(data, labels))
    import dask.array as da

    return sample_store(da.asarray(data), model)


def spectrum(model: Any) -> Figure:
    """Singular values (log scale) and cumulative energy, with the chosen ``k`` and its rule.

    Parameters
    ----------
    model : fitted model or ModelSummary
        Any model :func:`~veob_dask.diagnostics.describe` accepts.
    """
    s = _summary(model)
    sv = np.asarray(s.spectrum, dtype=np.float64)
    k = s.n_components
    fig = _figure(10, 3.8)
    ax1, ax2 = fig.subplots(1, 2)
    idx = np.arange(1, sv.size + 1)
    pos = sv > 0
    ax1.semilogy(idx[:k][pos[:k]], sv[:k][pos[:k]], ".-", color=_KEPT, ms=3, lw=1,
                 label=f"kept (k = {k})")
    if sv.size > k:
        ax1.semilogy(idx[k:][pos[k:]], sv[k:][pos[k:]], ".-", color=_REST, ms=2, lw=1,
                     label="not kept")
    if sv.size:
        ax1.axvline(k + 0.5, color=_MARK, ls="--", lw=1)
    if not np.all(pos):
        ax1.text(0.98, 0.02, f"{int((~pos).sum())} zero values not drawn", ha="right",
                 transform=ax1.transAxes, fontsize=8)
    if sv[pos].size and sv[pos].max() < 10 * sv[pos].min():  # under a decade: plain labels
        from matplotlib.ticker import FuncFormatter

        plain = FuncFormatter(lambda v, _: f"{v:.3g}")
        ax1.yaxis.set_major_formatter(plain)
        ax1.yaxis.set_minor_formatter(plain)
    ax1.set(xlabel="component", ylabel="singular value (log)", title="Singular values")
    ax1.legend(fontsize=8)
    cum = s.cumulative_energy()
    share = "share of the total" if s.total_energy else "share of the computed components"
    ax2.plot(idx, cum, "-", color=_KEPT, lw=1.5)
    if sv.size:
        at_k = float(cum[min(k, cum.size) - 1])
        ax2.axvline(k, color=_MARK, ls="--", lw=1)
        ax2.plot([k], [at_k], "o", color=_MARK)
        ax2.annotate(f"k = {k}: {at_k:.1%}", (k, at_k), textcoords="offset points",
                     xytext=(6, -14), fontsize=9, color=_MARK)
    if s.energy_threshold is not None:
        ax2.axhline(s.energy_threshold, color=_MARK, ls=":", lw=1,
                    label=f"threshold {s.energy_threshold:.1%}")
        ax2.legend(fontsize=8, loc="lower right")
    ax2.set(xlabel="components k", ylabel="cumulative energy", ylim=(0, 1.02),
            title=f"Cumulative energy ({share})")
    fig.suptitle(f"k = {k} — {s.rule}", fontsize=10)
    return fig


def reconstruction_error(model: Any, data: Any, *, labels: str | None = None) -> Figure:
    """Relative reconstruction error ``‖X − X_j‖² / ‖X‖²`` as ``j`` grows to ``k``.

    The solid curve is measured on ``data`` (every row, one pass); when the model knows its
    training data's total energy, the dashed curve is the same quantity on the training data,
    read off the spectrum (further than ``k`` when more singular values were computed).
    """
    sample = _as_sample(model, data, labels)
    summary = _summary(model)
    err = sample.relative_error()
    fig = _figure(7, 3.8)
    ax = fig.subplots()
    ax.plot(np.arange(err.size), err, "-", color=_KEPT, lw=1.8,
            label=f"this store ({sample.n_rows:,} rows)")
    curves = [err]
    if summary.total_energy:
        train = np.clip(1.0 - np.concatenate([[0.0], summary.cumulative_energy()]), 0.0, 1.0)
        ax.plot(np.arange(train.size), train, "--", color=_REST, lw=1.2,
                label="training data (from the spectrum)")
        curves.append(train)
    low = min(float(np.min(c[c > 0])) if np.any(c > 0) else 1.0 for c in curves)
    if low < 1e-2:
        ax.set_yscale("log")
    ax.axvline(summary.n_components, color=_MARK, ls="--", lw=1,
               label=f"k = {summary.n_components}: {err[-1]:.2%} left")
    ax.set(xlabel="components j", ylabel="relative squared error",
           title="Reconstruction error as components are added")
    ax.legend(fontsize=8)
    return fig


def _colours(ax: Any, labels: np.ndarray | None, n: int) -> dict[str, Any]:
    if labels is None:
        return {"color": _KEPT}
    uniq = np.unique(labels)
    if uniq.size <= 20:
        codes = np.searchsorted(uniq, labels)
        return {"c": codes, "cmap": "tab10" if uniq.size <= 10 else "tab20",
                "vmin": -0.5, "vmax": (10 if uniq.size <= 10 else 20) - 0.5,
                "_legend": uniq}
    return {"c": labels, "cmap": "viridis"}


def _scatter(ax: Any, xy: np.ndarray, labels: np.ndarray | None, names: list[str] | None,
             title: str, annotate: int) -> Any:
    style = _colours(ax, labels, xy.shape[0])
    legend = style.pop("_legend", None)
    pts = ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.7, linewidths=0, **style)
    if legend is not None:
        for code, value in enumerate(legend):
            ax.scatter([], [], s=20, color=pts.cmap(pts.norm(code)), label=str(value))
        ax.legend(fontsize=7, markerscale=1, loc="best", ncols=2 if legend.size > 5 else 1,
                  framealpha=0.7)
    inside = _robust_limits(ax, xy)
    if names:
        for i in _spread(xy, inside, annotate):
            ax.annotate(names[i], xy[i], fontsize=7, alpha=0.9)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return pts


def _robust_limits(ax: Any, xy: np.ndarray) -> np.ndarray:
    """Frame the central 99 % of the points so a few far outliers do not squash the rest.

    Returns the mask of the points inside the frame.
    """
    if xy.shape[0] < 50:
        return np.ones(xy.shape[0], dtype=bool)
    lo, hi = np.percentile(xy, 0.5, axis=0), np.percentile(xy, 99.5, axis=0)
    pad = 0.08 * np.maximum(hi - lo, 1e-12)
    lo, hi = lo - pad, hi + pad
    inside = np.all((xy >= lo) & (xy <= hi), axis=1)
    if not np.all(inside):
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.text(0.99, 0.01, f"{int((~inside).sum())} outlying points outside the frame",
                ha="right", fontsize=7, color="#6b7785", transform=ax.transAxes)
    return inside


def _spread(xy: np.ndarray, inside: np.ndarray, m: int) -> list[int]:
    """Up to ``m`` framed points far from each other (farthest-point order), to name."""
    cand = np.flatnonzero(inside)
    if cand.size == 0 or m < 1:
        return []
    pts = xy[cand] / np.maximum(np.ptp(xy[cand], axis=0), 1e-12)
    pick = [int(np.argmin(np.sum((pts - np.median(pts, axis=0)) ** 2, axis=1)))]
    dist = np.sum((pts - pts[pick[0]]) ** 2, axis=1)
    while len(pick) < min(m, cand.size):
        pick.append(int(np.argmax(dist)))
        dist = np.minimum(dist, np.sum((pts - pts[pick[-1]]) ** 2, axis=1))
    return [int(cand[i]) for i in pick]


def embedding_map(model: Any, data: Any = None, *, labels: Any = None,
                  projection: str = "auto", n_sample: int = 2000, map_rows: int = 1000,
                  random_state: int = 0, annotate: int = 15) -> Figure:
    """2-D maps of an embedding sample: the first two components, and a t-SNE/UMAP map.

    Parameters
    ----------
    model : fitted model
        An SVD model (then ``data`` is needed) or a word/sentence model (its own embedding
        is sampled; points are annotated with a few words).
    data : StoreSample, path or dask array, optional
        The rows to map, for an SVD model.
    labels : str or ndarray, optional
        Label array name in the store (with a path), or one label per sampled row; colours
        the points.
    projection : {"auto", "tsne", "umap", "none"}, default="auto"
        The neighbourhood-preserving map (see
        :func:`~veob_dask.diagnostics.neighbourhood_map`), drawn on the first ``map_rows``
        sampled rows.
    n_sample : int, default=2000
        Rows sampled from a word or sentence model (a store's sample comes with ``data``).
    """
    names: list[str] | None = None
    if data is None:
        z, names = embedding_sample(model, n_sample, random_state=random_state)
        lab = None if labels is None or isinstance(labels, str) else np.asarray(labels)
        where = f"{z.shape[0]:,} sampled rows of the model"
    else:
        sample = _as_sample(model, data, labels if isinstance(labels, str) else None)
        z = sample.embedding
        lab = sample.labels if labels is None or isinstance(labels, str) else np.asarray(labels)
        where = f"{z.shape[0]:,} of {sample.n_rows:,} rows"
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"a 2-D map needs at least 2 components; the embedding has "
                         f"{z.shape[1] if z.ndim == 2 else 0}.")
    nb = neighbourhood_map(z[:map_rows], method=projection, random_state=random_state)
    fig = _figure(11 if nb else 6, 5)
    axes = fig.subplots(1, 2 if nb else 1)
    axes = np.atleast_1d(axes)
    _scatter(axes[0], z[:, :2], lab, names, f"components 1 and 2 ({where})", annotate)
    axes[0].set(xlabel="component 1", ylabel="component 2")
    if nb:
        m = nb[0].shape[0]
        _scatter(axes[1], nb[0], None if lab is None else lab[:m],
                 None if names is None else names[:m], f"{nb[1]}, {m:,} rows", annotate)
    return fig


def _sample_images(model: Any, data: Any, n: int) -> tuple[np.ndarray, tuple[int, int]]:
    sample = _as_sample(model, data)
    if sample.data is None or not len(sample.data):
        raise ValueError("the sample kept no raw rows (sparse store?); images need dense rows.")
    imgs = np.asarray(sample.data[:n])
    shape = _summary(model).image_shape or (imgs.shape[1:] if imgs.ndim == 3 else None)
    if shape is None:
        side = round(np.sqrt(imgs[0].size))
        if side * side != imgs[0].size:
            raise ValueError(f"rows of {imgs[0].size} values are not square images.")
        shape = (side, side)
    return imgs, (int(shape[0]), int(shape[1]))


def _mosaic(tiles: list[list[np.ndarray]], pad: int = 1) -> np.ndarray:
    """Tile equal-shape 2-D images into one array (NaN gaps), rows by columns."""
    h, w = tiles[0][0].shape
    ncols = max(len(r) for r in tiles)
    out = np.full((len(tiles) * (h + pad) - pad, ncols * (w + pad) - pad), np.nan)
    for r, row in enumerate(tiles):
        for c, img in enumerate(row):
            out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = img
    return out


def image_reconstructions(model: Any, data: Any, *, n_images: int = 8,
                          ks: list[int] | None = None) -> Figure:
    """Sampled images (top row) above their reconstructions from ``j`` components, for a few ``j``.

    ``ks`` defaults to about k/8, k/4, k/2 and k (distinct, at least 1).
    """
    imgs, shape = _sample_images(model, data, n_images)
    k = int(svd_step(model).n_components_)
    ks = sorted({max(1, int(j)) for j in (ks or (k // 8, k // 4, k // 2, k)) if j <= k})
    rows = [("original", imgs)] + [(f"j = {j}", reconstruct(model, imgs, j)) for j in ks]
    tiles = [[np.asarray(img, dtype=np.float64).reshape(shape) for img in batch]
             for _, batch in rows]
    pad = max(1, shape[0] // 10)
    fig = _figure(1.1 * len(imgs) + 1.0, 1.1 * len(rows) + 0.5)
    ax = fig.subplots()
    ax.imshow(_mosaic(tiles, pad), cmap="gray_r", vmin=float(np.min(imgs)),
              vmax=float(np.max(imgs)), interpolation="nearest")
    ax.set_yticks([r * (shape[0] + pad) + shape[0] / 2 for r in range(len(rows))],
                  [name for name, _ in rows], fontsize=9)
    ax.set_xticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(f"Sampled images rebuilt from the first j of k = {k} components", fontsize=10)
    return fig


def component_images(model: Any, *, n: int = 16) -> Figure:
    """The first ``n`` components drawn as images (mapped back through a spectral step).

    Each image is scaled by its largest absolute value: red positive, blue negative.
    """
    svd = svd_step(model)
    shape = _summary(model).image_shape
    comps = np.asarray(svd.components_[:n], dtype=np.float64)
    if hasattr(model, "steps") and isinstance(model.steps, list):
        for _, step in reversed(model.steps[:-1]):
            comps = np.asarray(step.inverse_transform(comps))
    if shape is None:
        side = round(np.sqrt(comps.shape[1]))
        if side * side != comps.shape[1]:
            raise ValueError(f"components of {comps.shape[1]} values are not square images.")
        shape = (side, side)
    scale = np.max(np.abs(comps), axis=1, keepdims=True)
    comps = comps / np.where(scale > 0, scale, 1.0)
    per_row = min(8, comps.shape[0])
    tiles = [[c.reshape(shape) for c in comps[i:i + per_row]]
             for i in range(0, comps.shape[0], per_row)]
    pad = max(1, shape[0] // 6)
    fig = _figure(1.2 * per_row + 0.4, 1.25 * len(tiles) + 0.5)
    ax = fig.subplots()
    ax.imshow(_mosaic(tiles, pad), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    for i in range(comps.shape[0]):
        r, c = divmod(i, per_row)
        ax.text(c * (shape[1] + pad), r * (shape[0] + pad) - 0.3,
                f"v{i + 1} σ={svd.singular_values_[i]:.3g}", fontsize=7, va="bottom")
    ax.set_axis_off()
    ax.set_title(f"The first {comps.shape[0]} components as images (red +, blue −)",
                 fontsize=10, pad=12)
    return fig
