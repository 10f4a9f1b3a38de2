r"""The binomial likelihood y | f ~ Binomial(n, sigmoid(f)) per feature, f the logits.

.. math::
    \log p(y \mid f) = \log\binom{n}{y} + y \log\sigma(f) + (n - y) \log\sigma(-f).

The number of trials n is an option of the name: ``"binomial(n=16)"`` (one number for every
entry: pixel intensities 0..16), ``"binomial(n=[10, 20, 5])"`` (one per feature) or
``"binomial(n=total)"`` (each row's total over its observed entries, so that the model describes
the proportions; its log-probability is then conditional on the totals). The expectations under a
Gaussian belief about f are by the base class's Gauss-Hermite quadrature.
"""

from __future__ import annotations

import numbers

import torch
from torch.nn import functional as F

from ._base import CountLikelihood, check_counts

__all__ = ["BinomialLikelihood"]


class BinomialLikelihood(CountLikelihood):
    """Binomial likelihood y | f ~ Binomial(n, sigmoid(f)) per feature, f the logits.

    For counts out of a known number of trials. Pick n by the name's option (``"binomial(n=16)"``,
    ``"binomial(n=[...])"`` one per feature, or ``"binomial(n=total)"`` the row's total); the
    likelihood has no learned parameters.

    With ``n=total``, :meth:`mean` and :meth:`sample` (which do not see a row) use the training
    rows' mean total, rounded.

    Parameters
    ----------
    n : int, sequence of int or "total", optional
        The number of trials; by default the configured option (required one way or the other).
    """

    name = "binomial"
    support = "integers from 0 to the number of trials n"
    option_names = ("n",)

    def __init__(self, n=None):
        super().__init__()
        n = self._check_options({"n": self.options.get("n") if n is None else n})["n"]
        self.row_total = n == "total"
        trials = 1.0 if self.row_total else n
        self.register_buffer("trials", torch.as_tensor(trials, dtype=torch.get_default_dtype())
                             .reshape(-1))

    @classmethod
    def _check_options(cls, options):
        n = options.get("n")
        ok = (n == "total" or (isinstance(n, numbers.Integral) and not isinstance(n, bool)
                               and n >= 1)
              or (isinstance(n, (list, tuple)) and len(n) > 0
                  and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0
                          for v in n)))
        if not ok:
            raise ValueError(
                f"likelihood 'binomial' needs the number of trials n: a positive integer "
                f"('binomial(n=16)'), one non-negative integer per feature ('binomial(n=[10, "
                f"20])') or the row's total ('binomial(n=total)'); got n={n!r}.")
        return {**options, "n": list(n) if isinstance(n, (list, tuple)) else n}

    @classmethod
    def from_data(cls, Y, **ignored):
        """Make a likelihood; with ``n=total``, record the training rows' mean total, rounded.

        Parameters
        ----------
        Y : torch.Tensor of shape (n_samples, n_features)
            The training counts (NaN entries are left out).
        **ignored
            Other families' preferences (see :meth:`Likelihood.from_data`).

        Returns
        -------
        BinomialLikelihood
            A new instance.
        """
        lik = cls()
        if lik.row_total:
            total = torch.nansum(Y.to(torch.float64), -1).mean()
            lik.trials.fill_(max(round(float(total)), 1))
        return lik

    @classmethod
    def _upper(cls, Y, mask):
        n = cls._check_options(dict(cls.options))["n"] if cls.options else None
        if n is None or n == "total":
            return None
        n = torch.as_tensor(n, dtype=Y.dtype, device=Y.device)
        if n.dim() and n.shape[0] != Y.shape[-1]:
            raise ValueError(
                f"likelihood={cls.spec()!r} has {n.shape[0]} numbers of trials, but the data "
                f"have {Y.shape[-1]} features; give one per feature.")
        return n

    @classmethod
    def check_support(cls, Y, mask=None):
        """Raise a ValueError when an observed entry of ``Y`` is not an integer in [0, n].

        Parameters
        ----------
        Y : torch.Tensor of shape (n_samples, n_features)
            The data.
        mask : torch.Tensor of bool, optional
            True where an entry is observed; only those entries are checked.
        """
        if "n" not in cls.options:
            cls._check_options({})  # raises: the number of trials is required
        check_counts(cls, Y, mask, upper=cls._upper(Y, mask))

    def _n(self, y):
        return y.sum(-1, keepdim=True) if self.row_total else self.trials

    def _log_prob_entries(self, y, f):
        n = self._n(y)
        log_choose = torch.lgamma(n + 1) - torch.lgamma(y + 1) - torch.lgamma(n - y + 1)
        return log_choose - y * F.softplus(-f) - (n - y) * F.softplus(f)

    def _log_prob_derivatives(self, y, f):
        n, p = self._n(y), torch.sigmoid(f)
        return y - n * p, -n * p * (1 - p)

    def mean(self, f):
        """Return E[y | f] = n sigmoid(f).

        Parameters
        ----------
        f : torch.Tensor
            The logits.

        Returns
        -------
        torch.Tensor
            The means, of the shape of ``f``.
        """
        return self.trials * torch.sigmoid(f)

    def inverse_mean(self, mean):
        """Return logit(mean / n), the proportion clamped to [1e-3, 1 - 1e-3] first.

        Parameters
        ----------
        mean : torch.Tensor
            Means of y.

        Returns
        -------
        torch.Tensor
            The logits, finite.
        """
        p = mean / self.trials.to(mean).clamp_min(1.0)
        return torch.logit(p.clamp(1e-3, 1 - 1e-3))

    def link_transform(self, y):
        """Return logit((y + 1/2) / (n + 1)), the counts on the logit scale, finite at 0 and n.

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            Rows of counts (whole rows when n is the row's total).

        Returns
        -------
        torch.Tensor
            The logits, of the shape of ``y``.
        """
        return torch.logit((y + 0.5) / (self._n(y) + 1.0))

    def sample(self, f, generator=None):
        """Draw y ~ Binomial(n, sigmoid(f)).

        Parameters
        ----------
        f : torch.Tensor
            The logits.
        generator : torch.Generator, optional
            The source of randomness.

        Returns
        -------
        torch.Tensor
            Counts, of the shape of ``f``.
        """
        n = torch.round(self.trials).to(f).expand_as(f).contiguous()
        return torch.binomial(n, torch.sigmoid(f).contiguous(), generator=generator)
