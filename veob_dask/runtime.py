"""Connect to, or start, a Dask cluster (``distributed`` is imported lazily).

Only entry points choose where Dask computes: the ``veob`` command line (:mod:`veob_dask.cli`),
examples, benchmarks and the user's own scripts. Library code never imports this module; it
computes on the scheduler in scope (see :func:`parallelism`, re-exported here).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ._parallelism import parallelism
from .errors import SchedulerError

__all__ = ["connect", "local_cluster", "parallelism", "scheduler_context"]


def connect(address: str, *, timeout: float = 10.0) -> Any:
    """Return a ``distributed.Client`` connected to ``address``.

    Raises
    ------
    SchedulerError
        If no scheduler answers at ``address`` within ``timeout`` seconds.
    """
    from distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=True)
    except (OSError, TimeoutError) as err:
        raise SchedulerError(
            f"no Dask scheduler answered at {address!r} within {timeout:g} s ({err}). Check the "
            "address and that `dask scheduler` is running, or omit --scheduler to run locally."
        ) from err


@contextlib.contextmanager
def local_cluster(
    n_workers: int | None = None,
    *,
    threads_per_worker: int = 1,
    processes: bool = True,
    memory_limit: str | int | None = None,
) -> Iterator[Any]:
    """Start a ``LocalCluster`` bound to 127.0.0.1 and yield a connected ``Client``.

    Workers run one BLAS thread each (distributed pins it), so ``n_workers`` defaults to the
    number of cores. Call this under ``if __name__ == "__main__":`` in scripts: worker processes
    re-import the main module.
    """
    from distributed import Client, LocalCluster

    n = n_workers or max(1, os.cpu_count() or 1)
    kwargs: dict[str, Any] = {"n_workers": n, "threads_per_worker": threads_per_worker,
                              "processes": processes, "dashboard_address": None}
    if processes:
        kwargs["host"] = "127.0.0.1"
    if memory_limit is not None:
        kwargs["memory_limit"] = memory_limit
    with LocalCluster(**kwargs) as cluster, Client(cluster, set_as_default=True) as client:
        yield client


@contextlib.contextmanager
def scheduler_context(scheduler: str | None) -> Iterator[Any]:
    """Run the body on the scheduler named by ``scheduler``.

    ``None`` or ``"threads"`` uses dask's threaded scheduler (no client), ``"sync"`` the
    single-threaded one, ``"local"`` a fresh process-based ``LocalCluster`` on 127.0.0.1, and any
    other value is taken as the address of an existing scheduler (``tcp://host:8786``).
    """
    import dask

    if scheduler in (None, "threads", "sync"):
        with dask.config.set(scheduler=scheduler or "threads"):
            yield None
    elif scheduler == "local":
        with local_cluster() as client:
            yield client
    else:
        client = connect(scheduler)
        try:
            yield client
        finally:
            client.close()
