"""The ``lvm`` command line: ``lvm demo``, ``lvm compare``, ``lvm embed`` (also ``python -m lvm``).

Uses the public API, and the per-feature standardization ``lvm.compare`` applies
(``lvm._preprocess``). Importing this module imports neither torch, GPyTorch nor matplotlib, so
``lvm --help`` answers at once; they load when a command runs.

Conventions (decisions the issue left open):

- Every problem with the user's input (a bad option, an unreadable or non-numeric file, infinity, a
  hyper-parameter an estimator rejects) is one line on stderr, ``lvm: error: ...``, and exit status
  2. An estimator's own validation message is passed through (its first line). A fit that fails
  numerically (``lvm.NumericalError``) is one line too, with exit status 1.
- Progress goes to stderr, one line per model (fit and scoring seconds); results go to stdout, so
  ``lvm compare ... > table.txt`` and ``lvm embed ... | head`` hold only results. A closed pipe ends
  the command quietly with status 141 (128 + SIGPIPE), as the shell's own tools do.
- Data files are read by :func:`lvm.datasets.load_table` (its rules: delimiter and header sniffed,
  a row-index column dropped unless ``--keep-index``, missing cells as NaN); its notes go to stderr.
  ``--labels COLUMN`` takes a column out of the features (a header name, or a 0-based index of the
  file's columns, negative from the end) and colours the figures by it; labels may be text.
- Missing values: the models that model them (PPCA, FactorAnalysis, VAE, BayesianGPLVM) score each
  row's observed entries; one that does not (the diffusion model) is a one-line error. Infinity is
  an error.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

import lvm
from lvm._preprocess import feature_standardization, standardize
from lvm.datasets import load_table  # also lvm.cli.load_table, as before it moved
from lvm.presets import (DEMO_MODELS, DEMO_QUICK, MODELS,  # also lvm.cli.*
                         build_demo_model, build_model)

__all__ = ["main", "load_table", "build_model", "MODELS", "DEMO_MODELS", "DEMO_QUICK"]

_PIPE_STATUS = 141  # 128 + SIGPIPE: what a shell tool reports when its reader went away


class InputError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _note(message: str) -> None:
    print(f"lvm: note: {message}", file=sys.stderr, flush=True)


def _load(args):
    """The ``--data`` table (and ``--labels``) by :func:`lvm.datasets.load_table`: its notes on
    stderr, its errors as one line."""
    try:
        return load_table(args.data, args.labels, keep_index=args.keep_index, note=_note)
    except ValueError as exc:
        raise InputError(_first_line(exc)) from exc


def _keys(spec: str, valid) -> list:
    keys = []
    for key in (k.strip().lower() for k in spec.split(",")):
        if not key:
            continue
        if key not in valid:
            raise InputError(f"unknown model {key!r}; choose from {', '.join(valid)}.")
        if key not in keys:
            keys.append(key)
    if not keys:
        raise InputError(f"no models given; e.g. --models {','.join(valid)}")
    return keys


def _likelihood(args):
    """The ``--likelihood`` name (None without the option), checked, and whether it models
    counts."""
    if args.likelihood is None:
        return None, False
    from lvm.likelihoods import get_likelihood

    try:
        return args.likelihood, get_likelihood(args.likelihood).discrete
    except ValueError as exc:
        raise InputError(_first_line(exc)) from exc


def _likelihood_params(cls_name, likelihood) -> dict:
    """``build_model``'s overrides for ``--likelihood``: the likelihood, and SVI for the GPLVM
    (its collapsed bound is Gaussian only); none for a model without a likelihood, with a note."""
    names = getattr(lvm, cls_name)._get_param_names()
    if likelihood is None:
        return {}
    if "likelihood" not in names:
        _note(f"{cls_name} has no likelihood option: --likelihood does not apply to it.")
        return {}
    params = {"likelihood": likelihood}
    if "inference" in names and likelihood != "gaussian":
        params["inference"] = "svi"
    return params


def _standardize(args, counts: bool) -> bool:
    """``--standardize``/``--no-standardize``; by default on, except for a count likelihood."""
    return (not counts) if args.standardize is None else args.standardize


def _models(args, n_components, likelihood=None):
    """Model name (the class name, as tables and figures show it) -> estimator."""
    out = {}
    for key in _keys(args.models, MODELS):
        cls_name = MODELS[key][0]
        name = cls_name if cls_name not in out else f"{cls_name}[{key}]"
        out[name] = build_model(key, n_components, fast=args.fast,
                                random_state=args.random_state, verbose=bool(args.verbose),
                                **_likelihood_params(cls_name, likelihood))
    return out


def _progress(text, end="\n"):
    print(text, end=end, file=sys.stderr, flush=True)


class _Progress:
    """One progress line per model on stderr: ``[2/4] VAE ... fit 5.1 s, score 0.8 s``.

    The start of a line appears once a fit has run for ``delay`` seconds (at once with
    ``verbose``, whose progress bars follow), so a hyper-parameter an estimator rejects at once
    leaves the error as the only line; ``header`` is printed before the first line that appears.
    """

    def __init__(self, n, *, header=None, verbose=False, delay=0.3):
        self.n, self.header, self.verbose, self.delay = n, header, verbose, delay
        self._lock = threading.Lock()
        self._timer = None
        self._shown = False
        self._label = ""

    def _write(self, text, end):  # with the lock held
        if self.header is not None:
            _progress(self.header)
            self.header = None
        _progress(text, end=end)

    def _show(self, text, end):
        with self._lock:
            self._write(text, end)

    def _start_line(self):
        with self._lock:  # printed under the lock: done() cannot slip in between
            if self._shown is None:  # the model finished as the timer fired
                return
            self._shown = True
            self._write(f"{self._label} ...", "\n" if self.verbose else "")

    def start(self, i, name):
        self._label, self._shown = f"[{i}/{self.n}] {name}", False
        if self.verbose:
            self._start_line()
        else:
            self._timer = threading.Timer(self.delay, self._start_line)
            self._timer.daemon = True
            self._timer.start()

    def _stop(self) -> bool:
        """Whether the line's start is on screen (and ``verbose`` did not end it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with self._lock:
            shown, self._shown = self._shown, None
        return bool(shown) and not self.verbose

    def done(self, text):
        self._show(f" {text}" if self._stop() else f"{self._label}: {text}", "\n")

    def fail(self):
        if self._stop():
            self._show(" failed", "\n")


def _compare(models: dict, Y, *, test_size, standardize, dequantize, random_state, verbose,
             header=None):
    """``lvm.compare`` with a progress line per model: its name while it runs, then its fit and
    scoring seconds. Returns the table and the indices of the training rows."""
    progress = _Progress(len(models), header=header, verbose=verbose)
    names = list(models)

    def report(name, record):
        if record is None:
            progress.start(names.index(name) + 1, name)
        else:
            progress.done(f"fit {record['fit_seconds']:.1f} s, score "
                          f"{record['score_seconds']:.1f} s")

    try:
        with warnings.catch_warnings(record=True) as caught:  # shown as one-line notes
            warnings.simplefilter("always")
            table = lvm.compare(models, Y, test_size=test_size, standardize=standardize,
                                dequantize=dequantize, random_state=random_state, progress=report)
        for message in dict.fromkeys(str(w.message).split("\n")[0] for w in caught
                                     if issubclass(w.category, UserWarning)):
            _note(message)
    except (ValueError, TypeError) as exc:
        progress.fail()
        raise InputError(_first_line(exc)) from exc
    except BaseException:
        progress.fail()
        raise
    return table, table.train_index


def _save_figure(table, Y, labels, path, images=None):
    t0 = time.perf_counter()
    _progress(f"drawing {path.name} ...", end="")
    lvm.plot.comparison(table, Y, labels, images=images).savefig(path, dpi=110)
    _progress(f" {time.perf_counter() - t0:.1f} s")
    return path


#: ``lvm embed``'s neighbour metrics use at most this many rows (trustworthiness needs all
#: pairwise distances of the rows it scores).
EMBED_METRIC_ROWS = 5000


def _embed_report(model, Y, labels, X):
    """:func:`lvm.metrics.embedding_report` of the rows the model was fitted to (k-NN accuracy
    leave-one-out), on a random subset of at most :data:`EMBED_METRIC_ROWS` rows."""
    from lvm.metrics import embedding_report

    rows = np.arange(len(Y))
    if len(rows) > EMBED_METRIC_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(len(Y), EMBED_METRIC_ROWS, replace=False))
    return embedding_report(model, Y[rows], None if labels is None else np.asarray(labels)[rows],
                            X_test=np.asarray(X)[rows])


# ----------------------------------------------------------------------------------- the commands
def cmd_demo(args):
    t0 = time.perf_counter()
    data = lvm.datasets.load_digits()
    Y, labels = data.Y, data.labels
    keep = Y.var(0) > 0  # pixels blank in every image: no density exists on them
    if args.quick:
        Y, labels = Y[:DEMO_QUICK["n_rows"]], labels[:DEMO_QUICK["n_rows"]]
        # in few images, a pixel inked in one held-out image only would be a -inf for FA
        keep &= (Y != 0).mean(0) >= DEMO_QUICK["min_inked"]
    Y = Y[:, keep]
    models = {}
    for key in _keys(args.models, DEMO_MODELS):
        name = DEMO_MODELS[key][0]
        models[name if name not in models else f"{name}[{key}]"] = build_demo_model(
            key, quick=args.quick, random_state=args.random_state, verbose=bool(args.verbose))
    print(f"lvm demo{' --quick' if args.quick else ''}: {len(Y)} digits (8x8, {keep.sum()} "
          f"non-blank pixels, dequantized), 2-D latent, {', '.join(models)}", flush=True)
    # Pixels share one unit, so they are not standardized per feature: a pixel that is nonzero in
    # two training images would turn a held-out image that uses it into a 50-sigma outlier.
    # Integer intensities: a continuous density on them is unbounded (the diffusion model's bound
    # grows without limit). Dequantized (uniform noise in [0, 1), the same draws for every model),
    # every number is a lower bound on the probability of the discrete images (Theis et al. 2016).
    table, train = _compare(models, Y, test_size=0.2, standardize=False, dequantize=True,
                            random_state=args.random_state, verbose=args.verbose)
    print(table, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png = _save_figure(table, None, labels[train], out / "demo.png",
                       images=(data.image_shape, keep))
    print(f"wrote {png} ({time.perf_counter() - t0:.1f} s in all)")
    return 0


def cmd_compare(args):
    Y, labels = _load(args)
    likelihood, counts = _likelihood(args)
    models = _models(args, args.components, likelihood)
    header = (f"lvm compare: {Y.shape[0]} rows x {Y.shape[1]} features"
              + (f" (labels from column {args.labels!r})" if args.labels is not None else "")
              + f", {args.components}-D latent")
    table, train = _compare(models, Y, test_size=args.test_size,
                            standardize=_standardize(args, counts),
                            dequantize=args.dequantize, random_state=args.random_state,
                            verbose=args.verbose, header=header)
    print(table, flush=True)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        keys = [k for k in table[0] if k != "estimator"]
        with open(out / "comparison.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(keys)
            w.writerows([r[k] for k in keys] for r in table)
        png = _save_figure(table, None,
                           None if labels is None else labels[train], out / "comparison.png")
        print(f"wrote {out / 'comparison.csv'} and {png}")
    return 0


def cmd_embed(args):
    Y, labels = _load(args)
    likelihood, counts = _likelihood(args)
    if _standardize(args, counts):  # as lvm.compare does: over each feature's observed entries
        Y, _ = standardize(Y, *feature_standardization(Y))
    cls_name = MODELS[args.model][0]
    model = build_model(args.model, args.components, fast=args.fast,
                        random_state=args.random_state, verbose=bool(args.verbose),
                        **_likelihood_params(cls_name, likelihood))
    if not model.has_embedding:
        _note(f"{cls_name} has no low-dimensional embedding: its coordinates are the "
              f"probability-flow encoding, of the data's {Y.shape[1]} dimensions "
              "(--components does not apply).")
    progress = _Progress(1, verbose=args.verbose)
    progress.start(1, f"{cls_name} on {Y.shape[0]} rows x {Y.shape[1]} features")
    t0 = time.perf_counter()
    try:
        model.fit(Y)
    except (ValueError, TypeError) as exc:
        progress.fail()
        raise InputError(_first_line(exc)) from exc
    except BaseException:
        progress.fail()
        raise
    t1 = time.perf_counter()
    X, X_std = model.transform(Y, return_std=True)
    progress.done(f"fit {t1 - t0:.1f} s, transform {time.perf_counter() - t1:.1f} s")
    report = None
    if model.has_embedding and (labels is not None or args.plot):
        report = _embed_report(model, Y, labels, X)
        _progress(f"{cls_name}, the {report.n_test} rows it was fitted to: {report}")
    if args.plot:
        path = Path(args.plot)
        t2 = time.perf_counter()
        _progress(f"drawing {path.name} ...", end="")
        fig = (lvm.plot.embedding_report(model, Y, labels, report=report) if report is not None
               else lvm.plot.samples_panel(model, Y))
        fig.savefig(path, dpi=110)
        _progress(f" {time.perf_counter() - t2:.1f} s")
    k = X.shape[1]
    head = [f"x{i}" for i in range(k)]
    cells = [np.char.mod("%.6g", np.asarray(X))]
    if args.std:
        head += [f"x{i}_std" for i in range(k)]
        cells.append(np.char.mod("%.6g", np.asarray(X_std)))
    if labels is not None:
        head.append("label")
        cells.append(np.asarray(labels).astype(str).reshape(-1, 1))
    rows = np.concatenate(cells, axis=1).tolist()
    to_stdout = args.out in (None, "-")
    f = sys.stdout if to_stdout else open(args.out, "w", newline="")
    try:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(head)
        w.writerows(rows)
        f.flush()
    finally:
        if not to_stdout:
            f.close()
    if not to_stdout:
        print(f"wrote {len(rows)} x {len(head)} columns ({', '.join(head[:4])}"
              f"{', ...' if len(head) > 4 else ''}) to {args.out}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------- the parser
class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and the epilog as written; every option's default shown (flags: off)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or default is None or default is False
                or default == argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of the usage block
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _size(text):
    """--test-size: a fraction in (0, 1) or a whole number of rows."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: give a fraction such as "
                                             "0.2 or a number of rows") from None


_EPILOG = """\
examples:
  lvm demo                                   every family on the bundled digits
  lvm demo --quick                           the same code path in seconds, tiny settings
  lvm compare --data wine.csv --labels class --models ppca,fa,vae --out results
  lvm compare --data Y.npz --components 3 --fast
  lvm compare --data Y.npz --models ppca,vae,diffusion   held-out evidence beside a diffusion
  lvm embed --data wine.csv --labels class --model gplvm --std > coords.csv
  lvm embed --data Y.npy | head

Data: .csv/.tsv/.txt (delimiter sniffed, optional header; an unnamed first column is dropped as a
row index), .npy, .npz (array Y, labels from array 'labels'). Progress goes to stderr, results to
stdout; a bad argument or file is one line 'lvm: error: ...' with exit status 2.
"""


def _data_options(p):
    p.add_argument("--data", required=True, metavar="FILE",
                   help="a .csv, .tsv, .txt, .npy or .npz file, one row per sample")
    p.add_argument("--labels", default=None, metavar="COLUMN",
                   help="column holding labels (header name, or 0-based index; in an .npz, the "
                        "array's name): left out of the features, colours the figures")
    p.add_argument("--keep-index", action="store_true",
                   help="keep a first column that looks like a row index (unnamed, or 0..n-1)")
    p.add_argument("--components", type=int, default=2, metavar="K", help="latent dimension")
    p.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None,
                   help="standardize every feature (the evidence is still that of the raw data; "
                        "default: on, off with a count --likelihood)")
    p.add_argument("--likelihood", default=None, metavar="NAME",
                   help="the likelihood of the models that take one (VAE, GPLVM, which then "
                        "uses SVI): gaussian, bernoulli, poisson, negative_binomial, "
                        "binomial(n=N); a count likelihood fits the raw integers, its evidence "
                        "log P(y)")
    p.add_argument("--fast", action="store_true",
                   help="fewer VAE epochs and GPLVM inducing points / iterations")


def _common_options(p):
    p.add_argument("--random-state", type=int, default=0, metavar="SEED",
                   help="seed of the split and of every model")
    p.add_argument("--verbose", action="store_true",
                   help="progress bars of each fit (on stderr)")


def _parser():
    p = _Parser(prog="lvm", description="Probabilistic latent-variable models (PPCA, factor "
                "analysis, VAE, Bayesian GPLVM,\ndiffusion) compared by their evidence log p(y), "
                "in nats per data point.",
                epilog=_EPILOG, formatter_class=_Formatter)
    p.add_argument("--version", action="version", version=f"lvm {lvm.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{demo,compare,embed}")

    d = sub.add_parser("demo", formatter_class=_Formatter, epilog=_EPILOG,
                       help="fit every family to the bundled digits; print the evidence table, "
                            "write a figure",
                       description="Fit every family to scikit-learn's bundled digits (2-D "
                                   "latent), print the held-out\nevidence per model and write "
                                   "OUT/demo.png. Its settings: lvm.cli.DEMO_MODELS.")
    d.add_argument("--out", default="lvm-demo", metavar="DIR", help="folder for demo.png")
    d.add_argument("--models", default=",".join(DEMO_MODELS), metavar="LIST",
                   help="comma-separated subset of " + ",".join(DEMO_MODELS))
    d.add_argument("--quick", action="store_true",
                   help=f"smoke run: first {DEMO_QUICK['n_rows']} digits, tiny settings")
    _common_options(d)
    d.set_defaults(func=cmd_demo)

    c = sub.add_parser("compare", formatter_class=_Formatter, epilog=_EPILOG,
                       help="compare models' held-out evidence on a data file",
                       description="Fit each model on the same training split of a data file and "
                                   "print its held-out\nlog p(y) per point; with --out also "
                                   "write the table as CSV and a figure.")
    _data_options(c)
    c.add_argument("--models", default="ppca,vae,gplvm", metavar="LIST",
                   help="comma-separated subset of " + ",".join(MODELS))
    c.add_argument("--test-size", type=_size, default=0.2, metavar="SIZE",
                   help="held-out fraction (or number of rows)")
    c.add_argument("--dequantize", action="store_true",
                   help="integer data: add uniform noise in [0, 1) (the same for every model), "
                        "so each number bounds the discrete log-probability")
    c.add_argument("--out", default=None, metavar="DIR",
                   help="folder for comparison.csv and comparison.png (default: print only)")
    _common_options(c)
    c.set_defaults(func=cmd_compare)

    e = sub.add_parser("embed", formatter_class=_Formatter, epilog=_EPILOG,
                       help="write the latent coordinates E[x | y] as CSV",
                       description="Fit one model to a data file and write its posterior means "
                                   "E[x | y] as CSV:\ncolumns x0, x1, ...; with --std also "
                                   "x0_std, x1_std, ...; with --labels a last column 'label'.")
    _data_options(e)
    e.add_argument("--model", default="embed", choices=list(MODELS),
                   help="the model (embed: the VAE with the neighbour term, lvm.cli.MODELS)")
    e.add_argument("--std", action="store_true",
                   help="also write the posterior standard deviations (x0_std, ...)")
    e.add_argument("--plot", default=None, metavar="PNG",
                   help="also draw the map with its ±1 sd ellipses (coloured by --labels) and "
                        "its neighbour metrics")
    e.add_argument("--out", default="-", metavar="FILE", help="CSV path ('-': standard output)")
    _common_options(e)
    e.set_defaults(func=cmd_embed)
    return p


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, 2 for bad input, 141 for a closed pipe)."""
    try:
        args = _parser().parse_args(argv)
        return args.func(args)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except _UsageError as exc:
        print(f"lvm: error: {exc}", file=sys.stderr)
        return 2
    except (InputError, FileNotFoundError) as exc:  # FileNotFoundError: a dataset not on disk
        print(f"lvm: error: {_first_line(exc)}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:  # lvm.NumericalError: the fit itself failed
        print(f"lvm: error: {_first_line(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (``lvm embed ... | head``): stop quietly. Point stdout at devnull so
        # the interpreter's final flush does not raise again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return _PIPE_STATUS
    except KeyboardInterrupt:
        print("lvm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
