"""Scheduler addresses: malformed ones and non-Dask services fail with one SchedulerError."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import dask
import numpy as np
import pytest

from veob_dask.errors import SchedulerError
from veob_dask.runtime import MALLOC_TRIM_KEY, check_address, connect, local_cluster


@pytest.mark.parametrize("address, normalised", [
    ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
    ("10.0.0.5:8786", "tcp://10.0.0.5:8786"),
    ("TCP://scheduler-1.example.org:8786", "tcp://scheduler-1.example.org:8786"),
    ("tcp://[::1]:8786", "tcp://[::1]:8786"),
    ("ws://host:8786", "ws://host:8786"),
])
def test_well_formed_addresses(address: str, normalised: str) -> None:
    assert check_address(address) == normalised


@pytest.mark.parametrize("address, words", [
    ("", "empty"),
    ("tcp://", "missing"),
    ("notascheme://foo", "unknown scheme 'notascheme'"),
    ("host:notaport", "'notaport' is not a number"),
    ("tcp://127.0.0.1:99999", "1-65535"),
    ("tcp://127.0.0.1:0", "1-65535"),
    ("tcp://:8786", "host is missing"),
    ("tcp://host", "no port"),
    ("tcp://[::1:8786", "IPv6"),
    ("tcp://::1:8786", "brackets"),
    ("tcp://local host:8786", "white space"),
    ("tcp://bad$host:8786", "not a host name"),
    ("inproc://10.0.0.1/1234/1", "inproc"),
    ("/tmp/scheduler.json", "file path"),
])
def test_malformed_addresses_name_the_problem(address: str, words: str) -> None:
    with pytest.raises(SchedulerError, match="not valid") as info:
        check_address(address)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_tls_needs_certificates(tmp_path: Path) -> None:
    with pytest.raises(SchedulerError, match="no certificates are configured"):
        check_address("tls://127.0.0.1:8786")
    ca, cert = tmp_path / "ca.pem", tmp_path / "client.pem"
    with dask.config.set({"distributed.comm.tls.ca-file": str(ca),
                          "distributed.comm.tls.client.cert": str(cert)}):
        assert check_address("tls://127.0.0.1:8786") == "tls://127.0.0.1:8786"


@pytest.fixture
def web_server() -> Iterator[str]:
    """A real ``http.server`` on a free 127.0.0.1 port (a TCP service that is not Dask)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             http.server.SimpleHTTPRequestHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.timeout(60)  # the property: it ends (it used to hang for as long as one waited)
def test_web_server_fails_the_handshake_instead_of_hanging(web_server: str) -> None:
    with pytest.raises(SchedulerError, match=r"did not complete a Dask handshake within 0\.5 s"):
        connect(web_server, timeout=0.5)


@pytest.mark.timeout(60)
def test_silent_listener_fails_the_handshake() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts connections, never answers
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(SchedulerError, match="did not complete a Dask handshake"):
            connect(address, timeout=0.5)


def test_closed_port_fails_at_once() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # nothing listens now: refused before any timeout (the message keeps its old start)
    with pytest.raises(SchedulerError, match=r"no Dask scheduler answered at .*refused"):
        connect(f"tcp://127.0.0.1:{port}", timeout=30)


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_cli_with_web_server_address_exits_2_in_the_timeout(web_server: str,
                                                            tmp_path: Path) -> None:
    """Through a real ``veob`` process: one line, exit 2, after the 10 s connect timeout."""
    from veob_dask.io.ingest import ingest

    ingest(np.ones((6, 3)), tmp_path / "x.zarr")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "veob_dask", "fit", str(tmp_path / "x.zarr"),
                          "-o", str(tmp_path / "m.zarr"), "-k", "1", "--scheduler", web_server],
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    lines = [ln for ln in run.stderr.splitlines() if ln.strip() and not ln.startswith(
        ("[", "input "))]
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert "did not complete a Dask handshake within 10 s" in lines[0]
    assert not (tmp_path / "m.zarr").exists()


def test_real_scheduler_handshake_and_worker_address_refused() -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, protocol="tcp",
                      dashboard_address=None) as cluster:
        client = connect(cluster.scheduler_address, timeout=10)
        try:
            assert client.submit(sum, [1, 2]).result() == 3
        finally:
            client.close()
        worker = next(iter(cluster.scheduler_info["workers"]))
        with pytest.raises(SchedulerError, match="answered as a Dask Worker"):
            connect(worker, timeout=10)


@pytest.mark.cluster
@pytest.mark.parametrize("trim", [False, True])
def test_local_cluster_workers_trim_memory_only_when_asked(
        trim: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    before = dask.config.get(MALLOC_TRIM_KEY)
    with local_cluster(1, trim_memory=trim) as client:
        env = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert list(env.values()) == [str(before) if trim else None]
    assert dask.config.get(MALLOC_TRIM_KEY) == before  # the setting did not leak


def test_scheduler_context_runs_the_threads_asked_a_core() -> None:
    from veob_dask.runtime import scheduler_context

    cores = os.cpu_count() or 1
    with dask.config.set(num_workers=None):
        with scheduler_context("threads", threads_per_core=2):
            assert dask.config.get("num_workers") == 2 * cores
            assert dask.config.get("scheduler") == "threads"
        with scheduler_context(None):
            assert dask.config.get("num_workers", None) is None
        with scheduler_context("sync", threads_per_core=2):
            assert dask.config.get("num_workers", None) is None
        with dask.config.set(num_workers=3), scheduler_context("threads", threads_per_core=2):
            assert dask.config.get("num_workers") == 3  # the user's own setting stands


@pytest.mark.cluster
def test_a_local_cluster_runs_the_threads_asked_a_core() -> None:
    from veob_dask.runtime import scheduler_context

    with scheduler_context("local", threads_per_core=2) as client:
        workers = list(client.scheduler_info()["workers"].values())
    assert len(workers) == (os.cpu_count() or 1)
    assert all(w["nthreads"] == 2 for w in workers)
