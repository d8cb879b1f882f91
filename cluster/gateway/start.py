r"""Start a Dask cluster through a dask-gateway server and hand its address to ``veob``.

    python cluster/gateway/start.py --address https://gateway.example.org --workers 4 \
        --out ~/.veob-gateway

A gateway (e.g. the ``dask/daskhub`` Helm chart, or ``dask-gateway-server -f
cluster/gateway/config.py`` on one machine) starts schedulers and workers for you and gives
each cluster its own temporary TLS credentials. This script creates a cluster, scales it, and
writes into ``--out`` (readable by you only): ``scheduler.json`` (the ``gateway://`` address),
``cluster.pem`` and ``cluster.key`` (the credentials). It prints the options to add to any
``veob`` command::

    veob fit s3://bucket/x.zarr -o s3://bucket/m.zarr --scheduler-file ~/.veob-gateway/scheduler.json \
        --tls-ca-file ~/.veob-gateway/cluster.pem --tls-cert ~/.veob-gateway/cluster.pem \
        --tls-key ~/.veob-gateway/cluster.key

and keeps the cluster until Ctrl-C or SIGTERM, then shuts it down and deletes the files. Needs
``pip install "veob_dask[gateway]"`` here; the workers run the gateway's image, which must hold
veob_dask (cluster/kubernetes/Dockerfile).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", default=None,
                   help="gateway URL (default: dask config gateway.address)")
    p.add_argument("--proxy-address", default=None,
                   help="scheduler proxy, when not on the gateway URL's host and port")
    p.add_argument("--auth", default=None, choices=["basic", "kerberos", "jupyterhub"],
                   help="authentication (default: dask config gateway.auth)")
    p.add_argument("--username", default=os.environ.get("USER", "veob"),
                   help="basic auth: user name")
    p.add_argument("--password-env", default="DASK_GATEWAY_PASSWORD",
                   help="basic auth: environment variable holding the password")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="cluster option the gateway offers (e.g. worker_memory=8); repeatable")
    p.add_argument("--out", default=str(Path.home() / ".veob-gateway"),
                   help="folder for scheduler.json and the cluster's TLS credentials")
    p.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for a gateway that is still starting (default 60)")
    return p.parse_args(argv)


def _starting(exc: Exception) -> bool:
    """True for the errors of a gateway that is still starting.

    Its HTTP proxy answers 404 until it has learned the API's routes from the server, and the
    port refuses connections before the proxy listens. A wrong password (401/403) is not one.
    """
    return isinstance(exc, OSError) or (isinstance(exc, ValueError) and str(exc) == "Not Found")


def cluster_options(gateway: Any, wait: float) -> Any:
    """``gateway.cluster_options()``, retried for ``wait`` seconds while the gateway starts."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return gateway.cluster_options()
        except Exception as exc:
            if not _starting(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def _auth(args: argparse.Namespace) -> Any:
    if args.auth != "basic":
        return args.auth
    from dask_gateway import BasicAuth

    return BasicAuth(args.username, os.environ.get(args.password_env, ""))


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def write_files(out: Path, address: str, security: Any) -> dict[str, Path]:
    """Write the scheduler file and the cluster's credentials (mode 0600) into ``out``."""
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = {"scheduler": out / "scheduler.json", "cert": out / "cluster.pem",
             "key": out / "cluster.key"}
    for name, text in (("cert", security.tls_cert), ("key", security.tls_key),
                       ("scheduler", json.dumps({"address": address}))):
        tmp = files[name].with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, files[name])
    return files


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from dask_gateway import Gateway

    gateway = Gateway(args.address, proxy_address=args.proxy_address, auth=_auth(args))
    options = cluster_options(gateway, args.wait)
    for item in args.option:
        key, _, value = item.partition("=")
        options[key] = _option_value(value)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    cluster = gateway.new_cluster(options, shutdown_on_close=True)
    files: dict[str, Path] = {}
    try:
        cluster.scale(args.workers)
        client = cluster.get_client(set_as_default=False)
        client.wait_for_workers(args.workers, timeout=300)
        files = write_files(Path(args.out), cluster.scheduler_address, cluster.security)
        print(f"cluster {cluster.name}: scheduler at {cluster.scheduler_address} with "
              f"{args.workers} workers; dashboard: {cluster.dashboard_link}", flush=True)
        print("add to veob commands: --scheduler-file {scheduler} --tls-ca-file {cert} "
              "--tls-cert {cert} --tls-key {key}".format(**files), flush=True)
        client.close()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        for f in files.values():
            f.unlink(missing_ok=True)
        cluster.shutdown()
        gateway.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
