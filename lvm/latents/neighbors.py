r"""A neighbour-preservation term on the means of a posterior q(x | y): an encoder's (the VAE,
minibatch form) or free per-row means (the Bayesian GPLVM, :meth:`NeighborGraph.loss`).

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

__all__ = ["NeighborGraph", "NeighborMap", "NearestRows", "device_kneighbors",
           "neighbor_infonce", "neighbor_contrast", "log_sum_cauchy", "NEIGHBOR_SCALE",
           "N_NEGATIVES"]

#: s, the scale of the encoder means the neighbour term sees (see the module docstring).
NEIGHBOR_SCALE = 10.0
#: The full-batch forms (:meth:`NeighborGraph.loss`, :class:`NeighborMap`) contrast each row
#: against a fixed, evenly spaced subset of at most this many rows.
N_NEGATIVES = 1024


def _evenly_spaced(n: int, device) -> torch.Tensor:
    """At most ``N_NEGATIVES`` evenly spaced indices of ``n`` rows (the negatives)."""
    step = -(-n // N_NEGATIVES)  # ceil
    return torch.arange(0, n, step, device=device)


class NeighborGraph:
    """The ``n_neighbors`` nearest rows of every row of ``Z`` (itself excluded), exact.

    Missing entries (NaN) count as the feature's mean, zero in standardized coordinates (as the
    encoder sees them). Built once per fit by :class:`NearestRows` (scikit-learn's search on the
    host; on a GPU, on the device); the index lives on ``Z``'s device, so sampling costs no host
    round trip.

    Parameters
    ----------
    Z : torch.Tensor of shape (n, D)
        The rows (kept by reference: :meth:`sample` returns rows of it).
    n_neighbors : int
        k; fewer when ``Z`` has fewer other rows.
    """

    def __init__(self, Z: torch.Tensor, n_neighbors: int):
        self.rows = Z
        n = Z.shape[0]
        k = min(int(n_neighbors), n - 1)
        if k < 1:
            self.index = None
            return
        self.index = NearestRows(Z).kneighbors(None, k)
        self.negatives = _evenly_spaced(n, Z.device)

    def loss(self, mu: torch.Tensor, rows: torch.Tensor | None = None,
             scale: float = NEIGHBOR_SCALE) -> torch.Tensor:
        """The deterministic, full-batch form of the term for free means (one per row of ``Z``):
        :func:`neighbor_contrast` of each of ``rows`` (all by default) with its k neighbours as
        positives and a fixed, evenly spaced subset of at most ``N_NEGATIVES`` rows as negatives,
        shape (len(rows),). Zeros when ``Z`` has a single row.

        Parameters
        ----------
        mu : torch.Tensor of shape (n, K)
            The means of every row of ``Z``.
        rows : torch.Tensor of int or None
            The rows whose terms are wanted.
        scale : float
            s.
        """
        if rows is None:
            rows = torch.arange(mu.shape[0], device=mu.device)
        if self.index is None:
            return mu.new_zeros(rows.shape[0])
        m = scale * mu
        return neighbor_contrast(m[rows], m[self.index[rows]], m[self.negatives])

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
    return torch.log1p((a - b).square().sum(1)) + log_sum_cauchy(a, b)


def neighbor_contrast(m: torch.Tensor, positives: torch.Tensor,
                      negatives: torch.Tensor) -> torch.Tensor:
    r"""The contrastive loss of each row against all its neighbours and a fixed set of negatives,
    :math:`-\frac1k \sum_j \log q(m_i, p_{ij}) + \log \sum_r q(m_i, n_r)`, shape (n,).

    Parameters
    ----------
    m : torch.Tensor of shape (n, K)
        The rows' means, scaled by s already.
    positives : torch.Tensor of shape (n, k, K)
        Each row's k neighbours' means, scaled.
    negatives : torch.Tensor of shape (r, K)
        The negatives' means, scaled.
    """
    attraction = -torch.log1p((m.unsqueeze(1) - positives).square().sum(-1)).mean(1)
    return log_sum_cauchy(m, negatives) - attraction


class _LogSumCauchy(torch.autograd.Function):
    """:func:`log_sum_cauchy` with its gradient in closed form (see there)."""

    @staticmethod
    def forward(ctx, a, b):
        # w = 1 / (1 + d2) by the inner products, in place: the (n, r) matrix is the whole cost.
        w = torch.addmm(b.square().sum(1).unsqueeze(0), a, b.T, alpha=-2.0)
        w = w.add_(a.square().sum(1, keepdim=True)).clamp_min_(0.0).add_(1.0).reciprocal_()
        total = w.sum(1)
        ctx.save_for_backward(a, b, w, total)
        return torch.log(total)

    @staticmethod
    def backward(ctx, grad):
        a, b, w, total = ctx.saved_tensors
        # dL_i / d d2_il = -w_il^2 / S_i; G_il = that times the upstream gradient of row i.
        G = w.square().mul_((-grad / total).unsqueeze(1))
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = 2.0 * (a * G.sum(1, keepdim=True) - G @ b)
        if ctx.needs_input_grad[1]:
            grad_b = 2.0 * (b * G.sum(0).unsqueeze(1) - G.T @ a)
        return grad_a, grad_b


def log_sum_cauchy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""The log of each row's summed Cauchy similarity to a set of rows, shape (n,):

    .. math::
        \ell_i = \log \sum_l (1 + \lVert a_i - b_l \rVert^2)^{-1},
        \qquad
        \frac{\partial \ell_i}{\partial a_i} = -\frac{2}{S_i} \sum_l w_{il}^2 (a_i - b_l),

    with :math:`w_{il} = (1 + \lVert a_i - b_l \rVert^2)^{-1}` and :math:`S_i = \sum_l w_{il}`
    (and the mirror image for :math:`b_l`). The contrastive terms' repulsion, computed as the log
    of a sum of reciprocals (:math:`w \le 1` and :math:`w \ge 1 / (1 + d^2_{max})`: no overflow,
    no underflow) with the squared distances from the inner products (smooth at 0, duplicate
    rows) and the gradient in closed form: the (n, r) matrix, the whole cost, is made in place
    and passed over about ten times in all, where autograd's graph of the same expression takes
    three times as many passes (on the CPU at n = r = 512, K = 2: about 3x faster forward and
    backward). Gradients are checked against finite differences in ``tests/vae/test_neighbors.py``.

    Parameters
    ----------
    a : torch.Tensor of shape (n, K)
    b : torch.Tensor of shape (r, K)
    """
    return _LogSumCauchy.apply(a, b)


class NeighborMap:
    r"""The map of a set of reference rows (the training rows' encoder means), against which the
    means of any rows are refined by the neighbour term.

    For a row y with encoder mean :math:`\mu(y)`, its k nearest reference rows
    :math:`N_k(y)` (in the data) and the reference rows' means :math:`x_r`, the refined mean is
    :math:`\mu(y)` followed by ``steps`` Adam steps on

    .. math::
        L(m) = -\frac1k \sum_{j \in N_k(y)} \log q(m, x_j) + \log \sum_{r \in R'} q(m, x_r),

    the contrastive loss of training with all k neighbours as positives and, at each step, a
    subset R' of ``n_negatives`` reference rows as negatives, drawn anew per step from a fixed
    seed (UMAP's and openTSNE's ``transform`` place a new point against the fitted map the same
    way). Each row's steps depend on that row alone (the loss is summed, Adam is elementwise, the
    draws are the same for every row), so the result is deterministic and does not depend on the
    other rows passed with it. :meth:`loss` is the deterministic form (a fixed, evenly spaced
    subset of at most ``N_NEGATIVES`` rows), which the GPLVM's q(x*) fit uses.

    Parameters
    ----------
    Z : torch.Tensor of shape (R, D)
        The reference rows, standardized (NaN counts as 0, the feature's mean).
    X : torch.Tensor of shape (R, K)
        Their means.
    n_neighbors : int
    scale : float
        s (see the module docstring).
    """

    #: Adam's step size on the means, in units of 1 / s, and the negatives drawn per step. On
    #: USPS (lvm embed's model fitted once, 200 steps; test trustworthiness@5 / 1-NN / 5-NN,
    #: seconds to refine all 9298 rows on a busy machine): 1024 fixed negatives at 0.1 gave
    #: 0.950 / 0.882 / 0.906 (13.1 s), 4096 fixed 0.957 (62.9 s); drawn anew each step: 1024 at
    #: 0.1 0.956 (17.1 s), 512 at 0.1 0.955 (10.6 s), 512 at 0.2 0.958 / 0.890 / 0.910 (10.4 s),
    #: 1024 at 0.2 0.958 (16.1 s), 256 at 0.2 0.956 (6.7 s). Fewer negatives and more steps do
    #: better for the same time (a model fitted for 100 epochs, step size 0.2; trustworthiness):
    #: 200 steps x 512 negatives 0.956, 400 x 512 0.959, 400 x 128 0.957, 800 x 128 0.959,
    #: 800 x 64 0.962, 800 x 32 0.961, 1600 x 32 0.962; at 800 x 64, step size 0.1 0.959.
    learning_rate = 0.2
    n_negatives = 64
    #: Rows refined together (memory: this many x ``n_negatives`` similarities, 2 MB in float32;
    #: on USPS's 7291 training rows, 800 steps took 4.1-4.5 s in chunks of 8192 against 6.6-7.7 s
    #: in chunks of 1024, the steps' fixed costs paid once instead of eight times).
    chunk_rows = 8192
    #: tau of :meth:`layout`, the tether to the encoder means (in the scaled map's units). On
    #: USPS (lvm embed's model fitted for 50 epochs, 400 layout steps, then 800 refinement
    #: steps; test trustworthiness@5 / 5-NN / held-out log p(y) per point): no layout 0.956 /
    #: 0.904 / 35.7 (60 epochs); tau 0 0.963 / 0.917 / 5.1 (60 epochs: the map drifts from where
    #: the decoder reconstructs the rows); 0.003 0.965 / 0.916 / 17.7 (60 epochs); 0.03 0.964 /
    #: 0.921 / 31.3; 0.1 0.961 / 0.912 / 33.4; 0.3 0.958 / 0.907 / 35.2 (60 epochs).
    tether = 0.03

    def __init__(self, Z: torch.Tensor, X: torch.Tensor, n_neighbors: int,
                 scale: float = NEIGHBOR_SCALE):
        self.k = max(1, min(int(n_neighbors), Z.shape[0]))
        self.scale = float(scale)
        self._search = NearestRows(Z)
        self._set_map(X.detach() * self.scale)

    def _set_map(self, X: torch.Tensor) -> None:
        self.X = X
        self.negatives = X[_evenly_spaced(X.shape[0], X.device)]

    def layout(self, steps: int, graph: NeighborGraph | None = None) -> None:
        r"""Lay the reference map out as a whole before rows are refined against it.

        The reference means :math:`x_r` (the encoder's) move together by ``steps`` Adam steps
        on the summed contrastive loss of every reference row, its k nearest other reference
        rows (in the data) as positives that move with it, ``n_negatives`` reference rows drawn
        anew per step (from a fixed seed) as negatives, plus a tether to where the encoder put
        them, :math:`\tau \lVert m_r - x_r \rVert^2` (:attr:`tether`, in the scaled map's units):

        .. math::
            \sum_r \Big[-\frac1k \sum_{j \in N_k(r)} \log q(m_r, m_j)
            + \log \sum_{l \in R'} q(m_r, m_l) + \tau \lVert m_r - x_r \rVert^2\Big].

        It is the layout step of t-SNE and UMAP started at the encoder's map; the tether keeps
        the map near where the decoder reconstructs each row, so that q stays a good proposal
        and the evidence an honest, tight estimate. Deterministic: it depends on the reference
        rows and their means alone.

        Parameters
        ----------
        steps : int
            Adam steps (0: the encoder's map, unchanged).
        graph : NeighborGraph or None
            The k-nearest-neighbour graph of these same reference rows, when one was built
            already (the training rows' of the neighbour term), so it is not searched again.
        """
        R = self.X.shape[0]
        if steps < 1 or R < 2:
            return
        k = min(self.k, R - 1)
        if graph is not None and graph.index is not None and graph.index.shape == (R, k):
            index = graph.index
        else:
            index = self._search.kneighbors(None, k)
        # index_select, whose gradient is index_add_: advanced indexing's (index_put_ with
        # accumulation) costs several times more on the CPU.
        index = index.reshape(-1).to(self.X.device)
        start = self.X
        m = start.clone().requires_grad_(True)
        draws = self._negative_draws(int(steps), start.device)
        opt = torch.optim.Adam([m], lr=self.learning_rate)
        with torch.enable_grad():
            for step in range(int(steps)):
                negatives = m.detach() if draws is None else m.detach()[draws[step]]
                positives = m.index_select(0, index).view(R, k, -1)
                loss = (neighbor_contrast(m, positives, negatives).sum()
                        + self.tether * (m - start).square().sum())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self._set_map(m.detach())

    def neighbors(self, z: torch.Tensor) -> torch.Tensor:
        """The indices of the k nearest reference rows of each of the rows ``z``, (n, k)."""
        return self._search.kneighbors(z, self.k).to(z.device)

    def loss(self, mu: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """L of each row with means ``mu`` (unscaled) and reference neighbours ``index``
        (:meth:`neighbors`), shape (n,)."""
        return neighbor_contrast(mu * self.scale, self.X.to(mu.dtype)[index],
                                 self.negatives.to(mu.dtype))

    def _negative_draws(self, steps: int, device):
        """The negatives of each refinement step: ``n_negatives`` reference rows drawn anew per
        step from a fixed seed, the same sequence for every chunk of rows (None: all of them,
        when there are no more). Over the steps a row is contrasted with the whole map, at the
        cost of a subset per step."""
        R = self.X.shape[0]
        if R <= self.n_negatives:
            return None
        gen = torch.Generator().manual_seed(0)
        return torch.randint(0, R, (steps, self.n_negatives), generator=gen).to(device)

    def refine(self, z: torch.Tensor, mu: torch.Tensor, steps: int) -> torch.Tensor:
        """The refined means of the rows ``z`` (shape like ``mu``)."""
        if steps < 1 or z.shape[0] == 0:
            return mu
        index = self.neighbors(z).to(mu.device)
        out = []
        for start in range(0, z.shape[0], self.chunk_rows):
            m = (mu[start:start + self.chunk_rows].detach() * self.scale).clone()
            m.requires_grad_(True)
            positives = self.X.to(mu.dtype)[index[start:start + self.chunk_rows]]  # (n, k, K)
            reference = self.X.to(mu.dtype)
            draws = self._negative_draws(int(steps), mu.device)
            opt = torch.optim.Adam([m], lr=self.learning_rate)
            with torch.enable_grad():
                for step in range(int(steps)):
                    negatives = reference if draws is None else reference[draws[step]]
                    loss = neighbor_contrast(m, positives, negatives).sum()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            out.append(m.detach() / self.scale)
        return torch.cat(out).to(mu.dtype)


class NearestRows:
    """Exact k-nearest-neighbour search (Euclidean) among the rows of ``Z``, NaN counted as 0.

    On the host, scikit-learn's :class:`~sklearn.neighbors.NearestNeighbors` (float64). On a
    GPU, the same search on the device (:func:`device_kneighbors`: squared distances by a matrix
    product in float64, a chunk of query rows at a time, and ``topk``), so the data never go to
    the host: on 90,000 x 100 rows, scikit-learn's search of every row's 15 neighbours took about
    45 s of a GPU fit's 57 s (benchmarks/gpu.py, an H200 machine's 16 cores). Both return each
    row's neighbours nearest first, on ``Z``'s device.

    Parameters
    ----------
    Z : torch.Tensor of shape (R, D)
        The reference rows.
    """

    def __init__(self, Z: torch.Tensor):
        self.device = Z.device
        if Z.device.type == "cuda":
            self._rows, self._search = _zeroed(Z).double(), None
        else:
            from sklearn.neighbors import NearestNeighbors

            self._rows, self._search = None, NearestNeighbors().fit(_host(Z))

    def kneighbors(self, z: torch.Tensor | None, k: int) -> torch.Tensor:
        """The indices (n, k) of the ``k`` nearest reference rows of each row of ``z``; of each
        reference row, itself excluded, when ``z`` is None."""
        if self._search is None:
            queries = None if z is None else _zeroed(z).to(self.device, torch.float64)
            return device_kneighbors(self._rows, k, queries)
        index = self._search.kneighbors(None if z is None else _host(z), n_neighbors=k,
                                        return_distance=False)
        return torch.as_tensor(np.ascontiguousarray(index), device=self.device)


def device_kneighbors(R: torch.Tensor, k: int, queries: torch.Tensor | None = None,
                      max_entries: int = 2**27) -> torch.Tensor:
    r"""The indices (n, k) of the ``k`` nearest rows of ``R`` to each row of ``queries`` (of each
    row of ``R``, itself excluded, when None), nearest first, computed on ``R``'s device.

    Squared distances :math:`\lVert q\rVert^2 - 2 q^\top r + \lVert r\rVert^2` (the expansion
    scikit-learn's search uses too), for chunks of query rows of at most ``max_entries``
    distances (1 GiB in float64), then ``topk``.
    """
    own = queries is None
    Q = R if own else queries
    r2 = R.square().sum(1)
    chunk = max(1, max_entries // max(1, R.shape[0]))
    out = []
    for start in range(0, Q.shape[0], chunk):
        q = Q[start:start + chunk]
        q2 = r2[start:start + chunk].unsqueeze(1) if own else q.square().sum(1, keepdim=True)
        d = torch.addmm(r2, q, R.T, alpha=-2).add_(q2)
        if own:
            rows = torch.arange(q.shape[0], device=R.device)
            d[rows, rows + start] = float("inf")
        out.append(d.topk(k, dim=1, largest=False).indices)
    return torch.cat(out) if out else torch.empty(0, k, dtype=torch.long, device=R.device)


def _zeroed(Z: torch.Tensor) -> torch.Tensor:
    """``Z`` detached, NaN (a missing entry, at the feature's mean) as 0."""
    return torch.nan_to_num(Z.detach(), nan=0.0)


def _host(Z: torch.Tensor) -> np.ndarray:
    """Rows for scikit-learn's neighbour search: on the host, float64, NaN as 0."""
    return _zeroed(Z).to("cpu", torch.float64).numpy()
