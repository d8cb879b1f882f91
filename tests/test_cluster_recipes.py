"""The cluster/ recipes work as written: local, SSH (a real sshd), SLURM (the job script),
Kubernetes (manifests, image), dask-gateway (a local gateway server) — each serving `veob`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from veob_dask import SVDEmbedding, load
from veob_dask.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.cluster
def test_local_recipe_serves_a_fit(tmp_path, capsys):
    sched = tmp_path / "sched.json"
    log = tmp_path / "cluster.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "cluster" / "local.py"), "--workers",
                                 "2", "--scheduler-file", str(sched)], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while not sched.exists():
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "cluster did not start within 60 s"
            time.sleep(0.2)
        address = json.loads(sched.read_text())["address"]
        x = np.random.default_rng(0).normal(size=(3000, 12)).astype(np.float32)
        np.save(tmp_path / "x.npy", x)
        assert main(["ingest", str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.zarr"),
                     "--chunk-rows", "500"]) == 0
        assert main(["fit", str(tmp_path / "x.zarr"), "-o", str(tmp_path / "m.zarr"), "-k", "4",
                     "--scheduler-file", str(sched)]) == 0
        remote = load(tmp_path / "m.zarr")
        local = SVDEmbedding(4).fit(x)
        np.testing.assert_allclose(remote.singular_values_, local.singular_values_, rtol=1e-6)
        # float32 products over another chunking: float32-level agreement
        np.testing.assert_allclose(remote.components_, local.components_, atol=5e-5)
        # with no flag, DASK_SCHEDULER_ADDRESS names the cluster
        import os

        res = subprocess.run([sys.executable, "-m", "veob_dask", "transform",
                              str(tmp_path / "m.zarr"), str(tmp_path / "x.zarr"), "-o",
                              str(tmp_path / "e.zarr"), "--json"], capture_output=True,
                             text=True, timeout=300, check=False,
                             env={**os.environ, "DASK_SCHEDULER_ADDRESS": address,
                                  "PYTHONPATH": os.pathsep.join(
                                      [str(ROOT), os.environ.get("PYTHONPATH", "")])})
        assert res.returncode == 0, res.stderr[-3000:]
        assert f"[cluster_start] connecting to the scheduler at {address}" in res.stderr
        assert {"cluster_start", "transform", "cluster_stop"} <= set(
            json.loads(res.stdout)["stage_seconds"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert capsys.readouterr()


@pytest.mark.cluster
def test_relative_paths_reach_workers_started_elsewhere(tmp_path, monkeypatch, capsys):
    """Workers run in another directory: every relative path is made absolute on the client
    before a graph leaves it (issue 12: 'no Zarr store at data/x.zarr' on the workers)."""
    elsewhere, work = tmp_path / "elsewhere", tmp_path / "work"
    elsewhere.mkdir()
    (work / "data").mkdir(parents=True)
    sched = tmp_path / "sched.json"
    log = tmp_path / "cluster.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "cluster" / "local.py"), "--workers",
                                 "2", "--scheduler-file", str(sched)], stdout=out, stderr=out,
                                cwd=elsewhere)
    try:
        _wait_for_file(sched, proc, log, 90)
        address = json.loads(sched.read_text())["address"]
        monkeypatch.chdir(work)
        x = np.random.default_rng(4).normal(size=(2000, 10)).astype(np.float32)
        np.save("data/x.npy", x)
        assert main(["ingest", "data/x.npy", "data/x.zarr", "--chunk-rows", "250"]) == 0
        assert main(["fit", "data/x.zarr", "m.zarr", "-k", "3", "--solver", "tsqr",
                     "--scheduler", address]) == 0
        assert main(["transform", "m.zarr", "data/x.zarr", "e.zarr", "--scheduler",
                     address]) == 0
        from veob_dask.io import read_array

        emb = read_array(work / "e.zarr").compute()
        np.testing.assert_allclose(np.abs(emb), np.abs(SVDEmbedding(3).fit_transform(x)),
                                   atol=2e-3)
        assert sorted(p.name for p in elsewhere.iterdir()) == []  # nothing written there
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert capsys.readouterr()


def test_unanswering_scheduler_is_a_clear_error(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.ones((10, 2)))
    assert main(["ingest", str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.zarr")]) == 0
    code = main(["fit", str(tmp_path / "x.zarr"), "-o", str(tmp_path / "m.zarr"), "-k", "1",
                 "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2
    assert "no Dask scheduler answered at 'tcp://127.0.0.1:9'" in capsys.readouterr().err
    assert not (tmp_path / "m.zarr").exists()


@pytest.mark.cluster
def test_fit_recovers_when_a_worker_is_killed_mid_run(tmp_path):
    """The documented recovery: a dead worker's tasks are recomputed on the others."""
    import os
    import signal
    from concurrent.futures import ThreadPoolExecutor

    from veob_dask.io import read_array, write_array
    from veob_dask.runtime import local_cluster

    x = np.random.default_rng(1).normal(size=(600_000, 24)).astype(np.float32)
    write_array(x, tmp_path / "x.zarr", chunk_rows=10_000)
    expected = SVDEmbedding(5).fit(x)
    with local_cluster(2) as client, ThreadPoolExecutor(1) as pool:
        pids = client.run(os.getpid)
        fut = pool.submit(lambda: SVDEmbedding(5, solver="tsqr").fit(read_array(tmp_path / "x.zarr")))
        deadline = time.monotonic() + 30
        while not client.processing() or not any(client.processing().values()):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not fut.done(), "the fit ended before a worker could be killed"
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        got = fut.result(timeout=120)
    np.testing.assert_allclose(got.singular_values_, expected.singular_values_, rtol=1e-6)
    np.testing.assert_allclose(got.components_, expected.components_, atol=1e-5)


# -- SSH: cluster/ssh/start.py against a real sshd on 127.0.0.1 ------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_file(path: Path, proc: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{path.name} not written in {seconds:g} s: " + \
            log.read_text()[-3000:]
        time.sleep(0.2)


@pytest.fixture
def sshd(tmp_path):
    """Debian's OpenSSH server on a free port of 127.0.0.1, accepting one key made here."""
    import os
    import shutil

    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    assert Path(sshd_bin).exists(), "openssh-server is not installed (.ci/run installs it)"
    folder = tmp_path / "ssh"
    folder.mkdir()
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(folder / name)], check=True)
    (folder / "authorized_keys").write_text((folder / "user.pub").read_text())
    port = _free_port()
    (folder / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {folder / 'host'}",
        f"PidFile {folder / 'sshd.pid'}", f"AuthorizedKeysFile {folder / 'authorized_keys'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "StrictModes no",
        "UsePAM no", ""]))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    log = folder / "sshd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(folder / "sshd_config")],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "Server listening" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield {"port": port, "key": str(folder / "user"), "log": log}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _python_with_this_checkout(folder: Path) -> str:
    """The interpreter the remote side runs, seeing this checkout of veob_dask first (as the
    tests do) — on real hosts this is simply the environment's python."""
    import os

    wrapper = folder / "python"
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{path}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.cluster
def test_ssh_recipe_serves_a_fit(sshd, tmp_path, capsys):
    hosts = tmp_path / "hosts"
    hosts.write_text("# scheduler, then two workers\n127.0.0.1\n127.0.0.1\n127.0.0.1\n")
    sched = tmp_path / "sched.json"
    log = tmp_path / "ssh-cluster.log"
    cmd = [sys.executable, str(ROOT / "cluster" / "ssh" / "start.py"), "--hosts", str(hosts),
           "--python", _python_with_this_checkout(tmp_path), "--ssh-port", str(sshd["port"]),
           "--ssh-key", sshd["key"], "--known-hosts", "none", "--scheduler-port", "0",
           "--dashboard-address", "none", "--memory-limit", "2GB", "--scheduler-file",
           str(sched)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
    try:
        _wait_for_file(sched, proc, log, 120)
        address = json.loads(sched.read_text())["address"]
        assert "with 2 workers" in log.read_text()
        assert sshd["log"].read_text().count("Accepted publickey") >= 3
        x = np.random.default_rng(2).normal(size=(3000, 12)).astype(np.float32)
        np.save(tmp_path / "x.npy", x)
        assert main(["ingest", str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.zarr"),
                     "--chunk-rows", "500"]) == 0
        assert address.startswith("tcp://")
        assert main(["fit", str(tmp_path / "x.zarr"), "-o", str(tmp_path / "m.zarr"), "-k", "4",
                     "--solver", "tsqr", "--scheduler-file", str(sched)]) == 0
        np.testing.assert_allclose(load(tmp_path / "m.zarr").singular_values_,
                                   SVDEmbedding(4).fit(x).singular_values_, rtol=1e-5)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert not sched.exists()  # removed on shutdown
    assert capsys.readouterr()


# -- SLURM: the batch script cluster/jobqueue/slurm.py generates (no SLURM needed) -------------

def _options_of(command: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in command if a.startswith("--")]


@pytest.mark.cluster
@pytest.mark.parametrize("tls", [False, True])
def test_slurm_recipe_job_script(certs, tls):
    cmd = [sys.executable, str(ROOT / "cluster" / "jobqueue" / "slurm.py"), "--dry-run",
           "--host", "127.0.0.1", "--queue", "normal", "--account", "proj", "--cores", "4",
           "--memory", "16GB", "--walltime", "01:30:00", "--python", "/shared/veob/bin/python",
           "--local-directory", "/scratch/veob"]
    if tls:
        cmd += ["--tls-ca-file", certs["ca"], "--tls-cert", certs["cert"], "--tls-key",
                certs["key"]]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    script = res.stdout
    assert script.startswith("#!/usr/bin/env bash\n")
    for line in ("#SBATCH -p normal", "#SBATCH -A proj", "#SBATCH --cpus-per-task=4",
                 "#SBATCH --mem=15G", "#SBATCH -t 01:30:00", "#SBATCH --exclusive",
                 "export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1"):
        assert line in script.splitlines(), (line, script)
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)  # valid shell
    worker = next(line for line in script.splitlines() if "distributed.cli.dask_worker" in line)
    argv = worker.split()
    assert argv[:3] == ["/shared/veob/bin/python", "-m", "distributed.cli.dask_worker"]
    assert argv[3].startswith("tls://127.0.0.1:" if tls else "tcp://127.0.0.1:")
    assert {"--nthreads", "--nworkers", "--memory-limit", "--local-directory"} <= set(
        _options_of(argv))
    assert argv[argv.index("--nthreads") + 1] == "1" and argv[argv.index("--nworkers") + 1] == "4"
    if tls:
        assert argv[argv.index("--tls-ca-file") + 1] == certs["ca"]
        assert argv[argv.index("--tls-cert") + 1] == certs["cert"]
    # every option of the worker command exists in the installed distributed
    help_text = subprocess.run([sys.executable, "-m", "distributed.cli.dask_worker", "--help"],
                               capture_output=True, text=True, check=True, timeout=120).stdout
    for opt in _options_of(argv):
        assert opt in help_text, opt


# -- Kubernetes: manifests, image, pinned versions ------------------------------------------

K8S = ROOT / "cluster" / "kubernetes"


def _containers(node) -> list[dict]:
    """Every container spec inside a manifest (scheduler, workers, job runner)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "containers" and isinstance(value, list):
                found.extend(value)
            else:
                found.extend(_containers(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_containers(item))
    return found


def _manifests() -> dict[str, list[dict]]:
    import yaml

    return {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d]
            for p in sorted(K8S.glob("*.yaml"))}


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = (K8S / "Dockerfile").read_text()
    lines = [ln for ln in text.replace("\\\n", " ").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1].strip()) for ln in lines]


def test_kubernetes_manifests_are_well_formed():
    manifests = _manifests()
    assert {"daskcluster.yaml", "daskjob.yaml"} <= set(manifests)
    kinds = {d["kind"] for docs in manifests.values() for d in docs}
    assert kinds == {"DaskCluster", "DaskJob"}
    images = set()
    for name, docs in manifests.items():
        for doc in docs:
            assert doc["apiVersion"] == "kubernetes.dask.org/v1", name
            for c in _containers(doc):
                images.add(c["image"])
                assert c["args"][0] in ("dask", "veob"), (name, c["args"])
                assert c["args"][:2] not in (["dask-scheduler"], ["dask-worker"])
                for env in c.get("env", []):  # credentials only through Secrets
                    assert not any(w in env["name"] for w in ("SECRET", "PASSWORD", "TOKEN")), env
    assert len(images) == 1  # one image for scheduler, workers and the veob runner
    cluster = manifests["daskcluster.yaml"][0]["spec"]
    assert cluster["scheduler"]["service"]["selector"]["dask.org/cluster-name"] == \
        manifests["daskcluster.yaml"][0]["metadata"]["name"]


def _help(args: list[str]) -> str:
    if args[0] == "dask":
        cmd = [str(Path(sys.executable).with_name("dask")), args[1], "--help"]
    else:
        cmd = [sys.executable, "-m", "veob_dask", args[1], "--help"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, (cmd, res.stderr[-2000:])
    return res.stdout


@pytest.mark.cluster
def test_every_container_command_runs_with_the_installed_packages():
    """Each container's command and options exist in the installed distributed / veob_dask."""
    seen = {}
    for name, docs in _manifests().items():
        for c in (c for d in docs for c in _containers(d)):
            key = tuple(c["args"][:2])
            if key not in seen:
                seen[key] = _help(c["args"])
            options = [a for a in c["args"] if a.startswith("--")]
            missing = [o for o in options if o not in seen[key]]
            assert not missing, (name, key, missing)
    assert {("dask", "scheduler"), ("dask", "worker"), ("veob", "fit")} <= set(seen)


def _load_module(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"veob_{path.parent.name}_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _load_constraints_module():
    return _load_module(K8S / "constraints.py")


def test_the_image_is_pinned_to_the_tested_environment():
    import tomllib

    steps = _dockerfile()
    base = next(a for i, a in steps if i == "FROM")
    assert base.startswith(f"python:{sys.version_info.major}.{sys.version_info.minor}-"), base
    copies = [a.split() for i, a in steps if i == "COPY"]
    for *sources, _ in copies:
        for src in sources:
            assert (ROOT / src).exists(), src  # the build context is the repository root
    dest = next(d for *s, d in copies if s == ["cluster/kubernetes/constraints.txt"])
    run = " ".join(a for i, a in steps if i == "RUN")
    assert f"pip install --constraint {dest} " in run
    mod = _load_constraints_module()
    extras = ",".join(mod.EXTRAS)
    assert f'"/src/veob_dask[{extras}]"' in run
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert set(mod.EXTRAS) <= set(optional)
    env = " ".join(a for i, a in steps if i == "ENV")
    assert "OMP_NUM_THREADS=1" in env and "OPENBLAS_NUM_THREADS=1" in env
    # every package the image installs is pinned, at the version these tests run with
    pinned = mod.read_pins((K8S / "constraints.txt").read_text())
    here = mod.closure(mod.root_requirements())
    here.pop("veob-dask", None)
    assert pinned == here, ("regenerate: python cluster/kubernetes/constraints.py",
                            sorted(set(pinned.items()) ^ set(here.items())))


# -- dask-gateway: a local gateway server, cluster/gateway/start.py, a fit through the proxy --

def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def test_gateway_start_waits_for_a_starting_gateway_only():
    mod = _load_module(ROOT / "cluster" / "gateway" / "start.py")

    class Gateway:
        def __init__(self, errors):
            self.errors, self.calls = list(errors), 0

        def cluster_options(self):
            self.calls += 1
            if self.errors:
                raise self.errors.pop(0)
            return {"worker_memory": 2}

    starting = Gateway([ConnectionRefusedError(), ValueError("Not Found")])
    assert mod.cluster_options(starting, wait=30) == {"worker_memory": 2}
    assert starting.calls == 3
    # a wrong password or a bad option is raised at once, not waited on
    for error in (ValueError("Unauthorized"), RuntimeError("boom")):
        bad = Gateway([error])
        with pytest.raises(type(error)):
            mod.cluster_options(bad, wait=30)
        assert bad.calls == 1
    # a gateway that never comes up is given up on after `wait` seconds
    with pytest.raises(ValueError, match="Not Found"):
        mod.cluster_options(Gateway([ValueError("Not Found")] * 3), wait=0)


@pytest.fixture
def gateway_server(tmp_path):
    """``dask-gateway-server -f cluster/gateway/config.py`` on free ports of 127.0.0.1."""
    import os

    ports = {k: str(_free_port()) for k in ("VEOB_GATEWAY_API_PORT", "VEOB_GATEWAY_PORT",
                                              "VEOB_GATEWAY_SCHEDULER_PORT")}
    env = {**os.environ, **ports, "VEOB_GATEWAY_PASSWORD": "test-password",
           "VEOB_GATEWAY_WORKER_MEMORY": "1.5 G", "PYTHONPATH": os.pathsep.join(
               [str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    log = tmp_path / "gateway.log"
    server = str(Path(sys.executable).with_name("dask-gateway-server"))
    with log.open("wb") as out:
        proc = subprocess.Popen([server, "-f", str(ROOT / "cluster" / "gateway" / "config.py")],
                                stdout=out, stderr=out, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        while "Dask-Gateway server started" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        # the server is up; its HTTP proxy answers 404 until it has polled the API's routes
        address = f"http://127.0.0.1:{ports['VEOB_GATEWAY_PORT']}"
        while not _answers(address + "/api/health"):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield {"address": address,
               "proxy": f"gateway://127.0.0.1:{ports['VEOB_GATEWAY_SCHEDULER_PORT']}",
               "env": env, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.cluster
def test_gateway_recipe_serves_a_fit(gateway_server, tmp_path, capsys):
    from veob_dask.io import write_array

    out = tmp_path / "creds"
    log = tmp_path / "start.log"
    env = {**gateway_server["env"], "DASK_GATEWAY_PASSWORD": "test-password"}
    cmd = [sys.executable, str(ROOT / "cluster" / "gateway" / "start.py"), "--address",
           gateway_server["address"], "--proxy-address", gateway_server["proxy"], "--auth",
           "basic", "--username", "alice", "--workers", "2", "--out", str(out)]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=fh, env=env)
    try:
        _wait_for_file(out / "scheduler.json", proc, log, 240)
        _wait_for_file(out / "cluster.key", proc, log, 30)
        assert json.loads((out / "scheduler.json").read_text())["address"].startswith(
            gateway_server["proxy"] + "/")
        assert (out / "cluster.key").stat().st_mode & 0o077 == 0  # private to the user
        x = np.random.default_rng(3).normal(size=(3000, 12)).astype(np.float32)
        write_array(x, tmp_path / "x.zarr", chunk_rows=500)
        # the options start.py prints
        flags = log.read_text().split("add to veob commands: ", 1)[1].splitlines()[0].split()
        assert flags == ["--scheduler-file", str(out / "scheduler.json"), "--tls-ca-file",
                         str(out / "cluster.pem"), "--tls-cert", str(out / "cluster.pem"),
                         "--tls-key", str(out / "cluster.key")]
        capsys.readouterr()
        assert main(["fit", str(tmp_path / "x.zarr"), "-o", str(tmp_path / "m.zarr"), "-k", "4",
                     "--solver", "tsqr", *flags]) == 0
        assert "[cluster_start] 2 workers" in capsys.readouterr().err
        np.testing.assert_allclose(load(tmp_path / "m.zarr").singular_values_,
                                   SVDEmbedding(4).fit(x).singular_values_, rtol=1e-5)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    assert not (out / "cluster.key").exists() and not (out / "scheduler.json").exists()
