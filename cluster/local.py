"""Start a LocalCluster of worker processes on 127.0.0.1 and keep it running.

    python cluster/local.py --workers 2 --memory-limit 4GB --scheduler-file /tmp/veob-sched.json

then point any command at it: ``veob fit STORE -o MODEL --scheduler-file FILE`` (or
``--scheduler tcp://127.0.0.1:PORT``, printed with the dashboard link). Stop it with Ctrl-C or
SIGTERM. The configuration in ``cluster/dask.yaml`` is loaded first (worker memory thresholds, spill
directory, timeouts).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run a local Dask cluster for veob_dask.")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--threads-per-worker", type=int, default=1)
    p.add_argument("--memory-limit", default="auto")
    p.add_argument("--port", type=int, default=0, help="scheduler port (0: any free port)")
    p.add_argument("--scheduler-file", help="write {'address': ...} here once started")
    p.add_argument("--dashboard-address", default="127.0.0.1:8787",
                   help="where the dashboard listens (needs bokeh; a busy port is replaced by "
                   "a free one); 'none' for no dashboard")
    args = p.parse_args(argv)

    import dask
    import yaml
    from distributed import LocalCluster

    dask.config.update(dask.config.config, yaml.safe_load((HERE / "dask.yaml").read_text()),
                       priority="new")
    dashboard = None if args.dashboard_address == "none" else args.dashboard_address
    if dashboard and importlib.util.find_spec("bokeh") is None:
        dashboard = None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalCluster(n_workers=args.workers, threads_per_worker=args.threads_per_worker,
                      memory_limit=args.memory_limit, host="127.0.0.1",
                      scheduler_port=args.port, dashboard_address=dashboard) as cluster:
        address = cluster.scheduler_address
        print(f"scheduler at {address} with {args.workers} workers", flush=True)
        if dashboard:
            print(f"dashboard: {cluster.dashboard_link}", flush=True)
        if args.scheduler_file:
            tmp = Path(args.scheduler_file + ".tmp")
            tmp.write_text(json.dumps({"address": address}))
            os.replace(tmp, args.scheduler_file)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
