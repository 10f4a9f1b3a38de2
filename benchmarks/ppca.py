"""PPCA and factor analysis fit time against their floors and scikit-learn's PCA, one run.

    python benchmarks/ppca.py [--n 100000] [--d 100] [--k 10] [--repeats 5] [--threads 1]

Same seeded PPCA data (float64) for every method, passed as a numpy array. Each time is the median
of ``repeats`` fits (and, beside it, the least: what the code costs when nothing else runs), the
methods taking turns round by round; the ratios are taken within this one run. ``--threads``
fixes torch's and the BLAS's thread counts for every method alike (default 1: a fair comparison
on a shared machine).

- **PPCA floor**: one Gram matrix Y^T Y of the raw data and one D x D eigendecomposition
  (``torch.linalg.eigh``) -- no validation, no centring: what any exact PCA must at least pay.
- **FA floor**: the same Gram matrix, then the eigendecomposition of the PPCA start and as many EM
  iterations on the D x D covariance (the Rubin-Thayer updates of :class:`lvm.FactorAnalysis`) as
  lvm's fit ran: the model's math without the data gate.
- scikit-learn's ``PCA(svd_solver="full")``: its covariance uses 1/(N-1) where maximum likelihood
  (lvm) uses 1/N; its variances are rescaled by (N-1)/N before scoring so both evaluate the same
  model, and the mean log-likelihoods are compared.

With CUDA available, lvm's PPCA on the GPU is timed too (data already resident).
"""

import argparse
import time

import numpy as np
import torch
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

import lvm


def median_times(fns, repeats):
    """The median and the least seconds of each function over ``repeats`` rounds, each round
    running every function once in turn (so a change of load on a shared machine hits them
    alike), and each function's last output."""
    times, outs = {name: [] for name in fns}, {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {name: (float(np.median(t)), min(t)) for name, t in times.items()}, outs


def ppca_floor(Y):
    T = torch.as_tensor(Y)
    return torch.linalg.eigh(T.T @ T)


def fa_floor(Y, k, n_iter):
    T = torch.as_tensor(Y)
    S = (T.T @ T) / T.shape[0]
    eigvals, eigvecs = torch.linalg.eigh(S)
    eigvals, eigvecs = eigvals.flip(0), eigvecs.flip(1)
    W = eigvecs[:, :k] * (eigvals[:k] - eigvals[k:].mean()).clamp_min(0).sqrt()
    var, noise = torch.diagonal(S), eigvals[k:].mean().expand(S.shape[0])
    eye = torch.eye(k, dtype=S.dtype)
    for _ in range(n_iter):
        Wp = W / noise.unsqueeze(-1)
        Minv = torch.linalg.inv(eye + W.T @ Wp)
        beta = Minv @ Wp.T
        SbT = S @ beta.T
        W = torch.linalg.solve(Minv + beta @ SbT, SbT.T).T
        noise = (var - (W * SbT).sum(1)).clamp_min(1e-8 * var)
    return W, noise


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    threadpool_limits(a.threads)
    data = lvm.datasets.make_ppca(a.n, a.d, a.k, noise=0.5, random_state=0)
    Y = data.Y
    print(f"PPCA data: N={a.n}, D={a.d}, K={a.k}, float64, threads={a.threads}, {a.repeats} "
          "rounds (median and least seconds)")

    fa_iters = lvm.FactorAnalysis(a.k, device="cpu").fit(Y).n_iter_
    t, out = median_times({
        "PPCA floor (Gram + eigh)": lambda: ppca_floor(Y),
        "lvm.PPCA (cpu)": lambda: lvm.PPCA(a.k, device="cpu").fit(Y),
        "sklearn PCA full": lambda: PCA(a.k, svd_solver="full").fit(Y),
        f"FA floor (Gram + {fa_iters} EM its)": lambda: fa_floor(Y, a.k, fa_iters),
        "lvm.FactorAnalysis (cpu)": lambda: lvm.FactorAnalysis(a.k, device="cpu").fit(Y),
    }, a.repeats)
    ours, pca, fa = out["lvm.PPCA (cpu)"], out["sklearn PCA full"], out["lvm.FactorAnalysis (cpu)"]
    pca.explained_variance_ *= (a.n - 1) / a.n
    pca.noise_variance_ *= (a.n - 1) / a.n
    ll_lvm, ll_sk = ours.score(Y), pca.score(Y)
    fa_floor_name = f"FA floor (Gram + {fa_iters} EM its)"
    # (name, its floor's name, mean log-likelihood, compared with scikit-learn's PCA)
    rows = [("PPCA floor (Gram + eigh)", "PPCA floor (Gram + eigh)", None, True),
            ("lvm.PPCA (cpu)", "PPCA floor (Gram + eigh)", ll_lvm, True),
            ("sklearn PCA full", "PPCA floor (Gram + eigh)", ll_sk, True),
            (fa_floor_name, fa_floor_name, None, False),
            ("lvm.FactorAnalysis (cpu)", fa_floor_name, fa.score(Y), False)]
    if torch.cuda.is_available():
        Yg = torch.as_tensor(Y, device="cuda")
        lvm.PPCA(a.k, device="cuda").fit(Yg)  # warm-up: CUDA context, cuSOLVER handles

        def fit_gpu():
            m = lvm.PPCA(a.k, device="cuda").fit(Yg)
            torch.cuda.synchronize()
            return m

        name = f"lvm.PPCA ({torch.cuda.get_device_name()})"
        t_gpu, g = median_times({name: fit_gpu}, a.repeats)
        t.update(t_gpu)
        rows.append((name, "PPCA floor (Gram + eigh)", g[name].score(Yg), True))
    sk = t["sklearn PCA full"]
    print(f"{'method':<34} {'median s':>9} {'x floor':>8} {'vs sklearn':>11} {'least s':>8} "
          f"{'x floor':>8} {'vs sklearn':>11} {'mean log p(y)':>16}")
    for name, floor, ll, vs_sklearn in rows:
        cells = ""
        for i in (0, 1):  # the medians, then the least times
            versus = f"{sk[i] / t[name][i]:10.1f}x" if vs_sklearn else f"{'':>11}"
            cells += f" {t[name][i]:9.4f} {t[name][i] / t[floor][i]:7.2f}x {versus}"
        print(f"{name:<34}{cells} {'' if ll is None else f'{ll:16.10f}'}")
    print(f"|difference of mean log-likelihood| lvm PPCA vs sklearn: {abs(ll_lvm - ll_sk):.2e} "
          f"nats ({abs(ll_lvm - ll_sk) / abs(ll_sk):.1e} relative)")


if __name__ == "__main__":
    main()
