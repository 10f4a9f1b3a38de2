"""The shared likelihoods: closed forms against quadrature and Monte Carlo, masks, support checks,
and the registry: a new likelihood is one class and one line, and every family that takes
``likelihood=`` can use it."""

import math

import numpy as np
import pytest
import torch

import lvm
from lvm.likelihoods import (LIKELIHOODS, BernoulliLikelihood, GaussianLikelihood, Likelihood,
                             get_likelihood)


def _belief(shape=(7, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(shape, generator=g, dtype=torch.float64)
    var = torch.rand(shape, generator=g, dtype=torch.float64) + 0.05
    return mean, var, g


def test_gaussian_closed_forms_equal_the_quadrature_of_the_base_class():
    # noise comparable to the belief's variance, so 20 quadrature nodes resolve the integrand
    lik = GaussianLikelihood(5, torch.linspace(1.0, 2.0, 5)).double()
    mean, var, g = _belief()
    y = torch.randn(mean.shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(lik.expected_log_prob(y, mean, var),
                               Likelihood.expected_log_prob(lik, y, mean, var))
    torch.testing.assert_close(lik.log_marginal(y, mean, var),
                               Likelihood.log_marginal(lik, y, mean, var), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(lik.log_prob(y, mean), Likelihood.log_prob(lik, y, mean))


def test_bernoulli_quadrature_equals_monte_carlo():
    lik = BernoulliLikelihood()
    mean, var, g = _belief()
    y = (torch.rand(mean.shape, generator=g) > 0.5).double()
    f = mean + var.sqrt() * torch.randn((200_000, *mean.shape), generator=g, dtype=torch.float64)
    entries = lik._log_prob_entries(y, f)
    mc_expected = entries.sum(-1).mean(0)
    mc_marginal = torch.logsumexp(entries, 0).sum(-1) - mean.shape[1] * math.log(f.shape[0])
    torch.testing.assert_close(lik.expected_log_prob(y, mean, var), mc_expected, atol=0.01, rtol=0)
    torch.testing.assert_close(lik.log_marginal(y, mean, var), mc_marginal, atol=0.01, rtol=0)
    torch.testing.assert_close(lik.marginal_mean(mean, var), torch.sigmoid(f).mean(0), atol=5e-3,
                               rtol=0)


@pytest.mark.parametrize("lik", [GaussianLikelihood(5, 0.3).double(), BernoulliLikelihood()],
                         ids=["gaussian", "bernoulli"])
def test_masked_entries_count_for_nothing_and_their_values_never_matter(lik):
    mean, var, g = _belief()
    y = (torch.rand(mean.shape, generator=g) > 0.5).double()
    mask = torch.rand(mean.shape, generator=g) > 0.3
    holes = torch.where(mask, y, torch.full_like(y, float("nan")))
    for fn in (lambda y: lik.log_prob(y, mean, mask), lambda y: lik.expected_log_prob(y, mean, var, mask),
               lambda y: lik.log_marginal(y, mean, var, mask)):
        torch.testing.assert_close(fn(holes), fn(y))
    per_entry = lik._log_prob_entries(y, mean)
    torch.testing.assert_close(lik.log_prob(holes, mean, mask), (per_entry * mask).sum(-1))
    # and gradients stay finite through the holes
    m = mean.clone().requires_grad_()
    lik.log_prob(holes, m, mask).sum().backward()
    assert torch.isfinite(m.grad).all()


def test_support_errors_and_registry_messages():
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\]; got values in \[-1, 2\]"):
        BernoulliLikelihood.check_support(torch.tensor([[-1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"Unknown likelihood 'gamma'; choose one of "
                                         r"\['bernoulli', 'binomial', 'gaussian', "
                                         r"'negative_binomial', 'poisson'\]"):
        get_likelihood("gamma")
    with pytest.raises(ValueError, match=r"likelihood='bernoulli' is not supported by "
                                         r"BayesianGPLVM\(inference='collapsed'\).*inference='svi'"):
        lvm.BayesianGPLVM(likelihood="bernoulli").fit(np.random.rand(20, 3))


def test_noise_floor_is_relative_to_the_data():
    Y = torch.randn(100, 4, dtype=torch.float64) * 1e-6
    lik = GaussianLikelihood.from_data(Y, noise="per_feature")
    assert lik.min_noise == pytest.approx(1e-6 * float(Y.var(0, correction=0).mean()))
    assert lik.noise.shape == (4,)


# ------------------------------------------------------------------ a new likelihood: one class
class PoissonLikelihood(Likelihood):
    """y | f ~ Poisson(exp f), for counts (the design note's example, verbatim in spirit; lvm's
    own is lvm.likelihoods.PoissonLikelihood, tested in test_counts.py)."""

    support = "non-negative integers"

    @classmethod
    def check_support(cls, Y, mask=None):
        if bool((Y < 0).any()) or bool((Y != torch.round(Y)).any()):
            raise ValueError("likelihood='poisson' needs non-negative integer counts.")

    def _log_prob_entries(self, y, f):
        return y * f - torch.exp(f) - torch.lgamma(y + 1)

    def expected_log_prob(self, y, mean, var, mask=None):  # E exp f = exp(m + v / 2)
        from lvm.likelihoods import masked_sum

        y = y if mask is None else torch.where(mask, y, 0)
        return masked_sum(y * mean - torch.exp(mean + var / 2) - torch.lgamma(y + 1), mask)

    def mean(self, f):
        return torch.exp(f)

    def inverse_mean(self, mean):
        return torch.log(mean.clamp_min(1e-3))

    def sample(self, f, generator=None):
        return torch.poisson(torch.exp(f), generator=generator)


@pytest.fixture
def poisson(monkeypatch):
    monkeypatch.setitem(LIKELIHOODS, "my_poisson", PoissonLikelihood)  # the one registry line


@pytest.fixture(scope="module")
def counts():
    g = np.random.default_rng(0)
    x = g.standard_normal((300, 1))
    rates = np.exp(0.5 * x @ g.uniform(-1, 1, (1, 6)) + 1.5)  # rates up to about 20
    return g.poisson(rates).astype(np.float64)


@pytest.mark.parametrize("make", [
    lambda: lvm.VAE(1, hidden_sizes=(), likelihood="my_poisson", max_epochs=100,
                    learning_rate=1e-2, validation_fraction=0.0, random_state=0, device="cpu"),
    lambda: lvm.BayesianGPLVM(1, inference="svi", likelihood="my_poisson", n_inducing=8,
                              max_iter=15, batch_size=64, transform_max_iter=40,
                              n_importance_samples=16, random_state=0, device="cpu"),
], ids=["VAE", "BayesianGPLVM-svi"])
def test_a_registered_likelihood_works_in_every_family_that_takes_one(poisson, counts, make):
    model = make().fit(counts)
    rate = counts.mean(0)  # each feature its own constant rate: what x must beat
    independent = float((counts * np.log(rate) - rate - np.vectorize(math.lgamma)(counts + 1))
                        .sum(1).mean())
    score = model.score(counts)
    print(f"\n{type(model).__name__} Poisson log p(y) {score:.3f} vs independent rates "
          f"{independent:.3f}")
    assert math.isfinite(score) and score > independent
    assert set(np.unique(model.sample(50, random_state=0))) <= set(range(1000))
    with pytest.raises(ValueError, match="non-negative integer counts"):
        model.score(counts - 0.5)


# ------------------------------------------------------------------ Bernoulli in the GP family
@pytest.mark.parametrize("n_train, epochs, margin", [
    (400, 40, 1.0),
    pytest.param(800, 100, 3.0, marks=pytest.mark.slow),
])
def test_svi_gplvm_with_a_bernoulli_likelihood_on_binarized_digits(n_train, epochs, margin):
    d = lvm.datasets.load_digits()
    Y = (d.Y > 7).astype(np.float64)
    Y_train, Y_test = Y[:n_train], Y[1000:1100]
    model = lvm.BayesianGPLVM(2, inference="svi", likelihood="bernoulli", n_inducing=20,
                              max_iter=epochs, learning_rate=0.03, batch_size=100,
                              transform_max_iter=20, n_importance_samples=16, random_state=0,
                              device="cpu").fit(Y_train)
    p = Y_train.mean(0).clip(1e-3, 1 - 1e-3)
    independent = float((Y_test * np.log(p) + (1 - Y_test) * np.log(1 - p)).sum(1).mean())
    score = model.score(Y_test)
    print(f"\nbinarized digits ({n_train} rows, {epochs} epochs), held-out log p(y): Bernoulli "
          f"GPLVM {score:.2f}, independent pixels {independent:.2f}")
    assert score > independent + margin
    assert not hasattr(model, "noise_variance_")
    R = model.inverse_transform(model.transform(Y_test[:5]))
    assert R.min() >= 0 and R.max() <= 1
    assert set(np.unique(model.sample(10, random_state=0))) <= {0.0, 1.0}
