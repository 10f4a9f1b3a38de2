"""The Gaussian closed forms against brute force: autograd scores, Monte Carlo, quadrature."""

import math

import pytest
import torch

from lvm.diffusion import (MonotoneSchedule, alpha_sigma, gaussian_denoising_mse, gaussian_flow_encode,
                           gaussian_optimal_eps, gaussian_score, gaussian_vlb_terms)

from .problems import sigma_points


def test_score_is_the_gradient_of_the_marginal_log_density(gauss):
    gamma = torch.linspace(-12, 4, gauss.n, dtype=torch.float64)
    alpha, sigma = alpha_sigma(gamma)
    z = (alpha[:, None] * gauss.y + sigma[:, None] * torch.randn(gauss.y.shape, dtype=torch.float64,
                                                                 generator=torch.Generator().manual_seed(1)))
    z.requires_grad_()
    cov_t = alpha[:, None, None] ** 2 * gauss.cov + sigma[:, None, None] ** 2 * torch.eye(gauss.D)
    log_q = torch.distributions.MultivariateNormal(alpha[:, None] * gauss.mean, cov_t).log_prob(z)
    (grad,) = torch.autograd.grad(log_q.sum(), z)
    torch.testing.assert_close(gaussian_score(z.detach(), gamma, gauss.mean, gauss.cov), grad)
    torch.testing.assert_close(gaussian_optimal_eps(z.detach(), gamma, gauss.mean, gauss.cov),
                               -sigma[:, None] * grad)


def test_denoising_mse_matches_monte_carlo(gauss):
    y, gammas = gauss.y[:3], torch.tensor([-8.0, -1.0, 0.5, 3.0], dtype=torch.float64)
    closed = gaussian_denoising_mse(y, gammas, gauss.mean, gauss.cov)
    assert closed.shape == (3, 4)
    S = 20000
    eps = torch.randn(S, 3, gauss.D, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for j, gamma in enumerate(gammas):
        alpha, sigma = alpha_sigma(gamma)
        z = alpha * y + sigma * eps
        err = ((eps - gaussian_optimal_eps(z.reshape(-1, gauss.D), gamma, gauss.mean, gauss.cov)
                .reshape(z.shape)) ** 2).sum(-1)
        se = err.std(0) / math.sqrt(S)
        assert bool(((err.mean(0) - closed[:, j]).abs() < 4 * se).all())


def test_denoising_mse_averages_to_the_eigenvalue_sum(gauss):
    pts = sigma_points(gauss.mean, gauss.cov)
    lam = torch.linalg.eigvalsh(gauss.cov)
    gamma = torch.tensor([-5.0, 0.0, 2.0], dtype=torch.float64)
    a2, s2 = torch.sigmoid(-gamma)[:, None], torch.sigmoid(gamma)[:, None]
    torch.testing.assert_close(gaussian_denoising_mse(pts, gamma, gauss.mean, gauss.cov).mean(0),
                               (a2 * lam / (a2 * lam + s2)).sum(-1))


@pytest.mark.parametrize("schedule", ["linear", "monotone"])
def test_continuous_diffusion_term_matches_quadrature(gauss, schedule):
    # the antiderivatives of the closed form, checked against (1/2) int gamma'(t) m(y, gamma_t) dt;
    # with the monotone schedule this also checks that only the endpoints matter
    s = gauss.schedule if schedule == "linear" else MonotoneSchedule(n_features=16).double()
    t = torch.linspace(0, 1, 40001, dtype=torch.float64)
    with torch.no_grad():
        gamma, slope = s.with_derivative(t)
        y = gauss.y[:6]
        integrand = 0.5 * slope * gaussian_denoising_mse(y, gamma, gauss.mean, gauss.cov)
        quad = torch.trapezoid(integrand, t, dim=-1)
        closed = gaussian_vlb_terms(y, gauss.mean, gauss.cov, s).diffusion
    torch.testing.assert_close(closed, quad, rtol=1e-6, atol=1e-6)


def test_flow_map_carries_the_data_marginal_to_q1(gauss):
    # the map is affine, so sigma points of N(mu, Sigma) map to points with exactly q_1's moments
    pts = sigma_points(gauss.mean, gauss.cov)
    z1 = gaussian_flow_encode(pts, gauss.mean, gauss.cov, gauss.schedule).detach()
    alpha, sigma = alpha_sigma(gauss.schedule.gamma_1.detach())
    torch.testing.assert_close(z1.mean(0), alpha * gauss.mean)
    cov = torch.cov(z1.T, correction=0)
    # the flow starts from alpha_0 y, not from q_0 = N(alpha_0 mu, alpha_0^2 Sigma + sigma_0^2 I):
    # equal up to sigma_0^2 = sigmoid(-13.3) ~ 1.7e-6
    torch.testing.assert_close(cov, alpha ** 2 * gauss.cov + sigma ** 2 * torch.eye(gauss.D), rtol=0, atol=1e-5)


def test_cov_must_be_positive_definite(gauss):
    with pytest.raises(ValueError, match="cov must be symmetric positive definite; its smallest eigenvalue is"):
        gaussian_score(gauss.y, 0.0, gauss.mean, -gauss.cov)
