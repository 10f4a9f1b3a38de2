r"""
.. _scaling:

Scaling out
===========

**Out of core.** ``PPCA.partial_fit(chunk)`` (and ``FactorAnalysis.partial_fit``) accumulates the
count, mean and :math:`D \times D` scatter in float64 with a pairwise (Chan et al.) update and
leaves the exact maximum-likelihood model of every row seen; ``PPCA().fit("big.npy")`` or
``fit(numpy.memmap)`` streams the file in ``chunk_size`` rows with memory independent of N.
``VAE.partial_fit`` and ``BayesianGPLVM(inference="svi").partial_fit`` run one pass of minibatch
steps over the chunk, keeping the optimizer state between calls (the GPLVM fits :math:`q(x)` for
rows it has not seen; the collapsed GPLVM refuses ``partial_fit`` and says to use
``inference="svi"``).

**Data parallel.** Under an initialized ``torch.distributed`` process group each rank calls
``fit(Y_shard)`` with its own rows, and every rank ends with the model of the union of the shards:
PPCA and factor analysis all-reduce their sufficient statistics (equal to the single-process fit);
the VAE averages gradients with ``DistributedDataParallel`` and reduces its ELBO and ``score`` over
ranks; the SVI GPLVM keeps :math:`q(x_n)` on the rank that owns the rows and sums the global
parameters' gradients over ranks, with the data term scaled by the global N. Without a process
group nothing changes. The script :ref:`sphx_glr_auto_examples_scaling_out.py` runs all three:

.. code-block:: bash

    torchrun --nproc_per_node=2 examples/scaling_out.py                     # CPU processes (gloo)
    torchrun --nproc_per_node=8 examples/scaling_out.py                     # 8 GPUs (nccl)
    torchrun --nnodes=2 --node_rank=$RANK --master_addr=$HOST --master_port=29500 \
             --nproc_per_node=8 examples/scaling_out.py                     # two nodes

(It needs ``torchrun``, so the site shows it without running it.)
"""

# %%
# Chunks, a file, and one fit: the same model
# -------------------------------------------
# PPCA fitted three ways to the same 20,000 rows: in one call, chunk by chunk with
# ``partial_fit``, and streamed from an ``.npy`` file on disk in chunks of 4096 rows.
import tempfile
from pathlib import Path

import numpy as np

import lvm

data = lvm.datasets.make_ppca(22_000, 50, 5, noise=0.2, random_state=0)
Y, held_out = data.Y[:20_000], data.Y[20_000:]
whole = lvm.PPCA(5).fit(Y)
chunked = lvm.PPCA(5)
for chunk in np.array_split(Y, 10):
    chunked.partial_fit(chunk)
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "rows.npy"
    np.save(path, Y)
    streamed = lvm.PPCA(5, chunk_size=4096).fit(str(path))

for name, m in (("partial_fit, 10 chunks", chunked), ("fit from the file", streamed)):
    cov_diff = np.abs(m.get_covariance() - whole.get_covariance()).max()
    print(f"{name}: largest difference of the model covariance from one fit {cov_diff:.1e}; "
          f"log p(y) per point {m.score(Y):.10f} (one fit: {whole.score(Y):.10f})")

# %%
# The VAE, one pass per chunk
# ---------------------------
# ``VAE.partial_fit`` takes a chunk, runs one pass of minibatch steps over it and keeps Adam's
# state, so a stream of chunks trains the model as epochs would. Its held-out evidence after each
# pass over five chunks of 4000 rows, on 2000 rows held out:
vae = lvm.VAE(5, hidden_sizes=(64,), random_state=0)
for epoch in range(3):
    for chunk in np.array_split(Y, 5):
        vae.partial_fit(chunk.astype(np.float32))
    print(f"after pass {epoch + 1}: held-out log p(y) per point {vae.score(held_out):.3f} "
          f"(PPCA, exact: {whole.score(held_out):.3f})")
