"""§9.2 subdomains: one basis per subdomain against one global basis, on real and synthetic data.

Cases (``--case``, several allowed; default all but ``scale``):

``fashion``  Fashion-MNIST, one subdomain per class in training (60,000 x 784). A test image is
             routed by content to the class whose basis leaves the least residual energy: a
             subspace classifier (``top1_accuracy``), beside the global embedding's 1-NN at the
             same k and a plain numpy subspace classifier (per-class ``eigh``, the peer).
             k = 10, 20, 30, 50.
``imdb``     IMDB sentences (§6.5 spectral features, 6 x 50 = 300 wide) with subdomains by
             review rating band (1-2, 3-4, 7-8, 9-10; metadata ``sentiment``, ``min_rating``),
             one exact index per band, queried with a metadata filter (``where_ok``: every
             answer in a matching band).
``many``     1,000 subdomains x 64 features (generated per chunk, keys at random so every chunk
             holds every subdomain): one pass under ``--budget`` (default 1 GB).
``wide``     200 subdomains x 784 features, same generator: ``auto`` (one pass of rank-40
             summaries) and the exact Gram route in as many passes as the budget needs.
``scale``    :class:`veob_dask.datasets.SyntheticMatrix` (the scale issue's billion-row source)
             with 1,000 subdomains; exact per-subdomain references from its closed form.
             ``--scale-rows`` sets the size (default 20,000,000: about 5 GB generated).

Every case reports, per method: ``median_s`` (fit), ``peak_mb`` (peak RSS of the process tree)
and ``delta_mb`` (peak above the RSS at the start of the fit: what the fit itself took), the
solver and passes, and the reconstruction error per subdomain — ``recon_sub_mean``/``_max``
with each subdomain's own basis, ``recon_global_mean``/``_max`` with one global basis of the
same k (relative: residual energy over the subdomain's energy).

    python benchmarks/bench_subdomains.py                       # fashion, imdb, many, wide
    python benchmarks/bench_subdomains.py --case fashion --repeat 3
    python benchmarks/bench_subdomains.py --small               # seconds: a smoke run
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

from _common import PeakRSS, print_table, write_result_json

from veob_dask import SVDEmbedding
from veob_dask.datasets import DEFAULT_FASHION_MNIST
from veob_dask.index import SubdomainIndex, exact_kneighbors
from veob_dask.io.idx import read_idx
from veob_dask.subdomain import SubdomainEmbedding

CASES = ("fashion", "imdb", "many", "wide", "scale")
IMDB = Path("/work/shared/data/imdb-aclImdb/imdb_labeled_50k.tsv.xz")
BANDS = {"1-2": (1, 2, "neg"), "3-4": (3, 4, "neg"), "7-8": (7, 8, "pos"), "9-10": (9, 10, "pos")}


def timed(func: Any, repeat: int) -> tuple[float, Any, float, float]:
    """(median seconds, last result, peak MB, peak-above-start MB) over ``repeat`` runs."""
    times, peak, delta, out = [], 0.0, 0.0, None
    for _ in range(max(1, repeat)):
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            out = func()
            times.append(time.perf_counter() - t0)
        peak, delta = max(peak, mem.peak_mb), max(delta, mem.delta_mb)
    return float(np.median(times)), out, peak, delta


def per_key_energy(x: da.Array, keys: da.Array, m: int, basis: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Energy of each subdomain's rows and the part ``basis`` (k x d) captures, one pass."""
    def block(xb: np.ndarray, kb: np.ndarray) -> np.ndarray:
        xb = np.asarray(xb, dtype=np.float64)
        out = np.zeros((1, 2, m))
        out[0, 0] = np.bincount(kb.ravel(), np.einsum("ij,ij->i", xb, xb), minlength=m)
        if basis is not None:
            p = xb @ basis.T
            out[0, 1] = np.bincount(kb.ravel(), np.einsum("ij,ij->i", p, p), minlength=m)
        return out

    parts = da.map_blocks(block, x, keys[:, None], dtype=np.float64, new_axis=2,
                          chunks=((1,) * x.numblocks[0], (2,), (m,)))
    (tot,) = dask.compute(parts.sum(axis=0))
    return tot[0], tot[1]


def recon_rows(model: SubdomainEmbedding, global_err: np.ndarray) -> dict[str, float]:
    own = 1.0 - (model.singular_values_**2).sum(axis=1) / np.maximum(model.energy_, 1e-300)
    return {"recon_sub_mean": round(float(own.mean()), 4),
            "recon_sub_max": round(float(own.max()), 4),
            "recon_global_mean": round(float(global_err.mean()), 4),
            "recon_global_max": round(float(global_err.max()), 4)}


def model_row(model: SubdomainEmbedding, budget: Any) -> dict[str, Any]:
    return {"solver": model.solver_, "passes": model.n_passes_, "subdomains": model.domains_.size,
            "budget_mb": None if budget is None else round(int(budget) / 2**20),
            "estimate_mb": round(model.memory_estimate_ / 2**20)}


# -- fashion ---------------------------------------------------------------------------------
def numpy_subspace_classifier(x: np.ndarray, y: np.ndarray, xt: np.ndarray, k: int) -> np.ndarray:
    """The peer: per-class ``eigh`` of the Gram matrix, nearest subspace by residual energy."""
    classes = np.unique(y)
    resid = np.empty((xt.shape[0], classes.size))
    for j, c in enumerate(classes):
        xs = x[y == c]
        _w, v = np.linalg.eigh(xs.T @ xs)
        basis = v[:, ::-1][:, :k]
        resid[:, j] = np.einsum("ij,ij->i", xt, xt) - np.sum((xt @ basis) ** 2, axis=1)
    return classes[resid.argmin(axis=1)]


def case_fashion(args: argparse.Namespace) -> list[dict[str, Any]]:
    root = Path(args.fashion)
    x = read_idx(root / "train-images-idx3-ubyte.gz").reshape(60000, -1)
    y = read_idx(root / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xt = read_idx(root / "t10k-images-idx3-ubyte.gz").reshape(10000, -1).astype(np.float64)
    yt = read_idx(root / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    if args.small:
        x, y, xt, yt = x[:6000], y[:6000], xt[:1000], yt[:1000]
    xd = da.from_array(x, chunks=(max(1, x.shape[0] // 6), -1))
    yd = da.from_array(y, chunks=(xd.chunks[0],))
    x64 = x.astype(np.float64)
    rows = []
    for k in args.ks:
        common = {"case": "fashion", "k": k, "rows": x.shape[0], "cols": x.shape[1]}
        sec, model, peak, delta = timed(
            lambda k=k: SubdomainEmbedding(k, memory_budget=args.budget).fit(xd, domains=yd),
            args.repeat)
        acc = float((model.predict(xt) == yt).mean())
        gsec, glob, gpeak, gdelta = timed(lambda k=k: SVDEmbedding(k).fit(xd), args.repeat)
        energy, captured = per_key_energy(xd, yd, 10, glob.components_)
        gerr = 1.0 - captured / energy
        rows.append({**common, "method": "veob subdomains, routed by content", "ours": True,
                     "median_s": round(sec, 3), "peak_mb": round(peak), "delta_mb": round(delta),
                     "top1_accuracy": acc, "fit_ratio_to_global": round(sec / gsec, 2),
                     **model_row(model, args.budget), **recon_rows(model, gerr)})
        emb, emb_t = glob.transform(x64), glob.transform(xt)
        nn, _ = exact_kneighbors(emb_t, emb, 1)
        rows.append({**common, "method": "veob global SVD, 1-NN", "ours": True,
                     "median_s": round(gsec, 3), "peak_mb": round(gpeak),
                     "delta_mb": round(gdelta), "top1_accuracy": float((y[nn[:, 0]] == yt).mean())})
        psec, pred, ppeak, pdelta = timed(
            lambda k=k: numpy_subspace_classifier(x64, y, xt, k), args.repeat)
        rows.append({**common, "method": "numpy subspace classifier (eigh per class)",
                     "ours": False, "median_s": round(psec, 3), "peak_mb": round(ppeak),
                     "delta_mb": round(pdelta), "top1_accuracy": float((pred == yt).mean())})
        print_table(rows[-3:], ["method", "k", "top1_accuracy", "median_s", "delta_mb",
                                "recon_sub_mean", "recon_global_mean"])
    return rows


# -- imdb ------------------------------------------------------------------------------------
def imdb_features(args: argparse.Namespace) -> tuple[da.Array, np.ndarray, Any]:
    """Sentence features (n, 300) of the ≤ 32-token sentences and each one's rating band."""
    from veob_dask.text.context import build_context
    from veob_dask.text.corpus import ensure_corpus
    from veob_dask.text.sentences import corpus_embedding_matrix, sentence_features

    work = Path(args.work or tempfile.mkdtemp(prefix="veob-bench-subdomains-"))
    limit = 2000 if args.small else args.limit
    corpus = ensure_corpus(args.reviews, work / "corpus.zarr", limit=limit, overwrite=True)
    words, _ = build_context(corpus)
    emb, _ = corpus_embedding_matrix(corpus, words)
    feats = sentence_features(corpus, emb)
    lengths = corpus.sentence_lengths
    rating = np.asarray(corpus.group["reviews/rating"][:])[corpus.sentence_review]
    band = np.full(rating.shape, "", dtype=object)
    for name, (lo, hi, _) in BANDS.items():
        band[(rating >= lo) & (rating <= hi)] = name
    keep = np.flatnonzero((lengths >= 1) & (lengths <= 32) & (band != ""))
    mask = np.zeros(lengths.size, dtype=bool)
    mask[keep] = True
    return feats[mask], band[keep].astype(str), (corpus, keep)


def case_imdb(args: argparse.Namespace) -> list[dict[str, Any]]:
    x, band, (corpus, keep) = imdb_features(args)
    x = x.persist()  # the features once in memory (n x 300 float64), as the fits compare solvers
    kd = da.from_array(band, chunks=(x.chunks[0],))
    meta = {name: {"sentiment": s, "min_rating": lo, "max_rating": hi}
            for name, (lo, hi, s) in BANDS.items()}
    rows = []
    for k in args.imdb_ks:
        common = {"case": "imdb", "k": k, "rows": int(x.shape[0]), "cols": int(x.shape[1])}
        sec, model, peak, delta = timed(lambda k=k: SubdomainEmbedding(
            k, metadata=meta, memory_budget=args.budget).fit(x, domains=kd), args.repeat)
        gsec, glob, _, _ = timed(lambda k=k: SVDEmbedding(k).fit(x), args.repeat)
        codes = da.from_array(model.codes(band), chunks=(x.chunks[0],))
        energy, captured = per_key_energy(x, codes, model.domains_.size, glob.components_)
        isec, index, _, idelta = timed(lambda model=model: SubdomainIndex("exact").fit(
            model, x, band), 1)
        rng = np.random.default_rng(0)
        pick = np.sort(rng.choice(x.shape[0], min(200, x.shape[0]), replace=False))
        q = np.asarray(x[pick].compute())
        t0 = time.perf_counter()
        res = index.search(q, 10, where=["sentiment=pos", "min_rating>=9"])
        qsec = time.perf_counter() - t0
        t0 = time.perf_counter()
        res_all = index.search(q, 10, routes=4)
        asec = time.perf_counter() - t0
        rows.append({**common, "method": "veob subdomains by rating band", "ours": True,
                     "median_s": round(sec, 3), "peak_mb": round(peak), "delta_mb": round(delta),
                     "fit_ratio_to_global": round(sec / gsec, 2), "global_s": round(gsec, 3),
                     "index_s": round(isec, 3), "index_delta_mb": round(idelta),
                     "qps_filtered": round(q.shape[0] / qsec), "qps_all_routes": round(
                         q.shape[0] / asec),
                     "where_ok": bool(np.all(res.domains == "9-10")),
                     **model_row(model, args.budget),
                     **recon_rows(model, 1.0 - captured / energy)})
        if k == args.imdb_ks[-1]:
            text = corpus.sentence_text(keep[[pick[0], *res.indices[0, :3].tolist()]])
            print(f"query: {text[0]}\n  9-10 answers: " + " | ".join(text[1:]))
            del res_all
        print_table(rows[-1:], ["method", "k", "median_s", "global_s", "delta_mb", "where_ok",
                                "recon_sub_mean", "recon_global_mean"])
    return rows


# -- synthetic -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _bases(seed: int, m: int, d: int, r: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 7])
    return np.stack([np.linalg.qr(rng.normal(size=(d, r)))[0].T for _ in range(m)]).astype(
        np.float32)


def _keys_chunk(block_info: Any = None, *, seed: int, m: int) -> np.ndarray:
    loc = block_info[None]
    i, rows = loc["chunk-location"][0], loc["chunk-shape"][0]
    return np.random.default_rng([seed, i, 0]).integers(0, m, size=rows).astype(np.int32)


def _rows_chunk(block_info: Any = None, *, seed: int, m: int, d: int, r: int) -> np.ndarray:
    """Rows of subdomain j: r strong directions of its own (spectrum 10, 9, ...) plus noise."""
    loc = block_info[None]
    i, rows = loc["chunk-location"][0], loc["chunk-shape"][0]
    keys = np.random.default_rng([seed, i, 0]).integers(0, m, size=rows)
    rng = np.random.default_rng([seed, i, 1])
    out = rng.standard_normal((rows, d), dtype=np.float32) * np.float32(0.3)
    coef = rng.standard_normal((rows, r), dtype=np.float32) * np.linspace(10, 1, r,
                                                                         dtype=np.float32)
    bases = _bases(seed, m, d, r)
    order = np.argsort(keys, kind="stable")
    cuts = np.flatnonzero(np.r_[True, np.diff(keys[order]) != 0, True])
    for a, b in itertools.pairwise(cuts):
        idx = order[a:b]
        out[idx] += coef[idx] @ bases[keys[idx[0]]]
    return out


def synthetic(rows: int, m: int, d: int, chunk_rows: int, seed: int = 0,
              r: int = 8) -> tuple[da.Array, da.Array]:
    chunks = (chunk_rows,) * (rows // chunk_rows) + ((rows % chunk_rows,) if rows % chunk_rows
                                                      else ())
    x = da.map_blocks(_rows_chunk, seed=seed, m=m, d=d, r=r, chunks=(chunks, (d,)),
                      dtype=np.float32, meta=np.empty((0, 0), np.float32))
    keys = da.map_blocks(_keys_chunk, seed=seed, m=m, chunks=(chunks,), dtype=np.int32,
                         meta=np.empty((0,), np.int32))
    return x, keys


def fit_synthetic(case: str, x: da.Array, keys: da.Array, k: int, args: argparse.Namespace,
                  solvers: list[tuple[str, str]]) -> list[dict[str, Any]]:
    m = int(args.many_keys if case == "many" else args.wide_keys)
    common = {"case": case, "k": k, "rows": int(x.shape[0]), "cols": int(x.shape[1])}
    gsec, glob, gpeak, gdelta = timed(lambda: SVDEmbedding(k).fit(x), 1)
    energy, captured = per_key_energy(x, keys, m, glob.components_)
    rows = [{**common, "method": "veob global SVD (one basis)", "ours": True,
             "median_s": round(gsec, 3), "peak_mb": round(gpeak), "delta_mb": round(gdelta)}]
    for label, solver in solvers:
        sec, model, peak, delta = timed(lambda solver=solver: SubdomainEmbedding(
            k, solver=solver, memory_budget=args.budget).fit(x, domains=keys), args.repeat)
        rows.append({**common, "method": label, "ours": True, "median_s": round(sec, 3),
                     "peak_mb": round(peak), "delta_mb": round(delta),
                     "fit_ratio_to_global": round(sec / gsec, 2),
                     "under_budget": delta * 2**20 <= int(args.budget),
                     **model_row(model, args.budget),
                     **recon_rows(model, 1.0 - captured / energy)})
    print_table(rows, ["method", "median_s", "delta_mb", "solver", "passes", "estimate_mb",
                       "under_budget", "recon_sub_mean", "recon_global_mean"])
    return rows


def case_many(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = 200_000 if args.small else args.many_rows
    x, keys = synthetic(rows, args.many_keys, 64, min(rows, 100_000))
    return fit_synthetic("many", x, keys, 8, args, [("veob subdomains auto", "auto")])


def case_wide(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = 40_000 if args.small else args.wide_rows
    x, keys = synthetic(rows, args.wide_keys, 784, min(rows, 20_000))
    return fit_synthetic("wide", x, keys, 30, args, [
        ("veob subdomains auto", "auto"), ("veob subdomains gram (exact, passes)", "gram")])


def case_scale(args: argparse.Namespace) -> list[dict[str, Any]]:
    from veob_dask.datasets import SyntheticMatrix  # the scale issue's source

    rows = 2_000_000 if args.small else args.scale_rows
    src = SyntheticMatrix(rows, 64, n_keys=1000, seed=0)
    x, keys = src.to_dask(chunk_rows=500_000), src.keys(chunk_rows=500_000)
    ref_keys, grams, _counts = src.key_grams()
    k = 8
    common = {"case": "scale", "k": k, "rows": rows, "cols": 64}
    gsec, glob, _, gdelta = timed(lambda: SVDEmbedding(k).fit(x), 1)
    sec, model, peak, delta = timed(lambda: SubdomainEmbedding(
        k, memory_budget=args.budget).fit(x, domains=keys), 1)
    assert np.array_equal(model.domains_, ref_keys)
    sv_err, g_err = [], []
    for j in range(ref_keys.size):
        lam = np.sort(np.linalg.eigvalsh(grams[j]))[::-1][:k]
        sv_err.append(np.max(np.abs(model.singular_values_[j] - np.sqrt(np.clip(lam, 0, None)))
                             / np.sqrt(lam[0])))
        g_err.append(1.0 - np.trace(glob.components_ @ grams[j] @ glob.components_.T)
                     / np.trace(grams[j]))
    row = {**common, "method": "veob subdomains auto", "ours": True, "median_s": round(sec, 3),
           "peak_mb": round(peak), "delta_mb": round(delta), "global_s": round(gsec, 3),
           "global_delta_mb": round(gdelta), "fit_ratio_to_global": round(sec / gsec, 2),
           "sv_relerr": float(np.max(sv_err)), "under_budget": delta * 2**20 <= int(args.budget),
           **model_row(model, args.budget), **recon_rows(model, np.array(g_err))}
    print_table([row], ["method", "rows", "median_s", "global_s", "delta_mb", "passes",
                        "sv_relerr", "recon_sub_mean", "recon_global_mean"])
    return [row]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", nargs="+", choices=CASES, default=["fashion", "imdb", "many", "wide"])
    p.add_argument("--ks", type=int, nargs="+", default=[10, 20, 30, 50])
    p.add_argument("--imdb-ks", type=int, nargs="+", default=[30])
    p.add_argument("--budget", type=int, default=10**9, help="memory_budget in bytes (1 GB)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--fashion", default=DEFAULT_FASHION_MNIST)
    p.add_argument("--reviews", default=str(IMDB))
    p.add_argument("--limit", type=int, default=None, help="first N IMDB reviews")
    p.add_argument("--many-rows", type=int, default=4_000_000)
    p.add_argument("--many-keys", type=int, default=1000)
    p.add_argument("--wide-rows", type=int, default=400_000)
    p.add_argument("--wide-keys", type=int, default=200)
    p.add_argument("--scale-rows", type=int, default=20_000_000)
    p.add_argument("--small", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--work", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    runners = {"fashion": case_fashion, "imdb": case_imdb, "many": case_many,
               "wide": case_wide, "scale": case_scale}
    results: list[dict[str, Any]] = []
    for case in args.case:
        print(f"== {case} (load {os.getloadavg()[0]:.1f})", flush=True)
        results += runners[case](args)
    config = {k: v for k, v in vars(args).items() if k not in ("json", "work")}
    out = write_result_json("bench_subdomains", config, results, args.json)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
