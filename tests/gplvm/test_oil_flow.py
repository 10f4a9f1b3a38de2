"""Must-show 4: oil-flow quality (standardized per feature, as GPyTorch's recipe does).

References measured on this 2-core machine (issue 5): GPy's collapsed BayesianGPLVM reaches a bound
of -2.72 nats/point at Q = 10 (M = 50, 1,000 L-BFGS iterations, 150 s); GPyTorch's recipe 98.4% 1-NN
in its two most relevant dims.
"""

import numpy as np
import pytest

import lvm

from .conftest import one_nn_accuracy

# Two full fits of the 1000-row set (about a minute together on a quiet 2-core machine): slow,
# so the default suite stays under three minutes; run with -m slow.
pytestmark = [pytest.mark.data, pytest.mark.slow]

GPY_BOUND_Q10 = -2.72


def test_two_dimensional_embedding_separates_the_flow_regimes(oil):
    Y, labels = oil
    m = lvm.BayesianGPLVM(2, n_inducing=50, max_iter=1000, device="cpu", random_state=0).fit(Y)
    acc = one_nn_accuracy(m.latent_mean_, labels)
    print(f"Q=2: bound {m.elbo_:.3f} nats/point, 10-fold 1-NN accuracy {acc:.4f}")
    assert acc >= 0.99


def test_ard_finds_few_dimensions_and_beats_gpy_bound(oil):
    Y, labels = oil
    # The defaults (per-feature noise, fitted in two stages from the shared-noise optimum): bound
    # -1.152 nats/point, 2 effective dims, 1-NN 0.998 in them. Fitted in one stage, per-feature
    # noise ended at -2.512 with 1-NN 0.924 in its two effective dims.
    m = lvm.BayesianGPLVM(10, n_inducing=50, max_iter=1000, device="cpu", random_state=0).fit(Y)
    eff = m.relevant_dims_[: m.effective_dims_]
    acc_eff = one_nn_accuracy(m.latent_mean_[:, eff], labels)
    acc_two = one_nn_accuracy(m.latent_mean_[:, m.relevant_dims_[:2]], labels)
    acc_all = one_nn_accuracy(m.latent_mean_, labels)
    # All ten dims in the latent space's own metric, the one the ARD kernel uses: x_q / l_q.
    acc_ard = one_nn_accuracy(m.latent_mean_ / m.lengthscales_, labels)
    print(f"Q=10: bound {m.elbo_:.3f} nats/point (GPy {GPY_BOUND_Q10}), relevance "
          f"{np.round(m.relevance_, 4)}, effective dims {m.effective_dims_}; 10-fold 1-NN accuracy "
          f"effective dims {acc_eff:.4f}, two most relevant {acc_two:.4f}, all ten {acc_all:.4f}, "
          f"all ten ARD-scaled {acc_ard:.4f}")
    assert m.effective_dims_ <= 4
    assert acc_eff >= 0.99
    assert acc_ard >= 0.99
    assert m.elbo_ >= GPY_BOUND_Q10
