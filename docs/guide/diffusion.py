r"""
.. _guide-diffusion:

Diffusion decoders (to come)
============================

*This chapter is a stub: it will be written when the family lands as* ``lvm.DiffusionModel``
*(issue 13), with its evidence kind and its* :func:`lvm.compare` *numbers beside the other
families'.*

A diffusion model is a latent-variable model too, with a different trade. Its latents
:math:`z_t`, :math:`t \in [0, 1]`, have the data's own dimension; the encoder is fixed rather than
learned, :math:`q(z_t \mid y) = \mathcal N(\alpha_t y, \sigma_t^2 I)` with a noise schedule
:math:`\alpha_t^2 = \operatorname{sigmoid}(-\gamma_t)`, :math:`\sigma_t^2 =
\operatorname{sigmoid}(\gamma_t)`; the prior is :math:`\mathcal N(0, I)` on :math:`z_1`; the
decoder is a learned reverse process with a Gaussian :math:`p(y \mid z_0)`. Its variational bound
on :math:`\log p(y)` becomes tight in continuous time (Kingma, Salimans, Poole & Ho, 2021:
variational diffusion models). It buys evidence, not a low-dimensional map.

The mathematics (schedules, the per-point bound, the probability-flow likelihood, ancestral
sampling) is already in the package as ``lvm.diffusion``, without an estimator.
"""
