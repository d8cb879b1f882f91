"""veob_dask.report: pages for one-component, saved-pipeline and sentence models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from veob_dask.errors import StoreExistsError
from veob_dask.io.ingest import ingest
from veob_dask.persistence import save
from veob_dask.report import build_report
from veob_dask.spectral import SpectralTransform2D
from veob_dask.svd import SVDEmbedding

matplotlib = pytest.importorskip("matplotlib")


def test_one_component_model_has_no_map(low_rank, tmp_path: Path) -> None:
    x = np.abs(low_rank) + 50.0  # one dominant direction: k = 1 keeps 90 % of the energy
    ingest(x, tmp_path / "d.zarr", chunk_rows=500)
    model = SVDEmbedding(n_components=0.9).fit(x)
    assert model.n_components_ == 1
    rep = build_report(model, store=tmp_path / "d.zarr")
    assert "map" not in rep.figures and any("one component" in n for n in rep.notes)


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
