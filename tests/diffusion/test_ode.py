"""The probability-flow ODE (must-show 2): likelihood against closed forms, Hutchinson, encoding;
the solvers on their own."""

import math

import pytest
import torch

from lvm.diffusion import (SOLVERS, LinearSchedule, MonotoneSchedule, OptimalGaussianDenoiser, ResidualDenoiser,
                           flow_decode, flow_encode, flow_log_prob, gaussian_flow_encode, gaussian_flow_log_prob,
                           odeint)
from lvm.diffusion.ode import EXACT_DIVERGENCE_MAX_DIM, rademacher_probes

F64 = torch.float64
OPTIONS = {"rk4": {"n_steps": 100}, "dopri5": {"rtol": 1e-8, "atol": 1e-10}}


@pytest.mark.parametrize("method", sorted(SOLVERS))
def test_flow_likelihood_matches_the_closed_form_flow(gauss, method):
    y = gauss.y[:30]
    ode = flow_log_prob(y, gauss.schedule, gauss.denoiser, method=method, options=OPTIONS[method])
    closed = gaussian_flow_log_prob(y, gauss.mean, gauss.cov, gauss.schedule).detach()
    mismatch = (closed - gauss.exact[:30]).abs().max()
    print(f"\n{method}: |ODE - closed-form flow| max {float((ode - closed).abs().max()):.1e} nats; the flow "
          f"with gamma_1 = 5 differs from log N(y; mu, Sigma) by up to {float(mismatch):.3f} (prior mismatch)")
    assert float((ode - closed).abs().max()) < 1e-5


@pytest.mark.parametrize("method", sorted(SOLVERS))
@pytest.mark.parametrize("centred, gamma_1", [(True, 12.0), (False, 16.0)], ids=["mu=0", "mu!=0"])
def test_flow_likelihood_reproduces_the_gaussian_density(gauss, method, centred, gamma_1):
    # The flow is the data's density up to the mismatch between q_1 = N(alpha_1 mu, A_1) and N(0, I):
    # per point of order alpha_1 |mu| |w| + alpha_1^2 |w|^2, so with gamma_1 = 5 (alpha_1 = 0.08) it
    # reaches 0.03 (mu = 0) to 0.19 nats (this mu). A larger gamma_1 removes it.
    schedule = LinearSchedule(-13.3, gamma_1).double()
    mean = torch.zeros_like(gauss.mean) if centred else gauss.mean
    y = gauss.y[:30] - gauss.mean + mean
    exact = torch.distributions.MultivariateNormal(mean, gauss.cov).log_prob(y)
    ode = flow_log_prob(y, schedule, OptimalGaussianDenoiser(mean, gauss.cov), method=method,
                        options=OPTIONS[method])
    err = (ode - exact).abs().max()
    print(f"\n{method}, gamma_1 = {gamma_1:g}: |ODE log-likelihood - log N(y; mu, Sigma)| max {float(err):.1e} nats")
    assert float(err) < 1e-3


def test_hutchinson_is_unbiased(gauss):
    y = gauss.y[:200]
    options = {"n_steps": 100}
    exact = flow_log_prob(y, gauss.schedule, gauss.denoiser, method="rk4", options=options, divergence="exact")
    hutch = flow_log_prob(y, gauss.schedule, gauss.denoiser, method="rk4", options=options,
                          divergence="hutchinson", n_probes=2, generator=torch.Generator().manual_seed(0))
    diff = hutch - exact
    se = float(diff.std() / math.sqrt(len(diff)))
    print(f"\nHutchinson - exact: {float(diff.mean()):+.4f} (SE {se:.4f}, per-point sd {float(diff.std()):.3f})")
    assert float(diff.std()) > 0 and abs(float(diff.mean())) < 3 * se


def test_explicit_probes_match_the_generator(gauss):
    y = gauss.y[:10]
    probes = rademacher_probes(3, y.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    kw = {"method": "rk4", "options": {"n_steps": 20}, "divergence": "hutchinson"}
    a = flow_log_prob(y, gauss.schedule, gauss.denoiser, probes=probes, **kw)
    b = flow_log_prob(y, gauss.schedule, gauss.denoiser, n_probes=3, generator=torch.Generator().manual_seed(1), **kw)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_encoding_and_decoding(gauss):
    y = gauss.y[:50]
    z1 = flow_encode(y, gauss.schedule, gauss.denoiser, options=OPTIONS["dopri5"])
    torch.testing.assert_close(z1, gaussian_flow_encode(y, gauss.mean, gauss.cov, gauss.schedule).detach(),
                               rtol=0, atol=1e-6)
    back = flow_decode(z1, gauss.schedule, gauss.denoiser, options=OPTIONS["dopri5"])
    print(f"\ndecode(encode(y)) - y: max {float((back - y).abs().max()):.1e}")
    torch.testing.assert_close(back, y, rtol=0, atol=1e-6)


def test_a_network_denoiser_runs_through_both_divergences():
    # the functorch path (vjp + vmap) with a real network and the jvp-based monotone schedule
    g = torch.Generator().manual_seed(2)
    net = ResidualDenoiser(3, width=8, depth=1, embedding_dim=4, generator=g).double()
    with torch.no_grad():
        net.output.weight.normal_(0.0, 0.3, generator=g)
    schedule = MonotoneSchedule(n_features=4, generator=g).double()
    y = torch.randn(40, 3, generator=g, dtype=F64)
    kw = {"method": "rk4", "options": {"n_steps": 20}}
    exact = flow_log_prob(y, schedule, net, divergence="exact", **kw)
    hutch = flow_log_prob(y, schedule, net, divergence="hutchinson", n_probes=32, generator=g, **kw)
    diff = hutch - exact
    assert torch.isfinite(exact).all()
    assert abs(float(diff.mean())) < 4 * float(diff.std() / math.sqrt(len(diff))) + 1e-12
    assert all(p.grad is None for p in net.parameters())


def test_auto_divergence_switches_to_hutchinson_above_the_threshold(gauss):
    y = torch.zeros(2, EXACT_DIVERGENCE_MAX_DIM + 1, dtype=F64)
    with pytest.raises(ValueError, match="Hutchinson's divergence estimator needs a generator"):
        flow_log_prob(y, gauss.schedule, lambda z, g: z)


def test_flow_errors(gauss):
    match = r"Unknown divergence 'trace'; choose one of \['exact', 'hutchinson', 'auto'\]"
    with pytest.raises(ValueError, match=match):
        flow_log_prob(gauss.y, gauss.schedule, gauss.denoiser, divergence="trace")
    with pytest.raises(ValueError, match=r"probes must have shape \(n_probes, 400, 4\); got \(400, 4\)"):
        flow_log_prob(gauss.y, gauss.schedule, gauss.denoiser, divergence="hutchinson", probes=gauss.y)


# ---------------------------------------------------------------- the solvers
def _decay(t, x):
    return -t * x  # x(t) = x(0) exp(-t^2 / 2)


@pytest.mark.parametrize("method", sorted(SOLVERS))
@pytest.mark.parametrize("t0, t1", [(0.0, 2.0), (2.0, 0.0)])
def test_solvers_on_a_known_solution(method, t0, t1):
    x0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=F64)
    x1 = odeint(_decay, x0, t0, t1, method=method, options=OPTIONS[method])
    torch.testing.assert_close(x1, x0 * math.exp(-(t1 ** 2 - t0 ** 2) / 2), rtol=1e-7, atol=1e-7)


def test_rk4_is_fourth_order():
    x0 = torch.ones(1, 1, dtype=F64)
    err = [float((odeint(_decay, x0, 0.0, 2.0, method="rk4", options={"n_steps": n}) - math.exp(-2.0)).abs())
           for n in (10, 20)]
    assert 12 < err[0] / err[1] < 20


def test_solver_errors():
    x0 = torch.ones(1, 1, dtype=F64)
    with pytest.raises(ValueError, match=r"Unknown ODE solver 'euler'; choose one of \['dopri5', 'rk4'\]"):
        odeint(_decay, x0, 0.0, 1.0, method="euler")
    with pytest.raises(RuntimeError, match="dopri5 did not reach t = 1 in max_steps=2 steps"):
        odeint(_decay, x0, 0.0, 1.0, options={"max_steps": 2, "rtol": 1e-12, "atol": 1e-12})
    with pytest.raises(ValueError, match="n_steps must be a positive integer; got 0"):
        odeint(_decay, x0, 0.0, 1.0, method="rk4", options={"n_steps": 0})
    with pytest.raises(ValueError, match="rtol and atol must be positive"):
        odeint(_decay, x0, 0.0, 1.0, options={"rtol": 0.0})
    with pytest.raises(RuntimeError, match="non-finite state"):
        odeint(lambda t, x: x * float("nan"), x0, 0.0, 1.0)
