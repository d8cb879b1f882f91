"""Wide sparse truncated SVD: veob_dask's randomized solver against scipy, scikit-learn and dask.

Usage::

    python benchmarks/bench_sparse_svd.py                  # 80,000 x 160,000, 5M nonzeros, k=50
    python benchmarks/bench_sparse_svd.py --rows 20000 --cols 40000 --nnz 1000000 --repeat 1

The matrix imitates a word co-occurrence table (PEERS.md §3): row popularity Zipf(1.0); each
entry's column comes with probability 0.7 from a per-topic Zipf(1.0) ranking (50 topics, rows
assigned to topics round-robin) and otherwise from a global Zipf(1.1); values are log1p(count),
float32. It is ingested into a row-chunked CSR Zarr store and veob_dask reads it from there
(out of core, dask threaded scheduler); the peers get the in-memory CSR matrix.

Reference: ARPACK ``svds`` on the float64 copy with ``tol=0`` (k + 10 triplets). Accuracy:
``sv_relerr`` (largest relative error of the top-50 singular values), ``angle_deg`` (largest
principal angle between the top-50 subspaces — ill-posed when s50/s51 is near 1) and
``angle40_deg`` (largest angle between the exact top-40 subspace and the returned 50-dim one).
``cpu_s`` is the CPU time of the process (all threads) per call, steadier than seconds on a
shared machine. ``peak_mb`` is the peak RSS of the whole process tree during the call (it includes the
input matrix the process holds).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import principal_angle_deg, print_table, sv_relerr, timeit_median, write_result_json

NAME = "bench_sparse_svd"


def _zipf_ranks(rng: np.random.Generator, m: int, s: float, size: int,
                offset: float = 1.0) -> np.ndarray:
    p = 1.0 / (np.arange(m) + offset) ** s
    c = np.cumsum(p)
    c /= c[-1]
    return np.minimum(np.searchsorted(c, rng.random(size)), m - 1)


def make_cooccurrence(n: int, m: int, nnz: int, *, topics: int = 50,
                      seed: int = 0) -> sp.csr_matrix:
    """A float32 CSR matrix of about ``nnz`` entries with Zipf row and column popularity."""
    rng = np.random.default_rng(seed)
    draws = int(nnz * 1.45)  # duplicates merge: about 1.45 draws per stored entry here
    rows = rng.permutation(n)[_zipf_ranks(rng, n, 1.0, draws, offset=50.0)]
    topic = rows % topics
    strides = np.array([p for p in range(7919, 10**6, 2) if np.gcd(p, m) == 1][:topics])
    shifts = rng.integers(0, m, topics)
    col_topic = (_zipf_ranks(rng, m, 1.0, draws) * strides[topic] + shifts[topic]) % m
    cols = np.where(rng.random(draws) < 0.7, col_topic, _zipf_ranks(rng, m, 1.1, draws))
    x = sp.coo_matrix((np.ones(draws, np.float32), (rows, cols)), shape=(n, m)).tocsr()
    x.sum_duplicates()
    x.data = np.log1p(x.data).astype(np.float32)
    return x


def _top(s: np.ndarray, vt: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(s)[::-1][:k]
    return s[order], vt[order]


def _configs(spec: str) -> list[tuple[int, int]]:
    """``"2:20,2:10"`` -> [(2, 20), (2, 10)] (n_iter:n_oversamples)."""
    out = []
    for item in spec.split(","):
        if item:
            q, _, p = item.partition(":")
            out.append((int(q), int(p or 10)))
    return out


def methods(x: sp.csr_matrix, store: Path, k: int, iters: list[tuple[int, int]],
            sk_iters: list[tuple[int, int]]) -> list[tuple[str, bool, Any]]:
    from scipy.sparse.linalg import svds
    from sklearn.utils.extmath import randomized_svd as sk_rsvd

    from veob_dask import SVDEmbedding
    from veob_dask.io import read_matrix

    out: list[tuple[str, bool, Any]] = []
    for q, p in iters:
        def veob(q: int = q, p: int = p) -> tuple[np.ndarray, np.ndarray]:
            with dask.config.set(scheduler="threads"):
                m = SVDEmbedding(k, solver="randomized", n_iter=q, n_oversamples=p,
                                 random_state=0)
                m.fit(read_matrix(store))
            return m.singular_values_, m.components_
        label = f"veob randomized block Krylov q={q} p={p} (sketch + {q + 1} passes, from Zarr)"
        out.append((label, True, veob))

    def arpack32() -> tuple[np.ndarray, np.ndarray]:
        _, s, vt = svds(x, k=k, random_state=0)
        return _top(s, vt, k)
    out.append(("scipy svds arpack k=50 (float32)", False, arpack32))
    for q, p in sk_iters:
        def sk(q: int = q, p: int = p) -> tuple[np.ndarray, np.ndarray]:
            _, s, vt = sk_rsvd(x, k, n_iter=q, n_oversamples=p, random_state=0)
            return s, vt
        out.append((f"sklearn randomized_svd n_iter={q} p={p}", False, sk))

    def svdc() -> tuple[np.ndarray, np.ndarray]:
        xd = da.from_array(x, chunks=(20_000, -1), asarray=False)
        with dask.config.set(scheduler="threads"):
            _, s, v = da.linalg.svd_compressed(xd, k, n_power_iter=2, seed=0)
            return tuple(np.asarray(a) for a in dask.compute(s, v))  # type: ignore[return-value]
    out.append(("dask svd_compressed q=2, scipy.sparse chunks", False, svdc))
    return out


def _cpu_timed(func: Any, cpus: list[float]) -> Any:
    """Wrap ``func`` to record the process CPU time (all threads) of each call."""
    def run() -> Any:
        c0 = time.process_time()
        out = func()
        cpus.append(time.process_time() - c0)
        return out
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=80_000)
    p.add_argument("--cols", type=int, default=160_000)
    p.add_argument("--nnz", type=int, default=5_000_000)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--iters", default="1:20,2:10,2:20,3:10",
                   help="veob n_iter:n_oversamples configurations")
    p.add_argument("--sk-iters", default="2:10,3:10,4:10,2:20,3:20",
                   help="scikit-learn n_iter:n_oversamples configurations")
    p.add_argument("--target", type=float, default=0.01,
                   help="singular value error that counts as 'there' for time-to-target")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args()

    from scipy.sparse.linalg import svds

    from veob_dask.io.sparse import write_sparse

    x = make_cooccurrence(args.rows, args.cols, args.nnz)
    tmp = Path(tempfile.mkdtemp(prefix="veob_sparse_bench_"))
    try:
        store = tmp / "cooc.zarr"
        write_sparse(x, store, source="bench_sparse_svd generator")
        _, s_ref, vt_ref = svds(x.astype(np.float64), k=args.k + 10, tol=0, random_state=0)
        s_ref, vt_ref = _top(s_ref, vt_ref, args.k + 10)
        k = args.k
        print(f"{args.rows:,} x {args.cols:,}, nnz {x.nnz:,}; s{k - 1}/s{k} = "
              f"{s_ref[k - 2] / s_ref[k - 1]:.4f}, s{k}/s{k + 1} = {s_ref[k - 1] / s_ref[k]:.4f}")
        results: list[dict[str, Any]] = []
        iters = _configs(args.iters)
        sk_iters = _configs(args.sk_iters)
        for label, ours, func in methods(x, store, k, iters, sk_iters):
            row: dict[str, Any] = {"method": label, "ours": ours}
            cpus: list[float] = []
            try:
                med, times, (s, v), peak = timeit_median(_cpu_timed(func, cpus), args.repeat)
            except Exception as err:  # noqa: BLE001  (a peer that cannot run is reported)
                row["error"] = f"{type(err).__name__}: {err}"[:200]
                results.append(row)
                print(f"  {label}: {row['error']}", flush=True)
                continue
            row.update(median_s=med, times=times, cpu_s=statistics.median(cpus), peak_mb=peak,
                       sv_relerr=sv_relerr(s, s_ref[:k]),
                       angle_deg=principal_angle_deg(v[:k], vt_ref[:k]),
                       angle40_deg=principal_angle_deg(v[:k], vt_ref[:40]))
            results.append(row)
            print(f"  {label}: {med:.2f} s, sv err {row['sv_relerr']:.2e}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = {r["method"]: r for r in results if "median_s" in r}
    arpack = base.get("scipy svds arpack k=50 (float32)")
    for r in results:
        if arpack and "median_s" in r:
            r["x_svds_f32"] = r["median_s"] / arpack["median_s"]
    print_table(results, ["method", "median_s", "x_svds_f32", "cpu_s", "peak_mb", "sv_relerr",
                          "angle_deg", "angle40_deg", "error"])
    # Time to target: the fastest configuration of each family within the error target.
    summary: dict[str, Any] = {"target_sv_relerr": args.target}
    for family, prefix in (("veob", "veob"), ("sklearn", "sklearn"), ("svds", "scipy svds")):
        ok = [r for r in results if r["method"].startswith(prefix) and "median_s" in r
              and r["sv_relerr"] <= args.target]
        best = min(ok, key=lambda r: r["median_s"]) if ok else None
        summary[family] = ({"method": best["method"], "median_s": best["median_s"],
                            "sv_relerr": best["sv_relerr"]} if best else None)
    if summary["veob"] and summary["sklearn"]:
        summary["veob_over_sklearn"] = summary["veob"]["median_s"] / summary["sklearn"]["median_s"]
    if summary["veob"] and summary["svds"]:
        summary["veob_over_svds"] = summary["veob"]["median_s"] / summary["svds"]["median_s"]
    print(f"time to sv error <= {args.target:g}:")
    for family in ("veob", "sklearn", "svds"):
        best = summary[family]
        print(f"  {family}: " + (f"{best['median_s']:.2f} s ({best['method']}, "
                                 f"{best['sv_relerr']:.2e})" if best else "not reached"))
    for key in ("veob_over_sklearn", "veob_over_svds"):
        if key in summary:
            print(f"  {key}: {summary[key]:.2f}")
    config = {"rows": args.rows, "cols": args.cols, "nnz": int(x.nnz), "k": args.k,
              "repeat": args.repeat, "dtype": "float32",
              "s49_over_s50": float(s_ref[k - 2] / s_ref[k - 1]),
              "s50_over_s51": float(s_ref[k - 1] / s_ref[k]),
              "reference": "scipy svds arpack float64 tol=0",
              "peak_mb": "peak RSS of the process tree during the call (absolute)",
              "time_to_target": summary,
              "note": "2-core machine; repetitions of each method back to back"}
    print(f"json: {write_result_json(NAME, config, results, args.json)}")


if __name__ == "__main__":
    main()
