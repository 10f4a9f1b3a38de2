r"""The collapsed (Titsias & Lawrence, 2010) variational bound of the Bayesian GPLVM.

With q(u) integrated out at its optimum, for centred data Y (N x D), noise beta^{-1} = sigma^2,
K_uu = L L^T and A = I + beta L^{-1} \Psi_2 L^{-T} = L_B L_B^T,

.. math::
    \mathcal F = -\tfrac{ND}2 \log(2\pi\sigma^2) - D \sum \log \operatorname{diag} L_B
        - \tfrac\beta2 \lVert Y\rVert_F^2 + \tfrac{\beta^2}2 \lVert c\rVert_F^2
        - \tfrac{\beta D}2\big(\textstyle\sum_n \psi_0^{(n)} - \operatorname{tr}(L^{-1}\Psi_2 L^{-T})\big)
        - \sum_n \mathrm{KL}(q(x_n) \,\|\, \mathcal N(0, I)),
    \qquad c = L_B^{-1} L^{-1} \Psi_1^\top Y,

a deterministic lower bound on log p(Y). The optimal q(u), whitened (v = L^{-1} u), is
N(beta L_B^{-T} c, L_B^{-T} L_B^{-1}).

The objective is kept apart from the model (as GPyTorch's ``mlls``): :class:`CollapsedELBO` takes a
:class:`SparseGPLVM` and data and returns the bound.

Two factorizations can fail, and they need different remedies: K_uu (ill-conditioned inducing
inputs; more jitter helps) and A = I + beta L^{-1} Psi_2 L^{-T} (the noise driven so small that A's
entries dwarf the identity; only a higher noise floor helps). A failure of the second raises
:class:`NoiseTooSmallError`, so the training loop's recovery can act at the right depth.
"""

from __future__ import annotations

import math

import torch
from linear_operator.utils.cholesky import psd_safe_cholesky
from linear_operator.utils.errors import NotPSDError
from torch import nn

from .psi import psi_statistics

__all__ = ["SparseGPLVM", "CollapsedELBO", "collapsed_terms", "kuu_cholesky", "NoiseTooSmallError"]


class NoiseTooSmallError(NotPSDError):
    """The Cholesky factorization of A = I + beta L^{-1} Psi_2 L^{-T} failed: the noise variance is
    too small next to the signal for the factorization in this precision."""


def kuu_cholesky(kernel, Z, jitter: float) -> torch.Tensor:
    """Cholesky factor of K_uu + jitter * mean(diag K_uu) I (the jitter is relative)."""
    Kuu = kernel(Z).to_dense()
    scale = torch.diagonal(Kuu).mean().detach().clamp_min(torch.finfo(Kuu.dtype).tiny)
    Kuu = Kuu + (jitter * scale) * torch.eye(Kuu.shape[0], dtype=Kuu.dtype, device=Kuu.device)
    return psd_safe_cholesky(Kuu)


class SparseGPLVM(nn.Module):
    """The collapsed-mode model: q(x), a GPyTorch kernel, a Gaussian likelihood (from
    :mod:`lvm.likelihoods`) and inducing inputs Z."""

    def __init__(self, latent, kernel, likelihood, inducing_points):
        super().__init__()
        self.latent = latent
        self.kernel = kernel
        self.likelihood = likelihood
        self.inducing_points = nn.Parameter(inducing_points.clone())

    @property
    def noise(self) -> torch.Tensor:
        return self.likelihood.noise.reshape(())

    def kuu_cholesky(self, jitter: float) -> torch.Tensor:
        return kuu_cholesky(self.kernel, self.inducing_points, jitter)


def collapsed_terms(Y, psi, L, noise):
    """The data term of the bound (everything but the KL of q(x)) and the whitened optimal q(u).

    Returns ``(data_term, mean, covar_root)``: a 0-d tensor and the (M, D) mean and (M, M) root of the
    optimal whitened q(v).
    """
    N, D = Y.shape
    beta = 1.0 / noise
    M = L.shape[0]
    eye = torch.eye(M, dtype=L.dtype, device=L.device)
    tmp = torch.linalg.solve_triangular(L, psi.psi2, upper=False)
    C = torch.linalg.solve_triangular(L, tmp.T, upper=False)  # L^{-1} Psi2 L^{-T}
    LB, info = torch.linalg.cholesky_ex(eye + beta * C)
    if bool(info.any()):
        raise NoiseTooSmallError(
            f"the Cholesky factor of I + beta L^-1 Psi2 L^-T failed (noise variance {float(noise):.3g})")
    c = torch.linalg.solve_triangular(L, psi.psi1.T @ Y, upper=False)
    c = torch.linalg.solve_triangular(LB, c, upper=False)
    data = (
        -0.5 * N * D * torch.log(2 * math.pi * noise)
        - D * torch.log(torch.diagonal(LB)).sum()
        - 0.5 * beta * (Y * Y).sum()
        + 0.5 * beta * beta * (c * c).sum()
        - 0.5 * beta * D * (psi.psi0.sum() - torch.diagonal(C).sum())
    )
    LBinvT = torch.linalg.solve_triangular(LB.T, eye, upper=True)
    return data, beta * (LBinvT @ c), LBinvT


class CollapsedELBO:
    """The collapsed bound of a :class:`SparseGPLVM` on centred data, in nats (summed over points).

    Parameters
    ----------
    model : SparseGPLVM
    jitter : float, added to the diagonal of K_uu (relative to its mean) before its Cholesky
        factorization.
    """

    def __init__(self, model: SparseGPLVM, jitter: float = 1e-6):
        self.model = model
        self.jitter = jitter

    def terms(self, Y):
        m = self.model
        mu, var = m.latent(Y, None)
        psi = psi_statistics(m.kernel, mu, var, m.inducing_points)
        L = m.kuu_cholesky(self.jitter)
        data, mean, root = collapsed_terms(Y, psi, L, m.noise)
        kl = m.latent.kl(mu, var).sum()
        return data - kl, L, mean, root

    def __call__(self, Y) -> torch.Tensor:
        return self.terms(Y)[0]
