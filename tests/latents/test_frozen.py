"""The fitted q(x_n) of training rows as one object: reset / extend / lookup."""

import numpy as np
import pytest
import torch

import lvm
from lvm.latents import FrozenPosteriors


def _block(n, D=3, K=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, D, generator=g, dtype=torch.float64),
            torch.randn(n, K, generator=g, dtype=torch.float64),
            torch.rand(n, K, generator=g, dtype=torch.float64) + 0.1)


def test_extend_keeps_blocks_in_order_and_replaces_by_key():
    frozen = FrozenPosteriors()
    a, b = _block(4, seed=0), _block(3, seed=1)
    frozen.extend(0, *a)
    frozen.extend(1, *b)
    assert frozen.n_rows == 7
    torch.testing.assert_close(frozen.mean, torch.cat([a[1], b[1]]))
    mu, var, found = frozen.lookup(torch.cat([b[0][2:], a[0][:1]]))
    assert found.all()
    torch.testing.assert_close(mu, torch.cat([b[1][2:], a[1][:1]]))
    torch.testing.assert_close(var, torch.cat([b[2][2:], a[2][:1]]))
    # a refit of block 0 replaces its q(x) and keeps its place
    frozen.extend(0, a[0], a[1] + 1.0, a[2])
    torch.testing.assert_close(frozen.mean[:4], a[1] + 1.0)
    assert frozen.n_rows == 7
    frozen.reset()
    assert frozen.n_rows == 0


def test_lookup_matches_within_the_tolerance_and_the_same_missing_entries():
    rows, mu, var = _block(5)
    rows[1, 2] = np.nan
    frozen = FrozenPosteriors(tolerance=1e-6)
    frozen.extend(0, rows, mu, var)
    near = rows.clone()
    near[:, 0] += 1e-9  # a training row back through a rounding: still itself
    _, _, found = frozen.lookup(near)
    assert found.all()
    far = rows.clone()
    far[:, 0] += 1e-3
    got, _, found = frozen.lookup(far)
    assert not found.any()
    torch.testing.assert_close(got, mu)  # a new row starts from its nearest training row's q(x)
    holes = rows.clone()
    holes[3, 0] = np.nan  # a different pattern of missing entries: not that row
    assert frozen.lookup(holes)[2].tolist() == [True, True, True, False, True]
    complete = rows.clone()
    complete[1, 2] = 0.0  # observes what the training row missed: not that row either
    assert not frozen.lookup(complete[1:2])[2].item()


def test_capacity_bounds_the_rows_kept_for_lookup_not_the_posteriors():
    a, b = _block(4, seed=0), _block(3, seed=1)
    frozen = FrozenPosteriors(capacity=5)
    frozen.extend(0, *a)
    frozen.extend(1, *b)
    assert frozen.rows.shape[0] == 5 and frozen.mean.shape[0] == 7
    assert frozen.lookup(b[0])[2].tolist() == [True, False, False]
    with pytest.raises(ValueError, match="one entry per row; got 4, 3 and 4"):
        frozen.extend(2, a[0], a[1][:3], a[2])


def test_gplvm_serves_training_rows_their_q_x_after_a_float32_round_trip():
    """The bank matched training rows bit for bit: a float32 copy of the training data was
    refitted as new rows (and moved). Within the tolerance it is served its own q(x_n)."""
    Y = lvm.datasets.make_ppca(60, 4, 2, noise=0.2, random_state=0).Y
    model = lvm.BayesianGPLVM(2, n_inducing=6, max_iter=10, device="cpu", random_state=0)
    with pytest.warns(Warning):  # the 10-iteration budget runs out
        model.fit(Y)
    np.testing.assert_array_equal(model.transform(Y), model.latent_mean_)
    X32 = model.transform(Y.astype(np.float32))
    assert X32.dtype == np.float32
    np.testing.assert_allclose(X32, model.latent_mean_, rtol=1e-5, atol=1e-6)
