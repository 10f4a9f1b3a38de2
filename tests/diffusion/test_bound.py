"""The variational bound: Monte Carlo against closed forms (must-show 1), discrete time, gradients,
randomness."""

import math

import pytest
import torch

from lvm.diffusion import (ResidualDenoiser, VariationalDiffusion, draw_times, gaussian_vlb_terms,
                           low_discrepancy_times, make_schedule, vlb, vlb_terms)

from .problems import sigma_points

F64 = torch.float64


def _draws(n, D, K, seed):
    """Times and noise: one low-discrepancy batch (K = None) or K stratified times per row."""
    g = torch.Generator().manual_seed(seed)
    if K is None:
        return draw_times(n, generator=g, dtype=F64), torch.randn(n, D, generator=g, dtype=F64)
    t = low_discrepancy_times(torch.rand(n, generator=g, dtype=F64), K)
    return t, torch.randn(n, K, D, generator=g, dtype=F64)


@pytest.mark.parametrize("control_variate", [False, True], ids=["plain", "control-variate"])
@pytest.mark.parametrize("K", [None, 8], ids=["batch-times", "8-per-row"])
def test_monte_carlo_bound_agrees_with_the_closed_form(gauss, K, control_variate):
    t, eps = _draws(gauss.n, gauss.D, K, seed=0)
    draws = vlb(gauss.y, gauss.schedule, gauss.denoiser, t, eps, control_variate=control_variate).detach()
    per_row = draws if K is None else draws.mean(-1)
    closed = gaussian_vlb_terms(gauss.y, gauss.mean, gauss.cov, gauss.schedule).vlb.detach()
    # the rows' times are stratified together, so this standard error is conservative
    diff = per_row - closed
    se = float(diff.std() / math.sqrt(gauss.n))
    print(f"\nMC {float(per_row.mean()):.4f}  closed form {float(closed.mean()):.4f}  "
          f"difference {float(diff.mean()):+.4f}  SE {se:.4f}  (nats per point, D = {gauss.D})")
    assert abs(float(diff.mean())) < 3 * se


def test_closed_form_bound_is_tight_for_gaussian_data(gauss):
    closed = gaussian_vlb_terms(gauss.y, gauss.mean, gauss.cov, gauss.schedule).vlb.detach()
    gap = float((gauss.exact - closed).mean())
    # in expectation over y, exactly (both are quadratic in y): KL(q(z_1) || N(0, I)) + O(e^gamma_0)
    pts = sigma_points(gauss.mean, gauss.cov)
    mvn = torch.distributions.MultivariateNormal(gauss.mean, gauss.cov)
    expected_gap = float(mvn.log_prob(pts).mean()
                         - gaussian_vlb_terms(pts, gauss.mean, gauss.cov, gauss.schedule).vlb.detach().mean())
    a2, s2 = torch.sigmoid(-gauss.schedule.gamma_1.detach()), torch.sigmoid(gauss.schedule.gamma_1.detach())
    q1 = torch.distributions.MultivariateNormal(a2.sqrt() * gauss.mean, a2 * gauss.cov + s2 * torch.eye(gauss.D))
    prior = torch.distributions.MultivariateNormal(torch.zeros(gauss.D, dtype=F64), torch.eye(gauss.D, dtype=F64))
    kl_1 = float(torch.distributions.kl_divergence(q1, prior))
    print(f"\nexact mean log N {float(gauss.exact.mean()):.5f}  closed-form bound {float(closed.mean()):.5f}  "
          f"gap {gap:.2e} (sample), {expected_gap:.2e} (expectation), KL(q1 || N(0, I)) {kl_1:.2e}")
    assert abs(gap) <= 1e-3 * gauss.D
    assert 0.0 <= expected_gap <= 1e-3 * gauss.D
    assert abs(expected_gap - kl_1) < 1e-4


def test_discrete_bounds_increase_toward_the_continuous_one(gauss):
    pts = sigma_points(gauss.mean, gauss.cov)  # exact expectations over y, t and eps

    def bound(n_steps):
        terms = gaussian_vlb_terms(pts, gauss.mean, gauss.cov, gauss.schedule, n_steps=n_steps)
        return float(terms.vlb.detach().mean())

    values = [bound(T) for T in (10, 100, 1000)] + [bound(None)]
    print("\nexpected bound, nats per point: T=10 {:.4f}  T=100 {:.4f}  T=1000 {:.4f}  continuous {:.4f}"
          .format(*values))
    print("  below the continuous one, nats per dimension: " + "  ".join(
        f"T={T} {(values[-1] - v) / gauss.D:.4f}" for T, v in zip((10, 100, 1000), values)))
    assert values[0] < values[1] < values[2] < values[3]


@pytest.mark.parametrize("control_variate", [False, True], ids=["plain", "control-variate"])
@pytest.mark.parametrize("n_steps", [10, 1000])
def test_discrete_monte_carlo_agrees_with_its_closed_form(gauss, n_steps, control_variate):
    t, eps = _draws(gauss.n, gauss.D, 8, seed=1)
    draws = vlb(gauss.y, gauss.schedule, gauss.denoiser, t, eps, n_steps=n_steps,
                control_variate=control_variate).detach().mean(-1)
    closed = gaussian_vlb_terms(gauss.y, gauss.mean, gauss.cov, gauss.schedule, n_steps=n_steps).vlb.detach()
    diff = draws - closed
    assert abs(float(diff.mean())) < 3 * float(diff.std() / math.sqrt(gauss.n))


class _Bound(torch.nn.Module):
    """The per-row bound as a module, so torch.func.functional_call can swap its parameters."""

    def __init__(self, schedule, denoiser, y, t, eps, **kwargs):
        super().__init__()
        self.schedule, self.denoiser = schedule, denoiser
        self.args, self.kwargs = (y, t, eps), kwargs

    def forward(self):
        y, t, eps = self.args
        return vlb(y, self.schedule, self.denoiser, t, eps, **self.kwargs)


@pytest.mark.parametrize("control_variate", [False, True], ids=["plain", "control-variate"])
@pytest.mark.parametrize("n_steps", [None, 10], ids=["continuous", "T=10"])
@pytest.mark.parametrize("schedule", ["linear", "monotone"])
def test_gradients_match_finite_differences(gauss, schedule, n_steps, control_variate):
    g = torch.Generator().manual_seed(3)
    kwargs = {"n_features": 4, "generator": g} if schedule == "monotone" else {}
    denoiser = ResidualDenoiser(gauss.D, width=6, depth=1, embedding_dim=4, generator=g).double()
    with torch.no_grad():  # away from the zero start, so every parameter has a gradient
        denoiser.output.weight.normal_(0.0, 0.3, generator=g)
    y = gauss.y[:4]
    t, eps = _draws(4, gauss.D, None, seed=4)
    module = _Bound(make_schedule(schedule, **kwargs).double(), denoiser, y, t, eps, n_steps=n_steps,
                    control_variate=control_variate)
    names = [n for n, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in module.parameters())

    def bound(*values):
        return torch.func.functional_call(module, dict(zip(names, values)), ())

    assert torch.autograd.gradcheck(bound, params, fast_mode=True)


def test_times_spread_evenly():
    t = low_discrepancy_times(torch.tensor([0.0, 0.3, 0.95], dtype=F64), 5)
    assert t.shape == (3, 5)
    assert bool(((t >= 0) & (t < 1)).all())
    torch.testing.assert_close(t.sort(-1).values.diff(), torch.full((3, 4), 0.2, dtype=F64))


def test_draws_per_row_equal_the_flattened_rows(gauss):
    t, eps = _draws(6, gauss.D, 3, seed=5)
    y = gauss.y[:6]
    per_row = vlb(y, gauss.schedule, gauss.denoiser, t, eps)
    flat = vlb(y.repeat_interleave(3, 0), gauss.schedule, gauss.denoiser, t.reshape(-1), eps.reshape(-1, gauss.D))
    torch.testing.assert_close(per_row.reshape(-1), flat)


def test_generator_determinism_and_no_global_rng(gauss):
    state = torch.random.get_rng_state()

    def run(seed):
        t, eps = _draws(gauss.n, gauss.D, None, seed)
        return vlb(gauss.y, gauss.schedule, gauss.denoiser, t, eps)

    a, b, c = run(7), run(7), run(8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_terms_and_their_sum(gauss):
    t, eps = _draws(5, gauss.D, None, seed=6)
    terms = vlb_terms(gauss.y[:5], gauss.schedule, gauss.denoiser, t, eps)
    torch.testing.assert_close(terms.vlb, -(terms.reconstruction + terms.prior + terms.diffusion))
    assert all(x.shape == (5,) for x in terms)


@pytest.mark.parametrize("shapes, match", [
    (((4,), (4,), (4, 4)), r"y must be a matrix \(n_samples, n_features\); got shape \(4,\)"),
    (((5, 4), (4,), (4, 4)), r"t must have shape \(n,\) or \(n, n_draws\) with n = 5 rows of y; got \(4,\)"),
    (((5, 4), (5,), (5, 3)), r"eps must have shape t.shape \+ \(n_features,\) = \(5, 4\); got \(5, 3\)"),
])
def test_shape_errors(gauss, shapes, match):
    y, t, eps = (torch.zeros(s, dtype=F64) for s in shapes)
    with pytest.raises(ValueError, match=match):
        vlb(y, gauss.schedule, gauss.denoiser, t, eps)


def test_bad_n_steps(gauss):
    t, eps = _draws(5, gauss.D, None, seed=6)
    with pytest.raises(ValueError, match="n_steps must be None \\(continuous time\\) or a positive integer; got 0"):
        vlb(gauss.y[:5], gauss.schedule, gauss.denoiser, t, eps, n_steps=0)
    with pytest.raises(ValueError, match="n_steps must be None"):
        gaussian_vlb_terms(gauss.y[:5], gauss.mean, gauss.cov, gauss.schedule, n_steps=2.5)


def test_bad_number_of_times():
    with pytest.raises(ValueError, match="The number of times must be a positive integer; got 0"):
        low_discrepancy_times(torch.tensor(0.5), 0)


def test_the_model_module_is_the_bound(gauss):
    model = VariationalDiffusion(gauss.schedule, ResidualDenoiser(gauss.D, width=8, depth=1).double())
    t, eps = _draws(5, gauss.D, 3, seed=9)
    y = gauss.y[:5]
    torch.testing.assert_close(model(y, t, eps, n_steps=10),
                               vlb(y, model.schedule, model.denoiser, t, eps, n_steps=10))
    model(y, t, eps).mean().backward()
    assert all(p.grad is not None for p in model.parameters())
