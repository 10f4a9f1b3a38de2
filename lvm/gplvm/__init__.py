"""Family 3, f ~ GP: the Bayesian GPLVM with variational inducing points.

Modules, one concept each: :mod:`.kernels` (GPyTorch ARD kernels by name), :mod:`.psi` (closed-form
psi-statistics), :mod:`.latent` (q(x)), :mod:`.collapsed` (the Titsias-Lawrence bound), :mod:`.svi`
(the uncollapsed model with GPyTorch's variational strategy), :mod:`.posterior` (the frozen
decoder), :mod:`.estimator` (:class:`BayesianGPLVM`).
"""

from .estimator import BayesianGPLVM, InferenceModeError

__all__ = ["BayesianGPLVM", "InferenceModeError"]
