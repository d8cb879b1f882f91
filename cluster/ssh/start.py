r"""Start a Dask cluster over SSH on the hosts listed in a hosts file, and keep it up.

    python cluster/ssh/start.py --hosts cluster/ssh/hosts --python /opt/veob/.venv/bin/python \
        --scheduler-file ~/veob-scheduler.json

The first host runs the scheduler, every other line one worker process (repeat a host to run
several there). Every host needs key-based SSH from this machine and the same Python environment
with veob_dask installed (``--python`` names that interpreter on the hosts). The scheduler
address is printed and written to ``--scheduler-file``; point commands at it with
``veob fit ... --scheduler-file FILE`` (or ``--scheduler tcp://HOST:8786``). Stop with Ctrl-C or
SIGTERM. Needs ``pip install "veob_dask[ssh]"`` (asyncssh) on this machine only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def read_hosts(path: str) -> list[str]:
    """Host names of a hosts file: one per line, ``#`` comments and blank lines skipped."""
    with open(path, encoding="utf-8") as fh:
        return [h.split("#", 1)[0].strip() for h in fh if h.split("#", 1)[0].strip()]


def connect_options(args: argparse.Namespace) -> dict[str, Any]:
    """asyncssh.connect keywords from the command line."""
    opts: dict[str, Any] = {}
    if args.ssh_port:
        opts["port"] = args.ssh_port
    if args.username:
        opts["username"] = args.username
    if args.ssh_key:
        opts["client_keys"] = [os.path.expanduser(args.ssh_key)]
    if args.known_hosts:
        opts["known_hosts"] = None if args.known_hosts == "none" else \
            os.path.expanduser(args.known_hosts)
    return opts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hosts", default=str(Path(__file__).with_name("hosts")),
                   help="hosts file: the scheduler's host first, then one line per worker")
    p.add_argument("--python", default=None,
                   help="Python with veob_dask installed on the hosts (default: this one's path)")
    p.add_argument("--nthreads", type=int, default=1, help="threads per worker (default 1)")
    p.add_argument("--memory-limit", default="auto", help="per worker, e.g. 6GB")
    p.add_argument("--scheduler-port", type=int, default=8786)
    p.add_argument("--dashboard-address", default=":8787",
                   help="scheduler dashboard (needs bokeh on the scheduler host); 'none' for none")
    p.add_argument("--scheduler-file", help="write {'address': ...} here once the cluster is up")
    p.add_argument("--ssh-port", type=int, default=None, help="SSH port (default 22)")
    p.add_argument("--ssh-key", default=None, help="private key file (default: the agent's "
                   "keys and ~/.ssh/id_*)")
    p.add_argument("--username", default=None, help="remote user (default: this user)")
    p.add_argument("--known-hosts", default=None,
                   help="known_hosts file (default ~/.ssh/known_hosts); 'none' skips host key "
                   "checks (only on a network you trust)")
    args = p.parse_args(argv)
    hosts = read_hosts(args.hosts)
    if len(hosts) < 2:
        p.error(f"{args.hosts} needs a scheduler host and at least one worker host; it has "
                f"{len(hosts)}")
    from distributed import Client, SSHCluster

    dashboard = None if args.dashboard_address == "none" else args.dashboard_address
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with SSHCluster(hosts, connect_options=connect_options(args),
                    worker_options={"nthreads": args.nthreads,
                                    "memory_limit": args.memory_limit},
                    scheduler_options={"port": args.scheduler_port,
                                       "dashboard_address": dashboard},
                    remote_python=args.python) as cluster, Client(cluster) as client:
        client.wait_for_workers(len(hosts) - 1, timeout=120)
        address = cluster.scheduler_address
        print(f"scheduler at {address} with {len(client.scheduler_info()['workers'])} workers",
              flush=True)
        if client.dashboard_link and dashboard:
            print(f"dashboard: {client.dashboard_link}", flush=True)
        if args.scheduler_file:
            tmp = Path(args.scheduler_file + ".tmp")
            tmp.write_text(json.dumps({"address": address}))
            os.replace(tmp, args.scheduler_file)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if args.scheduler_file:
                Path(args.scheduler_file).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
