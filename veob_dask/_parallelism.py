"""How many tasks the Dask scheduler in scope runs at once (library code reads it, never sets it)."""

from __future__ import annotations

import os

__all__ = ["parallelism"]


def parallelism() -> int:
    """Number of tasks that will run at once: 1 on the synchronous scheduler, the threads of
    dask's local scheduler when one is configured, else those of the current ``distributed``
    client's workers, else the local default (config ``num_workers``, or the CPU count).

    Used to choose block counts (a multiple of this keeps every thread busy to the end).
    """
    import dask

    configured = dask.config.get("scheduler", None)
    if configured in ("sync", "synchronous", "single-threaded"):
        return 1
    if configured not in ("threads", "threading", "processes", "multiprocessing"):
        try:
            from distributed import default_client

            client = default_client()
        except (ImportError, ValueError):  # no distributed, or no client
            client = None
        if client is not None and client.status == "running":
            try:
                n = sum(int(v) for v in client.nthreads().values())
            except (OSError, TimeoutError):
                n = 0
            if n > 0:
                return n
    n = dask.config.get("num_workers", None)
    return max(1, int(n or os.cpu_count() or 1))
