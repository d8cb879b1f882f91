"""veob_dask.plot: figures mark k and draw the pass's numbers."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from veob_dask import plot
from veob_dask.diagnostics import (
    sample_store,
)
from veob_dask.svd import SVDEmbedding

matplotlib = pytest.importorskip("matplotlib")


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
