"""The exact neighbour search of the neighbour term, on the host (scikit-learn) and on the
device (lvm.latents.neighbors.device_kneighbors), which a GPU fit uses."""

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from lvm.latents.neighbors import NearestRows, device_kneighbors


@pytest.fixture(scope="module")
def rows():
    g = np.random.default_rng(0)
    return g.normal(size=(500, 7)), g.normal(size=(60, 7))


@pytest.mark.parametrize("max_entries", [2**27, 1000, 1])  # one chunk, several, a row at a time
def test_device_search_equals_scikit_learns(rows, max_entries):
    R, Q = rows
    search = NearestNeighbors(n_neighbors=15).fit(R)
    own = device_kneighbors(torch.tensor(R), 15, max_entries=max_entries)
    np.testing.assert_array_equal(own.numpy(), search.kneighbors(return_distance=False))
    new = device_kneighbors(torch.tensor(R), 15, torch.tensor(Q), max_entries=max_entries)
    np.testing.assert_array_equal(new.numpy(), search.kneighbors(Q, return_distance=False))


def test_a_row_is_never_its_own_neighbour_even_among_duplicates():
    R = torch.zeros(6, 3, dtype=torch.float64)  # all distances 0: only the exclusion decides
    index = device_kneighbors(R, 5)
    for i, row in enumerate(index.tolist()):
        assert sorted(row) == [j for j in range(6) if j != i]


def test_nearest_rows_counts_nan_as_zero_and_answers_on_the_rows_device(rows):
    R, Q = rows
    Rn = R.copy()
    Rn[::7, 2] = np.nan
    got = NearestRows(torch.tensor(Rn)).kneighbors(torch.tensor(Q), 4)
    want = NearestNeighbors(n_neighbors=4).fit(np.nan_to_num(Rn)).kneighbors(
        Q, return_distance=False)
    assert got.device.type == "cpu" and got.dtype == torch.long
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.gpu
def test_on_cuda_the_search_runs_on_the_device_and_agrees(rows):
    R, Q = rows
    search = NearestRows(torch.tensor(R, device="cuda", dtype=torch.float32))
    assert search._search is None  # no host index
    got = search.kneighbors(None, 15)
    assert got.is_cuda
    want = NearestNeighbors(n_neighbors=15).fit(np.float32(R).astype(np.float64))
    np.testing.assert_array_equal(got.cpu().numpy(), want.kneighbors(return_distance=False))
