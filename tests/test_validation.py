"""Parameter parsing shared by every estimator (``veob_dask._validation``)."""

from __future__ import annotations

import numpy as np
import pytest

from veob_dask._validation import parse_n_components, parse_seed
from veob_dask.errors import InvalidParameterError


@pytest.mark.parametrize("value, n_features, expected, error", [
    (5, 10, 5, None),
    (np.int64(10), 10, 10, None),
    (0.9, 10, 0.9, None),
    (1.0, 10, 1.0, None),
    (0, 10, None, r"in \[1, n_features=10\]"),
    (11, 10, None, r"in \[1, n_features=10\]"),
    (1.5, 10, None, r"energy fraction and must be in \(0, 1\]"),
    (float("nan"), 10, None, r"\(0, 1\]"),
    (True, 10, None, "an int or a float"),
    ("5", 10, None, "got str"),
], ids=["int", "numpy-int", "fraction", "all-energy", "zero", "too-many", "fraction>1", "nan",
        "bool", "str"])
def test_parse_n_components(value, n_features, expected, error):
    if error:
        with pytest.raises(InvalidParameterError, match=error):
            parse_n_components(value, n_features)
    else:
        got = parse_n_components(value, n_features)
        assert got == expected and type(got) is type(expected)


def test_parse_seed():
    assert parse_seed(7) == 7
    assert parse_seed(np.random.default_rng(3)) == parse_seed(np.random.default_rng(3))
    assert 0 <= parse_seed(None) < 2**31
    with pytest.raises(InvalidParameterError, match=">= 0"):
        parse_seed(-1)
