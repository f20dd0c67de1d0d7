"""The public surface: ``__all__`` lists exactly what exists, and importing stays light.

``import electrostim as es`` must stay cheap (the CLI starts on it): the facade
resolves its names lazily, and matplotlib loads only when a figure or a rendering is
asked for (STYLE.md, item 12).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import textwrap
import types

import pytest

import electrostim


def _public_packages() -> tuple[str, ...]:
    """Every public package of electrostim (found, not listed: a new one is checked too), and the public top-level
    modules."""
    found = [m.name.removeprefix("electrostim.") for m in pkgutil.walk_packages(electrostim.__path__, "electrostim.")
             if m.ispkg and not any(part.startswith("_") for part in m.name.split("."))]
    return tuple(sorted(found)) + ("errors", "units")


SUBPACKAGES = _public_packages()


def _run_fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON object as its last line."""
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the facade


def test_facade_all_is_the_lazy_table():
    names = electrostim.__all__
    assert len(names) == len(set(names)), "duplicates in electrostim.__all__"
    assert set(names) == set(electrostim._LAZY) | {"__version__"}
    assert dir(electrostim) == sorted(names)


def test_facade_all_resolves_in_a_fresh_interpreter():
    """Each name resolves through the lazy ``__getattr__`` (not through an earlier import)."""
    result = _run_fresh(
        """
        import json, sys
        import electrostim
        loaded_before = sorted(m for m in sys.modules if m.startswith("electrostim."))
        missing = []
        for name in electrostim.__all__:
            try:
                getattr(electrostim, name)
            except AttributeError as exc:
                missing.append(f"{name}: {exc}")
        print(json.dumps({"before": loaded_before, "missing": missing}))
        """
    )
    assert result["missing"] == []
    assert result["before"] == [], "import electrostim loaded sub-packages eagerly"


@pytest.mark.parametrize("name", sorted(electrostim._LAZY))
def test_facade_name_is_the_home_object(name: str):
    home = importlib.import_module(electrostim._LAZY[name])
    assert name in home.__all__, f"{name} is re-exported by electrostim but not public in {home.__name__}"
    assert getattr(electrostim, name) is getattr(home, name)


def test_facade_version_matches_package_metadata():
    from importlib.metadata import version

    assert electrostim.__version__ == version("electrostim")


def test_facade_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match=r"module 'electrostim' has no attribute 'no_such_thing'"):
        electrostim.no_such_thing  # noqa: B018
    assert not hasattr(electrostim, "no_such_thing")


def test_facade_exports_the_error_roots():
    from electrostim import errors

    for name in ("ElectrostimError", "InvalidInputError", "ProgramError", "SafetyError", "RefusedError"):
        assert getattr(electrostim, name) is getattr(errors, name)


# --------------------------------------------------------------------------- sub-packages


def _defined_here(module: types.ModuleType, value: object) -> bool:
    """Whether a public object is defined by ``module`` or one of its private submodules."""
    home = getattr(value, "__module__", None)
    if not isinstance(home, str):
        return False
    if home == module.__name__:
        return True
    prefix = module.__name__ + "."
    return home.startswith(prefix) and home[len(prefix):].split(".")[0].startswith("_")


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_subpackage_all_names_exist(sub: str):
    module = importlib.import_module(f"electrostim.{sub}")
    names = module.__all__
    assert len(names) == len(set(names)), f"duplicates in electrostim.{sub}.__all__"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"electrostim.{sub}.__all__ lists names that do not exist: {missing}"


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_subpackage_all_lists_every_public_object(sub: str):
    """Every public class or function the sub-package defines (itself or in a private module) is in ``__all__``."""
    module = importlib.import_module(f"electrostim.{sub}")
    unlisted = sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and _defined_here(module, value)
        and name not in module.__all__
    )
    assert not unlisted, f"public in electrostim.{sub} but not in __all__: {unlisted}"


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_subpackage_star_import(sub: str):
    namespace: dict[str, object] = {}
    exec(f"from electrostim.{sub} import *", namespace)
    module = importlib.import_module(f"electrostim.{sub}")
    assert set(module.__all__) <= set(namespace)


def test_waveform_lazy_names_resolve():
    from electrostim import waveform

    for name in ("render", "export_waveform", "plot_program"):
        assert callable(getattr(waveform, name))
    with pytest.raises(AttributeError):
        waveform.no_such_thing  # noqa: B018


# --------------------------------------------------------------------------- import weight


def test_import_electrostim_is_light():
    result = _run_fresh(
        """
        import json, sys
        import electrostim
        heavy = ("numpy", "pydantic", "matplotlib", "numba", "typer", "rich")
        print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(heavy))))
        """
    )
    assert result == []


def test_loading_and_checking_a_program_does_not_import_matplotlib():
    result = _run_fresh(
        """
        import json, sys
        import electrostim as es
        program = es.load_program("knee-oa-tens")
        after_load = "matplotlib" in sys.modules
        es.compute_dose(program, level="max")
        es.assess(program)
        after_check = "matplotlib" in sys.modules
        print(json.dumps({"load": after_load, "check": after_check, "numba": "numba" in sys.modules}))
        """
    )
    assert result == {"load": False, "check": False, "numba": False}
