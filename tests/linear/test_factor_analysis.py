import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.decomposition import FactorAnalysis as SkFactorAnalysis

import lvm


@pytest.fixture(scope="module")
def fa_data():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((10, 2))
    psi = rng.uniform(0.05, 1.0, 10)
    Y = rng.standard_normal((3000, 2)) @ W.T + rng.standard_normal((3000, 10)) * np.sqrt(psi) + 1.0
    return Y, W, psi


def test_evidence_equals_brute_force_gaussian(fa_data):
    Y = fa_data[0]
    model = lvm.FactorAnalysis(2, device="cpu").fit(Y)
    brute = multivariate_normal(model.mean_, model.get_covariance()).logpdf(Y)
    np.testing.assert_allclose(model.score_samples(Y), brute, rtol=1e-8)


def test_matches_sklearn_when_both_converge(fa_data):
    Y = fa_data[0]
    ours = lvm.FactorAnalysis(2, device="cpu").fit(Y)
    # scikit-learn converges slowly here; its default tol already agrees to ~3e-4 nats per sample.
    theirs = SkFactorAnalysis(2, tol=1e-2, max_iter=10000).fit(Y)
    assert abs(ours.score(Y) - theirs.score(Y)) < 1e-3
    np.testing.assert_allclose(ours.get_covariance(), theirs.get_covariance(), atol=1e-2)


def test_recovers_per_feature_noise(fa_data):
    Y, W, psi = fa_data
    model = lvm.FactorAnalysis(2, device="cpu").fit(Y)
    np.testing.assert_allclose(model.noise_variance_, psi, rtol=0.15, atol=0.02)
    assert model.n_iter_ >= 10


def test_em_never_decreases_the_likelihood(fa_data):
    model = lvm.FactorAnalysis(2, device="cpu", tol=0.0, max_iter=200).fit(fa_data[0])
    values = np.array([h["train"] for h in model.history_])
    assert np.all(np.diff(values) >= -1e-10)


def test_beats_or_matches_ppca_on_heteroscedastic_noise(fa_data):
    Y = fa_data[0]
    assert lvm.FactorAnalysis(2, device="cpu").fit(Y).score(Y) > lvm.PPCA(2, device="cpu").fit(Y).score(Y)


def test_posterior_is_exact(fa_data):
    Y = fa_data[0]
    model = lvm.FactorAnalysis(2, device="cpu").fit(Y)
    W, mu, psi = model.components_.T, model.mean_, model.noise_variance_
    Sigma = np.linalg.inv(np.eye(2) + W.T @ (W / psi[:, None]))
    mean = (Sigma @ (W / psi[:, None]).T @ (Y[:20] - mu).T).T
    X, X_std = model.transform(Y[:20], return_std=True)
    np.testing.assert_allclose(X, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(X_std[0], np.sqrt(np.diag(Sigma)), rtol=1e-9)
