"""The layer order of DESIGN.md, enforced: a lower layer never imports a higher one.

Every ``.py`` file under ``src/electrostim`` is parsed (not imported) with :mod:`ast`.
Each import is resolved to an ``electrostim`` module:

* ``import electrostim.x.y`` and ``from electrostim.x import y``;
* relative imports (``from ..program import Program``, ``from .. import anatomy``),
  resolved against the importing module's package;
* imports anywhere in the file: inside functions, methods, ``if TYPE_CHECKING:``
  blocks and ``try`` blocks count the same as those at the top;
* ``importlib.import_module("electrostim.x")`` / ``import_module(".x", __package__)``
  / ``__import__("electrostim.x")`` with a string (or an f-string whose fixed prefix
  names the package); a call whose target cannot be read is reported, because it
  cannot be checked.

Each module belongs to the layer of its first sub-package name (``electrostim.
program._io`` → ``program`` → *describe*). A module whose first name is not in
:data:`LAYER_OF` fails the test: a new package must be given a layer here first.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import electrostim

PACKAGE = "electrostim"
# the checkout's source tree; the installed package's folder when run elsewhere
_REPO_SRC = Path(__file__).resolve().parents[1] / "src" / PACKAGE
SRC = _REPO_SRC if _REPO_SRC.is_dir() else Path(electrostim.__file__).resolve().parent

#: Layers bottom up (DESIGN.md, "One way only").
LAYERS: tuple[str, ...] = ("base", "describe", "check", "predict", "keep", "deliver", "grow", "face")

#: First sub-package (or top-level module) name -> layer.
LAYER_OF: dict[str, str] = {
    "errors": "base",
    "units": "base",
    "_jit": "base",  # the one numba switch, for the kernels of every layer
    "program": "describe",
    "anatomy": "describe",
    "waveform": "check",
    "safety": "check",
    "physics": "predict",
    "physiology": "predict",
    "patient": "predict",
    "store": "keep",
    "devices": "deliver",
    "session": "deliver",
    "plan": "grow",
    "scale": "grow",
    "cli": "face",
    "web": "face",
    # ``python -m electrostim`` runs the CLI: it is part of the face.
    "__main__": "face",
}

#: ``electrostim/__init__.py`` is the public facade. It re-exports names of every
#: layer, lazily (module ``__getattr__``), so it may import anything and is exempt as
#: an importer. As an import *target* it stands for the highest layer: a module that
#: imports names from the facade could receive any layer's objects, so only the face
#: may do that.
FACADE = PACKAGE
FACADE_LAYER = "face"

_IMPORT_MODULE_CALLS = {"import_module", "__import__"}


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    target: str
    problem: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.problem}"


def module_name(path: Path, root: Path = SRC) -> tuple[str, bool]:
    """Dotted module name of a file under ``root`` (the package folder), and whether it is a package."""
    rel = path.relative_to(root).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    return ".".join(parts), is_pkg


def package_sources(root: Path = SRC) -> dict[str, tuple[str, bool]]:
    """``{module name: (source, is_package)}`` for every ``.py`` file under ``root``."""
    out: dict[str, tuple[str, bool]] = {}
    for path in sorted(root.rglob("*.py")):
        name, is_pkg = module_name(path, root)
        out[name] = (path.read_text(encoding="utf-8"), is_pkg)
    return out


def layer_of(module: str) -> str | None:
    """The layer of an ``electrostim`` module, or None when its first name is not placed."""
    if module == FACADE:
        return FACADE_LAYER
    first = module.split(".")[1]
    return LAYER_OF.get(first)


def _package_of(module: str, is_pkg: bool) -> str:
    return module if is_pkg else module.rpartition(".")[0]


def _resolve_relative(package: str, level: int, name: str | None) -> str | None:
    """``from <level dots><name> import ...`` seen from ``package``; None beyond the top."""
    parts = package.split(".")
    if level - 1 >= len(parts):
        return None
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{name}" if name else base


def _string_prefix(node: ast.expr) -> tuple[str | None, bool]:
    """The text of a string constant, or the fixed prefix of an f-string (and whether it is whole)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, True
    if isinstance(node, ast.JoinedStr):
        prefix = ""
        for part in node.values:
            if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
                break
            prefix += part.value
        return prefix, False
    return None, False


def _anchor_package(call: ast.Call, module: str, is_pkg: bool) -> tuple[str | None, str | None]:
    """The package a relative ``import_module`` name is resolved against."""
    arg = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "package"), None)
    if arg is None or (isinstance(arg, ast.Name) and arg.id == "__package__"):
        return _package_of(module, is_pkg), None
    if isinstance(arg, ast.Name) and arg.id == "__name__":
        return module, None
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value, None
    return None, "dynamic relative import against a package that cannot be read statically"


def _dynamic_target(call: ast.Call, module: str, is_pkg: bool) -> tuple[str | None, str | None]:
    """Target of an ``import_module``/``__import__`` call: ``(module or "" if not ours, None)`` or ``(None, problem)``."""
    if not call.args:
        return None, "dynamic import without a module argument"
    text, whole = _string_prefix(call.args[0])
    if text is None or (not whole and not text):
        return None, "dynamic import of a module name that cannot be read statically; use a string literal"
    if text.startswith("."):
        anchor, problem = _anchor_package(call, module, is_pkg)
        if anchor is None:
            return None, problem
        level = len(text) - len(text.lstrip("."))
        base = _resolve_relative(anchor, level, None)
        if base is None:
            return None, f"dynamic relative import {text!r} goes beyond the top-level package"
        rest = text[level:]
        text = f"{base}.{rest}" if (rest or not whole) else base
    if whole:
        return (text if text == PACKAGE or text.startswith(PACKAGE + ".") else ""), None
    if not (text.startswith(PACKAGE) or PACKAGE.startswith(text)):
        return "", None  # f"json{x}": not ours
    complete = text.split(".")[:-1]  # components followed by a dot are fixed
    if len(complete) >= 2 and complete[0] == PACKAGE:
        return ".".join(complete[:2]), None
    return None, f"dynamic import {text!r}... does not name its sub-package, so it cannot be checked"


def imports_of(module: str, source: str, is_pkg: bool, known: set[str]) -> list[tuple[int, str | None, str | None]]:
    """Every ``electrostim`` import in a source: ``(line, target module, problem)``."""
    tree = ast.parse(source, filename=module)
    found: list[tuple[int, str | None, str | None]] = []

    def add(line: int, target: str | None, problem: str | None = None) -> None:
        if problem is not None:
            found.append((line, None, problem))
        elif target and (target == PACKAGE or target.startswith(PACKAGE + ".")):
            found.append((line, target, None))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(_package_of(module, is_pkg), node.level, node.module)
                if base is None:
                    add(node.lineno, None, f"relative import beyond the top-level package ({'.' * node.level}{node.module or ''})")
                    continue
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # ``from electrostim import anatomy`` imports the sub-package, not a facade name
                add(node.lineno, sub if sub in known else base)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name in _IMPORT_MODULE_CALLS:
                target, problem = _dynamic_target(node, module, is_pkg)
                add(node.lineno, target, problem)
    return found


def find_violations(sources: dict[str, tuple[str, bool]]) -> list[Violation]:
    """Check ``{module name: (source, is_package)}`` against the layer order."""
    known = set(sources)
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    violations: list[Violation] = []
    for module, (source, is_pkg) in sorted(sources.items()):
        if module == FACADE:
            continue  # the public facade may import anything (lazily); see FACADE
        own = layer_of(module)
        if own is None:
            violations.append(Violation(module, 0, module,
                                        f"module {module} is in no layer: add {module.split('.')[1]!r} to LAYER_OF "
                                        f"(tests/test_layers.py) with its layer from DESIGN.md"))
            continue
        for line, target, problem in imports_of(module, source, is_pkg, known):
            if problem is not None:
                violations.append(Violation(module, line, "", problem))
                continue
            assert target is not None
            theirs = layer_of(target)
            if theirs is None:
                violations.append(Violation(module, line, target,
                                            f"imports {target}, which is in no layer (add it to LAYER_OF)"))
            elif rank[theirs] > rank[own]:
                violations.append(Violation(module, line, target,
                                            f"{module} (layer {own!r}) imports {target} (higher layer {theirs!r})"))
    return violations


# --------------------------------------------------------------------------- the real package


def test_source_tree_found():
    sources = package_sources()
    assert "electrostim.errors" in sources
    assert "electrostim.program._models" in sources
    assert len(sources) >= 10


def test_no_lower_layer_imports_a_higher_one():
    violations = find_violations(package_sources())
    assert not violations, "layer order broken (DESIGN.md):\n" + "\n".join(map(str, violations))


def test_every_module_has_a_layer():
    missing = sorted(m for m in package_sources() if m != FACADE and layer_of(m) is None)
    assert not missing, f"modules in no layer (add their package to LAYER_OF): {missing}"


def test_layer_table_uses_known_layers():
    assert set(LAYER_OF.values()) <= set(LAYERS)


def test_known_imports_are_seen():
    """The resolver sees the imports we know exist (guards against a checker that sees nothing)."""
    sources = package_sources()
    known = set(sources)
    src, is_pkg = sources["electrostim.program._models"]
    targets = {t for _, t, _ in imports_of("electrostim.program._models", src, is_pkg, known)}
    assert "electrostim.anatomy" in targets  # from .. import anatomy
    src, is_pkg = sources["electrostim.safety._assess"]
    targets = {t for _, t, _ in imports_of("electrostim.safety._assess", src, is_pkg, known)}
    assert {"electrostim.program", "electrostim.waveform", "electrostim.errors"} <= targets


# --------------------------------------------------------------------------- the checker itself

_BASE = {
    "electrostim": ("", True),
    "electrostim.errors": ("", False),
    "electrostim.units": ("", False),
    "electrostim.program": ("", True),
    "electrostim.program._io": ("", False),
    "electrostim.anatomy": ("", True),
    "electrostim.safety": ("", True),
    "electrostim.safety._assess": ("", False),
    "electrostim.waveform": ("", True),
    "electrostim.session": ("", True),
    "electrostim.cli": ("", True),
}


def _check(module: str, source: str, is_pkg: bool = False) -> list[Violation]:
    return find_violations({**_BASE, module: (source, is_pkg)})


def test_checker_catches_absolute_import():
    v = _check("electrostim.program._bad", "import electrostim.safety\n")
    assert len(v) == 1
    assert v[0].target == "electrostim.safety"
    assert "layer 'describe'" in v[0].problem and "higher layer 'check'" in v[0].problem
    assert v[0].line == 1


def test_checker_catches_from_import():
    v = _check("electrostim.program._bad", "from electrostim.safety import assess\n")
    assert [x.target for x in v] == ["electrostim.safety"]


def test_checker_catches_relative_import():
    v = _check("electrostim.program._bad", "from ..safety._assess import assess\n")
    assert [x.target for x in v] == ["electrostim.safety._assess"]
    v = _check("electrostim.program._bad", "from .. import safety\n")
    assert [x.target for x in v] == ["electrostim.safety"]
    # in a plain module one dot is its own package: here electrostim itself
    v = _check("electrostim.units", "from .safety import assess\n")
    assert [x.target for x in v] == ["electrostim.safety"]


def test_checker_resolves_relative_imports_in_packages():
    v = _check("electrostim.program", "from ..session import Runner\n", is_pkg=True)
    assert [x.target for x in v] == ["electrostim.session"]
    v = _check("electrostim.program", "from . import _io\n", is_pkg=True)
    assert v == []


def test_checker_catches_import_inside_function():
    src = "def f():\n    if True:\n        from electrostim.session import Runner\n    return Runner\n"
    v = _check("electrostim.waveform._bad", src)
    assert [(x.target, x.line) for x in v] == [("electrostim.session", 3)]


def test_checker_catches_import_module_calls():
    src = (
        "import importlib\n"
        "from importlib import import_module\n"
        "a = importlib.import_module('electrostim.safety')\n"
        "b = import_module('..cli', __package__)\n"
        "c = __import__('electrostim.session')\n"
        "d = importlib.import_module(f'electrostim.session.{name}')\n"
        "e = importlib.import_module('.safety._assess', package='electrostim')\n"
        "f = importlib.import_module(f'..devices._{name}', __package__)\n"
    )
    v = _check("electrostim.program._bad", src)
    assert [(x.target, x.line) for x in v] == [
        ("electrostim.safety", 3),
        ("electrostim.cli", 4),
        ("electrostim.session", 5),
        ("electrostim.session", 6),
        ("electrostim.safety._assess", 7),
        ("electrostim.devices", 8),
    ]


def test_checker_reports_unreadable_dynamic_import():
    v = _check("electrostim.program._bad", "import importlib\nm = importlib.import_module(NAME)\n")
    assert len(v) == 1 and "cannot be read statically" in v[0].problem
    v = _check("electrostim.program._bad", "import importlib\nm = importlib.import_module(f'electrostim.{x}')\n")
    assert len(v) == 1 and "does not name its sub-package" in v[0].problem
    # an f-string that is not ours is ignored
    assert _check("electrostim.program._bad", "import importlib\nm = importlib.import_module(f'json{x}')\n") == []


def test_checker_ignores_third_party_and_stdlib():
    src = "import numpy\nimport importlib\nimportlib.import_module('json')\nfrom pydantic import BaseModel\n"
    assert _check("electrostim.errors", src) == []


def test_checker_allows_same_and_lower_layers():
    src = "from ..program import Program\nfrom ..anatomy import get_site\nfrom .. import errors\nfrom ..waveform import Dose\n"
    assert _check("electrostim.safety._new", src) == []


def test_checker_flags_facade_imports_from_lower_layers():
    v = _check("electrostim.program._bad", "from electrostim import assess\n")
    assert [x.target for x in v] == ["electrostim"]
    v = _check("electrostim.program._bad", "import electrostim\n")
    assert [x.target for x in v] == ["electrostim"]
    # the face may use the public facade
    assert _check("electrostim.cli._app", "import electrostim as es\nfrom electrostim import assess\n") == []


def test_checker_exempts_the_facade():
    assert _check("electrostim", "from electrostim.cli import main\n", is_pkg=True) == []


def test_checker_flags_modules_in_no_layer():
    v = _check("electrostim.gizmo._thing", "x = 1\n")
    assert len(v) == 1 and "in no layer" in v[0].problem and "'gizmo'" in v[0].problem


def test_checker_flags_imports_of_packages_in_no_layer():
    v = _check("electrostim.cli._app", "from electrostim.gizmo import x\n")
    assert len(v) == 1 and "in no layer" in v[0].problem


def test_checker_flags_relative_import_beyond_top():
    v = _check("electrostim.errors", "from ... import x\n")
    assert len(v) == 1 and "beyond the top-level package" in v[0].problem


def test_checker_catches_a_violation_injected_into_the_real_tree():
    sources = package_sources()
    source, is_pkg = sources["electrostim.program._io"]
    sources["electrostim.program._io"] = (source + "\n\ndef _late():\n    from ..safety import assess\n    return assess\n", is_pkg)
    violations = find_violations(sources)
    assert [(v.module, v.target) for v in violations] == [("electrostim.program._io", "electrostim.safety")]
