r"""
.. _guide-gplvm:

Gaussian-process decoders: the Bayesian GPLVM
=============================================

**Evidence: an importance-weighted estimate** (a stochastic lower bound); the variational lower
bound it was trained on is ``elbo_``.

:class:`lvm.BayesianGPLVM` (Titsias & Lawrence, 2010) puts a Gaussian-process prior on the decoder
and integrates it out:

.. math::
    x_n \sim \mathcal N(0, I_Q), \qquad g_d \sim \mathcal{GP}(0, k), \qquad
    y_{nd} \sim \mathcal N(g_d(x_n) + c_d, \sigma^2),

one kernel :math:`k` (ARD: one lengthscale per latent dimension) shared by the D output
dimensions. What is optimized is the kernel's hyper-parameters and the noise (type-II maximum
likelihood, :ref:`guide-learning`), M inducing inputs :math:`Z`, and a Gaussian
:math:`q(x_n) = \mathcal N(\mu_n, \operatorname{diag} s_n)` per point. With the inducing outputs
:math:`u` integrated out at their optimum, the **collapsed bound** (``inference="collapsed"``, the
default) is, for centred data :math:`Y`, :math:`\beta = \sigma^{-2}`, :math:`K_{uu} = L L^\top`
and :math:`A = I + \beta L^{-1} \Psi_2 L^{-\top} = L_B L_B^\top`,

.. math::
    \mathcal F = -\tfrac{ND}2 \log(2\pi\sigma^2) - D \sum \log \operatorname{diag} L_B
        - \tfrac\beta2 \lVert Y\rVert_F^2 + \tfrac{\beta^2}2 \lVert c\rVert_F^2
        - \tfrac{\beta D}2\big(\textstyle\sum_n \psi_0^{(n)}
          - \operatorname{tr}(L^{-1}\Psi_2 L^{-\top})\big)
        - \sum_n \mathrm{KL}(q(x_n) \,\|\, \mathcal N(0, I)),

with :math:`c = L_B^{-1} L^{-1} \Psi_1^\top Y` and the kernel expectations
:math:`\psi_0, \Psi_1, \Psi_2` under :math:`q(x)` in closed form: a deterministic lower bound on
:math:`\log p(Y)`, optimized full-batch with L-BFGS. ``inference="svi"`` keeps :math:`q(u)` explicit
and trains on minibatches with reparameterized draws of :math:`x` (Hensman et al., 2013), for large
N and for kernels without closed-form expectations.

For a new point, :math:`q(x^\ast)` is fitted with the model frozen, and ``score_samples`` is the
importance-weighted estimate with that proposal (:ref:`guide-iwae`), of the evidence of the sparse
model. With an ARD kernel, fit a generous Q and read ``relevance_`` and ``effective_dims_``.
"""

# %%
# On the digits, against PPCA
# ---------------------------
# The same split as in :ref:`guide-linear`, K = 2, with fewer inducing inputs, optimizer iterations
# and draws than the defaults so that this page builds in seconds (``n_inducing=30``,
# ``max_iter=200``, ``transform_max_iter=100``, ``n_importance_samples=32``): a smaller model and
# a rougher estimate than the estimator's defaults give.
import warnings

import lvm

digits = lvm.datasets.load_digits()
Y = digits.Y[:, digits.Y.var(0) > 0]
gplvm = lvm.BayesianGPLVM(2, n_inducing=30, max_iter=200, transform_max_iter=100,
                          n_importance_samples=32, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a ConvergenceWarning: max_iter=200 is reached on purpose
    table = lvm.compare({"PPCA-2": lvm.PPCA(2), "GPLVM-2": gplvm}, Y, test_size=0.2,
                        random_state=0)
print(table)
fig = lvm.plot.evidence_comparison(table)

# %%
# Bound and estimate
# ------------------
# The bound the GPLVM was trained on, per training point, and the importance-weighted estimate of
# the training points' evidence (with each point's q(x*) refitted, the model frozen). Both are
# lower bounds in expectation, the second on the evidence of the sparse model; the difference is
# what importance weighting recovers of the bound's gap.
model = table[1]["estimator"]
print(f"training bound elbo_: {model.elbo_:.3f} nats per point; "
      f"importance-weighted estimate on the training split: {table[1]['train_log_evidence']:.3f}")

# %%
# The embedding, with ±1 sd of each point's :math:`q(x)`, and the optimization's progress.
fig = lvm.plot.latent_scatter(model, Y[:500], digits.labels[:500],
                              title="Bayesian GPLVM, K = 2: E[x | y]")
fig = lvm.plot.training_curve(model)
