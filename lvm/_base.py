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

import abc
import contextlib
import numbers
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from . import settings
from ._training import NumericalError, warn_not_converged
from ._validation import Interval, StrOptions, check_positive_int

__all__ = ["LatentVariableModel", "resolve_device"]


from ._data import DataGate, resolve_device
from ._scoring import EvidenceAPI


class LatentVariableModel(EvidenceAPI, DataGate, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                          BaseEstimator, metaclass=abc.ABCMeta):
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

    @abc.abstractmethod
    def _fit(self, Y: torch.Tensor) -> None:
        """Learn the parameters from the validated, standardized rows ``Y``."""

    @abc.abstractmethod
    def _posterior(self, Y: torch.Tensor):
        """Mean and standard deviation of q(x | y) of the rows ``Y``."""

    @abc.abstractmethod
    def _decode(self, X: torch.Tensor) -> torch.Tensor:
        """The decoder's mean E[y | x] (model coordinates)."""

    @abc.abstractmethod
    def _decoder_sample(self, X: torch.Tensor, generator) -> torch.Tensor:
        """A draw of the decoder output f at ``X``."""

    @abc.abstractmethod
    def _likelihood_module(self):
        """The likelihood p(y | f)."""

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
