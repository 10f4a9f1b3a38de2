"""Every plot helper renders to a non-trivial PNG, headless."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

import lvm


@pytest.fixture(scope="module")
def digits():
    d = lvm.datasets.load_digits()
    return d.Y[:300] / 16.0, d.labels[:300]


@pytest.fixture(scope="module")
def ppca(digits):
    return lvm.PPCA(2, device="cpu", random_state=0).fit(digits[0])


def render(fig, tmp_path, name):
    assert isinstance(fig, Figure)
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 5_000
    return path


def test_latent_scatter(ppca, digits, tmp_path):
    fig = lvm.plot.latent_scatter(ppca, digits[0], digits[1])
    render(fig, tmp_path, "scatter")
    ax = fig.axes[0]
    assert len(ax.collections) == 10  # one scatter per class
    assert len(ax.patches) > 0  # posterior ellipses


def test_latent_scatter_picks_two_of_many_dims(digits, tmp_path):
    model = lvm.PPCA(5, device="cpu").fit(digits[0])
    render(lvm.plot.latent_scatter(model, digits[0], dims=(3, 1)), tmp_path, "dims")


def test_training_curve(digits, tmp_path):
    fa = lvm.FactorAnalysis(2, device="cpu").fit(digits[0][:, :20])
    render(lvm.plot.training_curve(fa), tmp_path, "curve")


def test_evidence_comparison(digits, tmp_path):
    table = lvm.compare([lvm.PPCA(2, device="cpu"), lvm.PPCA(5, device="cpu")], digits[0])
    render(lvm.plot.evidence_comparison(table), tmp_path, "evidence")


def test_reconstructions_and_samples(ppca, digits, tmp_path):
    render(lvm.plot.reconstructions(ppca, digits[0], (8, 8), n=6), tmp_path, "recon")
    render(lvm.plot.samples(ppca, 9, (8, 8)), tmp_path, "samples")


def test_ard_relevance_needs_a_model_with_relevances(ppca):
    with pytest.raises(ValueError, match="no ARD relevances"):
        lvm.plot.ard_relevance(ppca)


def test_training_curve_needs_history(ppca):
    with pytest.raises(ValueError, match="no training history"):
        lvm.plot.training_curve(ppca)
