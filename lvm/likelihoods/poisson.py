r"""The Poisson likelihood y | f ~ Poisson(exp f) per feature, f the log-rate.

.. math::
    \log p(y \mid f) = y f - e^{f} - \log y!

Under a Gaussian belief f ~ N(m, v), :math:`\mathbb E\, e^{f} = e^{m + v/2}`, so the expected
log-probability is closed form, :math:`y m - e^{m + v/2} - \log y!`, and so is the mean of y.
"""

from __future__ import annotations

import torch

from ._base import Likelihood, _fill, check_counts, laplace_log_marginal, masked_sum

__all__ = ["PoissonLikelihood"]


class PoissonLikelihood(Likelihood):
    """Poisson likelihood y | f ~ Poisson(exp f) per feature, f the log-rate (log link).

    For counts. ``log_prob`` is a log-probability, log P(y | f) <= 0 per entry; nothing is
    learned in the likelihood itself.

    Parameters
    ----------
    *args, **kwargs
        Passed to :class:`torch.nn.Module`; the likelihood has no parameters of its own.
    """

    name = "poisson"
    support = "non-negative integers"
    discrete = True

    @classmethod
    def check_support(cls, Y, mask=None):
        """Raise a ValueError when an observed entry of ``Y`` is not a non-negative integer.

        Parameters
        ----------
        Y : torch.Tensor of shape (n_samples, n_features)
            The data.
        mask : torch.Tensor of bool, optional
            True where an entry is observed; only those entries are checked.
        """
        check_counts(cls, Y, mask)

    def _log_prob_entries(self, y, f):
        return y * f - torch.exp(f) - torch.lgamma(y + 1)

    def expected_log_prob(self, y, mean, var, mask=None):
        """Expected log-probability per row in closed form, y m - exp(m + v / 2) - log y!.

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

    def log_marginal(self, y, mean, var, mask=None):
        """Log marginal probability log E_{f ~ N(mean, var)} p(y | f) per row.

        By adaptive Gauss-Hermite quadrature centred at the integrand's mode
        (:func:`~lvm.likelihoods._base.laplace_log_marginal`): the integrand of a large count is
        far narrower than the belief, and nodes spread over the belief would miss it.

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The counts.
        mean, var : torch.Tensor of shape (..., D)
            The Gaussian belief about f, per entry.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed.

        Returns
        -------
        torch.Tensor of shape (...)
            The log marginal probability per row, in nats.
        """
        return laplace_log_marginal(self, y, mean, var, mask)

    def mean(self, f):
        """Return E[y | f] = exp(f).

        Parameters
        ----------
        f : torch.Tensor
            The log-rates.

        Returns
        -------
        torch.Tensor
            The rates, of the shape of ``f``.
        """
        return torch.exp(f)

    def marginal_mean(self, mean, var):
        """Return E[y] = exp(mean + var / 2) when f ~ N(mean, var).

        Parameters
        ----------
        mean, var : torch.Tensor
            The Gaussian belief about the log-rate.

        Returns
        -------
        torch.Tensor
            E[y], of the shape of ``mean``.
        """
        return torch.exp(mean + 0.5 * var)

    def inverse_mean(self, mean):
        """Return log(mean), the mean clamped to at least 1e-3 first.

        Parameters
        ----------
        mean : torch.Tensor
            Rates.

        Returns
        -------
        torch.Tensor
            The log-rates, finite.
        """
        # A feature that is 0 in every row would need rate 0 (log-rate -inf).
        return torch.log(mean.clamp_min(1e-3))

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
