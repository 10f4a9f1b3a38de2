"""Family 2, f = a neural network: the variational autoencoder.

:mod:`lvm.vae.networks` holds the pure-PyTorch encoder and decoder, :mod:`lvm.vae.model` the
family (its objective, posterior and nested start, a :class:`lvm._family.Family`), and
:class:`VAE` is the estimator on the shared family base (:mod:`lvm._family`).
"""

from ..evidence import EvidenceEstimate
from .estimator import VAE

__all__ = ["VAE", "EvidenceEstimate"]
