r"""
.. _guide-iwae:

Importance-weighted bounds
==========================

The ELBO's gap is :math:`\mathrm{KL}(q \,\|\, p(x \mid y))`; a better estimate of the evidence keeps
:math:`q` as a *proposal* and corrects for its error with importance weights. With S draws
:math:`x_s \sim q(x \mid y)`,

.. math::
    \log \hat p_S(y) = \log \frac1S \sum_{s=1}^S w_s, \qquad
    w_s = \frac{p(y \mid x_s)\, p(x_s)}{q(x_s \mid y)}.

Each :math:`w_s` is an unbiased estimate of :math:`p(y)`, so by Jensen's inequality
:math:`\mathbb E[\log \hat p_S(y)] \le \log p(y)`: a stochastic lower bound. Its expectation
equals the ELBO for :math:`S = 1`, does not decrease as S grows, and reaches :math:`\log p(y)` as
:math:`S \to \infty` (Burda, Grosse & Salakhutdinov, 2016: the IWAE bound). Kish's effective sample
size of the weights says how many draws carry it. The prior proposal of :ref:`guide-prior-mc` is the
special case :math:`q = p(x)`.

This is how lvm reports the evidence of the families without a closed form: :class:`lvm.VAE` uses
its encoder as the proposal, :class:`lvm.BayesianGPLVM` a Gaussian :math:`q(x^\ast)` fitted to each
new point with the model frozen; both with ``n_importance_samples`` draws
(:func:`lvm.evidence.estimate_log_evidence`, method ``"iwae"``). The draws are keyed by each row's
content and a seed fixed at fit (:func:`lvm.evidence.row_keyed_normal`), so ``score_samples`` is
deterministic, a row's value does not depend on the other rows, and distinct rows get independent
draws.

**Which proposal.** A proposal narrower than the posterior puts almost no draws in its tails and
the weights there are huge (a heavy-tailed weight distribution, low ESS); a wider one wastes draws
but keeps the weights bounded. Encoders trained on the ELBO, which penalizes mass where the
posterior has none, tend to be narrow, which is one reason to report the importance-weighted
estimate rather than the ELBO.
"""

# %%
# Climbing toward the exact evidence
# ----------------------------------
# PPCA with a 4-D latent, where the exact evidence is known, and three Gaussian proposals: the
# posterior's own variances with its mean moved by one posterior standard deviation, and the
# posterior with half and with twice its variances. The estimate for S = 1 (its mean is the ELBO)
# and larger S, averaged over 500 points. The estimate is random: once the gap is smaller than its
# Monte Carlo error, a mean over 500 points can land on either side of the exact value.
import numpy as np
import torch
from matplotlib.figure import Figure

import lvm
from lvm.evidence import estimate_log_evidence, linear_gaussian_posterior

data = lvm.datasets.make_ppca(2000, 20, 4, noise=0.2, random_state=0)
model = lvm.PPCA(4).fit(data.Y)
W = torch.as_tensor(model.components_.T)
mu = torch.as_tensor(model.mean_)
s2 = float(model.noise_variance_)
Y = torch.as_tensor(data.Y[:500])
exact = model.score_samples(data.Y[:500]).mean()


def log_likelihood(y, x):
    r = y - (x @ W.T + mu)
    return -0.5 * ((r * r).sum(-1) / s2 + y.shape[-1] * np.log(2 * np.pi * s2))


def proposal(shift, scale):
    def posterior(y):
        mean, sd = linear_gaussian_posterior(y, mu, W, torch.full_like(mu, s2))
        return mean + shift * sd, (scale * sd**2).expand_as(mean)
    return posterior


proposals = {"mean moved by 1 sd": proposal(1.0, 1.0), "variances x 0.5": proposal(0.0, 0.5),
             "variances x 2": proposal(0.0, 2.0)}
S_values = [1, 4, 16, 64, 256, 1024]
print(f"exact log p(y), mean over 500 points: {exact:.4f}")
results = {}
for name, q in proposals.items():
    elbo = estimate_log_evidence("elbo", Y, q, log_likelihood, n_samples=256, n_components=4,
                                 seed=0).log_evidence.mean().item()
    est = [estimate_log_evidence("iwae", Y, q, log_likelihood, n_samples=S, n_components=4, seed=0,
                                 with_ess=True) for S in S_values]
    results[name] = (elbo, [e.log_evidence.mean().item() for e in est],
                     [e.effective_sample_size.median().item() / S for e, S in zip(est, S_values)])
    print(f"\n{name}: ELBO {elbo:.4f} (gap {exact - elbo:.4f})")
    for S, value, frac in zip(S_values, results[name][1], results[name][2]):
        print(f"  S = {S:5d}: {value:.4f}  gap {exact - value:.4f}  median ESS / S {frac:.3f}")

fig = Figure(figsize=(9, 3.4), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
for (name, (elbo, values, fracs)), color in zip(results.items(), ("C0", "C1", "C2")):
    ax1.plot(S_values, exact - np.array(values), "o-", color=color, label=name)
    ax2.plot(S_values, fracs, "o-", color=color, label=name)
ax1.axhline(0, color="k", lw=0.8)
ax1.set(xscale="log", xlabel="importance samples S", ylabel="exact - estimate (nats)",
        title="Gap of the importance-weighted estimate")
ax2.set(xscale="log", xlabel="importance samples S", ylabel="median ESS / S",
        title="Fraction of draws that count")
ax1.legend(fontsize="small")
