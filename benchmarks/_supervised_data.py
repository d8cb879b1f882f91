"""Fashion-MNIST features shared by ``bench_supervised.py`` and ``cv_supervised.py``.

Classification features (the issue's): each 28 x 28 image (pixels / 255) goes through the
orthonormal 2-D DCT-II, then the uncentred ``k``-d SVD embedding fitted on the 60,000 training
images. Image completion: the same for the top half (14 x 28) of each image; the target is the
bottom half's 392 pixels.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from veob_dask.datasets import DEFAULT_FASHION_MNIST, idx_files
from veob_dask.io.idx import read_idx
from veob_dask.spectral import spectral_transform_2d
from veob_dask.svd import SVDEmbedding

__all__ = ["completion_features", "dct_images", "fashion_available", "fashion_features",
           "load_images"]


def fashion_available(path: str = DEFAULT_FASHION_MNIST) -> bool:
    return Path(path, "train-images-idx3-ubyte.gz").exists()


def load_images(path: str = DEFAULT_FASHION_MNIST) -> dict[str, np.ndarray]:
    """The four IDX files: images as float32 in [0, 1], labels as int64."""
    files = idx_files(path)
    return {"xtr": read_idx(files["train_images"]).astype(np.float32) / 255,
            "ytr": read_idx(files["train_labels"]).astype(np.int64),
            "xte": read_idx(files["test_images"]).astype(np.float32) / 255,
            "yte": read_idx(files["test_labels"]).astype(np.int64)}


def dct_images(images: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D DCT-II of every image, flattened (float32)."""
    x = da.from_array(images, chunks=(10000, *images.shape[1:]))
    return np.asarray(spectral_transform_2d(x).compute())


def _embed(train: np.ndarray, test: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, float]:
    """2-D DCT-II, then the uncentred k-d SVD fitted on ``train``; (train, test, seconds)."""
    t0 = time.perf_counter()
    dtr, dte = dct_images(train), dct_images(test)
    emb = SVDEmbedding(k).fit(dtr)
    out = (np.asarray(emb.transform(dtr)), np.asarray(emb.transform(dte)))
    return out[0], out[1], time.perf_counter() - t0


def fashion_features(k: int, images: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """``k``-d classification features of the 60,000 training and 10,000 test images."""
    img = images or load_images()
    ftr, fte, sec = _embed(img["xtr"], img["xte"], k)
    return {"xtr": ftr, "ytr": img["ytr"], "xte": fte, "yte": img["yte"], "seconds": sec}


def completion_features(k: int, images: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Top-half ``k``-d features and bottom-half pixel targets (n, 392)."""
    img = images or load_images()
    ftr, fte, sec = _embed(img["xtr"][:, :14], img["xte"][:, :14], k)
    return {"xtr": ftr, "ytr": img["xtr"][:, 14:].reshape(-1, 14 * 28).astype(np.float64),
            "xte": fte, "yte": img["xte"][:, 14:].reshape(-1, 14 * 28).astype(np.float64),
            "seconds": sec}
