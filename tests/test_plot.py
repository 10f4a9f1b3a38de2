"""Every plot helper renders to a non-trivial PNG, headless."""

import matplotlib

matplotlib.use("Agg")

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


def test_ard_relevance_and_latent_scatter_of_a_gplvm(digits, tmp_path):
    model = lvm.BayesianGPLVM(4, n_inducing=10, max_iter=30, tol=None, device="cpu",
                              random_state=0).fit(digits[0][:120])
    fig = lvm.plot.ard_relevance(model)
    render(fig, tmp_path, "ard")
    assert len(fig.axes[0].patches) == 4  # one bar per latent dimension
    # with four latent dims the scatter shows the two most relevant
    fig = lvm.plot.latent_scatter(model, digits[0][:120], digits[1][:120])
    render(fig, tmp_path, "gplvm_scatter")
    top = model.relevant_dims_[:2]
    assert fig.axes[0].get_xlabel() == f"latent dim {top[0]}"
    assert fig.axes[0].get_ylabel() == f"latent dim {top[1]}"


def test_training_curve_of_a_vae_with_validation(digits, tmp_path):
    model = lvm.VAE(2, hidden_sizes=(16,), max_epochs=5, device="cpu", random_state=0).fit(digits[0])
    fig = lvm.plot.training_curve(model)
    render(fig, tmp_path, "vae_curve")
    assert len(fig.axes[0].lines) == 2  # train and validation


def test_ard_relevance_needs_a_model_with_relevances(ppca):
    with pytest.raises(ValueError, match="no ARD relevances"):
        lvm.plot.ard_relevance(ppca)


def test_training_curve_needs_history(ppca):
    with pytest.raises(ValueError, match="no training history"):
        lvm.plot.training_curve(ppca)
