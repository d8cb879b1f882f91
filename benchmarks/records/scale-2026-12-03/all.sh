#!/usr/bin/env bash
# Two calibrations, merged, then the chain: c64n, d, b, a, c256n, c256z, run from a clone so
# that no edit reaches it. As run on 3 December 2026, with the defaults below (W: a clone of the
# repository at 7859c78; D: where the JSON goes; PY: a Python with veob_dask installed); set
# W, D and PY in the environment to run it elsewhere. The store of (c) needs ~40 GB free.
# The rerun of the 32.8 GB store (c64n_2.json) was the c64n line again, after the chain.
set -u
W=${W:-/work/wt/chain12}; D=${D:-/work/quiet/s18}; PY=${PY:-/work/main/.venv/bin/python}
mkdir -p "$D"
export PYTHONPATH=$W
cd $W
echo "START $(date -u +%T)"
for i in 1 2; do
  echo "CAL$i $(date -u +%T)"
  $PY benchmarks/cost_model.py --cols 64,256 --out $D/cal$i.json > $D/cal$i.log 2>&1
done
$PY benchmarks/cost_model.py --merge $D/cal1.json $D/cal2.json --out $D/cost_model.json > $D/merge.log 2>&1
C="--calibration $D/cost_model.json --store-dir /tmp/veob_scale"
run() { name=$1; shift; echo "RUN $name $(date -u +%T)"; $PY benchmarks/bench_scale.py "$@" $C --json $D/$name.json > $D/$name.log 2>&1; echo "rc=$? $(date -u +%T)"; rm -rf /tmp/veob_scale; }
run c64n --parts c --c-rows 128e6 --c-cols 64 --codec none --no-c-readahead --repeat 2
run d --parts d --d-rows 2e6 --repeat 5
run b --parts b --b-rows 1e7,1e8 --keys 1000 --repeat 2
run a --parts a --a-rows 1e6,1e7,1e8,1e9 --repeat 3
run c256n --parts c --c-rows 38e6 --c-cols 256 --codec none --no-c-readahead --repeat 2
run c256z --parts c --c-rows 38e6 --c-cols 256 --no-c-readahead --repeat 2
echo "CHAIN DONE $(date -u +%T)"
