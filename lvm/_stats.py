"""Sufficient statistics of a Gaussian (count, mean, scatter), merged stably across chunks and ranks.

The merge is Chan et al.'s pairwise update: for two sets with counts n_a, n_b, means m_a, m_b and
scatters S_a, S_b (sums of outer products about their own mean),

    n = n_a + n_b,   m = m_a + (n_b / n)(m_b - m_a),   S = S_a + S_b + (n_a n_b / n) d d^T,  d = m_b - m_a,

which never forms the raw sums of squares whose difference cancels catastrophically. Everything is
kept in float64.
"""

from __future__ import annotations

import torch

__all__ = ["GaussianStats", "chunk_rows", "descending_eigh", "location_and_scale"]

DEFAULT_CHUNK = 65536


def chunk_rows(n_rows: int, chunk_size: int = DEFAULT_CHUNK):
    for start in range(0, n_rows, chunk_size):
        yield slice(start, min(start + chunk_size, n_rows))


class GaussianStats:
    """Count ``n``, ``mean`` (D,) and ``scatter`` (D, D), the sum of (y - mean)(y - mean)^T, in
    float64. The scatter may be given by a root F (r, D) with scatter = F^T F (a thin SVD of the
    centred data when there are fewer rows than features); it is formed only when needed."""

    def __init__(self, n: int, mean, scatter=None, root=None):
        self.n = n
        self.mean = mean
        self._scatter = scatter
        self._root = root

    @property
    def scatter(self) -> torch.Tensor:
        if self._scatter is None and self._root is not None:
            self._scatter = self._root.T @ self._root
        return self._scatter

    @classmethod
    def of(cls, Y: torch.Tensor) -> "GaussianStats":
        Y = Y.to(torch.float64)
        mean = Y.mean(0)
        R = Y - mean
        return cls(Y.shape[0], mean, R.T @ R)

    def merge(self, other: "GaussianStats") -> "GaussianStats":
        if self.n == 0:
            return other
        if other.n == 0:
            return self
        n = self.n + other.n
        d = other.mean - self.mean
        mean = self.mean + d * (other.n / n)
        scatter = self.scatter + other.scatter + torch.outer(d, d) * (self.n * other.n / n)
        return GaussianStats(n, mean, scatter)

    @property
    def covariance(self) -> torch.Tensor:
        """Maximum-likelihood covariance, scatter / n."""
        return self.scatter / self.n

    def all_reduce(self) -> "GaussianStats":
        """The statistics of the union of every rank's rows (torch.distributed, two all-reduces)."""
        from ._distributed import all_reduce_sum

        dev = self.mean.device
        nm = torch.cat([torch.tensor([float(self.n)], dtype=torch.float64, device=dev),
                        self.mean * self.n])
        nm = all_reduce_sum(nm)
        n = int(round(float(nm[0])))
        mean = nm[1:] / n
        d = self.mean - mean
        scatter = all_reduce_sum(self.scatter + torch.outer(d, d) * self.n)
        return GaussianStats(n, mean, scatter)


def descending_eigh(covariance: torch.Tensor):
    """Eigenvalues (descending, clamped at 0) and eigenvectors (columns, same order) of a
    symmetric covariance: the principal axes every family's PCA start uses."""
    eigvals, eigvecs = torch.linalg.eigh(covariance)
    return eigvals.flip(0).clamp_min(0.0), eigvecs.flip(1)


def location_and_scale(Y: torch.Tensor):
    """Per-feature mean and one scale, the root mean per-feature variance (1 for constant data):
    the affine map lvm standardizes with."""
    mean = Y.mean(0)
    scale = Y.var(0, correction=0).mean().sqrt() if Y.shape[0] > 1 else Y.new_ones(())
    return mean, torch.where(scale > 0, scale, torch.ones_like(scale))
