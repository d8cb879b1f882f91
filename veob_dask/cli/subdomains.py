"""``veob subdomains``: fit, list, index and query one embedding per subdomain (§9.2).

    veob subdomains fit STORE -o MODEL --domains KEYS [--metadata FILE] [-k K]
    veob subdomains list MODEL [--where COND]...
    veob subdomains index MODEL STORE -o INDEX --domains KEYS [--method exact|cells|...]
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
from ..io import check_output, open_group, read_array, read_matrix, write_array
from ..io.store import provenance, store_header
from ..persistence import load, save
from ..subdomain import SubdomainEmbedding
from ..subdomain.metadata import parse_value
from ._common import Stages, computing
from ._options import (
    add_json,
    add_n_components,
    add_neighbors,
    add_output,
    add_overwrite,
    add_scheduler,
    add_seed,
    output_path,
)

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
    out = output_path(args)
    check_output(out, overwrite=args.overwrite, inputs=[args.store])
    stages = Stages(json=args.json)
    x = _flat(read_matrix(args.store))
    keys = read_keys(args.store, args.domains)
    model = SubdomainEmbedding(args.n_components, solver=args.solver, center=args.center,
                               metadata=read_metadata(args.metadata),
                               memory_budget=args.memory_budget,
                               n_oversamples=args.n_oversamples, n_iter=args.n_iter,
                               random_state=args.seed)
    stages.say(f"input {args.store}: shape {x.shape}, {x.numblocks[0]} chunks; keys "
               f"{args.domains!r}")
    with computing(args, stages), stages.stage("fit", "one basis per subdomain"):
        model.fit(x, domains=keys)
    with stages.stage("save", f"saving model to {out}"):
        save(model, out, overwrite=args.overwrite)
    estimate = round(model.memory_estimate_ / 2**20, 1)
    stages.show(f"solver: {model.solver_} ({model.solver_reason_}); {model.n_passes_} pass(es), "
                f"at most about {estimate} MiB")
    stages.show(f"{model.domains_.size} subdomains x {model.n_components_} components of "
                f"{model.n_features_in_} features written to {out} in {stages.total:.2f} s")
    stages.emit({"store": args.store, "model": out, "n_domains": int(model.domains_.size),
                 "n_components": model.n_components_, "n_features": model.n_features_in_,
                 "n_samples": int(model.n_samples_seen_), "solver": model.solver_,
                 "solver_reason": model.solver_reason_, "passes": model.n_passes_,
                 "memory_estimate_mb": estimate, "seconds": stages.total})
    return 0


# -- list ------------------------------------------------------------------------------------
def _model(path: str) -> SubdomainEmbedding:
    model = load(path)
    if not isinstance(model, SubdomainEmbedding):
        raise StoreFormatError(f"{path!r} holds a {type(model).__name__}, not a subdomain "
                               "model (veob subdomains fit).")
    return model


def run_list(args: argparse.Namespace) -> int:
    stages = Stages(json=args.json)
    model = _model(args.model)
    keys = set(model.select(args.where).tolist())
    rows = []
    for j, row in enumerate(model.metadata_):
        if row["key"] not in keys:
            continue
        kept = float(model.explained_energy_ratio_[j, :model.ranks_[j]].sum())
        rows.append({**row, "rank": int(model.ranks_[j]), "energy_kept": round(kept, 4)})
    stages.show(f"{args.model}: {model.domains_.size} subdomains, {model.n_features_in_} "
                f"features, {model.n_components_} components ({model.solver_}); {len(rows)} "
                "selected")
    for row in rows:
        attrs = {a: v for a, v in row.items()
                 if a not in ("key", "n_samples", "rank", "energy_kept")}
        stages.show(f"  {row['key']!s:>12}  rows {row['n_samples']:>9}  rank {row['rank']:>4}  "
                    f"energy {row['energy_kept']:.4f}  {json.dumps(attrs) if attrs else ''}")
    stages.emit({"model": args.model, "n_domains": int(model.domains_.size),
                 "selected": len(rows), "domains": rows})
    return 0


# -- index -----------------------------------------------------------------------------------
def run_index(args: argparse.Namespace) -> int:
    out = output_path(args)
    check_output(out, overwrite=args.overwrite, inputs=[args.store, args.model])
    stages = Stages(json=args.json)
    model = _model(args.model)
    x = _flat(read_matrix(args.store))
    keys = read_keys(args.store, args.domains)
    params = {"random_state": args.seed} if args.method in ("cells", "kmeans") else None
    index = SubdomainIndex(args.method, routes=args.routes, n_probe=args.n_probe, params=params)
    with computing(args, stages), stages.stage(
            "build", f"{args.method} index per subdomain over {args.store} {x.shape}"):
        index.fit(model, x, keys)
    with stages.stage("write", f"writing {out}"):
        index.save(out, overwrite=args.overwrite)
    sizes = np.diff(index.offsets_)
    stages.show(f"wrote {out}: {args.method} indexes over {index.n_rows_} rows in "
                f"{sizes.size} subdomains (sizes {sizes.min()}-{sizes.max()}) in "
                f"{stages.total:.2f} s")
    stages.emit({"model": args.model, "index": out, "method": args.method,
                 "n_rows": index.n_rows_, "n_domains": int(sizes.size),
                 "seconds": stages.total})
    return 0


# -- query -----------------------------------------------------------------------------------
def _open_model_or_index(path: str) -> tuple[SubdomainEmbedding, SubdomainIndex | None]:
    header = store_header(open_group(path)) or {}
    if header.get("kind") == "index":
        index = SubdomainIndex.load(path)
        return index.model_, index
    return _model(path), None


def _label(v: Any) -> str:
    return str(v.item() if isinstance(v, np.generic) else v)


def run_query(args: argparse.Namespace) -> int:
    out = output_path(args)
    stages = Stages(json=args.json)
    if out:
        check_output(out, overwrite=args.overwrite, inputs=[args.model, args.queries])
    model, index = _open_model_or_index(args.model)
    if out and index is None:
        raise InvalidParameterError(
            f"-o/--out writes neighbours, which need an index store; {args.model!r} is a "
            "model. Build one with veob subdomains index MODEL STORE -o INDEX --domains KEYS.")
    with computing(args, stages):
        (q,) = dask.compute(_flat(read_matrix(args.queries)))
    q = np.asarray(q, dtype=np.float64)
    where = args.where or None
    doc: dict[str, Any] = {"model": args.model, "queries": args.queries, "where": args.where,
                           "n_queries": int(q.shape[0])}
    if index is None:
        routes, shares = model.route(q, args.routes or 1, where=where)
        doc.update(routes=routes, shares=shares)
        for i in range(min(args.show, q.shape[0])):
            stages.show(f"query {i}: " + ", ".join(
                f"{_label(r)} ({s:.4f})" for r, s in zip(routes[i], shares[i], strict=True)))
        stages.say("(a model store: routes only; neighbours need `veob subdomains index`)")
    else:
        res = index.search(q, args.neighbors, routes=args.routes, where=where,
                           n_probe=args.n_probe)
        doc.update(neighbors=args.neighbors, routes=res.routes, shares=res.shares,
                   indices=res.indices, sq_distances=res.sq_distances, domains=res.domains)
        for i in range(min(args.show, q.shape[0])):
            stages.show(f"query {i}: routes " + ", ".join(
                f"{_label(r)} ({s:.4f})" for r, s in zip(res.routes[i], res.shares[i],
                                                         strict=True)))
            stages.show("  " + ", ".join(
                f"{j} [{_label(c)}] {d:.4g}" for j, c, d in zip(
                    res.indices[i], res.domains[i], res.sq_distances[i], strict=True) if j >= 0))
        if out:
            write_array(res.indices, out, name="indices",
                        extra={"sq_distances": res.sq_distances, "domains": res.domains},
                        overwrite=args.overwrite, inputs=[args.model, args.queries],
                        dims={"indices": ("query", "neighbor"),
                              "sq_distances": ("query", "neighbor"),
                              "domains": ("query", "neighbor")},
                        attrs=provenance(f"veob subdomains query {args.model}",
                                         res.indices.shape, res.indices.dtype,
                                         where=args.where, routes=args.routes))
            stages.show(f"wrote {out}: indices, sq_distances and domains, shape "
                        f"{res.indices.shape}")
    if q.shape[0] > args.show:
        stages.show(f"... {q.shape[0] - args.show} more queries")
    stages.emit({**doc, "out": out, "seconds": stages.total})
    return 0


# -- parsers ---------------------------------------------------------------------------------
def _n_probe(text: str) -> int | str:
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"must be an int or 'all'; got {text!r}") from err


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument("--where", action="append", metavar="COND",
                   help="only subdomains whose metadata match, e.g. 'lang=en', 'year>=2010', "
                   "'band in 1,2' (repeatable: all must hold)")


def _register_fit(ss: argparse._SubParsersAction) -> None:
    f = ss.add_parser(
        "fit", help="fit one basis per subdomain of a dataset store",
        description="Fit one orthonormal basis per subdomain key of the rows of STORE, in one "
        "pass per group of subdomains (as many subdomains per pass as --memory-budget allows), "
        "and save the model with its metadata table. The solver and the reason it was chosen "
        "are printed.")
    f.add_argument("store", help="dataset store (from veob ingest)")
    add_output(f, "model store to write", metavar="MODEL")
    f.add_argument("--domains", required=True, metavar="KEYS",
                   help="subdomain keys: an array of STORE (e.g. y, or domains from veob "
                   "ingest --domains) or a .npy/text file")
    f.add_argument("--metadata", metavar="FILE",
                   help="JSON {key: {attr: value}} or CSV with a 'key' column")
    add_n_components(f, 30, what="components per subdomain")
    f.add_argument("--solver", choices=["auto", "gram", "incremental", "randomized"],
                   default="auto", help="per-subdomain solver (default auto)")
    f.add_argument("--center", action="store_true", help="subtract each subdomain's means")
    f.add_argument("--memory-budget", default="1GiB",
                   help="bytes the fit may hold (e.g. 512MiB, 4GB; default 1GiB)")
    f.add_argument("--n-oversamples", type=int, default=10,
                   help="extra working rank of the approximate solvers (default 10)")
    f.add_argument("--n-iter", type=int, default=2,
                   help="power steps of the randomized solver (default 2)")
    add_seed(f)
    add_scheduler(f)
    add_overwrite(f, "the model store")
    add_json(f)
    f.set_defaults(func=run_fit)


def _register_index(ss: argparse._SubParsersAction) -> None:
    ix = ss.add_parser(
        "index", help="build one index per subdomain over a dataset store",
        description="Embed every row of STORE in its own subdomain's basis and build one index "
        "per subdomain (exact, cells of the §5 tree, k-means, or a vector-database adapter); "
        "write them, with the model, to -o/--out INDEX for `veob subdomains query`.")
    ix.add_argument("model", help="model store (veob subdomains fit)")
    ix.add_argument("store", help="dataset store whose rows are indexed")
    add_output(ix, "index store to write", metavar="INDEX")
    ix.add_argument("--domains", required=True, metavar="KEYS",
                    help="subdomain keys of STORE's rows (array name or file)")
    ix.add_argument("--method", choices=INDEX_METHODS, default="exact",
                    help="index in each subdomain (default exact)")
    ix.add_argument("--n-probe", type=_n_probe, default=8,
                    help="cells probed per subdomain by default (int or 'all'; default 8)")
    ix.add_argument("--routes", type=int, default=None,
                    help="default subdomains searched per query (default: 1, or every match "
                    "of --where)")
    add_seed(ix)
    add_scheduler(ix)
    add_overwrite(ix, "the index store")
    add_json(ix)
    ix.set_defaults(func=run_index)


def _register_query(ss: argparse._SubParsersAction) -> None:
    qy = ss.add_parser(
        "query", help="route queries, or search an index across subdomains",
        description="Route each row of --queries (original features) to the subdomains that "
        "match --where and hold most of its energy (--routes, best first, with the share they "
        "hold). Given an index store, also search the routed subdomains and print one merged "
        "list of -n/--neighbors rows ranked by the squared distance from the query to each "
        "row's reconstruction in its subdomain; -o/--out writes it to a store.")
    qy.add_argument("model", metavar="MODEL|INDEX",
                    help="model store (routes only) or index store (routes and neighbours)")
    qy.add_argument("--queries", required=True, metavar="STORE",
                    help="dataset store whose rows are the queries")
    _where(qy)
    qy.add_argument("--routes", type=int, default=None,
                    help="subdomains per query, best first by captured energy (default: 1, or "
                    "every match of --where with an index)")
    add_neighbors(qy, 10)
    qy.add_argument("--n-probe", type=_n_probe, default=None,
                    help="cells probed per subdomain (cell indexes; default: the index's own)")
    add_output(qy, "write indices, sq_distances and domains to this store", metavar="STORE",
               required=False)
    qy.add_argument("--show", type=int, default=10, help="print at most this many queries")
    add_scheduler(qy)
    add_overwrite(qy, "the -o/--out store")
    add_json(qy)
    qy.set_defaults(func=run_query)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "subdomains", help="one embedding per subdomain: fit, list, index, query (§9.2)",
        description="Subdomains (§9.2): one orthonormal basis per subdomain key of the rows, "
        "fitted in one pass per group of subdomains under a memory budget; metadata per "
        "subdomain; queries routed by a metadata filter (--where) or by content to the "
        "subdomains whose bases hold the most of their energy (--routes); one index per "
        "subdomain and one merged ranking.")
    ss = p.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    _register_fit(ss)
    ls = ss.add_parser("list", help="list the subdomains of a model and their metadata",
                       description="List the subdomains of MODEL (key, rows, rank, energy "
                       "kept, metadata), those matching --where only.")
    ls.add_argument("model", help="model store (veob subdomains fit)")
    _where(ls)
    add_json(ls)
    ls.set_defaults(func=run_list)
    _register_index(ss)
    _register_query(ss)
