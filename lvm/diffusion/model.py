"""The variational diffusion model as one module: a noise schedule and a denoiser.

``forward(y, t, eps)`` is the per-draw bound of :func:`~.bound.vlb`, so every parameter is used
inside ``forward``: the module can be wrapped in
:class:`torch.nn.parallel.DistributedDataParallel` as it is, and an optimizer sees both parts
through ``parameters()``. Everything else (sampling, the probability flow) takes
``model.schedule`` and ``model.denoiser``.
"""

from __future__ import annotations

import torch
from torch import nn

from .bound import VLBTerms, vlb_terms

__all__ = ["VariationalDiffusion"]


class VariationalDiffusion(nn.Module):
    """A noise schedule and an epsilon-denoiser whose forward pass is the per-row bound.

    Parameters
    ----------
    schedule : :class:`~.schedule.NoiseSchedule`
        For example ``make_schedule("linear")``.
    denoiser : nn.Module (z (m, D), gamma (m,)) -> eps_hat (m, D)
        For example :class:`~.denoiser.ResidualDenoiser`.
    reference : :class:`~.gaussian.OptimalGaussianDenoiser`, optional
        The control variate's reference (with ``control_variate=True``); None uses N(0, I)'s.
    """

    def __init__(self, schedule: nn.Module, denoiser: nn.Module, reference: nn.Module | None = None):
        super().__init__()
        self.schedule = schedule
        self.denoiser = denoiser
        self.reference = reference

    def terms(self, y: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, *, n_steps: int | None = None,
              control_variate: bool = False) -> VLBTerms:
        """The three parts of -VLB; see :func:`~.bound.vlb_terms`."""
        if control_variate and self.reference is not None:
            control_variate = self.reference
        return vlb_terms(y, self.schedule, self.denoiser, t, eps, n_steps=n_steps,
                         control_variate=control_variate)

    def forward(self, y: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, *, n_steps: int | None = None,
                control_variate: bool = False) -> torch.Tensor:
        """VLB(y) per row and draw, in nats (the shape of ``t``); maximize its mean."""
        return self.terms(y, t, eps, n_steps=n_steps, control_variate=control_variate).vlb
