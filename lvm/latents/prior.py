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
    """log N(x; 0, I) summed over the last dimension."""
    return -0.5 * (x * x + _LOG_2PI).sum(-1)


def sample_prior(n: int, n_components: int, generator: torch.Generator, *, device, dtype):
    """n draws of x ~ N(0, I_K), shape (n, K)."""
    return torch.randn(n, n_components, generator=generator, device=device, dtype=dtype)


def kl_standard(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag var) || N(0, I)) summed over the last dimension (analytic)."""
    return 0.5 * (var + mu * mu - 1.0 - torch.log(var)).sum(-1)


def kl_standard_log_var(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """:func:`kl_standard` in terms of the log-variance an encoder outputs (no exp/log round
    trip on every training step)."""
    return 0.5 * (torch.exp(log_var) + mu * mu - 1.0 - log_var).sum(-1)
