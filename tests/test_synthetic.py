"""The synthetic benchmark matrix: same rows under any chunking, exact closed forms, laziness."""

from __future__ import annotations

import subprocess
import sys

import dask
import numpy as np
import pytest

from veob_dask.datasets import SyntheticMatrix
from veob_dask.errors import InvalidParameterError

# A last block cut short (100,003 = 24 x 4096 + 1,699) and a last key group cut short too.
SMALL = {"n_rows": 100_003, "n_features": 12, "seed": 3}


@pytest.fixture(scope="module")
def small() -> tuple[SyntheticMatrix, np.ndarray]:
    m = SyntheticMatrix(**SMALL, n_keys=9)
    return m, m.to_dask(100_003).compute(scheduler="sync")


@pytest.mark.parametrize("chunk_rows", [1, 4096, 5_000, 33_333, 200_000], ids=str)
def test_any_chunking_gives_the_same_rows(small, chunk_rows):
    m, full = small
    if chunk_rows == 1:  # one-row chunks: check a window only (100k tasks would be slow)
        x = m.to_dask(1)[4090:4100].compute(scheduler="sync")
        np.testing.assert_array_equal(x, full[4090:4100])
        return
    x = m.to_dask(chunk_rows)
    assert x.chunks[0][0] == min(chunk_rows, m.n_rows) and sum(x.chunks[0]) == m.n_rows
    np.testing.assert_array_equal(x.compute(scheduler="sync"), full)
    keys = m.keys(chunk_rows)
    assert keys.chunks == (x.chunks[0],)
    np.testing.assert_array_equal(keys.compute(scheduler="sync"), m.row_keys(0, m.n_rows))


@pytest.mark.parametrize(("start", "stop"), [(0, 1), (4095, 4097), (511, 1537), (99_000, 100_003),
                                             (100_000, 200_000)])
def test_rows_and_keys_of_any_range(small, start, stop):
    m, full = small
    np.testing.assert_array_equal(m.rows(start, stop), full[start:stop])
    keys = m.row_keys(0, m.n_rows)
    np.testing.assert_array_equal(m.row_keys(start, stop), keys[start:stop])


def test_keys_are_constant_on_groups_and_in_range(small):
    m, _ = small
    keys = m.row_keys(0, m.n_rows)
    assert keys.dtype == np.int32 and keys.min() >= 0 and keys.max() < m.n_keys
    groups = keys[: (m.n_rows // m.group_rows) * m.group_rows].reshape(-1, m.group_rows)
    assert np.all(groups == groups[:, :1])
    assert len(np.unique(groups[:, 0])) == m.n_keys  # 195 groups hit all 9 keys


def test_exact_gram_matches_numpy(small):
    m, full = small
    x = full.astype(np.float64)
    ref = x.T @ x
    np.testing.assert_allclose(m.gram(), ref, rtol=1e-13, atol=1e-13 * np.abs(ref).max())
    s, v = m.exact_svd()
    s_ref = np.linalg.svd(x, compute_uv=False)
    np.testing.assert_allclose(s, s_ref, rtol=1e-12)
    np.testing.assert_allclose(v @ v.T, np.eye(m.n_features), atol=1e-12)
    # v's rows are right singular vectors: ||x v_i|| = s_i
    np.testing.assert_allclose(np.linalg.norm(x @ v.T, axis=0), s, rtol=1e-12)


def test_float32_values_are_exact():
    """The float32 matrix holds exactly the float64 one: generation rounds nothing."""
    m32 = SyntheticMatrix(20_000, 40, seed=5)
    m64 = SyntheticMatrix(20_000, 40, seed=5, dtype="float64")
    x32, x64 = m32.rows(0, 20_000), m64.rows(0, 20_000)
    assert x32.dtype == np.float32 and x64.dtype == np.float64
    np.testing.assert_array_equal(x32.astype(np.float64), x64)
    np.testing.assert_array_equal(m32.gram(), m64.gram())


def test_key_grams_match_numpy(small):
    m, full = small
    keys = m.row_keys(0, m.n_rows)
    present, grams, counts = m.key_grams()
    np.testing.assert_array_equal(present, np.unique(keys))
    x = full.astype(np.float64)
    for key, g, n in zip(present, grams, counts):
        xs = x[keys == key]
        assert n == xs.shape[0]
        np.testing.assert_allclose(g, xs.T @ xs, rtol=1e-13, atol=1e-13 * np.abs(g).max())
    np.testing.assert_allclose(grams.sum(axis=0), m.gram(), rtol=1e-12)


def test_sandwich_equals_the_explicit_product():
    m = SyntheticMatrix(10, 9, variants=3)
    c = np.random.default_rng(0).normal(size=(2, 9, 9))
    for v in range(2 * m.variants**2):
        mv = m._mixing(v)
        np.testing.assert_allclose(m._sandwich(v, c), mv.T @ c @ mv, rtol=1e-13, atol=1e-12)


def test_spectrum_shape_is_controlled():
    """A gap in the requested spectrum is a gap in the exact one (the floor sits far below)."""
    spec = np.r_[np.ones(3), np.full(13, 0.01)]
    s, _ = SyntheticMatrix(50_000, 16, spectrum=tuple(spec)).exact_svd()
    assert s[2] / s[3] > 10
    assert s[0] / s[2] < 1.2


def test_construction_and_graph_are_lazy():
    def forbid(*args, **kwargs):
        raise AssertionError("computed")

    with dask.config.set(scheduler=forbid):
        m = SyntheticMatrix(10**10, 64, n_keys=1000)
        x = m.to_dask(1_000_000)
        k = m.keys(1_000_000)
        y = (x.T @ x).sum()
        assert x.shape == (10**10, 64) and x.numblocks == (10_000, 1)
        assert k.shape == (10**10,) and y.shape == ()
    # deterministic graph names: the same parameters give the same keys
    assert m.to_dask(1_000_000).name == x.name
    assert SyntheticMatrix(10**10, 64, seed=1).to_dask(1_000_000).name != x.name


@pytest.mark.slow
def test_same_rows_in_another_process():
    """A fresh process (another worker) builds the same base block and rows."""
    m = SyntheticMatrix(50_000, 24, seed=11)
    code = ("import numpy as np; from veob_dask.datasets import SyntheticMatrix as S; "
            "x = S(50_000, 24, seed=11).rows(30_000, 50_000); "
            "import hashlib; print(hashlib.sha256(x.tobytes()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import hashlib

    assert out.stdout.strip() == hashlib.sha256(m.rows(30_000, 50_000).tobytes()).hexdigest()


def test_closed_form_at_a_billion_rows_agrees_with_its_last_block():
    """Gram(n) - Gram(n - 2 blocks) is the Gram of the generated last rows, at n = 10**9 + 5."""
    n = 10**9 + 5
    m, head = SyntheticMatrix(n, 8), SyntheticMatrix(n - 2 * 4096, 8)
    tail = m.rows(n - 2 * 4096, n).astype(np.float64)
    diff = m.gram() - head.gram()
    # the difference of two ~1e10-sized sums: float64 rounding of the sums, relative 1e-16
    np.testing.assert_allclose(diff, tail.T @ tail, atol=1e-12 * np.abs(m.gram()).max())


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_rows": 0}, "n_rows must be an int >= 1"),
    ({"n_features": 2.5}, "n_features must be an int"),
    ({"n_keys": -1}, "n_keys must be an int >= 0"),
    ({"block_rows": 1000, "group_rows": 300}, "must divide block_rows"),
    ({"block_rows": 16384}, "block_rows must be <= 8192"),
    ({"dtype": "int8"}, "dtype must be"),
    ({"decay": 0.0}, "decay must be in"),
    ({"spectrum": (1.0, 2.0)}, "spectrum must hold 4"),
    ({"spectrum": (0.0,) * 4}, "not all zero"),
    ({"variants": 300}, "variants must be <= 256"),
], ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_invalid_parameters(kwargs, match):
    params = {"n_rows": 10, "n_features": 4, **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        SyntheticMatrix(**params)


def test_keys_need_n_keys():
    m = SyntheticMatrix(10, 4)
    with pytest.raises(InvalidParameterError, match="n_keys=0"):
        m.keys(5)
    with pytest.raises(InvalidParameterError, match="chunk_rows must be"):
        m.to_dask(0)
