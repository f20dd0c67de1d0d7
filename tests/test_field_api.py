"""The public surface of ``electrostim.physics.field``: exact ``__all__``, docs, imports."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import types
from pathlib import Path

import electrostim.physics.field as field

FIELD_SRC = Path(field.__file__).resolve().parent

EXPECTED = {
    "GreenTable", "Layer", "LayeredMedium", "Montage", "Pad", "PadSolution", "TissueLayer", "TissuePreset",
    "conductivity_tensor", "disk_pad", "fibre_potentials", "get_tissue_preset", "line_source_potential",
    "list_tissue_presets", "load_tissue_presets", "pad_from_spec", "point_source_potential", "rectangle_pad", "solve_pad",
    "straight_fibre_points",
}  # fmt: skip

#: what the predict layer's field package may import from electrostim (DESIGN.md)
ALLOWED = {"errors", "units", "_jit", "anatomy", "program", "waveform", "physics"}  # _jit: the base layer's numba switch


def test_all_is_exactly_the_public_surface():
    assert len(field.__all__) == len(set(field.__all__))
    assert set(field.__all__) == EXPECTED
    public = {
        name
        for name, value in vars(field).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert public == EXPECTED


def test_star_import():
    namespace: dict[str, object] = {}
    exec("from electrostim.physics.field import *", namespace)
    assert EXPECTED <= set(namespace)


def test_public_functions_have_examples_and_classes_have_docs():
    for name in sorted(EXPECTED):
        obj = getattr(field, name)
        doc = inspect.getdoc(obj) or ""
        assert len(doc) > 40, name
        if inspect.isfunction(obj):
            assert ">>>" in doc, f"{name} has no example"
            assert "Parameters" in doc or not inspect.signature(obj).parameters, f"{name} does not document its parameters"
        else:
            methods = [getattr(obj, m) for m in dir(obj) if not m.startswith("_") and callable(getattr(obj, m))]
            assert ">>>" in doc or any(">>>" in (inspect.getdoc(m) or "") for m in methods) or name in {"Pad", "TissueLayer"}, name


def _electrostim_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            # from ...x import y, seen from electrostim.physics.field: level 3 is electrostim
            if node.level == 3:
                found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
            elif node.level == 2:
                found.add("physics")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("electrostim"):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("electrostim."):
                    found.add(alias.name.split(".")[1])
    return found


def test_field_imports_only_lower_layers():
    used = set()
    for path in FIELD_SRC.glob("*.py"):
        used |= _electrostim_imports(path)
    assert used <= ALLOWED, used - ALLOWED
    assert "errors" in used and "anatomy" in used  # the checker sees what is there


def test_importing_the_package_does_not_load_numba():
    """Kernels (numba) load on first use only: the CLI never pays for them unless it simulates."""
    code = (
        "import json, sys\n"
        "import electrostim.physics.field as f\n"
        "before = 'numba' in sys.modules\n"
        "f.point_source_potential([0.01, 0, 0], [0, 0, 0], 1e-3, 0.2)\n"
        "f.get_tissue_preset('knee')\n"
        "print(json.dumps({'import': before, 'closed_forms': 'numba' in sys.modules}))\n"
    )
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"import": False, "closed_forms": False}


def test_kernels_run_without_numba():
    """The pure-Python stand-in gives the same numbers (kernels stay steppable and coverable)."""
    code = (
        "import json, math\n"
        "import numpy as np\n"
        "from electrostim.physics.field import Layer, LayeredMedium, disk_pad, solve_pad\n"
        "med = LayeredMedium([Layer('skin', 1.5e-3, 0.43), Layer('fat', math.inf, 1/30)])\n"
        "sol = solve_pad(med, disk_pad((0, 0), 0.004, patch_size_m=4e-3))\n"
        "v = sol.potential([[0.0, 0.0, 0.001], [0.01, 0.0, 0.004]])\n"
        "print(json.dumps([sol.resistance_ohm, *v.tolist()]))\n"
    )
    results = []
    for env in ({}, {"ELECTROSTIM_NO_NUMBA": "1"}):
        import os

        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, **env})
        assert proc.returncode == 0, proc.stderr
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert results[0] == __import__("pytest").approx(results[1], rel=1e-10)
