"""Shared fixtures and the --runslow / --runcluster switches."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import dask
import numpy as np
import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")
    parser.addoption("--runcluster", action="store_true",
                     help="also run tests marked cluster (multi-process Dask, S3/sshd/gateway servers on 127.0.0.1)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, option in (("slow", "--runslow"), ("cluster", "--runcluster")):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"needs {option}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _sync_scheduler():
    """Deterministic, readable tracebacks: the single-threaded scheduler unless a test overrides."""
    with dask.config.set(scheduler="sync"):
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def low_rank(rng: np.random.Generator) -> np.ndarray:
    """A 1,200 x 40 float64 matrix with a known decaying spectrum plus small noise."""
    n, d, r = 1200, 40, 12
    u, _ = np.linalg.qr(rng.normal(size=(n, d)))
    v, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s = 100.0 * 0.8 ** np.arange(d)
    s[r:] *= 0.01
    return (u * s) @ v.T


@pytest.fixture(scope="session")
def process_client():
    """One 2-worker process LocalCluster on 127.0.0.1 for the whole session (cluster tests)."""
    from veob_dask.runtime import local_cluster

    with local_cluster(2) as client:
        yield client


@pytest.fixture(scope="session")
def s3_server():
    """A local S3-compatible server (moto's server mode) on 127.0.0.1 for the whole session.

    Yields the ``storage_options`` that reach it (endpoint and dummy credentials, passed
    explicitly: nothing is read from the environment).
    """
    import logging

    from moto.server import ThreadedMotoServer  # the test extra installs moto[server] and s3fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield {"key": "testing", "secret": "testing", "endpoint_url": f"http://{host}:{port}",
           "client_kwargs": {"region_name": "us-east-1"}}
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, request):
    """A fresh, empty bucket: yields ``(fs, bucket, storage_options)``; the bucket is emptied
    and deleted afterwards."""
    import re
    import uuid

    import s3fs

    fs = s3fs.S3FileSystem(**s3_server)
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    bucket = f"{name}-{uuid.uuid4().hex[:8]}"
    fs.call_s3("create_bucket", Bucket=bucket)
    yield fs, bucket, s3_server
    fs.invalidate_cache()
    if fs.exists(bucket):
        fs.rm(bucket, recursive=True)


# -- TLS: a private CA and certificates made with cryptography ------------------------------

def _key_and_cert(name: str, issuer: tuple | None, *, ca: bool) -> tuple:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_key, issuer_cert = issuer or (key, None)
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return key, builder.sign(issuer_key, hashes.SHA256())


def _write_pem(folder: Path, name: str, key, cert) -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization

    k, c = folder / f"{name}.key", folder / f"{name}.pem"
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(c), str(k)


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> dict[str, str]:
    """A private CA, a certificate it signed (for scheduler, workers and client), and a
    certificate from another CA (a client the cluster must refuse)."""
    folder = tmp_path_factory.mktemp("tls")
    ca = _key_and_cert("veob test CA", None, ca=True)
    node = _key_and_cert("veob node", ca, ca=False)
    rogue_ca = _key_and_cert("someone else's CA", None, ca=True)
    rogue = _key_and_cert("veob node", rogue_ca, ca=False)
    out = {}
    out["ca"], _ = _write_pem(folder, "ca", *ca)
    out["cert"], out["key"] = _write_pem(folder, "node", *node)
    out["rogue_cert"], out["rogue_key"] = _write_pem(folder, "rogue", *rogue)
    return out
