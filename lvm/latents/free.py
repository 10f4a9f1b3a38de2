r"""Free per-row posteriors q(x_n) = N(mu_n, diag s_n), and fitting them for new rows.

:class:`PointLatent` holds one (mu_n, s_n) per training row, addressed by row ids only (it never
sees the data). :func:`fit_frozen` fits q(x*) for rows not seen in training with the decoder
frozen, maximizing each row's own bound

.. math::
    \mathcal L(y^*) = \mathbb E_{q(x^*)}[\log p(y^* \mid x^*)] - \mathrm{KL}(q(x^*) \,\|\, p(x^*))

by Adam on the sum over rows, so a row's result does not depend on the other rows (Adam is
elementwise and the sum decouples them).
"""

from __future__ import annotations

import math

import torch
from gpytorch.constraints import Positive
from torch import nn

from .prior import kl_standard

__all__ = ["PointLatent", "fit_frozen"]


class PointLatent(nn.Module):
    """Free per-row posteriors q(x_n) = N(mu_n, diag var_n), addressed by row ids.

    The variances are stored raw behind GPyTorch's ``Positive`` transform.

    Parameters
    ----------
    mu : torch.Tensor of shape (n_rows, K)
        The starting means.
    var : torch.Tensor of shape (n_rows, K)
        The starting variances (positive).
    """

    def __init__(self, mu: torch.Tensor, var: torch.Tensor):
        super().__init__()
        self.constraint = Positive()
        self.mu = nn.Parameter(mu.clone())
        self.raw_var = nn.Parameter(self.constraint.inverse_transform(var.clone()))

    @property
    def var(self) -> torch.Tensor:
        """The variances, shape (n_rows, K)."""
        return self.constraint.transform(self.raw_var)

    @property
    def n_rows(self) -> int:
        """The number of rows held."""
        return self.mu.shape[0]

    def forward(self, y=None, rows=None):
        """Return the mean and variance of q(x_n) for the row ids ``rows``.

        Parameters
        ----------
        y : object, optional
            Ignored (the amortized posterior takes the rows' data here).
        rows : index, optional
            Row ids (anything that indexes a tensor); all rows when None.

        Returns
        -------
        mu : torch.Tensor of shape (n, K)
            The means.
        var : torch.Tensor of shape (n, K)
            The variances.
        """
        mu, var = self.mu, self.var
        if rows is not None:
            mu, var = mu[rows], var[rows]
        return mu, var

    def kl(self, mu, var) -> torch.Tensor:
        """KL(q || N(0, I)) per row (:func:`kl_standard`).

        Parameters
        ----------
        mu, var : torch.Tensor of shape (n, K)
            The means and variances of q.

        Returns
        -------
        torch.Tensor of shape (n,)
            The divergences, in nats.
        """
        return kl_standard(mu, var)

    def extend(self, mu: torch.Tensor, var: torch.Tensor) -> None:
        """Append rows for points seen for the first time (``partial_fit``).

        Parameters
        ----------
        mu : torch.Tensor of shape (n_new, K)
            Their starting means.
        var : torch.Tensor of shape (n_new, K)
            Their starting variances.
        """
        with torch.no_grad():
            self.mu = nn.Parameter(torch.cat([self.mu.detach(), mu]))
            self.raw_var = nn.Parameter(
                torch.cat([self.raw_var.detach(), self.constraint.inverse_transform(var)]))


def fit_frozen(expected_log_lik, y, mu0, var0, *, max_iter: int = 300, learning_rate=0.05,
               steps_per_epoch: int = 50, name: str = "model"):
    """Fit q(x*) = N(mu, diag var) for new rows ``y`` with the decoder frozen.

    Parameters
    ----------
    expected_log_lik : callable
        ``expected_log_lik(y, mu, var) -> (n,)``: E_{q(x)} log p(y | x) per row (closed form or
        a Monte Carlo average over fixed draws).
    y : torch.Tensor of shape (n, D)
        The rows.
    mu0, var0 : torch.Tensor of shape (n, K)
        The starting q(x*).
    max_iter : int, default=300
        Adam steps (a fixed count, so a row's result does not depend on the others).
    learning_rate : float, default=0.05
        Adam's step size.
    steps_per_epoch : int, default=50
        Steps per call of the training loop's epoch (one progress update each).
    name : str, default="model"
        The estimator's name, for the training loop's messages.

    Returns
    -------
    mu : torch.Tensor of shape (n, K)
        The fitted means.
    var : torch.Tensor of shape (n, K)
        The fitted variances.
    """
    from .._training import train

    latent = PointLatent(mu0, var0)
    if max_iter > 0:
        opt = torch.optim.Adam(latent.parameters(), lr=learning_rate)
        steps = min(steps_per_epoch, max_iter)

        def epoch():
            for _ in range(steps):
                opt.zero_grad()
                mu, var = latent()
                value = (expected_log_lik(y, mu, var) - latent.kl(mu, var)).sum()
                # The sum, not the mean: each row's gradient (and so its Adam step) must not
                # depend on how many other rows are being fitted.
                (-value).backward()
                opt.step()
            return value.detach() / y.shape[0]

        with torch.enable_grad():
            train(epoch, [latent], [opt], max_epochs=math.ceil(max_iter / steps), tol=None,
                  estimator_name=f"{name}.transform")
    with torch.no_grad():
        mu, var = latent()
    return mu.detach(), var.detach()
