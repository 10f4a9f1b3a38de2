"""Run a function on K local gloo ranks, spawned by the test itself, and collect what each returns."""

from __future__ import annotations

import gc
import os
import pickle
import socket
import tempfile
import traceback

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, outdir, fn, args):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        result = ("ok", fn(rank, world_size, *args))
    except Exception as exc:  # noqa: BLE001 - shipped back to the test
        result = ("error", (type(exc).__name__, str(exc), traceback.format_exc()))
    finally:
        with open(os.path.join(outdir, f"rank{rank}.pkl"), "wb") as f:
            pickle.dump(result, f)
        # Collect garbage before tearing gloo down: without it, about one run in six of the
        # GPLVM's 2-rank test aborted at interpreter exit, after destroy_process_group, with
        # "terminate called without an active exception" (0 in 60 with it). Gloo's worker
        # threads can outlive the group holding tensors (pytorch/pytorch#179291).
        gc.collect()
        dist.destroy_process_group()


def run_ranks(fn, world_size=2, *args, timeout=300):
    """Spawn ``world_size`` processes running ``fn(rank, world_size, *args)`` under gloo.

    ``fn`` must be importable (a module-level function). Returns the list of ("ok", value) or
    ("error", (type name, message, traceback)) per rank.
    """
    with tempfile.TemporaryDirectory() as outdir:
        ctx = mp.start_processes(_worker, args=(world_size, _free_port(), outdir, fn, args),
                                 nprocs=world_size, join=False, start_method="spawn")
        ctx.join(timeout)
        out = []
        for r in range(world_size):
            with open(os.path.join(outdir, f"rank{r}.pkl"), "rb") as f:
                out.append(pickle.load(f))
        return out
