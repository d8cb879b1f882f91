"""Write version-1 artifacts with the previous release, for ``test_format_v1.py``.

Run with the previous release (commit 37a0aa9) first on the path, then pack the folder::

    PYTHONPATH=<old checkout> python make_v1_stores.py /tmp/v1
    tar -czf v1_stores.tar.gz -C /tmp/v1 .
"""
import shutil
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.pipeline import Pipeline
from veob_dask.text.ragged import write_ragged

from veob_dask import SpectralTransform2D, SVDEmbedding
from veob_dask.cli import main
from veob_dask.index import CellIndex
from veob_dask.io import read_array, save
from veob_dask.io.ingest import ingest
from veob_dask.io.sparse import write_sparse
from veob_dask.text.context import build_context
from veob_dask.text.corpus import build_corpus
from veob_dask.text.sentences import build_sentences
from veob_dask.text.wordvectors import WordVectors

out = Path(sys.argv[1]); shutil.rmtree(out, ignore_errors=True); out.mkdir(parents=True)
rng = np.random.default_rng(0)
x = rng.normal(size=(40, 16)).astype(np.float32)
ingest(x, out / "data.zarr", labels=np.arange(40) % 3, chunk_rows=16)
save(SVDEmbedding(3, center=True).fit(x), out / "model.zarr")
assert main(["transform", str(out / "model.zarr"), str(out / "data.zarr"), str(out / "emb.zarr"), "--scheduler", "sync"]) == 0
save(Pipeline([("spectral", SpectralTransform2D(basis="paper")), ("svd", SVDEmbedding(3))]).fit(x), out / "pipeline.zarr")
emb = read_array(out / "emb.zarr").compute()
CellIndex("tree", n_probe=2, min_samples=5).fit(emb).save(out / "index.zarr")
WordVectors(["cat", "dog", "bird"], rng.normal(size=(3, 2)), {"model": "test"}).save(out / "words.zarr")
write_ragged([[1, 2, 3], [], [4, 5]], out / "ragged.zarr", attrs={"what": "v1"})
write_sparse(sp.random(12, 9, density=0.3, random_state=1, format="csr"), out / "sparse.zarr", chunk_rows=5)
words = ["film", "movie", "plot", "good", "bad", "great", "music", "cast"]
rows = []
for i in range(12):
    s = " ".join(rng.choice(words, size=6)) + ". " + " ".join(rng.choice(words, size=5)) + "."
    rows.append(f"{'train' if i % 2 else 'test'}\t{'pos' if i % 3 else 'neg'}\t{i}\t7\tThe {s}\n")
(out.parent / "r.tsv").write_text("split\tlabel\tid\trating\ttext\n" + "".join(rows))
corpus = build_corpus(out.parent / "r.tsv", out / "corpus.zarr")
wv, _ = build_context(corpus, n_components=4, solver="gram")
build_sentences(corpus, wv, n_components=3, chunk_sequences=10, out=out / "sentences.zarr")
