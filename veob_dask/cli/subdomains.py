"""``veob subdomains``: fit, list, index and query one embedding per subdomain (§9.2).

    veob subdomains fit STORE MODEL --domains KEYS [--metadata FILE] [-k K]
    veob subdomains list MODEL [--where COND]...
    veob subdomains index MODEL STORE INDEX --domains KEYS [--method exact|cells|...]
    veob subdomains query MODEL|INDEX --queries STORE [--where COND]... [--routes R] [-n N]

``KEYS`` names an array of the dataset store (``y``, or one written by ``veob ingest
--domains``) or a file: ``.npy``, or text with one key per line. ``--metadata`` is a JSON
object ``{key: {attribute: value}}`` (or a JSON list of objects with a ``key``), or a CSV file
with a ``key`` column.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np

from ..errors import DataError, InvalidParameterError, StoreFormatError
from ..index import SubdomainIndex
from ..io import check_output, open_group, read_array, read_matrix
from ..io.store import store_header
from ..persistence import load, save
from ..runtime import scheduler_context
from ..subdomain import SubdomainEmbedding
from ..subdomain.metadata import parse_value
from ._common import Stages, add_scheduler_option, emit_json, parse_n_components

INDEX_METHODS = ["exact", "cells", "kmeans", "hnswlib", "faiss-ivf", "faiss-flat"]


def _flat(x: da.Array) -> da.Array:
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:]))) if x.ndim > 2 else x


def read_keys(store: str, spec: str) -> Any:
    """The subdomain keys named by ``--domains``: an array of ``store``, or a file."""
    group = open_group(store)
    if spec in group.array_keys():
        keys = read_array(store, spec)
        if keys.ndim != 1:
            raise DataError(f"--domains {spec!r} of {store!r} must be 1-D (one key per row); "
                            f"got shape {keys.shape}.")
        return keys
    path = Path(spec)
    if not path.is_file():
        raise InvalidParameterError(
            f"--domains must name an array of {store!r} (it holds {sorted(group.array_keys())})"
            f" or a file (.npy, or text with one key per line); got {spec!r}.")
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    try:
        return np.array([int(v) for v in lines], dtype=np.int64)
    except ValueError:
        return np.array(lines)


def read_metadata(path: str | None) -> dict[str, Any] | None:
    """``--metadata`` as ``{key: {attribute: value}}`` from JSON or CSV."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise InvalidParameterError(f"--metadata file {path!r} does not exist.")
    if p.suffix.lower() == ".csv":
        with open(p, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if rows and "key" not in rows[0]:
            raise DataError(f"--metadata CSV {path!r} needs a 'key' column; got "
                            f"{list(rows[0])}.")
        return {r.pop("key"): {a: parse_value(v) for a, v in r.items()} for r in rows}
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"--metadata {path!r} is not valid JSON ({err}).") from err
    if isinstance(doc, list):
        if not all(isinstance(r, dict) and "key" in r for r in doc):
            raise DataError(f"--metadata {path!r}: a JSON list must hold objects with a 'key'.")
        return {str(r["key"]): {a: v for a, v in r.items() if a != "key"} for r in doc}
    if not isinstance(doc, dict):
        raise DataError(f"--metadata {path!r} must be a JSON object {{key: {{...}}}} or a list.")
    return doc


# -- fit -------------------------------------------------------------------------------------
def run_fit(args: argparse.Namespace) -> int:
    stages = Stages(quiet=False)
    check_output(args.model, overwrite=args.overwrite, inputs=[args.store])
    x = _flat(read_matrix(args.store))
    keys = read_keys(args.store, args.domains)
    model = SubdomainEmbedding(args.n_components, solver=args.solver, center=args.center,
                               metadata=read_metadata(args.metadata),
                               memory_budget=args.memory_budget,
                               n_oversamples=args.n_oversamples, n_iter=args.n_iter,
                               random_state=args.seed)
    stages.say(f"input {args.store}: shape {x.shape}, {x.numblocks[0]} chunks; keys "
               f"{args.domains!r}")
    with scheduler_context(args.scheduler), stages.stage("fit", "one basis per subdomain"):
        model.fit(x, domains=keys)
    with stages.stage("save", f"saving model to {args.model}"):
        save(model, args.model, overwrite=args.overwrite)
    summary = {"store": args.store, "model": args.model, "n_domains": int(model.domains_.size),
               "n_components": model.n_components_, "n_features": model.n_features_in_,
               "n_samples": int(model.n_samples_.sum()), "solver": model.solver_,
               "solver_reason": model.solver_reason_, "passes": model.n_passes_,
               "memory_estimate_mb": round(model.memory_estimate_ / 2**20, 1),
               "seconds": stages.total}
    if args.json:
        emit_json(summary)
        return 0
    print(f"solver: {model.solver_} ({model.solver_reason_}); {model.n_passes_} pass(es), "
          f"about {summary['memory_estimate_mb']} MiB")
    print(f"{model.domains_.size} subdomains x {model.n_components_} components of "
          f"{model.n_features_in_} features written to {args.model} in {stages.total:.2f} s")
    return 0


# -- list ------------------------------------------------------------------------------------
def run_list(args: argparse.Namespace) -> int:
    model = load(args.model)
    if not isinstance(model, SubdomainEmbedding):
        raise StoreFormatError(f"{args.model!r} holds a {type(model).__name__}, not a "
                               "subdomain model (veob subdomains fit).")
    keys = set(model.select(args.where).tolist())
    rows = []
    for j, row in enumerate(model.metadata_):
        if row["key"] not in keys:
            continue
        kept = float(model.explained_energy_ratio_[j, :model.ranks_[j]].sum())
        rows.append({**row, "rank": int(model.ranks_[j]), "energy_kept": round(kept, 4)})
    if args.json:
        emit_json({"model": args.model, "n_domains": int(model.domains_.size),
                   "selected": len(rows), "domains": rows})
        return 0
    print(f"{args.model}: {model.domains_.size} subdomains, {model.n_features_in_} features, "
          f"{model.n_components_} components ({model.solver_}); {len(rows)} selected")
    for row in rows:
        attrs = {a: v for a, v in row.items() if a not in ("key", "n_samples", "rank",
                                                           "energy_kept")}
        print(f"  {row['key']!s:>12}  rows {row['n_samples']:>9}  rank {row['rank']:>4}  "
              f"energy {row['energy_kept']:.4f}  {json.dumps(attrs) if attrs else ''}")
    return 0


# -- index -----------------------------------------------------------------------------------
def run_index(args: argparse.Namespace) -> int:
    stages = Stages()
    check_output(args.index, overwrite=args.overwrite, inputs=[args.store, args.model])
    model = load(args.model)
    x = _flat(read_matrix(args.store))
    keys = read_keys(args.store, args.domains)
    params = {} if args.method == "exact" else {"random_state": args.seed}
    index = SubdomainIndex(args.method, routes=args.routes, n_probe=args.n_probe,
                           params=params if args.method in ("cells", "kmeans") else None)
    with scheduler_context(args.scheduler), stages.stage(
            "build", f"{args.method} index per subdomain over {args.store} {x.shape}"):
        index.fit(model, x, keys)
    with stages.stage("write", f"writing {args.index}"):
        index.save(args.index, overwrite=args.overwrite)
    sizes = np.diff(index.offsets_)
    if args.json:
        emit_json({"model": args.model, "index": args.index, "method": args.method,
                   "n_rows": index.n_rows_, "n_domains": int(sizes.size),
                   "seconds": stages.total})
        return 0
    print(f"wrote {args.index}: {args.method} indexes over {index.n_rows_} rows in "
          f"{sizes.size} subdomains (sizes {sizes.min()}-{sizes.max()}) in {stages.total:.2f} s")
    return 0


# -- query -----------------------------------------------------------------------------------
def _open_model_or_index(path: str) -> tuple[SubdomainEmbedding, SubdomainIndex | None]:
    header = store_header(open_group(path)) or {}
    if header.get("kind") == "index":
        index = SubdomainIndex.load(path)
        return index.model_, index
    model = load(path)
    if not isinstance(model, SubdomainEmbedding):
        raise StoreFormatError(f"{path!r} holds a {type(model).__name__}; pass a subdomain "
                               "model (veob subdomains fit) or index (veob subdomains index).")
    return model, None


def _label(v: Any) -> str:
    return str(v.item() if isinstance(v, np.generic) else v)


def run_query(args: argparse.Namespace) -> int:
    model, index = _open_model_or_index(args.model)
    q = _flat(read_matrix(args.queries))
    with scheduler_context(args.scheduler):
        (q,) = dask.compute(q)
    q = np.asarray(q, dtype=np.float64)
    if args.neighbors is not None and index is None:
        raise InvalidParameterError(
            f"-n/--neighbors needs an index store; {args.model!r} is a model. Build one with "
            "veob subdomains index MODEL STORE INDEX --domains KEYS.")
    where = args.where or None
    out: dict[str, Any] = {"model": args.model, "queries": args.queries,
                           "n_queries": int(q.shape[0]), "where": args.where}
    if index is None:
        n_routes = args.routes or 1
        routes, shares = model.route(q, n_routes, where=where)
        out.update(routes=routes.tolist(), shares=np.round(shares, 6).tolist())
        lines = [f"query {i}: " + ", ".join(f"{_label(r)} ({s:.4f})"
                                            for r, s in zip(routes[i], shares[i], strict=True))
                 for i in range(q.shape[0])]
    else:
        res = index.search(q, args.neighbors or 10, routes=args.routes, where=where,
                           n_probe=args.n_probe)
        out.update(routes=res.routes.tolist(), shares=np.round(res.shares, 6).tolist(),
                   indices=res.indices.tolist(), sq_distances=res.sq_distances.tolist(),
                   domains=res.domains.tolist())
        lines = []
        for i in range(q.shape[0]):
            lines.append(f"query {i}: routes " + ", ".join(
                f"{_label(r)} ({s:.4f})" for r, s in zip(res.routes[i], res.shares[i],
                                                         strict=True)))
            lines.append("  " + ", ".join(
                f"{j} [{_label(c)}] {d:.4g}" for j, c, d in zip(
                    res.indices[i], res.domains[i], res.sq_distances[i], strict=True) if j >= 0))
    if args.json:
        emit_json(out)
        return 0
    per_query = 1 if index is None else 2
    for line in lines[: per_query * args.show]:
        print(line)
    if q.shape[0] > args.show:
        print(f"... {q.shape[0] - args.show} more queries")
    return 0


# -- parsers ---------------------------------------------------------------------------------
def _add_common(p: argparse.ArgumentParser) -> None:
    add_scheduler_option(p)
    p.add_argument("--json", action="store_true", help="print only one JSON line on stdout")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "subdomains", help="one embedding per subdomain: fit, list, index, query (§9.2)",
        description="Subdomains (§9.2): one orthonormal basis per subdomain key of the rows, "
        "fitted in one pass per group of subdomains under a memory budget; metadata per "
        "subdomain; queries routed by a metadata filter (--where) or by content to the "
        "subdomains whose bases hold the most of their energy (--routes); one index per "
        "subdomain and one merged ranking.")
    ss = p.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)

    f = ss.add_parser(
        "fit", help="fit one basis per subdomain of a dataset store",
        description="Fit one orthonormal basis per subdomain key of the rows of STORE, in one "
        "pass per group of subdomains (as many subdomains per pass as --memory-budget allows), "
        "and save the model with its metadata table. The solver and the reason it was chosen "
        "are printed.")
    f.add_argument("store", help="dataset store (from veob ingest)")
    f.add_argument("model", help="output model store")
    f.add_argument("--domains", required=True, metavar="KEYS",
                   help="subdomain keys: an array of STORE (e.g. y) or a .npy/text file")
    f.add_argument("--metadata", metavar="FILE",
                   help="JSON {key: {attr: value}} or CSV with a 'key' column")
    f.add_argument("-k", "--n-components", type=parse_n_components, default=30,
                   help="components per subdomain (int) or energy fraction (0-1]; default 30")
    f.add_argument("--solver", choices=["auto", "gram", "incremental", "randomized"],
                   default="auto", help="per-subdomain solver (default auto)")
    f.add_argument("--center", action="store_true", help="subtract each subdomain's means")
    f.add_argument("--memory-budget", default="1GiB",
                   help="bytes the fit may hold (e.g. 512MiB, 4GB; default 1GiB)")
    f.add_argument("--n-oversamples", type=int, default=10)
    f.add_argument("--n-iter", type=int, default=2)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--overwrite", action="store_true", help="replace an existing model store")
    _add_common(f)
    f.set_defaults(func=run_fit)

    ls = ss.add_parser("list", help="list the subdomains of a model and their metadata")
    ls.add_argument("model", help="model store (veob subdomains fit)")
    ls.add_argument("--where", action="append", metavar="COND",
                    help="filter, e.g. 'lang=en', 'year>=2010', 'band in 1,2' (repeatable)")
    ls.add_argument("--json", action="store_true", help="print only one JSON line on stdout")
    ls.set_defaults(func=run_list)

    ix = ss.add_parser("index", help="build one index per subdomain over a dataset store")
    ix.add_argument("model", help="model store (veob subdomains fit)")
    ix.add_argument("store", help="dataset store whose rows are indexed")
    ix.add_argument("index", help="output index store")
    ix.add_argument("--domains", required=True, metavar="KEYS",
                    help="subdomain keys of STORE's rows (array name or file)")
    ix.add_argument("--method", choices=INDEX_METHODS, default="exact",
                    help="index in each subdomain (default exact)")
    ix.add_argument("--n-probe", type=_n_probe, default=8,
                    help="cells probed per subdomain by default (int or 'all')")
    ix.add_argument("--routes", type=int, default=None,
                    help="default subdomains searched per query (default: 1, or every match "
                    "of --where)")
    ix.add_argument("--seed", type=int, default=0)
    ix.add_argument("--overwrite", action="store_true", help="replace an existing index store")
    _add_common(ix)
    ix.set_defaults(func=run_index)

    qy = ss.add_parser("query", help="route queries, or search an index across subdomains")
    qy.add_argument("model", metavar="MODEL|INDEX",
                    help="model store (routes only) or index store (routes and neighbours)")
    qy.add_argument("--queries", required=True, metavar="STORE",
                    help="dataset store whose rows are the queries (original features)")
    qy.add_argument("--where", action="append", metavar="COND",
                    help="only subdomains whose metadata match (repeatable, all must hold)")
    qy.add_argument("--routes", type=int, default=None,
                    help="subdomains per query, best first by captured energy")
    qy.add_argument("-n", "--neighbors", type=int, default=None,
                    help="neighbours per query (needs an index store; default 10)")
    qy.add_argument("--n-probe", type=_n_probe, default=None,
                    help="cells probed per subdomain (cell indexes)")
    qy.add_argument("--show", type=int, default=10, help="print at most this many queries")
    _add_common(qy)
    qy.set_defaults(func=run_query)


def _n_probe(text: str) -> int | str:
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"must be an int or 'all'; got {text!r}") from err

