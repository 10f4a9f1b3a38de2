"""Exact Gaussian evidence of linear-Gaussian latent models.

For y = W x + mu + e with x ~ N(0, I) and e ~ N(0, diag(psi)), the marginal is

    p(y) = N(y; mu, C),    C = W W^T + diag(psi),

and by the matrix determinant lemma and Woodbury identity, with M = I + W^T Psi^{-1} W (K x K),

    log det C = sum_d log psi_d + log det M
    (y-mu)^T C^{-1} (y-mu) = r^T Psi^{-1} r - b^T M^{-1} b,   r = y - mu,  b = W^T Psi^{-1} r,

so log p(y) costs O(N D K + K^3) instead of O(D^3). The same M gives the exact posterior
p(x | y) = N(M^{-1} b, M^{-1}).
"""

from __future__ import annotations

import math

import torch

__all__ = ["low_rank_gaussian_log_prob", "linear_gaussian_posterior", "gaussian_kl_standard"]


def _precision_factor(W: torch.Tensor, noise: torch.Tensor):
    """Cholesky factor of M = I + W^T Psi^{-1} W and Psi^{-1} W."""
    Wp = W / noise.unsqueeze(-1)  # Psi^{-1} W, shape (D, K)
    M = W.T @ Wp
    M.diagonal().add_(1.0)
    L = torch.linalg.cholesky(M)
    return L, Wp


def low_rank_gaussian_log_prob(Y, mean, W, noise) -> torch.Tensor:
    """log N(y; mean, W W^T + diag(noise)) for each row of ``Y``, in nats.

    Parameters
    ----------
    Y : (N, D) tensor.   mean : (D,).   W : (D, K).   noise : (D,) positive variances.
    """
    D = Y.shape[1]
    R = Y - mean
    L, Wp = _precision_factor(W, noise)
    B = R @ Wp  # (N, K) = W^T Psi^{-1} r
    Z = torch.linalg.solve_triangular(L, B.T, upper=False)  # L^{-1} b
    maha = (R * R / noise).sum(1) - (Z * Z).sum(0)
    logdet = torch.log(noise).sum() + 2.0 * torch.log(torch.diagonal(L)).sum()
    return -0.5 * (D * math.log(2 * math.pi) + logdet + maha)


def linear_gaussian_posterior(Y, mean, W, noise):
    """Exact posterior p(x | y) = N(M^{-1} W^T Psi^{-1} (y - mean), M^{-1}).

    Returns the (N, K) posterior means and the (K,) posterior standard deviations (the posterior
    covariance M^{-1} is the same for every sample).
    """
    L, Wp = _precision_factor(W, noise)
    B = (Y - mean) @ Wp
    means = torch.cholesky_solve(B.T, L).T
    cov = torch.cholesky_inverse(L)
    return means, torch.sqrt(torch.diagonal(cov))


def gaussian_kl_standard(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag var) || N(0, I)) summed over the last dimension (analytic)."""
    return 0.5 * (var + mu * mu - 1.0 - torch.log(var)).sum(-1)
