r"""Closed forms of the diffusion model for Gaussian data y ~ N(mu, Sigma): checks and references.

With Sigma = U diag(lambda) U^T, z_t = alpha_t y + sigma_t eps is Gaussian with mean alpha_t mu and
covariance A_t = alpha_t^2 Sigma + sigma_t^2 I, eigenvalues a_i = alpha_t^2 lambda_i + sigma_t^2.

**Optimal denoiser and score.** (eps, z_t) are jointly Gaussian with Cov(eps, z_t) = sigma_t I, so

.. math::
    \epsilon^*(z, t) = \mathbb E[\epsilon | z_t = z] = \sigma_t A_t^{-1} (z - \alpha_t \mu), \qquad
    \nabla_z \log q_t(z) = -A_t^{-1} (z - \alpha_t \mu) = -\epsilon^*(z, t) / \sigma_t .

**Its error at one point.** With r = y - mu and c = U^T r, eps - eps* = (I - sigma^2 A^{-1}) eps -
alpha sigma A^{-1} r, whose expected square over eps is, with b_i = alpha^2 lambda_i / a_i,

.. math::
    m(y, \gamma) = \sum_i b_i^2 + \alpha^2 \sigma^2 \sum_i c_i^2 / a_i^2
    \quad\Big(\text{and } \mathbb E_y\, m = \sum_i b_i = \sum_i
    \frac{\alpha^2 \lambda_i}{\alpha^2 \lambda_i + \sigma^2}\Big).

**Continuous-time diffusion term.** (1/2) int_0^1 gamma'(t) m(y, gamma_t) dt = (1/2) int m dgamma
depends on the schedule only through gamma_0 and gamma_1. With s = e^{-gamma} (so alpha^2/sigma^2
= s, b_i = lambda_i s / u_i, u_i = 1 + lambda_i s, dgamma = -ds/s), the two parts integrate in
closed form, int lambda^2 s / u^2 ds = log u + 1/u and int ds / u^2 = -1 / (lambda u):

.. math::
    \mathcal L_{diff}(y) = \tfrac12 \sum_i \Big[\log u_i + \frac 1{u_i}\Big]_{\gamma_1}^{\gamma_0}
    + \tfrac12 \sum_i \frac{c_i^2}{\lambda_i}\Big[\frac 1{u_i}\Big]_{\gamma_0}^{\gamma_1},
    \qquad \log u_i = \operatorname{softplus}(\log\lambda_i - \gamma),
    \quad \frac1{u_i} = \operatorname{sigmoid}(\gamma - \log\lambda_i).

Its mean over y is (1/2) sum_i [log u_i]_{gamma_1}^{gamma_0}. Adding the reconstruction and prior
terms of :mod:`.bound` gives the bound with the Bayes-optimal denoiser, point by point
(:func:`gaussian_vlb_terms`); for T discrete steps the diffusion term is the finite sum
(1/2) sum_{i=1}^T (e^{gamma(i/T) - gamma((i-1)/T)} - 1) m(y, gamma(i/T)).

Averaged over y the optimal bound falls short of E log N(y; mu, Sigma) by
KL(q(z_1) || N(0, I)) plus a decoder term of order e^{gamma_0}: about (1/2) alpha_1^2 |mu|^2 +
(1/4) sum_i alpha_1^4 (lambda_i - 1)^2 nats.

**Probability-flow map.** The ODE of :mod:`.ode` with the exact score is linear: in the
eigenbasis, w = U^T (z_t - alpha_t mu) scales as sqrt(a_i(t)), so

.. math::
    z_1 = \alpha_1 \mu + U \operatorname{diag}\big(\sqrt{a_i(1) / a_i(0)}\big) U^\top
          \alpha_0 (y - \mu),

and the flow's density of y (prior N(0, I) on z_1, y = z_0 / alpha_0) is

.. math::
    \log p_{flow}(y) = \log N(z_1; 0, I) + \tfrac12 \sum_i \log\frac{a_i(1)}{a_i(0)} + D \log\alpha_0,

equal to log N(y; mu, Sigma + e^{gamma_0} I) when N(0, I) is replaced by the true marginal
N(alpha_1 mu, A_1); the difference is again the prior mismatch at t = 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .bound import VLBTerms
from .schedule import alpha_sigma

__all__ = ["OptimalGaussianDenoiser", "gaussian_optimal_eps", "gaussian_score", "gaussian_denoising_mse",
           "gaussian_vlb_terms", "gaussian_flow_encode", "gaussian_flow_log_prob"]

_LOG_2PI = math.log(2 * math.pi)


def _eigh(cov: torch.Tensor, like: torch.Tensor, floor: float = 0.0):
    """Sigma = U diag(lambda) U^T, eigenvalues raised to ``floor`` times their mean (0: none)."""
    cov = torch.as_tensor(cov, dtype=like.dtype, device=like.device)
    lam, U = torch.linalg.eigh(0.5 * (cov + cov.T))
    if floor:
        lam = lam.clamp_min(floor * float(lam.clamp_min(0).mean()) + torch.finfo(lam.dtype).tiny)
    if not bool(lam.min() > 0):
        raise ValueError(f"cov must be symmetric positive definite; its smallest eigenvalue is {float(lam.min())!r}.")
    return lam, U


def _level(gamma, like):
    gamma = torch.as_tensor(gamma, dtype=like.dtype, device=like.device)
    return gamma.expand(like.shape[:-1]).unsqueeze(-1)


def gaussian_optimal_eps(z: torch.Tensor, gamma, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """E[eps | z_t = z] = sigma_t (alpha_t^2 Sigma + sigma_t^2 I)^{-1} (z - alpha_t mu), shape of ``z``.

    ``gamma`` is a scalar or has one value per row of ``z`` (n,).
    """
    _, sigma = alpha_sigma(_level(gamma, z))
    return -sigma * gaussian_score(z, gamma, mean, cov)


def gaussian_score(z: torch.Tensor, gamma, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """grad_z log q_t(z) = -(alpha_t^2 Sigma + sigma_t^2 I)^{-1} (z - alpha_t mu), shape of ``z``."""
    lam, U = _eigh(cov, z)
    return _score(z, gamma, torch.as_tensor(mean, dtype=z.dtype, device=z.device), lam, U)


def _score(z, gamma, mean, lam, U):
    """-(alpha^2 Sigma + sigma^2 I)^{-1} (z - alpha mu) with Sigma = U diag(lam) U^T."""
    alpha, sigma = alpha_sigma(_level(gamma, z))
    c = (z - alpha * mean) @ U
    return -(c / (alpha ** 2 * lam + sigma ** 2)) @ U.T


def _denoising_mse(y, gamma, mean, lam, U):
    """E_eps ||eps - eps*||^2 per row of ``y`` (n,) and level (m,) of ``gamma``: (n, m)."""
    c2 = ((y - mean) @ U) ** 2  # (n, D)
    alpha2, sigma2 = torch.sigmoid(-gamma).reshape(-1, 1), torch.sigmoid(gamma).reshape(-1, 1)
    a = alpha2 * lam + sigma2  # (m, D)
    trace = ((alpha2 * lam / a) ** 2).sum(-1)  # (m,)
    return trace + c2 @ (alpha2 * sigma2 / a ** 2).T


class OptimalGaussianDenoiser(nn.Module):
    """The Bayes-optimal eps_hat(z, gamma) for data N(mean, cov), as a denoiser module.

    The covariance is decomposed once, Sigma = U diag(lambda) U^T (buffers ``mean``,
    ``eigenvalues``, ``eigenvectors``), so a call costs two (n, D) x (D, D) products.

    Parameters
    ----------
    mean : (D,) tensor.
    cov : (D, D) symmetric tensor, positive definite once floored.
    eigenvalue_floor : float, default=0.0
        Eigenvalues below this fraction of their mean are raised to it (relative to the data's
        scale; 0 leaves them, and a covariance that is not positive definite is an error).
    """

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor, *, eigenvalue_floor: float = 0.0):
        super().__init__()
        mean = torch.as_tensor(mean)
        lam, U = _eigh(cov, mean, eigenvalue_floor)
        self.register_buffer("mean", mean)
        self.register_buffer("eigenvalues", lam)
        self.register_buffer("eigenvectors", U)
        self.n_features = self.mean.shape[0]

    @property
    def cov(self) -> torch.Tensor:
        """Sigma = U diag(lambda) U^T, (D, D)."""
        U = self.eigenvectors
        return (U * self.eigenvalues) @ U.T

    def forward(self, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        _, sigma = alpha_sigma(_level(gamma, z))  # eps* = -sigma * score, as gaussian_optimal_eps
        return -sigma * _score(z, gamma, self.mean, self.eigenvalues, self.eigenvectors)

    def expected_diffusion(self, y: torch.Tensor, schedule, n_steps: int | None = None):
        """E_{t, eps} of the diffusion term of each row of ``y`` under this denoiser, (n,).

        In continuous time it depends on the schedule through gamma_0 and gamma_1 alone (module
        docstring); for T steps it is the finite sum over the grid.
        """
        return _expected_diffusion(y, self.mean, self.eigenvalues, self.eigenvectors, schedule,
                                   n_steps)


def _expected_diffusion(y, mean, lam, U, schedule, n_steps):
    """The diffusion term of each row under the optimal denoiser, in expectation (n,)."""
    if n_steps is None:
        c2 = ((y - mean) @ U) ** 2  # (n, D)
        g0, g1 = schedule.gamma_0.to(y.dtype), schedule.gamma_1.to(y.dtype)
        log_lam = torch.log(lam)
        inv_u0, inv_u1 = torch.sigmoid(g0 - log_lam), torch.sigmoid(g1 - log_lam)
        mean_part = (F.softplus(log_lam - g0) - F.softplus(log_lam - g1) + inv_u0 - inv_u1).sum()
        return 0.5 * (mean_part + c2 @ ((inv_u1 - inv_u0) / lam))
    if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be None (continuous time) or a positive integer; got {n_steps!r}.")
    grid = torch.arange(int(n_steps) + 1, dtype=y.dtype, device=y.device) / int(n_steps)
    gammas = schedule(grid)
    weights = torch.expm1(gammas[1:] - gammas[:-1])
    return 0.5 * _denoising_mse(y, gammas[1:], mean, lam, U) @ weights


def gaussian_denoising_mse(y: torch.Tensor, gamma: torch.Tensor, mean, cov) -> torch.Tensor:
    """E_eps ||eps - eps*(alpha y + sigma eps)||^2 for each row of ``y`` at each level of ``gamma``.

    Parameters
    ----------
    y : (n, D) tensor.
    gamma : tensor of shape G (a scalar, or (m,)).
    mean, cov : the data's mean (D,) and covariance (D, D).

    Returns
    -------
    Tensor of shape (n,) + G.
    """
    lam, U = _eigh(cov, y)
    mean = torch.as_tensor(mean, dtype=y.dtype, device=y.device)
    g = torch.as_tensor(gamma, dtype=y.dtype, device=y.device)
    return _denoising_mse(y, g, mean, lam, U).reshape(y.shape[:1] + g.shape)


def gaussian_vlb_terms(y: torch.Tensor, mean, cov, schedule, *, n_steps: int | None = None) -> VLBTerms:
    """The bound of each row with the Bayes-optimal denoiser, in expectation over t and eps.

    Parameters
    ----------
    y : (n, D) tensor.
    mean, cov : the data distribution N(mean, cov).
    schedule : :class:`~.schedule.NoiseSchedule`.
    n_steps : int, optional
        None for continuous time (only the schedule's endpoints matter), T for T discrete steps.

    Returns
    -------
    VLBTerms
        Tensors of shape (n,); the diffusion term is exact, not a draw.
    """
    D = y.shape[1]
    g0, g1 = schedule.gamma_0.to(y.dtype), schedule.gamma_1.to(y.dtype)
    reconstruction = (0.5 * D * (_LOG_2PI + 1.0 + g0)).expand(y.shape[:1])
    alpha2_1 = torch.sigmoid(-g1)
    prior = 0.5 * (alpha2_1 * (y * y).sum(-1) + D * (F.softplus(-g1) - alpha2_1))
    lam, U = _eigh(cov, y)
    mean = torch.as_tensor(mean, dtype=y.dtype, device=y.device)
    diffusion = _expected_diffusion(y, mean, lam, U, schedule, n_steps)
    return VLBTerms(reconstruction, prior, diffusion)


def gaussian_flow_encode(y: torch.Tensor, mean, cov, schedule) -> torch.Tensor:
    """z_1 = Phi(y), the probability-flow map of N(mean, cov) from z_0 = alpha_0 y to t = 1: (n, D)."""
    lam, U = _eigh(cov, y)
    mean = torch.as_tensor(mean, dtype=y.dtype, device=y.device)
    g0, g1 = schedule.gamma_0.to(y.dtype), schedule.gamma_1.to(y.dtype)
    a0 = torch.sigmoid(-g0) * lam + torch.sigmoid(g0)
    a1 = torch.sigmoid(-g1) * lam + torch.sigmoid(g1)
    alpha0, alpha1 = torch.sigmoid(-g0).sqrt(), torch.sigmoid(-g1).sqrt()
    return alpha1 * mean + ((alpha0 * (y - mean) @ U) * torch.sqrt(a1 / a0)) @ U.T


def gaussian_flow_log_prob(y: torch.Tensor, mean, cov, schedule) -> torch.Tensor:
    """log p_flow(y) per row: the probability-flow model of N(mean, cov) with prior N(0, I) on z_1."""
    lam, _ = _eigh(cov, y)
    D = y.shape[1]
    g0, g1 = schedule.gamma_0.to(y.dtype), schedule.gamma_1.to(y.dtype)
    a0 = torch.sigmoid(-g0) * lam + torch.sigmoid(g0)
    a1 = torch.sigmoid(-g1) * lam + torch.sigmoid(g1)
    z1 = gaussian_flow_encode(y, mean, cov, schedule)
    log_prior = -0.5 * (z1 * z1).sum(-1) - 0.5 * D * _LOG_2PI
    return log_prior + 0.5 * torch.log(a1 / a0).sum() - 0.5 * D * F.softplus(g0)
