"""One test per bug the middle-layer review found (B1-B5), the exact evidence at K = D, and the
collapsed GPLVM's recovery at the depth of the failure. Each failed on the code before the layer."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

import lvm
from lvm.gplvm import collapsed, svi
from lvm.latents import AmortizedLatent, PointLatent


@pytest.fixture(scope="module")
def Y():
    return lvm.datasets.make_ppca(300, 5, 2, noise=0.1, random_state=1).Y


GP = dict(n_inducing=10, transform_max_iter=50, n_importance_samples=16, device="cpu")


# ----------------------------------------------------------------------------- B1
def test_b1_latents_map_rows_never_index_the_data():
    """A free q(x_n) is addressed by row ids, an encoder by the rows' data; neither indexes Y."""
    g = torch.Generator().manual_seed(0)
    y = torch.randn(6, 4, generator=g, dtype=torch.float64)
    rows = torch.tensor([5, 0, 3, 1, 4, 2])
    enc = AmortizedLatent(torch.nn.Linear(4, 4).double(), 2)
    for a, b in zip(enc(y[rows], rows), enc(y[rows], None)):
        torch.testing.assert_close(a, b)
    free = PointLatent(torch.arange(12.0).reshape(6, 2), torch.ones(6, 2))
    torch.testing.assert_close(free(None, rows)[0], free.mu[rows])


def test_b1_svi_with_an_encoder_trains_on_more_rows_than_a_batch(Y):
    amortized = lvm.BayesianGPLVM(2, inference="svi", encoder=True, batch_size=64, max_iter=15,
                                  random_state=0, **GP).fit(Y)
    free = lvm.BayesianGPLVM(2, inference="svi", batch_size=64, max_iter=15, random_state=0,
                             **GP).fit(Y)
    # An encoder paired with the wrong rows gives latents independent of their row's data. The
    # expected log-likelihood of any Gaussian whose mean does not depend on the row is at most
    # that of the data's own per-feature Gaussian, sum_d -(log(2 pi v_d) + 1) / 2 (v_d the
    # variance of feature d), and a bound is below its expected log-likelihood: a model paired
    # with the right rows must be above it.
    no_information = -0.5 * np.sum(np.log(2 * np.pi * Y.var(0)) + 1)
    print(f"\nSVI bound per point: encoder {amortized.elbo_:.3f}, free q(x_n) {free.elbo_:.3f}; "
          f"latents independent of their rows: at most {no_information:.3f}")
    assert amortized.elbo_ > no_information and free.elbo_ > no_information


# ----------------------------------------------------------------------------- B2
def test_b2_one_nan_in_an_svi_epoch_is_recovered_from(Y, monkeypatch):
    """A NaN poisons the per-point Adam of q(x_n) as well: every optimizer is restored."""
    real = svi.SVIELBO.terms
    calls = {"n": 0}

    def nan_once(self, *args, **kwargs):
        calls["n"] += 1
        per_row, kl_u = real(self, *args, **kwargs)
        return (per_row * float("nan"), kl_u) if calls["n"] == 7 else (per_row, kl_u)

    monkeypatch.setattr(svi.SVIELBO, "terms", nan_once)
    m = lvm.BayesianGPLVM(2, inference="svi", batch_size=64, max_iter=6, random_state=0,
                          **GP).fit(Y)
    assert calls["n"] > 7 and math.isfinite(m.elbo_)
    assert np.all(np.isfinite(m.latent_mean_)) and math.isfinite(m.score(Y[:20]))


# ----------------------------------------------------------------------------- B3
def test_b3_refit_transform_returns_the_new_fits_variances(Y):
    m = lvm.BayesianGPLVM(2, max_iter=40, random_state=0, **GP)
    m.fit(3.0 * Y[:, ::-1] + 1.0)
    m.fit(Y)
    _, std = m.transform(Y, return_std=True)
    np.testing.assert_allclose(std, np.sqrt(m.latent_var_), rtol=1e-12)


# ----------------------------------------------------------------------------- B4
def test_b4_partial_fit_after_a_wide_fit_continues_from_that_fit():
    rng = np.random.default_rng(0)
    A, B, C = (rng.standard_normal((n, 20)) for n in (50, 10, 40))
    m = lvm.PPCA(3, device="cpu").fit(A)
    m.fit(B)  # n_samples < n_features: the thin-SVD path
    m.partial_fit(C)
    ref = lvm.PPCA(3, device="cpu").fit(np.vstack([B, C]))
    np.testing.assert_allclose(m.get_covariance(), ref.get_covariance(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.mean_, ref.mean_, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- B5
def test_b5_score_samples_is_deterministic_without_random_state(Y):
    m = lvm.BayesianGPLVM(2, max_iter=30, **GP).fit(Y)  # random_state=None
    np.testing.assert_array_equal(m.score_samples(Y[:10]), m.score_samples(Y[:10]))
    # Row-independent: the same draws per row whatever the batch; matrix products of other sizes
    # may round differently in the last bits (seen: 1.8e-14 on one fit of a random seed).
    np.testing.assert_allclose(m.score_samples(Y[:10])[3:5], m.score_samples(Y[3:5]), rtol=1e-12)


# ----------------------------------------------------------------------------- K = D
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ppca_with_as_many_components_as_features_is_exact(seed):
    data = lvm.datasets.make_ppca(3000, 12, 4, noise=0.5, random_state=seed)
    Y_train, Y_test = data.Y[:2000], data.Y[2000:]
    m = lvm.PPCA(12, device="cpu").fit(Y_train)
    brute = multivariate_normal(m.mean_, m.get_covariance()).logpdf(Y_test)
    np.testing.assert_allclose(m.score_samples(Y_test), brute, rtol=1e-8)
    # and it is the full-covariance Gaussian of the training data
    S = np.cov(Y_train, rowvar=False, bias=True)
    np.testing.assert_allclose(m.get_covariance(), S, rtol=1e-10, atol=1e-12)


def test_held_out_evidence_over_k_peaks_at_the_true_dimension():
    data = lvm.datasets.make_ppca(3000, 12, 4, noise=0.5, random_state=0)
    Y_train, Y_test = data.Y[:2000], data.Y[2000:]
    held = [lvm.PPCA(k, device="cpu").fit(Y_train).score(Y_test) for k in range(1, 13)]
    print("\nheld-out evidence by K:", np.round(held, 4))
    assert int(np.argmax(held)) + 1 == 4


# ----------------------------------------------------------------------------- recovery depth
def test_a_failed_factorization_of_i_plus_beta_c_raises_the_noise_floor_not_the_jitter(
        Y, monkeypatch):
    real = collapsed.collapsed_terms
    calls = {"n": 0}

    def fail_once(*args):
        calls["n"] += 1
        if calls["n"] == 12:
            raise collapsed.NoiseTooSmallError("injected")
        return real(*args)

    monkeypatch.setattr(collapsed, "collapsed_terms", fail_once)
    m = lvm.BayesianGPLVM(2, max_iter=60, random_state=0, **GP).fit(Y)
    assert m.family_.jitter == pytest.approx(lvm.settings.cholesky_jitter.value(torch.float64))
    assert m.family_.likelihood.min_noise == pytest.approx(10 * 1e-6, rel=1e-6)
    assert math.isfinite(m.elbo_)


def test_numerical_error_names_what_was_tried_and_no_float64_advice_in_float64(Y, monkeypatch):
    def always(*args):
        raise collapsed.NoiseTooSmallError("injected")

    monkeypatch.setattr(collapsed, "collapsed_terms", always)
    m = lvm.BayesianGPLVM(2, max_iter=60, random_state=0, **GP)
    with pytest.raises(lvm.NumericalError, match="raised the noise floor") as err:
        m.fit(Y)
    assert "float64" not in str(err.value)
