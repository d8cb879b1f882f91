#!/usr/bin/env bash
# The fifteenth chain: one calibration, then c64n, c256z, a, d, b, c256n from a clone of the
# repository at 07bc1f3 (W); D: where the JSON goes; PY: a Python with veob_dask. A part starts
# only before its latest start (UTC, HH:MM, the next day's early hours written as 24+), so the
# chain ends in the session's time; the (c) stores need ~40 GB free.
# As run on 3-4 December 2026 from 23:24 UTC (07bc1f3); every part ran, the chain ended at 01:04.
# c64n_2.json: the 32.8 GB store again, from a clone of beb2a8f (the disk settled by probes
# before the runs): rerun.sh.
set -u
W=${W:-/work/wt/chain15}; D=${D:-/work/quiet/s21}; PY=${PY:-/work/main/.venv/bin/python}
mkdir -p "$D"
export PYTHONPATH=$W
cd $W
echo "START $(date -u +%T)"
echo "CAL1 $(date -u +%T)"
$PY benchmarks/cost_model.py --cols 64,256 --out $D/cal1.json > $D/cal1.log 2>&1
echo "rc=$? $(date -u +%T)"
cp $D/cal1.json $D/cost_model.json
C="--calibration $D/cost_model.json --store-dir /tmp/veob_scale"
now_min() { h=$(date -u +%-H); m=$(date -u +%-M); [ "$h" -lt 12 ] && h=$((h + 24)); echo $((h * 60 + m)); }
run() {
  name=$1; latest=$2; shift 2
  lh=${latest%:*}; lm=${latest#*:}
  if [ "$(now_min)" -gt $((10#$lh * 60 + 10#$lm)) ]; then echo "SKIP $name $(date -u +%T)"; return; fi
  echo "RUN $name $(date -u +%T)"
  $PY benchmarks/bench_scale.py "$@" $C --json $D/$name.json > $D/$name.log 2>&1
  echo "rc=$? $(date -u +%T)"; rm -rf /tmp/veob_scale
}
run c64n 24:30 --parts c --c-rows 128e6 --c-cols 64 --codec none --no-c-readahead --repeat 2
run c256z 24:50 --parts c --c-rows 38e6 --c-cols 256 --no-c-readahead --repeat 2
run a 25:00 --parts a --a-rows 1e6,1e7,1e8,1e9 --repeat 3
run d 25:15 --parts d --d-rows 2e6 --repeat 5
run b 25:20 --parts b --b-rows 1e7,1e8 --keys 1000 --repeat 2
run c256n 25:05 --parts c --c-rows 38e6 --c-cols 256 --codec none --no-c-readahead --repeat 2
echo "CHAIN DONE $(date -u +%T)"
