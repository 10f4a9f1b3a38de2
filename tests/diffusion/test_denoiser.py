"""The residual denoiser: zero start, shapes, dtype, seeded initialization, errors."""

import pytest
import torch

from lvm.diffusion import ResidualDenoiser
from lvm.diffusion.denoiser import gamma_embedding


@pytest.mark.parametrize("depth", [0, 2])
def test_initial_denoiser_returns_z(depth):
    net = ResidualDenoiser(5, width=16, depth=depth, embedding_dim=8).double()
    z = torch.randn(7, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(net(z, torch.linspace(-13, 5, 7, dtype=torch.float64)), z, rtol=0, atol=0)
    torch.testing.assert_close(net(z, torch.tensor(-2.0)), z, rtol=0, atol=0)


def test_output_follows_the_module_dtype():
    net = ResidualDenoiser(3, width=8, depth=1)
    z = torch.zeros(2, 3)
    assert net(z, torch.zeros(2)).dtype == torch.float32
    assert net.double()(z.double(), torch.zeros(2, dtype=torch.float64)).dtype == torch.float64


def test_gamma_conditions_the_output():
    net = ResidualDenoiser(3, width=8, depth=1, generator=torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        net.output.weight.normal_(generator=torch.Generator().manual_seed(2))
    z = torch.ones(2, 3, dtype=torch.float64)
    a, b = net(z, torch.tensor([-10.0, 3.0], dtype=torch.float64))
    assert not torch.allclose(a, b)


def test_initialization_is_seeded_and_leaves_the_global_rng():
    state = torch.random.get_rng_state()
    a = ResidualDenoiser(4, width=8, depth=2, generator=torch.Generator().manual_seed(5))
    b = ResidualDenoiser(4, width=8, depth=2, generator=torch.Generator().manual_seed(5))
    c = ResidualDenoiser(4, width=8, depth=2, generator=torch.Generator().manual_seed(6))
    d = ResidualDenoiser(4, width=8, depth=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.input.weight, c.input.weight)
    assert torch.isfinite(d.input.weight).all()


def test_gamma_embedding_shape():
    level = torch.linspace(0, 1, 5)
    assert gamma_embedding(level, 8).shape == (5, 8)
    emb = gamma_embedding(level, 7)
    assert emb.shape == (5, 7) and bool((emb[:, -1] == 0).all())


@pytest.mark.parametrize("kwargs, match", [
    ({"width": 0}, r"The 'width' parameter of ResidualDenoiser must be an integer >= 1. Got 0 instead."),
    ({"depth": -1}, r"The 'depth' parameter of ResidualDenoiser must be an integer >= 0. Got -1 instead."),
    ({"embedding_dim": 1.5}, r"The 'embedding_dim' parameter .* Got 1.5 instead."),
    ({"activation": "swish"},
     r"Unknown activation 'swish'; choose one of \['gelu', 'relu', 'silu', 'softplus', 'tanh'\]"),
    ({"gamma_range": (5.0, -13.3)}, r"gamma_range must be \(gamma_min, gamma_max\) with gamma_min < gamma_max"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResidualDenoiser(3, **kwargs)
