r"""
.. _guide-reparam:

The reparameterization trick
============================

Training on the ELBO needs the gradient of :math:`\mathbb E_{q_\phi}[g(x)]`, with
:math:`g(x) = \log p_\theta(y \mid x)`, with respect to the parameters :math:`\phi = (m, v)` of
:math:`q`, which is the distribution the expectation is taken under. Two unbiased estimators from
draws :math:`x_s \sim q_\phi`:

* the **score-function** (REINFORCE) estimator,
  :math:`\nabla_\phi \mathbb E_{q_\phi}[g] = \mathbb E_{q_\phi}\big[g(x)\, \nabla_\phi \log
  q_\phi(x)\big]`, which uses only values of :math:`g`;
* the **pathwise** (reparameterization) estimator: write the draw as a differentiable function of
  :math:`\phi` and of noise that does not depend on :math:`\phi`,

  .. math::
      x = m + \sqrt v \odot \varepsilon, \quad \varepsilon \sim \mathcal N(0, I)
      \quad\Longrightarrow\quad
      \nabla_\phi \mathbb E_{q_\phi}[g(x)] = \mathbb E_{\varepsilon}\big[\nabla_\phi\,
      g(m + \sqrt v \odot \varepsilon)\big],

  which differentiates through :math:`g` by automatic differentiation.

The pathwise estimator uses the slope of :math:`g`, not only its values, and its variance is
typically orders of magnitude smaller: one draw per point per step is enough to train a VAE
(Kingma & Welling, 2014). :class:`lvm.VAE` does exactly this: its encoder maps each :math:`y` to
:math:`(m, \log v)` (*amortized* inference: one network for every point's :math:`q`), a draw
:math:`x = m + \sqrt v \odot \varepsilon` goes through the decoder, and Adam follows the gradient
of the ELBO, with the KL term in closed form. The Bayesian GPLVM's stochastic variational
inference (``inference="svi"``) reparameterizes its draws of :math:`x` the same way.
"""

# %%
# Two estimators of one gradient
# ------------------------------
# The gradient of :math:`\mathbb E_q[\log p(y \mid x)]` with respect to :math:`q`'s mean, for a
# point under PPCA, where it is known exactly: :math:`W^\top (y - W m - \mu) / \sigma^2`. Both
# estimators are computed from the same 20,000 single draws; their means agree with the exact
# gradient, their spreads do not.
import numpy as np
import torch
from matplotlib.figure import Figure

import lvm

data = lvm.datasets.make_ppca(1000, 10, 2, noise=0.1, random_state=0)
model = lvm.PPCA(2).fit(data.Y)
W = torch.as_tensor(model.components_.T)
mu = torch.as_tensor(model.mean_)
s2 = float(model.noise_variance_)
y = torch.as_tensor(data.Y[0])
m0 = torch.as_tensor(model.transform(data.Y[:1])[0]) + 0.5  # q's mean, away from the optimum
v = torch.full((2,), 0.05, dtype=torch.float64)


def log_lik(x):  # log p(y | x) up to a constant, for x of shape (S, K)
    r = y - x @ W.T - mu
    return -0.5 * (r * r).sum(-1) / s2


S = 20_000
eps = torch.randn(S, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
exact = W.T @ (y - W @ m0 - mu) / s2

m = m0.clone().requires_grad_(True)
x = m + v.sqrt() * eps  # reparameterized draws
pathwise = torch.stack([torch.autograd.grad(log_lik(x[i:i + 1]).sum(), m, retain_graph=True)[0]
                        for i in range(2000)])  # per-draw gradients (2000 of them suffice)
with torch.no_grad():
    x = m0 + v.sqrt() * eps
    score = log_lik(x)[:, None] * (x - m0) / v  # g(x) * d log q / dm

print("exact gradient       :", exact.numpy().round(3))
print("pathwise, mean       :", pathwise.mean(0).numpy().round(3),
      " sd per draw:", pathwise.std(0).numpy().round(3))
print("score function, mean :", score.mean(0).numpy().round(3),
      " sd per draw:", score.std(0).numpy().round(3))
ratio = (score.var(0) / pathwise.var(0)).numpy()
print("variance ratio (score function / pathwise):", ratio.round(0))

# %%
# The spread of each estimator with S draws: the score function needs the ratio above times more
# draws for the same accuracy.
fig = Figure(figsize=(6, 3.4), layout="constrained")
ax = fig.subplots()
ax.hist(score[:, 0].numpy(), bins=80, density=True, alpha=0.6, label="score function, 1 draw")
ax.hist(pathwise[:, 0].numpy(), bins=40, density=True, alpha=0.8, label="pathwise, 1 draw")
ax.axvline(exact[0].item(), color="k", label="exact gradient")
ax.set(xlabel="estimate of the gradient's first coordinate", ylabel="density", yscale="log")
ax.legend(fontsize="small")
