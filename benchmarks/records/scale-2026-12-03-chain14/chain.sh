#!/usr/bin/env bash
# One calibration, then the whole chain: c64n, d, b, a, c256n, c256z, from a clone of the
# repository at the disk_slots change (W); D: where the JSON goes; PY: a Python with veob_dask.
# As run on 3 December 2026 from 16:53 UTC (afd6be8); stopped before c256n by swap.sh,
# which ran c256z in its place. The store of (c) needs ~40 GB free.
set -u
W=${W:-/work/wt/chain14}; D=${D:-/work/quiet/s20}; PY=${PY:-/work/main/.venv/bin/python}
mkdir -p "$D"
export PYTHONPATH=$W
cd $W
echo "START $(date -u +%T)"
for i in 1; do
  echo "CAL$i $(date -u +%T)"
  $PY benchmarks/cost_model.py --cols 64,256 --out $D/cal$i.json > $D/cal$i.log 2>&1
done
cp $D/cal1.json $D/cost_model.json
C="--calibration $D/cost_model.json --store-dir /tmp/veob_scale"
run() { name=$1; shift; echo "RUN $name $(date -u +%T)"; $PY benchmarks/bench_scale.py "$@" $C --json $D/$name.json > $D/$name.log 2>&1; echo "rc=$? $(date -u +%T)"; rm -rf /tmp/veob_scale; }
run c64n --parts c --c-rows 128e6 --c-cols 64 --codec none --no-c-readahead --repeat 2
run d --parts d --d-rows 2e6 --repeat 5
run b --parts b --b-rows 1e7,1e8 --keys 1000 --repeat 2
run a --parts a --a-rows 1e6,1e7,1e8,1e9 --repeat 3
run c256n --parts c --c-rows 38e6 --c-cols 256 --codec none --no-c-readahead --repeat 2
run c256z --parts c --c-rows 38e6 --c-cols 256 --no-c-readahead --repeat 2
echo "CHAIN DONE $(date -u +%T)"
