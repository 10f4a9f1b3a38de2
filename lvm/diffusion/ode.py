r"""The probability-flow ODE of a variance-preserving diffusion: likelihood and encoding.

The forward process of :mod:`.bound` is the SDE dz = -(1/2) beta(t) z dt + sqrt(beta(t)) dW with
beta(t) = -d log alpha_t^2 / dt = gamma'(t) sigma_t^2. Its marginals q_t are also transported by the
deterministic flow (Song et al., 2021)

.. math::
    \frac{dz}{dt} = f(z, t) = -\tfrac12 \beta(t) \big(z + \nabla_z \log q_t(z)\big)
    = -\tfrac12 \gamma'(t) \big(\sigma_t^2 z - \sigma_t \hat\epsilon(z, \gamma_t)\big),

using the score -eps_hat / sigma_t of the denoiser (written without the division by sigma_t,
which is tiny at t = 0). Along a trajectory d log p_t(z_t) / dt = -div f(z_t, t) (the
instantaneous change of variables), so with z_0 = alpha_0 y and the prior p_1 = N(0, I),

.. math::
    \log p_0(z_0) = \log N(z_1; 0, I) + \int_0^1 \operatorname{div} f(z_t, t)\, dt, \qquad
    \log p_{flow}(y) = \log p_0(\alpha_0 y) + D \log \alpha_0 .

This is the exact density of a *different model* from the one whose bound :mod:`.bound` computes:
a normalizing flow y = Phi^{-1}(z_1) / alpha_0 with z_1 ~ N(0, I), deterministic, without the
reverse process's noise or the Gaussian decoder. With the true score both models reproduce the
data up to the mismatch between q_1 and N(0, I); with a learned denoiser they differ, and neither
number bounds the other. Report it beside the bound, never in its place.

The divergence is exact (one vector-Jacobian product per dimension, batched with
:func:`torch.func.vmap`) up to :data:`EXACT_DIVERGENCE_MAX_DIM` dimensions, and Hutchinson's
unbiased estimate div f ~ v^T (df/dz) v with Rademacher probes v, fixed along each trajectory,
above it. The integral runs through a solver of :data:`~.solvers.SOLVERS`.

The same flow gives the encoding z_1 = Phi(y) (integrate from alpha_0 y at t = 0 to t = 1) and its
inverse (integrate from z_1 back to t = 0 and divide by alpha_0). The encoding has the data's own
dimension: a diffusion model yields no low-dimensional embedding.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from .solvers import SOLVERS, odeint

__all__ = ["EXACT_DIVERGENCE_MAX_DIM", "DIVERGENCES", "SOLVERS", "probability_flow_drift", "flow_log_prob",
           "flow_encode", "flow_decode", "rademacher_probes"]

#: Above this many features ``divergence="auto"`` switches from the exact divergence to Hutchinson's.
EXACT_DIVERGENCE_MAX_DIM = 32

_LOG_2PI = math.log(2 * math.pi)


def _drift_at(schedule, denoiser, t: torch.Tensor, n: int):
    """z -> f(z, t) for a batch of n rows at one time t (the schedule evaluated once)."""
    gamma, slope = schedule.with_derivative(t.expand(n))
    var = torch.sigmoid(gamma).unsqueeze(-1)
    sigma = var.sqrt()
    half_slope = 0.5 * slope.unsqueeze(-1)

    def drift(z):
        return -half_slope * (var * z - sigma * denoiser(z, gamma))

    return drift


def probability_flow_drift(schedule, denoiser, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """f(z, t) = -(1/2) gamma'(t) (sigma_t^2 z - sigma_t eps_hat(z, gamma_t)), shape (n, D); t a scalar."""
    t = torch.as_tensor(t, dtype=z.dtype, device=z.device)
    return _drift_at(schedule, denoiser, t, z.shape[0])(z)


def _exact(drift, z, probes):
    f, vjp = torch.func.vjp(drift, z)
    D = z.shape[-1]
    basis = torch.eye(D, dtype=z.dtype, device=z.device).unsqueeze(1).expand(D, *z.shape)
    (rows,) = torch.func.vmap(vjp)(basis)  # rows[i, n] = e_i^T df/dz at row n
    return f, torch.diagonal(rows, dim1=0, dim2=2).sum(-1)


def _hutchinson(drift, z, probes):
    f, vjp = torch.func.vjp(drift, z)
    (vj,) = torch.func.vmap(vjp)(probes)
    return f, (vj * probes).sum(-1).mean(0)


#: Divergence estimators by name: (drift, z, probes) -> (f, div f).
DIVERGENCES = {"exact": _exact, "hutchinson": _hutchinson}


def rademacher_probes(n_probes: int, shape, *, generator: torch.Generator, dtype=None, device=None):
    """Probes of shape (n_probes,) + shape with independent entries +-1 drawn from ``generator``."""
    bits = torch.randint(0, 2, (int(n_probes), *shape), generator=generator, device=device)
    return (2 * bits - 1).to(dtype if dtype is not None else torch.get_default_dtype())


def flow_log_prob(y: torch.Tensor, schedule, denoiser, *, method: str = "dopri5", options: dict | None = None,
                  divergence: str = "auto", n_probes: int = 1, generator: torch.Generator | None = None,
                  probes: torch.Tensor | None = None) -> torch.Tensor:
    """log p_flow(y) per row, in nats: the probability-flow model's density of the data as passed.

    Parameters
    ----------
    y : (n, D) tensor.
    schedule : :class:`~.schedule.NoiseSchedule`.
    denoiser : callable (z, gamma) -> eps_hat.
    method : str, default="dopri5"
        A solver of :data:`~.solvers.SOLVERS`; ``options`` are its keyword arguments
        (``rtol``, ``atol``, ``max_steps`` for "dopri5"; ``n_steps`` for "rk4").
    divergence : {"auto", "exact", "hutchinson"}, default="auto"
        "auto" is exact up to :data:`EXACT_DIVERGENCE_MAX_DIM` features, Hutchinson's above.
    n_probes : int, default=1
        Rademacher probes per row for Hutchinson's estimator (its variance falls as 1 / n_probes).
    generator : torch.Generator, optional
        Draws the probes; required for Hutchinson's estimator unless ``probes`` are given.
    probes : (n_probes, n, D) tensor, optional
        The probes themselves (for instance keyed by row).

    Returns
    -------
    (n,) tensor
        Exact up to the solver's error with the exact divergence; unbiased with Hutchinson's.
    """
    if divergence == "auto":
        divergence = "exact" if y.shape[1] <= EXACT_DIVERGENCE_MAX_DIM else "hutchinson"
    if divergence not in DIVERGENCES:
        raise ValueError(f"Unknown divergence {divergence!r}; choose one of {sorted(DIVERGENCES) + ['auto']}.")
    n, D = y.shape
    if divergence == "hutchinson" and probes is None:
        if generator is None:
            raise ValueError("Hutchinson's divergence estimator needs a generator (or probes) for its probes.")
        probes = rademacher_probes(n_probes, y.shape, generator=generator, dtype=y.dtype, device=y.device)
    if probes is not None and (probes.ndim != 3 or probes.shape[1:] != y.shape):
        raise ValueError(f"probes must have shape (n_probes, {n}, {D}); got {tuple(probes.shape)}.")
    estimate = DIVERGENCES[divergence]
    g0 = schedule.gamma_0.to(y.dtype)

    def augmented(t, x):
        f, div = estimate(_drift_at(schedule, denoiser, t, n), x[:, :D], probes)
        return torch.cat([f, div.unsqueeze(-1)], dim=-1)

    with torch.no_grad():
        x0 = torch.cat([torch.sigmoid(-g0).sqrt() * y, y.new_zeros(n, 1)], dim=-1)
        x1 = odeint(augmented, x0, 0.0, 1.0, method=method, options=options)
        z1, integral = x1[:, :D], x1[:, D]
        log_prior = -0.5 * (z1 * z1).sum(-1) - 0.5 * D * _LOG_2PI
        # D log alpha_0 = -(D/2) softplus(gamma_0)
        return log_prior + integral - 0.5 * D * F.softplus(g0)


def flow_encode(y: torch.Tensor, schedule, denoiser, *, method: str = "dopri5",
                options: dict | None = None) -> torch.Tensor:
    """z_1 = Phi(y): the flow from z_0 = alpha_0 y at t = 0 to t = 1, shape (n, D)."""
    with torch.no_grad():
        z0 = torch.sigmoid(-schedule.gamma_0.to(y.dtype)).sqrt() * y
        return odeint(lambda t, z: probability_flow_drift(schedule, denoiser, t, z), z0, 0.0, 1.0,
                      method=method, options=options)


def flow_decode(z1: torch.Tensor, schedule, denoiser, *, method: str = "dopri5",
                options: dict | None = None) -> torch.Tensor:
    """y = Phi^{-1}(z_1): the flow from z_1 at t = 1 back to t = 0, divided by alpha_0, shape (n, D)."""
    with torch.no_grad():
        z0 = odeint(lambda t, z: probability_flow_drift(schedule, denoiser, t, z), z1, 1.0, 0.0,
                    method=method, options=options)
        return z0 / torch.sigmoid(-schedule.gamma_0.to(z1.dtype)).sqrt()
