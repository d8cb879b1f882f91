"""What a saved text model may contain, for the loader (see :mod:`veob_dask.io.serialize`).

Update these entries together with the estimators' fitted attributes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..io.serialize import (
    NONE,
    ArraySpec,
    EstimatorSpec,
    ScalarSpec,
    is_bool,
    is_choice,
    is_float,
    is_int,
    is_json,
    is_str,
)
from .models import ContextEmbedding, DictionaryEmbedding, SentenceEmbedding, SpellingEmbedding

__all__ = ["SPECS"]

_WORDS = {"vocabulary_": ArraySpec(("word",), "UTO"),
          "vectors_": ArraySpec(("word", "component"))}
_WORD_STATE = {"metadata_": ScalarSpec(is_json()), "fit_seconds_": ScalarSpec(is_json()),
               "n_components_": ScalarSpec(is_int(1), dim="component")}
_SPECTRAL = {"n": is_int(1), "m": is_int(1), "basis": is_choice("paper", "dct2")}


def _distinct_words(est: Any) -> None:
    words = np.asarray(est.vocabulary_).astype(str)
    if np.unique(words).size != words.size or np.any(words == ""):
        raise ValueError("vocabulary_ must hold distinct, non-empty words")


SPECS = {
    "SpellingEmbedding": EstimatorSpec(
        SpellingEmbedding,
        params={"n_components": is_int(1), **_SPECTRAL,
                "scale": is_choice("s1", "norm", "none"), "layout": is_choice("blocks", "summed"),
                "solver": is_choice("factored", "gram"), "lowercase": is_bool(),
                "letters_only": NONE | is_bool(), "chunk_words": is_int(1)},
        arrays={**_WORDS, "components_": ArraySpec(("component", "spectral_feature"))},
        scalars=_WORD_STATE, check=_distinct_words),
    "ContextEmbedding": EstimatorSpec(
        ContextEmbedding,
        params={"n_components": is_int(1), "weighting": is_choice("raw", "ppmi"),
                "window": is_int(1), "max_words": NONE | is_int(1), "min_count": NONE | is_int(1),
                "scale_exponent": NONE | is_float(), "solver": is_str(64), "n_iter": is_int(0),
                "n_oversamples": is_int(0), "random_state": is_int(0),
                "chunk_sentences": is_int(1), "chunk_rows": is_int(1)},
        arrays=_WORDS, scalars=_WORD_STATE, check=_distinct_words),
    "DictionaryEmbedding": EstimatorSpec(
        DictionaryEmbedding,
        params={"n_components": is_int(1), "recipe": is_choice("definitions", "paper"),
                "k_ratio": is_float(0.0, 1.0), "scale_exponent": is_float(),
                "spelling_components": is_int(1), **_SPECTRAL,
                "solver": is_str(64), "n_iter": is_int(0), "limit": NONE | is_int(1),
                "chunk_rows": NONE | is_int(1), "merge_columns": is_bool(), "strict": is_bool(),
                "random_state": is_int(0)},
        arrays=_WORDS, scalars=_WORD_STATE, check=_distinct_words),
    "SentenceEmbedding": EstimatorSpec(
        SentenceEmbedding,
        params={"n_components": is_int(1), "max_words": is_int(1), **_SPECTRAL,
                "solver": is_str(64), "chunk_sequences": is_int(1)},
        arrays={"components_": ArraySpec(("component", "feature")),
                "singular_values_": ArraySpec(("component",))},
        scalars={"metadata_": ScalarSpec(is_json()),
                 "n_components_": ScalarSpec(is_int(1), dim="component")},
        nested={"words_": ("ContextEmbedding", "SpellingEmbedding", "DictionaryEmbedding")}),
}
