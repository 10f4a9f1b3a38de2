"""The per-feature standardization ``lvm.compare`` and ``lvm embed`` share (``lvm._preprocess``)."""

import warnings

import numpy as np

from lvm._preprocess import feature_standardization, standardize


def test_statistics_of_the_observed_entries_and_the_log_jacobian_of_each_row():
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((50, 4)) * [1.0, 10.0, 0.1, 1.0] + 5.0
    Y[rng.random(Y.shape) < 0.2] = np.nan
    Y[:, 3] = 2.0  # constant: scale 1
    Y[7, 3] = np.nan
    mean, scale = feature_standardization(Y)
    for d in range(3):
        observed = Y[~np.isnan(Y[:, d]), d]
        assert np.isclose(mean[d], observed.mean()) and np.isclose(scale[d], observed.std())
    assert mean[3] == 2.0 and scale[3] == 1.0
    Z, log_jac = standardize(Y, mean, scale)
    np.testing.assert_array_equal(np.isnan(Z), np.isnan(Y))
    np.testing.assert_allclose(np.nanmean(Z[:, :3], 0), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.nanstd(Z[:, :3], 0), 1.0)
    for n in (0, 7, 13):  # log |dz/dy| over the features row n observes
        observed = ~np.isnan(Y[n])
        assert np.isclose(log_jac[n], -np.log(scale[observed]).sum())


def test_a_feature_with_nothing_observed_is_left_to_the_estimator_quietly():
    Y = np.array([[1.0, np.nan], [2.0, np.nan], [4.0, np.nan]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice"
        mean, scale = feature_standardization(Y)
    assert np.isnan(mean[1]) and scale[1] == 1.0
    Z, log_jac = standardize(Y, mean, scale)
    assert np.isnan(Z[:, 1]).all()
    np.testing.assert_allclose(log_jac, -np.log(scale[0]))
