#!/usr/bin/env bash
# One calibration, then part (c): c64n, c256n, c256z, c64n, c256z (the 38.9 GB store once).
# As run on 3 December 2026, 09:14-10:56 UTC, from a clone of 1910b0e (W); D: where the JSON goes.
set -u
W=${W:-/work/wt/chain13}; D=${D:-/work/quiet/s19}; PY=${PY:-/work/main/.venv/bin/python}
mkdir -p "$D"
export PYTHONPATH=$W
cd $W
echo "START $(date -u +%T)"
echo "CAL3 $(date -u +%T)"
$PY benchmarks/cost_model.py --cols 64,256 --out $D/cal3.json > $D/cal3.log 2>&1
echo "rc=$? $(date -u +%T)"
C="--calibration $D/cal3.json --store-dir /tmp/veob_scale"
run() { name=$1; shift; echo "RUN $name $(date -u +%T)"; $PY benchmarks/bench_scale.py "$@" $C --json $D/$name.json > $D/$name.log 2>&1; echo "rc=$? $(date -u +%T)"; rm -rf /tmp/veob_scale; }
run c64n_3 --parts c --c-rows 128e6 --c-cols 64 --codec none --no-c-readahead --repeat 2
run c256n_2 --parts c --c-rows 38e6 --c-cols 256 --codec none --no-c-readahead --repeat 2
run c256z_2 --parts c --c-rows 38e6 --c-cols 256 --no-c-readahead --repeat 2
run c64n_4 --parts c --c-rows 128e6 --c-cols 64 --codec none --no-c-readahead --repeat 2
run c256z_3 --parts c --c-rows 38e6 --c-cols 256 --no-c-readahead --repeat 2
echo "CHAIN DONE $(date -u +%T)"
