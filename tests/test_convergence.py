"""Convergence decided, warned and recorded once for every iterative fit, and one ``history_``
layout across the families."""

import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import lvm
from lvm._training import HISTORY_KEYS

# Every iterative fit, with a budget of one epoch or iteration: (name, make, budget parameter,
# whether the data have missing entries).
TINY_BUDGETS = [
    ("FactorAnalysis", lambda: lvm.FactorAnalysis(2, max_iter=1), "max_iter", False),
    ("FactorAnalysis-missing", lambda: lvm.FactorAnalysis(2, max_iter=1), "max_iter", True),
    ("PPCA-missing", lambda: lvm.PPCA(2, max_iter=1), "max_iter", True),
    ("VAE", lambda: lvm.VAE(2, hidden_sizes=(8,), max_epochs=1), "max_epochs", False),
    ("BayesianGPLVM", lambda: lvm.BayesianGPLVM(2, n_inducing=6, max_iter=1), "max_iter", False),
    ("BayesianGPLVM-svi", lambda: lvm.BayesianGPLVM(2, n_inducing=6, inference="svi",
                                                    max_iter=1), "max_iter", False),
    ("DiffusionModel", lambda: lvm.DiffusionModel(width=8, depth=1, max_epochs=1), "max_epochs",
     False),
]


@pytest.fixture(scope="module")
def Y():
    return lvm.datasets.make_ppca(60, 4, 2, noise=0.2, random_state=0).Y


def _with_holes(Y):
    Y = Y.copy()
    Y[::7, 1] = np.nan
    return Y


@pytest.mark.parametrize("name, make, parameter, missing", TINY_BUDGETS,
                         ids=[t[0] for t in TINY_BUDGETS])
def test_a_budget_that_runs_out_warns_once_the_same_way(Y, name, make, parameter, missing):
    model = make().set_params(random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(_with_holes(Y) if missing else Y)
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(messages) == 1, messages
    cls = type(model).__name__
    assert re.fullmatch(rf"{cls} did not converge in {parameter}=1 [^:]*: .+\. Raise "
                        rf"{parameter}[^,]*, or (raise tol|lower patience)\.", messages[0]), \
        messages[0]
    assert model.converged_ is False
    assert model.history_ and all(tuple(r) == HISTORY_KEYS for r in model.history_)
    assert [r["epoch"] for r in model.history_] == list(range(1, len(model.history_) + 1))
    assert model.history_[-1]["n_iter"] == model.n_iter_


@pytest.mark.parametrize("missing", [False, True], ids=["complete", "missing"])
def test_factor_analysis_history_is_in_the_units_of_train_evidence(Y, missing):
    """With missing values the history lacked the log-Jacobian of the standardization that
    train_evidence_ includes: in data units of scale 10, the two differed by about D log 10."""
    data = 10.0 * (_with_holes(Y) if missing else Y)
    model = lvm.FactorAnalysis(2, tol=1e-6).fit(data)
    assert model.converged_
    assert model.history_[-1]["train"] == pytest.approx(model.train_evidence_, rel=1e-12)
    assert model.train_evidence_ == pytest.approx(model.score(data), rel=1e-9)


def test_the_missing_value_em_reports_progress_and_survives_an_interrupt(Y):
    records = []

    def on_epoch(record, name):
        records.append((name, record["epoch"]))
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    model = lvm.PPCA(2, tol=0.0)
    with lvm.settings.on_epoch(on_epoch), pytest.raises(KeyboardInterrupt):
        model.fit(_with_holes(Y))
    assert records == [("PPCA", 1), ("PPCA", 2), ("PPCA", 3)]
    # left usable at its last whole EM iteration, and saying it did not converge
    assert model.converged_ is False and model.n_iter_ == 3 and len(model.history_) == 3
    assert model.history_[-1]["train"] == pytest.approx(model.train_evidence_, rel=1e-12)
    assert np.isfinite(model.score(_with_holes(Y)))
