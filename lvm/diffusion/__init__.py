"""The mathematics of a variational diffusion model (Kingma, Salimans, Poole & Ho, 2021), in torch.

A diffusion model is a latent-variable model too: latents z_t, t in [0, 1], of the data's own
dimension, a fixed encoder q(z_t | y) = N(alpha_t y, sigma_t^2 I), the prior N(0, I) on z_1, a
learned reverse process and a Gaussian decoder p(y | z_0). Its variational bound on log p(y)
becomes tight in continuous time.

- :mod:`.schedule`: the noise schedule gamma(t) (``SCHEDULES``: "linear", "monotone");
- :mod:`.denoiser`: the epsilon-prediction network eps_hat(z, gamma);
- :mod:`.bound`: the per-row bound (continuous or T-step) and its low-discrepancy times;
- :mod:`.model`: schedule and denoiser in one module whose forward pass is that bound;
- :mod:`.ode`, :mod:`.solvers`: the probability-flow likelihood and encoding (``SOLVERS``);
- :mod:`.sampler`: ancestral sampling;
- :mod:`.gaussian`: closed forms for Gaussian data, the references the tests check against;
- :mod:`.family`: all of it as one :class:`lvm._family.Family` (training bound, moving average,
  flow, sampler), built once per fit.

The estimator on top, :class:`DiffusionModel` (:mod:`.estimator`), is that family on lvm's shared
family base (:mod:`lvm._family`); everything below it takes its randomness from a
:class:`torch.Generator` or as arguments.
"""

from .bound import VLBTerms, draw_times, low_discrepancy_times, vlb, vlb_terms
from .denoiser import ResidualDenoiser
from .estimator import DiffusionEvidence, DiffusionModel
from .gaussian import (
    OptimalGaussianDenoiser,
    gaussian_denoising_mse,
    gaussian_flow_encode,
    gaussian_flow_log_prob,
    gaussian_optimal_eps,
    gaussian_score,
    gaussian_vlb_terms,
)
from .model import VariationalDiffusion
from .ode import flow_decode, flow_encode, flow_log_prob, probability_flow_drift
from .sampler import ancestral_sample
from .schedule import SCHEDULES, LinearSchedule, MonotoneSchedule, NoiseSchedule, alpha_sigma, make_schedule
from .solvers import SOLVERS, odeint

__all__ = [
    "DiffusionModel",
    "DiffusionEvidence",
    "SCHEDULES",
    "SOLVERS",
    "NoiseSchedule",
    "LinearSchedule",
    "MonotoneSchedule",
    "make_schedule",
    "alpha_sigma",
    "ResidualDenoiser",
    "VariationalDiffusion",
    "VLBTerms",
    "vlb_terms",
    "vlb",
    "low_discrepancy_times",
    "draw_times",
    "flow_log_prob",
    "flow_encode",
    "flow_decode",
    "probability_flow_drift",
    "odeint",
    "ancestral_sample",
    "OptimalGaussianDenoiser",
    "gaussian_optimal_eps",
    "gaussian_score",
    "gaussian_denoising_mse",
    "gaussian_vlb_terms",
    "gaussian_flow_encode",
    "gaussian_flow_log_prob",
]
