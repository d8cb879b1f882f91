"""``veob transform``: project a Zarr dataset store on a saved model, writing a Zarr store."""

from __future__ import annotations

import argparse

from ..io import check_output, open_group, read_array, read_matrix, write_array
from ..io.store import provenance
from ..persistence import load
from ..runtime import scheduler_context
from ._common import Stages, emit_json
from ._options import add_scheduler
from .fit import model_input


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transform", help="embed a Zarr store with a fitted model, writing a Zarr store",
        description="Project every sample of a dataset store on a saved model's basis, chunk by "
        "chunk, and write the embedding (array X, plus the labels y when present) to a new Zarr "
        "store. The output appears only once it is complete.")
    p.add_argument("model", help="model store written by `veob fit`")
    p.add_argument("store", help="input dataset store")
    p.add_argument("out", help="output embedding store")
    add_scheduler(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output store")
    p.add_argument("--json", action="store_true", help="end with one JSON summary line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stages = Stages()
    inputs = [args.model, args.store]
    check_output(args.out, overwrite=args.overwrite, inputs=inputs)
    model = load(args.model)
    x = model_input(read_matrix(args.store), model)
    emb = model.transform(x)
    extra = {}
    if "y" in open_group(args.store).array_keys():
        extra["y"] = read_array(args.store, "y")
    with scheduler_context(args.scheduler), stages.stage("transform", f"writing {args.out}"):
        write_array(emb, args.out, extra=extra, overwrite=args.overwrite, inputs=inputs,
                    attrs=provenance(f"veob transform {args.model} {args.store}", emb.shape,
                                     emb.dtype, model=str(args.model)))
    print(f"wrote {args.out}: shape {emb.shape}, dtype {emb.dtype} in {stages.total:.2f} s")
    if args.json:
        emit_json({"model": args.model, "store": args.store, "out": args.out,
                   "shape": list(emb.shape), "seconds": stages.total})
    return 0
