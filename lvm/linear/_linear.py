"""What PPCA and Factor Analysis share: the linear-Gaussian model y = W x + mu + e, e ~ N(0, Psi).

Everything here is exact: the evidence, the posterior p(x | y) and the samples follow from
(W, mu, Psi) in closed form (see :mod:`lvm.evidence.gaussian`). The model is fitted to the
standardized data z = (y - location_) / scale_ (see :mod:`lvm._base`); the public attributes are in
the data's units.

**Missing values.** NaN in Y means "not observed". The evidence of a partly observed row is the
exact marginal of its observed entries, log N(y_o; mu_o, W_o W_o^T + Psi_o)
(:mod:`lvm.evidence.masked`); ``transform`` is the posterior of x given them; ``fit`` maximizes the
observed-data likelihood by exact EM over the missingness (:mod:`lvm.linear._missing`; Tipping &
Bishop 1999, Ilin & Raiko 2010), vectorized over rows. ``partial_fit`` and streamed fits need
complete rows (their sufficient statistics do not exist with holes).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from .._base import LatentVariableModel
from .._distributed import check_same_features, is_distributed
from .._stats import GaussianStats, block_rows, chunk_rows
from .._training import TrainResult, history_record
from .._validation import positive_int
from ..evidence import (EvidenceEstimate, average_log_likelihood, linear_gaussian_posterior,
                        low_rank_gaussian_log_prob)
from ..evidence.masked import masked_conditional, masked_low_rank_gaussian_log_prob
from ..likelihoods import GaussianLikelihood
from ._missing import EMState, fit_missing, missing_posterior


class LinearGaussianModel(LatentVariableModel):
    """Shared base of :class:`PPCA` and :class:`FactorAnalysis` (not public)."""

    family = "linear"
    evidence_kind = "exact"
    train_evidence_kind = "exact"
    _allow_nan = True
    #: "shared" (PPCA) or "per_feature" (FA): the noise model of the missing-value EM.
    _noise_model = "shared"

    _parameter_constraints: dict = {
        **LatentVariableModel._parameter_constraints,
        "n_components": [positive_int()],
        "chunk_size": [positive_int()],
    }

    # --- statistics ---------------------------------------------------------------------------
    # Complete data are never standardized row by row: the model of z = (y - location_) / scale_
    # needs only the statistics of z, n, (m - location_) / scale_ and S / scale_^2, which follow
    # from those of y (n, m, S) that the data gate computed in its one pass over the rows.
    def _data_stats(self, T: torch.Tensor) -> GaussianStats:
        return GaussianStats.of(T, diagonal=not self._fits_from_stats(T), rows=self._block(T))

    def _block(self, T: torch.Tensor) -> int:
        """Rows per block of the statistics: at most ``chunk_size`` (memory O(chunk_size D))."""
        return block_rows(T.shape[1], T.device, self.chunk_size)

    def _fits_from_stats(self, T: torch.Tensor) -> bool:
        """Whether the model of complete rows ``T`` follows from their D x D scatter."""
        return True

    def _z_stats(self, T: torch.Tensor) -> GaussianStats:
        """This rank's statistics of the standardized rows, from those of the raw rows ``T``."""
        stats = GaussianStats.of(T, rows=self._block(T))
        if stats.is_finite():
            return stats.standardized(self._loc, self._scale)
        if bool(torch.isnan(T).any()):
            raise ValueError(
                f"{type(self).__name__}.partial_fit and streamed fits need complete rows (their "
                "sufficient statistics do not exist with missing values); fit() handles NaN by "
                "EM over the observed entries.")
        return GaussianStats.of(self._standardize(T))  # squares beyond float64: standardize first

    def _fit_checked(self, T, stats) -> None:
        if not _has_scatter(stats):  # missing values, or PPCA's thin SVD: fit the rows
            super()._fit_checked(T, stats)
            return
        self._check_data_hyperparameters(T)
        self._fit_to(stats.standardized(self._loc, self._scale))

    def fit(self, Y, y=None):
        """Fit the exact maximum-likelihood model.

        ``Y`` may also be a :class:`numpy.memmap` or the path of an ``.npy`` file: it is then
        streamed in chunks of ``chunk_size`` rows, so memory does not grow with n_samples.
        Under an initialized ``torch.distributed`` process group each rank passes its own rows
        and every rank ends with the model of the union of the shards (the statistics are
        all-reduced).

        Parameters
        ----------
        Y : array-like, torch.Tensor, numpy.memmap or path of an .npy file
            Training data of shape (n_samples, n_features); NaN marks a missing entry (in memory
            only: a streamed fit needs complete rows).
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        object
            The fitted estimator.
        """
        if isinstance(Y, (str, os.PathLike)) or isinstance(Y, np.memmap):
            return self._fit_streaming(Y)
        return super().fit(Y, y)

    def _fit(self, Z: torch.Tensor) -> None:
        """Rows in the model's coordinates: with missing values (or squares beyond float64)."""
        if bool(torch.isnan(Z).any()):
            self._fit_missing(Z)
        else:
            self._fit_to(self._global(GaussianStats.of(Z)))

    def _fit_missing(self, Z: torch.Tensor) -> None:
        """Maximum likelihood of the observed entries by exact EM (see the module docstring)."""
        if is_distributed():
            raise ValueError("Missing values are not supported under torch.distributed; impute "
                             "or drop the rows with NaN, or fit in one process.")
        if not isinstance(self.n_components, int):
            raise ValueError(f"n_components={self.n_components!r} needs complete data; pass an "
                             "integer n_components to fit data with missing values.")
        mask = ~torch.isnan(Z)
        # log p(y_o) = log p(z_o) - |o| log(scale): the Jacobian counts each row's observed entries
        jacobian = -float(mask.sum(1).to(torch.float64).mean()) * math.log(self._scale)
        state, result = EMState(), TrainResult()
        name = type(self).__name__

        def store(W, mean, noise, history, n_iter):
            self._stats = None
            self._set_parameters(W, mean, noise)
            for key, value in self._missing_attributes(W, noise).items():
                setattr(self, key, value)
            self.n_iter_ = n_iter
            # one record per EM iteration, in the data's units (as train_evidence_)
            self.history_ = [history_record(i, i, value + jacobian)
                             for i, value in enumerate(history) if i > 0]
            self.train_evidence_ = float(history[-1]) + jacobian
            self.log_evidence_ = self.train_evidence_ * Z.shape[0]

        def store_last_good():  # after an interruption: the last whole EM iteration
            store(state.W, state.mean, state.noise,
                  [state.start] + [r["train"] for r in result.history], result.n_epochs)

        with self._usable_on_interrupt(store_last_good):
            fit = fit_missing(Z.to(torch.float64), mask, int(self.n_components),
                              noise=self._noise_model, max_iter=self._em_max_iter(),
                              tol=self._em_tol(), min_noise_fraction=self._em_floor(),
                              verbose=self.verbose, callback=self._epoch_callback(jacobian),
                              state=state, result=result, estimator_name=name,
                              desc=f"{name} EM with missing values")
        store(fit.W, fit.mean, fit.noise, fit.history, fit.n_iter)
        self._record_convergence(fit.converged, f"in max_iter={self._em_max_iter()} EM "
                                 "iterations (with missing values)", "max_iter", tol=self._em_tol())

    def _missing_attributes(self, W, noise) -> dict:  # pragma: no cover - abstract
        """The family's fitted attributes of the EM solution: loadings ``W`` (D, K) and noise
        variances ``noise`` (D,), float64."""
        raise NotImplementedError

    def _global(self, stats: GaussianStats) -> GaussianStats:
        """The statistics of all ranks' rows under torch.distributed; ``stats`` otherwise."""
        if not is_distributed():
            return stats
        check_same_features(self.n_features_in_, self._device)
        return stats.all_reduce()

    def _fit_streaming(self, source):
        reader = _ChunkReader(source, self.chunk_size)
        self._reset()
        with self._fitting():
            self._setup(np.empty((0, 0), dtype=reader.dtype))
            stats, first = GaussianStats(0, None, None), True
            for block in reader:
                T, block_stats = self._check_Y(block, reset=first)
                if first:
                    self._check_data_hyperparameters(T)
                    first = False
                if _has_scatter(block_stats) and not is_distributed():  # (else every rank's)
                    stats = stats.merge(block_stats.standardized(self._loc, self._scale))
                else:
                    stats = stats.merge(self._z_stats(T))
            if stats.n < self._min_samples:
                raise ValueError(f"Found {stats.n} sample(s) in {source!r}; need at least "
                                 f"{self._min_samples}.")
            self._fit_to(self._global(stats))
        return self

    def partial_fit(self, Y, y=None):
        """Add a chunk of rows and leave the exact maximum-likelihood model of every row seen.

        The running count, mean and scatter are merged in float64 with Chan et al.'s pairwise
        update (no raw sums of squares), so after any sequence of chunks the model equals
        :meth:`fit` on their concatenation. Under torch.distributed each call merges the chunk
        statistics of all ranks. After :meth:`fit`, ``partial_fit`` continues from the fitted rows.

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
            A chunk of complete rows.
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        object
            The updated estimator.
        """
        def chunk(T, stats, first):
            if not first and self._stats is None:
                raise ValueError(f"This {type(self).__name__} was fitted to data with missing "
                                 "values; partial_fit cannot continue it. Refit with fit().")
            if _has_scatter(stats):  # the first chunk's, every rank's, from the data gate
                stats = stats.standardized(self._loc, self._scale)
            else:  # later chunks (and a first one with NaN, or PPCA's with N < D)
                stats = self._global(self._z_stats(T))
            self._fit_to(stats if first else self._stats.merge(stats))

        return self._partial_fit(Y, chunk, raw=True)

    def _fit_to(self, stats: GaussianStats, spectrum=None) -> None:
        """The exact model of the rows ``stats`` summarize (standardized coordinates);
        ``spectrum`` is the covariance's (eigenvalues, eigenvectors) when already known."""
        self._store_solution(stats, *self._solve(stats, spectrum))

    def _store_solution(self, stats, W, mean, noise, extra) -> None:
        """Set the fitted state from a solution (W, mean, noise) of the rows ``stats`` summarize."""
        # The total log p(Y) follows from the statistics alone: no second pass over the data.
        avg = float(average_log_likelihood(stats.covariance, W, noise)) + self._log_jacobian
        self._stats = stats
        self._set_parameters(W, mean, noise)
        for name, value in extra.items():
            setattr(self, name, value)
        self.train_evidence_ = avg
        self.log_evidence_ = avg * stats.n

    def _solve(self, stats: GaussianStats, spectrum=None):  # pragma: no cover - abstract
        """(W, mean, noise, extra fitted attributes) of the model of ``stats``, in float64."""
        raise NotImplementedError

    def _set_parameters(self, W: torch.Tensor, mean: torch.Tensor, noise: torch.Tensor) -> None:
        """Store (W, mu, Psi) in the model dtype, and their public views in the data's units."""
        self._W = W.to(self._dtype)
        self._mean = mean.to(self._dtype)
        self._noise = noise.to(self._dtype)
        self._likelihood = GaussianLikelihood(noise.shape[0], noise.cpu(), min_noise=0.0).to(
            device=self._device, dtype=self._dtype).requires_grad_(False)
        s = self._scale
        self.n_components_ = W.shape[1]
        self.components_ = (W.T * s).cpu().numpy()
        self.mean_ = self._unstandardize(mean.unsqueeze(0), torch.float64)[0].cpu().numpy()
        self._noise_variances = (noise * s * s).cpu().numpy()

    # --- the exact model ----------------------------------------------------------------------
    def _posterior(self, Z):
        if bool(torch.isnan(Z).any()):
            return missing_posterior(Z, ~torch.isnan(Z), self._W, self._mean, self._noise)
        mean, std = linear_gaussian_posterior(Z, self._mean, self._W, self._noise)
        return mean, std.expand_as(mean)

    def _conditional(self, Z, sample: bool, generator):
        """Z with its missing entries filled from p(z_m | z_o): the mean, or a draw."""
        return masked_conditional(Z, ~torch.isnan(Z), self._mean, self._W, self._noise,
                                  sample=sample, generator=generator)

    def _decode(self, X):
        return X @ self._W.T + self._mean

    def _decoder_sample(self, X, generator):  # the linear decoder is deterministic
        return self._decode(X)

    def _likelihood_module(self):
        return self._likelihood

    _evidence_methods = {"exact": "_exact_evidence"}
    _default_evidence = "exact"

    def _exact_evidence(self, Z, method, n_samples, random_state):
        """The exact log p(z) of each row (of its observed entries); draws are not used."""
        if bool(torch.isnan(Z).any()):
            values = masked_low_rank_gaussian_log_prob(Z, ~torch.isnan(Z), self._mean, self._W,
                                                       self._noise)
        else:
            values = low_rank_gaussian_log_prob(Z, self._mean, self._W, self._noise)
        return EvidenceEstimate(values, torch.zeros_like(values), None, "exact", method)

    @property
    def n_parameters_(self) -> int:
        """Free parameters: W (D K), the mean (D) and the noise (1 for PPCA, D for FA)."""
        D, K = self._W.shape
        return D * K + D + self._n_noise_parameters(D)

    def get_covariance(self) -> np.ndarray:
        """The model covariance C = W W^T + Psi of p(y), in the data's units.

        Returns
        -------
        ndarray of shape (n_features, n_features)
            The covariance.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        W = self._W.to(torch.float64)
        C = (W @ W.T + torch.diag(self._noise.to(torch.float64))) * self._scale ** 2
        return C.cpu().numpy()


def _has_scatter(stats) -> bool:
    """Whether the data gate's ``stats`` hold the D x D scatter the model follows from (not None
    after missing values, not only its diagonal)."""
    return stats is not None and stats.scatter.dim() == 2


class _ChunkReader:
    """Blocks of rows from a numpy.memmap, or from an .npy file read with plain file reads.

    Reading the file (rather than memory-mapping it) keeps the page cache out of the process's
    resident memory, so a 10^7-row file fits in memory independent of N.
    """

    def __init__(self, source, chunk_size):
        self.chunk_size = chunk_size
        if isinstance(source, np.memmap):
            self.array, self.path = source, None
            if source.ndim != 2:
                raise ValueError(f"Expected a 2-D memmap of shape (n_samples, n_features), got "
                                 f"shape {source.shape}.")
            self.shape, self.dtype = source.shape, source.dtype
            return
        path = os.fspath(source)
        if not path.endswith(".npy"):
            raise ValueError(
                f"fit() takes an array, a numpy.memmap or an .npy file path; got {path!r}."
            )
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No .npy file at {path}.")
        self.array, self.path = None, path
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            self.offset = f.tell()
        if len(shape) != 2 or fortran or dtype.hasobject:
            raise ValueError(
                f"{path} must hold a 2-D C-ordered numeric array (n_samples, n_features); it has "
                f"shape {shape}{' in Fortran order' if fortran else ''} and dtype {dtype}."
            )
        self.shape, self.dtype = shape, dtype

    def __iter__(self):
        n, d = self.shape
        if self.array is not None:
            for rows in chunk_rows(n, self.chunk_size):
                yield np.array(self.array[rows])
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            for rows in chunk_rows(n, self.chunk_size):
                m = rows.stop - rows.start
                block = np.fromfile(f, dtype=self.dtype, count=m * d)
                if block.size != m * d:
                    raise ValueError(f"{self.path} is truncated: expected {n} rows of {d}.")
                yield block.reshape(m, d)
