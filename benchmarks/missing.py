"""Imputation of missing values: lvm's LatentImputer against what a user would pick instead.

    python benchmarks/missing.py [--datasets oil digits synthetic] [--rates 0.1 0.3 0.5]
                                 [--threads 1] [--quick]

Entries are hidden completely at random (seeded); every method sees the same holes and is scored
by the root mean squared error on the hidden entries (in the units of the standardized data, so
the column-mean imputer scores about 1) and by its seconds, in one run, with the ratio of each
method's RMSE to scikit-learn's IterativeImputer. Methods:

* lvm: ``LatentImputer(PPCA(K))``, ``LatentImputer(FactorAnalysis(K))`` (exact EM over the
  observed entries), ``LatentImputer(BayesianGPLVM(Q))`` and ``LatentImputer(VAE(Q))`` where those
  families model missing values (skipped with a note otherwise);
* scikit-learn: ``SimpleImputer`` (column means), ``KNNImputer(5)`` (skipped above 20,000 rows: it
  is quadratic in N), ``IterativeImputer`` (BayesianRidge, 10 rounds);
* statsmodels' ``PCA(missing="fill-em")`` with K components, when statsmodels is installed;
* GPy's ``BayesianGPLVMMiniBatch(missing_data=True)`` on oil flow, when GPy is installed.

K for PPCA / FA is chosen by the exact held-out evidence of the observed entries on a
validation split of the rows (the largest of 2..min(10, D - 1) that the evidence prefers).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np

import lvm


def load(name, quick):
    if name == "oil":
        Y = lvm.datasets.load_oil_flow().Y
    elif name == "digits":
        Y = lvm.datasets.load_digits().Y
        Y = Y[:, Y.var(0) > 0]
    else:
        n = 10_000 if quick else 100_000
        Y = lvm.datasets.make_ppca(n, 100, 10, noise=0.5, random_state=0).Y
    return (Y - Y.mean(0)) / Y.std(0)


def hide(Y, rate, seed=0):
    holes = np.random.default_rng(seed).random(Y.shape) < rate
    holes[holes.all(1), 0] = False  # every row keeps an observed entry
    return np.where(holes, np.nan, Y), holes


def choose_k(Yn, Est, candidates):
    """The K whose model has the highest held-out evidence of the observed entries."""
    n = len(Yn)
    train, valid = Yn[: int(0.8 * n)], Yn[int(0.8 * n):]
    scores = {}
    for k in candidates:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores[k] = Est(k, max_iter=300, device="cpu").fit(train).score(valid)
    return max(scores, key=scores.get)


def methods(name, Y, Yn, quick):
    """(label, factory) pairs; a factory returns an object with fit_transform."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

    D = Y.shape[1]
    ks = list(range(2, min(10, D - 1) + 1))
    k_ppca = choose_k(Yn, lvm.PPCA, ks)
    k_fa = choose_k(Yn, lvm.FactorAnalysis, ks)
    out = [
        (f"lvm LatentImputer(PPCA({k_ppca}))", lambda: lvm.LatentImputer(lvm.PPCA(k_ppca))),
        (f"lvm LatentImputer(FactorAnalysis({k_fa}))",
         lambda: lvm.LatentImputer(lvm.FactorAnalysis(k_fa))),
    ]
    gplvm = lvm.BayesianGPLVM(2 if name == "oil" else 5, n_inducing=50 if not quick else 20,
                              max_iter=1000 if not quick else 100, random_state=0)
    vae = lvm.VAE(2 if name == "oil" else 5, random_state=0)
    for label, est in (("BayesianGPLVM", gplvm), ("VAE", vae)):
        if est.__sklearn_tags__().input_tags.allow_nan and len(Y) <= 20_000:
            out.append((f"lvm LatentImputer({label}({est.n_components}))",
                        lambda est=est: lvm.LatentImputer(est)))
        else:
            print(f"  (skipping LatentImputer({label}): "
                  + ("it does not model missing values yet)" if len(Y) <= 20_000
                     else "above 20,000 rows)"))
    out += [("sklearn SimpleImputer(mean)", lambda: SimpleImputer()),
            ("sklearn IterativeImputer", lambda: IterativeImputer(max_iter=10, random_state=0))]
    if len(Y) <= 20_000:
        out.append(("sklearn KNNImputer(5)", lambda: KNNImputer(n_neighbors=5)))
    try:
        import statsmodels.multivariate.pca as smpca

        # statsmodels needs at least ncomp observed entries in every row and column
        k_sm = int(min(k_ppca, (~np.isnan(Yn)).sum(1).min()))

        class StatsmodelsFillEM:
            def fit_transform(self, X):
                pca = smpca.PCA(X, ncomp=k_sm, missing="fill-em", standardize=False,
                                demean=True, normalize=False, max_em_iter=100)
                return np.where(np.isnan(X), np.asarray(pca.projection), X)

        out.append((f"statsmodels PCA({k_sm}, fill-em)", StatsmodelsFillEM))
    except ImportError:
        print("  (statsmodels not installed: pip install statsmodels to include PCA fill-em)")
    if name == "oil":
        try:
            import GPy  # noqa: F401

            out.append(("GPy BayesianGPLVMMiniBatch(missing_data)", lambda: GPyMissing(quick)))
        except ImportError:
            print("  (GPy not installed: pip install GPy to include BayesianGPLVMMiniBatch)")
    return out


class GPyMissing:
    """GPy's Bayesian GPLVM with missing data: fill with the predictive mean at q(x)."""

    def __init__(self, quick):
        self.iters = 100 if quick else 1000

    def fit_transform(self, X):
        import GPy

        m = GPy.models.bayesian_gplvm_minibatch.BayesianGPLVMMiniBatch(
            X, 2, num_inducing=30, missing_data=True)
        m.optimize(messages=False, max_iters=self.iters)
        mean, _ = m.predict(m.X.mean.values)
        return np.where(np.isnan(X), mean, X)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="*", default=["oil", "digits", "synthetic"])
    p.add_argument("--rates", nargs="*", type=float, default=[0.1, 0.3, 0.5])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="small synthetic table, short fits")
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    for name in a.datasets:
        try:
            Y = load(name, a.quick)
        except lvm.datasets.DataFileNotFoundError as exc:
            print(f"{name}: skipped ({exc})")
            continue
        for rate in a.rates:
            Yn, holes = hide(Y, rate)
            print(f"\n{name}: {Y.shape[0]} x {Y.shape[1]}, {rate:.0%} of entries hidden "
                  f"({holes.sum()} entries), standardized units, {a.threads} thread(s)")
            rows = []
            for label, make in methods(name, Y, Yn, a.quick):
                t0 = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        filled = make().fit_transform(Yn)
                except Exception as exc:  # noqa: BLE001 - a reference that cannot run is reported
                    print(f"  {label}: failed ({type(exc).__name__}: {str(exc)[:100]})")
                    continue
                seconds = time.perf_counter() - t0
                rows.append((label, math.sqrt(np.mean((filled - Y)[holes] ** 2)), seconds))
            ref = next(r for r in rows if r[0] == "sklearn IterativeImputer")
            print(f"  {'method':<46} {'RMSE':>8} {'/ Iterative':>12} {'seconds':>9}")
            for label, err, seconds in sorted(rows, key=lambda r: r[1]):
                print(f"  {label:<46} {err:8.4f} {err / ref[1]:11.2f}x {seconds:9.2f}")


if __name__ == "__main__":
    main()
