"""torch.distributed glue shared by the families.

Nothing here starts a process group: lvm only joins one the user initialized (e.g. under
``torchrun``). Without one (or with a single rank) every function is a no-op and a fit is
single-process. Collectives run on the CPU under gloo and on the tensor's GPU under nccl.
"""

from __future__ import annotations

import torch

__all__ = [
    "is_distributed",
    "world",
    "world_size",
    "check_same_features",
    "gather_counts",
    "all_reduce_sum",
    "all_reduce_grads",
    "broadcast",
    "broadcast_module",
    "min_int",
    "max_int",
    "global_mean",
    "moments",
]


def is_distributed() -> bool:
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world() -> tuple[int, int]:
    """(rank, world size), or (0, 1) without an initialized process group."""
    if is_distributed():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def world_size() -> int:
    return world()[1]


def _collective_device(device: torch.device) -> torch.device:
    # gloo reduces CPU tensors, nccl CUDA tensors.
    return torch.device("cpu") if torch.distributed.get_backend() == "gloo" else device


def _reduce(t: torch.Tensor, op=None) -> torch.Tensor:
    buf = t.detach().to(_collective_device(t.device)).clone()
    torch.distributed.all_reduce(buf, op=op or torch.distributed.ReduceOp.SUM)
    return buf.to(t.device)


def gather_counts(n_rows: int, n_features: int, device=torch.device("cpu")) -> list[int]:
    """Every rank's row count; raises the same ValueError on every rank when the shards' feature
    counts differ (before any collective whose shapes would then disagree)."""
    if not is_distributed():
        return [int(n_rows)]
    local = torch.tensor([n_rows, n_features], dtype=torch.int64,
                         device=_collective_device(torch.device(device)))
    everyone = [torch.empty_like(local) for _ in range(world_size())]
    torch.distributed.all_gather(everyone, local)
    features = [int(t[1]) for t in everyone]
    if len(set(features)) > 1:
        raise ValueError(
            f"The data shards have different numbers of features across ranks ({features}); this "
            f"rank has {n_features}. Every rank must pass rows with the same columns."
        )
    return [int(t[0]) for t in everyone]


def check_same_features(n_features: int, device=torch.device("cpu")) -> None:
    """Raise the same ValueError on every rank when the shards' feature counts differ."""
    gather_counts(0, n_features, device)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (a new tensor on t's device); ``t`` itself without a group."""
    return _reduce(t) if is_distributed() else t


def all_reduce_grads(params) -> None:
    """Sum the gradients of ``params`` over ranks (one flat buffer, one collective)."""
    if not is_distributed():
        return
    params = list(params)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = _reduce(torch.cat([g.reshape(-1) for g in grads]))
    i = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[i:i + n].view_as(p).clone()
        i += n


def broadcast(t: torch.Tensor) -> torch.Tensor:
    """Rank 0's value of ``t`` on every rank (a new tensor); ``t`` itself without a group."""
    if not is_distributed():
        return t
    buf = t.detach().to(_collective_device(t.device)).clone()
    torch.distributed.broadcast(buf, src=0)
    return buf.to(t.device)


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers into ``module`` on every rank."""
    if not is_distributed():
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            t.copy_(broadcast(t))


def min_int(value: int) -> int:
    if not is_distributed():
        return int(value)
    return int(_reduce(torch.tensor([int(value)]), torch.distributed.ReduceOp.MIN)[0])


def max_int(value: int) -> int:
    if not is_distributed():
        return int(value)
    return int(_reduce(torch.tensor([int(value)]), torch.distributed.ReduceOp.MAX)[0])


def global_mean(values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over the rows of every rank (float64, 0-d); the local mean
    without a process group."""
    values = values.to(torch.float64)
    if not is_distributed():
        return values.mean()
    stats = torch.stack([values.sum(), values.new_tensor(float(values.shape[0]))])
    stats = all_reduce_sum(stats)
    return stats[0] / stats[1]


def moments(Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-feature (count, mean, sum of squared deviations) of the rows of every rank, in float64,
    over the observed (non-NaN) entries, merged through the pooled sums as Chan et al.'s update
    does, without forming a D x D matrix."""
    Y = Y.to(torch.float64)
    observed = ~torch.isnan(Y)
    counts = observed.sum(0).to(torch.float64)
    zero = Y.new_zeros(())
    mean = torch.where(observed, Y, zero).sum(0) / counts.clamp_min(1.0)
    ss = (torch.where(observed, Y - mean, zero) ** 2).sum(0)
    if not is_distributed():
        return counts, mean, ss
    check_same_features(Y.shape[1], Y.device)  # before collectives whose sizes would disagree
    pooled = all_reduce_sum(torch.stack([counts, mean * counts]))
    counts_all = pooled[0]
    mean_all = pooled[1] / counts_all.clamp_min(1.0)
    d = mean - mean_all
    ss_all = all_reduce_sum(ss + d * d * counts)
    return counts_all, mean_all, ss_all
