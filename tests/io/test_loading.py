"""Loading is data, never code: hostile model files, schemas, tampered indexes."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import numpy as np
import pytest
import zarr

from veob_dask import SVDEmbedding, load, save
from veob_dask.cli import main
from veob_dask.errors import StoreFormatError
from veob_dask.index import CellIndex, load_index
from veob_dask.io import write_array
from veob_dask.partition import KMeansCells, PartitionTree
from veob_dask.persistence import MODELS


def _digest(folder: Path) -> str:
    h = hashlib.sha1()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything opens a connection or a Dask client."""
    calls: list[object] = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    import distributed

    monkeypatch.setattr(distributed, "Client", refuse)
    yield calls
    assert calls == []


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.zarr"
    write_array(np.arange(8.0).reshape(4, 2), path)
    return path


def _hostile(path: Path, header: dict) -> Path:
    zarr.open_group(path, mode="w").attrs["veob_dask"] = header
    return path


def _cases(tmp_path: Path, victim: Path) -> list[tuple[str, dict]]:
    npy = tmp_path / "x.npy"
    np.save(npy, np.ones((3, 2)))
    write = {"x": [[1.0, 2.0]], "path": str(victim), "overwrite": True}
    cli = {"argv": ["ingest", str(npy), str(tmp_path / "ran.zarr")]}
    connect = {"address": "tcp://127.0.0.1:1", "timeout": 1}
    return [
        ("veob_dask.io.store:write_array", write),
        ("veob_dask.io.writer:write_array", write),
        ("veob_dask.cli:main", cli),
        ("veob_dask.runtime:connect", connect),
        ("veob_dask_evil.module:Thing", {}),
        ("veob_dask.io:Location", {"url": "/etc"}),
        ("/etc/passwd", {}),
        ("tcp://10.0.0.1:8786", {}),
        ("builtins:eval", {"source": "1"}),
    ]


@pytest.mark.parametrize("version", [1, 2])
def test_hostile_kinds_run_nothing(tmp_path: Path, victim: Path, no_network,
                                   version: int) -> None:
    before = _digest(victim)
    for i, (kind, params) in enumerate(_cases(tmp_path, victim)):
        header = ({"format_version": 1, "kind": kind, "params": params, "state": {}}
                  if version == 1 else
                  {"format_version": 2, "kind": "model", "estimator": kind, "params": params,
                   "state": {}})
        path = _hostile(tmp_path / f"h{i}.zarr", header)
        with pytest.raises(StoreFormatError, match="not a class this veob_dask can load"):
            load(path)
        assert main(["transform", str(path), str(victim), "-o", str(tmp_path / f"o{i}.zarr")]) == 2
    assert _digest(victim) == before
    assert not (tmp_path / "ran.zarr").exists()
    assert not any(p.name.startswith("o") for p in tmp_path.iterdir())


@pytest.mark.parametrize("params", [
    {"n_components": "tcp://10.0.0.1:8786"},
    {"n_components": "/etc/passwd"},
    {"solver": {"module": "veob_dask.cli", "function": "main"}},
    {"address": "tcp://127.0.0.1:1"},
    {"random_state": -3},
    {"n_components": float("nan")},
    "not a dict",
], ids=["address-value", "path-value", "dict-value", "unknown-name", "out-of-range", "nan",
        "not-a-dict"])
def test_hostile_parameters_are_refused(tmp_path: Path, no_network, params) -> None:
    path = _hostile(tmp_path / "m.zarr", {"format_version": 2, "kind": "model",
                                          "estimator": "SVDEmbedding", "params": params,
                                          "state": {}})
    with pytest.raises(StoreFormatError, match="invalid"):
        load(path)


def _saved_svd(tmp_path: Path, low_rank: np.ndarray) -> Path:
    path = tmp_path / "svd.zarr"
    save(SVDEmbedding(5).fit(low_rank), path)
    return path


@pytest.mark.parametrize("bad", ["nan", "int8", "bool", "shape", "missing", "state-name",
                                 "negative"])
def test_tampered_fitted_state_is_refused(tmp_path: Path, low_rank: np.ndarray, bad: str) -> None:
    path = _saved_svd(tmp_path, low_rank)
    g = zarr.open_group(path, mode="r+")
    comps = np.asarray(g["components_"][...])
    if bad == "nan":
        comps[0, 0] = np.nan
        g["components_"][...] = comps
    elif bad in ("int8", "bool"):
        del g["components_"]
        g.create_array("components_", data=comps.astype(bad))
    elif bad == "shape":
        del g["components_"]
        g.create_array("components_", data=comps[:, :-1])
    elif bad == "missing":
        del g["singular_values_"]
    elif bad == "negative":
        g["singular_values_"][0] = -1.0
    else:
        header = dict(g.attrs["veob_dask"])
        header["state"] = {**header["state"], "__class__": "x"}
        g.attrs["veob_dask"] = header
    with pytest.raises(StoreFormatError, match="invalid"):
        load(path)


def test_every_table_class_round_trips_its_schema(tmp_path: Path, rng) -> None:
    """Saving checks the schema too, so an estimator whose state drifts fails loudly."""
    x = rng.normal(size=(300, 6))
    for est in (PartitionTree(2, min_samples=5).fit(x), KMeansCells(4).fit(x)):
        save(est, tmp_path / "p.zarr", overwrite=True)
        back = load(tmp_path / "p.zarr")
        np.testing.assert_array_equal(back.predict(x), est.predict(x))
    assert set(MODELS) >= {"SVDEmbedding", "IncrementalSVDEmbedding", "SubdomainEmbedding",
                           "SpectralTransform2D", "SequenceTransform", "PartitionTree",
                           "KMeansCells", "CellMapClassifier", "CellMapRegressor", "Pipeline"}


def test_tree_children_must_point_forward(tmp_path: Path, rng) -> None:
    est = PartitionTree(2, min_samples=5).fit(rng.normal(size=(300, 4)))
    save(est, tmp_path / "t.zarr")
    g = zarr.open_group(tmp_path / "t.zarr", mode="r+")
    children = np.asarray(g["children_"][...])
    children[1] = [0, 0]  # a cycle back to the root
    g["children_"][...] = children
    with pytest.raises(StoreFormatError, match="later nodes"):
        load(tmp_path / "t.zarr")


@pytest.fixture
def index_store(tmp_path: Path, rng) -> tuple[Path, np.ndarray]:
    emb = rng.normal(size=(500, 5))
    CellIndex("tree", n_probe=2, min_samples=20).fit(emb).save(tmp_path / "ix.zarr")
    return tmp_path / "ix.zarr", emb


@pytest.mark.parametrize("value", [-7, 1_000_000_000])
def test_tampered_index_members_are_refused(index_store, value: int) -> None:
    path, emb = index_store
    g = zarr.open_group(path, mode="r+")
    members = np.asarray(g["members"][...])
    members[3] = value
    g["members"][...] = members
    with pytest.raises(StoreFormatError, match="members"):
        load_index(path, embedding=emb)


def test_tampered_index_offsets_and_params_are_refused(index_store) -> None:
    path, emb = index_store
    g = zarr.open_group(path, mode="r+")
    offsets = np.asarray(g["offsets"][...])
    offsets[1] = offsets[-1] + 10
    g["offsets"][...] = offsets
    with pytest.raises(StoreFormatError, match="offsets"):
        load_index(path, embedding=emb)
    offsets[1] = offsets[0]
    g["offsets"][...] = np.sort(offsets)
    header = dict(g.attrs["veob_dask"])
    header["params"] = {**header["params"], "n_threads": 10**9}
    g.attrs["veob_dask"] = header
    with pytest.raises(StoreFormatError, match="n_threads"):
        load_index(path, embedding=emb)


def test_index_round_trip_answers_the_same(index_store, rng) -> None:
    path, emb = index_store
    back = load_index(path, embedding=emb)
    q = rng.normal(size=(20, 5))
    _, idx = back.kneighbors(q, 5, n_probe="all")
    assert idx.min() >= 0 and idx.max() < emb.shape[0]


def test_a_header_claiming_a_huge_array_allocates_nothing(tmp_path: Path, low_rank) -> None:
    import json

    path = _saved_svd(tmp_path, low_rank)
    meta_file = path / "spectrum_" / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["shape"] = [10**15]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(StoreFormatError, match=r"claims .* [GP]iB"):
        load(path)
