"""The Gaussian fitted to the data inside the diffusion model: the control variate's reference
(unbiased, smaller spread) and the nested start ``init="gaussian"`` (at step 0 the model is that
Gaussian's diffusion model, its bound in closed form)."""

import math
import pickle

import numpy as np
import pytest
import torch

import lvm
from lvm.diffusion import (OptimalGaussianDenoiser, ResidualDenoiser, gaussian_optimal_eps,
                           gaussian_vlb_terms, low_discrepancy_times, vlb)

F64 = torch.float64
SMALL = dict(width=16, depth=1, batch_size=32, n_eval_draws=8, device="cpu", dtype="float64",
             validation_fraction=0.0)


def _perturbed_gaussian_denoiser(gauss, scale):
    """The Gaussian's optimal denoiser plus a random network correction of size ``scale``."""
    g = torch.Generator().manual_seed(3)
    net = ResidualDenoiser(gauss.D, width=16, depth=1, generator=g,
                           base=OptimalGaussianDenoiser(gauss.mean, gauss.cov)).double()
    with torch.no_grad():
        net.output.weight.copy_(scale * torch.randn(net.output.weight.shape, generator=g, dtype=F64))
    return net


@pytest.mark.parametrize("n_steps", [None, 10], ids=["continuous", "T=10"])
def test_gaussian_reference_keeps_the_expectation_and_cuts_the_spread(gauss, n_steps):
    denoiser = _perturbed_gaussian_denoiser(gauss, 0.01)
    g = torch.Generator().manual_seed(0)
    K = 64
    t = low_discrepancy_times(torch.rand(gauss.n, generator=g, dtype=F64), K)
    eps = torch.randn(gauss.n, K, gauss.D, generator=g, dtype=F64)
    reference = OptimalGaussianDenoiser(gauss.mean, gauss.cov)
    draws = {name: vlb(gauss.y, gauss.schedule, denoiser, t, eps, n_steps=n_steps,
                       control_variate=cv).detach()
             for name, cv in (("none", False), ("N(0, I)", True), ("Gaussian", reference))}
    spread = {name: float(d.std(-1).mean()) for name, d in draws.items()}
    means = {name: float(d.mean()) for name, d in draws.items()}
    print(f"\nper-draw spread {spread}\nmeans {means}")
    # N(0, I)'s reference is checked against the closed form in test_bound.py; on the same draws
    # the two references' estimates differ by Monte Carlo error only.
    diff = (draws["Gaussian"] - draws["N(0, I)"]).mean(-1)
    assert abs(float(diff.mean())) < 3 * float(diff.std()) / math.sqrt(gauss.n)
    assert spread["Gaussian"] < 0.5 * spread["N(0, I)"] < spread["none"]


def test_expected_diffusion_is_the_closed_form_bound_term(gauss):
    ref = OptimalGaussianDenoiser(gauss.mean, gauss.cov)
    torch.testing.assert_close(ref.cov, gauss.cov, rtol=0, atol=1e-12)
    for n_steps in (None, 7):
        closed = gaussian_vlb_terms(gauss.y, gauss.mean, gauss.cov, gauss.schedule, n_steps=n_steps)
        torch.testing.assert_close(ref.expected_diffusion(gauss.y, gauss.schedule, n_steps),
                                   closed.diffusion, rtol=1e-12, atol=1e-12)
    z, gamma = gauss.y[:5], torch.tensor(0.3, dtype=F64)
    torch.testing.assert_close(ref(z, gamma), gaussian_optimal_eps(z, gamma, gauss.mean, gauss.cov),
                               rtol=1e-12, atol=1e-12)
    # The smallest direction taken (slightly more than) out: not positive definite, an error,
    # unless floored relative to the covariance's scale.
    u = ref.eigenvectors[:, 0]
    singular = gauss.cov - (1 + 1e-9) * ref.eigenvalues[0] * torch.outer(u, u)
    with pytest.raises(ValueError, match="symmetric positive definite"):
        OptimalGaussianDenoiser(gauss.mean, singular)
    floored = OptimalGaussianDenoiser(gauss.mean, singular, eigenvalue_floor=1e-6)
    lam = floored.eigenvalues
    # the floor is 1e-6 of the mean of the eigenvalues as they were (the negative one at 0)
    torch.testing.assert_close(lam[0], 1e-6 * ref.eigenvalues[1:].sum() / gauss.D, rtol=1e-9, atol=0)
    torch.testing.assert_close(lam[1:], ref.eigenvalues[1:], rtol=1e-10, atol=0)


def test_gaussian_start_is_the_fitted_gaussian_at_step_zero(ppca_300x4):
    Y = ppca_300x4.Y
    # one step of 1e-12: the network's correction and the schedule stay where they started
    m = lvm.DiffusionModel(init="gaussian", max_epochs=1, learning_rate=1e-12, random_state=0,
                           **SMALL).fit(Y)
    Z = torch.as_tensor((Y - m.location_) / m.scale_)
    base = m.module_.denoiser.base
    torch.testing.assert_close(base.mean, Z.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(base.cov, torch.cov(Z.T, correction=0), rtol=0, atol=1e-12)
    assert m.module_.reference is base  # the start is also the control variate's reference
    ev = m.log_evidence(Y)
    jacobian = Y.shape[1] * math.log(m.scale_)
    closed = gaussian_vlb_terms(Z, base.mean, base.cov, m.module_.schedule).vlb.detach().numpy()
    exact = torch.distributions.MultivariateNormal(base.mean, base.cov).log_prob(Z).numpy()
    print(f"\nstep-0 bound {ev.log_evidence.mean():.6f}, closed form {closed.mean() - jacobian:.6f}, "
          f"exact Gaussian {exact.mean() - jacobian:.6f}; largest per-row MC error "
          f"{ev.standard_error.max():.1e}")
    np.testing.assert_allclose(ev.log_evidence, closed - jacobian, rtol=0, atol=1e-6)
    assert ev.standard_error.max() < 1e-6  # the reference cancels every draw
    gap = exact.mean() - closed.mean()
    assert 0 <= gap < 1e-3 * Y.shape[1]
    random = lvm.DiffusionModel(max_epochs=1, learning_rate=1e-12, random_state=0, **SMALL).fit(Y)
    D = Y.shape[1]
    assert m.n_parameters_ - random.n_parameters_ == D + D * (D + 1) // 2
    assert random.module_.denoiser.base is None and random.module_.reference is not None
    assert ev.log_evidence.mean() > random.score(Y) + 5  # far ahead of the random start


def test_gaussian_start_trains_pickles_and_streams(ppca_300x4):
    Y = ppca_300x4.Y
    m = lvm.DiffusionModel(init="gaussian", max_epochs=5, random_state=0, **SMALL).fit(Y)
    assert np.isfinite(m.score(Y))
    again = pickle.loads(pickle.dumps(m))
    assert again.score(Y) == m.score(Y)
    streamed = lvm.DiffusionModel(init="gaussian", random_state=0, **SMALL)
    for chunk in np.array_split(Y, 3):
        streamed.partial_fit(chunk)
    assert streamed.module_.denoiser.base is not None and np.isfinite(streamed.score(Y))


def test_fewer_rows_than_features_start_at_random():
    Y = np.random.default_rng(0).normal(size=(4, 6))
    m = lvm.DiffusionModel(init="gaussian", max_epochs=1, random_state=0, **{**SMALL, "batch_size": 4}).fit(Y)
    assert m.module_.denoiser.base is None and m.module_.reference is None
    assert np.isfinite(m.score(Y))
