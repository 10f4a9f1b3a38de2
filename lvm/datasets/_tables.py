"""Read a table of numbers from a file: delimited text (delimiter and header sniffed) or numpy.

The rules, the ones ``lvm compare`` and ``lvm embed`` follow:

- ``.csv`` / ``.tsv`` / ``.txt``: the delimiter is sniffed from the first lines
  (``, ; tab | space``; runs of spaces count as one); the first row is a header when any of its
  fields is not a number (or when it is the column numbers ``0, 1, 2, ...`` pandas writes for a
  frame made from an array).
  In a file with a header, a first column that is unnamed (as pandas and R write a row index) or
  whose values are exactly 0, 1, ..., n-1 is a row index and is dropped, with a note
  (``keep_index=True`` keeps it). Files are read by pandas when it is installed, else by
  ``numpy.loadtxt``.
- ``.npy``: a 2-D array. ``.npz``: the array ``Y`` (else the first one), labels from ``labels``.
- A labels column (a header name or a 0-based index, negative from the end) is taken out of the
  features; labels may be text, and whole numbers come back as integers.
- Missing values: an empty cell, ``NA``, ``nan``, ``n/a``, ``null``, ``none`` or ``-`` (or NaN in
  an array) is NaN, with a note saying how many. Infinity, a non-numeric cell, a ragged row and a
  row with nothing observed are errors that name the row (and column).

Importing this module imports numpy only (the command line's ``--help`` stays fast).
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

__all__ = ["load_table"]


class _TableError(ValueError):
    """A file that is not a table of numbers; the message is the one the user sees."""


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


_DELIMITERS = ",;\t| "
_MISSING = {"", "na", "nan", "n/a", "null", "none", "-"}
_LABEL_NAMES = {"label", "labels", "class", "target", "y", "species", "category", "cluster"}


def load_table(path, labels=None, *, keep_index=False, note=None):
    """Read a data table: one row per sample, NaN where a value is missing.

    The rules (delimiter and header sniffing, row-index and label columns, missing cells) are in
    this module's docstring.

    Parameters
    ----------
    path : str or Path
        ``.csv`` / ``.tsv`` / ``.txt`` (delimiter sniffed, optional header row), ``.npy`` (a 2-D
        array), or ``.npz`` (array ``Y``, else the first array; labels from array ``labels``).
    labels : str or int, optional
        In a delimited file, the label column: a header name, or a 0-based index of the file's
        columns (negative counts from the end). In an ``.npy``, a column index. In an ``.npz``,
        the name of the array holding the labels (default: ``labels`` when present).
    keep_index : bool, default=False
        Keep a first column that looks like a row index instead of dropping it.
    note : callable, optional
        Receives one-line notes: a dropped index column, a feature column named like labels, the
        number of missing values. By default each is a ``UserWarning``; the ``lvm`` command line
        prints them on stderr.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_features)
        The features, float64, NaN where a value is missing.
    labels : ndarray of shape (n_samples,) or None
        Integers where the labels are whole numbers, else as read (e.g. text).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a table of numbers; the message names the row and column to blame (a
        non-numeric cell, a ragged row, infinity, a row with nothing observed) or the option.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from lvm.datasets import load_table
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "plants.csv"
    >>> _ = path.write_text("height,width,kind\\n1.5,0.2,a\\n1.7,,b\\n1.2,0.3,a\\n")
    >>> notes = []
    >>> Y, labels = load_table(path, "kind", note=notes.append)
    >>> notes[0][:39]
    'plants.csv: 1 missing value(s) (NaN, 16'
    >>> Y
    array([[1.5, 0.2],
           [1.7, nan],
           [1.2, 0.3]])
    >>> labels
    array(['a', 'b', 'a'], dtype='<U1')
    """
    if note is None:
        note = _warn
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot read {path}: no such file.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            Y, lab = _read_npy(path, labels)
        elif suffix == ".npz":
            Y, lab = _read_npz(path, labels)
        elif suffix in (".csv", ".tsv", ".txt"):
            Y, lab = _read_delimited(path, labels, keep_index, note)
        else:
            raise _TableError(f"cannot read {path}: use a .csv, .tsv, .txt, .npy or .npz file.")
    except _TableError:
        raise
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as exc:
        raise _TableError(f"cannot read {path}: {_first_line(exc)}") from exc
    if Y.dtype.kind not in "biuf":
        raise _TableError(f"{path} holds non-numeric data (dtype {Y.dtype}); lvm needs numbers.")
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2:
        raise _TableError(f"{path} must hold a 2-D table (rows = samples), got shape {Y.shape}.")
    if Y.shape[1] == 0:
        raise _TableError(f"{path} has no feature columns left.")
    bad = np.isinf(Y)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise _TableError(
            f"{path} has {int(bad.sum())} infinite value(s) (first at row {r + 1}, feature "
            f"{c + 1}); only NaN (or an empty cell) means a missing value. Fix or drop them."
        )
    empty = np.isnan(Y).all(1) if Y.ndim == 2 and Y.shape[1] else np.zeros(0, bool)
    if empty.any():
        raise _TableError(f"{path}: row {int(np.argmax(empty)) + 1} has no observed value; "
                          "drop it.")
    if np.isnan(Y).any():
        note(f"{path.name}: {int(np.isnan(Y).sum())} missing value(s) (NaN, "
             f"{100 * float(np.isnan(Y).mean()):.3g}% of the entries): the models score the "
             "observed entries of each row.")
    if lab is not None and len(lab) != len(Y):
        raise _TableError(f"{path}: {len(lab)} labels for {len(Y)} rows.")
    return Y, lab


def _read_npy(path, labels):
    Y = np.load(path, allow_pickle=False)
    if labels is None:
        return Y, None
    j = _as_index(labels, Y.shape[1] if Y.ndim == 2 else 0, path)
    return np.delete(Y, j, axis=1), _tidy_labels(Y[:, j])


def _read_npz(path, labels):
    with np.load(path, allow_pickle=False) as f:
        if not f.files:
            raise _TableError(f"{path} holds no arrays.")
        Y = f["Y"] if "Y" in f.files else f[f.files[0]]
        key = "labels" if labels is None else str(labels)
        if key in f.files:
            return Y, _tidy_labels(f[key])
        if labels is not None:
            raise _TableError(f"{path} has no array {key!r} for the labels; it holds "
                             f"{', '.join(f.files)}.")
        return Y, None


def _as_index(spec, n_columns, path, names=None) -> int:
    """The 0-based column that ``spec`` (a header name or an integer index) names."""
    spec = str(spec)
    if names is not None and spec in names:
        return names.index(spec)
    try:
        j = int(spec)
    except ValueError:
        shown = ", ".join(repr(n) for n in (names or [])[:12])
        raise _TableError(f"{path} has no column named {spec!r} for the labels"
                         + (f"; its columns are {shown}" + (", ..." if len(names) > 12 else "")
                            if names else "; it has no header, so give a 0-based index")
                         + ".") from None
    if not -n_columns <= j < n_columns:
        raise _TableError(f"labels={spec}: {path} has {n_columns} columns "
                          f"(0 to {n_columns - 1}).")
    return j % n_columns


def _tidy_labels(lab) -> np.ndarray:
    """Labels as integers where they are whole numbers, else as they are (e.g. text)."""
    lab = np.asarray(lab).ravel()
    if lab.dtype == object:
        lab = lab.astype(str)
    if lab.dtype.kind in "US":
        lab = np.char.strip(lab.astype(str))
        try:
            as_float = lab.astype(np.float64)
        except ValueError:
            return lab
        lab = as_float
    if lab.dtype.kind == "f" and np.isfinite(lab).all() and (lab == np.round(lab)).all():
        return lab.astype(np.int64)
    return lab


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return cell.strip().lower() in _MISSING


def _split(line: str, delimiter):
    if delimiter is None:
        return line.split()
    return next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), [])


def _sniff(path: Path):
    """(delimiter or None for runs of whitespace, first row's fields, whether it is a header)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        sample = f.read(64 * 1024)
    lines = [ln for ln in sample.splitlines() if ln.strip()]
    if len(sample) == 64 * 1024 and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    if not lines:
        raise _TableError(f"{path} is empty.")
    try:
        delimiter = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=_DELIMITERS).delimiter
    except csv.Error:  # one column, or nothing consistent: the suffix's usual delimiter
        delimiter = {".csv": ",", ".tsv": "\t"}.get(path.suffix.lower())
    if delimiter == " ":
        delimiter = None
    first = [c.strip() for c in _split(lines[0], delimiter)]
    # A header has a field that is not a number, or is the column numbers pandas writes for a
    # frame made from an array ("0,1,2", or ",0,1" after an unnamed index; "0,1" can be data).
    indexed = first[:1] == [""]
    numbered = first[1:] if indexed else first
    header = (not all(_is_number(c) for c in first)
              or (len(numbered) >= (1 if indexed else 3)
                  and numbered == [str(j) for j in range(len(numbered))]))
    return delimiter, first, header


def _read_delimited(path, labels, keep_index, note):
    delimiter, first, header = _sniff(path)
    n_columns = len(first)
    names = first if header else None
    label_col = None if labels is None else _as_index(labels, n_columns, path, names)

    index_col = None
    if header and not keep_index and label_col != 0 and n_columns > 1:
        if first[0] == "" or first[0].startswith("Unnamed: "):
            index_col = 0
            why = "it is unnamed, as pandas and R write a row index"
    features = [j for j in range(n_columns) if j not in (label_col, index_col)]
    if not features:
        raise _TableError(f"{path} has no feature columns besides the labels.")

    table, label_values = _parse(path, delimiter, header, n_columns, features, label_col)
    if table is None:  # the fast reader failed: find the cell to blame
        _diagnose(path, delimiter, header, names, n_columns, features)
        raise _TableError(f"cannot read {path} as a table of numbers.")
    Y = table
    if (index_col is None and header and not keep_index and label_col != 0 and len(features) > 1
            and features[0] == 0 and len(Y) > 1
            and np.array_equal(Y[:, 0], np.arange(len(Y), dtype=np.float64))):
        index_col, Y = 0, Y[:, 1:]
        why = "its values are 0, 1, ..., n-1"
    if index_col is not None:
        note(f"dropped column 0 ({first[0]!r}) of {path.name} as a row index: {why} "
             "(keep_index=True, or --keep-index, keeps it).")
    if np.isinf(Y).any():
        # a precise message where a cell is to blame (else load_table names the first one)
        _diagnose(path, delimiter, header, names, n_columns, features)
    if label_col is None and names is not None:
        for j in features:
            if names[j].lower() in _LABEL_NAMES:
                note(f"column {names[j]!r} looks like labels but is used as a feature; "
                     f"pass it as labels (--labels {names[j]}) to colour by it instead.")
                break
    return Y, (None if label_values is None else _tidy_labels(label_values))


def _parse(path, delimiter, header, n_columns, features, label_col):
    """(features as float64, label column or None), or (None, None) when the file is not a clean
    table of numbers. Uses pandas when it is installed, else numpy's C reader."""
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        try:
            df = pd.read_csv(path, sep=r"\s+" if delimiter is None else delimiter, header=None,
                             skiprows=1 if header else 0, quotechar='"', skipinitialspace=True,
                             encoding="utf-8-sig", low_memory=False)
        except (ValueError, pd.errors.ParserError):
            return None, None
        if df.shape[1] != n_columns:
            return None, None
        block = df.iloc[:, features]
        if not all(pd.api.types.is_numeric_dtype(t) for t in block.dtypes):
            return None, None
        lab = None if label_col is None else df.iloc[:, label_col].to_numpy()
        return block.to_numpy(dtype=np.float64), lab
    kw = dict(delimiter=delimiter, skiprows=1 if header else 0, quotechar='"', comments=None,
              encoding="utf-8-sig")
    # With every column used, numpy itself rejects a row of another width.
    usecols = None if len(features) == n_columns else features
    try:
        try:
            Y = np.loadtxt(path, dtype=np.float64, usecols=usecols, ndmin=2, **kw)
        except ValueError:  # empty or "NA" cells: missing values, read as NaN
            Y = np.loadtxt(path, dtype=np.float64, usecols=usecols, ndmin=2,
                           converters=_cell_or_nan, **kw)
        lab = None if label_col is None else np.loadtxt(path, dtype=str, usecols=[label_col],
                                                        ndmin=1, **kw)
    except ValueError:
        return None, None
    return Y, lab


def _cell_or_nan(cell: str) -> float:
    """A cell as a number, NaN where it marks a missing value ("", "NA", "null", ...)."""
    return np.nan if cell.strip().lower() in _MISSING else float(cell)


def _diagnose(path, delimiter, header, names, n_columns, features):
    """Raise an _TableError naming the first row that is ragged, missing or non-numeric.

    Runs only after the fast reader failed, so a per-row loop is fine here."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = (csv.reader(f, delimiter=delimiter, skipinitialspace=True) if delimiter
                else (line.split() for line in f))
        row_number = 0
        for line_number, row in enumerate(rows, start=1):
            if not any(c.strip() for c in row) or (header and line_number == 1):
                continue
            row_number += 1
            if len(row) != n_columns:
                raise _TableError(f"{path}: row {row_number} (line {line_number}) has {len(row)} "
                                 f"fields, expected {n_columns}.")
            for j in features:
                cell = row[j].strip()
                try:
                    float(cell)
                    continue
                except ValueError:
                    pass
                column = repr(names[j]) if names else f"{j} (0-based)"
                if cell.lower() in _MISSING:
                    continue  # a missing value: NaN
                raise _TableError(
                    f"{path}: column {column} is not numeric (row {row_number} holds {cell!r}); "
                    "drop or encode it, or pass it as labels "
                    f"(--labels {names[j] if names else j}) if it holds labels.")
