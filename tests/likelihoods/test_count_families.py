"""The count likelihoods in every family that takes a likelihood: the VAE (a linear decoder is
probabilistic GLM-PCA) and the Bayesian GPLVM with SVI; the collapsed bound refuses them."""

import math
import pickle
import warnings

import numpy as np
import pytest

import lvm

LIKELIHOODS = ["poisson", "negative_binomial", "binomial(n=40)"]


@pytest.fixture(scope="module")
def counts():
    data = lvm.datasets.make_counts(160, 6, 1, "negative_binomial", scale=1.0, rate=5.0,
                                    total_count=4.0, random_state=0)
    return np.minimum(data.Y, 40)


def _independent_poisson(Y):
    rate = Y.mean(0)
    return float((Y * np.log(rate) - rate - np.vectorize(math.lgamma)(Y + 1)).sum(1).mean())


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("make", [
    lambda lik: lvm.VAE(1, hidden_sizes=(), likelihood=lik, max_epochs=40, learning_rate=2e-2,
                        batch_size=64, validation_fraction=0.0, n_importance_samples=32,
                        random_state=0, device="cpu"),
    lambda lik: lvm.BayesianGPLVM(1, inference="svi", likelihood=lik, n_inducing=6, max_iter=8,
                                  batch_size=80, transform_max_iter=10, n_importance_samples=8,
                                  random_state=0, device="cpu"),
], ids=["VAE-linear", "BayesianGPLVM-svi"])
def test_count_likelihoods_in_every_family(counts, likelihood, make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few epochs: not converged, on purpose
        model = make(likelihood).fit(counts)
    scores = model.score_samples(counts)
    print(f"\n{type(model).__name__} {likelihood}: log P(y) {scores.mean():.3f} per row, "
          f"independent Poisson rates {_independent_poisson(counts):.3f}")
    assert np.isfinite(scores).all() and (scores < 0).all()  # log-probabilities of counts
    assert scores.mean() > _independent_poisson(counts)
    draws = model.sample(20, random_state=0)
    assert (draws >= 0).all() and (draws == np.round(draws)).all()
    if likelihood.startswith("binomial"):
        assert draws.max() <= 40
    assert pickle.loads(pickle.dumps(model)).score(counts[:5]) == pytest.approx(
        model.score(counts[:5]))
    with pytest.raises(ValueError, match=f"likelihood='{likelihood}' needs non-negative "
                                         "integer counts".replace("(", r"\(").replace(")", r"\)")):
        model.score(counts[:5] + 0.5)


def test_the_collapsed_bound_refuses_count_likelihoods():
    with pytest.raises(ValueError, match=r"likelihood='binomial\(n=16\)' is not supported by "
                                         r"BayesianGPLVM\(inference='collapsed'\).*"
                                         r"Use inference='svi'"):
        lvm.BayesianGPLVM(likelihood="binomial(n=16)").fit(np.ones((20, 3)))
