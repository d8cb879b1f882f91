"""`veob report`, veob_dask.report, veob_dask.plot and veob_dask.diagnostics (no browser here)."""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.pipeline import Pipeline

from veob_dask import plot
from veob_dask.cli import main
from veob_dask.diagnostics import (
    describe,
    embedding_sample,
    neighbor_table,
    query_examples,
    reconstruct,
    sample_store,
)
from veob_dask.errors import DimensionMismatchError, InvalidParameterError, StoreExistsError
from veob_dask.io import read_array
from veob_dask.io.ingest import ingest
from veob_dask.io.store import ZarrRowSource
from veob_dask.persistence import save
from veob_dask.report import GENERATOR, build_report
from veob_dask.spectral import SpectralTransform2D
from veob_dask.svd import SVDEmbedding
from veob_dask.text.wordvectors import WordVectors

matplotlib = pytest.importorskip("matplotlib")


def _residuals(x: np.ndarray, v: np.ndarray, mean: np.ndarray | None) -> np.ndarray:
    """Exact ‖X − X_j‖² / ‖X‖² for j = 0..k, by rebuilding X from j components."""
    xc = x - (0 if mean is None else mean)
    total = float(np.sum(xc**2))
    return np.array([np.sum((xc - xc @ v[:j].T @ v[:j]) ** 2) / total
                     for j in range(v.shape[0] + 1)])


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("chunks", [60, 250, 1200])
def test_one_pass_gives_the_exact_error_curve_and_sample(low_rank, center, chunks):
    labels = np.arange(low_rank.shape[0]) % 7
    model = SVDEmbedding(n_components=8, center=center).fit(low_rank)
    s = sample_store(da.from_array(low_rank, chunks=(chunks, 40)), model,
                     labels=da.from_array(labels, chunks=100), n_sample=300, n_keep=5,
                     random_state=3)
    np.testing.assert_allclose(s.relative_error(),
                               _residuals(low_rank, model.components_, model.mean_),
                               rtol=1e-9, atol=1e-12)
    assert s.rows.size == 300 and np.all(np.diff(s.rows) > 0)
    np.testing.assert_allclose(s.embedding, model.transform(low_rank[s.rows]), atol=1e-9)
    np.testing.assert_array_equal(s.labels, labels[s.rows])
    assert set(s.data_rows) <= set(s.rows) and s.data_rows.size == 5
    np.testing.assert_array_equal(s.data, low_rank[s.data_rows])
    assert (s.n_rows, s.n_chunks) == (1200, -(-1200 // chunks))


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize(("basis", "keep"), [("dct2", None), ("paper", None), ("dct2", (3, 4))])
def test_pipeline_pass_equals_the_curve_in_feature_space(basis, keep, center):
    # dct2 with every harmonic is orthonormal: the pass projects raw rows on M V^T instead of
    # transforming the store; the paper's basis and a cropped DCT go through the transform.
    imgs = np.random.default_rng(8).random((300, 5, 6)) + np.linspace(0, 1, 30).reshape(5, 6)
    pipe = Pipeline([("spectral", SpectralTransform2D(basis=basis, keep=keep)),
                     ("svd", SVDEmbedding(n_components=5, center=center))]).fit(imgs)
    s = sample_store(da.from_array(imgs, chunks=(70, 5, 6)), pipe, n_sample=40)
    feats = pipe[0].transform(imgs)
    svd = pipe[-1]
    np.testing.assert_allclose(s.relative_error(), _residuals(feats, svd.components_, svd.mean_),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s.embedding, pipe.transform(imgs[s.rows]), atol=1e-9)


def test_the_sample_is_seeded_and_the_energy_matches_the_spectrum(low_rank):
    model = SVDEmbedding(n_components=5).fit(low_rank)
    x = da.from_array(low_rank, chunks=(200, 40))
    a = sample_store(x, model, n_sample=50, random_state=1)
    b = sample_store(x, model, n_sample=50, random_state=1)
    c = sample_store(x, model, n_sample=50, random_state=2)
    np.testing.assert_array_equal(a.rows, b.rows)
    assert not np.array_equal(a.rows, c.rows)
    # on the training data the energy along v_i is sigma_i^2
    np.testing.assert_allclose(a.component_energy, model.singular_values_**2, rtol=1e-9)


def test_sparse_blocks_give_the_dense_result(low_rank):
    x = np.where(np.abs(low_rank) > 2.0, low_rank, 0.0)
    model = SVDEmbedding(n_components=4, center=True).fit(x)
    dense = sample_store(da.from_array(x, chunks=(300, 40)), model, n_sample=40)
    blocks = da.from_array(x, chunks=(300, 40)).map_blocks(sp.csr_matrix,
                                                           meta=sp.csr_matrix((0, 40)))
    sparse = sample_store(blocks, model, n_sample=40)
    np.testing.assert_allclose(sparse.relative_error(), dense.relative_error(), atol=1e-12)
    np.testing.assert_allclose(sparse.embedding, dense.embedding, atol=1e-9)
    assert sparse.data is None  # raw rows are kept for dense (image) stores only


def test_the_pass_reads_each_stored_chunk_once(tmp_path, monkeypatch):
    imgs = np.random.default_rng(0).random((130, 5, 5)).astype(np.float32)
    ingest(imgs, tmp_path / "d.zarr", labels=np.arange(130) % 3, chunk_rows=20)
    x = read_array(tmp_path / "d.zarr")
    pipe = Pipeline([("spectral", SpectralTransform2D()),
                     ("svd", SVDEmbedding(n_components=6))]).fit(x)
    reads: list[tuple[int, int]] = []
    original = ZarrRowSource.__getitem__

    def counting(self, key):
        if self.name == "X":
            rows = key[0] if isinstance(key, tuple) else key
            reads.append((rows.start, rows.stop))
        return original(self, key)

    monkeypatch.setattr(ZarrRowSource, "__getitem__", counting)
    s = sample_store(x, pipe, labels=read_array(tmp_path / "d.zarr", "y"), n_sample=30)
    assert sorted(reads) == [(lo, min(lo + 20, 130)) for lo in range(0, 130, 20)]
    assert s.data.shape == (16, 5, 5)
    np.testing.assert_array_equal(s.labels, s.rows % 3)


def test_store_with_other_features_is_refused(low_rank):
    model = SVDEmbedding(n_components=3).fit(low_rank)
    with pytest.raises(DimensionMismatchError, match="fitted on 40"):
        sample_store(da.ones((10, 12), chunks=5), model)
    with pytest.raises(DimensionMismatchError, match="label array has 3 entries"):
        sample_store(da.from_array(low_rank), model, labels=da.ones(3))


def test_reconstruct_through_the_spectral_step_is_exact_with_every_component():
    imgs = np.random.default_rng(1).random((30, 4, 4))
    pipe = Pipeline([("spectral", SpectralTransform2D()),
                     ("svd", SVDEmbedding(n_components=16))]).fit(imgs)
    np.testing.assert_allclose(reconstruct(pipe, imgs[:3], 16), imgs[:3], atol=1e-9)
    errors = [np.sum((reconstruct(pipe, imgs, j) - imgs) ** 2) for j in (1, 4, 8, 16)]
    assert errors == sorted(errors, reverse=True)


def test_describe_states_the_rule_that_chose_k(low_rank):
    frac = describe(SVDEmbedding(n_components=0.95).fit(low_rank))
    cum = frac.cumulative_energy()
    assert frac.energy_threshold == 0.95 and "reaches 95.0%" in frac.rule
    assert cum[frac.n_components - 1] >= 0.95 > cum[frac.n_components - 2]
    assert frac.facts["solver"] == "gram" and "Gram" in frac.facts["why this solver"]
    fixed = describe(SVDEmbedding(n_components=7).fit(low_rank))
    assert fixed.rule == "n_components=7, fixed by the caller" and fixed.energy_threshold is None
    assert fixed.spectrum.size == 40  # the exact route knows every singular value
    np.testing.assert_allclose(fixed.total_energy, np.sum(low_rank**2), rtol=1e-9)
    pipe = Pipeline([("spectral", SpectralTransform2D()), ("svd", SVDEmbedding(n_components=3))])
    pipe.fit(np.random.default_rng(3).random((8, 4, 6)))
    assert describe(pipe).image_shape == (4, 6)
    assert describe(pipe).name == "SpectralTransform2D(dct2) → SVDEmbedding"
    with pytest.raises(InvalidParameterError, match="not fitted"):
        describe(SVDEmbedding())


def test_word_model_tables_and_sample():
    rng = np.random.default_rng(0)
    words = ["bus", "buses", "omnibus", "happiness", "felicity", "joy"] + \
        [f"word{i}" for i in range(40)]
    wv = WordVectors(words, rng.normal(size=(len(words), 5)),
                     {"model": "dictionary", "singular_values": [5.0, 4.0, 3.0, 2.0, 1.0]})
    assert query_examples(wv, n=2) == ["bus", "happiness"]  # the paper's §6.4 queries
    table = neighbor_table(wv, ["bus", "nope"], k=3)
    assert table[0]["rows"][0][0] == "bus" and len(table[0]["rows"]) == 3
    assert table[1]["rows"] == [] and "not in the vocabulary" in table[1]["note"]
    coords, names = embedding_sample(wv, 10, random_state=0)
    assert coords.shape == (10, 5) and all(wv.vector(n)[0] == c for n, c in zip(names,
                                                                                 coords[:, 0]))
    s = describe(wv)
    assert (s.kind, s.n_components) == ("words", 5) and "set when the model was built" in s.rule
    np.testing.assert_allclose(s.cumulative_energy()[-1], 1.0)


def test_figures_mark_k(low_rank):
    model = SVDEmbedding(n_components=6).fit(low_rank)
    fig = plot.spectrum(model)
    assert len(fig.axes) == 2
    vlines = [ln.get_xdata()[0] for ax in fig.axes for ln in ax.lines
              if len(set(ln.get_xdata())) == 1]
    assert 6 in vlines  # the cumulative-energy panel marks k itself
    s = sample_store(da.from_array(low_rank, chunks=300), model, n_sample=100)
    err = plot.reconstruction_error(model, s)
    curve = err.axes[0].lines[0]
    np.testing.assert_allclose(curve.get_ydata(), s.relative_error())
    assert len(plot.embedding_map(model, s, projection="none").axes) == 1


@pytest.fixture
def fitted(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    imgs = rng.random((90, 6, 6)).astype(np.float32)
    ingest(imgs, tmp_path / "d.zarr", labels=rng.integers(0, 3, 90), chunk_rows=40)
    assert main(["fit", str(tmp_path / "d.zarr"), str(tmp_path / "m.zarr"), "-k", "0.9",
                 "--spectral", "dct2"]) == 0
    return tmp_path


def test_cli_report_writes_one_self_contained_page(fitted: Path, capsys) -> None:
    out = fitted / "r.html"
    capsys.readouterr()
    assert main(["report", str(fitted / "m.zarr"), "--store", str(fitted / "d.zarr"),
                 "--labels", "y", "--out", str(out), "--map-rows", "60", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["figures"] == ["spectrum", "error", "map", "images", "components"]
    page = out.read_text()
    assert page.count("<img ") == 5 and page.count("src='data:image/png;base64,") == 5
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert f"content='{GENERATOR}'" in page
    data = json.loads(page.split("id='veob-report-data'>")[1].split("</script>")[0])
    assert data["rule"].startswith("smallest k whose cumulative energy reaches 90.0%")
    assert data["n_components"] > 2
    assert data["store"]["rows read"] == 90 and data["store"]["chunks read"] == 3
    assert data["relative_error"][0] == 1.0 and data["relative_error"] == sorted(
        data["relative_error"], reverse=True)
    # a second run replaces its own report
    assert main(["report", str(fitted / "m.zarr"), "--out", str(out)]) == 0
    assert out.read_text().count("<img ") == 2  # spectrum and components: no store this time


def test_one_component_model_has_no_map(low_rank, tmp_path: Path) -> None:
    x = np.abs(low_rank) + 50.0  # one dominant direction: k = 1 keeps 90 % of the energy
    ingest(x, tmp_path / "d.zarr", chunk_rows=500)
    model = SVDEmbedding(n_components=0.9).fit(x)
    assert model.n_components_ == 1
    rep = build_report(model, store=tmp_path / "d.zarr")
    assert "map" not in rep.figures and any("one component" in n for n in rep.notes)


def test_cli_report_errors(fitted: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    other = tmp_path / "notes.html"
    other.write_text("<p>mine</p>")
    assert main(["report", str(fitted / "m.zarr"), "--out", str(other)]) == 2
    assert "is not a veob report" in capsys.readouterr().err
    assert other.read_text() == "<p>mine</p>"
    assert main(["report", str(fitted / "m.zarr"), "--labels", "y", "--out",
                 str(tmp_path / "a.html")]) == 2
    assert "give the store too" in capsys.readouterr().err
    assert main(["report", str(fitted / "d.zarr"), "--out", str(tmp_path / "a.html")]) == 2
    assert "is a dataset store, not a model" in capsys.readouterr().err
    wv = tmp_path / "w.zarr"
    WordVectors(["a", "b"], np.eye(2), {"model": "dictionary"}).save(wv)
    assert main(["report", str(wv), "--store", str(fitted / "d.zarr"), "--out",
                 str(tmp_path / "a.html")]) == 2
    assert "carries its own embedding" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["report", str(fitted / "m.zarr"), "--out", str(tmp_path / "a.html")]) == 2
    assert "pip install 'veob_dask[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "a.html").exists()


def test_report_object_save_refuses_a_directory(tmp_path: Path, low_rank) -> None:
    rep = build_report(SVDEmbedding(n_components=3).fit(low_rank))
    assert list(rep.figures) == ["spectrum"] and rep.notes
    with pytest.raises(StoreExistsError, match="is a directory"):
        rep.save(tmp_path)
    path = tmp_path / "sub" / "r.html"
    assert rep.save(path) == path and not list(path.parent.glob(".r.html.tmp-*"))


def test_saved_pipeline_round_trip_report(tmp_path: Path) -> None:
    imgs = np.random.default_rng(2).random((60, 4, 4))
    pipe = Pipeline([("spectral", SpectralTransform2D(basis="paper")),
                     ("svd", SVDEmbedding(n_components=5))]).fit(imgs)
    save(pipe, tmp_path / "p.zarr")
    rep = build_report(tmp_path / "p.zarr")
    assert rep.summary.image_shape == (4, 4)
    assert list(rep.figures) == ["spectrum", "components"]


def test_sentence_model_report(tmp_path: Path) -> None:
    from veob_dask.text.context import build_context
    from veob_dask.text.corpus import build_corpus
    from veob_dask.text.sentences import SentenceModel, build_sentences

    rng = np.random.default_rng(0)
    vocab = ["film", "movie", "actor", "plot", "good", "bad", "long", "dark", "music", "cast"]
    rows = "".join(f"train\tpos\t{i}\t7\tThe {' '.join(rng.choice(vocab, 6))}. "
                   f"A {' '.join(rng.choice(vocab, 4))}.\n" for i in range(30))
    (tmp_path / "r.tsv").write_text("split\tlabel\tid\trating\ttext\n" + rows)
    corpus = build_corpus(tmp_path / "r.tsv", tmp_path / "c.zarr")
    words, _ = build_context(corpus, n_components=6, solver="gram")
    model, _ = build_sentences(corpus, words, n_components=8, chunk_sequences=20)
    model.save(tmp_path / "s.zarr")
    rep = build_report(tmp_path / "s.zarr", projection="none", n_neighbors=3)
    assert rep.summary.kind == "sentences" and rep.summary.n_components == 8
    assert list(rep.figures) == ["spectrum", "map"]
    (heading, tables), = rep.tables
    assert heading.startswith("Nearest sentences") and len(tables) == 3
    assert tables[0]["query"].startswith("i did like the lead actors")  # the paper's §6.5 query
    own = tables[-1]  # a sentence of the model: itself first, at distance 0
    assert own["rows"][0][0] == own["query"] and own["rows"][0][1] == pytest.approx(0, abs=1e-9)
    assert isinstance(SentenceModel.load(tmp_path / "s.zarr"), SentenceModel)
    assert "source</th>" in rep.to_html()  # sentences name their source file


def test_fit_records_the_input_store_and_the_report_shows_it(fitted: Path) -> None:
    from veob_dask.diagnostics import model_header

    recorded, saved = model_header(fitted / "m.zarr")
    assert recorded["store"] == str((fitted / "d.zarr").resolve())
    assert (recorded["shape"], recorded["chunks"]) == ([90, 6, 6], [40, 6, 6])
    assert recorded["source"] == "in-memory ndarray" and recorded["created"]
    assert recorded["writer"].startswith("veob_dask ") and recorded["format_version"] == 2
    rep = build_report(fitted / "m.zarr")
    assert rep.summary.provenance == recorded
    assert "Training input (recorded in the model)" in rep.to_html()
    assert saved["writer"] in rep.summary.facts["saved"]
