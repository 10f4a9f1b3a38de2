"""Benchmark: lvm.BayesianGPLVM against the references a user would pick instead.

On oil flow (standardized per feature) and scikit-learn's digits, in one run:

* lvm's collapsed BayesianGPLVM (RBF-ARD, M = 50, L-BFGS);
* GPyTorch's own documented GPLVM recipe (examples/045_GPLVM, "GPLVM with SVI"), reimplemented here
  from that documentation: VariationalLatentVariable with a N(0, I) prior, per-output batched q(u)
  with 25 inducing points, ScaleKernel(RBFKernel(ARD)), batched GaussianLikelihood, VariationalELBO,
  Adam at 0.01, minibatches of 100, 10,000 iterations, random init (pca=False);
* GPy's BayesianGPLVM (collapsed bound, M = 50, L-BFGS), when ``GPy`` is importable (skipped
  cleanly otherwise).

For each: the bound in nats per point, seconds, 1-NN accuracy in the two most relevant latent dims
(leave-one-out errors and 10-fold accuracy), and the wall time lvm needs to reach each reference's
final bound. Then an SVI scaling run on synthetic data (N = 10^3 .. 10^5): seconds per epoch and
peak memory (CUDA when available, else the process's peak RSS, each N in its own process).

Every contender runs in this one process with the same torch / BLAS thread count (``--threads``),
one after the other, so their times compare; the machine may be shared, so read ratios.

    python benchmarks/gplvm.py                   # everything
    python benchmarks/gplvm.py --datasets oil --skip-scaling
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time

import numpy as np

from _threads import set_threads


def load(name):
    import lvm

    if name == "oil":
        d = lvm.datasets.load_oil_flow()
    elif name == "digits":
        d = lvm.datasets.load_digits()
    else:
        raise ValueError(f"unknown data set {name!r}; use 'oil' or 'digits'")
    Y = d.Y
    sd = Y.std(0)
    Y = (Y - Y.mean(0)) / np.where(sd > 0, sd, 1.0)
    return Y, d.labels


def one_nn(X, labels):
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

    _, idx = NearestNeighbors(n_neighbors=2).fit(X).kneighbors(X)
    loo_errors = int((labels[idx[:, 1]] != labels).sum())
    cv = StratifiedKFold(10, shuffle=True, random_state=0)
    acc = float(cross_val_score(KNeighborsClassifier(1), X, labels, cv=cv).mean())
    return loo_errors, acc


# ----------------------------------------------------------------------------------------- lvm
def run_lvm(Y, labels, Q, max_iter, M=50):
    """Fit lvm's collapsed model, recording (seconds, bound per point) after each group of steps."""

    import lvm

    trace = []

    def timed(record, name):  # the bound per point after each group of steps, with its time
        trace.append((time.perf_counter() - t0, record["train"]))

    with lvm.settings.on_epoch(timed):
        t0 = time.perf_counter()
        m = lvm.BayesianGPLVM(Q, n_inducing=M, max_iter=max_iter, tol=None, device="cpu",
                              random_state=0)
        m.fit(Y)
        seconds = time.perf_counter() - t0
    trace = [(t, v) for t, v in trace]  # fit-loop epochs only (transform is not called)
    X2 = m.latent_mean_[:, m.relevant_dims_[:2]]
    errs, acc = one_nn(X2, labels)
    errs_eff, acc_eff = one_nn(m.latent_mean_[:, m.relevant_dims_[: max(1, m.effective_dims_)]], labels)
    return dict(name="lvm (collapsed, L-BFGS)", bound=m.elbo_, seconds=seconds, nn_errors_2d=errs,
                nn_acc_2d=acc, nn_errors_effective=errs_eff, nn_acc_effective=acc_eff,
                effective_dims=m.effective_dims_, relevance=np.round(m.relevance_, 4).tolist(),
                iterations=m.n_iter_, trace=trace)


def time_to_reach(trace, target):
    for t, v in trace:
        if v >= target:
            return t
    return math.inf


# ------------------------------------------------------------------------ GPyTorch's recipe
def run_gpytorch_recipe(Y, labels, Q, n_iter, n_inducing=25, batch_size=100, seed=73):
    """GPyTorch's documented SVI-GPLVM recipe (examples/045_GPLVM), as written there."""
    import torch
    from gpytorch.distributions import MultivariateNormal
    from gpytorch.kernels import RBFKernel, ScaleKernel
    from gpytorch.likelihoods import GaussianLikelihood
    from gpytorch.means import ZeroMean
    from gpytorch.mlls import VariationalELBO
    from gpytorch.models.gplvm.bayesian_gplvm import BayesianGPLVM
    from gpytorch.models.gplvm.latent_variable import VariationalLatentVariable
    from gpytorch.priors import NormalPrior
    from gpytorch.variational import CholeskyVariationalDistribution, VariationalStrategy

    torch.manual_seed(seed)
    np.random.seed(seed)
    Yt = torch.tensor(Y, dtype=torch.float32)
    N, D = Yt.shape

    class bGPLVM(BayesianGPLVM):
        def __init__(self, n, data_dim, latent_dim, n_inducing):
            self.n = n
            self.batch_shape = torch.Size([data_dim])
            self.inducing_inputs = torch.randn(data_dim, n_inducing, latent_dim)
            q_u = CholeskyVariationalDistribution(n_inducing, batch_shape=self.batch_shape)
            q_f = VariationalStrategy(self, self.inducing_inputs, q_u, learn_inducing_locations=True)
            X_prior_mean = torch.zeros(n, latent_dim)
            prior_x = NormalPrior(X_prior_mean, torch.ones_like(X_prior_mean))
            X_init = torch.nn.Parameter(torch.randn(n, latent_dim))
            X = VariationalLatentVariable(n, data_dim, latent_dim, X_init, prior_x)
            super().__init__(X, q_f)
            self.mean_module = ZeroMean(ard_num_dims=latent_dim)
            self.covar_module = ScaleKernel(RBFKernel(ard_num_dims=latent_dim))

        def forward(self, X):
            return MultivariateNormal(self.mean_module(X), self.covar_module(X))

        def _get_batch_idx(self, batch_size):
            return np.sort(np.random.choice(np.arange(self.n), size=batch_size, replace=False))

    model = bGPLVM(N, D, Q, n_inducing)
    likelihood = GaussianLikelihood(batch_shape=model.batch_shape)
    mll = VariationalELBO(likelihood, model, num_data=N)
    optimizer = torch.optim.Adam([{"params": model.parameters()}, {"params": likelihood.parameters()}],
                                 lr=0.01)
    losses = []
    t0 = time.perf_counter()
    for _ in range(n_iter):
        batch_index = model._get_batch_idx(batch_size)
        optimizer.zero_grad()
        sample = model.sample_latent_variable()
        output_batch = model(sample[batch_index])
        loss = -mll(output_batch, Yt[batch_index].T).sum()
        losses.append(loss.item())  # as the recipe does (it prints it every step)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        inv_l = 1.0 / model.covar_module.base_kernel.lengthscale.reshape(-1)
        order = torch.argsort(inv_l, descending=True).numpy()
        X = model.X.q_mu.detach().numpy()
    errs, acc = one_nn(X[:, order[:2]], labels)
    final = -float(np.mean(losses[-100:]))
    return dict(name="GPyTorch recipe (SVI, Adam)", bound=final, bound_note="mean of last 100 minibatch ELBOs",
                seconds=seconds, nn_errors_2d=errs, nn_acc_2d=acc, iterations=n_iter)


# ------------------------------------------------------------------------------------- GPy
def run_gpy(Y, labels, Q, max_iters, M=50):
    try:
        import GPy
    except ImportError:
        return None
    np.random.seed(0)
    t0 = time.perf_counter()
    m = GPy.models.BayesianGPLVM(Y, Q, num_inducing=M)
    m.optimize("lbfgs", max_iters=max_iters, messages=False)
    seconds = time.perf_counter() - t0
    sens = np.asarray(m.kern.input_sensitivity())
    order = np.argsort(-sens)
    X = np.asarray(m.X.mean)
    errs, acc = one_nn(X[:, order[:2]], labels)
    return dict(name="GPy BayesianGPLVM (collapsed, L-BFGS)", bound=float(np.ravel(m.log_likelihood())[0]) / Y.shape[0],
                seconds=seconds, nn_errors_2d=errs, nn_acc_2d=acc, iterations=max_iters)


# ---------------------------------------------------------------------------------- scaling
def _vm_hwm_mib():
    """This process's peak resident set (Linux VmHWM; unlike ru_maxrss it is not inherited through
    fork + exec from the parent)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scaling_one(n, epochs, device):
    import torch

    import lvm

    rng = np.random.RandomState(0)
    x = rng.randn(n, 2)
    W = rng.randn(2, 10)
    Y = np.tanh(x @ W) + 0.1 * rng.randn(n, 10)
    def fit(n_epochs):
        m = lvm.BayesianGPLVM(2, inference="svi", n_inducing=50, batch_size=1024, max_iter=n_epochs,
                              tol=None, device=device, dtype="float32", random_state=0)
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        m.fit(Y)
        if device == "cuda":
            torch.cuda.synchronize()
        return m, time.perf_counter() - t0

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    fit(1)  # warm-up: first-call costs of torch / gpytorch
    _, setup = fit(1)  # set-up (PCA, q(u) start) plus one epoch
    m, total = fit(1 + epochs)
    sec = (total - setup) / epochs  # per epoch, set-up excluded
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
        kind = "CUDA peak allocated MiB"
    else:
        peak = _vm_hwm_mib()
        kind = "peak RSS MiB (process, VmHWM)"
    return dict(n=n, seconds_per_epoch=sec, peak_mib=peak, memory=kind, elbo=m.elbo_, device=device)


def run_scaling(sizes, epochs, threads):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--scaling-child", str(n), "--epochs", str(epochs),
                              "--threads", str(threads), "--device", device],
                             capture_output=True, text=True)
        if out.returncode != 0:
            rows.append(dict(n=n, error=out.stderr.strip().splitlines()[-1:]))
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="*", default=["oil", "digits"], choices=["oil", "digits"])
    p.add_argument("--Q", type=int, default=10)
    p.add_argument("--lvm-iters", type=int, default=1000)
    p.add_argument("--recipe-iters", type=int, default=10000)
    p.add_argument("--gpy-iters", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-gpy", action="store_true")
    p.add_argument("--skip-recipe", action="store_true")
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument("--scaling-sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--scaling-child", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None, help="also write the results here")
    a = p.parse_args()
    set_threads(a.threads)
    import warnings

    import torch

    torch.set_num_threads(a.threads)
    warnings.simplefilter("ignore")
    if a.scaling_child is not None:
        print(json.dumps(scaling_one(a.scaling_child, a.epochs, a.device)))
        return

    results = {}
    for ds in a.datasets:
        try:
            Y, labels = load(ds)
        except Exception as exc:  # e.g. DataFileNotFoundError
            print(f"[{ds}] skipped: {exc}")
            continue
        print(f"\n== {ds}: N={Y.shape[0]}, D={Y.shape[1]}, Q={a.Q}, threads={a.threads} ==", flush=True)
        rows = [run_lvm(Y, labels, a.Q, a.lvm_iters)]
        print(_fmt(rows[-1]), flush=True)
        if not a.skip_recipe:
            rows.append(run_gpytorch_recipe(Y, labels, a.Q, a.recipe_iters))
            print(_fmt(rows[-1]), flush=True)
        if not a.skip_gpy:
            try:
                g = run_gpy(Y, labels, a.Q, a.gpy_iters)
            except Exception as exc:  # GPy is an optional reference; report and go on
                print(f"GPy failed: {type(exc).__name__}: {exc}")
                g = None
            if g is None:
                print("GPy: not installed, skipped")
            else:
                rows.append(g)
                print(_fmt(rows[-1]), flush=True)
        trace = rows[0]["trace"]
        for ref in rows[1:]:
            t = time_to_reach(trace, ref["bound"])
            ref["lvm_seconds_to_reach"] = t
            ref["speedup"] = ref["seconds"] / t if t > 0 else math.inf
            print(f"lvm reaches {ref['name']}'s final bound {ref['bound']:.3f} after {t:.1f} s: "
                  f"{ref['speedup']:.1f}x sooner than its {ref['seconds']:.1f} s", flush=True)
        for r in rows:
            r.pop("trace", None)
        results[ds] = rows
    if not a.skip_scaling:
        print("\n== SVI scaling (synthetic, D=10, Q=2, M=50, batch 1024, float32) ==", flush=True)
        results["scaling"] = run_scaling(a.scaling_sizes, a.epochs, a.threads)
        for r in results["scaling"]:
            print(r, flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1, default=str)


def _fmt(r):
    extra = ""
    if "effective_dims" in r:
        extra = (f", effective dims {r['effective_dims']} (1-NN there: {r['nn_errors_effective']} LOO "
                 f"errors, {r['nn_acc_effective']:.4f} 10-fold)")
    return (f"{r['name']}: bound {r['bound']:.3f} nats/point, {r['seconds']:.1f} s, 2-D 1-NN: "
            f"{r['nn_errors_2d']} LOO errors, {r['nn_acc_2d']:.4f} 10-fold{extra}")


if __name__ == "__main__":
    main()
