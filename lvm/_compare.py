r"""Compare decoder families by their evidence on the same split of the same data.

**Integer data.** A continuous density on discrete values (pixel counts) is not a probability: it
can be made arbitrarily large by a model that concentrates on the integers, and two families'
numbers are not comparable. ``dequantize=True`` adds uniform noise u ~ U[0, 1) to every entry
(one draw per entry, the same for every model, seeded by ``random_state``); by Jensen,
log P(k) = log \int_{[0,1)^D} p(k + u) du >= E_u[log p(k + u)], so each reported number is a
stochastic lower bound on the log-probability of the discrete data (Theis, van den Oord & Bethge,
2016), and comparable across families.

**Count likelihoods.** A model with a discrete likelihood (``likelihood="poisson"``,
``"negative_binomial"``, ``"binomial(n=...)"``) is fitted to the integers themselves, never
dequantized or standardized, and its number is log P(y), the log-probability itself (at most 0 per
entry). The ``of`` column says which quantity each row is: ``log P(y)``, ``E log p(y+u)`` (a
dequantized density, a lower bound on the same log P(y)) or ``log p(y)`` (a density).
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
from sklearn.base import clone

from ._preprocess import feature_standardization
from ._preprocess import standardize as standardize_features

__all__ = ["compare", "ComparisonTable", "count_parameters"]

_COLUMNS = [
    ("model", "model", "{}"),
    ("family", "family", "{}"),
    ("K", "n_components", "{}"),
    ("evidence", "evidence", "{}"),
    ("of", "evidence_of", "{}"),
    ("train", "train_log_evidence", "{:.3f}"),
    ("held-out", "test_log_evidence", "{:.3f}"),
    ("± se", "test_stderr", "{:.3f}"),
    ("bits/dim", "test_bits_per_dim", "{:.3f}"),
    ("fit s", "fit_seconds", "{:.2f}"),
    ("params", "n_parameters", "{:,}"),
    ("conv", "converged", "{}"),
]


class ComparisonTable(list):
    """A list of records (dicts), one per model, that prints as a terminal table.

    Each record has: ``model``, ``family``, ``n_components``, ``evidence`` (exact / lower bound /
    importance-weighted estimate), ``train_log_evidence`` and ``test_log_evidence`` (mean log p(y)
    per point in nats, of the data as passed, Jacobian of any standardization included),
    ``train_stderr`` and ``test_stderr`` (standard errors of those means over points),
    ``evidence_of`` (``log P(y)`` for a count likelihood, ``E log p(y+u)`` for a dequantized
    density, ``log p(y)`` for a density), ``test_bits_per_dim``, ``fit_seconds``,
    ``score_seconds``, ``n_parameters``, ``converged``
    (whether the fit stopped by its criterion; "yes" for closed forms), ``standardized``,
    ``dequantized``, ``estimator``.
    """

    #: (mean, scale) of the per-feature standardization fitted on the training split, or None.
    standardization = None
    #: Row indices of the training and held-out parts when ``compare`` split ``Y`` itself.
    train_index = test_index = None
    #: The training rows exactly as the models were fitted on them (dequantized, standardized).
    train_data = None
    #: The training rows as a count likelihood was fitted on them (the integers themselves).
    train_counts = None

    def preprocess(self, Y) -> np.ndarray:
        """Apply the table's preprocessing (the one every model was fitted on) to new data."""
        Y = np.asarray(Y, dtype=np.float64)
        if self.standardization is None:
            return Y
        mean, scale = self.standardization
        return (Y - mean) / scale

    def to_frame(self):
        """The table as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_frame() needs pandas: pip install pandas") from exc
        return pd.DataFrame([{k: v for k, v in r.items() if k != "estimator"} for r in self])

    def best(self, split="test"):
        """The record with the highest mean log evidence on ``split``."""
        return max(self, key=lambda r: r[f"{split}_log_evidence"])

    def __str__(self):
        rows = [[fmt.format(r[key]) for _, key, fmt in _COLUMNS] for r in self]
        heads = [h for h, _, _ in _COLUMNS]
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
                  for i, h in enumerate(heads)]
        line = "  ".join(h.ljust(w) for h, w in zip(heads, widths))
        out = [line, "-" * len(line)]
        out += ["  ".join(c.rjust(w) if i >= 5 else c.ljust(w) for i, (c, w) in
                          enumerate(zip(row, widths))) for row in rows]
        if self:
            r = self[0]
            out.append(f"log p(y) per point in nats on {r['n_train']} train / {r['n_test']} held-out "
                       f"points; " + ("standardized per feature (Jacobian included)"
                                     if r["standardized"] else "raw data")
                       + ("; dequantized (uniform noise on integer data: lower bounds on the "
                          "discrete log-probability)" if any(q.get("dequantized") for q in self)
                          else "")
                       + ("; log P(y): count likelihoods' log-probability of the integers"
                          if any(q.get("evidence_of") == "log P(y)" for q in self) else "")
                       + (f"; {100 * r['missing_fraction']:.3g}% of the entries are missing (NaN):"
                          " each number is the evidence of a row's observed entries, log p(y_o)"
                          if r.get("missing_fraction") else "") + ".")
        return "\n".join(out)

    __repr__ = __str__


def count_parameters(model) -> int:
    """Number of fitted real parameters of a model (global ones; per-point variational
    parameters of q(x) are not counted)."""
    n = getattr(model, "n_parameters_", None)
    if n is not None:
        return int(n)
    import torch

    seen = {}  # by identity: fitted sub-modules (encoder_, decoder_) share parameters with module_
    for name, value in vars(model).items():
        if name.endswith("_") and isinstance(value, torch.nn.Module):
            seen.update((id(p), p.numel()) for p in value.parameters())
    return sum(seen.values())


def _mean_se(v: np.ndarray):
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def _evidence_of(name: str) -> str:
    """The ``of`` column of a count likelihood: log P(y), or log P(y | s) with size factors."""
    from .likelihoods import get_likelihood

    return get_likelihood(name).evidence_of()


def _count_likelihood(model) -> str | None:
    """The ``likelihood`` name of a model with a discrete (count) likelihood, else None."""
    from .likelihoods import get_likelihood

    name = getattr(model, "likelihood", None)
    try:
        return name if isinstance(name, str) and get_likelihood(name).discrete else None
    except ValueError:  # not a likelihood name: the model's own fit says so
        return None


def _is_integer_valued(*arrays) -> bool:
    """Whether every observed (non-NaN) entry is a finite whole number."""
    values = [a[~np.isnan(a)] for a in arrays]
    return all(np.all(np.isfinite(v)) and np.all(v == np.round(v)) for v in values)


def compare(models, Y=None, *, Y_train=None, Y_test=None, test_size=0.2, standardize=False,
            dequantize=False, random_state=0, verbose=False, progress=None, as_frame=False):
    r"""Fit every estimator on the same split and tabulate its evidence.

    Parameters
    ----------
    models : list of estimators or dict name -> estimator
        Unfitted lvm estimators (each is cloned before fitting).
    Y : array-like of shape (n_samples, n_features), optional
        Split into train and held-out parts by ``test_size`` and ``random_state``. NaN marks a
        missing entry: every model must then model missing values (``allow_nan`` tag; PPCA,
        FactorAnalysis, VAE, BayesianGPLVM), and each number is the evidence of the observed
        entries, :math:`\log p(y_o)`, as the table's footer says.
    Y_train, Y_test : array-like, optional
        An explicit split instead of ``Y``.
    test_size : float or int, default=0.2
        The held-out fraction (or number of rows) when ``Y`` is split.
    standardize : bool, default=False
        Standardize every feature with the training mean and standard deviation before fitting
        (decided once, the same for every model). The reported log p(y) is then that of the data
        as passed: :math:`\log p(y) = \log p(z) - \sum_d \log s_d` with :math:`z = (y - m) / s`.
    dequantize : bool, default=False
        For integer-valued data: add uniform noise in [0, 1) to every entry, the same draws for
        every model (seeded by ``random_state``), so every number is a lower bound on the
        log-probability of the discrete data (see the module docstring). Integer data compared
        without it get a warning. Models with a count likelihood are fitted to the integers
        either way (their numbers are log P(y) itself).
    random_state : int, default=0
        Seeds the split and the dequantization noise.
    verbose : bool, default=False
        Print a line per model as it is fitted.
    progress : callable, optional
        Called as ``progress(name, None)`` when a model starts and ``progress(name, record)``
        when its record is complete (the command line prints its progress lines with it).
    as_frame : bool, default=False
        Return a pandas DataFrame instead of the :class:`ComparisonTable`.

    Returns
    -------
    ComparisonTable or pandas.DataFrame
        One record per model (a list of dicts that prints as a table), or a DataFrame.
    """
    from sklearn.model_selection import train_test_split

    if Y is not None and (Y_train is not None or Y_test is not None):
        raise ValueError("Pass either Y (split by test_size) or Y_train and Y_test, not both.")
    train_index = test_index = None
    if Y is not None:
        Y = np.asarray(Y, dtype=np.float64)
        train_index, test_index = train_test_split(np.arange(len(Y)), test_size=test_size,
                                                   random_state=random_state)
        Y_train, Y_test = Y[train_index], Y[test_index]
    elif Y_train is None or Y_test is None:
        raise ValueError("compare() needs data: Y, or both Y_train and Y_test.")
    Y_train = np.asarray(Y_train, dtype=np.float64)
    Y_test = np.asarray(Y_test, dtype=np.float64)
    if Y_train.ndim != 2 or Y_test.ndim != 2 or Y_train.shape[1] != Y_test.shape[1]:
        raise ValueError(
            f"Y_train and Y_test must be 2-D with the same number of features; got shapes "
            f"{Y_train.shape} and {Y_test.shape}."
        )
    missing = float(np.isnan(Y_train).mean() * Y_train.size + np.isnan(Y_test).mean()
                    * Y_test.size) / max(1, Y_train.size + Y_test.size)
    if missing:
        unable = [type(m).__name__ for m in (models.values() if isinstance(models, dict)
                                            else models)
                  if not m.__sklearn_tags__().input_tags.allow_nan]
        if unable:
            raise ValueError(
                f"The data have missing values (NaN, {100 * missing:.3g}% of the entries), but "
                f"{', '.join(dict.fromkeys(unable))} does not model them; leave it out, or fill "
                "the holes first (e.g. lvm.LatentImputer).")
    integer = _is_integer_valued(Y_train, Y_test)
    estimators = list(models.values()) if isinstance(models, dict) else list(models)
    models = models if isinstance(models, dict) else estimators  # iterated once more below
    counts = {id(m): _count_likelihood(m) for m in estimators}
    count_models = [f"{type(m).__name__}(likelihood={counts[id(m)]!r})" for m in estimators
                    if counts[id(m)]]
    if count_models and not integer:
        raise ValueError(
            f"{', '.join(count_models)} models counts, but the data have non-integer values; "
            "pass the raw counts, or use a continuous likelihood (likelihood='gaussian').")
    if count_models and standardize:
        raise ValueError(
            f"standardize=True would turn the counts that {', '.join(count_models)} models into "
            "non-integers; pass standardize=False.")
    Y_counts = (Y_train, Y_test)  # what a count likelihood is fitted to and scored on
    if dequantize:
        if not integer:
            raise ValueError("dequantize=True adds uniform noise to integer-valued data, but the "
                             "data have non-integer values; pass dequantize=False.")
        rng = np.random.default_rng(random_state)
        Y_train = Y_train + rng.random(Y_train.shape)
        Y_test = Y_test + rng.random(Y_test.shape)
    elif integer and len(count_models) < len(counts):
        warnings.warn(
            "The data are integer-valued: continuous densities on discrete values are not "
            "probabilities, can grow without bound, and are not comparable between families. "
            "Pass dequantize=True for lower bounds on the discrete log-probability.",
            UserWarning, stacklevel=2)
    jac_train = jac_test = 0.0
    if standardize:
        # log |dz/dy| of each row: over its observed entries only when some are missing.
        mean, scale = feature_standardization(Y_train)
        Y_train, jac_train = standardize_features(Y_train, mean, scale)
        Y_test, jac_test = standardize_features(Y_test, mean, scale)
    if isinstance(models, dict):
        named = list(models.items())
    else:
        named, seen = [], {}
        for m in models:
            name = type(m).__name__
            seen[name] = seen.get(name, 0) + 1
            named.append((name if seen[name] == 1 else f"{name}-{seen[name]}", m))
    D = Y_train.shape[1]
    table = ComparisonTable()
    table.train_index, table.test_index = train_index, test_index
    table.train_data = Y_train
    table.train_counts = Y_counts[0]
    if standardize:
        table.standardization = (mean, scale)
    for name, est in named:
        model = clone(est)
        if verbose:
            print(f"fitting {name} ...", flush=True)
        if progress is not None:
            progress(name, None)
        t0 = time.perf_counter()
        discrete = counts.get(id(est)) is not None
        Y_fit, Y_held = Y_counts if discrete else (Y_train, Y_test)
        model.fit(Y_fit)
        t1 = time.perf_counter()
        tr = np.asarray(model.score_samples(Y_fit), dtype=np.float64) + jac_train
        te = np.asarray(model.score_samples(Y_held), dtype=np.float64) + jac_test
        tr_mean, tr_se = _mean_se(tr)
        te_mean, te_se = _mean_se(te)
        record = {
            "model": name,
            "family": getattr(model, "family", "") or type(model).__name__,
            "n_components": int(getattr(model, "n_components_", getattr(model, "n_components", 0))),
            "evidence": getattr(model, "evidence_kind", "exact"),
            "evidence_of": (_evidence_of(counts[id(est)]) if discrete
                            else "E log p(y+u)" if dequantize else "log p(y)"),
            "train_log_evidence": tr_mean,
            "train_stderr": tr_se,
            "test_log_evidence": te_mean,
            "test_stderr": te_se,
            "test_bits_per_dim": -te_mean / (D * math.log(2.0)),
            "fit_seconds": t1 - t0,
            "score_seconds": time.perf_counter() - t1,
            "n_parameters": count_parameters(model),
            "converged": "yes" if getattr(model, "converged_", True) else "no",
            "standardized": bool(standardize),
            "dequantized": bool(dequantize) and not discrete,
            "missing_fraction": missing,
            "n_train": len(Y_train),
            "n_test": len(Y_test),
            "estimator": model,
        }
        table.append(record)
        if progress is not None:
            progress(name, record)
    return table.to_frame() if as_frame else table
