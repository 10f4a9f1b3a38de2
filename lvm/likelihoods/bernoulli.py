"""The Bernoulli likelihood y | f ~ Bernoulli(sigmoid(f)) per feature, f the logits."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ._base import Likelihood

__all__ = ["BernoulliLikelihood"]


class BernoulliLikelihood(Likelihood):
    """Bernoulli likelihood y | f ~ Bernoulli(sigmoid(f)) per feature, f the logits.

    For binary or [0, 1]-valued data. For y strictly inside (0, 1) this is the continuous
    "cross-entropy" likelihood the VAE literature uses; it is a normalized density only for
    binary y.

    Parameters
    ----------
    *args, **kwargs
        Passed to :class:`torch.nn.Module`; the likelihood has no parameters of its own.
    """

    name = "bernoulli"
    support = "values in [0, 1]"

    @classmethod
    def check_support(cls, Y, mask=None):
        """Raise a ValueError when an observed entry of ``Y`` is outside [0, 1].

        Parameters
        ----------
        Y : torch.Tensor of shape (n_samples, n_features)
            The data.
        mask : torch.Tensor of bool, optional
            True where an entry is observed; only those entries are checked.
        """
        values = Y if mask is None else Y[mask]
        if values.numel() == 0:
            return
        lo, hi = (float(v) for v in torch.aminmax(values))
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"likelihood='bernoulli' needs data in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]. "
                "Scale the data to [0, 1] (e.g. divide by the maximum) or use "
                "likelihood='gaussian'."
            )

    def _log_prob_entries(self, y, f):
        y, f = torch.broadcast_tensors(y, f)
        return -F.binary_cross_entropy_with_logits(f, y, reduction="none")

    def mean(self, f):
        """Return E[y | f] = sigmoid(f).

        Parameters
        ----------
        f : torch.Tensor
            The logits.

        Returns
        -------
        torch.Tensor
            The probabilities, of the shape of ``f``.
        """
        return torch.sigmoid(f)

    def inverse_mean(self, mean):
        """Return the logits of ``mean``, clamped to [1e-3, 1 - 1e-3] first.

        Parameters
        ----------
        mean : torch.Tensor
            Probabilities.

        Returns
        -------
        torch.Tensor
            The logits of ``mean``, finite.
        """
        # A feature that is 0 (or 1) in every row would need an infinite logit; 1e-3 keeps the
        # start finite and within 0.1% of the data mean.
        return torch.logit(mean.clamp(1e-3, 1 - 1e-3))

    def sample(self, f, generator=None):
        """Draw y ~ Bernoulli(sigmoid(f)).

        Parameters
        ----------
        f : torch.Tensor
            The logits.
        generator : torch.Generator, optional
            The source of randomness.

        Returns
        -------
        torch.Tensor
            Zeros and ones, of the shape of ``f``.
        """
        return torch.bernoulli(torch.sigmoid(f), generator=generator)
