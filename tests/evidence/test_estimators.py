"""The Monte Carlo evidence estimators over any (posterior, likelihood) pair, against a linear-Gaussian
model whose evidence, posterior and ELBO are known in closed form."""

import math

import numpy as np
import pytest
import torch

from lvm.evidence import (ESTIMATORS, estimate_log_evidence, linear_gaussian_posterior,
                          low_rank_gaussian_log_prob)
from lvm.latents import kl_standard

D, K = 6, 2


@pytest.fixture(scope="module")
def model():
    g = torch.Generator().manual_seed(0)
    # Orthogonal columns and isotropic noise: the exact posterior is diagonal, as q is.
    W = torch.linalg.qr(torch.randn(D, K, generator=g, dtype=torch.float64))[0] * \
        torch.tensor([2.0, 0.7], dtype=torch.float64)
    mu = torch.randn(D, generator=g, dtype=torch.float64)
    noise = torch.full((D,), 0.3, dtype=torch.float64)
    x = torch.randn(200, K, generator=g, dtype=torch.float64)
    Y = x @ W.T + mu + noise.sqrt() * torch.randn(200, D, generator=g, dtype=torch.float64)

    def log_likelihood(y, x):
        f = x @ W.T + mu
        return -0.5 * (((y - f) ** 2 / noise).sum(-1) + torch.log(2 * math.pi * noise).sum())

    def exact_posterior(y):
        m, s = linear_gaussian_posterior(y, mu, W, noise)
        return m, (s * s).expand_as(m)

    exact = low_rank_gaussian_log_prob(Y, mu, W, noise)
    return Y, log_likelihood, exact_posterior, exact


def _estimate(method, model, S=64, seed=0, posterior=None, **kw):
    Y, ll, post, _ = model
    return estimate_log_evidence(method, Y, posterior or post, ll, n_samples=S, n_components=K,
                                 seed=seed, with_ess=True, **kw)


def test_with_the_exact_posterior_every_estimator_is_exact_per_row(model):
    """q = p(x | y) makes every importance weight equal p(y): IWAE is exact with any S, the ESS is
    S, and the ELBO is exact up to its Monte Carlo average of log p(y | x)."""
    *_, exact = model
    iwae = _estimate("iwae", model, S=4)
    torch.testing.assert_close(iwae.log_evidence, exact, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(iwae.effective_sample_size, torch.full_like(exact, 4.0))
    elbo = _estimate("elbo", model, S=4000)
    assert float((elbo.log_evidence - exact).abs().mean()) < 0.05


def test_bounds_are_ordered_and_rise_with_s_under_a_poor_posterior(model):
    Y, ll, post, exact = model

    def poor(y):  # right mean, variance four times too wide
        m, v = post(y)
        return m, 4.0 * v

    elbo = _estimate("elbo", model, S=256, posterior=poor).log_evidence.mean()
    iwae10 = _estimate("iwae", model, S=10, posterior=poor).log_evidence.mean()
    gap = _estimate("iwae", model, S=1000, posterior=poor).log_evidence - exact
    iwae1000 = float((exact + gap).mean())
    prior = _estimate("prior", model, S=1000).log_evidence.mean()
    print(f"\nELBO {elbo:.4f} <= IWAE(10) {iwae10:.4f} <= IWAE(1000) {iwae1000:.4f} <= exact "
          f"{exact.mean():.4f}; prior MC(1000) {prior:.4f}")
    assert elbo < iwae10 < iwae1000
    # a stochastic lower bound: not above the exact evidence beyond its Monte Carlo error
    assert float(gap.mean()) <= 3 * float(gap.std()) / math.sqrt(gap.shape[0])
    assert prior < iwae1000


def test_elbo_equals_its_closed_form(model):
    """For a Gaussian q the ELBO is E_q log p(y|x) - KL, with E_q log p(y|x) in closed form."""
    Y, ll, post, _ = model

    def q(y):  # any Gaussian q
        m, v = post(y)
        return m + 0.3, 0.5 * v

    m, v = q(Y)
    W, mu, noise = _params(model)
    f = m @ W.T + mu
    expected = -0.5 * ((((Y - f) ** 2 + (v @ (W * W).T)) / noise).sum(-1)
                       + torch.log(2 * math.pi * noise).sum())
    closed = expected - kl_standard(m, v)
    mc = _estimate("elbo", model, S=20000, posterior=q).log_evidence
    assert float((mc - closed).abs().max()) < 0.1
    assert float((mc - closed).mean().abs()) < 0.01


def _params(model):
    # recover W, mu, noise from the closures' cells (the fixture keeps them private)
    ll = model[1]
    cells = {name: c.cell_contents for name, c in zip(ll.__code__.co_freevars, ll.__closure__)}
    return cells["W"], cells["mu"], cells["noise"]


def test_row_keyed_draws_make_estimates_independent_of_batch_order_and_chunks(model):
    Y, ll, post, _ = model
    full = _estimate("iwae", model, S=32).log_evidence
    perm = torch.randperm(Y.shape[0], generator=torch.Generator().manual_seed(1))
    permuted = estimate_log_evidence("iwae", Y[perm], post, ll, n_samples=32, n_components=K,
                                     seed=0).log_evidence
    torch.testing.assert_close(permuted, full[perm])
    chunked = _estimate("iwae", model, S=32, max_elements=32 * 7 * D).log_evidence
    torch.testing.assert_close(chunked, full)
    other_seed = _estimate("iwae", model, S=32, seed=1).log_evidence
    assert not torch.equal(other_seed, full)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match=r"Unknown method 'naive'; choose one of \['elbo', 'iwae', "
                                         r"'prior'\]"):
        estimate_log_evidence("naive", torch.zeros(2, 2), None, None, n_samples=1,
                              n_components=1, seed=0)
    assert set(ESTIMATORS) == {"elbo", "iwae", "prior"}
