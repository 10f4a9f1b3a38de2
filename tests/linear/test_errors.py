"""Bad input gets a clear error that names the problem."""

import numpy as np
import pytest
import torch

import lvm

ESTIMATORS = [lvm.PPCA, lvm.FactorAnalysis]


@pytest.fixture(params=ESTIMATORS, ids=lambda c: c.__name__)
def Est(request):
    return request.param


def good():
    return np.random.default_rng(0).standard_normal((20, 4))


def test_infinity_is_an_error_and_nan_a_missing_value(Est):
    Y = good()
    Y[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        Est(2, device="cpu").fit(Y)
    Y[3, 1] = np.nan  # missing: the evidence of the observed entries (tests/linear/test_missing_values.py)
    assert np.isfinite(Est(2, device="cpu").fit(Y).score(Y))


def test_infinity_in_tensor(Est):
    Y = torch.tensor(good())
    Y[0, 0] = float("inf")
    with pytest.raises(ValueError, match="Input Y contains infinity"):
        Est(2, device="cpu").fit(Y)


def test_one_dimensional(Est):
    with pytest.raises(ValueError, match="Expected 2D|2-D"):
        Est(1, device="cpu").fit(np.arange(10.0))


def test_zero_samples(Est):
    with pytest.raises(ValueError, match="0 sample"):
        Est(1, device="cpu").fit(np.empty((0, 3)))


def test_single_sample(Est):
    with pytest.raises(ValueError, match="1 sample"):
        Est(1, device="cpu").fit(np.ones((1, 3)))


def test_too_many_components(Est):
    with pytest.raises(ValueError, match="n_components=5 .* 4 feature"):
        Est(5, device="cpu").fit(good())


def test_wrong_feature_count_at_transform(Est):
    model = Est(2, device="cpu").fit(good())
    with pytest.raises(ValueError, match="3 features, but .* expecting 4 features"):
        model.transform(np.ones((2, 3)))
    with pytest.raises(ValueError, match="3 columns, but .* 2 latent"):
        model.inverse_transform(np.ones((2, 3)))


def test_strings(Est):
    with pytest.raises(ValueError, match="strings|string to float"):
        Est(1, device="cpu").fit([["a", "b"], ["c", "d"]])


@pytest.mark.parametrize("k", [-1, 0, 1.5, "two"])
def test_bad_n_components(Est, k):
    with pytest.raises((ValueError, TypeError), match="n_components"):
        Est(k, device="cpu").fit(good())


def test_bad_device(Est):
    with pytest.raises(ValueError, match="device"):
        Est(2, device="tpu").fit(good())


def test_unfitted(Est):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        Est(2).transform(good())


def test_fa_bad_tol():
    with pytest.raises(ValueError, match="'tol' parameter of FactorAnalysis"):
        lvm.FactorAnalysis(2, tol=-1.0).fit(good())


def test_sample_count(Est):
    model = Est(2, device="cpu").fit(good())
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        model.sample(0)


def test_reversed_and_strided_views_are_accepted(Est):
    Y = good()
    a = Est(2, device="cpu").fit(Y[::-1])
    b = Est(2, device="cpu").fit(np.ascontiguousarray(Y[::-1]))
    np.testing.assert_allclose(a.transform(Y[::-2]), b.transform(Y[::-2].copy()))
