"""The ``lvm`` command line: ``lvm demo``, ``lvm compare``, ``lvm embed``.

Uses only the public API. Errors in the user's input (unreadable or non-numeric files, NaNs) print
one clear line to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import lvm

__all__ = ["main", "load_table", "MODELS"]


class InputError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


def _ppca(k, seed, fast):
    return lvm.PPCA(k, random_state=seed)


def _fa(k, seed, fast):
    return lvm.FactorAnalysis(k, random_state=seed)


def _vae(k, seed, fast):
    return lvm.VAE(k, hidden_sizes=(128, 128), max_epochs=60 if fast else 200, batch_size=128,
                   random_state=seed)


def _gplvm(k, seed, fast):
    if fast:
        return lvm.BayesianGPLVM(k, n_inducing=32, max_iter=300, tol=None, random_state=seed)
    return lvm.BayesianGPLVM(k, n_inducing=50, random_state=seed)


#: CLI model names -> factories (n_components, random_state, fast) -> estimator.
MODELS = {"ppca": _ppca, "fa": _fa, "vae": _vae, "gplvm": _gplvm}


def _build(names: str, k: int, seed: int, fast: bool):
    out = {}
    for name in [n.strip().lower() for n in names.split(",") if n.strip()]:
        if name not in MODELS:
            raise InputError(f"unknown model {name!r}; choose from {', '.join(MODELS)}.")
        out[name] = MODELS[name](k, seed, fast)
    if not out:
        raise InputError("no models given; e.g. --models ppca,vae,gplvm")
    return out


def load_table(path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read data from .csv (optional header row), .npy, or .npz (arrays ``Y`` and optional
    ``labels``; otherwise the first array). Returns (Y, labels or None)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"cannot read {path}: no such file.")
    suffix = path.suffix.lower()
    labels = None
    try:
        if suffix == ".npy":
            Y = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                if not f.files:
                    raise InputError(f"{path} holds no arrays.")
                Y = f["Y"] if "Y" in f.files else f[f.files[0]]
                labels = f["labels"] if "labels" in f.files else None
        elif suffix in (".csv", ".txt", ".tsv"):
            Y = _read_csv(path, "\t" if suffix == ".tsv" else ",")
        else:
            raise InputError(f"cannot read {path}: use a .csv, .npy or .npz file.")
    except InputError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    if Y.dtype.kind not in "biuf":
        raise InputError(f"{path} holds non-numeric data (dtype {Y.dtype}); lvm needs numbers.")
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2:
        raise InputError(f"{path} must hold a 2-D table (rows = samples), got shape {Y.shape}.")
    bad = ~np.isfinite(Y)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputError(
            f"{path} has {int(bad.sum())} missing or infinite value(s) (first at row {r + 1}, "
            f"column {c + 1}); impute or drop them first."
        )
    return Y, labels


def _read_csv(path: Path, delimiter: str) -> np.ndarray:
    with open(path, newline="") as f:
        import csv

        rows = [row for row in csv.reader(f, delimiter=delimiter) if row]
    if not rows:
        raise InputError(f"{path} is empty.")

    def numeric(cell):
        try:
            float(cell)
            return True
        except ValueError:
            return cell.strip().lower() in ("", "nan", "na")

    header = None
    if not all(numeric(c) for c in rows[0]):
        header, rows = rows[0], rows[1:]
    if not rows:
        raise InputError(f"{path} has a header but no data rows.")
    width = len(rows[0])
    out = np.empty((len(rows), width))
    for i, row in enumerate(rows):
        if len(row) != width:
            raise InputError(f"{path}: row {i + 1} has {len(row)} fields, expected {width}.")
        for j, cell in enumerate(row):
            try:
                out[i, j] = float(cell) if cell.strip() not in ("", "NA", "na") else np.nan
            except ValueError:
                col = header[j] if header else f"{j + 1}"
                raise InputError(
                    f"{path}: column {col!r} is not numeric (row {i + 1} holds {cell!r}); "
                    "drop or encode non-numeric columns."
                ) from None
    return out


def _embedding_figure(table, Y, labels, path):
    from matplotlib.figure import Figure

    n = len(table)
    fig = Figure(figsize=(4.2 * n + 4.5, 4.2), layout="constrained")
    axes = fig.subplots(1, n + 1, gridspec_kw={"width_ratios": [1] * n + [1.1]})
    for ax, rec in zip(axes[:-1], table):
        lvm.plot.latent_scatter(rec["estimator"], Y, labels, ax=ax, title=rec["model"], s=4)
        if ax.get_legend() is not None and ax is not axes[0]:
            ax.get_legend().remove()
    lvm.plot.evidence_comparison(table, ax=axes[-1])
    fig.savefig(path, dpi=110)
    return path


def cmd_demo(args):
    t0 = time.perf_counter()
    data = lvm.datasets.load_digits()
    keep = data.Y.var(0) > 0  # three pixels are blank in every image: no density exists on them
    Y = data.Y[:, keep]
    names = args.models or ",".join(MODELS)
    models = _build(names, 2, args.random_state, fast=False)
    print(f"lvm demo: {len(Y)} digits (8x8, {keep.sum()} non-blank pixels), 2-D latent, "
          f"{', '.join(models)}", flush=True)
    # Pixels share one unit, so they are not standardized per feature: a pixel that is nonzero in
    # two training images would turn a held-out image that uses it into a 50-sigma outlier.
    table = lvm.compare(models, Y, test_size=0.2, standardize=False, random_state=args.random_state,
                        verbose=args.verbose)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png = _embedding_figure(table, table.preprocess(Y), data.labels, out / "demo.png")
    print(f"wrote {png} ({time.perf_counter() - t0:.1f} s in all)")
    return 0


def cmd_compare(args):
    Y, labels = load_table(args.data)
    models = _build(args.models, args.components, args.random_state, fast=args.fast)
    table = lvm.compare(models, Y, test_size=args.test_size, standardize=args.standardize,
                        random_state=args.random_state, verbose=args.verbose)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        import csv

        with open(out / "comparison.csv", "w", newline="") as f:
            w = csv.writer(f)
            keys = [k for k in table[0] if k != "estimator"]
            w.writerow(keys)
            for r in table:
                w.writerow([r[k] for k in keys])
        if args.components >= 2:
            _embedding_figure(table, table.preprocess(Y), labels, out / "comparison.png")
        print(f"wrote {out / 'comparison.csv'}" + (f" and {out / 'comparison.png'}"
                                                  if args.components >= 2 else ""))
    return 0


def cmd_embed(args):
    Y, _ = load_table(args.data)
    model = _build(args.model, args.components, args.random_state, fast=args.fast)[args.model]
    if args.standardize:
        s = Y.std(0)
        s[s == 0] = 1.0
        Y = (Y - Y.mean(0)) / s
    X = np.asarray(model.fit_transform(Y))
    header = ",".join(f"x{i + 1}" for i in range(X.shape[1]))
    if args.out in (None, "-"):
        np.savetxt(sys.stdout, X, delimiter=",", header=header, comments="", fmt="%.6g")
    else:
        np.savetxt(args.out, X, delimiter=",", header=header, comments="", fmt="%.6g")
        print(f"wrote {X.shape[0]} x {X.shape[1]} coordinates to {args.out}")
    return 0


def _parser():
    p = argparse.ArgumentParser(prog="lvm", description="Probabilistic latent-variable models.")
    p.add_argument("--version", action="version", version=f"lvm {lvm.__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="fit every family to the bundled digits; print the evidence "
                                    "table and write the embeddings PNG")
    d.add_argument("--out", default="lvm-demo", help="output folder (default: lvm-demo)")
    d.add_argument("--models", default=None, help="comma-separated subset of " + ",".join(MODELS))
    d.add_argument("--random-state", type=int, default=0)
    d.add_argument("--verbose", action="store_true")
    d.set_defaults(func=cmd_demo)

    c = sub.add_parser("compare", help="compare models' held-out evidence on a data file")
    c.add_argument("--data", required=True, help="a .csv, .npy or .npz file (rows = samples)")
    c.add_argument("--models", default="ppca,vae,gplvm", help="comma-separated: " + ",".join(MODELS))
    c.add_argument("--components", type=int, default=2)
    c.add_argument("--test-size", type=float, default=0.2)
    c.add_argument("--no-standardize", dest="standardize", action="store_false")
    c.add_argument("--fast", action="store_true", help="fewer epochs / inducing points")
    c.add_argument("--out", default=None, help="folder for comparison.csv and comparison.png")
    c.add_argument("--random-state", type=int, default=0)
    c.add_argument("--verbose", action="store_true")
    c.set_defaults(func=cmd_compare)

    e = sub.add_parser("embed", help="write the latent coordinates E[x|y] as CSV")
    e.add_argument("--data", required=True)
    e.add_argument("--model", default="ppca", choices=list(MODELS))
    e.add_argument("--components", type=int, default=2)
    e.add_argument("--no-standardize", dest="standardize", action="store_false")
    e.add_argument("--fast", action="store_true")
    e.add_argument("--out", default=None, help="CSV path (default: standard output)")
    e.add_argument("--random-state", type=int, default=0)
    e.set_defaults(func=cmd_embed)
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"lvm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except lvm.datasets.DataFileNotFoundError as exc:
        print(f"lvm {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
