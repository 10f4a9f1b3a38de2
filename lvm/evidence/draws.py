"""Standard-normal draws keyed by the content of each data row.

Monte Carlo estimates of log p(y) should be reproducible (the same model and row give the same
number), independent of which other rows are in the batch and of their order (scikit-learn checks
both), and independent across distinct rows, so that the average over N rows has Monte Carlo error
O(1 / sqrt(N)). A stream drawn from one generator for the whole batch fails the second; the same
draws for every row fail the third. Here each draw is a counter-based hash of (row bits, seed,
draw index), turned into a normal by Box-Muller, all vectorized on the data's device.

Every family's Monte Carlo evidence (:mod:`lvm.evidence.estimators`) draws through it.
"""

from __future__ import annotations

import math

import torch

__all__ = ["row_keyed_normal", "DrawCache"]

_MASK = 0xFFFFFFFF
_MULT = 0x45D9F3B  # < 2**27, so every product of a 32-bit value stays below 2**63
_TWO32 = float(2**32)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """An avalanching 32-bit integer hash, on int64 tensors holding values in [0, 2**32)."""
    x = (((x >> 16) ^ x) * _MULT) & _MASK
    x = (((x >> 16) ^ x) * _MULT) & _MASK
    return (x >> 16) ^ x


def _row_words(Y: torch.Tensor) -> torch.Tensor:
    """The bits of each row as 32-bit words in int64, shape (n, words)."""
    if Y.dtype == torch.float64:
        v = Y.contiguous().view(torch.int64)
        return torch.cat([v & _MASK, (v >> 32) & _MASK], dim=1)
    v = Y.to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
    return v & _MASK


#: The :class:`DrawCache` objects entered, innermost last.
_CACHES: list = []
#: The integer dtype of each float dtype's bits.
_BITS = {torch.float64: torch.int64, torch.float32: torch.int32}


class DrawCache:
    """Remember :func:`row_keyed_normal`'s draws while entered (``with cache: ...``), for rows
    that come back bit for bit: the same values without hashing them again.

    The draws are a function of the rows' bits, ``n_samples``, ``n_dims`` and ``seed``, so a
    repeat of all four returns the stored draws (a copy). Early stopping evaluates the same
    validation rows with the same key after every epoch: on 22 validation rows of 64 features
    the hashing was a third of each evaluation's time.
    """

    def __init__(self):
        self._entries = {}

    def __enter__(self):
        _CACHES.append(self)
        return self

    def __exit__(self, *exc):
        _CACHES.remove(self)

    def lookup(self, Y, n_samples, n_dims, seed, make):
        """The draws of these arguments: stored, or ``make()`` stored."""
        if Y.dtype not in _BITS:
            return make()
        key = (tuple(Y.shape), Y.dtype, Y.device, int(n_samples), int(n_dims), int(seed))
        bits = Y.contiguous().view(_BITS[Y.dtype])
        hit = self._entries.get(key)
        if hit is not None and torch.equal(hit[0], bits):
            return hit[1].clone()
        draws = make()
        self._entries[key] = (bits.clone(), draws.clone())
        return draws


def row_keyed_normal(Y: torch.Tensor, n_samples: int, n_dims: int, seed: int) -> torch.Tensor:
    """Standard-normal draws for each row, determined by the row's bits and ``seed`` alone.

    Rows with identical bits get identical draws; any change of a row or of ``seed`` gives fresh,
    independent-looking draws.

    Parameters
    ----------
    Y : torch.Tensor of shape (n_rows, D)
        The rows that key the draws (float32 or float64; their bits, not their values, are
        hashed).
    n_samples : int
        S, the draws per row.
    n_dims : int
        The dimension of each draw.
    seed : int
        The key shared by all rows (only its low 32 bits are used).

    Returns
    -------
    torch.Tensor of shape (n_samples, n_rows, n_dims)
        N(0, 1) draws in the dtype and on the device of ``Y``.

    Examples
    --------
    >>> import torch
    >>> from lvm.evidence import row_keyed_normal
    >>> Y = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    >>> eps = row_keyed_normal(Y, 5, 3, seed=0)
    >>> eps.shape
    torch.Size([5, 2, 3])
    >>> torch.equal(row_keyed_normal(Y[1:], 5, 3, seed=0)[:, 0], eps[:, 1])  # rows are independent
    True
    """
    if _CACHES:
        return _CACHES[-1].lookup(Y, n_samples, n_dims, seed,
                                  lambda: _row_keyed_normal(Y, n_samples, n_dims, seed))
    return _row_keyed_normal(Y, n_samples, n_dims, seed)


def _row_keyed_normal(Y: torch.Tensor, n_samples: int, n_dims: int, seed: int) -> torch.Tensor:
    words = _row_words(Y)
    salt = _mix(torch.arange(words.shape[1], device=Y.device, dtype=torch.int64) + 0x9E3779B9)
    row = _mix(_mix(words ^ salt).sum(1) & _MASK)  # (n,)
    key = _mix(row ^ _mix(torch.tensor(int(seed) & _MASK, device=Y.device)))
    counter = torch.arange(n_samples * n_dims, device=Y.device, dtype=torch.int64)
    c1, c2 = _mix(2 * counter + 1), _mix(2 * counter + 2)
    a = _mix((key[None, :] + c1[:, None]) & _MASK)
    b = _mix((key[None, :] ^ c2[:, None]) & _MASK)
    u1 = (a.to(torch.float64) + 0.5) / _TWO32  # in (0, 1)
    u2 = (b.to(torch.float64) + 0.5) / _TWO32
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    return z.view(n_samples, n_dims, -1).transpose(1, 2).to(Y.dtype)
