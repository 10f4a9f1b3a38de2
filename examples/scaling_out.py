r"""
Data-parallel fits with torchrun
================================

Data-parallel fits on torch.distributed: every rank fits its own rows, all end with one model.
Launch with torchrun (one process per GPU, or several CPU processes with gloo)::

    torchrun --nproc_per_node=2 examples/scaling_out.py                  # one machine
    torchrun --nnodes=2 --node_rank=0 --master_addr=HOST --master_port=29500 \
             --nproc_per_node=8 examples/scaling_out.py                  # on each of two nodes

Each rank takes the rows rank, rank + W, rank + 2W, ... of a synthetic data set (in practice: its own
files or its slice of a memmap). PPCA all-reduces its sufficient statistics and so equals the
single-process fit exactly; the VAE averages gradients with DistributedDataParallel; the SVI GPLVM
synchronizes its global parameters while each rank keeps q(x_n) for its own rows.
"""

import gc
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

data = lvm.datasets.make_ppca(22_000, 50, 5, noise=0.2, random_state=0)
train, held_out = data.Y[:20_000], data.Y[20_000:]  # the same held-out rows on every rank
shard = train[rank::world]

ppca = lvm.PPCA(5, device=device).fit(shard)
vae = lvm.VAE(5, hidden_sizes=(256, 256), max_epochs=5, validation_fraction=0.0, device=device,
              random_state=0).fit(shard.astype("float32"))
gplvm = lvm.BayesianGPLVM(5, inference="svi", n_inducing=64, max_iter=20, device=device,
                          random_state=0).fit(shard)

# Every rank holds the same model; the VAE's score() averages over ranks (here identical rows).
scores = {name: m.score(held_out) for name, m in (("PPCA", ppca), ("VAE", vae), ("GPLVM", gplvm))}
if rank == 0:
    print(f"{world} ranks ({backend}); training rows per rank {len(shard)}")
    for name, s in scores.items():
        print(f"  {name:6s} held-out log p(y) per point: {s:.3f}")
# Collect garbage before tearing the group down: gloo's worker threads can otherwise abort the
# process at exit ("terminate called without an active exception"; pytorch/pytorch#179291).
gc.collect()
dist.destroy_process_group()
