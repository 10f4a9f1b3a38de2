"""Shared by the example scripts: their two options, where figures go and quick settings.

Figures go by default into ``lvm-figures/`` under the current folder, which git ignores, so running
an example never rewrites the figures the README shows (``examples/figures/``, tracked).

``--quick`` runs the same code on less data with fewer iterations: a smoke test in seconds, not a
result. The documentation build runs every example that way (``docs/sphinxext/lvm_gallery.py``).
"""

import argparse
from pathlib import Path

#: Where the examples write unless given --out (untracked: listed in .gitignore).
DEFAULT_OUT = "lvm-figures"


def parse_args(description: str) -> argparse.Namespace:
    """The options every example takes: ``out`` (a folder, created) and ``quick`` (a flag)."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"folder for the figures (default: {DEFAULT_OUT}/)")
    p.add_argument("--quick", action="store_true",
                   help="small settings (less data, fewer iterations): seconds, not a result")
    args = p.parse_args()
    args.out = Path(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    return args
