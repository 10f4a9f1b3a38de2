r"""
.. _guide-vae:

Neural decoders: the variational autoencoder
============================================

**Evidence: an importance-weighted estimate** (a stochastic lower bound); the ELBO is available
as ``elbo()``.

:class:`lvm.VAE` (Kingma & Welling, 2014) makes the decoder a neural network,

.. math::
    x \sim \mathcal N(0, I_K), \qquad y \mid x \sim \mathcal N(f_\theta(x), \sigma^2 I)
    \quad\text{(or Bernoulli with logits } f_\theta(x)\text{)},

and pairs it with an encoder giving :math:`q_\phi(x \mid y) = \mathcal N(\mu_\phi(y),
\operatorname{diag} \sigma^2_\phi(y))`. Training maximizes the ELBO (:ref:`guide-elbo`) with Adam on
minibatches and reparameterized draws (:ref:`guide-reparam`),

.. math::
    \mathrm{ELBO}(y) = \mathbb E_q[\log p(y \mid x)] - \mathrm{KL}(q(x \mid y) \,\|\, p(x))
    \le \log p(y),

with the KL in closed form; by default 10% of the rows are held out for early stopping on the
validation ELBO. ``score_samples`` is the importance-weighted estimate (:ref:`guide-iwae`) with the
encoder as proposal and S = ``n_importance_samples`` draws,

.. math::
    \log \hat p(y) = \log \frac1S \sum_{s=1}^S \frac{p(y \mid x_s)\, p(x_s)}{q(x_s \mid y)},
    \qquad x_s \sim q(x \mid y).

``hidden_sizes=()`` gives an affine encoder and decoder, a linear VAE whose optimum is PPCA's
maximum-likelihood model.
"""

# %%
# On the digits, against PPCA
# ---------------------------
# The same split as in :ref:`guide-linear` (raw intensities of the 61 pixels that vary), a VAE with
# two hidden layers of 128 units and K = 2 and 10. These fits use the estimator's defaults apart
# from the network's width; the numbers are computed when the site is built.
import numpy as np

import lvm

digits = lvm.datasets.load_digits()
Y = digits.Y[:, digits.Y.var(0) > 0]
models = {}
for k in (2, 10):
    models[f"PPCA-{k}"] = lvm.PPCA(k)
    models[f"VAE-{k}"] = lvm.VAE(k, hidden_sizes=(128, 128), random_state=0)
table = lvm.compare(models, Y, test_size=0.2, random_state=0)
print(table)
fig = lvm.plot.evidence_comparison(table)

# %%
# Bound and estimate
# ------------------
# On the held-out digits: the ELBO, and the importance-weighted estimate as the number of draws
# grows. The estimate rises above the ELBO, toward log p(y), which no finite S reaches.
from sklearn.model_selection import train_test_split  # noqa: E402

_, Y_test = train_test_split(Y, test_size=0.2, random_state=0)
vae = next(r["estimator"] for r in table if r["model"] == "VAE-10")
print(f"ELBO per point: {vae.elbo(Y_test, n_samples=64):.3f} nats")
for S in (1, 10, 100, 1000):
    est = vae.log_evidence(Y_test, method="iwae", n_samples=S)
    print(f"importance-weighted, S = {S:4d}: {np.mean(est.log_evidence):.3f} nats, "
          f"median ESS {np.median(est.effective_sample_size):.1f}")

# %%
# The training curve (training and validation ELBO per point, in nats of the data as passed) and
# the 2-D model's embedding.
fig = lvm.plot.training_curve(vae)
vae2 = next(r["estimator"] for r in table if r["model"] == "VAE-2")
fig = lvm.plot.latent_scatter(vae2, Y[:500], digits.labels[:500], title="VAE, K = 2: E[x | y]")
