r"""The uncollapsed Bayesian GPLVM for stochastic variational inference (Hensman et al., 2013).

q(u) is explicit: one whitened Gaussian per output dim over M shared inducing inputs, GPyTorch's
``CholeskyVariationalDistribution`` inside its ``VariationalStrategy``; the kernel is shared by all
output dims, so K_uu is factorized once per step. The bound

.. math::
    \mathcal L = \sum_n \Big( \mathbb E_{q(x_n)} \sum_d \mathbb E_{q(f_d \mid x_n)}
        \log \mathcal N(y_{nd} \mid f_d, \sigma^2) - \mathrm{KL}(q(x_n) \| p(x_n)) \Big)
        - \sum_d \mathrm{KL}(q(u_d) \| p(u_d))

(the sum over d running over the observed entries y_{nd} only, when some are missing: NaN) is
estimated on a minibatch B with reparameterized draws x = mu + s^{1/2} eps, its data term scaled by
N / |B|: an unbiased estimate of the full bound. At the optimal q(u) it equals the collapsed bound of
:mod:`lvm.gplvm.collapsed`. The likelihood is any of :mod:`lvm.likelihoods` (its
``expected_log_prob`` under the Gaussian q(f | x)). Minibatches, the scaling by N and the
data-parallel reduction are the gradient layer's (:mod:`lvm._gradient`); this module gives the
per-row terms and KL(q(u)).
"""

from __future__ import annotations

import gpytorch
import torch
from gpytorch.models import ApproximateGP
from gpytorch.variational import CholeskyVariationalDistribution, VariationalStrategy
from torch import nn

from ..likelihoods._base import observed_mask

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
    """The SVI-mode model: q(x), the shared-kernel GP with explicit q(u), a likelihood from
    :mod:`lvm.likelihoods`, and a constant offset c added to every output."""

    def __init__(self, latent, gp: SharedKernelGP, likelihood, offset=None):
        super().__init__()
        self.latent = latent
        self.gp = gp
        self.likelihood = likelihood
        D = gp.variational_strategy._variational_distribution.batch_shape[0]
        ref = gp.variational_strategy.inducing_points
        self.register_buffer("offset", ref.new_zeros(D) if offset is None else offset.clone())

    @property
    def kernel(self):
        return self.gp.covar_module

    @property
    def inducing_points(self):
        return self.gp.variational_strategy.inducing_points

    @property
    def noise(self) -> torch.Tensor:
        """The noise variance: shape (1,) (shared) or (D,) (per feature)."""
        return self.likelihood.noise

    @property
    def strategy(self):
        return self.gp.variational_strategy


class SVIELBO:
    """Minibatch estimate of the uncollapsed bound of an :class:`SVIGPLVM`, in nats.

    Parameters
    ----------
    model : SVIGPLVM
    num_data : int, N (the global number of rows under torch.distributed).
    masked : bool or None, default=None
        Whether the data have missing entries (NaN): True masks every batch (no host read-back
        per step), False never does, None looks at each batch.
    """

    def __init__(self, model: SVIGPLVM, num_data: int, masked: bool | None = None):
        self.model = model
        self.num_data = num_data
        self.masked = masked

    def terms(self, Y_batch, rows, generator, n_samples: int = 1):
        """Per-row terms E_q log p(y_n | f, x_n) - KL(q(x_n)), shape (B,), and KL(q(u)) (0-d).

        ``rows`` are the batch's row ids (used by free per-row q(x_n)); an amortized q(x | y)
        reads ``Y_batch`` instead (zero-filling its NaN). NaN entries of ``Y_batch`` are missing
        and left out of the expected log-likelihood. The expectation over x uses ``n_samples``
        reparameterized draws.
        """
        m = self.model
        mu, var = m.latent(Y_batch, rows)
        B, Q = mu.shape
        eps = torch.randn((n_samples, B, Q), generator=generator, device=mu.device, dtype=mu.dtype)
        x = (mu + var.sqrt() * eps).reshape(n_samples * B, Q)
        f = m.gp(x)  # a batch of D outputs over S * B points
        mean = f.mean.T.reshape(n_samples, B, -1) + m.offset
        fvar = f.variance.T.reshape(n_samples, B, -1)
        mask = (~torch.isnan(Y_batch) if self.masked
                else observed_mask(Y_batch) if self.masked is None else None)
        ell = m.likelihood.expected_log_prob(Y_batch, mean, fvar, mask).mean(0)
        return ell - m.latent.kl(mu, var), m.strategy.kl_divergence().sum()

    def __call__(self, Y_batch, rows, generator, n_samples: int = 1):
        """The estimate of the full bound from one batch: N / B * sum(terms) - KL(q(u))."""
        per_row, kl_u = self.terms(Y_batch, rows, generator, n_samples)
        return (self.num_data / per_row.shape[0]) * per_row.sum() - kl_u
