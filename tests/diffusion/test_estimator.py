"""lvm.DiffusionModel as an estimator: its bound against exact evidence (must-show 3 and 4), and
what every family passes (scikit-learn's checks, bad input, pickle, equivariance, determinism,
partial_fit, two gloo ranks, CUDA)."""

import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split

import lvm
from lvm.diffusion import DiffusionEvidence, VariationalDiffusion
from lvm.diffusion.family import DiffusionFamily
from tests.distributed_utils import run_ranks

#: Tiny settings: the code paths in milliseconds, numbers that mean little.
TINY = dict(width=16, depth=1, max_epochs=4, batch_size=32, n_eval_draws=8, sampling_steps=10,
            solver_options={"n_steps": 8}, device="cpu")


@pytest.fixture(scope="module")
def data():
    d = lvm.datasets.make_ppca(300, 4, 2, noise=0.2, random_state=0)
    return d.Y[:240], d.Y[240:]


@pytest.fixture(scope="module")
def fitted(data):
    return lvm.DiffusionModel(**{**TINY, "max_epochs": 20}, random_state=0).fit(data[0])


# ----------------------------------------------------------------------------- the estimator
def test_fitted_attributes_and_labels(fitted, data):
    Y, _ = data
    assert fitted.family == "diffusion" and fitted.evidence_kind == "lower bound"
    assert fitted.n_components_ == fitted.n_features_in_ == 4
    assert isinstance(fitted.module_, VariationalDiffusion)
    assert fitted.gamma_0_ < fitted.gamma_1_
    assert fitted.decoder_variance_ == pytest.approx(math.exp(fitted.gamma_0_) * fitted.scale_ ** 2)
    assert len(fitted.history_) == fitted.n_epochs_ and fitted.best_epoch_ is not None
    assert fitted.n_parameters_ == sum(p.numel() for p in fitted.module_.parameters())


def test_the_fit_is_one_diffusion_family(fitted):
    family = fitted.family_
    assert isinstance(family, DiffusionFamily) and fitted.module_ is family.averaged.average
    live = list(family.averaged.live.parameters())
    assert [id(p) for p in family.global_parameters()] == [id(p) for p in live]
    assert not any(p.requires_grad for p in fitted.module_.parameters())  # the average
    assert any(not torch.equal(a, p) for a, p in zip(fitted.module_.parameters(), live))
    assert family.validation_samples == 4 and family.likelihood is None


def test_score_samples_is_the_bound_with_row_keyed_draws(fitted, data):
    _, Y = data
    s = fitted.score_samples(Y)
    est = fitted.log_evidence(Y)
    assert isinstance(est, DiffusionEvidence) and (est.kind, est.method) == ("bound", "bound")
    assert est.effective_sample_size is None  # equally weighted draws
    np.testing.assert_array_equal(s, est.log_evidence)
    assert np.all(est.standard_error > 0)
    # deterministic, and a row's value is the same in any batch and order
    np.testing.assert_array_equal(s, fitted.score_samples(Y))
    np.testing.assert_allclose(fitted.score_samples(Y[::-1])[::-1], s, rtol=1e-6)
    np.testing.assert_allclose(fitted.score_samples(Y[:7]), s[:7], rtol=1e-6)
    # elbo is the same bound; "vlb" is the bound's former name
    assert fitted.elbo(Y, n_samples=8) == pytest.approx(float(s.mean()), rel=1e-6)
    np.testing.assert_array_equal(fitted.log_evidence(Y, method="vlb").log_evidence, s)
    # fresh draws agree within the Monte Carlo error
    other = fitted.log_evidence(Y, random_state=1, n_samples=64)
    ref = fitted.log_evidence(Y, n_samples=64)
    diff = other.log_evidence - ref.log_evidence
    se = np.sqrt((other.standard_error ** 2 + ref.standard_error ** 2).mean() / len(Y))
    print(f"\nmean bound with two draw keys: {ref.log_evidence.mean():.3f} / "
          f"{other.log_evidence.mean():.3f} (difference {diff.mean():+.3f}, SE {se:.3f})")
    assert abs(diff.mean()) < 4 * se


def test_probability_flow_evidence_is_labelled_apart(fitted, data):
    _, Y = data
    exact = fitted.log_evidence(Y[:10], method="ode")
    assert (exact.kind, exact.method) == ("estimate", "ode")
    assert np.all(exact.standard_error == 0) and np.all(np.isfinite(exact.log_evidence))
    hutch = fitted.log_evidence(Y[:10], method="ode", divergence="hutchinson", n_probes=8)
    assert np.all(hutch.standard_error > 0)
    z = (hutch.log_evidence - exact.log_evidence) / hutch.standard_error
    print(f"\nflow log-likelihood, exact divergence {exact.log_evidence.mean():.3f}, Hutchinson "
          f"(8 probes) {hutch.log_evidence.mean():.3f}; largest |z| {np.abs(z).max():.2f}")
    assert np.abs(z).max() < 5


def test_transform_is_the_flow_encoding_and_inverts(fitted, data):
    _, Y = data
    X, X_std = fitted.transform(Y[:20], return_std=True)
    assert X.shape == (20, 4) and np.all(X_std == 0)
    back = fitted.inverse_transform(X)
    print(f"\nflow round trip (rk4, 8 steps each way): max |y - Phi^-1(Phi(y))| "
          f"{np.abs(back - Y[:20]).max():.1e}")
    np.testing.assert_allclose(back, Y[:20], atol=1e-2)
    assert fitted.get_feature_names_out().tolist() == [f"diffusionmodel{i}" for i in range(4)]


def test_transform_is_row_independent_in_float64(data):
    Y, Y_te = data
    m = lvm.DiffusionModel(**{**TINY, "dtype": "float64"}, random_state=0).fit(Y)
    whole = m.transform(Y_te)
    rows = np.concatenate([m.transform(Y_te[i:i + 1]) for i in range(len(Y_te))])
    np.testing.assert_allclose(rows, whole, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.transform(Y_te[::-1])[::-1], whole, rtol=0, atol=1e-12)


def test_sample_is_ancestral_and_seeded(fitted, data):
    a = fitted.sample(50, random_state=0)
    assert a.shape == (50, 4) and a.dtype == np.float64 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, fitted.sample(50, random_state=0))
    assert not np.array_equal(a, fitted.sample(50, random_state=1))


def test_tensor_in_tensor_out(fitted, data):
    _, Y = data
    T = torch.as_tensor(Y, dtype=torch.float32)
    s = fitted.score_samples(T)
    assert isinstance(s, torch.Tensor) and s.dtype == torch.float32
    est = fitted.log_evidence(T)
    assert isinstance(est.log_evidence, torch.Tensor) and isinstance(est.standard_error,
                                                                      torch.Tensor)
    assert isinstance(fitted.transform(T[:3]), torch.Tensor)


def test_discrete_time_bound_on_request(fitted, data):
    _, Y = data
    cont = fitted.log_evidence(Y, n_samples=32).log_evidence.mean()
    disc = [fitted.log_evidence(Y, n_samples=32, n_steps=T).log_evidence.mean()
            for T in (2, 10, 100)]
    print(f"\ntiny model: discrete bounds T = 2, 10, 100: {disc[0]:.3f}, {disc[1]:.3f}, "
          f"{disc[2]:.3f}; continuous {cont:.3f}")
    assert disc[0] < disc[1] < disc[2] <= cont + 0.05


def test_integer_data_warns(data):
    Y = np.round(data[0] * 3)
    with pytest.warns(UserWarning, match="every entry is an integer.*dequantize=True"):
        lvm.DiffusionModel(**{**TINY, "max_epochs": 1}).fit(Y)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)  # one epoch's budget runs out
        lvm.DiffusionModel(**{**TINY, "max_epochs": 1}).fit(Y + 0.5 * np.eye(1, Y.shape[1]))


@pytest.mark.parametrize("params, match", [
    ({"gamma_min": 5.0, "gamma_max": -13.3}, "needs gamma_min < gamma_max"),
    ({"schedule": "cosine"}, "The 'schedule' parameter of DiffusionModel must be a str among"),
    ({"width": 0}, "The 'width' parameter of DiffusionModel must be an int in the range"),
    ({"solver": "euler"}, "The 'solver' parameter of DiffusionModel must be a str among"),
    ({"n_eval_draws": 0}, "The 'n_eval_draws' parameter of DiffusionModel"),
    ({"validation_fraction": 1.0}, "The 'validation_fraction' parameter"),
])
def test_bad_hyperparameters(data, params, match):
    with pytest.raises(ValueError, match=match):
        lvm.DiffusionModel(**{**TINY, **params}).fit(data[0])


def test_bad_input_and_methods(fitted, data):
    Y, _ = data
    bad = Y.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input Y contains NaN, and DiffusionModel does not model"):
        lvm.DiffusionModel(**TINY).fit(bad)
    with pytest.raises(ValueError, match="Input Y contains NaN"):
        lvm.DiffusionModel(**TINY).fit(torch.as_tensor(bad))
    with pytest.raises(ValueError, match="X has 3 features, but DiffusionModel is expecting 4"):
        fitted.score_samples(Y[:, :3])
    with pytest.raises(ValueError, match="X has 3 columns, but DiffusionModel has 4 latent"):
        fitted.inverse_transform(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"Unknown method 'iwae'; choose one of \['bound', 'vlb', "
                                         r"'ode'\] \(the evidence methods of DiffusionModel\)"):
        fitted.log_evidence(Y, method="iwae")
    with pytest.raises(TypeError, match=r"log_evidence\(method='ode'\) got unknown option\(s\) "
                                        r"\['n_steps'\]; it takes \['divergence', 'n_probes'\]"):
        fitted.log_evidence(Y, method="ode", n_steps=10)
    with pytest.raises(ValueError, match="n_steps must be a positive integer, got 0"):
        fitted.log_evidence(Y, n_steps=0)
    with pytest.raises(ValueError, match="Unknown divergence 'trace'"):
        fitted.log_evidence(Y, method="ode", divergence="trace")
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        fitted.sample(0)
    with pytest.raises(ValueError, match="Found array with 1 sample"):
        lvm.DiffusionModel(**TINY).fit(Y[:1])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        lvm.DiffusionModel().log_evidence(Y)


def test_pickle_round_trip(fitted, data):
    _, Y = data
    clone = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(clone.score_samples(Y), fitted.score_samples(Y))
    np.testing.assert_array_equal(clone.transform(Y[:5]), fitted.transform(Y[:5]))
    np.testing.assert_array_equal(clone.sample(5, random_state=3), fitted.sample(5, random_state=3))


@pytest.mark.parametrize("c", [1e-8, 1.0, 1e8])
def test_scale_and_shift_equivariance(data, c):
    # Fitting c Y + b gives the same model in standardized units, and a score shifted by -D log c.
    Y, Y_te = data
    b = np.linspace(-3.0, 5.0, Y.shape[1]) * c
    kw = {**TINY, "dtype": "float64", "random_state": 0}
    ref = lvm.DiffusionModel(**kw).fit(Y)
    scaled = lvm.DiffusionModel(**kw).fit(c * Y + b)
    shift = -Y.shape[1] * math.log(c)
    got = scaled.log_evidence(c * Y_te + b, n_samples=128)
    want = ref.log_evidence(Y_te, n_samples=128)
    err = 3 * math.sqrt(float((got.standard_error ** 2 + want.standard_error ** 2).mean())
                        / len(Y_te))
    print(f"\nc = {c:g}: score {got.log_evidence.mean():.4f} vs {want.log_evidence.mean():.4f} "
          f"{shift:+.4f} (3 SE {err:.3f})")
    assert abs(got.log_evidence.mean() - (want.log_evidence.mean() + shift)) < err
    for (k, a), (_, b_) in zip(ref.module_.state_dict().items(),
                               scaled.module_.state_dict().items()):
        torch.testing.assert_close(a, b_, rtol=1e-5, atol=1e-6, msg=k)


def test_deterministic_with_random_state_and_global_rng_untouched(data):
    Y, Y_te = data
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = lvm.DiffusionModel(**TINY, random_state=7).fit(Y)
    assert torch.equal(before, torch.random.get_rng_state())
    b = lvm.DiffusionModel(**TINY, random_state=7).fit(Y)
    for (k, x), (_, y) in zip(a.module_.state_dict().items(), b.module_.state_dict().items()):
        assert torch.equal(x, y), k
    np.testing.assert_array_equal(a.score_samples(Y_te), b.score_samples(Y_te))
    c = lvm.DiffusionModel(**TINY, random_state=8).fit(Y)
    assert not np.array_equal(a.score_samples(Y_te), c.score_samples(Y_te))


def test_partial_fit_streams_chunks(data):
    Y, Y_te = data
    m = lvm.DiffusionModel(**{**TINY, "batch_size": 50}, random_state=0)
    chunks = np.array_split(Y, 3)
    for _ in range(2):
        for chunk in chunks:
            m.partial_fit(chunk)
    steps = max(int(s["step"]) for s in m._global_optimizer.state_dict()["state"].values())
    assert steps == 2 * 3 * 2  # ceil(80 / 50) steps per chunk
    assert m.n_epochs_ == len(m.history_) == 6
    again = lvm.DiffusionModel(**{**TINY, "batch_size": 50}, random_state=0)
    for _ in range(2):
        for chunk in chunks:
            again.partial_fit(chunk)
    np.testing.assert_array_equal(m.score_samples(Y_te), again.score_samples(Y_te))
    with pytest.raises(ValueError, match="X has 3 features, but DiffusionModel is expecting 4"):
        m.partial_fit(Y[:, :3])


def test_compare_labels_the_bound(data):
    Y, _ = data
    table = lvm.compare({"PPCA": lvm.PPCA(2), "diffusion": lvm.DiffusionModel(**TINY,
                                                                            random_state=0)},
                        Y, random_state=0)
    row = next(r for r in table if r["model"] == "diffusion")
    assert row["family"] == "diffusion" and row["evidence"] == "lower bound"
    assert row["n_components"] == Y.shape[1] and row["n_parameters"] > 0


# ----------------------------------------------------------------------------- two gloo ranks
def _fit_shard(rank, world_size):
    Y = lvm.datasets.make_ppca(400, 4, 2, noise=0.2, random_state=1).Y
    shard = np.array_split(Y, [220])[rank]  # unequal shards on purpose
    m = lvm.DiffusionModel(**{**TINY, "max_epochs": 3}, random_state=0).fit(shard)
    return {"state": {k: v.clone() for k, v in m.module_.state_dict().items()},
            "history": m.history_, "score": m.score(Y[:50])}


@pytest.mark.slow  # spawning two processes that import torch: ~10-30 s on a busy 2-core machine
def test_two_gloo_ranks_end_with_identical_parameters():
    (s0, r0), (s1, r1) = run_ranks(_fit_shard, 2)
    assert s0 == "ok" and s1 == "ok", (r0, r1)
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert r0["history"] == r1["history"] and r0["score"] == r1["score"]


# ----------------------------------------------------------------------------- CUDA
@pytest.mark.gpu
def test_cuda_fit_and_evaluation(data):
    Y, Y_te = data
    m = lvm.DiffusionModel(**{**TINY, "device": "cuda"}, random_state=0).fit(Y)
    assert m.device_.type == "cuda"
    assert all(p.is_cuda for p in m.module_.parameters())
    s = m.score_samples(Y_te)
    assert isinstance(s, np.ndarray) and np.all(np.isfinite(s))
    T = m.transform(torch.as_tensor(Y_te, device="cuda"))
    assert T.is_cuda
    assert m.sample(4, random_state=0).shape == (4, 4)


# ----------------------------------------------------------------------------- learned (slow)
@pytest.fixture(scope="module")
def ppca_problem():
    d = lvm.datasets.make_ppca(3000, 10, 3, noise=0.3, random_state=0)
    return train_test_split(d.Y, test_size=1000, random_state=0)


@pytest.mark.slow
def test_learned_bound_approaches_exact_ppca_evidence(ppca_problem):
    # must-show 3: the held-out bound of a trained model is within 0.05 nats per dimension of
    # the exact evidence of the true model family, and not above it beyond its Monte Carlo error;
    # its discrete-time bounds rise with T toward the continuous one.
    Y_tr, Y_te = ppca_problem
    D = Y_tr.shape[1]
    exact = lvm.PPCA(3).fit(Y_tr).score_samples(Y_te)
    model = lvm.DiffusionModel(random_state=0).fit(Y_tr)
    est = model.log_evidence(Y_te, n_samples=256)
    bound = est.log_evidence.mean()
    se = math.sqrt(float((est.standard_error ** 2).mean()) / len(Y_te))
    gap = exact.mean() - bound
    disc = {T: model.log_evidence(Y_te, n_samples=256, n_steps=T).log_evidence.mean()
            for T in (10, 100, 1000)}
    print(f"\nPPCA exact held-out {exact.mean():.4f}; diffusion bound {bound:.4f} "
          f"(MC SE {se:.4f}); "
          f"gap {gap / D:.4f} nats per dimension; {model.n_epochs_} epochs, gamma "
          f"[{model.gamma_0_:.2f}, {model.gamma_1_:.2f}]; discrete T = 10, 100, 1000: "
          + ", ".join(f"{v:.4f}" for v in disc.values()))
    assert gap / D < 0.05
    assert bound <= exact.mean() + 3 * se
    assert disc[10] < disc[100] < disc[1000] < bound


@pytest.mark.slow
@pytest.mark.data
def test_oil_flow_bound_beats_the_other_families():
    # must-show 4, with default settings: standardized in compare (Jacobian included), the
    # diffusion bound is above PPCA's best exact evidence and the VAE's and GPLVM's estimates.
    try:
        Y = lvm.datasets.load_oil_flow().Y
    except (FileNotFoundError, OSError) as exc:
        pytest.skip(f"oil flow data not available: {exc}")
    models = {f"PPCA-{k}": lvm.PPCA(k) for k in range(1, 12)}
    models.update({"VAE": lvm.VAE(2, random_state=0),
                   "GPLVM": lvm.BayesianGPLVM(2, random_state=0),
                   "diffusion": lvm.DiffusionModel(random_state=0)})
    table = lvm.compare(models, Y, standardize=True, test_size=0.2, random_state=0)
    print("\n" + str(table))
    held = {r["model"]: r["test_log_evidence"] for r in table}
    best_ppca = max(v for k, v in held.items() if k.startswith("PPCA"))
    assert held["diffusion"] > max(best_ppca, held["VAE"], held["GPLVM"])


# ----------------------------------------------------------------------------- CLI and figures
def test_cli_builds_the_diffusion_model_without_n_components():
    import lvm.cli

    est = lvm.cli.build_model("diffusion", 2, fast=True, random_state=0)
    assert isinstance(est, lvm.DiffusionModel) and est.random_state == 0


def test_samples_panel_draws_over_tabular_data(fitted, data):
    fig = lvm.plot.samples_panel(fitted, data[0], n=20, title="diffusion")
    ax = fig.axes[0]
    assert ax.get_title() == "diffusion" and len(ax.collections) == 2  # data, samples
    assert ax.collections[1].get_offsets().shape == (20, 2)
