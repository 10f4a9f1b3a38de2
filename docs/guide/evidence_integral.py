r"""
.. _guide-evidence:

The evidence integral
=====================

The density a latent-variable model assigns to a point is the likelihood averaged over the prior,

.. math::
    p_\theta(y) = \int p_\theta(y \mid x)\, p(x)\, dx,

the **evidence** (or marginal likelihood) of :math:`y`. lvm reports :math:`\log p_\theta(y)` in
nats per point (``score_samples``; its mean is ``score``); :func:`lvm.compare` adds bits per
dimension, :math:`-\log_2 p_\theta(y) / D`.

By Bayes' rule the same two factors give the posterior over the latent of a point,

.. math::
    p_\theta(x \mid y) = \frac{p_\theta(y \mid x)\, p(x)}{p_\theta(y)},

which is what ``transform`` summarizes (its mean, and with ``return_std=True`` its standard
deviation). The evidence is the normalizing constant of the posterior: computing one is as hard as
computing the other.

**The linear-Gaussian case is closed form.** For :math:`y = W x + \mu + \varepsilon` with
:math:`\varepsilon \sim \mathcal N(0, \Psi)`, :math:`\Psi = \operatorname{diag}(\psi)`, the
evidence is Gaussian,

.. math::
    p(y) = \mathcal N(y;\ \mu,\ C), \qquad C = W W^\top + \Psi,

and with :math:`M = I + W^\top \Psi^{-1} W` (:math:`K \times K`), the posterior mean
:math:`\hat x = M^{-1} W^\top \Psi^{-1} (y - \mu)` and the residual
:math:`e = y - \mu - W \hat x`, the determinant lemma and Woodbury's identity give

.. math::
    \log\det C = \textstyle\sum_d \log \psi_d + \log\det M, \qquad
    (y - \mu)^\top C^{-1} (y - \mu) = e^\top \Psi^{-1} e + \hat x^\top \hat x,

so :math:`\log p(y)` costs :math:`O(NDK + K^3)` rather than :math:`O(D^3)`, and the posterior is
exactly :math:`p(x \mid y) = \mathcal N(\hat x, M^{-1})`
(:func:`lvm.evidence.low_rank_gaussian_log_prob`, :func:`lvm.evidence.linear_gaussian_posterior`).
"""

# %%
# The integral, done by brute force
# ---------------------------------
# With a 1-D latent the integral can be computed on a grid. The quadrature and PPCA's closed form
# agree to rounding error: ``score_samples`` *is* this integral.
import numpy as np
import torch
from matplotlib.figure import Figure

import lvm

data = lvm.datasets.make_ppca(500, 5, 1, noise=0.2, random_state=0)
model = lvm.PPCA(1).fit(data.Y)
W, mu, s2 = model.components_.T, model.mean_, model.noise_variance_

grid = np.linspace(-10, 10, 20001)  # x values; the prior N(0, 1) has no mass beyond them
dx = grid[1] - grid[0]
y = data.Y[:5]
resid = y[:, None, :] - (grid[:, None] * W.T + mu)[None]  # (5, grid, D)
log_lik = -0.5 * (resid**2).sum(-1) / s2 - 0.5 * y.shape[1] * np.log(2 * np.pi * s2)
log_prior = -0.5 * grid**2 - 0.5 * np.log(2 * np.pi)
log_joint = log_lik + log_prior  # log p(y | x) + log p(x) on the grid
peak = log_joint.max(1, keepdims=True)
quadrature = peak[:, 0] + np.log(np.exp(log_joint - peak).sum(1) * dx)
closed_form = model.score_samples(y)
for q, c in zip(quadrature, closed_form):
    print(f"quadrature {q:.10f}   closed form {c:.10f}   difference {abs(q - c):.1e}")

# %%
# Where the integrand lives
# -------------------------
# The integrand :math:`p(y \mid x) p(x)` of one point, normalized, is its posterior. It is far
# narrower than the prior: most of the prior's volume contributes almost nothing to the integral.
# With K latent dimensions the useful fraction of the volume shrinks like the ratio of widths to
# the power K, which is the subject of :ref:`guide-prior-mc`.
post = np.exp(log_joint[0] - quadrature[0])
mean, sd = model.transform(y[:1], return_std=True)
fig = Figure(figsize=(7, 3.2), layout="constrained")
ax = fig.subplots()
ax.plot(grid, np.exp(log_prior), label="prior p(x)")
ax.plot(grid, post, label="posterior p(x | y) (quadrature)")
ax.axvline(mean[0, 0], color="k", lw=0.8, ls="--", label="E[x | y] from transform")
ax.set(xlim=(-4, 4), xlabel="x", ylabel="density")
ax.legend()
print(f"posterior sd {sd[0, 0]:.4f} against the prior's 1: the posterior fills "
      f"{100 * sd[0, 0]:.1f}% of the prior's width")
