"""Family 2, f = a neural network: the variational autoencoder.

:mod:`lvm.vae.networks` holds the pure-PyTorch encoder, decoder and likelihoods;
:class:`VAE` is the estimator on the shared base.
"""

from .estimator import VAE, EvidenceEstimate

__all__ = ["VAE", "EvidenceEstimate"]
