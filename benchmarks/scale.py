"""Scaling: PPCA streamed from an .npy memmap vs IncrementalPCA; VAE / SVI-GPLVM epochs on 1 and 2
gloo processes.

    python benchmarks/scale.py ppca [--sizes 1000000 10000000] [--d 100] [--dir /tmp/lvm-scale]
    python benchmarks/scale.py parallel [--n 20000] [--epochs 3]

PPCA: each method runs in its own subprocess on the same file so its peak resident memory (VmHWM)
is its own; held-out log-likelihood is on 20,000 fresh rows of the same model.
IncrementalPCA's variances use 1/(N-1); they are rescaled to the maximum-likelihood 1/N first.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write_data(path: Path, n: int, d: int, k: int = 10, chunk: int = 1_000_000, seed: int = 0):
    """Seeded PPCA data written in chunks to an .npy file (never the whole array in memory)."""
    rng = np.random.default_rng(seed)
    W = np.linalg.qr(rng.standard_normal((d, k)))[0] * np.linspace(3, 1, k)
    mean = rng.standard_normal(d)
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n, d))
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        mm[s:s + m] = rng.standard_normal((m, k)) @ W.T + mean + 0.5 * rng.standard_normal((m, d))
    mm.flush()
    del mm
    test = rng.standard_normal((20_000, k)) @ W.T + mean + 0.5 * rng.standard_normal((20_000, d))
    np.save(path.with_suffix(".test.npy"), test)


def _child(method: str, path: str, k: int):
    import torch

    test = np.load(Path(path).with_suffix(".test.npy"))
    t0 = time.perf_counter()
    if method == "lvm":
        import lvm

        model = lvm.PPCA(k, device="cpu", chunk_size=100_000).fit(path)
        seconds = time.perf_counter() - t0
        ll = model.score(test)
    else:
        from sklearn.decomposition import IncrementalPCA

        mm = np.load(path, mmap_mode="r")
        model = IncrementalPCA(k, batch_size=100_000)
        for s in range(0, mm.shape[0], 100_000):
            model.partial_fit(mm[s:s + 100_000])
        seconds = time.perf_counter() - t0
        n = model.n_samples_seen_
        model.explained_variance_ *= (n - 1) / n
        model.noise_variance_ *= (n - 1) / n
        from scipy.stats import multivariate_normal  # IncrementalPCA has no score()

        ll = multivariate_normal(model.mean_, model.get_covariance()).logpdf(test).mean()
    rss = _peak_rss_mib()
    print(json.dumps({"seconds": seconds, "heldout": ll, "peak_rss_mib": rss,
                      "threads": torch.get_num_threads()}))


def _peak_rss_mib() -> float:
    """This process's own peak resident memory. (ru_maxrss is no good here: Linux carries the
    parent's high-water mark across fork + exec, and the parent has just written the file.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_ppca(a):
    out = Path(a.dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{'N':>10} {'method':<28} {'fit s':>8} {'peak RSS MiB':>13} {'held-out log p(y)':>18}")
    for n in a.sizes:
        path = out / f"ppca_{n}x{a.d}.npy"
        if not path.exists():
            t0 = time.perf_counter()
            write_data(path, n, a.d)
            print(f"(wrote {path}, {path.stat().st_size / 2**30:.2f} GiB, "
                  f"in {time.perf_counter() - t0:.0f} s)")
        res = {}
        for method, label in (("lvm", "lvm.PPCA.fit(path) streamed"),
                              ("ipca", "sklearn IncrementalPCA")):
            r = subprocess.run([sys.executable, __file__, "_child", method, str(path), str(a.k)],
                               capture_output=True, text=True, check=True)
            res[method] = json.loads(r.stdout.strip().splitlines()[-1])
            x = res[method]
            print(f"{n:>10} {label:<28} {x['seconds']:8.2f} {x['peak_rss_mib']:13.0f} "
                  f"{x['heldout']:18.8f}")
        print(f"{n:>10} ratio IncrementalPCA / lvm time: {res['ipca']['seconds'] / res['lvm']['seconds']:.1f}x;"
              f" held-out difference lvm - ipca: {res['lvm']['heldout'] - res['ipca']['heldout']:+.2e} nats")
        if not a.keep:
            path.unlink()
            path.with_suffix(".test.npy").unlink()


def _parallel_worker(rank, world_size, name, n, epochs, port):
    import torch
    import torch.distributed as dist

    import lvm

    if world_size > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.set_num_threads(max(1, 2 // world_size))
    data = lvm.datasets.make_ppca(n, 50, 5, noise=0.2, random_state=0).Y.astype(np.float32)
    shard = np.array_split(data, world_size)[rank]
    if name == "vae":
        model = lvm.VAE(5, hidden_sizes=(256, 256), batch_size=256 // world_size,
                        max_epochs=epochs, validation_fraction=0.0, device="cpu", random_state=0)
    else:
        model = lvm.BayesianGPLVM(5, inference="svi", n_inducing=64, batch_size=256 // world_size,
                                  max_iter=epochs, tol=None, device="cpu", random_state=0)
    t0 = time.perf_counter()
    model.fit(shard)
    seconds = (time.perf_counter() - t0) / epochs
    if world_size > 1:
        dist.destroy_process_group()
    if rank == 0:
        print(json.dumps({"seconds_per_epoch": seconds}))


def bench_parallel(a):
    import socket


    print(f"{'model':<16} {'processes':>9} {'s / epoch':>10} {'speed-up':>9}   (N={a.n}, D=50, "
          f"total batch 256, {a.epochs} epochs)")
    for name in ("vae", "gplvm"):
        base = None
        for world in (1, 2):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            r = subprocess.run([sys.executable, __file__, "_pworker", name, str(world), str(a.n),
                                str(a.epochs), str(port)], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{name:<16} {world:>9}  failed: {r.stderr.strip().splitlines()[-1]}")
                continue
            sec = json.loads(r.stdout.strip().splitlines()[-1])["seconds_per_epoch"]
            base = base or sec
            print(f"{name:<16} {world:>9} {sec:10.3f} {base / sec:8.2f}x")


def _pworker_main(name, world, n, epochs, port):
    import torch.multiprocessing as mp

    if world == 1:
        _parallel_worker(0, 1, name, n, epochs, port)
    else:
        mp.spawn(_parallel_worker, args=(world, name, n, epochs, port), nprocs=world)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        return _child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    if len(sys.argv) > 1 and sys.argv[1] == "_pworker":
        return _pworker_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                             int(sys.argv[6]))
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    pp = sub.add_parser("ppca")
    pp.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    pp.add_argument("--d", type=int, default=100)
    pp.add_argument("--k", type=int, default=10)
    pp.add_argument("--dir", default="/tmp/lvm-scale")
    pp.add_argument("--keep", action="store_true", help="keep the data files")
    pa = sub.add_parser("parallel")
    pa.add_argument("--n", type=int, default=20_000)
    pa.add_argument("--epochs", type=int, default=3)
    a = p.parse_args()
    bench_ppca(a) if a.what == "ppca" else bench_parallel(a)


if __name__ == "__main__":
    main()
