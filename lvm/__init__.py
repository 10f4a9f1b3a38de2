"""lvm: probabilistic latent-variable models with one scikit-learn API.

A latent x ~ N(0, I) explains data y through a decoder, y | x ~ N(f(x), sigma^2 I):

- linear f: :class:`PPCA`, :class:`FactorAnalysis` (exact evidence);
- neural f: :class:`VAE` (ELBO / importance-weighted estimates);
- Gaussian-process f: :class:`BayesianGPLVM` (variational lower bound);
- a diffusion, latents of the data's own dimension: :class:`DiffusionModel` (variational bound).

Every estimator reports ``score_samples`` in nats per data point; ``evidence_kind`` says whether it
is exact, a lower bound or an estimate.

The public names are imported on first use (PEP 562), so ``import lvm`` and the ``lvm`` command's
``--help`` do not pay for torch, GPyTorch or matplotlib.
"""

import importlib

__version__ = "0.1.0"

#: Public name -> the module that defines it (relative to lvm); a new public name is one line here.
#: A name equal to its module's last component (``datasets``, ``plot``) is that module itself.
_LAZY = {
    "PPCA": ".linear",
    "FactorAnalysis": ".linear",
    "VAE": ".vae",
    "BayesianGPLVM": ".gplvm",
    "DiffusionModel": ".diffusion",
    "LatentImputer": ".impute",
    "compare": "._compare",
    "NumericalError": "._training",
    "Family": "._family",
    "FamilyEstimator": "._family",
    "TrainingPlan": "._family",
    "datasets": ".datasets",
    "evidence": ".evidence",
    "likelihoods": ".likelihoods",
    "latents": ".latents",
    "metrics": ".metrics",
    "plot": ".plot",
    "settings": ".settings",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name):
    path = _LAZY.get(name)
    if path is None:
        raise AttributeError(f"module 'lvm' has no attribute {name!r}")
    module = importlib.import_module(path, __name__)
    value = getattr(module, name, module) if path == "." + name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
