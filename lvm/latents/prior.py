r"""The prior p(x) = N(0, I) of every family's latent variable, and its KL to a Gaussian q.

.. math::
    \mathrm{KL}\big(\mathcal N(\mu, \operatorname{diag} s) \,\|\, \mathcal N(0, I)\big)
        = \tfrac12 \sum_k \big(s_k + \mu_k^2 - 1 - \log s_k\big).
"""

from __future__ import annotations

import math

import torch

__all__ = ["log_prior", "sample_prior", "kl_standard", "kl_standard_log_var"]

_LOG_2PI = math.log(2 * math.pi)


def log_prior(x: torch.Tensor) -> torch.Tensor:
    """Log-density of the prior, log N(x; 0, I), summed over the last dimension.

    Parameters
    ----------
    x : torch.Tensor of shape (..., K)
        Latent points.

    Returns
    -------
    torch.Tensor of shape (...)
        The log-densities, in nats.
    """
    return -0.5 * (x * x + _LOG_2PI).sum(-1)


def sample_prior(n: int, n_components: int, generator: torch.Generator, *, device, dtype):
    """Draw n points x ~ N(0, I_K).

    Parameters
    ----------
    n : int
        The number of draws.
    n_components : int
        K.
    generator : torch.Generator
        The source of randomness.
    device : torch.device or str
        Where the draws are made.
    dtype : torch.dtype
        Their dtype.

    Returns
    -------
    torch.Tensor of shape (n, K)
        The draws.
    """
    return torch.randn(n, n_components, generator=generator, device=device, dtype=dtype)


def kl_standard(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag var) || N(0, I)) summed over the last dimension (analytic).

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

    Examples
    --------
    >>> import torch
    >>> from lvm.latents import kl_standard
    >>> kl_standard(torch.zeros(3), torch.ones(3))  # q is the prior
    tensor(0.)
    >>> kl_standard(torch.tensor([1.0]), torch.tensor([1.0]))  # a unit shift costs 1/2 nat
    tensor(0.5000)
    """
    return 0.5 * (var + mu * mu - 1.0 - torch.log(var)).sum(-1)


def kl_standard_log_var(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(log_var)) || N(0, I)), :func:`kl_standard` from log-variances.

    In terms of the log-variance an encoder outputs: no exp/log round trip on every training
    step.

    Parameters
    ----------
    mu : torch.Tensor of shape (..., K)
        The means of q.
    log_var : torch.Tensor of shape (..., K)
        The log-variances of q.

    Returns
    -------
    torch.Tensor of shape (...)
        The divergences, in nats.
    """
    return 0.5 * (torch.exp(log_var) + mu * mu - 1.0 - log_var).sum(-1)
