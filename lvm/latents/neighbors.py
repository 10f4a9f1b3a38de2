r"""A neighbour-preservation term on the means of an amortized posterior q(x | y).

The ELBO, and the importance-weighted estimate that uses q as its proposal, bound log p(y) for
*any* q(x | y). So an encoder may be trained with the ELBO plus a term that makes its means keep
the data's neighbourhoods, as a 2-D map for the eye must, and every number reported stays an
honest bound (or estimate) of the decoder's normalized model: the term moves q, never p.

The term is t-SNE's, in its contrastive form (InfoNCE with a Cauchy kernel; Damrich et al. 2023,
which shows that it gives t-SNE-like maps, and parametric ones from an encoder). For a minibatch
B of training rows, each row i draws one of its k nearest training rows j(i) (Euclidean, in the
model's standardized coordinates; a :class:`NeighborGraph`), and with the similarity
:math:`q(a, b) = (1 + s^2 \lVert a - b \rVert^2)^{-1}` of encoder means,

.. math::
    L_i = -\log \frac{q(\mu_i, \mu_{j(i)})}{\sum_{l \in B} q(\mu_i, \mu_{j(l)})},

the other rows' neighbours in the batch serving as the negatives. ``s`` sets the map's scale
against the prior's: the KL term holds the means near unit scale, and at s = 10 the Cauchy
kernel sees clusters a few prior standard deviations apart as far.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["NeighborGraph", "neighbor_infonce", "NEIGHBOR_SCALE"]

#: s, the scale of the encoder means the neighbour term sees (see the module docstring).
NEIGHBOR_SCALE = 10.0


class NeighborGraph:
    """The ``n_neighbors`` nearest rows of every row of ``Z`` (itself excluded), exact.

    Missing entries (NaN) count as the feature's mean, zero in standardized coordinates (as the
    encoder sees them). Built once per fit, with scikit-learn's
    :class:`~sklearn.neighbors.NearestNeighbors` on the host; the index then lives on ``Z``'s
    device, so sampling costs no host round trip.

    Parameters
    ----------
    Z : torch.Tensor of shape (n, D)
        The rows (kept by reference: :meth:`sample` returns rows of it).
    n_neighbors : int
        k; fewer when ``Z`` has fewer other rows.
    """

    def __init__(self, Z: torch.Tensor, n_neighbors: int):
        from sklearn.neighbors import NearestNeighbors

        self.rows = Z
        n = Z.shape[0]
        k = min(int(n_neighbors), n - 1)
        if k < 1:
            self.index = None
            return
        A = torch.nan_to_num(Z.detach(), nan=0.0).to("cpu", torch.float64).numpy()
        index = NearestNeighbors(n_neighbors=k).fit(A).kneighbors(return_distance=False)
        self.index = torch.as_tensor(np.ascontiguousarray(index), device=Z.device)

    def sample(self, rows: torch.Tensor, generator) -> torch.Tensor | None:
        """One neighbour of each of ``rows`` (indices into ``Z``), uniformly among its k; the
        neighbours' rows of ``Z``, shape (len(rows), D). None when ``Z`` has a single row."""
        if self.index is None:
            return None
        k = self.index.shape[1]
        pick = torch.randint(0, k, (rows.shape[0],), generator=generator, device=rows.device)
        return self.rows[self.index[rows, pick]]


def neighbor_infonce(mu: torch.Tensor, mu_neighbor: torch.Tensor,
                     scale: float = NEIGHBOR_SCALE) -> torch.Tensor:
    """The contrastive neighbour loss L_i of each row (see the module docstring), shape (B,).

    Parameters
    ----------
    mu : torch.Tensor of shape (B, K)
        Encoder means of the batch rows.
    mu_neighbor : torch.Tensor of shape (B, K)
        Encoder means of one neighbour of each (row i's positive; the others' its negatives).
    scale : float
        s.
    """
    a, b = scale * mu, scale * mu_neighbor
    # Squared distances (B, B), the diagonal the positives; smooth at 0 (duplicate rows), unlike
    # the gradient of cdist's square root.
    d2 = (a.square().sum(1, keepdim=True) + b.square().sum(1) - 2.0 * a @ b.T).clamp_min(0.0)
    logits = -torch.log1p(d2)
    return -(logits.diagonal() - torch.logsumexp(logits, 1))
