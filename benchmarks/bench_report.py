"""Time and peak memory of ``veob report`` on a large image store, against one pure read pass.

Usage::

    python benchmarks/bench_report.py                          # 2,000,000 x 28 x 28 float32 (6.3 GB)
    python benchmarks/bench_report.py --rows 100000 --repeat 1  # a quick check of the script

The script writes (once, then reuses) a float32 image store: Fashion-MNIST's training images
(Debian's ``dataset-fashion-mnist``) cycled, each chunk shifted by up to 2 pixels, plus Gaussian
noise of 8 grey levels, with the images' labels as ``y``; it fits ``veob fit --spectral dct2
-k 30`` on it once (not timed here; the fit is ``bench_out_of_core.py``'s question). Then, each
in a fresh child process:

- the floor: one threaded read pass ``read_array(store).sum()``;
- ``veob report MODEL -o REPORT --store STORE --labels y`` (one pass over the store, t-SNE on
  1,000 sampled rows, five figures).

``median_s`` is the child's wall time from start to exit (imports included), ``cpu_s`` its
CPU time (user + system, steadier than seconds on a shared machine), ``peak_mb`` the peak RSS of
the child's process tree sampled every 20 ms. The report's own stage times (``store pass``,
``map``) come from its ``--json`` output. The issue's bound: under 30 s and under 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_result_json

NAME = "bench_report"


def write_store(path: Path, rows: int, chunk_rows: int) -> None:
    import dask.array as da

    from veob_dask.datasets import DEFAULT_FASHION_MNIST, idx_files
    from veob_dask.io import write_array
    from veob_dask.io.idx import read_idx
    from veob_dask.io.store import provenance

    files = idx_files(DEFAULT_FASHION_MNIST)
    base, labels = read_idx(files["train_images"]), read_idx(files["train_labels"])

    def block(block_id: tuple[int, ...] | None = None) -> np.ndarray:
        i = block_id[0] if block_id else 0
        rng = np.random.default_rng(i)
        lo, hi = i * chunk_rows, min(rows, (i + 1) * chunk_rows)
        imgs = base[np.arange(lo, hi) % base.shape[0]].astype(np.float32)
        imgs = np.roll(imgs, tuple(int(s) for s in rng.integers(-2, 3, size=2)), axis=(1, 2))
        return imgs + rng.normal(scale=8.0, size=imgs.shape).astype(np.float32)

    x = da.map_blocks(block, chunks=(da.core.normalize_chunks(chunk_rows, (rows,))[0],
                                     (28,), (28,)), dtype=np.float32)
    y = da.from_array(labels[np.arange(rows) % labels.size], chunks=chunk_rows)
    write_array(x, path, extra={"y": y}, chunk_rows=chunk_rows, overwrite=True,
                attrs=provenance("Fashion-MNIST train images cycled, shifted, noise 8",
                                 (rows, 28, 28), np.float32, format="synthetic"))


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def run_child(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd``; its wall time, CPU time and the peak RSS of its process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        try:
            peak = max(peak, _tree_rss(proc))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    out, err = child.communicate()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "peak_mb": peak / 2**20, "stdout": out}


def measure(label: str, cmd: list[str], repeat: int, ours: bool) -> dict[str, Any]:
    runs = [run_child(cmd) for _ in range(repeat)]
    row: dict[str, Any] = {"method": label, "ours": ours, "repeat": repeat,
                           "median_s": statistics.median(r["wall_s"] for r in runs),
                           "cpu_s": statistics.median(r["cpu_s"] for r in runs),
                           "peak_mb": max(r["peak_mb"] for r in runs)}
    if ours:
        stages = [json.loads(r["stdout"])["seconds"] for r in runs]
        for key in ("store pass", "map", "total"):
            row[f"{key.replace(' ', '_')}_s"] = statistics.median(s.get(key, 0.0) for s in stages)
    print(f"  {label}: {row['median_s']:.1f} s, cpu {row['cpu_s']:.1f} s, "
          f"peak {row['peak_mb']:.0f} MB", flush=True)
    return row


READ = ("import dask; from veob_dask.io import read_array; "
        "dask.config.set(scheduler='threads'); read_array({store!r}).sum().compute()")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--chunk-rows", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--work", default="/tmp/veob_report", help="where the store and model live")
    p.add_argument("--store", default=None, help="an existing image store to use instead")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    store = Path(args.store or work / f"fm_{args.rows}x28x28_c{args.chunk_rows}.zarr")
    if not (store / "zarr.json").exists():
        t0 = time.perf_counter()
        write_store(store, args.rows, args.chunk_rows)
        print(f"wrote {store} in {time.perf_counter() - t0:.1f} s", flush=True)
    veob = [sys.executable, "-m", "veob_dask"]
    model = work / f"{store.name}.model.zarr"
    if not (model / "zarr.json").exists():
        subprocess.run([*veob, "fit", str(store), "-o", str(model), "-k", "30", "--spectral",
                        "dct2", "--overwrite"], check=True, capture_output=True)
    load_before = os.getloadavg()
    results = [
        measure("read pass: read_array(...).sum() threaded (floor)",
                [sys.executable, "-c", READ.format(store=str(store))], args.repeat, False),
        measure("veob report --store --labels y (one pass, t-SNE on 1,000 rows)",
                [*veob, "report", str(model), "-o", str(work / "report.html"), "--store",
                 str(store), "--labels", "y", "--overwrite", "--json"], args.repeat, True),
    ]
    results[1]["read_pass_ratio"] = results[1]["median_s"] / results[0]["median_s"]
    print_table(results, ["method", "repeat", "median_s", "cpu_s", "peak_mb", "store_pass_s",
                          "map_s", "read_pass_ratio"])
    config = {"rows": args.rows, "image": [28, 28], "dtype": "float32",
              "chunk_rows": args.chunk_rows, "k": 30, "spectral": "dct2", "sample": 2000,
              "map_rows": 1000, "repeat": args.repeat, "store": str(store),
              "store_bytes": sum(f.stat().st_size for f in store.rglob("*") if f.is_file()),
              "load_average_before": load_before, "load_average_at_end": os.getloadavg(),
              "bound": "under 30 s and under 1 GB (issue 17)"}
    out = write_result_json(NAME, config, results, args.json)
    print(f"json: {out}")


if __name__ == "__main__":
    main()
