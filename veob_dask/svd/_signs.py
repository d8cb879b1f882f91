"""The one sign convention for singular vectors, used after every solver and every merge.

Singular vectors are defined up to sign. veob_dask flips each right singular vector (a row of
``components``) so that its entry of largest absolute value is positive; ties go to the first such
entry. This makes results deterministic across solvers, chunkings and merge orders (the same
rule as scikit-learn's ``svd_flip(u_based_decision=False)``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["flip_signs"]


def flip_signs(components: np.ndarray) -> np.ndarray:
    """Return ``components`` (k, n_features) with each row's largest-|value| entry positive."""
    if components.size == 0:
        return components
    idx = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), idx])
    signs[signs == 0] = 1
    return components * signs[:, None]
