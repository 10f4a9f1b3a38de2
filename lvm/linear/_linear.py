"""What PPCA and Factor Analysis share: the linear-Gaussian model y = W x + mu + e, e ~ N(0, Psi).

Everything here is exact: the evidence, the posterior p(x | y) and the samples follow from
(W, mu, Psi) in closed form (see :mod:`lvm.evidence.gaussian`).
"""

from __future__ import annotations

import numbers
import os

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from .._base import LatentVariableModel
from .._distributed import check_same_features, is_distributed
from ..evidence import linear_gaussian_posterior, low_rank_gaussian_log_prob
from .._stats import GaussianStats, chunk_rows


class LinearGaussianModel(LatentVariableModel):
    """Shared base of :class:`PPCA` and :class:`FactorAnalysis` (not public)."""

    evidence_kind = "exact"

    _parameter_constraints: dict = {
        **LatentVariableModel._parameter_constraints,
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    # --- statistics ---------------------------------------------------------------------------
    def _stats_of(self, Y: torch.Tensor) -> GaussianStats:
        stats = GaussianStats(0, None, None)
        for rows in chunk_rows(Y.shape[0], self.chunk_size):
            stats = stats.merge(GaussianStats.of(Y[rows]))
        return stats

    def fit(self, Y, y=None):
        """Fit the exact maximum-likelihood model.

        ``Y`` may also be a :class:`numpy.memmap` or the path of an ``.npy`` file: it is then
        streamed in chunks of ``chunk_size`` rows, so memory does not grow with n_samples.
        Under an initialized ``torch.distributed`` process group each rank passes its own rows
        and every rank ends with the model of the union of the shards (the statistics are
        all-reduced).
        """
        if isinstance(Y, (str, os.PathLike)) or isinstance(Y, np.memmap):
            return self._fit_streaming(Y)
        return super().fit(Y, y)

    def _fit(self, Y: torch.Tensor) -> None:
        self._fit_to(self._global(self._stats_of(Y)))

    def _global(self, stats: GaussianStats) -> GaussianStats:
        """The statistics of all ranks' rows under torch.distributed; ``stats`` otherwise."""
        if not is_distributed():
            return stats
        check_same_features(self.n_features_in_, self._device)
        return stats.all_reduce()

    def _fit_streaming(self, source):
        reader = _ChunkReader(source, self.chunk_size)
        self._setup(np.empty((0, 0), dtype=reader.dtype))
        stats, first = GaussianStats(0, None, None), True
        for block in reader:
            chunk = self._validate_Y(block, reset=first)
            if first:
                self._check_data_hyperparameters(chunk)
                first = False
            stats = stats.merge(GaussianStats.of(chunk))
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
        statistics of all ranks.
        """
        first = not hasattr(self, "_stats")
        Yt = self._validate_chunk(Y, first=first)
        chunk = self._global(self._stats_of(Yt))
        self._fit_to(chunk if first else self._stats.merge(chunk))
        return self

    def _fit_to(self, stats: GaussianStats) -> None:
        """The exact model of the rows ``stats`` summarize, and their total log evidence."""
        self._stats = stats
        self._fit_stats(stats)
        # The total log p(Y) follows from the statistics alone: no second pass over the data.
        avg = self._average_log_likelihood(stats, self._W.to(torch.float64),
                                           self._noise.to(torch.float64))
        self.log_evidence_ = float(avg) * stats.n

    def _fit_stats(self, stats: GaussianStats) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_parameters(self, W: torch.Tensor, mean: torch.Tensor, noise: torch.Tensor) -> None:
        """Store (W, mu, Psi) in the model dtype, and their public numpy views."""
        self._W = W.to(self._dtype)
        self._mean = mean.to(self._dtype)
        self._noise = noise.to(self._dtype)
        self.n_components_ = W.shape[1]
        self.components_ = self._W.T.cpu().numpy()
        self.mean_ = self._mean.cpu().numpy()

    def _average_log_likelihood(self, stats: GaussianStats, W, noise) -> torch.Tensor:
        """Mean log p(y) over the data summarized by ``stats`` (float64), from (W, Psi) alone.

        -1/2 [D log 2 pi + log det C + tr(C^{-1} S)], S the ML covariance, by Woodbury.
        """
        D = W.shape[0]
        S = stats.covariance
        Wp = W / noise.unsqueeze(-1)
        M = W.T @ Wp
        M.diagonal().add_(1.0)
        L = torch.linalg.cholesky(M)
        SWp = S @ Wp
        A = torch.linalg.solve_triangular(L, Wp.T @ SWp, upper=False)
        A = torch.linalg.solve_triangular(L, A.T, upper=False)
        trace = (torch.diagonal(S) / noise).sum() - torch.diagonal(A).sum()
        logdet = torch.log(noise).sum() + 2.0 * torch.log(torch.diagonal(L)).sum()
        return -0.5 * (D * np.log(2 * np.pi) + logdet + trace)

    # --- the exact model ----------------------------------------------------------------------
    def _posterior(self, Y):
        mean, std = linear_gaussian_posterior(Y, self._mean, self._W, self._noise)
        return mean, std.expand_as(mean)

    def _decode(self, X):
        return X @ self._W.T + self._mean

    def _log_evidence(self, Y):
        return low_rank_gaussian_log_prob(Y, self._mean, self._W, self._noise)

    def _sample(self, n, generator):
        K, D = self.n_components_, self._W.shape[0]
        x = torch.randn(n, K, generator=generator, device=self._device, dtype=self._dtype)
        e = torch.randn(n, D, generator=generator, device=self._device, dtype=self._dtype)
        return self._decode(x) + e * torch.sqrt(self._noise)

    @property
    def n_parameters_(self) -> int:
        """Free parameters: W (D K), the mean (D) and the noise (1 for PPCA, D for FA)."""
        D, K = self._W.shape
        return D * K + D + (1 if bool((self._noise == self._noise[0]).all()) else D)

    def get_covariance(self) -> np.ndarray:
        """The model covariance C = W W^T + Psi of p(y), shape (n_features, n_features)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        C = self._W @ self._W.T + torch.diag(self._noise)
        return C.cpu().numpy()


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
