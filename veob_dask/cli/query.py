"""``veob query``: nearest neighbours of query vectors in a stored embedding or index."""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import InvalidParameterError
from ..index import ExactIndex, load_index
from ..io import check_output, read_array, write_array
from ..io.store import provenance
from ..runtime import scheduler_context
from ._common import Stages, emit_json
from ._options import add_scheduler


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
        "query", help="k nearest neighbours of query vectors in a stored embedding or index",
        description="Find the k nearest rows (squared Euclidean distance) of EMBEDDING (array X "
        "of a Zarr store) for each query: the rows START:STOP of EMBEDDING itself (--rows) or "
        "array X of another store (--queries, already embedded with the same model). Without "
        "--index the search is exact (blocked brute force, chunk by chunk); with --index it "
        "searches the n_probe nearest cells of an index built by `veob index build` from the "
        "same embedding (a foreign index is refused). Prints the neighbours; --out writes them "
        "to a Zarr store (arrays indices and sq_distances).")
    p.add_argument("embedding", help="embedding store (Zarr group with array X)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--queries", metavar="STORE", help="store whose array X holds the queries")
    src.add_argument("--rows", type=_rows, metavar="START:STOP",
                     help="use rows START:STOP of the embedding as queries")
    p.add_argument("-k", "--k", type=int, default=10, help="neighbours per query (default 10)")
    p.add_argument("--index", metavar="STORE", help="index store from `veob index build`")
    p.add_argument("--n-probe", default=None,
                   help="cells searched per query with --index: an int or 'all' (exact); "
                   "default: the index's own")
    p.add_argument("--out", metavar="STORE", help="write indices and sq_distances to this store")
    p.add_argument("--show", type=int, default=10, help="print at most this many queries")
    add_scheduler(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out store")
    p.add_argument("--json", action="store_true", help="end with one JSON summary line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stages = Stages()
    inputs = [args.embedding, args.queries, args.index]
    if args.out:
        check_output(args.out, overwrite=args.overwrite, inputs=inputs)
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
    if n_probe is not None and n_probe != "all":
        try:
            n_probe = int(n_probe)
        except ValueError as err:
            raise InvalidParameterError(
                f"--n-probe must be an int or 'all'; got {args.n_probe!r}.") from err
    with scheduler_context(args.scheduler):
        with stages.stage("load", "reading queries and index"):
            if args.index:
                index = load_index(args.index, embedding=emb)
            else:
                index = ExactIndex().fit(emb)
            q = np.asarray(queries.compute())
        method = getattr(index, "cell_method", "exact")
        with stages.stage("search", f"{q.shape[0]} queries, k={args.k}, {method}"):
            idx, sq = index.kneighbors(q, args.k, n_probe=n_probe)
    for i in range(min(args.show, q.shape[0])):
        pairs = ", ".join(f"{j} ({d:.4g})" for j, d in zip(idx[i], sq[i], strict=True))
        print(f"query {first + i}: {pairs}")
    if q.shape[0] > args.show:
        print(f"... {q.shape[0] - args.show} more queries")
    if args.out:
        write_array(idx, args.out, name="indices", extra={"sq_distances": sq},
                    overwrite=args.overwrite, inputs=inputs,
                    dims={"indices": ("query", "neighbor"),
                          "sq_distances": ("query", "neighbor")},
                    attrs=provenance(f"veob query {args.embedding}", idx.shape, idx.dtype,
                                     embedding=str(args.embedding), index=args.index,
                                     k=args.k, method=method))
        print(f"wrote {args.out}: indices and sq_distances, shape {idx.shape}")
    if args.json:
        emit_json({"embedding": args.embedding, "index": args.index, "method": method,
                   "n_queries": int(q.shape[0]), "k": args.k, "seconds": stages.total,
                   "stages": stages.seconds})
    return 0
