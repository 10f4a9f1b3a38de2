"""lvm._stats: the blockwise one-pass statistics against extended precision, whatever the offset."""

import numpy as np
import pytest
import torch

import lvm
from lvm._stats import GaussianStats


@pytest.mark.parametrize("offset", [0.0, 1e4, 1e8])
@pytest.mark.parametrize("rows", [7, 512, None])
def test_blockwise_statistics_equal_extended_precision(offset, rows):
    Y = lvm.datasets.make_ppca(3000, 6, 2, noise=0.3, random_state=0).Y * 3 + offset
    L = Y.astype(np.longdouble)
    mean = L.mean(0)
    scatter = (L - mean).T @ (L - mean)
    full = GaussianStats.of(torch.as_tensor(Y), rows=rows)
    diag = GaussianStats.of(torch.as_tensor(Y), rows=rows, diagonal=True)
    assert full.n == diag.n == 3000
    spread = float(Y.std(0).max())  # a mean near 0 is exact to the spread's rounding
    np.testing.assert_allclose(full.mean.numpy(), mean.astype(float), rtol=1e-14,
                               atol=1e-14 * spread)
    np.testing.assert_allclose(diag.mean.numpy(), mean.astype(float), rtol=1e-14,
                               atol=1e-14 * spread)
    np.testing.assert_allclose(full.scatter.numpy(), scatter.astype(float), rtol=1e-13,
                               atol=1e-13 * float(np.abs(scatter).max()))
    np.testing.assert_allclose(diag.scatter.numpy(), np.diag(scatter).astype(float), rtol=1e-14)
    np.testing.assert_allclose(full.feature_scatter.numpy(), diag.scatter.numpy(), rtol=1e-13)


def test_standardized_statistics_are_those_of_the_standardized_rows():
    Y = torch.as_tensor(lvm.datasets.make_ppca(500, 4, 2, random_state=1).Y) * 5 + 100
    location, scale = Y.mean(0) + 0.5, 7.0
    folded = GaussianStats.of(Y).standardized(location, scale)
    direct = GaussianStats.of((Y - location) / scale)
    torch.testing.assert_close(folded.mean, direct.mean, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(folded.scatter, direct.scatter, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_single_non_finite_entry_makes_the_statistics_non_finite(bad):
    Y = torch.randn(1000, 5, dtype=torch.float64)
    assert GaussianStats.of(Y).is_finite()
    Y[617, 3] = bad
    assert not GaussianStats.of(Y, rows=100).is_finite()
    assert not GaussianStats.of(Y, diagonal=True).is_finite()
