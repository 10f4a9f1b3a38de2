"""Missing values (NaN) in PPCA and Factor Analysis through the estimators: exact evidence of the
observed entries, EM that recovers the model, the posterior given observed entries, imputation."""

import math

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from scipy.stats import multivariate_normal

import lvm


def _holes(Y, fraction, seed=0):
    Y = Y.copy()
    Y[np.random.default_rng(seed).random(Y.shape) < fraction] = np.nan
    empty = np.isnan(Y).all(1)
    Y[empty, 0] = 0.0 if not empty.any() else np.nanmean(Y[:, 0])
    return Y


@pytest.fixture(scope="module")
def ppca_holes():
    data = lvm.datasets.make_ppca(5000, 20, 3, noise=0.25, random_state=1)
    return data, _holes(data.Y, 0.3)


@pytest.mark.parametrize("Est", [lvm.PPCA, lvm.FactorAnalysis])
def test_score_samples_of_partly_observed_rows_equal_a_brute_force_gaussian(Est):
    Y = _holes(lvm.datasets.make_ppca(600, 8, 2, noise=0.2, random_state=0).Y * 3 + 5, 0.3)
    m = Est(2, device="cpu").fit(Y)
    C = m.get_covariance()
    brute = np.array([multivariate_normal(m.mean_[o], C[np.ix_(o, o)]).logpdf(y[o])
                      for y, o in ((y, ~np.isnan(y)) for y in Y[:200])])
    np.testing.assert_allclose(m.score_samples(Y[:200]), brute, rtol=1e-8)
    assert m.log_evidence_ == pytest.approx(m.score_samples(Y).sum(), rel=1e-8)


def test_ppca_with_fewer_rows_than_features_and_holes_fits_by_em():
    """With N < D complete data take the thin SVD; with NaN they take EM like any other shape
    (the SVD of data with holes failed with a LinAlgError before)."""
    Y = _holes(lvm.datasets.make_ppca(12, 30, 2, noise=0.2, random_state=0).Y, 0.1)
    m = lvm.PPCA(2, device="cpu", tol=1e-12).fit(Y)
    C = m.get_covariance()
    brute = sum(multivariate_normal(m.mean_[o], C[np.ix_(o, o)]).logpdf(y[o])
                for y, o in ((y, ~np.isnan(y)) for y in Y))
    assert m.converged_ and m.n_iter_ > 1
    assert m.log_evidence_ == pytest.approx(brute, rel=1e-8)


@pytest.mark.parametrize("Est", [lvm.PPCA, lvm.FactorAnalysis])
def test_complete_rows_are_unchanged(Est):
    Y = lvm.datasets.make_ppca(400, 6, 2, noise=0.2, random_state=0).Y
    a = Est(2, device="cpu").fit(Y)
    b = Est(2, device="cpu").fit(_holes(Y, 0.2))
    X = Y[:5]
    assert np.all(np.isfinite(b.score_samples(X))) and a.transform(X).shape == b.transform(X).shape
    np.testing.assert_allclose(a.score_samples(X), Est(2, device="cpu").fit(Y).score_samples(X))


def test_em_recovers_the_subspace_and_noise_and_beats_mean_imputation(ppca_holes):
    data, Y = ppca_holes
    model = lvm.PPCA(3, device="cpu").fit(Y)
    angle = float(np.max(subspace_angles(model.components_.T, data.W)))
    filled = np.where(np.isnan(Y), np.nanmean(Y, 0), Y)
    imputed = lvm.PPCA(3, device="cpu").fit(filled)
    test = lvm.datasets.make_ppca(6000, 20, 3, noise=0.25, random_state=1).Y[5000:]
    ours, theirs = model.score(test), imputed.score(test)
    print(f"\n30% missing: largest principal angle {angle:.4f} rad, sigma^2 "
          f"{model.noise_variance_:.4f} (true {data.noise}), held-out complete rows: EM {ours:.4f}"
          f" vs mean-imputed PPCA {theirs:.4f}; {model.n_iter_} EM iterations")
    assert angle < 0.1
    assert model.noise_variance_ == pytest.approx(data.noise, rel=0.05)
    assert ours > theirs and model.converged_


def test_transform_is_the_posterior_given_the_observed_entries():
    Y = _holes(lvm.datasets.make_ppca(500, 6, 2, noise=0.2, random_state=3).Y, 0.3)
    m = lvm.PPCA(2, device="cpu").fit(Y)
    W, mu, s2 = m.components_.T, m.mean_, m.noise_variance_
    X, S = m.transform(Y[:10], return_std=True)
    for n in range(10):
        o = ~np.isnan(Y[n])
        M = np.eye(2) + W[o].T @ W[o] / s2
        np.testing.assert_allclose(X[n], np.linalg.solve(M, W[o].T @ (Y[n, o] - mu[o]) / s2),
                                   rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(S[n], np.sqrt(np.diag(np.linalg.inv(M))), rtol=1e-8)


def test_errors_name_the_problem():
    Y = lvm.datasets.make_ppca(50, 4, 1, random_state=0).Y
    bad = Y.copy()
    bad[[3, 7]] = np.nan
    with pytest.raises(ValueError, match=r"2 row\(s\) of Y have no observed value \(rows \[3, 7\]"):
        lvm.PPCA(1, device="cpu").fit(bad)
    bad = Y.copy()
    bad[0, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        lvm.PPCA(1, device="cpu").fit(bad)
    bad = Y.copy()
    bad[:, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 feature\(s\) have no observed value \(columns \[2\]"):
        lvm.FactorAnalysis(1, device="cpu").fit(bad)
    holes = _holes(Y, 0.2)
    with pytest.raises(ValueError, match="partial_fit and streamed fits need complete rows"):
        lvm.PPCA(1, device="cpu").partial_fit(holes)
    with pytest.raises(ValueError, match="n_components='auto' needs complete data"):
        lvm.PPCA("auto", device="cpu").fit(holes)
    with pytest.raises(ValueError, match="NaN"):
        lvm.DiffusionModel(max_epochs=1).fit(holes)


# ------------------------------------------------------------------------------ imputation
def test_latent_imputer_fills_only_the_holes_with_the_conditional_mean(ppca_holes):
    data, Y = ppca_holes
    imputer = lvm.LatentImputer(lvm.PPCA(3, device="cpu"))
    filled = imputer.fit_transform(Y[:2000])
    holes = np.isnan(Y[:2000])
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~holes], Y[:2000][~holes])
    rmse = math.sqrt(np.mean((filled - data.Y[:2000])[holes] ** 2))
    mean_fill = np.where(holes, np.nanmean(Y[:2000], 0), Y[:2000])
    rmse_mean = math.sqrt(np.mean((mean_fill - data.Y[:2000])[holes] ** 2))
    print(f"\nimputation RMSE: LatentImputer(PPCA) {rmse:.4f}, column means {rmse_mean:.4f}")
    assert rmse < 0.6 * rmse_mean
    assert list(imputer.get_feature_names_out()) == [f"x{i}" for i in range(20)]


def test_sample_posterior_draws_differ_between_calls_and_repeat_with_the_seed():
    Y = _holes(lvm.datasets.make_ppca(300, 5, 2, noise=0.3, random_state=0).Y, 0.3)
    a = lvm.LatentImputer(lvm.FactorAnalysis(2, device="cpu"), sample_posterior=True,
                          random_state=0).fit(Y)
    first, second = a.transform(Y), a.transform(Y)
    assert not np.array_equal(first, second)
    b = lvm.LatentImputer(lvm.FactorAnalysis(2, device="cpu"), sample_posterior=True,
                          random_state=0).fit(Y)
    np.testing.assert_array_equal(b.transform(Y), first)


def test_latent_imputer_in_a_pipeline():
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    Y = _holes(lvm.datasets.make_ppca(300, 5, 2, noise=0.3, random_state=0).Y, 0.2)
    target = np.nan_to_num(Y[:, 0])
    pipe = make_pipeline(lvm.LatentImputer(lvm.PPCA(2, device="cpu")), LinearRegression())
    assert pipe.fit(Y, target).predict(Y).shape == (300,)
    with pytest.raises(ValueError, match="DiffusionModel does not model missing values"):
        lvm.LatentImputer(lvm.DiffusionModel()).fit(Y)
