"""The test helpers themselves: the no-compute guard and the read-counting array."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

from veob_dask.testing import counting_array, forbid_compute


def test_forbid_compute_allows_graphs_and_refuses_computes():
    x = da.ones((10, 4), chunks=5)
    with forbid_compute():
        y = (x @ x.T).sum(axis=0)  # building is fine
        with pytest.raises(AssertionError, match="computed"):
            y.compute()
        with pytest.raises(AssertionError, match="computed"):
            dask.persist(y)
        assert float(y.compute(scheduler="sync")[0]) == 40.0  # an explicit scheduler computes


def test_counting_array_counts_each_chunk_read():
    data = np.arange(60.0).reshape(20, 3)
    x, reads = counting_array(data, 6)
    assert x.chunks == ((6, 6, 6, 2), (3,))
    np.testing.assert_array_equal(x.compute(), data)
    assert reads.counts.tolist() == [1, 1, 1, 1]
    x.sum().compute()
    x.mean(axis=0).compute()
    assert reads.counts.tolist() == [3, 3, 3, 3]
    x[:4].compute()  # a slice of the first chunk reads that chunk only
    assert reads.counts.tolist() == [4, 3, 3, 3]
    dask.compute(x.sum(), x.max())  # one graph: every chunk read once
    assert reads.counts.tolist() == [5, 4, 4, 4]
    x[np.array([0, 13])].compute()  # rows of chunks 0 and 2
    assert reads.counts.tolist() == [6, 4, 5, 4]
