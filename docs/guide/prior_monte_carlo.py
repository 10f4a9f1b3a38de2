r"""
.. _guide-prior-mc:

Why the evidence is intractable, and why sampling the prior fails
=================================================================

For a linear decoder the evidence integral is a Gaussian (:ref:`guide-evidence`). For a neural
network or a draw from a Gaussian process it has no closed form, and quadrature is hopeless beyond a
few latent dimensions: G points per axis cost :math:`G^K` evaluations of the likelihood.

**Monte Carlo with the prior.** The evidence is an expectation under the prior, so

.. math::
    \hat p(y) = \frac1S \sum_{s=1}^S p(y \mid x_s), \qquad x_s \sim p(x) = \mathcal N(0, I_K),

is unbiased for :math:`p(y)` and needs nothing but the decoder. It fails in practice. Its
weights :math:`w_s = p(y \mid x_s)` are large only for the draws that land where the posterior
:math:`p(x \mid y)` has its mass, and the prior puts exponentially little mass there: if the
posterior has standard deviation :math:`\sigma_k < 1` along each of K axes, the fraction of prior
draws that fall inside it scales like :math:`\prod_k \sigma_k`. Kish's **effective sample size**

.. math::
    \mathrm{ESS} = \frac{\big(\sum_s w_s\big)^2}{\sum_s w_s^2} \in [1, S]

counts how many of the S draws carry the estimate (:func:`lvm.evidence.effective_sample_size`).
When it is near 1, :math:`\log \hat p(y)` is set by the single best draw (its log-likelihood
minus :math:`\log S`), far below :math:`\log p(y)` (by Jensen's inequality its expectation is
below :math:`\log p(y)` for any S). The cure is to draw from a distribution close to the
posterior, and to correct by importance weights: :ref:`guide-elbo` and :ref:`guide-iwae`.
"""

# %%
# Exponential in the latent dimension
# -----------------------------------
# PPCA data with K = 1, 2, 4, 8 and 16 latent dimensions: the exact evidence is known, and so is
# the exact posterior. We estimate log p(y) of 200 points with S = 5000 draws, once from the
# prior and once from the posterior, through :func:`lvm.evidence.estimate_log_evidence` (the
# estimator every lvm family uses).
import numpy as np
import torch
from matplotlib.figure import Figure

import lvm
from lvm.evidence import estimate_log_evidence, linear_gaussian_posterior

S, n = 5000, 200
rows = []
for K in (1, 2, 4, 8, 16):
    data = lvm.datasets.make_ppca(2000, 32, K, noise=0.2, random_state=0)
    model = lvm.PPCA(K).fit(data.Y)
    W = torch.as_tensor(model.components_.T)
    mu = torch.as_tensor(model.mean_)
    s2 = float(model.noise_variance_)
    Y = torch.as_tensor(data.Y[:n])

    def posterior(y):  # the exact p(x | y) = N(mean, diag var) (its covariance is diagonal here)
        mean, sd = linear_gaussian_posterior(y, mu, W, torch.full_like(mu, s2))
        return mean, (sd**2).expand_as(mean)

    def log_likelihood(y, x):  # log N(y; W x + mu, s2 I) for draws x of shape (S, n, K)
        r = y - (x @ W.T + mu)
        return -0.5 * ((r * r).sum(-1) / s2 + y.shape[-1] * np.log(2 * np.pi * s2))

    exact = model.score_samples(data.Y[:n]).mean()
    for proposal, method in (("prior", "prior"), ("posterior", "iwae")):
        est = estimate_log_evidence(method, Y, posterior, log_likelihood, n_samples=S,
                                    n_components=K, seed=0, with_ess=True)
        rows.append((K, proposal, exact, est.log_evidence.mean().item(),
                     est.effective_sample_size.median().item()))

print(f" K  proposal   exact log p(y)  estimate   median ESS of {S}")
for K, proposal, exact, value, ess in rows:
    print(f"{K:2d}  {proposal:9s}  {exact:14.3f}  {value:8.3f}  {ess:10.1f}")

# %%
# With the posterior as proposal every weight is the same, :math:`p(y, x) / p(x \mid y) = p(y)`:
# the estimate is exact for any S and the ESS is S. With the prior, the ESS falls by orders of
# magnitude with every doubling of K and the estimate falls ever further below the exact value.
fig = Figure(figsize=(9, 3.4), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
for proposal, color in (("prior", "C1"), ("posterior", "C0")):
    r = [row for row in rows if row[1] == proposal]
    ks = [row[0] for row in r]
    ax1.plot(ks, [row[4] for row in r], "o-", color=color, label=f"{proposal} proposal")
    ax2.plot(ks, [row[2] - row[3] for row in r], "o-", color=color, label=f"{proposal} proposal")
ax1.set(xscale="log", yscale="log", xlabel="latent dimension K", ylabel=f"median ESS of {S} draws",
        title="Effective sample size")
ax2.set(xscale="log", xlabel="latent dimension K", ylabel="exact - estimate (nats)",
        title="Shortfall of the log-evidence estimate")
for ax in (ax1, ax2):
    ax.set_xticks([1, 2, 4, 8, 16], labels=["1", "2", "4", "8", "16"])
    ax.legend()

# %%
# The same collapse with a trained decoder
# ----------------------------------------
# For a VAE the posterior is unknown, but its encoder's :math:`q(x \mid y)` is a proposal close to
# it. :ref:`sphx_glr_auto_examples_essay_evidence.py` trains VAEs on the digits and draws 2000
# samples per image from the prior and from the encoder; its right panel is the effective sample
# size of each (quick settings, computed when this site was built):
#
# .. figure:: /auto_examples/images/sphx_glr_essay_evidence_001.png
#    :alt: ELBO and IWAE against the exact evidence; effective sample sizes of the prior and of
#          the encoder proposal on the digits
#    :target: ../auto_examples/essay_evidence.html
