"""Data sets: loaders returning a small bunch with ``Y``, ``labels`` (when known) and
``description``, and :func:`load_table`, which reads the user's own table (CSV / TSV / TXT,
``.npy``, ``.npz``).

Data cards are in the top-level ``datasets/README.md``. Files too large or not ours to ship are read
by path; nothing here downloads.

The names are imported on first use (PEP 562), so ``from lvm.datasets import load_table`` (what the
``lvm`` command line does) imports numpy only, not scikit-learn.
"""

import importlib

#: Public name -> the module that defines it (relative to this package).
_LAZY = {
    "load_digits": "._loaders",
    "load_oil_flow": "._loaders",
    "load_frey_faces": "._loaders",
    "load_olivetti_faces": "._loaders",
    "load_usps": "._loaders",
    "make_ppca": "._loaders",
    "make_counts": "._loaders",
    "DataFileNotFoundError": "._loaders",
    "load_table": "._tables",
}

__all__ = list(_LAZY)


def __getattr__(name):
    path = _LAZY.get(name)
    if path is None:
        raise AttributeError(f"module 'lvm.datasets' has no attribute {name!r}")
    value = getattr(importlib.import_module(path, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
