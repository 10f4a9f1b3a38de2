"""Sufficient statistics of a Gaussian (count, mean, scatter), merged stably across chunks and ranks.

The merge is Chan et al.'s pairwise update: for two sets with counts n_a, n_b, means m_a, m_b and
scatters S_a, S_b (sums of outer products about their own mean),

    n = n_a + n_b,   m = m_a + (n_b / n)(m_b - m_a),   S = S_a + S_b + (n_a n_b / n) d d^T,  d = m_b - m_a,

which never forms the raw sums of squares whose difference cancels catastrophically. Everything is
kept in float64.

:meth:`GaussianStats.of` reads the rows once, in blocks small enough to stay in the CPU's cache:
each block is centred on its own mean (a copy of the block only, never of the data), its scatter
added, and the blocks merged by the update above. The result is as accurate as the two-pass
algorithm whatever the offset of the data next to their spread (fitting c Y + b with b = 1e3 c
gives the same statistics to rounding), at the cost of one Gram matrix of the data. A NaN or an
infinity anywhere makes the mean non-finite, so :meth:`GaussianStats.is_finite` is also the
finiteness check of complete data; only when it fails need a caller look at single entries.
"""

from __future__ import annotations

import torch

__all__ = ["GaussianStats", "chunk_rows", "block_rows", "descending_eigh", "location_and_scale"]

DEFAULT_CHUNK = 65536
#: Elements of one block of rows on the CPU (float64: 2 MiB, within a last-level cache), 2,621
#: rows of 100 features: there the blocks' centring, Gram matrices and merges together cost
#: 0.8-0.9x one Gram matrix of the raw data and its eigendecomposition (100,000 x 100, one thread,
#: 2-core EPYC; 1,024- to 4,096-row blocks alike, 65,536-row blocks 1.7x).
CPU_BLOCK_ELEMENTS = 1 << 18
#: Fewest rows of a block: the D x D update of a block of few rows would be bound by memory.
MIN_BLOCK_ROWS = 512


def chunk_rows(n_rows: int, chunk_size: int = DEFAULT_CHUNK):
    for start in range(0, n_rows, chunk_size):
        yield slice(start, min(start + chunk_size, n_rows))


def block_rows(n_features: int, device: torch.device, chunk_size: int = DEFAULT_CHUNK) -> int:
    """Rows per block of :meth:`GaussianStats.of`: cache-sized on the CPU (at most
    ``chunk_size``), ``chunk_size`` on an accelerator (where every block costs kernel launches)."""
    if device.type != "cpu":
        return chunk_size
    return min(chunk_size, max(MIN_BLOCK_ROWS, CPU_BLOCK_ELEMENTS // max(1, n_features)))


class GaussianStats:
    """Count ``n``, ``mean`` (D,) and ``scatter`` (D, D), the sum of (y - mean)(y - mean)^T, in
    float64. The scatter may be given by a root F (r, D) with scatter = F^T F (a thin SVD of the
    centred data when there are fewer rows than features); it is formed only when needed. With
    ``diagonal=True`` in :meth:`of`, ``scatter`` is only its diagonal (D,): the per-feature sums of
    squared deviations, at O(N D) instead of O(N D^2)."""

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
    def of(cls, Y: torch.Tensor, *, diagonal: bool = False, rows: int | None = None
           ) -> "GaussianStats":
        """The statistics of the rows of ``Y`` (N, D), in one pass over blocks of ``rows`` rows
        (default :func:`block_rows`), each centred on its own mean and merged (Chan et al.).

        The blocks are taken relative to the first row, y - y_1: their means then carry rounding
        errors of the spread's size, not the offset's, which matters because a block mean's error
        enters the merged scatter to first order."""
        N, D = Y.shape
        rows = rows or block_rows(D, Y.device)
        shift = Y[0].to(torch.float64) if N else Y.new_zeros(D, dtype=torch.float64)
        mean = torch.zeros(D, dtype=torch.float64, device=Y.device)  # of y - shift
        scatter = torch.zeros((D,) if diagonal else (D, D), dtype=torch.float64, device=Y.device)
        buffer = torch.empty((min(rows, N), D), dtype=torch.float64, device=Y.device)
        ones = torch.ones(min(rows, N), dtype=torch.float64, device=Y.device)
        n = 0
        for block in chunk_rows(N, rows):
            m = block.stop - block.start
            R = torch.sub(Y[block], shift, out=buffer[:m])  # in cache, in float64
            block_mean = torch.mv(R.T, ones[:m]) / m  # (a matrix-vector product beats .sum(0))
            R.sub_(block_mean)
            if diagonal:
                scatter.add_(torch.mv(R.mul_(R).T, ones[:m]))
            else:
                scatter.addmm_(R.T, R)
            d = block_mean - mean
            scatter.add_(_outer(d, diagonal), alpha=n * m / (n + m))
            mean.add_(d, alpha=m / (n + m))
            n += m
        return cls(n, mean + shift, scatter)

    def is_finite(self) -> bool:
        """False when the rows held a NaN or an infinity (or squares beyond float64's range)."""
        return bool(torch.isfinite(self.mean).all() & torch.isfinite(self.scatter).all())

    @property
    def feature_scatter(self) -> torch.Tensor:
        """The per-feature sums of squared deviations (D,): the scatter's diagonal."""
        S = self.scatter
        return S if S.dim() == 1 else torch.diagonal(S)

    def standardized(self, location: torch.Tensor, scale: float) -> "GaussianStats":
        """The statistics of z = (y - location) / scale, from those of y (no pass over rows)."""
        mean = (self.mean - location.to(torch.float64)) / scale
        return GaussianStats(self.n, mean, self.scatter / (scale * scale))

    def merge(self, other: "GaussianStats") -> "GaussianStats":
        if self.n == 0:
            return other
        if other.n == 0:
            return self
        n = self.n + other.n
        d = other.mean - self.mean
        mean = self.mean + d * (other.n / n)
        diagonal = self.scatter.dim() == 1
        scatter = self.scatter + other.scatter + _outer(d, diagonal) * (self.n * other.n / n)
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
        diagonal = self.scatter.dim() == 1
        scatter = all_reduce_sum(self.scatter + _outer(d, diagonal) * self.n)
        return GaussianStats(n, mean, scatter)


def _outer(d: torch.Tensor, diagonal: bool) -> torch.Tensor:
    """d d^T, or its diagonal d * d."""
    return d * d if diagonal else torch.outer(d, d)


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
