"""log p(y), independent of the decoder family: exact Gaussian, analytic KL, importance weighting."""

from .gaussian import gaussian_kl_standard, linear_gaussian_posterior, low_rank_gaussian_log_prob
from .monte_carlo import effective_sample_size, importance_weighted_log_evidence

__all__ = [
    "low_rank_gaussian_log_prob",
    "linear_gaussian_posterior",
    "gaussian_kl_standard",
    "importance_weighted_log_evidence",
    "effective_sample_size",
]
