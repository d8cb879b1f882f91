"""Out-of-core dense SVD from Zarr on a 2-worker LocalCluster: fit, transform, peers, scaling.

Usage::

    python benchmarks/bench_out_of_core.py                      # 8,000,000 x 256 float32 (8 GB)
    python benchmarks/bench_out_of_core.py --rows 1000000 --repeat 3
    python benchmarks/bench_out_of_core.py --rows 8000000 --peer-repeat 1 --skip tsqr

The script writes a dense float32 Zarr array (chunks of 100,000 rows, zarr's default zstd) once
and reuses it. Every method then runs in a fresh child process that starts a LocalCluster of 2
worker processes (1 thread each, 8 GB memory limit each, as PEERS.md §2), and times only the call
(not imports or cluster start-up); ``peak_mb`` is the peak RSS of the child's whole process tree
(client + scheduler + nannies + workers, sampled every 20 ms) and ``idle_mb`` the same tree before
the first call. ``cpu_s`` is the CPU time (user + system) of that tree during the call, a
steadier figure than seconds on a shared machine. ``read_pass_ratio`` divides by the median of one pure read pass
(``da.from_zarr(...).sum()``, the floor). Accuracy (``sv_relerr``, ``angle_deg``) is against the
eigendecomposition of a float64 Gram matrix accumulated by an independent plain-numpy loop over
the Zarr chunks. The scaling table repeats the Gram fit on the first 1/8, 1/4, 1/2 and all of
the rows and plots seconds against rows (PNG next to the JSON).

The matrix: spectrum 3000·0.93^i (top 50, ``veob_dask.datasets.make_low_rank``) plus Gaussian
noise of 0.035 per entry, chosen so that at 8,000,000 rows the noise floor sits near
σ ≈ 100, below σ_32 ≈ 295 (so the top-32 subspace is well defined).
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
    principal_angle_deg,
    print_table,
    sv_relerr,
    write_result_json,
)

NAME = "bench_out_of_core"
NOISE = 0.035
METHODS = {
    "read": ("read pass: da.from_zarr(...).sum() (floor)", False),
    "read_veob": ("read pass: veob read_array(...).sum()", True),
    "gram": ("veob fit solver=gram (exact, 1 pass)", True),
    "randomized": ("veob fit solver=randomized q={q} ({passes} passes)", True),
    "tsqr": ("veob fit solver=tsqr (exact)", True),
    "transform": ("veob transform -> Zarr", True),
    "svd_compressed": ("dask svd_compressed q=2", False),
    "daskml": ("dask-ml TruncatedSVD randomized n_iter=2", False),
}


# --------------------------------------------------------------------------- child process side
def _gen_block(block: np.ndarray, rows: int, cols: int, chunk: int,
               block_id: tuple[int, ...] | None = None) -> np.ndarray:
    from veob_dask.datasets import make_low_rank

    start = (block_id or (0, 0))[0] * chunk
    return make_low_rank(rows, cols, noise=NOISE, seed=0, start=start,
                         stop=start + block.shape[0])


def write_store(path: Path, rows: int, cols: int, chunk: int) -> None:
    import dask.array as da

    from veob_dask.io import write_array
    from veob_dask.runtime import local_cluster

    with local_cluster(2, memory_limit="8GB"):
        shape = da.empty((rows, cols), chunks=(chunk, cols), dtype=np.float32)
        x = da.map_blocks(_gen_block, shape, rows, cols, chunk, dtype=np.float32)
        write_array(x, path, chunk_rows=chunk, overwrite=True,
                    attrs={"generator": "make_low_rank", "noise": NOISE})


def _reference(path: Path, k: int, out: Path) -> None:
    """Independent exact reference: plain zarr loop, float64 Gram, eigh."""
    import zarr

    arr = zarr.open_group(path, mode="r")["X"]
    d = arr.shape[1]
    g = np.zeros((d, d))
    step = arr.chunks[0]
    for start in range(0, arr.shape[0], step):
        xb = np.asarray(arr[start:start + step], dtype=np.float64)
        g += np.dot(xb.T, xb)
    lam, vec = np.linalg.eigh(g)
    order = np.argsort(lam)[::-1][:k]
    np.save(out / "ref_s.npy", np.sqrt(np.clip(lam[order], 0, None)))
    np.save(out / "ref_v.npy", vec[:, order].T)


def _method_call(name: str, path: Path, k: int, q: int, rows: int | None, work: Path):
    import dask.array as da

    from veob_dask import SVDEmbedding
    from veob_dask.io import read_array, write_array

    def x_veob() -> Any:
        x = read_array(path)
        return x[:rows] if rows else x

    def x_plain() -> Any:
        return da.from_zarr(str(path), component="X")

    if name == "read":
        return lambda: (float(x_plain().sum().compute()), None)
    if name == "read_veob":
        return lambda: (float(x_veob().sum().compute()), None)
    if name in ("gram", "tsqr", "randomized"):
        def fit() -> tuple[Any, Any]:
            m = SVDEmbedding(k, solver=name, n_iter=q, random_state=0).fit(x_veob())
            return m.singular_values_, m.components_
        return fit
    if name == "transform":
        model = SVDEmbedding(k, solver="gram").fit(x_veob())  # untimed

        def transform() -> tuple[Any, Any]:
            write_array(model.transform(x_veob()), work / "embedding.zarr", overwrite=True)
            return None
        return transform
    if name == "svd_compressed":
        def svdc() -> tuple[Any, Any]:
            _, s, v = da.linalg.svd_compressed(x_plain(), k, n_power_iter=2, seed=0)
            s, v = da.compute(s, v)
            return s, v
        return svdc
    if name == "daskml":
        from dask_ml.decomposition import TruncatedSVD

        def dml() -> tuple[Any, Any]:
            m = TruncatedSVD(k, algorithm="randomized", n_iter=2, random_state=0).fit(x_plain())
            return m.singular_values_, m.components_
        return dml
    raise SystemExit(f"unknown method {name}")


def _tree_cpu() -> float:
    """User + system CPU seconds of this process and its live children (the cluster)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def child(args: argparse.Namespace) -> None:
    from veob_dask.runtime import local_cluster

    work = Path(args.work)
    if args.child == "reference":
        t0 = time.perf_counter()
        _reference(Path(args.store), args.k, work)
        print(json.dumps({"median_s": time.perf_counter() - t0}))
        return
    with local_cluster(2, memory_limit="8GB"):
        with PeakRSS() as idle:
            time.sleep(0.5)
        call = _method_call(args.child, Path(args.store), args.k, args.q, args.rows_limit, work)
        times, cpus, peak, res = [], [], 0.0, None
        for _ in range(args.repeat):
            with PeakRSS() as mem:
                c0, t0 = _tree_cpu(), time.perf_counter()
                res = call()
                times.append(time.perf_counter() - t0)
                cpus.append(_tree_cpu() - c0)
            peak = max(peak, mem.peak_mb)
    out: dict[str, Any] = {"median_s": statistics.median(times), "times": times,
                           "cpu_s": statistics.median(cpus), "peak_mb": peak,
                           "idle_mb": idle.peak_mb}
    if res is not None and res[1] is not None:
        ref_s, ref_v = np.load(work / "ref_s.npy"), np.load(work / "ref_v.npy")
        s, v = np.asarray(res[0]), np.asarray(res[1])
        out["sv_relerr"] = sv_relerr(s, ref_s)
        out["angle_deg"] = principal_angle_deg(v[:args.k], ref_v[:args.k])
    print("RESULT " + json.dumps(out))


# -------------------------------------------------------------------------- parent process side
def run_child(args: argparse.Namespace, method: str, repeat: int,
              rows_limit: int | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", method, "--store", str(args.store),
           "--work", str(args.work), "--k", str(args.k), "--q", str(args.q),
           "--repeat", str(repeat)]
    if rows_limit:
        cmd += ["--rows-limit", str(rows_limit)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT ") or (method == "reference" and line.startswith("{")):
            return json.loads(line.removeprefix("RESULT "))
    err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    print(f"  {method} failed: {err}", file=sys.stderr)
    return {"error": err[:300]}


def plot(rows: list[int], secs: list[float], mems: list[float], read_s: float | None,
         config: dict[str, Any], path: Path) -> None:
    """Seconds and peak memory against rows, every label taken from the run's ``config``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(rows, secs, "o-", label=f"veob fit (gram, k={config['k']}), median of "
            f"{config['repeat']}")
    if read_s:
        ax.plot(rows, [read_s * r / rows[-1] for r in rows], "--",
                label="read pass, scaled from full size")
    ax.set_xlabel(f"rows ({config['cols']} {config['dtype']} features, chunks of "
                  f"{config['chunk_rows']:,} rows)")
    ax.set_ylabel("seconds")
    ax2 = ax.twinx()
    ax2.plot(rows, mems, "s:", color="gray", label="peak RSS MB (process tree)")
    ax2.set_ylabel("peak MB")
    ax2.set_ylim(0, max(mems) * 1.5)
    fig.legend(loc="center right", bbox_to_anchor=(0.85, 0.45), fontsize=8)
    load = ", ".join(f"{v:.1f}" for v in config.get("load_average_at_end", ()))
    ax.set_title(f"Out-of-core fit scaling: {config['cluster']}\n"
                 f"{config['cpus']} CPUs, load average at end {load or 'unknown'}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8_000_000)
    p.add_argument("--cols", type=int, default=256)
    p.add_argument("--chunk-rows", type=int, default=100_000)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--q", type=int, default=2, help="power/Krylov steps of the randomized fit")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--peer-repeat", type=int, default=None,
                   help="repetitions for the dask/dask-ml peers (default: --repeat)")
    p.add_argument("--skip", default="", help="comma-separated methods to leave out")
    p.add_argument("--repeat-for", default="",
                   help="per-method repetitions, e.g. tsqr=1,randomized=2 (huge sizes)")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--store", default=None, help="Zarr path (default /tmp/veob_ooc/...)")
    p.add_argument("--work", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--rows-limit", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    base = Path("/tmp/veob_ooc")
    args.store = Path(args.store or base / f"X_{args.rows}x{args.cols}_c{args.chunk_rows}.zarr")
    args.work = Path(args.work or base / "work")
    args.work.mkdir(parents=True, exist_ok=True)
    if not (args.store / "X" / "zarr.json").exists():
        t0 = time.perf_counter()
        write_store(args.store, args.rows, args.cols, args.chunk_rows)
        print(f"wrote {args.store} in {time.perf_counter() - t0:.1f} s")
    gb = args.rows * args.cols * 4 / 1e9
    print(f"store {args.store}: {args.rows:,} x {args.cols} float32 = {gb:.2f} GB")
    ref_key = args.work / "ref_for.json"
    key = {"store": str(args.store), "k": args.k}
    if ref_key.exists() and json.loads(ref_key.read_text()) == key:
        ref = {"median_s": None, "cached": True}  # same store and k: reuse the reference
    else:
        ref = run_child(args, "reference", 1)
        ref_key.write_text(json.dumps(key))
    print(f"reference (plain numpy float64 Gram loop): {ref}")
    skip = {s for s in args.skip.split(",") if s}
    peer_repeat = args.peer_repeat or args.repeat
    overrides = {m: int(n) for m, n in (kv.split("=") for kv in args.repeat_for.split(",") if kv)}
    results: list[dict[str, Any]] = []
    for method, (label, ours) in METHODS.items():
        if method in skip:
            continue
        repeat = args.repeat if ours or method == "read" else peer_repeat
        repeat = overrides.get(method, repeat)
        r = run_child(args, method, repeat)
        label = label.format(q=args.q, passes=args.q + 1)
        results.append({"method": label, "ours": ours, "repeat": repeat, **r})
        print(f"  {label}: {r.get('median_s', 'failed')}", flush=True)
    read_s = results[0].get("median_s") if results and "read pass" in results[0]["method"] \
        else None
    for r in results:
        if read_s and "median_s" in r:
            r["read_pass_ratio"] = r["median_s"] / read_s
    cols = ["method", "repeat", "median_s", "read_pass_ratio", "cpu_s", "peak_mb", "idle_mb",
            "sv_relerr", "angle_deg", "error"]
    print_table(results, cols)
    scaling: list[dict[str, Any]] = []
    if not args.no_scaling:
        for frac in (8, 4, 2):
            n = args.rows // frac
            r = run_child(args, "gram", args.repeat, rows_limit=n)
            scaling.append({"rows": n, **r})
        full = next((r for r in results if r["method"].startswith("veob fit solver=gram")), None)
        if full and "median_s" in full:
            scaling.append({"rows": args.rows, **{k: full[k] for k in
                                                  ("median_s", "peak_mb", "idle_mb")}})
        for r in scaling:
            r["s_per_million_rows"] = r.get("median_s", float("nan")) / (r["rows"] / 1e6)
        print("\nscaling (veob fit solver=gram):")
        print_table(scaling, ["rows", "median_s", "s_per_million_rows", "peak_mb", "idle_mb"])
    config = {"rows": args.rows, "cols": args.cols, "k": args.k, "q": args.q,
              "chunk_rows": args.chunk_rows, "dtype": "float32", "gb": gb,
              "cluster": "LocalCluster n_workers=2 threads_per_worker=1 memory_limit=8GB",
              "repeat": args.repeat, "peer_repeat": peer_repeat, "repeat_for": overrides,
              "noise": NOISE,
              "reference_s": ref.get("median_s"), "scaling": scaling,
              "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(),
              "note": "shared 2-core machine; other engineers' jobs ran at the same time"}
    out = write_result_json(NAME, config, results, args.json)
    if scaling and all("median_s" in r for r in scaling):
        png = Path(args.json).with_suffix(".png") if args.json else RESULTS_DIR / f"{NAME}.png"
        plot([r["rows"] for r in scaling], [r["median_s"] for r in scaling],
             [r["peak_mb"] for r in scaling], read_s, config, png)
        print(f"plot: {png}")
    print(f"json: {out}")


if __name__ == "__main__":
    main()
