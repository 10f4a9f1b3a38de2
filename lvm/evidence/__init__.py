"""log p(y), independent of the decoder family: exact Gaussian evidence, Monte Carlo estimators
over any (posterior, decoder likelihood), row-keyed draws, importance weighting."""

from .draws import row_keyed_normal
from .estimators import ESTIMATORS, KINDS, EvidenceEstimate, chunked, estimate_log_evidence
from .gaussian import (average_log_likelihood, gaussian_kl_standard, linear_gaussian_posterior,
                       low_rank_gaussian_log_prob)
from .monte_carlo import effective_sample_size, importance_weighted_log_evidence

__all__ = [
    "low_rank_gaussian_log_prob",
    "linear_gaussian_posterior",
    "average_log_likelihood",
    "gaussian_kl_standard",
    "importance_weighted_log_evidence",
    "effective_sample_size",
    "row_keyed_normal",
    "ESTIMATORS",
    "EvidenceEstimate",
    "KINDS",
    "chunked",
    "estimate_log_evidence",
]
