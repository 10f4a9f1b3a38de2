"""Data-parallel fits on torch.distributed: every rank fits its own rows, all end with one model.

Launch with torchrun (one process per GPU, or several CPU processes with gloo):

    torchrun --nproc_per_node=2 examples/scaling_out.py                  # one machine
    torchrun --nnodes=2 --node_rank=0 --master_addr=HOST --master_port=29500 \
             --nproc_per_node=8 examples/scaling_out.py                  # on each of two nodes

Each rank takes the rows rank, rank + W, rank + 2W, ... of a synthetic data set (in practice: its own
files or its slice of a memmap). PPCA all-reduces its sufficient statistics and so equals the
single-process fit exactly; the VAE averages gradients with DistributedDataParallel; the SVI GPLVM
synchronizes its global parameters while each rank keeps q(x_n) for its own rows.
"""

import os

import torch
import torch.distributed as dist

import lvm

backend = "nccl" if torch.cuda.is_available() else "gloo"
dist.init_process_group(backend)
rank, world = dist.get_rank(), dist.get_world_size()
device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if backend == "nccl" else "cpu"
if backend == "nccl":
    torch.cuda.set_device(device)

data = lvm.datasets.make_ppca(20_000, 50, 5, noise=0.2, random_state=0)
shard = data.Y[rank::world]

ppca = lvm.PPCA(5, device=device).fit(shard)
vae = lvm.VAE(5, hidden_sizes=(256, 256), max_epochs=5, validation_fraction=0.0, device=device,
              random_state=0).fit(shard.astype("float32"))
gplvm = lvm.BayesianGPLVM(5, inference="svi", n_inducing=64, max_iter=200, device=device,
                          random_state=0).fit(shard)

# score() on a shard reduces over ranks where the family supports it; PPCA's is per-rank exact.
scores = {name: m.score(shard) for name, m in (("PPCA", ppca), ("VAE", vae), ("GPLVM", gplvm))}
if rank == 0:
    print(f"{world} ranks ({backend}); rows per rank ~{len(shard)}")
    for name, s in scores.items():
        print(f"  {name:6s} log p(y) per point on rank 0's rows: {s:.3f}")
dist.destroy_process_group()
