"""The estimator base shared by every decoder family.

It owns, once for all families: the data gate (scikit-learn's validators for array input, the same
checks in torch for tensor input), numpy <-> torch conversion, device and dtype, ``random_state``,
fitted-state checks, and the public methods (``transform``, ``inverse_transform``, ``score_samples``,
``score``, ``sample``). A family implements only its math in the private hooks:

``_fit(Y)``
    learn the parameters from a validated tensor ``Y`` of shape (n_samples, n_features); set the
    trailing-underscore attributes and ``n_components_``.
``_posterior(Y)``
    mean and standard deviation of q(x | y) (the exact posterior where there is one).
``_decode(X)``
    the decoder mean f(x).
``_log_evidence(Y)``
    log p(y) per sample in nats: exact, a lower bound, or an estimate, as ``evidence_kind`` says.
``_sample(n, generator)``
    draws from the fitted generative model.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

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


class LatentVariableModel(TransformerMixin, BaseEstimator):
    """Base class of the lvm estimators: a latent x ~ N(0, I) and a decoder y | x ~ p(y | f(x)).

    Not used directly; see :class:`lvm.PPCA`, :class:`lvm.FactorAnalysis`, :class:`lvm.VAE` and
    :class:`lvm.BayesianGPLVM`.

    Input conventions: numpy (or anything array-like) in gives numpy out; a :class:`torch.Tensor` in
    gives a tensor out, on the model's device.
    """

    #: What ``score_samples`` returns: "exact", "lower bound" or "importance-weighted estimate".
    evidence_kind: str = "exact"
    #: Default computation dtype when ``dtype=None`` and the input is not floating point.
    _default_dtype = torch.float64
    #: Fewest samples ``fit`` accepts.
    _min_samples = 2

    _parameter_constraints: dict = {
        "device": [StrOptions({"auto", "cpu", "cuda"}), torch.device, str, None],
        "dtype": [StrOptions({"float32", "float64"}), None],
        "random_state": ["random_state"],
        "verbose": ["boolean", Interval(numbers.Integral, 0, None, closed="left")],
    }

    # ------------------------------------------------------------------ set-up
    def _setup(self, Y):
        """Validate hyper-parameters and resolve the device and dtype for a new fit."""
        self._validate_params()
        self._device = resolve_device(self.device)
        if self.dtype is not None:
            self._dtype = _DTYPES[self.dtype]
        elif isinstance(Y, torch.Tensor) and Y.dtype in (torch.float32, torch.float64):
            self._dtype = Y.dtype
        elif isinstance(Y, np.ndarray) and Y.dtype in (np.float32, np.float64):
            self._dtype = torch.float32 if Y.dtype == np.float32 else torch.float64
        else:
            self._dtype = self._default_dtype
        self._generator = self._make_generator(self.random_state)

    def _make_generator(self, random_state) -> torch.Generator:
        """A local generator on the model's device, seeded from ``random_state`` alone."""
        seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
        gen = torch.Generator(device=self._device)
        gen.manual_seed(seed)
        return gen

    # --------------------------------------------------------------- data gate
    def _validate_Y(self, Y, *, reset: bool, min_samples: int = 1) -> torch.Tensor:
        """Check the data and return it as a tensor on the model's device and dtype."""
        if isinstance(Y, torch.Tensor):
            Yt = self._check_tensor(Y, name="Y", reset=reset, min_samples=min_samples)
        else:
            Yn = validate_data(
                self,
                Y,
                reset=reset,
                dtype=[np.float64, np.float32],
                ensure_min_samples=min_samples,
                ensure_all_finite=True,
            )
            if not Yn.flags.writeable:  # e.g. a read-only memmap; torch needs writable memory
                Yn = np.array(Yn)
            Yn = np.ascontiguousarray(Yn)  # torch rejects negative strides (e.g. Y[::-1])
            Yt = torch.as_tensor(Yn, dtype=self._dtype).to(self._device)
        return Yt

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
        T = T.to(device=self._device, dtype=self._dtype)
        if not bool(torch.isfinite(T).all()):
            raise ValueError(f"Input {name} contains NaN or infinity.")
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

            T = torch.as_tensor(
                check_array(X, dtype=[np.float64, np.float32], input_name="X"), dtype=self._dtype
            )
        return self._check_tensor(T, name="X", reset=False, n_columns=self.n_components_)

    @staticmethod
    def _output(T: torch.Tensor, like):
        """numpy in gives numpy out; a tensor in gives a tensor out (on the model's device)."""
        if isinstance(like, torch.Tensor):
            return T
        return T.detach().cpu().numpy()

    # ----------------------------------------------------------- public API
    def fit(self, Y, y=None):
        """Fit the model to data ``Y`` of shape (n_samples, n_features).

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self
        """
        self._setup(Y)
        Yt = self._validate_Y(Y, reset=True, min_samples=self._min_samples)
        self._check_data_hyperparameters(Yt)
        self._fit(Yt)
        return self

    def _validate_chunk(self, Y, *, first: bool, min_samples: int = 1) -> torch.Tensor:
        """The data gate of ``partial_fit``: the first chunk sets the model up as ``fit`` does,
        later chunks are checked against it (same number of features)."""
        if not first:
            return self._validate_Y(Y, reset=False)
        self._setup(Y)
        Yt = self._validate_Y(Y, reset=True, min_samples=min_samples)
        self._check_data_hyperparameters(Yt)
        return Yt

    def transform(self, Y, return_std: bool = False):
        """Posterior mean of the latent variables, E[x | y].

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the posterior standard deviation of each latent coordinate.

        Returns
        -------
        X : ndarray or Tensor of shape (n_samples, n_components)
        X_std : ndarray or Tensor of shape (n_samples, n_components), only if ``return_std``
        """
        check_is_fitted(self)
        Yt = self._validate_Y(Y, reset=False)
        with torch.no_grad():
            mean, std = self._posterior(Yt)
        if return_std:
            return self._output(mean, Y), self._output(std, Y)
        return self._output(mean, Y)

    def inverse_transform(self, X):
        """Decoder mean f(x) for latent coordinates ``X`` of shape (n_samples, n_components)."""
        check_is_fitted(self)
        Xt = self._validate_X(X)
        with torch.no_grad():
            return self._output(self._decode(Xt), X)

    def score_samples(self, Y):
        """Log evidence log p(y) of each sample, in nats.

        Whether this is exact, a lower bound or an importance-weighted estimate is given by the
        estimator's ``evidence_kind``.
        """
        check_is_fitted(self)
        Yt = self._validate_Y(Y, reset=False)
        return self._output(self._log_evidence(Yt).detach(), Y)

    def score(self, Y, y=None) -> float:
        """Mean log evidence per sample, in nats (see :meth:`score_samples`)."""
        check_is_fitted(self)
        Yt = self._validate_Y(Y, reset=False)
        return float(self._log_evidence(Yt).detach().mean())

    def sample(self, n_samples: int = 1, random_state=None):
        """Draw ``n_samples`` new observations from the fitted generative model.

        Returns a numpy array; ``random_state`` seeds the draw (the estimator's own generator
        continues its stream when it is None).
        """
        check_is_fitted(self)
        if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        gen = self._generator if random_state is None else self._make_generator(random_state)
        with torch.no_grad():
            return self._sample(int(n_samples), gen).cpu().numpy()

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

    def _fit(self, Y: torch.Tensor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _posterior(self, Y: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    def _decode(self, X: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _log_evidence(self, Y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # ----------------------------------------------------------- conveniences
    @property
    def device_(self) -> torch.device:
        """The device the fitted model lives on."""
        check_is_fitted(self)
        return self._device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = False
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

