"""Benchmark: what a user of the ``lvm`` command waits for, in one run.

(a) ``lvm --help``: wall time of a fresh ``python -m lvm --help`` (median of ``--repeats``); it
    should be well under a second (importing ``lvm.cli`` imports no torch).
(b) ``lvm demo`` quiet: wall time of a fresh ``python -m lvm demo`` process, imports included, as
    a user measures it; its per-model progress lines are echoed.
(c) ``lvm demo`` under contention: the same beside ``--busy`` CPU-bound processes that this script
    starts itself (``python -c`` busy loops that also end on their own after ``--timeout`` s, and
    are killed in a ``finally``), as the ratio to (b). The target: at most 2x.
(d) the thread policy's effect on a small VAE and GPLVM fit, quiet and under contention, through
    ``lvm.settings.num_threads(n)`` where this version of lvm has it (skipped otherwise).

    python benchmarks/demo.py              # the full demo (minutes in all)
    python benchmarks/demo.py --quick      # lvm demo --quick: checks the script in seconds
    python benchmarks/demo.py --skip-demo  # (a) and (d) only

The environment is passed on unchanged (set OMP_NUM_THREADS yourself to see its effect); timings
on a machine running other work are not comparable with quiet ones, which is what (c) measures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings

BUSY = "import time\nend = time.monotonic() + {t}\nwhile time.monotonic() < end:\n    pass\n"


@contextlib.contextmanager
def busy_processes(n: int, timeout: float):
    """``n`` CPU-bound processes for the duration of the block (and at most ``timeout`` s)."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY.format(t=timeout)]) for _ in range(n)]
    try:
        time.sleep(0.5)  # let them reach full speed
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def help_seconds(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lvm", "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def demo_seconds(quick: bool, timeout: float, label: str) -> float:
    """Wall time of ``python -m lvm demo`` in a fresh process; echoes its progress lines."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "lvm", "demo", "--out", out] + (["--quick"] if quick else [])
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = threading.Timer(timeout, proc.kill)
        deadline.start()
        try:
            for line in proc.stderr:  # progress lines, as they come
                print(f"    {label}: {line.rstrip()}", flush=True)
            stdout, _ = proc.communicate()
        finally:
            deadline.cancel()
            proc.kill()
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"lvm demo failed with status {proc.returncode}:\n{stdout}")
    return seconds


# ------------------------------------------------------------------------------------------------
# (d) The thread policy's effect on a small VAE and GPLVM fit.
#     Needs lvm.settings.num_threads(n), a context manager the core adds with the thread policy;
#     without it this part says so and is skipped. Fill in / tune the fits here.
# ------------------------------------------------------------------------------------------------
def thread_policy(busy: int, timeout: float) -> None:
    import lvm

    settings = getattr(lvm, "settings", None)
    if settings is None or not hasattr(settings, "num_threads"):
        print("(d) thread policy: skipped (this lvm has no lvm.settings.num_threads)")
        return
    import torch

    data = lvm.datasets.load_digits()
    Y = data.Y[:600, data.Y.var(0) > 0] / 16.0
    fits = {
        "VAE (10 epochs)": lambda: lvm.VAE(2, hidden_sizes=(64,), max_epochs=10, device="cpu",
                                           random_state=0).fit(Y),
        "BayesianGPLVM (30 iterations)": lambda: lvm.BayesianGPLVM(
            2, n_inducing=20, max_iter=30, tol=None, device="cpu", random_state=0).fit(Y[:300]),
    }
    many = max(2, torch.get_num_threads())

    def seconds(fit, n):
        with settings.num_threads(n):
            t0 = time.perf_counter()
            fit()
            return time.perf_counter() - t0

    def policy(fit):
        t0 = time.perf_counter()
        fit()
        return time.perf_counter() - t0

    print(f"(d) thread policy: seconds per fit, quiet / beside {busy} busy processes (ratio)")
    # The fits are short on purpose: their convergence and constant-pixel warnings are expected.
    warnings.simplefilter("ignore")
    for name, fit in fits.items():
        fit()  # warm-up: first-call costs are not the policy's
        rule, fixed = "lvm's rule", f"{many} threads"
        runs = {rule: lambda: policy(fit), "1 thread": lambda: seconds(fit, 1),
                fixed: lambda: seconds(fit, many)}
        quiet = {k: run() for k, run in runs.items()}
        with busy_processes(busy, timeout):
            loaded = {k: run() for k, run in runs.items()}
        cells = ", ".join(f"{k} {quiet[k]:.2f} / {loaded[k]:.2f} s ({loaded[k] / quiet[k]:.1f}x)"
                          for k in runs)
        print(f"    {name}: {cells}")
        print(f"    {name}: {rule} is {quiet[fixed] / quiet[rule]:.1f}x faster than {fixed} "
              f"quiet, {loaded[fixed] / loaded[rule]:.1f}x beside busy processes")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="time `lvm demo --quick` instead")
    p.add_argument("--skip-demo", action="store_true", help="only (a) and (d)")
    p.add_argument("--busy", type=int, default=2, help="CPU-bound processes for (c) and (d)")
    p.add_argument("--repeats", type=int, default=5, help="runs of `lvm --help` (median)")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="seconds after which a demo run (and every busy process) is stopped")
    args = p.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}")

    print(f"(a) lvm --help: {help_seconds(args.repeats):.3f} s (median of {args.repeats})",
          flush=True)
    if not args.skip_demo:
        name = "lvm demo --quick" if args.quick else "lvm demo"
        quiet = demo_seconds(args.quick, args.timeout, "quiet")
        print(f"(b) {name}, quiet: {quiet:.1f} s", flush=True)
        with busy_processes(args.busy, args.timeout):
            loaded = demo_seconds(args.quick, args.timeout, f"{args.busy} busy")
        print(f"(c) {name} beside {args.busy} busy processes: {loaded:.1f} s, "
              f"{loaded / quiet:.2f}x the quiet time (target <= 2x)", flush=True)
    thread_policy(args.busy, args.timeout)


if __name__ == "__main__":
    main()
