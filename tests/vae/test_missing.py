"""Missing values (NaN) in the VAE: the MIWAE bound of the observed entries (Mattei & Frellsen,
2019) checked against PPCA's exact observed-entry evidence, complete data unchanged, imputation."""

import warnings

import numpy as np
import pytest
import torch

import lvm


def _holes(Y, fraction, seed=0):
    Y = Y.copy()
    Y[np.random.default_rng(seed).random(Y.shape) < fraction] = np.nan
    empty = np.isnan(Y).all(1)
    Y[empty, 0] = 0.0
    return Y


@pytest.fixture(scope="module")
def ppca_holes():
    """make_ppca (D = 20, K = 3) with 30% of the entries missing completely at random."""
    data = lvm.datasets.make_ppca(3000, 20, 3, noise=0.25, random_state=1)
    return data, _holes(data.Y, 0.3)


@pytest.fixture(scope="module")
def linear_pair(ppca_holes):
    _, Y = ppca_holes
    train, test = Y[:2500], Y[2500:]
    ppca = lvm.PPCA(3, device="cpu").fit(train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short budget: the start is the linear optimum already
        vae = lvm.VAE(3, hidden_sizes=(), noise="shared", max_epochs=30, random_state=0,
                      device="cpu").fit(train)
    return ppca, vae, test


def test_linear_miwae_is_at_or_below_the_exact_observed_evidence_and_within_one_percent(
        linear_pair):
    ppca, vae, test = linear_pair
    exact = ppca.score_samples(test)
    miwae = vae.score_samples(test)
    assert np.isfinite(miwae).all()
    diff = miwae - exact
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    print(f"\nPPCA exact observed-entry evidence {exact.mean():.4f}, linear VAE MIWAE "
          f"{miwae.mean():.4f} (difference {diff.mean():+.4f} +- {se:.4f})")
    assert diff.mean() <= se  # a bound of the same model family: not above it
    assert abs(diff.mean()) <= 0.01 * abs(exact.mean())


def test_the_training_objective_is_the_importance_weighted_bound_with_a_mask_channel(linear_pair):
    _, vae, test = linear_pair
    assert vae.family_.train_samples == 20  # MIWAE's default with missing entries
    assert vae.module_.latent.mask_channel
    assert vae.__sklearn_tags__().input_tags.allow_nan


def test_complete_data_train_on_the_elbo_without_a_mask_channel(ppca_holes):
    data, _ = ppca_holes
    vae = lvm.VAE(2, hidden_sizes=(8,), max_epochs=2, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(data.Y[:300])
    assert vae.family_.train_samples == 1 and not vae.module_.latent.mask_channel
    # A model fitted to complete rows still scores partly observed rows (the observed entries).
    holes = _holes(data.Y[300:400], 0.3, seed=3)
    assert np.isfinite(vae.score_samples(holes)).all()
    assert np.isfinite(vae.transform(holes)).all()


def test_latent_imputer_with_a_vae_fills_only_the_holes(ppca_holes, linear_pair):
    data, Y = ppca_holes
    _, vae, _ = linear_pair
    rows = Y[2500:2700]
    filled = vae._fill_missing(rows)  # LatentImputer's engine, on the model fitted above
    holes = np.isnan(rows)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~holes], rows[~holes])
    truth = data.Y[2500:2700][holes]
    mean_fill = np.broadcast_to(np.nanmean(Y[:2500], 0), rows.shape)[holes]
    rmse = np.sqrt(np.mean((filled[holes] - truth) ** 2))
    rmse_mean = np.sqrt(np.mean((mean_fill - truth) ** 2))
    assert rmse < 0.8 * rmse_mean


def test_latent_imputer_fits_a_vae_on_data_with_holes(ppca_holes):
    _, Y = ppca_holes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imputer = lvm.LatentImputer(lvm.VAE(2, hidden_sizes=(8,), max_epochs=2, random_state=0,
                                            device="cpu"))
        filled = imputer.fit_transform(Y[:400])
    assert not np.isnan(filled).any()


def test_infinity_is_still_an_error():
    Y = np.random.default_rng(0).standard_normal((30, 3))
    Y[2, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        lvm.VAE(1, max_epochs=1).fit(Y)
    with pytest.raises(ValueError, match="infinity"):
        lvm.VAE(1, max_epochs=1).fit(torch.as_tensor(Y))
