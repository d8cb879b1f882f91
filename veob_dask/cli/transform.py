"""``veob transform``: project a Zarr dataset store on a saved model, writing a Zarr store."""

from __future__ import annotations

import argparse

from ..errors import DataError
from ..io import check_output, open_group, read_array, read_matrix, write_array
from ..io.store import provenance
from ..persistence import load
from ._common import Stages, computing
from ._options import add_json, add_output, add_overwrite, add_scheduler, output_path
from .fit import model_input


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transform", help="embed a Zarr store with a fitted model, writing a Zarr store",
        description="Project every sample of a dataset store on a saved model's basis, chunk by "
        "chunk, and write the embedding (array X, plus the labels y when present) to a new Zarr "
        "store. The output appears only once it is complete.")
    p.add_argument("model", help="model store written by `veob fit`")
    p.add_argument("store", help="input dataset store")
    add_output(p, "embedding store to write", legacy_positional=True)
    add_scheduler(p)
    add_overwrite(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = output_path(args)
    stages = Stages(json=args.json)
    inputs = [args.model, args.store]
    check_output(out, overwrite=args.overwrite, inputs=inputs)
    model = load(args.model)
    x = model_input(read_matrix(args.store), model)
    emb = model.transform(x)
    extra = {}
    if "y" in open_group(args.store).array_keys():
        y = read_array(args.store, "y")
        if y.shape != (x.shape[0],):
            raise DataError(f"{args.store!r}: the labels y have shape {y.shape} but X holds "
                            f"{x.shape[0]} rows; one label per row is needed. The store is "
                            "damaged: re-ingest it.")
        extra["y"] = y
    with computing(args, stages), stages.stage("transform", f"writing {out}"):
        write_array(emb, out, extra=extra, overwrite=args.overwrite, inputs=inputs,
                    attrs=provenance(f"veob transform {args.model} {args.store}", emb.shape,
                                     emb.dtype, model=str(args.model)))
    stages.show(f"wrote {out}: shape {emb.shape}, dtype {emb.dtype} in {stages.total:.2f} s")
    stages.emit({"model": args.model, "store": args.store, "out": out,
                 "shape": list(emb.shape), "dtype": str(emb.dtype), "seconds": stages.total,
                 "stage_seconds": stages.seconds})
    return 0
