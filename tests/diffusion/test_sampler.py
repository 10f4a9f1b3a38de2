"""Ancestral sampling with the Bayes-optimal denoiser reproduces the Gaussian it was built for."""

import math

import pytest
import torch

from lvm.diffusion import ancestral_sample

F64 = torch.float64


def test_samples_have_the_data_moments(gauss):
    n = 4000
    # with T = 100 steps the variances still come out ~8% small (discretization); 1000 steps are close
    y = ancestral_sample(gauss.schedule, gauss.denoiser, n, gauss.D, n_steps=1000,
                         generator=torch.Generator().manual_seed(0))
    assert y.shape == (n, gauss.D) and y.dtype == F64
    se = torch.sqrt(torch.diagonal(gauss.cov) / n)
    # The model starts from N(0, I), not q_1 = N(alpha_1 mu, A_1), so its mean is mu shrunk by
    # E[y | z_1 = 0] - mu ~ -alpha_1^2 Sigma A_1^{-1} mu (about 1% here)
    a2 = torch.sigmoid(-gauss.schedule.gamma_1.detach())
    A1 = a2 * gauss.cov + (1 - a2) * torch.eye(gauss.D, dtype=F64)
    model_mean = gauss.mean - a2 * gauss.cov @ torch.linalg.solve(A1, gauss.mean)
    cov = torch.cov(y.T)
    print(f"\nsample mean - model mean, in SE: {((y.mean(0) - model_mean) / se).numpy().round(2)}; "
          f"|sample cov - Sigma| max {float((cov - gauss.cov).abs().max()):.3f}")
    assert bool(((y.mean(0) - model_mean).abs() < 4 * se).all())
    # sampling error of a covariance entry is about sqrt(2 / n) ~ 0.02 at unit scale
    torch.testing.assert_close(cov, gauss.cov, rtol=0, atol=0.1)


def test_decoder_mean_and_draw(gauss):
    kw = {"n_steps": 10, "generator": None}
    a = ancestral_sample(gauss.schedule, gauss.denoiser, 50, gauss.D, decode="mean",
                         **{**kw, "generator": torch.Generator().manual_seed(1)})
    b = ancestral_sample(gauss.schedule, gauss.denoiser, 50, gauss.D, decode="sample",
                         **{**kw, "generator": torch.Generator().manual_seed(1)})
    # the decoder's noise has standard deviation e^{gamma_0 / 2} ~ 1.3e-3
    scale = math.exp(-13.3 / 2)
    assert 0 < float((a - b).abs().max()) < 6 * scale


def test_generator_determinism_and_no_global_rng(gauss):
    state = torch.random.get_rng_state()

    def run(seed):
        return ancestral_sample(gauss.schedule, gauss.denoiser, 20, gauss.D, n_steps=5,
                                generator=torch.Generator().manual_seed(seed))

    a, b, c = run(2), run(2), run(3)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_steps": 0}, "n_steps must be a positive integer; got 0"),
    ({"decode": "mode"}, r"Unknown decode 'mode'; choose one of \['sample', 'mean'\]"),
])
def test_bad_arguments(gauss, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ancestral_sample(gauss.schedule, gauss.denoiser, 5, gauss.D, generator=torch.Generator(), **kwargs)
