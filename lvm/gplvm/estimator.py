"""The Bayesian GPLVM estimator: the GP decoder family (:mod:`lvm.gplvm.model`) on the family base
(:mod:`lvm._family`)."""

from __future__ import annotations

import dataclasses
import math
import numbers

import gpytorch
import numpy as np
import torch
from sklearn.utils.metaestimators import available_if

from .. import _distributed as dist
from .._family import FamilyEstimator, TrainingPlan
from .._validation import Interval, StrOptions, nonnegative_int, positive_int, positive_real
from ..likelihoods import LIKELIHOODS, GaussianLikelihood
from .kernels import KERNELS, make_kernel, relevant_columns
from .model import GPLVMFamily, training_plan
from .psi import has_psi_statistics

__all__ = ["BayesianGPLVM"]


def _svi_only(est) -> bool:
    """``partial_fit`` exists only with ``inference="svi"`` (scikit-learn's ``available_if``)."""
    if est.inference != "svi":
        raise AttributeError(
            "partial_fit needs inference='svi': the collapsed bound couples all rows through "
            "Psi_2 and has no minibatch form. Use BayesianGPLVM(inference='svi') or fit()."
        )
    return True


class BayesianGPLVM(FamilyEstimator):
    r"""Bayesian Gaussian-process latent variable model with variational inducing points.

    The model is :math:`x_n \sim \mathcal N(0, I_Q)`, :math:`g_d \sim \mathcal{GP}(0, k)` for each of
    the D output dims (one kernel shared by all), :math:`y_{nd} \sim p(y \mid f = g_d(x_n) + c_d)`,
    Gaussian :math:`\mathcal N(f, \sigma^2)` by default, with :math:`c` the empirical mean (in the
    likelihood's link: logits for ``likelihood="bernoulli"``). Inference is
    variational: q(x_n) = N(mu_n, diag s_n) per point, M inducing inputs Z and either

    * ``inference="collapsed"``: the Titsias & Lawrence (2010) bound with q(u) integrated out and the
      kernel expectations (psi-statistics) in closed form, a deterministic bound optimized full-batch
      with L-BFGS (strong Wolfe line search) or Adam, in float64 unless ``dtype`` says otherwise; the
      right choice up to N ~ 10^4 (memory O(N M^2) per chunk of rows, time O(N M^2 Q) per step);
    * ``inference="svi"``: the uncollapsed bound with an explicit q(u) (GPyTorch's
      ``VariationalStrategy``), minibatches of points and reparameterized draws of x, Adam; for large
      N (memory independent of N apart from q(x)), and for kernels without psi-statistics.

    q(x) starts from PCA (projections scaled to unit variance; the lengthscales start at the inverse
    explained-variance fractions, as in GPy), Z from a seeded subset of those points.

    Parameters
    ----------
    n_components : int, default=2
        Latent dimension Q. With an ARD kernel, fit a generous Q and read ``effective_dims_``.
    n_inducing : int, default=50
        Number of inducing inputs M (at most n_samples are used).
    kernel : {"rbf", "linear", "linear+rbf", "matern"} or gpytorch.kernels.Kernel, default="rbf"
        ``"rbf"``: ScaleKernel(RBFKernel(ard_num_dims=Q)); ``"linear"``: LinearKernel(ard_num_dims=Q)
        (the GP is then Bayesian PCA); ``"linear+rbf"``: their sum (AdditiveKernel), which contains
        the linear model and starts at it (the linear part at the PCA solution, the RBF outputscale at
        a tenth of the linear variances' sum); ``"matern"``: ScaleKernel(MaternKernel(nu=2.5, ard)),
        SVI only. A kernel instance is copied; collapsed inference needs one of the first three forms.
        Held-out log p(y) per point of ``"linear+rbf"`` minus ``"rbf"`` (paired over the points of
        an 80/20 split, Q = 2, collapsed defaults, random_state=0): +0.004 +- 0.010 on
        ``make_ppca(600, 10, 2)`` (where it switches its RBF part off and matches PPCA), +0.57 +- 0.41
        on oil flow (+1.47 +- 0.22 at Q = 10), +0.36 +- 0.41 on the dequantized digits. The default
        stays ``"rbf"``: on oil flow at Q = 10 (random_state=0) the sum's 3 effective dims give
        98.0 % 10-fold 1-NN accuracy against the 99 % that ``"rbf"`` reaches (99.8 % with seeds 1, 2).
    inference : {"collapsed", "svi"}, default="collapsed"
    likelihood : str, default="gaussian"
        One of "gaussian", "bernoulli", "poisson", "negative_binomial", "binomial(n=...)".
        Any likelihood of :mod:`lvm.likelihoods` with ``inference="svi"`` (the count
        likelihoods need non-negative integer data; see :class:`lvm.VAE`); the collapsed bound
        needs the Gaussian.
    noise : {"shared", "per_feature"}, default="per_feature"
        Gaussian likelihood: one noise variance, or one per feature (as Factor Analysis); in the
        collapsed bound the latter is a sum of D single-output bounds (:mod:`lvm.gplvm.collapsed`),
        fitted in two stages: the shared-noise model first, then one noise per feature from its
        optimum (see ``max_iter``), so per-feature noise starts where shared noise ends
        (on standardized oil flow, Q=10: bound -1.152 vs -1.235 shared; fitted in one stage it
        ended at -2.512). Likelihoods without a noise variance ignore it. The default
        was chosen by held-out evidence (``score``, nats per point, ``shared`` vs
        ``per_feature``, default settings otherwise): -6.835 vs -6.840 on
        ``make_ppca(900, 10, 2, noise=0.1)`` (isotropic noise; 600 rows train, 300 test, Q=2),
        -11.825 vs -9.958 on the same with per-feature noise variances geomspace(0.02, 1),
        8.892 vs 8.423 on oil flow as stored (train / test, Q=2), -3.470 vs -1.424 on oil flow
        standardized per feature, and -147.2 vs -123.6 on the digits (0..16 + U[0, 1), 80/20,
        Q=5), measured with one-stage fits: per-feature noise costs 0.005 nats on isotropic data
        and gains 1.9 to 23.6 where the features differ; on raw oil flow its one-stage fit ended
        in a worse local optimum (training bound 7.28 vs 7.63), which the two stages remove
        (training bound 7.733, held-out 9.166 vs 8.892 shared). As with Factor Analysis, a feature
        constant in the training rows gets a tiny noise variance (fit warns; dequantize integer
        data or pass ``"shared"``). ARD with ``"per_feature"`` may switch off more latent dims,
        since a feature can be explained as noise.
    encoder : bool, default=False
        Back-constrained (amortized) q(x | y): an MLP residual on the PCA projection gives mu and s,
        so :meth:`transform` is one forward pass. Otherwise q(x*) of new points is fitted with the
        model frozen.
    neighbor_weight : float or "auto", default="auto"
        ``"auto"``: 3.0 for a map (``n_components <= 2``), 0 otherwise (a larger Q is fitted for
        its evidence and its ARD relevances, which the term would spread over every dim). The
        weight of a neighbour-preservation term on the means of q(x) (t-SNE's contrastive loss on
        a kNN graph of the training rows, :mod:`lvm.latents.neighbors`, in its
        deterministic full-batch form :meth:`~lvm.latents.neighbors.NeighborGraph.loss`): the
        optimizer maximizes the bound minus ``neighbor_weight`` times the sum of the rows' terms,
        and q(x*) of a new row is fitted the same way, its term taken against the fitted
        training map. The bound is a bound for any q(x), so every number reported (``elbo_``,
        ``history_``, :meth:`score_samples`) stays the bound or estimate of the GP model; the
        term only picks which q, and through it which decoder, the fit ends at. 0 fits the bound
        alone (the evidence-first setting). Ignored with ``encoder=True``. On scikit-learn's
        digits, standardized (1797 x 64, Q = 2, defaults, random_state=0, one thread): 10-fold
        1-NN accuracy of the training map 0.886 at weight 3, 0.816 at 1, 0.751 at 0, with
        training bounds -19.96, -23.73 and -29.83 nats per point (the term steers the optimizer
        away from the optimum where near-constant pixels hold the latents); on an 80/20 split,
        held-out log p(y) per point -26.9 +- 4.5 (median -13.5), -19.9 +- 4.2 and -56080 +-
        55975 (one test row near -2e7), test 1-NN of the transformed rows 0.814, 0.736 and
        0.669. On linear data (``make_ppca(600, 10, 2)``, 80/20) held-out minus PPCA's, paired:
        -0.052 +- 0.029 at 3, -0.017 +- 0.019 at 1, -0.012 +- 0.017 at 0: the price of the map
        where the data have no clusters. The term's cost per L-BFGS iteration on the digits:
        about +50 % (0.119 against 0.076 s; +15 % with 256 negatives, whose map reached 0.868).
    n_neighbors : int, default=15
        k of the neighbour term's graph (Euclidean, standardized data).
    optimizer : {"auto", "lbfgs", "adam"}, default="auto"
        ``"auto"``: L-BFGS for collapsed, Adam for SVI (SVI supports only Adam).
    learning_rate : float or None, default=None
        None: 1.0 for L-BFGS, 0.01 for Adam.
    max_iter : int, default=1000
        Collapsed: optimizer iterations (both stages of a per-feature fit together: the first
        has at most half, the second what the first left). SVI: passes over the data (epochs).
    tol : float, "auto" or None, default="auto"
        Stop (each stage) on a plateau of the bound: when the bound per point rose by less than
        ``tol * max(1, |bound|)`` over the last five groups of steps (50 L-BFGS iterations, 250
        Adam iterations, five epochs for SVI). ``"auto"``: 1e-3 for L-BFGS (the deterministic
        collapsed bound), 1e-6 for Adam. None: run all of ``max_iter``.
        The L-BFGS rule was chosen on small tables (``benchmarks/small.py``: 75/25 splits, Q = 2,
        one thread on a busy 2-core machine; held-out log p(y) per point, the defaults against
        ``max_iter=10000, tol=None``): diabetes (331 x 10) 210 iterations, 5.0 s, -10.622 against
        -10.620 (tol=1e-6 before: 500 iterations, 9.7 s, -10.620); tanh of a PPCA table
        (450 x 20) 390 iterations, 9.7 s, -17.59 against -19.03 (the longer fit overfits;
        tol=1e-6: 880 iterations, 20.4 s, -18.27); digits' first 300 rows, dequantized
        (225 x 64) 340 iterations, 5.7 s. tol=1e-4 ran 250, 1000 and 440 iterations for
        held-out -10.621, -18.58 and -68.74 (-68.81 at 1e-3). On USPS (7291 x 256) the first
        stage runs its 500 iterations (the bound still rising 0.36 nats per point per 50) and
        the second stops after 250 at 1e-3 (fit 324 s, held-out 39.14 nats per point with 300
        transform steps) or runs its 500 at 1e-4 (477 s, 39.50).
    batch_size : int, default=256
        Minibatch size for SVI.
    transform_max_iter : int, default=100
        Adam steps (learning rate 0.05) fitting q(x*) of new points in :meth:`transform` and
        :meth:`score_samples`, each started at its nearest training row's q(x) (variance 0.1); a
        fixed count, so a point's result does not depend on the others. On USPS (7291 training
        rows fitted with the defaults, the 2007 test rows transformed; one thread, busy 2-core
        machine), two fits (1000 and 750 L-BFGS iterations): 300 steps took 70.5 s and 19.8 s
        (the second after the packed Psi_2 contraction) with test 1-NN 0.739 and 0.737 and
        held-out 39.50 and 39.14 nats per point; 100 steps 14.3 s and 5.2 s, 1-NN 0.725 and
        0.743, held-out 39.68 and 39.46 (paired, 100 minus 300 steps: +0.18 +- 0.09 and
        +0.32 +- 0.10: the longer fit narrows q(x*), a worse importance proposal).
    n_importance_samples : int, default=100
        Draws from q(x*) per point in :meth:`score_samples`.
    relevance_threshold : float, default=0.01
        A latent dim counts in ``effective_dims_`` when its relevance (1 / lengthscale^2) is at least
        this fraction of the largest.
    device, dtype, random_state, verbose
        As for every lvm estimator; ``dtype=None`` computes in float64.

    Attributes
    ----------
    n_components_ : int
    n_inducing_ : int
    mean_ : ndarray (n_features,)
        The empirical mean of the data (the GP's constant offset, mapped back to the data).
    location_, scale_ : ndarray (n_features,), float
        The standardization (Gaussian likelihood; see :mod:`lvm._base`).
    latent_mean_, latent_var_ : ndarray (n_samples, n_components)
        q(x) of the training points (not set with ``encoder=True``; use :meth:`transform`).
    inducing_points_ : ndarray (n_inducing_, n_components)
    noise_variance_ : float or ndarray (n_features,)
        In the data's units (Gaussian likelihood only): one float for ``noise="shared"``, one per
        feature for ``"per_feature"``.
    lengthscales_ : ndarray (n_components,)
        ARD lengthscales (for the linear kernel, variance^{-1/2}; for ``"linear+rbf"``,
        (v_q + sigma^2 / l_q^2)^{-1/2}).
    relevance_ : ndarray (n_components,)
        1 / lengthscale^2, divided by its largest value: 1 for the most relevant dim. For
        ``"linear+rbf"`` that is v_q + sigma^2 / l_q^2, the variance of the GP's slope along dim q
        (linear variance plus RBF outputscale over squared lengthscale), so a dim counts when either
        part uses it.
    relevant_dims_ : ndarray of int
        Latent dims in decreasing relevance.
    effective_dims_ : int
        How many dims have ``relevance_ >= relevance_threshold``.
    elbo_ : float
        The final training bound, nats per point of the data as passed (for SVI, the estimate of
        the last pass).
    train_evidence_ : float
        The same (every lvm estimator's name for its training objective per point).
    history_ : list of dict
        The bound per point (``"train"``) after each group of steps; ``"n_iter"`` counts optimizer
        iterations (collapsed) or epochs (SVI); ``"epoch"`` numbers the records and
        ``"validation"`` is None (the layout of every lvm estimator).
    n_iter_ : int
        Optimizer iterations (collapsed) or epochs (SVI) run.
    converged_ : bool

    Notes
    -----
    ``score_samples(Y)`` is an importance-weighted estimate of log p(y) per point: for each y, q(x*)
    is fitted with the model frozen and S = ``n_importance_samples`` draws x_s ~ q(x*) give
    log p_hat(y) = logsumexp_s[log p(y | x_s) + log p(x_s) - log q(x_s)] - log S, with
    p(y | x) = prod_d int p(y_d | f) N(f; E f_d(x), V f_d(x)) df under q(u) (for the Gaussian,
    N(y_d; E f_d(x), V f_d(x) + sigma^2)). It is a stochastic lower bound in expectation on the
    evidence of the sparse model (which sees the training data only through q(u)). The draws are
    keyed by each row's content and a seed fixed at fit (:mod:`lvm.evidence.estimators`), so each
    point's estimate is deterministic, independent of the other rows, and independent across rows.

    **Missing values** (NaN in ``Y``) are missing at random, entry by entry: the collapsed bound
    sums, for each output dim, the single-output bound of the rows where it is observed (one
    batched Cholesky over the D dims, :mod:`lvm.gplvm.collapsed`), the SVI bound masks the
    likelihood, and an amortized q(x | y) sees the zero-filled row and its mask. ``transform`` and
    ``score_samples`` of a row with NaN fit q(x*) to its observed entries (the model frozen) and
    estimate log p(y_o); :class:`lvm.LatentImputer` fills the NaN with E[y_m | y_o] by importance
    sampling from q(x*). A row needs at least one observed entry.

    **2-D maps and per-feature noise.** Without the neighbour term (``neighbor_weight=0``), on
    scikit-learn's digits, standardized (1797 x 64, Q = 2, random_state=0), the 10-fold 1-NN
    accuracy of ``transform(Y)`` is 0.764; it peaks at
    the end of the shared-noise stage (0.82 to 0.84 from the PCA start) and falls in the
    per-feature stage, where the features that are nearly constant (border pixels, nonzero in a
    few rows) get a noise variance near the floor and the latents move to fit their rare values
    (bound -62.0 to -30.2 nats per point). A spectral start (Laplacian eigenmaps of a 15-NN
    graph) reaches 0.879 after the shared stage and a better bound after both (-20.4), but
    0.756; keeping q(x) fixed in the per-feature stage keeps 0.878 and costs held-out evidence
    (80/20 split: -229.9 +- 191.7 against -36.0 +- 19.5 nats per point for the defaults). So
    the evidence was kept, and the neighbour term (on by default for Q <= 2) is what keeps the
    map: 0.886, with a better bound than either. ``noise="shared"`` keeps the shared stage's map
    (about 0.82 here) at the cost of that evidence; dequantizing and dropping the near-constant
    features removes the cause. (Measured on a busy 2-core machine.)

    **Scaling out** (``inference="svi"``): :meth:`partial_fit` streams chunks of rows. Under
    ``torch.distributed`` (e.g. ``torchrun``; gloo on CPUs, nccl on GPUs) each rank calls
    ``fit(Y_shard)`` with its own rows: the standardization and the PCA start use all-reduced
    moments, rank 0's inducing inputs, kernel, q(u) and noise are broadcast, every step sums the
    global parameters' gradients over ranks (see :mod:`lvm._gradient`), and q(x_n) stays on the
    rank that owns row n. All ranks end with the same global parameters. Collapsed inference is
    single-process.

    References
    ----------
    Titsias, M. & Lawrence, N. D. (2010). Bayesian Gaussian process latent variable model. AISTATS.
    Hensman, J., Fusi, N. & Lawrence, N. D. (2013). Gaussian processes for big data. UAI.
    Lawrence, N. D. & Quinonero-Candela, J. (2006). Local distance preservation in the GP-LVM through
    back constraints. ICML.

    Examples
    --------
    >>> import numpy as np, lvm
    >>> Y = lvm.datasets.make_ppca(200, 5, 2, random_state=0).Y
    >>> model = lvm.BayesianGPLVM(2, n_inducing=10, max_iter=50, random_state=0).fit(Y)
    >>> model.transform(Y[:3]).shape
    (3, 2)
    """

    family = "gaussian process"
    _default_dtype = torch.float64
    _likelihoods = "all"
    _allow_nan = True

    _parameter_constraints: dict = {
        **FamilyEstimator._parameter_constraints,
        "n_components": [positive_int()],
        "n_inducing": [positive_int()],
        "kernel": [StrOptions(set(KERNELS)), gpytorch.kernels.Kernel],
        "inference": [StrOptions({"collapsed", "svi"})],
        "likelihood": [StrOptions(LIKELIHOODS.keys())],  # live: a registered likelihood is valid
        "noise": [StrOptions({"shared", "per_feature"})],
        "encoder": ["boolean"],
        "neighbor_weight": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"})],
        "n_neighbors": [positive_int()],
        "optimizer": [StrOptions({"auto", "lbfgs", "adam"})],
        "learning_rate": [positive_real(), None],
        "max_iter": [positive_int()],
        "tol": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"}), None],
        "batch_size": [positive_int()],
        "transform_max_iter": [nonnegative_int()],
        "relevance_threshold": [Interval(numbers.Real, 0, 1, closed="both")],
    }

    def __init__(self, n_components=2, *, n_inducing=50, kernel="rbf", inference="collapsed",
                 likelihood="gaussian", noise="per_feature", encoder=False, neighbor_weight="auto",
                 n_neighbors=15, optimizer="auto",
                 learning_rate=None, max_iter=1000, tol="auto", batch_size=256,
                 transform_max_iter=100, n_importance_samples=100, relevance_threshold=0.01,
                 device="auto", dtype=None, random_state=None, verbose=False):
        self.n_components = n_components
        self.n_inducing = n_inducing
        self.kernel = kernel
        self.inference = inference
        self.likelihood = likelihood
        self.noise = noise
        self.encoder = encoder
        self.neighbor_weight = neighbor_weight
        self.n_neighbors = n_neighbors
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.transform_max_iter = transform_max_iter
        self.n_importance_samples = n_importance_samples
        self.relevance_threshold = relevance_threshold
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _supported_likelihoods(self):
        return {"gaussian"} if self.inference == "collapsed" else super()._supported_likelihoods()

    def _likelihood_hint(self, name) -> str:
        return " Use inference='svi' for other likelihoods." if self.inference == "collapsed" else ""

    def _describe(self) -> str:
        return f"BayesianGPLVM(inference={self.inference!r})"

    def _check_data_hyperparameters(self, Z):
        super()._check_data_hyperparameters(Z)
        probe = make_kernel(self.kernel, self.n_components)
        if self.inference == "collapsed" and not has_psi_statistics(probe):
            raise ValueError(
                f"kernel={self.kernel!r} has no closed-form psi-statistics, which inference='collapsed' "
                "needs (they exist for 'rbf', 'linear' and 'linear+rbf'); use inference='svi' for this kernel."
            )
        self._warn_constant_features(Z)
        if self.inference == "svi" and self.optimizer == "lbfgs":
            raise ValueError("optimizer='lbfgs' needs a deterministic objective; inference='svi' "
                             "uses minibatches, so use optimizer='adam' (or 'auto').")
        if self.inference == "collapsed" and dist.is_distributed():
            raise ValueError("torch.distributed is initialized, but inference='collapsed' fits one "
                             "process's rows; use inference='svi' for a data-parallel fit.")

    # ------------------------------------------------------------------ the model
    def _two_stages(self, Z) -> bool:
        """Whether this fit runs in two stages (per-feature noise; see :meth:`_fit`)."""
        return (self.noise == "per_feature" and self.inference == "collapsed"
                and issubclass(LIKELIHOODS[self.likelihood], GaussianLikelihood)
                and Z.shape[1] > 1 and self.max_iter >= 2)

    def _plan(self, Z) -> TrainingPlan:
        return training_plan(self.inference, self.optimizer, self.learning_rate, self.max_iter,
                             self.tol, self.batch_size, first_stage=self._two_stages(Z))

    def _make_family(self, Z) -> GPLVMFamily:
        """q(x), the kernel, Z, the likelihood (and q(u)) from PCA of the training rows; one
        shared noise in the first stage of a two-stage fit."""
        weight = (float(self.neighbor_weight) if not isinstance(self.neighbor_weight, str)
                  else 3.0 if int(self.n_components) <= 2 else 0.0)  # "auto": see the docstring
        return GPLVMFamily.from_data(
            Z, n_components=self.n_components, n_inducing=self.n_inducing, kernel=self.kernel,
            inference=self.inference, likelihood=LIKELIHOODS[self.likelihood],
            noise="shared" if self._two_stages(Z) else self.noise, encoder=self.encoder,
            masked=self._any_missing(Z), generator=self._generator, device=self._device,
            dtype=self._dtype, neighbor_weight=weight, n_neighbors=self.n_neighbors,
            transform_max_iter=self.transform_max_iter)

    def _start(self, Z) -> None:
        super()._start(Z)
        self._model.eval_seed = self._eval_seed  # new rows' q(x*) draws are keyed by it

    def _fit(self, Z) -> None:
        """A two-stage fit trains the shared-noise model, then per-feature noise from its optimum
        (:meth:`GPLVMFamily.untie_noise`) with what the first stage left of ``max_iter``."""
        super()._fit(Z)
        if self._two_stages(Z):
            plan = self._fit_plan
            self._fit_plan = dataclasses.replace(plan, max_epochs=max(
                1, math.ceil((self.max_iter - self.n_iter_) / plan.steps_per_epoch)))
            self._model.untie_noise(Z.shape[1])
            self._make_optimizers()
            self._run(Z, None, self._fit_plan.max_epochs, self._fit_plan.tol)

    # ------------------------------------------------------------------ fitted state
    def _finalize(self) -> None:
        super()._finalize()
        family = self._model
        self.elbo_ = (family.elbo + self._log_jacobian if family.elbo is not None
                      else self.history_[-1]["train"] if self.history_ else float("nan"))
        self.train_evidence_ = self.elbo_
        with torch.no_grad():
            self.mean_ = self._to_numpy(self._unstandardize(
                family.likelihood.mean(family.offset).unsqueeze(0), torch.float64)[0])
        self.relevant_dims_ = np.argsort(-self.relevance_, kind="stable")
        self.effective_dims_ = int((self.relevance_ >= self.relevance_threshold).sum())

    @property
    def n_parameters_(self) -> int:
        """Global parameters (kernel, noise, inducing inputs, q(u) in SVI, the encoder when
        amortized) and the mean; the per-point q(x_n) are local and not counted."""
        return super().n_parameters_ + self.n_features_in_

    # ------------------------------------------------------------------ streaming
    @available_if(_svi_only)
    def partial_fit(self, Y, y=None):
        """One pass of SVI minibatch steps over the rows ``Y`` (``inference="svi"`` only).

        The first call initializes the model from this chunk (its standardization, mean and PCA,
        as :meth:`fit` does). Each chunk's rows are treated as new points: their q(x) are first
        fitted with the global parameters (kernel, inducing inputs, q(u), noise) frozen, then one
        pass of minibatch steps updates them together with the global parameters, whose Adam state
        is kept between calls. The bound is scaled to the number of rows seen so far (over all
        ranks under torch.distributed), as if the chunk were a minibatch of them; ``elbo_`` is that
        estimate per point. ``latent_mean_`` and ``latent_var_`` grow with the rows seen.

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        self
        """
        return self._partial_fit(Y, self._partial_fit_chunk, min_samples=self._min_samples)

    # ------------------------------------------------------------------ inference
    def _work_elements(self, n_rows: int, n_features: int) -> int:
        rows = n_rows if self.inference == "collapsed" else min(n_rows, int(self.batch_size))
        return rows * max(n_features, int(self.n_inducing))

    def transform(self, Y, return_std: bool = False, dims=None):
        """Mean of q(x* | y) for each row, fitted with the model frozen (or the encoder's output).

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the standard deviations of q(x*).
        dims : None, "relevant" or int, default=None
            None: all latent dims. ``"relevant"``: the two most relevant (largest ``relevance_``),
            most relevant first. An int k: the k most relevant.

        Returns
        -------
        X : ndarray or Tensor of shape (n_samples, n_components) (or fewer columns with ``dims``)
        X_std : same shape, only if ``return_std``
        """
        out = super().transform(Y, return_std=return_std)
        if dims is None:
            return out
        cols = relevant_columns(self.relevant_dims_, dims)
        if return_std:
            return out[0][:, cols], out[1][:, cols]
        return out[:, cols]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
