"""``veob report``: one self-contained HTML page showing what was fitted.

The page holds the model's spectrum with the chosen ``k`` and the rule that chose it, the
solver and its reason, the training input's provenance and, given a dataset store, what one
bounded pass over it shows: a 2-D map of a row sample (coloured by labels), the reconstruction
error as components are added and, for images, originals beside their reconstructions and the
first components as images. Word and sentence models get neighbour tables instead of the
store figures. Images are embedded as base64 PNG, so the file opens anywhere without network.

This module sits above :mod:`veob_dask.plot` (the figures) in the import order and below
``cli``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import plot
from .diagnostics import (
    ModelSummary,
    StoreSample,
    describe,
    load_model,
    model_header,
    neighbor_table,
    query_examples,
    sample_store,
)
from .errors import InvalidParameterError, StoreExistsError

__all__ = ["GENERATOR", "Report", "build_report", "check_report_path"]

#: Written in every report's ``<meta name="generator">``: a file carrying it may be replaced.
GENERATOR = "veob_dask report"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:1.5em auto;
padding:0 1em;color:#1d2733;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;border-bottom:1px solid #d5dbe1;
padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #d5dbe1;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f1f4f7}figure{margin:1em 0}figcaption{font-size:.88em;color:#4a5663}
img{max-width:100%;height:auto;border:1px solid #e3e7eb}.muted{color:#6b7785;font-size:.88em}
.tables{display:flex;flex-wrap:wrap;gap:1.5em}
"""


@dataclass
class Report:
    """A rendered-on-demand report: data, matplotlib figures and tables.

    Attributes
    ----------
    title : str
        Page title.
    summary : ModelSummary
        The model's description.
    figures : dict of str to (Figure, str)
        Figure and caption, in page order.
    tables : list of (str, list of dict)
        Neighbour tables (heading, rows of :func:`~veob_dask.diagnostics.neighbor_table`).
    store : dict
        The dataset store's provenance and what the pass read (empty without a store).
    sample : StoreSample or None
        The pass's result.
    seconds : dict of str to float
        Time per stage.
    notes : list of str
        Sentences about what is not shown and why.
    """

    title: str
    summary: ModelSummary
    figures: dict[str, tuple[Any, str]] = field(default_factory=dict)
    tables: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    store: dict[str, Any] = field(default_factory=dict)
    sample: StoreSample | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, key: str, fig: Any, caption: str) -> None:
        """Append figure ``fig`` under ``key`` with its caption."""
        self.figures[key] = (fig, caption)

    def data(self) -> dict[str, Any]:
        """The report's numbers as JSON-ready data (also embedded in the HTML)."""
        s = self.summary
        out: dict[str, Any] = {
            "title": self.title, "kind": s.kind, "model": s.name, "n_components": s.n_components,
            "rule": s.rule, "energy_threshold": s.energy_threshold, "solver": s.solver,
            "solver_reason": s.solver_reason, "spectrum": [float(v) for v in s.spectrum],
            "provenance": s.provenance, "store": self.store, "figures": list(self.figures),
            "seconds": self.seconds}
        if self.sample is not None:
            out["relative_error"] = [float(v) for v in self.sample.relative_error()]
        return out

    def to_html(self) -> str:
        """The page as one self-contained HTML string (figures as base64 PNG)."""
        e = html.escape
        parts = [(f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                 f"<meta name='generator' content='{GENERATOR}'>"
                 f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
                 f"<title>{e(self.title)}</title><style>{_CSS}</style></head><body>"),
                 f"<h1>{e(self.title)}</h1>",
                 (f"<p class='muted'>{e(self.summary.name)} · written "
                 f"{_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')} by {e(_writer())}"
                 f"</p>"), "<h2>Model</h2>", _kv_table(self.summary.facts)]
        if self.summary.provenance:
            parts += ["<h2>Training input (recorded in the model)</h2>",
                      _kv_table(self.summary.provenance)]
        if self.store:
            parts += ["<h2>Store read for this report</h2>", _kv_table(self.store)]
        for key, (fig, caption) in self.figures.items():
            parts.append(f"<figure id='fig-{e(key)}'><img alt='{e(caption)}' "
                         f"src='data:image/png;base64,{_png(fig)}'>"
                         f"<figcaption>{e(caption)}</figcaption></figure>")
        for heading, rows in self.tables:
            parts += [f"<h2>{e(heading)}</h2><div class='tables'>",
                      *(_neighbour_html(t) for t in rows), "</div>"]
        if self.notes:
            parts += ["<h2>Not shown</h2><ul>", *(f"<li>{e(n)}</li>" for n in self.notes),
                      "</ul>"]
        times = ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items())
        payload = json.dumps(self.data(), default=_json_default).replace("</", "<\\/")
        parts += [f"<p class='muted'>Report built in {e(times)}.</p>",
                  f"<script type='application/json' id='veob-report-data'>{payload}</script>",
                  "</body></html>"]
        return "\n".join(parts)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the page to ``path`` (a temporary sibling, then renamed).

        An existing file is replaced only when it is a veob_dask report or ``overwrite``.

        Raises
        ------
        StoreExistsError
            If ``path`` exists, is not a report, and ``overwrite`` is False.
        """
        out = check_report_path(path, overwrite=overwrite)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            tmp.write_text(self.to_html(), encoding="utf-8")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return out


def check_report_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Check that a report may be written at ``path`` (before the work of building it).

    Raises
    ------
    StoreExistsError
        If ``path`` is a directory, or an existing file that is not a veob_dask report and
        ``overwrite`` is False.
    """
    out = Path(path)
    if out.is_dir():
        raise StoreExistsError(f"{str(out)!r} is a directory; give a file name such as "
                               f"{str(out / 'report.html')!r}.")
    if out.exists() and not overwrite and not _is_report(out):
        raise StoreExistsError(f"{str(out)!r} exists and is not a veob report; choose another "
                               "name or pass --overwrite to replace it.")
    return out


def _writer() -> str:
    from . import __version__

    return f"veob_dask {__version__}"


def _is_report(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(600)
    except OSError:
        return False
    return f"content='{GENERATOR}'" in head


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _fmt(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=_json_default)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _kv_table(rows: dict[str, Any]) -> str:
    e = html.escape
    body = "".join(f"<tr><th>{e(str(k))}</th><td>{e(_fmt(v))}</td></tr>"
                   for k, v in rows.items() if v is not None)
    return f"<table>{body}</table>"


def _neighbour_html(entry: dict[str, Any]) -> str:
    e = html.escape
    sources = any(src for _, _, src in entry["rows"])
    span = 3 if sources else 2
    head = f"<tr><th colspan='{span}'>{e(entry['query'])} (input)</th></tr>"
    if entry["note"]:
        return f"<table>{head}<tr><td colspan='{span}'>{e(entry['note'])}</td></tr></table>"
    cells = [[e(name), f"{dist:.6g}"] + ([e(src)] if sources else [])
             for name, dist, src in entry["rows"]]
    rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells)
    names = ["neighbour", "distance²"] + (["source"] if sources else [])
    return (f"<table>{head}<tr>{''.join(f'<th>{n}</th>' for n in names)}</tr>{rows}"
            "</table>")


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _right_panel(fig: Any) -> str:
    """``" and, right, <method>"`` when the map figure has a neighbourhood-preserving panel."""
    axes = fig.get_axes()
    return f" and, right, {axes[1].get_title()}" if len(axes) > 1 else ""


def _is_images(summary: ModelSummary, store_info: dict[str, Any]) -> bool:
    shape = store_info.get("shape") or []
    return summary.image_shape is not None or len(shape) == 3 or \
        store_info.get("format") == "idx"


def _store_figures(rep: Report, model: Any, store: str, labels: str | None, *,
                   n_sample: int, map_rows: int, projection: str, random_state: int) -> None:
    from .io import describe_store, read_array, read_matrix

    info = describe_store(store)
    x = read_matrix(store)
    y = None if labels is None else read_array(store, labels)
    t0 = time.perf_counter()
    sample = sample_store(x, model, labels=y, n_sample=n_sample, random_state=random_state)
    rep.seconds["store pass"] = round(time.perf_counter() - t0, 3)
    rep.sample = sample
    info.update({"labels": labels, "rows read": sample.n_rows, "chunks read": sample.n_chunks,
                 "rows sampled": int(sample.rows.size)})
    rep.store = info
    left = float(sample.relative_error()[-1])
    k = rep.summary.n_components
    rep.add("error", plot.reconstruction_error(rep.summary, sample),
            f"Relative squared reconstruction error over all {sample.n_rows:,} rows of the "
            f"store as components are added; with k = {k}, {left:.2%} of the energy is left.")
    t0 = time.perf_counter()
    coloured = f", coloured by {labels}" if labels else ""
    if k >= 2:
        fig = plot.embedding_map(model, sample, projection=projection, map_rows=map_rows,
                                 random_state=random_state)
        rep.add("map", fig, f"Embedding of {sample.rows.size:,} rows sampled uniformly (seed "
                f"{random_state}){coloured}: the first two components{_right_panel(fig)}.")
    else:
        rep.notes.append("the model keeps one component, so there is no 2-D map.")
    rep.seconds["map"] = round(time.perf_counter() - t0, 3)
    if _is_images(rep.summary, info) and sample.data is not None:
        rep.add("images", plot.image_reconstructions(model, sample),
                "Sampled images (top row) and their reconstructions from the first j "
                "components.")


def _summarise(model: Any, provenance: dict[str, Any] | None
               ) -> tuple[str | None, Any, ModelSummary]:
    """Load the model if given a path; describe it with what its store records."""
    path = None
    if isinstance(model, (str, os.PathLike)):
        path = str(model)
        model = load_model(path)
    recorded, saved = model_header(path) if path else ({}, {})
    summary = describe(model, {**recorded, **(provenance or {})})
    if saved:
        summary.facts["saved"] = (f"{saved.get('created', '?')} by {saved.get('writer', '?')} "
                                  f"(format version {saved.get('format_version', '?')})")
    return path, model, summary


def build_report(model: Any, *, store: str | os.PathLike[str] | None = None,
                 labels: str | None = None, title: str | None = None, n_sample: int = 2000,
                 map_rows: int = 1000, projection: str = "auto",
                 queries: list[str] | None = None, n_neighbors: int = 8,
                 random_state: int = 0, provenance: dict[str, Any] | None = None) -> Report:
    """Gather the data and draw the figures of a report.

    Parameters
    ----------
    model : fitted model or path
        An SVD estimator or pipeline, a word-vector or a sentence model, or the path of one.
    store : path, optional
        A dataset store (for SVD models): read once for the map, the reconstruction error and
        the image figures.
    labels : str, optional
        Name of the store's label array (e.g. ``"y"``) to colour the map.
    title : str, optional
        Page title (default: from the model path).
    n_sample, map_rows : int, default=2000, 1000
        Rows sampled for the map of the first two components; rows of that sample put through
        the neighbourhood-preserving map (its cost grows faster than linearly).
    projection : {"auto", "tsne", "umap", "none"}, default="auto"
        See :func:`~veob_dask.diagnostics.neighbourhood_map`.
    queries : list of str, optional
        Words or sentences for the neighbour tables (default: the paper's, else seeded picks).
    n_neighbors : int, default=8
        Rows per neighbour table.
    random_state : int, default=0
        Seed of every sample and map.
    provenance : dict, optional
        What is known about the training input, added to what a saved model records (e.g.
        :func:`veob_dask.io.describe_store` of the store it was fitted on).

    Returns
    -------
    Report

    Raises
    ------
    InvalidParameterError
        A store given with a word or sentence model, or labels without a store.

    Notes
    -----
    Memory and time are bounded whatever the store's size: one pass, a chunk per worker
    thread, and figures drawn from a sample of ``n_sample`` rows.
    """
    t_start = time.perf_counter()
    if labels is not None and store is None:
        raise InvalidParameterError("labels name an array of the dataset store; give the store "
                                    "too (--store STORE --labels NAME).")
    path, model, summary = _summarise(model, provenance)
    if summary.kind != "svd" and store is not None:
        raise InvalidParameterError(f"a dataset store goes with SVD models; a {summary.name} "
                                    "carries its own embedding, so give no --store.")
    rep = Report(title=title or f"veob report: {path or summary.name}", summary=summary)
    rep.seconds["load"] = round(time.perf_counter() - t_start, 3)
    if summary.spectrum.size:
        rep.add("spectrum", plot.spectrum(summary),
                f"Singular values (log scale) and cumulative energy. k = "
                f"{summary.n_components}: {summary.rule}.")
    else:
        rep.notes.append("the model records no singular values, so there is no spectrum.")
    if summary.kind == "svd":
        if store is not None:
            _store_figures(rep, model, str(store), labels, n_sample=n_sample,
                           map_rows=map_rows, projection=projection, random_state=random_state)
        else:
            rep.notes.append("no dataset store was given (--store): no map, reconstruction "
                             "error or rebuilt images.")
        if _is_images(summary, rep.store):
            rep.add("components", plot.component_images(model),
                    "The first components as images (mapped back to pixels through the "
                    "spectral transform, if any).")
    else:
        _text_figures(rep, model, n_sample=n_sample, map_rows=map_rows, projection=projection,
                      queries=queries, n_neighbors=n_neighbors, random_state=random_state)
    rep.seconds["total"] = round(time.perf_counter() - t_start, 3)
    return rep


def _text_figures(rep: Report, model: Any, *, n_sample: int, map_rows: int, projection: str,
                  queries: list[str] | None, n_neighbors: int, random_state: int) -> None:
    """The map of a word or sentence model's own embedding, and its neighbour tables."""
    t0 = time.perf_counter()
    size = min(n_sample, len(model))
    fig = plot.embedding_map(model, projection=projection, n_sample=size, map_rows=map_rows,
                             random_state=random_state)
    rep.add("map", fig, f"The model's embedding, a seeded sample of {size:,} rows: the first "
            f"two components{_right_panel(fig)}; a few points are named.")
    rep.seconds["map"] = round(time.perf_counter() - t0, 3)
    what = "words" if rep.summary.kind == "words" else "sentences"
    qs = queries or query_examples(model, random_state=random_state)
    rep.tables.append((f"Nearest {what} (squared Euclidean distance, as the paper's tables)",
                       neighbor_table(model, qs, n_neighbors)))
