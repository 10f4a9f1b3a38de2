r"""The Gaussian likelihood y | f ~ N(f, diag(noise)), with one noise variance or one per feature.

Closed forms for a Gaussian belief f ~ N(m, v) per entry:

.. math::
    \mathbb E_f \log \mathcal N(y; f, \sigma^2) = -\tfrac12\Big(\log 2\pi\sigma^2
        + \frac{(y - m)^2 + v}{\sigma^2}\Big), \qquad
    \log \mathbb E_f\, \mathcal N(y; f, \sigma^2) = \log \mathcal N(y; m, v + \sigma^2).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ._base import Likelihood, _fill, inverse_softplus, masked_sum

__all__ = ["GaussianLikelihood"]

_LOG_2PI = math.log(2 * math.pi)


class GaussianLikelihood(Likelihood):
    """Gaussian likelihood y | f ~ N(f, diag(noise)), the noise learned.

    One variance shared by all features (``n_noise=1``) or one per feature. The variance is
    stored raw with a softplus transform and a floor, ``noise = softplus(raw_noise) + min_noise``,
    so it stays positive whatever the optimizer does.

    Parameters
    ----------
    n_noise : int, default=1
        1 for one variance shared by all features, n_features for one each.
    initial_noise : float or tensor, default=1.0
        The starting noise variance (one value, or one per feature).
    min_noise : float, default=1e-6
        The floor; :meth:`from_data` sets it relative to the data's variance.
    """

    name = "gaussian"
    support = "real numbers"
    location_scale = True

    def __init__(self, n_noise: int = 1, initial_noise=1.0, min_noise: float = 1e-6):
        super().__init__()
        # A buffer, not a float: it travels with the state (snapshots, broadcasts across ranks).
        self.register_buffer("floor", torch.tensor(float(min_noise)))
        init = torch.as_tensor(initial_noise, dtype=torch.get_default_dtype()).expand(n_noise)
        init = (init - float(min_noise)).clamp_min(1e-3 * max(float(min_noise), 1e-12))
        self.raw_noise = torch.nn.Parameter(inverse_softplus(init.clone()))

    @property
    def min_noise(self) -> float:
        """The floor under the noise variance."""
        return float(self.floor)

    @min_noise.setter
    def min_noise(self, value: float) -> None:
        self.floor.fill_(float(value))

    @classmethod
    def from_data(cls, Y, noise: str = "shared", fraction: float = 1.0, floor: float = 1e-6,
                  **ignored):
        """Make a likelihood whose noise starts at ``fraction`` of the data's variance.

        The decoder starts at the data mean and explains nothing, so all of the variance is
        noise (its mean over features for ``noise="shared"``). The floor is ``floor`` times the
        mean variance (relative, so the same in any units); a starting value is at least 1e-3
        of the mean variance, so that a constant feature does not start on the floor.

        Parameters
        ----------
        Y : torch.Tensor of shape (n_samples, n_features)
            The training data.
        noise : {"shared", "per_feature"}, default="shared"
            One noise variance, or one per feature.
        fraction : float, default=1.0
            The starting variance as a fraction of the data's.
        floor : float, default=1e-6
            The floor under the variance, relative to the data's mean variance.
        **ignored
            Other families' preferences (see :meth:`Likelihood.from_data`).

        Returns
        -------
        GaussianLikelihood
            A new instance.
        """
        Y64 = Y.to(torch.float64)  # NaN (missing entries) are left out of the variance
        var = torch.nanmean((Y64 - torch.nanmean(Y64, 0)) ** 2, 0) if Y.shape[0] > 1 else \
            torch.ones(Y.shape[1], dtype=torch.float64, device=Y.device)
        scale = max(float(var.mean()), 1e-300)
        init = (var.mean() if noise == "shared" else var) * fraction
        return cls(1 if noise == "shared" else Y.shape[1],
                   initial_noise=init.clamp_min(1e-3 * scale).cpu().to(torch.get_default_dtype()),
                   min_noise=floor * scale)

    @property
    def noise(self) -> torch.Tensor:
        """The noise variance, shape (1,) or (n_features,)."""
        return F.softplus(self.raw_noise) + self.floor

    def _log_prob_entries(self, y, f):
        noise = self.noise
        return -0.5 * ((y - f) ** 2 / noise + torch.log(noise) + _LOG_2PI)

    def log_prob(self, y, f, mask=None):
        """Log-density log N(y; f, diag(noise)) per row (see :meth:`Likelihood.log_prob`).

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The data.
        f : torch.Tensor of shape (..., D)
            The mean; leading dimensions broadcast against ``y``.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed.

        Returns
        -------
        torch.Tensor of shape (...)
            The log-density of each row, in nats.
        """
        if mask is not None:
            return super().log_prob(y, f, mask)
        # The hot path of every Gaussian decoder: one fused reduction, log det counted once.
        noise = self.noise
        D = y.shape[-1]
        log_det = torch.log(noise).sum() * (D // noise.shape[0])
        return -0.5 * (((y - f) ** 2 / noise).sum(-1) + log_det + D * _LOG_2PI)

    def expected_log_prob(self, y, mean, var, mask=None):
        """Expected log-density per row, in closed form (see the module docstring).

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The data.
        mean, var : torch.Tensor of shape (..., D)
            The Gaussian belief about f, per entry.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed.

        Returns
        -------
        torch.Tensor of shape (...)
            E_f log N(y; f, noise) per row, in nats.
        """
        noise = self.noise
        y = _fill(y, mask)
        values = -0.5 * (_LOG_2PI + torch.log(noise) + ((y - mean) ** 2 + var) / noise)
        return masked_sum(values, mask)

    def log_marginal(self, y, mean, var, mask=None):
        """Log marginal density per row, in closed form: log N(y; mean, var + noise).

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The data.
        mean, var : torch.Tensor of shape (..., D)
            The Gaussian belief about f, per entry.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed.

        Returns
        -------
        torch.Tensor of shape (...)
            The log marginal density per row, in nats.
        """
        total = var + self.noise
        y = _fill(y, mask)
        values = -0.5 * (_LOG_2PI + torch.log(total) + (y - mean) ** 2 / total)
        return masked_sum(values, mask)

    def mean(self, f):
        """Return E[y | f] = f.

        Parameters
        ----------
        f : torch.Tensor
            The decoder output.

        Returns
        -------
        torch.Tensor
            ``f`` itself.
        """
        return f

    def marginal_mean(self, mean, var):
        """Return E[y] = mean when f ~ N(mean, var).

        Parameters
        ----------
        mean, var : torch.Tensor
            The Gaussian belief about f.

        Returns
        -------
        torch.Tensor
            ``mean`` itself.
        """
        return mean

    def inverse_mean(self, mean):
        """Return the f whose E[y | f] is ``mean``: ``mean`` itself.

        Parameters
        ----------
        mean : torch.Tensor
            A mean of y.

        Returns
        -------
        torch.Tensor
            ``mean`` itself.
        """
        return mean

    def sample(self, f, generator=None):
        """Draw y = f + sqrt(noise) * eps, eps ~ N(0, I).

        Parameters
        ----------
        f : torch.Tensor
            The decoder output (the mean).
        generator : torch.Generator, optional
            The source of randomness.

        Returns
        -------
        torch.Tensor
            One draw per entry of ``f``.
        """
        eps = torch.randn(f.shape, generator=generator, device=f.device, dtype=f.dtype)
        return f + eps * torch.sqrt(self.noise)
