"""Monte Carlo estimators of log p(y) that do not depend on the decoder family.

Given S log importance weights per data point, log w_s = log p(y, x_s) - log q(x_s) with x_s ~ q,

    log p_hat(y) = logsumexp_s(log w_s) - log S,

which is the importance-weighted (IWAE) bound: its expectation is a lower bound on log p(y) that
rises toward it as S grows (Burda et al., 2016). With q the prior it is the naive Monte Carlo
estimator. The effective sample size (sum w)^2 / sum w^2 says how many of the S draws carry weight.
"""

from __future__ import annotations

import math

import torch

__all__ = ["importance_weighted_log_evidence", "effective_sample_size"]


def importance_weighted_log_evidence(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """logsumexp(log_w) - log S along ``dim``."""
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])


def effective_sample_size(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Kish's effective sample size of the normalized weights along ``dim``."""
    return torch.exp(2 * torch.logsumexp(log_w, dim) - torch.logsumexp(2 * log_w, dim))
