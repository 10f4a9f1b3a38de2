"""Noise schedules: endpoints, monotonicity, derivatives, registry, randomness."""

import pytest
import torch

from lvm.diffusion import SCHEDULES, LinearSchedule, MonotoneSchedule, alpha_sigma, make_schedule


def _schedule(name):
    return make_schedule(name).double()


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_initial_endpoints(name):
    s = _schedule(name)
    ends = s(torch.tensor([0.0, 1.0], dtype=torch.float64))
    # built in float32 (the default dtype), then converted
    torch.testing.assert_close(ends, torch.tensor([-13.3, 5.0], dtype=torch.float64), rtol=0, atol=1e-5)
    torch.testing.assert_close(ends, torch.stack([s.gamma_0, s.gamma_1]).detach())


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_monotone_whatever_the_parameters(name):
    s = _schedule(name)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in s.parameters():
            p.add_(3.0 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    gamma, slope = s.with_derivative(t)
    assert bool((gamma.diff() > 0).all())
    assert bool((slope > 0).all())
    assert float(s.gamma_1.detach()) > float(s.gamma_0.detach())


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_derivative_matches_finite_differences(name):
    s = _schedule(name)
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    h = 1e-6
    fd = (s(t + h) - s(t - h)) / (2 * h)
    torch.testing.assert_close(s.derivative(t), fd, rtol=1e-6, atol=1e-6)


class _Slope(torch.nn.Module):
    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def forward(self, t):
        return self.schedule.derivative(t)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_derivative_is_differentiable_in_the_parameters(name):
    # the diffusion term's weight gamma'(t) is trained through; check its gradients
    kwargs = {"n_features": 8} if name == "monotone" else {}
    wrapper = _Slope(make_schedule(name, **kwargs).double())
    names = [n for n, _ in wrapper.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in wrapper.parameters())
    t = torch.linspace(0, 1, 7, dtype=torch.float64)

    def slope(*values):
        return torch.func.functional_call(wrapper, dict(zip(names, values)), (t,))

    assert torch.autograd.gradcheck(slope, params)


def test_alpha_sigma_variance_preserving():
    gamma = torch.linspace(-15, 15, 31, dtype=torch.float64)
    alpha, sigma = alpha_sigma(gamma)
    torch.testing.assert_close(alpha ** 2 + sigma ** 2, torch.ones_like(gamma))
    torch.testing.assert_close(torch.log(sigma ** 2 / alpha ** 2), gamma)


def test_monotone_schedule_initialization_is_seeded_and_leaves_the_global_rng():
    state = torch.random.get_rng_state()
    a = MonotoneSchedule(generator=torch.Generator().manual_seed(3))
    b = MonotoneSchedule(generator=torch.Generator().manual_seed(3))
    c = MonotoneSchedule(generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.raw_hidden, c.raw_hidden)


def test_unknown_schedule():
    with pytest.raises(ValueError, match=r"Unknown noise schedule 'cosine'; choose one of \['linear', 'monotone'\]"):
        make_schedule("cosine")


def test_endpoints_out_of_order():
    with pytest.raises(ValueError, match="gamma_min < gamma_max"):
        LinearSchedule(5.0, -13.3)


def test_monotone_n_features():
    with pytest.raises(ValueError, match="n_features of MonotoneSchedule must be a positive integer"):
        MonotoneSchedule(n_features=0)
