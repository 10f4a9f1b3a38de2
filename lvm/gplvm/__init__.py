"""Family 3, f ~ GP: the Bayesian GPLVM with variational inducing points.

Modules, one concept each: :mod:`.kernels` (GPyTorch ARD kernels by name), :mod:`.psi` (closed-form
psi-statistics), :mod:`.collapsed` (the Titsias-Lawrence bound), :mod:`.svi` (the uncollapsed model
with GPyTorch's variational strategy), :mod:`.posterior` (the frozen decoder), :mod:`._init` (the
PCA start), :mod:`.model` (the family: its bounds, q(x*) and fitted state, on :mod:`lvm._family`),
:mod:`.estimator` (:class:`BayesianGPLVM`). q(x) is :mod:`lvm.latents`'.
"""

from .estimator import BayesianGPLVM

__all__ = ["BayesianGPLVM"]
