"""What-if: a transform of an uncompressed store caps its disk-waiting task slots at one a core
(``cost_model.disk_slots``) only when its output is written with ``O_DIRECT``; through the page
cache the output's bytes reach the disk after the pass, and the reads alone keep it busy.

Re-predicts copies of (c) JSONs under each rule (patched into ``cost_model.disk_slots`` through
``predict``) and prints every run whose error moves. Nothing in the repository is changed by
running it. From this folder, one calibration and its chain's (c) JSONs per call::

    python whatif_dw_slots.py ../scale-2026-12-04-chain15/cost_model.json ../scale-2026-12-04-chain15/c*.json
"""
import contextlib
import io
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import bench_scale
import cost_model as cm

original = cm.disk_slots


def by_codec(op, scheduler, slots, cores, codec, direct_writes):
    return min(slots, cores) if (op == "transform" and scheduler != "cluster"
                                 and codec != "zstd") else slots


def by_direct_writes(op, scheduler, slots, cores, codec, direct_writes):
    return by_codec(op, scheduler, slots, cores, codec, direct_writes) if direct_writes else slots


def main() -> None:
    cal, files = Path(sys.argv[1]), [Path(f) for f in sys.argv[2:]]
    errs: dict[str, list[float]] = {"codec": [], "what-if": []}
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for name, rule in (("codec", by_codec), ("what-if", by_direct_writes)):
        predict = cm.predict

        def patched(*args, _predict=predict, _rule=rule, **kw):
            codec, dw = kw.get("codec", "zstd"), bool(kw.get("direct_writes", False))
            cm.disk_slots = lambda op, sch, slots, cores, *_: _rule(op, sch, slots, cores, codec, dw)
            try:
                return _predict(*args, **kw)
            finally:
                cm.disk_slots = original

        bench_scale.predict = patched
        for f in files:
            tmp = Path("/tmp") / f"whatif_{f.parent.name}_{f.name}"
            shutil.copy(f, tmp)
            with contextlib.redirect_stdout(io.StringIO()):
                bench_scale.repredict(tmp, cal)
            for i, r in enumerate(json.loads(tmp.read_text())["results"]):
                if "pred_err" in r:
                    rows.setdefault((f.stem, f"{i:02d} {r['method']}"), {})[name] = r["pred_err"]
                    errs[name].append(abs(r["pred_err"]))
    for (f, m), e in rows.items():
        if e["codec"] != e["what-if"]:
            print(f"{f:8s} {m[:50]:50s} {e['codec']:+5.0%} -> {e['what-if']:+5.0%}")
    for name, e in errs.items():
        print(f"{name:8s} within 25 %: {sum(x <= 0.25 for x in e)} of {len(e)}, "
              f"mean |error| {sum(e) / len(e):.3f}")


if __name__ == "__main__":
    main()
