"""Helpers shared by the benchmark scripts: timing, peak memory, SVD accuracy, JSON output.

Every benchmark writes one JSON shape (see ``shared/DESIGN.md``)::

    {"benchmark": name, "config": {...}, "machine": {...}, "results": [{"method": ..., "ours": bool,
     "median_s": ..., "peak_mb": ..., ...}, ...]}
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self

import numpy as np
import psutil

RESULTS_DIR = Path(__file__).resolve().parent / "results"

__all__ = [
    "PeakRSS",
    "Runnable",
    "drop_page_cache",
    "machine_info",
    "principal_angle_deg",
    "print_table",
    "store_bytes",
    "sv_relerr",
    "timeit_median",
    "tree_cpu_s",
    "write_result_json",
    "write_sharded_store",
]


def _tree_rss(proc: psutil.Process, members: list[psutil.Process] | None = None) -> int:
    total = 0
    for p in members if members is not None else [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_info().rss
    return total


class PeakRSS:
    """Sample the RSS of this process and all its children (but the processes ``exclude``
    names: a helper that is not part of the measured call) every ``interval`` seconds.

    ``peak_mb`` is the largest sample, ``delta_mb`` the peak above the RSS at entry.
    Use as a context manager around the measured call.

    The list of child processes is refreshed every ``refresh`` seconds, not at every sample:
    walking ``/proc`` for it took 0.7 ms of Python (holding the GIL) against 0.01 ms for one
    process's RSS, and sampling every 20 ms with the walk slowed a threaded Gram fit by 6-12 %
    on 2 cores (``benchmarks/README.md``, "Measurements behind choices").
    """

    def __init__(self, interval: float = 0.02, refresh: float = 0.5,
                 exclude: frozenset[int] = frozenset()) -> None:
        self.interval = interval
        self.refresh = refresh
        self.exclude = exclude
        self._proc = psutil.Process()
        self.base = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _members(self) -> list[psutil.Process]:
        return [self._proc, *(p for p in self._proc.children(recursive=True)
                              if p.pid not in self.exclude)]

    def _run(self) -> None:
        members, listed = self._members(), time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - listed >= self.refresh:
                members, listed = self._members(), time.monotonic()
            self.peak = max(self.peak, _tree_rss(self._proc, members))
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self.base = _tree_rss(self._proc, self._members())
        self.peak = self.base
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, _tree_rss(self._proc, self._members()))

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.base) / 2**20


class Runnable:
    """Mean number of runnable threads on the machine (``procs_running`` of ``/proc/stat``,
    ours included) while the body runs, sampled every 0.1 s: the contention for the cores."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                with open("/proc/stat") as f:
                    for line in f:
                        if line.startswith("procs_running"):
                            self.samples.append(int(line.split()[1]) - 1)  # not the sampler
            except OSError:
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.samples) if self.samples else None


def timeit_median(func: Callable[[], Any], repeat: int = 3) -> tuple[float, list[float], Any, float]:
    """Run ``func`` ``repeat`` times; return (median s, all times, last result, peak tree MB)."""
    times: list[float] = []
    result: Any = None
    peak = 0.0
    for _ in range(max(1, repeat)):
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            result = func()
            times.append(time.perf_counter() - t0)
        peak = max(peak, mem.peak_mb)
    return statistics.median(times), times, result, peak


def sv_relerr(s: np.ndarray, s_ref: np.ndarray) -> float:
    """Largest relative error of the top-k singular values against a reference."""
    k = min(len(s), len(s_ref))
    s = np.asarray(s, dtype=np.float64)[:k]
    ref = np.asarray(s_ref, dtype=np.float64)[:k]
    return float(np.max(np.abs(s - ref) / np.maximum(ref, 1e-300)))


def principal_angle_deg(v: np.ndarray, v_ref: np.ndarray) -> float:
    """Largest principal angle (degrees) between the row spaces of ``v`` and ``v_ref``.

    Both are (k, n_features); rows are orthonormalised first. When ``v`` has more rows than
    ``v_ref``, this is the largest angle between ``v_ref``'s subspace and ``v``'s.
    """
    qa, _ = np.linalg.qr(np.asarray(v, dtype=np.float64).T)
    qb, _ = np.linalg.qr(np.asarray(v_ref, dtype=np.float64).T)
    cos = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return float(np.degrees(np.arccos(np.clip(cos.min(), -1.0, 1.0))))


def machine_info() -> dict[str, Any]:
    """CPU count, Python version and versions of the packages a benchmark may use."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("veob_dask", "numpy", "scipy", "dask", "distributed", "dask-ml", "zarr",
                "scikit-learn", "gensim", "faiss-cpu", "hnswlib", "sparse"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions}


def write_result_json(name: str, config: dict[str, Any], results: list[dict[str, Any]],
                      path: str | os.PathLike[str] | None = None) -> Path:
    """Write a benchmark's results in the shared JSON shape; return the path written."""
    out = Path(path) if path else RESULTS_DIR / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "config": config, "machine": machine_info(), "results": results}
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=float))
    os.replace(tmp, out)
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        if v == 0 or 1e-3 <= abs(v) < 1e5:
            return f"{v:.4g}"
        return f"{v:.2e}"
    return str(v)


def print_table(rows: Iterable[dict[str, Any]], columns: list[str] | None = None,
                file: Any = None) -> None:
    """Print result rows as a plain aligned table."""
    rows = list(rows)
    if not rows:
        return
    cols = columns or list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = file or sys.stdout
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=out)


def tree_cpu_s() -> float:
    """User + system CPU seconds of this process and its live children (e.g. a cluster)."""
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def drop_page_cache() -> bool:
    """Write dirty pages and drop the page cache (root only); return whether it was dropped.

    Without it a store smaller than memory is served from RAM on its second read, so a "cold"
    pass would be warm. The drop affects every process on the machine (their files re-read from
    disk), nothing else.
    """
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        return False
    return True


def write_sharded_store(matrix: Any, path: str | os.PathLike[str], *, chunk_rows: int,
                        chunks_per_shard: int, attrs: dict[str, Any] | None = None,
                        codec: str = "zstd") -> int:
    """Write ``matrix`` (a ``SyntheticMatrix``) as a sharded Zarr v3 array ``X`` in group ``path``.

    Inner chunks of ``chunk_rows`` rows (what one task reads), shards of ``chunks_per_shard``
    chunks (one file each, so the file count stays small at any size); ``codec`` "zstd"
    (zarr's default) or "none" (raw float32: no decode CPU). Written shard by shard on the threaded scheduler, to a temporary sibling renamed into
    place at the end. Returns the bytes on disk.
    """
    import shutil
    import uuid

    import dask
    import zarr

    final = Path(path)
    if final.exists() and not (final / "zarr.json").exists():
        raise FileExistsError(f"{final} exists and is not a Zarr store; choose another path.")
    if final.exists() and "synthetic" not in json.loads((final / "zarr.json").read_text()).get(
            "attributes", {}):
        raise FileExistsError(f"{final} is a Zarr store this script did not write; choose "
                              "another path.")
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    n, d = matrix.shape
    shard_rows = chunk_rows * chunks_per_shard
    group = zarr.open_group(tmp, mode="w")
    group.attrs.update({"synthetic": matrix.describe(), **(attrs or {})})
    if codec not in ("zstd", "none"):
        raise ValueError(f"codec must be 'zstd' or 'none'; got {codec!r}.")
    arr = group.create_array("X", shape=(n, d), dtype=matrix.dtype, chunks=(chunk_rows, d),
                             shards=(shard_rows, d), dimension_names=("sample", "feature"),
                             **({"compressors": None} if codec == "none" else {}))
    try:
        x = matrix.to_dask(shard_rows)  # one task per shard: each shard written whole, once
        with dask.config.set(scheduler="threads"):
            x.store(arr, lock=False)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return store_bytes(final)


def store_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes on disk under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
