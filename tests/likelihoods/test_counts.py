"""The count likelihoods (Poisson, negative binomial, binomial) against scipy.stats, a 1e6-draw
Monte Carlo of their expectations, and finite differences; their names with options, support
checks, sampling and pickling."""

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from scipy import stats

from lvm.likelihoods import (LIKELIHOODS, BinomialLikelihood, Likelihood,
                             NegativeBinomialLikelihood, PoissonLikelihood, get_likelihood,
                             parse_likelihood)

N_ROWS, N_FEATURES = 4, 3
TRIALS = [5, 12, 30]


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn((N_ROWS, N_FEATURES), generator=g, dtype=torch.float64) + 1.0
    var = torch.rand((N_ROWS, N_FEATURES), generator=g, dtype=torch.float64) * 0.5 + 0.05
    y = torch.poisson(torch.exp(mean), generator=g)
    return y, mean, var, g


def _negative_binomial():
    lik = NegativeBinomialLikelihood(N_FEATURES, torch.tensor([0.7, 4.0, 40.0])).double()
    return lik


def _binomial(n):
    return get_likelihood(f"binomial(n={n})")().double()


# (likelihood, counts fitting its support, scipy's log-pmf of (y, f) as a numpy array)
def _cases():
    y, f, _, _ = _problem()
    y_binom = torch.minimum(y, torch.tensor(TRIALS, dtype=torch.float64))
    nb = _negative_binomial()
    r = nb.total_count.detach().numpy()

    def nbinom(y, f):
        mu = np.exp(f)
        return stats.nbinom.logpmf(y, r, r / (r + mu))

    def binom(n):
        return lambda y, f: stats.binom.logpmf(y, n, 1 / (1 + np.exp(-f)))

    return {
        "poisson": (PoissonLikelihood(), y, lambda y, f: stats.poisson.logpmf(y, np.exp(f))),
        "negative_binomial": (nb, y, nbinom),
        "binomial-constant": (_binomial(40), y.clamp_max(40), binom(40)),
        "binomial-per-feature": (_binomial(TRIALS), y_binom, binom(np.array(TRIALS))),
        "binomial-total": (_binomial("total"), y,
                           lambda y, f: binom(y.sum(-1, keepdims=True))(y, f)),
    }


CASES = list(_cases())


@pytest.mark.parametrize("case", CASES)
def test_log_prob_equals_scipy(case):
    lik, y, reference = _cases()[case]
    _, f, _, _ = _problem()
    expected = reference(y.numpy(), f.numpy()).sum(-1)
    got = lik.log_prob(y, f).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    assert (lik._log_prob_entries(y, f) <= 0).all()  # a log-probability, never above 0


@pytest.mark.parametrize("case", CASES)
def test_expected_log_prob_equals_a_million_draw_monte_carlo(case):
    lik, y, _ = _cases()[case]
    _, mean, var, g = _problem()
    n = 1_000_000
    y, mean, var = y[:2], mean[:2], var[:2]  # two rows keep the million draws fast
    values = torch.empty(n, 2, dtype=torch.float64)
    with torch.no_grad():
        for chunk in torch.arange(n).split(250_000):  # bounded memory
            f = mean + var.sqrt() * torch.randn((len(chunk), 2, N_FEATURES), generator=g,
                                                dtype=torch.float64)
            values[chunk] = lik.log_prob(y, f)
        got = lik.expected_log_prob(y, mean, var)
    mc, se = values.mean(0), values.std(0) / math.sqrt(n)
    print(f"\n{case}: expected log p {got.tolist()}, Monte Carlo {mc.tolist()} +- {se.tolist()}")
    assert (torch.abs(got - mc) < 3 * se).all(), (got, mc, se)


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_finite_differences(case):
    lik, y, _ = _cases()[case]
    _, mean, var, _ = _problem()
    mean, var = mean.clone().requires_grad_(), var.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda f: lik.log_prob(y, f), (mean,))
    assert torch.autograd.gradcheck(lambda m, v: lik.expected_log_prob(y, m, v), (mean, var))
    if isinstance(lik, NegativeBinomialLikelihood):  # and in the learned size
        raw = lik.raw_total_count.detach().clone().requires_grad_()

        def in_size(raw):
            r = torch.nn.functional.softplus(raw) + lik._MIN_TOTAL_COUNT
            log_sum = torch.logaddexp(torch.log(r), mean.detach())
            return (torch.lgamma(y + r) - torch.lgamma(r) - torch.lgamma(y + 1)
                    + r * (torch.log(r) - log_sum) + y * (mean.detach() - log_sum)).sum(-1)

        assert torch.autograd.gradcheck(in_size, (raw,))
        # the module's own gradient in the size equals the closed-form function's
        lik.zero_grad()
        lik.log_prob(y, mean.detach()).sum().backward()
        raw_grad = torch.autograd.grad(in_size(raw).sum(), raw)[0]
        torch.testing.assert_close(lik.raw_total_count.grad, raw_grad)


def test_poisson_closed_forms_equal_the_quadrature_of_the_base_class():
    lik = PoissonLikelihood()
    y, mean, var, _ = _problem()
    torch.testing.assert_close(lik.expected_log_prob(y, mean, var),
                               Likelihood.expected_log_prob(lik, y, mean, var))
    torch.testing.assert_close(lik.marginal_mean(mean, var),
                               Likelihood.marginal_mean(lik, mean, var))


@pytest.mark.parametrize("case", CASES)
def test_samples_have_the_mean_and_are_seeded(case):
    lik, y, _ = _cases()[case]
    f = torch.full((20_000, N_FEATURES), 0.5, dtype=torch.float64)
    if case == "binomial-total":
        lik = BinomialLikelihood.configure(n="total").from_data(y).double()
    draws = lik.sample(f, torch.Generator().manual_seed(1))
    again = lik.sample(f, torch.Generator().manual_seed(1))
    torch.testing.assert_close(draws, again)
    assert (draws == torch.round(draws)).all() and (draws >= 0).all()
    mean = lik.mean(f[:1]).reshape(-1)
    se = draws.std(0) / math.sqrt(len(draws))
    assert (torch.abs(draws.mean(0) - mean) < 4 * se).all()


def test_support_checks_name_the_problem_and_the_way_out():
    with pytest.raises(ValueError, match=r"likelihood='poisson' needs non-negative integer "
                                         r"counts; 2 observed entries are not \(e.g. -1\)\. "
                                         r"Pass the raw counts.*likelihood='gaussian'"):
        PoissonLikelihood.check_support(torch.tensor([[-1.0, 2.5, 3.0]]))
    with pytest.raises(ValueError, match=r"'negative_binomial' needs non-negative integer"):
        NegativeBinomialLikelihood.check_support(torch.tensor([[0.5]]))
    mask = torch.tensor([[True, False]])
    PoissonLikelihood.check_support(torch.tensor([[1.0, float("nan")]]), mask)  # holes pass
    with pytest.raises(ValueError, match=r"likelihood='binomial\(n=16\)' needs counts at most the "
                                         r"number of trials; 1 observed entries are above it "
                                         r"\(e.g. 17\).*binomial\(n=total\)"):
        get_likelihood("binomial(n=16)").check_support(torch.tensor([[17.0, 16.0]]))
    with pytest.raises(ValueError, match=r"has 3 numbers of trials, but the data have 2 features"):
        get_likelihood("binomial(n=[1, 2, 3])").check_support(torch.ones(1, 2))
    with pytest.raises(ValueError, match=r"'binomial' needs the number of trials n.*got n=None"):
        get_likelihood("binomial").check_support(torch.ones(1, 2))


def test_names_with_options():
    assert parse_likelihood("binomial(n=16)") == ("binomial", {"n": 16})
    assert parse_likelihood(" binomial( n = total ) ") == ("binomial", {"n": "total"})
    assert parse_likelihood("binomial(n=[1, 2])") == ("binomial", {"n": [1, 2]})
    cls = get_likelihood("binomial(n=16)")
    assert cls is LIKELIHOODS["binomial(n=16)"] is get_likelihood("binomial(n = 16)")
    assert issubclass(cls, BinomialLikelihood) and cls.spec() == "binomial(n=16)"
    assert "binomial(n=16)" in LIKELIHOODS.keys() and "binomial(" not in LIKELIHOODS.keys()
    with pytest.raises(ValueError, match=r"likelihood 'binomial' has no option 'm'; it takes "
                                         r"\['n'\]"):
        get_likelihood("binomial(m=2)")
    with pytest.raises(ValueError, match=r"'poisson' has no option 'n'; it takes \['offset'\]"):
        get_likelihood("poisson(n=2)")
    with pytest.raises(ValueError, match=r"needs the number of trials n.*got n=0"):
        get_likelihood("binomial(n=0)")
    with pytest.raises(ValueError, match=r"likelihood='binomial\(n=' is not a likelihood name"):
        get_likelihood("binomial(n=")
    with pytest.raises(ValueError, match=r"Unknown likelihood 'gamma\(k=1\)'"):
        get_likelihood("gamma(k=1)")


def test_configured_likelihoods_pickle_and_copy():
    lik = get_likelihood("binomial(n=[3, 4])")()
    for other in (pickle.loads(pickle.dumps(lik)), copy.deepcopy(lik)):
        assert type(other) is type(lik)
        torch.testing.assert_close(other.trials, lik.trials)
    nb = NegativeBinomialLikelihood.from_data(torch.poisson(torch.full((50, 3), 4.0)))
    other = pickle.loads(pickle.dumps(nb))
    torch.testing.assert_close(other.total_count, nb.total_count)


@pytest.mark.parametrize("case", CASES)
def test_log_marginal_equals_a_fine_grid_integral_where_plain_quadrature_misses(case):
    # beliefs far wider than the integrand (a large count, a rate far from the belief's mean):
    # Gauss-Hermite nodes spread over the belief miss the peak, the mode-centred ones do not
    lik, _, _ = _cases()[case]
    y = torch.tensor([[200.0, 0.0, 7.0], [30.0, 12.0, 0.0]], dtype=torch.float64)
    if isinstance(lik, BinomialLikelihood) and lik.options["n"] != "total":
        y = torch.minimum(y, lik.trials.to(y))
    mean = torch.tensor([[2.0, 3.0, -1.0], [3.4, 0.0, -4.0]], dtype=torch.float64)
    var = torch.tensor([[1.0, 1.0, 4.0], [1.0, 2.0, 3.0]], dtype=torch.float64)
    half = 12 * var.sqrt()
    grid = mean + half * torch.linspace(-1, 1, 40_001, dtype=torch.float64).view(-1, 1, 1)
    log_belief = -0.5 * (torch.log(2 * math.pi * var) + (grid - mean) ** 2 / var)
    with torch.no_grad():
        log_integrand = lik._log_prob_entries(y, grid) + log_belief
        peak = log_integrand.max(0).values
        area = torch.trapezoid(torch.exp(log_integrand - peak), grid, dim=0)
        reference = (peak + torch.log(area)).sum(-1)
        got = lik.log_marginal(y, mean, var)
        plain = Likelihood.log_marginal(lik, y, mean, var)
    print(f"\n{case}: adaptive {got.tolist()}, plain {plain.tolist()}, grid {reference.tolist()}")
    torch.testing.assert_close(got, reference, rtol=0, atol=1e-5)
    if not isinstance(lik, BinomialLikelihood):  # where the plain rule is far off
        assert (plain - reference).abs().max() > 0.1


# ------------------------------------------------------------------ size factors (offset=library)
@pytest.mark.parametrize("name", ["poisson", "negative_binomial"])
def test_library_offset_scales_each_rows_mean_by_its_size_factor(name):
    """offset=library: P(y | f) with means s_n exp(f), s_n = the row's total over the training
    rows' mean total; log_prob equals scipy's log-pmf at those means to 1e-10, the expected
    log-probability equals a 1e6-draw Monte Carlo within 3 standard errors, and the label and
    link transform say so."""
    y, mean, var, g = _problem(3)
    Y_train = torch.poisson(torch.full((50, N_FEATURES), 4.0, dtype=torch.float64), generator=g)
    cls = get_likelihood(f"{name}(offset=library)")
    lik = cls.from_data(Y_train).double()
    assert lik.library and cls.evidence_of() == "log P(y | s)"
    assert get_likelihood(name).evidence_of() == "log P(y)"
    reference = float(Y_train.sum(1).mean())
    assert float(lik.reference_total) == pytest.approx(reference, rel=1e-12)
    s = (y.sum(1, keepdim=True) / reference).numpy()
    mu = s * np.exp(mean.numpy())
    if name == "poisson":
        expected = stats.poisson.logpmf(y.numpy(), mu).sum(1)
    else:
        r = lik.total_count.detach().numpy()
        expected = stats.nbinom.logpmf(y.numpy(), r, r / (r + mu)).sum(1)
    np.testing.assert_allclose(lik.log_prob(y, mean).detach().numpy(), expected, rtol=1e-10)
    draws = mean + var.sqrt() * torch.randn((10**6, *mean.shape), generator=g,
                                             dtype=torch.float64)
    values = lik.log_prob(y, draws).detach()
    mc, se = values.mean(0), values.std(0) / math.sqrt(values.shape[0])
    got = lik.expected_log_prob(y, mean, var).detach()
    assert ((got - mc).abs() <= 3 * se + 1e-12).all(), (got, mc, se)
    # the GLM-PCA start's counts on the log-mean scale leave the size factor out
    torch.testing.assert_close(lik.link_transform(y), torch.log(y + 0.5) - torch.log(
        torch.as_tensor(s)), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="offset=library"):
        get_likelihood(f"{name}(offset=size)")
