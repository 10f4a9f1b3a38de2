r"""Closed-form kernel expectations (psi-statistics) under q(x) = N(mu, diag s).

For a kernel k and inducing inputs Z (M x Q), the collapsed bound needs

.. math::
    \psi_0^{(n)} = \mathbb E_{q(x_n)}[k(x_n, x_n)], \quad
    \Psi_1^{(nm)} = \mathbb E_{q(x_n)}[k(x_n, z_m)], \quad
    \Psi_2^{(mm')} = \sum_n \mathbb E_{q(x_n)}[k(z_m, x_n) k(x_n, z_{m'})].

GPyTorch has none, so they are written here, in closed form (Titsias & Lawrence, 2010), for

* the RBF-ARD kernel ``ScaleKernel(RBFKernel(ard_num_dims=Q))``, sigma^2 exp(-|x - x'|^2_L / 2):

  .. math::
      \Psi_1^{(nm)} = \sigma^2 \prod_q (1 + s_{nq}/l_q^2)^{-1/2}
          \exp\Big(-\tfrac12 \sum_q \frac{(\mu_{nq} - z_{mq})^2}{l_q^2 + s_{nq}}\Big),

      \Psi_2^{(n,mm')} = \sigma^4 \prod_q (1 + 2 s_{nq}/l_q^2)^{-1/2}
          \exp\Big(-\sum_q \frac{(z_{mq} - z_{m'q})^2}{4 l_q^2}
                   - \sum_q \frac{(\mu_{nq} - \bar z_{q})^2}{l_q^2 + 2 s_{nq}}\Big),
      \quad \bar z = (z_m + z_{m'}) / 2;

* the linear-ARD kernel ``LinearKernel(ard_num_dims=Q)``, x^T diag(v) x':
  psi_0 = sum_q v_q (mu_q^2 + s_q), Psi_1 = mu diag(v) Z^T,
  Psi_2 = Z diag(v) (mu^T mu + diag(sum_n s_n)) diag(v) Z^T.

* the sum ``AdditiveKernel(LinearKernel(ard), ScaleKernel(RBFKernel(ard)))`` (``kernel="linear+rbf"``,
  either order): psi_0 and Psi_1 are the sums of the parts', and
  Psi_2 = Psi_2^lin + Psi_2^rbf + X + X^T with the cross term
  X^{(n)}_{mm'} = E[k_lin(z_m, x_n) k_rbf(x_n, z_{m'})]. The RBF factor times q(x_n) is
  Psi_1^{rbf (nm')} times the Gaussian N(x; c_{nm'}, diag(s_n l^2 / (s_n + l^2))), so
  E[x k_rbf(x, z_{m'})] = Psi_1^{rbf (nm')} c_{nm'}, and

  .. math::
      X^{(n)}_{mm'} = \Psi_1^{\mathrm{rbf}\,(nm')} \sum_q v_q z_{mq}
          \frac{l_q^2 \mu_{nq} + s_{nq} z_{m'q}}{l_q^2 + s_{nq}},

  whose (weighted) sum over n is Z diag(v) T^T with T_{m'q} = sum_n w_n Psi_1^{rbf (nm')}
  (a_{nq} + b_{nq} z_{m'q}), a = l^2 mu / (l^2 + s), b = s / (l^2 + s): O(N M Q), no N x M x M term.

With ``weights`` W (N, D) (the observed-entry mask of data with missing values, one column per
output dim), Psi_2 is one weighted sum per column, Psi_2^{(d)} = sum_n w_{nd} Psi_2^{(n)}, shape
(D, M, M): for the RBF kernel one product W^T exp(log terms) on the packed pairs m <= m'.
For the sum kernel the cross term's weighted sums are formed the same way (psi_0 and Psi_1 are
unchanged by the weights).

The squared distances are expanded into one matrix product of (N, 2Q+1) by (2Q+1, K) features, so
nothing of size N x M x M x Q is formed, and only the M (M+1) / 2 pairs m <= m' of the symmetric
Psi_2 are computed; its sum over n runs over row chunks with activation checkpointing when N M^2
is large, so memory stays O(chunk x M^2).
"""

from __future__ import annotations

from typing import NamedTuple

import gpytorch
import torch
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

__all__ = ["PsiStatistics", "psi_statistics", "has_psi_statistics"]

#: Row chunk for the N x M^2 terms of Psi_2 ...
PSI2_CHUNK = 2048
#: ... used only when the N x M (M + 1) / 2 terms are more than this many (128 MiB in float64):
#: below it one pass (without recomputing each chunk in the backward pass) is faster. On USPS
#: (N = 7291, D = 256, M = 50) one evaluation of the collapsed bound and its gradient took 0.75
#: and 0.84 of the checkpointed chunks' time (two repeats, one thread, busy 2-core machine).
PSI2_UNCHUNKED_ELEMENTS = 2**24


class PsiStatistics(NamedTuple):
    psi0: torch.Tensor  # (N,)
    psi1: torch.Tensor  # (N, M)
    psi2: torch.Tensor  # (M, M) summed over n, (N, M, M) per point, or (D, M, M) weighted sums


def _rbf_parts(kernel):
    base = kernel.base_kernel
    return kernel.outputscale, base.lengthscale.reshape(-1) ** 2


def _gauss_features(mu, w, centres, offset):
    """(F, G), (N, 2Q+1) and (K, 2Q+1) features whose product F G^T is
    offset_n - sum_q w_nq (mu_nq - c_kq)^2 / 2 for all n, k."""
    F = torch.cat([offset - 0.5 * (w * mu * mu).sum(-1, keepdim=True), w * mu, -0.5 * w], dim=-1)
    G = torch.cat([torch.ones_like(centres[:, :1]), centres, centres * centres], dim=-1)
    return F, G


def _log_gauss_terms(mu, w, centres, offset):
    """offset_n - sum_q w_nq (mu_nq - c_kq)^2 / 2 for all n, k, as one matrix product of (N, 2Q+1)
    features with (K, 2Q+1) features (no N x K x Q intermediate, no N x K elementwise pass): (N, K)."""
    F, G = _gauss_features(mu, w, centres, offset)
    return F @ G.T


class _ExpSum(torch.autograd.Function):
    r"""S = W^T exp(F G^T), shape (D, K) (or 1^T exp(F G^T), (K,), without W), with its gradient
    in closed form: with E = exp(F G^T) and dE = E * (W dS) (E * dS for the plain sum),

    .. math::
        \nabla_F = dE\, G, \qquad \nabla_G = dE^\top F, \qquad \nabla_W = E\, dS^\top.

    The (N, K) matrix E, the whole cost, is made once (exponentiated in place) and kept, and the
    two products are taken in the layouts the BLAS is fast in: autograd's graph of the same
    expression multiplies by an expanded gradient and runs both products transposed (on the CPU,
    N = 331, K = 1275, Q = 2: 1.5 against 0.6 ms for the backward pass).
    """

    @staticmethod
    def forward(ctx, F, G, W):
        E = torch.mm(F, G.mT).exp_()
        ctx.save_for_backward(F, G, W, E)
        return E.sum(0) if W is None else W.mT @ E

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        F, G, W, E = ctx.saved_tensors
        grad_W = E @ grad.mT if W is not None and ctx.needs_input_grad[2] else None
        # In place: E is not needed again (a second backward through the same graph raises
        # autograd's error for a saved tensor modified in place), and a fresh (N, K) buffer is
        # memory the allocator may have to fault in page by page.
        dE = E.mul_(grad if W is None else W @ grad)
        grad_F = torch.mm(G.mT, dE.mT).mT if ctx.needs_input_grad[0] else None
        grad_G = torch.mm(F.mT, dE).mT if ctx.needs_input_grad[1] else None
        return grad_F, grad_G, grad_W


def _rbf(kernel, mu, var, Z, per_point, weights=None, contract=None):
    sf2, l2 = _rbf_parts(kernel)
    N, M = mu.shape[0], Z.shape[0]
    psi0 = sf2.expand(N)
    log_psi1 = _log_gauss_terms(mu, 1.0 / (l2 + var), Z, -0.5 * torch.log1p(var / l2).sum(-1, keepdim=True))
    psi1 = sf2 * torch.exp(log_psi1)
    # Psi_2 is symmetric in (m, m'): only the M (M + 1) / 2 pairs m <= m' are computed.
    iu = torch.triu_indices(M, M, device=Z.device)
    zbar = 0.5 * (Z[iu[0]] + Z[iu[1]])  # (K, Q)
    front = sf2 * sf2 * torch.exp(-0.25 * (((Z[iu[0]] - Z[iu[1]]) ** 2) / l2).sum(-1))  # (K,)

    def log_features(m, v):
        w = 1.0 / (l2 + 2.0 * v)
        # The -(1/2) log(1 + 2 s / l^2) prefactor rides in the first feature column.
        return _gauss_features(m, 2.0 * w, zbar, -0.5 * torch.log1p(2.0 * v / l2).sum(-1, keepdim=True))

    def unpack(vals):  # (..., K) -> (..., M, M)
        out = vals.new_zeros(vals.shape[:-1] + (M, M))
        out[..., iu[0], iu[1]] = vals
        out[..., iu[1], iu[0]] = vals
        return out

    if per_point:
        F, G = log_features(mu, var)
        vals = front * torch.exp(F @ G.mT)  # (N, K)
        if contract is not None:  # tr(G Psi_2^(n)) on the packed pairs, off-diagonal ones twice
            pair = 2.0 - (iu[0] == iu[1]).to(vals.dtype)
            return PsiStatistics(psi0, psi1, (vals * (contract[..., iu[0], iu[1]] * pair)).sum(-1))
        return PsiStatistics(psi0, psi1, unpack(vals))

    if weights is None:
        def chunk_sum(m, v):
            return _ExpSum.apply(*log_features(m, v), None)
    else:
        def chunk_sum(m, v, w):  # (D, K): one weighted sum over the rows per column of w
            return _ExpSum.apply(*log_features(m, v), w)

    args = (mu, var) if weights is None else (mu, var, weights)
    if N <= PSI2_CHUNK or N * iu.shape[1] <= PSI2_UNCHUNKED_ELEMENTS:
        total = chunk_sum(*args)
    else:
        total = 0.0
        for i in range(0, N, PSI2_CHUNK):
            total = total + checkpoint(chunk_sum, *(a[i:i + PSI2_CHUNK] for a in args),
                                       use_reentrant=False)
    return PsiStatistics(psi0, psi1, unpack(front * total))


def _linear(kernel, mu, var, Z, per_point, weights=None):
    v = kernel.variance.reshape(-1)
    psi0 = ((mu * mu + var) * v).sum(-1)
    Zv = Z * v
    psi1 = mu @ Zv.T
    if per_point:
        psi2 = psi1.unsqueeze(-1) * psi1.unsqueeze(-2) + torch.einsum("mq,nq,kq->nmk", Zv, var, Zv)
    elif weights is not None:
        psi2 = (torch.einsum("nd,nm,nk->dmk", weights, psi1, psi1)
                + torch.einsum("mq,dq,kq->dmk", Zv, weights.T @ var, Zv))
    else:
        psi2 = psi1.T @ psi1 + (Zv * var.sum(0)) @ Zv.T
    return PsiStatistics(psi0, psi1, psi2)


def _sum_parts(kernel):
    """(linear, scaled RBF) parts of an AdditiveKernel of exactly those two, else None."""
    if type(kernel) is not gpytorch.kernels.AdditiveKernel or len(kernel.kernels) != 2:
        return None
    lin = [k for k in kernel.kernels if _dispatch(k) is _linear]
    rbf = [k for k in kernel.kernels if _dispatch(k) is _rbf]
    return (lin[0], rbf[0]) if len(lin) == 1 and len(rbf) == 1 else None


def _linear_plus_rbf(kernel, mu, var, Z, per_point, weights=None):
    lin, rbf = _sum_parts(kernel)
    b = _rbf(rbf, mu, var, Z, per_point, weights)
    l2 = rbf.base_kernel.lengthscale.reshape(-1) ** 2
    Zv = Z * lin.variance.reshape(-1)  # (M, Q)
    shrink = var / (l2 + var)  # b_nq: the weight of z_m' in the mean c_nm' of x under k_rbf q(x)
    pull = mu * (1.0 - shrink)  # a_nq = l^2 mu / (l^2 + s)
    if per_point:
        # Psi_2^lin(n) + X^(n) + X^(n)T as one batched product of (M, 3Q+1) factors (one N x M x M
        # result, no transposed copy): Psi_2^lin(n) = p p^T + (Zv diag s_n) Zv^T with p = Zv mu_n,
        # and X^(n) = Zv R_n^T with R_n = Psi_1^rbf_n (x) c_n, c_{nm'q} = a_nq + b_nq z_m'q.
        N, M = mu.shape[0], Z.shape[0]
        p = mu @ Zv.T  # (N, M): Psi_1 of the linear part
        R = b.psi1.unsqueeze(-1) * (pull.unsqueeze(1) + shrink.unsqueeze(1) * Z)  # (N, M, Q)
        Zv_n = Zv.expand(N, M, Zv.shape[1])
        left = torch.cat([Zv * var.unsqueeze(1), p.unsqueeze(-1), Zv_n, R], dim=-1)
        right = torch.cat([Zv_n, p.unsqueeze(-1), R, Zv_n], dim=-1)
        psi0 = ((mu * mu + var) * lin.variance.reshape(-1)).sum(-1)
        return PsiStatistics(psi0 + b.psi0, p + b.psi1, torch.baddbmm(b.psi2, left, right.mT))
    a = _linear(lin, mu, var, Z, per_point, weights)
    Q = Z.shape[1]
    if weights is None:
        AB = b.psi1.T @ torch.cat([pull, shrink], dim=-1)  # (M, 2Q)
    else:  # w^T (Psi_1 (x) [a, b]) by row chunks of (n, M, 2Q): no (D, N, M) or N M^2 term
        ab = torch.cat([pull, shrink], dim=-1)
        AB = 0.0
        for i in range(0, mu.shape[0], PSI2_CHUNK):
            rows = slice(i, i + PSI2_CHUNK)
            G = b.psi1[rows].unsqueeze(-1) * ab[rows].unsqueeze(1)
            AB = AB + weights[rows].T @ G.reshape(G.shape[0], -1)
        AB = AB.reshape(-1, Z.shape[0], 2 * Q)
    T = AB[..., :Q] + Z * AB[..., Q:]  # (M, Q) or (D, M, Q)
    cross = Zv @ T.mT
    return PsiStatistics(a.psi0 + b.psi0, a.psi1 + b.psi1, a.psi2 + b.psi2 + cross + cross.mT)


def _dispatch(kernel):
    if isinstance(kernel, gpytorch.kernels.ScaleKernel) and type(kernel.base_kernel) is gpytorch.kernels.RBFKernel:
        return _rbf
    if type(kernel) is gpytorch.kernels.LinearKernel:
        return _linear
    if _sum_parts(kernel) is not None:
        return _linear_plus_rbf
    return None


def has_psi_statistics(kernel) -> bool:
    """Whether the kernel's expectations under a Gaussian q(x) are available in closed form."""
    return _dispatch(kernel) is not None


def psi_statistics(kernel, mu, var, Z, *, per_point: bool = False, weights=None,
                   contract=None) -> PsiStatistics:
    """psi_0 (N,), Psi_1 (N, M) and Psi_2 ((M, M) summed over n, (N, M, M) with ``per_point``, or
    (D, M, M) with ``weights``).

    Parameters
    ----------
    kernel : ``ScaleKernel(RBFKernel(ard_num_dims=Q))``, ``LinearKernel(ard_num_dims=Q)`` or their
        sum (``AdditiveKernel`` of the two, in either order).
    mu, var : (N, Q) means and variances of q(x).
    Z : (M, Q) inducing inputs.
    per_point : bool, return every point's Psi_2^(n).
    contract : (M, M) or (N, M, M) symmetric tensor G, optional (with ``per_point``); psi2 is then
        tr(G Psi_2^(n)) per point, (N,): for the RBF kernel from the M (M + 1) / 2 packed pairs,
        without forming the (N, M, M) stack (on USPS, 1024 rows, M = 50, D = 256: 23-28 ms per
        step of ``transform`` against 90 ms forming it, back-to-back runs, busy machine).
    weights : (N, D) tensor, optional; Psi_2 is then the stack sum_n w_nd Psi_2^(n) (not with
        ``per_point``).
    """
    fn = _dispatch(kernel)
    if fn is None:
        raise ValueError(
            f"No closed-form psi-statistics for {type(kernel).__name__}"
            + (f"({type(kernel.base_kernel).__name__})" if hasattr(kernel, "base_kernel") else "")
            + "; they exist for kernel='rbf', 'linear' and 'linear+rbf'. Use inference='svi' for "
            "other kernels."
        )
    if weights is not None and per_point:
        raise ValueError("weights sum Psi_2 over the points; per_point=True returns each point's.")
    if weights is not None:
        weights = weights.to(mu.dtype)  # a boolean mask of observed entries, too
    if contract is not None:
        if not per_point:
            raise ValueError("contract needs per_point=True.")
        if fn is _rbf:
            return _rbf(kernel, mu, var, Z, True, None, contract)
        psi = fn(kernel, mu, var, Z, True, None)
        return PsiStatistics(psi.psi0, psi.psi1, (psi.psi2 * contract).sum((-1, -2)))
    return fn(kernel, mu, var, Z, per_point, weights)
