"""The family contract (lvm._family): a family written in the tests against the abstract base
alone (tests/families/linear_free.py) is checked against hand computations and the exact
linear-Gaussian evidence; tests/test_common.py runs scikit-learn's checks and the shared
estimator tests on it."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

import lvm
from lvm._family import Family, FamilyEstimator
from tests.families.linear_free import LinearFree


@pytest.fixture(scope="module")
def split():
    d = lvm.datasets.make_ppca(240, 5, 2, noise=0.1, random_state=0)
    return d.Y[:200], d.Y[200:]


@pytest.fixture(scope="module")
def fitted(split):
    return LinearFree(2, device="cpu", random_state=0).fit(split[0])


def _standardized(model, Y):
    return (Y - model.location_) / model.scale_


def _parameters(model):
    """W (D, K), b (D,), s^2 and the free q(x_n) means and variances, as float64 numpy."""
    f = model.family_
    as_np = lambda t: t.detach().cpu().numpy().astype(np.float64)  # noqa: E731
    return (as_np(f.W), as_np(f.b), float(as_np(f.likelihood.noise).reshape(-1)[0]),
            as_np(f.q.mu), as_np(f.q.var))


def _hand_elbo(Z, W, b, s2, m, v):
    """Per-row closed-form ELBO of y = W x + b + N(0, s2 I), q(x) = N(m, diag v), p(x) = N(0, I),
    written out term by term."""
    D = Z.shape[1]
    resid = Z - m @ W.T - b
    expected = -0.5 * (D * math.log(2 * math.pi * s2)
                       + ((resid**2).sum(1) + (v @ (W**2).T).sum(1)) / s2)
    kl = 0.5 * (v + m**2 - 1.0 - np.log(v)).sum(1)
    return expected - kl


def _hand_posterior(Z, W, b, s2):
    """The ELBO-optimal diagonal Gaussian: the exact posterior mean, 1 / diag(precision)."""
    P = np.eye(W.shape[1]) + W.T @ W / s2
    return np.linalg.solve(P, W.T @ (Z - b).T / s2).T, np.tile(1.0 / np.diag(P), (Z.shape[0], 1))


def test_the_training_objective_is_the_hand_computed_elbo(fitted, split):
    """At the fitted parameters and at perturbed ones (off the optimum), the family's per-row
    objective is the ELBO written out by hand, to float64 rounding; train_evidence_ is its mean
    in the data's units."""
    Y = split[0]
    Z = _standardized(fitted, Y)
    shift = -Y.shape[1] * math.log(fitted.scale_)
    family = fitted.family_
    rows = torch.arange(Y.shape[0])
    for perturb in (0.0, 0.3):
        if perturb:
            gen = torch.Generator().manual_seed(1)
            with torch.no_grad():
                family.W.add_(perturb * torch.randn(family.W.shape, generator=gen,
                                                    dtype=family.W.dtype))
                family.q.mu.add_(perturb * torch.randn(family.q.mu.shape, generator=gen,
                                                       dtype=family.q.mu.dtype))
        with torch.no_grad():
            per_row, global_term = family.objective(torch.as_tensor(Z), rows, None)
        assert global_term is None
        np.testing.assert_allclose(per_row.numpy(), _hand_elbo(Z, *_parameters(fitted)),
                                   rtol=1e-12, atol=1e-10)
        if not perturb:
            assert fitted.train_evidence_ == pytest.approx(per_row.mean().item() + shift,
                                                           rel=1e-12)
    fitted.fit(Y)  # undo the perturbation for the module's other tests


def test_the_posterior_is_the_elbo_optimal_diagonal_gaussian(fitted, split):
    """q(x | y) of new rows is the maximizer of the ELBO given the decoder, and the free q(x_n)
    that training fitted for the training rows converged to it."""
    Y, Y_test = split
    W, b, s2, m, v = _parameters(fitted)
    mean, std = fitted.transform(Y_test, return_std=True)
    hand_mean, hand_var = _hand_posterior(_standardized(fitted, Y_test), W, b, s2)
    np.testing.assert_allclose(mean, hand_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(std**2, hand_var, rtol=1e-10)
    train_mean, train_var = _hand_posterior(_standardized(fitted, Y), W, b, s2)
    np.testing.assert_allclose(m, train_mean, atol=1e-4)
    np.testing.assert_allclose(v, train_var, rtol=1e-4)


def _exact_log_evidence(model, Y):
    """log p(y) of the fitted linear-Gaussian model by brute force: the Gaussian marginal
    N(b, W W^T + s2 I) of the standardized rows, plus the log-Jacobian -D log(scale_)."""
    W, b, s2, _, _ = _parameters(model)
    cov = W @ W.T + s2 * np.eye(W.shape[0])
    return (multivariate_normal(b, cov).logpdf(_standardized(model, Y))
            - Y.shape[1] * math.log(model.scale_))


@pytest.fixture(scope="module", params=["at the optimum", "off the optimum"])
def state(request, fitted, split):
    """(model, at_optimum): the fitted model, or a second fit whose W was moved off the optimum
    (its columns no longer orthogonal, so the diagonal q is not the exact posterior)."""
    if request.param == "at the optimum":
        return fitted, True
    model = LinearFree(2, device="cpu", random_state=0).fit(split[0])
    W = model.family_.W
    with torch.no_grad():  # a shear: the same span, columns no longer orthogonal (KL 0.22 nats)
        W.copy_(W @ torch.tensor([[1.0, 0.6], [0.0, 1.0]], dtype=W.dtype))
    return model, False


def _bounds(model, Y):
    """Per row: the closed-form ELBO at q(x | y), log p(y) by brute force, and their gap
    KL(q || p(x | y)) in closed form (with p(x | y) = N(mean of q, P^-1))."""
    W, b, s2, _, _ = _parameters(model)
    Z = _standardized(model, Y)
    q_mean, q_var = _hand_posterior(Z, W, b, s2)
    elbo = _hand_elbo(Z, W, b, s2, q_mean, q_var) - Y.shape[1] * math.log(model.scale_)
    P = np.eye(W.shape[1]) + W.T @ W / s2
    kl = 0.5 * (np.trace(P * q_var[0]) - W.shape[1] - np.log(q_var[0]).sum()
                - np.linalg.slogdet(P)[1])
    return elbo, _exact_log_evidence(model, Y), kl


def test_the_elbo_is_below_the_exact_evidence_by_the_posterior_kl(state, split):
    """log p(y) - ELBO(q) = KL(q || p(x | y)) >= 0 per row: the ELBO is at or below the exact
    evidence, and equal at the optimum, where the fitted W has orthogonal columns and the
    diagonal q is the exact posterior (Lucas et al., 2019). The Monte Carlo ELBO the estimator
    reports agrees with the closed form within 4 standard errors of its mean."""
    model, at_optimum = state
    _, Y_test = split
    elbo, exact, kl = _bounds(model, Y_test)
    np.testing.assert_allclose(exact - elbo, kl, rtol=1e-6, atol=1e-9)
    assert kl < 1e-6 if at_optimum else kl > 0.1
    est = model.log_evidence(Y_test, method="elbo", n_samples=500)
    se = np.sqrt(np.mean(est.standard_error**2) / len(Y_test))
    assert abs(np.mean(est.log_evidence) - np.mean(elbo)) < 4 * se + 1e-9


def test_the_importance_weighted_estimate_is_between_the_elbo_and_the_exact_evidence(
        state, split):
    """score_samples (IWAE, S=64) is in expectation between the ELBO and log p(y), whose gap
    is the closed-form KL: its mean must lie in [ELBO - 4 se, log p(y) + 4 se], se the standard
    error of the mean. At the optimum the gap is < 1e-6 and every weight is p(y) itself, so each
    row's estimate is the brute-force evidence to 1e-6; and that is PPCA's held-out evidence,
    whose maximum-likelihood model is this family's optimum (L-BFGS to tol=1e-8: 1e-4)."""
    model, at_optimum = state
    Y, Y_test = split
    est = model.log_evidence(Y_test)
    np.testing.assert_array_equal(est.log_evidence, model.score_samples(Y_test))
    elbo, exact, kl = _bounds(model, Y_test)
    se = math.sqrt(np.mean(est.standard_error**2) / len(Y_test))
    assert np.mean(elbo) - 4 * se - 1e-9 <= np.mean(est.log_evidence)
    assert np.mean(est.log_evidence) <= np.mean(exact) + 4 * se + 1e-9
    if at_optimum:
        np.testing.assert_allclose(est.log_evidence, exact, atol=1e-6)
        ppca = lvm.PPCA(2, device="cpu").fit(Y)
        assert model.score(Y_test) == pytest.approx(ppca.score(Y_test), abs=1e-4)
    else:  # a real gap, which the importance weights close in part
        assert np.mean(est.log_evidence) > np.mean(elbo) + 4 * se


# ------------------------------------------------------------------------------ the contract
def test_the_base_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        Family(lvm.likelihoods.GaussianLikelihood())
    with pytest.raises(TypeError, match="abstract"):
        FamilyEstimator()

    class NoFamily(FamilyEstimator):
        def _plan(self, Z):
            return None

    with pytest.raises(TypeError, match="_make_family"):
        NoFamily()

    given = ["objective", "log_likelihood", "decode", "decoder_sample"]
    no_posterior = type("NoPosterior", (Family,), {name: lambda *a: None for name in given})
    with pytest.raises(TypeError, match="posterior"):
        no_posterior(lvm.likelihoods.GaussianLikelihood())


class _Counting(LinearFree):
    plans = 0
    families = 0

    def _plan(self, Z):
        type(self).plans += 1
        return super()._plan(Z)

    def _make_family(self, Z):
        type(self).families += 1
        return super()._make_family(Z)


def test_a_fit_plans_once_and_a_refit_builds_a_new_family(split):
    Y, Y_test = split
    model = _Counting(2, device="cpu", random_state=0).fit(Y)
    assert (_Counting.plans, _Counting.families) == (1, 1)
    first = model.family_
    model.fit(3 * Y + 1)
    assert (_Counting.plans, _Counting.families) == (2, 2)
    assert model.family_ is not first
    again = LinearFree(2, device="cpu", random_state=0).fit(Y)
    model.fit(Y)
    np.testing.assert_array_equal(model.score_samples(Y_test), again.score_samples(Y_test))
