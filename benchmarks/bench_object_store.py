"""What publishing a store on S3 costs, route by route, and a fit on S3 against local disk.

    python benchmarks/bench_object_store.py --mb 256 --chunk-mb 16 --repeat 3

A local S3 server (moto's, in a subprocess on 127.0.0.1, counting the requests it serves) takes
the same float32 dataset written by each publishing route of
:class:`veob_dask.io.objectstore.ObjectStorePublisher`:

* ``in place`` — a new store: objects at their final keys, root ``zarr.json`` held back and
  written last (the default for a new store);
* ``temp prefix + copy`` — a new store written under a temporary prefix, then copied
  server-side (the route a replacement must take, forced here for a new store);
* ``replacement`` — ``overwrite=True`` over an existing store of the same size;
* ``local disk`` — the same write to a local folder, for scale.

Each row gives the median seconds, the requests by kind (put, copy, get, head, list, delete)
and the megabytes the client uploaded; requests are exact counts, independent of the machine's
load. The fit rows time ``SVDEmbedding(10).fit`` on the S3 store and on the local one (threaded
scheduler, same run): their ratio is the cost of object storage for a fit.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, timeit_median, write_result_json

COUNTS_PATH = "/__veob_counts"


# -- the counting server (run in a subprocess: ``--serve PORT``) ----------------------------
def _kind(environ: dict[str, Any]) -> str:
    method, query = environ["REQUEST_METHOD"], environ.get("QUERY_STRING", "")
    if method == "PUT":
        return "copy" if environ.get("HTTP_X_AMZ_COPY_SOURCE") else "put"
    if method == "GET":
        return "list" if "list-type" in query or environ["PATH_INFO"].count("/") <= 1 \
            else "get"
    if method == "POST" and "delete" in query:
        return "delete"
    return method.lower()


def serve(port: int) -> None:
    """Serve moto's S3 on 127.0.0.1:``port``, counting requests by kind (GET /__veob_counts)."""
    import logging

    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def counting(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == COUNTS_PATH:
            with lock:
                body = json.dumps(counts).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        kind = _kind(environ)
        with lock:
            counts[kind] += 1
            if kind == "put":
                counts["put_bytes"] += int(environ.get("CONTENT_LENGTH") or 0)
        return app(environ, start_response)

    make_server("127.0.0.1", port, counting, threaded=True).serve_forever()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _counts(endpoint: str) -> collections.Counter[str]:
    with urllib.request.urlopen(endpoint + COUNTS_PATH, timeout=10) as r:
        return collections.Counter(json.loads(r.read()))


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            _counts(endpoint)
            return proc, endpoint
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the S3 server did not start") from None
            time.sleep(0.2)


# -- the measurements --------------------------------------------------------------------------
def _measure_write(name: str, write: Any, before: Any, endpoint: str | None,
                   repeat: int) -> dict[str, Any]:
    times: list[float] = []
    per_run: collections.Counter[str] = collections.Counter()
    for i in range(repeat):
        before(i)
        c0 = _counts(endpoint) if endpoint else collections.Counter()
        t0 = time.perf_counter()
        write(i)
        times.append(time.perf_counter() - t0)
        if endpoint and i == 0:
            per_run = _counts(endpoint) - c0
    times.sort()
    row: dict[str, Any] = {"method": name, "ours": True, "median_s": times[len(times) // 2]}
    if endpoint:
        for k in ("put", "copy", "get", "head", "list", "delete"):
            row[f"{k}_requests"] = per_run.get(k, 0)
        row["uploaded_mb"] = round(per_run.get("put_bytes", 0) / 2**20, 1)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=256, help="dataset size in MiB (float32)")
    p.add_argument("--cols", type=int, default=256)
    p.add_argument("--chunk-mb", type=float, default=16, help="MiB per row chunk")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", default=None)
    p.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return 0

    import dask
    import numpy as np
    import s3fs

    from veob_dask import SVDEmbedding
    from veob_dask.io import read_array, write_array
    from veob_dask.io.objectstore import ObjectStorePublisher

    rows = int(args.mb * 2**20 / (4 * args.cols))
    chunk_rows = max(1, int(args.chunk_mb * 2**20 / (4 * args.cols)))
    x = np.random.default_rng(0).normal(size=(rows, args.cols)).astype(np.float32)
    proc, endpoint = start_server()
    opts = {"key": "bench", "secret": "bench", "endpoint_url": endpoint,
            "client_kwargs": {"region_name": "us-east-1"}}
    fs = s3fs.S3FileSystem(**opts)
    fs.call_s3("create_bucket", Bucket="bench")
    local = Path(tempfile.mkdtemp(prefix="veob-bench-s3-"))
    results: list[dict[str, Any]] = []
    try:
        with dask.config.set(scheduler="threads"):
            def rm_s3(name: str) -> None:
                fs.invalidate_cache()
                if fs.exists(f"bench/{name}"):
                    fs.rm(f"bench/{name}", recursive=True)

            def write_s3(name: str, overwrite: bool = False) -> None:
                write_array(x, f"s3://bench/{name}", chunk_rows=chunk_rows, overwrite=overwrite,
                            storage_options=opts)

            results.append(_measure_write(
                "in place (new store)", lambda i: write_s3(f"new{i}.zarr"),
                lambda i: rm_s3(f"new{i}.zarr"), endpoint, args.repeat))
            ObjectStorePublisher.new_store_route = "copy"
            try:
                results.append(_measure_write(
                    "temp prefix + copy (new store)", lambda i: write_s3(f"copy{i}.zarr"),
                    lambda i: rm_s3(f"copy{i}.zarr"), endpoint, args.repeat))
            finally:
                ObjectStorePublisher.new_store_route = "in-place"
            write_s3("repl.zarr")
            results.append(_measure_write(
                "replacement (temp prefix + copy)",
                lambda i: write_s3("repl.zarr", overwrite=True), lambda i: None, endpoint,
                args.repeat))

            def rm_local(i: int) -> None:
                shutil.rmtree(local / f"new{i}.zarr", ignore_errors=True)

            results.append(_measure_write(
                "local disk (new store)",
                lambda i: write_array(x, local / f"new{i}.zarr", chunk_rows=chunk_rows),
                rm_local, None, args.repeat))
            for r in results:
                r["store_mb"] = round(x.nbytes / 2**20, 1)

            fits: dict[str, float] = {}
            for where, path, so in (("s3", "s3://bench/new0.zarr", opts),
                                    ("local", local / "new0.zarr", None)):
                if where == "s3":
                    rm_s3("new0.zarr")
                    write_s3("new0.zarr")
                else:
                    rm_local(0)
                    write_array(x, path, chunk_rows=chunk_rows)
                c0 = _counts(endpoint)
                sec, _, _model, peak = timeit_median(
                    lambda p=path, s=so: SVDEmbedding(args.k).fit(read_array(
                        p, storage_options=s)), args.repeat)
                per = (_counts(endpoint) - c0) if where == "s3" else collections.Counter()
                fits[where] = sec
                results.append({"method": f"fit SVDEmbedding({args.k}) on {where}", "ours": True,
                                "median_s": sec, "peak_mb": peak, "store_mb": round(
                                    x.nbytes / 2**20, 1),
                                **({"get_requests": per.get("get", 0) // args.repeat,
                                    "head_requests": per.get("head", 0) // args.repeat}
                                   if where == "s3" else {})})
            results[-2]["ratio_to_local"] = fits["s3"] / fits["local"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(local, ignore_errors=True)
    config = {"rows": rows, "cols": args.cols, "chunk_rows": chunk_rows, "k": args.k,
              "repeat": args.repeat, "server": "moto (subprocess, 127.0.0.1)",
              "scheduler": "threads", "load_avg_1min": os.getloadavg()[0]}
    print_table(results)
    out = write_result_json("bench_object_store", config, results, args.json)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
