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

    q(x) starts from PCA (projections scaled to unit variance; the RBF lengthscales start at the
    inverse explained-variance fractions, as in GPy, and the collapsed fit's at a quarter of them,
    which escapes the linear plateau within the default budget:
    :data:`lvm.gplvm._init.LENGTHSCALE_INIT_FACTOR`), Z from a seeded subset of those points.

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
        The default is ``"rbf"``, for its maps (:doc:`/gplvm_defaults`).
    inference : {"collapsed", "svi"}, default="collapsed"
    likelihood : str, default="gaussian"
        Any likelihood of :mod:`lvm.likelihoods` ("gaussian", "bernoulli", "poisson",
        "negative_binomial", "binomial(n=...)") with ``inference="svi"``; the collapsed bound
        needs the Gaussian.
    noise : {"shared", "per_feature"}, default="per_feature"
        Gaussian likelihood: one noise variance, or one per feature (as Factor Analysis); in the
        collapsed bound the latter is a sum of D single-output bounds (:mod:`lvm.gplvm.collapsed`),
        fitted in two stages: the shared-noise model first, then one noise per feature from its
        optimum (see ``max_iter``), so per-feature noise starts where shared noise ends.
        Likelihoods without a noise variance ignore it. Chosen by held-out evidence
        (:doc:`/gplvm_defaults`). A feature constant in the training rows gets a tiny noise
        variance (fit warns; dequantize integer data or pass ``"shared"``).
    encoder : bool, default=False
        Back-constrained (amortized) q(x | y): an MLP residual on the PCA projection gives mu and s,
        so :meth:`transform` is one forward pass. Otherwise q(x*) of new rows is fitted.
    neighbor_weight : float or "auto", default="auto"
        ``"auto"``: 3.0 for a map (``n_components <= 2``), 0 otherwise (a larger Q is fitted for
        its evidence and ARD relevances, which the term would spread over every dim). The weight
        of a neighbour-preservation term on the means of q(x) (t-SNE's contrastive loss on a kNN
        graph of the training rows, :meth:`lvm.latents.neighbors.NeighborGraph.loss`): the
        optimizer maximizes the bound minus ``neighbor_weight`` times the rows' terms, and q(x*)
        of a new row is fitted the same way against the training map. The bound holds for any
        q(x), so every number reported stays the GP model's bound or estimate; the term only
        picks the q, and through it the decoder, the fit ends at. 0: the bound alone (the
        evidence-first setting). Ignored with ``encoder=True``. It keeps the clusters that the
        per-feature noise stage would otherwise lose to near-constant features (digits' 1-NN
        0.886 at 3, 0.751 at 0; :doc:`/gplvm_defaults`).
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
        Adam iterations, five epochs for SVI). ``"auto"``: 1e-3 for L-BFGS, with a floor of 30
        nats of the whole bound (:doc:`/gplvm_defaults`; chosen on small tables against ten
        times the budget), 1e-6 for Adam. None: run all of ``max_iter``.
    batch_size : int, default=256
        Minibatch size for SVI.
    transform_max_iter : int, default=100
        Adam steps (learning rate 0.05) fitting q(x*) of new points in :meth:`transform` and
        :meth:`score_samples`, each started at its nearest training row's q(x) (variance 0.1); a
        fixed count, so a point's result does not depend on the others. On USPS, 100 steps
        gave the held-out evidence of 300 in a quarter of the time (:doc:`/gplvm_defaults`).
    n_importance_samples : int, default=100
        Draws from q(x*) per point in :meth:`score_samples`.
    relevance_threshold : float, default=0.01
        A latent dim counts in ``effective_dims_`` when its relevance is at least this fraction.
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
        1 / lengthscale^2 over its largest value. For ``"linear+rbf"``, v_q + sigma^2 / l_q^2:
        the variance of the GP's slope along dim q, so a dim counts when either part uses it.
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
        The bound per point (``"train"``) after each group of steps, ``"n_iter"`` optimizer
        iterations (collapsed) or epochs (SVI): the layout of every lvm estimator.
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
    sums, per output dim, the single-output bound of the rows where it is observed
    (:mod:`lvm.gplvm.collapsed`), the SVI bound masks the likelihood, and an amortized q(x | y)
    sees the zero-filled row and its mask. ``transform`` and ``score_samples`` of a row with NaN
    fit q(x*) to its observed entries and estimate log p(y_o); :class:`lvm.LatentImputer` fills
    the NaN with E[y_m | y_o]. A row needs at least one observed entry.

    **Scaling out** (``inference="svi"``): :meth:`partial_fit` streams chunks of rows. Under
    ``torch.distributed`` (``torchrun``; gloo on CPUs, nccl on GPUs) each rank calls
    ``fit(Y_shard)``: the standardization and the PCA start use all-reduced moments, rank 0's
    global parameters are broadcast and every step sums their gradients over ranks
    (:mod:`lvm._gradient`); q(x_n) stays on the rank that owns row n. Collapsed inference is
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
                             self.tol, self.batch_size, self._two_stages(Z), Z.shape[0])

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
            plan, floor = self._fit_plan, self._fit_plan.tol_floor * (int(self.n_components) <= 2)
            self._fit_plan = dataclasses.replace(plan, tol_floor=floor, max_epochs=max(
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
