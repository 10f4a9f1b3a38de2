"""Data sets: loaders returning a small bunch with ``Y``, ``labels`` (when known) and ``description``.

Data cards are in the top-level ``datasets/README.md``. Files too large or not ours to ship are read
by path; nothing here downloads.
"""

from ._loaders import (
    DataFileNotFoundError,
    load_digits,
    load_frey_faces,
    load_oil_flow,
    load_olivetti_faces,
    load_usps,
    make_ppca,
)

__all__ = [
    "load_digits",
    "load_oil_flow",
    "load_frey_faces",
    "load_olivetti_faces",
    "load_usps",
    "make_ppca",
    "DataFileNotFoundError",
]
