import warnings

import numpy as np
import pytest

import lvm


@pytest.fixture(scope="module")
def data():
    return lvm.datasets.make_ppca(600, 8, 2, noise=0.2, random_state=7).Y * np.arange(1, 9)


def test_records_and_printed_table(data):
    table = lvm.compare([lvm.PPCA(2, device="cpu"), lvm.FactorAnalysis(2, device="cpu")], data,
                        test_size=0.25, random_state=0)
    assert [r["model"] for r in table] == ["PPCA", "FactorAnalysis"]
    r = table[0]
    assert r["evidence"] == "exact" and r["family"] == "linear" and r["n_components"] == 2
    assert r["n_train"] == 450 and r["n_test"] == 150
    assert r["n_parameters"] == 8 * 2 + 8 + 1
    assert table[1]["n_parameters"] == 8 * 2 + 8 + 8
    # the held-out number is the mean of score_samples on the held-out split, with its std error
    from sklearn.model_selection import train_test_split

    Ytr, Yte = train_test_split(data, test_size=0.25, random_state=0)
    ll = lvm.PPCA(2, device="cpu").fit(Ytr).score_samples(Yte)
    assert r["test_log_evidence"] == pytest.approx(ll.mean(), rel=1e-12)
    assert r["test_stderr"] == pytest.approx(ll.std(ddof=1) / np.sqrt(150), rel=1e-12)
    assert r["test_bits_per_dim"] == pytest.approx(-ll.mean() / (8 * np.log(2)))
    text = str(table)
    assert "held-out" in text and "FactorAnalysis" in text and "raw data" in text


def test_standardization_jacobian_gives_densities_of_the_raw_data(data):
    # Factor analysis is equivariant to per-feature scaling, so with the Jacobian included the
    # standardized fit must report exactly the raw fit's log p(y).
    raw = lvm.compare([lvm.FactorAnalysis(2, device="cpu")], data, random_state=1)
    std = lvm.compare([lvm.FactorAnalysis(2, device="cpu")], data, standardize=True, random_state=1)
    assert std[0]["test_log_evidence"] == pytest.approx(raw[0]["test_log_evidence"], abs=2e-3)  # EM tolerance
    assert std[0]["standardized"] and "Jacobian" in str(std)
    np.testing.assert_allclose(std.preprocess(data).std(0), 1.0, rtol=0.1)


def test_named_models_and_explicit_split(data):
    table = lvm.compare({"k1": lvm.PPCA(1, device="cpu"), "k3": lvm.PPCA(3, device="cpu")},
                        Y_train=data[:400], Y_test=data[400:])
    assert [r["model"] for r in table] == ["k1", "k3"]
    assert table.best()["model"] == "k3"


def test_bad_arguments(data):
    with pytest.raises(ValueError, match="either Y .* or Y_train and Y_test"):
        lvm.compare([lvm.PPCA(2)], data, Y_train=data)
    with pytest.raises(ValueError, match="same number of features"):
        lvm.compare([lvm.PPCA(2)], Y_train=data, Y_test=data[:, :3])


def test_dequantize_adds_the_same_uniform_noise_for_every_model():
    counts = np.random.default_rng(0).poisson(5.0, size=(300, 4)).astype(float)
    seen = []

    class Spy(lvm.PPCA):
        def fit(self, Y, y=None):
            seen.append(np.array(Y))
            return super().fit(Y)

    table = lvm.compare({"a": Spy(1, device="cpu"), "b": Spy(2, device="cpu")}, counts,
                        dequantize=True, random_state=3)
    np.testing.assert_array_equal(seen[0], seen[1])  # the same draws for every model
    noise = seen[0] - counts[table.train_index]
    assert noise.min() >= 0 and noise.max() < 1 and noise.std() > 0.2
    assert table[0]["dequantized"] and "dequantized" in str(table)
    with pytest.raises(ValueError, match="dequantize=True adds uniform noise to integer-valued"):
        lvm.compare([lvm.PPCA(1)], counts + 0.5, dequantize=True)


def test_count_likelihoods_are_fitted_to_the_integers_beside_dequantized_densities():
    counts = lvm.datasets.make_counts(150, 4, 1, random_state=0).Y
    vae = lvm.VAE(1, hidden_sizes=(), likelihood="poisson", max_epochs=5, validation_fraction=0.0,
                  n_importance_samples=16, random_state=0, device="cpu")
    seen = []

    class Spy(lvm.PPCA):
        def fit(self, Y, y=None):
            seen.append(np.array(Y))
            return super().fit(Y)

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # integer data, but no integer warning
        table = lvm.compare({"density": Spy(1, device="cpu"), "counts": vae}, counts,
                            dequantize=True)
    density, count = table
    assert (seen[0] != np.round(seen[0])).any()  # the density saw dequantized data ...
    held_out = counts[table.test_index]  # ... the count model the integers themselves
    assert count["test_log_evidence"] == pytest.approx(
        count["estimator"].score_samples(held_out).mean())
    assert (density["evidence_of"], density["dequantized"]) == ("E log p(y+u)", True)
    assert (count["evidence_of"], count["dequantized"]) == ("log P(y)", False)
    assert count["test_log_evidence"] < 0
    text = str(table)
    assert "log P(y)" in text and "E log p(y+u)" in text and "dequantized" in text
    with pytest.raises(ValueError, match=r"VAE\(likelihood='poisson'\) models counts, but the "
                                         r"data have non-integer values; pass the raw counts"):
        lvm.compare([vae], counts + 0.5)
    with pytest.raises(ValueError, match=r"standardize=True would turn the counts that "
                                         r"VAE\(likelihood='poisson'\) models into non-integers"):
        lvm.compare([vae], counts, standardize=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # only count models: no warning either
        assert lvm.compare([vae], counts)[0]["evidence_of"] == "log P(y)"


def test_integer_data_without_dequantize_warn_why():
    counts = np.random.default_rng(0).poisson(5.0, size=(100, 3)).astype(float)
    with pytest.warns(UserWarning, match="integer-valued.*Pass dequantize=True"):
        lvm.compare([lvm.PPCA(1, device="cpu")], counts)


def test_converged_and_progress_are_reported(data):
    events = []
    table = lvm.compare([lvm.PPCA(2, device="cpu"),
                         lvm.FactorAnalysis(2, max_iter=10, tol=1e-12, device="cpu")], data,
                        progress=lambda name, record: events.append((name, record is None)))
    assert [r["converged"] for r in table] == ["yes", "no"]
    assert events == [("PPCA", True), ("PPCA", False), ("FactorAnalysis", True),
                      ("FactorAnalysis", False)]
    assert table[0]["score_seconds"] >= 0 and len(table.train_index) == 480


def test_missing_values_are_compared_as_the_evidence_of_the_observed_entries():
    """Standardizing is a per-row Jacobian over the observed entries: Factor Analysis, whose
    model is equivariant to per-feature scaling, scores the same with and without it."""
    Y = lvm.datasets.make_ppca(400, 6, 2, random_state=0).Y * np.array([1, 5, 20, 1, 3, 100.0])
    Y[np.random.default_rng(0).random(Y.shape) < 0.2] = np.nan
    raw = lvm.compare([lvm.FactorAnalysis(2, device="cpu")], Y)
    std = lvm.compare([lvm.FactorAnalysis(2, device="cpu")], Y, standardize=True)
    assert std[0]["test_log_evidence"] == pytest.approx(raw[0]["test_log_evidence"], abs=2e-3)  # EM tolerance
    assert 0.15 < raw[0]["missing_fraction"] < 0.25
    assert "log p(y_o)" in str(raw)
    with pytest.raises(ValueError, match="DiffusionModel does not model them"):
        lvm.compare([lvm.PPCA(2), lvm.DiffusionModel()], Y)
