"""Incremental SVD (Brand update + merge tree) against scikit-learn IncrementalPCA, gensim LSI, exact SVD.

Usage::

    python benchmarks/bench_incremental.py                         # dense 60,000 x 784 + Zarr 2M x 256
    python benchmarks/bench_incremental.py --ooc-rows 500000,2000000 --workdir /tmp/bench-inc
    python benchmarks/bench_incremental.py --ooc-rows 0 --gensim-repeat 1

Part 1, dense 60,000 x 784 float32 (``veob_dask.datasets.make_low_rank``: the PEERS.md §1
spectrum 3000·0.93^i, i < 50, plus N(0, 0.5²) noise), k = 30, batches/chunks of 5,000 rows:
``IncrementalSVDEmbedding`` with working rank k + p for p in {0, k/2, k}, its centered variant,
scikit-learn ``IncrementalPCA`` (same batch size), gensim ``LsiModel`` (one pass, same chunk
size), the exact one-pass Gram route and LAPACK. The uncentered methods are scored against the
exact SVD (eigh of the float64 Gram matrix), the centered ones (PCA) against the exact PCA.
The same data merged in three tree shapes (fan-in 2, 3 and a left fold) is compared too: the
differences that truncation makes.

Part 2, out of core: Zarr arrays of ``--ooc-rows`` x 256 float32 (same generator with the
signal scaled by sqrt(rows / 60,000), so the signal-to-noise ratio and the gap at k stay those
of the dense matrix; k = 32, chunks of 100,000 rows) written chunk by chunk, then a pure read pass, this library's incremental
fit (p in {0, k/2, k}), the exact Gram route, IncrementalPCA fed the same Zarr chunks, gensim
fed the same chunks, and ``veob fit --solver incremental`` (the CLI with checkpoints) in a child
process. Peak memory (process tree RSS) for our fit at every size shows whether it is flat in the
number of rows. ``read_pass_ratio`` = seconds / seconds of the pure read pass.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    PeakRSS,
    principal_angle_deg,
    print_table,
    sv_relerr,
    timeit_median,
    write_result_json,
)

from veob_dask.datasets import make_low_rank
from veob_dask.io import read_array, write_array
from veob_dask.svd import IncrementalSVDEmbedding, SVDEmbedding


def exact_reference(x: np.ndarray, k: int, center: bool) -> tuple[np.ndarray, np.ndarray]:
    """Top-k singular values and right vectors from eigh of the float64 Gram matrix."""
    x64 = x.astype(np.float64)
    if center:
        x64 -= x64.mean(axis=0)
    lam, vec = np.linalg.eigh(x64.T @ x64)
    return np.sqrt(np.clip(lam[::-1][:k], 0, None)), vec[:, ::-1][:, :k].T


def _score(row: dict[str, Any], s: np.ndarray, vt: np.ndarray, ref: tuple[np.ndarray, np.ndarray],
           k: int) -> None:
    row["sv_relerr"] = sv_relerr(s[:k], ref[0][:k])
    row["angle_deg"] = principal_angle_deg(vt[:k], ref[1][:k])


def _run(jobs: list[dict[str, Any]], name: str, ours: bool, func: Any, repeat: int,
         ref: tuple[np.ndarray, np.ndarray] | None, k: int, **extra: Any) -> None:
    """Queue a method; :func:`_execute` runs the queue."""
    jobs.append({"name": name, "ours": ours, "func": func, "repeat": repeat, "ref": ref, "k": k,
                 "extra": extra})


def _execute(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run queued methods round-robin (rep 1 of every method, then rep 2...), as PEERS.md did.

    Interleaving spreads the load of this shared machine over all methods instead of letting
    one method's repetitions meet a quiet minute and another's a busy one.
    """
    times: list[list[float]] = [[] for _ in jobs]
    peaks = [0.0] * len(jobs)
    outs: list[Any] = [None] * len(jobs)
    errors: dict[int, str] = {}
    for rep in range(max((j["repeat"] for j in jobs), default=0)):
        for i, job in enumerate(jobs):
            if rep >= job["repeat"] or i in errors:
                continue
            try:
                _, t, outs[i], peak = timeit_median(job["func"], 1)
            except Exception as err:  # noqa: BLE001 - a failing peer is a result, not a crash
                errors[i] = f"{type(err).__name__}: {err}"
                print(f"  {job['name']}: {errors[i]:.80}", flush=True)
                continue
            times[i] += t
            peaks[i] = max(peaks[i], peak)
            print(f"  rep {rep + 1} {job['name']}: {t[0]:.3f} s", flush=True)
    rows = []
    for i, job in enumerate(jobs):
        row: dict[str, Any] = {"method": job["name"], "ours": job["ours"], **job["extra"]}
        if i in errors:
            row["error"] = errors[i]
        else:
            row.update({"median_s": float(np.median(times[i])), "min_s": min(times[i]),
                        "max_s": max(times[i]), "repeats": len(times[i]), "peak_mb": peaks[i]})
            if job["ref"] is not None and outs[i] is not None:
                _score(row, outs[i][0], outs[i][1], job["ref"], job["k"])
        rows.append(row)
    return rows


def _ours(x: Any, k: int, p: int, center: bool = False, split_every: int = 2):
    def run() -> tuple[np.ndarray, np.ndarray]:
        m = IncrementalSVDEmbedding(k, n_oversamples=p, center=center,
                                    split_every=split_every).fit(x)
        return m.singular_values_, m.components_
    return run


def _gensim(chunks: Any, d: int, k: int, chunksize: int):
    def run() -> tuple[np.ndarray, np.ndarray]:
        from gensim.matutils import Dense2Corpus
        from gensim.models import LsiModel

        class Corpus:  # streams rows (documents) chunk by chunk, as gensim expects
            def __iter__(self):
                for block in chunks():
                    yield from Dense2Corpus(block, documents_columns=False)

        lsi = LsiModel(Corpus(), num_topics=k, id2word={i: str(i) for i in range(d)},
                       chunksize=chunksize, onepass=True)
        return lsi.projection.s[:k], lsi.projection.u[:, :k].T
    return run


def _ipca(chunks: Any, k: int, batch: int):
    def run() -> tuple[np.ndarray, np.ndarray]:
        from sklearn.decomposition import IncrementalPCA

        m = IncrementalPCA(n_components=k, batch_size=batch)
        for block in chunks():
            m.partial_fit(block)
        return m.singular_values_, m.components_
    return run


def dense_part(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    n, d, k, b = args.rows, args.cols, args.k, args.batch
    x = make_low_rank(n, d, seed=args.seed)
    ref = exact_reference(x, k, center=False)
    ref_c = exact_reference(x, k, center=True)
    xd = da.from_array(x, chunks=(b, d))
    rows: list[dict[str, Any]] = []

    def blocks():
        return (x[i:i + b] for i in range(0, n, b))

    for p in sorted({0, k // 2, k}):
        _run(rows, f"veob incremental p={p}", True, _ours(xd, k, p), args.repeat, ref, k, p=p,
             scored_against="exact SVD")
    _run(rows, f"veob incremental centered p={k}", True, _ours(xd, k, k, center=True),
         args.repeat, ref_c, k, p=k, scored_against="exact PCA")

    def gram():
        m = SVDEmbedding(k, solver="gram").fit(xd)
        return m.singular_values_, m.components_

    def lapack():
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        return s[:k], vt[:k]

    _run(rows, "veob gram (exact, one pass)", True, gram, args.repeat, ref, k,
         scored_against="exact SVD")
    if args.lapack_repeat:
        _run(rows, "numpy.linalg.svd (LAPACK f32)", False, lapack, args.lapack_repeat, ref, k,
             scored_against="exact SVD")
    _run(rows, f"sklearn IncrementalPCA batch={b}", False, _ipca(blocks, k, b), args.repeat,
         ref_c, k, scored_against="exact PCA")
    if args.gensim_repeat:
        _run(rows, f"gensim LsiModel onepass chunksize={b}", False, _gensim(blocks, d, k, b),
             args.gensim_repeat, ref, k, scored_against="exact SVD")
    rows = _execute(rows)
    # tree shape: same data, three merge orders
    shapes = []
    for p in sorted({0, k // 2, k}):
        fits = [_ours(xd, k, p, split_every=f)() for f in (2, 3, xd.numblocks[0])]
        for f, (s, vt) in zip((3, "fold"), fits[1:]):
            shapes.append({"p": p, "shape": f"fan-in {f} vs fan-in 2",
                           "sv_maxreldiff": sv_relerr(s, fits[0][0]),
                           "angle_deg": principal_angle_deg(vt, fits[0][1])})
    ipca = next((r for r in rows if r["method"].startswith("sklearn") and "median_s" in r), None)
    gens = next((r for r in rows if r["method"].startswith("gensim") and "median_s" in r), None)
    for r in rows:
        if "median_s" in r and ipca:
            r["speedup_vs_ipca"] = ipca["median_s"] / r["median_s"]
        if "median_s" in r and gens:
            r["speedup_vs_gensim"] = gens["median_s"] / r["median_s"]
    return rows, {"tree_shapes": shapes}


def _make_store(path: Path, n: int, d: int, chunk: int, seed: int, scale: float = 3000.0) -> float:
    """Write the n x d generator matrix to a Zarr store chunk by chunk (reused if present)."""
    if (path / "zarr.json").exists():
        return 0.0
    parts = [da.from_delayed(dask.delayed(make_low_rank)(n, d, seed=seed, start=i,
                                                          stop=min(n, i + chunk), scale=scale),
                             shape=(min(n, i + chunk) - i, d), dtype=np.float32)
             for i in range(0, n, chunk)]
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        write_array(da.concatenate(parts), path, chunk_rows=chunk, overwrite=True)
    return time.perf_counter() - t0


def ooc_part(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    d, k, chunk = args.ooc_cols, args.ooc_k, args.ooc_chunk
    sizes = [int(s) for s in args.ooc_rows.split(",") if int(s) > 0]
    rows: list[dict[str, Any]] = []
    for n in sizes:
        # signal scaled with sqrt(n): the same signal-to-noise as the 60,000-row matrix, so the
        # top-k subspace stays well defined (with a fixed scale the noise bulk, 0.5·sqrt(n),
        # swallows the 32nd direction and the angle is ill-posed)
        scale = 3000.0 * np.sqrt(n / 60_000)
        store = work / f"ooc-{n}x{d}-snr.zarr"
        wrote = _make_store(store, n, d, chunk, args.seed, scale)
        print(f"out-of-core {n} x {d} float32 at {store} (written in {wrote:.1f} s)", flush=True)
        largest = n == max(sizes)
        size = {"n_rows": n}

        def x(store: Path = store) -> da.Array:
            return read_array(store)

        def chunks(store: Path = store, n: int = n) -> Any:
            z = read_array(store)
            return (np.asarray(z[i:i + chunk].compute(scheduler="sync"))
                    for i in range(0, n, chunk))

        def read_pass(x: Any = x) -> None:
            x().sum().compute()

        def gram(x: Any = x) -> tuple[np.ndarray, np.ndarray]:
            m = SVDEmbedding(k, solver="gram").fit(x())
            return m.singular_values_, m.components_

        here: list[dict[str, Any]] = []
        ref = gram()  # the exact reference (untimed; also warms the page cache)
        _run(here, f"(a) read pass {n} rows", False, read_pass, args.repeat, None, k, **size)
        _run(here, f"veob gram (exact, one pass) {n} rows", True, gram, args.repeat, ref, k,
             **size)
        for p in (sorted({0, k // 2, k}) if largest else [k]):
            _run(here, f"veob incremental p={p} {n} rows", True, _ours(x(), k, p), args.repeat,
                 ref, k, p=p, **size)
        if largest:
            if args.ooc_peer_repeat:
                m_c = SVDEmbedding(k, solver="gram", center=True).fit(x())  # exact PCA, untimed
                _run(here, f"sklearn IncrementalPCA per Zarr chunk {n} rows", False,
                     _ipca(chunks, k, chunk), args.ooc_peer_repeat,
                     (m_c.singular_values_, m_c.components_), k, **size,
                     scored_against="exact PCA (Gram)")
            if args.ooc_gensim_repeat:
                _run(here, f"gensim LsiModel onepass per Zarr chunk {n} rows", False,
                     _gensim(chunks, d, k, chunk), args.ooc_gensim_repeat, ref, k, **size)
        here = _execute(here)
        if largest:
            here.append(_cli(store, work, k, args))
        read = next((r["median_s"] for r in here if r["method"].startswith("(a)")
                     and "median_s" in r), None)
        for r in here:
            if read and "median_s" in r:
                r["read_pass_ratio"] = r["median_s"] / read
        rows.extend(here)
    return rows


def _cli(store: Path, work: Path, k: int, args: argparse.Namespace) -> dict[str, Any]:
    """``veob fit --solver incremental`` in a child process (checkpoints every 8 chunks)."""
    model = work / "model-incremental.zarr"
    cmd = [sys.executable, "-m", "veob_dask", "fit", str(store), "-o", str(model), "-k", str(k),
           "--solver", "incremental", "--overwrite", "--json"]
    t0 = time.perf_counter()
    with PeakRSS() as mem:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    row = {"method": "veob fit --solver incremental (CLI, checkpoint every 8 chunks)",
           "ours": True, "median_s": time.perf_counter() - t0, "repeats": 1,
           "peak_mb": mem.peak_mb, "returncode": proc.returncode,
           "note": "includes interpreter start-up and model write"}
    if proc.returncode != 0:
        row["error"] = proc.stderr.strip().splitlines()[-1:]
    shutil.rmtree(model, ignore_errors=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=60_000)
    p.add_argument("--cols", type=int, default=784)
    p.add_argument("-k", type=int, default=30)
    p.add_argument("--batch", type=int, default=5000, help="chunk / batch rows (dense part)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--gensim-repeat", type=int, default=3, help="0 skips gensim (dense part)")
    p.add_argument("--lapack-repeat", type=int, default=1, help="0 skips numpy.linalg.svd")
    p.add_argument("--ooc-rows", default="2000000",
                   help="comma-separated row counts of the Zarr matrices (0: skip part 2)")
    p.add_argument("--ooc-cols", type=int, default=256)
    p.add_argument("--ooc-k", type=int, default=32)
    p.add_argument("--ooc-chunk", type=int, default=100_000)
    p.add_argument("--ooc-peer-repeat", type=int, default=1,
                   help="repetitions of IncrementalPCA on the Zarr matrix (0 skips)")
    p.add_argument("--ooc-gensim-repeat", type=int, default=0,
                   help="repetitions of gensim on the Zarr matrix (default 0: skipped)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", help="where Zarr stores go (kept); default a temp dir, removed")
    p.add_argument("--json", help="output path (default benchmarks/results/bench_incremental.json)")
    p.add_argument("--blas-threads", type=int, default=0,
                   help="limit BLAS threads for every method (default 0: leave as is)")
    args = p.parse_args(argv)
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads, user_api="blas")
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    cols = ["method", "ours", "median_s", "repeats", "peak_mb", "sv_relerr", "angle_deg",
            "speedup_vs_ipca", "speedup_vs_gensim", "read_pass_ratio", "error"]
    with dask.config.set(scheduler="threads"):
        if args.rows:
            print(f"dense {args.rows} x {args.cols} float32, k={args.k}, batches of {args.batch}")
            dense, extra = dense_part(args)
            print_table(dense, cols)
            print("\nmerge-tree shape (same data, with truncation):")
            print_table(extra["tree_shapes"])
            rows += [{**r, "part": "dense"} for r in dense]
        if args.ooc_rows and args.ooc_rows != "0":
            work = Path(args.workdir or tempfile.mkdtemp(prefix="veob-bench-inc-"))
            work.mkdir(parents=True, exist_ok=True)
            try:
                ooc = ooc_part(args, work)
            finally:
                if not args.workdir:
                    shutil.rmtree(work, ignore_errors=True)
            print_table(ooc, cols)
            rows += [{**r, "part": "out-of-core"} for r in ooc]
    config = {"rows": args.rows, "cols": args.cols, "k": args.k, "batch": args.batch,
              "repeat": args.repeat, "gensim_repeat": args.gensim_repeat, "dtype": "float32",
              "ooc_rows": args.ooc_rows, "ooc_cols": args.ooc_cols, "ooc_k": args.ooc_k,
              "ooc_chunk": args.ooc_chunk, "scheduler": "threads",
              "blas_threads": args.blas_threads or "default",
              "reference": "eigh of the float64 Gram matrix", **extra}
    print("wrote", write_result_json("bench_incremental", config, rows, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
