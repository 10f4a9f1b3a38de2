"""Benchmark: the full evidence table, every lvm family beside the references a user would pick
instead, on the same split of the same data, in one run.

For each data set, ``lvm.compare`` fits PPCA, FactorAnalysis, the VAE and the Bayesian GPLVM (2-D
latent, the demo's settings, ``lvm.cli.DEMO_MODELS``) and the diffusion model (latents of the
data's dimension) and reports held-out log p(y) per point in nats with its standard error over
points, the training value, fit seconds and whether each fit stopped by its criterion. Beside
them, on the same rows and in the same units (the data as passed, Jacobian of any
standardization included):

* scikit-learn's ``PCA(2).score`` and ``FactorAnalysis(2).score``; PCA's score is checked against
  lvm's PPCA once scikit-learn's variances are rescaled by (N - 1) / N (lvm's PPCA is the
  maximum-likelihood model, scikit-learn's PCA uses the unbiased covariance);
* a hand-written PyTorch VAE loop (``benchmarks/vae.py``'s ``hand_loop``: same hidden sizes,
  batch, epochs and learning rate as lvm's VAE, a shared noise variance, random start), trained on
  the data standardized as lvm does it (per-feature mean, one scale) and evaluated by
  importance sampling (100 draws from its encoder, per row);
* GPy's ``BayesianGPLVM`` (Q = 2, M = 50, L-BFGS) on oil flow when GPy is installed: its
  training bound only (GPy has no held-out evidence);
* on ``make_ppca`` data, the exact held-out evidence of the true generating model.

Data sets (``--datasets``): ``ppca`` (make_ppca 2000 x 10, K = 2, noise 0.1), ``oil`` (oil flow,
1000 x 12, standardized per feature), ``digits`` (scikit-learn's 8 x 8 digits, the 61 pixels not
blank in every image, raw intensities dequantized: uniform noise in [0, 1), the same draws for
every model, via ``lvm.compare(..., dequantize=True)``), ``frey`` (Frey faces, 1965 x 560, raw
intensities 0..255, dequantized) and ``usps`` (USPS train, 7291 x 256, intensities in [0, 1] as
stored, not integers). 80 % train / 20 % held out, ``random_state=0``. Data files are read from
../shared/data; a data set whose file is absent is skipped with a note.

Last, the GPLVM's speed against GPyTorch's documented SVI-GPLVM recipe on the digits
(``benchmarks/gplvm.py``'s machinery: standardized digits, Q = 10): the wall time lvm's collapsed
bound needs to reach the recipe's final bound, and the ratio of the recipe's time to it, in one run.

    python benchmarks/compare.py --quick              # 300-row subsets, tiny settings, ~2 minutes
    python benchmarks/compare.py --datasets oil       # one data set, every model's defaults
    python benchmarks/compare.py --out table.md       # also write the table (.md, else CSV)

Timings on a shared machine vary; every contender runs in this one process with the same thread
count (``--threads``, default 1), one after the other.
"""

from __future__ import annotations

import sys

from _threads import set_threads, threads_from_argv  # noqa: E402

# BLAS, OpenMP and numba thread pools are sized when the libraries load: set the count first.
set_threads(threads_from_argv())

import argparse  # noqa: E402
import csv  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.decomposition import FactorAnalysis as SkFactorAnalysis  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import lvm  # noqa: E402
from lvm.cli import DEMO_MODELS, DEMO_QUICK  # noqa: E402

HERE = Path(__file__).resolve().parent
LOG_2PI = math.log(2 * math.pi)
DATASETS = ["ppca", "oil", "digits", "frey", "usps"]
K = 2  # the demo's latent dimension


def _import_benchmark(name):
    """Another benchmark script as a module (``benchmarks/`` is not a package), or None."""
    path = HERE / f"{name}.py"
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except Exception as exc:  # noqa: BLE001 - a missing optional reference is reported, not fatal
        print(f"note: benchmarks/{name}.py not importable ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return None


def _mean_se(v):
    v = np.asarray(v, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


# ------------------------------------------------------------------------------------- data
def load(name, quick, max_rows):
    """(Y, description, standardize, dequantize, extra) for a data set; raises
    DataFileNotFoundError when its file is absent. ``extra`` holds the true model for ppca."""
    extra = {}
    if name == "ppca":
        d = lvm.datasets.make_ppca(2000, 10, 2, noise=0.1, random_state=0)
        Y, desc, std, deq = d.Y, "make_ppca(2000, 10, K=2, noise=0.1), raw", False, False
        extra["truth"] = d
    elif name == "oil":
        Y = lvm.datasets.load_oil_flow().Y
        desc, std, deq = "oil flow 1000 x 12, standardized per feature", True, False
    elif name == "digits":
        Y = lvm.datasets.load_digits().Y
        desc, std, deq = "digits 8x8, non-blank pixels, raw 0..16, dequantized", False, True
    elif name == "frey":
        Y = np.round(lvm.datasets.load_frey_faces().Y * 255.0)  # the stored integers 0..255
        desc, std, deq = "Frey faces 28x20, raw 0..255, dequantized", False, True
    elif name == "usps":
        Y = lvm.datasets.load_usps().Y
        desc, std, deq = "USPS train 16x16, intensities in [0, 1] as stored", False, False
    else:
        raise ValueError(f"unknown data set {name!r}; choose from {DATASETS}")
    rows = max_rows or (300 if quick else None)
    if rows and rows < len(Y):
        Y = Y[np.random.default_rng(0).permutation(len(Y))[:rows]]
        desc += f", {rows}-row subset"
    if name in ("digits", "frey", "usps"):
        # Pixels with no variance have no density; in a small subset, a pixel inked in a held-out
        # image only would be a -inf for factor analysis (as ``lvm demo --quick`` does).
        keep = Y.var(0) > 0
        if rows:
            keep &= (Y != Y.min()).mean(0) >= DEMO_QUICK["min_inked"]
        Y = Y[:, keep]
        desc += f", {keep.sum()} pixels"
    return Y, desc, std, deq, extra


def same_split(Y, table, test_size, seed, standardize, dequantize):
    """The train and held-out rows exactly as ``lvm.compare`` preprocessed them, and the
    log-Jacobian it adds (reproduced from its documented steps, checked against its train rows)."""
    tr, te = train_test_split(np.arange(len(Y)), test_size=test_size, random_state=seed)
    Y_tr, Y_te = Y[tr].astype(np.float64), Y[te].astype(np.float64)
    if dequantize:
        rng = np.random.default_rng(seed)
        Y_tr = Y_tr + rng.random(Y_tr.shape)
        Y_te = Y_te + rng.random(Y_te.shape)
    jac = 0.0
    if standardize:
        mean, scale = table.standardization
        Y_tr, Y_te = (Y_tr - mean) / scale, (Y_te - mean) / scale
        jac = -float(np.log(scale).sum())
    if not np.array_equal(Y_tr, table.train_data):
        raise RuntimeError("could not reproduce lvm.compare's split; the references would not be "
                           "on the same rows")
    return Y_tr, Y_te, jac


# ------------------------------------------------------------------------------- references
def record(model, source, evidence, k, train, test, seconds, converged, note=""):
    tr, tr_se = _mean_se(train) if train is not None else (float("nan"), float("nan"))
    te, te_se = _mean_se(test) if test is not None else (float("nan"), float("nan"))
    return dict(model=model, source=source, evidence=evidence, K=k, train=tr, train_se=tr_se,
                test=te, test_se=te_se, fit_seconds=seconds, converged=converged, note=note)


def sklearn_refs(Y_tr, Y_te, jac, ppca_row):
    rows = []
    t0 = time.perf_counter()
    pca = PCA(K, svd_solver="full").fit(Y_tr)
    sec = time.perf_counter() - t0
    rows.append(record("PCA(2).score", "scikit-learn", "exact", K, pca.score_samples(Y_tr) + jac,
                       pca.score_samples(Y_te) + jac, sec, "yes"))
    # lvm's PPCA is the ML model (1/N); scikit-learn's variances use 1/(N-1)
    n, D = Y_tr.shape
    pca.explained_variance_ = pca.explained_variance_ * (n - 1) / n
    pca.noise_variance_ = pca.noise_variance_ * (n - 1) / n
    if n <= D:  # scikit-learn then averages the n - K trailing eigenvalues, the ML noise D - K
        pca.noise_variance_ = (Y_tr.var(0).sum() - pca.explained_variance_.sum()) / (D - K)
    ml = pca.score_samples(Y_te) + jac
    check = abs(float(ml.mean()) - ppca_row["test"]), abs(
        float((pca.score_samples(Y_tr) + jac).mean()) - ppca_row["train"])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fa = SkFactorAnalysis(K, random_state=0).fit(Y_tr)
    sec = time.perf_counter() - t0
    conv = "yes" if fa.n_iter_ < fa.max_iter else "no"
    rows.append(record("FactorAnalysis(2).score", "scikit-learn", "exact", K,
                       fa.score_samples(Y_tr) + jac, fa.score_samples(Y_te) + jac, sec, conv))
    return rows, check


def _as_lvm_standardizes(Y_tr, Y_te):
    """z = (y - mean) / s with one scale s, the root mean per-feature variance (as lvm does)."""
    loc = Y_tr.mean(0)
    s = float(np.sqrt(Y_tr.var(0).mean()))
    return (Y_tr - loc) / s, (Y_te - loc) / s, -Y_tr.shape[1] * math.log(s)


def iwae_rows(encode, decode, noise, Y, S=100, seed=0):
    """Importance-weighted log p(y) per row, the encoder as proposal (S draws per row)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    D = Y.shape[1]
    noise_d = noise * torch.ones(D)
    with torch.no_grad():
        for y in torch.as_tensor(Y, dtype=torch.float32).split(128):
            mu, var = encode(y)
            eps = torch.randn(S, *mu.shape, generator=gen)
            x = mu + var.sqrt() * eps
            log_px = -0.5 * (x**2 + LOG_2PI).sum(-1)
            log_q = -0.5 * (eps**2 + LOG_2PI).sum(-1) - 0.5 * var.log().sum(-1)
            log_lik = -0.5 * (((y - decode(x)) ** 2 / noise_d).sum(-1) + D * LOG_2PI
                              + noise_d.log().sum())
            out.append(torch.logsumexp(log_lik + log_px - log_q, 0) - math.log(S))
    return torch.cat(out).double().numpy()


def hand_vae(vae_bench, Y_tr, Y_te, jac, settings):
    Z_tr, Z_te, jac_s = _as_lvm_standardizes(Y_tr, Y_te)
    epochs = settings.get("max_epochs") or 200
    hidden = tuple(settings.get("hidden_sizes", (256, 256)))
    sec_per_epoch, encode, decode, noise = vae_bench.hand_loop(
        Z_tr.astype(np.float32), K=K, hidden=hidden, epochs=epochs,
        batch_size=settings.get("batch_size", 128), lr=1e-3, device=torch.device("cpu"), seed=0,
        dataloader=False)
    tr = iwae_rows(encode, decode, noise, Z_tr) + jac_s + jac
    te = iwae_rows(encode, decode, noise, Z_te) + jac_s + jac
    return record("hand-written VAE loop", "benchmarks/vae.py", "importance-weighted estimate", K,
                  tr, te, sec_per_epoch * epochs, f"n/a ({epochs} epochs)",
                  note=f"{'-'.join(map(str, hidden))} hidden, shared noise, IWAE S=100")


def gpy_gplvm(Y_tr, jac, max_iters):
    try:
        import GPy
    except ImportError:
        return None
    np.random.seed(0)
    t0 = time.perf_counter()
    m = GPy.models.BayesianGPLVM(Y_tr, K, num_inducing=50)
    m.optimize("lbfgs", max_iters=max_iters, messages=False)
    sec = time.perf_counter() - t0
    status = str(getattr(m.optimization_runs[-1], "status", "")) if m.optimization_runs else ""
    bound = float(np.ravel(m.log_likelihood())[0]) / len(Y_tr) + jac
    conv = "yes" if status.lower().startswith("converged") else f"no ({status or 'unknown'})"
    r = record("GPy BayesianGPLVM", "GPy", "lower bound (train only)", K, None, None, sec, conv,
               note=f"M=50, L-BFGS {max_iters} iters; held-out: none in GPy")
    r["train"] = bound
    return r


def true_model(truth, Y_tr, Y_te, jac):
    from scipy.stats import multivariate_normal

    cov = truth.W @ truth.W.T + truth.noise * np.eye(truth.W.shape[0])
    dist = multivariate_normal(truth.mean, cov)
    return record("true generating model", "make_ppca", "exact", truth.W.shape[1],
                  dist.logpdf(Y_tr) + jac, dist.logpdf(Y_te) + jac, 0.0, "-")


# ------------------------------------------------------------------------------------ table
def lvm_models(quick):
    models = {}
    for key, (cls_name, kwargs) in DEMO_MODELS.items():
        kw = {**kwargs, **(DEMO_QUICK.get(key, {}) if quick else {})}
        cls = getattr(lvm, cls_name)
        if "n_components" in cls._get_param_names():
            models[cls_name] = cls(K, random_state=0, **kw)
        else:
            models[cls_name] = cls(random_state=0, **kw)
    return models


def run_dataset(name, args, vae_bench):
    try:
        Y, desc, standardize, dequantize, extra = load(name, args.quick, args.max_rows)
    except lvm.datasets.DataFileNotFoundError as exc:
        print(f"[{name}] skipped: {str(exc).splitlines()[0]}", flush=True)
        return []
    print(f"\n== {name}: {desc}; {len(Y)} rows x {Y.shape[1]} ==", flush=True)

    def progress(model, rec):
        if rec is None:
            print(f"   {model} ...", end="", flush=True)
        else:
            print(f" fit {rec['fit_seconds']:.1f} s, score {rec['score_seconds']:.1f} s",
                  flush=True)

    models = lvm_models(args.quick)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: the table's column says it
        table = lvm.compare(models, Y, test_size=args.test_size, standardize=standardize,
                            dequantize=dequantize, random_state=args.seed, progress=progress)
    Y_tr, Y_te, jac = same_split(Y, table, args.test_size, args.seed, standardize, dequantize)
    rows = []
    for r in table:
        est = r["estimator"]
        note = ""
        if r["family"] == "gplvm" or type(est).__name__ == "BayesianGPLVM":
            note = f"train bound elbo_ {est.elbo_ + jac:.3f}"
        rows.append(dict(model=r["model"], source="lvm", evidence=r["evidence"],
                         K=r["n_components"], train=r["train_log_evidence"],
                         train_se=r["train_stderr"], test=r["test_log_evidence"],
                         test_se=r["test_stderr"], fit_seconds=r["fit_seconds"],
                         converged=r["converged"], note=note))
    ppca = next(r for r in rows if r["model"] == "PPCA")
    refs, check = sklearn_refs(Y_tr, Y_te, jac, ppca)
    rows += refs
    if vae_bench is not None and not args.skip_hand_vae:
        print("   hand-written VAE loop ...", end="", flush=True)
        vkw = {**DEMO_MODELS["vae"][1], **(DEMO_QUICK["vae"] if args.quick else {})}
        rows.append(hand_vae(vae_bench, Y_tr, Y_te, jac, vkw))
        print(f" fit {rows[-1]['fit_seconds']:.1f} s", flush=True)
    if name == "oil" and not args.skip_gpy:
        print("   GPy BayesianGPLVM ...", end="", flush=True)
        g = gpy_gplvm(Y_tr, jac, 50 if args.quick else args.gpy_iters)
        print(" not installed, skipped" if g is None else f" fit {g['fit_seconds']:.1f} s",
              flush=True)
        if g is not None:
            rows.append(g)
    if "truth" in extra:
        rows.append(true_model(extra["truth"], Y_tr, Y_te, jac))
    for r in rows:
        r["data"] = name
    print(markdown(rows, title=f"{desc}: {len(Y_tr)} train / {len(Y_te)} held-out rows, log p(y) "
                               "per point in nats (data as passed" +
                   ("; dequantized: lower bounds on the discrete log-probability" if dequantize
                    else "") + ")"))
    note = (", and the ML noise (trace - explained) / (D - K), as N <= D"
            if len(Y_tr) <= Y_tr.shape[1] else "")
    print(f"check: |lvm PPCA - sklearn PCA with variances x (N-1)/N{note}| = {check[0]:.2e} "
          f"held-out, {check[1]:.2e} train (nats per point)", flush=True)
    return rows


def _fmt(v, spec="{:.3f}"):
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else spec.format(v)


def markdown(rows, title=None, with_data=False):
    head = (["data"] if with_data else []) + ["model", "source", "evidence", "K",
                                              "held-out ± se", "train", "fit s", "converged",
                                              "note"]
    out = [f"\n{title}\n"] if title else []
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for r in rows:
        held = "—" if math.isnan(r["test"]) else f"{r['test']:.3f} ± {r['test_se']:.3f}"
        cells = ([r["data"]] if with_data else []) + [
            r["model"], r["source"], r["evidence"], str(r["K"]), held, _fmt(r["train"]),
            _fmt(r["fit_seconds"], "{:.1f}"), str(r["converged"]), r.get("note", "")]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


# ------------------------------------------------------------------ GPLVM vs GPyTorch recipe
def gplvm_ratio(args):
    bench = _import_benchmark("gplvm")
    if bench is None:
        return None
    Y, labels = bench.load("digits")
    if args.quick:
        Y, labels = Y[:300], labels[:300]
    lvm_iters = 100 if args.quick else args.lvm_iters
    recipe_iters = 300 if args.quick else args.recipe_iters
    print(f"\n== GPLVM vs GPyTorch's recipe: standardized digits {Y.shape[0]} x {Y.shape[1]}, "
          f"Q = 10; lvm {lvm_iters} L-BFGS iterations, recipe {recipe_iters} Adam steps ==",
          flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = bench.run_lvm(Y, labels, 10, lvm_iters)
        recipe = bench.run_gpytorch_recipe(Y, labels, 10, recipe_iters)
    t = bench.time_to_reach(ours["trace"], recipe["bound"])
    ratio = recipe["seconds"] / t if t > 0 else math.inf
    print(f"lvm: bound {ours['bound']:.3f} nats/point in {ours['seconds']:.1f} s; recipe: "
          f"{recipe['bound']:.3f} ({recipe['bound_note']}) in {recipe['seconds']:.1f} s; lvm "
          f"reaches the recipe's final bound after {t:.1f} s: {ratio:.1f}x sooner", flush=True)
    return dict(lvm_bound=ours["bound"], lvm_seconds=ours["seconds"], recipe_bound=recipe["bound"],
                recipe_seconds=recipe["seconds"], lvm_seconds_to_reach=t, ratio=ratio)


def write(path, rows, ratio):
    path = Path(path)
    if path.suffix.lower() == ".md":
        text = markdown(rows, with_data=True)
        if ratio:
            text += (f"\n\nGPLVM on standardized digits (Q = 10): lvm reaches GPyTorch's recipe's "
                     f"final bound {ratio['recipe_bound']:.3f} after "
                     f"{ratio['lvm_seconds_to_reach']:.1f} s against the recipe's "
                     f"{ratio['recipe_seconds']:.1f} s: {ratio['ratio']:.1f}x sooner.\n")
        path.write_text(text + "\n")
    else:
        keys = ["data", "model", "source", "evidence", "K", "test", "test_se", "train", "train_se",
                "fit_seconds", "converged", "note"]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, keys, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
            if ratio:
                w.writerow(dict(data="digits-standardized",
                                model="BayesianGPLVM vs GPyTorch recipe",
                                source="benchmarks/gplvm.py", evidence="lower bound", K=10,
                                train=ratio["recipe_bound"],
                                fit_seconds=ratio["lvm_seconds_to_reach"],
                                note=f"time-to-reach ratio {ratio['ratio']:.2f}x"))
    print(f"wrote {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    p.add_argument("--quick", action="store_true",
                   help="300-row subsets and the demo's tiny settings (a smoke run, ~2 minutes)")
    p.add_argument("--max-rows", type=int, default=None, help="random subset of rows per data set")
    p.add_argument("--test-size", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    p.add_argument("--gpy-iters", type=int, default=1000)
    p.add_argument("--lvm-iters", type=int, default=1000, help="GPLVM iterations for the ratio")
    p.add_argument("--recipe-iters", type=int, default=10000, help="GPyTorch recipe's Adam steps")
    p.add_argument("--skip-gpy", action="store_true")
    p.add_argument("--skip-hand-vae", action="store_true")
    p.add_argument("--skip-ratio", action="store_true")
    p.add_argument("--out", default=None, help="also write the table: FILE.md (markdown) or CSV")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    vae_bench = None if args.skip_hand_vae else _import_benchmark("vae")
    print(f"lvm {getattr(lvm, '__version__', '')}, torch {torch.__version__}, "
          f"{args.threads} thread(s){', --quick' if args.quick else ''}", flush=True)
    rows = []
    t0 = time.perf_counter()
    with lvm.settings.num_threads(args.threads):
        for name in args.datasets:
            rows += run_dataset(name, args, vae_bench)
        ratio = None if args.skip_ratio else gplvm_ratio(args)
    print(f"\n== all data sets ({time.perf_counter() - t0:.0f} s in all) ==")
    print(markdown(rows, with_data=True))
    if ratio:
        print(f"\nGPLVM vs GPyTorch's recipe on standardized digits: {ratio['ratio']:.1f}x sooner "
              f"to the recipe's final bound {ratio['recipe_bound']:.3f} "
              f"({ratio['lvm_seconds_to_reach']:.1f} s vs {ratio['recipe_seconds']:.1f} s)")
    if args.out:
        write(args.out, rows, ratio)


if __name__ == "__main__":
    main()
