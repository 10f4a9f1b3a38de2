r"""The amortized posterior q(x | y) = N(mu(y), diag exp(lambda(y))) of a network (an encoder).

The VAE's encoder and the back-constrained GPLVM's q(x | y) are the same object. The network maps
y (n, D) either to one (n, 2K) tensor (the means, then the log-variances) or to a pair
``(mu, log_var)``. With a ``projection`` P (D, K) the mean is a residual on a linear map,
mu(y) = (y - c)^T P + net_mu(y), so a network whose last layer starts at zero starts from that map
(the GPLVM's PCA start). With ``input_loc`` and ``input_scale`` the network sees
(y - input_loc) / input_scale: a family whose data are not standardized (counts, intensities)
standardizes what the network sees, so its first layer works at unit scale.

**Missing entries** (NaN) are zero-filled before the network sees them (zero is the feature's mean
in standardized units); with ``mask_channel`` the network also sees the mask, [y_0, m], so its
posterior can depend on which entries are observed (the MIWAE encoder of Mattei & Frellsen, 2019).
"""

from __future__ import annotations

import torch
from torch import nn

from .prior import kl_standard, kl_standard_log_var

__all__ = ["AmortizedLatent"]


class AmortizedLatent(nn.Module):
    """Amortized posterior q(x | y) from a network (an encoder).

    Maps rows of y to (mean, variance); it never indexes anything.

    Parameters
    ----------
    net : torch.nn.Module
        Maps y of shape (n, D) to one (n, 2K) tensor (the means, then the log-variances) or to a
        pair (mu, log_var) of (n, K) tensors.
    n_components : int
        K, used to split a single output.
    projection : torch.Tensor of shape (D, K), optional
        A fixed linear map the mean is a residual on.
    center : torch.Tensor of shape (D,), optional
        Subtracted from y before ``projection`` (zeros when omitted).
    input_loc, input_scale : torch.Tensor broadcastable to (D,), optional
        The network's input is (y - input_loc) / input_scale.
    mask_channel : bool, default=False
        The network's input is [y_0, m] (2D columns): the zero-filled rows and their masks.
    """

    def __init__(self, net: nn.Module, n_components: int, projection=None, center=None,
                 input_loc=None, input_scale=None, mask_channel: bool = False):
        super().__init__()
        self.net = net
        self.n_components = int(n_components)
        self.mask_channel = bool(mask_channel)
        if input_loc is not None:
            self.register_buffer("input_loc", torch.as_tensor(input_loc).clone())
            self.register_buffer("input_scale", torch.as_tensor(input_scale).clone())
        else:
            self.input_loc = self.input_scale = None
        if projection is not None:
            self.register_buffer("projection", projection.clone())
            self.register_buffer("center", torch.zeros(projection.shape[0], dtype=projection.dtype,
                                                       device=projection.device)
                                 if center is None else center.clone())
        else:
            self.projection = None

    def encode(self, y: torch.Tensor):
        """Compute the posterior mean and log-variance of the rows ``y``.

        Parameters
        ----------
        y : torch.Tensor of shape (n, D)
            The rows.

        Returns
        -------
        mu : torch.Tensor of shape (n, K)
            The means.
        log_var : torch.Tensor of shape (n, K)
            The log-variances.
        """
        observed = ~torch.isnan(y)
        y = torch.where(observed, y, y.new_zeros(()))
        v = y if self.input_loc is None else (y - self.input_loc) / self.input_scale
        if self.mask_channel:
            v = torch.cat([torch.where(observed, v, v.new_zeros(())), observed.to(v.dtype)], -1)
        out = self.net(v)
        K = self.n_components
        if isinstance(out, (tuple, list)):
            if len(out) != 2:
                raise ValueError(
                    f"A custom encoder must return one (n, 2K) tensor or a pair (mu, log_var); it "
                    f"returned a sequence of {len(out)} items."
                )
            mu, log_var = out
        else:
            if out.dim() != 2 or out.shape[-1] != 2 * K:
                raise ValueError(
                    f"The encoder returned shape {tuple(out.shape)}; expected "
                    f"(n, 2 * n_components) = (n, {2 * K}) (means, then log-variances) or a pair "
                    "(mu, log_var)."
                )
            mu, log_var = out[:, :K], out[:, K:]
        if mu.shape != (y.shape[0], K) or log_var.shape != mu.shape:
            raise ValueError(
                f"The encoder returned mu of shape {tuple(mu.shape)} and log_var of shape "
                f"{tuple(log_var.shape)}; both must be (n, n_components) = ({y.shape[0]}, {K})."
            )
        if self.projection is not None:
            mu = mu + (y - self.center) @ self.projection
        return mu, log_var

    def forward(self, y: torch.Tensor, rows=None):
        """Compute the mean and variance of q(x | y) for the rows ``y``.

        Parameters
        ----------
        y : torch.Tensor of shape (n, D)
            The rows.
        rows : object, optional
            Ignored (the per-row posteriors take row ids here).

        Returns
        -------
        mu : torch.Tensor of shape (n, K)
            The means.
        var : torch.Tensor of shape (n, K)
            The variances.
        """
        mu, log_var = self.encode(y)
        return mu, torch.exp(log_var)

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

    kl_log_var = staticmethod(kl_standard_log_var)
