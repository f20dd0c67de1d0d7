"""Examples are tests: the doctests of every module under ``src/electrostim`` run here.

They run programmatically (``doctest.DocTestFinder`` + ``DocTestRunner``), one test
per module, so a plain ``pytest`` runs them, under the same warnings-as-errors
filter as the rest of the suite. Expected tracebacks must match their last line
exactly (``IGNORE_EXCEPTION_DETAIL`` is off: the messages are part of the API);
``...`` may stand for the frames.
"""

from __future__ import annotations

import doctest
import importlib
import io
from pathlib import Path

import pytest

import electrostim

PACKAGE = "electrostim"
_REPO_SRC = Path(__file__).resolve().parents[1] / "src" / PACKAGE
SRC = _REPO_SRC if _REPO_SRC.is_dir() else Path(electrostim.__file__).resolve().parent

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: Import names of optional dependencies: a module that needs one that is absent is
#: skipped, not failed. None yet; add e.g. "numba" or "serial" with their extras.
OPTIONAL_DEPENDENCIES: frozenset[str] = frozenset()


def _module_names() -> list[str]:
    names = []
    for path in sorted(SRC.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__main__":
            continue  # importing it would run the command line
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


MODULES = _module_names()


def test_modules_found():
    assert PACKAGE in MODULES
    assert f"{PACKAGE}.program._models" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in OPTIONAL_DEPENDENCIES:
            pytest.skip(f"{name} needs the optional dependency {missing!r}")
        raise
    tests = [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, name) if t.examples]
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS, verbose=False)
    for test in sorted(tests, key=lambda t: (t.lineno or 0, t.name)):
        runner.run(test, out=out.write, clear_globs=True)
    if runner.failures:
        pytest.fail(f"{runner.failures} of {runner.tries} doctest examples failed in {name}:\n{out.getvalue()}", pytrace=False)


def test_public_functions_have_examples_somewhere():
    """The facade's own docstring shows the main path, and runs."""
    tests = doctest.DocTestFinder().find(electrostim, PACKAGE)
    assert any(t.examples for t in tests)
