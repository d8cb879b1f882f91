r"""Run veob_dask on a SLURM cluster with dask-jobqueue (``pip install "veob_dask[hpc]"``).

    python cluster/jobqueue/slurm.py --jobs 4 --queue normal --account myproj \
        --python /shared/veob/.venv/bin/python --scheduler-file ~/veob-scheduler.json

The scheduler runs in this process (on the login node); each SLURM job starts ``--cores``
single-threaded worker processes. The generated batch script is printed first (``--dry-run``
prints it and stops, submitting nothing), then the scheduler address, which is also written to
``--scheduler-file``. Run ``veob fit ... --scheduler-file FILE`` from the login node while this
runs; stop it with Ctrl-C or SIGTERM (the jobs are cancelled). With ``--tls-ca-file``,
``--tls-cert`` and ``--tls-key`` the scheduler and workers talk TLS only, and the workers get
the same files (they must be readable on the compute nodes: a shared file system).
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

#: One BLAS thread per worker process: veob_dask parallelises across chunks.
PROLOGUE = ["export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1"]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2, help="SLURM jobs to submit (default 2)")
    p.add_argument("--queue", default=None, help="partition (#SBATCH -p)")
    p.add_argument("--account", default=None, help="account to charge (#SBATCH -A)")
    p.add_argument("--cores", type=int, default=8,
                   help="cores per job = single-threaded worker processes per job (default 8)")
    p.add_argument("--memory", default="32GB", help="memory per job (default 32GB)")
    p.add_argument("--walltime", default="02:00:00")
    p.add_argument("--python", default=None,
                   help="Python with veob_dask installed on the compute nodes (default: this "
                   "one's path, right when the environment is on a shared file system)")
    p.add_argument("--interface", default=None, help="network interface of the workers, e.g. ib0")
    p.add_argument("--host", default=None, help="address the scheduler listens on (default: "
                   "this node's)")
    p.add_argument("--local-directory", default=None, help="node-local scratch for spilling")
    p.add_argument("--tls-ca-file", default=None)
    p.add_argument("--tls-cert", default=None)
    p.add_argument("--tls-key", default=None)
    p.add_argument("--scheduler-file", default=None)
    p.add_argument("--dry-run", action="store_true",
                   help="print the batch script and stop (nothing is submitted)")
    return p.parse_args(argv)


def security(args: argparse.Namespace) -> Any:
    """A ``distributed.Security`` for scheduler and workers from the TLS files, or None."""
    if not (args.tls_ca_file or args.tls_cert):
        return None
    from distributed.security import Security

    files = [os.path.abspath(f) if f else None
             for f in (args.tls_ca_file, args.tls_cert, args.tls_key)]
    ca, cert, key = files
    return Security(tls_ca_file=ca, tls_scheduler_cert=cert, tls_scheduler_key=key,
                    tls_worker_cert=cert, tls_worker_key=key, tls_client_cert=cert,
                    tls_client_key=key, require_encryption=True)


def make_cluster(args: argparse.Namespace) -> Any:
    """The SLURMCluster the options describe (its scheduler starts; no job is submitted)."""
    from dask_jobqueue import SLURMCluster

    sec = security(args)
    scheduler_options: dict[str, Any] = {"dashboard_address": ":8787"}
    if args.host:
        scheduler_options["host"] = args.host
    kwargs: dict[str, Any] = {}
    if args.python:
        kwargs["python"] = args.python
    if args.interface:
        kwargs["interface"] = args.interface
    if args.local_directory:
        kwargs["local_directory"] = args.local_directory
    return SLURMCluster(cores=args.cores, processes=args.cores, memory=args.memory,
                        queue=args.queue, account=args.account, walltime=args.walltime,
                        job_extra_directives=["--exclusive"], job_script_prologue=PROLOGUE,
                        scheduler_options=scheduler_options, security=sec,
                        protocol="tls://" if sec else None, **kwargs)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    cluster = make_cluster(args)
    try:
        print(cluster.job_script(), flush=True)
        if args.dry_run:
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        cluster.scale(jobs=args.jobs)
        print(f"scheduler at {cluster.scheduler_address}; dashboard {cluster.dashboard_link}",
              flush=True)
        if args.scheduler_file:
            tmp = Path(args.scheduler_file + ".tmp")
            tmp.write_text(json.dumps({"address": cluster.scheduler_address}))
            os.replace(tmp, args.scheduler_file)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        if args.scheduler_file:
            Path(args.scheduler_file).unlink(missing_ok=True)
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
