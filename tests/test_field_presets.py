"""Tissue presets per body site: shipped data, validation, sources, the media they make."""

from __future__ import annotations

import math
import textwrap
from importlib import resources

import pytest

from electrostim import anatomy
from electrostim.errors import InvalidInputError, OptionError, UnknownSiteError
from electrostim.physics.field import LayeredMedium, get_tissue_preset, list_tissue_presets, load_tissue_presets

REQUIRED = ["quadriceps", "knee", "low-back", "calf", "forearm", "upper-trapezius"]


def test_required_sites_are_there_and_are_anatomy_sites():
    ids = [p.id for p in list_tissue_presets()]
    assert ids == REQUIRED
    for pid in ids:
        assert anatomy.get_site(pid).id == pid


@pytest.mark.parametrize("pid", REQUIRED)
def test_presets_name_their_sources(pid):
    p = get_tissue_preset(pid)
    assert p.layers[0].tissue == "skin" and math.isinf(p.layers[-1].thickness_m)
    assert "[assumed]" in p.thickness_source  # no thickness is claimed from a paper it does not come from
    for tissue, values in p.conductivities.items():
        assert len(values["source"]) > 10, tissue
    assert all(0 < la.thickness_m < 0.1 for la in p.layers[:-1])


def test_conductivities_are_those_of_the_model_reference():
    c = get_tissue_preset("quadriceps").conductivities
    assert c["skin"]["conductivity_s_per_m"] == 0.43
    assert c["fat"]["conductivity_s_per_m"] == pytest.approx(1 / 30)
    assert (c["muscle"]["conductivity_along_s_per_m"], c["muscle"]["conductivity_across_s_per_m"]) == (0.35, 0.086)
    assert c["muscle"]["conductivity_isotropic_s_per_m"] == 0.16
    assert "Gielen 1984" in c["muscle"]["source"]
    assert c["cortical-bone"]["conductivity_s_per_m"] == 0.0055
    assert c["cancellous-bone"]["conductivity_s_per_m"] == 0.214


@pytest.mark.parametrize("pid", REQUIRED)
def test_every_preset_makes_a_medium(pid):
    med = get_tissue_preset(pid).medium()
    assert isinstance(med, LayeredMedium)
    assert len(med.layers) == len(get_tissue_preset(pid).layers)
    assert float(med.potential(0.02, 0.01)) > 0


def test_muscle_mapping_and_overrides():
    p = get_tissue_preset("forearm")
    aniso = p.medium().layers[2]
    assert aniso.sigma_h_s_per_m == pytest.approx(math.sqrt(0.35 * 0.086)) and aniso.sigma_v_s_per_m == 0.086
    assert p.medium(muscle="isotropic").layers[2].sigma_h_s_per_m == 0.16
    thick = p.medium(thickness_m={"fat": 0.012}, conductivity_s_per_m={"skin": 0.1})
    assert thick.layers[1].thickness_m == 0.012 and thick.layers[0].sigma_h_s_per_m == 0.1
    with pytest.raises(OptionError, match=r"Invalid value for 'muscle': allowed 'anisotropic', 'isotropic', but got 'fibrous'"):
        p.medium(muscle="fibrous")
    with pytest.raises(InvalidInputError, match=r"Invalid value for 'thickness_m': allowed tissues .* but got 'tendon'"):
        p.medium(thickness_m={"tendon": 0.01})


def test_thicker_fat_lowers_the_potential_in_muscle():
    """Qualitative trend (models.md): more subcutaneous fat, less field at the muscle under a pad."""
    p = get_tissue_preset("quadriceps")
    thin, thick = p.medium(thickness_m={"fat": 0.004}), p.medium(thickness_m={"fat": 0.02})
    depth_into_muscle = 0.01
    v_thin = float(thin.potential(0.02, thin.interfaces_m[1] + depth_into_muscle))
    v_thick = float(thick.potential(0.02, thick.interfaces_m[1] + depth_into_muscle))
    assert v_thick < v_thin


def test_sites_within_a_preset_region_get_it():
    assert get_tissue_preset("vastus-medialis").id == "quadriceps"
    assert get_tissue_preset("rectus-femoris").id == "quadriceps"
    with pytest.raises(UnknownSiteError, match=r"No tissue preset for body site 'abdomen'"):
        get_tissue_preset("abdomen")
    with pytest.raises(UnknownSiteError, match=r"Unknown body site 'elbow-pit'"):
        get_tissue_preset("elbow-pit")


def test_the_shipped_file_validates_through_the_public_loader(tmp_path):
    text = resources.files("electrostim.physics.field").joinpath("tissues.toml").read_text(encoding="utf-8")
    path = tmp_path / "tissues.toml"
    path.write_text(text, encoding="utf-8")
    assert sorted(load_tissue_presets(path)) == sorted(REQUIRED)


GOOD = """
schema = 1
[tissues.skin]
name = "Skin"
conductivity_s_per_m = 0.43
source = "a source of some length"
[tissues.fat]
name = "Fat"
conductivity_s_per_m = 0.04
source = "a source of some length"
[sites.demo]
name = "Demo"
layers = [{ tissue = "skin", thickness_mm = 1.0 }, { tissue = "fat" }]
thickness_source = "[assumed]"
"""


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("schema = 1", "schema = 2"), r"schema must be 1, but got 2"),
        (("thickness_mm = 1.0", "thickness_mm = -1.0"),
         r"\[sites.demo\] layers\[0\]: thickness_mm must be a number in \(0, 1000\), but got -1.0"),
        (('{ tissue = "fat" }', '{ tissue = "fat", thickness_mm = 3.0 }'),
         r"the last layer is the half-space below and takes no thickness_mm"),
        (('{ tissue = "skin", thickness_mm = 1.0 }', '{ tissue = "skin" }'), r"thickness_mm is required for every layer but the last"),
        (('{ tissue = "fat" }', '{ tissue = "tendon" }'), r"tissue must be one of 'skin', 'fat', but got 'tendon'"),
        (("conductivity_s_per_m = 0.04", "conductivity_s_per_m = 0.0"), r"\[tissues.fat\]: conductivity_s_per_m must be a number"),
        (('source = "a source of some length"\n[tissues.fat]', 'citation = "x"\n[tissues.fat]'),
         r"\[tissues.skin\]: unknown keys \['citation'\]"),
        (('thickness_source = "[assumed]"', ""), r"thickness_source must be a non-empty string"),
        (("[sites.demo]", "[places.demo]"), r"a \[sites.<id>\] table is required"),
    ],
)
def test_bad_preset_files_are_refused_with_the_place(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(*edit), encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"Invalid tissue preset file .*bad.toml.*" + message):
        load_tissue_presets(path)


def test_good_and_unreadable_files(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD, encoding="utf-8")
    demo = load_tissue_presets(path)["demo"]
    assert [la.tissue for la in demo.layers] == ["skin", "fat"]
    assert demo.medium().interfaces_m.tolist() == [0.001]
    broken = tmp_path / "broken.toml"
    broken.write_text(textwrap.dedent("schema = [1"), encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"Invalid tissue preset file .*broken.toml"):
        load_tissue_presets(broken)
    with pytest.raises(InvalidInputError, match=r"Invalid tissue preset file .*missing.toml"):
        load_tissue_presets(tmp_path / "missing.toml")


def test_muscle_mapping_error_is_what_the_docs_say():
    """Homogeneous muscle half-space: exact below the source, off by (σL/σT)^¼ along and across the fibres."""
    from electrostim.physics.field import Layer, point_source_potential

    along, across = 0.35, 0.086
    c = get_tissue_preset("quadriceps").conductivities["muscle"]
    assert (c["conductivity_along_s_per_m"], c["conductivity_across_s_per_m"]) == (along, across)
    model = LayeredMedium([Layer("muscle", math.inf, math.sqrt(along * across), across)])
    true = lambda p: 2 * float(point_source_potential(p, [0, 0, 0], 1.0, [along, across, across]))
    d = 0.02
    factor = (along / across) ** 0.25
    assert float(model.potential(0.0, d)) == pytest.approx(true([0, 0, d]), rel=1e-12)
    assert float(model.potential(d, 0.0)) == pytest.approx(true([d, 0, 0]) / factor, rel=1e-12)
    assert float(model.potential(d, 0.0)) == pytest.approx(true([0, d, 0]) * factor, rel=1e-12)
