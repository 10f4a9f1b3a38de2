r"""The fitted GP decoder, frozen: q(u) over the inducing outputs and what follows from it.

With K_uu = L L^T and the whitened q(v) = N(m, S_d), v = L^{-1} u (one m column and one S_d per
output dim d; S_d shared when it comes from the collapsed bound), the decoder output at x is
f_d(x) = g_d(x) + c_d, c the constant offset (the data mean, in the likelihood's link), with

.. math::
    a(x) = L^{-1} k_u(x), \quad \mathbb E[g_d(x)] = a^\top m_d, \quad
    \mathbb V[g_d(x)] = k(x, x) - a^\top a + a^\top S_d a.

The evidence of a point given x integrates f out through the likelihood
(``likelihood.log_marginal``: log N(y; E f, V f + sigma^2) for the Gaussian). For a Gaussian
likelihood and a kernel with psi-statistics, the expected log-likelihood under a Gaussian q(x)
(what a new point's q(x*) maximizes) is closed form: with C = L^{-T}(\sum_d m_d m_d^\top + S_d - D I)
L^{-1} and r = y - c,

.. math::
    \mathbb E_{q(x)}\mathbb E_{q(f)} \log \mathcal N(y \mid f, \sigma^2 I) =
    -\tfrac D2 \log 2\pi\sigma^2 - \tfrac1{2\sigma^2}\big(\lVert r\rVert^2
    - 2 r^\top (\Psi_1 L^{-T} m) + D\psi_0 + \operatorname{tr}(C \Psi_2)\big);

otherwise it is a Monte Carlo average over fixed draws of x of the likelihood's own
``expected_log_prob``.

With per-feature noise sigma_d^2 or missing entries (NaN; m_d = 1 where y_d is observed) the
closed form is the sum over the observed d of its one-output terms: with
Q_d = L^{-T}(m_d m_d^\top + S_d - I) L^{-1} and w_d = m_d / sigma_d^2,

.. math::
    -\tfrac12 \sum_d m_d \log 2\pi\sigma_d^2 - \tfrac12\Big(\sum_d w_d\big(r_d^2
    - 2 r_d\, \Psi_1 L^{-T} m_d + \psi_0\big) + \operatorname{tr}\big(\Psi_2
    \textstyle\sum_d w_d Q_d\big)\Big),

the last sum one (n, D) by (D, M^2) product per chunk of rows; with no missing entry the weights
are the same for every row and it is one (M, M) matrix (on USPS, D = 256, M = 50, this product was
most of ``transform``'s time). The trace with Psi_2 is taken on its packed pairs
(:func:`~lvm.gplvm.psi.psi_statistics` with ``contract``), with no (n, M, M) stack. Every evidence of a row is that of its observed entries.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..likelihoods import GaussianLikelihood
from ..likelihoods._base import observed_mask
from .psi import has_psi_statistics, psi_statistics

__all__ = ["InducingPosterior"]


class InducingPosterior(nn.Module):
    """Frozen kernel, inducing inputs, likelihood and whitened q(u); nothing requires a gradient.

    Parameters
    ----------
    kernel : the fitted GPyTorch kernel (copied).
    inducing_points : (M, Q).   chol : (M, M) lower Cholesky factor of K_uu (with its jitter).
    mean : (M, D) whitened means m.   covar_root : (M, M) or (D, M, M), S_d = R_d R_d^T.
    likelihood : the fitted :class:`lvm.likelihoods.Likelihood` (copied).
    offset : (D,) the constant c added to every output (zeros by default).
    """

    def __init__(self, kernel, inducing_points, chol, mean, covar_root, likelihood, offset=None):
        super().__init__()
        self.kernel = copy.deepcopy(kernel).requires_grad_(False)
        self.likelihood = copy.deepcopy(likelihood).requires_grad_(False)
        D = mean.shape[1]
        if offset is None:
            offset = mean.new_zeros(D)
        for name, t in (("inducing_points", inducing_points), ("chol", chol), ("mean", mean),
                        ("covar_root", covar_root), ("offset", offset)):
            self.register_buffer(name, t.detach().clone())
        R = self.covar_root
        S = R @ R.mT
        S_sum = S * D if S.dim() == 2 else S.sum(0)
        eye = torch.eye(S_sum.shape[-1], dtype=S_sum.dtype, device=S_sum.device)
        inner = self.mean @ self.mean.T + S_sum - D * eye
        Linv = torch.linalg.solve_triangular(self.chol, eye, upper=False)
        self.register_buffer("quad", Linv.T @ inner @ Linv)  # C of the module docstring
        self.register_buffer("proj", torch.linalg.solve_triangular(self.chol.T, self.mean, upper=True))
        basis, spectra = _common_eigenbasis(S) if S.dim() == 3 else (None, None)
        self.register_buffer("basis", basis)
        self.register_buffer("spectra", spectra)

    @property
    def n_outputs(self) -> int:
        return self.mean.shape[1]

    @property
    def noise(self) -> torch.Tensor:
        """The Gaussian likelihood's noise variance (shape (1,) or (D,))."""
        return self.likelihood.noise

    def predict(self, X: torch.Tensor):
        """Mean (..., D) and variance ((..., 1) when S is shared, else (..., D)) of f at X (..., Q)."""
        lead = X.shape[:-1]
        X = X.reshape(-1, X.shape[-1])
        Kux = self.kernel(self.inducing_points, X).to_dense()
        A = torch.linalg.solve_triangular(self.chol, Kux, upper=False)  # (M, N)
        mean = A.T @ self.mean + self.offset
        kxx = self.kernel(X, diag=True)
        if self.covar_root.dim() == 2:
            RA = self.covar_root.T @ A
            var = (kxx - (A * A).sum(0) + (RA * RA).sum(0)).unsqueeze(-1)
        elif self.basis is not None:  # S_d = U diag(lambda_d) U^T: a^T S_d a = (U^T a)^2 . lambda_d
            UA = self.basis.T @ A  # (M, N)
            var = (kxx - (A * A).sum(0)).unsqueeze(-1) + (UA * UA).T @ self.spectra.T  # (N, D)
        else:
            var = (kxx - (A * A).sum(0)).unsqueeze(-1) + self._quadratic_forms(A)  # (N, D)
        var = var.clamp_min(torch.finfo(var.dtype).tiny)
        return mean.reshape(*lead, -1), var.reshape(*lead, -1)

    def _quadratic_forms(self, A: torch.Tensor) -> torch.Tensor:
        r""":math:`a_n^\top S_d a_n` of the columns a_n of ``A`` (M, N) for every output d, (N, D).

        With the upper triangle of each S_d (times 2 off the diagonal) as the rows of a
        (M(M+1)/2, D) matrix C, :math:`a^\top S_d a = \sum_{i \le j} a_i a_j C_{ij,d}`: row i of
        the triangle is one (N, M - i) by (M - i, D) product with the products
        :math:`a_i a_{j \ge i}`, accumulated. Half the multiply-adds of D (M, M) by (M, N)
        products, and no (D, M, N) intermediate to square and sum: on one thread, scoring 1,000
        rows of the SVI GPLVM (100 draws each, D = 100, M = 50, float64) took 2.8 s instead of
        23.2 s. C is computed from the buffers at each call (D M^3 work), so nothing is stored
        that a move to another device would leave behind."""
        R = self.covar_root
        M = R.shape[-1]
        i, j = torch.triu_indices(M, M, device=R.device)
        S = R @ R.mT  # (D, M, M)
        C = (S[:, i, j] * torch.where(i == j, 1.0, 2.0).to(S.dtype)).T  # (M(M+1)/2, D)
        out = A.new_zeros(A.shape[1], C.shape[1])
        start = 0
        for row in range(M):
            width = M - row
            out.addmm_((A[row] * A[row:]).T, C[start:start + width])
            start += width
        return out

    def log_marginal(self, Y, X):
        """log p(y | x) with f integrated out, per row: ``X`` (..., n, Q) -> (..., n); NaN entries
        of ``Y`` are missing (the density of the observed ones)."""
        mean, var = self.predict(X)
        return self.likelihood.log_marginal(Y, mean, var.expand_as(mean), observed_mask(Y))

    def _quad_per_output(self) -> torch.Tensor:
        """Q_d of the module docstring, flattened: (D, M * M) (computed once, on first use)."""
        if getattr(self, "_quad_d", None) is None:
            D, M = self.n_outputs, self.chol.shape[0]
            R = self.covar_root
            S = R @ R.mT
            eye = torch.eye(M, dtype=S.dtype, device=S.device)
            inner = self.mean.T.unsqueeze(-1) * self.mean.T.unsqueeze(-2) + S - eye  # (D, M, M)
            Linv = torch.linalg.solve_triangular(self.chol, eye, upper=False)
            self._quad_d = (Linv.T @ inner @ Linv).reshape(D, M * M)
        return self._quad_d

    def expected_log_likelihood(self, Y, mu, var, eps=None):
        """E_{q(x)} E_{q(f)} log p(y | f) per row (of the observed entries: NaN are missing);
        ``eps`` (S, n, Q) fixes the Monte Carlo draws used when there is no closed form."""
        mask = observed_mask(Y)
        if isinstance(self.likelihood, GaussianLikelihood) and has_psi_statistics(self.kernel):
            D, n = Y.shape[1], Y.shape[0]
            M = self.inducing_points.shape[0]
            noise = self.likelihood.noise
            R = Y - self.offset
            if noise.numel() == 1 and mask is None:
                noise = noise.reshape(())
                psi = psi_statistics(self.kernel, mu, var, self.inducing_points, per_point=True,
                                     contract=self.quad)
                Ef = psi.psi1 @ self.proj
                second = D * psi.psi0 + psi.psi2
                sq = (R * R).sum(-1) - 2.0 * (R * Ef).sum(-1) + second
                return -0.5 * D * torch.log(2 * math.pi * noise) - 0.5 * sq / noise
            noise = noise.expand(D)
            m = torch.ones_like(R) if mask is None else mask.to(R.dtype)
            R = torch.where(m > 0, R, R.new_zeros(()))
            w = m / noise  # (n, D)
            if mask is None:  # the same weights for every row: one (M, M) matrix
                G = ((1.0 / noise) @ self._quad_per_output()).reshape(M, M)
            else:
                G = (w @ self._quad_per_output()).reshape(n, M, M)  # sum_d w_d Q_d per row
            psi = psi_statistics(self.kernel, mu, var, self.inducing_points, per_point=True,
                                 contract=G)
            Ef = psi.psi1 @ self.proj
            sq = ((w * (R * R - 2.0 * R * Ef)).sum(-1) + w.sum(-1) * psi.psi0 + psi.psi2)
            return -0.5 * (m * torch.log(2 * math.pi * noise)).sum(-1) - 0.5 * sq
        x = mu + var.sqrt() * eps  # (S, n, Q)
        mean, fvar = self.predict(x)
        return self.likelihood.expected_log_prob(Y, mean, fvar.expand_as(mean), mask).mean(0)


def _common_eigenbasis(S: torch.Tensor, rtol: float = 1e-9):
    r"""(U, Lambda) with S_d = U diag(Lambda_d) U^T for every d, when the S_d (D, M, M) share an
    eigenbasis, else (None, None).

    They do for the collapsed bound with per-feature noise and complete data, where
    S_d = (I + beta_d L^{-1} \Psi_2 L^{-T})^{-1} are functions of one matrix. The predictive
    variance a^T S_d a of every output is then one (N, M) by (M, D) product instead of D
    (M, M) by (M, N) ones. The basis comes from a generic combination of the S_d and is kept
    only if it diagonalizes each of them to ``rtol`` of its largest entry.
    """
    D = S.shape[0]
    weights = torch.linspace(1.0, 2.0, D, dtype=S.dtype, device=S.device) ** 0.5
    _, U = torch.linalg.eigh((weights.view(-1, 1, 1) * S).sum(0))
    T = U.T @ S @ U  # (D, M, M)
    spectra = torch.diagonal(T, dim1=-2, dim2=-1)  # (D, M)
    off = T - torch.diag_embed(spectra)
    scale = S.abs().amax().clamp_min(torch.finfo(S.dtype).tiny)
    if not bool((off.abs().amax() <= rtol * scale).all()):
        return None, None
    return U, spectra
