"""The preset library and the user's own programs."""

from __future__ import annotations

from importlib import resources

import pytest

import electrostim as es
from electrostim.errors import ProgramError, UnknownProgramError
from electrostim.program import list_programs, load_program, user_program_problems

REQUIRED = ["tens-conventional", "tens-acupuncture", "tens-burst", "tens-mixed-frequency", "knee-oa-tens", "ifc-knee",
            "nmes-quadriceps-tka", "nmes-atrophy", "russian-current", "spasm-relief", "edema-muscle-pump",
            "circulation", "recovery-massage"]


def test_required_presets_exist_one_file_each():
    files = {f.name for f in resources.files("electrostim.program").joinpath("presets").iterdir() if f.name.endswith(".toml")}
    assert {f"{pid}.toml" for pid in REQUIRED} <= files
    for e in list_programs(include_user=False):
        assert f"{e.id}.toml" in files


@pytest.mark.parametrize("pid", REQUIRED)
def test_presets_carry_citation_evidence_mechanisms_and_placement(pid):
    p = load_program(pid)
    assert p.citations and all(len(c.text) > 20 for c in p.citations)
    assert p.evidence is not None and len(p.evidence.summary) > 40
    weak = p.evidence.level in ("low", "very-low", "insufficient")
    if weak:  # says so plainly
        text = p.evidence.summary.lower()
        assert any(w in text for w in ("weak", "mixed", "no ", "not ", "inconclusive", "low", "only", "threshold-like"))
    assert p.evidence.mechanisms or weak
    assert p.placement is not None and p.placement.steps
    for c in p.channels:
        assert all(e.area_cm2 > 0 and e.position for e in c.electrodes)
        assert c.stimulus.amplitude.goal


def test_stevens_lapsley_parameters():
    p = load_program("nmes-quadriceps-tka")
    st = p.channels[0].stimulus
    assert (st.pulse.frequency_hz, st.pulse.pulse_width_us) == (50, 250)
    assert (st.duty_cycle.on_s, st.duty_cycle.off_s, st.ramp_up_s) == (15, 45, 3)
    assert {(e.width_cm, e.height_cm) for e in p.channels[0].electrodes} == {(7.6, 12.7)}
    assert p.session_duration_s / st.duty_cycle.cycle_s == 15  # 15 contractions


def test_user_programs_from_folders(programs_dir):
    text = resources.files("electrostim.program").joinpath("presets", "knee-oa-tens.toml").read_text()
    (programs_dir / "mine.toml").write_text(text.replace('id = "knee-oa-tens"', 'id = "my-knee"'))
    ids = {e.id: e.origin for e in list_programs()}
    assert ids["my-knee"].endswith("mine.toml")
    assert load_program("my-knee").name == load_program("knee-oa-tens").name
    assert load_program(str(programs_dir / "mine.toml")).id == "my-knee"


def test_user_program_cannot_shadow_a_preset(programs_dir):
    """A user file that reuses a preset id: listed as a problem, and the id is refused, naming both files."""
    text = resources.files("electrostim.program").joinpath("presets", "knee-oa-tens.toml").read_text()
    (programs_dir / "clash.toml").write_text(text)
    assert "knee-oa-tens" not in [e.id for e in list_programs()]
    assert "tens-burst" in [e.id for e in list_programs()]
    (problem,) = user_program_problems()
    assert problem.program_id == "knee-oa-tens" and str(programs_dir / "clash.toml") in problem.message
    with pytest.raises(ProgramError, match=r"claimed twice: by the preset .*knee-oa-tens\.toml and by .*clash\.toml"):
        load_program("knee-oa-tens")
    assert load_program("tens-burst").id == "tens-burst"


def test_unknown_program_lists_what_exists():
    with pytest.raises(UnknownProgramError, match="knee-oa-tens"):
        es.load_program("knee-oa")
