r"""The fitted GP decoder, frozen: q(u) over the inducing outputs and what follows from it.

With K_uu = L L^T and the whitened q(v) = N(m, S_d), v = L^{-1} u (one m column and one S_d per
output dim d; S_d shared when it comes from the collapsed bound), the predictive at x is

.. math::
    a(x) = L^{-1} k_u(x), \quad \mathbb E[f_d(x)] = a^\top m_d, \quad
    \mathbb V[f_d(x)] = k(x, x) - a^\top a + a^\top S_d a.

Its expected log-likelihood under a Gaussian q(x) (what a new point's q(x*) maximizes) is closed
form through the psi-statistics: with C = L^{-T}(\sum_d m_d m_d^\top + S_d - D I) L^{-1},

.. math::
    \mathbb E_{q(x)}\mathbb E_{q(f)} \log \mathcal N(y \mid f, \sigma^2 I) =
    -\tfrac D2 \log 2\pi\sigma^2 - \tfrac1{2\sigma^2}\big(\lVert y\rVert^2
    - 2 y^\top (\Psi_1 L^{-T} m) + D\psi_0 + \operatorname{tr}(C \Psi_2)\big),

and a Monte Carlo average over fixed draws of x for kernels without psi-statistics.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .psi import has_psi_statistics, psi_statistics

__all__ = ["InducingPosterior"]


class InducingPosterior(nn.Module):
    """Frozen kernel, inducing inputs, noise and whitened q(u); no parameter requires a gradient.

    Parameters
    ----------
    kernel : the fitted GPyTorch kernel (copied).
    inducing_points : (M, Q).   chol : (M, M) lower Cholesky factor of K_uu (with its jitter).
    mean : (M, D) whitened means m.   covar_root : (M, M) or (D, M, M), S_d = R_d R_d^T.
    noise : 0-d tensor sigma^2.
    """

    def __init__(self, kernel, inducing_points, chol, mean, covar_root, noise):
        super().__init__()
        self.kernel = copy.deepcopy(kernel).requires_grad_(False)
        for name, t in (("inducing_points", inducing_points), ("chol", chol), ("mean", mean),
                        ("covar_root", covar_root), ("noise", noise)):
            self.register_buffer(name, t.detach().clone())
        D = mean.shape[1]
        R = self.covar_root
        S = R @ R.mT
        S_sum = S * D if S.dim() == 2 else S.sum(0)
        eye = torch.eye(S_sum.shape[-1], dtype=S_sum.dtype, device=S_sum.device)
        inner = self.mean @ self.mean.T + S_sum - D * eye
        Linv = torch.linalg.solve_triangular(self.chol, eye, upper=False)
        self.register_buffer("quad", Linv.T @ inner @ Linv)  # C of the module docstring
        self.register_buffer("proj", torch.linalg.solve_triangular(self.chol.T, self.mean, upper=True))

    @property
    def n_outputs(self) -> int:
        return self.mean.shape[1]

    def predict(self, X: torch.Tensor):
        """Predictive mean (N, D) and variance ((N, D), or (N, 1) when S is shared) of f at X."""
        Kux = self.kernel(self.inducing_points, X).to_dense()
        A = torch.linalg.solve_triangular(self.chol, Kux, upper=False)  # (M, N)
        mean = A.T @ self.mean
        kxx = self.kernel(X, diag=True)
        if self.covar_root.dim() == 2:
            RA = self.covar_root.T @ A
            var = kxx - (A * A).sum(0) + (RA * RA).sum(0)
            var = var.unsqueeze(-1)
        else:
            RA = self.covar_root.mT @ A  # (D, M, N)
            var = kxx - (A * A).sum(0) + (RA * RA).sum(1)  # (D, N)
            var = var.T
        return mean, var.clamp_min(1e-12)

    def log_likelihood(self, Y, X):
        """log p(y | x) = sum_d log N(y_d; E f_d(x), V f_d(x) + sigma^2), for rows of Y and X."""
        mean, var = self.predict(X)
        var = var + self.noise
        r = Y - mean
        return -0.5 * (torch.log(2 * math.pi * var) + r * r / var).sum(-1)

    def expected_log_likelihood(self, Y, mu, var, eps=None):
        """E_{q(x)} E_{q(f)} log N(y | f, sigma^2 I) per row; ``eps`` (S, Q) fixes the Monte Carlo
        draws used when the kernel has no psi-statistics."""
        N, D = Y.shape
        noise = self.noise
        if has_psi_statistics(self.kernel):
            psi = psi_statistics(self.kernel, mu, var, self.inducing_points, per_point=True)
            Ef = psi.psi1 @ self.proj
            second = D * psi.psi0 + (psi.psi2 * self.quad).sum((-1, -2))
            sq = (Y * Y).sum(-1) - 2.0 * (Y * Ef).sum(-1) + second
            return -0.5 * D * torch.log(2 * math.pi * noise) - 0.5 * sq / noise
        S = eps.shape[0]
        x = (mu + var.sqrt() * eps.unsqueeze(1)).reshape(S * N, -1)
        mean, fvar = self.predict(x)
        r = Y.repeat(S, 1) - mean
        ell = -0.5 * (torch.log(2 * math.pi * noise) + (r * r + fvar) / noise).sum(-1)
        return ell.reshape(S, N).mean(0)
