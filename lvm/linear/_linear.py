"""What PPCA and Factor Analysis share: the linear-Gaussian model y = W x + mu + e, e ~ N(0, Psi).

Everything here is exact: the evidence, the posterior p(x | y) and the samples follow from
(W, mu, Psi) in closed form (see :mod:`lvm.evidence.gaussian`).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .._base import LatentVariableModel
from ..evidence import linear_gaussian_posterior, low_rank_gaussian_log_prob
from ._stats import GaussianStats, chunk_rows


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

    def _fit(self, Y: torch.Tensor) -> None:
        stats = self._stats_of(Y)
        self._fit_stats(stats)
        self._set_log_evidence(stats)

    def _set_log_evidence(self, stats: GaussianStats) -> None:
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
