"""Writing small delimited files for the table-reader and command-line tests."""

import csv


def cells(row):
    """A row's values as the text Python writes for them (read back exactly)."""
    return [repr(float(v)) for v in row]


def write_csv(path, header, rows, delimiter=","):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        if header is not None:
            w.writerow(header)
        w.writerows(rows)
    return path
