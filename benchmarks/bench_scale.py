"""Scale: a billion rows, a store larger than memory, workers x threads, against a cost model.

Usage (parts are selectable; sizes on the command line; results of parts not re-run are kept
in the JSON, so parts can be run on different days)::

    python benchmarks/bench_scale.py --parts a --a-rows 1e6,1e7,1e8
    python benchmarks/bench_scale.py --parts a --a-rows 1e9 --repeat 1        # quiet machine
    python benchmarks/bench_scale.py --parts b --b-rows 1e7 --keys 1000
    python benchmarks/bench_scale.py --parts c --c-rows 32e6 --c-cols 256     # 32.8 GB store
    python benchmarks/bench_scale.py --parts d --d-rows 2e6

(a) ``veob_dask.datasets.SyntheticMatrix`` rows x 64 float32, generated chunk by chunk (no
disk), through the exact one-pass Gram fit on the threaded scheduler (2 threads), against the
generation-only pass (``x.sum()``, the floor) and the closed-form singular values.
(b) the same source with ``--keys`` subdomain keys, fitted by today's ``SubdomainEmbedding`` in
one pass; accuracy against the closed-form per-key Gram matrices.
(c) the source written once as a sharded Zarr v3 store (inner chunks = one task's read,
``CHUNKS_PER_SHARD`` chunks per shard file); the page cache is dropped before every timed
repetition when the process may (root), else the output says the reads were warm, and the
disk's bandwidth is probed before each repetition and after the last (``disk_probes_bps``;
``DISK_PROBE_BYTES``), after one untimed cold read of the whole store; one read
pass, the Gram fit on the threaded scheduler (2 threads, and 4: two a core, so that a core
computes while a thread waits for its ``O_DIRECT`` read) and on a 2-worker LocalCluster, and
the transform of the whole store to Zarr.
(d) a small store, warm, on LocalClusters of 1x1, 1x2 and 2x1 workers x threads: read pass,
Gram, randomized (``n_iter=4``) and incremental fits.

Every run is a fresh child process (imports and cluster start-up are not timed) and times the
median of ``--repeat`` calls; a warm run makes more, up to ``MAX_CALLS``, until its calls add up
to ``--min-time`` seconds (``times`` lists them all); ``peak_mb`` is
the peak RSS of the child's whole process tree (client + scheduler + nannies + workers, sampled
every 20 ms), ``idle_mb`` the same before the first call, ``cpu_s`` the CPU seconds of that tree
during the call. ``read_pass_ratio`` divides by the floor of the same part: the generation pass
(a, b), the cold threaded read pass (c), the read pass of the same configuration (d).
``predicted_s`` is the cost model's prediction (``cost_model.py``, calibrated on this machine
at the start unless ``--calibration`` names a calibration that covers the sizes), its compute
terms scaled by the speed probe (``cost_model.speed_probe``, about 1.5 s) measured in the
child before the first call, before each later call that follows a call of at least
``PROBE_BETWEEN_S`` seconds, and after the last (``probes_s``; ``probe_s`` their median)
against the probe measured beside the calibration's pipeline; ``predicted_before_s`` takes the
first probe alone, ``predicted_unprobed_s`` the calibration as it is (``pred_err_*`` each).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS_DIR,
    PeakRSS,
    Runnable,
    drop_page_cache,
    machine_info,
    principal_angle_deg,
    print_table,
    store_bytes,
    sv_relerr,
    tree_cpu_s,
    write_result_json,
    write_sharded_store,
)
from cost_model import (
    CHUNKS_PER_SHARD,
    DEFAULT_K,
    DEFAULT_Q,
    disk_bandwidth,
    load_or_calibrate,
    op_callable,
    predict,
    probe_pids,
    sample_files,
    speed_probe,
)

NAME = "bench_scale"
#: Read-ahead distance of the (c) variants with read-ahead on.
_RA = 512 * 2**20
FIT_OPS = ("gram", "randomized", "incremental")
#: Bytes of a store's shards read by each disk probe of (c). The disk of this VM drifts within
#: minutes and swings within seconds: 4 GiB read with ``O_DIRECT`` in 24 MiB blocks gave
#: 2,248 and then 911 MB/s one after the other, and 1,000-1,130 MB/s with one reader against
#: 1,460-1,940 with two (2 December 05:20 UTC). So a cold run probes the disk before each call
#: and after its last, as it reads (its task slots as readers), and is predicted with the
#: highest of its probes (``disk_run_bps``); ``predicted_part_disk_s`` takes the part's one
#: probe, as until 2 December. The highest, not the median: a 2 GB probe that meets one of
#: the disk's dips reads low, while a 13 s pass rides it out. The probe between a run's two
#: calls, just after a cold pass, was the lowest of the run's three in 6, 9 and 9 of the 10
#: runs of the 32.8 GB store in the eighth chain's three runs of it (2 December 14:11-15:49
#: UTC), while the call after it was as fast as the one before or faster (15.1 then 12.9 s;
#: 13.0 then 12.3 s). Re-predicted from the same JSON, the median of the three put 43 of the
#: chain's 50 (c) runs within 25 %, the highest 48 (``cost_model.predict`` on cold threaded
#: read passes made it 50).
DISK_PROBE_BYTES = 2 * 10**9
#: The disk is taken as settled after a store is written when this many probes in a row agree
#: within ``SETTLE_SPREAD`` of their median (``_settle_disk``), or after ``SETTLE_MAX_S``.
SETTLE_PROBES = 3
SETTLE_SPREAD = 0.2
SETTLE_MAX_S = 600.0
#: A run probes the machine's speed before a call too when the call before it took at least
#: this long, so that the median of three or more probes, not the mean of two, scales its
#: compute terms. In two (c) runs of the seventh chain one probe of two was off alone: 0.495 s
#: before and 0.324 s after the 256-feature uncompressed store's read pass, 0.319 and 0.430 s
#: around the zstd store's transform (2 December 12:15-12:50 UTC).
#: Not between shorter calls: a probe between 0.15 s calls slowed the call after it (see
#: ``child``).
PROBE_BETWEEN_S = 2.0


# --------------------------------------------------------------------------- child process side
def _source(spec: dict[str, Any]) -> tuple[Any, Any]:
    """(SyntheticMatrix, dask array) of a run's source."""
    from veob_dask.datasets import SyntheticMatrix

    src = spec["source"]
    if src["kind"] == "gen":
        matrix = SyntheticMatrix(**src["matrix"])
        return matrix, matrix.to_dask(spec["chunk_rows"])
    import zarr

    from veob_dask.io import read_array

    group = zarr.open_group(src["path"], mode="r")
    params = dict(group.attrs["synthetic"])
    params["spectrum"] = None if params["spectrum"] is None else tuple(params["spectrum"])
    return SyntheticMatrix(**params), read_array(src["path"])  # the library's reader


def _accuracy(op: str, matrix: Any, model: Any, k: int) -> dict[str, float]:
    if op in FIT_OPS:
        s_ref, v_ref = matrix.exact_svd()
        return {"sv_relerr": sv_relerr(model.singular_values_, s_ref[:k]),
                "angle_deg": principal_angle_deg(model.components_[:k], v_ref[:k])}
    if op == "subdomain":
        keys, grams, _ = matrix.key_grams()
        errs, angles = [], []
        for j, key in enumerate(keys):
            pos = int(np.searchsorted(model.domains_, key))
            lam, vec = np.linalg.eigh(grams[j])
            order = np.argsort(lam)[::-1][:k]
            s_ref = np.sqrt(np.clip(lam[order], 0, None))
            errs.append(sv_relerr(model.singular_values_[pos], s_ref))
            if j < 50:  # angles of the first 50 keys (each a small SVD)
                angles.append(principal_angle_deg(model.components_[pos], vec[:, order].T))
        return {"sv_relerr": max(errs), "angle_deg": max(angles), "keys_checked": len(keys),
                "passes": int(model.n_passes_), "solver": model.solver_}
    return {}


def _warm(client: Any, matrix: Any, x: Any) -> None:
    """Imports and per-process caches before timing, everywhere tasks will run."""
    def warm(params: dict[str, Any]) -> None:
        from veob_dask.datasets import SyntheticMatrix

        params = dict(params, spectrum=None if params["spectrum"] is None
                      else tuple(params["spectrum"]))
        SyntheticMatrix(**params).rows(0, 1)
        import veob_dask.subdomain  # noqa: F401
        import veob_dask.svd  # noqa: F401
    if client is not None:
        client.run(warm, matrix.describe())
    else:
        warm(matrix.describe())


#: Most calls a warm run makes to reach ``--min-time``. The median of 3 calls of a 0.2 s run is
#: not precise enough to test a prediction against: the 1e6-row runs of (a) took 0.156-0.242 s
#: (floor) and 0.198-0.319 s (Gram fit) within one run, 2 December 03:40 UTC.
MAX_CALLS = 15
#: Timed seconds a warm run's calls add up to at least (``--min-time``), so that runs of about
#: a second take five or more calls. With 2 s the 1e7-row runs took three, and in the ninth
#: chain two of three calls of (a)'s generation pass met one of this VM's slow spells: 1.13,
#: 1.08 and 0.76 s, predicted 0.73 s (2 December 16:30 UTC); the same pass timed five times
#: twice a few minutes later took 0.69-1.23 and 0.76-1.20 s, medians 0.71 and 0.79 s, with the
#: page cache empty or full alike (``/work/scratch/lead/s16/cacheexp.py``).
MIN_TIME_S = 5.0


def child(spec: dict[str, Any]) -> dict[str, Any]:
    import contextlib

    import dask

    from veob_dask.runtime import local_cluster

    matrix, x = _source(spec)
    keys = matrix.keys(spec["chunk_rows"]) if spec["op"] == "subdomain" else None
    if spec["source"]["kind"] == "store" and keys is not None:
        raise SystemExit("subdomain runs use the generated source")
    work = Path(spec["work"])
    work.mkdir(parents=True, exist_ok=True)
    if spec["scheduler"] == "cluster":
        ctx: Any = local_cluster(spec["workers"], threads_per_worker=spec["threads"])
    else:
        ctx = contextlib.nullcontext(None)
    with ctx as client, dask.config.set(
            {"scheduler": "threads", "num_workers": spec["threads"]} if client is None else {}):
        _warm(client, matrix, x)
        with PeakRSS(exclude=probe_pids()) as idle:
            time.sleep(0.3)
        call = op_callable(spec["op"], x, k=spec["k"], q=spec["q"], keys=keys,
                           out=work / "embedding.zarr", codec=spec.get("codec", "zstd"))
        times, cpus, runnable, peak, res, dropped = [], [], [], 0.0, None, None
        # the machine's speed before the first call and after the last, and between calls
        # only after a long one (``PROBE_BETWEEN_S``): the probe (a Gram fit) slowed the next
        # call of a short floor pass (1e6 rows, 12 calls, 2 December 04:25 UTC: median 0.157
        # and 0.164 s with a probe after each call, 0.143 and 0.126 s back to back, as the
        # calibration times its calls)
        probes = [speed_probe()]
        disk = spec.get("disk_probe") if spec.get("cold") else None
        disk_probes: list[float] = []
        while len(times) < spec["repeat"] or (
                sum(times) < spec.get("min_time_s", 0.0) and len(times) < MAX_CALLS):
            if times and times[-1] >= PROBE_BETWEEN_S:
                probes.append(speed_probe())
            if disk:  # the disk's bandwidth just before each call (it drifts within minutes)
                disk_probes.append(_disk_probe(disk, disk["offset"] + len(disk_probes)))
            if spec.get("cold"):
                dropped = drop_page_cache()
            with PeakRSS(exclude=probe_pids()) as mem, Runnable() as run:
                c0, t0 = tree_cpu_s(), time.perf_counter()
                res = call()
                times.append(time.perf_counter() - t0)
                cpus.append(tree_cpu_s() - c0)
            peak = max(peak, mem.peak_mb)
            if run.mean is not None:
                runnable.append(run.mean)
        if disk:
            disk_probes.append(_disk_probe(disk, disk["offset"] + len(disk_probes)))
        probes.append(speed_probe())
    out: dict[str, Any] = {"median_s": statistics.median(times), "times": times,
                           "cpu_s": statistics.median(cpus), "peak_mb": peak,
                           "idle_mb": idle.peak_mb, "load": os.getloadavg()[0],
                           "probes_s": probes, "probe_s": statistics.median(probes)}
    if runnable:
        out["runnable"] = statistics.median(runnable)
    if dropped is not None:
        out["cache_dropped"] = dropped
    if disk_probes and all(disk_probes):
        out["disk_probes_bps"] = disk_probes
        out["disk_run_bps"] = max(disk_probes)  # see ``DISK_PROBE_BYTES``
    out.update(_accuracy(spec["op"], matrix, res, spec["k"]))
    if spec["op"] == "transform":
        out["direct_writes"] = _direct(work / "embedding.zarr", "direct_writes_for")
    return out


def _direct(store: Path, rule: str) -> bool:
    """Whether the library reads (``rule="direct_io_for"``) or writes (``"direct_writes_for"``)
    array X of ``store`` with ``O_DIRECT``: its own rule."""
    import zarr

    from veob_dask.io import direct

    layout = direct.chunk_layout(zarr.open_array(store / "X", mode="r"), str(store / "X"))
    return layout is not None and getattr(direct, rule)(layout)


def _disk_probe(probe: dict[str, Any], i: int) -> float:
    """The disk's cold bandwidth (bytes/s) on ``probe["bytes"]`` of the store's shard files,
    read by ``probe["readers"]`` threads as the run reads them (``O_DIRECT`` or not); the
    ``i``-th probe of a part reads other files than the one before it (``offset`` in the
    spec counts the probes of the part's earlier runs)."""
    files = sample_files(Path(probe["store"]), int(probe["bytes"]), offset=i)
    return disk_bandwidth(files, readers=int(probe["readers"]),
                          direct=bool(probe["direct"]))["disk_bytes_per_s"] or 0.0


# -------------------------------------------------------------------------- parent process side
def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    env = dict(os.environ)
    if spec.get("readahead") is not None:  # the environment reaches the cluster's workers too
        env["DASK_VEOB_DASK__READAHEAD_BYTES"] = str(spec["readahead"])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    print(f"  {spec['op']} failed: {err}", file=sys.stderr)
    return {"error": err[:300]}


def _spec(args: argparse.Namespace, op: str, source: dict[str, Any], chunk_rows: int, *,
          scheduler: str = "threads", workers: int = 1, threads: int = 2,
          cold: bool = False, repeat: int | None = None,
          readahead: int | None = None, direct: bool = False,
          probe_offset: int = 0) -> dict[str, Any]:
    disk = None
    if cold and source.get("kind") == "store":  # probed before each call and after the last
        disk = {"store": source["path"], "bytes": DISK_PROBE_BYTES, "direct": direct,
                "readers": threads * (workers if scheduler == "cluster" else 1),
                "offset": probe_offset}
    return {"op": op, "source": source, "chunk_rows": int(chunk_rows), "scheduler": scheduler,
            "workers": workers, "threads": threads, "cold": cold, "readahead": readahead,
            "disk_probe": disk,
            "repeat": repeat or args.repeat, "min_time_s": 0.0 if cold else args.min_time,
            "k": args.k, "q": args.q, "work": str(args.work),
            "codec": getattr(args, "codec", "zstd")}


def _run(args: argparse.Namespace, cal: dict[str, Any], part: str, label: str,
         spec: dict[str, Any], *, rows: int, cols: int, source: str, store_bytes: int = 0,
         subdomains: int = 0, disk_bytes_per_s: float | None = None,
         direct_io: bool = False) -> dict[str, Any]:
    sched, w, t = spec["scheduler"], spec["workers"], spec["threads"]
    r = run_child(spec)
    row = {"part": part, "method": label, "ours": True, "op": spec["op"], "rows": rows,
           "cols": cols, "chunk_rows": spec["chunk_rows"], "scheduler": sched,
           "workers": w if sched == "cluster" else 1, "threads_per_worker": t,
           "subdomains": subdomains, "store_bytes": store_bytes, "repeat": spec["repeat"],
           "readahead_bytes": spec.get("readahead"), "disk_bytes_per_s": disk_bytes_per_s,
           "direct_io": direct_io,
           "codec": getattr(args, "codec", "zstd") if source == "read" else None,
           "q": args.q, **r}
    _predict(row, cal)
    _errors(row, cal)
    print(f"  [{part}] {label} rows={rows:.3g}: {row.get('median_s', 'failed')} s "
          f"(predicted {row['predicted_s']:.3g} s; {row['predicted_unprobed_s']:.3g} s "
          "without the speed probe)", flush=True)
    return row


def _predict(row: dict[str, Any], cal: dict[str, Any]) -> None:
    """The model's predictions of a run: ``predicted_s`` with the compute terms scaled by the
    speed probes measured beside the run (their median), ``predicted_before_s`` by the first
    probe alone (measured before the run's first call), ``predicted_unprobed_s`` from the
    calibration as it is."""
    source = "read" if row["part"] in ("c", "d") else "gen"
    cold = row["store_bytes"] if row["part"] == "c" and row.get("cache_dropped") else 0
    kw = {"op": row["op"], "rows": row["rows"], "cols": row["cols"],
          "chunk_rows": row["chunk_rows"], "source": source, "scheduler": row["scheduler"],
          "workers": row["workers"], "threads": row["threads_per_worker"], "cold_bytes": cold,
          "q": row.get("q", DEFAULT_Q),
          "disk_bytes_per_s": row.get("disk_run_bps") or row.get("disk_bytes_per_s"),
          "codec": row.get("codec") or "zstd", "readahead": bool(row.get("readahead_bytes")),
          "direct_io": bool(row.get("direct_io")),
          "direct_writes": bool(row.get("direct_writes"))}
    plain = predict(cal, **kw)
    pred = predict(cal, **kw, probe_s=row.get("probe_s"))
    row["predicted_unprobed_s"] = plain["predicted_s"]
    if row.get("probes_s"):
        row["predicted_before_s"] = predict(cal, **kw, probe_s=row["probes_s"][0])["predicted_s"]
    if row.get("disk_run_bps") and row.get("disk_bytes_per_s"):  # with the part's one probe
        row["predicted_part_disk_s"] = predict(
            cal, **{**kw, "disk_bytes_per_s": row["disk_bytes_per_s"]},
            probe_s=row.get("probe_s"))["predicted_s"]
    row["predicted_s"], row["predicted_cpu_s"] = pred["predicted_s"], pred["predicted_cpu_s"]
    row["predicted_io_s"], row["speed"] = pred["io_s"], pred["speed"]


def _errors(row: dict[str, Any], cal: dict[str, Any]) -> None:
    """Prediction errors of a run, and the load-aware prediction (``predicted_load_s``).

    The load-aware prediction divides the predicted CPU seconds by the cores the run could
    have had: its task slots (at most the CPUs), scaled down by ``CPUs / runnable`` when more
    threads were runnable on the machine than there are CPUs (a fair share of the cores),
    with ``runnable`` measured during the run; a cold read is at least the predicted disk
    time. On a quiet machine it equals the work over the slots.
    """
    if "median_s" not in row:
        return
    cpus = cal["machine"]["cpus"] or 1
    slots = min(row["workers"] * row["threads_per_worker"], cpus)
    share = min(1.0, cpus / row["runnable"]) if row.get("runnable") else 1.0
    row["predicted_load_s"] = max(row["predicted_cpu_s"] / (slots * share),
                                  row.get("predicted_io_s", 0.0))
    row["rows_per_s"] = row["rows"] / row["median_s"]
    row["pred_err"] = row["predicted_s"] / row["median_s"] - 1
    for name in ("unprobed", "before", "part_disk"):
        if f"predicted_{name}_s" in row:
            row[f"pred_err_{name}"] = row[f"predicted_{name}_s"] / row["median_s"] - 1
    row["load_pred_err"] = row["predicted_load_s"] / row["median_s"] - 1
    row["cpu_pred_err"] = row["predicted_cpu_s"] / row["cpu_s"] - 1


def _ratio(rows: list[dict[str, Any]], floor: dict[str, Any]) -> None:
    for r in rows:
        if "median_s" in r and floor.get("median_s"):
            r["read_pass_ratio"] = r["median_s"] / floor["median_s"]


def _gen_source(rows: int, cols: int, n_keys: int = 0) -> dict[str, Any]:
    from veob_dask.datasets import SyntheticMatrix

    return {"kind": "gen", "matrix": SyntheticMatrix(rows, cols, n_keys=n_keys).describe()}


def part_a(args: argparse.Namespace, cal: dict[str, Any]) -> list[dict[str, Any]]:
    from veob_dask.io.chunking import chunk_rows

    out = []
    for n in args.a_rows:
        c = chunk_rows(args.a_cols, n_rows=n, threads_per_worker=2)
        src = _gen_source(n, args.a_cols)
        rep = 1 if n > args.repeat_rows else None
        floor = _run(args, cal, "a", "generation pass x.sum() (floor)",
                     _spec(args, "gen", src, c, repeat=rep), rows=n, cols=args.a_cols,
                     source="gen")
        fit = _run(args, cal, "a", "veob fit solver=gram (exact, 1 pass)",
                   _spec(args, "gram", src, c, repeat=rep), rows=n, cols=args.a_cols,
                   source="gen")
        _ratio([floor, fit], floor)
        out += [floor, fit]
    return out


def part_b(args: argparse.Namespace, cal: dict[str, Any]) -> list[dict[str, Any]]:
    from veob_dask.io.chunking import chunk_rows

    out = []
    for n in args.b_rows:
        c = chunk_rows(args.a_cols, n_rows=n, threads_per_worker=2)
        src = _gen_source(n, args.a_cols, args.keys)
        floor = _run(args, cal, "b", "generation pass x.sum() (floor)", _spec(args, "gen", src, c),
                     rows=n, cols=args.a_cols, source="gen")
        fit = _run(args, cal, "b", f"SubdomainEmbedding, {args.keys} keys, one fit",
                   _spec(args, "subdomain", src, c), rows=n, cols=args.a_cols, source="gen",
                   subdomains=args.keys)
        _ratio([floor, fit], floor)
        out += [floor, fit]
    return out


def _store(args: argparse.Namespace, rows: int, cols: int, chunk: int) -> tuple[dict[str, Any],
                                                                                 int]:
    from veob_dask.datasets import SyntheticMatrix

    codec = getattr(args, "codec", "zstd")
    tag = "" if codec == "zstd" else f"_{codec}"
    path = (Path(args.store_dir)
            / f"synthetic_{rows}x{cols}_c{chunk}_s{CHUNKS_PER_SHARD}{tag}.zarr")
    if not (path / "X" / "zarr.json").exists():
        t0 = time.perf_counter()
        write_sharded_store(SyntheticMatrix(rows, cols), path, chunk_rows=chunk,
                            chunks_per_shard=CHUNKS_PER_SHARD, codec=codec)
        print(f"  wrote {path} in {time.perf_counter() - t0:.1f} s", flush=True)
    return {"kind": "store", "path": str(path)}, store_bytes(path)


def _settle_disk(store: Path, direct: bool) -> list[float]:
    """Probe the disk until it is steady: the last :data:`SETTLE_PROBES` probes (other files
    each time) within ``SETTLE_SPREAD`` of their median, or :data:`SETTLE_MAX_S` seconds.

    A whole cold read of a store just written did not always settle the disk: after the
    32.8 GB store of the fifteenth chain (3 December 23:50 UTC) the settling read ran at
    261 MB/s, and the first two calls after it took 201.5 and 54.9 s where the later read passes
    took 17-22 s, their probes reading 59 and 260 MB/s, then 1.9 GB/s. Returns the probes (bytes/s).
    """
    probes: list[float] = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < SETTLE_MAX_S:
        bw = disk_bandwidth(sample_files(store, DISK_PROBE_BYTES, offset=len(probes) + 1),
                            direct=direct)["disk_bytes_per_s"]
        if not bw:  # the cache cannot be dropped: nothing to settle
            return probes
        probes.append(bw)
        last = probes[-SETTLE_PROBES:]
        mid = statistics.median(last)
        if len(last) == SETTLE_PROBES and all(abs(b - mid) <= SETTLE_SPREAD * mid for b in last):
            print("  disk settled:", ", ".join(f"{b / 1e6:.0f}" for b in probes), "MB/s",
                  flush=True)
            return probes
    print(f"  disk not settled in {SETTLE_MAX_S:.0f} s:",
          ", ".join(f"{b / 1e6:.0f}" for b in probes), "MB/s", flush=True)
    return probes


def part_c(args: argparse.Namespace, cal: dict[str, Any]) -> list[dict[str, Any]]:
    from veob_dask.io.chunking import chunk_rows

    n, d = args.c_rows, args.c_cols
    c = chunk_rows(d, n_rows=n, workers=2)
    src, nbytes = _store(args, n, d, c)
    print(f"  store: {n:,} x {d} float32 = {n * d * 4 / 1e9:.2f} GB logical, "
          f"{nbytes / 1e9:.2f} GB on disk", flush=True)
    # the disk's cold bandwidth on ~2 GB of this store's shards, spread over it (the
    # calibration store is small and freshly written: a virtual disk may serve it from cache)
    # read as the library will: with O_DIRECT when the array is larger than memory
    direct = _direct(Path(src["path"]), "direct_io_for")
    # one untimed cold read of the whole store first: the first cold pass after the store was
    # written took 1.3-1.6x the next one (threaded read pass of the 32.8 GB store: 19.0 then
    # 14.4 s, 21.7 then 13.5 s; 2 December), as if the host were still writing it back
    settle = disk_bandwidth(sample_files(Path(src["path"]), 2 * nbytes), direct=direct)
    print(f"  settling read: {settle['bytes'] / 1e9:.2f} GB cold at "
          f"{(settle['disk_bytes_per_s'] or 0) / 1e6:.0f} MB/s", flush=True)
    steady = _settle_disk(Path(src["path"]), direct)
    probe = disk_bandwidth(sample_files(Path(src["path"]), DISK_PROBE_BYTES), direct=direct)
    bw = probe["disk_bytes_per_s"]
    print(f"  disk probe: {probe['bytes'] / 1e9:.2f} GB cold at "
          f"{(bw or 0) / 1e6:.0f} MB/s{' (O_DIRECT)' if direct else ''}", flush=True)
    kw = {"rows": n, "cols": d, "source": "read", "store_bytes": nbytes, "disk_bytes_per_s": bw,
          "direct_io": direct}
    runs = [("read", "read pass read_array(...).sum(), threaded", "threads", 1, 2, None),
            ("read", "read pass, LocalCluster 2x1", "cluster", 2, 1, None),
            ("read", "read pass, LocalCluster 2x2", "cluster", 2, 2, None),
            ("gram", "veob fit solver=gram, threaded", "threads", 1, 2, None),
            ("gram", "veob fit solver=gram, LocalCluster 2x1", "cluster", 2, 1, None),
            ("gram", "veob fit solver=gram, LocalCluster 2x2", "cluster", 2, 2, None),
            ("transform", "veob transform -> Zarr, threaded", "threads", 1, 2, None),
            # two threads a core: a thread waiting for an O_DIRECT read leaves its core idle
            ("read", "read pass, threaded, 4 threads", "threads", 1, 4, None),
            ("gram", "veob fit solver=gram, threaded, 4 threads", "threads", 1, 4, None),
            ("transform", "veob transform -> Zarr, threaded, 4 threads", "threads", 1, 4, None),
            ("read", "read pass, threaded, read-ahead 512 MiB", "threads", 1, 2, _RA),
            ("gram", "veob fit solver=gram, threaded, read-ahead 512 MiB", "threads", 1, 2, _RA),
            ("gram", "veob fit solver=gram, LocalCluster 2x1, read-ahead 512 MiB", "cluster", 2,
             1, _RA)]
    runs = [r for r in runs if (r[5] is None or args.c_readahead)
            and ((r[2], r[4]) != ("threads", 4) or args.c_four_threads)]
    # each run's disk probes read other shards than the part's earlier probes: a virtual disk
    # may serve what it served a moment ago from its host's cache
    out = [_run(args, cal, "c", label, _spec(args, op, src, c, scheduler=s, workers=w, threads=t,
                                              cold=True, readahead=ra, direct=direct,
                                              probe_offset=1 + i * (args.repeat + 1)), **kw)
           for i, (op, label, s, w, t, ra) in enumerate(runs)]
    _ratio(out, out[0])
    for r in out:
        r["settle_disk_bytes_per_s"] = settle["disk_bytes_per_s"]
        r["settle_probes_bps"] = steady
    for r in out:  # each fit also against the read pass of its own configuration
        own = next((o for o in out if o["op"] == "read" and o["scheduler"] == r["scheduler"]
                    and o["workers"] == r["workers"]
                    and o["threads_per_worker"] == r["threads_per_worker"]
                    and o["readahead_bytes"] == r["readahead_bytes"]), None)
        if own and own.get("median_s") and r.get("median_s"):
            r["own_read_ratio"] = r["median_s"] / own["median_s"]
    if not out[0].get("cache_dropped", True):
        print("  NOTE: the page cache could not be dropped (not root): the passes were warm "
              "where the store fits in memory.", flush=True)
    return out


def part_d(args: argparse.Namespace, cal: dict[str, Any]) -> list[dict[str, Any]]:
    from veob_dask.io.chunking import chunk_rows

    n, d = args.d_rows, args.a_cols
    c = chunk_rows(d, n_rows=n, workers=2)
    src, nbytes = _store(args, n, d, c)
    out = []
    for cfg in args.configs:
        w, t = (int(v) for v in cfg.split("x"))
        kw = {"rows": n, "cols": d, "source": "read", "store_bytes": nbytes}
        rows = [_run(args, cal, "d", f"read pass, LocalCluster {cfg}",
                     _spec(args, "read", src, c, scheduler="cluster", workers=w, threads=t), **kw)]
        for op in FIT_OPS:
            label = f"veob fit solver={op}" + (f" n_iter={args.q}" if op == "randomized" else "")
            rows.append(_run(args, cal, "d", f"{label}, LocalCluster {cfg}",
                             _spec(args, op, src, c, scheduler="cluster", workers=w, threads=t),
                             **kw))
        _ratio(rows, rows[0])
        out += rows
    return out


# ------------------------------------------------------------------------------------- plots
def plot_rows(results: list[dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = [r for r in results if r["part"] == "a" and "median_s" in r]
    if not a:
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for op, style, label in (("gram", "o-", "Gram fit (exact, 1 pass)"),
                             ("gen", "s--", "generation-only pass (floor)")):
        pts = sorted((r["rows"], r["median_s"], r["predicted_s"]) for r in a if r["op"] == op)
        if not pts:
            continue
        xs, ys, ps = zip(*pts)
        line = ax.plot(xs, ys, style, label=f"{label}, measured")[0]
        ax.plot(xs, ps, ":", color=line.get_color(), label=f"{label}, cost model")
    r0 = a[0]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"rows ({r0['cols']} float32 features; chunks of up to {r0['chunk_rows']:,} "
                  "rows)")
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"(a) time against rows: threaded scheduler, {r0['threads_per_worker']} "
                 f"threads, {os.cpu_count()} CPUs", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _layout(fig, a)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _layout(fig: Any, runs: list[dict[str, Any]]) -> None:
    """Tight layout; on a shared machine (1-minute load above CPUs + 1 after a run), a note
    under the axes (never over the data)."""
    loads = [r["load"] for r in runs if r.get("load") is not None]
    cpus = os.cpu_count() or 1
    if loads and max(loads) > cpus + 1:
        fig.text(0.99, 0.01, f"shared machine: load {min(loads):.1f}-{max(loads):.1f} on {cpus} "
                 "CPUs", ha="right", va="bottom", fontsize=7, color="gray")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
    else:
        fig.tight_layout()


def plot_workers(results: list[dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dd = [r for r in results if r["part"] == "d" and "median_s" in r]
    if not dd:
        return
    configs = list(dict.fromkeys(f"{r['workers']}x{r['threads_per_worker']}" for r in dd))
    xs = np.arange(len(configs))
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    for op in ("read", *FIT_OPS):
        by = {f"{r['workers']}x{r['threads_per_worker']}": r for r in dd if r["op"] == op}
        ys = [by[c]["median_s"] if c in by else np.nan for c in configs]
        ps = [by[c]["predicted_s"] if c in by else np.nan for c in configs]
        name = "read pass (floor)" if op == "read" else f"{op} fit"
        line = ax.plot(xs, ys, "o-", label=f"{name}, measured")[0]
        ax.plot(xs, ps, "x:", color=line.get_color(), label=f"{name}, cost model")
    r0 = dd[0]
    ax.set_xticks(xs, [f"{c.split('x')[0]} worker(s) x {c.split('x')[1]} thread(s)"
                       for c in configs], fontsize=8)
    ax.set_xlabel(f"LocalCluster configuration ({os.cpu_count()} CPUs)")
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"(d) time against workers: {r0['rows']:,} x {r0['cols']} float32 store, "
                 f"chunks of {r0['chunk_rows']:,} rows", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    _layout(fig, dd)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def repredict(path: Path, calibration: Path) -> None:
    """Recompute the predictions of a results JSON with another calibration; rewrite it."""
    doc = json.loads(path.read_text())
    cal = json.loads(calibration.read_text())
    for r in doc["results"]:
        if r.get("op") is None:
            continue
        r.setdefault("q", doc["config"]["parts"][r["part"]].get("q", DEFAULT_Q))
        _predict(r, cal)
        _errors(r, cal)
    for part in doc["config"].get("parts", {}).values():
        part["calibration"], part["calibration_created"] = str(calibration), cal["created"]
    write_result_json(NAME, doc["config"], doc["results"], path)
    _report(doc["results"], path)


def _report(results: list[dict[str, Any]], out: Path) -> None:
    cols_out = ["part", "method", "rows", "workers", "threads_per_worker", "median_s",
                "predicted_s", "pred_err", "pred_err_unprobed", "speed", "predicted_load_s",
                "load_pred_err",
                "read_pass_ratio", "own_read_ratio", "cpu_s", "predicted_cpu_s", "cpu_pred_err", "peak_mb",
                "sv_relerr", "angle_deg", "passes", "runnable", "error"]
    print_table(sorted(results, key=lambda r: r["part"]), cols_out)
    plot_rows(results, out.with_name(out.stem + "_rows.png"))
    plot_workers(results, out.with_name(out.stem + "_workers.png"))
    print(f"json: {out}")


# -------------------------------------------------------------------------------------- main
def _sizes(text: str) -> list[int]:
    return [int(float(v)) for v in text.split(",") if v]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="abcd", help="any of a, b, c, d")
    p.add_argument("--a-rows", type=_sizes, default=_sizes("1e6,1e7,1e8"))
    p.add_argument("--a-cols", type=int, default=64, help="features of (a), (b), (d)")
    p.add_argument("--b-rows", type=_sizes, default=_sizes("1e6"))
    p.add_argument("--keys", type=int, default=1000, help="subdomain keys of (b)")
    p.add_argument("--c-rows", type=lambda v: int(float(v)), default=4_000_000)
    p.add_argument("--c-cols", type=int, default=256)
    p.add_argument("--codec", choices=("zstd", "none"), default="zstd",
                   help="codec of the stores of (c) and (d) and of (c)'s transform output: "
                   "zarr's default zstd, or none")
    p.add_argument("--c-readahead", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the read pass and Gram fits of (c) with read-ahead on "
                        "(512 MiB; the library's default is off)")
    p.add_argument("--c-four-threads", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the read pass, Gram fit and transform of (c) on the threaded "
                        "scheduler with 4 threads (two a core)")
    p.add_argument("--d-rows", type=lambda v: int(float(v)), default=2_000_000)
    p.add_argument("--configs", type=lambda v: v.split(","), default=["1x1", "1x2", "2x1"])
    p.add_argument("--k", type=int, default=DEFAULT_K)
    p.add_argument("--q", type=int, default=DEFAULT_Q, help="n_iter of the randomized fit")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--min-time", type=float, default=MIN_TIME_S,
                   help=f"warm runs: more calls (up to {MAX_CALLS}) until their timed seconds "
                        "add up to this")
    p.add_argument("--repeat-rows", type=lambda v: int(float(v)), default=int(5e8),
                   help="runs of (a) over more rows than this are made once")
    p.add_argument("--store-dir", default="/tmp/veob_scale")
    p.add_argument("--work", default=None)
    p.add_argument("--calibration", default=str(RESULTS_DIR / "cost_model.json"))
    p.add_argument("--recalibrate", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--repredict", action="store_true",
                   help="run nothing: recompute predicted_s of the JSON's rows with --calibration")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(json.loads(args.child)), default=float))
        return
    if args.repredict:
        repredict(Path(args.json or RESULTS_DIR / f"{NAME}.json"), Path(args.calibration))
        return
    args.work = Path(args.work or Path(args.store_dir) / "work")
    args.work.mkdir(parents=True, exist_ok=True)
    parts = [c for c in "abcd" if c in args.parts]
    cols = sorted({args.a_cols} | ({args.c_cols} if "c" in parts else set()))
    cal = load_or_calibrate(Path(args.calibration), cols, recalibrate=args.recalibrate,
                            k=args.k, q=args.q, n_keys=args.keys)
    load0 = os.getloadavg()
    results: list[dict[str, Any]] = []
    for part in parts:
        print(f"part ({part}); load average {os.getloadavg()}", flush=True)
        results += {"a": part_a, "b": part_b, "c": part_c, "d": part_d}[part](args, cal)
    out = Path(args.json) if args.json else RESULTS_DIR / f"{NAME}.json"
    config: dict[str, Any] = {}
    if out.exists():  # keep the parts not re-run now
        old = json.loads(out.read_text())
        config = old.get("config", {})
        results = [r for r in old["results"] if r.get("part") not in parts] + results
    config.setdefault("parts", {})
    for part in parts:
        config["parts"][part] = {
            "argv": sys.argv[1:], "load_before": load0, "load_after": os.getloadavg(),
            "calibration": args.calibration, "calibration_created": cal["created"],
            "repeat": args.repeat, "k": args.k, "q": args.q, "machine": machine_info()}
    write_result_json(NAME, config, results, out)
    _report(results, out)


if __name__ == "__main__":
    main()
