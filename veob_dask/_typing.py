"""Type aliases shared across veob_dask."""

from __future__ import annotations

from typing import Literal, TypeAlias

import dask.array as da
import numpy as np
import numpy.typing as npt

DaskArray: TypeAlias = da.Array
ArrayLike: TypeAlias = npt.ArrayLike | da.Array
RandomStateLike: TypeAlias = int | np.random.Generator | None
SVDSolver: TypeAlias = Literal["auto", "gram", "tsqr", "randomized"]
CosineBasis: TypeAlias = Literal["dct2", "paper"]

__all__ = ["ArrayLike", "CosineBasis", "DaskArray", "RandomStateLike", "SVDSolver"]
