"""``veob report``: one self-contained HTML page showing a fitted model (and a store through it)."""

from __future__ import annotations

import argparse
import importlib.util

from ..errors import MissingDependencyError
from ..runtime import scheduler_context
from ._common import add_scheduler_option, emit_json

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
    p.add_argument("--out", required=True, metavar="REPORT.html", help="HTML file to write")
    p.add_argument("--store", help="dataset store to read once for the data figures (SVD models)")
    p.add_argument("--labels", metavar="NAME", help="label array of --store colouring the map "
                   "(e.g. y)")
    p.add_argument("--title", help="page title (default: from the model path)")
    p.add_argument("--sample", type=int, default=2000, metavar="N",
                   help="rows sampled for the map (default 2000)")
    p.add_argument("--map-rows", type=int, default=1000, metavar="N",
                   help="sampled rows put through t-SNE/UMAP (default 1000)")
    p.add_argument("--projection", choices=("auto", "tsne", "umap", "none"), default="auto",
                   help="neighbourhood-preserving map: auto = UMAP if installed, else t-SNE")
    p.add_argument("--query", action="append", metavar="TEXT",
                   help="word or sentence for a neighbour table (repeatable; default: the "
                   "paper's queries, else seeded picks)")
    p.add_argument("--neighbors", type=int, default=8, help="rows per neighbour table (8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples and maps (0)")
    add_scheduler_option(p)
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out even when it is not a veob report")
    p.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("matplotlib") is None:
        raise MissingDependencyError(f"veob report draws with matplotlib, which is not "
                                     f"installed; install it with {PLOT_HINT}.")
    from ..errors import InvalidParameterError
    from ..report import build_report, check_report_path

    for name in ("sample", "map_rows", "neighbors"):
        if getattr(args, name) < 1:
            raise InvalidParameterError(f"--{name.replace('_', '-')} must be >= 1; got "
                                        f"{getattr(args, name)}.")
    check_report_path(args.out, overwrite=args.overwrite)
    with scheduler_context(args.scheduler):
        rep = build_report(args.model, store=args.store, labels=args.labels, title=args.title,
                           n_sample=args.sample, map_rows=args.map_rows,
                           projection=args.projection, queries=args.query,
                           n_neighbors=args.neighbors, random_state=args.seed)
    out = rep.save(args.out, overwrite=args.overwrite)
    if args.json:
        emit_json({"report": str(out), "model": args.model, "store": args.store,
                   "kind": rep.summary.kind, "n_components": rep.summary.n_components,
                   "rule": rep.summary.rule, "figures": list(rep.figures),
                   "seconds": rep.seconds})
        return 0
    times = ", ".join(f"{k} {v:.2f} s" for k, v in rep.seconds.items())
    print(f"report written to {out} ({len(rep.figures)} figures; {times})")
    return 0
