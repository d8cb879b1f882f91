"""Start a Dask cluster over SSH on the hosts listed in cluster/ssh/hosts.

    python cluster/ssh/start.py --hosts cluster/ssh/hosts --python /opt/veob/.venv/bin/python

It prints the scheduler address to pass as ``veob fit ... --scheduler tcp://HOST:8786`` and keeps
the cluster up until Ctrl-C. Needs ``asyncssh`` (pip install asyncssh) on the machine that runs it.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hosts", default="cluster/ssh/hosts")
    p.add_argument("--python", default=None, help="remote Python with veob_dask installed")
    p.add_argument("--nthreads", type=int, default=1)
    args = p.parse_args(argv)
    with open(args.hosts) as fh:
        hosts = [h.strip() for h in fh if h.strip() and not h.startswith("#")]
    if len(hosts) < 2:
        p.error("need a scheduler host and at least one worker host")
    from distributed import Client, SSHCluster

    with SSHCluster(hosts, worker_options={"nthreads": args.nthreads},
                    scheduler_options={"port": 8786, "dashboard_address": ":8787"},
                    remote_python=args.python) as cluster, Client(cluster) as client:
        print(f"scheduler at {cluster.scheduler_address}; "
              f"{len(client.scheduler_info()['workers'])} workers", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
