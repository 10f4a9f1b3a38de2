"""EM over missing entries for PPCA and Factor Analysis (lvm.linear._missing)."""

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles

import lvm
from lvm.evidence import low_rank_gaussian_log_prob
from lvm.evidence.masked import masked_linear_gaussian_posterior, masked_low_rank_gaussian_log_prob
from lvm.linear._missing import fit_missing, missing_em_step, missing_posterior


NOISE = 0.5


@pytest.fixture(scope="module")
def ppca_missing():
    """make_ppca(5000, 20, 3) with 30% of entries missing completely at random, and its EM fit."""
    data = lvm.datasets.make_ppca(5000, 20, 3, noise=NOISE, random_state=0)
    mask = np.random.default_rng(1).random(data.Y.shape) >= 0.3
    Y = torch.tensor(np.where(mask, data.Y, np.nan))
    return data, mask, fit_missing(Y, torch.tensor(mask), 3)


@pytest.fixture(scope="module")
def fa_data():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((10, 2))
    psi = rng.uniform(0.05, 1.0, 10)
    Y = rng.standard_normal((1000, 2)) @ W.T + rng.standard_normal((1000, 10)) * np.sqrt(psi) + 1.0
    mask = rng.random(Y.shape) >= 0.3
    mask[np.arange(1000), rng.integers(0, 10, 1000)] = True
    return Y, mask


def test_ppca_em_recovers_subspace_and_noise(ppca_missing):
    data, mask, fit = ppca_missing
    angle = subspace_angles(fit.W.numpy(), data.W).max()
    sigma2_error = float(fit.noise[0]) / NOISE - 1
    print(f"\n30% missing: largest principal angle {angle:.4f} rad, sigma^2 {float(fit.noise[0]):.4f} "
          f"(true {NOISE}, relative error {sigma2_error:+.4f}), {fit.n_iter} EM iterations, "
          f"converged={fit.converged}")
    assert fit.converged
    assert angle < 0.1
    assert abs(sigma2_error) < 0.05
    assert torch.equal(fit.noise, fit.noise[0].expand(20))


def test_ppca_em_beats_mean_imputation_on_held_out_complete_rows(ppca_missing):
    data, mask, fit = ppca_missing
    rng = np.random.default_rng(2)
    held_out = (rng.standard_normal((2000, 3)) @ data.W.T + data.mean
                + np.sqrt(NOISE) * rng.standard_normal((2000, 20)))
    em = float(low_rank_gaussian_log_prob(torch.tensor(held_out), fit.mean, fit.W, fit.noise).mean())
    imputed = np.where(mask, data.Y, np.nanmean(np.where(mask, data.Y, np.nan), axis=0))
    baseline = lvm.PPCA(3, device="cpu").fit(imputed).score(held_out)
    true = float(low_rank_gaussian_log_prob(torch.tensor(held_out), torch.tensor(data.mean),
                                            torch.tensor(data.W),
                                            torch.full((20,), NOISE, dtype=torch.float64)).mean())
    print(f"\nheld-out log p(y) per row: EM {em:.4f}, PPCA on mean-imputed data {baseline:.4f}, "
          f"true parameters {true:.4f} (nats)")
    assert em > baseline


def test_history_is_the_exact_observed_data_log_likelihood(ppca_missing):
    data, mask, fit = ppca_missing
    Y = torch.tensor(np.where(mask, data.Y, np.nan))
    total = masked_low_rank_gaussian_log_prob(Y, torch.tensor(mask), fit.mean, fit.W, fit.noise).sum()
    assert len(fit.history) == fit.n_iter + 1
    np.testing.assert_allclose(fit.history[-1] * len(Y), float(total), rtol=1e-12)


@pytest.mark.parametrize("noise", ["shared", "per_feature"])
def test_log_likelihood_never_decreases(fa_data, noise):
    Y, mask = fa_data
    fit = fit_missing(torch.tensor(np.where(mask, Y, np.nan)), torch.tensor(mask), 2, noise=noise,
                      tol=0.0, max_iter=150)
    h = np.array(fit.history)
    steps = np.diff(h)
    print(f"\n{noise}: log-likelihood per row {h[0]:.6f} -> {h[-1]:.6f} over {fit.n_iter} "
          f"iterations, smallest step {steps.min():.2e}")
    assert np.all(steps >= -1e-13 * np.abs(h[1:]))
    assert h[-1] > h[0]


def test_full_mask_em_converges_to_factor_analysis(fa_data):
    Y = fa_data[0]
    full = torch.ones(Y.shape, dtype=torch.bool)
    fit = fit_missing(torch.tensor(Y), full, 2, noise="per_feature", tol=1e-10, max_iter=5000)
    fa = lvm.FactorAnalysis(2, device="cpu", tol=1e-12, max_iter=20000).fit(Y)
    gap = fit.history[-1] - fa.score(Y)
    print(f"\nno missing entries: EM {fit.history[-1]:.10f}, FactorAnalysis {fa.score(Y):.10f} "
          f"nats per row (difference {gap:.1e}), {fit.n_iter} EM iterations")
    assert fit.converged
    assert abs(gap) < 1e-6
    np.testing.assert_allclose(fit.mean.numpy(), Y.mean(0), rtol=1e-10)


def test_factor_analysis_solution_is_a_fixed_point(fa_data):
    Y = fa_data[0]
    fa = lvm.FactorAnalysis(2, device="cpu", tol=1e-12, max_iter=20000).fit(Y)
    fit = fit_missing(torch.tensor(Y), torch.ones(Y.shape, dtype=torch.bool), 2,
                      noise="per_feature", W0=torch.tensor(fa.components_.T),
                      mean0=torch.tensor(fa.mean_), noise0=torch.tensor(fa.noise_variance_),
                      tol=0.0, max_iter=3)
    # FactorAnalysis stops on a 1e-12 change of the log-likelihood, where its parameters still
    # creep along a flat ridge by ~1e-6: the log-likelihood is the sharp comparison.
    np.testing.assert_allclose(fit.history, fa.score(Y), rtol=1e-12)
    np.testing.assert_allclose(fit.W.numpy(), fa.components_.T, atol=1e-5)
    np.testing.assert_allclose(fit.noise.numpy(), fa.noise_variance_, rtol=1e-5)


def test_full_mask_shared_noise_em_converges_to_closed_form_ppca(ppca_missing):
    data = ppca_missing[0]
    Y = data.Y[:1000]
    fit = fit_missing(torch.tensor(Y), torch.ones(Y.shape, dtype=torch.bool), 3, tol=1e-12)
    ppca = lvm.PPCA(3, device="cpu").fit(Y)
    assert fit.converged
    assert abs(fit.history[-1] - ppca.score(Y)) < 1e-8
    np.testing.assert_allclose(float(fit.noise[0]), ppca.noise_variance_, rtol=1e-6)


@pytest.mark.parametrize("noise", ["shared", "per_feature"])
def test_noise_floor_is_relative_to_the_data_scale(fa_data, noise):
    Y, mask = fa_data
    c = 1e-5
    a = fit_missing(torch.tensor(np.where(mask, Y, np.nan)), torch.tensor(mask), 2, noise=noise,
                    max_iter=20, min_noise_fraction=0.05)
    b = fit_missing(torch.tensor(np.where(mask, c * Y, np.nan)), torch.tensor(mask), 2, noise=noise,
                    max_iter=20, min_noise_fraction=0.05)
    assert a.n_iter == b.n_iter
    torch.testing.assert_close(b.W, c * a.W, rtol=1e-8, atol=0)
    torch.testing.assert_close(b.noise, c**2 * a.noise, rtol=1e-8, atol=0)
    observed_var = np.nanvar(np.where(mask, Y, np.nan), axis=0)
    floor = 0.05 * (observed_var.mean() if noise == "shared" else observed_var)
    assert np.all(a.noise.numpy() >= floor * (1 - 1e-12))
    if noise == "per_feature":  # the floor binds for some features here
        assert np.isclose(a.noise.numpy(), floor, rtol=1e-12).any()


def test_chunk_size_does_not_change_the_fit(fa_data):
    Y, mask = fa_data
    args = (torch.tensor(np.where(mask, Y, np.nan)), torch.tensor(mask), 2)
    a = fit_missing(*args, noise="per_feature", max_iter=10)
    b = fit_missing(*args, noise="per_feature", max_iter=10, chunk_size=97)
    torch.testing.assert_close(a.W, b.W, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(a.noise, b.noise, rtol=1e-10, atol=0)
    np.testing.assert_allclose(a.history, b.history, rtol=1e-12)


def test_em_step_is_one_iteration_of_fit_missing(fa_data):
    Y, mask = fa_data
    Yt, Mt = torch.tensor(np.where(mask, Y, np.nan)), torch.tensor(mask)
    start = fit_missing(Yt, Mt, 2, noise="per_feature", max_iter=0)
    two = fit_missing(Yt, Mt, 2, noise="per_feature", max_iter=2, tol=0.0)
    W, mean, noise = start.W, start.mean, start.noise
    floor = 1e-8 * torch.tensor(np.nanvar(np.where(mask, Y, np.nan), axis=0))
    for expected in two.history[:2]:
        W, mean, noise, ll = missing_em_step(Yt, Mt, W, mean, noise, noise_model="per_feature",
                                             noise_floor=floor)
        np.testing.assert_allclose(float(ll) / len(Y), expected, rtol=1e-12)
    torch.testing.assert_close(W, two.W, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(noise, two.noise, rtol=1e-10, atol=0)


def test_missing_posterior_is_the_masked_posterior(ppca_missing):
    data, mask, fit = ppca_missing
    Y, M = torch.tensor(np.where(mask, data.Y, np.nan))[:300], torch.tensor(mask)[:300]
    means, stds = missing_posterior(Y, M, fit.W, fit.mean, fit.noise)
    ref_means, covs = masked_linear_gaussian_posterior(Y, M, fit.mean, fit.W, fit.noise)
    torch.testing.assert_close(means, ref_means)
    torch.testing.assert_close(stds, torch.sqrt(torch.diagonal(covs, dim1=1, dim2=2)))
    assert stds.shape == (300, 3)


def test_rows_with_nothing_observed_are_named(fa_data):
    Y, mask = fa_data
    mask = mask.copy()
    mask[[4, 9]] = False
    with pytest.raises(ValueError, match=r"2 row\(s\) of Y have no observed entry \(rows \[4, 9\]\)"):
        fit_missing(torch.tensor(np.where(mask, Y, np.nan)), torch.tensor(mask), 2)


def test_features_with_nothing_observed_are_named(fa_data):
    Y, mask = fa_data
    mask = mask.copy()
    mask[:, 7] = False
    with pytest.raises(ValueError, match=r"1 feature\(s\) have no observed entry \(columns \[7\]\)"):
        fit_missing(torch.tensor(np.where(mask, Y, np.nan)), torch.tensor(mask), 2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(noise="diagonal"), r"Unknown noise model 'diagonal'; choose one of \['per_feature', 'shared'\]"),
    (dict(n_components=11), r"n_components must be an integer in \[1, n_features=10\]; got 11"),
    (dict(tol=-1.0), "tol must be >= 0"),
    (dict(max_iter=-1), "max_iter must be a non-negative integer"),
    (dict(min_noise_fraction=0.0), r"min_noise_fraction must be in \(0, 1\)"),
    (dict(chunk_size=0), "chunk_size must be a positive integer or None"),
    (dict(W0=torch.zeros(10, 3)), r"W0 must have shape \(10, 2\)"),
])
def test_bad_arguments_are_named(fa_data, kwargs, match):
    Y, mask = fa_data
    kwargs = dict(n_components=2) | kwargs
    with pytest.raises(ValueError, match=match):
        fit_missing(torch.tensor(np.where(mask, Y, np.nan)), torch.tensor(mask), **kwargs)


@pytest.mark.slow
def test_factor_analysis_with_missing_entries_recovers_per_feature_noise():
    rng = np.random.default_rng(5)
    W = rng.standard_normal((15, 3))
    psi = rng.uniform(0.1, 1.0, 15)
    Y = rng.standard_normal((20000, 3)) @ W.T + rng.standard_normal((20000, 15)) * np.sqrt(psi)
    mask = rng.random(Y.shape) >= 0.3
    fit = fit_missing(torch.tensor(np.where(mask, Y, np.nan)), torch.tensor(mask), 3,
                      noise="per_feature", max_iter=5000)
    print(f"\nFA, 30% missing: psi max relative error "
          f"{np.max(np.abs(fit.noise.numpy() / psi - 1)):.3f}, {fit.n_iter} iterations")
    assert fit.converged
    np.testing.assert_allclose(fit.noise.numpy(), psi, rtol=0.1)
    assert subspace_angles(fit.W.numpy(), W).max() < 0.05


@pytest.mark.gpu
@pytest.mark.parametrize("noise", ["shared", "per_feature"])
def test_em_on_cuda_matches_cpu(fa_data, noise):
    Y, mask = fa_data
    Yt, Mt = torch.tensor(np.where(mask, Y, np.nan)), torch.tensor(mask)
    cpu = fit_missing(Yt, Mt, 2, noise=noise, max_iter=30, tol=0.0)
    gpu = fit_missing(Yt.cuda(), Mt.cuda(), 2, noise=noise, max_iter=30, tol=0.0)
    assert gpu.W.is_cuda and gpu.noise.is_cuda and gpu.mean.is_cuda
    np.testing.assert_allclose(gpu.history, cpu.history, rtol=1e-10)
    # W is identified up to sign (the initial eigenvectors' signs may differ between devices).
    torch.testing.assert_close(gpu.W.cpu().abs(), cpu.W.abs(), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(gpu.noise.cpu(), cpu.noise, rtol=1e-8, atol=0)
    means, stds = missing_posterior(Yt.cuda(), Mt.cuda(), gpu.W, gpu.mean, gpu.noise)
    assert means.is_cuda and stds.shape == (len(Y), 2)
