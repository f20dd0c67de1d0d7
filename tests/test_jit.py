"""One numba switch: ``ELECTROSTIM_NO_NUMBA=1`` turns every kernel of the package into plain Python, with the same numbers."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import electrostim
from electrostim._jit import numba_disabled

SRC = Path(electrostim.__file__).resolve().parent


def _kernel_modules() -> dict[str, list[str]]:
    """Every module of the package that decorates functions with ``njit``, and those functions' names."""
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                for dec in node.decorator_list:
                    target = dec.func if isinstance(dec, ast.Call) else dec
                    if isinstance(target, ast.Name) and target.id == "njit" or isinstance(target, ast.Attribute) and target.attr == "njit":
                        names.append(node.name)
        if names:
            parts = path.relative_to(SRC.parent).with_suffix("").parts
            found[".".join(parts)] = names
    return found


KERNELS = _kernel_modules()


def test_the_kernel_modules_are_found():
    assert {"electrostim.physics.field._kernels", "electrostim.physics.fibres._kernels"} <= set(KERNELS)
    assert all(len(v) >= 3 for v in KERNELS.values()), KERNELS


def test_no_module_imports_numba_but_the_switch():
    """Kernels take ``njit`` from ``electrostim._jit``, never from numba itself."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "_jit.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "numba" for a in node.names):
                offenders.append(str(path.relative_to(SRC)))
            elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "numba":
                offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


#: run in a fresh interpreter: what every kernel is, and the numbers of a small case through both kernel modules
_PROBE = textwrap.dedent(
    """
    import importlib, json, math, sys, types
    import numpy as np

    kernels = json.loads(sys.argv[1])
    kinds = {}
    for module, names in kernels.items():
        m = importlib.import_module(module)
        kinds[module] = {n: "function" if isinstance(getattr(m, n), types.FunctionType) else type(getattr(m, n)).__module__
                         for n in names}

    # fibre kernels: a short Sweeney fibre at rest, then two lanes of a 100 µs pulse (one below, one above threshold)
    from electrostim.physics.fibres import build_cable, rest_state, run_lanes, pulse_wave
    cable = build_cable("sweeney", 10.0, n_nodes=7)
    rest = rest_state(cable)
    z = cable.z_m - cable.z_m[cable.node_index[3]]
    phi = (1.0 / (4 * math.pi * 0.2 * np.sqrt(z ** 2 + 5e-4 ** 2)))[None, :, None].repeat(2, axis=2)
    wave = pulse_wave(1e-4, 5e-6, 1.5e-3)
    out = run_lanes(cable, rest, phi, np.array([2e-5, 1e-4]), wave, 5e-6, int(cable.node_index[5]), 60, threads=1)

    # field kernels: a disk pad on two layers, its resistance and two potentials
    from electrostim.physics.field import Layer, LayeredMedium, disk_pad, solve_pad
    med = LayeredMedium([Layer("skin", 1.5e-3, 0.43), Layer("fat", math.inf, 1 / 30)])
    sol = solve_pad(med, disk_pad((0, 0), 0.004, patch_size_m=4e-3))
    v = sol.potential([[0.0, 0.0, 0.001], [0.01, 0.0, 0.004]])

    print(json.dumps({
        "numba_loaded": "numba" in sys.modules, "kinds": kinds,
        "rest_vi_v": rest.vi_v.tolist(), "fired": out.fired.tolist(),
        "fired_time_s": [None if math.isnan(t) else t for t in out.fired_time_s],
        "field": [sol.resistance_ohm, *v.tolist()],
    }))
    """
)


def _probe(env: dict[str, str]) -> dict:
    full = {k: v for k, v in os.environ.items() if k not in ("ELECTROSTIM_NO_NUMBA", "NUMBA_DISABLE_JIT")}
    proc = subprocess.run([sys.executable, "-W", "error", "-c", _PROBE, json.dumps(KERNELS)], capture_output=True,
                          text=True, timeout=600, env={**full, **env})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def probes() -> tuple[dict, dict]:
    return _probe({}), _probe({"ELECTROSTIM_NO_NUMBA": "1"})


def test_no_numba_makes_every_kernel_plain_python(probes):
    jit, plain = probes
    assert not plain["numba_loaded"]  # the switch keeps numba out of the process altogether
    for module, names in KERNELS.items():
        assert plain["kinds"][module] == {n: "function" for n in names}, module
        # and without the switch they are numba dispatchers: the check above can fail
        assert all(kind.startswith("numba") for kind in jit["kinds"][module].values()), (module, jit["kinds"][module])
    assert jit["numba_loaded"]


def test_plain_python_kernels_give_the_numba_numbers(probes):
    jit, plain = probes
    assert jit["fired"] == plain["fired"] == [False, True]  # a case with one lane each side of the threshold
    assert plain["fired_time_s"][0] is None and jit["fired_time_s"][0] is None
    assert plain["fired_time_s"][1] == pytest.approx(jit["fired_time_s"][1], rel=1e-9)
    assert plain["rest_vi_v"] == pytest.approx(jit["rest_vi_v"], rel=1e-9, abs=1e-12)
    assert plain["field"] == pytest.approx(jit["field"], rel=1e-10)


@pytest.mark.parametrize("value, disabled", [("1", True), ("yes", True), ("0", False), ("", False), (None, False)])
def test_the_switch_reads_the_environment(value, disabled):
    assert numba_disabled({} if value is None else {"ELECTROSTIM_NO_NUMBA": value}) is disabled
