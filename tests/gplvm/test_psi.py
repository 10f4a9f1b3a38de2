"""Must-show 1: closed-form psi-statistics equal Monte Carlo estimates to sampling error."""

import gpytorch
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


def _set(k):
    if isinstance(k, gpytorch.kernels.AdditiveKernel):
        for part in k.kernels:
            _set(part)
    elif isinstance(k, gpytorch.kernels.ScaleKernel):
        k.base_kernel.lengthscale = torch.tensor([0.7, 1.3, 2.5], dtype=torch.float64)
        k.outputscale = torch.tensor(1.7, dtype=torch.float64)
    else:
        k.variance = torch.tensor([0.5, 1.5, 0.8], dtype=torch.float64)
    return k


def _kernel(name):
    if name == "rbf+linear":  # the same sum, built with GPyTorch's + in the other order
        return _set(make_kernel("rbf", Q).to(torch.float64) + make_kernel("linear", Q).to(torch.float64))
    return _set(make_kernel(name, Q).to(torch.float64))


KERNEL_NAMES = ["rbf", "linear", "linear+rbf", "rbf+linear"]


def _monte_carlo(k, Z, x):
    """Sample means and their standard errors of k(x,x), k(x,Z) and k(Z,x)k(x,Z) per point."""
    with torch.no_grad():
        Kxz = k(x.reshape(-1, Q), Z).to_dense().reshape(S, N, M)
        kxx = k(x.reshape(-1, Q), diag=True).reshape(S, N)
        outer = Kxz.unsqueeze(-1) * Kxz.unsqueeze(-2)  # (S, N, M, M)
    return [(t.mean(0), t.std(0) / S**0.5) for t in (kxx, Kxz, outer)]


@pytest.mark.parametrize("name", KERNEL_NAMES)
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


def test_linear_rbf_cross_term_matches_monte_carlo(problem):
    """The cross term X + X^T of the sum's Psi_2 alone (the linear part would dominate the
    comparison above): Psi_2^sum - Psi_2^lin - Psi_2^rbf against E[k_lin k_rbf^T + k_rbf k_lin^T]."""
    mu, var, Z, x = problem
    k = _kernel("linear+rbf")
    lin, rbf = k.kernels
    with torch.no_grad():
        closed = (psi_statistics(k, mu, var, Z, per_point=True).psi2
                  - psi_statistics(lin, mu, var, Z, per_point=True).psi2
                  - psi_statistics(rbf, mu, var, Z, per_point=True).psi2)
        Kl = lin(x.reshape(-1, Q), Z).to_dense().reshape(S, N, M)
        Kr = rbf(x.reshape(-1, Q), Z).to_dense().reshape(S, N, M)
        draws = Kl.unsqueeze(-1) * Kr.unsqueeze(-2)
        draws = draws + draws.mT
    e, se = draws.mean(0), draws.std(0) / S**0.5
    z = float(((closed - e).abs() / se.clamp_min(1e-12)).max())
    print(f"cross term: max |closed - MC| / s.e. = {z:.2f}, max abs error "
          f"{float((closed - e).abs().max()):.2e} (largest entry {float(e.abs().max()):.2f})")
    assert z < 5


@pytest.mark.parametrize("name", KERNEL_NAMES)
@pytest.mark.parametrize("chunk", [4, 2048])
def test_weighted_psi2_is_the_weighted_sum_of_per_point(monkeypatch, problem, name, chunk):
    import lvm.gplvm.psi as psi

    monkeypatch.setattr(psi, "PSI2_CHUNK", chunk)
    monkeypatch.setattr(psi, "PSI2_UNCHUNKED_ELEMENTS", 0)
    mu, var, Z, _ = problem
    k = _kernel(name)
    w = torch.rand(N, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        per_point = psi.psi_statistics(k, mu, var, Z, per_point=True)
        weighted = psi.psi_statistics(k, mu, var, Z, weights=w)
    assert weighted.psi2.shape == (4, M, M)
    torch.testing.assert_close(weighted.psi2, torch.einsum("nd,nmk->dmk", w, per_point.psi2),
                               rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(weighted.psi1, per_point.psi1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(weighted.psi0, per_point.psi0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_a_boolean_mask_weighs_as_zeros_and_ones(problem, name):
    mu, var, Z, _ = problem
    k = _kernel(name)
    mask = torch.rand(N, 3, generator=torch.Generator().manual_seed(2)) < 0.7
    with torch.no_grad():
        as_bool = psi_statistics(k, mu, var, Z, weights=mask)
        as_float = psi_statistics(k, mu, var, Z, weights=mask.to(torch.float64))
    torch.testing.assert_close(as_bool.psi2, as_float.psi2, rtol=0, atol=0)


def test_weights_with_per_point_raise(problem):
    mu, var, Z, _ = problem
    with pytest.raises(ValueError, match="weights sum Psi_2 over the points"):
        psi_statistics(_kernel("linear+rbf"), mu, var, Z, per_point=True,
                       weights=torch.ones(N, 2, dtype=torch.float64))


@pytest.mark.parametrize("name", ["rbf", "linear+rbf"])
def test_psi2_chunked_sum_matches(monkeypatch, problem, name):
    import lvm.gplvm.psi as psi

    mu, var, Z, _ = problem
    k = _kernel(name)
    full = psi.psi_statistics(k, mu, var, Z)
    monkeypatch.setattr(psi, "PSI2_CHUNK", 4)
    monkeypatch.setattr(psi, "PSI2_UNCHUNKED_ELEMENTS", 0)
    chunked = psi.psi_statistics(k, mu, var, Z)
    torch.testing.assert_close(full.psi2, chunked.psi2, rtol=1e-12, atol=1e-12)


def test_no_closed_form_for_matern(problem):
    mu, var, Z, _ = problem
    with pytest.raises(ValueError, match="No closed-form psi-statistics for ScaleKernel"):
        psi_statistics(make_kernel("matern", Q).to(torch.float64), mu, var, Z)


def test_no_closed_form_for_other_sums(problem):
    mu, var, Z, _ = problem
    k = (make_kernel("linear", Q) + make_kernel("matern", Q)).to(torch.float64)
    with pytest.raises(ValueError, match="No closed-form psi-statistics for AdditiveKernel"):
        psi_statistics(k, mu, var, Z)


@pytest.mark.parametrize("name", KERNEL_NAMES)
@pytest.mark.parametrize("per_row", [False, True])
def test_contracted_psi2_is_the_trace_with_each_point(problem, name, per_row):
    """contract=G gives tr(G Psi_2^(n)) per point (packed pairs for the RBF kernel)."""
    mu, var, Z, _ = problem
    k = _kernel(name)
    M = Z.shape[0]
    A = torch.randn((N, M, M) if per_row else (M, M), generator=torch.Generator().manual_seed(3),
                    dtype=torch.float64)
    G = A + A.mT
    full = psi_statistics(k, mu, var, Z, per_point=True)
    got = psi_statistics(k, mu, var, Z, per_point=True, contract=G)
    assert got.psi2.shape == (N,)
    torch.testing.assert_close(got.psi2, (full.psi2 * G).sum((-1, -2)), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(got.psi1, full.psi1)


@pytest.mark.parametrize("weighted", [False, True])
def test_exp_sum_gradient_matches_finite_differences(weighted):
    from lvm.gplvm.psi import _ExpSum

    g = torch.Generator().manual_seed(1)
    F = (0.5 * torch.randn(7, 5, generator=g, dtype=torch.float64)).requires_grad_()
    G = (0.5 * torch.randn(9, 5, generator=g, dtype=torch.float64)).requires_grad_()
    W = torch.rand(7, 3, generator=g, dtype=torch.float64).requires_grad_() if weighted else None
    args = (F, G, W)
    # Directional derivatives by central differences (gradcheck differentiates one graph twice,
    # which the backward's in-place reuse of E forbids: see the test below).
    up = torch.randn((3, 9) if weighted else (9,), generator=g, dtype=torch.float64)
    for i, x in enumerate(args):
        if x is None:
            continue
        u = torch.randn(x.shape, generator=g, dtype=torch.float64)
        (grad,) = torch.autograd.grad(_ExpSum.apply(*args), x, up)
        eps = 1e-6
        with torch.no_grad():
            shifted = [list(args), list(args)]
            shifted[0][i], shifted[1][i] = x + eps * u, x - eps * u
            change = _ExpSum.apply(*shifted[0]) - _ExpSum.apply(*shifted[1])
            numeric = (change * up).sum() / (2 * eps)
        torch.testing.assert_close((grad * u).sum(), numeric, rtol=1e-7, atol=0)
    # and equal to autograd's graph of the same expression
    out = _ExpSum.apply(*args)
    E = torch.exp(F @ G.T)
    ref = E.sum(0) if W is None else W.T @ E
    torch.testing.assert_close(out, ref, rtol=1e-14, atol=0)
    up = torch.randn(out.shape, generator=g, dtype=torch.float64)
    inputs = [t for t in args if t is not None]
    mine = torch.autograd.grad(out, inputs, up)
    theirs = torch.autograd.grad(ref, inputs, up)
    for a, b in zip(mine, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", ["rbf", "linear+rbf"])
def test_psi2_gradient_is_that_of_the_weighted_per_point_sum(problem, name):
    """The summed Psi_2's hand-written backward against autograd through the per-point stack."""
    mu, var, Z, _ = problem
    w = (torch.arange(N * 2).reshape(N, 2) % 3 != 0).to(torch.float64)
    up = torch.randn(2, M, M, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    grads = []
    for per_point in (False, True):
        k = _kernel(name)
        leaves = [mu.clone().requires_grad_(), var.clone().requires_grad_(),
                  Z.clone().requires_grad_()]
        if per_point:
            stack = psi_statistics(k, *leaves, per_point=True).psi2  # (N, M, M)
            psi2 = torch.einsum("nd,nmk->dmk", w, stack)
        else:
            psi2 = psi_statistics(k, *leaves, weights=w).psi2
        params = leaves + [p for p in k.parameters()]
        grads.append(torch.autograd.grad((psi2 * up).sum(), params))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_exp_sum_twice_through_one_graph_raises_not_a_wrong_gradient():
    from lvm.gplvm.psi import _ExpSum

    F = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    G = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    out = _ExpSum.apply(F, G, None).sum()
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="inplace"):
        out.backward()


@pytest.mark.parametrize("weighted", [False, True])
def test_psi2_chunked_gradient_matches(monkeypatch, problem, weighted):
    """The checkpointed row chunks recompute E in the backward pass, which then reuses it in
    place: the gradient equals the one-pass gradient."""
    import lvm.gplvm.psi as psi

    mu, var, Z, _ = problem
    w = (torch.arange(N * 2).reshape(N, 2) % 3 != 0).to(torch.float64) if weighted else None
    grads = []
    for chunked in (False, True):
        if chunked:
            monkeypatch.setattr(psi, "PSI2_CHUNK", 4)
            monkeypatch.setattr(psi, "PSI2_UNCHUNKED_ELEMENTS", 0)
        k = _kernel("rbf")
        leaves = [mu.clone().requires_grad_(), var.clone().requires_grad_(),
                  Z.clone().requires_grad_()]
        psi2 = psi.psi_statistics(k, *leaves, weights=w).psi2
        grads.append(torch.autograd.grad(psi2.square().sum(), leaves + list(k.parameters())))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
