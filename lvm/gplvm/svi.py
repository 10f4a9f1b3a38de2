r"""The uncollapsed Bayesian GPLVM for stochastic variational inference (Hensman et al., 2013).

q(u) is explicit: one whitened Gaussian per output dim over M shared inducing inputs, GPyTorch's
``CholeskyVariationalDistribution`` inside its ``VariationalStrategy``; the kernel is shared by all
output dims, so K_uu is factorized once per step. The bound

.. math::
    \mathcal L = \sum_n \Big( \mathbb E_{q(x_n)} \sum_d \mathbb E_{q(f_d \mid x_n)}
        \log \mathcal N(y_{nd} \mid f_d, \sigma^2) - \mathrm{KL}(q(x_n) \| p(x_n)) \Big)
        - \sum_d \mathrm{KL}(q(u_d) \| p(u_d))

is estimated on a minibatch B with reparameterized draws x = mu + s^{1/2} eps, its data term scaled by
N / |B|: an unbiased estimate of the full bound. At the optimal q(u) it equals the collapsed bound of
:mod:`lvm.gplvm.collapsed`. Under ``torch.distributed`` each rank holds its own rows and their q(x);
with N the global count, the sum over ranks of the per-rank estimates (KL(q(u)) counted once) is the
global bound, so summing the global parameters' gradients over ranks gives the single-process step.
"""

from __future__ import annotations

import gpytorch
import torch
from gpytorch.models import ApproximateGP
from gpytorch.variational import CholeskyVariationalDistribution, VariationalStrategy
from torch import nn

__all__ = ["SharedKernelGP", "SVIGPLVM", "SVIELBO"]


class SharedKernelGP(ApproximateGP):
    """D independent GP outputs with one shared kernel and shared inducing inputs, each with its own
    q(u_d) (a batch of D variational distributions)."""

    def __init__(self, kernel, inducing_points, n_outputs: int, jitter: float = 1e-6):
        q_u = CholeskyVariationalDistribution(inducing_points.shape[0], batch_shape=torch.Size([n_outputs]))
        strategy = VariationalStrategy(self, inducing_points, q_u, learn_inducing_locations=True,
                                       jitter_val=jitter)
        super().__init__(strategy)
        self.mean_module = gpytorch.means.ZeroMean()
        self.covar_module = kernel

    def forward(self, x):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

    def set_whitened(self, mean: torch.Tensor, covar_root: torch.Tensor) -> None:
        """Set q(v_d) = N(mean[:, d], R_d R_d^T) (whitened), e.g. to the collapsed optimum."""
        D = mean.shape[1]
        q = self.variational_strategy._variational_distribution
        root = covar_root if covar_root.dim() == 3 else covar_root.expand(D, *covar_root.shape)
        with torch.no_grad():
            q.variational_mean.copy_(mean.T)
            # CholeskyVariationalDistribution stores a lower-triangular factor: take it from S
            # (in float64, then cast to the model's dtype).
            S = root.double() @ root.double().mT
            q.chol_variational_covar.copy_(torch.linalg.cholesky(S))
        self.variational_strategy.variational_params_initialized.fill_(1)


class SVIGPLVM(nn.Module):
    """The SVI-mode model: q(x), the shared-kernel GP with explicit q(u), a Gaussian likelihood."""

    def __init__(self, latent, gp: SharedKernelGP, likelihood):
        super().__init__()
        self.latent = latent
        self.gp = gp
        self.likelihood = likelihood

    @property
    def kernel(self):
        return self.gp.covar_module

    @property
    def inducing_points(self):
        return self.gp.variational_strategy.inducing_points

    @property
    def noise(self) -> torch.Tensor:
        return self.likelihood.noise.reshape(())

    @property
    def strategy(self):
        return self.gp.variational_strategy


class SVIELBO:
    """Minibatch estimate of the uncollapsed bound of an :class:`SVIGPLVM`, in nats (full-data scale).

    Parameters
    ----------
    model : SVIGPLVM
    num_data : int, N (the global number of rows under torch.distributed).
    kl_u_weight : float, the share of KL(q(u)) this process carries (1 / world size when
        distributed, so the sum over ranks counts it once).
    """

    def __init__(self, model: SVIGPLVM, num_data: int, kl_u_weight: float = 1.0):
        self.model = model
        self.num_data = num_data
        self.kl_u_weight = kl_u_weight

    def __call__(self, Y_batch, index, generator, n_samples: int = 1, rows_total: int | None = None):
        """Estimate of the bound from rows ``Y_batch`` with latent indices ``index``.

        ``rows_total`` is the number of rows the batch stands for (N, or this rank's share of it);
        the data term is scaled by rows_total / |B|.
        """
        m = self.model
        mu, var = m.latent(Y_batch, index)
        B, Q = mu.shape
        eps = torch.randn((n_samples, B, Q), generator=generator, device=mu.device, dtype=mu.dtype)
        x = (mu + var.sqrt() * eps).reshape(n_samples * B, Q)
        f = m.gp(x)  # batch of D outputs over S * B points
        target = Y_batch.T.repeat(1, n_samples)
        ell = m.likelihood.expected_log_prob(target, f).sum() / n_samples
        kl_x = m.latent.kl(mu, var).sum()
        rows = self.num_data if rows_total is None else rows_total
        kl_u = m.strategy.kl_divergence().sum()
        return (rows / B) * (ell - kl_x) - self.kl_u_weight * kl_u
