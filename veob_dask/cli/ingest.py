"""``veob ingest``: NumPy, IDX and sparse files into a row-chunked Zarr store."""

from __future__ import annotations

import argparse

from ..io import read_matrix
from ..io.ingest import ingest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest", help="write .npy / IDX / sparse .npz data into a Zarr store",
        description="Ingest a data file into a row-chunked, compressed Zarr v3 store with "
        "provenance attributes (source, shape, dtype, created). Sources: .npy, IDX files of "
        "MNIST/Fashion-MNIST (gzipped or not), scipy.sparse .npz, or (with --coo) a Zarr group of "
        "row/col/data arrays. The store is written to a temporary path and renamed when complete.")
    p.add_argument("source", help="input file (.npy, *-ubyte[.gz], .npz) or COO Zarr group")
    p.add_argument("out", help="output Zarr store (local path or fsspec URL)")
    p.add_argument("--labels", help="labels file (.npy or IDX) stored as array 'y'")
    p.add_argument("--chunk-rows", type=int, help="rows per chunk (default: ~64 MiB chunks)")
    p.add_argument("--coo", action="store_true", help="source is a Zarr COO triple (row/col/data)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output store")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.coo:
        from ..io.sparse import ingest_coo

        ingest_coo(args.source, args.out, chunk_rows=args.chunk_rows, overwrite=args.overwrite)
    else:
        ingest(args.source, args.out, labels=args.labels, chunk_rows=args.chunk_rows,
               overwrite=args.overwrite)
    x = read_matrix(args.out)
    print(f"wrote {args.out}: shape {x.shape}, dtype {x.dtype}, {x.numblocks[0]} row chunks of "
          f"{x.chunks[0][0]} rows")
    return 0
