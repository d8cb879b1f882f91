"""SVD solvers (Gram, TSQR, randomized, incremental) and the embedding estimators."""

from .embedding import SOLVERS, SVDEmbedding, choose_solver, project, register_solver
from .gram import gram_matrix, gram_svd
from .incremental_embedding import IncrementalSVDEmbedding
from .randomized import randomized_svd
from .result import SVDResult
from .tsqr import tsqr_svd

__all__ = [
    "SOLVERS",
    "IncrementalSVDEmbedding",
    "SVDEmbedding",
    "SVDResult",
    "choose_solver",
    "gram_matrix",
    "gram_svd",
    "project",
    "randomized_svd",
    "register_solver",
    "tsqr_svd",
]
