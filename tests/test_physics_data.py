"""Data of the nerve engine: TOML files (checked, one-line errors), no tables in Python, units in names."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import math
import re
from pathlib import Path

import pytest

import electrostim
from electrostim import anatomy, units
from electrostim.errors import InvalidInputError, UnknownSiteError
from electrostim.physics.fibres import _geometry
from electrostim.physics.field import _presets
from electrostim.physics.population import load_fibre_classes, tissue_for_site

SRC = Path(electrostim.__file__).resolve().parent
PHYSICS = SRC / "physics"

# --------------------------------------------------------------------------- units


def _identifiers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    return names


def test_every_unit_constant_is_used():
    constants = [n for n in units.__all__ if n.isupper()]
    assert "MA" in constants
    used: set[str] = set()
    for path in SRC.rglob("*.py"):
        if path != SRC / "units.py":
            used |= _identifiers(path)
    assert [c for c in constants if c not in used] == []
    for c in constants:  # each is a power of ten of an SI unit
        assert math.log10(getattr(units, c)) == pytest.approx(round(math.log10(getattr(units, c))))


def test_pad_area_rejects_a_missing_size_with_one_line():
    with pytest.raises(InvalidInputError, match=r"^Invalid pad: a disk needs diameter_cm, but got none\.$"):
        units.pad_area_cm2("disk")
    with pytest.raises(InvalidInputError, match=r"allowed 'rectangle', 'disk', but got 'hexagon'"):
        units.pad_area_cm2("hexagon", 1, 1)


#: names of public attributes that are not physical quantities (so carry no unit), and why
NOT_QUANTITIES = {
    # names, ids and words
    "model", "name", "id", "role", "layer", "tissue", "label", "shape", "kinds", "message", "program", "channel",
    "notes", "parameters", "classes", "fibre_class", "thickness_source", "waveform", "polarity",
    # objects and containers of objects
    "medium", "pad", "pads", "layers", "cable", "conductivities",
    # counts and indices
    "n", "n_gates", "n_nodes", "nodes", "n_vertices", "n_patches", "kernel_model", "active", "act_of", "node_index",
    "detect", "quiet_after_step", "runs", "steps", "z_first", "z_count", "patch_ring",
    # flags
    "myelinated", "fired", "local", "blocked", "coupled",
    # dimensionless: the kernel's parameter vector (SI, documented by layout), a waveform in units of its amplitude,
    # gate fractions, grid coordinates in asinh units, and the depth stretch sqrt(sigma_h / sigma_v)
    "params", "wave", "gates", "du", "w0", "dw", "lam",
}
UNIT = re.compile(r"_(m|m2|mm|um|s|ms|us|a|ma|ua|v|f|c|rad|hz|ohm|ohm_m2|s_per_m|v_per_a|a_per_m2)$")


def _public_attributes(cls) -> list[str]:
    names = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
    names += [k for k, v in vars(cls).items() if isinstance(v, property) and not k.startswith("_")]
    return names


def _montage_attributes() -> list[str]:
    from electrostim.physics.field import Layer, LayeredMedium, Montage, disk_pad, solve_pad

    sol = solve_pad(LayeredMedium([Layer("tissue", math.inf, 0.2)]), disk_pad((0, 0), 0.005, patch_size_m=5e-3))
    return [k for k in vars(Montage([sol], [1e-3])) if not k.startswith("_")]


def test_public_attributes_of_physics_carry_their_unit():
    seen, unitless = 0, []
    for module in ("electrostim.physics.fibres", "electrostim.physics.field", "electrostim.physics.population"):
        mod = importlib.import_module(module)
        for name in mod.__all__:
            cls = getattr(mod, name)
            if not inspect.isclass(cls) or issubclass(cls, BaseException):
                continue
            for attr in _public_attributes(cls):
                seen += 1
                if attr not in NOT_QUANTITIES and not UNIT.search(attr):
                    unitless.append(f"{name}.{attr}")
    for attr in _montage_attributes():
        seen += 1
        if attr not in NOT_QUANTITIES and not UNIT.search(attr):
            unitless.append(f"Montage.{attr}")
    assert seen > 100
    assert unitless == []


# --------------------------------------------------------------------------- no tables in Python


def test_no_site_table_in_python():
    """Site → tissue and the like live in TOML: no literal in physics/ or anatomy/ names three or more body sites."""
    sites = {s.id for s in anatomy.list_sites()}
    offenders = []
    for folder in (PHYSICS, SRC / "anatomy"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Dict | ast.Set | ast.List | ast.Tuple):
                    items = [*getattr(node, "keys", []), *getattr(node, "values", []), *getattr(node, "elts", [])]
                    named = {i.value for i in items if isinstance(i, ast.Constant) and i.value in sites}
                    if len(named) >= 3:
                        offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


#: the stand-ins population used before they moved to tissues.toml (site -> preset)
FORMER_SITE_TISSUE = {
    "quadriceps": "quadriceps", "vastus-medialis": "quadriceps", "vastus-lateralis": "quadriceps",
    "rectus-femoris": "quadriceps", "hamstrings": "quadriceps", "gluteal": "quadriceps",
    "knee": "knee", "low-back": "low-back", "pelvis": "low-back", "abdomen": "low-back", "upper-back": "low-back",
    "calf": "calf", "tibialis-anterior": "calf", "ankle": "calf", "foot": "calf",
    "forearm": "forearm", "hand": "forearm", "upper-arm": "forearm",
    "upper-trapezius": "upper-trapezius", "shoulder": "upper-trapezius", "posterior-neck": "upper-trapezius",
}  # fmt: skip


def test_tissue_for_site_reads_the_toml_and_gives_the_former_answers():
    assert {s: tissue_for_site(s) for s in FORMER_SITE_TISSUE} == FORMER_SITE_TISSUE
    assert sorted(_presets.sites_with_tissue()) == sorted(FORMER_SITE_TISSUE)
    with pytest.raises(UnknownSiteError, match=r"^No tissue preset or stand-in for body site 'eye': allowed abdomen, "):
        tissue_for_site("eye")
    with pytest.raises(UnknownSiteError, match="Unknown body site 'elbow'"):
        tissue_for_site("elbow")


# --------------------------------------------------------------------------- broken files: one line, naming the place


def _one_line(exc: pytest.ExceptionInfo, *needles: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("Invalid ") and msg.endswith("."), msg
    for n in needles:
        assert n in msg, (n, msg)
    return msg


SHIPPED_CLASSES = (PHYSICS / "fibre_classes.toml").read_text(encoding="utf-8")
SHIPPED_MODELS = (PHYSICS / "fibre_models.toml").read_text(encoding="utf-8")
SHIPPED_TISSUES = (PHYSICS / "field" / "tissues.toml").read_text(encoding="utf-8")


def test_the_shipped_files_load():
    assert list(load_fibre_classes()) == ["a-beta", "motor", "a-delta", "c"]
    assert set(_geometry.load_model_table()) == {"mrg", "sensory", "sweeney", "sundt"}
    assert load_fibre_classes(_write(Path(__import__("tempfile").mkdtemp()), "c.toml", SHIPPED_CLASSES)) == load_fibre_classes()


def _write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("change, needles", [
    (('role = "motor"', 'role = "muscle"'), ["[classes.motor]", "role must be one of sensory, motor, pain", "'muscle'"]),
    (('model = "sundt"', 'model = "hh"'), ["[classes.c]", "model must be one of mrg,", "'hh'"]),
    (("depth_m = [0.002, 0.020]", "depth_m = [0.020, 0.002]"), ["[classes.motor]", "depth_m must be [top, bottom]"]),
    (("dt_us = 5.0", "dt_us = -5.0"), ["[classes.c]", "dt_us must be > 0"]),
    (('layer = "muscle"\n', 'layer = "muscle"\ncolour = "red"\n'), ["[classes.motor]", "unknown keys ['colour']"]),
    (('layer = "muscle"\n', ""), ["[classes.motor]", "missing keys ['layer']"]),
    (("mean = 12.0", 'mean = "12"'), ["[classes.motor] diameter_um", "mean must be a number, but got '12'"]),
    (("[classes.c]", "[classes.c"), ["fibre.toml"]),  # not TOML at all
])
def test_a_broken_fibre_class_file_is_one_line(tmp_path, change, needles):
    path = _write(tmp_path, "fibre.toml", SHIPPED_CLASSES.replace(*change, 1))
    with pytest.raises(InvalidInputError) as exc:
        load_fibre_classes(path)
    _one_line(exc, str(path), *needles)


@pytest.mark.parametrize("change, needles", [
    (("gnapbar = 0.01\n", ""), ["[mrg]", "missing keys ['gnapbar']"]),
    (("q10 = [2.2, 2.9, 3.0]", "q10 = [2.2, 2.9]"), ["[mrg]", "q10 must be a list of 3 numbers"]),
    (("diameters_um =      [5.7,  7.3,", "diameters_um =      [7.3,  5.7,"), ["[mrg]", "diameters_um must increase"]),
    (("lamellae =          [80,", "lamellae =          [80, 90,"), ["[mrg]", "lamellae must be a list of 9 numbers"]),
    (("g_pas = 0.0001", "g_pas = true"), ["[sundt]", "g_pas must be a number, but got True"]),
    (("[sweeney]", "[sweeny]"), ["missing keys ['sweeney']"]),
])
def test_a_broken_fibre_model_file_is_one_line(tmp_path, change, needles):
    assert change[0] in SHIPPED_MODELS
    path = _write(tmp_path, "models.toml", SHIPPED_MODELS.replace(*change, 1))
    with pytest.raises(InvalidInputError) as exc:
        _geometry.load_model_table(path)
    _one_line(exc, str(path), *needles)


@pytest.mark.parametrize("change, needles", [
    (('abdomen = "low-back"', 'belly = "low-back"'), ["[nearest_preset]", "'belly' is not a body site"]),
    (('hand = "forearm"', 'hand = "wrist"'), ["[nearest_preset]", "hand must name a preset", "'wrist'"]),
    (('foot = "calf"', 'foot = "calf"\nvastus-medialis = "knee"'),
     ["[nearest_preset]", "'vastus-medialis' already has the preset 'quadriceps'"]),
])
def test_a_broken_nearest_preset_table_is_one_line(tmp_path, change, needles):
    assert change[0] in SHIPPED_TISSUES
    path = _write(tmp_path, "tissues.toml", SHIPPED_TISSUES.replace(*change, 1))
    with pytest.raises(InvalidInputError) as exc:
        _presets.load_tissue_presets(path)
    _one_line(exc, str(path), *needles)


# --------------------------------------------------------------------------- small consistency checks


def test_cli_models_are_the_engine_models():
    from electrostim.cli._fibers import MODELS
    from electrostim.physics.fibres import FIBRE_MODELS

    assert sorted(MODELS) == sorted(FIBRE_MODELS)


def test_progress_blocks_are_whole_kernel_chunks():
    from electrostim.physics.field import _electrodes, _kernels

    assert _electrodes.PROGRESS_BLOCK % _kernels._CHUNK == 0
