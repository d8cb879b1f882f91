"""``veob query``: nearest neighbours of query vectors in a stored embedding or index."""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import InvalidParameterError
from ..index import ExactIndex, load_index
from ..io import check_output, read_array, write_array
from ..io.store import provenance
from ._common import Stages, computing
from ._options import (
    add_json,
    add_neighbors,
    add_output,
    add_overwrite,
    add_scheduler,
    int_or,
    nonnegative_int,
    output_path,
)


def _rows(text: str) -> tuple[int, int]:
    start, sep, stop = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"--rows must look like START:STOP; got {text!r}")
    try:
        return int(start or 0), int(stop)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--rows must look like START:STOP; got {text!r}") from err


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "query", help="nearest neighbours of query vectors in a stored embedding or index",
        description="Find the N nearest rows (squared Euclidean distance) of EMBEDDING (array X "
        "of a Zarr store) for each query: the rows START:STOP of EMBEDDING itself (--rows) or "
        "array X of another store (--queries, already embedded with the same model). Without "
        "--index the search is exact (blocked brute force, chunk by chunk); with --index it "
        "searches the n_probe nearest cells of an index built by `veob index build` from the "
        "same embedding (a foreign index is refused). Prints the neighbours; -o/--out writes "
        "them to a Zarr store (arrays indices and sq_distances); --json prints them as JSON.")
    p.add_argument("embedding", help="embedding store (Zarr group with array X)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--queries", metavar="STORE", help="store whose array X holds the queries")
    src.add_argument("--rows", type=_rows, metavar="START:STOP",
                     help="use rows START:STOP of the embedding as queries")
    add_neighbors(p, 10, legacy_k=True)
    p.add_argument("--index", metavar="STORE", help="index store from `veob index build`")
    p.add_argument("--n-probe", default=None, type=int_or("all"),
                   help="cells searched per query with --index: an int or 'all' (exact); "
                   "default: the index's own")
    add_output(p, "write indices and sq_distances to this store", metavar="STORE",
               required=False)
    p.add_argument("--show", type=nonnegative_int, default=10,
                   help="print at most this many queries")
    add_scheduler(p)
    add_overwrite(p, "the -o/--out store")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = output_path(args)
    stages = Stages(json=args.json)
    inputs = [args.embedding, args.queries, args.index]
    if out:
        check_output(out, overwrite=args.overwrite, inputs=inputs)
    emb = read_array(args.embedding)
    if args.rows is not None:
        start, stop = args.rows
        if not 0 <= start < stop <= emb.shape[0]:
            raise InvalidParameterError(
                f"--rows must satisfy 0 <= START < STOP <= {emb.shape[0]} (the embedding's row "
                f"count); got {start}:{stop}.")
        queries, first = emb[start:stop], start
    else:
        queries, first = read_array(args.queries), 0
    n_probe = args.n_probe
    with computing(args, stages):
        with stages.stage("load", "reading queries and index"):
            if args.index:
                index = load_index(args.index, embedding=emb)
            else:
                index = ExactIndex().fit(emb)
            q = np.asarray(queries.compute())
        method = getattr(index, "cells", "exact")
        with stages.stage("search", f"{q.shape[0]} queries, n={args.neighbors}, {method}"):
            sq, idx = index.kneighbors(q, args.neighbors, n_probe=n_probe)
    for i in range(min(args.show, q.shape[0])):
        pairs = ", ".join(f"{j} ({d:.4g})" for j, d in zip(idx[i], sq[i], strict=True))
        stages.show(f"query {first + i}: {pairs}")
    if q.shape[0] > args.show:
        stages.show(f"... {q.shape[0] - args.show} more queries")
    if out:
        write_array(idx, out, name="indices", extra={"sq_distances": sq},
                    overwrite=args.overwrite, inputs=inputs,
                    dims={"indices": ("query", "neighbor"),
                          "sq_distances": ("query", "neighbor")},
                    attrs=provenance(f"veob query {args.embedding}", idx.shape, idx.dtype,
                                     embedding=str(args.embedding), index=args.index,
                                     k=args.neighbors, method=method))
        stages.show(f"wrote {out}: indices and sq_distances, shape {idx.shape}")
    stages.emit({"embedding": args.embedding, "index": args.index, "method": method,
                 "out": out, "n_queries": int(q.shape[0]), "neighbors": args.neighbors,
                 "queries": list(range(first, first + q.shape[0])),
                 "indices": idx, "sq_distances": sq,
                 "seconds": stages.total, "stages": stages.seconds})
    return 0
