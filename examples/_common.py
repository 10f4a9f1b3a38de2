"""Shared by the example scripts: where figures go."""

import argparse
from pathlib import Path


def output_dir(description: str) -> Path:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", default="figures", help="folder for the figures (default: figures/)")
    out = Path(p.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    return out
