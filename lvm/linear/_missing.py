r"""Maximum likelihood of PPCA and Factor Analysis with missing entries: exact EM.

The model is y = W x + mu + e, x ~ N(0, I_K), e ~ N(0, Psi), with Psi = sigma^2 I (PPCA,
``"shared"`` noise) or diag(psi_1..psi_D) (Factor Analysis, ``"per_feature"``). Row n is observed
where its mask m_n is True. EM maximizes the exact observed-data log-likelihood

    L = sum_n log N(y_{n,o}; mu_o, W_o W_o^T + Psi_o)

(Tipping & Bishop 1999, appendix; Ilin & Raiko 2010, section 3), treating the latents x_n and the
missing entries as hidden; the missing entries integrate out, so nothing is imputed.

**E-step** (per row, batched; :mod:`lvm.evidence.masked`): with the current (W, mu, Psi),

    M_n = I + W^T diag(m_n / psi) W,   Sigma_n = M_n^{-1},
    xhat_n = Sigma_n W^T diag(m_n / psi)(y_n - mu),   E[x_n x_n^T] = Sigma_n + xhat_n xhat_n^T.

The same factorization gives L at the current parameters, so every iteration monitors the exact
log-likelihood at no extra cost.

**M-step** (exact, per feature d over the rows O_d = {n : m_nd} that observe it). Write
xt = [x; 1] and wt_d = [w_d; mu_d]. The expected complete-data log-likelihood is maximized by the
(K + 1) x (K + 1) normal equations

    ( sum_{n in O_d} E[xt_n xt_n^T] ) wt_d = sum_{n in O_d} y_nd E[xt_n],
    E[xt xt^T] = [[Sigma_n + xhat_n xhat_n^T, xhat_n], [xhat_n^T, 1]],

solved for all d at once (the sums over n are one (D, K^2) matrix product with the mask); they are
solved for the change of the mean, about the current mu, to keep them well scaled. Then, with the
exact expected residual including the posterior covariance,

    s_d = sum_{n in O_d} [ (y_nd - w_d^T xhat_n - mu_d)^2 + w_d^T Sigma_n w_d ],
    psi_d = s_d / |O_d|   (per feature),      sigma^2 = sum_d s_d / sum_d |O_d|   (shared).

Given Psi, the (W, mu) step does not depend on it, so the two updates together are the joint
maximizer: EM never decreases L. The noise is kept above a floor relative to the data scale,
``min_noise_fraction`` times the observed variance of each feature (the mean of those variances
for shared noise); the floored value is still the constrained maximizer, so monotonicity holds.

Each iteration costs O(N (D + K) K^2) for the batched factorization plus one O(N D K) pass for the
residuals, over chunks of rows; there is no Python loop over rows or missingness patterns.

**Initialization.** mu from the observed entries of each feature; W and Psi from the closed-form
PPCA solution of the mean-imputed data's covariance S = (1/N) sum_n r_n r_n^T, r_n = y_n - mu on
observed entries and 0 elsewhere: with S's eigenpairs (lambda_j, u_j) in decreasing order,
sigma^2 = mean_{j > K} lambda_j and W = U_K (Lambda_K - sigma^2)^{1/2} (Psi = sigma^2 I for both
noise models, then floored). Mean imputation shrinks the variances, so this is only a start.

References
----------
Tipping, M. E. & Bishop, C. M. (1999). Probabilistic principal component analysis. JRSS B 61(3).
Ilin, A. & Raiko, T. (2010). Practical approaches to principal component analysis in the presence
of missing values. JMLR 11, 1957-2000.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .._training import TrainResult, train
from ..evidence.masked import (
    _chunks,
    _describe,
    centred,
    check_observed,
    check_parameters,
    masked_linear_gaussian_posterior,
    posterior_covariance,
    posterior_std,
    row_factors,
    rows_per_chunk,
)

__all__ = ["MissingFit", "EMState", "fit_missing", "missing_em_step", "missing_posterior",
           "NOISE_MODELS"]

NOISE_MODELS = {
    "shared": "one variance sigma^2 for every feature (PPCA)",
    "per_feature": "one variance psi_d per feature (Factor Analysis)",
}


class MissingFit(NamedTuple):
    """What :func:`fit_missing` returns: ``(W, mean, noise, history, n_iter, converged)``."""

    W: torch.Tensor
    """(D, K) loadings, float64."""
    mean: torch.Tensor
    """(D,) mean, float64."""
    noise: torch.Tensor
    """(D,) noise variances, float64 (all equal for shared noise)."""
    history: list
    """Exact observed-data log-likelihood per row, mean over rows (nats), at the initial parameters
    and after every iteration: ``len(history) == n_iter + 1``; its last entry belongs to the
    returned parameters, and ``history[-1] * N`` is their total log-likelihood."""
    n_iter: int
    """EM iterations (M-steps) taken."""
    converged: bool
    """Whether the relative change of the log-likelihood fell to ``tol`` before ``max_iter``."""


class _EStats(NamedTuple):
    log_likelihood: torch.Tensor  # () total over rows
    exx: torch.Tensor  # (D, K, K) sum over rows observing d of E[x x^T]
    sigma: torch.Tensor  # (D, K, K) sum over rows observing d of Sigma_n
    x: torch.Tensor  # (D, K) sum over rows observing d of xhat_n
    rx: torch.Tensor  # (D, K) sum over rows observing d of (y_nd - mu_d) xhat_n
    r: torch.Tensor  # (D,) sum over rows observing d of (y_nd - mu_d)
    xhat: torch.Tensor  # (N, K) posterior means


def _e_step(Y, mask, W, mean, noise, size) -> _EStats:
    N, D = Y.shape
    K = W.shape[1]
    opts = dict(dtype=Y.dtype, device=Y.device)
    exx, sig = torch.zeros(D, K * K, **opts), torch.zeros(D, K * K, **opts)
    sx, rx, sr = torch.zeros(D, K, **opts), torch.zeros(D, K, **opts), torch.zeros(D, **opts)
    ll = torch.zeros((), **opts)
    xhat_all = torch.empty(N, K, **opts)
    log_noise = torch.log(noise)
    for rows in _chunks(N, size):
        m = mask[rows]
        mf = m.to(Y.dtype)
        R = centred(Y[rows], m, mean)
        U, xhat, maha, logdet_M = row_factors(R, m, W, noise)
        Sigma = posterior_covariance(U).reshape(-1, K * K)
        XX = (xhat.unsqueeze(-1) * xhat.unsqueeze(-2)).reshape(-1, K * K)
        sig += mf.T @ Sigma
        exx += mf.T @ XX
        sx += mf.T @ xhat
        rx += R.T @ xhat
        sr += R.sum(0)
        ll += -0.5 * (mf.sum(1) * math.log(2 * math.pi) + mf @ log_noise + logdet_M + maha).sum()
        xhat_all[rows] = xhat
    sig = sig.reshape(D, K, K)
    return _EStats(ll, exx.reshape(D, K, K) + sig, sig, sx, rx, sr, xhat_all)


def _m_step(Y, mask, mean, stats: _EStats, counts, noise_model, floor, size):
    """The exact maximizer of the expected complete-data log-likelihood (module docstring)."""
    D, K = stats.x.shape
    G = torch.empty(D, K + 1, K + 1, dtype=Y.dtype, device=Y.device)
    G[:, :K, :K] = stats.exx
    G[:, :K, K] = stats.x
    G[:, K, :K] = stats.x
    G[:, K, K] = counts
    rhs = torch.cat([stats.rx, stats.r.unsqueeze(-1)], dim=1).unsqueeze(-1)
    sol = torch.linalg.solve(G, rhs).squeeze(-1)
    W, delta = sol[:, :K], sol[:, K]
    # Expected squared residuals with the new (W, mu): the observed part from a direct pass (no
    # sum-of-squares differences), the posterior-covariance part w_d^T (sum Sigma_n) w_d.
    ss = torch.zeros(D, dtype=Y.dtype, device=Y.device)
    zero = torch.zeros((), dtype=Y.dtype, device=Y.device)
    for rows in _chunks(Y.shape[0], size):
        m = mask[rows]
        E = torch.where(m, centred(Y[rows], m, mean) - stats.xhat[rows] @ W.T - delta, zero)
        ss += (E * E).sum(0)
    s = ss + torch.einsum("dk,dkl,dl->d", W, stats.sigma, W)
    if noise_model == "shared":
        noise = torch.maximum(s.sum() / counts.sum(), floor).expand(D).clone()
    else:
        noise = torch.maximum(s / counts, floor)
    return W, mean + delta, noise


def _check_noise_model(noise_model):
    if noise_model not in NOISE_MODELS:
        raise ValueError(f"Unknown noise model {noise_model!r}; choose one of "
                         f"{sorted(NOISE_MODELS)}.")


def _check_features_observed(mask):
    counts = mask.sum(0)
    if bool((counts == 0).any()):
        cols = torch.nonzero(counts == 0).flatten()
        raise ValueError(
            f"{cols.numel()} feature(s) have no observed entry ({_describe(cols, 'columns')}); "
            f"their loadings and mean are not identified. Drop those columns."
        )
    return counts


def _observed_moments(Y, mask, counts):
    """Per-feature mean and (ML) variance of the observed entries, float64."""
    zero = torch.zeros((), dtype=Y.dtype, device=Y.device)
    mean = torch.where(mask, Y, zero).sum(0) / counts
    R = centred(Y, mask, mean)
    var = (R * R).sum(0) / counts
    return mean, var


def _noise_floor(var, noise_model, min_noise_fraction):
    if not bool((var > 0).any()):
        raise ValueError("Every feature is constant on its observed entries; there is no scale "
                         "to fit a noise variance to.")
    # A feature that is constant where observed takes the floor of the smallest positive scale.
    var = torch.where(var > 0, var, var[var > 0].min())
    floor = min_noise_fraction * var
    return floor.mean() if noise_model == "shared" else floor


def _initialize(Y, mask, mean, K, noise_model, floor, size):
    """PPCA of the mean-imputed covariance (module docstring)."""
    N, D = Y.shape
    S = torch.zeros(D, D, dtype=Y.dtype, device=Y.device)
    for rows in _chunks(N, size):
        R = centred(Y[rows], mask[rows], mean)
        S += R.T @ R
    eigvals, eigvecs = torch.linalg.eigh(S / N)
    eigvals, eigvecs = eigvals.flip(0).clamp_min(0), eigvecs.flip(1)
    sigma2 = eigvals[K:].mean() if K < D else eigvals[-1]
    W = eigvecs[:, :K] * torch.sqrt((eigvals[:K] - sigma2).clamp_min(0))
    noise = torch.maximum(sigma2.expand(D), floor.expand(D))
    if noise_model == "shared":
        noise = noise.max().expand(D)
    return W, noise.clone()


def fit_missing(Y, mask, n_components, *, noise="shared", W0=None, mean0=None, noise0=None,
                max_iter=1000, tol=1e-9, min_noise_fraction=1e-8, chunk_size=None, verbose=False,
                callback=None, state=None, result=None, estimator_name="EM",
                desc="EM with missing values") -> MissingFit:
    r"""Maximum-likelihood PPCA or Factor Analysis of partly observed data, by exact EM.

    See the module docstring for the E- and M-steps and the initialization. Runs on Y's device in
    float64.

    Parameters
    ----------
    Y : (N, D) tensor
        The data; entries where ``mask`` is False are ignored (they may be NaN).
    mask : (N, D) bool tensor
        True where observed. Every row and every feature needs at least one observed entry.
    n_components : int
        Latent dimension K, 1 <= K <= D.
    noise : {"shared", "per_feature"}, default="shared"
        sigma^2 I (PPCA) or diag(psi) (Factor Analysis).
    W0 : (D, K) tensor, optional
        Initial loadings (default: PPCA of the mean-imputed covariance).
    mean0 : (D,) tensor, optional
        Initial mean (default: the mean of each feature's observed entries).
    noise0 : float or (D,) tensor, optional
        Initial noise variances (for shared noise, their mean is used); raised to the floor.
    max_iter : int, default=1000
        Maximum number of EM iterations.
    tol : float, default=1e-9
        Stop when l_t - l_{t-1} < tol * max(1, |l_t|), l the observed-data log-likelihood per
        row (the training loop's relative tolerance, :func:`lvm._training.train`). A decrease
        (possible only by rounding) therefore also stops the iteration.
    min_noise_fraction : float, default=1e-8
        Noise floor, relative to the observed variance of each feature (to their mean for shared
        noise); never absolute.
    chunk_size : int or None
        Rows per batched factorization (None: a size that bounds a chunk's memory).
    verbose, callback, estimator_name, desc
        Passed to :func:`lvm._training.train`, which runs the iterations (one epoch each): the
        progress bar, the per-iteration callback (records ``epoch`` and ``train``, the
        log-likelihood per row) and the names in its messages.
    state : EMState, optional
        Filled with the parameters and updated in place: after an interruption (the training
        loop restores the last whole iteration) it holds the last good ones.
    result : lvm._training.TrainResult, optional
        Filled in place by the training loop.

    Returns
    -------
    MissingFit
        ``(W, mean, noise, history, n_iter, converged)``: float64 tensors of shapes (D, K), (D,),
        (D,) on Y's device, the per-row mean log-likelihood at every iterate (list of floats), the
        number of iterations and whether ``tol`` was met.

    Raises
    ------
    ValueError
        On a row or a feature with no observed entry (naming them), an observed entry that is not
        finite, an unknown noise model or an out-of-range argument.
    """
    _check_noise_model(noise)
    mask = check_observed(Y, mask)
    N, D = Y.shape
    K = n_components
    if not isinstance(K, int) or isinstance(K, bool) or not 1 <= K <= D:
        raise ValueError(f"n_components must be an integer in [1, n_features={D}]; got {K!r}.")
    if not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative integer; got {max_iter!r}.")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0; got {tol!r}.")
    if not 0 < min_noise_fraction < 1:
        raise ValueError(f"min_noise_fraction must be in (0, 1); got {min_noise_fraction!r}.")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None; got {chunk_size!r}.")
    Y = Y.to(torch.float64)
    counts = _check_features_observed(mask).to(Y.dtype)
    size = rows_per_chunk(D, K, chunk_size)

    observed_mean, var = _observed_moments(Y, mask, counts)
    floor = _noise_floor(var, noise, min_noise_fraction)
    mean = observed_mean if mean0 is None else torch.as_tensor(mean0, device=Y.device)
    if W0 is None or noise0 is None:
        W_init, noise_init = _initialize(Y, mask, mean.to(Y.dtype), K, noise, floor, size)
    W = W_init if W0 is None else W0
    nz = noise_init if noise0 is None else noise0
    _, mean, W, nz = check_parameters(Y, mean, W, nz)
    if W.shape[1] != K:
        raise ValueError(f"W0 must have shape ({D}, {K}); got {tuple(W.shape)}.")
    nz = nz.to(Y.dtype)
    W, mean = W.to(Y.dtype), mean.to(Y.dtype)
    nz = torch.maximum(nz.mean() if noise == "shared" else nz, floor).expand(D).clone()

    params = EMState() if state is None else state
    params.W, params.mean, params.noise = W, mean, nz
    current = {"stats": _e_step(Y, mask, W, mean, nz, size)}
    start = params.start = float(current["stats"].log_likelihood) / N

    def em_iteration():  # one M-step, then the E-step of its result: log p(Y_o) per row
        stats = current.pop("stats", None)
        if stats is None:  # the parameters were restored after a failure: their E-step again
            stats = _e_step(Y, mask, params.W, params.mean, params.noise, size)
        W, mean, nz = _m_step(Y, mask, params.mean, stats, counts, noise, floor, size)
        params.W, params.mean, params.noise = W, mean, nz
        current["stats"] = _e_step(Y, mask, W, mean, nz, size)
        return current["stats"].log_likelihood / N

    def on_failure(retry, exc):
        current.pop("stats", None)
        return None

    result = TrainResult() if result is None else result
    train(em_iteration, [params], max_epochs=max_iter, tol=tol, n_iter_no_change=1,
          on_failure=on_failure, callback=callback, verbose=verbose, desc=desc,
          objective_name="log p(y_o)", estimator_name=estimator_name,
          advice="Try a larger noise floor (min_noise) or fewer components.", result=result,
          warn=False)
    history = [start] + [r["train"] for r in result.history]
    return MissingFit(params.W, params.mean, params.noise, history, result.n_epochs,
                      result.converged)


class EMState(torch.nn.Module):
    """The parameters (W, mean, noise) of a running EM as buffers: :func:`fit_missing` updates
    them in place, so a caller holding this object keeps the last good parameters when the fit
    is interrupted (the training loop restores them before the exception propagates); ``start``
    is the log-likelihood per row at the initial parameters."""

    def __init__(self):
        super().__init__()
        for name in ("W", "mean", "noise"):
            self.register_buffer(name, None)


def missing_em_step(Y, mask, W, mean, noise, *, noise_model="shared", noise_floor=0.0,
                    chunk_size=None):
    """One EM iteration (module docstring), for callers that run their own loop.

    Returns ``(W, mean, noise, log_likelihood)``: the updated float64 parameters, and the exact
    total observed-data log-likelihood of the *input* parameters (a 0-d tensor; no host sync).
    ``noise_floor`` is a scalar or (D,) lower bound on the updated noise variances.
    """
    _check_noise_model(noise_model)
    mask = check_observed(Y, mask)
    counts = _check_features_observed(mask).to(torch.float64)
    Y = Y.to(torch.float64)
    _, mean, W, noise = check_parameters(Y, mean, W, noise)
    W, mean, noise = W.to(Y.dtype), mean.to(Y.dtype), noise.to(Y.dtype)
    floor = torch.as_tensor(noise_floor, dtype=Y.dtype, device=Y.device)
    if noise_model == "shared":
        floor = floor.max()
    size = rows_per_chunk(Y.shape[1], W.shape[1], chunk_size)
    stats = _e_step(Y, mask, W, mean, noise, size)
    W, mean, noise = _m_step(Y, mask, mean, stats, counts, noise_model, floor, size)
    return W, mean, noise, stats.log_likelihood


def missing_posterior(Y, mask, W, mean, noise, *, chunk_size=None):
    """The posterior of x given each row's observed entries, as an estimator's ``transform`` needs.

    Returns ``(means, stds)``, both (N, K): the posterior means xhat_n and the marginal standard
    deviations sqrt(diag M_n^{-1}) (which differ between rows that observe different entries).
    See :func:`lvm.evidence.masked.masked_linear_gaussian_posterior` for the full covariances.
    """
    means, covariances = masked_linear_gaussian_posterior(Y, mask, mean, W, noise,
                                                          chunk_size=chunk_size)
    return means, posterior_std(covariances)
