"""Family 2, f = a neural network: the variational autoencoder.

:mod:`lvm.vae.networks` holds the pure-PyTorch encoder and decoder; :class:`VAE` is the estimator
on the shared gradient layer (:mod:`lvm._gradient`).
"""

from ..evidence import EvidenceEstimate
from .estimator import VAE

__all__ = ["VAE", "EvidenceEstimate"]
