"""Connect to, or start, a Dask cluster (``distributed`` is imported lazily).

Only entry points choose where Dask computes: the ``veob`` command line (:mod:`veob_dask.cli`),
examples, benchmarks and the user's own scripts. Library code never imports this module; it
computes on the scheduler in scope (see :func:`parallelism`, re-exported here).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

from ._parallelism import parallelism
from .errors import SchedulerError

__all__ = ["SCHEDULER_KEYWORDS", "check_address", "connect", "dashboard_link", "local_cluster",
           "parallelism", "scheduler_address", "scheduler_context", "tls_security"]

#: Values of ``scheduler`` that name a way of computing rather than an address.
SCHEDULER_KEYWORDS = ("threads", "sync", "local")

#: Address schemes of ``distributed`` (``distributed.comm.registry``) this module accepts;
#: ``gateway://HOST:PORT/CLUSTER`` is dask-gateway's proxy (its transport comes with dask-gateway).
SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc", "gateway")

_HOST = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$")


def _bad(address: str, why: str) -> SchedulerError:
    return SchedulerError(
        f"scheduler address {address!r} is not valid: {why}. Write "
        "tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786), or one of " + ", ".join(SCHEDULER_KEYWORDS)
        + ".")


def _check_host_port(address: str, rest: str) -> tuple[str, int]:
    if rest.startswith("["):
        host, sep, tail = rest[1:].partition("]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _bad(address, f"{rest!r} is not a bracketed IPv6 address like [::1]:8786") \
                from None
        if not sep or not tail.startswith(":"):
            raise _bad(address, f"{rest!r} needs a port after the IPv6 address, e.g. [::1]:8786")
        port_text = tail[1:]
    else:
        host, sep, port_text = rest.rpartition(":")
        if not rest:
            raise _bad(address, "the host and port are missing")
        if not sep:
            raise _bad(address, f"{rest!r} has no port (the scheduler's default is 8786)")
        if not host:
            raise _bad(address, "the host is missing")
        if ":" in host:
            raise _bad(address, f"IPv6 hosts need brackets, e.g. [{host}]:{port_text}")
        if not _HOST.match(host):
            raise _bad(address, f"{host!r} is not a host name or IP address")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _bad(address, f"the port {port_text!r} is not a number in 1-65535")
    return host, int(port_text)


def _check_tls(address: str, security: Any) -> None:
    """Refuse ``tls://`` without a CA file and client certificate (from ``security``, or
    dask's ``distributed.comm.tls`` configuration). Extend here for more TLS sources."""
    if security is not None:
        ca = getattr(security, "tls_ca_file", None)
        cert = getattr(security, "tls_client_cert", None)
    else:
        import dask

        ca = dask.config.get("distributed.comm.tls.ca-file", None)
        cert = dask.config.get("distributed.comm.tls.client.cert", None)
    if not ca or not cert:
        raise SchedulerError(
            f"{address!r} is a TLS address but no certificates are configured (CA file: "
            f"{ca or 'none'}, client certificate: {cert or 'none'}). Set "
            "DASK_DISTRIBUTED__COMM__TLS__CA_FILE, DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT and "
            "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY (or distributed.comm.tls in a dask config "
            "file), or use tcp://.")


def check_address(address: str, *, security: Any = None, certificates: bool = True) -> str:
    """Check that ``address`` is a well-formed scheduler address, without connecting.

    Accepts ``SCHEME://HOST:PORT`` for the schemes of :data:`SCHEMES`, and ``HOST:PORT`` (taken
    as ``tcp://``). ``tls://`` needs certificates (``security``, a ``distributed.Security``, or
    dask's ``distributed.comm.tls`` configuration) unless ``certificates=False`` (when they come
    from command-line files read later); ``inproc://`` addresses only exist inside the process
    that made them. A scheduler file is not an address: read it with :func:`scheduler_address`.

    Returns
    -------
    str
        The address with its scheme (``tcp://`` added when there was none).

    Raises
    ------
    SchedulerError
        Naming what is wrong with the address.
    """
    if not isinstance(address, str) or not address.strip():
        raise _bad(str(address), "it is empty")
    if any(c.isspace() for c in address):
        raise _bad(address, "it contains white space")
    scheme, sep, rest = address.partition("://")
    if not sep:
        if address.startswith((".", "/", "~")) or address.endswith(".json"):
            raise _bad(address, "it looks like a file path (give a scheduler file with "
                       "--scheduler-file)")
        scheme, rest = "tcp", address
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise _bad(address, f"unknown scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    if scheme == "inproc":
        pid = rest.split("/")[1] if rest.count("/") >= 2 else ""
        if pid != str(os.getpid()):
            raise _bad(address, "an inproc:// address only works inside the process that "
                       "started that scheduler")
        return f"{scheme}://{rest}"
    _check_host_port(address, rest.split("/", 1)[0] if scheme in ("ws", "wss", "gateway")
                     else rest)
    if scheme == "tls" and certificates:
        _check_tls(address, security)
    return f"{scheme}://{rest}"


def _refused(address: str, timeout: float) -> None:
    """Fail fast when nothing listens on a TCP address (distributed would retry until the
    timeout)."""
    scheme, _, rest = address.partition("://")
    if scheme not in ("tcp", "tls", "ws", "wss", "gateway"):
        return
    host, port = _check_host_port(address, rest.split("/", 1)[0])
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except TimeoutError:
        return  # let the handshake report it, with the same timeout
    except OSError as err:
        raise SchedulerError(
            f"no Dask scheduler answered at {address!r}: {err.strerror or err}. Check the address "
            "and that `dask scheduler` is running, or omit --scheduler to run locally.") from err


def _handshake(address: str, timeout: float, security: Any) -> dict[str, Any]:
    """Ask the server at ``address`` who it is, giving up after ``timeout`` seconds in all."""
    import asyncio

    from distributed.comm import connect as comm_connect

    if security is None:  # as distributed's Client: certificates from dask's configuration
        from distributed.security import Security

        security = Security()
    kwargs = security.get_connection_args("client")

    async def ask() -> Any:
        comm = await comm_connect(address, timeout=timeout, **kwargs)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["reply"] = asyncio.run(asyncio.wait_for(ask(), timeout))
        except BaseException as err:  # noqa: BLE001 - handed to the caller, which raises
            result["error"] = err

    worker = threading.Thread(target=run, name="veob-handshake", daemon=True)
    worker.start()
    worker.join(timeout + 2.0)
    err = result.get("error")
    if worker.is_alive() or isinstance(err, (TimeoutError, asyncio.TimeoutError)):
        raise SchedulerError(
            f"{address!r} did not complete a Dask handshake within {timeout:g} s; is a Dask "
            "scheduler listening there (and not another service)? Check the address, or omit "
            "--scheduler to run locally.") from err
    if err is not None:
        raise SchedulerError(
            f"{address!r} did not answer as a Dask scheduler ({type(err).__name__}: {err}). "
            "Check the address, or omit --scheduler to run locally.") from err
    reply = result.get("reply")
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        kind = reply.get("type") if isinstance(reply, dict) else type(reply).__name__
        raise SchedulerError(f"{address!r} answered as a Dask {kind}, not a scheduler; give "
                             "the scheduler's address.")
    return reply


def connect(address: str, *, timeout: float = 10.0, security: Any = None) -> Any:
    """Return a ``distributed.Client`` connected to ``address``.

    The address is checked first (:func:`check_address`); a closed port fails at once, and
    anything that does not complete a Dask handshake within ``timeout`` seconds (e.g. a web
    server) fails after that time instead of hanging.

    Raises
    ------
    SchedulerError
        If the address is malformed, or no scheduler answers there within ``timeout`` seconds.
    """
    from distributed import Client

    address = check_address(address, security=security)
    _refused(address, timeout)
    _handshake(address, timeout, security)
    try:
        return Client(address, timeout=timeout, set_as_default=True, security=security)
    except (OSError, TimeoutError) as err:
        raise SchedulerError(
            f"no Dask scheduler answered at {address!r} within {timeout:g} s ({err}). Check the "
            "address and that `dask scheduler` is running, or omit --scheduler to run locally."
        ) from err


def tls_security(ca_file: str | None = None, cert: str | None = None,
                 key: str | None = None) -> Any:
    """A client's ``distributed.Security`` from certificate files, or None when none are given.

    With None, ``distributed`` takes certificates from dask's configuration
    (``distributed.comm.tls.ca-file``, ``distributed.comm.tls.client.cert`` / ``.key``), as
    every Dask client does; files given here override those settings one by one. The key may
    be appended to the certificate file (then omit ``key``).

    Raises
    ------
    SchedulerError
        A file does not exist, or the CA file or the client certificate is missing (TLS in
        Dask authenticates both ends: both are needed).
    """
    given = {"--tls-ca-file": ca_file, "--tls-cert": cert, "--tls-key": key}
    if not any(given.values()):
        return None
    for flag, path in given.items():
        if path and not os.path.isfile(path):
            raise SchedulerError(f"{flag} {path!r}: no such file; give the PEM file's path.")
    from distributed.security import Security

    files = {name: os.path.abspath(path) for name, path in
             (("tls_ca_file", ca_file), ("tls_client_cert", cert), ("tls_client_key", key))
             if path}
    security = Security(require_encryption=True, **files)  # unset fields: dask's config
    missing = [flag for flag, field in (("--tls-ca-file", "tls_ca_file"),
                                        ("--tls-cert", "tls_client_cert"))
               if not getattr(security, field, None)]
    if missing:
        raise SchedulerError(f"TLS needs both the CA file and the client certificate; "
                             f"{' and '.join(missing)} missing (give it, or set "
                             "distributed.comm.tls.* in dask's configuration).")
    return security


def scheduler_address(scheduler: str | None = None, scheduler_file: str | None = None
                      ) -> str | None:
    """Where to compute: ``scheduler`` if given, else the address in ``scheduler_file``, else
    dask's ``scheduler-address`` setting (``DASK_SCHEDULER_ADDRESS``), else None (local threads).

    A scheduler file is the JSON that ``dask scheduler --scheduler-file PATH`` (or
    ``cluster/local.py --scheduler-file PATH``) writes; its ``address`` is used.

    Raises
    ------
    SchedulerError
        Both ``scheduler`` and ``scheduler_file`` given, or the file is missing, not JSON or
        has no address.
    """
    if scheduler and scheduler_file:
        raise SchedulerError(f"give either --scheduler ({scheduler!r}) or --scheduler-file "
                             f"({scheduler_file!r}), not both.")
    if scheduler:
        return scheduler
    if scheduler_file:
        return _address_in(scheduler_file)
    import dask

    configured = dask.config.get("scheduler-address", None)
    return str(configured) if configured else None


def _address_in(path: str) -> str:
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except FileNotFoundError:
        raise SchedulerError(f"scheduler file {path!r} does not exist; start the scheduler "
                             "with --scheduler-file first, or check the path.") from None
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise SchedulerError(f"scheduler file {path!r} is not readable JSON ({err}).") from err
    address = info.get("address") if isinstance(info, dict) else None
    if not isinstance(address, str) or not address:
        raise SchedulerError(f"scheduler file {path!r} has no 'address'; it should be the file "
                             "`dask scheduler --scheduler-file` writes.")
    return address


def dashboard_link(client: Any) -> str | None:
    """The dashboard URL of ``client``'s scheduler, or None when it serves no dashboard."""
    try:
        services = client.scheduler_info().get("services", {})
    except (OSError, TimeoutError, AttributeError):
        return None
    if "dashboard" not in services:
        return None
    return str(client.dashboard_link)


#: Dask config key of the environment variable ``distributed``'s nannies give each worker
#: process to make glibc hand freed memory back at once (dask's default: 65536 bytes).
MALLOC_TRIM_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


@contextlib.contextmanager
def local_cluster(
    n_workers: int | None = None,
    *,
    threads_per_worker: int = 1,
    processes: bool = True,
    memory_limit: str | int | None = None,
    dashboard: bool = False,
    trim_memory: bool = False,
) -> Iterator[Any]:
    """Start a ``LocalCluster`` bound to 127.0.0.1 and yield a connected ``Client``.

    Workers run one BLAS thread each (distributed pins it), so ``n_workers`` defaults to the
    number of cores. Call this under ``if __name__ == "__main__":`` in scripts: worker processes
    re-import the main module. ``dashboard=True`` serves the dashboard on a free port of
    127.0.0.1 when bokeh is installed (``client.dashboard_link``).

    ``trim_memory=False`` (the default) starts the worker processes without the
    ``MALLOC_TRIM_THRESHOLD_=65536`` that dask's nannies otherwise set (unless your own
    environment sets it). Setting it turns off glibc's dynamic mmap threshold, so every
    chunk-sized buffer a task allocates is a fresh ``mmap`` whose pages fault in on first
    touch. On 2 workers x 1 thread, passes over 21 chunks of 24 MiB took, with it and without
    (3 calls each, 2 December 00:25 UTC, ``benchmarks/README.md``): a read pass 0.78-0.81 s
    and 0.60-0.66 s, a Gram fit 0.92-0.99 s and 0.65-0.83 s, a randomized fit 2.59-2.86 s and
    1.95-2.06 s; the peak memory of the process tree rose 1-3 %. Without it a worker keeps at
    most glibc's own trim threshold of freed memory (up to 64 MiB an arena) before returning it.
    ``trim_memory=True`` keeps dask's setting.
    """
    import dask
    from distributed import Client, LocalCluster

    n = n_workers or max(1, os.cpu_count() or 1)
    kwargs: dict[str, Any] = {"n_workers": n, "threads_per_worker": threads_per_worker,
                              "processes": processes,
                              "dashboard_address": "127.0.0.1:0" if dashboard and _has_bokeh()
                              else None}
    if processes:
        kwargs["host"] = "127.0.0.1"
    if memory_limit is not None:
        kwargs["memory_limit"] = memory_limit
    # a nanny reads the variables it sets when it is made, and keeps them for restarts
    with dask.config.set({} if trim_memory else {MALLOC_TRIM_KEY: None}):
        cluster = LocalCluster(**kwargs)
    with cluster, Client(cluster, set_as_default=True) as client:
        yield client


def _load_transport(address: str) -> None:
    """Import what registers a ``gateway://`` address's transport (dask-gateway's proxy)."""
    if not address.startswith("gateway://"):
        return
    try:
        import dask_gateway  # noqa: F401 - registers the "gateway" comm backend
    except ImportError:
        raise SchedulerError(f"{address!r} is a dask-gateway address; install the gateway "
                             'extra (pip install "veob_dask[gateway]").') from None


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


@contextlib.contextmanager
def scheduler_context(scheduler: str | None, *, scheduler_file: str | None = None,
                      security: Any = None, dashboard: bool = False,
                      threads_per_core: int = 1) -> Iterator[Any]:
    """Run the body on the scheduler named by ``scheduler`` (see :func:`scheduler_address`).

    ``None`` (with no scheduler file and no ``scheduler-address`` configured) or ``"threads"``
    uses dask's threaded scheduler (no client), ``"sync"`` the single-threaded one, ``"local"`` a
    fresh process-based ``LocalCluster`` on 127.0.0.1 (with its dashboard when ``dashboard``),
    and any other value is taken as the address of an existing scheduler (``tcp://host:8786``,
    ``tls://host:8786`` with ``security`` from :func:`tls_security` or dask's configuration).

    ``threads_per_core`` sets the threads of the threaded scheduler (unless Dask config
    ``num_workers`` does) and of each worker of the ``"local"`` cluster, one worker a core.
    Two suit a pass over a store read with ``O_DIRECT`` (:func:`veob_dask.io.reads_direct`): a
    thread waiting for its read holds no core. The Gram fit of a 32.8 GB store took 0.92-1.14x
    its cold read pass with 4 threads on 2 cores against 1.01-1.26x with 2, and 0.93-1.05x on
    2 workers x 2 threads against 1.15-1.35x on 2 x 1 (six runs each, 2 December 11:25-18:27
    UTC, ``benchmarks/README.md``). An existing cluster keeps its own threads.
    """
    import dask

    scheduler = scheduler_address(scheduler, scheduler_file)
    per_core = max(1, int(threads_per_core))
    if scheduler in (None, "threads", "sync"):
        opts: dict[str, Any] = {"scheduler": scheduler or "threads"}
        if scheduler != "sync" and per_core > 1 and dask.config.get("num_workers", None) is None:
            opts["num_workers"] = per_core * max(1, os.cpu_count() or 1)
        with dask.config.set(opts):
            yield None
    elif scheduler == "local":
        with local_cluster(dashboard=dashboard, threads_per_worker=per_core) as client:
            yield client
    else:
        _load_transport(scheduler)
        client = connect(scheduler, security=security)
        try:
            yield client
        finally:
            client.close()
