"""Datasets: scikit-learn's digits, MNIST / Fashion-MNIST IDX files, synthetic benchmark matrices.

:class:`SyntheticMatrix` (from :mod:`veob_dask.synthetic`) is the benchmark source of any size
with an exact closed-form SVD; :func:`make_low_rank` is the smaller noisy one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import StoreNotFoundError
from .synthetic import SyntheticMatrix

__all__ = ["DEFAULT_FASHION_MNIST", "SyntheticMatrix", "idx_files", "load_digits_split",
           "make_low_rank"]

#: Where Debian's ``dataset-fashion-mnist`` package puts the four IDX files.
DEFAULT_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

_IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_files(directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Locate the four standard MNIST-format IDX files (``.gz`` or not) in ``directory``.

    Raises
    ------
    StoreNotFoundError
        Naming every missing file and how to get Fashion-MNIST on Debian.
    """
    d = Path(directory)
    found: dict[str, Path] = {}
    missing = []
    for key, stem in _IDX_NAMES.items():
        for cand in (d / stem, d / f"{stem}.gz", d / stem.replace("-idx", ".idx")):
            if cand.exists():
                found[key] = cand
                break
        else:
            missing.append(f"{stem}[.gz]")
    if missing:
        raise StoreNotFoundError(
            f"{str(d)!r} lacks the IDX file(s) {', '.join(missing)}. Pass --path to a directory "
            "holding the four MNIST-format files; for Fashion-MNIST on Debian run "
            "`apt-get install dataset-fashion-mnist`."
        )
    return found


def load_digits_split(test_size: float = 0.25, seed: int = 0) -> tuple[np.ndarray, ...]:
    """scikit-learn's bundled 8x8 digits as (X_train, y_train, X_test, y_test) image stacks."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        digits.images.astype(np.float32), digits.target.astype(np.uint8), test_size=test_size,
        random_state=seed, stratify=digits.target)
    return x_tr, y_tr, x_te, y_te


def make_low_rank(n_samples: int, n_features: int, *, decay: float = 0.93, scale: float = 3000.0,
                  noise: float = 0.5, dtype: str = "float32", seed: int = 0,
                  start: int = 0, stop: int | None = None) -> np.ndarray:
    """Rows ``start:stop`` of a matrix with spectrum ``scale * decay**i`` plus Gaussian noise.

    The same (``n_samples``, ``n_features``, ``seed``) always give the same matrix, and any row
    range can be generated on its own, so benchmarks can write huge instances chunk by chunk.
    The spectrum is the one PEERS.md §1 used (3000·0.93^i for the top 50).
    """
    stop = n_samples if stop is None else stop
    rank = min(50, n_features)
    basis_rng = np.random.default_rng(seed)
    v, _ = np.linalg.qr(basis_rng.normal(size=(n_features, rank)))
    s = scale * decay ** np.arange(rank)
    rows = np.random.default_rng([seed, start]).normal(size=(stop - start, rank))
    u = rows / np.sqrt(n_samples)
    x = (u * s) @ v.T + noise * np.random.default_rng([seed, start, 1]).normal(
        size=(stop - start, n_features))
    return x.astype(dtype)
