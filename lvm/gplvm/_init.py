"""Where the Bayesian GPLVM starts: PCA for q(x), a subset of it for Z, the kernel and the noise
from the spectrum, and q(u) at the collapsed optimum (SVI).

q(x_n) starts at the PCA projection of z_n scaled to unit variance per latent dimension, with
variance 0.1; the ARD lengthscales start at the inverse explained-variance fractions (as GPy
does; the collapsed fit's at a quarter of them, :data:`LENGTHSCALE_INIT_FACTOR` says why), so the
first principal direction starts most relevant; the RBF output scale starts at the data's
mean variance per feature and the noise at a tenth of it, floored at 1e-6 of it. All of this is
relative to the data's own scale. The linear kernel's variances start at the PCA eigenvalues over D
(Bayesian PCA's solution for unit-variance latents); ``"linear+rbf"`` starts its linear part there
and its RBF part with the RBF lengthscales and an outputscale of a tenth of sum_q v_q.

With missing entries (NaN) the start is the same, on the data completed by iterated rank-Q PCA
(fill the missing entries with zeros, the mean; then alternately fit the Q principal directions
and refill the missing entries with their reconstruction), so that a row's start reflects what is
observed of it rather than being pulled toward the mean.

A count likelihood (free q(x), complete rows) starts the same way from the counts on the scale
of f, log(y + 1/2) or logit((y + 1/2) / (n + 1)), centred at their feature means, which are the
GP's offset (GLM-PCA's start, :func:`link_scale_start`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import gpytorch
import torch
from torch import nn

from .. import _distributed as dist
from .._stats import GaussianStats, descending_eigh, location_and_scale
from ..latents import AmortizedLatent, PointLatent
from ..likelihoods._base import observed_mask
from .collapsed import collapsed_terms, kuu_cholesky
from .psi import psi_statistics

__all__ = ["PCAStart", "pca_start", "pca_fill", "initial_kernel", "initial_latent",
           "link_scale_start", "initial_inducing", "warm_start_q_u", "LATENT_VAR_INIT",
           "NOISE_INIT_FRACTION", "RBF_FRACTION_OF_LINEAR"]

#: Initial variance of every q(x_n) coordinate (the PCA start has unit variance per latent dim).
LATENT_VAR_INIT = 0.1
#: Initial noise variance as a fraction of the data's mean variance per feature.
NOISE_INIT_FRACTION = 0.1
#: ``kernel="linear+rbf"``: the RBF outputscale starts at this fraction of sum_q v_q of the linear part.
RBF_FRACTION_OF_LINEAR = 0.1
#: The collapsed fit's RBF ARD lengthscales (a Gaussian likelihood) start at this over the
#: explained-variance fractions. From GPy's 1 / fraction (lengthscales of 2-5 prior standard
#: deviations, a nearly linear map at the start) the collapsed fit sits for hundreds of L-BFGS
#: iterations on a plateau at the linear solution before the lengthscales shrink, and the default
#: tolerance stops it there. Measured with ``benchmarks/small.py --models gplvm`` (one thread;
#: held-out log p(y) per point, defaults / 10x budget; fit seconds of the defaults in that run:
#: the diabetes fit took 4.5-6.4 s over seven timings on the same quiet machine):
#:
#: ====================  =========================  =========================
#: data                  1 / fraction               0.25 / fraction
#: ====================  =========================  =========================
#: diabetes 331 x 10     -7.793 / -7.552 (5.2 s)    -7.614 / -7.646 (4.8 s)
#: tanh-ppca 450 x 20    -18.016 / -17.618 (3.8 s)  -18.008 / -17.973 (4.4 s)
#: digits-300 225 x 64   -69.910 / -69.835 (2.6 s)  -68.813 / -68.774 (3.3 s)
#: ====================  =========================  =========================
#:
#: 0.5 left tanh-ppca 0.32 +- 0.27 and digits 0.44 +- 0.55 nats below a 2,000-iteration fit. The
#: ``"linear+rbf"`` kernel's RBF part, the count likelihoods (whose f is not in the data's
#: units) and ``inference="svi"`` keep 1 / fraction, where they were tuned and measured (the SVI
#: fit's short-run tests, e.g. the encoder's bound after 15 epochs, fell from the smaller start).
LENGTHSCALE_INIT_FACTOR = 0.25
#: Alternations of the rank-Q PCA completion of rows with missing entries.
PCA_FILL_ITERS = 30
#: Rows used for the warm start of q(u) in SVI.
_Q_U_START_ROWS = 2000


@dataclass
class PCAStart:
    n_total: int  # rows over all ranks
    projection: torch.Tensor  # (D, Q): z -> unit-variance principal coordinates
    fracs: torch.Tensor  # (Q,) explained-variance fractions, clamped to [1e-3, 1]
    evals: torch.Tensor  # (D,) descending eigenvalues of the covariance


def pca_start(Zc: torch.Tensor, Q: int) -> PCAStart:
    """PCA of the centred rows (of every rank under torch.distributed)."""
    stats = GaussianStats.of(Zc)
    if dist.is_distributed():
        stats = stats.all_reduce()
    evals, evecs = descending_eigh(stats.covariance.to(Zc.dtype))
    top = evals[0].clamp_min(torch.finfo(evals.dtype).tiny)
    scale = evals[:Q].clamp_min(1e-12 * top)  # relative: a zero direction keeps a finite map
    fracs = (scale / evals.sum().clamp_min(torch.finfo(evals.dtype).tiny)).clamp(1e-3, 1.0)
    return PCAStart(stats.n, evecs[:, :Q] / scale.sqrt(), fracs, evals)


def pca_fill(Zc: torch.Tensor, Q: int, n_iter: int = PCA_FILL_ITERS) -> torch.Tensor:
    """``Zc`` (centred) with its NaN replaced by their rank-Q PCA reconstruction (iterated from the
    mean; the directions from the rows of every rank); observed entries unchanged."""
    missing = torch.isnan(Zc)
    if not dist.max_int(int(missing.any())):
        return Zc
    Zf = torch.where(missing, Zc.new_zeros(()), Zc)
    for _ in range(n_iter):
        stats = GaussianStats.of(Zf)
        if dist.is_distributed():
            stats = stats.all_reduce()
        V = descending_eigh(stats.covariance.to(Zc.dtype))[1][:, :Q]
        mean = stats.mean.to(Zc.dtype)
        Zf = torch.where(missing, mean + ((Zf - mean) @ V) @ V.T, Zc)
    return Zf


def initial_kernel(kernel: gpytorch.kernels.Kernel, start: PCAStart, from_registry: bool,
                   data_scale: bool = True, lengthscale_factor: float = 1.0):
    """Set a fresh registry kernel's hyper-parameters from the spectrum (a user's kernel instance
    keeps its own, except the linear kernel's variances). With ``data_scale=False`` (a likelihood
    whose f is not in the data's units: logits, log-rates) the prior variance of f starts at 1.
    A plain RBF kernel's lengthscales start at ``lengthscale_factor`` / fraction where f is in
    the data's units (the collapsed fit passes :data:`LENGTHSCALE_INIT_FACTOR`)."""
    D = start.evals.shape[0]
    Q = start.fracs.shape[0]
    variance = (start.evals.sum() / D).clamp_min(torch.finfo(start.evals.dtype).tiny)
    if not data_scale:
        start = PCAStart(start.n_total, start.projection, start.fracs, start.evals / variance)
        variance = torch.ones_like(variance)
    if isinstance(kernel, gpytorch.kernels.AdditiveKernel):
        for part in kernel.kernels:
            _initial_part(part, start, from_registry, variance, D, Q, 1.0)
        if from_registry:
            # linear + RBF starts as Bayesian PCA (the linear part at the PCA solution, which the
            # sum kernel contains) with a small RBF part: a tenth of the linear part's prior
            # variance at a typical x (sum_q v_q, for x of unit variance per dim), about the noise
            # (started at a tenth of the data's variance), so the fit starts near the linear model.
            # Not much smaller: the softplus-parametrized outputscale's gradient is proportional to
            # its value, and from 1 % the fit to the digits stopped at the linear model (RBF part
            # switched off, held-out -172.0 nats/point against -149.7 from a tenth).
            lin, rbf = sorted(kernel.kernels, key=lambda k: not isinstance(
                k, gpytorch.kernels.LinearKernel))
            rbf.outputscale = RBF_FRACTION_OF_LINEAR * lin.variance.sum()
        return kernel
    factor = lengthscale_factor if data_scale else 1.0
    return _initial_part(kernel, start, from_registry, variance, D, Q, factor)


def _initial_part(kernel, start, from_registry, variance, D, Q, factor):
    if isinstance(kernel, gpytorch.kernels.LinearKernel):
        kernel.variance = (start.evals[:Q] / D).clamp_min(1e-6 * variance).reshape(
            kernel.raw_variance.shape)
    elif from_registry:
        kernel.outputscale = variance
        kernel.base_kernel.lengthscale = (factor / start.fracs).reshape(
            kernel.base_kernel.raw_lengthscale.shape)
    return kernel


def initial_latent(Zc: torch.Tensor, start: PCAStart, encoder: bool, generator,
                   mask_channel: bool = False) -> nn.Module:
    """Free q(x_n) at the PCA projections, or an amortized q(x | y): a residual MLP on the same
    projection whose last layer starts at zero (so both start from the same q(x)). ``Zc`` has no
    NaN (missing entries at the mean, zero); with ``mask_channel`` the network also sees the mask
    of observed entries (:class:`lvm.latents.AmortizedLatent`)."""
    N, D = Zc.shape
    Q = start.projection.shape[1]
    dev, dt = Zc.device, Zc.dtype
    if not encoder:
        return PointLatent(Zc @ start.projection, torch.full((N, Q), LATENT_VAR_INIT, device=dev,
                                                             dtype=dt))
    hidden = 50
    width = 2 * D if mask_channel else D
    net = nn.Sequential(nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, 2 * Q)).to(
        device=dev, dtype=dt)
    with torch.no_grad():
        # Seeded from the estimator's generator, not torch's global one.
        first = net[0]
        first.weight.copy_(torch.randn(first.weight.shape, generator=generator, dtype=dt,
                                       device=dev) / width**0.5)
        first.bias.zero_()
        net[2].weight.zero_()
        net[2].bias.zero_()
        net[2].bias[Q:] = torch.log(torch.tensor(LATENT_VAR_INIT, dtype=dt))
    # The network sees unit-scale input whatever the likelihood (standardized data are already).
    return AmortizedLatent(net, Q, projection=start.projection,
                           input_scale=location_and_scale(Zc)[1], input_loc=Zc.new_zeros(()),
                           mask_channel=mask_channel)


def link_scale_start(likelihood, Z: torch.Tensor):
    r"""GLM-PCA's start of a count likelihood: the counts on the scale of f and the GP's offset.

    T = ``likelihood.link_transform(Z)`` (log(y + 1/2) for a log link, less the row's log size
    factor with ``offset=library``; logit((y + 1/2) / (n + 1)) for the binomial), the values the
    VAE's nested start takes too (:func:`lvm.vae.model.start_at_glm_pca`, PPCA of T), in float64.
    The offset c_d is T's feature mean; :func:`pca_start` of T - c then gives q(x)'s means (the
    principal coordinates at unit variance), the lengthscales (the inverse explained-variance
    fractions of T) and, through the means, the inducing inputs, as the Gaussian start does with
    the standardized data. The kernel's outputscale stays 1 and q(u) at GPyTorch's prior start.
    Used for free q(x) on complete rows; an encoder, which reads the raw counts, and rows with
    missing entries keep PCA of the centred counts with c = link(mean count).

    Measured (SVI, Q = 2, float64, 400 training rows, 200 held out, the estimator's defaults
    otherwise; against the previous start, PCA of the centred raw counts and c = link(mean);
    paired over rows, +- one standard error; the bound at step 0 over all training rows with 32
    draws of x):

    * Poisson-PCA (``make_counts(600, 20, n_components=3)``): step-0 bound -102.83 vs -104.17
      (+1.34 +- 0.06), held-out log P(y) -43.71 vs -43.65 (-0.06 +- 0.10); the linear count VAE
      (``VAE(2, hidden_sizes=(), likelihood="poisson")``, 600 epochs) -43.51, which holds the
      true model. At Q = 3, the true dimension: -43.49 vs -43.34 (-0.16 +- 0.05; with
      ``random_state`` 1 and 2 -0.15 +- 0.05 and -0.07 +- 0.06), the linear VAE -43.25, but
      both fits are stopped early there by the plateau rule (85-112 epochs): trained 400 epochs
      (``tol=None``) the two starts give -43.205 and -43.231 (+0.026 +- 0.014), against the
      linear VAE +0.046 +- 0.031 and +0.021 +- 0.028.
    * Tuning-curve ring (``tests/gplvm/test_counts.py``, 30 features): step 0 -121.86 vs
      -131.68 (+9.8 +- 0.1), held-out -49.58 vs -49.56 (-0.02 +- 0.04); the linear VAE -51.34.
    * The digits as binomial(16) counts (600 rows of ``load_digits``): step 0 -333.2 vs -323.1
      (-10.0 +- 0.6: with q(u) at its prior, the step-0 bound barely sees q(x)), held-out
      -145.3 vs -177.7 (+32.4 +- 2.3), and with ``random_state`` 1 and 2 -158.6 vs -168.1
      (+9.5 +- 1.3) and -167.7 vs -174.5 (+6.8 +- 0.9); the linear VAE -202.0.

    Rejected: q(u) also started at the collapsed optimum of T - c as Gaussian data (the noise
    per feature the mean of -1 / (d^2/df^2 log p(y | f)) at f = T, IRLS's working variances)
    starts far higher (step 0 -44.7, -54.4 and -218.7) but on the digits stops at the linear
    model's level (held-out -200.8 after 54 epochs; -156.6 with the plateau rule off for 300);
    the outputscale at T's mean variance per feature: held-out -43.81 and -177.8; c at
    link(mean count) with this q(x): step 0 -104.20, held-out -43.72 (Poisson-PCA).

    Parameters
    ----------
    likelihood : lvm.likelihoods._base.CountLikelihood
        The likelihood, made from the training rows.
    Z : torch.Tensor of shape (n_samples, n_features)
        The training counts, complete.

    Returns
    -------
    Zc : torch.Tensor of shape (n_samples, n_features)
        T - c, in the dtype of ``Z``.
    offset : torch.Tensor of shape (n_features,)
        c, T's mean over the rows of every rank.
    """
    T = likelihood.link_transform(Z.to(torch.float64))
    offset = dist.moments(T)[1]
    return (T - offset).to(Z.dtype), offset.to(Z.dtype)


def initial_inducing(X0: torch.Tensor, M: int, generator) -> torch.Tensor:
    """M inducing inputs: a seeded subset of the starting latent means (rank 0's under
    torch.distributed)."""
    idx = torch.randperm(X0.shape[0], generator=generator, device=X0.device)[:M]
    return dist.broadcast(X0[idx].detach())


def warm_start_q_u(model, Zc: torch.Tensor, jitter: float) -> None:
    """Start q(u) of an SVI model at the collapsed optimum for the initial q(x) of (up to) 2000
    rows (NaN in ``Zc`` are missing entries), computed in float64; keep GPyTorch's prior start if
    even that is numerically singular."""
    from linear_operator.utils.errors import NotPSDError

    with torch.no_grad():
        n = min(Zc.shape[0], _Q_U_START_ROWS)
        mu, var = model.latent(Zc[:n], torch.arange(n, device=Zc.device))
        kernel = copy.deepcopy(model.kernel).double()
        Z = model.inducing_points.double()
        Y = Zc[:n].double()
        mask = observed_mask(Y)
        try:
            psi = psi_statistics(kernel, mu.double(), var.double(), Z, weights=mask)
            L = kuu_cholesky(kernel, Z, jitter)
            _, mean, root = collapsed_terms(Y, psi, L, model.noise.double(), mask)
        except (NotPSDError, torch.linalg.LinAlgError):
            return
        model.gp.set_whitened(mean, root)
