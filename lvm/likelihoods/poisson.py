r"""The Poisson likelihood y | f ~ Poisson(exp f) per feature, f the log-rate.

.. math::
    \log p(y \mid f) = y f - e^{f} - \log y!

Under a Gaussian belief f ~ N(m, v), :math:`\mathbb E\, e^{f} = e^{m + v/2}`, so the expected
log-probability is closed form, :math:`y m - e^{m + v/2} - \log y!`, and so is the mean of y.
"""

from __future__ import annotations

import torch

from ._base import LogLinkCountLikelihood, _fill, masked_sum

__all__ = ["PoissonLikelihood"]


class PoissonLikelihood(LogLinkCountLikelihood):
    """Poisson likelihood y | f ~ Poisson(exp f) per feature, f the log-rate (log link).

    For counts. ``log_prob`` is a log-probability, log P(y | f) <= 0 per entry; nothing is
    learned in the likelihood itself.

    Parameters
    ----------
    *args, **kwargs
        Passed to :class:`torch.nn.Module`; the likelihood has no parameters of its own.
    """

    name = "poisson"

    def _log_prob_entries(self, y, f):
        return y * f - torch.exp(f) - torch.lgamma(y + 1)

    def _expected_log_prob(self, y, mean, var, mask=None):
        """Expected log-probability per row in closed form, y m - exp(m + v / 2) - log y!
        (``mean`` shifted by the row's log size factor already, with the offset).

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The counts.
        mean, var : torch.Tensor of shape (..., D)
            The Gaussian belief about the log-rate f, per entry.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed.

        Returns
        -------
        torch.Tensor of shape (...)
            E_f log p(y | f) per row, in nats.
        """
        y = _fill(y, mask)
        return masked_sum(y * mean - torch.exp(mean + 0.5 * var) - torch.lgamma(y + 1), mask)

    def _log_prob_derivatives(self, y, f):
        rate = torch.exp(f)
        return y - rate, -rate

    def sample(self, f, generator=None):
        """Draw y ~ Poisson(exp f).

        Parameters
        ----------
        f : torch.Tensor
            The log-rates.
        generator : torch.Generator, optional
            The source of randomness.

        Returns
        -------
        torch.Tensor
            Counts, of the shape of ``f``.
        """
        return torch.poisson(torch.exp(f), generator=generator)
