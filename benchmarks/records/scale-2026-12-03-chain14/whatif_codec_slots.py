"""What-if: a transform of a zstd store waits on the disk with all its task slots, where the
model caps them at one a core (``cost_model.disk_slots``); an uncompressed store keeps the cap.

Re-predicts copies of (c) JSONs under each rule (patched into ``cost_model.disk_slots``, so it
runs on the model before the change, 4d8bb08, and after it) and prints every run's error.
Nothing in the repository is changed by running it. From this folder::

    python whatif_codec_slots.py ../scale-2026-12-03/cost_model.json ../scale-2026-12-03/c[0-9]*.json
    python whatif_codec_slots.py ../scale-2026-12-03-c/cal3.json ../scale-2026-12-03-c/c[0-9]*.json
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



def capped(op: str, scheduler: str, slots: int, cores: int, codec: str = "none") -> int:
    return min(slots, cores) if op == "transform" and scheduler != "cluster" else slots


def by_codec(op: str, scheduler: str, slots: int, cores: int, codec: str = "none") -> int:
    return slots if codec == "zstd" else capped(op, scheduler, slots, cores)


def main() -> None:
    if "codec" not in cm.predict.__code__.co_varnames:
        raise SystemExit("cost_model.predict has changed: this what-if no longer applies")
    cal, files = Path(sys.argv[1]), [Path(f) for f in sys.argv[2:]]
    errs: dict[str, list[float]] = {"capped": [], "what-if": []}
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for name, rule in (("capped", capped), ("what-if", by_codec)):
        # the old predict passes no codec; the what-if's codec is the store's, so patch
        # predict to hand it to the rule either way
        predict = cm.predict

        def patched(*args, _predict=predict, _rule=rule, **kw):
            codec = kw.get("codec", "zstd")
            cm.disk_slots = lambda op, sch, slots, cores, *_: _rule(op, sch, slots, cores, codec)
            try:
                return _predict(*args, **kw)
            finally:
                cm.disk_slots = original

        bench_scale.predict = patched
        for f in files:
            tmp = Path("/tmp") / f"whatif_{f.name}"
            shutil.copy(f, tmp)
            with contextlib.redirect_stdout(io.StringIO()):
                bench_scale.repredict(tmp, cal)
            for i, r in enumerate(json.loads(tmp.read_text())["results"]):
                if "pred_err" in r:
                    rows.setdefault((f.stem, f"{i:02d} {r['method']}"), {})[name] = r["pred_err"]
                    errs[name].append(abs(r["pred_err"]))
    for (f, m), e in rows.items():
        flag = "" if e["capped"] == e["what-if"] else "  *"
        print(f"{f:8s} {m[:50]:50s} {e['capped']:+5.0%} -> {e['what-if']:+5.0%}{flag}")
    for name, e in errs.items():
        print(f"{name:8s} within 25 %: {sum(x <= 0.25 for x in e)} of {len(e)}, "
              f"mean |error| {sum(e) / len(e):.3f}")


if __name__ == "__main__":
    main()
