"""The data gate of every lvm estimator: set-up, likelihood lookup, validation, standardization.

A mixin of :class:`lvm._base.LatentVariableModel` (not used alone). At ``fit`` it resolves the
device, the dtypes and the generator; it checks the data (scikit-learn's validators for array
input, the same checks in torch for tensor input, missing values where the family models them,
the likelihood's support) and fits the standardization z = (y - location_) / scale_ when the
likelihood is a location-scale family, with the log-Jacobian -D log(scale_) that keeps every
evidence in the data's units; afterwards it maps rows into the model's coordinates and results
back to the caller's type, dtype and device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.utils.validation import check_random_state, validate_data

from . import _distributed as dist
from . import settings
from ._stats import GaussianStats

__all__ = ["DataGate", "resolve_device"]


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

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class DataGate:
    """Set-up, likelihood lookup, the data gate and the thread policy of an lvm estimator."""

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

