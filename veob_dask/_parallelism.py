"""How many tasks the Dask scheduler in scope runs at once (library code reads it, never sets it),
and one BLAS thread per task on dask's threaded scheduler."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["parallelism", "single_blas_thread"]


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


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter: Any = None


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the body with one BLAS thread; the last of concurrent users restores the setting.

    Tasks run side by side on dask's threaded scheduler (one per core), so a multithreaded
    BLAS inside each of them oversubscribes the cores, and OpenBLAS then spins (one fit became
    15-30 times slower, a transform's projection took 2.5x its CPU; benchmarks/README.md,
    "Measurements behind choices in the code"). The limit is set once around the whole
    compute (toggling it per task was slower still). Worker processes of a ``distributed``
    cluster already run one BLAS thread each, so it changes nothing there.
    """
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            from threadpoolctl import threadpool_limits

            _blas_limiter = threadpool_limits(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
