"""Run veob_dask on a SLURM cluster with dask-jobqueue (pip install dask-jobqueue).

    python cluster/jobqueue/slurm.py --jobs 4 --queue normal --account myproj

prints the generated batch script and the scheduler address; run `veob fit ... --scheduler ADDR`
from the login node while it is up.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--queue", default=None)
    p.add_argument("--account", default=None)
    p.add_argument("--cores", type=int, default=8)
    p.add_argument("--memory", default="32GB")
    p.add_argument("--walltime", default="02:00:00")
    args = p.parse_args(argv)
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(cores=args.cores, processes=args.cores, memory=args.memory,
                           queue=args.queue, account=args.account, walltime=args.walltime,
                           job_extra_directives=["--exclusive"])
    print(cluster.job_script())
    cluster.scale(jobs=args.jobs)
    print(f"scheduler at {cluster.scheduler_address}", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
