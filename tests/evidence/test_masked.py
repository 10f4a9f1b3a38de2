"""The masked linear-Gaussian evidence, posterior and conditional against brute-force Gaussians."""

import mpmath
import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from lvm.evidence import linear_gaussian_posterior, low_rank_gaussian_log_prob
from lvm.evidence.masked import (
    masked_conditional,
    masked_linear_gaussian_posterior,
    masked_low_rank_gaussian_log_prob,
    posterior_std,
)

N, D, K = 150, 8, 3


def _problem(noise_kind, scale=1.0, seed=0):
    """Model parameters, data from the model and a random mask (rows 0-14 see one entry only)."""
    g = np.random.default_rng(seed)
    W = g.standard_normal((D, K))
    mu = g.standard_normal(D)
    psi = scale * (g.uniform(0.1, 1.0, D) if noise_kind == "per_feature" else np.full(D, 0.4))
    Y = g.standard_normal((N, K)) @ W.T + mu + g.standard_normal((N, D)) * np.sqrt(psi)
    mask = g.random((N, D)) < 0.6
    mask[np.arange(N), g.integers(0, D, N)] = True
    mask[:15] = False
    mask[np.arange(15), g.integers(0, D, 15)] = True
    return Y, mask, mu, W, psi


def _t(*arrays):
    return [torch.as_tensor(a) for a in arrays]


def _with_nan(Y, mask):
    return np.where(mask, Y, np.nan)


@pytest.fixture(params=["shared", "per_feature"])
def problem(request):
    return _problem(request.param)


def test_log_prob_equals_brute_force(problem):
    Y, mask, mu, W, psi = problem
    ours = masked_low_rank_gaussian_log_prob(*_t(_with_nan(Y, mask), mask, mu, W, psi)).numpy()
    C = W @ W.T + np.diag(psi)
    brute = np.array([multivariate_normal(mu[m], C[np.ix_(m, m)]).logpdf(Y[n, m])
                      for n, m in enumerate(mask)])
    err = np.max(np.abs(ours - brute) / np.abs(brute))
    print(f"masked evidence vs scipy, max relative error: {err:.2e}")
    assert err < 1e-8


def test_full_mask_equals_complete_data_value(problem):
    Y, _, mu, W, psi = problem
    full = np.ones_like(Y, dtype=bool)
    ours = masked_low_rank_gaussian_log_prob(*_t(Y, full, mu, W, psi))
    complete = low_rank_gaussian_log_prob(*_t(Y, mu, W, psi))
    torch.testing.assert_close(ours, complete, rtol=1e-12, atol=0)


def _mp_log_prob(y, m, mu, W, psi):
    """log N(y_o; mu_o, C_oo) in 50-digit arithmetic (mpmath Cholesky)."""
    o = np.flatnonzero(m)
    C = mpmath.matrix(len(o), len(o))
    for a, i in enumerate(o):
        for b, j in enumerate(o):
            C[a, b] = mpmath.fsum(mpmath.mpf(W[i, k]) * mpmath.mpf(W[j, k]) for k in range(K))
            if i == j:
                C[a, b] += mpmath.mpf(psi[i])
    r = mpmath.matrix([mpmath.mpf(y[i]) - mpmath.mpf(mu[i]) for i in o])
    L = mpmath.cholesky(C)
    z = mpmath.lu_solve(L, r)
    logdet = 2 * mpmath.fsum(mpmath.log(L[a, a]) for a in range(len(o)))
    return float(-0.5 * (len(o) * mpmath.log(2 * mpmath.pi) + logdet
                         + mpmath.fsum(zi**2 for zi in z)))


def test_tiny_noise_stays_accurate_where_woodbury_fails():
    # Noise variance 1e-12 of the signal's: C_oo has condition number ~1e12, so the reference is
    # computed with 50 digits. Rows 0-14 observe one entry (fewer than K: W_o is rank deficient).
    with mpmath.workdps(50):
        Y, mask, mu, W, psi = _problem("per_feature", scale=1e-12, seed=1)
        rows = np.r_[0:15, 15:40]
        ours = masked_low_rank_gaussian_log_prob(*_t(_with_nan(Y, mask), mask, mu, W, psi))
        brute = np.array([_mp_log_prob(Y[n], mask[n], mu, W, psi) for n in rows])
        err = np.max(np.abs(ours.numpy()[rows] - brute) / np.abs(brute))

        full = np.ones_like(mask)
        ours_full = masked_low_rank_gaussian_log_prob(*_t(Y, full, mu, W, psi)).numpy()[:20]
        complete = low_rank_gaussian_log_prob(*_t(Y, mu, W, psi)).numpy()[:20]
        brute_full = np.array([_mp_log_prob(Y[n], full[n], mu, W, psi) for n in range(20)])
    err_full = np.max(np.abs(ours_full - brute_full) / np.abs(brute_full))
    err_complete = np.max(np.abs(complete - brute_full) / np.abs(brute_full))
    print(f"tiny noise, max relative error: masked {err:.2e}, full mask {err_full:.2e}, "
          f"complete-data evidence {err_complete:.2e}")
    assert err < 1e-8 and err_full < 1e-8
    # The complete-data evidence uses the same residual form (the Woodbury difference
    # r^T Psi^-1 r - b^T M^-1 b it replaced was off by 4.9e-5 here).
    assert err_complete < 1e-8


def test_missing_entries_never_touch_the_arithmetic(problem):
    Y, mask, mu, W, psi = problem
    garbage = np.where(mask, Y, np.inf)
    garbage[~mask & (np.arange(D) % 2 == 0)] = 1e300
    for f in (masked_low_rank_gaussian_log_prob, masked_linear_gaussian_posterior):
        a = f(*_t(_with_nan(Y, mask), mask, mu, W, psi))
        b = f(*_t(garbage, mask, mu, W, psi))
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            assert torch.isfinite(x).all()
            torch.testing.assert_close(x, y, rtol=0, atol=0)
    a = masked_conditional(*_t(_with_nan(Y, mask), mask, mu, W, psi))
    b = masked_conditional(*_t(garbage, mask, mu, W, psi))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_posterior_equals_gaussian_conditioning(problem):
    Y, mask, mu, W, psi = problem
    means, covs = masked_linear_gaussian_posterior(*_t(_with_nan(Y, mask), mask, mu, W, psi))
    C = W @ W.T + np.diag(psi)
    for n, m in enumerate(mask):  # x | y_o from the joint Gaussian of (x, y_o): cov(x, y_o) = W_o^T
        gain = np.linalg.solve(C[np.ix_(m, m)], W[m]).T  # W_o^T C_oo^{-1}
        np.testing.assert_allclose(means[n].numpy(), gain @ (Y[n, m] - mu[m]), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(covs[n].numpy(), np.eye(K) - gain @ W[m], rtol=1e-9, atol=1e-12)
    std = posterior_std(covs)
    np.testing.assert_allclose(std.numpy(), np.sqrt(np.diagonal(covs.numpy(), axis1=1, axis2=2)))


def test_full_mask_posterior_equals_complete_data_posterior(problem):
    Y, _, mu, W, psi = problem
    means, covs = masked_linear_gaussian_posterior(*_t(Y, np.ones_like(Y, dtype=bool), mu, W, psi))
    ref_means, ref_std = linear_gaussian_posterior(*_t(Y, mu, W, psi))
    torch.testing.assert_close(means, ref_means, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(posterior_std(covs), ref_std.expand(N, K), rtol=1e-10, atol=1e-12)


def test_conditional_mean_equals_gaussian_conditioning(problem):
    Y, mask, mu, W, psi = problem
    filled = masked_conditional(*_t(_with_nan(Y, mask), mask, mu, W, psi)).numpy()
    C = W @ W.T + np.diag(psi)
    np.testing.assert_array_equal(filled[mask], Y[mask])
    for n, m in enumerate(mask):
        if m.all():
            continue
        h = ~m
        expected = mu[h] + C[np.ix_(h, m)] @ np.linalg.solve(C[np.ix_(m, m)], Y[n, m] - mu[m])
        np.testing.assert_allclose(filled[n, h], expected, rtol=1e-9, atol=1e-12)


def test_conditional_draws_have_the_conditional_moments():
    Y, mask, mu, W, psi = _problem("per_feature")
    n = 20  # a row observing 3 of 8 entries, repeated
    row = np.zeros(D, dtype=bool)
    row[[1, 4, 6]] = True
    reps = 40000
    Yr, Mr = np.repeat(Y[n:n + 1], reps, 0), np.repeat(row[None], reps, 0)
    gen = torch.Generator().manual_seed(0)
    draws = masked_conditional(*_t(_with_nan(Yr, Mr), Mr, mu, W, psi), sample=True,
                               generator=gen).numpy()
    np.testing.assert_array_equal(draws[:, row], Yr[:, row])
    C = W @ W.T + np.diag(psi)
    h = ~row
    gain = C[np.ix_(h, row)] @ np.linalg.inv(C[np.ix_(row, row)])
    mean = mu[h] + gain @ (Y[n, row] - mu[row])
    cov = C[np.ix_(h, h)] - gain @ C[np.ix_(row, h)]
    se = np.sqrt(np.diag(cov) / reps)
    assert np.all(np.abs(draws[:, h].mean(0) - mean) < 5 * se)
    np.testing.assert_allclose(np.cov(draws[:, h].T), cov, atol=0.05 * np.abs(cov).max())


def test_conditional_draws_are_reproducible_and_chunk_independent(problem):
    Y, mask, mu, W, psi = problem
    args = _t(_with_nan(Y, mask), mask, mu, W, psi)
    a = masked_conditional(*args, sample=True, generator=torch.Generator().manual_seed(3))
    b = masked_conditional(*args, sample=True, generator=torch.Generator().manual_seed(3),
                           chunk_size=7)
    c = masked_conditional(*args, sample=True, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(a, c)


def test_chunk_size_does_not_change_results(problem):
    Y, mask, mu, W, psi = problem
    args = _t(_with_nan(Y, mask), mask, mu, W, psi)
    torch.testing.assert_close(masked_low_rank_gaussian_log_prob(*args),
                               masked_low_rank_gaussian_log_prob(*args, chunk_size=7),
                               rtol=1e-13, atol=0)
    for x, y in zip(masked_linear_gaussian_posterior(*args),
                    masked_linear_gaussian_posterior(*args, chunk_size=1)):
        torch.testing.assert_close(x, y, rtol=1e-13, atol=1e-15)


def test_gradient_equals_brute_force_gradient():
    Y, mask, mu, W, psi = _problem("per_feature")
    Y, mask = Y[:25], mask[:25]
    Wt = torch.tensor(W, requires_grad=True)
    masked_low_rank_gaussian_log_prob(*_t(_with_nan(Y, mask), mask, mu), Wt, torch.tensor(psi)).sum() \
        .backward()
    Wb = torch.tensor(W, requires_grad=True)
    total = 0.0
    for n, m in enumerate(torch.tensor(mask)):
        C = Wb[m] @ Wb[m].T + torch.diag(torch.tensor(psi)[m])
        total = total + torch.distributions.MultivariateNormal(torch.tensor(mu)[m], C).log_prob(
            torch.tensor(Y[n])[m])
    total.backward()
    torch.testing.assert_close(Wt.grad, Wb.grad, rtol=1e-9, atol=1e-12)


def test_float32_inputs_give_float32():
    Y, mask, mu, W, psi = _problem("shared")
    args = [torch.as_tensor(a, dtype=torch.float32) for a in (_with_nan(Y, mask), mu, W, psi)]
    out = masked_low_rank_gaussian_log_prob(args[0], torch.tensor(mask), *args[1:])
    ref = masked_low_rank_gaussian_log_prob(*_t(_with_nan(Y, mask), mask, mu, W, psi))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)


def test_rows_with_nothing_observed_are_named():
    Y, mask, mu, W, psi = _problem("shared")
    mask[[2, 5]] = False
    for f in (masked_low_rank_gaussian_log_prob, masked_linear_gaussian_posterior,
              masked_conditional):
        with pytest.raises(ValueError, match=r"2 row\(s\) of Y have no observed entry \(rows \[2, 5\]\)"):
            f(*_t(_with_nan(Y, mask), mask, mu, W, psi))


def test_observed_non_finite_entries_are_an_error():
    Y, mask, mu, W, psi = _problem("shared")
    Y = Y.copy()
    Y[3, np.flatnonzero(mask[3])[0]] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity at 1 entries that mask marks as observed"):
        masked_low_rank_gaussian_log_prob(*_t(Y, mask, mu, W, psi))


@pytest.mark.parametrize("bad, match", [
    (dict(mask=np.ones((N, D), dtype=int)), "mask must be a bool tensor"),
    (dict(W=np.ones((D + 1, K))), "W must have shape"),
    (dict(mu=np.ones(D + 1)), "mean must have shape"),
    (dict(psi=-np.ones(D)), "positive variances"),
])
def test_bad_arguments_are_named(bad, match):
    Y, mask, mu, W, psi = _problem("shared")
    kw = dict(mask=mask, mu=mu, W=W, psi=psi) | bad
    with pytest.raises(ValueError, match=match):
        masked_low_rank_gaussian_log_prob(*_t(Y, kw["mask"], kw["mu"], kw["W"], kw["psi"]))


@pytest.mark.gpu
def test_cuda_matches_cpu(problem):
    Y, mask, mu, W, psi = problem
    cpu = _t(_with_nan(Y, mask), mask, mu, W, psi)
    gpu = [a.cuda() for a in cpu]
    torch.testing.assert_close(masked_low_rank_gaussian_log_prob(*gpu).cpu(),
                               masked_low_rank_gaussian_log_prob(*cpu), rtol=1e-10, atol=0)
    for x, y in zip(masked_linear_gaussian_posterior(*gpu), masked_linear_gaussian_posterior(*cpu)):
        torch.testing.assert_close(x.cpu(), y, rtol=1e-10, atol=1e-12)
    draw = masked_conditional(*gpu, sample=True,
                              generator=torch.Generator(device="cuda").manual_seed(0))
    assert draw.is_cuda and torch.isfinite(draw).all()
