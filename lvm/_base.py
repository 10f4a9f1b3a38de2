"""The estimator base shared by every decoder family.

It owns, once for all families: the data gate (scikit-learn's validators for array input, the same
checks in torch for tensor input, the likelihood's support), internal standardization, numpy <->
torch conversion, device and dtype, ``random_state``, the fitted state (fresh on every ``fit``,
never half-made), the thread policy, and the public methods (``transform``,
``inverse_transform``, ``score_samples``, ``score``, ``sample``, scikit-learn's output API). A
family implements only its math in the private hooks, on data in the model's own coordinates:

``_fit(Z)``
    learn the parameters from a validated tensor ``Z`` of shape (n_samples, n_features); set the
    trailing-underscore attributes and ``n_components_``.
``_posterior(Z)``
    mean and standard deviation of q(x | y) (the exact posterior where there is one).
``_decode(X)``
    the decoder's mean E[y | x].
``_evidence_methods`` and the methods it names
    log p(z) per sample in nats by each of the family's evidence methods (exact, a lower bound, or
    an estimate), behind the one public :meth:`~LatentVariableModel.log_evidence`; the first,
    ``_default_evidence``, is what ``score_samples`` returns (``evidence_kind`` says what it is).
``_decoder_sample(X, generator)`` and ``_likelihood_module()``
    a draw of the decoder output f at x and the likelihood p(y | f): ``sample`` draws x from the
    prior, then f, then y.

**Units.** Data come in whatever units the user has. When the family's likelihood is a
location-scale family (the Gaussian), the model is fitted to z = (y - location_) / scale_, with
``location_`` the per-feature mean and ``scale_`` one number, the root mean per-feature variance,
both from the training data. Everything public is in the data's units: the evidence includes the
log-Jacobian -D log(scale_), so fitting c Y + b instead of Y gives the same model and a score
shifted by exactly -D log c; decoded means, samples and noise variances are mapped back. Floors and
jitters inside the families are relative to the data's scale by construction.

**Fitted state.** Every ``fit`` starts from a clean estimator (all state of a previous fit is
removed first). If ``fit`` raises, the estimator is unfitted (``NotFittedError``), with one
exception: a numerical failure the training loop could not recover from (:class:`NumericalError`)
or a ``KeyboardInterrupt`` during an iterative family's training leave the model in its last good
epoch, usable, with ``converged_ = False``; the exception still propagates.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from . import _distributed as dist
from . import settings
from ._stats import GaussianStats
from ._training import NumericalError, warn_not_converged
from ._validation import Interval, StrOptions, check_positive_int

__all__ = ["LatentVariableModel", "resolve_device"]


def resolve_device(device) -> torch.device:
    """Turn the ``device`` hyper-parameter into a :class:`torch.device`.

    ``"auto"`` takes CUDA when it is available and the CPU otherwise.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='cpu' or device='auto'."
        )
    return dev


_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class LatentVariableModel(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class of the lvm estimators: a latent x ~ N(0, I) and a decoder y | x ~ p(y | f(x)).

    Not used directly; see :class:`lvm.PPCA`, :class:`lvm.FactorAnalysis`, :class:`lvm.VAE` and
    :class:`lvm.BayesianGPLVM`.

    Input conventions: numpy (or anything array-like) in gives numpy out; a :class:`torch.Tensor` in
    gives a tensor out, on the model's device. Outputs have the input's floating dtype (float64 in
    gives float64 out, whatever precision the model computes in) unless ``dtype`` is set, which
    fixes both the computation and the outputs.

    Class attributes describe the family: ``family`` (its name), ``evidence_kind`` and
    ``train_evidence_kind`` (what ``score_samples`` and ``train_evidence_`` are), and
    ``has_embedding``: whether ``transform`` maps the data to a latent of fewer dimensions, one a
    scatter plot can show (True; False for :class:`lvm.DiffusionModel`, whose latents have the
    data's dimension). The command line shows samples instead of an embedding where it is False.
    """

    #: The decoder family: "linear", "neural", "gaussian process", ...
    family: str = ""
    #: Whether ``transform`` gives a low-dimensional embedding (False: latents of the data's size).
    has_embedding: bool = True
    #: What ``score_samples`` returns: "exact", "lower bound" or "importance-weighted estimate".
    evidence_kind: str = "exact"
    #: What ``train_evidence_`` is: "exact" or "lower bound" (the training objective).
    train_evidence_kind: str = "exact"
    #: Computation dtype when ``dtype=None``.
    _default_dtype = torch.float64
    #: Fewest samples ``fit`` accepts.
    _min_samples = 2

    _parameter_constraints: dict = {
        "device": [StrOptions({"auto", "cpu", "cuda"}), torch.device, str, None],
        "dtype": [StrOptions({"float32", "float64"}), None],
        "random_state": ["random_state"],
        "verbose": ["boolean", Interval(numbers.Integral, 0, None, closed="left")],
    }

    # ------------------------------------------------------------------ fitted state
    def _reset(self) -> None:
        """Remove every trace of a previous fit (the attributes a fit added); what was there
        before (hyper-parameters, scikit-learn's own machinery) stays."""
        for name in self.__dict__.pop("_fitted_keys", ()):
            self.__dict__.pop(name, None)
        self._keys_before_fit = frozenset(vars(self)) | {"_keys_before_fit"}

    def _mark_fitted(self) -> None:
        self._usable = True
        self._fitted_keys = frozenset(vars(self)) - self._keys_before_fit

    def _abort(self) -> None:
        """After a failed fit: back to the state before it (unfitted)."""
        for name in set(vars(self)) - self._keys_before_fit:
            self.__dict__.pop(name, None)

    def _is_fitted(self) -> bool:
        return bool(getattr(self, "_usable", False))

    def __sklearn_is_fitted__(self) -> bool:
        return self._is_fitted()

    @contextlib.contextmanager
    def _usable_on_interrupt(self, finalize):
        """Inside: a NumericalError or KeyboardInterrupt from the training loop (which restored
        the last good epoch) first makes the estimator usable with ``finalize()``, then
        propagates. If the last good state cannot be finalized either, the estimator stays
        unfitted."""
        try:
            yield
        except (NumericalError, KeyboardInterrupt) as exc:
            try:
                finalize()
            except Exception:  # not even the last good state can be evaluated: stay unfitted
                raise exc from None
            self.converged_ = False
            self._usable = True
            raise

    def _record_convergence(self, converged: bool, budget: str, parameter: str, **rule) -> None:
        """Decide, record and warn once, for every iterative fit: ``converged_``, and the
        ConvergenceWarning when the budget (``budget``, raised by ``parameter``) ran out before
        the stopping rule was met. ``rule`` is ``tol=`` or ``patience=`` (with ``best_epoch=``,
        ``n_epochs=``) and ``hint=`` (see :func:`lvm._training.not_converged_message`); with
        neither a tolerance nor a patience there is no rule, and nothing to warn about."""
        self.converged_ = bool(converged)
        if not converged and (rule.get("tol") is not None or rule.get("patience") is not None):
            warn_not_converged(type(self).__name__, budget, parameter, **rule)

    def _epoch_callback(self, shift: float | None = None):
        """The training loop's per-epoch callback from :class:`lvm.settings.on_epoch`, or None.
        ``shift`` is what takes the objective to the data's units (default the log-Jacobian)."""
        fn = settings.on_epoch.value()
        if fn is None:
            return None
        name = type(self).__name__
        shift = self._log_jacobian if shift is None else shift

        def callback(record):  # in the data's units, as history_ reports it
            fn({k: v + shift if k in ("train", "validation") else v
                for k, v in record.items()}, name)

        return callback

    # ------------------------------------------------------------------ set-up
    def _setup(self, Y):
        """Validate hyper-parameters and resolve the device and dtypes for a new fit."""
        self._validate_params()
        self._check_likelihood_supported()
        self._device = resolve_device(self.device)
        self._dtype = _DTYPES[self.dtype] if self.dtype is not None else self._default_dtype
        self._input_dtype = self._float_dtype_of(Y) or torch.float64
        self._generator = self._make_generator(self.random_state)

    @staticmethod
    def _float_dtype_of(Y):
        """torch.float32 / float64 when ``Y`` is a float32 / float64 array or tensor, else None."""
        dtype = getattr(Y, "dtype", None)
        if isinstance(dtype, torch.dtype):
            return dtype if dtype in (torch.float32, torch.float64) else None
        if dtype is not None and dtype in (np.float32, np.float64):
            return torch.float32 if dtype == np.float32 else torch.float64
        return None

    def _make_generator(self, random_state) -> torch.Generator:
        """A local generator on the model's device, seeded from ``random_state`` alone."""
        seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
        gen = torch.Generator(device=self._device)
        gen.manual_seed(seed)
        return gen

    def _new_seed(self) -> int:
        """A fresh seed from the estimator's own generator."""
        return int(torch.randint(0, 2**31 - 1, (1,), generator=self._generator,
                                 device=self._device))

    # ------------------------------------------------------------------ likelihood
    #: Likelihood names the family supports (the ``likelihood`` hyper-parameter, when it has one),
    #: or "all" for every name in :data:`lvm.likelihoods.LIKELIHOODS`.
    _likelihoods = frozenset({"gaussian"})

    def _likelihood_name(self) -> str:
        return getattr(self, "likelihood", "gaussian")

    def _supported_likelihoods(self):
        if self._likelihoods == "all":
            from .likelihoods import LIKELIHOODS

            return set(LIKELIHOODS)
        return self._likelihoods

    def _check_likelihood_supported(self) -> None:
        from .likelihoods import parse_likelihood

        name = self._likelihood_name()
        supported = self._supported_likelihoods()
        if parse_likelihood(name)[0] not in supported:  # "binomial(n=16)" is a "binomial"
            raise ValueError(
                f"likelihood={name!r} is not supported by {self._describe()}; it supports "
                f"{sorted(supported)}." + self._likelihood_hint(name)
            )
        self._likelihood_class()  # a wrong option says so now, not deep inside fit

    def _likelihood_hint(self, name) -> str:
        return ""

    def _describe(self) -> str:
        return type(self).__name__

    def _likelihood_class(self):
        from .likelihoods import get_likelihood

        return get_likelihood(self._likelihood_name())

    def _standardizes(self) -> bool:
        return self._likelihood_class().location_scale

    # --------------------------------------------------------------- data gate
    def _validate_Y(self, Y, *, reset: bool, min_samples: int = 1) -> torch.Tensor:
        """Check the data and return it in the model's coordinates, dtype and device.

        With ``reset`` the standardization is fitted to these rows (over all ranks under
        torch.distributed) before it is applied.
        """
        return self._standardize(self._check_Y(Y, reset=reset, min_samples=min_samples)[0])

    def _check_Y(self, Y, *, reset: bool, min_samples: int = 1):
        """The data gate: check ``Y``; with ``reset`` fit the standardization to it.

        Complete data (the common case) cost one pass: on ``reset`` the statistics the
        standardization needs (:meth:`_data_stats`, blockwise, see :mod:`lvm._stats`) are
        computed first, and their being finite proves that no entry is NaN or infinite; without
        ``reset`` one sum does. Only when that fails are single entries searched (infinity, rows
        with nothing observed) and the moments taken over the observed entries.

        Returns
        -------
        T : torch.Tensor of shape (n_samples, n_features)
            The rows in the data's units, in the working dtype (float64 for float64 data) on the
            model's device; :meth:`_standardize` maps them to the model's coordinates.
        stats : GaussianStats or None
            With ``reset`` and complete rows (on every rank), the statistics of every rank's rows
            in the data's units that the standardization was fitted to; None otherwise.
        """
        if isinstance(Y, torch.Tensor):
            T = self._check_tensor(Y, name="Y", reset=reset, min_samples=min_samples)
        else:
            try:
                Yn = validate_data(
                    self,
                    Y,
                    reset=reset,
                    dtype=[np.float64, np.float32],
                    ensure_min_samples=min_samples,
                    ensure_all_finite="allow-nan" if self._allow_nan else True,
                )
            except ValueError as exc:
                if "contains NaN" in str(exc) and "infinity" not in str(exc):
                    raise ValueError(self._no_missing_values_message()) from None
                raise
            if not Yn.flags.writeable:  # e.g. a read-only memmap; torch needs writable memory
                Yn = np.array(Yn)
            Yn = np.ascontiguousarray(Yn)  # torch rejects negative strides (e.g. Y[::-1])
            T = torch.as_tensor(Yn).to(self._device)
        stats = None
        if reset and self._standardizes():
            stats = self._data_stats(T)
            if not dist.min_int(int(stats.is_finite())):  # every rank decides alike
                stats = None
            complete = stats is not None
        else:  # the arrays' own checks ruled out NaN unless the family models it
            complete = not self._allow_nan or bool(torch.isfinite(T.sum()))
        if not complete and self._allow_nan:
            self._check_missing(T)
        self._likelihood_class().check_support(T, None if complete else ~torch.isnan(T))
        if reset:
            self._check_training_data(T)
            stats = self._global_stats(stats)
            self._fit_standardization(T, stats)
        return T, stats

    def _data_stats(self, T: torch.Tensor):
        """This rank's statistics of the training rows for the standardization: per feature
        (the diagonal scatter, O(N D)); the linear family takes the full scatter it fits from."""
        return GaussianStats.of(T, diagonal=True)

    @staticmethod
    def _global_stats(stats):
        """The statistics of every rank's rows (the same on every rank); ``stats`` itself
        without a process group, or when None."""
        if stats is None or not dist.is_distributed():
            return stats
        dist.check_same_features(stats.mean.shape[0], stats.mean.device)
        return stats.all_reduce()

    #: Whether NaN in Y means "missing" (the family evaluates the evidence of the observed entries).
    _allow_nan = False

    def _no_missing_values_message(self) -> str:
        return (f"Input Y contains NaN, and {type(self).__name__} does not model missing values. "
                "PPCA, FactorAnalysis, VAE and BayesianGPLVM do (NaN means missing; their "
                "allow_nan tag is True); or fill the holes first, e.g. with "
                "lvm.LatentImputer(lvm.PPCA(...)) in a Pipeline.")

    @staticmethod
    def _check_missing(T: torch.Tensor) -> None:
        """Infinity stays an error; a row with nothing observed is an error that names it."""
        if bool(torch.isinf(T).any()):
            raise ValueError("Input Y contains infinity; only NaN means a missing value.")
        empty = torch.isnan(T).all(1)
        if bool(empty.any()):
            rows = torch.nonzero(empty).flatten().tolist()
            raise ValueError(
                f"{len(rows)} row(s) of Y have no observed value (rows {rows[:10]}"
                + (", ..." if len(rows) > 10 else "") + "); a row needs at least one observed "
                "entry. Drop those rows.")

    def _working_dtype(self, dtype: torch.dtype) -> torch.dtype:
        # Standardize in float64 when the data arrive in float64, then cast: an offset large
        # next to the spread must not be rounded away in a float32 model.
        return torch.float64 if dtype == torch.float64 else self._dtype

    def _fit_standardization(self, T: torch.Tensor, stats=None) -> None:
        """``location_`` and ``scale_`` from the statistics of every rank's complete rows
        (``stats``), or else from the moments of the observed entries of ``T``."""
        D = T.shape[1]
        if not self._standardizes():
            self._loc, self._scale = None, 1.0
        else:
            if stats is not None:
                counts = torch.full((D,), float(stats.n), dtype=torch.float64, device=T.device)
                mean, ss = stats.mean, stats.feature_scatter
            else:
                counts, mean, ss = dist.moments(T)
            if bool((counts == 0).any()):
                cols = torch.nonzero(counts == 0).flatten().tolist()
                raise ValueError(
                    f"{len(cols)} feature(s) have no observed value (columns {cols[:10]}); a model "
                    "needs at least one value of every feature. Drop those columns.")
            var = ss / counts
            scale = math.sqrt(float(var.mean())) if int(counts.min()) > 1 else 0.0
            if not (scale > 0.0 and math.isfinite(scale)):
                # Constant data: any scale is as good; keep the data's own magnitude.
                scale = float(mean.abs().max()) or 1.0
            self._loc, self._scale = mean, scale
        self.location_ = (np.zeros(D) if self._loc is None else self._loc.cpu().numpy())
        self.scale_ = float(self._scale)
        self._log_jacobian = -D * math.log(self._scale)

    def _standardize(self, T: torch.Tensor) -> torch.Tensor:
        T = T.to(self._working_dtype(T.dtype))
        if self._loc is not None:
            T = (T - self._loc.to(T.dtype)) / self._scale
        return T.to(self._dtype)

    def _unstandardize(self, Z: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        Z = Z.to(dtype)
        if self._loc is None:
            return Z
        return Z * self._scale + self._loc.to(dtype)

    def _check_tensor(self, T: torch.Tensor, *, name, reset, min_samples=1, n_columns=None):
        if T.dim() != 2:
            raise ValueError(
                f"Expected a 2-D {name} of shape (n_samples, n_features), got a tensor of shape "
                f"{tuple(T.shape)}. Reshape 1-D data with .reshape(-1, 1) for one feature or "
                ".reshape(1, -1) for one sample."
            )
        if not (T.dtype.is_floating_point or T.dtype in (torch.int32, torch.int64, torch.int16,
                                                          torch.int8, torch.uint8, torch.bool)):
            raise TypeError(f"{name} has dtype {T.dtype}; lvm needs real-valued data.")
        if T.shape[0] < min_samples:
            raise ValueError(
                f"Found array with {T.shape[0]} sample(s) (shape={tuple(T.shape)}) while a minimum "
                f"of {min_samples} is required by {type(self).__name__}."
            )
        if T.shape[1] < 1:
            raise ValueError(f"{name} has 0 feature(s) (shape={tuple(T.shape)}); need at least 1.")
        dtype = T.dtype if T.dtype in (torch.float32, torch.float64) else torch.float64
        T = T.to(device=self._device, dtype=self._working_dtype(dtype))
        # One sum proves complete data finite; only a non-finite sum needs the search by entry.
        finite = bool(torch.isfinite(T.sum())) or bool(
            (torch.isfinite(T) | (torch.isnan(T) if self._allow_nan and name == "Y" else False))
            .all())
        if not finite:
            if name == "Y" and not self._allow_nan and not bool(torch.isinf(T).any()):
                raise ValueError(self._no_missing_values_message())
            raise ValueError(f"Input {name} contains " + ("infinity" if self._allow_nan
                                                           else "NaN or infinity") + ".")
        if n_columns is None:
            if reset:
                self.n_features_in_ = T.shape[1]
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            elif T.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"{name} has {T.shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input."
                )
        elif T.shape[1] != n_columns:
            raise ValueError(
                f"{name} has {T.shape[1]} columns, but {type(self).__name__} has "
                f"{n_columns} latent dimensions."
            )
        return T

    def _validate_X(self, X) -> torch.Tensor:
        """Check latent coordinates given to ``inverse_transform``."""
        if isinstance(X, torch.Tensor):
            T = X
        else:
            from sklearn.utils import check_array

            A = check_array(X, dtype=[np.float64, np.float32], input_name="X")
            if not A.flags.writeable:  # e.g. the view of a DataFrame's values
                A = np.array(A)
            T = torch.as_tensor(A)
        T = self._check_tensor(T, name="X", reset=False, n_columns=self.n_components_)
        return T.to(self._dtype)

    def _out_dtype(self, like) -> torch.dtype:
        """An explicit ``dtype`` hyper-parameter; else the input's floating dtype (the fit data's
        for non-float input)."""
        if self.dtype is not None:
            return self._dtype
        return self._float_dtype_of(like) or self._input_dtype

    def _output(self, T: torch.Tensor, like):
        """numpy in gives numpy out, a tensor in gives a tensor out (on the model's device), in
        the dtype :meth:`_out_dtype` says."""
        T = T.detach().to(self._out_dtype(like))
        if isinstance(like, torch.Tensor):
            return T
        return T.cpu().numpy()

    # ------------------------------------------------------------------ threads
    def _work_elements(self, n_rows: int, n_features: int) -> int:
        """The size of the largest tensor one training step touches (for the thread policy)."""
        return n_rows * n_features

    def _threads(self, Y):
        shape = getattr(Y, "shape", None)
        if shape is None or len(shape) != 2:
            return settings.thread_scope(None)
        return settings.thread_scope(self._work_elements(int(shape[0]), int(shape[1])))

    # ----------------------------------------------------------- public API
    def fit(self, Y, y=None):
        """Fit the model to data ``Y`` of shape (n_samples, n_features).

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
            Training data (NaN marks a missing entry for families that model them).
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        object
            The fitted estimator.
        """
        self._reset()
        with self._fitting():
            self._setup(Y)
            with self._threads(Y):
                self._fit_checked(*self._check_Y(Y, reset=True, min_samples=self._min_samples))
        return self

    def _fit_checked(self, T: torch.Tensor, stats) -> None:
        """Fit to the rows the gate passed (see :meth:`_check_Y`): standardize them, check the
        hyper-parameters against them, :meth:`_fit`. The linear family instead folds the
        standardization into ``stats`` when it can (no standardized copy of the rows)."""
        Z = self._standardize(T)
        self._check_data_hyperparameters(Z)
        self._fit(Z)

    @contextlib.contextmanager
    def _fitting(self):
        """Around a fit: fitted afterwards, or (after an error) usable in the last good state the
        family kept, or back to unfitted."""
        try:
            yield
            self._mark_fitted()
        except BaseException:
            if self._is_fitted():
                self._mark_fitted()
            else:
                self._abort()
            raise

    def _partial_fit(self, Y, chunk_fn, min_samples: int = 1, *, raw: bool = False):
        """The template of ``partial_fit``: the first chunk sets the model up as ``fit`` does
        (``chunk_fn(Z, first=True)``), later chunks are checked against it (same features).
        With ``raw`` the chunk function gets the gate's rows in the data's units and their
        statistics instead, ``chunk_fn(T, stats, first=...)`` (see :meth:`_check_Y`)."""
        first = not self._is_fitted()
        if first:
            self._reset()
        with self._fitting():
            if first:
                self._setup(Y)
            with self._threads(Y):
                T, stats = self._check_Y(Y, reset=first, min_samples=min_samples if first else 1)
                Z = T if raw else self._standardize(T)
                if first:
                    self._check_data_hyperparameters(Z)
                if raw:
                    chunk_fn(T, stats, first=first)
                else:
                    chunk_fn(Z, first=first)
        return self

    def transform(self, Y, return_std: bool = False):
        """Posterior mean of the latent variables, E[x | y].

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
            The rows to embed.
        return_std : bool, default=False
            Also return the posterior standard deviation of each latent coordinate.

        Returns
        -------
        X : ndarray or Tensor of shape (n_samples, n_components)
            The posterior means.
        X_std : ndarray or Tensor of shape (n_samples, n_components)
            The posterior standard deviations (only with ``return_std``).
        """
        check_is_fitted(self)
        with self._threads(Y):
            Z = self._validate_Y(Y, reset=False)
            with torch.no_grad():
                mean, std = self._posterior(Z)
        if return_std:
            return self._output(mean, Y), self._output(std, Y)
        return self._output(mean, Y)

    def inverse_transform(self, X):
        """Decoder mean E[y | x] of latent coordinates, in the data's units.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_components)
            Latent coordinates.

        Returns
        -------
        ndarray or Tensor of shape (n_samples, n_features)
            E[y | x] for each row of ``X``.
        """
        check_is_fitted(self)
        Xt = self._validate_X(X)
        with torch.no_grad():
            Z = self._decode(Xt)
        return self._output(self._unstandardize(Z, self._out_dtype(X)), X)

    def _score_values(self, Y) -> torch.Tensor:
        """log p(y) per row in nats, of the data as passed (float64 tensor)."""
        check_is_fitted(self)
        with self._threads(Y):
            Z = self._validate_Y(Y, reset=False)
            with torch.no_grad():
                values = self._log_evidence(Z).detach()
        return values.to(torch.float64) + self._row_log_jacobian(Z)

    def _row_log_jacobian(self, Z: torch.Tensor):
        """-(observed entries) log(scale_) per row: the log-Jacobian of the standardization."""
        if self._loc is None or not bool(torch.isnan(Z).any()):
            return self._log_jacobian
        return -(~torch.isnan(Z)).sum(1).to(torch.float64) * math.log(self._scale)

    def score_samples(self, Y):
        """Log evidence log p(y) of each sample, in nats.

        Whether this is exact, a lower bound or an importance-weighted estimate is given by the
        estimator's ``evidence_kind``; for a row with missing entries it is that of the observed
        entries.

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
            The rows to score.

        Returns
        -------
        ndarray or Tensor of shape (n_samples,)
            The log evidence of each row, in nats of the data as passed.
        """
        return self._output(self._score_values(Y), Y)

    def score(self, Y, y=None) -> float:
        """Mean log evidence per sample, in nats (see :meth:`score_samples`).

        Under torch.distributed each rank passes its own rows and every rank gets the mean over
        the rows of all ranks (all ranks must call it together).

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
            The rows to score.
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        float
            The mean of :meth:`score_samples`, in nats per row.
        """
        return float(dist.global_mean(self._score_values(Y)))

    # ------------------------------------------------------------------ evidence
    #: The evidence methods of the family: name -> the name of the private method computing it,
    #: called as ``impl(Z, method, n_samples, random_state, **options)`` on rows in the model's
    #: coordinates and returning an :class:`lvm.evidence.EvidenceEstimate` of tensors (values
    #: without the log-Jacobian of the standardization). Its keyword-only parameters are the
    #: options the method takes.
    _evidence_methods: dict = {}
    #: The method ``score_samples`` uses, and ``log_evidence(method=None)``.
    _default_evidence: str = ""

    def _evidence_impl(self, method):
        """(name, bound method) of the evidence method ``method`` (None: the default)."""
        name = self._default_evidence if method is None else method
        if not isinstance(name, str) or name not in self._evidence_methods:
            raise ValueError(f"Unknown method {method!r}; choose one of "
                             f"{list(self._evidence_methods)} (the evidence methods of "
                             f"{type(self).__name__}).")
        return name, getattr(self, self._evidence_methods[name])

    def _evidence(self, Z, method=None, n_samples=None, random_state=None, **options):
        """The :class:`lvm.evidence.EvidenceEstimate` of rows ``Z`` (model coordinates, tensors)."""
        name, impl = self._evidence_impl(method)
        if options:
            taken = [p.name for p in inspect.signature(impl).parameters.values()
                     if p.kind == p.KEYWORD_ONLY]
            unknown = sorted(set(options) - set(taken))
            if unknown:
                raise TypeError(
                    f"{type(self).__name__}.log_evidence(method={name!r}) got unknown option(s) "
                    f"{unknown}; it takes {taken if taken else 'none'}.")
        with torch.no_grad():
            return impl(Z, name, n_samples, random_state, **options)

    def _log_evidence(self, Z):
        """log p(z) per row by the default evidence method (what ``score_samples`` returns)."""
        return self._evidence(Z).log_evidence

    def log_evidence(self, Y, method=None, n_samples=None, random_state=None, **options):
        """The log evidence log p(y) of each sample by a named method, with its standard error.

        The one evidence interface of every lvm estimator. The methods (``method=None`` is the
        first of each, the one :meth:`score_samples` uses):

        * :class:`lvm.PPCA`, :class:`lvm.FactorAnalysis`: ``"exact"``, the closed-form marginal
          likelihood (of the observed entries of a row with missing values).
        * :class:`lvm.VAE`, :class:`lvm.BayesianGPLVM`: ``"iwae"``, the importance-weighted
          estimate with the posterior q(x | y) as proposal; ``"elbo"``, the evidence lower bound
          (expected log-likelihood over the draws minus the closed-form KL); ``"prior"``, the naive
          estimator with draws from the prior N(0, I), unbiased in p(y) but far below log p(y)
          unless S is astronomically large.
        * :class:`lvm.DiffusionModel`: ``"bound"`` (also ``"vlb"``), the continuous-time
          variational bound averaged over (t, eps) draws, with the option ``n_steps=T`` for the
          looser T-step discrete-time bound; ``"ode"``, the probability-flow ODE log-likelihood,
          the density of a different model (the deterministic flow), which neither bounds nor is
          bounded by this model's evidence, with the options ``divergence`` ("auto", "exact" or
          "hutchinson") and ``n_probes`` (Rademacher probes per row for Hutchinson's estimator).

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
            The rows to evaluate (NaN marks a missing entry for families that model them).
        method : str, default=None
            The method, one of the estimator's (above); None takes its default.
        n_samples : int, default=None
            Monte Carlo draws per row; None uses the estimator's own number
            (``n_importance_samples``, or ``n_eval_draws`` for the diffusion model). Unused by
            ``"exact"`` and ``"ode"``.
        random_state : int, RandomState or None, default=None
            None uses the evaluation key fixed at fit (deterministic, the draws of
            :meth:`score_samples`); otherwise fresh draws keyed by this seed. Unused by
            ``"exact"``.
        **options : dict
            Options of the method (above); an option the method does not take is a TypeError.

        Returns
        -------
        lvm.evidence.EvidenceEstimate
            ``(log_evidence, standard_error, effective_sample_size, kind, method)``: the value of
            each row in nats of the data as passed, its Monte Carlo standard error (per row; zero
            when exact), Kish's effective sample size of its importance weights (None where there
            are none), ``kind`` ("exact", "bound" or "estimate") and the method's name. numpy in
            gives numpy out, a tensor gives tensors.
        """
        check_is_fitted(self)
        self._evidence_impl(method)  # an unknown method fails before the rows are read
        if n_samples is not None:
            n_samples = check_positive_int(n_samples, "n_samples")
        with self._threads(Y):
            Z = self._validate_Y(Y, reset=False)
            est = self._evidence(Z, method, n_samples, random_state, **options)
            value = est.log_evidence.detach().to(torch.float64) + self._row_log_jacobian(Z)
        out = lambda t: None if t is None else self._output(t, Y)  # noqa: E731
        return est._replace(log_evidence=out(value), standard_error=out(est.standard_error),
                            effective_sample_size=out(est.effective_sample_size))

    def sample(self, n_samples: int = 1, random_state=None):
        """Draw new observations from the fitted generative model.

        x is drawn from the prior N(0, I), then the decoder output f at x, then y from the
        likelihood p(y | f).

        Parameters
        ----------
        n_samples : int, default=1
            How many rows to draw.
        random_state : int, RandomState or None, default=None
            Seeds the draw; None continues the estimator's own generator.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            The draws, in the data's units and the dtype of the data seen at fit.
        """
        check_is_fitted(self)
        n = check_positive_int(n_samples, "n_samples")
        gen = self._generator if random_state is None else self._make_generator(random_state)
        with torch.no_grad():
            Z = self._sample(n, gen)
        dtype = self._dtype if self.dtype is not None else self._input_dtype
        return self._unstandardize(Z, dtype).cpu().numpy()

    def _fill_missing(self, Y, *, sample: bool = False, generator=None):
        """``Y`` with each NaN replaced by E[y_m | y_o] under the model (or, with ``sample``, a
        draw from p(y_m | y_o)); observed entries are returned exactly as passed. The engine of
        :class:`lvm.LatentImputer`."""
        check_is_fitted(self)
        if not self._allow_nan:
            raise ValueError(f"{type(self).__name__} does not model missing values (NaN); use a "
                             "family whose allow_nan tag is True.")
        with self._threads(Y):
            Z = self._validate_Y(Y, reset=False)
            with torch.no_grad():
                filled = self._conditional(Z, sample, generator)
        dtype = self._out_dtype(Y)
        given = (Y if isinstance(Y, torch.Tensor) else torch.as_tensor(
            np.asarray(Y, dtype=np.float64))).to(device=filled.device, dtype=dtype)
        out = torch.where(torch.isnan(given), self._unstandardize(filled, dtype), given)
        return self._output(out, Y)

    def _conditional(self, Z, sample: bool, generator):  # pragma: no cover - families with NaN
        raise NotImplementedError

    # ----------------------------------------------------------- family hooks
    def _check_data_hyperparameters(self, Y: torch.Tensor) -> None:
        """Checks that depend on both the data and the hyper-parameters (e.g. n_components)."""
        n_samples, n_features = Y.shape
        k = getattr(self, "n_components", None)
        if isinstance(k, numbers.Integral) and k > n_features:
            raise ValueError(
                f"n_components={k} is larger than the data's {n_features} feature(s); "
                f"{type(self).__name__} needs n_components <= n_features."
            )

    def _check_training_data(self, T: torch.Tensor) -> None:
        """Checks (or warnings) on the raw training rows, before standardization."""

    def _fit(self, Y: torch.Tensor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _posterior(self, Y: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    def _decode(self, X: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _decoder_sample(self, X: torch.Tensor, generator) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _likelihood_module(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        from .latents import sample_prior

        x = sample_prior(n, self.n_components_, generator, device=self._device, dtype=self._dtype)
        return self._likelihood_module().sample(self._decoder_sample(x, generator), generator)

    # ----------------------------------------------------------- conveniences
    @property
    def _n_features_out(self):
        """Number of transformed output features (scikit-learn's ``get_feature_names_out``)."""
        return self.n_components_

    @property
    def device_(self) -> torch.device:
        """The device the fitted model lives on."""
        check_is_fitted(self)
        return self._device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = self._allow_nan
        return tags

    def __getstate__(self) -> dict[str, Any]:
        # torch.Generator does not pickle; keep its state as a tensor instead.
        state = self.__dict__.copy()
        gen = state.pop("_generator", None)
        if gen is not None:
            state["_generator_state"] = gen.get_state()
        return state

    def __setstate__(self, state):
        gen_state = state.pop("_generator_state", None)
        self.__dict__.update(state)
        if gen_state is not None:
            self._generator = torch.Generator(device=self._device)
            self._generator.set_state(gen_state)
