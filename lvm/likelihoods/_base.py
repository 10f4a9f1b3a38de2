r"""The likelihood p(y | f) shared by every decoder family.

A likelihood maps the decoder output f (one value per feature) to a distribution over the data.
Every quantity is per row, summed over features, and takes an optional boolean ``mask`` of the
data's shape (True where an entry is observed): masked entries contribute nothing, and whatever
they hold (NaN included) never enters the arithmetic.

Besides ``log_prob(y, f)`` the families need two integrals over a Gaussian belief
f ~ N(m, v) about the decoder output (a GP's predictive, say):

.. math::
    \text{expected\_log\_prob} = \mathbb E_{f}[\log p(y \mid f)], \qquad
    \text{log\_marginal} = \log \mathbb E_{f}[p(y \mid f)],

the first for variational bounds, the second for the evidence of a point given x. Both are
closed form for the Gaussian; the default here is Gauss–Hermite quadrature with ``n_points``
nodes, :math:`\mathbb E[g(f)] \approx \pi^{-1/2} \sum_i w_i\, g(m + \sqrt{2v}\, t_i)`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["Likelihood"]

_GH_CACHE: dict = {}


def _gauss_hermite(n: int, like: torch.Tensor):
    key = (n, like.device, like.dtype)
    if key not in _GH_CACHE:
        t, w = np.polynomial.hermite.hermgauss(n)
        _GH_CACHE[key] = (torch.as_tensor(t, dtype=like.dtype, device=like.device),
                          torch.as_tensor(w / math.sqrt(math.pi), dtype=like.dtype,
                                          device=like.device))
    return _GH_CACHE[key]


def masked_sum(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Sum over the last dimension of the entries where ``mask`` is True (all without a mask).

    Masked entries never enter the arithmetic, so a NaN there does not propagate.

    Parameters
    ----------
    values : torch.Tensor of shape (..., D)
        The values to sum.
    mask : torch.Tensor of bool of shape (..., D), or None
        True where an entry counts.

    Returns
    -------
    torch.Tensor of shape (...)
        The sums.
    """
    if mask is None:
        return values.sum(-1)
    return torch.where(mask, values, values.new_zeros(())).sum(-1)


def observed_mask(y: torch.Tensor) -> torch.Tensor | None:
    """The ``mask`` argument for data ``y`` whose NaN are missing entries: True where observed, or
    None when every entry is (the unmasked fast path)."""
    mask = ~torch.isnan(y)
    return None if bool(mask.all()) else mask


def _fill(y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    # Unobserved entries may hold NaN; zero them before any arithmetic (a NaN behind torch.where
    # still poisons the gradient of the branch it sits in).
    return y if mask is None else torch.where(mask, y, y.new_zeros(()))


class Likelihood(nn.Module):
    """Base class: p(y | f) per entry, independent over features.

    Subclasses implement ``_log_prob_entries(y, f)`` (elementwise log-density), ``mean``,
    ``sample`` and, where it has a closed form, ``expected_log_prob`` / ``log_marginal``.

    Parameters
    ----------
    *args, **kwargs
        Passed to :class:`torch.nn.Module`; the base class has no parameters of its own.

    Attributes
    ----------
    support : str
        Words for the values the likelihood accepts, used in error messages.
    location_scale : bool
        True when y | f is a location-scale family in y (the Gaussian): the data may then be
        standardized internally, and the evidence shifts by the log-Jacobian.
    n_points : int
        Gauss-Hermite nodes for the default integrals.
    n_parameters : int
        The number of learned real parameters.
    """

    # Documented under Attributes in the class docstring.
    support: str = "real numbers"
    location_scale: bool = False
    n_points: int = 20

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_data(cls, Y: torch.Tensor, **preferences) -> "Likelihood":
        """Make a likelihood initialized for data ``Y`` (subclasses document their heuristics).

        Parameters
        ----------
        Y : torch.Tensor of shape (n_samples, n_features)
            The training data.
        **preferences
            A family's wishes (``noise="per_feature"``, a starting noise ``fraction``); a
            likelihood without such parameters ignores them, so a family never needs to know
            which likelihood it was given.

        Returns
        -------
        Likelihood
            A new instance.
        """
        return cls()

    @classmethod
    def check_support(cls, Y: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Raise a ValueError naming the problem when ``Y`` is outside the support.

        Parameters
        ----------
        Y : torch.Tensor of shape (n_samples, n_features)
            The data.
        mask : torch.Tensor of bool, optional
            True where an entry is observed; only those entries are checked.
        """

    # ------------------------------------------------------------------ densities
    def _log_prob_entries(self, y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, y, f, mask=None) -> torch.Tensor:
        """Log-density log p(y | f) per row, summed over the last dimension.

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The data.
        f : torch.Tensor of shape (..., D)
            The decoder output; leading dimensions broadcast against ``y``.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed; the others contribute nothing.

        Returns
        -------
        torch.Tensor of shape (...)
            The log-density of each row, in nats.
        """
        return masked_sum(self._log_prob_entries(_fill(y, mask), f), mask)

    def _nodes(self, mean, var):
        """Quadrature nodes f_i = mean + sqrt(2 var) t_i along a new leading axis, and the weights
        (shaped to broadcast against them)."""
        t, w = _gauss_hermite(self.n_points, mean)
        shape = (-1,) + (1,) * mean.dim()
        return mean + torch.sqrt(2.0 * var) * t.view(shape), w.view(shape)

    def expected_log_prob(self, y, mean, var, mask=None) -> torch.Tensor:
        """Expected log-density E_{f ~ N(mean, var)} log p(y | f) per row.

        By Gauss-Hermite quadrature with :attr:`n_points` nodes unless the subclass has a
        closed form.

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The data.
        mean, var : torch.Tensor of shape (..., D)
            The Gaussian belief about the decoder output, per entry.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed.

        Returns
        -------
        torch.Tensor of shape (...)
            The expectation per row, in nats.
        """
        f, w = self._nodes(mean, var)
        values = (self._log_prob_entries(_fill(y, mask), f) * w).sum(0)
        return masked_sum(values, mask)

    def log_marginal(self, y, mean, var, mask=None) -> torch.Tensor:
        """Log marginal density log E_{f ~ N(mean, var)} p(y | f) per row.

        Per entry, then summed over entries; by Gauss-Hermite quadrature unless the subclass
        has a closed form.

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The data.
        mean, var : torch.Tensor of shape (..., D)
            The Gaussian belief about the decoder output, per entry.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed.

        Returns
        -------
        torch.Tensor of shape (...)
            The log marginal density per row, in nats.
        """
        f, w = self._nodes(mean, var)
        values = torch.logsumexp(self._log_prob_entries(_fill(y, mask), f) + torch.log(w), 0)
        return masked_sum(values, mask)

    # ------------------------------------------------------------------ predictions
    def mean(self, f: torch.Tensor) -> torch.Tensor:
        """Mean of y given the decoder output, E[y | f].

        Parameters
        ----------
        f : torch.Tensor
            The decoder output.

        Returns
        -------
        torch.Tensor
            E[y | f], of the shape of ``f``.
        """
        raise NotImplementedError

    def marginal_mean(self, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """Mean of y when f ~ N(mean, var), by quadrature unless closed form.

        Parameters
        ----------
        mean, var : torch.Tensor
            The Gaussian belief about the decoder output, per entry.

        Returns
        -------
        torch.Tensor
            E[y], of the shape of ``mean``.
        """
        f, w = self._nodes(mean, var)
        return (self.mean(f) * w).sum(0)

    def inverse_mean(self, mean: torch.Tensor) -> torch.Tensor:
        """Find the decoder output f whose E[y | f] is ``mean``.

        Used to start a decoder at the data mean.

        Parameters
        ----------
        mean : torch.Tensor
            A mean of y.

        Returns
        -------
        torch.Tensor
            The decoder output f, of the shape of ``mean``.
        """
        raise NotImplementedError

    def sample(self, f: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw y from p(y | f).

        Parameters
        ----------
        f : torch.Tensor
            The decoder output.
        generator : torch.Generator, optional
            The source of randomness.

        Returns
        -------
        torch.Tensor
            One draw per entry of ``f``.
        """
        raise NotImplementedError

    @property
    def n_parameters(self) -> int:
        """The number of learned real parameters."""
        return sum(p.numel() for p in self.parameters())
