r"""The fitted q(x_n) of training rows, kept with the rows so that rows can be looked up.

A family with free per-row posteriors (the Bayesian GPLVM) learns q(x_n) for its training rows
only. :class:`FrozenPosteriors` keeps them, block by block (one block per ``fit``, one per
``partial_fit`` chunk), so that a row passed again to ``transform`` or ``score_samples`` is served
its own fitted q(x_n), and a new row starts the fit of its q(x*) from its nearest training row's.

A row *is* a kept training row when it misses the same entries and every observed entry is
within ``tolerance`` of it, in the model's standardized coordinates (where the data's scale is
1): a training row that went through another dtype or a copy on its way back is still found,
where a bit-for-bit test missed it.
"""

from __future__ import annotations

import torch

__all__ = ["FrozenPosteriors"]


class FrozenPosteriors:
    """The fitted q(x_n) = N(mu_n, diag var_n) of training rows, with the rows for lookup.

    Parameters
    ----------
    capacity : int, default=20000
        Training rows kept for lookup (the first ones; a row beyond them is treated as new).
        The posteriors of every row are kept (:attr:`mean`, :attr:`var`).
    tolerance : float, default=1e-6
        A row equals a kept row when every observed entry differs by at most this much (in the
        standardized coordinates, so relative to the data's scale) and they miss the same
        entries.

    Examples
    --------
    >>> import torch
    >>> from lvm.latents import FrozenPosteriors
    >>> rows = torch.tensor([[0.0, 1.0], [2.0, -1.0]], dtype=torch.float64)
    >>> frozen = FrozenPosteriors()
    >>> frozen.extend(0, rows, torch.tensor([[0.5], [-0.5]]), torch.tensor([[0.1], [0.2]]))
    >>> mu, var, found = frozen.lookup(torch.tensor([[2.0, -1.0], [0.1, 0.9]]))
    >>> mu.flatten().tolist(), found.tolist()  # the second row is new: its nearest row's q(x)
    ([-0.5, 0.5], [True, False])
    """

    def __init__(self, capacity: int = 20000, tolerance: float = 1e-6):
        self.capacity = int(capacity)
        self.tolerance = float(tolerance)
        self.reset()

    def reset(self) -> None:
        """Forget every block (a new fit)."""
        self._blocks: dict = {}
        self._joined = None

    def extend(self, block, rows: torch.Tensor, mu: torch.Tensor, var: torch.Tensor) -> None:
        """Keep the q(x_n) of the training rows of ``block``, replacing those it had.

        Parameters
        ----------
        block : hashable
            The block's key (e.g. the number of the ``partial_fit`` chunk); blocks stay in the
            order they were first added.
        rows : torch.Tensor of shape (n, D)
            The training rows, in the model's coordinates (NaN where missing).
        mu, var : torch.Tensor of shape (n, K)
            The means and variances of their q(x_n).
        """
        if not rows.shape[0] == mu.shape[0] == var.shape[0]:
            raise ValueError(f"rows, mu and var must have one entry per row; got "
                             f"{rows.shape[0]}, {mu.shape[0]} and {var.shape[0]}.")
        kept = sum(b[0].shape[0] for key, b in self._blocks.items() if key != block)
        room = max(0, self.capacity - kept)  # the rows for lookup: the first ``capacity``
        self._blocks[block] = (rows[:room].detach().clone(), mu.detach(), var.detach())
        self._joined = None

    def _join(self):
        if self._joined is None:
            blocks = list(self._blocks.values())
            mean = torch.cat([b[1] for b in blocks])
            var = torch.cat([b[2] for b in blocks])
            rows = torch.cat([b[0] for b in blocks])
            self._joined = (rows, mean, var)
        return self._joined

    @property
    def n_rows(self) -> int:
        """The training rows whose q(x_n) are kept."""
        return sum(b[1].shape[0] for b in self._blocks.values())

    @property
    def rows(self) -> torch.Tensor:
        """The rows kept for lookup (at most ``capacity``), shape (n, D)."""
        return self._join()[0]

    @property
    def mean(self) -> torch.Tensor:
        """The means of every kept q(x_n), in block order, shape (n_rows, K)."""
        return self._join()[1]

    @property
    def var(self) -> torch.Tensor:
        """The variances of every kept q(x_n), in block order, shape (n_rows, K)."""
        return self._join()[2]

    def lookup(self, y: torch.Tensor):
        """The kept q(x) of each row's nearest training row, and whether it is that row.

        Nearest in data space over the row's observed entries (the kept rows' missing entries
        count as the mean, 0).

        Parameters
        ----------
        y : torch.Tensor of shape (n, D)
            Rows in the model's coordinates (NaN where missing).

        Returns
        -------
        mu, var : torch.Tensor of shape (n, K)
            The q(x) of each row's nearest kept row (copies).
        found : torch.Tensor of shape (n,), bool
            True where the row equals its nearest kept row (see ``tolerance``).
        """
        rows, mean, var = self._join()
        with torch.no_grad():
            observed = ~torch.isnan(y)
            y0 = torch.where(observed, y, y.new_zeros(()))
            b0 = torch.nan_to_num(rows, nan=0.0).to(y.dtype)
            d = (y0 * y0).sum(1, keepdim=True) - 2 * y0 @ b0.T + observed.to(y.dtype) @ (b0 * b0).T
            idx = d.argmin(1)
            near = rows[idx].to(y.dtype)
            close = (near - y).abs() <= self.tolerance
            found = (torch.where(observed, close, torch.isnan(near))).all(1)
            return mean[idx].clone(), var[idx].clone(), found

