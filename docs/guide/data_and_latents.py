r"""
.. _guide-model:

Data, latent variables and decoders
===================================

**Data are drawn from a distribution.** We observe N points :math:`y_1, \dots, y_N \in \mathbb
R^D`, taken to be independent draws from an unknown distribution :math:`p^\star(y)`. A model is a
family of densities :math:`p_\theta(y)`; a good model puts high density where the data fall. How
far :math:`p_\theta` is from :math:`p^\star` is measured by

.. math::
    \mathrm{KL}(p^\star \,\|\, p_\theta) = \mathbb E_{p^\star}[\log p^\star(y)]
        - \mathbb E_{p^\star}[\log p_\theta(y)],

whose first term does not depend on the model. Comparing models is therefore comparing
:math:`\mathbb E_{p^\star}[\log p_\theta(y)]`, which the mean of :math:`\log p_\theta(y_n)` over
**held-out** points estimates without bias. This is the number every lvm estimator's ``score``
reports, in nats per point, and what :func:`lvm.compare` tabulates.

**A latent variable and a decoder.** lvm's models explain each point by an unobserved
:math:`x \in \mathbb R^K` with :math:`K` usually much smaller than :math:`D`:

.. math::
    x \sim \mathcal N(0, I_K), \qquad y \mid x \sim p(y \mid f(x)),

with :math:`p(y \mid f)` Gaussian, :math:`\mathcal N(f, \sigma^2 I)` (or one variance per
feature), or Bernoulli with logits :math:`f` (:mod:`lvm.likelihoods`). The families differ only in
the decoder :math:`f`:

.. list-table::
   :header-rows: 1

   * - decoder
     - estimator
     - chapter
   * - linear, :math:`f(x) = W x + \mu`
     - :class:`lvm.PPCA`, :class:`lvm.FactorAnalysis`
     - :ref:`guide-linear`
   * - a neural network
     - :class:`lvm.VAE`
     - :ref:`guide-vae`
   * - a Gaussian process
     - :class:`lvm.BayesianGPLVM`
     - :ref:`guide-gplvm`
   * - a learned reverse diffusion
     - :class:`lvm.DiffusionModel`
     - :ref:`guide-diffusion`

The model is generative: to draw a new point, draw :math:`x` from the prior and :math:`y` from
:math:`p(y \mid f(x))`. That is what every estimator's ``sample`` does, and it is the easiest way
to see what a fitted model believes.
"""

# %%
# A model that knows the truth
# ----------------------------
# We draw data from PPCA itself, with a 2-D latent in 10 dimensions, fit PPCA, and draw new points
# from the fitted model. The held-out mean log-density of the fitted model comes close to that of
# the true one, which no model can beat on average.
import numpy as np
from matplotlib.figure import Figure

import lvm

data = lvm.datasets.make_ppca(3000, 10, 2, noise=0.1, random_state=0)
Y_train, Y_test = data.Y[:2000], data.Y[2000:]
model = lvm.PPCA(2).fit(Y_train)

# The true model's density, p(y) = N(y; mean, W W^T + noise I), as a PPCA with its parameters.
truth = lvm.evidence.low_rank_gaussian_log_prob
import torch  # noqa: E402

true_log_p = truth(torch.as_tensor(Y_test), torch.as_tensor(data.mean), torch.as_tensor(data.W),
                   torch.full((10,), data.noise, dtype=torch.float64))
print(f"held-out log p(y) per point: fitted PPCA {model.score(Y_test):.4f}, "
      f"true model {true_log_p.mean().item():.4f} nats")

# %%
# What the model has learned is a distribution: its draws look like the data. Both are shown in
# the data's first two principal directions.
new = model.sample(1000, random_state=1)
centred = Y_train - Y_train.mean(0)
_, _, Vt = np.linalg.svd(centred, full_matrices=False)
fig = Figure(figsize=(8, 3.6), layout="constrained")
axes = fig.subplots(1, 2, sharex=True, sharey=True)
for ax, Z, title in ((axes[0], Y_train[:1000], "data"),
                      (axes[1], new, "draws from the fitted PPCA")):
    P = (Z - Y_train.mean(0)) @ Vt[:2].T
    ax.scatter(P[:, 0], P[:, 1], s=3, alpha=0.5)
    ax.set(title=title, xlabel="1st principal direction", ylabel="2nd principal direction")

# %%
# The next chapter, :ref:`guide-evidence`, writes down the density these numbers are the logarithm
# of.
