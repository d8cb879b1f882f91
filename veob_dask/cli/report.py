"""``veob report``: one self-contained HTML page showing a fitted model (and a store through it)."""

from __future__ import annotations

import argparse
import importlib.util

from ..errors import MissingDependencyError
from ._common import Stages, computing
from ._options import (
    add_json,
    add_neighbors,
    add_output,
    add_overwrite,
    add_scheduler,
    add_seed,
    output_path,
    positive_int,
)

PLOT_HINT = "pip install 'veob_dask[plot]'"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="an HTML page showing what was fitted: spectrum, k, map, images",
        description="Write one self-contained HTML file (figures embedded, no network needed) "
        "about a fitted model: the singular-value spectrum and cumulative energy with the chosen "
        "k and the rule that chose it, the solver and why, and the training input's provenance. "
        "With --store (SVD models), one bounded pass over the store adds a 2-D map of a row "
        "sample (first two components and t-SNE, or UMAP when installed; coloured by --labels), "
        "the reconstruction error as components are added and, for images, originals beside "
        "their reconstructions and the first components as images. Word and sentence models "
        "get neighbour tables. Needs matplotlib (" + PLOT_HINT + ").")
    p.add_argument("model", help="model store (from `veob fit`, `veob words build` or "
                   "`veob sentences build`)")
    add_output(p, "the HTML file to write", metavar="REPORT")
    p.add_argument("--store", help="dataset store to read once for the data figures (SVD models)")
    p.add_argument("--labels", metavar="NAME", help="label array of --store colouring the map "
                   "(e.g. y)")
    p.add_argument("--title", metavar="TEXT", help="page title (default: from the model path)")
    p.add_argument("--sample", type=positive_int, default=2000, metavar="N",
                   help="rows sampled for the map (default 2000)")
    p.add_argument("--map-rows", type=positive_int, default=1000, metavar="N",
                   help="sampled rows put through t-SNE/UMAP (default 1000)")
    p.add_argument("--projection", choices=("auto", "tsne", "umap", "none"), default="auto",
                   help="neighbourhood-preserving map: auto = UMAP if installed, else t-SNE")
    p.add_argument("--query", action="append", metavar="TEXT",
                   help="word or sentence for a neighbour table (repeatable; default: the "
                   "paper's queries, else seeded picks)")
    add_neighbors(p, 8, what="rows of each neighbour table, i.e. neighbours")
    add_seed(p)
    add_scheduler(p)
    add_overwrite(p, "the report file (a veob report is replaced anyway; anything else only "
                  "with this flag)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("matplotlib") is None:
        raise MissingDependencyError(f"veob report draws with matplotlib, which is not "
                                     f"installed; install it with {PLOT_HINT}.")
    from ..report import build_report, check_report_path

    out = output_path(args)
    stages = Stages(json=args.json)
    check_report_path(out, overwrite=args.overwrite)
    with computing(args, stages), stages.stage(
            "report", f"figures of {args.model}" + (f" and one pass over {args.store}"
                                                    if args.store else "")):
        rep = build_report(args.model, store=args.store, labels=args.labels, title=args.title,
                           n_sample=args.sample, map_rows=args.map_rows,
                           projection=args.projection, queries=args.query,
                           n_neighbors=args.neighbors, random_state=args.seed)
    path = rep.save(out, overwrite=args.overwrite)
    times = ", ".join(f"{k} {v:.2f} s" for k, v in rep.seconds.items())
    stages.show(f"report written to {path} ({len(rep.figures)} figures; {times})")
    stages.emit({"report": str(path), "model": args.model, "store": args.store,
                 "kind": rep.summary.kind, "n_components": rep.summary.n_components,
                 "rule": rep.summary.rule, "figures": list(rep.figures),
                 "seconds": rep.seconds, "stage_seconds": stages.seconds})
    return 0
