#!/usr/bin/env bash
# When the chain reaches c256n, stop it and run c256z instead (time: the zstd store is the one
# the disk_slots change touches).
set -u
D=/work/quiet/s20; W=/work/wt/chain14; PY=/work/main/.venv/bin/python
until grep -q "RUN c256n" $D/chain.log; do sleep 2; done
kill -- -12741; sleep 3; pkill -f "bench_scale.py" ; sleep 3; rm -rf /tmp/veob_scale
echo "STOPPED before c256n $(date -u +%T)" >> $D/chain.log
export PYTHONPATH=$W; cd $W
echo "RUN c256z $(date -u +%T)" >> $D/chain.log
$PY benchmarks/bench_scale.py --parts c --c-rows 38e6 --c-cols 256 --no-c-readahead --repeat 2 --calibration $D/cost_model.json --store-dir /tmp/veob_scale --json $D/c256z.json > $D/c256z.log 2>&1
echo "rc=$? $(date -u +%T)" >> $D/chain.log; rm -rf /tmp/veob_scale
echo "CHAIN DONE $(date -u +%T)" >> $D/chain.log
