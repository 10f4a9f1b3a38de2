"""The variational distribution of the latent points, q(x_n) = N(mu_n, diag s_n).

Two parameterizations with one interface, ``latent(Y, index) -> (mu, var)``:

* :class:`PointLatent`: free (mu_n, s_n) per training point (the classical Bayesian GPLVM);
* :class:`EncoderLatent`: back-constrained (amortized), (mu, s) = g(y) with a small MLP, so a new
  point's q(x) is one forward pass. The MLP is a residual on the PCA projection it is initialized
  with, so both start from the same q(x).

The KL to the prior N(0, I) is analytic (:func:`lvm.evidence.gaussian_kl_standard`).
"""

from __future__ import annotations

import torch
from gpytorch.constraints import Positive
from torch import nn

from ..evidence import gaussian_kl_standard

__all__ = ["PointLatent", "EncoderLatent"]


class PointLatent(nn.Module):
    """Free per-point means and variances, variances stored raw behind a ``Positive`` transform."""

    def __init__(self, mu: torch.Tensor, var: torch.Tensor):
        super().__init__()
        self.constraint = Positive()
        self.mu = nn.Parameter(mu.clone())
        self.raw_var = nn.Parameter(self.constraint.inverse_transform(var.clone()))

    @property
    def var(self) -> torch.Tensor:
        return self.constraint.transform(self.raw_var)

    def forward(self, Y=None, index=None):
        mu, var = self.mu, self.var
        if index is not None:
            mu, var = mu[index], var[index]
        return mu, var

    def kl(self, mu, var) -> torch.Tensor:
        return gaussian_kl_standard(mu, var)

    def extend(self, mu: torch.Tensor, var: torch.Tensor) -> None:
        """Append rows for points seen for the first time (``partial_fit``)."""
        with torch.no_grad():
            self.mu = nn.Parameter(torch.cat([self.mu.detach(), mu]))
            self.raw_var = nn.Parameter(
                torch.cat([self.raw_var.detach(), self.constraint.inverse_transform(var)]))


class EncoderLatent(nn.Module):
    """q(x | y) = N(P^T (y - m) + g_mu(y), softplus(g_s(y))), an MLP residual g on a PCA projection P."""

    def __init__(self, mean, projection, var_init: float, *, hidden: int = 50, generator=None):
        super().__init__()
        D, Q = projection.shape
        self.constraint = Positive()
        self.register_buffer("center", mean.clone())
        self.register_buffer("projection", projection.clone())
        self.net = nn.Sequential(nn.Linear(D, hidden), nn.Tanh(), nn.Linear(hidden, 2 * Q))
        self.net.to(dtype=projection.dtype, device=projection.device)
        with torch.no_grad():
            # Seeded from the estimator's generator, not torch's global one.
            first = self.net[0]
            first.weight.copy_(torch.randn(first.weight.shape, generator=generator, dtype=projection.dtype,
                                           device=projection.device) / D**0.5)
            first.bias.zero_()
            self.net[2].weight.zero_()
            self.net[2].bias.zero_()
            raw = self.constraint.inverse_transform(torch.tensor(var_init, dtype=projection.dtype))
            self.net[2].bias[Q:] = raw

    def forward(self, Y, index=None):
        if index is not None:
            Y = Y[index]
        Q = self.projection.shape[1]
        out = self.net(Y)
        mu = (Y - self.center) @ self.projection + out[:, :Q]
        return mu, self.constraint.transform(out[:, Q:])

    def kl(self, mu, var) -> torch.Tensor:
        return gaussian_kl_standard(mu, var)
