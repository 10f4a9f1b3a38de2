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

**Per-feature noise and missing entries.** The D output dims are independent given x, so the
bound is a sum over d of single-output bounds, each on the rows n where y_{nd} is observed
(m_{nd} = 1), with its own noise beta_d^{-1}:

.. math::
    \mathcal F = \sum_d \Big( -\tfrac{N_d}2 \log(2\pi\sigma_d^2) - \sum \log \operatorname{diag} L_{B,d}
        - \tfrac{\beta_d}2 \lVert m_d \odot y_d\rVert^2 + \tfrac{\beta_d^2}2 \lVert c_d\rVert^2
        - \tfrac{\beta_d}2\big(\psi_0^{(d)} - \operatorname{tr}(L^{-1}\Psi_2^{(d)} L^{-T})\big)\Big)
        - \sum_n \mathrm{KL}(q(x_n) \,\|\, \mathcal N(0, I)),

with N_d = sum_n m_{nd}, psi_0^{(d)} = sum_n m_{nd} psi_0^{(n)},
Psi_2^{(d)} = sum_n m_{nd} Psi_2^{(n)} (:func:`~lvm.gplvm.psi.psi_statistics` with ``weights``),
A_d = I + beta_d L^{-1} Psi_2^{(d)} L^{-T} = L_{B,d} L_{B,d}^T and
c_d = L_{B,d}^{-1} L^{-1} \Psi_1^\top (m_d \odot y_d). The D factorizations are one batched
Cholesky of a (D, M, M) stack (with complete data Psi_2 is shared and only beta_d differs). A
column with nothing observed contributes zero (A_d = I), so the bound with whole columns masked
is the bound of the data without them. The optimal q(v_d) is N(beta_d L_{B,d}^{-T} c_d,
L_{B,d}^{-T} L_{B,d}^{-1}), one covariance per output dim. With complete data and one shared
noise, the single factorization above is used.

The objective is kept apart from the model (as GPyTorch's ``mlls``): :class:`CollapsedELBO` takes a
:class:`SparseGPLVM` and data and returns the bound.

Two factorizations can fail, and they need different remedies: K_uu (ill-conditioned inducing
inputs; more jitter helps) and A = I + beta L^{-1} Psi_2 L^{-T} (the noise driven so small that A's
entries dwarf the identity; only a higher noise floor helps). A failure of the second raises
:class:`NoiseTooSmallError`, so the training loop's recovery can act at the right depth.
"""

from __future__ import annotations

import math

import gpytorch
import torch
from linear_operator.utils.cholesky import psd_safe_cholesky
from linear_operator.utils.errors import NotPSDError
from torch import nn

from ..likelihoods._base import observed_mask
from .psi import psi_statistics

__all__ = ["SparseGPLVM", "CollapsedELBO", "collapsed_terms", "kuu_cholesky", "NoiseTooSmallError"]


class NoiseTooSmallError(NotPSDError):
    """The Cholesky factorization of A = I + beta L^{-1} Psi_2 L^{-T} failed: the noise variance is
    too small next to the signal for the factorization in this precision."""


def kuu_cholesky(kernel, Z, jitter: float) -> torch.Tensor:
    """Cholesky factor of K_uu + jitter * mean(diag K_uu) I (the jitter is relative)."""
    with gpytorch.settings.lazily_evaluate_kernels(False):  # dense at once: no lazy wrapper
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
        """The noise variance: shape (1,) (shared) or (D,) (per feature)."""
        return self.likelihood.noise

    def kuu_cholesky(self, jitter: float) -> torch.Tensor:
        return kuu_cholesky(self.kernel, self.inducing_points, jitter)


def _raise_noise_too_small(info, noise):
    if bool(info.any()):
        raise NoiseTooSmallError(
            "the Cholesky factor of I + beta L^-1 Psi2 L^-T failed (noise variance "
            f"{float(noise.min()):.3g})")


def collapsed_terms(Y, psi, L, noise, mask=None, posterior=True):
    """The data term of the bound (everything but the KL of q(x)) and the whitened optimal q(u).

    Parameters
    ----------
    Y : (N, D) centred data; entries where ``mask`` is False are ignored (may be NaN).
    psi : :class:`~lvm.gplvm.psi.PsiStatistics`; with ``mask``, its Psi_2 must be the (D, M, M)
        weighted sums of ``psi_statistics(..., weights=mask)``.
    L : (M, M) Cholesky factor of K_uu.
    noise : noise variance, one (shape () or (1,)) or one per output dim (D,).
    mask : (N, D) bool, True where observed; None when everything is.
    posterior : bool, default=True
        Whether to form q(u) too (training needs only the bound: ``mean`` and ``covar_root``
        are then None, and the D triangular inverses are skipped).

    Returns ``(data_term, mean, covar_root)``: a 0-d tensor, the (M, D) mean and the root of the
    optimal whitened q(v), (M, M) when shared by all output dims, else (D, M, M).
    """
    N, D = Y.shape
    noise = noise.reshape(-1)
    M = L.shape[0]
    eye = torch.eye(M, dtype=L.dtype, device=L.device)
    if mask is None and noise.numel() == 1:
        noise = noise.reshape(())
        beta = 1.0 / noise
        tmp = torch.linalg.solve_triangular(L, psi.psi2, upper=False)
        C = torch.linalg.solve_triangular(L, tmp.T, upper=False)  # L^{-1} Psi2 L^{-T}
        LB, info = torch.linalg.cholesky_ex(eye + beta * C)
        _raise_noise_too_small(info, noise)
        c = torch.linalg.solve_triangular(L, psi.psi1.T @ Y, upper=False)
        c = torch.linalg.solve_triangular(LB, c, upper=False)
        data = (
            -0.5 * N * D * torch.log(2 * math.pi * noise)
            - D * torch.log(torch.diagonal(LB)).sum()
            - 0.5 * beta * (Y * Y).sum()
            + 0.5 * beta * beta * (c * c).sum()
            - 0.5 * beta * D * (psi.psi0.sum() - torch.diagonal(C).sum())
        )
        if not posterior:
            return data, None, None
        LBinvT = torch.linalg.solve_triangular(LB.T, eye, upper=True)
        return data, beta * (LBinvT @ c), LBinvT
    noise = noise.expand(D)
    beta = 1.0 / noise  # (D,)
    if mask is None:
        Y0 = Y
        counts = Y.new_full((D,), float(N))
        psi0 = psi.psi0.sum().expand(D)
    else:
        Y0 = torch.where(mask, Y, Y.new_zeros(()))
        w = mask.to(Y.dtype)
        counts = w.sum(0)
        psi0 = w.T @ psi.psi0
    tmp = torch.linalg.solve_triangular(L, psi.psi2, upper=False)
    C = torch.linalg.solve_triangular(L, tmp.mT, upper=False)  # (M, M) or (D, M, M)
    trC = torch.diagonal(C, dim1=-2, dim2=-1).sum(-1)  # () or (D,)
    LB, info = torch.linalg.cholesky_ex(eye + beta[:, None, None] * C)  # (D, M, M), batched
    _raise_noise_too_small(info, noise)
    P = torch.linalg.solve_triangular(L, psi.psi1.T @ Y0, upper=False)  # (M, D)
    c = torch.linalg.solve_triangular(LB, P.T.unsqueeze(-1), upper=False).squeeze(-1)  # (D, M)
    data = (
        -0.5 * (counts * torch.log(2 * math.pi * noise)).sum()
        - torch.log(torch.diagonal(LB, dim1=-2, dim2=-1)).sum()
        - 0.5 * (beta * (Y0 * Y0).sum(0)).sum()
        + 0.5 * (beta * beta * (c * c).sum(-1)).sum()
        - 0.5 * (beta * (psi0 - trC)).sum()
    )
    if not posterior:
        return data, None, None
    LBinvT = torch.linalg.solve_triangular(LB.mT, eye, upper=True)  # (D, M, M)
    mean = beta.unsqueeze(-1) * (LBinvT @ c.unsqueeze(-1)).squeeze(-1)  # (D, M)
    return data, mean.T, LBinvT


class CollapsedELBO:
    """The collapsed bound of a :class:`SparseGPLVM` on centred data, in nats (summed over points);
    NaN entries of the data are missing (left out of the bound, see the module docstring).

    Parameters
    ----------
    model : SparseGPLVM
    jitter : float, added to the diagonal of K_uu (relative to its mean) before its Cholesky
        factorization.
    """

    def __init__(self, model: SparseGPLVM, jitter: float = 1e-6):
        self.model = model
        self.jitter = jitter

    def terms(self, Y, posterior: bool = True):
        """``(bound, L, mean, covar_root)``; NaN in ``Y`` are missing entries (``mean`` and
        ``covar_root`` are None without ``posterior``)."""
        m = self.model
        mask = observed_mask(Y)
        mu, var = m.latent(Y, None)
        psi = psi_statistics(m.kernel, mu, var, m.inducing_points, weights=mask)
        L = m.kuu_cholesky(self.jitter)
        data, mean, root = collapsed_terms(Y, psi, L, m.noise, mask, posterior)
        kl = m.latent.kl(mu, var).sum()
        return data - kl, L, mean, root

    def __call__(self, Y) -> torch.Tensor:
        return self.terms(Y, posterior=False)[0]
