r"""The diffusion model's math as a :class:`lvm._family.Family`: its bound, flow and sampler.

The model (see :class:`lvm.DiffusionModel`) is a noise schedule and a denoiser,
:class:`~.model.VariationalDiffusion`, trained by its per-row bound with low-discrepancy times
and the fitted Gaussian's control variate (:mod:`.bound`). What is evaluated is an exponential
moving average of its weights (:class:`AveragedDiffusion`). Its "latent" is the
probability-flow encoding :math:`z_1 = \Phi(z)` (:mod:`.ode`), deterministic, of the data's
own dimension, so the posterior has zero variance; it has no decoder likelihood p(z | x) of
that latent, and its evidence is its bound (:meth:`DiffusionFamily.bound`) or the flow's
likelihood (:meth:`DiffusionFamily.flow_log_prob`).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .. import _distributed as dist
from .._family import Family
from .._stats import GaussianStats
from ..evidence import chunked
from ..evidence.draws import row_keyed_normal
from .bound import draw_times, low_discrepancy_times
from .denoiser import ResidualDenoiser
from .gaussian import OptimalGaussianDenoiser
from .model import VariationalDiffusion
from .ode import EXACT_DIVERGENCE_MAX_DIM, flow_decode, flow_encode, flow_log_prob
from .sampler import ancestral_sample
from .schedule import make_schedule

__all__ = ["DiffusionFamily", "AveragedDiffusion", "gaussian_path", "SOLVER_DEFAULTS"]

#: The solvers' settings when ``solver_options`` is None.
SOLVER_DEFAULTS = {"rk4": {"n_steps": 100}, "dopri5": {"rtol": 1e-5, "atol": 1e-5}}


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


class DiffusionFamily(Family):
    """The diffusion model in training and its average (``averaged``, an
    :class:`AveragedDiffusion`), its training bound, the probability flow and the sampler.

    Parameters
    ----------
    module : lvm.diffusion.VariationalDiffusion
        The schedule and denoiser at the start of training.
    ema_decay : float
        Decay of the moving average that is evaluated.
    width : int
        The denoiser's hidden width (the widest per-draw computation, for evaluation chunks).
    solver : str
        The probability flow's ODE solver (:data:`~.solvers.SOLVERS`).
    solver_options : dict or None
        Its keyword arguments (None: :data:`SOLVER_DEFAULTS`).
    sampling_steps : int
        Reverse steps of the ancestral sampler.

    Notes
    -----
    There is no likelihood module (``likelihood`` is None): the decoder p(z | z_0) is part of
    the bound. The global parameters are the live model's; the average is not trained.
    """

    #: Validation: the bound with 4 draws per row, the same at every epoch.
    validation_samples = 4

    def __init__(self, module: VariationalDiffusion, *, ema_decay: float, width: int,
                 solver: str, solver_options: dict | None, sampling_steps: int):
        super().__init__(None)
        self.averaged = AveragedDiffusion(module, ema_decay)
        self.width = int(width)
        self.solver = solver
        self.solver_options = dict(SOLVER_DEFAULTS[solver] if solver_options is None
                                   else solver_options)
        self.sampling_steps = int(sampling_steps)

    @classmethod
    def from_data(cls, Z, *, schedule: str, gamma_min: float, gamma_max: float, width: int,
                  depth: int, activation: str, init: str, seed: int,
                  **options) -> "DiffusionFamily":
        """Schedule and denoiser at the start of training on the rows ``Z``, initialized from
        ``seed`` alone (on the CPU); with ``init="gaussian"`` the denoiser starts at the fitted
        Gaussian's (:func:`gaussian_path`), which is the control variate's reference in either
        case. ``options`` are those of the constructor."""
        gen = torch.Generator().manual_seed(seed)
        lo, hi = float(gamma_min), float(gamma_max)
        extra = {"generator": gen} if schedule == "monotone" else {}
        noise_schedule = make_schedule(schedule, gamma_min=lo, gamma_max=hi, **extra)
        gaussian = gaussian_path(Z)
        denoiser = ResidualDenoiser(Z.shape[1], width=int(width), depth=int(depth),
                                    activation=activation, gamma_range=(lo, hi), generator=gen,
                                    base=gaussian if init == "gaussian" else None)
        module = VariationalDiffusion(noise_schedule, denoiser, reference=gaussian).to(
            device=Z.device, dtype=Z.dtype)
        # Every rank starts from rank 0's weights, before the average copies them.
        dist.broadcast_module(module)
        return cls(module, width=width, **options)

    @property
    def module(self) -> VariationalDiffusion:
        """The evaluated (averaged) model."""
        return self.averaged.average

    def n_parameters(self) -> int:
        """Parameters of the schedule and the denoiser (the average is not counted twice), and
        the mean and covariance of the Gaussian path (``init="gaussian"``)."""
        count = sum(p.numel() for p in self.module.parameters())
        base = self.module.denoiser.base
        if base is not None:
            D = base.mean.shape[0]
            count += D + D * (D + 1) // 2
        return int(count)

    # ------------------------------------------------------------------ training
    def global_parameters(self) -> list:
        return list(self.averaged.live.parameters())

    def objective(self, z, rows, generator):
        t = draw_times(z.shape[0], generator=generator, dtype=z.dtype, device=z.device)
        eps = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
        return self.averaged(z, t, eps, control_variate=True), None

    def after_step(self) -> None:
        self.averaged.update()

    def fitted_attributes(self, scale: float) -> dict:
        """``gamma_0_``, ``gamma_1_`` and ``decoder_variance_`` (in the data's units)."""
        schedule = self.module.schedule
        gamma_0 = float(schedule.gamma_0.detach())
        return {"gamma_0_": gamma_0, "gamma_1_": float(schedule.gamma_1.detach()),
                "decoder_variance_": math.exp(gamma_0) * scale ** 2}

    def eval_width(self, n_features: int) -> int:
        return max(self.width, n_features)

    # ------------------------------------------------------------------ the bound
    def bound(self, Z, n_draws: int, seed: int, n_steps=None):
        """Mean over ``n_draws`` row-keyed (t, eps) of the bound per row, and its standard
        error (``n_steps=T``: the T-step discrete-time bound)."""
        self.eval()
        D = Z.shape[1]

        def chunk(z):
            u = torch.special.ndtr(row_keyed_normal(z, 1, 1, seed)[0, :, 0])
            t = low_discrepancy_times(u, n_draws)
            eps = row_keyed_normal(z, n_draws, D, seed + 1).transpose(0, 1)
            values = self.module(z, t, eps, n_steps=n_steps, control_variate=True)
            return values.mean(1), (values.std(1) / math.sqrt(n_draws) if n_draws > 1
                                    else torch.full_like(values[:, 0], math.nan))

        empty = Z.new_zeros(0)
        with torch.no_grad():
            return chunked(chunk, Z, n_draws * self.eval_width(D), empty=(empty, empty))

    # ------------------------------------------------------------------ the flow
    def _flow(self, Z, fn, per_row: int):
        self.eval()
        return chunked(fn, Z, per_row, empty=Z.new_zeros((0,) + tuple(Z.shape[1:])))

    def _solve(self, flow, z, **kwargs):
        m = self.module
        return flow(z, m.schedule, m.denoiser, method=self.solver,
                    options=self.solver_options, **kwargs)

    def posterior(self, z):
        """The flow's encoding z_1 = Phi(z), with zero variance."""
        z1 = self._flow(z, lambda c: self._solve(flow_encode, c), self.eval_width(z.shape[1]))
        return z1, torch.zeros_like(z1)

    def decode(self, x):
        """The flow's decoding Phi^{-1}(x)."""
        return self._flow(x, lambda c: self._solve(flow_decode, c), self.eval_width(x.shape[1]))

    def decoder_sample(self, x, generator):
        """The flow's decoding (deterministic)."""
        return self.decode(x)

    def log_likelihood(self, z, x):
        raise NotImplementedError(
            "The diffusion model has no likelihood p(z | x) of its flow latent; its evidence is "
            "its bound or the flow's likelihood.")

    def flow_log_prob(self, Z, seed: int, divergence: str, n_probes: int):
        """log p_flow(z) per row and its standard error (zero for the exact divergence; with
        Hutchinson's, over ``n_probes`` Rademacher probes keyed by row and ``seed``)."""
        n, D = Z.shape
        if divergence == "auto":
            divergence = "exact" if D <= EXACT_DIVERGENCE_MAX_DIM else "hutchinson"
        if divergence == "exact":
            value = self._flow(Z, lambda z: self._solve(flow_log_prob, z, divergence="exact"),
                               D * self.eval_width(D))
            return value, torch.zeros_like(value)
        P = int(n_probes)

        def one_chunk(z):
            # Rademacher probes keyed by row: the sign of row-keyed normals. Each probe runs as
            # its own copy of the row, so the spread over probes gives the standard error.
            probes = torch.sign(row_keyed_normal(z, P, D, seed))
            values = self._solve(flow_log_prob, z.repeat(P, 1), divergence="hutchinson",
                                 probes=probes.reshape(1, P * z.shape[0], D))
            values = values.reshape(P, z.shape[0])
            se = (values.std(0) / math.sqrt(P) if P > 1
                  else torch.full_like(values[0], math.nan))
            return torch.stack([values.mean(0), se], dim=1)

        both = self._flow(Z, one_chunk, P * self.eval_width(D))
        return both[:, 0], both[:, 1]

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, n_features: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` draws of the ancestral sampler (``sampling_steps`` reverse steps)."""
        m = self.module
        m.eval()
        return ancestral_sample(m.schedule, m.denoiser, n, n_features, generator=generator,
                                n_steps=self.sampling_steps, decode="sample")
