"""``veob index build``: build a cell index (§5 tree or k-means cells) over a stored embedding."""

from __future__ import annotations

import argparse

from ..index import CellIndex
from ..io import check_output, read_array
from ._common import Stages, computing
from ._options import (
    add_json,
    add_output,
    add_overwrite,
    add_scheduler,
    add_seed,
    int_or,
    nonnegative_int,
    output_path,
    positive_int,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "index", help="build a nearest-neighbour cell index over an embedding store",
        description="Index commands. `veob index build EMBEDDING -o INDEX` partitions the embedding "
        "(array X of a Zarr store, e.g. written by `veob transform`) into Voronoi cells - the "
        "paper's partition tree (§5) or k-means - and writes the index as a Zarr group that "
        "`veob query --index` searches.")
    isub = p.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    b = isub.add_parser("build", help="build an index store from an embedding store",
                        description="Build a cell index from array X of EMBEDDING and write it "
                        "to -o/--out INDEX (written to a temporary path, then renamed).")
    b.add_argument("embedding", help="embedding store (Zarr group with array X)")
    add_output(b, "index store to write", metavar="INDEX", legacy_positional=True)
    b.add_argument("--method", choices=["cells", "tree", "kmeans"], default="cells",
                   help="cells: the §5 partition tree (alias: tree); kmeans: k-means cells")
    b.add_argument("--n-probe", type=positive_int, default=8,
                   help="default number of cells searched per query (default 8)")
    b.add_argument("--max-depth", type=nonnegative_int, default=None,
                   help="tree split levels (default: about sqrt(n) cells)")
    b.add_argument("--min-samples", type=positive_int, default=100,
                   help="tree nodes with at most this many rows are not split (default 100)")
    b.add_argument("--n-clusters", type=int_or("auto"), default="auto",
                   help="k-means cells (default: sqrt(n))")
    b.add_argument("--max-samples", default="auto", type=int_or("auto", "all"),
                   help="rows the cells are trained on: an int, 'auto' (256 per cell) or 'all'")
    add_seed(b)
    add_scheduler(b)
    add_overwrite(b, "the index store")
    add_json(b)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = output_path(args)
    check_output(out, overwrite=args.overwrite, inputs=[args.embedding])
    stages = Stages(json=args.json)
    emb = read_array(args.embedding)
    max_samples = None if args.max_samples == "all" else args.max_samples
    method = "tree" if args.method in ("cells", "tree") else "kmeans"
    index = CellIndex(method, n_probe=args.n_probe, max_depth=args.max_depth,
                      min_samples=args.min_samples, n_clusters=args.n_clusters,
                      max_samples=max_samples, random_state=args.seed)
    with computing(args, stages), stages.stage("build", f"{method} cells over "
                                                         f"{args.embedding} {emb.shape}"):
        index.fit(emb)
    with stages.stage("write", f"writing {out}"):
        index.save(out, overwrite=args.overwrite)
    counts = index.partition_.cell_counts_
    median = int(sorted(counts)[len(counts) // 2])
    stages.show(f"wrote {out}: {index.n_cells_} {method} cells over {index.n_samples_seen_} rows "
                f"(cell sizes {counts.min()}-{counts.max()}, median {median}) in "
                f"{stages.total:.2f} s")
    stages.emit({"embedding": args.embedding, "index": out, "method": method,
                 "n_cells": index.n_cells_, "n_rows": index.n_samples_seen_,
                 "cell_sizes": {"min": counts.min(), "median": median, "max": counts.max()},
                 "seconds": stages.total, "stages": stages.seconds})
    return 0
