"""The Bayesian GPLVM estimator: the GP decoder family on the lvm estimator base."""

from __future__ import annotations

import functools
import math
import numbers
import types

import gpytorch
import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .. import _distributed as dist
from .._base import LatentVariableModel
from .._stats import GaussianStats
from .._training import train
from ..evidence import importance_weighted_log_evidence
from .collapsed import CollapsedELBO, SparseGPLVM
from .kernels import KERNELS, lengthscales, make_kernel, relevance
from .latent import EncoderLatent, PointLatent
from .posterior import InducingPosterior
from .psi import has_psi_statistics, psi_statistics
from .svi import SharedKernelGP, SVIELBO, SVIGPLVM

__all__ = ["BayesianGPLVM", "InferenceModeError"]


class InferenceModeError(AttributeError, ValueError):
    """A method is not available for the chosen ``inference`` mode (``partial_fit`` of a
    collapsed-mode model): an AttributeError, so ``hasattr(model, "partial_fit")`` is False there,
    and a ValueError of the hyper-parameter, as scikit-learn's ``NotFittedError`` is both."""


def _needs_svi(est) -> bool:
    if est.inference != "svi":
        raise InferenceModeError(
            "partial_fit needs inference='svi': the collapsed bound couples all rows through "
            "Psi_2 and has no minibatch form. Use BayesianGPLVM(inference='svi') or fit()."
        )
    return True


class _svi_only:  # noqa: N801 - used as a decorator
    """Expose a method only when ``inference="svi"``: otherwise reading it raises
    :class:`InferenceModeError` (so ``hasattr`` is False and a call gets the reason)."""

    def __init__(self, fn):
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __get__(self, obj, owner=None):
        if obj is None:
            return self.fn
        _needs_svi(obj)
        return types.MethodType(self.fn, obj)

#: Initial variance of every q(x_n) coordinate (the PCA init has unit variance per latent dim).
_LATENT_VAR_INIT = 0.1
#: Initial noise variance as a fraction of the data's mean variance per feature.
_NOISE_INIT_FRACTION = 0.1
#: Optimizer steps grouped into one call of the training loop's ``epoch`` (one host read-back each).
_STEPS_PER_EPOCH = {"lbfgs": 20, "adam": 50}
#: L-BFGS memory (pairs of updates kept).
_LBFGS_HISTORY = 100
#: Default step sizes.
_LEARNING_RATE = {"lbfgs": 1.0, "adam": 0.01}
#: Starting jitter on K_uu per dtype; each numerical failure multiplies it by 10.
_JITTER = {torch.float64: 1e-6, torch.float32: 1e-4}
#: Training rows kept (with their q(x) means) to start new points' q(x*) from the nearest one.
_BANK_SIZE = 20000
#: Rows per chunk when fitting q(x*) for new points and estimating their evidence.
_ROW_CHUNK = 1024


class BayesianGPLVM(LatentVariableModel):
    r"""Bayesian Gaussian-process latent variable model with variational inducing points.

    The model is :math:`x_n \sim \mathcal N(0, I_Q)`, :math:`f_d \sim \mathcal{GP}(0, k)` for each of
    the D output dims (one kernel shared by all), :math:`y_{nd} = f_d(x_n) + \mu_d + \epsilon`,
    :math:`\epsilon \sim \mathcal N(0, \sigma^2)`, with :math:`\mu` the empirical mean. Inference is
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
    kernel : {"rbf", "linear", "matern"} or gpytorch.kernels.Kernel, default="rbf"
        ``"rbf"``: ScaleKernel(RBFKernel(ard_num_dims=Q)); ``"linear"``: LinearKernel(ard_num_dims=Q)
        (the GP is then Bayesian PCA); ``"matern"``: ScaleKernel(MaternKernel(nu=2.5, ard)), SVI only.
        A kernel instance is copied; collapsed inference needs one of the first two forms.
    inference : {"collapsed", "svi"}, default="collapsed"
    encoder : bool, default=False
        Back-constrained (amortized) q(x | y): an MLP residual on the PCA projection gives mu and s,
        so :meth:`transform` is one forward pass. Otherwise q(x*) of new points is fitted with the
        model frozen.
    optimizer : {"auto", "lbfgs", "adam"}, default="auto"
        ``"auto"``: L-BFGS for collapsed, Adam for SVI (SVI supports only Adam).
    learning_rate : float or None, default=None
        None: 1.0 for L-BFGS, 0.01 for Adam.
    max_iter : int, default=1000
        Collapsed: optimizer iterations. SVI: passes over the data (epochs).
    tol : float or None, default=1e-6
        Stop when the bound per point rose by less than ``tol * max(1, |bound|)`` over the last five
        groups of steps (100 L-BFGS or 250 Adam iterations; five epochs for SVI). None: run all.
    batch_size : int, default=256
        Minibatch size for SVI.
    transform_max_iter : int, default=300
        Adam steps (learning rate 0.05) fitting q(x*) of new points in :meth:`transform` and
        :meth:`score_samples`; a fixed count, so a point's result does not depend on the others.
    n_importance_samples : int, default=100
        Draws from q(x*) per point in :meth:`score_samples`.
    relevance_threshold : float, default=0.01
        A latent dim counts in ``effective_dims_`` when its relevance (1 / lengthscale^2) is at least
        this fraction of the largest.
    device, dtype, random_state, verbose
        As for every lvm estimator; ``dtype=None`` means float64 for collapsed inference and follows
        the input for SVI.

    Attributes
    ----------
    n_components_ : int
    n_inducing_ : int
    mean_ : ndarray (n_features,)
        The empirical mean, the GP's constant mean.
    latent_mean_, latent_var_ : ndarray (n_samples, n_components)
        q(x) of the training points (not set with ``encoder=True``; use :meth:`transform`).
    inducing_points_ : ndarray (n_inducing_, n_components)
    noise_variance_ : float
    lengthscales_ : ndarray (n_components,)
        ARD lengthscales (for the linear kernel, variance^{-1/2}).
    relevance_ : ndarray (n_components,)
        1 / lengthscale^2, divided by its largest value: 1 for the most relevant dim.
    relevant_dims_ : ndarray of int
        Latent dims in decreasing relevance.
    effective_dims_ : int
        How many dims have ``relevance_ >= relevance_threshold``.
    elbo_ : float
        The final training bound, nats per point (for SVI, a full pass estimate with the final
        parameters).
    history_ : list of dict
        The bound per point after each group of steps (``"train"``).
    n_iter_ : int

    Notes
    -----
    ``score_samples(Y)`` is an importance-weighted estimate of log p(y) per point: for each y, q(x*)
    is fitted with the model frozen and S = ``n_importance_samples`` draws x_s ~ q(x*) give
    log p_hat(y) = logsumexp_s[log p(y | x_s) + log p(x_s) - log q(x_s)] - log S, with
    p(y | x) = prod_d N(y_d; E f_d(x) + mu_d, V f_d(x) + sigma^2) the GP's predictive under q(u). It
    is a stochastic lower bound in expectation on the evidence of the sparse model (which sees the
    training data only through q(u)). The draws eps_s are shared by all points (x = mu + s^{1/2}
    eps_s), so each point's estimate is deterministic given ``random_state`` and independent of the
    other rows.

    **Scaling out** (``inference="svi"``): :meth:`partial_fit` streams chunks of rows. Under
    ``torch.distributed`` (e.g. ``torchrun``; gloo on CPUs, nccl on GPUs) each rank calls
    ``fit(Y_shard)`` with its own rows: the PCA start uses the all-reduced mean and scatter, rank 0's
    inducing inputs, kernel, q(u) and noise are broadcast, every step sums the global parameters'
    gradients over ranks (the data term of each rank is scaled to its own rows and KL(q(u)) is
    shared out, so the sum is the bound of the union), and q(x_n) stays on the rank that owns row n.
    All ranks end with the same global parameters. Collapsed inference is single-process.

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

    evidence_kind = "importance-weighted estimate"
    _default_dtype = torch.float64

    _parameter_constraints: dict = {
        **LatentVariableModel._parameter_constraints,
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_inducing": [Interval(numbers.Integral, 1, None, closed="left")],
        "kernel": [StrOptions(set(KERNELS)), gpytorch.kernels.Kernel],
        "inference": [StrOptions({"collapsed", "svi"})],
        "encoder": ["boolean"],
        "optimizer": [StrOptions({"auto", "lbfgs", "adam"})],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left"), None],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "transform_max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "n_importance_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "relevance_threshold": [Interval(numbers.Real, 0, 1, closed="both")],
    }

    def __init__(self, n_components=2, *, n_inducing=50, kernel="rbf", inference="collapsed",
                 encoder=False, optimizer="auto", learning_rate=None, max_iter=1000, tol=1e-6,
                 batch_size=256, transform_max_iter=300, n_importance_samples=100,
                 relevance_threshold=0.01, device="auto", dtype=None, random_state=None,
                 verbose=False):
        self.n_components = n_components
        self.n_inducing = n_inducing
        self.kernel = kernel
        self.inference = inference
        self.encoder = encoder
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

    # ------------------------------------------------------------------ set-up
    def _setup(self, Y):
        super()._setup(Y)
        if self.dtype is None and self.inference == "collapsed":
            self._dtype = torch.float64

    def _check_data_hyperparameters(self, Y):
        super()._check_data_hyperparameters(Y)
        probe = make_kernel(self.kernel, self.n_components)
        if self.inference == "collapsed" and not has_psi_statistics(probe):
            raise ValueError(
                f"kernel={self.kernel!r} has no closed-form psi-statistics, which inference='collapsed' "
                "needs (they exist for 'rbf' and 'linear'); use inference='svi' for this kernel."
            )
        if self.inference == "svi" and self.optimizer == "lbfgs":
            raise ValueError("optimizer='lbfgs' needs a deterministic objective; inference='svi' "
                             "uses minibatches, so use optimizer='adam' (or 'auto').")

    def _optimizer_name(self) -> str:
        if self.optimizer != "auto":
            return self.optimizer
        return "lbfgs" if self.inference == "collapsed" else "adam"

    # ----------------------------------------------------------------- fitting
    def _initial_state(self, Y):
        """Centred data, PCA projection (unit-variance latents) and initial hyper-parameters."""
        N, D = Y.shape
        Q = self.n_components
        dist.check_same_features(D, Y.device)
        stats = GaussianStats.of(Y)
        stats = stats.all_reduce() if dist.is_distributed() else stats
        n_total = torch.tensor(float(stats.n), dtype=Y.dtype, device=Y.device)
        mean, cov = stats.mean.to(Y.dtype), stats.covariance.to(Y.dtype)
        evals, evecs = torch.linalg.eigh(cov)
        evals, evecs = evals.flip(0).clamp_min(0.0), evecs.flip(1)
        scale = evals[:Q].clamp_min(1e-12 * evals[0].clamp_min(1e-300))
        projection = evecs[:, :Q] / scale.sqrt()
        fracs = (scale / evals.sum().clamp_min(1e-300)).clamp(1e-3, 1.0)
        return n_total, mean, projection, fracs, evals

    def _build(self, Yc, n_total, projection, fracs, evals):
        N, D = Yc.shape
        Q = self.n_components
        dev, dt, gen = self._device, self._dtype, self._generator
        X0 = Yc @ projection
        M = min(self.n_inducing, dist.min_int(N))
        Z0 = dist.broadcast(X0[torch.randperm(N, generator=gen, device=dev)[:M]])
        kernel = make_kernel(self.kernel, Q).to(device=dev, dtype=dt)
        variance = (evals.sum() / D).clamp_min(1e-12)
        if has_psi_statistics(kernel) and isinstance(kernel, gpytorch.kernels.LinearKernel):
            kernel.variance = (evals[:Q] / D).clamp_min(1e-6 * variance).reshape(kernel.raw_variance.shape)
        elif isinstance(self.kernel, str):
            kernel.outputscale = variance
            kernel.base_kernel.lengthscale = (1.0 / fracs).reshape(kernel.base_kernel.raw_lengthscale.shape)
        likelihood = gpytorch.likelihoods.GaussianLikelihood(
            noise_constraint=gpytorch.constraints.GreaterThan(1e-6 * float(variance))
        ).to(device=dev, dtype=dt)
        likelihood.noise = _NOISE_INIT_FRACTION * variance
        var0 = torch.full((N, Q), _LATENT_VAR_INIT, device=dev, dtype=dt)
        if self.encoder:
            latent = EncoderLatent(torch.zeros(D, device=dev, dtype=dt), projection, _LATENT_VAR_INIT,
                                   generator=gen)
        else:
            latent = PointLatent(X0, var0)
        self._jitter = _JITTER[dt]
        if self.inference == "collapsed":
            return SparseGPLVM(latent, kernel, likelihood, Z0).to(device=dev, dtype=dt)
        gp = SharedKernelGP(kernel, Z0, D, jitter=self._jitter).to(device=dev, dtype=dt)
        model = SVIGPLVM(latent, gp, likelihood)
        if has_psi_statistics(kernel):
            self._init_q_u(model, Yc)
        dist.broadcast_module(model.gp)
        dist.broadcast_module(model.likelihood)
        if self.encoder:
            dist.broadcast_module(model.latent)
        return model

    def _init_q_u(self, model, Yc):
        """Start q(u) at the collapsed optimum for the initial q(x) of (up to) 2000 rows, computed in
        float64; keep GPyTorch's prior initialization if even that is numerically singular."""
        import copy

        from linear_operator.utils.errors import NotPSDError

        from .collapsed import collapsed_terms

        with torch.no_grad():
            n = min(Yc.shape[0], 2000)
            mu, var = model.latent(Yc, torch.arange(n, device=Yc.device))
            kernel = copy.deepcopy(model.kernel).double()
            Z = model.inducing_points.double()
            try:
                psi = psi_statistics(kernel, mu.double(), var.double(), Z)
                L = _kuu_cholesky(kernel, Z, _JITTER[torch.float64])
                _, mean, root = collapsed_terms(Yc[:n].double(), psi, L, model.noise.double())
            except (NotPSDError, torch.linalg.LinAlgError):
                return
            model.gp.set_whitened(mean, root)

    def _fit(self, Y):
        if dist.is_distributed() and self.inference == "collapsed":
            raise ValueError("torch.distributed is initialized, but inference='collapsed' fits one "
                             "process's rows; use inference='svi' for a data-parallel fit.")
        self.n_iter_ = 0
        for stale in ("_bank_Y", "_bank_mu"):
            self.__dict__.pop(stale, None)
        Y_mean, Yc, n_total = self._prepare(Y)
        self._model = model = self._build(Yc, n_total, self._projection, self._fracs, self._evals)
        if self.inference == "collapsed":
            result = self._fit_collapsed(model, Yc)
        else:
            self._make_svi_optimizer(model)
            result = self._fit_svi(model, Yc, self.max_iter, tol=self.tol)
        self._bank(Yc)
        self._record(result)

    def _prepare(self, Y):
        n_total, mean, projection, fracs, evals = self._initial_state(Y)
        self._mean = mean
        self._projection, self._fracs, self._evals = projection, fracs, evals
        self._n_total = int(n_total)
        self.n_components_ = self.n_components
        self.mean_ = mean.cpu().numpy()
        return mean, Y - mean, n_total

    def _fit_collapsed(self, model, Yc):
        N = Yc.shape[0]
        name = self._optimizer_name()
        lr = self.learning_rate or _LEARNING_RATE[name]
        steps = _STEPS_PER_EPOCH[name]
        bound = CollapsedELBO(model, jitter=self._jitter)
        params = list(model.parameters())
        if name == "lbfgs":
            opt = torch.optim.LBFGS(params, lr=lr, max_iter=steps, history_size=_LBFGS_HISTORY,
                                    line_search_fn="strong_wolfe", tolerance_grad=1e-9,
                                    tolerance_change=1e-12)

            def closure():
                opt.zero_grad()
                loss = -bound(Yc) / N
                loss.backward()
                return loss

            def epoch():
                opt.step(closure)
                with torch.no_grad():
                    return bound(Yc) / N
        else:
            opt = torch.optim.Adam(params, lr=lr)

            def epoch():
                for _ in range(steps):
                    opt.zero_grad()
                    value = bound(Yc) / N
                    (-value).backward()
                    opt.step()
                return value.detach()

        def on_failure(retry):
            self._jitter *= 10.0
            bound.jitter = self._jitter

        n_epochs = math.ceil(self.max_iter / steps)
        result = train(epoch, [model], opt, max_epochs=n_epochs, tol=self.tol, verbose=self.verbose,
                       desc="BayesianGPLVM", objective_name="elbo/point", on_failure=on_failure,
                       estimator_name="BayesianGPLVM",
                       limit_message=f"in max_iter={self.max_iter} iterations")
        self._steps_per_epoch = steps
        with torch.no_grad():
            value, L, mean, root = bound.terms(Yc)
        self._posterior_model = InducingPosterior(model.kernel, model.inducing_points, L, mean, root,
                                                  model.noise)
        self.elbo_ = float(value) / N
        return result

    def _global_parameters(self, model):
        """Parameters shared by all rows (synchronized across ranks): everything but per-point q(x)."""
        params = list(model.gp.parameters()) + list(model.likelihood.parameters())
        if self.encoder:
            params += list(model.latent.parameters())
        return params

    def _make_svi_optimizer(self, model):
        lr = self.learning_rate or _LEARNING_RATE["adam"]
        self._optimizer = torch.optim.Adam(self._global_parameters(model), lr=lr)
        self._steps_per_epoch = None

    def _local_optimizer(self, model):
        """Adam over the per-point q(x) in ``model.latent`` (None with an encoder)."""
        if self.encoder:
            return None
        return torch.optim.Adam(model.latent.parameters(), lr=self.learning_rate or _LEARNING_RATE["adam"])

    def _svi_epoch_fn(self, model, Yc, local_opt, rows_total=None):
        """One pass of minibatch steps over ``Yc``; returns the bound per point (a 0-d tensor).

        The data term of each minibatch is scaled to ``rows_total`` rows (this rank's rows; for
        ``partial_fit``, its share of all rows seen so far).
        """
        opts = [self._optimizer] + ([local_opt] if local_opt is not None else [])
        elbo = SVIELBO(model, num_data=self._n_total, kl_u_weight=1.0 / dist.world_size())
        N = Yc.shape[0]
        B = min(self.batch_size, N)
        n_batches = dist.max_int(math.ceil(N / B))  # equal step counts on every rank
        gen = self._generator
        globals_ = self._global_parameters(model)
        rows = N if rows_total is None else rows_total
        n_global = dist.all_reduce_sum(torch.tensor(float(rows), dtype=Yc.dtype, device=Yc.device))

        def epoch():
            model.train()
            perm = torch.randperm(N, generator=gen, device=Yc.device)
            total = torch.zeros((), dtype=Yc.dtype, device=Yc.device)
            for i in range(n_batches):
                start = (i * B) % N  # ranks with fewer rows wrap around
                idx = perm[start:start + B]
                for opt in opts:
                    opt.zero_grad()
                value = elbo(Yc[idx], idx, gen, rows_total=rows)
                (-value / self._n_total).backward()
                dist.all_reduce_grads(globals_)
                for opt in opts:
                    opt.step()
                total = total + value.detach()
            return dist.all_reduce_sum(total / n_batches) / n_global

        return epoch

    def _fit_svi(self, model, Yc, n_epochs, tol, rows_total=None):
        local_opt = self._local_optimizer(model)
        epoch = self._svi_epoch_fn(model, Yc, local_opt, rows_total)

        def on_failure(retry):
            self._jitter *= 10.0
            model.strategy.jitter_val = self._jitter

        result = train(epoch, [model], self._optimizer, max_epochs=n_epochs, tol=tol,
                       verbose=self.verbose, desc="BayesianGPLVM (svi)", objective_name="elbo/point",
                       on_failure=on_failure, estimator_name="BayesianGPLVM",
                       limit_message=f"in max_iter={n_epochs} epochs")
        self._freeze_svi(model)
        self.elbo_ = result.history[-1]["train"] if result.history else float("nan")
        return result

    @_svi_only
    def partial_fit(self, Y, y=None):
        """One pass of SVI minibatch steps over the rows ``Y`` (``inference="svi"`` only).

        The first call initializes the model from this chunk (its mean and PCA, as :meth:`fit`
        does). Each chunk's rows are treated as new points: their q(x) are first fitted locally with
        the global parameters (kernel, inducing inputs, q(u), noise) frozen, then one pass of
        minibatch steps updates them together with the global parameters, whose Adam state is kept
        between calls. The data term is scaled to the number of rows seen so far (over all ranks
        under torch.distributed), as if the chunk were a minibatch of them; ``elbo_`` is that
        estimate per point. ``latent_mean_`` and ``latent_var_`` grow with the rows seen.

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        self
        """
        first = not isinstance(getattr(self, "_model", None), SVIGPLVM)
        Yt = self._validate_chunk(Y, first=first, min_samples=self._min_samples)
        if first:
            self.n_iter_ = 0
            for stale in ("_bank_Y", "_bank_mu", "_bank_var"):
                self.__dict__.pop(stale, None)
            _, Yc, _ = self._prepare(Yt)
            self._model = model = self._build(Yc, self._n_total, self._projection, self._fracs, self._evals)
            self._make_svi_optimizer(model)
        else:
            model = self._model
            Yc = Yt - self._mean
            count = torch.tensor(float(Yc.shape[0]), dtype=torch.float64, device=Yc.device)
            self._n_total += int(dist.all_reduce_sum(count).item())
            if not self.encoder:
                mu, var = self._fit_new_latents(Yc)
                model.latent = PointLatent(mu, var)
        result = self._fit_svi(model, Yc, 1, tol=None, rows_total=self._n_total / dist.world_size())
        self._bank(Yc)
        if not self.encoder and not first:
            with torch.no_grad():
                self.latent_mean_ = np.concatenate([self.latent_mean_, model.latent.mu.cpu().numpy()])
                self.latent_var_ = np.concatenate([self.latent_var_, model.latent.var.cpu().numpy()])
        self._record(result, set_latent=first)
        return self

    def _freeze_svi(self, model):
        with torch.no_grad():
            q = model.strategy.variational_distribution
            L = _kuu_cholesky(model.kernel, model.inducing_points, model.strategy.jitter_val)
            root = q.lazy_covariance_matrix.root_decomposition().root.to_dense()
            self._posterior_model = InducingPosterior(model.kernel, model.inducing_points, L,
                                                      q.mean.T.contiguous(), root, model.noise)

    def _record(self, result, set_latent=True):
        model = self._model
        self.history_ = result.history
        steps = self._steps_per_epoch or 1
        self.n_iter_ += result.n_epochs * steps
        self.n_inducing_ = int(model.inducing_points.shape[0])
        with torch.no_grad():
            if not self.encoder and set_latent:
                self.latent_mean_ = model.latent.mu.detach().cpu().numpy()
                self.latent_var_ = model.latent.var.detach().cpu().numpy()
            self.inducing_points_ = model.inducing_points.detach().cpu().numpy()
            self.noise_variance_ = float(model.noise)
            self.lengthscales_ = lengthscales(model.kernel).detach().cpu().numpy()
            w = relevance(model.kernel).detach().cpu().numpy()
        # Global parameters (kernel, noise, inducing inputs, q(u) in SVI, the encoder when
        # amortized) and the mean; the per-point q(x_n) are local and not counted.
        local = set() if self.encoder else {id(p) for p in model.latent.parameters()}
        self.n_parameters_ = sum(p.numel() for p in model.parameters()
                                 if id(p) not in local) + int(self.mean_.size)
        self.relevance_ = w / w.max()
        self.relevant_dims_ = np.argsort(-self.relevance_, kind="stable")
        self.effective_dims_ = int((self.relevance_ >= self.relevance_threshold).sum())

    # -------------------------------------------------------------- inference
    def _fit_new_latents(self, Yc):
        """q(x*) = N(mu, diag s) for new centred rows, model frozen; each row independently."""
        post = self._posterior_model
        if self.encoder:
            with torch.no_grad():
                mu, var = self._model.latent(Yc)
            return mu, var
        mus, vars_ = [], []
        eps = self._fixed_draws(16)
        for i in range(0, Yc.shape[0], _ROW_CHUNK):
            mu, var = self._fit_rows(Yc[i:i + _ROW_CHUNK], post, eps)
            mus.append(mu)
            vars_.append(var)
        return torch.cat(mus), torch.cat(vars_)

    def _fit_rows(self, y, post, eps):
        """q(x*) for one chunk of rows. A row identical to a banked training row gets that row's
        own fitted q(x_n) (so ``transform`` of the training data is the training embedding and
        ``fit_transform`` equals ``fit().transform()``); the others are fitted with the model frozen."""
        nearest, same = self._nearest_training_row(y)
        mu_out = self._bank_mu[nearest].clone()
        var_out = self._bank_var[nearest].clone()
        new = ~same
        if bool(new.any()):
            mu_new, var_new = self._fit_unseen_rows(y[new], mu_out[new], post, eps)
            mu_out[new], var_out[new] = mu_new, var_new
        return mu_out, var_out

    def _fit_unseen_rows(self, y, init, post, eps):
        """Fit q(x*) for rows not seen in training, with the model frozen."""
        latent = PointLatent(init, torch.full_like(init, _LATENT_VAR_INIT))
        if self.transform_max_iter > 0:
            opt = torch.optim.Adam(latent.parameters(), lr=0.05)
            steps = min(50, self.transform_max_iter)

            def epoch():
                for _ in range(steps):
                    opt.zero_grad()
                    mu, var = latent()
                    value = (post.expected_log_likelihood(y, mu, var, eps)
                             - latent.kl(mu, var)).sum()
                    # The sum, not the mean: each row's gradient (and so its Adam step) must
                    # not depend on how many other rows are being fitted.
                    (-value).backward()
                    opt.step()
                return value.detach() / y.shape[0]

            with torch.enable_grad():
                train(epoch, [latent], opt, max_epochs=math.ceil(self.transform_max_iter / steps),
                      tol=None, estimator_name="BayesianGPLVM.transform")
        with torch.no_grad():
            mu, var = latent()
        return mu.detach(), var.detach()

    def _fixed_draws(self, n):
        gen = self._make_generator(self.random_state)
        return torch.randn((n, self.n_components_), generator=gen, device=self._device, dtype=self._dtype)

    def _bank(self, Yc):
        """Keep up to ``_BANK_SIZE`` training rows and their q(x) to start new points from."""
        with torch.no_grad():
            mu, var = self._model.latent(Yc)
            rows = torch.cat([self._bank_Y, Yc]) if hasattr(self, "_bank_Y") else Yc
            mus = torch.cat([self._bank_mu, mu.detach()]) if hasattr(self, "_bank_mu") else mu.detach()
            vs = torch.cat([self._bank_var, var.detach()]) if hasattr(self, "_bank_var") else var.detach()
            self._bank_Y = rows[:_BANK_SIZE].clone()
            self._bank_mu, self._bank_var = mus[:_BANK_SIZE].clone(), vs[:_BANK_SIZE].clone()

    def _nearest_training_row(self, y):
        """Index of each row's nearest banked training row (data space), and whether it is equal."""
        Ytr = self._bank_Y
        with torch.no_grad():
            d = (y * y).sum(1, keepdim=True) - 2 * y @ Ytr.T + (Ytr * Ytr).sum(1)
            idx = d.argmin(1)
            return idx, (Ytr[idx] == y).all(1)

    def _posterior(self, Y):
        mu, var = self._fit_new_latents(Y - self._mean)
        return mu, var.sqrt()

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
        cols = self._relevant_columns(dims)
        if return_std:
            return out[0][:, cols], out[1][:, cols]
        return out[:, cols]

    def _relevant_columns(self, dims):
        check_is_fitted(self)
        if isinstance(dims, str) and dims == "relevant":
            k = min(2, self.n_components_)
        elif isinstance(dims, numbers.Integral) and not isinstance(dims, bool) and 1 <= dims <= self.n_components_:
            k = int(dims)
        else:
            raise ValueError(f"dims must be None, 'relevant' or an int in [1, {self.n_components_}]; "
                             f"got {dims!r}.")
        return self.relevant_dims_[:k].copy()

    def _decode(self, X):
        mean, _ = self._posterior_model.predict(X)
        return mean + self._mean

    def _log_evidence(self, Y):
        Yc = Y - self._mean
        mu, var = self._fit_new_latents(Yc)
        post = self._posterior_model
        S = self.n_importance_samples
        eps = self._fixed_draws(S)
        out = []
        with torch.no_grad():
            for i in range(0, Yc.shape[0], _ROW_CHUNK):
                y, m, v = Yc[i:i + _ROW_CHUNK], mu[i:i + _ROW_CHUNK], var[i:i + _ROW_CHUNK]
                log_w = []
                for s in range(S):
                    x = m + v.sqrt() * eps[s]
                    log_prior = -0.5 * (x * x + math.log(2 * math.pi)).sum(-1)
                    log_q = -0.5 * (eps[s] * eps[s] + torch.log(2 * math.pi * v)).sum(-1)
                    log_w.append(post.log_likelihood(y, x) + log_prior - log_q)
                out.append(importance_weighted_log_evidence(torch.stack(log_w), dim=0))
        return torch.cat(out)

    def _sample(self, n, generator):
        x = torch.randn((n, self.n_components_), generator=generator, device=self._device,
                        dtype=self._dtype)
        mean, var = self._posterior_model.predict(x)
        var = (var + self._posterior_model.noise).expand_as(mean)
        e = torch.randn(mean.shape, generator=generator, device=self._device, dtype=self._dtype)
        return mean + var.sqrt() * e + self._mean

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The collapsed bound is computed in float64 whatever the input dtype.
        tags.transformer_tags.preserves_dtype = ["float64"]
        tags.non_deterministic = False
        return tags


def _kuu_cholesky(kernel, Z, jitter):
    from linear_operator.utils.cholesky import psd_safe_cholesky

    Kuu = kernel(Z).to_dense()
    return psd_safe_cholesky(Kuu + jitter * torch.eye(Kuu.shape[0], dtype=Kuu.dtype, device=Kuu.device))
