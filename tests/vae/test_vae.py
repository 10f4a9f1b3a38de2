"""The VAE's correctness by numbers: bounds against exact evidence, estimator ordering, gradients,
a hand-written reference loop, and its behaviour as an estimator."""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

import lvm
from lvm.likelihoods import GaussianLikelihood
from lvm.vae.networks import VAEModule

LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------- reference code
def hand_written_vae(Y, *, hidden=(256, 256), K=2, epochs=20, batch_size=128, lr=1e-3, seed=0):
    """The minimal loop a user would write: same MLPs, learned shared noise, Adam, shuffling."""
    torch.manual_seed(seed)
    D = Y.shape[1]
    sizes = (D, *hidden)
    enc_layers, dec_layers = [], []
    for a, b in zip(sizes[:-1], sizes[1:]):
        enc_layers += [nn.Linear(a, b), nn.ReLU()]
    enc = nn.Sequential(*enc_layers, nn.Linear(sizes[-1], 2 * K))
    rsizes = (K, *hidden[::-1])
    for a, b in zip(rsizes[:-1], rsizes[1:]):
        dec_layers += [nn.Linear(a, b), nn.ReLU()]
    dec = nn.Sequential(*dec_layers, nn.Linear(rsizes[-1], D))
    log_var_noise = nn.Parameter(torch.zeros(()))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters(), log_var_noise], lr=lr)
    Yt = torch.as_tensor(Y, dtype=torch.float32)
    for _ in range(epochs):
        for idx in torch.randperm(len(Yt)).split(batch_size):
            y = Yt[idx]
            h = enc(y)
            mu, logv = h[:, :K], h[:, K:]
            x = mu + torch.exp(0.5 * logv) * torch.randn_like(mu)
            rec = -0.5 * (((y - dec(x)) ** 2).sum(1) / log_var_noise.exp()
                          + D * (log_var_noise + LOG_2PI))
            kl = 0.5 * (logv.exp() + mu**2 - 1 - logv).sum(1)
            loss = -(rec - kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return enc, dec, log_var_noise.detach().exp()


def reference_iwae(encode, decode, noise, Y, S=100, seed=0):
    """IWAE log p(y) per row, written independently of lvm: encode(y) -> (mu, var)."""
    gen = torch.Generator().manual_seed(seed)
    Yt = torch.as_tensor(Y, dtype=torch.float32)
    out = []
    with torch.no_grad():
        for y in Yt.split(256):
            mu, var = encode(y)
            eps = torch.randn(S, *mu.shape, generator=gen)
            x = mu + var.sqrt() * eps
            log_px = -0.5 * (x**2 + LOG_2PI).sum(-1)
            log_q = -0.5 * (eps**2 + LOG_2PI).sum(-1) - 0.5 * var.log().sum(-1)
            f = decode(x)
            D = y.shape[1]
            log_lik = -0.5 * (((y - f) ** 2 / noise).sum(-1) + D * LOG_2PI
                              + (noise.log() * torch.ones(D)).sum())
            log_w = log_lik + log_px - log_q
            out.append(torch.logsumexp(log_w, 0) - math.log(S))
    return torch.cat(out).numpy()


def lvm_iwae(model, Y, S=100, seed=0):
    """The reference IWAE of a fitted lvm.VAE from its public parts alone: its networks work in
    z = (y - location_) / scale_, so log p(y) = log p(z) - D log scale_."""
    def encode(z):
        h = model.encoder_(z)
        K = model.n_components_
        return h[:, :K], h[:, K:].exp()

    Z = (np.asarray(Y, dtype=np.float64) - model.location_) / model.scale_
    noise = torch.as_tensor(np.asarray(model.noise_variance_) / model.scale_**2,
                            dtype=torch.float32)
    log_jacobian = -Z.shape[1] * math.log(model.scale_)
    return reference_iwae(encode, model.decoder_, noise, Z, S, seed) + log_jacobian


# ----------------------------------------------------------------------------- 1. linear VAE
def test_linear_vae_bound_and_iwae_against_exact_ppca(ppca_3000x20):
    Y = ppca_3000x20.Y
    exact = lvm.PPCA(n_components=2).fit(Y).score(Y)
    vae = lvm.VAE(2, hidden_sizes=(), noise="shared", batch_size=256, max_epochs=60,
                  learning_rate=1e-2, validation_fraction=0.0, random_state=0).fit(Y)
    elbo = vae.elbo(Y, n_samples=100)
    est = vae.log_evidence(Y, method="iwae", n_samples=1000)
    iwae, ess = est.log_evidence, est.effective_sample_size
    print(f"\nexact PPCA {exact:.4f}  ELBO {elbo:.4f}  IWAE(1000) {iwae.mean():.4f}  "
          f"rel. gap {abs(iwae.mean() - exact) / abs(exact):.2e}  mean ESS {ess.mean():.0f}")
    assert elbo <= exact
    assert iwae.mean() <= exact + 0.01  # a stochastic lower bound: not above, up to MC error
    assert abs(iwae.mean() - exact) <= 0.005 * abs(exact)
    assert vae.noise_variance_ == pytest.approx(ppca_3000x20.noise, rel=0.1)


# ----------------------------------------------------------------------------- 2. ordering
@pytest.fixture(scope="module")
def digits_vae(digits_split):
    Y_tr, *_ = digits_split
    # shared noise, as the hand-written loop has (and per-feature noise would sit at its floor
    # on the pixels that are blank in every training image)
    return lvm.VAE(2, hidden_sizes=(256, 256), noise="shared", max_epochs=20,
                   validation_fraction=0.0, random_state=0).fit(Y_tr)


def test_estimator_ordering_on_digits(digits_vae, digits_split):
    _, Y_te, *_ = digits_split
    elbo = digits_vae.elbo(Y_te, n_samples=100)
    iwae10 = digits_vae.log_evidence(Y_te, "iwae", n_samples=10).log_evidence.mean()
    iwae500, _, ess, *_ = digits_vae.log_evidence(Y_te, "iwae", n_samples=500)
    prior, _, prior_ess, *_ = digits_vae.log_evidence(Y_te, "prior", n_samples=500)
    print(f"\nELBO {elbo:.3f} <= IWAE(10) {iwae10:.3f} <= IWAE(500) {iwae500.mean():.3f}; "
          f"prior MC(500) {prior.mean():.3f}; mean ESS encoder {ess.mean():.1f}, "
          f"prior {prior_ess.mean():.2f} of 500")
    assert elbo <= iwae10 <= iwae500.mean()
    assert prior.mean() < iwae500.mean()
    assert prior_ess.mean() < ess.mean()


# ----------------------------------------------------------------------------- 3. gradient
def test_reparameterized_gradient_matches_finite_differences():
    torch.manual_seed(0)
    D, K, n = 4, 2, 5
    module = VAEModule(
        nn.Sequential(nn.Linear(D, 6), nn.Tanh(), nn.Linear(6, 2 * K)),
        nn.Sequential(nn.Linear(K, 6), nn.Tanh(), nn.Linear(6, D)),
        GaussianLikelihood(1, initial_noise=0.5),
        K,
    ).double()
    y = torch.randn(n, D, dtype=torch.float64)
    eps = torch.randn(n, K, dtype=torch.float64)
    params = list(module.parameters())
    module(y, eps).mean().backward()
    grads = torch.cat([p.grad.flatten() for p in params])
    h = 1e-6
    fd = []
    with torch.no_grad():
        for p in params:
            flat = p.view(-1)
            for i in range(flat.numel()):
                old = flat[i].item()
                flat[i] = old + h
                up = module(y, eps).mean()
                flat[i] = old - h
                down = module(y, eps).mean()
                flat[i] = old
                fd.append((up - down) / (2 * h))
    fd = torch.stack(fd)
    err = float((grads - fd).abs().max() / fd.abs().max())
    print(f"\nmax relative error of the reparameterized gradient: {err:.2e} "
          f"over {fd.numel()} parameters")
    assert err < 1e-6


def test_estimator_gradient_path_is_float64():
    data = lvm.datasets.make_ppca(50, 4, 2, random_state=0)
    vae = lvm.VAE(2, hidden_sizes=(5,), max_epochs=2, dtype="float64", random_state=0).fit(data.Y)
    assert all(p.dtype == torch.float64 for p in vae.module_.parameters())
    assert vae.transform(data.Y).dtype == np.float64


# ----------------------------------------------------------------------------- 4. hand loop
def test_held_out_evidence_matches_hand_loop_and_embedding_separates(digits_vae, digits_split):
    Y_tr, Y_te, l_tr, l_te = digits_split
    enc, dec, noise = hand_written_vae(Y_tr, epochs=20, seed=0)

    def hand_encode(y):
        h = enc(y)
        return h[:, :2], h[:, 2:].exp()

    hand = reference_iwae(hand_encode, dec, noise, Y_te).mean()
    ours = lvm_iwae(digits_vae, Y_te).mean()
    own = digits_vae.score(Y_te)
    knn = KNeighborsClassifier(1).fit(digits_vae.transform(Y_tr), l_tr)
    acc = knn.score(digits_vae.transform(Y_te), l_te)
    print(f"\nheld-out log p(y) per point (IWAE, 100): lvm.VAE {ours:.2f} (own score, 256: "
          f"{own:.2f}), hand loop {hand:.2f}; 1-NN accuracy of the 2-D embedding {acc:.3f}")
    assert abs(ours - own) < 1.0  # two IWAE implementations agree
    assert ours >= hand - 1.0  # at least as good, up to seed-to-seed spread
    assert acc > 0.6


# ----------------------------------------------------------------------------- behaviour
def test_deterministic_with_random_state_and_global_rng_untouched(digits_split):
    Y = digits_split[0][:300]
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = lvm.VAE(2, hidden_sizes=(16,), max_epochs=3, random_state=7).fit(Y)
    assert torch.equal(before, torch.random.get_rng_state())
    b = lvm.VAE(2, hidden_sizes=(16,), max_epochs=3, random_state=7).fit(Y)
    np.testing.assert_array_equal(a.transform(Y), b.transform(Y))
    np.testing.assert_array_equal(a.score_samples(Y), b.score_samples(Y))
    c = lvm.VAE(2, hidden_sizes=(16,), max_epochs=3, random_state=8).fit(Y)
    assert not np.array_equal(a.transform(Y), c.transform(Y))


def test_score_samples_is_deterministic_and_row_independent(digits_vae, digits_split):
    Y = digits_split[1][:40]
    full = digits_vae.score_samples(Y)
    np.testing.assert_allclose(digits_vae.score_samples(Y[::-1].copy())[::-1], full, rtol=1e-5)
    np.testing.assert_allclose(digits_vae.score_samples(Y[:7]), full[:7], rtol=1e-5)
    fresh = digits_vae.log_evidence(Y, random_state=1).log_evidence
    assert not np.array_equal(fresh, full)
    np.testing.assert_allclose(fresh.mean(), full.mean(), atol=0.5)


def test_early_stopping_restores_best_epoch(digits_split):
    Y = digits_split[0]
    vae = lvm.VAE(2, hidden_sizes=(64,), noise="shared", max_epochs=200, patience=3,
                  learning_rate=1e-2, validation_fraction=0.2, random_state=0).fit(Y)
    assert vae.n_epochs_ < 200
    assert len(vae.history_) == vae.n_epochs_
    assert {"epoch", "train", "validation"} <= set(vae.history_[0])
    best = max(vae.history_, key=lambda r: r["validation"])
    assert vae.best_epoch_ == best["epoch"] == vae.n_epochs_ - 3


def test_tensor_in_tensor_out_and_shapes(digits_vae, digits_split):
    Y = torch.as_tensor(digits_split[1][:10])
    X, S = digits_vae.transform(Y, return_std=True)
    assert isinstance(X, torch.Tensor) and X.shape == (10, 2) and bool((S > 0).all())
    R = digits_vae.inverse_transform(X)
    assert isinstance(R, torch.Tensor) and R.shape == (10, 64)
    assert digits_vae.score_samples(Y).shape == (10,)
    est = digits_vae.log_evidence(Y, "prior", n_samples=5)
    assert isinstance(est, lvm.evidence.EvidenceEstimate) and est.log_evidence.shape == (10,)
    assert isinstance(est.effective_sample_size, torch.Tensor) and est.method == "prior"
    assert digits_vae.sample(4, random_state=0).shape == (4, 64)
    np.testing.assert_array_equal(digits_vae.sample(3, random_state=1),
                                  digits_vae.sample(3, random_state=1))


def test_per_feature_noise_and_verbose(ppca_3000x20, capsys):
    vae = lvm.VAE(2, hidden_sizes=(), noise="per_feature", max_epochs=2, verbose=True,
                  random_state=0).fit(ppca_3000x20.Y[:500])
    assert vae.noise_variance_.shape == (20,)
    assert "VAE" in capsys.readouterr().err


def test_bernoulli_on_binary_digits():
    d = lvm.datasets.load_digits()
    Y = (d.Y[:600] > 8).astype(np.float64)
    vae = lvm.VAE(2, hidden_sizes=(64,), likelihood="bernoulli", max_epochs=10,
                  validation_fraction=0.0, random_state=0).fit(Y)
    assert not hasattr(vae, "noise_variance_")
    R = vae.inverse_transform(vae.transform(Y))
    assert R.min() >= 0 and R.max() <= 1
    assert set(np.unique(vae.sample(20, random_state=0))) <= {0.0, 1.0}
    elbo, iwae = vae.elbo(Y), vae.score(Y)
    assert elbo <= iwae < 0


class PairEncoder(nn.Module):
    def __init__(self, D, K):
        super().__init__()
        self.body = nn.Linear(D, 8)
        self.mu = nn.Linear(8, K)
        self.log_var = nn.Linear(8, K)

    def forward(self, y):
        h = torch.tanh(self.body(y))
        return self.mu(h), self.log_var(h)


def test_custom_encoder_and_decoder(ppca_3000x20):
    Y = ppca_3000x20.Y[:500]
    enc, dec = PairEncoder(20, 2), nn.Linear(2, 20)
    w0 = dec.weight.detach().clone()
    vae = lvm.VAE(2, encoder=enc, decoder=dec, max_epochs=3, random_state=0).fit(Y)
    torch.testing.assert_close(dec.weight, w0)  # the hyper-parameter is copied, not trained
    assert vae.decoder_ is not dec and isinstance(vae.encoder_, PairEncoder)
    assert vae.transform(Y).shape == (500, 2)


# ----------------------------------------------------------------------------- 5. errors
def test_bernoulli_rejects_data_outside_unit_interval():
    with pytest.raises(ValueError, match=r"likelihood='bernoulli' needs data in \[0, 1\]"):
        lvm.VAE(likelihood="bernoulli", max_epochs=1).fit(np.array([[0.0, 2.0], [1.0, 0.5]]))
    vae = lvm.VAE(1, likelihood="bernoulli", hidden_sizes=(), max_epochs=1,
                  validation_fraction=0).fit(np.array([[0.0, 1.0], [1.0, 0.5]]))
    with pytest.raises(ValueError, match=r"got values in \[-1, 0.5\]"):
        vae.score(np.array([[-1.0, 0.5]]))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"learning_rate": 0}, r"The 'learning_rate' parameter of VAE must be a float"),
        ({"likelihood": "gamma"}, r"The 'likelihood' parameter of VAE must be a str among"),
        ({"noise": "diag"}, r"The 'noise' parameter of VAE must be a str among"),
        ({"activation": "swish"}, r"The 'activation' parameter of VAE must be a str among"),
        ({"validation_fraction": 1.0}, r"The 'validation_fraction' parameter of VAE"),
        ({"batch_size": 0}, r"The 'batch_size' parameter of VAE must be an int"),
        ({"encoder": "mlp"}, r"The 'encoder' parameter of VAE must be an instance of"),
        ({"hidden_sizes": (8, 0)}, r"hidden_sizes must hold positive integers"),
        ({"n_components": 5}, r"n_components=5 is larger than the data.s 3 feature"),
    ],
)
def test_bad_hyperparameters(params, match):
    Y = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ValueError, match=match):
        lvm.VAE(**{"n_components": 1, "max_epochs": 1, **params}).fit(Y)


def test_bad_input_and_methods(ppca_3000x20):
    Y = ppca_3000x20.Y[:100]
    with pytest.raises(ValueError, match="Input .*contains infinity"):
        lvm.VAE(max_epochs=1).fit(np.where(np.eye(100, 20) > 0, np.inf, Y))
    with pytest.raises(ValueError, match="Expected 2D array"):
        lvm.VAE(max_epochs=1).fit(Y[:, 0])
    with pytest.raises(ValueError, match="leaves no training rows"):
        lvm.VAE(1, validation_fraction=0.9, max_epochs=1).fit(Y[:2])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        lvm.VAE().transform(Y)
    vae = lvm.VAE(2, hidden_sizes=(), max_epochs=1, random_state=0).fit(Y)
    with pytest.raises(ValueError, match="X has 19 features, but VAE is expecting 20"):
        vae.score(Y[:, 1:])
    with pytest.raises(ValueError, match=r"Unknown method 'naive'; choose one of"):
        vae.log_evidence(Y, method="naive")
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        vae.log_evidence(Y, n_samples=0)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        vae.elbo(Y, n_samples=1.5)


def test_custom_encoder_of_the_wrong_shape_is_named(ppca_3000x20):
    with pytest.raises(ValueError, match=r"expected \(n, 2 \* n_components\) = \(n, 4\)"):
        lvm.VAE(2, encoder=nn.Linear(20, 3), max_epochs=1).fit(ppca_3000x20.Y[:50])


def test_no_runtime_warnings(ppca_3000x20):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # a 2-epoch budget is meant to run out: its ConvergenceWarning is not a numerical one
        warnings.simplefilter("ignore", ConvergenceWarning)
        lvm.VAE(2, hidden_sizes=(8,), max_epochs=2, random_state=0).fit(ppca_3000x20.Y[:200])


# ----------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_keeps_data_on_device(digits_split):
    Y_tr, Y_te, *_ = digits_split
    Yc = torch.as_tensor(Y_tr, device="cuda")
    vae = lvm.VAE(2, hidden_sizes=(64,), max_epochs=3, device="cuda", random_state=0).fit(Yc)
    assert vae.transform(Yc).device.type == "cuda"
    assert next(vae.module_.parameters()).device.type == "cuda"
    assert np.isfinite(vae.score(Y_te))
    b = lvm.VAE(2, hidden_sizes=(64,), max_epochs=3, device="cuda", random_state=0).fit(Yc)
    torch.testing.assert_close(vae.transform(Yc), b.transform(Yc))


@pytest.mark.slow
def test_held_out_evidence_over_seeds(digits_split):
    """Item 4 over five seeds: the mean held-out evidence of lvm.VAE against the hand loop's."""
    Y_tr, Y_te, *_ = digits_split
    ours, hand = [], []
    for seed in range(5):
        vae = lvm.VAE(2, noise="shared", max_epochs=20, validation_fraction=0.0,
                      random_state=seed).fit(Y_tr)
        ours.append(lvm_iwae(vae, Y_te).mean())
        enc, dec, noise = hand_written_vae(Y_tr, epochs=20, seed=seed)
        hand.append(reference_iwae(lambda y: (enc(y)[:, :2], enc(y)[:, 2:].exp()), dec, noise,
                                   Y_te).mean())
    print(f"\nheld-out log p(y) over 5 seeds: lvm.VAE {np.mean(ours):.2f} +- {np.std(ours):.2f}, "
          f"hand loop {np.mean(hand):.2f} +- {np.std(hand):.2f}")
    assert np.mean(ours) >= np.mean(hand) - 2 * np.std(hand) / np.sqrt(5)


def test_default_width_rows_are_independent_in_float32():
    """Issue 20: a row's transform and score_samples do not depend on the batch it comes in,
    for the default network (256, 256) in float32 too: scikit-learn's subset and sample-order
    invariance checks (to 1e-7 relative) on the default VAE, two seeds."""
    from sklearn.utils.estimator_checks import (check_methods_sample_order_invariance,
                                                check_methods_subset_invariance)

    for seed in (0, 1):
        est = lvm.VAE(n_components=1, max_epochs=5, device="cpu", random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the 5-epoch budget's ConvergenceWarning
            check_methods_subset_invariance("VAE", est)
            check_methods_sample_order_invariance("VAE", est)


def test_default_patience_in_steps_then_in_passes():
    """The epochs of 2,000 steps (at least 10) where that is at most 80 epochs; below 25 steps
    per epoch a quarter of the best epoch, between 40 and 80."""
    from lvm.vae.model import default_patience

    assert default_patience(52) == (39, None)  # USPS: 6,562 training rows, batch 128
    assert default_patience(400) == (10, None)
    assert default_patience(25)[1] is None and default_patience(25)[0] == 80
    patience, rule = default_patience(13)  # scikit-learn's digits
    assert patience == 80 and [rule(b) for b in (0, 100, 170, 289, 355, 1000)] == [
        40, 40, 43, 73, 80, 80]
