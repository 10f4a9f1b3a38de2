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
    """Importance-weighted estimate of log p(y): logsumexp(log_w) - log S along ``dim``.

    Parameters
    ----------
    log_w : torch.Tensor
        Log importance weights log p(y, x_s) - log q(x_s), S of them along ``dim``.
    dim : int, default=0
        The dimension of the S draws.

    Returns
    -------
    torch.Tensor
        ``log_w`` reduced over ``dim``: log (1/S) sum_s w_s.
    """
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])


def effective_sample_size(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Compute Kish's effective sample size (sum w)^2 / sum w^2 of the weights along ``dim``.

    Parameters
    ----------
    log_w : torch.Tensor
        Log importance weights, S of them along ``dim`` (computed from logs, so that no weight
        overflows).
    dim : int, default=0
        The dimension of the S draws.

    Returns
    -------
    torch.Tensor
        ``log_w`` reduced over ``dim``: a value between 1 (one draw carries all the weight) and
        S (equal weights).
    """
    return torch.exp(2 * torch.logsumexp(log_w, dim) - torch.logsumexp(2 * log_w, dim))
