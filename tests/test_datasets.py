"""The real datasets the demo reads: IDX file discovery and the bundled digits split."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from veob_dask.datasets import idx_files, load_digits_split, make_low_rank
from veob_dask.errors import StoreNotFoundError


def test_idx_files_take_gzipped_or_plain_and_name_what_is_missing(tmp_path):
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        with gzip.open(tmp_path / f"{stem}.gz", "wb") as f:
            f.write(b"x")
    with pytest.raises(StoreNotFoundError, match=r"lacks the IDX file\(s\) t10k-labels-idx1"):
        idx_files(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"x")
    found = idx_files(tmp_path)
    assert found["test_labels"].name == "t10k-labels-idx1-ubyte"
    assert found["train_images"].name == "train-images-idx3-ubyte.gz"


def test_digits_split_is_stratified_and_seeded():
    x_tr, _, x_te, y_te = load_digits_split()
    assert x_tr.shape[1:] == (8, 8) and len(x_tr) + len(x_te) == 1797
    assert set(np.unique(y_te)) == set(range(10))
    np.testing.assert_array_equal(load_digits_split()[3], y_te)


def test_make_low_rank_rows_can_be_made_in_pieces():
    whole = make_low_rank(200, 30, seed=4)
    parts = [make_low_rank(200, 30, seed=4, start=a, stop=b) for a, b in ((0, 90), (90, 200))]
    np.testing.assert_array_equal(np.vstack(parts)[:90], whole[:90])
    s = np.linalg.svd(whole.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(s[:5], 3000 * 0.93 ** np.arange(5), rtol=0.15)  # the spectrum
