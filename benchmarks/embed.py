"""Benchmark: 2-D embeddings, lvm's families beside PCA, UMAP and openTSNE, on held-out rows.

The protocol (issue 18): fit each method to the training rows with ``n_components=2``, embed the
held-out rows with ``transform``, then, with :mod:`lvm.metrics` for every method alike,

* held-out log p(y) per row and its kind (lvm's ``score``; scikit-learn's PCA ``score`` is the
  exact probabilistic-PCA evidence with the unbiased covariance; UMAP and t-SNE have none);
* test 1-NN and 5-NN accuracy of classifiers fitted on the training embedding;
* trustworthiness at k = 5 and kNN-set overlap at k = 15 of the held-out embedding;
* reconstruction RMSE of the held-out rows from their 2-D coordinates (the decoder mean; UMAP's
  ``inverse_transform``; none for t-SNE);
* fit seconds and ``transform`` seconds per 1000 rows.

Data sets (``--datasets``): ``usps`` (the official 7291 training and 2007 test digits, intensities
in [0, 1] as stored), ``digits`` (scikit-learn's 8 x 8 digits, the pixels not blank in every
training image, standardized per feature, 80/20 stratified split) and ``oil`` (oil flow, the
1000 training and 1000 test rows, raw). Data files are read from ../shared/data; an absent one is
skipped with a note. umap-learn and openTSNE (``pip install -e ".[bench]"``) are skipped with a
note when not installed.

lvm's rows: ``embed``, the map-first VAE that ``lvm embed`` fits by default, built from
:data:`lvm.cli.MODELS` by :func:`lvm.cli.build_model` as the command builds it; and each family
with its defaults and ``n_components=2`` (evidence first). Last, the map/evidence trade-off curve: the embed model at several
``neighbor_weight`` values (0 is the evidence-first VAE on the same settings).

    python benchmarks/embed.py                         # USPS, every method (about 15 minutes)
    python benchmarks/embed.py --datasets digits,oil   # the fast companions
    python benchmarks/embed.py --readme                # also rewrite the README and docs tables

Every method runs in this one process, one after the other, with one thread (``--threads``).
"""

from __future__ import annotations

import os
import sys

from _threads import set_threads, threads_from_argv  # noqa: E402

# BLAS, OpenMP and numba thread pools are sized when the libraries load: set the count first.
set_threads(threads_from_argv())

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import lvm  # noqa: E402
from lvm.cli import MODELS, build_model  # noqa: E402
from lvm.metrics import embedding_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
README_BLOCK = ("<!-- embed-table:start -->", "<!-- embed-table:end -->")
DOCS_TABLE = ROOT / "docs" / "embed_table.inc"
#: lvm's rows: the ``lvm embed`` default first, then the families' evidence-first defaults.
LVM_KEYS = ["embed", "ppca", "fa", "vae", "gplvm"]
#: neighbor_weight values of the trade-off curve.
CURVE = [0.0, 3.0, 300.0, 1000.0]


def load(name):
    """(Y_train, labels_train, Y_test, labels_test, description) or None when the file is absent."""
    if name == "usps":
        path = DATA / "usps.npz"
        if not path.exists():
            return None
        f = np.load(path)
        return (f["Y"].astype(np.float64), f["labels"], f["Y_test"].astype(np.float64),
                f["labels_test"], "USPS, 7291 train / 2007 test, 256 pixels in [0, 1]")
    if name == "oil":
        path = DATA / "oil_flow.npz"
        if not path.exists():
            return None
        f = np.load(path)
        return (f["Y"], f["labels"], f["Y_test"], f["labels_test"],
                "oil flow, 1000 train / 1000 test, 12 raw features")
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        d = load_digits()
        Ya, Yb, la, lb = train_test_split(d.data, d.target, test_size=0.2, stratify=d.target,
                                          random_state=0)
        keep = Ya.std(0) > 0  # pixels blank in every training image carry no information
        scaler = StandardScaler().fit(Ya[:, keep])
        return (scaler.transform(Ya[:, keep]), la, scaler.transform(Yb[:, keep]), lb,
                f"scikit-learn digits, 1437 train / 360 test, the {keep.sum()} pixels not blank "
                "in every training image, standardized")
    raise ValueError(f"unknown data set {name!r}")


def methods(Y, random_state, keys, neighbor_weights=()):
    """(name, short key, a function returning the unfitted method) for every method to run."""
    out = []
    for key in keys:
        cls_name = MODELS[key][0]
        if key == "embed":  # lvm embed's model, as lvm.cli builds it
            out.append((f"lvm.{cls_name} (lvm embed default)", key,
                        lambda: build_model("embed", 2, random_state=random_state)))
        else:  # the family's defaults, n_components=2 (evidence first)
            out.append((f"lvm.{cls_name}", key, lambda cls_name=cls_name: getattr(lvm, cls_name)(
                2, random_state=random_state)))
    for w in neighbor_weights:
        out.append((f"embed, neighbor_weight={w:g}", "curve",
                    lambda w=w: build_model("embed", 2, random_state=random_state,
                                            neighbor_weight=w)))
    from sklearn.decomposition import PCA

    out.append(("sklearn PCA", "pca", lambda: PCA(2, random_state=random_state)))
    threads = int(os.environ["OMP_NUM_THREADS"])
    if importlib.util.find_spec("umap") is not None:
        import umap

        out.append(("umap-learn", "umap", lambda: umap.UMAP(n_components=2,
                                                            random_state=random_state,
                                                            n_jobs=threads)))
    else:
        print("note: umap-learn is not installed (pip install -e '.[bench]'); skipped",
              file=sys.stderr)
    if importlib.util.find_spec("openTSNE") is not None:
        out.append(("openTSNE", "tsne", lambda: _OpenTSNE(threads, random_state)))
    else:
        print("note: openTSNE is not installed (pip install -e '.[bench]'); skipped",
              file=sys.stderr)
    return out


class _OpenTSNE:
    """openTSNE's embedding behind fit / transform (it has no inverse and no evidence)."""

    def __init__(self, n_jobs, random_state):
        self.n_jobs, self.random_state = n_jobs, random_state

    def fit(self, Y):
        from openTSNE import TSNE

        self.embedding_ = TSNE(n_jobs=self.n_jobs, random_state=self.random_state).fit(Y)
        return self

    def transform(self, Y):
        return np.asarray(self.embedding_.transform(Y))


def run_one(name, make, data):
    """Fit, embed the held-out rows, and report (the training embedding is the fitted one:
    UMAP's and t-SNE's ``embedding_``, lvm's and PCA's ``transform``)."""
    Y, labels, Yt, labels_t = data[:4]
    method = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        method.fit(Y)
        # The training map is part of the fit: UMAP's and t-SNE's embedding_, lvm's and PCA's
        # transform of the training rows (lvm embed's refinement of their means included).
        X = (np.asarray(method.embedding_) if hasattr(method, "embedding_")
             else method.transform(Y))
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        Xt = method.transform(Yt)
        transform_s = time.perf_counter() - t
        report = embedding_report(method, Y, labels, Yt, labels_t, X=X, X_test=Xt)
    return {"method": name, "model": method, "report": report, "fit_s": fit_s,
            "transform_s_per_1000": 1000 * transform_s / len(Yt)}


def _f(v, fmt):
    return "none" if v is None else format(v, fmt)


def table(rows):
    lines = ["| method | held-out log p(y) / pt | test 1-NN | test 5-NN | trustworthiness@5 | "
             "overlap@15 | RMSE | fit s (with the training map) | transform s / 1000 rows |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rep = r["report"]
        ev = ("none" if rep.evidence is None else
              f"{rep.evidence:.2f} ({_short(rep.evidence_kind)})")
        lines.append(f"| {r['method']} | {ev} | {_f(rep.knn_1, '.3f')} | {_f(rep.knn_5, '.3f')} | "
                     f"{rep.trustworthiness:.3f} | {rep.neighbor_overlap:.3f} | "
                     f"{_f(rep.reconstruction_rmse, '.3f')} | {r['fit_s']:.1f} | "
                     f"{r['transform_s_per_1000']:.2f} |")
    return "\n".join(lines)


def _short(kind):
    return {"importance-weighted estimate": "estimate"}.get(kind, kind)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="usps", help="comma-separated: usps, digits, oil")
    p.add_argument("--models", default=None,
                   help="comma-separated subset of the method names' first word "
                        "(lvm keys from lvm.cli.MODELS, pca, umap, tsne); default all")
    p.add_argument("--no-curve", action="store_true", help="skip the trade-off curve")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--figure", default=None, metavar="PNG",
                   help="draw the embed model's held-out map to PNG (one file per data set)")
    p.add_argument("--readme", action="store_true",
                   help="rewrite the README's and the docs' tables with this run's (USPS)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    outputs = []
    for ds in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        data = load(ds)
        if data is None:
            print(f"note: the {ds} data file is not in {DATA}; skipped", file=sys.stderr)
            continue
        keys = LVM_KEYS
        wanted = None if args.models is None else {m.strip().lower()
                                                    for m in args.models.split(",")}
        curve = [] if args.no_curve else CURVE
        if wanted is not None:
            keys = [k for k in keys if k in wanted]
            curve = curve if "curve" in wanted else []
        rows = []
        print(f"\n## {data[4]} (threads: {args.threads}, load average "
              f"{os.getloadavg()[0]:.1f})", flush=True)
        for name, short, make in methods(data[0], args.random_state, keys, curve):
            if wanted is not None and short not in wanted and short not in LVM_KEYS + ["curve"]:
                continue
            r = run_one(name, make, data)
            if args.figure and short == "embed":
                fig = lvm.plot.embedding_report(r["model"], *data[:4], report=r["report"],
                                                title=f"lvm embed's default model: {ds}, "
                                                      "held-out rows")
                fig.savefig(Path(args.figure).with_suffix(f".{ds}.png"), dpi=110)
            print(f"  {name}: {r['report']} | fit {r['fit_s']:.1f} s, transform "
                  f"{r['transform_s_per_1000']:.2f} s / 1000 rows", file=sys.stderr, flush=True)
            rows.append(r)
        text = table(rows)
        print(text, flush=True)
        _against_umap(rows, len(data[2]))
        outputs.append((ds, data[4], text, rows))
    if args.readme:
        write_tables(outputs, args)
    return 0


def _against_umap(rows, n_test):
    """lvm embed's default against UMAP in this run: the issue's bars (5-NN >= UMAP's - 0.02,
    trustworthiness >= UMAP's, fit plus transform of the test rows no longer than UMAP's)."""
    by = {r["method"].split(" ")[0]: r for r in rows}
    embed = next((r for r in rows if "(lvm embed default)" in r["method"]), None)
    umap = by.get("umap-learn")
    if embed is None or umap is None:
        return

    def total(r):
        return r["fit_s"] + r["transform_s_per_1000"] * n_test / 1000

    e, u = embed["report"], umap["report"]
    print(f"lvm embed against UMAP: 5-NN {e.knn_5:.3f} vs {u.knn_5:.3f} "
          f"({e.knn_5 - u.knn_5:+.3f}), trustworthiness {e.trustworthiness:.3f} vs "
          f"{u.trustworthiness:.3f} ({e.trustworthiness - u.trustworthiness:+.3f}), fit + "
          f"transform {total(embed):.1f} s vs {total(umap):.1f} s "
          f"({total(embed) / total(umap):.2f}x)", flush=True)


def write_tables(outputs, args):
    usps = [o for o in outputs if o[0] == "usps"]
    if not usps:
        raise SystemExit("--readme needs the usps data set in --datasets")
    _ds, desc, text, _rows = usps[0]
    note = (f"Regenerated by `python benchmarks/embed.py --readme`: {desc}; one thread each "
            f"({os.cpu_count()}-core CPU machine, load average {os.getloadavg()[0]:.1f} at the "
            "end). UMAP's seconds depend on numba's on-disk cache of its compiled kernels: the "
            "first run after installing umap-learn also compiles them (fit and transform take "
            "longer then).")
    readme = ROOT / "README.md"
    content = readme.read_text()
    start, end = README_BLOCK
    if start in content and end in content:
        head, rest = content.split(start, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(f"{head}{start}\n{text}\n\n{note}\n{end}{tail}")
        print(f"rewrote the embedding block of {readme}", file=sys.stderr)
    DOCS_TABLE.write_text(".. Generated by benchmarks/embed.py --readme; do not edit.\n\n"
                          + _rst(text) + "\n\n" + note.replace("`", "``") + "\n")
    print(f"wrote {DOCS_TABLE}", file=sys.stderr)


def _rst(markdown_table: str) -> str:
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in markdown_table.splitlines() if not line.startswith("|---")]
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in rows:
        out.append("   * - " + row[0])
        out.extend(f"     - {c}" for c in row[1:])
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
