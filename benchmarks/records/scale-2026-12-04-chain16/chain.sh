#!/usr/bin/env bash
# The sixteenth chain (4 December 2026, from 02:37 UTC): one calibration, then c64n, c256n,
# c256z, a, d, b from a clone of main (W) taken after the commit that joins the in-place chunk
# writes of the write-behind thread (718d322), pulled again before the first part. D: where the
# JSON goes; PY: a Python with veob_dask. A part starts only before its latest start (UTC, HH:MM), so the chain ends in the
# session's time; the stores need ~40 GB free.
# As run on 4 December 2026 from 02:35 UTC: calibration 19.2 min; the parts from 038d46f (pulled
# into the clone during the calibration); every part ran, the chain ended at 04:00:55.
set -u
W=${W:-/work/wt/chain16}; D=${D:-/work/quiet/s22}; PY=${PY:-/work/main/.venv/bin/python}
mkdir -p "$D"
export PYTHONPATH=$W
cd $W
echo "START $(date -u +%T) $(git -C $W log --oneline | head -1)"
echo "CAL1 $(date -u +%T)"
$PY benchmarks/cost_model.py --cols 64,256 --out $D/cal1.json > $D/cal1.log 2>&1
echo "rc=$? $(date -u +%T)"
cp $D/cal1.json $D/cost_model.json
C="--calibration $D/cost_model.json --store-dir /tmp/veob_scale"
now_min() { h=$(date -u +%-H); m=$(date -u +%-M); echo $((h * 60 + m)); }
run() {
  name=$1; latest=$2; shift 2
  lh=${latest%:*}; lm=${latest#*:}
  if [ "$(now_min)" -gt $((10#$lh * 60 + 10#$lm)) ]; then echo "SKIP $name $(date -u +%T)"; return; fi
  echo "RUN $name $(date -u +%T)"
  $PY benchmarks/bench_scale.py "$@" $C --json $D/$name.json > $D/$name.log 2>&1
  echo "rc=$? $(date -u +%T)"; rm -rf /tmp/veob_scale
}
echo "AT $(git -C $W log --oneline | head -1)"
run c64n 03:15 --parts c --c-rows 128e6 --c-cols 64 --codec none --no-c-readahead --repeat 2
run c256n 03:35 --parts c --c-rows 38e6 --c-cols 256 --codec none --no-c-readahead --repeat 2
run c256z 03:55 --parts c --c-rows 38e6 --c-cols 256 --no-c-readahead --repeat 2
run a 04:05 --parts a --a-rows 1e6,1e7,1e8,1e9 --repeat 3
run d 04:20 --parts d --d-rows 2e6 --repeat 5
run b 04:25 --parts b --b-rows 1e7,1e8 --keys 1000 --repeat 2
echo "CHAIN DONE $(date -u +%T)"
