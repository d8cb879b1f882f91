"""SVD solvers (Gram, TSQR, randomized, incremental) and the embedding estimators."""

from ._signs import flip_signs
from .embedding import SOLVERS, SVDEmbedding, choose_solver, project, register_solver
from .gram import gram_matrix, gram_svd
from .incremental_embedding import IncrementalSVDEmbedding
from .kernels import augmented_gram, normal_block
from .randomized import randomized_svd
from .result import SVDResult
from .tsqr import tsqr_svd

__all__ = [
    "SOLVERS",
    "IncrementalSVDEmbedding",
    "SVDEmbedding",
    "SVDResult",
    "augmented_gram",
    "choose_solver",
    "flip_signs",
    "gram_matrix",
    "gram_svd",
    "normal_block",
    "project",
    "randomized_svd",
    "register_solver",
    "tsqr_svd",
]
