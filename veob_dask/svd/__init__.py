"""SVD solvers (Gram, TSQR, randomized, incremental) and the embedding estimators."""

from ._signs import flip_signs
from .embedding import SVDEmbedding, project, total_energy
from .gram import gram_matrix, gram_svd
from .incremental_embedding import IncrementalSVDEmbedding
from .incremental_solver import incremental_svd
from .kernels import (
    EXACT_MAX_FEATURES,
    augmented_gram,
    block_stats,
    choose_k,
    cumulative_energy,
    normal_block,
    project_block,
)
from .randomized import randomized_svd
from .result import SVDResult
from .solvers import SOLVERS, choose_solver
from .tsqr import tsqr_svd

__all__ = [
    "EXACT_MAX_FEATURES",
    "SOLVERS",
    "IncrementalSVDEmbedding",
    "SVDEmbedding",
    "SVDResult",
    "augmented_gram",
    "block_stats",
    "choose_k",
    "choose_solver",
    "cumulative_energy",
    "flip_signs",
    "gram_matrix",
    "gram_svd",
    "incremental_svd",
    "normal_block",
    "project",
    "project_block",
    "randomized_svd",
    "total_energy",
    "tsqr_svd",
]
