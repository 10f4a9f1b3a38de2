r"""
.. _guide-linear:

Linear decoders: PPCA and factor analysis
=========================================

**Evidence: exact.** With :math:`f(x) = W x + \mu`,

.. math::
    x \sim \mathcal N(0, I_K), \qquad y \mid x \sim \mathcal N(W x + \mu, \Psi), \qquad
    p(y) = \mathcal N(y;\ \mu,\ W W^\top + \Psi),

and ``score_samples`` is this log-density, exactly (:ref:`guide-evidence`).

:class:`lvm.PPCA` has isotropic noise, :math:`\Psi = \sigma^2 I`. Its maximum-likelihood solution
is closed form (Tipping & Bishop, 1999): with :math:`\lambda_1 \ge \dots \ge \lambda_D` and
:math:`U` the eigenvalues and eigenvectors of the sample covariance :math:`S`,

.. math::
    \mu = \bar y, \qquad \sigma^2 = \frac{1}{D-K} \sum_{j>K} \lambda_j, \qquad
    W = U_K (\Lambda_K - \sigma^2 I)^{1/2},

one pass over the data for :math:`S` and one eigendecomposition. :math:`S` is the
maximum-likelihood covariance (divided by N; scikit-learn's ``PCA`` divides by N - 1).
``n_components="auto"`` picks K by Minka's (2000) Laplace approximation of the evidence.

:class:`lvm.FactorAnalysis` has one noise variance per feature, :math:`\Psi =
\operatorname{diag}(\psi_1, \dots, \psi_D)`, and no closed form; EM (Rubin & Thayer, 1982) needs
only :math:`S`:

.. math::
    M = I + W^\top \Psi^{-1} W,\quad \beta = M^{-1} W^\top \Psi^{-1},\quad
    W \leftarrow S \beta^\top (M^{-1} + \beta S \beta^\top)^{-1},\quad
    \Psi \leftarrow \operatorname{diag}(S - W \beta S),

:math:`O(D^2 K)` per iteration whatever N, started from the PPCA solution.

Per-feature noise lets factor analysis explain a feature that barely varies with a tiny
:math:`\psi_d` and put very high density on it; on images, drop the pixels that are constant
before comparing it with other models.
"""

# %%
# On the digits
# -------------
# The 1797 digits (8 x 8 pixels, intensities 0 to 16; the three pixels blank in every image
# dropped), 80% to fit and 20% held out, K = 2 and 10. The evidence of both is exact, so the
# differences are the models', not the estimators'.
import lvm

digits = lvm.datasets.load_digits()
Y = digits.Y[:, digits.Y.var(0) > 0]
table = lvm.compare({f"{name}-{k}": cls(k) for k in (2, 10)
                     for name, cls in (("PPCA", lvm.PPCA), ("FA", lvm.FactorAnalysis))},
                    Y, test_size=0.2, random_state=0)
print(table)
fig = lvm.plot.evidence_comparison(table)

# %%
# What the 2-D PPCA sees: the posterior means of 500 digits with ±1 sd ellipses. The
# posterior covariance :math:`\sigma^2 (W^\top W + \sigma^2 I)^{-1}` is the same for every point.
ppca = table[0]["estimator"]
fig = lvm.plot.latent_scatter(ppca, table.preprocess(Y[:500]), digits.labels[:500],
                              title="PPCA, K = 2: E[x | y] of 500 digits")
