r"""Exact evidence, posterior and conditional of partly observed rows under a linear-Gaussian model.

For y = W x + mu + e with x ~ N(0, I_K) and e ~ N(0, diag(psi)), a row whose entries are observed
where its mask m_n is True has the marginal of its observed entries o = {d : m_nd},

    p(y_o) = N(y_o; mu_o, C_oo),    C_oo = W_o W_o^T + diag(psi_o),

and the posterior of its latent given those entries,

    p(x | y_o) = N(xhat_n, M_n^{-1}),    M_n = I_K + W^T diag(m_n / psi) W,
    xhat_n = M_n^{-1} W^T diag(m_n / psi) (y_n - mu)

(the missing entries drop out because m_nd / psi_d = 0 there). With r = y_o - mu_o,

    log det C_oo = sum_{d in o} log psi_d + log det M_n,
    r^T C_oo^{-1} r = ||r - W_o xhat_n||^2_{Psi_o^{-1}} + ||xhat_n||^2,

the second line a sum of non-negative terms: unlike the Woodbury difference
r^T Psi^{-1} r - b^T M^{-1} b (b = W^T Psi^{-1} r), whose two terms grow like 1/psi and cancel, it
stays accurate when the noise is tiny relative to W W^T.

**How it is computed.** With B_n = diag(sqrt(m_n / psi)) W and
rt_n = diag(sqrt(m_n / psi)) (y_n - mu) (zero in the missing entries), xhat_n is the solution of
the regularized least-squares problem min_x ||B_n x - rt_n||^2 + ||x||^2 and r^T C_oo^{-1} r is its
minimum. One Householder QR of the (D + K) x (K + 1) matrix

    [ B_n   rt_n ]           [ U_n   c_n   ]
    [ I_K   0    ]  =  Q_n   [ 0     rho_n ]

gives all of it: U_n^T U_n = M_n (so log det M_n = 2 sum_k log |U_kk|), xhat_n = U_n^{-1} c_n and
r^T C_oo^{-1} r = rho_n^2, the norm of the least-squares residual [rt_n - B_n xhat_n; -xhat_n]. The
QR never forms M_n = I + B_n^T B_n, whose rounding would erase the identity when psi is tiny and
W_o is (nearly) rank deficient (for example a row with fewer observed entries than K), and it is
batched over rows: O(N (D + K) K^2) work, no Python loop over rows or missingness patterns, and
chunks of rows bound the memory.

The conditional of the missing entries given the observed ones follows from the posterior:

    E[y_m | y_o] = W_m xhat_n + mu_m,
    y_m | y_o  =  W_m x + mu_m + e_m,   x ~ N(xhat_n, M_n^{-1}),   e_m ~ N(0, diag(psi_m)).

**Conventions.** ``mask`` is a bool tensor of Y's shape, True where the entry is observed. Entries
of ``Y`` where ``mask`` is False may hold anything (NaN, 0, garbage): they are replaced before any
arithmetic. ``noise`` is a positive variance, a scalar (shared) or one per feature. Everything runs
on Y's device in the promoted floating dtype of the inputs (float64 for integer input).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "masked_low_rank_gaussian_log_prob",
    "masked_linear_gaussian_posterior",
    "masked_conditional",
    "posterior_std",
]

# Entries of a chunk's stacked (rows, D + K, K + 1) matrix: 128 MiB in float64.
_CHUNK_ELEMENTS = 2**24


def rows_per_chunk(n_features: int, n_components: int, chunk_size: int | None = None) -> int:
    """Rows per chunk: ``chunk_size`` if given, else as many as keep a chunk's batched QR input
    (rows x (D + K) x (K + 1)) near 2^24 entries."""
    if chunk_size is not None:
        return int(chunk_size)
    return max(1, _CHUNK_ELEMENTS // ((n_features + n_components) * (n_components + 1)))


def _chunks(n_rows: int, size: int):
    for start in range(0, n_rows, size):
        yield slice(start, min(start + size, n_rows))


def _describe(indices: torch.Tensor, what: str, limit: int = 10) -> str:
    idx = indices.flatten()
    shown = idx[:limit].tolist()
    more = f" and {idx.numel() - limit} more" if idx.numel() > limit else ""
    return f"{what} {shown}{more}"


def check_observed(Y, mask):
    """Validate ``Y`` (N, D) and its bool ``mask``; return the mask on Y's device.

    Raises ValueError on a mask of the wrong dtype or shape, on rows with no observed entry (naming
    them) and on observed entries that are NaN or infinite.
    """
    if not isinstance(Y, torch.Tensor) or Y.ndim != 2:
        raise ValueError(f"Y must be a 2-D tensor (n_samples, n_features); got "
                         f"{type(Y).__name__} with shape {getattr(Y, 'shape', None)}.")
    mask = torch.as_tensor(mask, device=Y.device)
    if mask.dtype != torch.bool or mask.shape != Y.shape:
        raise ValueError(f"mask must be a bool tensor of Y's shape {tuple(Y.shape)} (True = "
                         f"observed); got dtype {mask.dtype} and shape {tuple(mask.shape)}.")
    empty = ~mask.any(1)
    if bool(empty.any()):
        rows = torch.nonzero(empty).flatten()
        raise ValueError(
            f"{rows.numel()} row(s) of Y have no observed entry ({_describe(rows, 'rows')}); "
            f"the evidence and posterior of a row need at least one observed value. Drop those "
            f"rows."
        )
    bad = mask & ~torch.isfinite(Y)
    if bool(bad.any()):
        where = torch.nonzero(bad)
        raise ValueError(
            f"Y holds NaN or infinity at {where.shape[0]} entries that mask marks as observed "
            f"(first at row {int(where[0, 0])}, column {int(where[0, 1])}); set mask False there."
        )
    return mask


def check_parameters(Y, mean, W, noise):
    """(mean, W, noise) on Y's device in the promoted float dtype, ``noise`` as a (D,) tensor.

    Returns (dtype, mean, W, noise); raises ValueError on shapes that do not fit Y or on a noise
    variance that is not positive.
    """
    device = Y.device
    W = torch.as_tensor(W, device=device)
    mean = torch.as_tensor(mean, device=device)
    noise = torch.as_tensor(noise, device=device)
    dtype = Y.dtype
    for t in (mean, W, noise):
        dtype = torch.promote_types(dtype, t.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float64
    D = Y.shape[1]
    if W.ndim != 2 or W.shape[0] != D:
        raise ValueError(f"W must have shape (n_features, n_components) = ({D}, K); got "
                         f"{tuple(W.shape)}.")
    if mean.shape != (D,):
        raise ValueError(f"mean must have shape ({D},); got {tuple(mean.shape)}.")
    if noise.ndim > 1 or (noise.ndim == 1 and noise.shape[0] not in (1, D)):
        raise ValueError(f"noise must be a scalar or have shape ({D},); got {tuple(noise.shape)}.")
    noise = noise.to(dtype).expand(D)
    if not bool((noise > 0).all()):
        raise ValueError("noise must hold positive variances.")
    return dtype, mean.to(dtype), W.to(dtype), noise


def check_masked_inputs(Y, mask, mean, W, noise):
    """Validate and align (Y, mask, mean, W, noise); return them on Y's device in one float dtype,
    ``noise`` as a (D,) tensor (see :func:`check_observed` and :func:`check_parameters`)."""
    mask = check_observed(Y, mask)
    dtype, mean, W, noise = check_parameters(Y, mean, W, noise)
    return Y.to(dtype), mask, mean, W, noise


def centred(Y: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """y - mu on the observed entries, exactly 0 elsewhere (what Y holds there never enters)."""
    Y0 = torch.where(mask, Y, torch.zeros((), dtype=Y.dtype, device=Y.device))
    return torch.where(mask, Y0 - mean, torch.zeros((), dtype=Y.dtype, device=Y.device))


def row_factors(R: torch.Tensor, mask: torch.Tensor, W: torch.Tensor, noise: torch.Tensor):
    r"""The per-row posterior factors of a chunk of centred rows (see the module docstring).

    Parameters
    ----------
    R : (n, D) tensor
        y - mu, zero where ``mask`` is False.
    mask : (n, D) bool tensor.   W : (D, K).   noise : (D,) positive variances.

    Returns
    -------
    U : (n, K, K) upper-triangular, U^T U = M_n = I + W^T diag(m_n / psi) W.
    xhat : (n, K) posterior means M_n^{-1} W^T diag(m_n / psi) r_n.
    maha : (n,) r_o^T C_oo^{-1} r_o = ||r - W xhat||^2_{Psi^{-1}} + ||xhat||^2.
    logdet_M : (n,) log det M_n.
    """
    n, D = R.shape
    K = W.shape[1]
    zero = torch.zeros((), dtype=R.dtype, device=R.device)
    s = torch.where(mask, torch.rsqrt(noise), zero)  # sqrt(m_n / psi)
    top = torch.cat([s.unsqueeze(-1) * W, (s * R).unsqueeze(-1)], dim=-1)  # [B_n, rt_n]
    bottom = torch.eye(K, K + 1, dtype=R.dtype, device=R.device).expand(n, K, K + 1)  # [I, 0]
    # mode="r" skips forming Q (the batched orgqr is the slow part on a GPU); autograd needs Q.
    needs_grad = torch.is_grad_enabled() and (R.requires_grad or W.requires_grad
                                              or noise.requires_grad)
    mode = "reduced" if needs_grad else "r"
    _, Raug = torch.linalg.qr(torch.cat([top, bottom], dim=1), mode=mode)
    U = Raug[:, :K, :K]
    xhat = torch.linalg.solve_triangular(U, Raug[:, :K, K:], upper=True).squeeze(-1)
    maha = Raug[:, K, K] ** 2
    logdet_M = 2.0 * torch.log(torch.abs(torch.diagonal(U, dim1=-2, dim2=-1))).sum(-1)
    return U, xhat, maha, logdet_M


def posterior_covariance(U: torch.Tensor) -> torch.Tensor:
    """M^{-1} = U^{-1} U^{-T} from the triangular factors U (n, K, K) of :func:`row_factors`."""
    K = U.shape[-1]
    eye = torch.eye(K, dtype=U.dtype, device=U.device).expand_as(U)
    Uinv = torch.linalg.solve_triangular(U, eye, upper=True)
    return Uinv @ Uinv.mT


def masked_low_rank_gaussian_log_prob(Y, mask, mean, W, noise, *, chunk_size=None) -> torch.Tensor:
    r"""log N(y_o; mu_o, W_o W_o^T + diag(psi_o)) of each row's observed entries, in nats.

    .. math::
        \log p(y_o) = -\tfrac12 \Big[ |o| \log 2\pi + \sum_{d \in o} \log\psi_d + \log\det M_n
        + \|r - W_o \hat x_n\|^2_{\Psi_o^{-1}} + \|\hat x_n\|^2 \Big],

    vectorized over rows (see the module docstring for the QR that computes it). With a full mask
    it equals :func:`lvm.evidence.low_rank_gaussian_log_prob`, and it stays accurate when the noise
    is tiny relative to W W^T, where that function's Woodbury difference cancels.

    Parameters
    ----------
    Y : (N, D) tensor
        Entries where ``mask`` is False are ignored (they may be NaN).
    mask : (N, D) bool tensor
        True where the entry is observed; every row needs at least one.
    mean : (D,) tensor.   W : (D, K) tensor.
    noise : float or (D,) tensor
        Positive noise variances psi (a scalar for shared noise).
    chunk_size : int or None
        Rows per batched factorization; None picks a size that bounds a chunk's memory.

    Returns
    -------
    (N,) tensor of log-densities, on Y's device.

    Raises
    ------
    ValueError
        If a row has no observed entry (the message names the rows), an observed entry is not
        finite, or the shapes disagree.
    """
    Y, mask, mean, W, noise = check_masked_inputs(Y, mask, mean, W, noise)
    N, D = Y.shape
    K = W.shape[1]
    log_noise = torch.log(noise)
    out = []
    for rows in _chunks(N, rows_per_chunk(D, K, chunk_size)):
        m = mask[rows]
        _, _, maha, logdet_M = row_factors(centred(Y[rows], m, mean), m, W, noise)
        n_obs = m.sum(1).to(Y.dtype)
        logdet = (m * log_noise).sum(1) + logdet_M
        out.append(-0.5 * (n_obs * math.log(2 * math.pi) + logdet + maha))
    return torch.cat(out)


def masked_linear_gaussian_posterior(Y, mask, mean, W, noise, *, chunk_size=None):
    r"""The exact posterior p(x | y_o) = N(xhat_n, M_n^{-1}) of each row given its observed entries.

    .. math::
        M_n = I + W^\top \mathrm{diag}(m_n / \psi) W, \qquad
        \hat x_n = M_n^{-1} W^\top \mathrm{diag}(m_n / \psi)(y_n - \mu).

    Parameters are as for :func:`masked_low_rank_gaussian_log_prob`.

    Returns
    -------
    means : (N, K) tensor
        The posterior means xhat_n.
    covariances : (N, K, K) tensor
        The posterior covariances M_n^{-1} (one per row: they depend on which entries it observes).
        :func:`posterior_std` gives their diagonal standard deviations.
    """
    Y, mask, mean, W, noise = check_masked_inputs(Y, mask, mean, W, noise)
    N, D = Y.shape
    K = W.shape[1]
    means, covs = [], []
    for rows in _chunks(N, rows_per_chunk(D, K, chunk_size)):
        m = mask[rows]
        U, xhat, _, _ = row_factors(centred(Y[rows], m, mean), m, W, noise)
        means.append(xhat)
        covs.append(posterior_covariance(U))
    return torch.cat(means), torch.cat(covs)


def posterior_std(covariances: torch.Tensor) -> torch.Tensor:
    """The marginal standard deviations sqrt(diag Sigma_n) of (N, K, K) covariances: (N, K)."""
    return torch.sqrt(torch.diagonal(covariances, dim1=-2, dim2=-1))


def masked_conditional(Y, mask, mean, W, noise, *, sample=False, generator=None,
                       chunk_size=None) -> torch.Tensor:
    r"""Fill each row's missing entries from p(y_m | y_o) under the model; observed ones are kept.

    With ``sample=False`` the fill is the conditional mean E[y_m | y_o] = W_m xhat_n + mu_m (single
    imputation). With ``sample=True`` it is one draw (multiple imputation: call again with the same
    generator for the next draw)

    .. math::
        y_m = W_m x + \mu_m + e_m,\qquad x \sim \mathcal N(\hat x_n, M_n^{-1}),\quad
        e_m \sim \mathcal N(0, \mathrm{diag}\,\psi_m),

    drawn as x = xhat_n + U_n^{-1} z with U_n^T U_n = M_n and z ~ N(0, I).

    Parameters
    ----------
    Y, mask, mean, W, noise, chunk_size
        As for :func:`masked_low_rank_gaussian_log_prob`.
    sample : bool, default=False
        Draw from the conditional instead of taking its mean.
    generator : torch.Generator or None
        Source of the draws (on Y's device); None uses torch's global generator. The draws do not
        depend on ``chunk_size``.

    Returns
    -------
    (N, D) tensor equal to Y where ``mask`` is True and to the conditional mean (or draw) elsewhere.
    """
    Y, mask, mean, W, noise = check_masked_inputs(Y, mask, mean, W, noise)
    N, D = Y.shape
    K = W.shape[1]
    if sample:
        z = torch.randn(N, K, generator=generator, dtype=Y.dtype, device=Y.device)
        e = torch.randn(N, D, generator=generator, dtype=Y.dtype, device=Y.device)
    filled = []
    for rows in _chunks(N, rows_per_chunk(D, K, chunk_size)):
        m = mask[rows]
        U, x, _, _ = row_factors(centred(Y[rows], m, mean), m, W, noise)
        if sample:
            x = x + torch.linalg.solve_triangular(U, z[rows].unsqueeze(-1), upper=True).squeeze(-1)
        fill = x @ W.T + mean
        if sample:
            fill = fill + e[rows] * torch.sqrt(noise)
        filled.append(torch.where(m, Y[rows], fill))
    return torch.cat(filled)
