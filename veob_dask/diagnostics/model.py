"""Describe a fitted model: spectrum, chosen k and its rule, solver, provenance, neighbours.

Three families of models are described:

- an SVD estimator (:class:`~veob_dask.svd.SVDEmbedding`, its incremental variant) or a
  scikit-learn ``Pipeline`` ending in one (e.g. the 2-D spectral transform then the SVD);
- a word-vector model (:class:`~veob_dask.text.wordvectors.WordVectors`, from
  ``veob words build``), whose metadata records the singular values it kept;
- a sentence model (:class:`~veob_dask.text.sentences.SentenceModel`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidParameterError, StoreFormatError
from ..io import open_group
from ..io.layout import KIND_NAMES
from ..io.store import store_header
from ..svd.embedding import total_energy
from ..svd.kernels import cumulative_energy
from ..text.wordvectors import UnknownWordError

__all__ = [
    "ModelSummary",
    "describe",
    "embedding_sample",
    "load_model",
    "model_header",
    "neighbor_table",
    "query_examples",
    "svd_step",
]

#: The query words of the paper's tables (§6.2-6.4), used when the vocabulary holds them.
PAPER_WORDS = {"spelling": ("twighlight", "frowning"), "context": ("physicist", "twists"),
               "dictionary": ("bus", "happiness")}
#: The query sentences of the paper's §6.5 table.
PAPER_SENTENCES = ("i did like the lead actors, but thought little of the film",
                   "everybody has seen ' back to the future ' right?")


@dataclass
class ModelSummary:
    """What a report says about a fitted model, before any store is read.

    Attributes
    ----------
    kind : {"svd", "words", "sentences"}
        Model family.
    name : str
        Readable name, e.g. ``"SpectralTransform2D(dct2) → SVDEmbedding"``.
    spectrum : ndarray
        Every singular value known (at least the kept ones), descending.
    n_components : int
        Components kept (``k``).
    rule : str
        The rule that chose ``k``, as a sentence.
    energy_threshold : float or None
        The energy fraction of the rule, when ``k`` came from the spectrum.
    total_energy : float or None
        Squared Frobenius norm of the (centered) training data, when known.
    solver, solver_reason : str or None
        The SVD solver and why it was chosen.
    facts : dict
        Ordered rows for a summary table (label -> value).
    provenance : dict
        What is recorded about the training input (source, shape, chunks, when, writer).
    image_shape : tuple of int or None
        ``(h, w)`` when rows are images (a spectral pipeline).
    """

    kind: str
    name: str
    spectrum: np.ndarray
    n_components: int
    rule: str
    energy_threshold: float | None = None
    total_energy: float | None = None
    solver: str | None = None
    solver_reason: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    image_shape: tuple[int, int] | None = None

    def cumulative_energy(self) -> np.ndarray:
        """Cumulative share of the energy for ``k = 1 .. len(spectrum)``.

        A share of the total energy when it is known, else of the energy of the known values.
        """
        return cumulative_energy(self.spectrum, self.total_energy)


def _is_pipeline(model: Any) -> bool:
    return hasattr(model, "steps") and isinstance(model.steps, list)


def svd_step(model: Any) -> Any:
    """The SVD estimator of ``model`` (itself, or the last step of a pipeline).

    Raises
    ------
    InvalidParameterError
        If the model has no fitted 2-D ``components_`` and ``singular_values_``.
    """
    est = model.steps[-1][1] if _is_pipeline(model) else model
    comps = getattr(est, "components_", None)
    if getattr(est, "singular_values_", None) is None or np.ndim(comps) != 2:
        raise InvalidParameterError(
            f"a report describes a fitted SVD embedding (SVDEmbedding, IncrementalSVDEmbedding "
            f"or a pipeline ending in one), a word-vector or a sentence model; got "
            f"{type(est).__name__}{' (not fitted)' if comps is None else ''}.")
    return est


def load_model(path: str | os.PathLike[str]) -> Any:
    """Open a saved model of any family: estimator, word vectors or sentence model.

    Raises
    ------
    StoreNotFoundError
        If nothing is stored at ``path``.
    StoreFormatError
        If the store holds no model (a dataset store, say).
    """
    from ..persistence import load

    kind = (store_header(open_group(path)) or {}).get("kind")
    if kind in ("dataset", "sparse"):
        raise StoreFormatError(
            f"{str(path)!r} is a {KIND_NAMES[kind]}, not a model; pass the model first and the "
            "dataset with --store (fit one with `veob fit STORE MODEL`).")
    if kind not in ("model", "wordvectors", "sentences"):
        what = KIND_NAMES.get(str(kind), "store veob_dask did not write")
        raise StoreFormatError(f"{str(path)!r} is a {what}; a report describes a model from "
                               "`veob fit`, `veob words build` or `veob sentences build`.")
    return load(path)


def model_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(provenance, saved)`` of a saved model: the training input recorded by ``veob fit``
    (empty when none was) and when and by which release the model was written."""
    head = store_header(open_group(path)) or {}
    recorded = head.get("input")
    saved = {k: head[k] for k in ("created", "writer", "format_version") if k in head}
    return (dict(recorded) if isinstance(recorded, dict) else {}), saved


def _rule(param: Any, k: int) -> tuple[str, float | None]:
    if isinstance(param, float) and 0 < param < 1:
        return (f"smallest k whose cumulative energy reaches {param:.1%} "
                f"(n_components={param:g})"), float(param)
    if isinstance(param, float):
        return f"every computed component (n_components={param:g})", None
    return f"n_components={k}, fixed by the caller", None


def _step_name(step: Any) -> str:
    basis = getattr(step, "basis", None)
    return f"{type(step).__name__}({basis})" if isinstance(basis, str) else type(step).__name__


def _describe_svd(model: Any, provenance: dict[str, Any]) -> ModelSummary:
    svd = svd_step(model)
    steps = [s for _, s in model.steps] if _is_pipeline(model) else [model]
    k = int(svd.n_components_)
    spectrum = np.asarray(getattr(svd, "spectrum_", None) if getattr(svd, "spectrum_", None)
                          is not None else svd.singular_values_, dtype=np.float64)
    rule, threshold = _rule(svd.n_components, k)
    image_shape = None
    for step in steps[:-1]:
        shape = getattr(step, "image_shape_", None)
        if shape is not None:
            image_shape = (int(shape[0]), int(shape[1]))
    total = total_energy(svd)
    kept = float(np.sum(spectrum[:k] ** 2) / total) if total else None
    facts: dict[str, Any] = {
        "model": " → ".join(_step_name(s) for s in steps),
        "samples seen": int(getattr(svd, "n_samples_seen_", 0)),
        "features": int(svd.n_features_in_),
        "components kept (k)": k,
        "rule for k": rule,
        "energy kept": None if kept is None else f"{kept:.4f}",
        "singular values computed": int(spectrum.size),
        "centred (PCA)": bool(getattr(svd, "mean_", None) is not None),
        "solver": getattr(svd, "solver_", None),
        "why this solver": getattr(svd, "solver_reason_", None),
    }
    if getattr(svd, "solver_", None) == "randomized":
        facts["power/Krylov passes (n_iter)"] = getattr(svd, "n_iter", None)
        facts["oversamples"] = getattr(svd, "n_oversamples", None)
    return ModelSummary(kind="svd", name=facts["model"], spectrum=spectrum, n_components=k,
                        rule=rule, energy_threshold=threshold, total_energy=total,
                        solver=getattr(svd, "solver_", None),
                        solver_reason=getattr(svd, "solver_reason_", None), facts=facts,
                        provenance=dict(provenance), image_shape=image_shape)


def _text_rule(meta: dict[str, Any], k: int, section: Any) -> str:
    """How a word or sentence model's k was chosen, from what its builder recorded."""
    ratio, computed = meta.get("k_ratio"), meta.get("max_components")
    if ratio and computed:  # the definitions recipe: k from the spectrum
        return (f"singular values at least {float(ratio):g} σ₁ among the {int(computed)} "
                f"computed (k = {k})")
    return f"n_components={k}, set when the model was built" + (
        f" (the paper's §{section})" if section else "")


def _describe_text(model: Any, kind: str, provenance: dict[str, Any]) -> ModelSummary:
    meta = dict(model.metadata)
    if kind == "words":
        spectrum = np.asarray(meta.get("singular_values") or [], dtype=np.float64)
        k, size = int(model.dim), len(model)
        what = f"word vectors ({meta.get('model', 'unknown kind')})"
        facts: dict[str, Any] = {"model": what, "words": size, "dimensions": k}
    else:
        spectrum = np.asarray(model.singular_values, dtype=np.float64)
        k, size = int(model.embedding.shape[1]), len(model)
        what = "sentence model"
        facts = {"model": what, "sentences": size, "dimensions": k,
                 "spectral transform": f"N={meta.get('n')}, m={meta.get('m')}, "
                                       f"basis={meta.get('basis')}",
                 "word model": (meta.get("word_model") or {}).get("model")}
    section = meta.get("section")
    rule = _text_rule(meta, k, section)
    if kind == "words" and "n" in meta:
        facts["spelling transform"] = (f"N={meta['n']}, m={meta.get('m')}, "
                                       f"basis={meta.get('basis')}")
    for key in ("solver", "n_iter", "weighting", "layout", "spelling_components", "n_rows",
                "n_cols", "nnz"):
        if key in meta:
            facts.setdefault(key, meta[key])
    timings = meta.get("timings") or {}
    if "total" in timings:
        facts["build seconds"] = round(float(timings["total"]), 2)
    facts["rule for k"] = rule
    prov = {"source": meta.get("source") or meta.get("corpus")}
    if meta.get("read_report"):
        prov["read report"] = meta["read_report"]
    prov.update(provenance)
    total = meta.get("total_energy")
    return ModelSummary(kind=kind, name=what, spectrum=spectrum, n_components=k, rule=rule,
                        total_energy=None if total is None else float(total),
                        solver=meta.get("solver"), facts=facts,
                        provenance={k_: v for k_, v in prov.items() if v is not None})


def describe(model: Any, provenance: dict[str, Any] | None = None) -> ModelSummary:
    """Summarise a fitted model (see :class:`ModelSummary`).

    Parameters
    ----------
    model : estimator, Pipeline, WordVectors or SentenceModel
        A fitted model (see :func:`load_model`).
    provenance : dict, optional
        What is known about the training input (see :func:`veob_dask.io.describe_store`).

    Returns
    -------
    ModelSummary
    """
    from ..text.sentences import SentenceModel
    from ..text.wordvectors import WordVectors

    if isinstance(model, WordVectors):
        return _describe_text(model, "words", provenance or {})
    if isinstance(model, SentenceModel):
        return _describe_text(model, "sentences", provenance or {})
    return _describe_svd(model, provenance or {})


def query_examples(model: Any, n: int = 3, random_state: int = 0) -> list[str]:
    """A few query words or sentences for a neighbour table.

    The paper's query words (§6.2-6.4) or sentences (§6.5) when the model holds them, then
    seeded picks from the vocabulary (alphabetic words of 4+ letters) or the sentences.
    """
    from ..text.wordvectors import WordVectors

    rng = np.random.default_rng(random_state)
    if isinstance(model, WordVectors):
        out = [w for w in PAPER_WORDS.get(str(model.metadata.get("model")), ()) if w in model]
        for i in rng.permutation(len(model))[:2000]:
            if len(out) >= n:
                break
            w = model.words[int(i)]
            if w.isalpha() and w.islower() and len(w) >= 4 and w not in out:
                out.append(w)
        return out[:n]
    out = []
    for text in PAPER_SENTENCES:
        try:
            model.encode(text)
        except UnknownWordError:
            continue
        out.append(text)
    rows = np.sort(rng.choice(len(model), size=min(len(model), n), replace=False))
    out.extend(t for t in model.text(rows) if t not in out)
    return out[:n]


def neighbor_table(model: Any, queries: list[str], k: int = 8) -> list[dict[str, Any]]:
    """Nearest words (or sentences) of each query: ``{"query", "note", "rows"}`` per query.

    ``rows`` holds ``(name, squared Euclidean distance, source)`` triples, nearest first (the
    paper's tables); ``source`` is the file of a sentence, ``""`` for a word. A query outside
    the vocabulary gets an empty ``rows`` and a ``note`` with spelling suggestions.
    """
    from ..text.wordvectors import WordVectors

    out = []
    for q in queries:
        try:
            if isinstance(model, WordVectors):
                rows = [(w, d, "") for w, d in model.neighbors(q, k)]
            else:
                rows = list(model.neighbors(q, k))
            out.append({"query": q, "note": "", "rows": rows})
        except UnknownWordError as err:
            out.append({"query": q, "note": str(err), "rows": []})
    return out


def embedding_sample(model: Any, n: int = 2000, random_state: int = 0
                     ) -> tuple[np.ndarray, list[str]]:
    """A seeded sample of a word or sentence model's embedding rows, with their names.

    Returns ``(coords, names)``: float64 ``(m, dim)`` coordinates (``m = min(n, rows)``) on
    the model's basis, and each row's word (or sentence text, cut to 40 characters).
    """
    from ..text.wordvectors import WordVectors

    size = len(model)
    rows = np.sort(np.random.default_rng(random_state).choice(size, size=min(n, size),
                                                               replace=False))
    if isinstance(model, WordVectors):
        return np.asarray(model.vectors[rows], dtype=np.float64), [model.words[i] for i in rows]
    emb = model.embedding
    coords = emb.oindex[rows, :] if hasattr(emb, "oindex") else np.asarray(emb)[rows]
    names = [t if len(t) <= 40 else t[:39] + "…" for t in model.text(rows)]
    return np.asarray(coords, dtype=np.float64), names
