"""A Gaussian data set whose every diffusion quantity has a closed form."""

from types import SimpleNamespace

import torch

from lvm.diffusion import LinearSchedule, OptimalGaussianDenoiser


def gaussian_problem(n: int = 400, D: int = 4, seed: int = 0) -> SimpleNamespace:
    """y ~ N(mu, Sigma) in float64: a random rotation of eigenvalues spread over [0.3, 2], small mu."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
    lam = torch.linspace(0.3, 2.0, D, dtype=torch.float64)
    cov = Q @ torch.diag(lam) @ Q.T
    cov = 0.5 * (cov + cov.T)
    mean = 0.3 * torch.randn(D, generator=g, dtype=torch.float64)
    y = mean + torch.randn(n, D, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    return SimpleNamespace(y=y, mean=mean, cov=cov, D=D, n=n,
                           schedule=LinearSchedule().double(),
                           denoiser=OptimalGaussianDenoiser(mean, cov),
                           exact=torch.distributions.MultivariateNormal(mean, cov).log_prob(y))


def sigma_points(mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """2D points whose empirical mean and covariance are exactly (mean, cov): averages of any
    quadratic function over them equal its expectation under N(mean, cov)."""
    D = mean.shape[0]
    L = torch.linalg.cholesky(cov) * D ** 0.5
    return torch.cat([mean + L.T, mean - L.T])
