"""Fits on a real multi-process Dask cluster on 127.0.0.1 agree with the threaded scheduler.

Tests marked ``cluster`` start worker processes (run with ``--runcluster``); the unreachable
scheduler test needs no cluster and always runs.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import numpy as np
import pytest
import scipy.sparse as sp

from veob_dask.errors import SchedulerError
from veob_dask.io import read_array, read_matrix, write_array
from veob_dask.io.sparse import write_sparse
from veob_dask.runtime import connect, parallelism, scheduler_context
from veob_dask.svd import SVDEmbedding


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fit(path: Path, scheduler: object, **params: object) -> SVDEmbedding:
    with dask.config.set(scheduler=scheduler):
        return SVDEmbedding(**params).fit(read_matrix(path))


@pytest.fixture
def sparse_store(tmp_path: Path) -> Path:
    x = sp.random(1200, 6000, density=0.004, random_state=1, format="csr", dtype=np.float32)
    write_sparse(x, tmp_path / "sparse.zarr", chunk_rows=300)
    return tmp_path / "sparse.zarr"


@pytest.fixture
def dense_store(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(4000, 24)) * np.linspace(5, 0.1, 24)).astype(np.float32)
    write_array(x, tmp_path / "dense.zarr", chunk_rows=500)
    return tmp_path / "dense.zarr"


@pytest.mark.cluster
def test_randomized_fit_on_process_cluster_matches_threads(process_client: object,
                                                           sparse_store: Path) -> None:
    params = {"n_components": 8, "solver": "randomized", "n_iter": 3, "random_state": 5}
    # Sparse stores are read in one block per thread of the cluster that will run the fit.
    threads = sum(process_client.nthreads().values())  # type: ignore[attr-defined]
    with dask.config.set(scheduler=process_client):
        assert parallelism() == threads
        assert read_matrix(sparse_store).numblocks[0] == threads
    remote = _fit(sparse_store, process_client, **params)
    local = _fit(sparse_store, "threads", **params)
    assert remote.solver_ == local.solver_ == "randomized"
    np.testing.assert_allclose(remote.singular_values_, local.singular_values_, rtol=1e-12)
    np.testing.assert_allclose(remote.components_, local.components_, atol=1e-10)
    centered = _fit(sparse_store, process_client, center=True, **params)
    assert centered.mean_ is not None and centered.singular_values_[0] < remote.singular_values_[0]


@pytest.mark.cluster
def test_gram_fit_and_transform_to_zarr_on_process_cluster(process_client: object,
                                                           dense_store: Path,
                                                           tmp_path: Path) -> None:
    remote = _fit(dense_store, process_client, n_components=5)
    local = _fit(dense_store, "threads", n_components=5)
    assert remote.solver_ == "gram"
    np.testing.assert_allclose(remote.singular_values_, local.singular_values_, rtol=1e-12)
    np.testing.assert_allclose(remote.components_, local.components_, atol=1e-12)
    x = read_array(dense_store)
    with dask.config.set(scheduler=process_client):
        write_array(remote.transform(x), tmp_path / "emb.zarr")
    emb = read_array(tmp_path / "emb.zarr").compute(scheduler="sync")
    want = x.compute(scheduler="sync").astype(np.float64) @ local.components_.T
    np.testing.assert_allclose(emb, want, rtol=1e-4, atol=1e-4)


@contextlib.contextmanager
def _cli_cluster(tmp_path: Path, n_workers: int = 2) -> Iterator[str]:
    """`dask scheduler` and `dask worker` as separate OS processes on 127.0.0.1."""
    sched_file = tmp_path / "scheduler.json"
    port = _free_port()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard", "--scheduler-file", str(sched_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(n_workers):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", address, "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "2GB"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        client = connect(address, timeout=30)
        try:
            client.wait_for_workers(n_workers, timeout=60)
        finally:
            client.close()
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.cluster
def test_fit_on_separately_started_scheduler_and_workers(tmp_path: Path,
                                                         sparse_store: Path) -> None:
    params = {"n_components": 6, "solver": "randomized", "n_iter": 2, "random_state": 0}
    with (_cli_cluster(tmp_path) as address, scheduler_context(address) as client,
          dask.config.set(scheduler=client)):
        assert len(client.scheduler_info()["workers"]) == 2
        remote = SVDEmbedding(**params).fit(read_matrix(sparse_store))
        where = client.run(lambda: __import__("os").getpid())
    local = _fit(sparse_store, "threads", **params)
    assert len(set(where.values())) == 2
    np.testing.assert_allclose(remote.singular_values_, local.singular_values_, rtol=1e-12)
    np.testing.assert_allclose(remote.components_, local.components_, atol=1e-10)


def test_unanswering_scheduler_address_raises_scheduler_error() -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(SchedulerError, match="no Dask scheduler answered"):
        connect(address, timeout=1)


@pytest.mark.cluster
@pytest.mark.parametrize("solver", ["gram", "incremental", "randomized"])
def test_subdomain_fit_on_process_cluster_matches_threads(process_client: object,
                                                          tmp_path: Path, solver: str) -> None:
    from veob_dask.io.ingest import ingest
    from veob_dask.subdomain import SubdomainEmbedding

    rng = np.random.default_rng(4)
    x = (rng.normal(size=(3000, 16)) * np.linspace(5, 0.1, 16)).astype(np.float32)
    names = np.array(["news", "blogs", "papers"])[rng.integers(0, 3, size=3000)]
    ingest(x, tmp_path / "keyed.zarr", domains=names, chunk_rows=400)
    fits = []
    for scheduler in (process_client, "threads"):
        with dask.config.set(scheduler=scheduler):
            fits.append(SubdomainEmbedding(4, solver=solver, n_iter=3).fit(
                read_matrix(tmp_path / "keyed.zarr"),
                domains=read_array(tmp_path / "keyed.zarr", "domains")))
    remote, local = fits
    assert remote.domains_.tolist() == ["blogs", "news", "papers"]
    np.testing.assert_allclose(remote.singular_values_, local.singular_values_, rtol=1e-6)
    np.testing.assert_allclose(np.abs(np.sum(remote.components_ * local.components_, axis=2)),
                               1.0, atol=1e-5)
