"""What a saved spectral transform may contain, for the loader (see :mod:`veob_dask.io.serialize`)."""

from __future__ import annotations

from ..io.serialize import NONE, Check, EstimatorSpec, ScalarSpec, is_choice, is_int
from .basis import BASES
from .image import SpectralTransform2D
from .sequence import LONG_POLICIES, SequenceTransform

__all__ = ["SPECS"]


def _pair(low: int) -> Check:
    return Check(lambda v: isinstance(v, list) and len(v) == 2 and all(
        isinstance(x, int) and not isinstance(x, bool) and x >= low for x in v),
        f"a pair of ints >= {low}")


SPECS = {
    "SpectralTransform2D": EstimatorSpec(
        SpectralTransform2D,
        params={"basis": is_choice(*BASES), "keep": NONE | _pair(1),
                "image_shape": NONE | _pair(1)},
        scalars={"image_shape_": ScalarSpec(_pair(1)),
                 "n_features_in_": ScalarSpec(is_int(1)),
                 "n_passes_": ScalarSpec(is_int(0, 0), optional=True)}),
    "SequenceTransform": EstimatorSpec(
        SequenceTransform,
        params={"n": is_int(1), "m": is_int(1), "basis": is_choice(*BASES),
                "n_symbols": NONE | is_int(1), "embedding": NONE,
                "long": is_choice(*LONG_POLICIES), "chunk_sequences": is_int(1),
                "dtype": is_choice("float64", "float32")},
        scalars={"item_dim_": ScalarSpec(is_int(1), optional=True),
                 "n_features_in_": ScalarSpec(is_int(1), optional=True),
                 "n_passes_": ScalarSpec(is_int(0, 0), optional=True)}),
}
