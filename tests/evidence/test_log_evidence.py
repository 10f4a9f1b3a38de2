"""One evidence contract: ``log_evidence`` of every estimator has one signature and one result
type, its default is ``score_samples``, and its methods agree with what the math says."""

import inspect
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

import lvm
from lvm.evidence import KINDS, EvidenceEstimate

#: Each estimator at a tiny size (the checks here are about the contract, not the fit).
TINY = {
    lvm.PPCA: {},
    lvm.FactorAnalysis: {},
    lvm.VAE: {"hidden_sizes": (8,), "max_epochs": 2, "n_importance_samples": 16},
    lvm.BayesianGPLVM: {"n_inducing": 6, "max_iter": 6, "n_importance_samples": 16,
                        "transform_max_iter": 10},
    lvm.DiffusionModel: {"width": 8, "depth": 1, "max_epochs": 2, "n_eval_draws": 8},
}
DEFAULT = {lvm.PPCA: "exact", lvm.FactorAnalysis: "exact", lvm.VAE: "iwae",
           lvm.BayesianGPLVM: "iwae", lvm.DiffusionModel: "bound"}


@pytest.fixture(scope="module")
def data():
    Y = lvm.datasets.make_ppca(80, 4, 2, noise=0.2, random_state=0).Y
    return Y[:60], Y[60:]


@pytest.fixture(scope="module")
def fitted(data):
    Y, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return {cls: cls(**kw, random_state=0).fit(Y) for cls, kw in TINY.items()}


def test_one_signature_on_every_estimator():
    signatures = {cls.__name__: inspect.signature(cls.log_evidence) for cls in TINY}
    assert len(set(signatures.values())) == 1, signatures
    assert list(signatures["PPCA"].parameters) == ["self", "Y", "method", "n_samples",
                                                   "random_state", "options"]


@pytest.mark.parametrize("cls", list(TINY), ids=lambda c: c.__name__)
def test_one_result_type_whose_default_is_score_samples(cls, fitted, data):
    model, (_, Y) = fitted[cls], data
    est = model.log_evidence(Y)
    assert type(est) is EvidenceEstimate and est.kind in KINDS and est.method == DEFAULT[cls]
    assert est.log_evidence.shape == est.standard_error.shape == (len(Y),)
    np.testing.assert_array_equal(est.log_evidence, model.score_samples(Y))
    if est.kind == "exact":
        assert np.all(est.standard_error == 0) and est.effective_sample_size is None
    else:
        assert np.all(est.standard_error > 0)
    # a tensor in gives tensors out
    T = torch.as_tensor(Y)
    est_t = model.log_evidence(T)
    assert isinstance(est_t.log_evidence, torch.Tensor)
    assert isinstance(est_t.standard_error, torch.Tensor)


@pytest.mark.parametrize("cls", list(TINY), ids=lambda c: c.__name__)
def test_unknown_method_and_option_are_named(cls, fitted, data):
    model, (_, Y) = fitted[cls], data
    available = list(type(model)._evidence_methods)
    with pytest.raises(ValueError, match=rf"Unknown method 'naive'; choose one of "
                                         rf"\[{', '.join(map(repr, available))}\] \(the evidence "
                                         rf"methods of {cls.__name__}\)"):
        model.log_evidence(Y, method="naive")
    with pytest.raises(TypeError, match=rf"{cls.__name__}.log_evidence\(method="
                                        rf"'{DEFAULT[cls]}'\) got unknown option\(s\) \['tol'\]"):
        model.log_evidence(Y, tol=1.0)
    with pytest.raises(ValueError, match="n_samples must be a positive integer, got 0"):
        model.log_evidence(Y, n_samples=0)


@pytest.mark.parametrize("cls", [lvm.PPCA, lvm.FactorAnalysis], ids=lambda c: c.__name__)
def test_exact_is_the_gaussian_density_at_the_fitted_parameters(cls, fitted, data):
    model, (_, Y) = fitted[cls], data
    brute = multivariate_normal(model.mean_, model.get_covariance()).logpdf(Y)
    np.testing.assert_allclose(model.log_evidence(Y, "exact").log_evidence, brute,
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cls", [lvm.VAE, lvm.BayesianGPLVM], ids=lambda c: c.__name__)
def test_iwae_is_at_least_the_elbo_within_the_monte_carlo_error(cls, fitted, data):
    """With the same draws, log mean_s w_s >= mean_s log w_s (Jensen); the ELBO's KL is in closed
    form instead of the draws' mean, so the two differ by Monte Carlo noise as well: the mean gap
    may fall below zero by no more than three standard errors of the difference (taken as
    independent, which overstates it: both use the same draws)."""
    model, (_, Y) = fitted[cls], data
    iwae = model.log_evidence(Y, "iwae", n_samples=64, random_state=0)
    elbo = model.log_evidence(Y, "elbo", n_samples=64, random_state=0)
    assert (iwae.kind, elbo.kind) == ("estimate", "bound")
    gap = float(np.mean(iwae.log_evidence - elbo.log_evidence))
    se = math.sqrt(float(np.sum(iwae.standard_error ** 2 + elbo.standard_error ** 2))) / len(Y)
    assert gap >= -3 * se, (gap, se)
    assert np.all((iwae.effective_sample_size >= 1) & (iwae.effective_sample_size <= 64 + 1e-6))


def test_diffusion_bound_is_score_samples(fitted, data):
    model, (_, Y) = fitted[lvm.DiffusionModel], data
    bound = model.log_evidence(Y, "bound")
    np.testing.assert_array_equal(bound.log_evidence, model.score_samples(Y))
    assert bound.kind == "bound" and bound.effective_sample_size is None


@pytest.mark.parametrize("cls", [lvm.PPCA, lvm.VAE], ids=lambda c: c.__name__)
def test_rows_with_missing_entries_get_their_own_log_jacobian(cls, fitted, data):
    """The evidence of a partly observed row is of its observed entries: in the data's units it
    takes -(observed entries) log(scale_), in log_evidence as in score_samples."""
    model, (_, Y) = fitted[cls], data
    Y = Y.copy()
    Y[0, 1] = Y[3, 0] = np.nan
    np.testing.assert_array_equal(model.log_evidence(Y).log_evidence, model.score_samples(Y))
