"""Out-of-core fits: partial_fit and fit on a memmap / .npy path equal the in-memory fit."""

import numpy as np
import pytest

import lvm


@pytest.fixture(scope="module")
def big():
    return lvm.datasets.make_ppca(5000, 15, 3, noise=0.3, random_state=4).Y * 1e3 + 1e4


def assert_same_model(a, b, Y):
    np.testing.assert_allclose(a.components_.T @ a.components_, b.components_.T @ b.components_,
                               rtol=1e-10, atol=1e-10 * np.abs(b.components_).max() ** 2)
    np.testing.assert_allclose(a.mean_, b.mean_, rtol=1e-10)
    np.testing.assert_allclose(a.noise_variance_, b.noise_variance_, rtol=1e-10)
    assert a.score(Y) == pytest.approx(b.score(Y), rel=1e-10)
    assert a.log_evidence_ == pytest.approx(b.log_evidence_, rel=1e-10)


@pytest.mark.parametrize("Est", [lvm.PPCA, lvm.FactorAnalysis])
def test_partial_fit_over_ten_chunks_equals_fit(big, Est):
    whole = Est(3, device="cpu").fit(big)
    inc = Est(3, device="cpu")
    for chunk in np.array_split(big, 10):
        inc.partial_fit(chunk)
    assert_same_model(inc, whole, big)


def test_fit_on_memmap_and_npy_path_equals_fit(big, tmp_path):
    path = tmp_path / "Y.npy"
    np.save(path, big)
    whole = lvm.PPCA(3, device="cpu").fit(big)
    mm = np.load(path, mmap_mode="r")
    assert_same_model(lvm.PPCA(3, device="cpu", chunk_size=700).fit(mm), whole, big)
    assert_same_model(lvm.PPCA(3, device="cpu", chunk_size=700).fit(str(path)), whole, big)


def test_chunks_with_fewer_rows_than_features_equal_fit(tmp_path):
    """PPCA fits N < D by a thin SVD; a stream of such chunks still merges full statistics."""
    Y = lvm.datasets.make_ppca(300, 40, 3, noise=0.2, random_state=0).Y * 7 + 1e4
    whole = lvm.PPCA(3, device="cpu").fit(Y)
    np.save(tmp_path / "Y.npy", Y)
    assert_same_model(lvm.PPCA(3, device="cpu", chunk_size=20).fit(str(tmp_path / "Y.npy")),
                      whole, Y)
    inc = lvm.PPCA(3, device="cpu")
    for chunk in np.array_split(Y, 15):
        inc.partial_fit(chunk)
    assert_same_model(inc, whole, Y)


@pytest.mark.parametrize("Est", [lvm.PPCA, lvm.FactorAnalysis])
def test_chunk_size_bounds_the_blocks_and_changes_nothing(big, Est):
    assert_same_model(Est(3, device="cpu", chunk_size=7).fit(big), Est(3, device="cpu").fit(big),
                      big)


def test_partial_fit_with_changed_features_is_rejected(big):
    model = lvm.PPCA(3, device="cpu").partial_fit(big[:100])
    with pytest.raises(ValueError, match="X has 14 features, but PPCA is expecting 15"):
        model.partial_fit(big[:100, :14])


def test_memmap_with_nan_is_rejected(tmp_path):
    Y = np.ones((50, 4))
    Y[30, 2] = np.nan
    np.save(tmp_path / "bad.npy", Y)
    with pytest.raises(ValueError, match="NaN"):
        lvm.PPCA(2, device="cpu", chunk_size=16).fit(str(tmp_path / "bad.npy"))


def test_fit_on_a_non_npy_path_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"\.npy file path"):
        lvm.PPCA(2).fit(str(tmp_path / "data.csv"))
