"""``veob ingest``: NumPy, IDX and sparse files into a row-chunked Zarr store."""

from __future__ import annotations

import argparse

from ..io import read_matrix
from ..io.ingest import ingest
from ._common import Stages
from ._options import add_json, add_output, add_overwrite, output_path, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest", help="write .npy / IDX / sparse .npz data into a Zarr store",
        description="Ingest a data file into a row-chunked, compressed Zarr v3 store with "
        "provenance attributes (source, shape, dtype, created). Sources: .npy, IDX files of "
        "MNIST/Fashion-MNIST (gzipped or not), scipy.sparse .npz, or (with --coo) a Zarr group of "
        "row/col/data arrays. The store is written to a temporary path and renamed when complete.")
    p.add_argument("source", help="input file (.npy, *-ubyte[.gz], .npz) or COO Zarr group")
    add_output(p, "output Zarr store (local path or fsspec URL)", legacy_positional=True)
    p.add_argument("--labels", help="labels file (.npy, IDX or text) stored as array 'y'")
    p.add_argument("--domains", metavar="KEYS",
                   help="subdomain keys (.npy, IDX, or text with one key per line; integers or "
                   "text) stored as array 'domains' (veob subdomains fit --domains domains)")
    p.add_argument("--chunk-rows", type=positive_int,
                   help="rows per chunk (default: ~24 MiB chunks, veob_dask.io.chunking)")
    p.add_argument("--codec", choices=("zstd", "none"), default="zstd",
                   help="chunk compression: zstd (default) or none, for data that does not "
                   "compress (most float data), which then writes and reads with less CPU")
    p.add_argument("--coo", action="store_true", help="source is a Zarr COO triple (row/col/data)")
    add_overwrite(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = output_path(args)
    stages = Stages(json=args.json)
    with stages.stage("ingest", f"{args.source} -> {out}") as progress:
        if args.coo:
            from ..io.sparse import ingest_coo

            ingest_coo(args.source, out, chunk_rows=args.chunk_rows, overwrite=args.overwrite)
        else:
            ingest(args.source, out, labels=args.labels, domains=args.domains,
                   chunk_rows=args.chunk_rows, overwrite=args.overwrite, codec=args.codec,
                   progress=lambda done, rows: progress.update(done, rows, "rows"))
    x = read_matrix(out)
    stages.show(f"wrote {out}: shape {x.shape}, dtype {x.dtype}, {x.numblocks[0]} row chunks "
                f"of {x.chunks[0][0]} rows")
    stages.emit({"source": args.source, "out": out, "labels": args.labels,
                 "domains": args.domains,
                 "shape": list(x.shape), "dtype": str(x.dtype),
                 "n_chunks": int(x.numblocks[0]), "chunk_rows": int(x.chunks[0][0]),
                 "seconds": stages.total, "stage_seconds": stages.seconds})
    return 0
