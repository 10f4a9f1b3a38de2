"""The row-keyed evaluation draws: standard normal, reproducible, batch-free, independent."""

import numpy as np
import pytest
import torch
from scipy import stats

from lvm.evidence.draws import row_keyed_normal


@pytest.fixture(scope="module")
def rows():
    return torch.randn(4000, 16, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_draws_are_standard_normal(rows, dtype):
    z = row_keyed_normal(rows.to(dtype), 20, 3, seed=0)
    assert z.shape == (20, 4000, 3) and z.dtype == dtype
    assert stats.kstest(z.flatten().double().numpy(), "norm").pvalue > 1e-3


def test_draws_depend_on_the_row_and_seed_only(rows):
    z = row_keyed_normal(rows, 8, 2, seed=5)
    torch.testing.assert_close(row_keyed_normal(rows[100:130], 8, 2, seed=5), z[:, 100:130],
                               rtol=0, atol=0)
    torch.testing.assert_close(row_keyed_normal(rows.flip(0), 8, 2, seed=5), z.flip(1),
                               rtol=0, atol=0)
    assert not torch.equal(row_keyed_normal(rows, 8, 2, seed=6), z)


def test_draws_are_uncorrelated_across_rows_and_draws(rows):
    z = row_keyed_normal(rows, 30, 2, seed=0).permute(1, 0, 2).reshape(4000, 60).numpy()
    across_draws = np.corrcoef(z.T)[~np.eye(60, dtype=bool)]
    across_rows = np.corrcoef(z[:200])[~np.eye(200, dtype=bool)]
    # sampling spread of a correlation of independent variables: 1 / sqrt(n)
    assert across_draws.std() < 1.2 / np.sqrt(4000)
    assert across_rows.std() < 1.2 / np.sqrt(60)
    assert abs(across_rows.mean()) < 0.01


def test_draw_cache_returns_the_same_draws_and_rekeys_on_any_change(rows):
    from lvm.evidence.draws import DrawCache

    Y = rows[:50].double()
    plain = row_keyed_normal(Y, 4, 2, seed=3)
    with DrawCache() as cache:
        first = row_keyed_normal(Y, 4, 2, seed=3)
        again = row_keyed_normal(Y.clone(), 4, 2, seed=3)  # the same bits, another tensor
        other_seed = row_keyed_normal(Y, 4, 2, seed=4)
        Y2 = Y.clone()
        Y2[7, 0] += 1.0
        changed = row_keyed_normal(Y2, 4, 2, seed=3)
        negzero = row_keyed_normal(torch.zeros(1, 3, dtype=torch.float64), 2, 2, seed=0)
        poszero = row_keyed_normal(-torch.zeros(1, 3, dtype=torch.float64), 2, 2, seed=0)
    assert torch.equal(first, plain) and torch.equal(again, plain) and again is not first
    assert torch.equal(other_seed, row_keyed_normal(Y, 4, 2, seed=4))
    assert torch.equal(changed, row_keyed_normal(Y2, 4, 2, seed=3))
    assert not torch.equal(changed[:, 7], plain[:, 7]) and torch.equal(changed[:, 8], plain[:, 8])
    # Keyed by bits, not values: 0.0 and -0.0 are different rows, cached or not.
    assert torch.equal(negzero, row_keyed_normal(torch.zeros(1, 3, dtype=torch.float64), 2, 2, 0))
    assert torch.equal(poszero, row_keyed_normal(-torch.zeros(1, 3, dtype=torch.float64), 2, 2, 0))
    assert len(cache._entries) == 3  # (50 rows, seed 3), (50 rows, seed 4), (1 row, seed 0)
