"""Every family on a GPU, in one command: fit, score, device checks, host syncs, speed-ups.

    python benchmarks/gpu.py [--cpu-fraction 0.05] [--no-tests]

With CUDA present it fits and scores, on GPU-sized data made on the device,

=====================  =================  ==================================================
family                 rows (D = 100)     training run
=====================  =================  ==================================================
PPCA (K = 10)          1,000,000          closed form
VAE                    100,000            3 epochs, batch 128
SVI BayesianGPLVM      100,000            3 epochs, batch 256 (``inference="svi"``)
collapsed GPLVM        10,000             100 L-BFGS iterations
DiffusionModel         100,000            3 epochs, batch 128
=====================  =================  ==================================================

(short runs: they prove the device path and time it; convergence is for the other benchmarks),
and for each prints the fit and score seconds, the fit as a multiple of the PPCA floor (one Gram
matrix and one eigendecomposition of the 1,000,000 x 100 data on the device), the speed-up over
the CPU, whether the fitted model (every tensor, module and generator it holds) and its outputs
(``transform``, ``score_samples``) live on the device and are finite, and the host
synchronizations per training step.

**Syncs per step**: a short fit on the first rows (3 epochs of 20 minibatch steps; for the
collapsed GPLVM 1,000 rows and epochs of 20 L-BFGS iterations) runs under the torch profiler,
which records every ``cudaStreamSynchronize``, ``cudaDeviceSynchronize``,
``cudaEventSynchronize`` and synchronous ``cudaMemcpy`` (an ``.item()``, a ``bool()`` of a
tensor, a copy to the host). A marker at each epoch's end (``lvm.settings.on_epoch``) splits them by
epoch; the most in any one epoch after the first (which holds the set-up), over the steps of an
epoch, is the figure. An epoch's own bookkeeping (its objective and validation reaching the host
once) is in it, so "none per step" reads as a small number of syncs per epoch that does not grow
with its steps. PPCA has no steps: its row shows the syncs of one whole fit.

**CPU reference**: the same functions on the CPU, on ``--cpu-fraction`` of the rows (at least
200; same D, epochs and batch sizes), their seconds scaled to the GPU's work: fit seconds per row
processed (rows times epochs or iterations) and score seconds per row scored, times the GPU run's
rows. Fixed costs (set-up, PCA starts) scale too, so the ratio is a guide, not a measurement of
the CPU at full size. (The CPU's share of the time is mostly the SVI GPLVM's score: with
per-feature q(u) each draw costs D M^2; 5,000 rows took 135 s on one busy core of the development
machine.)

Then it runs the ``gpu``-marked tests (``python -m pytest -m gpu -q``). Without CUDA it says so
and exits 0. Designed to finish in under 8 minutes on one H100/H200-class GPU.

**Measured** on a lent H200 machine (torch 2.11.0+cu130, 16 CPU threads, ``--cpu-fraction
0.02``; 224 s for the benchmark, and the 10 ``gpu`` tests passed in 16 s)::

    PPCA floor on the device (Gram + eigh, 1,000,000 x 100, float64): 0.0020 s
    family                rows   fit s  x floor  score s  fit x CPU  score x CPU  syncs/step
    PPCA             1,000,000    0.01        6     0.01      38.1x        46.0x  21/fit
    VAE                100,000   13.94     6927     2.82       1.8x        25.3x  0.20 (4/20)
    SVI GPLVM          100,000   19.29     9581    63.44       2.7x         2.4x  9.05 (181/20)
    collapsed GPLVM     10,000    2.37     1175     0.07      24.9x        39.9x  103.90 (1039/10)
    DiffusionModel     100,000   25.33    12584     0.83       1.1x       106.6x  0.20 (4/20)

Every model and output on the device and finite. Read with it: the first run on that machine
found scikit-learn's neighbour search of the 90,000 training rows on the host taking most of the
VAE's fit (57.3 s; 13.9 s once :class:`lvm.latents.neighbors.NearestRows` searched on the
device) and of the SVI GPLVM's (73.3 s; 19.3 s). The minibatch families' steps (batch 128-256)
cost 6-12 ms on the GPU, launch-bound, against the 16 CPU threads' 1.1-2.7x more. The SVI
GPLVM's score of all 100,000 training rows is not the CPU's task scaled: q(x) is kept for the
first 20,000 training rows (:class:`lvm.latents.frozen.FrozenPosteriors`), so 80,000 rows are
fitted as new rows (``transform_max_iter`` L-BFGS iterations), while all 2,000 rows of the CPU's
run are looked up. Syncs: the collapsed GPLVM's come from ``torch.optim.LBFGS`` (the two-loop
recursion's tensor step sizes and the line search's decisions on the host), the SVI GPLVM's 9
per step mostly from GPyTorch's variational strategy (its Cholesky's check, the variance's),
neither in lvm's code; the VAE and the diffusion model have none per step (4 per epoch: its
bookkeeping). The diffusion model's fit took 16.3 s in the first run on the same kind of
machine: the figures of one run move by that much.
"""

from __future__ import annotations

import argparse
import itertools
import math
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch

import lvm

#: Rows per family on the GPU.
SIZES = {"PPCA": 1_000_000, "VAE": 100_000, "SVI GPLVM": 100_000, "collapsed GPLVM": 10_000,
         "DiffusionModel": 100_000}
D, K, EPOCHS, GPLVM_ITERS = 100, 10, 3, 100
SYNC_EVENTS = {"cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize",
               "cudaMemcpy"}
EPOCH_MARK = "lvm.epoch_end"


# ---------------------------------------------------------------------------- helpers
def make_data(n: int, device, dtype=torch.float32, d: int = D, k: int = K, seed: int = 0):
    """n rows of PPCA data (min(k, d) latent dimensions, noise variance 0.25, an offset), made
    on ``device``."""
    k = min(k, d)
    gen = torch.Generator(device=device).manual_seed(seed)
    W = torch.randn(d, k, generator=gen, device=device, dtype=dtype)
    X = torch.randn(n, k, generator=gen, device=device, dtype=dtype)
    noise = torch.randn(n, d, generator=gen, device=device, dtype=dtype)
    return X @ W.T + 0.5 * noise + 3.0


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    """(seconds, fn()) with the device's queue drained before and after."""
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


def model_on(model, device) -> bool:
    """Whether every tensor, module (parameters and buffers) and generator the fitted model
    holds is on ``device``'s type, as ``device_`` says."""
    things = list(vars(model).values())
    tensors = [t for t in things if isinstance(t, (torch.Tensor, torch.Generator))]
    tensors += [t for m in things if isinstance(m, torch.nn.Module)
                for t in itertools.chain(m.parameters(), m.buffers())]
    want = torch.device(device).type
    return model.device_.type == want and all(t.device.type == want for t in tensors)


def profiled(fn):
    """Run ``fn()`` under the torch profiler with a marker at each epoch's end; return the start
    times (microseconds) of the markers and of the host synchronizations."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)

    def mark(record, name):
        with torch.profiler.record_function(EPOCH_MARK):
            pass

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.profiler.profile(activities=activities) as prof, lvm.settings.on_epoch(mark):
            fn()
    cpu = torch.autograd.DeviceType.CPU  # (not a marker's copy on the GPU's timeline)
    events = prof.events()
    marks = sorted({e.time_range.start for e in events
                    if e.name == EPOCH_MARK and e.device_type == cpu})
    return marks, sorted(e.time_range.start for e in events if e.name in SYNC_EVENTS)


def most_per_epoch(marks, syncs) -> int:
    """The most syncs between two consecutive epoch ends (so not in the first epoch, which holds
    the set-up); all of them when there are fewer than two epoch ends."""
    if len(marks) < 2:
        return len(syncs)
    return max(sum(a < s <= b for s in syncs) for a, b in zip(marks, marks[1:]))


def syncs_per_epoch(fit, device) -> int:
    """Host synchronizations in the epochs of ``fit()`` (see :func:`most_per_epoch`); 0 on the
    CPU, where there is no device to wait for (and the profiler would only slow the fit)."""
    if torch.device(device).type == "cpu":
        return 0
    return most_per_epoch(*profiled(fit))


def _quietly(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short runs do not converge: that is not the point here
        return fn()


def run_family(name, make, Y, device, *, fit_rows, sync_rows, steps_per_epoch=None):
    """Fit ``make()`` to ``Y`` and score ``Y``, timed; check the device and the outputs; count
    the syncs of a short fit to ``Y[:sync_rows]``, whose epochs have ``steps_per_epoch(model,
    rows)`` steps (``model`` the full fit, same plan; None: no steps, a closed form). Returns a
    dict of the figures."""
    estimator = make()  # (outside the clock: the first use of a family imports it)
    fit_s, model = timed(lambda: _quietly(lambda: estimator.fit(Y)), device)
    score_s, scores = timed(lambda: _quietly(lambda: model.score_samples(Y)), device)
    embedding = _quietly(lambda: model.transform(Y[:100]))
    outputs_on = all(isinstance(t, torch.Tensor) and t.device.type == torch.device(device).type
                     for t in (scores, embedding))
    finite = bool(torch.isfinite(scores).all()) and bool(torch.isfinite(embedding).all())
    sync_Y = Y[:sync_rows]
    syncs = syncs_per_epoch(lambda: make().fit(sync_Y), device)
    return {"family": name, "rows": Y.shape[0], "fit_s": fit_s, "score_s": score_s,
            "fit_rows": fit_rows, "model_on_device": model_on(model, device),
            "outputs_on_device": outputs_on, "finite": finite, "syncs": syncs,
            "steps_per_epoch": steps_per_epoch and steps_per_epoch(model, len(sync_Y))}


def _minibatches(batch_size, validation_fraction=0.0):
    """Steps per epoch of a minibatch fit to n rows, after the validation split."""
    def steps(model, n):
        n_val = max(1, round(validation_fraction * n)) if validation_fraction else 0
        return math.ceil((n - n_val) / batch_size)
    return steps


# ---------------------------------------------------------------------------- the families
def run_ppca(device, n, d=D):
    Y = make_data(n, device, torch.float64, d)
    return run_family("PPCA", lambda: lvm.PPCA(min(K, d), device=device), Y, device, fit_rows=n,
                      sync_rows=n)


def run_vae(device, n, epochs=EPOCHS, batch_size=128, d=D):
    Y = make_data(n, device, torch.float32, d)

    def make():
        return lvm.VAE(2, batch_size=batch_size, max_epochs=epochs, device=device,
                       random_state=0)

    n_train = n - max(1, round(0.1 * n))  # the default validation_fraction holds out 10%
    return run_family("VAE", make, Y, device, fit_rows=epochs * n_train, sync_rows=2800,
                      steps_per_epoch=_minibatches(batch_size, 0.1))


def run_svi_gplvm(device, n, epochs=EPOCHS, batch_size=256, d=D):
    Y = make_data(n, device, torch.float64, d)

    def make():
        return lvm.BayesianGPLVM(2, inference="svi", batch_size=batch_size, max_iter=epochs,
                                 device=device, random_state=0)

    return run_family("SVI GPLVM", make, Y, device, fit_rows=epochs * n,
                      sync_rows=20 * batch_size, steps_per_epoch=_minibatches(batch_size))


def run_collapsed_gplvm(device, n, iters=GPLVM_ITERS, d=D):
    Y = make_data(n, device, torch.float64, d)

    def make():
        return lvm.BayesianGPLVM(2, max_iter=iters, device=device, random_state=0)

    def lbfgs_iterations(model, rows):  # an epoch is one L-BFGS call of n_iter_ / n_epochs_
        return model.n_iter_ // max(1, model.n_epochs_)

    return run_family("collapsed GPLVM", make, Y, device, fit_rows=iters * n, sync_rows=1000,
                      steps_per_epoch=lbfgs_iterations)


def run_diffusion(device, n, epochs=EPOCHS, batch_size=128, d=D):
    Y = make_data(n, device, torch.float32, d)

    def make():
        return lvm.DiffusionModel(batch_size=batch_size, max_epochs=epochs, device=device,
                                  random_state=0)

    n_train = n - max(1, round(0.1 * n))
    return run_family("DiffusionModel", make, Y, device, fit_rows=epochs * n_train,
                      sync_rows=2800, steps_per_epoch=_minibatches(batch_size, 0.1))


RUNS = {"PPCA": run_ppca, "VAE": run_vae, "SVI GPLVM": run_svi_gplvm,
        "collapsed GPLVM": run_collapsed_gplvm, "DiffusionModel": run_diffusion}


def ppca_floor(device, n, repeats=3) -> float:
    """Seconds of one Gram matrix and one D x D eigendecomposition of n x D float64 data on
    ``device`` (the median of ``repeats``, after a warm-up)."""
    Y = make_data(n, device, torch.float64)
    torch.linalg.eigh(Y[:1000].T @ Y[:1000])  # warm-up: handles, kernels
    times = sorted(timed(lambda: torch.linalg.eigh(Y.T @ Y), device)[0] for _ in range(repeats))
    return times[len(times) // 2]


def run_all(device, sizes) -> list[dict]:
    """Each family's figures, printed as it finishes; a family that raises is reported (its
    traceback printed, ``error`` in its dict) and the others still run."""
    results = []
    for name, n in sizes.items():
        t0 = time.perf_counter()
        try:
            r = RUNS[name](device, n)
        except Exception as e:  # noqa: BLE001  (one family's failure must not hide the others')
            traceback.print_exc()
            r = {"family": name, "rows": n, "error": f"{type(e).__name__}: {e}"}
        print(f"  [{torch.device(device).type}] {name}: {time.perf_counter() - t0:.1f} s "
              f"{ {k: v for k, v in r.items() if k != 'family'} }", flush=True)
        results.append(r)
    return results


# ---------------------------------------------------------------------------- report
def report(gpu, cpu, floor, cpu_fraction) -> None:
    print(f"PPCA floor on the device (Gram + eigh, {SIZES['PPCA']:,} x {D}, float64): "
          f"{floor:.4f} s")
    head = (f"{'family':<16} {'rows':>9} {'fit s':>8} {'x floor':>8} {'score s':>8} "
            f"{'CPU fit s*':>10} {'fit x':>7} {'CPU score s*':>12} {'score x':>8} "
            f"{'on device':>9} {'finite':>6} {'syncs/step':>11}")
    print(head)
    for g, c in zip(gpu, cpu):
        if "error" in g or "error" in c:
            print(f"{g['family']:<16} failed: {g.get('error') or c.get('error')}")
            continue
        cpu_fit = c["fit_s"] * g["fit_rows"] / c["fit_rows"]
        cpu_score = c["score_s"] * g["rows"] / c["rows"]
        on = g["model_on_device"] and g["outputs_on_device"]
        steps = g["steps_per_epoch"]
        syncs = (f"{g['syncs']}/fit" if steps is None
                 else f"{g['syncs'] / steps:.2f} ({g['syncs']}/{steps})")
        print(f"{g['family']:<16} {g['rows']:>9,} {g['fit_s']:8.2f} {g['fit_s'] / floor:8.0f} "
              f"{g['score_s']:8.2f} {cpu_fit:10.1f} {cpu_fit / g['fit_s']:6.1f}x "
              f"{cpu_score:12.1f} {cpu_score / g['score_s']:7.1f}x {str(on):>9} "
              f"{str(g['finite']):>6} {syncs:>11}")
    print(f"* the CPU's seconds on {cpu_fraction:g} of the rows, scaled to the GPU's rows "
          "(see the module docstring); syncs/step: the most syncs in one epoch / its steps")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu-fraction", type=float, default=0.05)
    p.add_argument("--no-tests", action="store_true", help="skip the gpu-marked tests")
    a = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA: benchmarks/gpu.py needs a GPU; nothing to run.")
        return 0
    t0 = time.perf_counter()
    device = torch.device("cuda")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, lvm {lvm.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    lvm.PPCA(2, device=device).fit(make_data(1000, device, torch.float64))  # CUDA context
    floor = ppca_floor(device, SIZES["PPCA"])
    gpu = run_all(device, SIZES)
    cpu = run_all(torch.device("cpu"),
                  {name: max(200, int(n * a.cpu_fraction)) for name, n in SIZES.items()})
    report(gpu, cpu, floor, a.cpu_fraction)
    print(f"benchmark: {time.perf_counter() - t0:.0f} s")
    if a.no_tests:
        return 0
    root = Path(__file__).resolve().parents[1]
    return subprocess.call([sys.executable, "-m", "pytest", "-m", "gpu", "-q"], cwd=root)


if __name__ == "__main__":
    sys.exit(main())
