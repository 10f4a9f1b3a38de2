"""The command line, in process (``lvm.cli.main``): the main job end to end, real CSVs, and one-line
errors with exit status 2. One subprocess test covers what only a fresh process shows."""

import os
import subprocess
import sys
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

import lvm
import lvm.cli
from lvm.cli import main
from tests.tables import cells, write_csv


@pytest.fixture
def wine_csv(tmp_path, wine):
    """wine.csv: the 13 features and a last column 'class'."""
    Y, y, names = wine
    return write_csv(tmp_path / "wine.csv", names + ["class"],
                     [[*cells(r), int(c)] for r, c in zip(Y, y)])


@pytest.fixture
def saved_figures(monkeypatch):
    """The figures the command saves, in order."""
    figures = []
    save = Figure.savefig

    def spy(self, *args, **kwargs):
        figures.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return figures


@pytest.fixture
def tables(monkeypatch):
    """The comparison tables the command computes (with the fitted estimators)."""
    seen = []
    compare = lvm.cli._compare

    def spy(*args, **kwargs):
        table, train = compare(*args, **kwargs)
        seen.append(table)
        return table, train

    monkeypatch.setattr(lvm.cli, "_compare", spy)
    return seen


# ------------------------------------------------------------------------------------- embed
def test_embed_writes_coordinates(tmp_path, capsys):
    Y = np.random.default_rng(0).standard_normal((60, 5))
    np.save(tmp_path / "Y.npy", Y)
    assert main(["embed", "--data", str(tmp_path / "Y.npy"), "--model", "ppca",
                 "--out", str(tmp_path / "X.csv")]) == 0
    with open(tmp_path / "X.csv") as f:
        assert f.readline().strip() == "x0,x1"
    X = np.loadtxt(tmp_path / "X.csv", delimiter=",", skiprows=1)
    assert X.shape == (60, 2)


def test_embed_standardizes_around_an_empty_cell(tmp_path, capsys):
    # One empty cell must not turn its column into NaN (it did: Y.mean(0) / Y.std(0)); embed
    # standardizes as lvm.compare does, over each feature's observed entries.
    Y = lvm.datasets.make_ppca(200, 5, 2, random_state=0).Y * [1, 10, 100, 0.1, 1] + 3
    lines = ["a,b,c,d,e"] + [",".join(repr(float(v)) for v in row) for row in Y]
    lines[1 + 17] = ",".join(["" if j == 1 else repr(float(v)) for j, v in enumerate(Y[17])])
    (tmp_path / "hole.csv").write_text("\n".join(lines) + "\n")
    assert main(["embed", "--data", str(tmp_path / "hole.csv"), "--model", "ppca", "--out",
                 str(tmp_path / "X.csv")]) == 0
    assert "1 missing value(s)" in capsys.readouterr().err
    X = np.loadtxt(tmp_path / "X.csv", delimiter=",", skiprows=1)
    assert X.shape == (200, 2) and np.isfinite(X).all()
    Y[17, 1] = np.nan
    Z = (Y - np.nanmean(Y, 0)) / np.nanstd(Y, 0)
    expected = lvm.PPCA(2, random_state=0).fit(Z).transform(Z)
    np.testing.assert_allclose(X, expected, rtol=1e-5, atol=1e-6)  # written with 6 digits


def test_embed_std_and_labels_columns(wine_csv, capsys):
    # The default model (lvm.cli.MODELS["embed"], the VAE with the neighbour term); with labels
    # its neighbour metrics go to stderr.
    assert main(["embed", "--data", str(wine_csv), "--labels", "class", "--std"]) == 0
    captured = capsys.readouterr()
    assert "VAE, the 178 rows it was fitted to: training log p(y)" in captured.err
    assert "1-NN" in captured.err and "trustworthiness@5" in captured.err
    out = captured.out.splitlines()
    assert out[0] == "x0,x1,x0_std,x1_std,label"
    rows = np.array([line.split(",") for line in out[1:]])
    assert rows.shape == (178, 5)
    X, X_std = rows[:, :2].astype(float), rows[:, 2:4].astype(float)
    assert (X_std > 0).all() and (X_std < 1).all()  # posterior sd shrinks from the prior's 1
    assert set(rows[:, 4]) == {"0", "1", "2"}
    assert np.isfinite(X).all()


# ------------------------------------------------------- reading files (lvm.datasets.load_table)
def test_labels_column_is_not_a_feature_and_colours_the_figure(wine_csv, tmp_path, capsys,
                                                                saved_figures, tables):
    out = tmp_path / "out"
    assert main(["compare", "--data", str(wine_csv), "--labels", "class", "--models", "ppca,fa",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "178 rows x 13 features" in err
    assert all(r["estimator"].n_features_in_ == 13 for r in tables[0])
    # one scatter per class in every model's panel, the classes in the first panel's legend
    fig = saved_figures[-1]
    scatters = fig.axes[:2]
    assert [len(ax.collections) for ax in scatters] == [3, 3]
    legend = [t.get_text() for t in scatters[0].get_legend().get_texts()]
    assert legend[:3] == ["0", "1", "2"]
    # panels are titled by model names, not CLI keys
    assert [ax.get_title() for ax in scatters] == ["PPCA", "FactorAnalysis"]
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == ["PPCA", "FactorAnalysis"]
    assert (out / "comparison.png").stat().st_size > 20_000


def _pandas_csv(path, Y, names):
    """A CSV as pandas' DataFrame.to_csv writes it: an unnamed index column first."""
    try:
        import pandas as pd
    except ImportError:
        return write_csv(path, [""] + names, [[i, *cells(r)] for i, r in enumerate(Y)])
    pd.DataFrame(Y, columns=names).to_csv(path)
    return path


def test_pandas_written_csv_gives_the_same_model(tmp_path, wine, capsys, tables):
    Y, _, names = wine
    plain = write_csv(tmp_path / "plain.csv", names, [cells(r) for r in Y])
    pandas = _pandas_csv(tmp_path / "pandas.csv", Y, names)
    for path in (plain, pandas):
        assert main(["compare", "--data", str(path), "--models", "ppca,fa"]) == 0
    for a, b in zip(*tables):
        assert b["estimator"].n_features_in_ == 13
        assert a["test_log_evidence"] == b["test_log_evidence"]
        np.testing.assert_array_equal(a["estimator"].components_, b["estimator"].components_)
    err = capsys.readouterr().err
    assert err.count("lvm: note: dropped column 0 ('') of pandas.csv as a row index") == 1


@pytest.mark.parametrize(
    "content, message",
    [
        ("a,b\n1,2\n3,x\n", "column 'b' is not numeric (row 2 holds 'x')"),
        ("1,2\n3,inf\n5,6\n", "1 infinite value(s) (first at row 2, feature 2)"),
        ("a,b\n1,2\n,\n", "row 2 has no observed value"),
        ("1,2\n3\n", "row 2 (line 2) has 1 fields, expected 2"),
        ("1,2,3\n4,5,6,7\n", "row 2 (line 2) has 4 fields, expected 3"),
        ("", "is empty"),
        ("\n\n", "is empty"),
    ],
)
def test_bad_csv_is_rejected(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["compare", "--data", str(path), "--models", "ppca"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1


def test_missing_and_unknown_files(tmp_path, capsys):
    assert main(["embed", "--data", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    assert main(["embed", "--data", str(tmp_path / "x.parquet")]) == 2
    assert "use a .csv, .tsv, .txt, .npy or .npz" in capsys.readouterr().err
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    assert main(["embed", "--data", str(tmp_path / "junk.npy")]) == 2
    assert "cannot read" in capsys.readouterr().err


# ------------------------------------------------------------------------------ bad arguments
WINE = ["--data", "{wine}", "--labels", "class"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compare", *WINE, "--models", "ppca", "--components", "0"],
         "The 'n_components' parameter of PPCA must be"),
        (["compare", *WINE, "--models", "ppca", "--components", "20"],
         "n_components=20 is larger than the data's 13 feature(s)"),
        (["embed", *WINE, "--model", "ppca", "--components", "20"],
         "n_components=20 is larger than the data's 13"),
        (["compare", *WINE, "--models", "ppca", "--test-size", "1.5"],
         "The 'test_size' parameter of train_test_split must be"),
        (["compare", *WINE, "--test-size", "half"], "argument --test-size: invalid value 'half'"),
        (["compare", *WINE, "--components", "two"], "argument --components: invalid int value"),
        (["compare", *WINE, "--models", "ppca,pca9"], "unknown model 'pca9'; choose from ppca, fa"),
        (["compare", *WINE, "--models", ","], "no models given"),
        (["embed", *WINE, "--model", "pca9"], "argument --model: invalid choice: 'pca9'"),
        (["compare", "--data", "{wine}", "--labels", "colour"],
         "no column named 'colour' for the labels"),
        (["compare", "--data", "{wine}", "--labels", "14"], "labels=14: "),
        (["compare", *WINE, "--bogus"], "unrecognized arguments: --bogus"),
        (["demo", "--models", "ppca,pca9"], "unknown model 'pca9'"),
        ([], "the following arguments are required"),
        (["compare"], "the following arguments are required: --data"),
    ],
)
def test_bad_argument_is_one_line_and_exit_2(wine_csv, capsys, argv, message):
    assert main([a.replace("{wine}", str(wine_csv)) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("lvm: error: ") and message in lines[0]
    assert captured.out == ""


def test_help_shows_defaults_and_examples(capsys):
    assert main(["compare", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # help text is wrapped to the terminal
    assert "(default: 0.2)" in out and "(default: ppca,vae,gplvm)" in out
    assert "examples:" in out and "--labels COLUMN" in out
    assert main(["--version"]) == 0
    assert lvm.__version__ in capsys.readouterr().out


# ---------------------------------------------------------------------------------- progress
def test_a_progress_line_per_model(wine_csv, capsys):
    assert main(["compare", "--data", str(wine_csv), "--labels", "class", "--models",
                 "ppca,fa"]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0].startswith("lvm compare: 178 rows x 13 features")
    assert lines[1].startswith("[1/2] PPCA") and lines[2].startswith("[2/2] FactorAnalysis")
    assert all("fit " in ln and "score " in ln for ln in lines[1:3])
    assert "held-out" in captured.out and "[1/2]" not in captured.out


def test_progress_line_shows_a_long_fit_as_it_runs_and_nothing_for_a_rejected_one(capsys):
    progress = lvm.cli._Progress(2, header="header", delay=0.0)
    progress.start(1, "Slow")
    time.sleep(0.2)  # the fit outlasts the delay: its name is on screen while it runs
    assert capsys.readouterr().err == "header\n[1/2] Slow ..."
    progress.done("fit 0.2 s")
    assert capsys.readouterr().err == " fit 0.2 s\n"
    progress = lvm.cli._Progress(2, header="header", delay=60.0)
    progress.start(1, "Quick")
    progress.done("fit 0.0 s")
    progress.start(2, "Rejected")  # an estimator refused it at once: the error is the only line
    progress.fail()
    assert capsys.readouterr().err == "header\n[1/2] Quick: fit 0.0 s\n"


def test_embed_plot_draws_the_map_and_its_metrics(wine_csv, tmp_path, capsys, saved_figures):
    png = tmp_path / "map.png"
    assert main(["embed", "--data", str(wine_csv), "--labels", "class", "--model", "ppca",
                 "--plot", str(png), "--out", os.devnull]) == 0
    assert png.stat().st_size > 20_000
    fig = saved_figures[-1]
    assert fig.axes[0].get_legend() is not None  # coloured by the labels, ellipses explained
    assert any("1-NN" in t.get_text() for t in fig.axes[0].texts)
    assert "PPCA, the 178 rows it was fitted to: training log p(y)" in capsys.readouterr().err


def test_verbose_gives_the_estimators_progress_bars(wine_csv, capsys):
    assert main(["embed", "--data", str(wine_csv), "--labels", "class", "--model", "fa",
                 "--verbose", "--out", os.devnull]) == 0
    err = capsys.readouterr().err
    assert "FactorAnalysis" in err and "%|" in err  # a tqdm bar


# ----------------------------------------------------------------------------------- the demo
def test_demo_quick(tmp_path, capsys, saved_figures):
    # The demo's code path on a few digits with tiny settings (a few seconds).
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    for name in ("PPCA", "FactorAnalysis", "VAE", "BayesianGPLVM", "DiffusionModel"):
        assert f"\n{name} " in captured.out
    assert "exact" in captured.out and "importance-weighted estimate" in captured.out
    assert "lower bound" in captured.out
    # the same digits as counts: the binomial(16) VAE's log P(y) of the integers themselves
    assert "\nVAE[binomial] " in captured.out and "log P(y)" in captured.out
    progress = [ln for ln in captured.err.splitlines() if ln.startswith("[")]
    assert [ln.split()[0] for ln in progress] == [f"[{i}/6]" for i in range(1, 7)]
    assert [ax.get_title() for ax in saved_figures[-1].axes[:6]] == [
        "PPCA", "FactorAnalysis", "VAE", "BayesianGPLVM", "DiffusionModel", "VAE[binomial]"]
    assert (tmp_path / "demo.png").stat().st_size > 50_000


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    # The README's main job, every family, as the user runs it.
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("PPCA", "FactorAnalysis", "VAE", "BayesianGPLVM", "DiffusionModel",
                 "VAE[binomial]"):
        assert f"\n{name} " in out
    assert "exact" in out and "importance-weighted estimate" in out and "held-out" in out
    assert (tmp_path / "demo.png").stat().st_size > 50_000


# ------------------------------------------------------------------------ the lazy package
def test_package_names_resolve_lazily():
    assert set(lvm.__all__) <= set(dir(lvm))
    for name in lvm.__all__:
        assert getattr(lvm, name) is not None
    assert callable(lvm.compare) and lvm.compare is sys.modules["lvm._compare"].compare
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lvm.nope


def test_fresh_process_imports_nothing_heavy_and_a_closed_pipe_is_quiet(tmp_path):
    # The only subprocess test: `import lvm.cli` (what `lvm --help` pays) must not import torch,
    # GPyTorch or matplotlib, and `lvm embed ... | head` must end without a traceback.
    np.save(tmp_path / "Y.npy", np.random.default_rng(0).standard_normal((20_000, 3)))
    code = ("import sys, lvm.cli; heavy = {'torch', 'gpytorch', 'matplotlib'} & set(sys.modules);"
            "sys.exit(f'imported by lvm.cli: {sorted(heavy)}') if heavy else "
            "sys.exit(lvm.cli.main(sys.argv[1:]))")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code, "embed", "--data",
                             str(tmp_path / "Y.npy"), "--model", "ppca", "--std"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()
        proc.stdout.close()  # like `head -1`
        err = proc.stderr.read()
        status = proc.wait(timeout=300)
    finally:
        proc.kill()
    assert "imported by lvm.cli" not in err, err
    assert first.strip() == "x0,x1,x0_std,x1_std"
    assert status == 141 and "Traceback" not in err and "BrokenPipeError" not in err, err


def test_integer_data_are_dequantized_on_request_and_noted_otherwise(tmp_path, capsys):
    counts = np.random.default_rng(0).poisson(4.0, size=(200, 5))
    np.savetxt(tmp_path / "counts.csv", counts, delimiter=",", fmt="%d")
    assert main(["compare", "--data", str(tmp_path / "counts.csv"), "--models", "ppca",
                 "--components", "1"]) == 0
    err = capsys.readouterr().err
    assert "lvm: note: The data are integer-valued" in err and "dequantize" in err
    assert main(["compare", "--data", str(tmp_path / "counts.csv"), "--models", "ppca",
                 "--components", "1", "--dequantize"]) == 0
    captured = capsys.readouterr()
    assert "dequantized" in captured.out and "integer-valued" not in captured.err


def test_likelihood_option_for_compare_and_embed(tmp_path, capsys, monkeypatch):
    counts = lvm.datasets.make_counts(120, 5, 1, random_state=0).Y
    np.savetxt(tmp_path / "counts.csv", counts, delimiter=",", fmt="%d")
    built = []
    build = lvm.cli.build_model

    def spy(*args, **kwargs):
        built.append(build(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(lvm.cli, "build_model", spy)
    monkeypatch.setitem(lvm.cli.MODELS, "vae", ("VAE", {"hidden_sizes": (), "max_epochs": 5,
                                                        "n_importance_samples": 8}, {}))
    fast = ["--components", "1", "--fast", "--likelihood", "poisson"]
    assert main(["compare", "--data", str(tmp_path / "counts.csv"), "--models", "ppca,vae",
                 "--dequantize", *fast]) == 0
    captured = capsys.readouterr()
    assert "PPCA has no likelihood option: --likelihood does not apply" in captured.err
    assert built[1].likelihood == "poisson"
    gplvm = lvm.cli.build_model("gplvm", **lvm.cli._likelihood_params("BayesianGPLVM", "poisson"))
    assert (gplvm.likelihood, gplvm.inference) == ("poisson", "svi")  # collapsed is Gaussian
    # not standardized (the raw counts), and a log-probability beside the dequantized bound
    assert "log P(y)" in captured.out and "E log p(y+u)" in captured.out
    assert "standardized" not in captured.out
    assert main(["embed", "--data", str(tmp_path / "counts.csv"), "--model", "vae",
                 "--out", str(tmp_path / "x.csv"), *fast]) == 0
    assert built[-1].likelihood == "poisson" and built[-1].converged_ is not None
    assert main(["embed", "--data", str(tmp_path / "counts.csv"), "--model", "vae",
                 "--components", "1", "--likelihood", "poisson(k=2)"]) == 2
    assert "lvm: error: likelihood 'poisson' has no option 'k'" in capsys.readouterr().err
    assert main(["embed", "--data", str(tmp_path / "counts.csv"), "--model", "vae",
                 "--standardize", *fast]) == 2
    assert "needs non-negative integer counts" in capsys.readouterr().err


def test_missing_values_are_read_as_nan_and_scored_as_observed_entries(tmp_path, capsys):
    rng = np.random.default_rng(0)
    Y = lvm.datasets.make_ppca(200, 5, 2, random_state=0).Y
    holes = rng.random(Y.shape) < 0.1
    lines = ["a,b,c,d,e"] + [",".join("" if h else f"{v:.6g}" for v, h in zip(row, hrow))
                             for row, hrow in zip(Y, holes)]
    (tmp_path / "holes.csv").write_text("\n".join(lines) + "\n")
    assert main(["compare", "--data", str(tmp_path / "holes.csv"), "--models", "ppca,fa"]) == 0
    out, err = capsys.readouterr()
    assert "missing value(s)" in err and "observed entries" in out
    assert main(["compare", "--data", str(tmp_path / "holes.csv"), "--models",
                 "ppca,diffusion"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "DiffusionModel does not model them" in err[-1]
