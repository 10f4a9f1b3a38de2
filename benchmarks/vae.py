"""Benchmark: lvm.VAE against a hand-written PyTorch loop and Pythae's VAE, in one run.

Same data (standardized digits, 80/20 split), same architecture (64-256-256-2 and back), batch
size, learning rate and number of epochs. Reports seconds per epoch (median over ``--repeats``
interleaved runs, as ratios to the hand loop) and held-out log p(y) per point, estimated for every
model by the same importance-weighted evaluator written here (``--samples`` draws).

    python benchmarks/vae.py                 # CPU (or CUDA when available)
    python benchmarks/vae.py --device cuda   # the hand loop then feeds batches by DataLoader
    python benchmarks/vae.py --gloo 2        # lvm.VAE with 1 and 2 gloo processes (CPU)

Pythae (``pip install pythae``) is skipped cleanly when it is not installed. Its decoder variance
is fixed to 1 (its "mse" loss), so its log p(y) is evaluated with sigma^2 = 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import statistics
import tempfile
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

import lvm
import lvm._base  # resolve_device (lvm imports its submodules lazily)

LOG_2PI = math.log(2 * math.pi)


def mlps(D, K, hidden):
    enc, dec = [], []
    sizes = (D, *hidden)
    for a, b in zip(sizes[:-1], sizes[1:]):
        enc += [nn.Linear(a, b), nn.ReLU()]
    rsizes = (K, *hidden[::-1])
    for a, b in zip(rsizes[:-1], rsizes[1:]):
        dec += [nn.Linear(a, b), nn.ReLU()]
    encoder = nn.Sequential(*enc, nn.Linear(sizes[-1], 2 * K))
    return encoder, nn.Sequential(*dec, nn.Linear(rsizes[-1], D))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def hand_loop(Y, *, K, hidden, epochs, batch_size, lr, device, seed, dataloader):
    """The minimal loop a user writes; ``dataloader=True`` feeds batches the usual way."""
    torch.manual_seed(seed)
    D = Y.shape[1]
    enc, dec = mlps(D, K, hidden)
    enc, dec = enc.to(device), dec.to(device)
    log_noise = nn.Parameter(torch.zeros((), device=device))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters(), log_noise], lr=lr)
    if dataloader:
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.as_tensor(Y)),
                                             batch_size=batch_size, shuffle=True)
        batches = lambda: (b[0].to(device, non_blocking=True) for b in loader)  # noqa: E731
    else:
        Yt = torch.as_tensor(Y, device=device)
        batches = lambda: (  # noqa: E731
            Yt[i] for i in torch.randperm(len(Yt), device=device).split(batch_size))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for y in batches():
            h = enc(y)
            mu, logv = h[:, :K], h[:, K:]
            x = mu + torch.exp(0.5 * logv) * torch.randn_like(mu)
            rec = -0.5 * (((y - dec(x)) ** 2).sum(1) / log_noise.exp() + D * (log_noise + LOG_2PI))
            kl = 0.5 * (logv.exp() + mu**2 - 1 - logv).sum(1)
            loss = -(rec - kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    sync(device)
    seconds = time.perf_counter() - t0

    def encode(y):
        h = enc(y)
        return h[:, :K], h[:, K:].exp()

    return seconds / epochs, encode, dec, log_noise.detach().exp()


def lvm_vae(Y, *, K, hidden, epochs, batch_size, lr, device, seed):
    Yt = torch.as_tensor(Y, device=device)
    # Like for like with the hand loop: shared noise, random initial weights (lvm's defaults,
    # per-feature noise and the nested start at the linear model, train a different model).
    model = lvm.VAE(K, hidden_sizes=hidden, batch_size=batch_size, max_epochs=epochs,
                    learning_rate=lr, validation_fraction=0.0, noise="shared", init="random",
                    neighbor_weight=0.0,  # the hand loop is the plain VAE: no neighbour term
                    device=device, random_state=seed)
    sync(device)
    t0 = time.perf_counter()
    model.fit(Yt)
    sync(device)
    seconds = time.perf_counter() - t0
    # The networks work in lvm's standardized units z = (y - location_) / scale_.
    loc = torch.as_tensor(model.location_, dtype=torch.float32, device=device)
    scale = float(model.scale_)

    def encode(y):
        h = model.encoder_((y - loc) / scale)
        return h[:, :K], h[:, K:].exp()

    def decode(x):
        return model.decoder_(x) * scale + loc

    noise = torch.as_tensor(model.noise_variance_, dtype=torch.float32, device=device)
    return seconds / epochs, encode, decode, noise


def pythae_vae(Y, *, K, hidden, epochs, batch_size, lr, device, seed):
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    logging.getLogger("pythae").setLevel(logging.WARNING)
    torch.manual_seed(seed)
    D = Y.shape[1]
    enc_net, dec_net = mlps(D, K, hidden)

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = enc_net

        def forward(self, x):
            h = self.net(x.reshape(x.shape[0], -1))
            return ModelOutput(embedding=h[:, :K], log_covariance=h[:, K:])

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = dec_net

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z))

    config = VAEConfig(input_dim=(D,), latent_dim=K, reconstruction_loss="mse")
    model = VAE(model_config=config, encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as out:
        trainer = BaseTrainerConfig(output_dir=out, num_epochs=epochs, learning_rate=lr,
                                    per_device_train_batch_size=batch_size, seed=seed,
                                    no_cuda=device.type != "cuda")
        pipeline = TrainingPipeline(training_config=trainer, model=model)
        sync(device)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            pipeline(train_data=np.asarray(Y), eval_data=None)  # its logs and progress bars
        sync(device)
        seconds = time.perf_counter() - t0
    model = model.to(device).eval()

    def encode(y):
        h = enc_net(y)
        return h[:, :K], h[:, K:].exp()

    return seconds / epochs, encode, dec_net, torch.ones((), device=device)


def iwae(encode, decode, noise, Y, S, device, seed=0):
    """The one evaluator for every model: IWAE log p(y) per row with the encoder as proposal."""
    gen = torch.Generator(device=device).manual_seed(seed)
    Yt = torch.as_tensor(Y, device=device)
    out = []
    with torch.no_grad():
        for y in Yt.split(256):
            mu, var = encode(y)
            eps = torch.randn(S, *mu.shape, generator=gen, device=device)
            x = mu + var.sqrt() * eps
            log_px = -0.5 * (x**2 + LOG_2PI).sum(-1)
            log_q = -0.5 * (eps**2 + LOG_2PI).sum(-1) - 0.5 * var.log().sum(-1)
            D = y.shape[1]
            noise_d = noise * torch.ones(D, device=device)
            log_lik = -0.5 * (((y - decode(x)) ** 2 / noise_d).sum(-1) + D * LOG_2PI
                              + noise_d.log().sum())
            out.append(torch.logsumexp(log_lik + log_px - log_q, 0) - math.log(S))
    return float(torch.cat(out).mean())


def _gloo_worker(rank, world, port, Y_tr, Y_te, args, out):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        model = lvm.VAE(args.latent, hidden_sizes=tuple(args.hidden),
                        batch_size=args.batch_size // world, max_epochs=args.epochs,
                        learning_rate=args.lr, validation_fraction=0.0, device="cpu",
                        random_state=0)
        dist.barrier()
        t0 = time.perf_counter()
        model.fit(Y_tr[rank::world])
        seconds = time.perf_counter() - t0
        score = model.score(Y_te[rank::world])  # reduced over the ranks
        if rank == 0:
            out.put((seconds / args.epochs, score))
    finally:
        dist.destroy_process_group()


def gloo_scaling(Y_tr, Y_te, args):
    """lvm.VAE seconds per epoch with 1 process and with ``args.gloo`` gloo processes (CPU),
    the same total batch size and epochs."""
    import socket

    import torch.multiprocessing as mp

    rows = []
    for world in sorted({1, args.gloo}):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        ctx = mp.get_context("spawn")
        queue = ctx.SimpleQueue()
        mp.spawn(_gloo_worker, args=(world, port, Y_tr, Y_te, args, queue), nprocs=world)
        rows.append((world, *queue.get()))
    print(f"\nlvm.VAE under torch.distributed (gloo, CPU, 1 thread per process), total batch "
          f"{args.batch_size}, {args.epochs} epochs:")
    print(f"{'processes':>9} {'ms/epoch':>9} {'speed-up':>9} {'held-out log p(y)':>18}")
    for world, sec, score in rows:
        print(f"{world:9d} {1e3 * sec:9.1f} {rows[0][1] / sec:9.2f} {score:18.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", type=int, nargs="*", default=[256, 256])
    p.add_argument("--latent", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--gloo", type=int, default=0,
                   help="also time lvm.VAE with 1 and this many gloo processes (CPU)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = lvm._base.resolve_device(args.device)

    d = lvm.datasets.load_digits()
    Y_tr, Y_te = train_test_split(d.Y, test_size=0.2, random_state=0, stratify=d.labels)
    scaler = StandardScaler().fit(Y_tr)
    Y_tr = scaler.transform(Y_tr).astype(np.float32)
    Y_te = scaler.transform(Y_te).astype(np.float32)
    if args.gloo:
        gloo_scaling(Y_tr, Y_te, args)
        return
    common = dict(K=args.latent, hidden=tuple(args.hidden), epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, device=device)

    runners = {
        "lvm.VAE": lambda s: lvm_vae(Y_tr, seed=s, **common),
        "hand loop (index)": lambda s: hand_loop(Y_tr, seed=s, dataloader=False, **common),
        "hand loop (DataLoader)": lambda s: hand_loop(Y_tr, seed=s, dataloader=True, **common),
    }
    try:
        import pythae  # noqa: F401

        runners["Pythae VAE"] = lambda s: pythae_vae(Y_tr, seed=s, **common)
    except ImportError:
        print("pythae is not installed: skipping it (pip install pythae).")

    lvm_vae(Y_tr[:256], seed=0, **{**common, "epochs": 1})  # warm-up (allocator, kernels)
    lvm_model = lvm.VAE(args.latent, hidden_sizes=tuple(args.hidden), max_epochs=args.epochs,
                        batch_size=args.batch_size, learning_rate=args.lr, noise="shared",
                        init="random", validation_fraction=0.0, device=device,
                        random_state=0).fit(Y_tr)
    times = {name: [] for name in runners}
    nats = {name: [] for name in runners}
    for r in range(args.repeats):
        for name, run in runners.items():  # interleaved, so machine load hits all alike
            sec, encode, decode, noise = run(r)
            times[name].append(sec)
            nats[name].append(iwae(encode, decode, noise, Y_te, args.samples, device))

    ref = "hand loop (DataLoader)" if device.type == "cuda" else "hand loop (index)"
    ref_t = statistics.median(times[ref])
    print(f"\nstandardized digits {Y_tr.shape[0]} train / {Y_te.shape[0]} test, "
          f"{Y_tr.shape[1]}-{'-'.join(map(str, args.hidden))}-{args.latent}, {args.epochs} epochs, "
          f"batch {args.batch_size}, device {device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.repeats} repeats")
    print(f"{'model':<24} {'ms/epoch':>9} {'ratio':>7} {'held-out log p(y)':>18} {'(spread)':>9}")
    for name in runners:
        t = statistics.median(times[name])
        v = statistics.median(nats[name])
        spread = max(nats[name]) - min(nats[name])
        print(f"{name:<24} {1e3 * t:9.1f} {t / ref_t:7.2f} {v:18.2f} {spread:9.2f}")
    print(f"ratio: seconds per epoch / those of the {ref}; log p(y): IWAE with "
          f"{args.samples} samples, nats per point (median over repeats; spread = max - min).")
    print(f"\nlvm.VAE's own estimators on the test rows (S = {args.samples}; ESS = effective "
          "sample size of the importance weights):")
    for method in ("elbo", "iwae", "prior"):
        result = lvm_model.log_evidence(Y_te, method=method, n_samples=args.samples)
        est, ess = result.log_evidence, result.effective_sample_size
        print(f"  {method:<6} {est.mean():9.2f} nats per point   mean ESS {ess.mean():7.1f}")


if __name__ == "__main__":
    main()
