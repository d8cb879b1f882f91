"""The whole command-line pipeline on ``s3://`` (moto's S3 server on 127.0.0.1) against the same
run on local paths: exit 0 at every step, identical results, nothing left but the outputs; a
failed write leaves nothing either."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from veob_dask import load
from veob_dask.cli import main
from veob_dask.io import read_array


def _flags(opts: dict) -> list[str]:
    return ["--storage-option", f"key={opts['key']}", "--storage-option",
            f"secret={opts['secret']}", "--storage-option", f"endpoint_url={opts['endpoint_url']}",
            "--storage-option", "client_kwargs.region_name=us-east-1"]


def _pipeline(root: str, src: Path, extra: list[str], capsys) -> dict:
    """ingest → fit → transform → index build → query; returns the query's JSON."""
    steps = [
        ["ingest", str(src), "-o", f"{root}/x.zarr", "--chunk-rows", "300"],
        ["fit", f"{root}/x.zarr", "-o", f"{root}/m.zarr", "-k", "5", "--solver", "tsqr"],
        ["transform", f"{root}/m.zarr", f"{root}/x.zarr", "-o", f"{root}/e.zarr"],
        ["index", "build", f"{root}/e.zarr", "-o", f"{root}/i.zarr", "--method", "cells",
         "--min-samples", "200"],
        ["query", f"{root}/e.zarr", "--rows", "0:20", "-n", "5", "--index", f"{root}/i.zarr",
         "--n-probe", "all"],
    ]
    for step in steps:
        capsys.readouterr()
        code = main([*step, *extra, "--json"])
        captured = capsys.readouterr()
        assert code == 0, (step[0], captured.err[-3000:])
    return json.loads(captured.out)


def _local_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.cluster  # a whole pipeline against the S3 server: CI runs it
def test_the_cli_pipeline_on_s3_matches_local_paths(s3_bucket, tmp_path, capsys) -> None:
    fs, bucket, opts = s3_bucket
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(2400, 24)) @ rng.normal(size=(24, 24))).astype(np.float32)
    src = tmp_path / "x.npy"
    np.save(src, x)
    local = tmp_path / "local"
    local.mkdir()

    q_s3 = _pipeline(f"s3://{bucket}", src, _flags(opts), capsys)
    q_local = _pipeline(str(local), src, [], capsys)

    assert q_s3["indices"] == q_local["indices"]
    np.testing.assert_array_equal(q_s3["sq_distances"], q_local["sq_distances"])
    m_s3 = load(f"s3://{bucket}/m.zarr", storage_options=opts)
    m_local = load(local / "m.zarr")
    np.testing.assert_array_equal(m_s3.components_, m_local.components_)
    np.testing.assert_array_equal(m_s3.singular_values_, m_local.singular_values_)
    np.testing.assert_array_equal(
        read_array(f"s3://{bucket}/e.zarr", storage_options=opts).compute(),
        read_array(local / "e.zarr").compute())
    # nothing but the four output stores: the same objects as the local run's files
    fs.invalidate_cache()
    objects = sorted(p[len(bucket) + 1:] for p in fs.find(bucket))
    assert objects == _local_files(local)
    assert not [o for o in objects if ".lock" in o or ".tmp-" in o]


def test_a_failed_cli_write_on_s3_leaves_nothing(s3_bucket, tmp_path, capsys) -> None:
    fs, bucket, opts = s3_bucket
    flags = _flags(opts)
    np.save(tmp_path / "x.npy", np.random.default_rng(6).normal(size=(900, 6)))
    root = f"s3://{bucket}"
    assert main(["ingest", str(tmp_path / "x.npy"), "-o", f"{root}/x.zarr", "--chunk-rows",
                 "100", *flags]) == 0
    assert main(["fit", f"{root}/x.zarr", "-o", f"{root}/m.zarr", "-k", "2", *flags]) == 0
    fs.rm_file(f"{bucket}/x.zarr/X/c/5/0")  # damage the input: the transform fails mid-write
    before = sorted(fs.find(bucket))
    capsys.readouterr()
    code = main(["transform", f"{root}/m.zarr", f"{root}/x.zarr", "-o", f"{root}/e.zarr",
                 "--scheduler", "threads", *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert "chunk c/5/0 of array 'X'" in err and "is missing" in err
    fs.invalidate_cache()
    assert sorted(fs.find(bucket)) == before  # no e.zarr object, no lock, no held metadata


def test_storage_options_are_parsed_and_checked(tmp_path, capsys) -> None:
    import argparse

    from veob_dask.cli._options import storage_options

    args = argparse.Namespace(storage_option=[
        "anon=true", "client_kwargs.region_name=eu-west-1", "client_kwargs.verify=false",
        "endpoint_url=http://h:9000", "default_block_size=1048576"])
    assert storage_options(args) == {
        "anon": True, "client_kwargs": {"region_name": "eu-west-1", "verify": False},
        "endpoint_url": "http://h:9000", "default_block_size": 1048576}
    np.save(tmp_path / "x.npy", np.ones((4, 2)))
    assert main(["ingest", str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.zarr"),
                 "--storage-option", "anon"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--storage-option 'anon' is not KEY=VALUE" in err[0]
    assert not (tmp_path / "x.zarr").exists()
    # options only ever apply to URLs: a local path is unaffected
    assert main(["ingest", str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.zarr"),
                 "--storage-option", "anon=true"]) == 0


@pytest.mark.cluster
def test_fit_on_s3_with_a_local_cluster_times_its_start_and_stop(s3_bucket, tmp_path,
                                                                 capsys) -> None:
    """Process workers open the s3:// store with the command's options (carried by the
    store's Location); cluster start-up and shutdown are stages of their own."""
    _, bucket, opts = s3_bucket
    x = np.random.default_rng(7).normal(size=(1200, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    flags = _flags(opts)
    assert main(["ingest", str(tmp_path / "x.npy"), "-o", f"s3://{bucket}/x.zarr",
                 "--chunk-rows", "200", *flags]) == 0
    capsys.readouterr()
    env = os.environ.pop("DASK_SCHEDULER_ADDRESS", None)
    try:
        code = main(["fit", f"s3://{bucket}/x.zarr", "-o", f"s3://{bucket}/m.zarr", "-k", "3",
                     "--solver", "tsqr", "--scheduler", "local", "--json", *flags])
    finally:
        if env is not None:
            os.environ["DASK_SCHEDULER_ADDRESS"] = env
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    doc = json.loads(out)
    assert {"cluster_start", "fit", "cluster_stop", "save"} <= set(doc["stage_seconds"])
    assert "[cluster_start] starting a LocalCluster" in err
    assert "[cluster_start] dashboard: http://127.0.0.1:" in err  # bokeh is installed
    from veob_dask import SVDEmbedding

    np.testing.assert_allclose(doc["singular_values"], SVDEmbedding(3).fit(x).singular_values_,
                               rtol=1e-5)


@pytest.mark.cluster  # a whole pipeline against the S3 server: CI runs it
def test_incremental_fit_checkpoints_on_s3(s3_bucket, tmp_path, capsys) -> None:
    """The checkpoint of a resumable fit lives beside the model on the object store and is
    removed once the model is written."""
    fs, bucket, opts = s3_bucket
    flags = _flags(opts)
    rng = np.random.default_rng(8)
    x = ((rng.normal(size=(1600, 3)) * [10.0, 5.0, 2.0]) @ rng.normal(size=(3, 10))
         + 0.01 * rng.normal(size=(1600, 10))).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    root = f"s3://{bucket}"
    assert main(["ingest", str(tmp_path / "x.npy"), "-o", f"{root}/x.zarr", "--chunk-rows",
                 "200", *flags]) == 0
    capsys.readouterr()
    assert main(["fit", f"{root}/x.zarr", "-o", f"{root}/m.zarr", "-k", "3", "--solver",
                 "incremental", "--checkpoint-every", "2", *flags]) == 0
    assert "[incremental]" in capsys.readouterr().err
    fs.invalidate_cache()
    assert {p.split("/")[1] for p in fs.find(bucket)} == {"x.zarr", "m.zarr"}
    from veob_dask import SVDEmbedding

    np.testing.assert_allclose(load(f"{root}/m.zarr", storage_options=opts).singular_values_,
                               SVDEmbedding(3).fit(x).singular_values_, rtol=1e-3)


@pytest.mark.cluster  # a whole pipeline against the S3 server: CI runs it
def test_text_models_on_s3(s3_bucket, tmp_path, capsys) -> None:
    from ..text.test_sentences import random_reviews, write_reviews

    fs, bucket, opts = s3_bucket
    flags = _flags(opts)
    root = f"s3://{bucket}"
    words = tmp_path / "words.txt"
    words.write_text("frown\nfrowns\nfrowned\nfrowning\nfrog\nfrogs\ntwig\ntwigs\ncat\ncats\n")
    assert main(["words", "build", "spelling", str(words), "-o", f"{root}/w.zarr", "-k", "5",
                 *flags]) == 0
    capsys.readouterr()
    assert main(["words", "neighbors", "frowning", "--model", f"{root}/w.zarr", "-n", "2",
                 "--json", *flags]) == 0
    near = json.loads(capsys.readouterr().out)
    assert near["neighbors"][1]["word"] in ("frowned", "frowns", "frown")  # after itself
    source = write_reviews(tmp_path, random_reviews(20, seed=2))
    assert main(["sentences", "build", str(source), "-o", f"{root}/s.zarr", "-k", "6",
                 "--scheduler", "sync", *flags]) == 0
    capsys.readouterr()
    assert main(["sentences", "neighbors", "good film", "--model", f"{root}/s.zarr", "-n", "3",
                 "--json", *flags]) == 0
    assert len(json.loads(capsys.readouterr().out)["neighbors"]) == 3
    fs.invalidate_cache()
    assert {p.split("/")[1] for p in fs.find(bucket)} == {"w.zarr", "s.zarr",
                                                          "s.zarr.corpus.zarr"}
