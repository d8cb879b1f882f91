#!/usr/bin/env bash
# The 32.8 GB store of the fifteenth chain again (4 December 2026, from 01:08 UTC), from a clone of
# beb2a8f, where part (c) probes the disk after its settling read until three probes in a row
# agree within 20 %: in chain.sh's run the first two calls met the disk at 59 and 260 MB/s.
# Same calibration as chain.sh; W: the clone, D: where the JSON goes.
set -u
W=${W:-/work/wt/chain15b}; D=${D:-/work/quiet/s21}; PY=${PY:-/work/main/.venv/bin/python}
export PYTHONPATH=$W
cd $W
echo "RUN c64n_2 $(date -u +%T)"
$PY benchmarks/bench_scale.py --parts c --c-rows 128e6 --c-cols 64 --codec none --no-c-readahead \
  --repeat 2 --calibration $D/cost_model.json --store-dir /tmp/veob_scale --json $D/c64n_2.json \
  > $D/c64n_2.log 2>&1
echo "rc=$? $(date -u +%T)"; rm -rf /tmp/veob_scale
