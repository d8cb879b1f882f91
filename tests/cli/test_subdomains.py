"""``veob subdomains``: fit, list, index and query in-process on temporary stores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from veob_dask import load
from veob_dask.cli import main
from veob_dask.index import SubdomainIndex
from veob_dask.io import read_array


@pytest.fixture
def stores(tmp_path, rng):
    m, d, k = 4, 10, 3
    keys = rng.integers(0, m, size=400)
    bases = [np.linalg.qr(rng.normal(size=(d, k)))[0].T for _ in range(m)]
    x = np.stack([rng.normal(size=k) @ bases[c] for c in keys]) + 0.01 * rng.normal(size=(400, d))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "keys.npy", keys)
    (tmp_path / "names.txt").write_text("\n".join(["abcd"[c] for c in keys]) + "\n")
    (tmp_path / "meta.json").write_text(json.dumps(
        {"0": {"lang": "en", "year": 2008}, "1": {"lang": "fr", "year": 2012},
         "2": {"lang": "en", "year": 2015}, "3": {"lang": "de", "year": 2019}}))
    (tmp_path / "meta.csv").write_text("key,lang,year\na,en,2008\nb,fr,2012\nc,en,2015\n")
    assert main(["ingest", str(tmp_path / "x.npy"), "-o", str(tmp_path / "d.zarr"), "--labels",
                 str(tmp_path / "keys.npy"), "--chunk-rows", "100"]) == 0
    np.save(tmp_path / "q.npy", x[:12])
    assert main(["ingest", str(tmp_path / "q.npy"), "-o", str(tmp_path / "q.zarr")]) == 0
    return tmp_path, x, keys


def _json(capsys):
    return json.loads(capsys.readouterr().out)  # --json: one JSON document, nothing else


def test_round_trip_fit_list_index_query(stores, capsys):
    t, x, keys = stores
    d, m, i, q = (str(t / n) for n in ("d.zarr", "m.zarr", "i.zarr", "q.zarr"))
    assert main(["subdomains", "fit", d, "-o", m, "--domains", "y", "--metadata",
                 str(t / "meta.json"), "-k", "3", "--json"]) == 0
    fit = _json(capsys)
    assert (fit["n_domains"], fit["n_components"], fit["solver"], fit["passes"]) == (4, 3, "gram", 1)
    model = load(m)
    np.testing.assert_array_equal(model.domains_, [0, 1, 2, 3])

    assert main(["subdomains", "list", m, "--where", "lang=en", "--json"]) == 0
    listed = _json(capsys)
    assert [r["key"] for r in listed["domains"]] == [0, 2]
    assert listed["domains"][1]["year"] == 2015 and listed["domains"][0]["rank"] == 3
    assert main(["subdomains", "list", m]) == 0
    assert "lang" in capsys.readouterr().out

    assert main(["subdomains", "index", m, d, "-o", i, "--domains", "y", "--json"]) == 0
    assert _json(capsys)["n_rows"] == 400
    assert main(["subdomains", "query", i, "--queries", q, "--where", "lang=en",
                 "--where", "year>=2010", "-n", "4", "--json"]) == 0
    res = _json(capsys)
    assert {v for row in res["domains"] for v in row} == {2}
    ref = SubdomainIndex("exact").fit(model, x, keys).search(x[:12], 4, where=["lang=en",
                                                                              "year>=2010"])
    np.testing.assert_array_equal(res["indices"], ref.indices)
    np.testing.assert_allclose(res["sq_distances"], ref.sq_distances)

    out = str(t / "nn.zarr")
    assert main(["subdomains", "query", i, "--queries", q, "--routes", "2", "-n", "3", "-o",
                 out]) == 0
    text = capsys.readouterr().out
    assert text.startswith("query 0: routes ") and "query 9" in text
    np.testing.assert_array_equal(read_array(out, "domains").compute(),
                                  keys[read_array(out, "indices").compute()])
    assert main(["subdomains", "query", m, "--queries", q, "--routes", "2", "--json"]) == 0
    routed = _json(capsys)
    want, shares = model.route(x[:12], 2)
    np.testing.assert_array_equal(routed["routes"], want)
    np.testing.assert_allclose(routed["shares"], shares, atol=1e-6)
    np.testing.assert_array_equal(np.array(routed["routes"])[:, 0], keys[:12])


def test_text_keys_csv_metadata_and_errors(stores, capsys):
    t, _, _ = stores
    d, m = str(t / "d.zarr"), str(t / "m.zarr")
    assert main(["subdomains", "fit", d, "-o", m, "--domains", str(t / "names.txt"),
                 "--metadata",
                 str(t / "meta.csv"), "-k", "2", "--solver", "incremental", "--json"]) == 0
    assert _json(capsys)["solver"] == "incremental"
    assert main(["subdomains", "list", m, "--where", "year<2013", "--json"]) == 0
    assert [r["key"] for r in _json(capsys)["domains"]] == ["a", "b"]
    # a model is not an index; keys that are neither an array nor a file; unmatched filters
    assert main(["subdomains", "query", m, "--queries", str(t / "q.zarr"), "-o",
                 str(t / "nn.zarr")]) == 2
    assert "need an index store" in capsys.readouterr().err
    assert main(["subdomains", "fit", d, "-o", str(t / "m2.zarr"), "--domains", "nope"]) == 2
    assert "must name an array" in capsys.readouterr().err
    assert main(["subdomains", "query", m, "--queries", str(t / "q.zarr"), "--where",
                 "lang=it"]) == 2
    assert "no subdomain matches" in capsys.readouterr().err
    assert main(["subdomains", "fit", d, "-o", m, "--domains", "y"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # keys ingested with the data: veob ingest --domains, then --domains domains
    assert main(["ingest", str(t / "x.npy"), "-o", str(t / "k.zarr"), "--domains",
                 str(t / "names.txt")]) == 0
    assert main(["subdomains", "fit", str(t / "k.zarr"), "-o", str(t / "mk.zarr"), "--domains",
                 "domains", "-k", "2", "--solver", "incremental", "--json"]) == 0
    capsys.readouterr()
    np.testing.assert_allclose(load(t / "mk.zarr").components_, load(m).components_)
