"""What-if: a cold threaded ``O_DIRECT`` Gram fit takes the read pass's busy-cores rule.

``cost_model.predict`` applies ``cold_direct_read_speedup`` to cold threaded read passes only;
this script re-predicts copies of (c) JSONs with the rule applied to Gram fits too, and prints
each Gram fit's error before and after. Nothing in the repository is changed.

Usage, from this folder::

    python whatif_gram_cold.py cost_model.json c64n.json c64n_2.json c256n.json c256z.json
"""
import contextlib
import inspect
import io
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import cost_model as cm

_OLD = 'scheduler == "threads" and op == "read" and cold_bytes and direct_io'
_NEW = 'scheduler == "threads" and op in ("read", "gram") and cold_bytes and direct_io'


def main() -> None:
    src = inspect.getsource(cm.predict)
    if _OLD not in src:
        raise SystemExit("cost_model.predict has changed: this what-if no longer applies")
    exec(src.replace(_OLD, _NEW), vars(cm))  # redefine predict in cost_model's namespace
    import bench_scale

    bench_scale.predict = cm.predict
    cal = Path(sys.argv[1])
    for f in map(Path, sys.argv[2:]):
        before = {r["method"]: r["pred_err"]
                  for r in json.loads(f.read_text())["results"] if "pred_err" in r}
        tmp = Path("/tmp") / f"whatif_{f.name}"
        shutil.copy(f, tmp)
        with contextlib.redirect_stdout(io.StringIO()):
            bench_scale.repredict(tmp, cal)
        for r in json.loads(tmp.read_text())["results"]:
            if "pred_err" in r and r["op"] == "gram":
                print(f"{f.stem:7s} {r['method'][:44]:44s} "
                      f"{before[r['method']]:+.0%} -> {r['pred_err']:+.0%}")


if __name__ == "__main__":
    main()
