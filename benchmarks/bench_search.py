"""k-NN search: this library's exact search and cell indexes against numpy, faiss and hnswlib.

Data: a Gaussian mixture of ``--clusters`` centres (centres N(0, 3^2), unit-variance clusters),
``--n`` vectors of dimension ``--d`` and ``--n-queries`` queries from the same mixture, float32;
k = ``--k``. Ground truth: ``veob_dask.index.exact_kneighbors`` (exact float64 re-ranking; the
tests check it equals a float64 brute force). Every method runs in the same process on the same
data. Reported per method: build seconds (median of ``--repeat``; hnswlib's build once), query
seconds for the whole batch (median of ``--repeat``), queries/s, recall@k, build peak memory
(RSS increase of the process tree). Slow exact baselines (numpy, faiss ``IndexFlatL2``) run on the
first ``--slow-queries`` queries only.

Also: the k-means centroids of the cells on ``--kmeans-n`` rows (default 20,000, 150 clusters):
the hand-written Lloyd the library used before (``_lloyd.py``) against scikit-learn's ``KMeans``
(used now) and ``MiniBatchKMeans``, seconds and inertia; the tree build at n/8, n/4, n/2 and n rows (O(n log n) check: seconds / (n log2 n) should
stay flat), and, when the IDX files exist, the Fashion-MNIST label-ranked top-3 hit rate of the
cell search against the exact search (2-D DCT, SVD to 30 dimensions, k = 100 neighbours).

Optional peers: ``pip install faiss-cpu hnswlib`` (not dependencies of veob_dask).

    python benchmarks/bench_search.py                      # 1,000,000 x 30, 10,000 queries
    python benchmarks/bench_search.py --n 100000 --skip-hnsw --repeat 1   # quick
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import dask
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakRSS, print_table, timeit_median, write_result_json

from veob_dask.index import CellIndex, exact_kneighbors

FASHION = Path("/usr/share/datasets/fashion-mnist")


def mixture(n: int, d: int, n_queries: int, clusters: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d)).astype(np.float32) * 3
    base = centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, d)).astype(np.float32)
    queries = centres[rng.integers(0, clusters, n_queries)] + rng.normal(
        size=(n_queries, d)).astype(np.float32)
    return np.ascontiguousarray(base), np.ascontiguousarray(queries)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    hits = sum(len(set(a[:k].tolist()) & set(b.tolist())) for a, b in zip(found, truth))
    return hits / truth.size


def numpy_brute(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The plain numpy brute force: distance block, then argpartition of each query's row."""
    bn = np.einsum("ij,ij->i", base, base)
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    for a in range(0, queries.shape[0], 64):
        q = queries[a:a + 64]
        dist = bn - 2.0 * (q @ base.T)
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(dist, part, 1), axis=1)
        out[a:a + 64] = np.take_along_axis(part, order, 1)
    return out


def row(method: str, ours: bool, **kw: Any) -> dict[str, Any]:
    return {"method": method, "ours": ours, **kw}


def bench_query(method: str, ours: bool, search: Any, queries: np.ndarray, truth: np.ndarray,
                repeat: int, **extra: Any) -> dict[str, Any]:
    med, times, found, _ = timeit_median(lambda: search(queries), repeat)
    r = row(method, ours, n_queries=int(queries.shape[0]), median_s=med,
            qps=queries.shape[0] / med, recall_at_10=recall(found, truth[:queries.shape[0]]),
            query_range_s=[min(times), max(times)], **extra)
    print(f"  {method}: {r['qps']:.0f} q/s, recall {r['recall_at_10']:.4f}", flush=True)
    return r


def timed_build(build: Any, repeat: int) -> tuple[Any, float, float]:
    times, peak, obj = [], 0.0, None
    for _ in range(max(1, repeat)):
        obj = None
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            obj = build()
            times.append(time.perf_counter() - t0)
        peak = max(peak, mem.delta_mb)
    return obj, float(np.median(times)), peak


def run_cells(rows: list[dict[str, Any]], base: np.ndarray, queries: np.ndarray,
              truth: np.ndarray, args: argparse.Namespace) -> None:
    for method, label in (("tree", "veob cells (§5 tree)"), ("kmeans", "veob k-means cells")):
        index, build_s, peak = timed_build(
            lambda m=method: CellIndex(m, n_threads=args.threads).fit(base), args.repeat)
        print(f"{label}: build {build_s:.2f} s, {index.n_cells_} cells", flush=True)
        for p in args.n_probe:
            r = bench_query(f"{label} n_probe={p}", True,
                            lambda q, ix=index, p=p: ix.kneighbors(q, args.k, n_probe=p)[1],
                            queries, truth, args.repeat, build_s=build_s, build_peak_mb=peak,
                            n_probe=p, n_cells=index.n_cells_)
            rows.append(r)
        del index


def kmeans_comparison(base: np.ndarray, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Centroids of the k-means cells: the hand-written Lloyd the library used before
    (``_lloyd.py``) against scikit-learn's ``KMeans`` (what ``KMeansCells`` uses now) and
    ``MiniBatchKMeans``, on the first ``--kmeans-n`` rows, ``--kmeans-clusters`` clusters, the
    cells' default 10 iterations, one BLAS thread (as in ``KMeansCells.fit``). Inertia: sum of
    squared distances of those rows to their nearest centroid, computed the same way for all."""
    from _lloyd import lloyd
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    from veob_dask.partition import kmeans_centroids, nearest_centroids

    x = np.ascontiguousarray(base[:args.kmeans_n])
    k, seed = args.kmeans_clusters, args.seed
    fits = {
        "k-means: veob Lloyd (before)": (True, lambda: lloyd(x, k, max_iter=10,
                                                             random_state=seed)[0]),
        "k-means: sklearn KMeans (veob_dask.partition.kmeans_centroids)": (
            False, lambda: kmeans_centroids(x, k, max_iter=10, random_state=seed)[0]),
        "k-means: sklearn MiniBatchKMeans": (False, lambda: MiniBatchKMeans(
            k, n_init=1, max_iter=10, random_state=seed).fit(x).cluster_centers_),
        "k-means: sklearn KMeans n_init=1, max_iter=300": (False, lambda: KMeans(
            k, n_init=1, random_state=seed).fit(x).cluster_centers_),
    }
    out = []
    with threadpool_limits(limits=1, user_api="blas"):
        for method, (ours, fit) in fits.items():
            med, _, centroids, _ = timeit_median(fit, args.repeat)
            _, sq, _ = nearest_centroids(x, np.asarray(centroids, dtype=np.float64))
            out.append({"method": method, "ours": ours, "n_rows": int(x.shape[0]),
                        "n_clusters": k, "build_s": med, "inertia": float(np.sum(sq))})
            print(f"{method}: {med:.3f} s, inertia {out[-1]['inertia']:.4g}", flush=True)
    return out


def run_faiss(rows: list[dict[str, Any]], base: np.ndarray, queries: np.ndarray,
              truth: np.ndarray, args: argparse.Namespace) -> None:
    try:
        import faiss
    except ImportError:
        print("faiss not installed (pip install faiss-cpu): skipped", flush=True)
        return
    faiss.omp_set_num_threads(args.threads)
    d, k = base.shape[1], args.k
    flat, build_s, peak = timed_build(lambda: _faiss_flat(faiss, base), args.repeat)
    rows.append(bench_query("faiss IndexFlatL2", False, lambda q: flat.search(q, k)[1],
                            queries[:args.slow_queries], truth, args.repeat, build_s=build_s,
                            build_peak_mb=peak))
    flat = None
    nlist = args.nlist

    def build_ivf() -> Any:
        quant = faiss.IndexFlatL2(d)
        ivf = faiss.IndexIVFFlat(quant, d, nlist)
        ivf.train(base)
        ivf.add(base)
        return ivf, quant  # the quantizer must outlive the index

    (ivf, _quant), build_s, peak = timed_build(build_ivf, args.repeat)
    print(f"faiss IVFFlat nlist={nlist}: build {build_s:.2f} s", flush=True)
    for p in args.n_probe:
        ivf.nprobe = p
        rows.append(bench_query(f"faiss IVFFlat nlist={nlist} nprobe={p}", False,
                                lambda q: ivf.search(q, k)[1], queries, truth, args.repeat,
                                build_s=build_s, build_peak_mb=peak, n_probe=p))


def _faiss_flat(faiss: Any, base: np.ndarray) -> Any:
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(base)
    return index


def run_hnsw(rows: list[dict[str, Any]], base: np.ndarray, queries: np.ndarray,
             truth: np.ndarray, args: argparse.Namespace) -> None:
    try:
        import hnswlib
    except ImportError:
        print("hnswlib not installed (pip install hnswlib): skipped", flush=True)
        return

    def build() -> Any:
        index = hnswlib.Index(space="l2", dim=base.shape[1])
        index.init_index(max_elements=base.shape[0], M=16, ef_construction=200, random_seed=100)
        index.add_items(base, np.arange(base.shape[0]), num_threads=args.threads)
        return index

    print("hnswlib: building once (slow) ...", flush=True)
    index, build_s, peak = timed_build(build, 1)
    print(f"hnswlib M=16 efC=200: build {build_s:.1f} s", flush=True)
    for ef in args.ef:
        index.set_ef(ef)
        rows.append(bench_query(f"hnswlib M=16 efC=200 ef={ef}", False,
                                lambda q: index.knn_query(q, k=args.k,
                                                          num_threads=args.threads)[0],
                                queries, truth, args.repeat, build_s=build_s,
                                build_peak_mb=peak, ef=ef, build_repeats=1))


def scaling(base: np.ndarray, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Tree build time at n/8 .. n: seconds / (n log2 n) should stay roughly flat."""
    out = []
    n = base.shape[0]
    for frac in (8, 4, 2, 1):
        m = n // frac
        _, build_s, _ = timed_build(lambda m=m: CellIndex("tree").fit(base[:m]), 1)
        per = build_s / (m * math.log2(m)) * 1e9
        out.append(row(f"veob cells build n={m}", True, n_rows=m, build_s=build_s,
                       ns_per_n_log2n=per))
        print(f"  tree build n={m}: {build_s:.2f} s, {per:.2f} ns per n log2 n", flush=True)
    return out


def fashion(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Top-3 label-ranked hit rate on Fashion-MNIST test: cell search vs exact search."""
    import dask.array as da

    from veob_dask.evaluation import label_rank_hits
    from veob_dask.io.idx import read_idx
    from veob_dask.spectral import spectral_transform_2d
    from veob_dask.svd import SVDEmbedding

    files = {name: FASHION / f"{name}.gz" for name in
             ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")}
    if not all(p.exists() for p in files.values()):
        print(f"Fashion-MNIST IDX files not in {FASHION}: skipped", flush=True)
        return []
    xtr, ytr, xte, yte = (read_idx(p) for p in files.values())
    tr = spectral_transform_2d(da.from_array(xtr.astype(np.float32) / 255, chunks=(10000, 28, 28)))
    te = spectral_transform_2d(da.from_array(xte.astype(np.float32) / 255, chunks=(10000, 28, 28)))
    model = SVDEmbedding(30).fit(tr)
    etr = np.asarray(model.transform(tr).compute(), dtype=np.float32)
    ete = np.asarray(model.transform(te).compute(), dtype=np.float32)
    k = 100
    t0 = time.perf_counter()
    exact_idx, _ = exact_kneighbors(ete, etr, k)
    exact_s = time.perf_counter() - t0
    base_rate = float(label_rank_hits(ytr[exact_idx], yte, 3).mean())
    out = [row("exact (veob exact_kneighbors)", True, top3_hit_rate=base_rate, median_s=exact_s,
               recall_at_10=1.0)]
    print(f"  Fashion-MNIST exact top-3 hit rate {100 * base_rate:.2f} %", flush=True)
    for method in ("tree", "kmeans"):
        index = CellIndex(method).fit(etr)
        for p in (1, 2, 4, 8):
            t0 = time.perf_counter()
            _, idx = index.kneighbors(ete, k, n_probe=p)
            secs = time.perf_counter() - t0
            rate = float(label_rank_hits(ytr[idx], yte, 3).mean())
            out.append(row(f"veob {method} cells n_probe={p}", True, top3_hit_rate=rate,
                           median_s=secs, n_cells=index.n_cells_, n_probe=p,
                           delta_points=100 * (rate - base_rate),
                           recall_at_10=recall(idx[:, :10], exact_idx[:, :10])))
            print(f"  {method} n_probe={p}: top-3 {100 * rate:.2f} % "
                  f"({100 * (rate - base_rate):+.2f} points), {secs:.2f} s", flush=True)
    return out


def qps_at(rows: list[dict[str, Any]], prefix: str, target: float) -> float | None:
    """Best throughput among a method's settings whose recall reaches ``target``."""
    ok = [r["qps"] for r in rows if r["method"].startswith(prefix) and "qps" in r
          and r["recall_at_10"] >= target]
    return max(ok) if ok else None


def plot(rows: list[dict[str, Any]], config: dict[str, Any], path: Path) -> None:
    """Throughput against recall, every label taken from the run's ``config``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for prefix, style in (("veob cells", "o-"), ("veob k-means", "s-"), ("faiss IVFFlat", "^--"),
                          ("hnswlib", "d--")):
        pts = sorted((r["recall_at_10"], r["qps"]) for r in rows
                     if r["method"].startswith(prefix) and "qps" in r)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=prefix)
    for prefix, marker in (("veob exact", "*"), ("faiss IndexFlatL2", "x"), ("numpy", "+")):
        pts = [(r["recall_at_10"], r["qps"]) for r in rows if r["method"].startswith(prefix)]
        if pts:
            ax.plot(*zip(*pts), marker, markersize=10, label=prefix)
    ax.set_yscale("log")
    ax.set_xlabel(f"recall@{config['k']} (recall_at_10 column)")
    ax.set_ylabel("queries per second (log)")
    load = ", ".join(f"{v:.1f}" for v in config["load_average_at_end"])
    ax.set_title(f"k-NN search: {config['n']:,} x {config['d']} float32, {config['clusters']} "
                 f"clusters, {config['n_queries']:,} queries, k={config['k']}\n"
                 f"{config['threads']} threads on {config['cpus']} CPUs, load average at end "
                 f"{load}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=30)
    ap.add_argument("--n-queries", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--slow-queries", type=int, default=1000,
                    help="queries for the slow exact peers (numpy, faiss flat)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="threads for every method (faiss OpenMP, hnswlib, veob)")
    ap.add_argument("--exact-queries", type=int, default=None,
                    help="queries for the timed veob exact search (default: all)")
    ap.add_argument("--skip-cells", action="store_true")
    ap.add_argument("--n-probe", type=int, nargs="+", default=[2, 4, 6, 8, 12, 16, 32])
    ap.add_argument("--nlist", type=int, default=1000)
    ap.add_argument("--ef", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--skip-hnsw", action="store_true")
    ap.add_argument("--skip-kmeans", action="store_true")
    ap.add_argument("--kmeans-n", type=int, default=20_000,
                    help="rows of the k-means comparison (the first rows of the data)")
    ap.add_argument("--kmeans-clusters", type=int, default=150)
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--skip-fashion", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--png", default=None)
    args = ap.parse_args()
    args.exact_queries = args.exact_queries or args.n_queries

    base, queries = mixture(args.n, args.d, args.n_queries, args.clusters, args.seed)
    print(f"data: {args.n} x {args.d} float32, {args.n_queries} queries, k={args.k}", flush=True)
    rows: list[dict[str, Any]] = []
    with dask.config.set(scheduler="threads"):
        t0 = time.perf_counter()
        truth, _ = exact_kneighbors(queries, base, args.k)
        truth_s = time.perf_counter() - t0
        print(f"ground truth (veob exact): {truth_s:.1f} s", flush=True)
        rows.append(bench_query("veob exact_kneighbors", True,
                                lambda q: exact_kneighbors(q, base, args.k,
                                                           n_threads=args.threads)[0],
                                queries[:args.exact_queries], truth,
                                args.repeat, build_s=0.0))
        rows.append(bench_query("numpy brute force (argpartition)", False,
                                lambda q: numpy_brute(base, q, args.k),
                                queries[:args.slow_queries], truth, 1, build_s=0.0))
        run_faiss(rows, base, queries, truth, args)
        if not args.skip_cells:
            run_cells(rows, base, queries, truth, args)
        if not args.skip_hnsw:
            run_hnsw(rows, base, queries, truth, args)
        kmeans_rows = [] if args.skip_kmeans else kmeans_comparison(base, args)
        scale_rows = [] if args.skip_scaling else scaling(base, args)
        fashion_rows = [] if args.skip_fashion else fashion(args)

    flat = next((r for r in rows if r["method"] == "faiss IndexFlatL2"), None)
    for r in rows:
        if flat:
            r["qps_vs_faiss_flat"] = r["qps"] / flat["qps"]
    cols = ["method", "build_s", "build_peak_mb", "n_queries", "median_s", "qps",
            "recall_at_10", "qps_vs_faiss_flat"]
    print()
    print_table(rows, cols)
    summary: dict[str, Any] = {}
    for target in (0.95, 0.99):
        ivf = qps_at(rows, "faiss IVFFlat", target)
        for prefix in ("veob cells", "veob k-means", "hnswlib"):
            mine = qps_at(rows, prefix, target)
            if mine and ivf:
                summary[f"{prefix} qps/faiss IVF qps at recall>={target}"] = mine / ivf
    ivf_build = next((r["build_s"] for r in rows if r["method"].startswith("faiss IVF")), None)
    for prefix in ("veob cells", "veob k-means"):
        b = next((r["build_s"] for r in rows if r["method"].startswith(prefix)), None)
        if b and ivf_build:
            summary[f"{prefix} build / faiss IVF build"] = b / ivf_build
    mine_exact = next(r for r in rows if r["method"] == "veob exact_kneighbors")
    if flat:
        summary["veob exact qps / faiss IndexFlatL2 qps"] = mine_exact["qps"] / flat["qps"]
    print()
    for key, value in summary.items():
        print(f"{key}: {value:.2f}")
    if kmeans_rows:
        print()
        print_table(kmeans_rows, ["method", "n_rows", "n_clusters", "build_s", "inertia"])
    if scale_rows:
        print()
        print_table(scale_rows, ["method", "n_rows", "build_s", "ns_per_n_log2n"])
    if fashion_rows:
        print()
        print_table(fashion_rows, ["method", "top3_hit_rate", "delta_points", "recall_at_10",
                                   "median_s"])
    config = {"n": args.n, "d": args.d, "n_queries": args.n_queries, "k": args.k,
              "clusters": args.clusters, "repeat": args.repeat,
              "kmeans_n": args.kmeans_n, "kmeans_clusters": args.kmeans_clusters,
              "slow_queries": args.slow_queries, "nlist": args.nlist, "seed": args.seed,
              "threads": args.threads, "exact_queries": args.exact_queries,
              "load_average_at_end": os.getloadavg(), "cpus": os.cpu_count(),
              "note": "2 cores shared with other engineers' jobs during the run; trust ratios "
                      "within the run, not absolute times. hnswlib built once."}
    out = write_result_json("bench_search", config,
                            rows + kmeans_rows + scale_rows + fashion_rows + [{"method": "summary",
                                                                 "ours": True, **summary}],
                            args.json)
    png = Path(args.png) if args.png else out.with_suffix(".png")
    plot(rows, config, png)
    print(f"\nwrote {out} and {png}")


if __name__ == "__main__":
    main()
