"""The estimator: interface, determinism, ARD attributes, both inference modes, robustness, errors."""

import numpy as np
import pytest
import torch

import lvm

from .conftest import SMALL


@pytest.fixture(scope="module")
def fitted(Y):
    return lvm.BayesianGPLVM(3, **SMALL).fit(Y)


def test_fitted_attributes(fitted, Y):
    m = fitted
    assert m.n_components_ == 3 and m.n_inducing_ == 10
    assert m.latent_mean_.shape == (200, 3) and m.latent_var_.shape == (200, 3)
    assert m.inducing_points_.shape == (10, 3)
    assert m.lengthscales_.shape == (3,) and m.relevance_.max() == 1.0
    assert 1 <= m.effective_dims_ <= 3
    assert m.evidence_kind == "importance-weighted estimate"
    assert np.isfinite(m.elbo_) and m.history_[-1]["train"] == pytest.approx(m.elbo_, abs=1e-6)
    assert np.shape(m.noise_variance_) == (Y.shape[1],) and np.all(m.noise_variance_ > 0)
    np.testing.assert_allclose(m.mean_, Y.mean(0))


def test_outputs_and_shapes(fitted, Y):
    X, S = fitted.transform(Y[:7], return_std=True)
    assert X.shape == S.shape == (7, 3) and (S > 0).all()
    assert fitted.inverse_transform(X).shape == (7, 5)
    assert fitted.score_samples(Y[:7]).shape == (7,)
    assert fitted.sample(4, random_state=0).shape == (4, 5)
    Xt = fitted.transform(torch.as_tensor(Y[:7]))
    assert isinstance(Xt, torch.Tensor)
    np.testing.assert_allclose(Xt.numpy(), X)


def test_transform_of_training_rows_is_near_their_q_x(fitted, Y):
    X = fitted.transform(Y[:20])
    assert np.abs(X - fitted.latent_mean_[:20]).max() < 0.05


def test_reconstruction_beats_mean(fitted, Y):
    R = fitted.inverse_transform(fitted.transform(Y))
    assert ((Y - R) ** 2).mean() < 0.1 * ((Y - Y.mean(0)) ** 2).mean()


def test_transform_relevant_dims(fitted, Y):
    X = fitted.transform(Y[:5])
    top = fitted.transform(Y[:5], dims="relevant")
    np.testing.assert_allclose(top, X[:, fitted.relevant_dims_[:2]])
    assert fitted.transform(Y[:5], dims=1).shape == (5, 1)
    with pytest.raises(ValueError, match="dims must be None, 'relevant' or an int in"):
        fitted.transform(Y[:5], dims="all")


def test_deterministic_for_fixed_random_state(fitted, Y):
    again = lvm.BayesianGPLVM(3, **SMALL).fit(Y)
    np.testing.assert_array_equal(again.latent_mean_, fitted.latent_mean_)
    np.testing.assert_array_equal(again.score_samples(Y[:5]), fitted.score_samples(Y[:5]))


def test_score_is_at_or_above_the_bound_of_each_row_within_the_monte_carlo_error(fitted, Y):
    # score_samples is the importance-weighted estimate, whose expectation is at or above the
    # ELBO of the same row with the same proposal q(x_n) (Jensen), equal when q(x_n) is the exact
    # posterior. Both are Monte Carlo estimates: the mean difference may fall below 0 by its
    # standard error only. (Here it is -0.007 +- 0.009 nats: the 60-iteration q(x_n) are close to
    # the exact posteriors. elbo_, the collapsed bound on log p(Y) / N, is not per row: it also
    # pays KL(q(u) || p(u)) and is 0.5 nats lower.)
    elbo = fitted.log_evidence(Y, "elbo", n_samples=64).log_evidence
    iwae = fitted.log_evidence(Y, "iwae", n_samples=64).log_evidence
    diff = iwae - elbo
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    print(f"\nmean IWAE - ELBO per row: {diff.mean():+.4f} +- {se:.4f} nats")
    assert diff.mean() > -3 * se


@pytest.mark.slow  # 5 s: a Q = 5 fit to its ARD optimum
def test_ard_switches_off_unused_dims():
    # A noisy one-dimensional curve in five dims, fitted with three latent dims.
    rng = np.random.RandomState(0)
    x = rng.randn(300)
    Y = np.c_[x, 0.5 * x**2, np.tanh(2 * x), 0.2 * x**3, np.sin(x)] + 0.05 * rng.randn(300, 5)
    Y = (Y - Y.mean(0)) / Y.std(0)
    m = lvm.BayesianGPLVM(3, n_inducing=15, max_iter=1000, device="cpu", random_state=0).fit(Y)
    print("relevance", np.round(m.relevance_, 4), "effective", m.effective_dims_)
    assert m.effective_dims_ == 1


def test_encoder_transform_is_one_forward_pass(Y):
    m = lvm.BayesianGPLVM(2, encoder=True, **SMALL).fit(Y)
    assert not hasattr(m, "latent_mean_")
    X = m.transform(Y[:5])
    assert X.shape == (5, 2) and np.isfinite(m.score(Y[:20]))


@pytest.mark.parametrize("kernel", ["rbf", "matern"])
def test_svi_mode(Y, kernel):
    m = lvm.BayesianGPLVM(2, inference="svi", kernel=kernel, batch_size=50,
                          **{**SMALL, "max_iter": 30}).fit(Y)
    assert np.isfinite(m.elbo_) and len(m.history_) >= 1
    assert m.transform(Y[:4]).shape == (4, 2) and np.isfinite(m.score(Y[:10]))


def test_gpytorch_kernel_instance(Y):
    import gpytorch

    k = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel(ard_num_dims=2))
    m = lvm.BayesianGPLVM(2, kernel=k, **SMALL).fit(Y)
    assert m.lengthscales_.shape == (2,)


def test_recovers_from_a_failed_cholesky(monkeypatch, Y):
    """A NotPSDError mid-fit restores the last good state, raises the jitter, and the fit goes on."""
    from linear_operator.utils.errors import NotPSDError

    import lvm.gplvm.collapsed as collapsed

    real = collapsed.psd_safe_cholesky
    calls = {"n": 0}

    def flaky(A, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 30:
            raise NotPSDError("injected failure")
        return real(A, *args, **kwargs)

    monkeypatch.setattr(collapsed, "psd_safe_cholesky", flaky)
    m = lvm.BayesianGPLVM(2, **SMALL).fit(Y)
    assert m.family_.jitter == pytest.approx(1e-5) and np.isfinite(m.elbo_)


def test_nan_objective_restores_state(monkeypatch, Y):
    import lvm.gplvm.collapsed as collapsed

    real = collapsed.collapsed_terms
    calls = {"n": 0}

    def nan_once(*args):
        calls["n"] += 1
        out = real(*args)
        return (out[0] * float("nan"),) + out[1:] if calls["n"] == 25 else out

    monkeypatch.setattr(collapsed, "collapsed_terms", nan_once)
    m = lvm.BayesianGPLVM(2, **SMALL).fit(Y)
    assert np.isfinite(m.elbo_)


def test_auto_tol_has_a_floor_of_30_nats_of_the_whole_bound_in_the_shared_stage():
    """tol="auto" (L-BFGS) counts a rise of the whole bound under 30 nats over the plateau
    rule's window as a plateau in the shared-noise stage; not with a tol given, nor in a
    one-stage fit (the per-feature stage keeps it for a map only: BayesianGPLVM._fit)."""
    from lvm.gplvm.model import training_plan

    def floor(tol="auto", first_stage=True):
        return training_plan("collapsed", "auto", None, 1000, tol, 256, first_stage, 300).tol_floor

    assert floor() == pytest.approx(30 / 300)
    assert floor(first_stage=False) == 0.0 and floor(tol=1e-3) == 0.0


def test_lbfgs_reuses_its_last_evaluation_with_the_same_values(monkeypatch, Y):
    """Each epoch's first evaluation (where the last line search ended) and its recorded bound
    are read back from the closure's last evaluation: the same history, fewer evaluations."""
    import lvm._gradient as gradient
    import lvm.gplvm.collapsed as collapsed

    real, calls = collapsed.collapsed_terms, {"n": 0}

    def counted(*args):
        calls["n"] += 1
        return real(*args)

    monkeypatch.setattr(collapsed, "collapsed_terms", counted)
    runs = {}
    for reuse in (False, True):
        monkeypatch.setattr(gradient, "_REUSE_LBFGS_EVALUATIONS", reuse)
        calls["n"] = 0
        m = lvm.BayesianGPLVM(2, **{**SMALL, "tol": None}).fit(Y)
        runs[reuse] = calls["n"], [r["train"] for r in m.history_], m.elbo_
    (n_off, h_off, e_off), (n_on, h_on, e_on) = runs[False], runs[True]
    assert np.allclose(h_on, h_off, rtol=0, atol=1e-12) and e_on == e_off
    assert n_on <= n_off - 2 * len(h_on) + 2  # two evaluations fewer per epoch (a miss costs one)
    assert h_on[-1] == pytest.approx(e_on, abs=1e-12)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(kernel="matern"), "has no closed-form psi-statistics, which inference='collapsed'"),
        (dict(inference="svi", optimizer="lbfgs"), "optimizer='lbfgs' needs a deterministic"),
        (dict(kernel="cosine"), "The 'kernel' parameter of BayesianGPLVM must be"),
        (dict(inference="exact"), "The 'inference' parameter of BayesianGPLVM must be"),
        (dict(n_inducing=0), "The 'n_inducing' parameter of BayesianGPLVM must be"),
        (dict(n_components=9), r"n_components=9 .*5 feature"),
    ],
)
def test_bad_hyperparameters(Y, params, match):
    with pytest.raises(ValueError, match=match):
        lvm.BayesianGPLVM(**{**dict(n_components=2, device="cpu"), **params}).fit(Y)


def test_bad_input(fitted, Y):
    with pytest.raises(ValueError, match="X has 4 features, but BayesianGPLVM is expecting 5"):
        fitted.transform(Y[:, :4])
    # NaN marks a missing entry; a row with nothing observed is an error.
    with pytest.raises(ValueError, match="no observed value"):
        fitted.score_samples(np.full((2, 5), np.nan))
    with pytest.raises(ValueError, match="infinity"):
        fitted.score_samples(np.full((2, 5), np.inf))
    with pytest.raises(ValueError, match="X has 2 columns, but BayesianGPLVM has 3 latent"):
        fitted.inverse_transform(torch.zeros(2, 2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("inference", ["collapsed", "svi"])
def test_cuda(Y, inference):
    m = lvm.BayesianGPLVM(2, inference=inference, **{**SMALL, "device": "cuda"}).fit(Y)
    assert m.family_.posterior_model.chol.is_cuda
    Xt = m.transform(torch.as_tensor(Y[:5], device="cuda"))
    assert Xt.is_cuda and np.isfinite(m.score(Y[:5]))


def test_transform_of_training_rows_is_their_fitted_q_x(fitted, Y):
    np.testing.assert_allclose(fitted.transform(Y), fitted.latent_mean_)
    _, std = fitted.transform(Y[:5], return_std=True)
    np.testing.assert_allclose(std, np.sqrt(fitted.latent_var_[:5]))
    # a row not seen in training is fitted with the model frozen (and moves off its start)
    new = Y[:3] + 0.1
    assert not np.allclose(fitted.transform(new), fitted.latent_mean_[:3])


@pytest.mark.slow  # 3.6 s: the default fit and a 10x longer one
def test_default_tol_stops_on_the_plateau_at_the_long_fits_evidence(Y):
    """tol="auto" (L-BFGS: 1e-3 of the bound over 50 iterations) ends both stages of the
    per-feature fit well inside max_iter, at the bound a three times longer run reaches."""
    Y = Y[:120]
    short = lvm.BayesianGPLVM(2, n_inducing=10, random_state=0).fit(Y)
    long = lvm.BayesianGPLVM(2, n_inducing=10, max_iter=3 * short.n_iter_, tol=None,
                             random_state=0).fit(Y)
    print(f"tol='auto': {short.n_iter_} iterations, bound {short.elbo_:.4f}; "
          f"{long.n_iter_} iterations: {long.elbo_:.4f}")
    assert short.converged_ and short.n_iter_ <= short.max_iter // 2
    assert short.elbo_ > long.elbo_ - 0.05
