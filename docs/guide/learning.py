r"""
.. _guide-learning:

Maximum likelihood, MAP and type-II maximum likelihood
======================================================

A latent-variable model has two kinds of unknowns: the **parameters** :math:`\theta` shared by all
points (:math:`W`, :math:`\mu` and :math:`\sigma^2`; a network's weights; a kernel's
hyper-parameters) and one **latent** :math:`x_n` per point. lvm integrates the latents out and
optimizes the parameters:

.. math::
    \hat\theta = \arg\max_\theta \sum_{n=1}^N \log p_\theta(y_n)
               = \arg\max_\theta \sum_{n=1}^N \log \int p_\theta(y_n \mid x)\, p(x)\, dx.

*Maximum likelihood* in :math:`\theta`, with the latents treated the Bayesian way: given their
prior, each :math:`x_n` is averaged over, never fitted. Seen from the latents, this is
**type-II maximum likelihood** (empirical Bayes): the parameters of a prior-and-likelihood pair are
chosen to maximize the marginal likelihood of the data. Integrating rather than fitting the
:math:`x_n` is what makes :math:`p_\theta(y)` a density, comparable on held-out points, and
what charges a model for the latent dimensions it does not need.

**MAP** adds a prior over the parameters, :math:`\arg\max_\theta \sum_n \log p_\theta(y_n) +
\log p(\theta)`; weight decay on a network is MAP under a Gaussian prior. lvm's estimators put
no prior on their parameters: PPCA, factor analysis and the VAE (plain Adam, no weight decay) are
maximum likelihood in :math:`\theta`.

**One level up.** The Bayesian GPLVM puts a Gaussian-process prior on the decoder :math:`f` itself
and integrates it out too (variationally, :ref:`guide-gplvm`); what is optimized is the kernel's
hyper-parameters and the noise, type-II maximum likelihood for :math:`f`. With a linear kernel,
:math:`f(x) = W x` with a Gaussian prior on :math:`W` integrated out: Bayesian PCA, whose ARD
variances switch off the latent dimensions the data do not support.
"""

# %%
# Maximum likelihood keeps improving on the training data
# -------------------------------------------------------
# PPCA on data with a true 4-D latent: the training log-likelihood at the maximum-likelihood
# parameters can only rise with K, while the held-out evidence stops improving at the truth.
# Minka's approximation of p(Y | K), which integrates the parameters as well, picks K from the
# training data alone (``PPCA(n_components="auto")``).
import warnings

import numpy as np
from matplotlib.figure import Figure

import lvm

data = lvm.datasets.make_ppca(3000, 12, 4, noise=0.5, random_state=0)
Y_train, Y_test = data.Y[:2000], data.Y[2000:]
ks = np.arange(1, 13)
fits = [lvm.PPCA(int(k)).fit(Y_train) for k in ks]
train = np.array([m.score(Y_train) for m in fits])
held = np.array([m.score(Y_test) for m in fits])
print(" K   train     held-out")
for k, a, b in zip(ks, train, held):
    print(f"{k:2d}  {a:9.4f}  {b:9.4f}")
print(f"held-out evidence is highest at K = {ks[np.argmax(held)]}; Minka's choice: "
      f"K = {lvm.PPCA('auto').fit(Y_train).n_components_}; the truth: 4")

fig = Figure(figsize=(6, 3.4), layout="constrained")
ax = fig.subplots()
ax.plot(ks, train, "o-", label="training data")
ax.plot(ks, held, "s-", label="held-out data")
ax.axvline(4, color="0.6", ls="--", label="true K")
ax.set(xlabel="latent dimension K", ylabel="log p(y) per point (nats)",
       title="PPCA at its maximum-likelihood parameters")
ax.legend()

# %%
# Type-II maximum likelihood switches dimensions off
# --------------------------------------------------
# The Bayesian GPLVM with a linear kernel and 8 latent dimensions on 500 of those points: the
# decoder is integrated out and its ARD variances are fitted by maximizing the bound on the
# evidence. Those of the dimensions the data do not need go to zero.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a ConvergenceWarning would only say max_iter was reached
    gp = lvm.BayesianGPLVM(8, kernel="linear", n_inducing=30, random_state=0).fit(data.Y[:500])
print("relevance of each latent dimension:", np.round(gp.relevance_, 3))
print(f"effective dimensions: {gp.effective_dims_} (the truth: 4)")
fig = lvm.plot.ard_relevance(gp)
