"""A TLS-secured Dask cluster on 127.0.0.1: a fit through it, and a client without the right
certificates refused with one line in bounded time.

The test makes a private CA and certificates with ``cryptography``, starts ``dask scheduler``
and ``dask worker`` with ``--tls-ca-file/--tls-cert/--tls-key`` (the commands a real deployment
runs), and connects as the ``veob`` command line does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from veob_dask.errors import SchedulerError
from veob_dask.runtime import scheduler_address, tls_security

DASK = str(Path(sys.executable).with_name("dask"))


@pytest.fixture(scope="module")
def tls_cluster(certs, tmp_path_factory):
    """``dask scheduler`` (TLS only) and a ``dask worker`` with 2 processes on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls-cluster")
    sched_file = folder / "scheduler.json"
    tls = ["--tls-ca-file", certs["ca"], "--tls-cert", certs["cert"], "--tls-key", certs["key"]]
    log = (folder / "cluster.log").open("wb")
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--protocol", "tls", "--no-dashboard", "--scheduler-file",
                               str(sched_file), *tls], stdout=log, stderr=log)]
    try:
        deadline = time.monotonic() + 90
        while not sched_file.exists():
            assert procs[0].poll() is None, (folder / "cluster.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the TLS scheduler did not start in 90 s"
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tls://127.0.0.1:")
        procs.append(subprocess.Popen([DASK, "worker", address, "--nworkers", "2", "--nthreads",
                                       "1", "--host", "127.0.0.1", "--no-dashboard",
                                       "--memory-limit", "2GB", *tls], stdout=log, stderr=log))
        yield address, str(sched_file)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


@pytest.mark.cluster
def test_a_fit_runs_through_a_tls_cluster(certs, tls_cluster, tmp_path, capsys) -> None:
    from veob_dask import SVDEmbedding, load
    from veob_dask.cli import main
    from veob_dask.io import write_array

    address, sched_file = tls_cluster
    x = np.random.default_rng(0).normal(size=(4000, 16)).astype(np.float32)
    write_array(x, tmp_path / "x.zarr", chunk_rows=500)
    _wait_for_workers(address, certs, 2)
    capsys.readouterr()
    code = main(["fit", str(tmp_path / "x.zarr"), "-o", str(tmp_path / "m.zarr"), "-k", "4",
                 "--solver", "tsqr", "--scheduler-file", sched_file, "--tls-ca-file",
                 certs["ca"], "--tls-cert", certs["cert"], "--tls-key", certs["key"], "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    assert {"cluster_start", "fit", "cluster_stop"} <= set(json.loads(out)["stage_seconds"])
    assert f"[cluster_start] connecting to the scheduler at {address}" in err
    assert "[cluster_start] 2 workers" in err
    np.testing.assert_allclose(load(tmp_path / "m.zarr").singular_values_,
                               SVDEmbedding(4).fit(x).singular_values_, rtol=1e-5)


@pytest.mark.cluster
def test_certificates_from_dask_configuration(certs, tls_cluster, tmp_path) -> None:
    """No --tls flags: the client takes its certificates from dask's distributed.comm.tls
    configuration (here its environment-variable form), as any Dask client does."""
    from veob_dask.io import write_array

    address, _ = tls_cluster
    write_array(np.random.default_rng(1).normal(size=(600, 5)), tmp_path / "x.zarr",
                chunk_rows=200)
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": certs["ca"],
           "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": certs["cert"],
           "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": certs["key"],
           "DASK_SCHEDULER_ADDRESS": address,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "veob_dask", "fit", str(tmp_path / "x.zarr"),
                          "-o", str(tmp_path / "m.zarr"), "-k", "2", "--json"],
                         capture_output=True, text=True, timeout=300, check=False, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"connecting to the scheduler at {address}" in res.stderr
    assert json.loads(res.stdout)["n_components"] == 2


def _wait_for_workers(address: str, certs: dict[str, str], n: int) -> None:
    from veob_dask.runtime import connect

    client = connect(address, security=tls_security(certs["ca"], certs["cert"], certs["key"]))
    try:
        client.wait_for_workers(n, timeout=90)
    finally:
        client.close()


@pytest.mark.cluster
@pytest.mark.parametrize("how", ["no certificates (tcp://)", "certificate of another CA",
                                 "no client certificate"])
def test_a_client_without_the_clusters_certificates_is_refused(certs, tls_cluster, tmp_path,
                                                               how) -> None:
    """``veob fit`` against the TLS cluster without the right certificates: exit 2 and one
    line on stderr, within the connection timeout (not a hang)."""
    address, _ = tls_cluster
    np.save(tmp_path / "x.npy", np.ones((10, 3)))
    from veob_dask.io import write_array

    write_array(np.ones((10, 3)), tmp_path / "x.zarr")
    if how.startswith("no certificates"):
        flags = ["--scheduler", address.replace("tls://", "tcp://")]
    elif how == "certificate of another CA":
        flags = ["--scheduler", address, "--tls-ca-file", certs["ca"], "--tls-cert",
                 certs["rogue_cert"], "--tls-key", certs["rogue_key"]]
    else:
        flags = ["--scheduler", address, "--tls-ca-file", certs["ca"]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "veob_dask", "fit", str(tmp_path / "x.zarr"),
                          "-o", str(tmp_path / "m.zarr"), "-k", "1", *flags],
                         capture_output=True, text=True, timeout=120, check=False, env=env)
    seconds = time.monotonic() - t0
    lines = res.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("veob fit: error: ")]
    assert res.returncode == 2, res.stderr[-3000:]
    assert len(errors) == 1 and lines[-1] == errors[0], res.stderr  # one line, last
    assert seconds < 60, seconds  # refused within the connection timeout, not hanging
    assert not (tmp_path / "m.zarr").exists()
    print(f"{how}: {errors[0]} ({seconds:.1f} s)")


def test_tls_files_are_checked_before_connecting(certs, tmp_path) -> None:
    assert tls_security() is None
    with pytest.raises(SchedulerError, match=r"--tls-cert .*no such file"):
        tls_security(certs["ca"], str(tmp_path / "absent.pem"))
    with pytest.raises(SchedulerError, match="--tls-ca-file missing"):
        tls_security(None, certs["cert"], certs["key"])
    sec = tls_security(certs["ca"], certs["cert"], certs["key"])
    assert sec.require_encryption and sec.tls_client_cert == certs["cert"]


def test_the_scheduler_is_found_by_flag_file_or_configuration(tmp_path) -> None:
    import dask

    f = tmp_path / "s.json"
    f.write_text(json.dumps({"address": "tls://10.0.0.5:8786", "type": "Scheduler"}))
    assert scheduler_address("tcp://a:1") == "tcp://a:1"
    assert scheduler_address(None, str(f)) == "tls://10.0.0.5:8786"
    assert scheduler_address() is None
    with dask.config.set({"scheduler-address": "tcp://10.0.0.6:8786"}):
        assert scheduler_address() == "tcp://10.0.0.6:8786"
        assert scheduler_address("threads") == "threads"
    env = {**os.environ, "DASK_SCHEDULER_ADDRESS": "tcp://10.0.0.7:8786"}
    code = "from veob_dask.runtime import scheduler_address; print(scheduler_address())"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    assert res.stdout.strip() == "tcp://10.0.0.7:8786"
    with pytest.raises(SchedulerError, match="not both"):
        scheduler_address("tcp://a:1", str(f))
    with pytest.raises(SchedulerError, match="does not exist"):
        scheduler_address(None, str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SchedulerError, match="has no 'address'"):
        scheduler_address(None, str(tmp_path / "bad.json"))
