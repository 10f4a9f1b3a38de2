"""``lvm.datasets.make_counts``: seeded integer draws whose moments are the documented model's."""

import math

import numpy as np
import pytest

from lvm.datasets import make_counts


def test_shapes_integers_and_seed():
    data = make_counts(200, 7, 3, random_state=0)
    assert data.Y.shape == (200, 7) and data.X.shape == (200, 3) and data.W.shape == (7, 3)
    assert data.bias.shape == (7,) and data.total_count is None and data.likelihood == "poisson"
    assert (data.Y >= 0).all() and (data.Y == np.round(data.Y)).all()
    np.testing.assert_allclose(np.linalg.norm(data.W, axis=0), 0.7)
    again = make_counts(200, 7, 3, random_state=0)
    np.testing.assert_array_equal(data.Y, again.Y)
    assert not np.array_equal(data.Y, make_counts(200, 7, 3, random_state=1).Y)


@pytest.mark.parametrize("likelihood", ["poisson", "negative_binomial"])
def test_the_means_are_the_models(likelihood):
    data = make_counts(20_000, 5, 2, likelihood, scale=0.5, total_count=3.0, random_state=0)
    mean = np.exp(data.bias + 0.5 * (data.W ** 2).sum(1))  # E exp(f), f ~ N(b, W W^T)
    se = data.Y.std(0) / math.sqrt(len(data.Y))
    assert (np.abs(data.Y.mean(0) - mean) < 4 * se).all()


@pytest.mark.parametrize("likelihood, excess", [("poisson", 0.0), ("negative_binomial", 1 / 3)])
def test_without_latents_the_variance_is_the_likelihoods(likelihood, excess):
    data = make_counts(40_000, 3, 1, likelihood, scale=0.0, total_count=3.0, random_state=0)
    mu = np.exp(data.bias)  # Var y = mu + mu^2 / r, r = 3 (and r = infinity for the Poisson)
    np.testing.assert_allclose(data.Y.var(0), mu + excess * mu ** 2, rtol=0.06)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="likelihood must be 'poisson' or 'negative_binomial'"):
        make_counts(10, 3, 1, "gaussian")
    with pytest.raises(ValueError, match="n_components=4 must be at most n_features=3"):
        make_counts(10, 3, 4)
    with pytest.raises(ValueError, match="rate must be a positive number, got 0"):
        make_counts(10, 3, 1, rate=0)
