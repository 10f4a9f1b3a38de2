"""Must-show 1: closed-form psi-statistics equal Monte Carlo estimates to sampling error."""

import pytest
import torch

from lvm.gplvm.kernels import make_kernel
from lvm.gplvm.psi import psi_statistics

N, M, Q, S = 6, 5, 3, 200_000


@pytest.fixture(scope="module")
def problem():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(N, Q, generator=g, dtype=torch.float64)
    var = 0.1 + 0.6 * torch.rand(N, Q, generator=g, dtype=torch.float64)
    Z = torch.randn(M, Q, generator=g, dtype=torch.float64)
    x = mu + var.sqrt() * torch.randn(S, N, Q, generator=g, dtype=torch.float64)
    return mu, var, Z, x


def _kernel(name):
    k = make_kernel(name, Q).to(torch.float64)
    if name == "rbf":
        k.base_kernel.lengthscale = torch.tensor([0.7, 1.3, 2.5], dtype=torch.float64)
        k.outputscale = torch.tensor(1.7, dtype=torch.float64)
    else:
        k.variance = torch.tensor([0.5, 1.5, 0.8], dtype=torch.float64)
    return k


def _monte_carlo(k, Z, x):
    """Sample means and their standard errors of k(x,x), k(x,Z) and k(Z,x)k(x,Z) per point."""
    with torch.no_grad():
        Kxz = k(x.reshape(-1, Q), Z).to_dense().reshape(S, N, M)
        kxx = k(x.reshape(-1, Q), diag=True).reshape(S, N)
        outer = Kxz.unsqueeze(-1) * Kxz.unsqueeze(-2)  # (S, N, M, M)
    return [(t.mean(0), t.std(0) / S**0.5) for t in (kxx, Kxz, outer)]


@pytest.mark.parametrize("name", ["rbf", "linear"])
def test_psi_statistics_match_monte_carlo(problem, name):
    mu, var, Z, x = problem
    k = _kernel(name)
    with torch.no_grad():
        per_point = psi_statistics(k, mu, var, Z, per_point=True)
        summed = psi_statistics(k, mu, var, Z)
    (e0, se0), (e1, se1), (e2, se2) = _monte_carlo(k, Z, x)
    z0 = ((per_point.psi0 - e0).abs() / se0.clamp_min(1e-12)).max()
    z1 = ((per_point.psi1 - e1).abs() / se1.clamp_min(1e-12)).max()
    z2 = ((per_point.psi2 - e2).abs() / se2.clamp_min(1e-12)).max()
    print(f"{name}: max |closed - MC| / s.e. = {float(z0):.2f}, {float(z1):.2f}, {float(z2):.2f}; "
          f"max abs error psi1 {float((per_point.psi1 - e1).abs().max()):.2e}, "
          f"psi2 {float((per_point.psi2 - e2).abs().max()):.2e}")
    # Up to N M^2 = 150 comparisons: 5 standard errors is a generous family-wise bound.
    assert float(z0) < 5 and float(z1) < 5 and float(z2) < 5
    torch.testing.assert_close(summed.psi2, per_point.psi2.sum(0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(summed.psi1, per_point.psi1)


def test_psi2_chunked_sum_matches(monkeypatch, problem):
    import lvm.gplvm.psi as psi

    mu, var, Z, _ = problem
    k = _kernel("rbf")
    full = psi.psi_statistics(k, mu, var, Z)
    monkeypatch.setattr(psi, "PSI2_CHUNK", 4)
    chunked = psi.psi_statistics(k, mu, var, Z)
    torch.testing.assert_close(full.psi2, chunked.psi2, rtol=1e-12, atol=1e-12)


def test_no_closed_form_for_matern(problem):
    mu, var, Z, _ = problem
    with pytest.raises(ValueError, match="No closed-form psi-statistics for ScaleKernel"):
        psi_statistics(make_kernel("matern", Q).to(torch.float64), mu, var, Z)
