"""What honest singular values cost: the Gram route's refinement pass and the incremental solver's
Rayleigh–Ritz pass, against one pass, TSQR and numpy.

Usage::

    python benchmarks/bench_refine.py                          # the sizes below, median of 3
    python benchmarks/bench_refine.py --rows 20000 --repeat 1  # quick check

Cases (threaded scheduler, one dask array in memory, row chunks of ``--chunk`` rows):

``well``   the dense benchmark matrix (``make_low_rank``: 3000·0.93^i plus noise 0.035, float32,
           ``--rows`` x 784, k = 30): the Gram route must keep one pass; the cost of one extra
           Rayleigh–Ritz pass (``projected_gram`` in the basis found) is timed beside it.
``int64``  ``--rows`` x 20 int64 near 2⁶² (σ₂/σ₁ ≈ 2e-6), k = 5: one pass against the
           refined route (and TSQR).
``geom32`` ``--rows`` x 64 float32 with singular values 1 … 1e-6, all kept.
``noise``  ``--noise-rows`` x 30 white noise, k = 5: the incremental solver with and without its
           Rayleigh–Ritz pass, σ₁ against the exact σ₁ and the values against those of the data
           restricted to the basis found.

``sv_relerr`` is against numpy's float64 SVD of the same data, over the values the case keeps
with σᵢ/σ₁ >= 1e-6 (``sv_subspace_relerr``: against the SVD of the data projected on the basis
found). ``ratio`` divides ``median_s`` by the one-pass Gram time of the same case.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, timeit_median, write_result_json

from veob_dask.datasets import make_low_rank
from veob_dask.errors import NumericalWarning
from veob_dask.svd import IncrementalSVDEmbedding, gram_svd, tsqr_svd
from veob_dask.svd.gram import ACCURACY_FLOOR, projected_gram

NAME = "bench_refine"


def _relerr(s: np.ndarray, ref: np.ndarray, k: int) -> float:
    k = min(k, s.size, ref.size)
    inside = ref[:k] >= ACCURACY_FLOOR * ref[0]
    return float(np.max((np.abs(s[:k] - ref[:k]) / ref[:k])[inside]))


def _spectral(rng: np.random.Generator, n: int, d: int, s: np.ndarray) -> np.ndarray:
    u, _ = np.linalg.qr(rng.normal(size=(n, d)))
    v, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (u * s) @ v.T


def _gram_rows(case: str, x: np.ndarray, k: int, chunk: int, repeat: int) -> list[dict[str, Any]]:
    xd = da.from_array(x, chunks=(chunk, -1))
    ref = np.linalg.svd(x.astype(np.float64), compute_uv=False)
    rows = []
    t1, _, one, mb = timeit_median(lambda: gram_svd(xd, n_components=k, refine=False), repeat)
    rows.append({"case": case, "method": "gram, one pass (refine=False)", "passes": one.passes,
                 "median_s": t1, "peak_mb": mb, "sv_relerr": _relerr(one.singular_values, ref, k)})
    t, _, res, mb = timeit_median(lambda: gram_svd(xd, n_components=k), repeat)
    rows.append({"case": case, "method": "gram (default: refines when needed)",
                 "passes": res.passes, "median_s": t, "peak_mb": mb,
                 "sv_relerr": _relerr(res.singular_values, ref, k)})
    basis = np.ascontiguousarray(one.components.T)
    t, _, _, mb = timeit_median(lambda: dask.compute(projected_gram(xd, basis)), repeat)
    rows.append({"case": case, "method": "one Rayleigh–Ritz pass alone", "passes": 1,
                 "median_s": t, "peak_mb": mb})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        t, _, ts, mb = timeit_median(lambda: tsqr_svd(xd), repeat)
    rows.append({"case": case, "method": "tsqr", "passes": 1, "median_s": t, "peak_mb": mb,
                 "sv_relerr": _relerr(ts.singular_values, ref, k)})
    for r in rows:
        r.update(rows=x.shape[0], cols=x.shape[1], ratio=r["median_s"] / t1)
    return rows


def _noise_rows(n: int, chunk: int, repeat: int, seed: int) -> list[dict[str, Any]]:
    x = np.random.default_rng(seed).normal(size=(n, 30))
    xd = da.from_array(x, chunks=(chunk, -1))
    exact = np.linalg.svd(x, compute_uv=False)
    rows = []
    for refine in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericalWarning)
            t, _, est, mb = timeit_median(
                lambda r=refine: IncrementalSVDEmbedding(n_components=5, refine=r).fit(xd), repeat)
        sub = np.linalg.svd(x @ est.components_.T, compute_uv=False)
        rows.append({"case": "noise", "method": f"incremental refine={refine}",
                     "passes": 2 if refine else 1, "median_s": t, "peak_mb": mb,
                     "sigma1": float(est.singular_values_[0]), "sigma1_exact": float(exact[0]),
                     "sv_relerr": _relerr(est.singular_values_, exact, 5),
                     "sv_subspace_relerr": _relerr(est.singular_values_, sub, 5),
                     "rows": n, "cols": 30})
    rows[1]["ratio"] = rows[1]["median_s"] / rows[0]["median_s"]
    rows[0]["ratio"] = 1.0
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=60_000)
    p.add_argument("--noise-rows", type=int, default=500_000)
    p.add_argument("--chunk", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="output path (default benchmarks/results/)")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.rows
    rows: list[dict[str, Any]] = []
    with dask.config.set(scheduler="threads"):
        well = np.asarray(make_low_rank(n, 784, noise=0.035, seed=args.seed))
        rows += _gram_rows("well", well, 30, args.chunk, args.repeat)
        del well
        int64 = (2**62 + rng.integers(-2**46, 2**46, size=(n, 20))).astype(np.int64)
        rows += _gram_rows("int64", int64, 5, args.chunk, args.repeat)
        geom = _spectral(rng, n, 64, np.logspace(0, -6, 64)).astype(np.float32)
        rows += _gram_rows("geom32", geom, 64, args.chunk, args.repeat)
        rows += _noise_rows(args.noise_rows, max(args.chunk, args.noise_rows // 10),
                            args.repeat, args.seed)
    print_table(rows, ["case", "method", "rows", "cols", "passes", "median_s", "ratio",
                       "sv_relerr", "sv_subspace_relerr", "sigma1", "sigma1_exact", "peak_mb"])
    out = write_result_json(NAME, vars(args), rows, args.json)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
