r"""
.. _guide-elbo:

The evidence lower bound
========================

Take any distribution :math:`q(x \mid y)` over the latent of a point, a Gaussian
:math:`\mathcal N(m, \operatorname{diag} v)` say. Writing :math:`p(y) = p(y, x) / p(x \mid y)`
inside an expectation under :math:`q`,

.. math::
    \log p(y) = \mathrm{ELBO}(q) + \mathrm{KL}\big(q(x \mid y) \,\|\, p(x \mid y)\big),

    \mathrm{ELBO}(q) = \mathbb E_{q}\big[\log p(y \mid x)\big]
        - \mathrm{KL}\big(q(x \mid y) \,\|\, p(x)\big).

The divergence on the first line is never negative and is zero only when :math:`q` is the
posterior, so the **evidence lower bound** (ELBO) is below :math:`\log p(y)` for every
:math:`q`, and the gap is exactly how far :math:`q` is from the posterior. The ELBO needs only
the likelihood and the prior, not the evidence: maximizing it over :math:`q` tightens the bound,
maximizing it over the decoder's parameters raises it. The VAE and the Bayesian GPLVM train on
it.

**The KL to the prior in closed form.** For a diagonal Gaussian :math:`q` and the standard normal
prior,

.. math::
    \mathrm{KL}\big(\mathcal N(m, \operatorname{diag} v) \,\|\, \mathcal N(0, I)\big)
        = \tfrac12 \sum_{k=1}^K \big(v_k + m_k^2 - 1 - \log v_k\big)

(:func:`lvm.latents.kl_standard`), so only the expected log-likelihood needs sampling, with
:math:`x = m + \sqrt v \odot \varepsilon`, :math:`\varepsilon \sim \mathcal N(0, I)`
(:ref:`guide-reparam`). lvm's ``"elbo"`` estimator (:data:`lvm.evidence.ESTIMATORS`) is

.. math::
    \frac1S \sum_{s=1}^S \log p(y \mid x_s) - \mathrm{KL}(q \,\|\, p).
"""

# %%
# The identity, checked to rounding error
# ---------------------------------------
# For PPCA every term is closed form: the posterior is :math:`\mathcal N(\hat x, M^{-1})` and, for
# :math:`q = \mathcal N(m, \operatorname{diag} v)`,
# :math:`\mathbb E_q[\log p(y \mid x)] = -\tfrac D2 \log 2\pi\sigma^2 - \big(\lVert y - W m - \mu
# \rVert^2 + \sum_k v_k \lVert w_k \rVert^2\big) / 2\sigma^2`. We move :math:`q`'s mean away from
# the posterior mean and check that ELBO + KL(q || posterior) is the exact evidence.
import numpy as np
import torch
from matplotlib.figure import Figure

import lvm
from lvm.latents import kl_standard

data = lvm.datasets.make_ppca(1000, 10, 2, noise=0.1, random_state=0)
model = lvm.PPCA(2).fit(data.Y)
W = torch.as_tensor(model.components_.T)  # (D, K); its columns are orthogonal
mu = torch.as_tensor(model.mean_)
s2 = float(model.noise_variance_)
D, K = W.shape
y = torch.as_tensor(data.Y[:1])
exact = float(model.score_samples(data.Y[:1])[0])
post_mean = torch.as_tensor(model.transform(data.Y[:1]))
post_prec = 1.0 + (W * W).sum(0) / s2  # M = I + W^T W / s2 is diagonal for PPCA's W


def elbo_and_gap(m, v):
    r = y - m @ W.T - mu
    spread = (v * (W * W).sum(0)).sum()  # E_q ||W (x - m)||^2
    expected_ll = -0.5 * D * np.log(2 * np.pi * s2) - 0.5 * ((r * r).sum() + spread) / s2
    elbo = expected_ll - kl_standard(m, v).sum()
    a = v * post_prec  # KL between diagonal Gaussians, q against the posterior
    kl_post = 0.5 * (a + (m - post_mean) ** 2 * post_prec - 1 - torch.log(a)).sum()
    return float(elbo), float(kl_post)


print(f"exact log p(y) = {exact:.10f}")
shifts = np.linspace(-3, 3, 61)
curve = []
for shift in shifts:
    m = post_mean + torch.tensor([[shift, 0.0]], dtype=torch.float64) / post_prec.sqrt()
    v = 1.0 / post_prec  # the posterior's variances
    curve.append(elbo_and_gap(m, v))
for shift in (0.0, 1.0, 3.0):
    i = int(np.argmin(abs(shifts - shift)))
    e, g = curve[i]
    print(f"mean moved by {shift:.0f} posterior sd: ELBO {e:.6f} + KL {g:.6f} = {e + g:.10f}")
for scale in (0.5, 2.0):
    e, g = elbo_and_gap(post_mean, scale / post_prec)
    print(f"variances x {scale}:               ELBO {e:.6f} + KL {g:.6f} = {e + g:.10f}")

fig = Figure(figsize=(6, 3.4), layout="constrained")
ax = fig.subplots()
ax.axhline(exact, color="k", label="log p(y), exact")
ax.plot(shifts, [e for e, _ in curve], label="ELBO(q)")
ax.fill_between(shifts, [e for e, _ in curve], exact, color="C0", alpha=0.15,
                label="KL(q || p(x | y))")
ax.set(xlabel="q's mean minus the posterior mean (posterior sd)", ylabel="nats",
       title="ELBO + KL(q || posterior) = log p(y)")
ax.legend(loc="lower center")

# %%
# The analytic KL, checked by Monte Carlo
# ---------------------------------------
# :math:`\mathrm{KL}(q \,\|\, p) = \mathbb E_q[\log q(x) - \log p(x)]`, estimated from 200,000
# draws, against the closed form used in every ELBO lvm computes.
g = torch.Generator().manual_seed(0)
m = torch.tensor([[0.8, -1.5, 0.3]], dtype=torch.float64)
v = torch.tensor([[0.2, 1.7, 0.05]], dtype=torch.float64)
x = m + v.sqrt() * torch.randn(200_000, 3, generator=g, dtype=torch.float64)
log_q = -0.5 * (((x - m) ** 2 / v) + torch.log(2 * np.pi * v)).sum(1)
log_p = lvm.latents.log_prior(x)
mc = (log_q - log_p)
print(f"closed form {kl_standard(m, v).item():.5f}   Monte Carlo {mc.mean().item():.5f} "
      f"± {mc.std().item() / np.sqrt(len(mc)):.5f}")
