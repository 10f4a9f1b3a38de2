"""Every plot helper renders to a non-trivial PNG, headless, and shows what it says it shows."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

import lvm


@pytest.fixture(scope="module")
def digits():
    d = lvm.datasets.load_digits()
    return d.Y[:300] / 16.0, d.labels[:300]


@pytest.fixture(scope="module")
def ppca(digits):
    return lvm.PPCA(2, device="cpu", random_state=0).fit(digits[0])


def render(fig, tmp_path, name, min_bytes=5_000):
    assert isinstance(fig, Figure)
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > min_bytes
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
    render(lvm.plot.samples(ppca, 9, (8, 8)), tmp_path, "samples", min_bytes=3_000)
    render(lvm.plot.samples(ppca, 9, (8, 8), kind="draws"), tmp_path, "draws", min_bytes=3_000)


def _images(fig):
    return np.array([ax.images[0].get_array() for ax in fig.axes])


def test_samples_shows_decoder_means_by_default(ppca):
    # The docstring promised decoder means but the images were draws from p(y | x), noise included.
    fig = lvm.plot.samples(ppca, 4, (8, 8), random_state=3)
    X = np.random.default_rng(3).standard_normal((4, 2))
    np.testing.assert_allclose(_images(fig), ppca.inverse_transform(X).reshape(4, 8, 8))


def test_samples_draws_from_the_model_on_request(ppca):
    fig = lvm.plot.samples(ppca, 4, (8, 8), random_state=3, kind="draws")
    np.testing.assert_allclose(_images(fig), ppca.sample(4, random_state=3).reshape(4, 8, 8))
    with pytest.raises(ValueError, match="kind must be 'mean'"):
        lvm.plot.samples(ppca, 4, (8, 8), kind="noisy")


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


class _History:
    def __init__(self, history):
        self.history_ = history


def test_training_curve_plots_the_one_history_layout():
    # Every family's records: epoch, n_iter (the budget's unit: the GPLVM's groups of L-BFGS
    # steps, EM iterations, epochs), train, validation (None without a split).
    plain = _History([{"epoch": e, "n_iter": 20 * e, "train": -10.0 / e, "validation": None}
                      for e in (1, 2, 3)])
    ax = lvm.plot.training_curve(plain).axes[0]
    assert ax.get_xlabel() == "iterations (n_iter)" and len(ax.lines) == 1
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [20, 40, 60])
    split = _History([{"epoch": e, "n_iter": e, "train": -10.0 / e, "validation": -11.0 / e}
                      for e in (1, 2)])
    ax = lvm.plot.training_curve(split).axes[0]
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [-11.0, -5.5])


def _record(model, kind, value):
    return {"model": model, "evidence": kind, "test_log_evidence": value, "test_stderr": 0.5}


def _legend_colors(ax):
    legend = ax.get_legend()
    return {t.get_text(): to_rgba(h.lines[0].get_color() if hasattr(h, "lines") else h.get_color())
            for t, h in zip(legend.get_texts(), legend.legend_handles)}


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0]])
def test_evidence_colours_belong_to_the_kind_not_the_first_model(order):
    # The legend took each kind's colour from its first model ("exact" looked like PPCA).
    records = [_record("VAE", "importance-weighted estimate", -160.0),
               _record("PPCA", "exact", -170.0),
               _record("FactorAnalysis", "exact", -140.0)]
    ax = lvm.plot.evidence_comparison([records[i] for i in order]).axes[0]
    colors = _legend_colors(ax)
    for kind in ("exact", "importance-weighted estimate"):
        assert colors[kind] == to_rgba(lvm.plot.EVIDENCE_STYLES[kind]["color"])
    # every point of a kind has the kind's colour, whichever model it is
    drawn = [to_rgba(c.lines[0].get_color()) for c in ax.containers]
    kinds = [records[i]["evidence"] for i in order]
    assert drawn == [to_rgba(lvm.plot.EVIDENCE_STYLES[k]["color"]) for k in kinds]
    assert [t.get_text() for t in ax.get_xticklabels()] == [records[i]["model"] for i in order]


def test_evidence_styles_of_unlisted_kinds_do_not_depend_on_model_order():
    a = [_record("A", "thermodynamic bound", -1.0), _record("B", "other estimate", -2.0)]
    c1 = _legend_colors(lvm.plot.evidence_comparison(a).axes[0])
    c2 = _legend_colors(lvm.plot.evidence_comparison(a[::-1]).axes[0])
    assert c1 == c2 and len(set(c1.values())) == 2


def test_evidence_comparison_survives_a_non_finite_value(tmp_path):
    records = [_record("PPCA", "exact", -170.0), _record("FactorAnalysis", "exact", -np.inf)]
    fig = lvm.plot.evidence_comparison(records)
    render(fig, tmp_path, "inf")
    assert any(t.get_text() == "-inf" for t in fig.axes[0].texts)


def test_latent_scatter_explains_the_ellipses(ppca, digits):
    ax = lvm.plot.latent_scatter(ppca, digits[0], digits[1]).axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[:10] == [str(i) for i in range(10)]
    assert texts[-1].startswith("ellipses: ±1 sd of q(x | y)")
    ax = lvm.plot.latent_scatter(ppca, digits[0], uncertainty=False).axes[0]
    assert ax.get_legend() is None and not ax.patches


def test_latent_scatter_of_a_1d_model_is_one_dimensional(digits, tmp_path):
    # A 1-D model used to get a fake second latent axis of zeros.
    model = lvm.PPCA(1, device="cpu").fit(digits[0])
    fig = lvm.plot.latent_scatter(model, digits[0], digits[1])
    render(fig, tmp_path, "strip")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "latent dim 0" and ax.get_ylabel() == "label"
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(i) for i in range(10)]
    xy = ax.collections[0].get_offsets()
    np.testing.assert_allclose(xy[:, 0], model.transform(digits[0])[:, 0])
    # each point sits in its label's row
    assert np.all(np.abs(xy[:, 1] - digits[1]) <= 0.3)
    assert ax.get_legend().get_texts()[0].get_text().startswith("bars: ±1 sd of q(x | y)")
    ax = lvm.plot.latent_scatter(model, digits[0]).axes[0]
    assert ax.get_ylabel() == "" and len(ax.get_yticks()) == 0


def test_training_curve_needs_history(ppca):
    with pytest.raises(ValueError, match="no training history"):
        lvm.plot.training_curve(ppca)
