"""sphinx-gallery glue for lvm's examples: capture pyplot-free figures, pass --quick to scripts.

lvm's plotting helpers (and the examples) build :class:`matplotlib.figure.Figure` objects without
pyplot, so sphinx-gallery's default matplotlib scraper, which asks pyplot for its figures, sees
none. Here every ``Figure`` created while an example runs is recorded (``Figure.__init__`` is
wrapped for the docs build only) and :func:`figure_scraper` renders those created by each code
block, in creation order; it replaces the default scraper, so a pyplot figure is shown once too.

The examples under ``examples/`` keep their full settings when run as plain scripts; the gallery
runs them with ``--quick`` (small settings) and ``--out`` pointing into the build folder
(:func:`example_argv`).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402
from sphinx_gallery.scrapers import figure_rst  # noqa: E402

#: Figures created since the last scrape, in creation order. Strong references: a figure the script
#: saved and dropped (``lvm.plot.samples(m).savefig(p)``) is still shown.
_created: list = []
_original_init = Figure.__init__


def _recording_init(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    _created.append(self)


Figure.__init__ = _recording_init

#: Where the examples' own ``--out`` PNGs go during a docs build (never the tracked figures).
OUT_DIR = Path(__file__).resolve().parents[1] / "_build" / "example-output"


def _figure_titles(fig) -> str:
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    if getattr(fig, "_suptitle", None) is not None:
        titles.insert(0, fig._suptitle.get_text())
    return ", ".join(titles)


def figure_scraper(block, block_vars, gallery_conf, **kwargs):
    """Render every figure created by the block just run, pyplot-managed or not."""
    import matplotlib.pyplot as plt

    figures = list(_created)
    _created.clear()
    rst = []
    for fig, path in zip(figures, block_vars["image_path_iterator"]):
        path = PurePosixPath(path)
        fig.savefig(path, dpi=fig.dpi)
        rst.append(figure_rst([path], gallery_conf["src_dir"], _figure_titles(fig)))
    plt.close("all")
    return "".join(rst)


def reset_figures(gallery_conf, fname):
    """Forget figures left over from a previous example (sphinx-gallery's ``reset_modules``)."""
    _created.clear()


def example_argv(gallery_conf, script_vars):
    """Command-line arguments for each gallery script (sphinx-gallery's ``reset_argv``).

    The scripts under ``examples/`` take ``--quick`` (small settings: the docs build runs every
    example) and ``--out`` (where they write their PNGs); the user-guide scripts take none.
    """
    src = Path(script_vars["src_file"])
    if src.parent.name != "examples":
        return []
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    return ["--quick", "--out", os.fspath(OUT_DIR)]
