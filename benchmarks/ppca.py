"""PPCA fit time and evidence: lvm.PPCA against scikit-learn's PCA(svd_solver="full"), one run.

    python benchmarks/ppca.py [--n 100000] [--d 100] [--k 10] [--repeats 5]

Same seeded PPCA data (float64) for both. Reports the best-of-`repeats` fit seconds, their ratio,
and the difference of mean log-likelihood per sample. scikit-learn's covariance uses 1/(N-1) where
maximum likelihood (lvm) uses 1/N; its variances are rescaled by (N-1)/N before scoring so both
evaluate the same model. With CUDA available, lvm on the GPU is timed too (data already resident).
"""

import argparse
import time

import torch
from sklearn.decomposition import PCA

import lvm


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    data = lvm.datasets.make_ppca(a.n, a.d, a.k, noise=0.5, random_state=0)
    Y = data.Y
    print(f"PPCA data: N={a.n}, D={a.d}, K={a.k}, float64, torch threads={torch.get_num_threads()}")

    t_lvm, ours = best_time(lambda: lvm.PPCA(a.k, device="cpu").fit(Y), a.repeats)
    t_sk, pca = best_time(lambda: PCA(a.k, svd_solver="full").fit(Y), a.repeats)
    pca.explained_variance_ *= (a.n - 1) / a.n
    pca.noise_variance_ *= (a.n - 1) / a.n
    ll_lvm, ll_sk = ours.score(Y), pca.score(Y)
    rows = [("lvm.PPCA (cpu)", t_lvm, ll_lvm), ("sklearn PCA full", t_sk, ll_sk)]
    if torch.cuda.is_available():
        Yg = torch.as_tensor(Y, device="cuda")
        lvm.PPCA(a.k, device="cuda").fit(Yg)  # warm-up: CUDA context, cuSOLVER handles

        def fit_gpu():
            m = lvm.PPCA(a.k, device="cuda").fit(Yg)
            torch.cuda.synchronize()
            return m

        t_gpu, g = best_time(fit_gpu, a.repeats)
        rows.append((f"lvm.PPCA ({torch.cuda.get_device_name()})", t_gpu, g.score(Yg)))
    print(f"{'method':<40} {'fit s':>9} {'speed-up vs sklearn':>20} {'mean log p(y)':>16}")
    for name, t, ll in rows:
        print(f"{name:<40} {t:9.4f} {t_sk / t:19.1f}x {ll:16.10f}")
    print(f"|difference of mean log-likelihood| lvm vs sklearn: {abs(ll_lvm - ll_sk):.2e} nats")


if __name__ == "__main__":
    main()
