r"""Ancestral sampling from a variational diffusion model (Kingma et al., 2021, as in VDM's code).

Start from z_1 ~ N(0, I) and walk down the grid t = i / T, s = (i - 1) / T, i = T, ..., 1, drawing
z_s from the model's reverse step p(z_s | z_t) = q(z_s | z_t, y = y_hat(z_t)), the forward
posterior at the denoiser's estimate of the data. With c = 1 - e^{gamma_s - gamma_t},

.. math::
    z_s = \frac{\alpha_s}{\alpha_t} \big(z_t - \sigma_t c\, \hat\epsilon(z_t, \gamma_t)\big)
          + \sqrt{\sigma_s^2 c}\; \epsilon, \qquad \epsilon \sim N(0, I).

Finally y is drawn from the decoder, y ~ N(z_0 / alpha_0, e^{gamma_0} I), or its mean z_0 / alpha_0
is returned. More steps follow the model more closely (the continuous-time model is the limit).
"""

from __future__ import annotations

import torch

__all__ = ["DECODES", "ancestral_sample", "reverse_step"]

#: What the decoder returns at the end: a draw of N(z_0 / alpha_0, e^{gamma_0} I) or its mean.
DECODES = ("sample", "mean")


def reverse_step(schedule, denoiser, z_t: torch.Tensor, t: float, s: float, eps: torch.Tensor) -> torch.Tensor:
    """One ancestral step z_t -> z_s (s < t) with the standard normal draw ``eps``, shape (n, D)."""
    times = torch.tensor([s, t], dtype=z_t.dtype, device=z_t.device)
    g_s, g_t = schedule(times)
    c = -torch.expm1(g_s - g_t)
    eps_hat = denoiser(z_t, g_t.expand(z_t.shape[0]))
    ratio = torch.sqrt(torch.sigmoid(-g_s) / torch.sigmoid(-g_t))  # alpha_s / alpha_t
    return ratio * (z_t - torch.sigmoid(g_t).sqrt() * c * eps_hat) + torch.sqrt(torch.sigmoid(g_s) * c) * eps


def ancestral_sample(schedule, denoiser, n_samples: int, n_features: int, *, generator: torch.Generator,
                     n_steps: int = 1000, decode: str = "sample") -> torch.Tensor:
    """Draw ``n_samples`` rows y of dimension ``n_features`` from the model.

    Parameters
    ----------
    schedule : :class:`~.schedule.NoiseSchedule`
        Its parameters set the dtype and device of the draws.
    denoiser : callable (z, gamma) -> eps_hat.
    n_samples, n_features : int
        Shape of the result.
    generator : torch.Generator
        The only source of randomness (on the schedule's device).
    n_steps : int, default=1000
        Number T of reverse steps.
    decode : {"sample", "mean"}, default="sample"
        Draw y from the Gaussian decoder, or return its mean z_0 / alpha_0.

    Returns
    -------
    (n_samples, n_features) tensor.
    """
    for name, value in (("n_samples", n_samples), ("n_features", n_features), ("n_steps", n_steps)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    if decode not in DECODES:
        raise ValueError(f"Unknown decode {decode!r}; choose one of {list(DECODES)}.")
    ref = schedule.gamma_0
    shape = (int(n_samples), int(n_features))

    def normal():
        return torch.randn(shape, generator=generator, dtype=ref.dtype, device=ref.device)

    T = int(n_steps)
    with torch.no_grad():
        z = normal()
        for i in range(T, 0, -1):
            z = reverse_step(schedule, denoiser, z, i / T, (i - 1) / T, normal())
        g0 = schedule.gamma_0
        y = z / torch.sigmoid(-g0).sqrt()
        if decode == "sample":
            y = y + torch.exp(0.5 * g0) * normal()
    return y
