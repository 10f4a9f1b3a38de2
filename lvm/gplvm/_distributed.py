"""The few torch.distributed collectives the SVI fit needs; all are no-ops without a process group.

Each rank holds its own rows and their q(x); the global parameters (kernel, inducing inputs, q(u),
noise, encoder) start identical (broadcast from rank 0) and stay identical because every step uses
gradients summed over ranks (DDP-style, explicit since q(x) must stay local).
"""

from __future__ import annotations

import torch
import torch.distributed as tdist

__all__ = ["is_active", "world_size", "global_moments", "all_reduce_sum", "all_reduce_grads",
           "broadcast_module", "min_int", "max_int"]


def is_active() -> bool:
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1


def world_size() -> int:
    return tdist.get_world_size() if is_active() else 1


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if is_active():
        t = t.clone()
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t


def _reduce_int(value: int, op) -> int:
    if not is_active():
        return int(value)
    t = torch.tensor([int(value)], dtype=torch.int64)
    if tdist.get_backend() == "nccl":
        t = t.cuda()
    tdist.all_reduce(t, op=op)
    return int(t.item())


def min_int(value: int) -> int:
    return _reduce_int(value, tdist.ReduceOp.MIN) if is_active() else int(value)


def max_int(value: int) -> int:
    return _reduce_int(value, tdist.ReduceOp.MAX) if is_active() else int(value)


def global_moments(Y: torch.Tensor):
    """Row count, column sums and scatter Y^T Y over all ranks (float64 for the PCA init)."""
    Y64 = Y.to(torch.float64)
    n = torch.tensor(float(Y.shape[0]), dtype=torch.float64, device=Y.device)
    total, scatter = Y64.sum(0), Y64.T @ Y64
    if is_active():
        D = torch.tensor([Y.shape[1]], dtype=torch.int64, device=Y.device)
        lo, hi = D.clone(), D.clone()
        tdist.all_reduce(lo, op=tdist.ReduceOp.MIN)
        tdist.all_reduce(hi, op=tdist.ReduceOp.MAX)
        if int(lo) != int(hi):
            raise ValueError(
                f"The shards have different numbers of features across ranks ({int(lo)} to {int(hi)}; "
                f"this rank has {Y.shape[1]}); every rank must pass rows with the same columns."
            )
        n, total, scatter = all_reduce_sum(n), all_reduce_sum(total), all_reduce_sum(scatter)
    return n, total.to(Y.dtype), scatter.to(Y.dtype)


def all_reduce_grads(params) -> None:
    """Sum the gradients of the global parameters over ranks (one flat buffer, one collective)."""
    if not is_active():
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    tdist.all_reduce(flat, op=tdist.ReduceOp.SUM)
    i = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[i:i + n].view_as(p).clone()
        i += n


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not is_active():
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            tdist.broadcast(t.data, src=0)


def broadcast(t: torch.Tensor) -> torch.Tensor:
    if is_active():
        t = t.clone()
        tdist.broadcast(t, src=0)
    return t
