"""Every example in lvm's docstrings runs and prints what it says (the ``>>>`` lines).

The same doctests ``python -m pytest --doctest-modules lvm`` collects, run here so that the
default test command covers them.
"""

import doctest
import importlib
import pkgutil

import pytest

import lvm

#: Doctests known to be wrong, with the fix they need; strict, so a fixed one fails until removed.
PENDING: dict = {}


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = {}
    for info in pkgutil.walk_packages(lvm.__path__, "lvm."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for test in finder.find(module, info.name):
            if test.examples:
                tests.setdefault(test.name, test)  # a re-exported object is found once
    return [tests[name] for name in sorted(tests)]


def _params():
    for t in _doctests():
        pending = PENDING.get(t.name)
        marks = [pytest.mark.xfail(reason=pending, strict=True)] if pending else []
        yield pytest.param(t, id=t.name, marks=marks)


@pytest.mark.parametrize("test", list(_params()))
def test_docstring_examples(test):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    lines = []
    result = runner.run(test, out=lines.append)
    assert result.failed == 0, "".join(lines)
