r"""Exact Gaussian evidence of linear-Gaussian latent models.

For y = W x + mu + e with x ~ N(0, I) and e ~ N(0, diag(psi)), the marginal is

    p(y) = N(y; mu, C),    C = W W^T + diag(psi),

and by the matrix determinant lemma and Woodbury's identity, with M = I + W^T Psi^{-1} W (K x K),
the posterior mean xhat = M^{-1} W^T Psi^{-1} r (r = y - mu) and the residual e = r - W xhat,

    log det C = sum_d log psi_d + log det M,
    r^T C^{-1} r = e^T Psi^{-1} e + xhat^T xhat,

so log p(y) costs O(N D K + K^3) instead of O(D^3). The quadratic form is computed as that sum of
two non-negative terms, not as Woodbury's difference r^T Psi^{-1} r - b^T M^{-1} b: when the noise
is tiny next to W W^T (n_components = n_features, data of low rank) the difference cancels
catastrophically, while the sum is the minimum over x of ||r - W x||^2_{Psi^{-1}} + ||x||^2, so an
error in xhat changes it only to second order. The same M gives the exact posterior
p(x | y) = N(xhat, M^{-1}).
"""

from __future__ import annotations

import math

import torch

__all__ = ["low_rank_gaussian_log_prob", "linear_gaussian_posterior", "gaussian_kl_standard",
           "average_log_likelihood"]


def _precision_factor(W: torch.Tensor, noise: torch.Tensor):
    """Cholesky factor of M = I + W^T Psi^{-1} W and Psi^{-1} W."""
    Wp = W / noise.unsqueeze(-1)  # Psi^{-1} W, shape (D, K)
    M = W.T @ Wp
    M.diagonal().add_(1.0)
    L = torch.linalg.cholesky(M)
    return L, Wp


def low_rank_gaussian_log_prob(Y, mean, W, noise) -> torch.Tensor:
    """Log-density of each row of ``Y`` under N(mean, W W^T + diag(noise)), in nats.

    Parameters
    ----------
    Y : torch.Tensor of shape (N, D)
        The rows.
    mean : torch.Tensor of shape (D,)
        The mean mu.
    W : torch.Tensor of shape (D, K)
        The loadings.
    noise : torch.Tensor of shape (D,)
        The noise variances psi (positive).

    Returns
    -------
    torch.Tensor of shape (N,)
        The log-density of each row, log N(y_n; mean, W W^T + diag(noise)), computed in
        O(N D K + K^3).
    """
    D = Y.shape[1]
    R = Y - mean
    L, Wp = _precision_factor(W, noise)
    Xhat = torch.cholesky_solve((R @ Wp).T, L).T  # (N, K) posterior means
    E = R - Xhat @ W.T  # residuals r - W xhat
    maha = (E * E / noise).sum(1) + (Xhat * Xhat).sum(1)
    logdet = torch.log(noise).sum() + 2.0 * torch.log(torch.diagonal(L)).sum()
    return -0.5 * (D * math.log(2 * math.pi) + logdet + maha)


def average_log_likelihood(covariance, W, noise) -> torch.Tensor:
    """Mean log p(y) of data summarized by their covariance, from (W, Psi) alone.

    For data whose maximum-likelihood covariance about the model's mean is S, the mean
    log-density is

        -1/2 [D log 2 pi + log det C + tr(C^{-1} S)],

    with tr(C^{-1} S) = tr(Psi^{-1} G S G^T) + tr(B S B^T), B = M^{-1} W^T Psi^{-1}, G = I - W B,
    the row-wise identity above summed over the data (no cancellation).

    Parameters
    ----------
    covariance : torch.Tensor of shape (D, D)
        S, the data's maximum-likelihood covariance (divided by N) about the model's mean.
    W : torch.Tensor of shape (D, K)
        The loadings.
    noise : torch.Tensor of shape (D,)
        The noise variances psi (positive).

    Returns
    -------
    torch.Tensor
        A scalar: the mean log p(y) per row, in nats.
    """
    D = W.shape[0]
    L, Wp = _precision_factor(W, noise)
    B = torch.cholesky_solve(Wp.T, L)  # (K, D)
    BS = B @ covariance  # (K, D)
    GS = covariance - W @ BS  # (D, D) = G S
    G = -W @ B
    G.diagonal().add_(1.0)
    trace = ((GS * G) / noise.unsqueeze(-1)).sum() + (BS * B).sum()
    logdet = torch.log(noise).sum() + 2.0 * torch.log(torch.diagonal(L)).sum()
    return -0.5 * (D * math.log(2 * math.pi) + logdet + trace)


def linear_gaussian_posterior(Y, mean, W, noise):
    """Exact posterior p(x | y) = N(M^{-1} W^T Psi^{-1} (y - mean), M^{-1}).

    Parameters
    ----------
    Y : torch.Tensor of shape (N, D)
        The rows.
    mean : torch.Tensor of shape (D,)
        The mean mu.
    W : torch.Tensor of shape (D, K)
        The loadings.
    noise : torch.Tensor of shape (D,)
        The noise variances psi (positive).

    Returns
    -------
    means : torch.Tensor of shape (N, K)
        The posterior means.
    std : torch.Tensor of shape (K,)
        The posterior standard deviations, the square roots of the diagonal of M^{-1} (the
        posterior covariance is the same for every row).
    """
    L, Wp = _precision_factor(W, noise)
    B = (Y - mean) @ Wp
    means = torch.cholesky_solve(B.T, L).T
    cov = torch.cholesky_inverse(L)
    return means, torch.sqrt(torch.diagonal(cov))


def gaussian_kl_standard(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag var) || N(0, I)) summed over the last dimension (analytic).

    The same function as :func:`lvm.latents.kl_standard`.

    Parameters
    ----------
    mu : torch.Tensor of shape (..., K)
        The means of q.
    var : torch.Tensor of shape (..., K)
        The variances of q (positive).

    Returns
    -------
    torch.Tensor of shape (...)
        1/2 sum_k (var_k + mu_k^2 - 1 - log var_k), in nats.
    """
    from ..latents.prior import kl_standard

    return kl_standard(mu, var)
