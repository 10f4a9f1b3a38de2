"""torch.distributed glue shared by the families: who am I, and do all ranks agree on the data.

Nothing here starts a process group: lvm only joins one the user initialized (e.g. under
``torchrun``). Without one every function is a no-op and a fit is single-process.
"""

from __future__ import annotations

import torch

__all__ = ["is_distributed", "world", "check_same_features", "all_reduce_sum"]


def is_distributed() -> bool:
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world() -> tuple[int, int]:
    """(rank, world size), or (0, 1) without an initialized process group."""
    if is_distributed():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _reduce_device(device: torch.device) -> torch.device:
    # gloo reduces CPU tensors, nccl CUDA tensors.
    backend = torch.distributed.get_backend()
    return torch.device("cpu") if backend == "gloo" else device


def check_same_features(n_features: int, estimator: str, device=torch.device("cpu")) -> None:
    """Raise the same ValueError on every rank when the shards' feature counts differ."""
    if not is_distributed():
        return
    t = torch.tensor([n_features, -n_features], dtype=torch.int64,
                     device=_reduce_device(torch.device(device)))
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    hi, lo = int(t[0]), -int(t[1])
    if hi != lo:
        raise ValueError(
            f"{estimator}: the shards have different numbers of features across ranks "
            f"(from {lo} to {hi}; this rank has {n_features}). Every rank must pass the same columns."
        )


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (a new tensor on t's device); ``t`` itself without a group."""
    if not is_distributed():
        return t
    dev = _reduce_device(t.device)
    buf = t.detach().to(dev).clone()
    torch.distributed.all_reduce(buf)
    return buf.to(t.device)
