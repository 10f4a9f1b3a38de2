"""The diffusion model's training state: the moving average that is evaluated, and the
Gaussian path that starts the nested fit and serves as the control variate's reference."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .. import _distributed as dist
from .._stats import GaussianStats
from .gaussian import OptimalGaussianDenoiser

__all__ = ["AveragedDiffusion", "gaussian_path"]


class AveragedDiffusion(nn.Module):
    """A :class:`~.model.VariationalDiffusion` in training (``live``) and an exponential moving
    average of its parameters (``average``, without gradients), the model that is evaluated, as in
    VDM.

    :meth:`update`, after optimizer step k, moves the average toward the live weights by
    1 - d_k with the warm-up d_k = min(decay, (1 + k) / (10 + k)), so that a short run is not
    dominated by the initial weights. ``decay=0`` keeps the last iterate.
    """

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        self.live = model
        self.average = copy.deepcopy(model).requires_grad_(False)
        self.decay = float(decay)
        self.n_updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.n_updates += 1
        k = self.n_updates
        weight = 1.0 - min(self.decay, (1.0 + k) / (10.0 + k))
        for a, p in zip(self.average.parameters(), self.live.parameters()):
            a.lerp_(p, weight)

    def forward(self, *args, **kwargs):
        """The live model's bound (training)."""
        return self.live(*args, **kwargs)


def gaussian_path(Z):
    """The optimal denoiser of N(mean, covariance) of the rows ``Z`` of every rank (on the CPU,
    float64; eigenvalues floored at 1e-6 of their mean), or None when there are no more rows
    than features."""
    stats = GaussianStats.of(Z.detach())
    if dist.is_distributed():
        stats = stats.all_reduce()
    if stats.n <= Z.shape[1]:
        return None
    return OptimalGaussianDenoiser(stats.mean.cpu(), stats.covariance.cpu(),
                                   eigenvalue_floor=1e-6)
