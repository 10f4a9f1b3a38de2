"""Benchmark: lvm.DiffusionModel against a hand-written PyTorch VDM loop, and every family's
held-out evidence beside scikit-learn's GaussianMixture, in one run.

1. Speed: the same residual denoiser and learned linear schedule (lvm.diffusion's modules), the
   same bound (continuous-time VLB, low-discrepancy times, the control variate), moving average
   of the weights, batch size, learning rate and number of Adam steps, on standardized oil flow;
   milliseconds per step (median over ``--repeats`` interleaved runs) and the ratio to the hand
   loop. lvm's time includes what its shared loop does per epoch (the state kept for early
   stopping and numerical recovery) but not its set-up.
2. Evidence: held-out log p(y) per point in nats (with standard errors over points, and fit
   seconds) of PPCA, FA (both with K chosen on a validation split; PPCA's best K over all is
   printed too), the VAE, the Bayesian GPLVM, the diffusion model (lower bound) and
   ``GaussianMixture(covariance_type="full")`` with its number of components chosen on a
   validation split, on oil flow (standardized, 800 / 200 rows) and on the digits (the 61
   pixels not blank in every image, dequantized: uniform noise in [0, 1) added to the integer
   intensities, the same draws for every model; 80 / 20).

    python benchmarks/diffusion.py --quick     # small settings, a few minutes
    python benchmarks/diffusion.py             # the defaults every model ships with

Oil flow is read from ../shared/data (skipped with a note when absent). Timings on a shared
machine vary; the ratio of one run is what to read.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split

import lvm
import lvm._base  # resolve_device (lvm imports its submodules lazily)
from lvm.diffusion import LinearSchedule, ResidualDenoiser

LOG_2PI = math.log(2 * math.pi)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------------ 1. speed
def hand_loop(Z, *, width, depth, steps, batch_size, lr, device, seed):
    """The loop a user writes from VDM's paper: same modules, the bound written out by hand, an
    exponential moving average of the weights (decay 0.999, as lvm's default)."""
    gen = torch.Generator().manual_seed(seed)
    D = Z.shape[1]
    schedule = LinearSchedule(-13.3, 12.0).to(device)
    denoiser = ResidualDenoiser(D, width=width, depth=depth, gamma_range=(-13.3, 12.0),
                                generator=gen).to(device)
    params = [*schedule.parameters(), *denoiser.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    average = [p.detach().clone() for p in params]  # VDM evaluates an EMA of the weights
    Zt = torch.as_tensor(Z, dtype=torch.float32, device=device)
    n = len(Zt)
    sync(device)
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        for idx in torch.randperm(n, device=device).split(batch_size):
            if done == steps:
                break
            y = Zt[idx]
            B = y.shape[0]
            g0, g1 = schedule.gamma_0, schedule.gamma_1
            t = torch.remainder(torch.rand((), device=device)
                                + torch.arange(B, device=device) / B, 1.0)
            eps = torch.randn_like(y)
            gamma = g0 + (g1 - g0) * t
            a2, s2 = torch.sigmoid(-gamma)[:, None], torch.sigmoid(gamma)[:, None]
            z = a2.sqrt() * y + s2.sqrt() * eps
            eps_hat = denoiser(z, gamma)
            # control variate: the optimal denoiser of N(0, I) data, sigma_t z_t, and its
            # expected loss in closed form
            mse = ((eps - eps_hat) ** 2).sum(1) - ((eps - s2.sqrt() * z) ** 2).sum(1)
            y2 = (y * y).sum(1)
            ends = torch.stack([g0, g1])
            part = torch.nn.functional.softplus(-ends) + torch.sigmoid(ends)
            reference = 0.5 * (D * (part[0] - part[1])
                               + y2 * (torch.sigmoid(g1) - torch.sigmoid(g0)))
            diffusion = 0.5 * (g1 - g0) * mse + reference
            prior = 0.5 * (torch.sigmoid(-g1) * y2
                           + D * (torch.nn.functional.softplus(-g1) - torch.sigmoid(-g1)))
            recon = 0.5 * D * (LOG_2PI + 1.0 + g0)
            loss = (recon + prior + diffusion).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            with torch.no_grad():
                weight = 1.0 - min(0.999, (1.0 + done) / (10.0 + done))
                for a, p in zip(average, params):
                    a.lerp_(p, weight)
    sync(device)
    return (time.perf_counter() - t0) / steps


def lvm_loop(Z, *, width, depth, steps, batch_size, lr, device, seed):
    """lvm.DiffusionModel for the same number of steps (whole epochs; no validation split)."""
    per_epoch = math.ceil(len(Z) / batch_size)
    epochs = max(1, steps // per_epoch)
    stamps = []
    model = lvm.DiffusionModel(width=width, depth=depth, batch_size=batch_size,
                               max_epochs=epochs, learning_rate=lr, validation_fraction=0.0,
                               device=device, random_state=seed)
    Zt = torch.as_tensor(Z, dtype=torch.float32, device=device)
    with lvm.settings.on_epoch(lambda record, name: (sync(device),
                                                     stamps.append(time.perf_counter()))):
        sync(device)
        t0 = time.perf_counter()
        model.fit(Zt)
    # from the first step to the last epoch's end: the set-up (standardization, building the
    # network) is timed apart
    first = stamps[0] - t0
    return (stamps[-1] - t0) / (epochs * per_epoch), first


def speed(Z, args, device):
    common = dict(width=args.width, depth=args.depth, batch_size=args.batch_size, lr=args.lr,
                  device=device)
    per_epoch = math.ceil(len(Z) / args.batch_size)
    steps = max(1, args.steps // per_epoch) * per_epoch
    lvm_loop(Z[:256], steps=4, seed=0, **common)  # warm-up
    hand_loop(Z[:256], steps=4, seed=0, **common)
    t_lvm, t_hand = [], []
    for r in range(args.repeats):  # interleaved, so machine load hits both alike
        t_lvm.append(lvm_loop(Z, steps=steps, seed=r, **common)[0])
        t_hand.append(hand_loop(Z, steps=steps, seed=r, **common))
    a, b = statistics.median(t_lvm), statistics.median(t_hand)
    print(f"\n1. speed: {len(Z)} x {Z.shape[1]} rows, denoiser width {args.width}, depth "
          f"{args.depth}, batch {args.batch_size}, {steps} Adam steps, device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} repeats")
    print(f"   lvm.DiffusionModel {1e3 * a:7.2f} ms/step   hand loop {1e3 * b:7.2f} ms/step   "
          f"ratio {a / b:.2f}x  (runs: lvm {', '.join(f'{1e3 * x:.2f}' for x in t_lvm)}; hand "
          f"{', '.join(f'{1e3 * x:.2f}' for x in t_hand)})")


# --------------------------------------------------------------------------------- 2. evidence
def _mean_se(v):
    v = np.asarray(v, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v)))


def gaussian_mixture(Y_tr, Y_te, ks, seed=0):
    """Full-covariance mixture, its number of components chosen on a validation split."""
    t0 = time.perf_counter()
    a, v = train_test_split(Y_tr, test_size=0.2, random_state=seed)
    scores = {}
    for k in ks:
        if k > len(a) // 2:
            continue
        g = GaussianMixture(k, covariance_type="full", n_init=2, random_state=seed).fit(a)
        scores[k] = g.score(v)
    best = max(scores, key=scores.get)
    g = GaussianMixture(best, covariance_type="full", n_init=2, random_state=seed).fit(Y_tr)
    return best, g.score_samples(Y_te), time.perf_counter() - t0


def choose_k(cls, Y_tr, ks, seed=0):
    a, v = train_test_split(Y_tr, test_size=0.2, random_state=seed)
    return max(ks, key=lambda k: cls(k).fit(a).score(v))


def evidence_table(name, Y_tr, Y_te, args, *, standardize):
    print(f"\n2. {name}: {len(Y_tr)} train / {len(Y_te)} held-out rows x {Y_tr.shape[1]} "
          f"features" + (", standardized per feature (Jacobian included)" if standardize else ""),
          flush=True)
    if standardize:
        mean, scale = Y_tr.mean(0), Y_tr.std(0)
        scale[scale == 0] = 1.0
        Y_tr, Y_te = (Y_tr - mean) / scale, (Y_te - mean) / scale
        jac = -float(np.log(scale).sum())
    else:
        jac = 0.0
    D = Y_tr.shape[1]
    ks = [k for k in args.ks if k < D]
    k_ppca = choose_k(lvm.PPCA, Y_tr, ks)
    k_fa = choose_k(lvm.FactorAnalysis, Y_tr, ks)
    K = min(args.latent, D - 1)
    models = {
        f"PPCA (K={k_ppca})": lvm.PPCA(k_ppca),
        f"FA (K={k_fa})": lvm.FactorAnalysis(k_fa),
        f"VAE (K={K})": lvm.VAE(K, random_state=0, **args.vae),
        f"GPLVM (K={K})": lvm.BayesianGPLVM(K, random_state=0, **args.gplvm),
        "diffusion": lvm.DiffusionModel(random_state=0, **args.diffusion),
    }
    rows, values = [], {}
    for label, model in models.items():
        t0 = time.perf_counter()
        model.fit(Y_tr)
        sec = time.perf_counter() - t0
        values[label] = np.asarray(model.score_samples(Y_te)) + jac  # as lvm.compare does
        rows.append((label, model.evidence_kind, *_mean_se(values[label]), sec))
        print(f"   {label:<14} fitted in {sec:.1f} s", flush=True)
    best_k, gm, sec = gaussian_mixture(Y_tr, Y_te, args.gmm_ks)
    label = f"GMM (k={best_k})"
    values[label] = gm + jac
    rows.append((label, "exact", *_mean_se(values[label]), sec))
    ppca_all = {k: lvm.PPCA(k).fit(Y_tr).score(Y_te) + jac for k in range(1, D)}
    best = max(ppca_all, key=ppca_all.get)
    print(f"   {'model':<16} {'evidence':<29} {'held-out':>9} {'± se':>6} {'fit s':>7}")
    for label, kind, v, se, sec in rows:
        print(f"   {label:<16} {kind:<29} {v:9.3f} {se:6.3f} {sec:7.1f}")
    print(f"   (PPCA's best held-out over K = 1..{D - 1}: {ppca_all[best]:.3f} at K = {best}; "
          f"GMM's components chosen on a validation split, fit seconds include the choice)")
    # paired over the same held-out rows: the spread of the per-row differences
    pairs = ", ".join(f"{label} {m:+.2f} ± {se:.2f}" for label, (m, se) in
                      ((k, _mean_se(values["diffusion"] - v)) for k, v in values.items()
                       if k != "diffusion"))
    print(f"   diffusion minus each, per held-out row (mean ± se): {pairs}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small settings (minutes)")
    p.add_argument("--steps", type=int, default=600, help="Adam steps for the speed test")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--latent", type=int, default=10, help="K of the VAE and the GPLVM")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-evidence", action="store_true")
    args = p.parse_args(argv)
    # FA's EM and the GPLVM stop at their iteration limits here; the table is what to read
    warnings.simplefilter("ignore", ConvergenceWarning)
    torch.set_num_threads(args.threads)
    device = lvm._base.resolve_device(args.device)
    args.ks = [1, 2, 3, 5, 8, 10, 15, 20, 30]
    args.gmm_ks = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20]
    args.vae, args.gplvm, args.diffusion = {}, {}, {}
    if args.quick:
        args.steps, args.repeats = min(args.steps, 120), min(args.repeats, 2)
        args.vae = {"max_epochs": 30}
        args.gplvm = {"max_iter": 100}
        args.diffusion = {"max_epochs": 150, "patience": 30, "n_eval_draws": 32}
        args.gmm_ks = [1, 2, 4, 8]
    try:
        oil = lvm.datasets.load_oil_flow().Y
    except FileNotFoundError as exc:
        oil = None
        print(f"oil flow not found ({exc}); speed on the digits, evidence on the digits only.")
    digits = lvm.datasets.load_digits().Y
    digits = digits[:, digits.var(0) > 0]
    digits = digits + np.random.default_rng(0).random(digits.shape)  # the same draws for all
    if not args.skip_speed:
        Z = oil if oil is not None else digits
        Z = (Z - Z.mean(0)) / Z.std(0)
        speed(Z, args, device)
    if not args.skip_evidence:
        if oil is not None:
            evidence_table("oil flow", *train_test_split(oil, test_size=0.2, random_state=0),
                           args, standardize=True)
        evidence_table("digits, dequantized",
                       *train_test_split(digits, test_size=0.2, random_state=0), args,
                       standardize=False)


if __name__ == "__main__":
    main()
