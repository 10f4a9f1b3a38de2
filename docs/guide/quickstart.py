"""
.. _quickstart:

Quick start
===========

Five minutes with lvm: fit a model, read its evidence, embed, reconstruct, sample, and compare
models on held-out data. Every output on this page was computed when the site was built.
"""

# %%
# Data with a known answer
# ------------------------
# :func:`lvm.datasets.make_ppca` draws data from the PPCA model itself, y = W x + mean + noise with
# a 2-D latent x, so we know what a good fit should find.
import lvm

data = lvm.datasets.make_ppca(2000, 10, 2, noise=0.1, random_state=0)
print(data.description)
print("Y:", data.Y.shape)

# %%
# Fit, and read the evidence
# --------------------------
# Every estimator is a scikit-learn estimator. ``score`` is the mean log-evidence
# log p(y) per point, in nats; ``evidence_kind`` says whether that number is exact (PPCA: yes), a
# lower bound or an estimate.
model = lvm.PPCA(n_components=2).fit(data.Y)
print(f"log p(y) per point: {model.score(data.Y):.3f} nats ({model.evidence_kind})")
print(f"noise variance: fitted {model.noise_variance_:.4f}, true {data.noise}")

# %%
# Latents, reconstructions, new data
# ----------------------------------
# ``transform`` gives the posterior mean E[x | y] (and, with ``return_std=True``, its standard
# deviation); ``inverse_transform`` the decoder mean f(x); ``sample`` draws new y from the model.
X, X_std = model.transform(data.Y, return_std=True)
Y_hat = model.inverse_transform(X)
print("posterior mean of the first point:", X[0].round(3), "sd:", X_std[0].round(3))
print("mean squared reconstruction error:", float(((data.Y - Y_hat) ** 2).mean().round(4)))
print("five new points:", model.sample(5, random_state=0).shape)

# %%
# Compare models on held-out data
# -------------------------------
# :func:`lvm.compare` fits every model on the same training split and reports held-out
# log p(y) per point with its standard error. On data drawn from PPCA, factor analysis (one noise
# variance per feature) has nothing more to explain, and the two agree within the standard error.
table = lvm.compare([lvm.PPCA(2), lvm.FactorAnalysis(2)], data.Y, test_size=0.2)
print(table)

# %%
# Look at it
# ----------
# :mod:`lvm.plot` returns matplotlib figures: here the posterior means with ±1 sd ellipses of
# q(x | y), coloured by the sign of the true first latent coordinate.
fig = lvm.plot.latent_scatter(model, data.Y, labels=data.X[:, 0] > 0)

# %%
# Where next
# ----------
# The same code runs with ``lvm.VAE`` (a neural decoder) and ``lvm.BayesianGPLVM`` (a
# Gaussian-process decoder), whose evidence is an estimate: the :doc:`/user_guide` explains why,
# and the :doc:`/auto_examples/index` puts the families side by side on real data.
