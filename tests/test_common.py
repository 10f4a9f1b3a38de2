"""What every estimator owes, tested once over all of them: scikit-learn's own estimator checks,
units (scale and shift equivariance), the fitted state after an interruption or an error, finite
numbers on small awkward data, and dtypes."""

import math

import numpy as np
import pytest
import sklearn.base
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import lvm
from tests.families.linear_free import LinearFree


def _tiny_gplvm(**kw):
    return lvm.BayesianGPLVM(n_components=1, n_inducing=5, max_iter=10, transform_max_iter=20,
                             n_importance_samples=5, device="cpu", random_state=0, **kw)


#: The diffusion model in float64 for scikit-learn's checks: its subset and sample-order
#: invariance checks compare a row's transform and score_samples across batches to 1e-7, one
#: float32 rounding, and in float32 the probability-flow integration carries the batch-dependent
#: rounding of the network's matrix products to ~1.2e-7 (the checks failed on most runs and
#: passed on some). In float64 rows are independent to 1e-12 (tests/diffusion); the default
#: float32 is checked below, to the tolerance its rounding allows, with its dtype preservation,
#: which ``dtype="float64"`` gives up by design.
DIFFUSION_TINY = lvm.DiffusionModel(width=8, depth=1, max_epochs=3, n_eval_draws=4,
                                    sampling_steps=5, solver_options={"n_steps": 4},
                                    device="cpu", dtype="float64")

#: Small configurations of every estimator, for scikit-learn's checks.
CHECKED = [
    lvm.PPCA(n_components=1, device="cpu"),
    lvm.FactorAnalysis(n_components=1, device="cpu"),
    lvm.VAE(n_components=1, hidden_sizes=(8,), max_epochs=5, n_importance_samples=16,
            device="cpu"),
    lvm.VAE(n_components=1, hidden_sizes=(8,), max_epochs=5, n_importance_samples=16,
            device="cpu", noise="per_feature", validation_fraction=0.0),
    _tiny_gplvm(),
    _tiny_gplvm(inference="svi", batch_size=16),
    lvm.LatentImputer(lvm.PPCA(n_components=1, device="cpu")),
    DIFFUSION_TINY,
    LinearFree(n_components=1, device="cpu"),  # a family defined in the tests (issue 20)
]


#: Known exceptions, each with its reason (never skipped silently); each fails on every run.
EXPECTED_FAILURES = {
    "check_transformer_preserve_dtypes": (
        "dtype='float64' fixes the outputs' dtype too (README: 'unless dtype= fixes it'); the "
        "default float32 model's dtype preservation is tested in "
        "test_diffusion_rows_are_independent_in_float32_to_its_rounding."),
}


@parametrize_with_checks(CHECKED, expected_failed_checks=lambda est: (
    EXPECTED_FAILURES if est is DIFFUSION_TINY else {}))
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ------------------------------------------------------------------------------ fast factories
def _factories():
    return {
        "PPCA": lambda seed=0: lvm.PPCA(2, device="cpu", random_state=seed),
        "FactorAnalysis": lambda seed=0: lvm.FactorAnalysis(2, device="cpu", random_state=seed),
        "VAE": lambda seed=0: lvm.VAE(2, hidden_sizes=(16,), max_epochs=8, batch_size=64,
                                      n_importance_samples=64, device="cpu", random_state=seed),
        "BayesianGPLVM": lambda seed=0: lvm.BayesianGPLVM(
            2, n_inducing=10, max_iter=60, transform_max_iter=60, n_importance_samples=32,
            device="cpu", random_state=seed),
        "BayesianGPLVM-svi": lambda seed=0: lvm.BayesianGPLVM(
            2, inference="svi", n_inducing=10, max_iter=5, batch_size=64, transform_max_iter=60,
            n_importance_samples=32, device="cpu", random_state=seed),
        "LinearFree": lambda seed=0: LinearFree(2, max_epochs=5, device="cpu", random_state=seed),
    }


FACTORIES = _factories()
EXACT = {"PPCA", "FactorAnalysis"}


@pytest.fixture(scope="module")
def data():
    d = lvm.datasets.make_ppca(240, 5, 2, noise=0.1, random_state=0)
    return d.Y[:200], d.Y[200:]


# ------------------------------------------------------------------------------ units
@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("c", [1e-8, 1.0, 1e8])
def test_scale_and_shift_give_the_same_model_and_a_shifted_score(name, c, data):
    """Fitting c Y + b gives the same embedding and a held-out score shifted by -D log c."""
    Y, Y_test = data
    D = Y.shape[1]
    b = c * 1e3 * np.arange(1, D + 1)  # an offset large next to the spread
    ref = FACTORIES[name]().fit(Y)
    moved = FACTORIES[name]().fit(c * Y + b)
    X_ref, X = ref.transform(Y_test), moved.transform(c * Y_test + b)
    s_ref, s = ref.score(Y_test), moved.score(c * Y_test + b)
    assert np.all(np.isfinite(X)) and math.isfinite(s)
    shift = -D * math.log(c)
    if name in EXACT:
        np.testing.assert_allclose(X, X_ref, rtol=1e-6, atol=1e-8)
        assert s == pytest.approx(s_ref + shift, rel=1e-9, abs=1e-8 * max(1.0, abs(shift)))
    else:
        # The same fit up to rounding; the evaluation draws are keyed by the rows' bits, so the
        # score differs by the estimator's Monte Carlo error and the training's sensitivity to
        # rounding only: six copies of Y perturbed by 1e-15 relative give SVI GPLVM scores
        # 0.08 nats apart (5 epochs on 200 rows), hence 0.1.
        np.testing.assert_allclose(X, X_ref, atol=1e-3)
        assert s - shift == pytest.approx(s_ref, abs=0.1)
    R_ref = ref.inverse_transform(X_ref)
    np.testing.assert_allclose(moved.inverse_transform(X), c * R_ref + b,
                               rtol=1e-4, atol=1e-3 * c)


# ------------------------------------------------------------------------------ fitted state
class _Stop(Exception):
    pass


def _raise_at_epoch(exc, epoch=2):
    def callback(record, name):
        if record["epoch"] == epoch:
            raise exc

    return lvm.settings.on_epoch(callback)


ITERATIVE = ["FactorAnalysis", "VAE", "BayesianGPLVM", "BayesianGPLVM-svi", "LinearFree"]


@pytest.mark.parametrize("name", ITERATIVE)
def test_an_interrupted_fit_keeps_the_last_good_epoch_and_is_usable(name, data):
    Y, Y_test = data
    model = FACTORIES[name]()
    with _raise_at_epoch(KeyboardInterrupt()), pytest.raises(KeyboardInterrupt):
        model.fit(Y)
    assert model.converged_ is False
    assert np.all(np.isfinite(model.transform(Y_test)))
    assert math.isfinite(model.score(Y_test))
    assert model.sample(3, random_state=0).shape == (3, Y.shape[1])


@pytest.mark.parametrize("name", list(FACTORIES))
def test_a_failed_fit_leaves_the_estimator_unfitted_not_stale(name, data, monkeypatch):
    Y, Y_test = data
    model = FACTORIES[name]().fit(Y)
    assert np.isfinite(model.score(Y_test))

    def broken(self, T, stats):  # every family's fit after the data gate
        raise _Stop("a bug in the family's math")

    monkeypatch.setattr(type(model), "_fit_checked", broken)
    with pytest.raises(_Stop):
        model.fit(2 * Y)
    with pytest.raises(NotFittedError):
        model.transform(Y_test)
    assert not any(k.endswith("_") and not k.startswith("__") for k in vars(model)
                   if k != "n_features_in_")


@pytest.mark.parametrize("name", ["VAE", "BayesianGPLVM-svi"])
def test_an_error_inside_training_leaves_the_estimator_unfitted(name, data):
    Y, Y_test = data
    model = FACTORIES[name]()
    with _raise_at_epoch(_Stop("not numerical")), pytest.raises(_Stop):
        model.fit(Y)
    with pytest.raises(NotFittedError):
        model.score(Y_test)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_refit_forgets_the_previous_fit(name, data):
    Y, Y_test = data
    a = FACTORIES[name]().fit(3 * Y[:, ::-1] + 1)
    a.fit(Y)
    b = FACTORIES[name]().fit(Y)
    np.testing.assert_allclose(a.transform(Y_test, return_std=True),
                               b.transform(Y_test, return_std=True), rtol=1e-5, atol=1e-6)
    assert a.score(Y_test) == pytest.approx(b.score(Y_test), rel=1e-6)


# ------------------------------------------------------------------------------ awkward data
def _awkward(kind, seed):
    rng = np.random.default_rng(seed)
    n = 24
    Y = rng.standard_normal((n, 2)) @ rng.standard_normal((2, 5)) + 0.1 * rng.standard_normal((n, 5))
    if kind == "near-constant column":
        Y[:, 1] = 3.0 + 1e-9 * rng.standard_normal(n)
    elif kind == "duplicated rows":
        Y[n // 2:] = Y[: n - n // 2]
    elif kind == "mixed units":
        Y[:, 0] *= 1e6
        Y[:, 2] *= 1e-4
    elif kind == "constant column":
        Y[:, 3] = -7.0
    elif kind == "an outlier row":
        Y[5] = 100.0
    return Y


KINDS = ["near-constant column", "duplicated rows", "mixed units", "constant column",
         "an outlier row"]


def _assert_finite_everywhere(model, Y):
    X, S = model.transform(Y, return_std=True)
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(S))
    assert np.all(np.isfinite(model.score_samples(Y)))
    assert math.isfinite(model.score(Y))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("kind", KINDS)
def test_small_awkward_data_give_finite_numbers(name, kind):
    Y = _awkward(kind, 0)
    _assert_finite_everywhere(FACTORIES[name](0).fit(Y), Y)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("kind", KINDS)
def test_small_awkward_data_give_finite_numbers_for_many_seeds(name, kind):
    for seed in range(1, 11):
        Y = _awkward(kind, seed)
        _assert_finite_everywhere(FACTORIES[name](seed).fit(Y), Y)


# ------------------------------------------------------------------------------ dtypes, names
@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_follow_the_input_dtype(name, dtype, data):
    Y, Y_test = data
    model = FACTORIES[name]().fit(Y.astype(dtype))
    assert model.transform(Y_test.astype(dtype)).dtype == dtype
    assert model.score_samples(Y_test.astype(dtype)).dtype == dtype
    assert model.inverse_transform(model.transform(Y_test.astype(dtype))).dtype == dtype
    assert model.sample(2).dtype == dtype


@pytest.mark.parametrize("name", list(FACTORIES))
def test_feature_names_out_and_family_facts(name, data):
    Y, _ = data
    model = FACTORIES[name]().fit(Y)
    prefix = type(model).__name__.lower()
    assert list(model.get_feature_names_out()) == [f"{prefix}0", f"{prefix}1"]
    assert model.family and model.evidence_kind
    assert model.has_embedding and model.transform(Y).shape[1] < Y.shape[1]
    assert model.n_parameters_ > 0 and math.isfinite(model.train_evidence_)


def test_the_diffusion_model_has_no_low_dimensional_embedding():
    # has_embedding says whether transform reduces the dimension (the CLI draws samples if not)
    model = sklearn.base.clone(DIFFUSION_TINY)
    Y = lvm.datasets.make_ppca(60, 3, 1, random_state=0).Y
    assert not model.has_embedding and model.fit(Y).transform(Y).shape == Y.shape


@pytest.mark.parametrize("seed", [0, 1])
def test_diffusion_rows_are_independent_in_float32_to_its_rounding(seed):
    """In its default float32, a row's transform and score_samples do not depend on the batch
    beyond rounding: each matrix product of the width-8 network may round differently with the
    batch size (up to ~8 units of roundoff eps, relative), and the flow's 16 network evaluations
    (4 RK4 steps) add those up, so rows agree to 16 * 8 * eps of the outputs' magnitude (1.5e-5;
    seen: 1.2e-7 over 8 seeds). The same checks as scikit-learn's, which ask 1e-7."""
    model = sklearn.base.clone(DIFFUSION_TINY).set_params(dtype=None, random_state=seed)
    Y = lvm.datasets.make_ppca(30, 3, 1, noise=0.3, random_state=seed).Y * 4.0 + 2.0
    model.fit(Y)
    bound = 16 * 8 * np.finfo(np.float32).eps
    for dtype in (np.float32, np.float64):  # outputs follow the input's dtype
        assert model.transform(Y.astype(dtype)).dtype == dtype
        assert model.fit_transform(Y.astype(dtype)).dtype == dtype
    for method in (model.transform, model.score_samples):
        whole = method(Y)
        tol = bound * np.abs(whole).max()
        in_parts = np.concatenate([method(part) for part in np.array_split(Y, 7)])
        np.testing.assert_allclose(in_parts, whole, rtol=0, atol=tol)
        np.testing.assert_allclose(method(Y[::-1])[::-1], whole, rtol=0, atol=tol)
