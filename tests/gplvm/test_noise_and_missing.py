"""Per-feature noise and missing values in the Bayesian GPLVM: the collapsed bound against
brute-force sums of single-output bounds, the weighted psi-statistics, the closed-form expected
log-likelihood of a new point, the SVI bound at the optimal q(u), and the estimator end to end."""

import math

import numpy as np
import pytest
import torch

import lvm
from lvm.gplvm import psi as psi_module
from lvm.gplvm.collapsed import CollapsedELBO, SparseGPLVM, collapsed_terms, kuu_cholesky
from lvm.gplvm.kernels import make_kernel
from lvm.gplvm.posterior import InducingPosterior
from lvm.gplvm.psi import psi_statistics
from lvm.gplvm.svi import SharedKernelGP, SVIELBO, SVIGPLVM
from lvm.latents import PointLatent
from lvm.likelihoods import GaussianLikelihood

DT = torch.float64
N, D, Q, M = 40, 5, 2, 7


def _kernel(name):
    k = make_kernel(name, Q).to(DT)
    if name == "rbf":
        k.outputscale = 1.3
        k.base_kernel.lengthscale = torch.tensor([[0.9, 1.7]], dtype=DT)
    else:
        k.variance = torch.tensor([[0.8, 0.3]], dtype=DT)
    return k


@pytest.fixture(scope="module")
def problem():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(N, Q, generator=g, dtype=DT)
    var = 0.05 + 0.3 * torch.rand(N, Q, generator=g, dtype=DT)
    Z = torch.randn(M, Q, generator=g, dtype=DT)
    Y = torch.randn(N, D, generator=g, dtype=DT)
    mask = torch.rand(N, D, generator=g) > 0.3
    mask[0] = True  # every column keeps rows
    return mu, var, Z, Y, mask


def _bound(kernel, mu, var, Z, Y, noise, mask=None):
    L = kuu_cholesky(kernel, Z, 1e-6)
    psi = psi_statistics(kernel, mu, var, Z, weights=mask)
    return collapsed_terms(Y, psi, L, noise, mask)


def _close(a, b, tol=1e-10):
    a, b = float(a), float(b)
    assert abs(a - b) <= tol * max(1.0, abs(b)), (a, b, a - b)


@pytest.mark.parametrize("name", ["rbf", "linear"])
def test_weighted_psi2_is_the_weighted_sum_of_per_point_psi2(problem, name, monkeypatch):
    mu, var, Z, Y, mask = problem
    k = _kernel(name)
    w = mask.to(DT) * torch.rand(N, D, dtype=DT, generator=torch.Generator().manual_seed(1))
    per_point = psi_statistics(k, mu, var, Z, per_point=True).psi2
    brute = torch.einsum("nd,nmk->dmk", w, per_point)
    with torch.no_grad():
        got = psi_statistics(k, mu, var, Z, weights=w).psi2
        monkeypatch.setattr(psi_module, "PSI2_CHUNK", 7)  # the chunked (checkpointed) sum
        monkeypatch.setattr(psi_module, "PSI2_UNCHUNKED_ELEMENTS", 0)
        chunked = psi_statistics(k, mu, var, Z, weights=w).psi2
    assert got.shape == (D, M, M)
    assert torch.allclose(got, brute, rtol=1e-12, atol=1e-12)
    assert torch.allclose(chunked, brute, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["rbf", "linear"])
def test_per_feature_noise_bound(problem, name):
    mu, var, Z, Y, _ = problem
    k = _kernel(name)
    with torch.no_grad():
        shared, mean_s, root_s = _bound(k, mu, var, Z, Y, torch.tensor([0.3], dtype=DT))
        equal, mean_e, root_e = _bound(k, mu, var, Z, Y, torch.full((D,), 0.3, dtype=DT))
        noise = torch.linspace(0.1, 0.9, D, dtype=DT)
        per_feature, mean_p, root_p = _bound(k, mu, var, Z, Y, noise)
        brute = sum(_bound(k, mu, var, Z, Y[:, d:d + 1], noise[d:d + 1])[0] for d in range(D))
        mean_b = torch.cat([_bound(k, mu, var, Z, Y[:, d:d + 1], noise[d:d + 1])[1]
                            for d in range(D)], 1)
    print(f"shared {float(shared):.12f} per-feature(equal) {float(equal):.12f}; per-feature "
          f"{float(per_feature):.12f} brute-force sum {float(brute):.12f}")
    _close(equal, shared)
    assert torch.allclose(mean_e, mean_s, atol=1e-10) and root_e.shape == (D, M, M)
    assert torch.allclose(root_e, root_s.expand(D, M, M), atol=1e-10)
    _close(per_feature, brute)
    assert torch.allclose(mean_p, mean_b, atol=1e-10)


@pytest.mark.parametrize("name", ["rbf", "linear"])
def test_masked_bound(problem, name):
    mu, var, Z, Y, mask = problem
    k = _kernel(name)
    noise = torch.linspace(0.1, 0.9, D, dtype=DT)
    with torch.no_grad():
        # No NaN: the general (masked, batched) path equals today's shared one.
        full = _bound(k, mu, var, Z, Y, noise[:1])[0]
        ones = _bound(k, mu, var, Z, Y, noise[:1], torch.ones(N, D, dtype=torch.bool))[0]
        _close(ones, full)
        # Whole columns masked: the bound of the data without them.
        keep = torch.tensor([True, False, True, True, False])
        cols = torch.zeros(N, D, dtype=torch.bool)
        cols[:, keep] = True
        Ynan = torch.where(cols, Y, torch.full_like(Y, float("nan")))
        whole = _bound(k, mu, var, Z, Ynan, noise, cols)[0]
        deleted = _bound(k, mu, var, Z, Y[:, keep], noise[keep])[0]
        _close(whole, deleted)
        # Per-entry masks: for each d, the single-output bound on the rows observed in column d.
        Ynan = torch.where(mask, Y, torch.full_like(Y, float("nan")))
        masked = _bound(k, mu, var, Z, Ynan, noise, mask)[0]
        brute = 0.0
        for d in range(D):
            r = mask[:, d]
            brute = brute + _bound(k, mu[r], var[r], Z, Y[r, d:d + 1], noise[d:d + 1])[0]
        shared_masked = _bound(k, mu, var, Z, Ynan, noise[:1], mask)[0]
        shared_brute = sum(_bound(k, mu[mask[:, d]], var[mask[:, d]], Z, Y[mask[:, d], d:d + 1],
                                  noise[:1])[0] for d in range(D))
    print(f"no NaN {float(ones):.12f} vs shared path {float(full):.12f}; whole columns masked "
          f"{float(whole):.12f} vs deleted {float(deleted):.12f}; per-entry mask "
          f"{float(masked):.12f} vs brute-force {float(brute):.12f}")
    _close(masked, brute)
    _close(shared_masked, shared_brute)
    assert torch.isfinite(masked)


def test_collapsed_elbo_reads_nan_as_missing(problem):
    """CollapsedELBO on data with NaN: the masked bound plus the common KL; with no NaN, the
    shared-noise bound (the fast path)."""
    mu, var, Z, Y, mask = problem
    k = _kernel("rbf")
    lik = GaussianLikelihood(D, initial_noise=torch.linspace(0.1, 0.9, D))
    model = SparseGPLVM(PointLatent(mu, var), k, lik.to(DT), Z).to(DT)
    Ynan = torch.where(mask, Y, torch.full_like(Y, float("nan")))
    with torch.no_grad():
        value = CollapsedELBO(model)(Ynan)
        noise = lik.noise.to(DT)
        expected = _bound(k, mu, var, Z, Ynan, noise, mask)[0] - model.latent.kl(mu, var).sum()
    _close(value, expected)
    grad_model = SparseGPLVM(PointLatent(mu, var), _kernel("rbf"), lik.to(DT), Z).to(DT)
    bound = CollapsedELBO(grad_model)(Ynan)
    bound.backward()
    assert all(torch.isfinite(p.grad).all() for p in grad_model.parameters() if p.grad is not None)


def test_expected_log_likelihood_per_feature_noise_and_mask(problem):
    """The closed form for a new point against Monte Carlo over x of the generic path."""
    mu, var, Z, Y, mask = problem
    k = _kernel("rbf")
    L = kuu_cholesky(k, Z, 1e-6)
    noise = torch.linspace(0.1, 0.9, D, dtype=DT)
    with torch.no_grad():
        _, mean, root = _bound(k, mu, var, Z, torch.where(mask, Y, torch.nan), noise, mask)
    lik = GaussianLikelihood(D, initial_noise=noise).to(DT)
    post = InducingPosterior(k, Z, L, mean, root, lik, offset=torch.full((D,), 0.2, dtype=DT))
    y = torch.where(mask[:4], Y[:4], torch.nan)
    y[0] = Y[0]  # one complete row
    m, v = mu[:4], var[:4]
    closed = post.expected_log_likelihood(y, m, v)
    S = 20000
    eps = torch.randn(S, 4, Q, generator=torch.Generator().manual_seed(2), dtype=DT)
    x = m + v.sqrt() * eps
    fm, fv = post.predict(x)
    ell = lik.expected_log_prob(y, fm, fv, ~torch.isnan(y))  # (S, 4)
    se = ell.std(0) / math.sqrt(S)
    print("closed", closed.tolist(), "monte carlo", ell.mean(0).tolist(), "se", se.tolist())
    assert bool(((closed - ell.mean(0)).abs() < 5 * se + 1e-8).all())
    # Complete rows alone take the path with one weight matrix for all rows; a complete row
    # among rows with missing entries takes the per-row one: the same number.
    alone = post.expected_log_likelihood(Y[:1], mu[:1], var[:1])
    torch.testing.assert_close(alone, closed[:1], rtol=1e-12, atol=1e-10)


def test_svi_bound_with_mask_at_optimal_q_u_equals_collapsed(problem):
    mu, var, Z, Y, mask = problem
    k = _kernel("rbf")
    noise = torch.linspace(0.1, 0.9, D, dtype=DT)
    lik = GaussianLikelihood(D, initial_noise=noise).to(DT)
    latent = PointLatent(mu, var)
    Ynan = torch.where(mask, Y, torch.nan)
    model = SparseGPLVM(latent, k, lik, Z).to(DT)
    with torch.no_grad():
        collapsed, _, mean, root = CollapsedELBO(model, jitter=1e-6).terms(Ynan)
        jitter = 1e-6 * float(k(Z, diag=True).mean())
    gp = SharedKernelGP(k, Z, D, jitter=jitter).to(DT)
    gp.set_whitened(mean, root)
    svi = SVIGPLVM(latent, gp, lik)
    g = torch.Generator().manual_seed(0)
    bound = SVIELBO(svi, num_data=N, masked=True)
    with torch.no_grad():
        draws = torch.stack([bound(Ynan, torch.arange(N), g, n_samples=50) for _ in range(40)])
    est, se = float(draws.mean()), float(draws.std() / math.sqrt(len(draws)))
    print(f"masked: collapsed {float(collapsed):.5f}, SVI at optimal q(u) {est:.5f} +- {se:.5f}")
    assert torch.isfinite(draws).all()
    assert abs(est - float(collapsed)) < 4 * se + 1e-6 * abs(float(collapsed))


@pytest.fixture(scope="module")
def holey():
    data = lvm.datasets.make_ppca(150, 6, 2, noise=0.1, random_state=0)
    rng = np.random.default_rng(0)
    Y = data.Y.copy()
    hide = rng.random(Y.shape) < 0.2
    hide[hide.all(1)] = False
    Y[hide] = np.nan
    return data.Y, Y, hide


@pytest.mark.parametrize("noise", ["shared", "per_feature"])
def test_estimator_fits_transforms_scores_and_imputes_with_nan(holey, noise):
    Y, Ynan, hide = holey
    imputer = lvm.LatentImputer(lvm.BayesianGPLVM(2, n_inducing=10, max_iter=60, noise=noise,
                                                  device="cpu", random_state=0)).fit(Ynan)
    model = imputer.estimator_
    assert np.isfinite(model.elbo_)
    nv = np.atleast_1d(model.noise_variance_)
    assert nv.shape == ((1,) if noise == "shared" else (6,)) and (nv > 0).all()
    X = model.transform(Ynan[:5])
    np.testing.assert_allclose(X, model.latent_mean_[:5])  # training rows: their own q(x)
    new = Ynan[:5].copy()
    new[:, 0] = np.nan
    scores = model.score_samples(new)
    assert np.isfinite(scores).all() and np.isfinite(model.transform(new)).all()
    filled = imputer.transform(Ynan)
    rmse = float(np.sqrt(np.mean((filled[hide] - Y[hide]) ** 2)))
    mean_rmse = float(np.sqrt(np.mean((np.nanmean(Ynan, 0)[np.nonzero(hide)[1]] - Y[hide]) ** 2)))
    print(f"noise={noise}: imputation RMSE {rmse:.4f} (column means {mean_rmse:.4f})")
    assert not np.isnan(filled).any() and rmse < 0.7 * mean_rmse


def test_svi_and_encoder_with_nan(holey):
    _, Ynan, _ = holey
    model = lvm.BayesianGPLVM(2, n_inducing=10, inference="svi", encoder=True, max_iter=5,
                              batch_size=50, noise="per_feature", device="cpu",
                              random_state=0).fit(Ynan)
    assert np.isfinite(model.elbo_)
    assert np.isfinite(model.transform(Ynan[:5])).all()
    assert np.isfinite(model.score_samples(Ynan[:5])).all()


def test_partial_fit_chunk_with_nan_after_a_complete_one(holey):
    Y, Ynan, _ = holey
    model = lvm.BayesianGPLVM(2, n_inducing=10, inference="svi", batch_size=50, device="cpu",
                              random_state=0)
    model.partial_fit(Y[:75]).partial_fit(Ynan[75:])
    assert np.isfinite(model.elbo_) and np.isfinite(model.latent_mean_).all()
    assert np.isfinite(model.score_samples(Ynan[75:80])).all()


def test_bernoulli_svi_with_nan():
    rng = np.random.default_rng(0)
    Y = (rng.random((80, 6)) < 0.4).astype(float)
    Y[rng.random(Y.shape) < 0.2] = np.nan
    Y[np.isnan(Y).all(1), 0] = 1.0
    imputer = lvm.LatentImputer(lvm.BayesianGPLVM(
        2, n_inducing=8, inference="svi", likelihood="bernoulli", max_iter=3, batch_size=40,
        n_importance_samples=20, device="cpu", random_state=0)).fit(Y)
    assert np.isfinite(imputer.estimator_.score_samples(Y[:5])).all()
    filled = imputer.transform(Y)
    assert not np.isnan(filled).any()


def test_per_feature_noise_starts_at_the_shared_noise_optimum():
    """The collapsed fit with per-feature noise first fits one shared noise, then frees one per
    feature from there: its bound is at least the shared-noise fit's, and its history shows both
    stages."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 2))
    Y = np.tanh(X @ rng.standard_normal((2, 6))) + rng.standard_normal((150, 6)) * np.geomspace(
        0.05, 0.5, 6)
    kw = dict(n_inducing=10, max_iter=400, device="cpu", random_state=0)
    shared = lvm.BayesianGPLVM(2, noise="shared", **kw).fit(Y)
    staged = lvm.BayesianGPLVM(2, noise="per_feature", **kw).fit(Y)
    assert staged.noise_variance_.shape == (6,)
    assert staged.elbo_ >= shared.elbo_ - 1e-3
    # The first stage's last bound is a shared-noise bound, the second's at least as high.
    bounds = [r["train"] for r in staged.history_]
    assert bounds[-1] >= max(bounds[: len(bounds) // 2]) - 1e-6


@pytest.mark.parametrize("holes", [False, True], ids=["complete", "missing"])
def test_predictive_variance_through_a_shared_eigenbasis_equals_the_direct_one(holes):
    """Per-feature noise on complete data: every S_d = (I + beta_d C)^{-1} shares C's eigenbasis,
    and the predictive variance goes through it; with missing entries (a different Psi_2 per
    output) the basis is not shared and the direct route is kept."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 2))
    Y = np.tanh(X @ rng.standard_normal((2, 5))) + rng.standard_normal((80, 5)) * np.geomspace(
        0.05, 0.5, 5)
    if holes:
        Y[rng.random(Y.shape) < 0.2] = np.nan
        Y[np.isnan(Y).all(1), 0] = 0.0
    m = lvm.BayesianGPLVM(2, n_inducing=8, max_iter=40, device="cpu", random_state=0).fit(Y)
    post = m.family_.posterior_model
    assert (post.basis is not None) == (not holes)
    Xs = torch.as_tensor(rng.standard_normal((30, 2)))
    mean, var = post.predict(Xs)
    basis, post.basis = post.basis, None
    mean_direct, var_direct = post.predict(Xs)
    post.basis = basis
    torch.testing.assert_close(mean, mean_direct, rtol=1e-12, atol=0)
    torch.testing.assert_close(var, var_direct, rtol=1e-10, atol=0)


def test_per_output_variance_by_the_upper_triangle_equals_the_squared_root():
    """Per-output S_d = R_d R_d^T with no shared basis (the SVI posterior's): the variance
    a^T S_d a through the upper triangle of S_d equals ||R_d^T a||^2, the definition, for
    random roots (M = 7, D = 4) and points, to rounding."""
    g = torch.Generator().manual_seed(0)
    M, D, Q = 7, 4, 2
    kernel = make_kernel("rbf", Q).double()
    Z = torch.randn(M, Q, generator=g, dtype=torch.float64)
    chol = kuu_cholesky(kernel, Z, 1e-6)
    root = torch.randn(D, M, M, generator=g, dtype=torch.float64) * 0.3
    mean = torch.randn(M, D, generator=g, dtype=torch.float64)
    likelihood = GaussianLikelihood(initial_noise=0.1).double()
    post = InducingPosterior(kernel, Z, chol, mean, root, likelihood)
    assert post.basis is None
    X = torch.randn(40, Q, generator=g, dtype=torch.float64)
    _, var = post.predict(X)
    with torch.no_grad():
        A = torch.linalg.solve_triangular(chol, kernel(Z, X).to_dense(), upper=False)
        kxx = kernel(X, diag=True)
    RA = root.mT @ A  # (D, M, N)
    want = (kxx - (A * A).sum(0) + (RA * RA).sum(1)).T
    torch.testing.assert_close(var, want, rtol=1e-12, atol=0)
    assert var.shape == (40, D)
