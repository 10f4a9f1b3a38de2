"""Must-show 2 and 3: the linear-kernel bound against exact PPCA evidence; collapsed == SVI bound at
the optimal q(u)."""

import math

import pytest
import torch

import lvm
from lvm.gplvm.collapsed import CollapsedELBO
from lvm.gplvm.svi import SharedKernelGP, SVIELBO, SVIGPLVM


def test_linear_kernel_bound_below_and_close_to_ppca_evidence(ppca_400x5):
    Y = ppca_400x5.Y
    # neighbor_weight=0: the bound alone is maximized (the neighbour term picks another q(x)).
    model = lvm.BayesianGPLVM(2, kernel="linear", n_inducing=10, max_iter=500, tol=1e-9,
                              neighbor_weight=0, device="cpu", random_state=0).fit(Y)
    evidence = lvm.PPCA(2).fit(Y).score(Y)
    print(f"linear-kernel collapsed bound {model.elbo_:.4f} <= exact PPCA evidence {evidence:.4f} "
          f"(gap {evidence - model.elbo_:.4f} nats/point)")
    # log int p(Y|W) p(W) dW <= max_W log p(Y|W), and the bound is below the former.
    assert model.elbo_ <= evidence
    # The gap is the Bayesian (Occam) price of integrating W, ~ (D Q / 2) log(N) / N, plus slack.
    N, D = Y.shape
    assert evidence - model.elbo_ < 2 * (D * 2 / 2) * math.log(N) / N


@pytest.fixture(scope="module")
def fitted_rbf(ppca_400x5):
    Y = ppca_400x5.Y[:150]
    return lvm.BayesianGPLVM(2, n_inducing=8, max_iter=100, device="cpu", random_state=0).fit(Y)


def test_collapsed_bound_equals_svi_bound_at_optimal_q_u(fitted_rbf):
    est = fitted_rbf
    model = est.family_.module
    Yc = est.family_.frozen.rows - est.family_.offset  # the centred (standardized) training rows
    N, D = Yc.shape
    with torch.no_grad():
        collapsed, _, mean, root = CollapsedELBO(model, jitter=est.family_.jitter).terms(Yc)
    # lvm's jitter is relative to K_uu's mean diagonal; GPyTorch's strategy takes it absolute.
    with torch.no_grad():
        jitter = est.family_.jitter * float(model.kernel(model.inducing_points, diag=True).mean())
    gp = SharedKernelGP(model.kernel, model.inducing_points.detach(), D, jitter=jitter)
    gp = gp.to(torch.float64)
    gp.set_whitened(mean, root)
    svi = SVIGPLVM(model.latent, gp, model.likelihood)
    svi.train()
    g = torch.Generator().manual_seed(0)
    bound = SVIELBO(svi, num_data=N)
    with torch.no_grad():
        draws = torch.stack([bound(Yc, torch.arange(N), g, n_samples=20) for _ in range(25)])
    est_mean, se = float(draws.mean()), float(draws.std() / math.sqrt(len(draws)))
    print(f"collapsed {float(collapsed) / N:.5f}, SVI at optimal q(u) {est_mean / N:.5f} "
          f"+- {se / N:.5f} nats/point")
    assert abs(est_mean - float(collapsed)) < 4 * se + 1e-6 * abs(float(collapsed))


def test_new_point_expected_log_likelihood_matches_monte_carlo(fitted_rbf):
    post = fitted_rbf.family_.posterior_model
    Yc = fitted_rbf.family_.frozen.rows[:5]
    mu = torch.tensor(fitted_rbf.latent_mean_[:5])
    var = torch.tensor(fitted_rbf.latent_var_[:5])
    closed = post.expected_log_likelihood(Yc, mu, var)
    g = torch.Generator().manual_seed(1)
    eps = torch.randn(20000, 2, generator=g, dtype=torch.float64)
    # Monte Carlo over x of the closed-form E_q(f) term, through the generic path.
    mean, fvar = post.predict((mu + var.sqrt() * eps.unsqueeze(1)).reshape(-1, 2))
    r = Yc.repeat(20000, 1) - mean
    ell = -0.5 * (torch.log(2 * math.pi * post.noise) + (r * r + fvar) / post.noise).sum(-1)
    ell = ell.reshape(20000, 5)
    se = ell.std(0) / math.sqrt(20000)
    assert bool(((closed - ell.mean(0)).abs() < 5 * se + 1e-8).all())
