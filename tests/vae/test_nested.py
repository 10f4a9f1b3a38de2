"""The nested start: a VAE starts as the linear model (PPCA, or Factor Analysis with per-feature
noise) with its exact posterior, training keeps nothing worse than that start, and after training
with default settings its held-out evidence is at least the linear model's (real data: slow)."""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

import lvm
import lvm._gradient
from lvm.vae.networks import AffinePlusNetwork

from .problems import load_problem

LINEAR = {"shared": lvm.PPCA, "per_feature": lvm.FactorAnalysis}
LOG_2PI = math.log(2 * math.pi)


@pytest.fixture
def untrained(monkeypatch):
    """``fit`` builds the model and runs no training step: the VAE as it starts."""
    monkeypatch.setattr(lvm._gradient, "train", lambda *args, result, **kwargs: result)


def closed_form_elbo(vae, Y):
    """The ELBO of each row in closed form, from the public API alone, for a VAE whose decoder
    is affine (as at the nested start): E_q log N(y; W x + b, diag psi) - KL(q || N(0, I)) with
    q = N(m, diag s^2) from ``transform``, W and b read off ``inverse_transform``."""
    m, s = vae.transform(Y, return_std=True)
    K = m.shape[1]
    b = vae.inverse_transform(np.zeros((1, K)))
    Wt = vae.inverse_transform(np.eye(K)) - b  # (K, D): row k is W e_k
    psi = np.broadcast_to(np.asarray(vae.noise_variance_, dtype=np.float64), (Y.shape[1],))
    resid = Y - (m @ Wt + b)
    spread = (s**2) @ (Wt**2)  # diag(W diag(s^2) W^T) per row
    expected = -0.5 * (np.log(2 * np.pi * psi) + (resid**2 + spread) / psi).sum(1)
    kl = 0.5 * (s**2 + m**2 - 1 - np.log(s**2)).sum(1)
    return expected - kl


@pytest.mark.parametrize("noise", ["shared", "per_feature"])
@pytest.mark.parametrize("hidden", [(), (32, 32)], ids=["linear", "mlp"])
def test_at_initialization_the_elbo_is_the_linear_models_exact_evidence(untrained, ppca_3000x20,
                                                                       noise, hidden):
    Y = ppca_3000x20.Y
    linear = LINEAR[noise](2).fit(Y)
    exact = linear.score_samples(Y)
    vae = lvm.VAE(2, hidden_sizes=hidden, noise=noise, dtype="float64", validation_fraction=0.0,
                  random_state=0).fit(Y)
    elbo = closed_form_elbo(vae, Y)
    # With the exact posterior as q every importance weight p(y, x) / q(x | y) equals p(y): one
    # draw gives log p(y) exactly, whatever the draw.
    one_draw = [vae.log_evidence(Y, "iwae", n_samples=1, random_state=r).log_evidence
                for r in (0, 1)]
    mc_elbo = vae.elbo_samples(Y, n_samples=64)
    print(f"\n{type(linear).__name__} exact training evidence {exact.mean():.6f}; VAE "
          f"{hidden} at step 0: closed-form ELBO {elbo.mean():.6f} (max |row diff| "
          f"{np.abs(elbo - exact).max():.1e}), one-draw IWAE max |row diff| "
          f"{max(np.abs(o - exact).max() for o in one_draw):.1e}, Monte Carlo ELBO (64 draws "
          f"per row, analytic KL) {mc_elbo.mean():.4f}")
    assert abs(elbo.mean() - linear.train_evidence_) < 1e-3
    np.testing.assert_allclose(elbo, exact, rtol=0, atol=1e-6)
    for o in one_draw:
        np.testing.assert_allclose(o, exact, rtol=0, atol=1e-8)
    if hidden:  # an affine path beside each network, whose residual starts at zero
        assert isinstance(vae.decoder_, AffinePlusNetwork)
        assert isinstance(vae.encoder_, AffinePlusNetwork)
    else:  # the linear VAE is the affine maps alone
        assert isinstance(vae.decoder_, torch.nn.Linear)
        assert isinstance(vae.encoder_, torch.nn.Linear)


def test_the_fa_start_is_rotated_to_a_diagonal_posterior(untrained):
    """FA's W has no orthogonal columns; the start rotates it so that W^T Psi^-1 W is diagonal."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((8, 3))
    psi = rng.uniform(0.05, 1.0, 8)
    Y = rng.standard_normal((2000, 3)) @ W.T + rng.standard_normal((2000, 8)) * np.sqrt(psi)
    fa = lvm.FactorAnalysis(3).fit(Y)
    G = fa.components_ / fa.noise_variance_ @ fa.components_.T
    vae = lvm.VAE(3, hidden_sizes=(), noise="per_feature", dtype="float64",
                  validation_fraction=0.0, random_state=0).fit(Y)
    Wv = vae.inverse_transform(np.eye(3)) - vae.inverse_transform(np.zeros((1, 3)))
    Gv = Wv / vae.noise_variance_ @ Wv.T
    off = lambda M: np.abs(M - np.diag(np.diag(M))).max() / np.abs(M).max()  # noqa: E731
    print(f"\noff-diagonal of W^T Psi^-1 W (relative): FA's {off(G):.2e}, the VAE start's "
          f"{off(Gv):.2e}; eigenvalues {np.linalg.eigvalsh(G)[::-1]} vs {np.diag(Gv)}")
    assert off(G) > 1e-2 and off(Gv) < 1e-10
    np.testing.assert_allclose(np.diag(Gv), np.linalg.eigvalsh(G)[::-1], rtol=1e-8)
    np.testing.assert_allclose(closed_form_elbo(vae, Y), fa.score_samples(Y), atol=1e-6)


def test_init_random_and_custom_networks_start_as_before(untrained, ppca_3000x20):
    Y = ppca_3000x20.Y[:500]
    exact = lvm.PPCA(2).fit(Y).score(Y)
    rand = lvm.VAE(2, hidden_sizes=(16,), noise="shared", init="random", validation_fraction=0.0,
                   random_state=0).fit(Y)
    custom = lvm.VAE(2, decoder=torch.nn.Linear(2, 20), noise="shared", validation_fraction=0.0,
                     random_state=0).fit(Y)
    for vae in (rand, custom):
        assert not isinstance(vae.decoder_, AffinePlusNetwork)
        assert vae.score(Y) < exact - 1.0  # a random start, far from the linear optimum


def test_training_never_keeps_weights_worse_than_the_start(ppca_3000x20, monkeypatch):
    """On PPCA data the start is the optimum; a step size far too large only makes it worse, so
    early stopping on the validation ELBO keeps the start (epoch 0)."""
    Y = ppca_3000x20.Y[:1000]
    split = {}
    split_validation = lvm.VAE._split_validation

    def spy(self, Z):  # records the split (in the model's standardized coordinates)
        split["train"], split["validation"] = split_validation(self, Z)
        return split["train"], split["validation"]

    monkeypatch.setattr(lvm.VAE, "_split_validation", spy)
    vae = lvm.VAE(2, hidden_sizes=(16,), noise="shared", learning_rate=0.05, max_epochs=4,
                  patience=3, validation_fraction=0.2, dtype="float64", random_state=0).fit(Y)
    print(f"\nvalidation ELBO per epoch {[round(r['validation'], 3) for r in vae.history_]}; "
          f"best epoch {vae.best_epoch_}, training ELBO kept {vae.train_evidence_:.4f}")
    assert vae.best_epoch_ == 0 and vae.converged_ and len(vae.history_) == 3
    Y_train, Y_val = (split[k].numpy() * vae.scale_ + vae.location_
                      for k in ("train", "validation"))
    # Back at the linear model with its exact posterior: one draw is the exact evidence, and it
    # is that of PPCA fitted to the training rows (the start is its optimum, where the bound is
    # tight).
    a, b = (vae.log_evidence(Y, "iwae", n_samples=1, random_state=r).log_evidence for r in (0, 1))
    np.testing.assert_allclose(a, b, atol=1e-8)
    ppca = lvm.PPCA(2).fit(Y_train)
    exact = {"train": ppca.score_samples(Y_train), "validation": ppca.score_samples(Y_val)}
    np.testing.assert_allclose(vae.log_evidence(Y_val, "iwae", n_samples=1).log_evidence,
                               exact["validation"], rtol=1e-10)

    def mc_error(rows, key):
        """Standard error of the mean one-draw ELBO estimate (the history's and
        train_evidence_'s) about its expectation, the exact evidence at the start."""
        noise = vae.log_evidence(rows, "elbo", n_samples=1).log_evidence - exact[key]
        return noise.std(ddof=1) / np.sqrt(len(rows))

    # Every later epoch's validation ELBO is at or below the start's exact validation evidence,
    # up to the Monte Carlo error of its one-draw estimate; the kept training ELBO is the exact
    # training evidence within its Monte Carlo error.
    start = exact["validation"].mean()
    assert all(r["validation"] <= start + 3 * mc_error(Y_val, "validation")
               for r in vae.history_)
    assert abs(vae.train_evidence_ - exact["train"].mean()) <= 3 * mc_error(Y_train, "train")


def test_budget_and_patience_scale_with_the_data():
    vae = lvm.VAE(validation_fraction=0.0)
    # Patience: the epochs of 2,000 steps, at least 10 and at most 80 (a few hundred rows
    # stop on the plateau in data passes; USPS's 6,562 training rows keep 39 epochs).
    for n_rows, budget, patience in [(270, 16667, 80), (1350, 4546, 80), (3200, 2000, 80),
                                     (3328, 1924, 77), (6562, 962, 39),
                                     (270_000, 100, 10)]:
        plan = vae._plan(torch.empty(n_rows, 1))  # the training rows (no split)
        steps = -(-n_rows // 128)
        print(f"{n_rows} training rows: {steps} steps per epoch, at most {plan.max_epochs} "
              f"epochs ({plan.max_epochs * steps} steps), patience {plan.patience} epochs "
              f"({plan.patience * steps} steps)")
        assert (plan.max_epochs, plan.patience) == (budget, patience)
    vae.set_params(max_epochs=7, patience=2)
    plan = vae._plan(torch.empty(100, 1))
    assert (plan.max_epochs, plan.patience) == (7, 2)
    # the plan counts the training rows: 300 rows less the default 10% split are 270
    plan = lvm.VAE()._plan(torch.empty(300, 1))
    assert (plan.max_epochs, plan.patience) == (16667, 80)


def test_a_budget_that_runs_out_warns_what_to_raise(digits_split):
    Y = digits_split[0][:400]
    with pytest.warns(ConvergenceWarning, match=r"VAE did not converge in max_epochs=2 epochs "
                      r"\(6 optimizer steps\): early stopping needs patience=80 epochs .*"
                      r"Raise max_epochs \(None sets a budget of at least 50000 steps\)"):
        vae = lvm.VAE(2, hidden_sizes=(16,), noise="shared", max_epochs=2,
                      random_state=0).fit(Y)
    assert not vae.converged_ and vae.n_epochs_ == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stopping rule asked for: nothing to warn about
        lvm.VAE(2, hidden_sizes=(16,), noise="shared", max_epochs=2, validation_fraction=0.0,
                random_state=0).fit(Y)


def test_constant_training_features_with_per_feature_noise_are_named():
    Y = lvm.datasets.load_digits().Y[:400]
    constant = np.flatnonzero(Y.std(0) == 0)
    assert constant.size > 0  # blank pixels in every image
    with pytest.warns(UserWarning, match=rf"{constant.size} feature\(s\) are constant in the "
                      r"training rows \(columns \[0, .*or pass noise='shared'"):
        lvm.VAE(2, hidden_sizes=(8,), max_epochs=1, validation_fraction=0.0).fit(Y)


# ----------------------------------------------------------------------------- real data
PROBLEMS = ["ppca", "oil", "digits", "frey", "usps"]


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("noise", ["shared", "per_feature"])
@pytest.mark.parametrize("name", PROBLEMS)
def test_trained_vae_is_at_least_the_linear_model_held_out(name, noise):
    """Default training; the held-out IWAE estimate is at or above the linear model's exact
    held-out evidence minus two standard errors of the per-row difference."""
    p = load_problem(name)
    linear = LINEAR[noise](p.K).fit(p.Y_train)
    exact = linear.score_samples(p.Y_test)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        vae = lvm.VAE(p.K, noise=noise, random_state=0).fit(p.Y_train)
    iwae = vae.score_samples(p.Y_test)
    diff = iwae - exact
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    print(f"\n{name} ({p.description}), K={p.K}, noise={noise}: {type(linear).__name__} exact "
          f"held-out {exact.mean():.3f} (train {linear.train_evidence_:.3f}); VAE IWAE held-out "
          f"{iwae.mean():.3f} +- {iwae.std(ddof=1) / math.sqrt(len(iwae)):.3f} (train ELBO "
          f"{vae.train_evidence_:.3f}); difference {diff.mean():+.3f} +- {se:.3f}; "
          f"{vae.n_epochs_} epochs, best {vae.best_epoch_}, converged {vae.converged_}; "
          f"warnings {[str(w.message)[:60] for w in caught]}")
    assert iwae.mean() >= exact.mean() - 2 * se
    assert vae.converged_
