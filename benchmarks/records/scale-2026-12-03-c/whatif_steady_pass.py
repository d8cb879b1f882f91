"""What-if: the model with ``steady_pass`` (equal service times) for read passes and fits, and
``cold_direct_read_speedup`` on the cluster's cold read passes too, against the model as it is.

Re-predicts copies of (c) JSONs under each and prints every run's error. Nothing in the
repository is changed. Tested on 3 December and not adopted (benchmarks/README.md, "The
thirteenth chain"). From this folder::

    python whatif_steady_pass.py cal3.json c64n_3.json c256n_2.json c256z_2.json c64n_4.json c256z_3.json
    python whatif_steady_pass.py ../scale-2026-12-03/cost_model.json ../scale-2026-12-03/c*.json
"""
import contextlib
import inspect
import io
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import bench_scale
import cost_model as cm

OLD = 'scheduler == "threads" and op == "read" and cold_bytes and direct_io'
NEW = 'scheduler != "sync" and op == "read" and cold_bytes and direct_io'
PASS = "else closed_pass(io, cpu,"
STEADY = "else (closed_pass if op == 'transform' else steady_pass)(io, cpu,"


def steady_pass(io_s: float, cpu: float, slots: int, cores: int) -> float:
    if io_s <= 0 or slots < 1:
        return max(cpu, 0.0)
    if cpu <= 0:
        return io_s
    m = max(1, min(slots, cores))
    return max(io_s, cpu, (io_s + m * cpu) / slots)


def main() -> None:
    src = inspect.getsource(cm.predict)
    if OLD not in src or PASS not in src:
        raise SystemExit("cost_model.predict has changed: this what-if no longer applies")
    cm.steady_pass = steady_pass
    cal, files = Path(sys.argv[1]), [Path(f) for f in sys.argv[2:]]
    errs: dict[str, list[float]] = {"model": [], "what-if": []}
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for name, code in (("model", src), ("what-if", src.replace(OLD, NEW).replace(PASS, STEADY))):
        exec(code, vars(cm))  # (re)define predict in cost_model's namespace
        bench_scale.predict = cm.predict
        for f in files:
            tmp = Path("/tmp") / f"whatif_{f.name}"
            shutil.copy(f, tmp)
            with contextlib.redirect_stdout(io.StringIO()):
                bench_scale.repredict(tmp, cal)
            for r in json.loads(tmp.read_text())["results"]:
                if "pred_err" in r:
                    rows.setdefault((f.stem, r["method"]), {})[name] = r["pred_err"]
                    errs[name].append(abs(r["pred_err"]))
    for (f, m), e in rows.items():
        print(f"{f:8s} {m[:46]:46s} {e['model']:+5.0%} -> {e['what-if']:+5.0%}")
    for name, e in errs.items():
        print(f"{name:8s} within 25 %: {sum(x <= 0.25 for x in e)} of {len(e)}, "
              f"mean |error| {sum(e) / len(e):.3f}")


if __name__ == "__main__":
    main()
