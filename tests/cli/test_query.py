"""``veob index build`` and ``veob query``, in process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from veob_dask.cli import main
from veob_dask.index import exact_kneighbors
from veob_dask.io import read_array, write_array


@pytest.fixture
def stores(rng, tmp_path):
    centers = rng.normal(size=(6, 5)) * 4
    emb = (centers[rng.integers(0, 6, 2500)] + rng.normal(size=(2500, 5))).astype(np.float32)
    queries = emb[:30] + 0.01
    write_array(emb, tmp_path / "emb.zarr", chunk_rows=600)
    write_array(queries, tmp_path / "q.zarr")
    return tmp_path, emb, queries


def test_exact_query_rows_and_out(stores, capsys):
    tmp, emb, _ = stores
    out = tmp / "nn.zarr"
    assert main(["query", str(tmp / "emb.zarr"), "--rows", "100:140", "-n", "4",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith("query 100: 100 (0)")
    idx = read_array(out, "indices").compute()
    sq = read_array(out, "sq_distances").compute()
    ref_i, ref_d = exact_kneighbors(emb[100:140], emb, 4)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(sq, ref_d)
    assert main(["query", str(tmp / "emb.zarr"), "--rows", "0:5", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_query_json_is_one_document_with_the_neighbors(stores, capsys):
    tmp, emb, _ = stores
    assert main(["query", str(tmp / "emb.zarr"), "--rows", "7:12", "-n", "3", "--json"]) == 0
    out, err = capsys.readouterr()
    res = json.loads(out)  # stdout holds only the JSON document
    assert "query 7: 7 (0)" in err  # the human table went to stderr
    ref_i, ref_d = exact_kneighbors(emb[7:12], emb, 3)
    assert res["queries"] == [7, 8, 9, 10, 11] and res["neighbors"] == 3
    np.testing.assert_array_equal(res["indices"], ref_i)
    np.testing.assert_allclose(res["sq_distances"], ref_d, rtol=1e-6)


def test_query_old_k_spelling_still_works(stores, capsys):
    tmp, _, _ = stores
    assert main(["query", str(tmp / "emb.zarr"), "--rows", "0:2", "-k", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)["indices"][0]) == 2
    assert "-k for neighbours is deprecated" in err and "-n/--neighbors" in err


@pytest.mark.parametrize("method", ["cells", "kmeans"])
def test_index_build_then_query(stores, capsys, method):
    tmp, emb, queries = stores
    ix = tmp / f"{method}.zarr"
    assert main(["index", "build", str(tmp / "emb.zarr"), "-o", str(ix), "--method", method,
                 "--min-samples", "20", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "cells over 2500 rows" in err and json.loads(out)["n_rows"] == 2500
    out = tmp / "res.zarr"
    assert main(["query", str(tmp / "emb.zarr"), "--queries", str(tmp / "q.zarr"), "--index",
                 str(ix), "-n", "5", "--n-probe", "all", "-o", str(out)]) == 0
    ref_i, _ = exact_kneighbors(queries, emb, 5)
    np.testing.assert_array_equal(read_array(out, "indices").compute(), ref_i)


def test_query_errors(stores, capsys, rng):
    tmp, emb, _ = stores
    ix = tmp / "ix.zarr"
    assert main(["index", "build", str(tmp / "emb.zarr"), "-o", str(ix)]) == 0
    other = emb.copy()
    other[0, 0] += 1
    write_array(other, tmp / "other.zarr")
    capsys.readouterr()
    assert main(["query", str(tmp / "other.zarr"), "--rows", "0:3", "--index", str(ix)]) == 2
    assert "different embedding" in capsys.readouterr().err
    write_array(rng.normal(size=(4, 3)), tmp / "bad_q.zarr")
    assert main(["query", str(tmp / "emb.zarr"), "--queries", str(tmp / "bad_q.zarr")]) == 2
    assert "features" in capsys.readouterr().err
    assert main(["query", str(tmp / "emb.zarr"), "--rows", "0:3", "-n", "3000"]) == 2
    assert "at most" in capsys.readouterr().err
    assert main(["query", str(tmp / "emb.zarr"), "--rows", "10:5"]) == 2
    assert "START < STOP" in capsys.readouterr().err
    assert main(["query", str(tmp / "missing.zarr"), "--rows", "0:3"]) == 2
    assert "no Zarr store" in capsys.readouterr().err
    assert main(["query", str(tmp / "emb.zarr"), "--rows", "0:3", "--index",
                 str(tmp / "q.zarr")]) == 2
    assert "not a veob_dask index" in capsys.readouterr().err
