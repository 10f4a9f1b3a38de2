r"""The negative-binomial likelihood: mean exp(f) (log link), one learned size r per feature.

With mean :math:`\mu = e^{f}` and size (inverse dispersion) r, Var y = mu + mu^2 / r:

.. math::
    \log p(y \mid f) = \log\Gamma(y + r) - \log\Gamma(r) - \log y!
        + r \log\frac{r}{r + \mu} + y \log\frac{\mu}{r + \mu},

scipy's ``nbinom(n=r, p=r / (r + mu))``. r -> infinity is the Poisson. The expectations under a
Gaussian belief about f are by the base class's Gauss-Hermite quadrature.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from ._base import LogLinkCountLikelihood, inverse_softplus

__all__ = ["NegativeBinomialLikelihood"]


class NegativeBinomialLikelihood(LogLinkCountLikelihood):
    """Negative-binomial likelihood with mean exp(f) and one learned size per feature.

    For overdispersed counts (reads per gene, words per document). The size r (scipy's ``n``,
    torch's ``total_count``, scvi-tools' ``theta``) is stored raw with a softplus transform,
    ``total_count = softplus(raw_total_count) + 1e-4``.

    Parameters
    ----------
    n_features : int, default=1
        The number of sizes: 1 shared by every feature, or one per feature.
    initial_total_count : float or tensor, default=10.0
        The starting size (one value, or one per feature).
    """

    name = "negative_binomial"
    _MIN_TOTAL_COUNT = 1e-4

    def __init__(self, n_features: int = 1, initial_total_count=10.0):
        super().__init__()
        init = torch.as_tensor(initial_total_count, dtype=torch.get_default_dtype())
        init = (init.expand(n_features) - self._MIN_TOTAL_COUNT).clamp_min(1e-3)
        self.raw_total_count = torch.nn.Parameter(inverse_softplus(init.clone()))

    @classmethod
    def _from_counts(cls, Y):
        """Make a likelihood with one size per feature, started by the method of moments.

        Per feature, r = mean^2 / (variance - mean), clamped to [0.1, 1000] (1000 where the
        counts are not overdispersed). The variance includes what the latent variables will
        explain, so the start errs towards overdispersion.

        Parameters
        ----------
        Y : torch.Tensor of shape (n_samples, n_features)
            The training counts (NaN entries are left out).

        Returns
        -------
        NegativeBinomialLikelihood
            A new instance.
        """
        Y64 = Y.to(torch.float64)
        mean = torch.nanmean(Y64, 0)
        var = torch.nanmean((Y64 - mean) ** 2, 0)
        excess = var - mean
        r = torch.where(excess > 0, mean ** 2 / excess.clamp_min(1e-12),
                        torch.full_like(mean, 1e3))
        r = torch.nan_to_num(r, nan=1e3).clamp(0.1, 1e3)
        return cls(Y.shape[1], initial_total_count=r.cpu().to(torch.get_default_dtype()))

    @property
    def total_count(self) -> torch.Tensor:
        """The size r per feature (the inverse dispersion), shape (1,) or (n_features,)."""
        return F.softplus(self.raw_total_count) + self._MIN_TOTAL_COUNT

    def _log_prob_entries(self, y, f):
        r = self.total_count
        log_r = torch.log(r)
        log_sum = torch.logaddexp(log_r, f)  # log(r + mu), stable for any f
        return (torch.lgamma(y + r) - torch.lgamma(r) - torch.lgamma(y + 1)
                + r * (log_r - log_sum) + y * (f - log_sum))

    def _log_prob_derivatives(self, y, f):
        r = self.total_count
        s = torch.sigmoid(f - torch.log(r))  # mu / (r + mu)
        return y - (r + y) * s, -(r + y) * s * (1 - s)

    def sample(self, f, generator=None):
        """Draw y ~ NB(exp f, r) as a gamma-Poisson mixture.

        Parameters
        ----------
        f : torch.Tensor
            The log-means.
        generator : torch.Generator, optional
            The source of randomness (it seeds the gamma draws too).

        Returns
        -------
        torch.Tensor
            Counts, of the shape of ``f``.
        """
        r = self.total_count.detach().expand_as(f)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=f.device))
        shape = r.double().cpu().numpy()
        gamma = np.random.default_rng(seed).gamma(shape) / shape  # mean 1, variance 1 / r
        rate = torch.exp(f.detach()) * torch.as_tensor(gamma, dtype=f.dtype, device=f.device)
        return torch.poisson(rate, generator=generator)
