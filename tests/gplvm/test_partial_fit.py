"""Issue 7: out-of-core BayesianGPLVM.partial_fit in SVI mode."""

import numpy as np
import pytest

import lvm

CFG = dict(n_components=2, inference="svi", n_inducing=15, batch_size=50, device="cpu",
           random_state=0, transform_max_iter=50, n_importance_samples=10)


@pytest.fixture(scope="module")
def Y():
    return lvm.datasets.make_ppca(400, 5, 2, noise=0.1, random_state=2).Y


def test_partial_fit_streams_chunks_and_keeps_optimizer_state(Y):
    m = lvm.BayesianGPLVM(**CFG)
    bounds = []
    for _ in range(4):
        for chunk in np.array_split(Y, 4):
            m.partial_fit(chunk)
        bounds.append(m.elbo_)
    state = m._global_optimizer.state_dict()["state"]
    assert state and min(int(s["step"]) for s in state.values()) == 4 * 400 // 50
    assert m.latent_mean_.shape == (4 * 400, 2)  # each chunk's rows get their own q(x)
    assert bounds[-1] > bounds[0]
    assert np.isfinite(m.score(Y[:20])) and m.transform(Y[:3]).shape == (3, 2)


def test_partial_fit_matches_fit_on_one_chunk(Y):
    a = lvm.BayesianGPLVM(**CFG, max_iter=1, tol=None).fit(Y)
    b = lvm.BayesianGPLVM(**CFG).partial_fit(Y)
    np.testing.assert_allclose(a.inducing_points_, b.inducing_points_)
    assert a.elbo_ == pytest.approx(b.elbo_)


def test_partial_fit_needs_svi(Y):
    # scikit-learn's available_if: an AttributeError whose cause gives the reason.
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as err:
        lvm.BayesianGPLVM(2, device="cpu").partial_fit(Y)
    assert "partial_fit needs inference='svi'" in str(err.value.__cause__)


def test_partial_fit_with_changed_features(Y):
    m = lvm.BayesianGPLVM(**CFG).partial_fit(Y[:100])
    with pytest.raises(ValueError, match="X has 4 features, but BayesianGPLVM is expecting 5"):
        m.partial_fit(Y[100:200, :4])


def test_collapsed_model_has_no_partial_fit():
    assert not hasattr(lvm.BayesianGPLVM(2), "partial_fit")
    assert hasattr(lvm.BayesianGPLVM(2, inference="svi"), "partial_fit")
