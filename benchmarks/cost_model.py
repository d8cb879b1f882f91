"""A cost model of one-pass (and q-pass) fits over row chunks: calibrated here, predicts anywhere.

Usage::

    python benchmarks/cost_model.py                       # calibrate (~23 min), print constants
                                                          # and the extrapolation table
    python benchmarks/cost_model.py --cols 64,256 --objstore-mbps 100,1000
    python benchmarks/cost_model.py --load results/cost_model.json   # reuse a calibration

The model (stated in full in ``benchmarks/README.md``, section "Cost model"): a pass over ``n``
rows in chunks of ``c`` rows on ``W`` workers x ``T`` threads (``S = W T`` task slots) costs

    T_pass = closed_pass(io, n (s_src + s_op) / E(W, T) x waves, S, cores),
    io = (bytes_cold + bytes_out) / B_disk

with ``s_src`` the CPU seconds per row of producing a chunk (generating it, reading and
decoding it from the page cache, or — after the cache was dropped — from disk, which adds the
kernel's CPU), ``s_op`` those of the solver's kernel including its share of the merge tree (both
measured single-threaded on the synchronous scheduler in CPU time, least of 3, from two sizes so
that fixed costs fall out), ``E`` the wall-time speed-up of the (source, op) pipeline on the
configuration over one thread's CPU work, measured on a steady window of rows in a fresh process
of its own (it holds the per-task overhead; a pipeline not measured falls back to the Gram
pipeline's ``E`` plus ``(n / c) (t_task(sched) - t_task(sync)) / E``), ``waves =
wave_factor(n, c, S)`` the idle slots of the last wave, ``B_disk`` the disk's cold
bandwidth and ``bytes_out`` what a cold transform writes. A task waits for its own chunk, then
computes it: ``closed_pass`` is the mean of that closed queueing network (the disk one server,
the cores ``min(S, cores)`` servers); it is the compute alone without cold bytes, and with the
library's read-ahead on the model takes full overlap instead, ``max(disk, compute)``. ``t_task``
is the CPU per task of each scheduler. A run is ``t_call + passes x T_pass``:
``t_call`` the intercept of the pipeline's line drawn through its smaller call (a run smaller
than that call is never predicted below its share of it; else the wall time of the same call on a
one-chunk array: graph, scheduling, eigensolver, the writes that do not grow with the rows); the
randomized solver makes ``n_iter + 1`` passes, all others one. Its CPU seconds are ``passes x n
(s_src + s_op) x inflation`` (the measured CPU cost of running beside other threads). The
extrapolation to many workers gives each worker dedicated cores at the CPU per row measured on
the 2-worker pipeline, adds the object-store bandwidth per worker and in total, the central
scheduler's serial time per task, the client's graph time per task and the merge tree's depth
x level latency, and names the term that binds.

This VM's speed drifts by more than the model's error within minutes, so every measurement
above is taken beside a speed probe (``speed_probe``: a 0.5 s threaded Gram fit, median of 3),
so is every benchmark run (before its first call and after its last), and
``predict(probe_s=...)`` multiplies the compute terms (not the disk's) by the run's probe over
the calibration's.
"""

from __future__ import annotations

import argparse
import atexit
import copy
import datetime as dt
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS_DIR,
    PeakRSS,
    Runnable,
    drop_page_cache,
    machine_info,
    print_table,
    tree_cpu_s,
    write_sharded_store,
)

#: Ops with a per-row kernel cost measured on in-memory chunks.
KERNEL_OPS = ("sum", "gram", "randomized", "incremental", "subdomain", "transform")
#: Ops whose fixed cost per call is measured on the threaded scheduler.
CALL_OPS = KERNEL_OPS
DEFAULT_K, DEFAULT_Q, DEFAULT_KEYS = 16, 4, 1000
#: Chunks per shard of the benchmark stores (a shard file holds this many task reads).
CHUNKS_PER_SHARD = 16
#: Shards of the calibration store (about 1.5 GB at 24 MiB chunks).
CAL_SHARDS = 4
#: Chunks of the calibration store.
CAL_CHUNKS = CAL_SHARDS * CHUNKS_PER_SHARD


# ---------------------------------------------------------------------------- the speed probe
#: The speed probe: a threaded (2 threads) Gram fit of a generated 24 x 98,304 x 64 matrix.
PROBE_COLS, PROBE_CHUNK_ROWS, PROBE_CHUNKS, PROBE_THREADS = 64, 98_304, 24, 2
_probe_call: list[Callable[[], Any]] = []


def probe_here(repeat: int = 3) -> float:
    """Median wall seconds of the speed probe, run in this process (``speed_probe`` runs it in
    a process of its own); the first call in a process warms up."""
    import dask

    from veob_dask.datasets import SyntheticMatrix

    with dask.config.set(scheduler="threads", num_workers=PROBE_THREADS):
        if not _probe_call:
            x = SyntheticMatrix(PROBE_CHUNKS * PROBE_CHUNK_ROWS, PROBE_COLS).to_dask(
                PROBE_CHUNK_ROWS)
            _probe_call.append(op_callable("gram", x, k=DEFAULT_K, q=DEFAULT_Q))
            _probe_call[0]()
        return _median_time(_probe_call[0], repeat)


def serve_probes(lines: Any = None, out: Any = None, warm: int = 3) -> None:
    """The probe's process: for each line ``repeat`` read, write ``probe_here(repeat)``.

    It first runs the probe ``warm`` times untimed: a fresh process's first probe, after the
    one warm-up call of ``probe_here``, took 0.47 s where the next seven took 0.30-0.35 s
    (2 December, 08:50 UTC).
    """
    probe_here(warm)
    for line in lines if lines is not None else sys.stdin:
        if line.strip():
            print(repr(probe_here(int(line))), file=out or sys.stdout, flush=True)


_probe_server: list[Any] = []


def probe_pids() -> frozenset[int]:
    """The speed probe's process, if one runs: not part of a measured call's memory."""
    return frozenset(p.pid for p in _probe_server if p.poll() is None)


def _stop_probe_server() -> None:
    import subprocess

    while _probe_server:
        proc = _probe_server.pop()
        proc.stdin.close()  # its end of input: it returns
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


atexit.register(_stop_probe_server)


def speed_probe(repeat: int = 3) -> float:
    """Median wall seconds of the speed probe (about 0.4 s a call on this machine), measured in
    a process of its own.

    This machine's speed drifts: within one minute the same threaded Gram fit went from
    5.3 s to 8.2 s and stayed there, and the probe went from 0.47 s to 0.69 s with it (12
    pairs, 1 December 19:28-19:31 UTC: fit / probe stayed within 11.0-12.9 while the fit
    alone moved 5.3-8.6 s). The calibration records the probe beside each pipeline it
    measures, a benchmark run before its first call and after its last, and
    ``predict(probe_s=...)`` scales the compute terms by their ratio.

    The probe runs on the threaded scheduler in a child process started at the first call and
    kept (it warms up once), so that nothing of the calling process weighs on it: a
    LocalCluster's scheduler runs in the process that started it, and two (d) runs of 2
    December probed 0.52-0.64 s in such a process where the chain's other probes took
    0.29-0.42 s and the runs themselves were not slower. Beside an idle 2x1 LocalCluster the
    probe took 0.42-0.48 s in the cluster's process and 0.35-0.51 s in a child, against
    0.35-0.40 s alone (2 December, 08:12 UTC).
    """
    import subprocess

    if _probe_server and _probe_server[0].poll() is not None:
        _stop_probe_server()  # it ended (killed): closes its pipes, a new one starts
    if not _probe_server:
        here = str(Path(__file__).resolve().parent)
        code = (f"import sys; sys.path.insert(0, {here!r}); import cost_model; "
                "cost_model.serve_probes()")
        _probe_server.append(subprocess.Popen([sys.executable, "-c", code],
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              text=True))
    proc = _probe_server[0]
    try:
        proc.stdin.write(f"{repeat}\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
    except BrokenPipeError:
        line = ""
    if not line:
        code = proc.wait()
        _stop_probe_server()
        raise RuntimeError(f"the speed probe's process ended (exit code {code}); its error is "
                           "printed above")
    return float(line)


# ------------------------------------------------------------------------------- measurement
def _median_time(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _min_cpu(fn: Callable[[], Any], repeat: int) -> float:
    """Least CPU seconds of this process (all its threads) per call, over ``repeat`` calls.

    CPU time rather than wall time, and the least rather than the median: on a shared machine
    other jobs stretch the wall time of a single-threaded call and, through shared caches and
    cores, inflate its CPU time too, but never shrink it.
    """
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def _costs(run: Callable[[int, int], Callable[[], Any]], c: int, n1: int, n2: int,
           repeat: int) -> dict[str, float]:
    """CPU seconds per row (at chunks of ``c`` rows: the per-chunk work is spread over its
    rows) and fixed, of ``run(n, chunk_rows)()``, from ``n1`` and ``n2`` rows."""
    first = run(n1, c)
    first()  # warm-up: first-call costs (imports, caches, thread pools) are not the op's
    t1 = _min_cpu(first, repeat)
    t2 = _min_cpu(run(n2, c), repeat)
    per_row = max((t2 - t1) / (n2 - n1), 1e-12)
    return {"per_row": per_row, "fixed": max(0.0, t1 - per_row * n1)}


def op_callable(op: str, x: Any, *, k: int, q: int, keys: Any = None,
                out: Path | None = None, codec: str = "zstd",
                shard_above: int | None = None,
                direct_writes: bool | None = None) -> Callable[[], Any]:
    """What a run of ``op`` times, on the dask array ``x`` (and ``keys`` for subdomains);
    the transform writes its output with ``codec``, sharded by ``write_array``'s rule
    (``shard_above``: its threshold, ``0`` always shards), with ``O_DIRECT`` by the library's
    rule, or as ``direct_writes`` says (Dask config ``veob_dask.direct_writes``).

    Shared with ``bench_scale.py`` so the calibration times the very calls the runs make.
    """
    from veob_dask import SVDEmbedding

    if op in ("sum", "gen", "read"):
        return lambda: float(x.sum().compute())
    if op in ("gram", "randomized"):
        return lambda: SVDEmbedding(k, solver=op, n_iter=q, random_state=0).fit(x)
    if op == "incremental":
        from veob_dask.svd import IncrementalSVDEmbedding

        return lambda: IncrementalSVDEmbedding(k).fit(x)
    if op == "subdomain":
        from veob_dask.subdomain import SubdomainEmbedding

        return lambda: SubdomainEmbedding(k).fit(x, domains=keys)
    if op == "transform":
        import dask

        from veob_dask.io import write_array

        head = x[: x.chunks[0][0]]
        model = SVDEmbedding(k, solver="gram").fit(head)  # untimed: the basis hardly matters
        assert out is not None

        def transform() -> Any:
            with dask.config.set({"veob_dask.direct_writes": direct_writes}):
                return write_array(model.transform(x), out, overwrite=True, codec=codec,
                                   shard_above=shard_above)
        return transform
    raise ValueError(f"unknown op {op!r}")


def transform_kernel(codec: str, direct_writes: bool) -> str:
    """The kernel (``ops`` key) of a transform whose output takes ``codec``: "transform"
    (zstd), "transform-none" (uncompressed), "-dw" when written with ``O_DIRECT``."""
    return ("transform" if codec == "zstd" else f"transform-{codec}") + (
        "-dw" if direct_writes else "")


def passes(op: str, q: int) -> int:
    """Passes over the data an op makes (the randomized solver's Gaussian start: q + 1)."""
    return q + 1 if op == "randomized" else 1


def _kernel_costs(d: int, c: int, *, k: int, q: int, n_keys: int, repeat: int,
                  work: Path) -> dict[str, dict[str, float]]:
    """Per-row and fixed seconds of each kernel op on in-memory chunks (sync scheduler)."""
    import dask
    import dask.array as da

    from veob_dask.datasets import SyntheticMatrix

    n1, n2 = c, 8 * c
    m = SyntheticMatrix(n2, d, n_keys=n_keys)
    xnp, keys_np = m.rows(0, n2), m.row_keys(0, n2)
    out: dict[str, dict[str, float]] = {}
    with dask.config.set(scheduler="sync"):
        for op in KERNEL_OPS:
            def run(n: int, ch: int, op: str = op) -> Callable[[], Any]:
                x = da.from_array(xnp[:n], chunks=(ch, d))
                keys = da.from_array(keys_np[:n], chunks=(ch,))
                return op_callable(op, x, k=k, q=q, keys=keys, out=work / "emb.zarr")
            # the same sizes for every op: the subdomain kernel measured on 1 and 3 chunks
            # came out 1.6 us a row, 1.7x what the fits of 1e7-1e8 rows spent
            est = _costs(run, c, n1, n2, repeat)
            est["per_row"] /= passes(op, q)
            out[op] = est

        for codec, direct in (("none", None), ("zstd", True), ("none", True)):
            def run_plain(n: int, ch: int, codec: str = codec,
                          direct: bool | None = direct) -> Callable[[], Any]:
                x = da.from_array(xnp[:n], chunks=(ch, d))
                return op_callable("transform", x, k=k, q=q, out=work / "emb.zarr",
                                   codec=codec, direct_writes=direct,
                                   shard_above=TRANSFORM_SHARD_ABOVE if direct else None)
            out[transform_kernel(codec, bool(direct))] = _costs(run_plain, c, n1, n2, repeat)
        # sources: generation (chunk allocated and filled), keys; the sum kernel subtracted
        SyntheticMatrix(1, d).rows(0, 1)  # build the design cache (per process) before timing
        for op in ("gen", "keys"):
            def run_src(n: int, ch: int, op: str = op) -> Callable[[], Any]:
                src = SyntheticMatrix(n, d, n_keys=n_keys)
                x = src.to_dask(ch) if op == "gen" else src.keys(ch)
                return lambda: float(x.sum().compute())
            est = _costs(run_src, c, n1, n2, repeat)
            est["floor_per_row"] = est["per_row"]
            if op == "gen":
                est["per_row"] = max(est["per_row"] - out["sum"]["per_row"], 1e-12)
            out[op] = est
    return out


def disk_bandwidth(files: list[Path], readers: int = 2, *, direct: bool = False) -> dict[str, Any]:
    """Cold read bandwidth of ``files`` (bytes/s): page cache dropped, then ``readers`` threads
    read whole files in 16 MiB blocks, as two tasks do; with ``O_DIRECT`` when ``direct`` (as
    the library reads arrays larger than memory).

    ``None`` when the cache cannot be dropped (not root): the reads would be warm.
    """
    import concurrent.futures as cf

    from veob_dask.io.direct import aligned_empty

    if not drop_page_cache():
        return {"disk_bytes_per_s": None, "cache_dropped": False, "bytes": 0}

    def read(f: Path) -> int:
        n, block = 0, 16 << 20
        if direct and hasattr(os, "O_DIRECT"):
            buf = memoryview(aligned_empty(block))
            fd = os.open(f, os.O_RDONLY | os.O_DIRECT)
            try:
                while got := os.preadv(fd, [buf], n):
                    n += got
            finally:
                os.close(fd)
            return n
        with open(f, "rb") as fh:
            while data := fh.read(block):
                n += len(data)
        return n

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(readers) as pool:
        total = sum(pool.map(read, files))
    return {"disk_bytes_per_s": total / (time.perf_counter() - t0), "cache_dropped": True,
            "bytes": total, "files": len(files), "direct": direct}


def sample_files(store: Path, max_bytes: int, offset: int = 0) -> list[Path]:
    """Storage files of ``store`` spread evenly over it, about ``max_bytes`` in all.

    ``offset`` shifts the sample by that many files (modulo the spacing), so that probes
    made one after the other read different files: a virtual disk may serve a file it has
    just served from its host's cache.
    """
    files = sorted((p for p in Path(store).rglob("*") if p.is_file() and p.name != "zarr.json"),
                   key=lambda p: [int(v) if v.isdigit() else v for v in p.parts])
    if not files:
        return []
    size = max(1, files[0].stat().st_size)
    step = max(1, math.ceil(len(files) * size / max_bytes))
    return files[offset % step::step]


def store_head(store: Path, rows: int) -> Any:
    """The first ``rows`` rows of array X of ``store`` as a run reads a whole store: a dask
    array with one task per stored chunk, each the library's read of that chunk.

    ``read_array(store)[:rows]`` would add a slicing task per chunk that no run has (dask
    does not fuse it away). On a LocalCluster of 1 worker x 2 threads a read pass of 21
    chunks took 0.64-0.77 s whole and 0.71-0.99 s sliced (2 December 00:05 UTC), and
    the calibrations of 1 December, built on sliced stores, predicted the (d) sweep's
    cluster runs long in all three chains (by up to 53 %).
    ``rows`` is a whole number of stored chunks, or at least the store's length.
    """
    import dask.array as da
    from dask.base import tokenize

    from veob_dask.io import read_array
    from veob_dask.io.store import ZarrRowSource

    whole = read_array(store)
    if rows >= whole.shape[0]:
        return whole
    src = ZarrRowSource(store, "X")
    c = src.chunks[0]
    if rows % c:
        raise ValueError(f"rows={rows} is not a whole number of stored chunks of {c} rows")
    src.shape = (rows, *src.shape[1:])
    return da.from_array(src, chunks=(c, *src.shape[1:]), asarray=True, fancy=False,
                         lock=False, inline_array=True,
                         name=f"veob-read-X-{tokenize(str(store), rows, c)}")


def _cold_cpu(fn: Callable[[], Any], times: int = 2) -> list[float]:
    """CPU seconds of this process for ``fn`` right after the page cache is dropped, ``times``
    times; none when the cache cannot be dropped (not root)."""
    out = []
    for _ in range(times):
        if not drop_page_cache():
            break
        c0 = time.process_time()
        fn()
        out.append(time.process_time() - c0)
    return out


def _read_costs(d: int, c: int, *, repeat: int, work: Path, sum_cost: dict[str, float],
                codec: str = "zstd") -> dict[str, Any]:
    """Warm decode per row and cold read per row (one thread), and the disk's cold bandwidth,
    from a sharded store of ``CAL_SHARDS`` shards written here with ``codec``."""
    import dask
    import zarr

    from veob_dask.datasets import SyntheticMatrix

    n = CAL_SHARDS * CHUNKS_PER_SHARD * c
    m = SyntheticMatrix(n, d)
    path = work / f"cal_{d}_{codec}.zarr"
    disk = write_sharded_store(m, path, chunk_rows=c, chunks_per_shard=CHUNKS_PER_SHARD,
                               codec=codec)
    zarr.open_group(path, mode="r")  # metadata readable

    def run(rows: int) -> Callable[[], Any]:
        x = store_head(path, rows)  # the library's reader: dask chunks = stored chunks
        return lambda: float(x.sum().compute())

    with dask.config.set(scheduler="sync"):
        run(n)()  # warm the page cache
        # two sizes only: chunks smaller than the stored ones would decode a chunk per task
        t1, t2 = _min_cpu(run(2 * c), repeat), _min_cpu(run(n), repeat)
        per_row = max((t2 - t1) / (n - 2 * c), 1e-12)
        est = {"per_row": per_row, "fixed": max(0.0, t1 - 2 * c * per_row)}
        # cold: the same pass after dropping the cache; the extra CPU is the kernel's share of
        # reading from disk (page-cache insertion) charged to this process
        cold_cpu = _cold_cpu(run(n))
        # the same pass with O_DIRECT, as the library reads an array larger than memory: the
        # disk writes into the task's buffer, with no copy into the page cache nor out of it
        # (2 December 06:22 UTC: within a few per cent of the warm decode at 64 and 256
        # features, zstd and uncompressed)
        with dask.config.set({"veob_dask.direct_io": True}):
            direct_cpu = _cold_cpu(run(n))
    cold_per_row = (min(cold_cpu) - est["fixed"]) / n if cold_cpu else per_row
    direct_per_row = (min(direct_cpu) - est["fixed"]) / n if direct_cpu else per_row
    files = sorted(p for p in Path(path).rglob("*") if p.is_file() and p.name != "zarr.json")
    bw = disk_bandwidth(files)
    return {"per_row": max(est["per_row"] - sum_cost["per_row"], 1e-12),
            "cold_per_row": max(cold_per_row - sum_cost["per_row"], est["per_row"]
                                - sum_cost["per_row"], 1e-12),
            "direct_per_row": max(direct_per_row - sum_cost["per_row"], 1e-12),
            "floor_per_row": est["per_row"], "fixed": est["fixed"],
            "compression": disk / m.nbytes, **bw}


def _call_costs(d: int, ops: tuple[str, ...], work: Path) -> dict[str, float]:
    """Wall seconds of one call of each op on a one-chunk array on the current scheduler
    (median of 3 after a warm-up): the fixed cost of a run (graph, scheduling, the eigensolver
    and the writes that do not grow with the rows)."""
    from veob_dask.datasets import SyntheticMatrix

    m = SyntheticMatrix(2000, d, n_keys=8)
    x, keys = m.to_dask(2000), m.keys(2000)
    out = {}
    for op in ops:
        call = op_callable(op, x, k=min(DEFAULT_K, d), q=DEFAULT_Q, keys=keys,
                           out=work / "call.zarr")
        call()
        out[op] = _median_time(call, 3)
    return out


def _task_overhead(n_tasks: int) -> float:
    """CPU seconds (this process and its children: client, scheduler, workers) per trivial
    task on the current scheduler (independent tasks)."""
    import dask

    tasks = [dask.delayed(int, pure=False)(i) for i in range(n_tasks)]
    c0 = tree_cpu_s()
    dask.compute(*tasks)
    return (tree_cpu_s() - c0) / n_tasks


def _tree_costs(d: int, scheduler_label: str) -> dict[str, Any]:
    """Merge-tree cost by fan-in: one tree-sum of 256 partial (d+1)^2 float64 matrices."""
    import dask.array as da

    leaves = 64
    parts = da.ones((leaves, d + 1, d + 1), chunks=(1, d + 1, d + 1))
    out = {}
    for fan_in in (2, 4, 16):
        t = _median_time(lambda f=fan_in: parts.sum(axis=0, split_every=f).compute(), 2)
        depth = math.ceil(math.log(leaves, fan_in) - 1e-9)
        out[str(fan_in)] = {"seconds": t, "depth": depth}
    return {"scheduler": scheduler_label, "leaves": leaves, "values": (d + 1) ** 2,
            "by_fan_in": out}


def _pipeline_time(d: int, c: int, n: int) -> tuple[float, float]:
    """(wall s, CPU s of the process tree) of the (a) pipeline — generate + Gram fit — on the
    current scheduler (medians of 3 after a warm-up)."""
    from veob_dask import SVDEmbedding
    from veob_dask.datasets import SyntheticMatrix

    x = SyntheticMatrix(n, d).to_dask(c)
    SVDEmbedding(8, solver="gram").fit(x)  # warm-up: first-call costs are not the pipeline's
    walls, cpus = [], []
    for _ in range(3):
        c0, t0 = tree_cpu_s(), time.perf_counter()
        SVDEmbedding(8, solver="gram").fit(x)
        walls.append(time.perf_counter() - t0)
        cpus.append(tree_cpu_s() - c0)
    return statistics.median(walls), statistics.median(cpus)


def _wall_cpu(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds of the process tree of ``repeat`` calls,
    each under the monitors a benchmark run has (peak memory, runnable threads).

    The median, not the least: the model predicts the median of repeated runs (a calibration
    with the least of 3 predicted every run of 1 December 20-30 % short)."""
    walls, cpus = [], []
    for _ in range(repeat):
        with PeakRSS(), Runnable():
            c0, t0 = tree_cpu_s(), time.perf_counter()
            fn()
            walls.append(time.perf_counter() - t0)
            cpus.append(tree_cpu_s() - c0)
    return statistics.median(walls), statistics.median(cpus)


#: Chunks of the smaller call of a pipeline measurement: past the first chunks, which cost
#: more (a threaded Gram fit spent 23 ms a chunk between 2 and 10 chunks, 14-16 ms a chunk
#: from 10 on, and 16.5-17 ms a chunk over 130 and over 1,018 chunks).
PIPELINE_SMALL_CHUNKS = 12
#: Wall seconds the marginal rows of a pipeline measurement aim at (a 0.2 s window, 8 chunks,
#: moved the speed-ups of two calibrations by up to 40 %).
PIPELINE_WINDOW_S = 1.5
#: Groups per key before a subdomain fit has met (nearly) every key: below that, each new
#: chunk adds keys, and every key costs its own merge and eigendecomposition.
SUBDOMAIN_GROUPS_PER_KEY = 8


#: Sizes of a pipeline measurement, spread evenly over its window, and rounds over them: each
#: round calls every size once, in turn forwards and backwards, so that a drift of the
#: machine's speed during the measurement falls on every size alike instead of on the slope.
#: (Two sizes, three calls each, one size after the other: five back-to-back measurements of
#: the same pipeline gave speed-ups 2.80-4.07, 1 December 21:13 UTC.)
PIPELINE_SIZES, PIPELINE_ROUNDS = 3, 3


def _interleaved(calls: list[Callable[[], Any]], rounds: int) -> tuple[list[float], list[float]]:
    """Median wall and CPU seconds (``_wall_cpu``) of each of ``calls`` over ``rounds``
    rounds that call each once, forwards in even rounds and backwards in odd ones."""
    walls: list[list[float]] = [[] for _ in calls]
    cpus: list[list[float]] = [[] for _ in calls]
    for r in range(rounds):
        order = range(len(calls)) if r % 2 == 0 else range(len(calls) - 1, -1, -1)
        for i in order:
            w, c = _wall_cpu(calls[i], 1)
            walls[i].append(w)
            cpus[i].append(c)
    return [statistics.median(w) for w in walls], [statistics.median(c) for c in cpus]


def _line(xs: list[int], ys: list[float], at: int) -> tuple[float, float]:
    """Least-squares slope of ``ys`` against ``xs`` and the line's value at ``at``."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return slope, my + slope * (at - mx)


def pipeline_chunks(op: str, c: int, *, n_keys: int, group_rows: int = 512) -> int:
    """Chunks of the smaller call of the ``op`` pipeline (subdomains: once every key is met)."""
    if op == "subdomain":
        return max(PIPELINE_SMALL_CHUNKS,
                   math.ceil(SUBDOMAIN_GROUPS_PER_KEY * n_keys * group_rows / c))
    return PIPELINE_SMALL_CHUNKS


def _pipeline_row_work(entry: dict[str, Any], name: str) -> float:
    """One thread's CPU seconds per row of pipeline ``name`` ("source:op"), all passes: the
    work its speed-up ``E`` divides."""
    source, op = name.split(":")
    ops = entry["ops"]
    src_row = ops[source]["per_row"] + (ops["keys"]["per_row"] if op == "subdomain" else 0.0)
    if op.startswith("transform"):
        kern = ops[transform_kernel("none" if source == "read-none" else "zstd",
                                    op.endswith("-dw"))]
    else:
        kern = ops["sum"] if op == "sum" else ops[op]
    return (src_row + kern["per_row"]) * passes(op, DEFAULT_Q)


def _speedups(entry: dict[str, Any], d: int, work: Path, pairs: tuple[tuple[str, str], ...],
              max_store_chunks: int, probe: float) -> dict[str, dict[str, float]]:
    """Speed-up ``E``, CPU inflation, CPU per row and fixed wall seconds of each (source, op)
    pipeline on the current scheduler.

    From the marginal rows of a window between ``pipeline_chunks`` and a larger call sized to
    take about ``PIPELINE_WINDOW_S`` more (so the fixed cost of a call falls out, and the
    window is long enough to be steady), measured at ``PIPELINE_SIZES`` sizes spread over the
    window in ``PIPELINE_ROUNDS`` interleaved rounds (``_interleaved``; medians per size) and
    fitted by least squares: ``E = window rows (s_src + s_op) passes / (slope x window)``,
    one-thread CPU work per wall second; the CPU the pipeline spent on those rows over that
    work; and the line's value at the smaller call less its rows' share, the fixed wall time
    of a call (for a subdomain fit, with every key met). Sources: "gen" (the synthetic
    generator, keys too for "subdomain"), "read" and "read-none" (the zstd and uncompressed
    calibration stores, warm; a transform writes with the store's codec). Pipelines whose
    smaller call would need more than ``max_store_chunks`` chunks are skipped (the prediction
    falls back to the generic speed-up); generated sources take windows of up to 4 x ``max_store_chunks`` chunks.
    Each pipeline also gets the mean of the speed probes (``speed_probe``) just before and
    just after it; ``probe`` is the one just taken before the first.
    """
    from veob_dask.datasets import SyntheticMatrix

    c = entry["chunk_rows"]
    out: dict[str, dict[str, float]] = {"speedup": {}, "inflation": {}, "cpu_per_row": {},
                                        "fixed_s": {}, "probe_s": {}}
    for source, op in pairs:
        codec = "none" if source == "read-none" else "zstd"  # the store's, and the output's
        store = work / f"cal_{d}_{codec}.zarr"
        small_chunks = pipeline_chunks(op, c, n_keys=DEFAULT_KEYS)
        if small_chunks + 4 > max_store_chunks:
            continue
        limit = max_store_chunks if source != "gen" else 4 * max_store_chunks

        def make(n_chunks: int, source: str = source, op: str = op, store: Path = store,
                 codec: str = codec) -> Callable[[], Any]:
            n = n_chunks * c
            m = SyntheticMatrix(n, d, n_keys=DEFAULT_KEYS)
            x = store_head(store, n) if source != "gen" else m.to_dask(c)
            return op_callable(op.removesuffix("-dw"), x, k=DEFAULT_K, q=DEFAULT_Q,
                               keys=m.keys(c), out=work / "pipeline.zarr", codec=codec,
                               shard_above=TRANSFORM_SHARD_ABOVE,
                               direct_writes=True if op.endswith("-dw") else None)
        small = make(small_chunks)
        small()  # warm-up: imports, caches, the store's pages
        per_chunk = _median_time(small, 1) / small_chunks  # sizes the window
        # at least as many chunks again as the smaller call: the subdomain pipeline measured
        # 0.33 us a row between 42 and 64 chunks, 0.52 between 42 and 106, 0.41 between 106
        # and 234, and its 1e7 and 1e8 fits 0.39-0.46 (1 December, 17:30-18:05 UTC)
        window = min(max(4, small_chunks, math.ceil(PIPELINE_WINDOW_S / max(per_chunk, 1e-6))),
                     limit - small_chunks)
        sizes = [small_chunks + round(window * i / (PIPELINE_SIZES - 1))
                 for i in range(PIPELINE_SIZES)]
        walls, cpus = _interleaved([small, *(make(m) for m in sizes[1:])], PIPELINE_ROUNDS)
        slope, _ = _line(sizes, walls, small_chunks)
        cpu_slope, _ = _line(sizes, cpus, small_chunks)
        rows = window * c
        work_s = rows * _pipeline_row_work(entry, f"{source}:{op}")
        marginal = max(slope * window, 1e-9)  # wall seconds of the window's rows
        cpu_marginal = max(cpu_slope * window, 0.0)
        name = f"{source}:{op}"
        out["speedup"][name] = work_s / marginal
        out["inflation"][name] = cpu_marginal / work_s
        out["cpu_per_row"][name] = cpu_marginal / rows
        # the line through the smaller call's own median: that call is the measurement
        # nearest the small runs the fixed cost matters for (the least-squares line's
        # intercept moved between -0.02 and +0.08 s from one calibration to the next for the
        # same generated Gram pipeline, whose 12-chunk call took 0.20-0.25 s)
        out["fixed_s"][name] = walls[0] - small_chunks * slope
        after = speed_probe()  # the machine's speed around this measurement
        out["probe_s"][name], probe = (probe + after) / 2, after
    return out


#: The transform pipelines write a sharded output, as a transform of a store of more than
#: ``SHARD_ABOVE_CHUNKS`` chunks does (the larger-than-memory stores of (c)): 64 transforms
#: of 24,576 x 256 rows into zstd Zarr took 1.65-1.67 s sharded and 1.04-1.18 s unsharded,
#: threaded (2 December 07:49 UTC), and the unsharded calibration predicted the (c) transforms
#: of the 256-feature stores 20-44 % short. A smaller, unsharded transform is over-predicted.
TRANSFORM_SHARD_ABOVE = 0

#: The (source, op) pipelines whose speed-up is measured on the threaded scheduler ...
THREAD_PIPELINES = (("gen", "sum"), ("gen", "gram"), ("gen", "randomized"),
                    ("gen", "incremental"), ("gen", "subdomain"), ("read", "sum"),
                    ("read", "gram"), ("read", "randomized"), ("read", "incremental"),
                    ("read", "transform"), ("read-none", "sum"), ("read-none", "gram"),
                    ("read-none", "transform"), ("read", "transform-dw"),
                    ("read-none", "transform-dw"))
#: ... on each LocalCluster configuration ...
CLUSTER_PIPELINES = (("read", "sum"), ("read", "gram"), ("read", "randomized"),
                     ("read", "incremental"))
#: ... and on the 2-worker ones (the larger-than-memory stores' configurations, 2x1 and 2x2).
STORE_CLUSTER_PIPELINES = (("read", "sum"), ("read", "gram"), ("read-none", "sum"),
                           ("read-none", "gram"))


def config_pipelines(cfg: str) -> tuple[tuple[str, str], ...]:
    """The (source, op) pipelines measured on configuration ``cfg``: the threaded scheduler's
    all; each LocalCluster the (d) sweep's; the 2-worker ones the (c) stores' too (2x2: only
    those)."""
    if cfg == "threads-2":
        return THREAD_PIPELINES
    if cfg == "2x2":
        return STORE_CLUSTER_PIPELINES
    if cfg == "2x1":
        return tuple(dict.fromkeys(CLUSTER_PIPELINES + STORE_CLUSTER_PIPELINES))
    return CLUSTER_PIPELINES


def _store_pipelines(entry: dict[str, Any], key: str, measured: dict[str, dict[str, float]]) -> None:
    """File the pipeline measurements of configuration ``key`` into a calibration entry."""
    for name, field in (("speedup", "speedup"), ("pipeline_inflation", "inflation"),
                        ("pipeline_cpu_per_row", "cpu_per_row"),
                        ("pipeline_fixed_s", "fixed_s"), ("pipeline_probe_s", "probe_s")):
        if field in measured:
            entry.setdefault(name, {})[key] = measured[field]


def _warm_workers(client: Any, d: int) -> None:
    def warm(d: int = d) -> None:
        from veob_dask.datasets import SyntheticMatrix

        SyntheticMatrix(10, d).rows(0, 1)
    client.run(warm)


def calibrate(cols: list[int], *, k: int = DEFAULT_K, q: int = DEFAULT_Q,
              n_keys: int = DEFAULT_KEYS, configs: tuple[str, ...] = ("1x1", "1x2", "2x1", "2x2"),
              repeat: int = 3, work: Path | None = None) -> dict[str, Any]:
    """Measure every constant of the model on this machine; returns a JSON-ready dict.

    Its stores (~6 GB for 64 and 256 features) go to ``work``, or to a temporary folder removed
    at the end."""
    kwargs = {"k": k, "q": q, "n_keys": n_keys, "configs": configs, "repeat": repeat}
    if work is not None:
        return _calibrate(cols, work=Path(work), **kwargs)
    with tempfile.TemporaryDirectory(prefix="veob_costmodel_") as tmp:
        return _calibrate(cols, work=Path(tmp), **kwargs)


def _calibrate(cols: list[int], *, k: int, q: int, n_keys: int, configs: tuple[str, ...],
               repeat: int, work: Path) -> dict[str, Any]:
    import dask

    from veob_dask.io.chunking import chunk_rows

    t_start = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    probe = speed_probe()
    cal: dict[str, Any] = {"version": 8, "created": dt.datetime.now(dt.UTC).isoformat(
        timespec="seconds"), "machine": machine_info(), "load_before": os.getloadavg(),
        "settings": {"k": k, "q": q, "n_keys": n_keys, "chunks_per_shard": CHUNKS_PER_SHARD,
                     "transform_shard_above": TRANSFORM_SHARD_ABOVE},
        "per_d": {}, "task_s": {}, "efficiency": {}, "tree": {}}
    for d in cols:
        c = chunk_rows(d)
        ker = _kernel_costs(d, c, k=k, q=q, n_keys=n_keys, repeat=repeat, work=work)
        ker["read"] = _read_costs(d, c, repeat=repeat, work=work, sum_cost=ker["sum"])
        ker["read-none"] = _read_costs(d, c, repeat=repeat, work=work, sum_cost=ker["sum"],
                                       codec="none")
        with dask.config.set(scheduler="sync"):
            _, t_sync = _pipeline_time(d, c, 8 * c)  # CPU seconds: the work itself
        cal["per_d"][str(d)] = {"chunk_rows": c, "ops": ker, "pipeline_sync_cpu_s": t_sync,
                                "efficiency": {}, "inflation": {}, "call_s": {}}
    with dask.config.set(scheduler="sync"):
        cal["task_s"]["sync"] = _task_overhead(1000)
    cal["graph_s_per_task"] = _graph_time(cols[0])
    cal["probe_s"] = (probe + speed_probe()) / 2  # the speed probe around the kernel costs
    for cfg in ("threads-2", *configs):
        _merge_config(cal, cfg, _config_in_child(cal, cfg, cols, work))
    cal["load_after"] = os.getloadavg()
    cal["calibration_s"] = time.perf_counter() - t_start
    return cal


def _config_measurements(cal: dict[str, Any], cfg: str, cols: list[int],
                         work: Path) -> dict[str, Any]:
    """Everything measured on one configuration ("threads-2", or "WxT" for a LocalCluster of
    W workers x T threads), in this process: task overhead, merge tree, fixed call costs, the
    Gram pipeline's efficiency and every (source, op) pipeline of ``_speedups``."""
    import contextlib

    import dask

    from veob_dask.runtime import local_cluster

    out: dict[str, Any] = {"per_d": {}}
    t0 = time.perf_counter()
    if cfg == "threads-2":
        ctx: Any = contextlib.nullcontext(None)
        settings: dict[str, Any] = {"scheduler": "threads", "num_workers": 2}
    else:
        w, t = (int(v) for v in cfg.split("x"))
        ctx, settings = local_cluster(w, threads_per_worker=t), {}
    with ctx as client, dask.config.set(settings):
        if client is not None:
            out["cluster_start_s"] = time.perf_counter() - t0
            _task_overhead(50)  # first tasks import on the workers
        out["task_s"] = _task_overhead(1000 if client is None else 300)
        if cfg in ("threads-2", "2x1"):
            out["tree"] = _tree_costs(cols[0], "threads" if client is None else "cluster-2x1")
        key = cfg if client is None else f"cluster-{cfg}"
        for d in cols:
            entry = cal["per_d"][str(d)]
            if client is not None:
                _warm_workers(client, d)
            c = entry["chunk_rows"]
            ops_called = CALL_OPS if client is None else ("sum", "gram", "randomized",
                                                          "incremental")
            before = speed_probe()
            call_s = _call_costs(d, ops_called, work)
            wall, cpu = _pipeline_time(d, c, 8 * c)
            after = speed_probe()
            over = 0.0 if client is None else 8 * (out["task_s"] - cal["task_s"]["sync"])
            out["per_d"][str(d)] = {
                "key": key, "call_s": call_s, "probe_s": (before + after) / 2,
                "efficiency": entry["pipeline_sync_cpu_s"] / max(wall - over, 1e-9),
                "inflation": cpu / entry["pipeline_sync_cpu_s"],
                "pipelines": _speedups(entry, d, work, config_pipelines(cfg), CAL_CHUNKS,
                                       probe=after)}
    return out


def _config_in_child(cal: dict[str, Any], cfg: str, cols: list[int],
                     work: Path) -> dict[str, Any]:
    """``_config_measurements`` in a fresh Python process, as each benchmark run is made.

    A LocalCluster's scheduler runs in the client's process: in the calibration's own
    process (1.2 GB of heap by then) the 2-worker pipelines ran 1.3-1.5x slower than the same
    calls in the fresh process of a run (1 December, 17:28 UTC)."""
    import subprocess

    spec = work / f"config_{cfg}.json"
    spec.write_text(json.dumps({"cal": cal, "cfg": cfg, "cols": cols, "work": str(work)}))
    proc = subprocess.run([sys.executable, __file__, "--config-child", str(spec)],
                          capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
    raise RuntimeError(f"calibrating configuration {cfg} failed:\n{tail}")


def _merge_config(cal: dict[str, Any], cfg: str, got: dict[str, Any]) -> None:
    """File one configuration's measurements into the calibration."""
    cal["task_s"]["threads" if cfg == "threads-2" else f"cluster-{cfg}"] = got["task_s"]
    if "tree" in got:
        cal["tree"]["threads" if cfg == "threads-2" else "cluster"] = got["tree"]
    if "cluster_start_s" in got:
        cal.setdefault("cluster_start_s", got["cluster_start_s"])
    for d, m in got["per_d"].items():
        entry = cal["per_d"][d]
        for name in ("call_s", "efficiency", "inflation", "probe_s"):
            if name in m:
                entry.setdefault(name, {})[m["key"]] = m[name]
        _store_pipelines(entry, m["key"], m["pipelines"])


def _graph_time(d: int) -> float:
    """Client seconds per task to build and optimise a Gram-fit graph (no compute)."""
    import dask

    from veob_dask.datasets import SyntheticMatrix
    from veob_dask.svd import gram_matrix

    n_tasks = 5000
    t0 = time.perf_counter()
    g = gram_matrix(SyntheticMatrix(n_tasks * 100, d).to_dask(100))
    (opt,) = dask.optimize(g)
    dict(opt.__dask_graph__())  # materialise the tasks, as submitting them does
    return (time.perf_counter() - t0) / n_tasks


# -------------------------------------------------------------------------------- prediction
def closed_pass(io: float, cpu: float, slots: int, cores: int) -> float:
    """Wall seconds of a pass in which each of ``slots`` task slots reads its chunk from the
    disk, waits for it, then computes it, and takes the next.

    The mean of the closed queueing network that describes it: the disk, one server, serves
    the pass's bytes in ``io`` seconds; the cores, ``m = min(slots, cores)`` servers, do its
    compute in ``cpu`` seconds of wall time when all ``m`` are busy (so ``m x cpu`` of one
    thread's time). With service times taken as exponential the network has product form:
    the state with ``k`` slots computing weighs ``prod_{j <= k} (m cpu / min(j, m)) x
    io^(slots - k)``, the disk works unless every slot computes, and the pass takes ``io / (1 -
    P(all computing))``. One slot gives ``io + cpu``; the limits are ``io`` and ``cpu``.

    It replaces ``max(io, io / S + cpu)``, which took each slot's reads at the disk's full
    bandwidth with no wait behind the other slots'. Where disk and compute are about equal
    that was short: the cold transform of the uncompressed 256-feature store, io-bound by
    ``max`` at 25.0 s, took 31.9-34.9 s in the chains of 1 December (``closed_pass``: 30.1 s).
    """
    if io <= 0 or slots < 1:
        return max(cpu, 0.0)
    if cpu <= 0:
        return io
    m = max(1, min(slots, cores))
    weight, total = 1.0, 1.0  # weights over io^slots, from k = 0
    for j in range(1, slots + 1):
        weight *= m * cpu / io / min(j, m)
        total += weight
    return io / (1.0 - weight / total)


def efficiency(cal: dict[str, Any], d: int, scheduler: str, workers: int, threads: int) -> float:
    """Measured speed-up of a configuration over one thread (1.0 for sync)."""
    eff = cal["per_d"][str(d)]["efficiency"]
    if scheduler == "sync":
        return 1.0
    if scheduler == "threads":
        return eff["threads-2"] if threads >= 2 else 1.0
    key = f"cluster-{workers}x{threads}"
    if key in eff:
        return eff[key]
    slots = min(workers * threads, cal["machine"]["cpus"] or 1)
    return eff.get("cluster-2x1", 1.0) * slots / 2


def task_overhead(cal: dict[str, Any], scheduler: str, workers: int, threads: int) -> float:
    ts = cal["task_s"]
    if scheduler == "cluster":
        key = f"cluster-{workers}x{threads}"
        return ts.get(key, ts.get("cluster-2x1", 0.0))
    return ts.get(scheduler, 0.0)


def _config_key(cal: dict[str, Any], entry: dict[str, Any], scheduler: str, workers: int,
                threads: int, *, cold: bool = False) -> str:
    """The calibrated configuration a run takes its pipelines from: its own, else — for a
    cluster of at least as many workers as CPUs, where more threads add no cores — the same
    workers with one thread each.

    A ``cold`` pass with more task slots than CPUs takes that one even where its own was
    measured: ``closed_pass`` lets at most one slot a CPU compute and gives the other slots
    the disk, so its compute rate is that of one slot a CPU. The warm pipeline of the
    configuration itself has every slot computing at once, sharing the cores, and would
    charge that twice (2 workers x 2 threads, zstd 256-feature store, 2 December 00:45 UTC:
    read pass 33.0 s, predicted 43.1 s from the 2x2 pipeline and 37.3 s from the 2x1 one).
    """
    if scheduler == "threads":
        return "threads-2"
    cpus = cal["machine"]["cpus"] or 1
    key = f"cluster-{workers}x{threads}"
    alt = f"cluster-{workers}x1"
    if alt in entry.get("speedup", {}) and workers >= cpus and (
            key not in entry.get("speedup", {}) or (cold and workers * threads > cpus)):
        return alt
    return key


def cold_direct_read_speedup(speedup: float, inflation: float, slots: int, cores: int) -> float:
    """Speed-up over one thread of a threaded read pass whose chunks come cold with
    ``O_DIRECT``, from the warm read pipeline's ``speedup`` and CPU ``inflation``.

    The warm pipeline reads through the page cache: its two threads keep both cores busy
    (``speedup x inflation`` is 2.0 for the zstd 256-feature store) but each row costs them
    1.5x its single-thread CPU, the copies out of the page cache contending. A cold pass read
    with ``O_DIRECT`` makes no such copies: the threaded read passes of the zstd store spent
    0.70-0.71 CPU-us a row against 0.74 single-threaded (eighth chain, 2 December 14:50 UTC),
    where the model, charging the warm inflation, predicted 1.12 and the passes 28-30 % long
    (+57 % with 4 threads in the seventh chain). So the pass's cores, as busy as the warm
    pipeline's (at most one a slot and one a CPU), each do a row at its single-thread cost.
    The Gram fit's passes over the same store kept their inflation (1.44 CPU-us a row against
    1.35 single-threaded) and their warm speed-up predicted them within 17 %: only the read
    pass, whose work is the decode, takes this one.
    """
    return max(speedup, min(speedup * inflation, slots, cores))


def wave_factor(rows: int, chunk_rows: int, slots: int) -> float:
    """The pass's span in chunk times over its work spread evenly on ``slots`` slots.

    The tasks run in waves of ``slots``; the last wave lasts a whole chunk unless its only task
    is the partial last chunk, which lasts its share (1e6 rows in chunks of 98,304 on 2 slots:
    5.17 chunk times for 5.09 of work, 1.02, where counting the tasks as whole chunks gave 1.09).
    """
    if rows <= 0 or chunk_rows <= 0 or slots <= 0:
        return 1.0
    tasks = math.ceil(rows / chunk_rows)
    full_waves = math.ceil(tasks / slots)
    rem = rows - (tasks - 1) * chunk_rows  # rows of the last task
    last = rem / chunk_rows if tasks - slots * (full_waves - 1) == 1 else 1.0
    return (full_waves - 1 + last) / (rows / chunk_rows / slots)


def disk_slots(op: str, scheduler: str, slots: int, cores: int, codec: str = "none",
               direct_writes: bool = True) -> int:
    """Task slots that wait on the disk in ``closed_pass``: all of them, but for a transform
    of an uncompressed store written behind its tasks (``veob_dask.io.writebehind``: threads
    and sync) with ``O_DIRECT`` (``direct_writes``) at most one a core.

    The writer thread keeps the disk busy while the tasks compute, as further slots would: with
    2 threads the disk was busy 91-93 % of a cold transform of the 32.8 GB store (79-84 %
    without write-behind, 2 December 10:40 UTC). In the seventh chain (2 December 12:00-12:50
    UTC) 4 threads on 2 cores took about as long as 2 (17.5 against 16.9 s, 29.6 against
    26.2 s; the zstd store's 36.6 against 46.4 s at speed probes 0.91 and 1.10), where
    ``closed_pass`` with 4 slots predicted them 15-25 % short; with this rule the eighth
    chain's six transforms were predicted within -13 % to +4 % (14:11-15:06 UTC).

    A zstd store's transform keeps all its slots: its tasks spend most of their time in the
    decode, so a task waiting on the disk leaves a core to another, and 4 threads ran faster
    than 2 in the seventh, twelfth and thirteenth chains (34.3 and 32.3 s against 44.7 and
    38.9 s in the thirteenth, 3 December). Capped, the model predicted those 4-thread transforms +48 %
    (twelfth chain), +28 % and +28 % (thirteenth); uncapped, +18 %, -1 % and +1 %, no other
    run moving (``benchmarks/records/scale-2026-12-03-chain14/whatif_codec_slots.py``).

    An output written through the page cache (smaller than an eighth of memory) reaches the
    disk after the pass: the reads alone keep it busy, and every slot waits on them. The
    38.9 GB uncompressed store's 4-thread transform (2.4 GB output) took 18.4, 24.7 and 23.9 s
    where the cap predicted it +27 %, +7 % and +32 % (2-4 December); uncapped, +4 %, -10 % and
    +5 %, no other run moving
    (``benchmarks/records/scale-2026-12-04-chain16/whatif_dw_slots.py``).
    """
    if op == "transform" and scheduler != "cluster" and codec != "zstd" and direct_writes:
        return min(slots, cores)
    return slots


def predict(cal: dict[str, Any], *, op: str, rows: int, cols: int, chunk_rows: int,
            source: str = "gen", scheduler: str = "threads", workers: int = 1,
            threads: int = 2, cold_bytes: int = 0, q: int = DEFAULT_Q,
            disk_bytes_per_s: float | None = None, codec: str = "zstd",
            readahead: bool = False, direct_io: bool = False,
            direct_writes: bool = False, probe_s: float | None = None) -> dict[str, float]:
    """Predicted seconds of one run and its terms.

    ``op``: "gen"/"read" (a pass that sums the source: the floor) or a kernel op; ``source``:
    "gen" (synthetic, keys too for "subdomain") or "read" (a Zarr store; ``cold_bytes`` of it
    come from disk each pass when the cache was dropped, at ``disk_bytes_per_s`` — by default
    the bandwidth measured on the calibration store; ``codec`` is the store's, "zstd" or
    "none"; ``readahead``: whether the library's read-ahead was on; ``direct_io``: whether
    the store was read with ``O_DIRECT``, which spares the kernel's copies into and out of
    the page cache: a cold pass's rows then cost the decode measured with ``O_DIRECT``,
    ``direct_per_row``, where the calibration has it, else the warm decode);
    ``direct_writes``: whether a transform's output was written with ``O_DIRECT`` (its
    pipeline measured so, where the calibration has it; the calibration reads warm and its
    writes go on behind the tasks, so that speed-up is the compute's, and the output's bytes
    stay in the disk term, which a cold pass shares with its reads); ``probe_s``: the speed
    probe (``speed_probe``)
    measured beside the run — the compute terms (work, task overhead, fixed cost; not the
    disk) are scaled by its ratio to the probe measured beside the pipeline they come from
    (else beside the configuration's fixed costs, else beside the kernel costs).
    """
    d = str(cols)
    entry = cal["per_d"][d]
    ops = entry["ops"]
    n, tasks = rows, math.ceil(rows / chunk_rows)
    read = ops["read" if codec == "zstd" else f"read-{codec}"]
    if source == "read" and cold_bytes and direct_io:
        src_row = read.get("direct_per_row", read["per_row"])
    elif source == "read":
        src_row = read.get("cold_per_row", read["per_row"]) if cold_bytes else read["per_row"]
    else:
        src_row = ops["gen"]["per_row"] + (ops["keys"]["per_row"] if op == "subdomain" else 0)
    kern = ops["sum"] if op in ("gen", "read") else ops[op]
    if op == "transform":  # its output takes the store's codec
        kern = ops.get(transform_kernel(codec, direct_writes),
                       ops.get(transform_kernel(codec, False), kern))
    n_pass = passes(op, q)
    disk_bw = disk_bytes_per_s or read.get("disk_bytes_per_s")
    key = _config_key(cal, entry, scheduler, workers, threads,
                      cold=bool(cold_bytes and disk_bw and not readahead))
    src_name = "gen" if source != "read" else ("read" if codec == "zstd" else f"read-{codec}")
    pipeline = f"{src_name}:{'sum' if op in ('gen', 'read') else op}"
    if op == "transform" and direct_writes and entry.get("speedup", {}).get(key, {}).get(
            f"{pipeline}-dw"):
        pipeline = f"{pipeline}-dw"
    measured = entry.get("speedup", {}).get(key, {}).get(pipeline)
    eff = measured or efficiency(cal, cols, scheduler, workers, threads)
    slots = 1 if scheduler == "sync" else threads * (workers if scheduler == "cluster" else 1)
    inflation = (entry.get("pipeline_inflation", {}).get(key, {}).get(pipeline)
                 or entry.get("inflation", {}).get(key, 1.0))
    cores = cal["machine"]["cpus"] or 1
    if measured and scheduler == "threads" and op == "read" and cold_bytes and direct_io:
        eff, inflation = cold_direct_read_speedup(eff, inflation, slots, cores), 1.0
    waves = wave_factor(rows, chunk_rows, slots)
    speed = 1.0
    if probe_s:
        ref = (entry.get("pipeline_probe_s", {}).get(key, {}).get(pipeline)
               or entry.get("probe_s", {}).get(key) or cal.get("probe_s"))
        speed = probe_s / ref if ref else 1.0
    cpu = n * (src_row + kern["per_row"]) / eff * waves * speed
    # a cold transform's output shares the disk with its reads (k float32 columns a row)
    out_bytes = (n * cal.get("settings", {}).get("k", DEFAULT_K) * 4
                 * (read.get("compression", 1.0) if codec == "zstd" else 1.0)
                 if op == "transform" else 0.0)
    io = (cold_bytes + out_bytes) / disk_bw if (cold_bytes and disk_bw) else 0.0
    # a pipeline's measured speed-up already holds its per-task overhead
    over = 0.0 if measured else tasks * max(0.0, task_overhead(cal, scheduler, workers, threads)
                                            - cal["task_s"]["sync"]) / eff * speed
    # without read-ahead a task waits for its own chunk, then computes (``closed_pass``);
    # read-ahead overlaps both
    per_pass = (max(cpu, io) if readahead
                else closed_pass(io, cpu, disk_slots(op, scheduler, slots, cores, codec,
                                                     direct_writes), cores)) + over
    # the fixed wall time of a call: the intercept of its pipeline's measurement, else the
    # wall time of the same call on one chunk, else the kernel's CPU intercept
    call = entry.get("call_s", {}).get(key, {}).get("sum" if op in ("gen", "read") else op)
    intercept = entry.get("pipeline_fixed_s", {}).get(key, {}).get(pipeline)
    fixed = speed * (intercept if intercept is not None
                     else kern["fixed"] if call is None else call)
    total = fixed + n_pass * per_pass
    if intercept is not None and intercept < 0:
        # the pipeline's line passes through its smaller call's time and lies below the
        # origin (its chunks cost more in the window than at its start): a run smaller than
        # that call takes at least its share of it, since the first chunks cost the most
        small = pipeline_chunks("sum" if op in ("gen", "read") else op, chunk_rows,
                                n_keys=DEFAULT_KEYS) * chunk_rows
        row_wall = n_pass * cpu / (n * waves)  # warm wall seconds per row, all passes
        total = max(total, (fixed + small * row_wall) * min(1.0, n / small))
    work_cpu = cpu * eff / waves / speed  # CPU seconds of the work itself (one thread's worth)
    return {"predicted_s": total, "predicted_cpu_s": kern["fixed"] + n_pass * work_cpu * inflation,
            "work_s": n_pass * cpu, "io_s": n_pass * io, "overhead_s": n_pass * over,
            "fixed_s": fixed, "passes": n_pass, "efficiency": eff, "speed": speed}


# ----------------------------------------------------------------------------- extrapolation
def _row_cpu(cal: dict[str, Any], cols: int, op: str) -> float:
    """CPU seconds per row (all passes) of reading a zstd store and running ``op`` on a
    worker that shares its machine with another.

    The CPU per row of the pipeline measured on the 2-worker cluster, else on 2 threads (both
    hold what running beside another task costs: memory bandwidth, caches), else of the
    generated pipeline with the generator's cost swapped for the store's decode; else the
    kernels' single-thread costs, inflated by the 2-worker cluster's CPU inflation.
    """
    entry = cal["per_d"][str(cols)]
    ops = entry["ops"]
    cpu = entry.get("pipeline_cpu_per_row", {})
    for key in ("cluster-2x1", "threads-2"):
        if (v := cpu.get(key, {}).get(f"read:{op}")) is not None:
            return v
    if (v := cpu.get("threads-2", {}).get(f"gen:{op}")) is not None:
        src = ops["gen"]["per_row"] + (ops["keys"]["per_row"] if op == "subdomain" else 0.0)
        return max(v - src, 0.0) + ops["read"]["per_row"]
    infl = max(1.0, entry.get("inflation", {}).get("cluster-2x1", 1.0))
    return (ops["read"]["per_row"] + ops[op]["per_row"]) * passes(op, DEFAULT_Q) * infl


def extrapolate(cal: dict[str, Any], *, rows: int, cols: int, workers: list[int],
                threads: int, objstore_mbps: list[float], aggregate_gbps: float,
                net_mbps: float = 1000.0, op: str = "gram") -> list[dict[str, Any]]:
    """Predicted time of one ``op`` fit of a ``rows x cols`` float32 store in object storage.

    Per worker: ``threads`` dedicated cores (CPU costs as calibrated here), reading at most
    ``objstore_mbps`` MB/s (compressed bytes); all workers together at most
    ``aggregate_gbps``. The central scheduler spends ``t_task(cluster)`` per task serially,
    the client ``graph_s_per_task`` per task; the merge tree adds depth x (level latency +
    partial bytes / network).
    """
    from veob_dask.io.chunking import MAX_TASKS, chunk_rows

    d = str(cols)
    ops = cal["per_d"][d]["ops"]
    comp = ops["read"]["compression"]
    n_pass = passes(op, DEFAULT_Q)
    row_cpu = _row_cpu(cal, cols, op)
    sched = cal["task_s"].get("cluster-2x1", 1e-3)
    level = cal["tree"].get("cluster", cal["tree"].get("threads"))
    fan = 4
    node = level["by_fan_in"][str(fan)]["seconds"] / max(1, level["by_fan_in"][str(fan)]["depth"])
    partial_bytes = {"gram": (cols + 1) ** 2 * 8, "incremental": 2 * DEFAULT_K * (cols + 1) * 8,
                     "randomized": cols * (DEFAULT_K + 20) * 8,
                     "subdomain": DEFAULT_KEYS * (cols + 1) ** 2 * 8}.get(op, 8)
    out = []
    for w in workers:
        c = chunk_rows(cols, "float32", n_rows=rows, workers=w, threads_per_worker=threads)
        tasks = math.ceil(rows / c)
        depth = math.ceil(math.log(tasks, fan) - 1e-9) if tasks > 1 else 0
        for mbps in objstore_mbps:
            stored_row = cols * 4 * comp
            t_cpu = rows * row_cpu / (w * threads)
            t_io = rows * stored_row * n_pass / (w * mbps * 1e6)
            t_agg = rows * stored_row * n_pass / (aggregate_gbps * 1e9)
            slots = w * threads
            waves = math.ceil(tasks / slots) / (tasks / slots)
            t_work = max(max(t_cpu, t_io) * waves, t_agg)
            t_sched = tasks * n_pass * sched
            t_graph = tasks * n_pass * cal["graph_s_per_task"]
            t_tree = depth * (node + partial_bytes / (net_mbps * 1e6))
            total = max(t_work, t_sched) + t_graph + t_tree
            terms = {"workers (compute)": t_work if t_cpu >= t_io else 0,
                     "object store": t_work if t_cpu < t_io else 0,
                     "aggregate bandwidth": t_agg, "scheduler": t_sched,
                     "client graph": t_graph, "merge tree": t_tree}
            binding = max(terms, key=lambda k: terms[k])
            notes = []
            if tasks >= MAX_TASKS:
                notes.append("task cap: chunks grow past 24 MiB")
            if c * cols * 4 * 3 * threads > 4e9:
                notes.append("chunk x threads near a 4 GB worker")
            if t_sched > 0.2 * total:
                notes.append("scheduler-bound")
            if partial_bytes * fan > 1e9:
                notes.append("merge partials > 1 GB per node")
            out.append({"rows": rows, "cols": cols, "op": op, "workers": w,
                        "threads_per_worker": threads, "objstore_mbps": mbps,
                        "chunk_rows": c, "tasks": tasks, "predicted_s": total,
                        "work_s": t_work, "scheduler_s": t_sched, "graph_s": t_graph,
                        "tree_s": t_tree, "binding": binding, "notes": "; ".join(notes)})
    return out


def constants_table(cal: dict[str, Any]) -> list[dict[str, Any]]:
    """The calibrated constants as rows for printing."""
    rows = []
    for d, entry in cal["per_d"].items():
        row_bytes = int(d) * 4
        for op, v in entry["ops"].items():
            mbps = row_bytes / v["per_row"] / 1e6
            rows.append({"cols": int(d), "chunk_rows": entry["chunk_rows"], "constant": op,
                         "us_per_row": v["per_row"] * 1e6, "MB_per_s_1thread": mbps,
                         "fixed_s": v.get("fixed")})
        read = entry["ops"]["read"]
        if read.get("disk_bytes_per_s"):
            rows.append({"cols": int(d), "constant": "cold disk read (all threads)",
                         "MB_per_s_1thread": read["disk_bytes_per_s"] / 1e6})
        for cfg, e in entry["efficiency"].items():
            infl = entry.get("inflation", {}).get(cfg)
            rows.append({"cols": int(d), "constant": f"speed-up {cfg} (CPU inflation "
                                                     f"{infl or 1:.2f})", "fixed_s": e})
    for sched, t in cal["task_s"].items():
        rows.append({"constant": f"task overhead {sched} (CPU)", "ms_per_task": t * 1e3})
    rows.append({"constant": "client graph per task", "us_per_row": cal["graph_s_per_task"] * 1e6})
    for label, tree in cal["tree"].items():
        for f, v in tree["by_fan_in"].items():
            rows.append({"constant": f"tree {label} fan-in {f} ({tree['leaves']} leaves, "
                                     f"depth {v['depth']})", "fixed_s": v["seconds"]})
    return rows


def _probe_where(cal: dict[str, Any]) -> str:
    """Where a calibration's speed probes ran: in a process of their own from version 7."""
    return "child" if cal.get("version", 0) >= 7 else "in-process"


def merge_calibrations(cals: list[dict[str, Any]]) -> dict[str, Any]:
    """One calibration from several made on the same machine and code, the last one's
    constants with each pipeline averaged over all of them.

    A pipeline's wall seconds per row, and its fixed wall seconds, are taken over the speed
    probe measured beside it in each calibration, averaged, and put back at the last one's
    probe (``E`` and ``pipeline_fixed_s`` rewritten to match); its CPU per row and CPU
    inflation are averaged as they are. Everything else (kernel costs, task overheads, the
    disk, fixed call costs) is the last calibration's. Fixed seconds are averaged only over the
    calibrations of the last one's version (version 6 draws the line through the smaller call;
    the wall per row is measured the same way since version 5), and pipelines only over those
    whose speed probe ran where the last one's did (``_probe_where``: in a process of its own
    since version 7, whose transform pipelines also write sharded outputs; transform pipelines
    only over the last one's version: version 8 writes uncompressed outputs a chunk at a time, in
    place, and also times them written with ``O_DIRECT``). Two calibrations, of 1 December
    23:54 and 2 December 00:59 UTC, put the same pipeline's wall per row (over its probe) 11 %
    apart in the median over 61 pipelines, 22 of them more than 15 % and 6 more than 25 % apart:
    the mean of n calibrations divides that noise by about sqrt(n).
    """
    if not cals:
        raise ValueError("no calibration to merge")
    out = copy.deepcopy(cals[-1])
    cals = [cal for cal in cals if _probe_where(cal) == _probe_where(out)]
    for d, entry in out["per_d"].items():
        for key, pipes in entry.get("speedup", {}).items():
            for name in pipes:
                walls, fixed, cpu, infl = [], [], [], []
                for cal in cals:
                    if "transform" in name and cal.get("version") != out.get("version"):
                        continue  # version 8 writes uncompressed outputs in place
                    e = cal["per_d"].get(d, {})
                    speedup = e.get("speedup", {}).get(key, {}).get(name)
                    probe = e.get("pipeline_probe_s", {}).get(key, {}).get(name)
                    if not speedup or not probe:
                        continue
                    walls.append(_pipeline_row_work(e, name) / speedup / probe)
                    f = e.get("pipeline_fixed_s", {}).get(key, {}).get(name)
                    if f is not None and cal.get("version") == out.get("version"):
                        fixed.append(f / probe)
                    if (c := e.get("pipeline_cpu_per_row", {}).get(key, {}).get(name)) is not None:
                        cpu.append(c)
                    if (i := e.get("pipeline_inflation", {}).get(key, {}).get(name)) is not None:
                        infl.append(i)
                probe = entry.get("pipeline_probe_s", {}).get(key, {}).get(name)
                if len(walls) < 2 or not probe:
                    continue
                pipes[name] = _pipeline_row_work(entry, name) / (statistics.fmean(walls) * probe)
                if fixed and name in entry.get("pipeline_fixed_s", {}).get(key, {}):
                    entry["pipeline_fixed_s"][key][name] = statistics.fmean(fixed) * probe
                if cpu and name in entry.get("pipeline_cpu_per_row", {}).get(key, {}):
                    entry["pipeline_cpu_per_row"][key][name] = statistics.fmean(cpu)
                if infl and name in entry.get("pipeline_inflation", {}).get(key, {}):
                    entry["pipeline_inflation"][key][name] = statistics.fmean(infl)
    out["merged_from"] = [cal.get("created") for cal in cals]
    return out


def load_or_calibrate(path: Path, cols: list[int], *, recalibrate: bool = False,
                      **kwargs: Any) -> dict[str, Any]:
    """The calibration at ``path`` if it covers ``cols``; else calibrate and save it there."""
    if path.exists() and not recalibrate:
        cal = json.loads(path.read_text())
        if all(str(d) in cal["per_d"] for d in cols):
            return cal
    cal = calibrate(cols, **kwargs)
    save_calibration(cal, path)
    return cal


def save_calibration(cal: dict[str, Any], path: Path) -> None:
    """Write ``cal`` to ``path`` as JSON: to a temporary file first, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cal, indent=1))
    os.replace(tmp, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cols", default="64,256", help="feature counts to calibrate")
    p.add_argument("--load", default=None, help="reuse this calibration JSON")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="merge these calibrations (same machine and code) into --out")
    p.add_argument("--out", default=str(RESULTS_DIR / "cost_model.json"))
    p.add_argument("--rows", type=float, default=1e10)
    p.add_argument("--workers", default="10,100,1000")
    p.add_argument("--threads-per-worker", type=int, default=2)
    p.add_argument("--objstore-mbps", default="100,400",
                   help="object-store read bandwidth per worker, MB/s (compressed)")
    p.add_argument("--aggregate-gbps", type=float, default=100.0,
                   help="object-store bandwidth of all workers together, GB/s")
    p.add_argument("--ops", default="gram,subdomain")
    p.add_argument("--configs", default="1x1,1x2,2x1,2x2",
                   help="LocalCluster configs to calibrate")
    p.add_argument("--config-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.config_child:  # one configuration, in its own process (see _config_in_child)
        spec = json.loads(Path(args.config_child).read_text())
        got = _config_measurements(spec["cal"], spec["cfg"], spec["cols"], Path(spec["work"]))
        print("RESULT " + json.dumps(got), flush=True)
        return
    cols = [int(v) for v in args.cols.split(",")]
    if args.merge:
        cal = merge_calibrations([json.loads(Path(f).read_text()) for f in args.merge])
        save_calibration(cal, Path(args.out))
        print(f"merged {len(args.merge)} calibrations into {args.out}")
    elif args.load:
        cal = json.loads(Path(args.load).read_text())
    else:
        cal = load_or_calibrate(Path(args.out), cols, recalibrate=True,
                                configs=tuple(args.configs.split(",")))
        print(f"calibration: {cal['calibration_s']:.1f} s, load {cal['load_before']} -> "
              f"{cal['load_after']}; saved to {args.out}")
    print_table(constants_table(cal), ["cols", "chunk_rows", "constant", "us_per_row",
                                       "MB_per_s_1thread", "ms_per_task", "fixed_s"])
    rows = []
    for op in args.ops.split(","):
        for d in cols:
            rows += extrapolate(cal, rows=int(args.rows), cols=d,
                                workers=[int(w) for w in args.workers.split(",")],
                                threads=args.threads_per_worker,
                                objstore_mbps=[float(v) for v in args.objstore_mbps.split(",")],
                                aggregate_gbps=args.aggregate_gbps, op=op)
    print(f"\nextrapolation: {args.rows:.0e} rows, {args.threads_per_worker} threads per worker, "
          f"aggregate object store {args.aggregate_gbps} GB/s")
    print_table(rows, ["op", "cols", "workers", "objstore_mbps", "chunk_rows", "tasks",
                       "predicted_s", "work_s", "scheduler_s", "graph_s", "tree_s", "binding",
                       "notes"])


if __name__ == "__main__":
    main()
