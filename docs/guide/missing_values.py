r"""
.. _guide-missing:

Missing values
==============

**Evidence: of the observed entries,** :math:`\log p(y_o)`, exact for the linear family, an
importance-weighted estimate for the VAE.

The latent-variable view makes missing entries natural. A row :math:`y` with observed entries
:math:`o` and missing entries :math:`m` has the evidence of what was observed, the missing entries
integrated out:

.. math::
    p(y_o) = \int p(y_o \mid x)\, p(x)\, dx, \qquad
    p(y_o \mid x) = \int p(y \mid x)\, dy_m .

With a likelihood that factorizes over features given :math:`x` (every family here), the inner
integral just drops the missing factors: the model is unchanged, and each row counts the entries
it has. Maximizing :math:`\sum_n \log p(y_{n,o})` is maximum likelihood under the assumption that
the entries are missing at random (whether an entry is missing may depend on what was observed,
not on the missing value itself). Imputation then asks the fitted model for
:math:`p(y_m \mid y_o) = \int p(y_m \mid x)\, p(x \mid y_o)\, dx`.

In lvm, **NaN means missing** for the families whose ``allow_nan`` tag is True: :class:`lvm.PPCA`,
:class:`lvm.FactorAnalysis` and :class:`lvm.VAE` (the Bayesian GPLVM, whose collapsed bound lets
each output dimension use the rows where it is observed, is getting it too). Infinity stays an
error, and so does a row or a feature with nothing observed; :class:`lvm.DiffusionModel` says in
one error that it does not model missing values. Every number a model reports on data with holes
is then :math:`\log p(y_o)` per row, in nats, of the data as passed.

**Linear family: exact.** For :math:`y = W x + \mu + e`, :math:`e \sim \mathcal N(0, \Psi)`, the
observed entries of a row are Gaussian,

.. math::
    p(y_o) = \mathcal N(y_o;\ \mu_o,\ W_o W_o^\top + \Psi_o),

with :math:`W_o` the rows of :math:`W` that are observed, and the posterior of :math:`x` given
them is Gaussian too, with :math:`M = I + W_o^\top \Psi_o^{-1} W_o`:

.. math::
    p(x \mid y_o) = \mathcal N\big(M^{-1} W_o^\top \Psi_o^{-1} (y_o - \mu_o),\ M^{-1}\big).

``fit`` maximizes the exact observed-entry likelihood by EM (Tipping & Bishop, 1999; Ilin & Raiko,
2010): the E-step is this posterior for every row (one :math:`K \times K` factorization per row,
batched, whatever its pattern of holes), the M-step solves, for each feature, the normal equations
over the rows that observe it, with the posterior covariance in the expected residual. The
missing entries are integrated out, never filled in, and EM never decreases the likelihood.
``score_samples`` is :math:`\log p(y_o)` exactly and ``transform`` is :math:`\mathbb E[x \mid
y_o]`.

**VAE: the MIWAE bound** (Mattei & Frellsen, 2019). The encoder sees the zero-filled row (zero is
the feature's mean in the model's standardized units) beside its mask, :math:`q(x \mid y_o) =
q_\phi(x \mid [y_0, m])`; the likelihood counts the observed entries only; and training maximizes
the importance-weighted bound with S draws per row,

.. math::
    \log p(y_o) \ge \mathbb E\Big[\log \frac1S \sum_{s=1}^S
    \frac{p(y_o \mid x_s)\, p(x_s)}{q(x_s \mid y_o)}\Big], \qquad x_s \sim q(x \mid y_o),

with S = 20 when the training data have holes (``train_samples``; 1, the ELBO, for complete data):
a Gaussian :math:`q` fits the posterior of a row with many holes less well, and the tighter bound
keeps the decoder from being pulled toward what :math:`q` can fit. ``score_samples`` is the
importance-weighted estimate of :math:`\log p(y_o)` (:ref:`guide-iwae`).

**Imputation.** :class:`lvm.LatentImputer` wraps any model with the ``allow_nan`` tag as a
scikit-learn transformer: ``fit`` fits the model to the data with their holes, ``transform``
fills each missing entry with :math:`\mathbb E[y_m \mid y_o]` (for the linear family the exact
Gaussian conditional :math:`\mu_m + W_m \mathbb E[x \mid y_o]`) and keeps the observed entries as
given; ``sample_posterior=True`` fills with a draw from :math:`p(y_m \mid y_o)` instead, for
multiple imputation. It goes in a :class:`~sklearn.pipeline.Pipeline` wherever
:class:`~sklearn.impute.SimpleImputer` would.
"""

# %%
# Data with holes
# ---------------
# 2000 rows from PPCA (D = 10, K = 3, noise variance 0.25); in the first 1500, each entry is
# hidden with probability 0.3, at random. The last 500 rows are kept complete, to judge the models
# on. Almost no row is complete: dropping incomplete rows would leave a few dozen.
import warnings

import numpy as np
from matplotlib.figure import Figure

import lvm

data = lvm.datasets.make_ppca(2000, 10, 3, noise=0.25, random_state=0)
Y_full, Y_new = data.Y[:1500], data.Y[1500:]
hidden = np.random.default_rng(0).random(Y_full.shape) < 0.3
Y = np.where(hidden, np.nan, Y_full)
print(f"{hidden.mean():.1%} of the entries missing; "
      f"{(~hidden).all(1).sum()} of {len(Y)} rows complete")

# %%
# EM on the observed entries, or fill the holes first?
# ----------------------------------------------------
# PPCA fitted by EM to the data with holes, against the common shortcut: fill each hole with its
# feature's mean (scikit-learn's ``SimpleImputer``) and fit PPCA to the filled data. Both are
# judged by the exact log p(y) of the 500 complete held-out rows; PPCA fitted to the complete
# data, which in practice one does not have, is the reference. Mean filling shrinks every
# covariance toward zero, and the noise variance (true value 0.25) absorbs what is lost.
from sklearn.impute import KNNImputer, SimpleImputer  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

fits = {
    "PPCA, EM on the observed entries": lvm.PPCA(3).fit(Y),
    "PPCA on mean-imputed data": make_pipeline(SimpleImputer(), lvm.PPCA(3)).fit(Y),
    "PPCA on the complete data": lvm.PPCA(3).fit(Y_full),
}
for name, model in fits.items():
    s = model.score_samples(Y_new)
    sigma2 = model[-1].noise_variance_ if hasattr(model, "steps") else model.noise_variance_
    print(f"{name:34s} held-out log p(y) {s.mean():8.3f} ± {s.std() / np.sqrt(len(s)):.3f}, "
          f"noise variance {sigma2:.3f}")

# %%
# The families on the same data with holes
# ----------------------------------------
# :func:`lvm.compare` accepts data with NaN when every model models missing values, and its
# footer says what the numbers are: the evidence of each row's observed entries. Beside PPCA and
# factor analysis, a linear VAE (``hidden_sizes=()``, ``noise="shared"``): its model family is
# PPCA's, so its MIWAE estimate should come close to PPCA's exact observed-entry evidence, from
# below. It starts at the linear model's maximum likelihood (``init="linear"``) and trains for
# 100 epochs here, so that this page builds in seconds (``conv`` says no: the budget ends before
# early stopping would; the default budget brings it closer still).
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # ConvergenceWarning: the short budget is on purpose
    table = lvm.compare({"PPCA-3": lvm.PPCA(3), "FA-3": lvm.FactorAnalysis(3),
                         "linear VAE-3": lvm.VAE(3, hidden_sizes=(), noise="shared",
                                                 max_epochs=100, random_state=0)},
                        Y, test_size=0.2, random_state=0)
print(table)
fig = lvm.plot.evidence_comparison(table)
Y_test = Y[table.test_index]
exact = table[0]["estimator"].score_samples(Y_test)
miwae = table[2]["estimator"].score_samples(Y_test)
diff = miwae - exact
print(f"held-out log p(y_o): PPCA exact {exact.mean():.3f}, linear VAE (importance-weighted, "
      f"S = 256) {miwae.mean():.3f}; paired difference {diff.mean():+.3f} ± "
      f"{diff.std(ddof=1) / np.sqrt(len(diff)):.3f}")

# %%
# Filling the holes
# -----------------
# The hidden entries are known here, so imputations can be scored: the root mean squared error
# over the hidden entries of :class:`lvm.LatentImputer` with PPCA (the conditional mean
# :math:`\mathbb E[y_m \mid y_o]`), of scikit-learn's ``SimpleImputer`` (the feature's mean) and
# ``KNNImputer`` (the mean of the 5 nearest rows on the observed entries), and of draws from
# :math:`p(y_m \mid y_o)` (``LatentImputer(..., sample_posterior=True)``). A draw is further
# from the truth than the mean, by design: it carries the conditional spread, which is what
# multiple imputation needs; the mean of several draws comes back toward the conditional mean.
imputers = {
    "LatentImputer(PPCA(3)), mean": lvm.LatentImputer(lvm.PPCA(3)),
    "SimpleImputer (mean)": SimpleImputer(),
    "KNNImputer (k = 5)": KNNImputer(),
}


def hidden_rmse(filled):
    return np.sqrt(np.mean((filled[hidden] - Y_full[hidden]) ** 2))


rmse = {name: hidden_rmse(imputer.fit_transform(Y)) for name, imputer in imputers.items()}
draws = [lvm.LatentImputer(lvm.PPCA(3), sample_posterior=True, random_state=seed).fit_transform(Y)
         for seed in range(5)]
rmse["LatentImputer, one draw"] = hidden_rmse(draws[0])
rmse["LatentImputer, mean of 5 draws"] = hidden_rmse(np.mean(draws, 0))
for name, value in rmse.items():
    print(f"{name:32s} RMSE {value:.3f}")

fig = Figure(figsize=(6.4, 2.8), layout="constrained")
ax = fig.add_subplot()
names = list(rmse)[::-1]
colors = ["C0" if n.startswith("Latent") else "0.6" for n in names]
ax.barh(names, [rmse[n] for n in names], color=colors)
ax.set_xlabel("RMSE on the hidden entries (data units)")
ax.bar_label(ax.containers[0], fmt="%.2f", padding=2)
ax.set_xlim(0, 1.15 * max(rmse.values()))
ax.set_title("Imputing 30% missing entries")

# %%
# In a pipeline
# -------------
# ``LatentImputer`` is a scikit-learn transformer, so it drops into a
# :class:`~sklearn.pipeline.Pipeline` in place of ``SimpleImputer``. Here a ridge regression
# predicts the first true latent coordinate from rows with holes (new rows with their own 30%
# hidden, scored by R²).
from sklearn.linear_model import RidgeCV  # noqa: E402

Y_new_holes = np.where(np.random.default_rng(1).random(Y_new.shape) < 0.3, np.nan, Y_new)
target, target_new = data.X[:1500, 0], data.X[1500:, 0]
for name, imputer in (("LatentImputer(PPCA(3))", lvm.LatentImputer(lvm.PPCA(3))),
                      ("SimpleImputer", SimpleImputer())):
    pipe = make_pipeline(imputer, RidgeCV()).fit(Y, target)
    print(f"{name:24s} + RidgeCV: held-out R² {pipe.score(Y_new_holes, target_new):.3f}")
