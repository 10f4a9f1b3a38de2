"""The benchmarks' thread count: set in the environment before numpy, torch and numba load, since
their thread pools are sized then."""

from __future__ import annotations

import os
import sys

#: The variables every thread pool a benchmark loads reads (BLAS, OpenMP, numba for umap-learn).
VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def threads_from_argv(default: int = 1) -> str:
    """The value of ``--threads N`` (or ``--threads=N``) on the command line, else ``default``."""
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return str(default)


def set_threads(n) -> None:
    """Set every variable of :data:`VARIABLES` to ``n``."""
    for var in VARIABLES:
        os.environ[var] = str(n)
