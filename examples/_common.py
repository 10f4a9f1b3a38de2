"""Shared by the example scripts: where figures go.

By default into ``lvm-figures/`` under the current folder, which git ignores, so running an
example never rewrites the figures the README shows (``examples/figures/``, tracked).
"""

import argparse
from pathlib import Path

#: Where the examples write unless given --out (untracked: listed in .gitignore).
DEFAULT_OUT = "lvm-figures"


def output_dir(description: str) -> Path:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"folder for the figures (default: {DEFAULT_OUT}/)")
    out = Path(p.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    return out
