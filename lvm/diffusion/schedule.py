r"""Learned noise schedules gamma(t) of a variance-preserving diffusion (Kingma et al., 2021).

The forward process q(z_t | y) = N(alpha_t y, sigma_t^2 I), t in [0, 1], is parameterized by the
negative log signal-to-noise ratio gamma_t = log(sigma_t^2 / alpha_t^2):

.. math::
    \alpha_t^2 = \operatorname{sigmoid}(-\gamma_t), \qquad
    \sigma_t^2 = \operatorname{sigmoid}(\gamma_t), \qquad
    \alpha_t^2 + \sigma_t^2 = 1.

gamma must increase with t (the signal fades). Both schedules here keep their endpoints
gamma_0 < gamma_1 as parameters, stored as ``gamma_0`` and a softplus-positive ``width =
gamma_1 - gamma_0``, so the order holds whatever the optimizer does:

* ``"linear"`` (VDM's learnable scalar schedule):
  gamma(t) = gamma_0 + width t, gamma'(t) = width in closed form;
* ``"monotone"`` (VDM's ``NoiseSchedule_NNet``): a monotone network with positive weights,

  .. math::
      \tilde\gamma(t) = w_1 t + \frac{1}{F} w_3^\top \big(2\,\operatorname{sigmoid}(w_2 (2t - 1)
      + b_2) - 1\big), \qquad w_1, w_2, w_3 > 0,

  rescaled to the learned endpoints,
  gamma(t) = gamma_0 + width (tilde(t) - tilde(0)) / (tilde(1) - tilde(0)); gamma'(t) comes from
  forward-mode autodiff (:func:`torch.func.jvp`), so it stays differentiable in the parameters.

The continuous-time bound depends on the schedule only through its endpoints (its diffusion term
is an integral over gamma); the shape in between changes the variance of its Monte Carlo estimate.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SCHEDULES", "NoiseSchedule", "LinearSchedule", "MonotoneSchedule", "make_schedule",
           "alpha_sigma"]

#: VDM's initial endpoints: sigma_0^2 = sigmoid(-13.3) ~ 1.7e-6, alpha_1^2 = sigmoid(-5) ~ 6.7e-3.
GAMMA_MIN, GAMMA_MAX = -13.3, 5.0


def alpha_sigma(gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """alpha_t = sqrt(sigmoid(-gamma)) and sigma_t = sqrt(sigmoid(gamma)), elementwise."""
    return torch.sigmoid(-gamma).sqrt(), torch.sigmoid(gamma).sqrt()


def _softplus_inverse(v: float) -> float:
    # softplus^{-1}(v) = v + log(-expm1(-v))
    return v + math.log(-math.expm1(-v))


class NoiseSchedule(nn.Module):
    """A monotone gamma(t) on [0, 1] with learned endpoints ``gamma_0 < gamma_1``.

    Subclasses implement :meth:`_shape`: an increasing map with ``_shape(0) = 0`` and
    ``_shape(1) = 1``, returned with its derivative.

    Parameters
    ----------
    gamma_min, gamma_max : float
        Initial endpoints gamma(0) and gamma(1); ``gamma_min < gamma_max``.
    """

    def __init__(self, gamma_min: float = GAMMA_MIN, gamma_max: float = GAMMA_MAX):
        super().__init__()
        if not gamma_min < gamma_max:
            raise ValueError(f"The noise schedule needs gamma_min < gamma_max; got gamma_min={gamma_min!r}, "
                             f"gamma_max={gamma_max!r}.")
        self.gamma_start = nn.Parameter(torch.tensor(float(gamma_min)))
        self.raw_width = nn.Parameter(torch.tensor(_softplus_inverse(float(gamma_max - gamma_min))))

    @property
    def width(self) -> torch.Tensor:
        """gamma_1 - gamma_0 > 0."""
        return F.softplus(self.raw_width)

    @property
    def gamma_0(self) -> torch.Tensor:
        """gamma(0), the log noise-to-signal ratio of z_0 (0-dim)."""
        return self.gamma_start

    @property
    def gamma_1(self) -> torch.Tensor:
        """gamma(1), the log noise-to-signal ratio of z_1 (0-dim)."""
        return self.gamma_start + self.width

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """gamma(t), elementwise, same shape as ``t``."""
        return self.with_derivative(t)[0]

    def derivative(self, t: torch.Tensor) -> torch.Tensor:
        """dgamma/dt at ``t``, elementwise (positive)."""
        return self.with_derivative(t)[1]

    def with_derivative(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma(t), dgamma/dt(t)), both of the shape of ``t``."""
        shape, slope = self._shape(t)
        width = self.width
        return self.gamma_start + width * shape, width * slope

    def _shape(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError


class LinearSchedule(NoiseSchedule):
    """gamma(t) = gamma_0 + (gamma_1 - gamma_0) t with learned endpoints (VDM's scalar schedule).

    Parameters
    ----------
    gamma_min, gamma_max : float, default=-13.3, 5.0
        Initial gamma(0) and gamma(1).

    Attributes
    ----------
    gamma_start : Parameter
        gamma(0).
    raw_width : Parameter
        softplus^{-1}(gamma(1) - gamma(0)); the width itself is :attr:`width`.
    """

    def _shape(self, t):
        return t, torch.ones_like(t)


class MonotoneSchedule(NoiseSchedule):
    """VDM's monotone network schedule, rescaled to learned endpoints.

    Parameters
    ----------
    gamma_min, gamma_max : float, default=-13.3, 5.0
        Initial gamma(0) and gamma(1).
    n_features : int, default=1024
        Width F of the hidden layer.
    generator : torch.Generator, optional
        Draws the initial hidden weights (standard normal, as in VDM); a CPU generator seeded with 0
        when omitted. torch's global generator is never used.

    Notes
    -----
    Positive weights are stored raw with a softplus, w = softplus(raw_w). The initial shape is close
    to, not exactly, linear.
    """

    def __init__(self, gamma_min: float = GAMMA_MIN, gamma_max: float = GAMMA_MAX, *,
                 n_features: int = 1024, generator: torch.Generator | None = None):
        super().__init__(gamma_min, gamma_max)
        if int(n_features) < 1:
            raise ValueError(f"n_features of MonotoneSchedule must be a positive integer; got {n_features!r}.")
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        F_ = int(n_features)
        self.raw_linear = nn.Parameter(torch.tensor(_softplus_inverse(1.0)))
        self.raw_hidden = nn.Parameter(torch.randn(F_, generator=generator))
        self.hidden_bias = nn.Parameter(torch.randn(F_, generator=generator))
        self.raw_output = nn.Parameter(torch.randn(F_, generator=generator))

    def _tilde(self, t: torch.Tensor) -> torch.Tensor:
        h = torch.sigmoid((2.0 * t - 1.0).unsqueeze(-1) * F.softplus(self.raw_hidden) + self.hidden_bias)
        # 2 (sigmoid - 1/2) rather than tanh, as in VDM
        nonlinear = (2.0 * h - 1.0) @ F.softplus(self.raw_output) / self.raw_output.shape[0]
        return F.softplus(self.raw_linear) * t + nonlinear

    def _shape(self, t):
        ends = self._tilde(torch.tensor([0.0, 1.0], dtype=t.dtype, device=t.device))
        t = t.contiguous()  # forward-mode AD refuses expanded (stride-0) inputs
        value, slope = torch.func.jvp(self._tilde, (t,), (torch.ones_like(t),))
        span = ends[1] - ends[0]
        return (value - ends[0]) / span, slope / span


#: Noise schedules by name.
SCHEDULES = {"linear": LinearSchedule, "monotone": MonotoneSchedule}


def make_schedule(name: str, **kwargs) -> NoiseSchedule:
    """The schedule ``SCHEDULES[name](**kwargs)``; one message lists the valid names."""
    if name not in SCHEDULES:
        raise ValueError(f"Unknown noise schedule {name!r}; choose one of {sorted(SCHEDULES)}.")
    return SCHEDULES[name](**kwargs)
