"""The API reference (docs/api.rst) lists every public name, and only those.

Read from the source, so it runs without Sphinx; ``docs/check_site.py`` checks the built pages.
"""

import importlib
import re
from pathlib import Path

import pytest

import lvm

API_RST = Path(__file__).resolve().parents[1] / "docs" / "api.rst"
#: Submodules whose ``__all__`` the reference documents (keep in step with docs/check_site.py).
PUBLIC_SUBMODULES = ("evidence", "likelihoods", "latents", "datasets", "plot", "metrics",
                     "settings")


def public_names() -> set:
    names = set()
    for name in lvm.__all__:
        if name == "__version__":
            continue
        if getattr(getattr(lvm, name), "__name__", None) == f"lvm.{name}":
            continue  # a submodule: its own public names are below
        names.add(f"lvm.{name}")
    for sub in PUBLIC_SUBMODULES:
        module = importlib.import_module(f"lvm.{sub}")
        names.update(f"lvm.{sub}.{n}" for n in module.__all__)
    return names


def documented_names() -> set:
    """Full names of the entries of every ``autosummary`` directive, under its currentmodule."""
    names, module, in_summary = set(), None, False
    for line in API_RST.read_text().splitlines():
        if m := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = m.group(1)
        elif line.startswith(".. autosummary::"):
            in_summary = True
        elif in_summary:
            if m := re.match(r"   (\w+)$", line):
                names.add(f"{module}.{m.group(1)}")
            elif line and not line.startswith("   "):
                in_summary = False
    return names


def test_every_public_name_is_in_the_api_reference():
    missing = public_names() - documented_names()
    assert not missing, f"add to docs/api.rst: {sorted(missing)}"


def test_the_api_reference_lists_only_public_names():
    extra = documented_names() - public_names()
    assert not extra, f"not public (not in an __all__), remove from docs/api.rst: {sorted(extra)}"


def test_every_public_submodule_is_documented():
    modules = {n for n in lvm.__all__
               if getattr(getattr(lvm, n), "__name__", None) == f"lvm.{n}"}
    assert modules == set(PUBLIC_SUBMODULES)


def test_the_built_site_covers_the_api():
    html = API_RST.parent / "_build" / "html"
    if not (html / "generated").is_dir():
        pytest.skip("the site is not built (sphinx-build -W -b html docs docs/_build/html)")
    import sys

    sys.path.insert(0, str(API_RST.parent))
    try:
        check_site = importlib.import_module("check_site")
    finally:
        sys.path.pop(0)
    assert check_site.check_api(html) == []
