"""lvm: probabilistic latent-variable models with one scikit-learn API.

A latent x ~ N(0, I) explains data y through a decoder, y | x ~ N(f(x), sigma^2 I):

- linear f: :class:`PPCA`, :class:`FactorAnalysis` (exact evidence);
- neural f: :class:`VAE` (ELBO / importance-weighted estimates);
- Gaussian-process f: :class:`BayesianGPLVM` (variational lower bound).

Every estimator reports ``score_samples`` in nats per data point; ``evidence_kind`` says whether it
is exact, a lower bound or an estimate.
"""

from . import datasets, evidence
from ._training import NumericalError
from .compare import compare
from .gplvm import BayesianGPLVM
from .linear import PPCA, FactorAnalysis
from .vae import VAE

__version__ = "0.1.0"

__all__ = [
    "PPCA",
    "FactorAnalysis",
    "VAE",
    "BayesianGPLVM",
    "compare",
    "NumericalError",
    "datasets",
    "evidence",
    "plot",
    "__version__",
]


def __getattr__(name):
    # lvm.plot imports matplotlib; load it only when it is used.
    if name == "plot":
        import importlib

        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'lvm' has no attribute {name!r}")
