"""Multi-phase programs: a sequence of phases, each with its own stimulus and duration.

The kind: every layer (schedule, dose, safety, envelope, plot, devices, sessions,
console) follows the phases. The central property: the schedule of a multi-phase
program is, phase by phase, the schedule of that phase's own program shifted to the
phase's start, scaled by its intensity, without the pulses that would not end within
the phase.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import electrostim as es
from electrostim.cli import app
from electrostim.devices import P24, P24Emulator, RehaStim2, RehaStim2Emulator, SimulatedStimulator
from electrostim.errors import ProgramError
from electrostim.session import Runner
from electrostim.waveform import _dose as dose_module

from .conftest import pad
from .test_envelope_property import stimuli

runner = CliRunner()


def phased(phases: list[dict], *, pulse: dict | None = None, modality: str = "nmes", channels: int = 1,
           amplitude: tuple[float, float] = (10.0, 40.0), **extra) -> es.Program:
    """A program of ``channels`` channels whose phases lay their tables over one base stimulus."""
    n_pads = 4 if (pulse or {}).get("shape") == "interferential" else 2
    doc = {"id": "phased", "name": "phased program", "modality": modality,
           "stimulus": {"pulse": pulse or {"shape": "symmetric-biphasic", "pulse_width_us": 200, "frequency_hz": 20},
                        "amplitude": {"default_ma": amplitude[0], "max_ma": amplitude[1]}},
           "channels": [{"label": f"ch{i + 1}", "electrodes": [pad(w=6, h=6) for _ in range(n_pads)]}
                        for i in range(channels)],
           "phases": phases, **extra}
    return es.validate_program(doc, source="test.toml")


IFC = {"shape": "interferential", "mode": "quadripolar", "carrier_frequency_hz": 4000, "beat_frequency_hz": 100}


# --------------------------------------------------------------------------- the program


def test_a_phase_lays_its_tables_over_every_channel_and_its_own_channel_table_over_that():
    p = phased([{"name": "a", "duration_s": 2, "stimulus": {"pulse": {"frequency_hz": 50}}},
                {"name": "b", "duration_s": 3, "channels": {"ch2": {"stimulus": {"pulse": {"pulse_width_us": 300}}}}}],
               channels=2)
    assert p.session_duration_s == 5.0  # left out: the sum of the phases
    a, b = p.phase_spans
    assert (a.start_s, a.stop_s, b.start_s, b.stop_s) == (0.0, 2.0, 2.0, 5.0)
    assert [c.stimulus.pulse.frequency_hz for c in a.program.channels] == [50.0, 50.0]
    assert [c.stimulus.pulse.pulse_width_us for c in b.program.channels] == [200.0, 300.0]
    assert [c.stimulus.pulse.frequency_hz for c in b.program.channels] == [20.0, 20.0]
    assert b.program.session_duration_s == 3.0 and not b.program.phases
    # the validated program round-trips through its JSON (what an approved plan keeps)
    assert es.validate_program(json.loads(p.model_dump_json())) == p


@pytest.mark.parametrize("phases, extra, words", [
    ([{"name": "a", "duration_s": 1, "channels": {"nope": {"stimulus": {}}}}], {},
     "no channel 'nope'; allowed the channel labels 'ch1'"),
    ([{"name": "a", "duration_s": 1}, {"name": "b", "duration_s": 1}], {"session_duration_s": 3},
     "must equal the sum of the phases' durations (2 s)"),
    ([{"name": "work", "duration_s": 1}, {"name": "Work", "duration_s": 1}], {}, "phase names must be unique"),
    ([{"name": "a", "duration_s": 1, "stimulus": {"amplitude": {"max_ma": 80}}}], {},
     "changes the amplitude of channel 'ch1'"),
    ([{"name": "a", "duration_s": 1, "stimulus": {"pulse": {"frequency_hz": math.nan}}}], {},
     "phases[0].stimulus.pulse.frequency_hz: not a finite number"),
    ([{"name": "a", "duration_s": 1, "stimulus": {"pulse": {"frequency_hz": 4000}}}], {},
     "phases[0].channels.ch1.stimulus: pulses overlap"),
    ([{"name": "a", "duration_s": 1, "stimulus": 5}], {}, "phases[0].stimulus: allowed a table, but given 5"),
    ([{"name": "a", "duration_s": True}], {}, "phases[0].duration_s"),
    ([{"name": "a", "duration_s": "10"}], {}, "test.toml: phases[0].duration_s: not a number"),  # one line: no "missing"
    ([{"name": "a", "duration_s": 1, "channels": {"ch1": 5}}], {}, "phases[0].channels.ch1: allowed a table, but given 5"),
    ([{"name": "a", "duration_s": 1, "channels": {"ch1": {"stimulus": "fast"}}}], {},
     "phases[0].channels.ch1.stimulus: allowed a table, but given 'fast'"),
    ([{"name": "   ", "duration_s": 1}], {}, "phases[0].name: at least 1 character of text"),
    ([{"name": f"p{i}", "duration_s": 1} for i in range(33)], {}, "phases: at most 32 entries, but 33 were given"),
    ([{"name": "a\nb", "duration_s": 1}], {}, "phase name"),
    ([{"name": "a", "duration_s": 1, "intensity_percent": 120}], {}, "phases[0].intensity_percent"),
])
def test_a_bad_phase_is_one_clear_line(phases, extra, words):
    with pytest.raises(ProgramError) as e:
        phased(phases, **extra)
    text = str(e.value)
    assert words in text
    assert "Traceback" not in text and "(top level): phase" not in text.split(": ", 2)[-1]
    assert len(text.splitlines()) == 1, text


def test_one_mistake_is_reported_once_where_it_was_written():
    """The kind: a value inherited by every channel and phase was reported once per channel and phase."""
    with pytest.raises(ProgramError) as e:
        phased([{"name": "a", "duration_s": 1}, {"name": "b", "duration_s": 1}], channels=3,
               pulse={"shape": "symmetric-biphasic", "pulse_widht_us": 200, "frequency_hz": 20})
    assert str(e.value) == ("test.toml: stimulus.pulse.pulse_widht_us: unknown field; did you mean 'pulse_width_us' "
                            "(required, and missing)? given 200")
    with pytest.raises(ProgramError) as e:
        phased([{"name": "a", "duration_s": 1, "stimulus": {"pulse": {"frequency_hz": "x"}}}], channels=3)
    assert str(e.value).startswith("test.toml: phases[0].stimulus.pulse.frequency_hz: not a number")
    with pytest.raises(ProgramError) as e:
        phased([{"name": "a", "duration_s": 1, "channels": {"ch2": {"stimulus": {"pulse": {"frequency_hz": "x"}}}}}],
               channels=3)
    assert str(e.value).startswith("test.toml: phases[0].channels.ch2.stimulus.pulse.frequency_hz: not a number")


def test_check_at_another_amplitude_changes_it_in_every_phase():
    p = es.load_program("ems-strength-phases").with_changes(max_amplitude_ma=50.0)
    assert {st.amplitude.max_ma for st in p.stimuli(0)} == {50.0}
    r = runner.invoke(app, ["check", "ems-strength-phases", "--amplitude-ma", "50"])
    assert r.exit_code == 0, r.output


def test_a_phase_must_suit_the_program_as_a_whole():
    # a phase turned into interferential current in an NMES program: the modality rule names the phase
    with pytest.raises(ProgramError, match=r"phase 1 \('a'\).*modality 'interferential'|phase 1 \('a'\).*electrodes"):
        phased([{"name": "a", "duration_s": 1, "stimulus": {"pulse": IFC}}])


def test_the_cli_reports_a_bad_phase_in_one_line_with_exit_2(tmp_path):
    from electrostim.program._library import _preset_folder

    text = _preset_folder().joinpath("ems-strength-phases.toml").read_text(encoding="utf-8")
    work = "stimulus = { ramp_up_s = 1.5,"
    assert text.count(work) == 1
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(work, "stimulus = { pulse = { frequency_hz = 99999 }, ramp_up_s = 1.5,"), encoding="utf-8")
    r = runner.invoke(app, ["check", str(path)])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "phases[1].stimulus.pulse.frequency_hz: should be less than or equal to 20000" in lines[0]


# --------------------------------------------------------------------------- the schedule


def _shifted_phase_pulses(program: es.Program, level: str = "max") -> es.PulseChunk:
    """The reference: each phase's own schedule, shifted to its start, scaled, pulses that overrun dropped."""
    amps = {c.label: (c.stimulus.amplitude.max_ma if level == "max" else c.stimulus.amplitude.default_ma)
            for c in program.channels}
    parts = []
    for span in program.phase_spans:
        c = es.Schedule(span.program, amplitude_ma=amps).pulses()
        c = c.select(c.end_s <= span.duration_s + 1e-12)
        f = span.intensity_percent / 100.0
        if f <= 0:
            continue
        parts.append(es.PulseChunk(span.start_s, span.stop_s, **{**c.to_dict(), "time_s": c.time_s + span.start_s,
                                                                  "first_amplitude_ma": c.first_amplitude_ma * f,
                                                                  "second_amplitude_ma": c.second_amplitude_ma * f}))
    whole = es.PulseChunk.concatenate(parts, 0.0, program.session_duration_s)
    return whole.select(np.lexsort((whole.output, whole.time_s)))


_rates = st.sampled_from([5.0, 7.5, 20.0, 33.0, 50.0, 100.0])  # (a duty cycle of 0.3 s on and 0.2 s off holds an interval)
_phase = st.fixed_dictionaries({
    "duration_s": st.sampled_from([0.4, 1.0, 1.7, 3.0]),
    "intensity_percent": st.sampled_from([0.0, 35.0, 60.0, 100.0]),
    "stimulus": st.fixed_dictionaries({
        "pulse": st.fixed_dictionaries({"frequency_hz": _rates, "pulse_width_us": st.sampled_from([50.0, 200.0, 400.0])}),
        "ramp_up_s": st.sampled_from([0.0, 0.2]),
        "duty_cycle": st.none() | st.fixed_dictionaries({"on_s": st.sampled_from([0.3, 0.5]),
                                                          "off_s": st.sampled_from([0.0, 0.2])}),
        "modulation": st.sampled_from([[], [{"kind": "amplitude-sweep", "low_percent": 40, "period_s": 0.7}],
                                       [{"kind": "frequency-sweep", "low_hz": 5, "high_hz": 60, "period_s": 0.9}]]),
    }),
}).map(lambda ph: _rate_within_sweep(ph))


def _rate_within_sweep(phase: dict) -> dict:
    """A phase whose rate is swept has its nominal rate within the sweep (as a program must)."""
    stim = phase["stimulus"]
    for m in stim["modulation"]:
        if m["kind"] == "frequency-sweep":
            pulse = {**stim["pulse"], "frequency_hz": min(max(stim["pulse"]["frequency_hz"], m["low_hz"]), m["high_hz"])}
            return {**phase, "stimulus": {**stim, "pulse": pulse}}
    return phase


@settings(max_examples=60, deadline=None)
@given(phases=st.lists(_phase, min_size=2, max_size=4), channels=st.integers(1, 2))
def test_property_the_schedule_is_each_phase_schedule_in_its_place(phases, channels):
    phases = [{**ph, "name": f"p{k}"} for k, ph in enumerate(phases)]
    p = phased(phases, channels=channels)
    got = es.Schedule(p, level="max").pulses()
    ref = _shifted_phase_pulses(p)
    assert len(got) == len(ref)
    for name in es.PulseChunk._ARRAYS:
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=0, atol=1e-9, err_msg=name)
    # no pulse runs past the end of its phase; each phase's pulses at its own width
    for span in p.phase_spans:
        mine = got.select((got.time_s >= span.start_s) & (got.time_s < span.stop_s))
        assert np.all(mine.end_s <= span.stop_s + 1e-9)
        widths = {c.stimulus.pulse.pulse_width_us for c in span.program.channels}
        assert set(np.unique(mine.first_width_us)) <= widths


def test_interferential_at_a_100_hz_beat_then_80_hz():
    p = phased([{"name": "100 Hz", "duration_s": 6}, {"name": "80 Hz", "duration_s": 4,
                                                      "stimulus": {"pulse": {"beat_frequency_hz": 80}}}],
               pulse=IFC, modality="interferential")
    c = es.Schedule(p, level="max").pulses()
    b = c.select(c.output == 1)  # circuit b runs at carrier + beat
    first = np.diff(b.time_s[(b.time_s > 1) & (b.time_s < 5)])
    second = np.diff(b.time_s[(b.time_s > 7) & (b.time_s < 9)])
    assert 1 / first.mean() == pytest.approx(4100, rel=1e-6)
    assert 1 / second.mean() == pytest.approx(4080, rel=1e-6)


def test_the_warm_up_runs_at_its_part_of_the_intensity():
    s = es.Schedule(es.load_program("ems-strength-phases"), amplitude_ma=50.0)
    warm = s.pulses(100.0, 101.0)
    assert np.abs(warm.first_amplitude_ma).max() == pytest.approx(30.0)  # 60 % of 50 mA
    assert s.lowest_levels(100.0, 101.0)[0] == pytest.approx((0.6, 1.0))
    # a command window that reaches a phase's end holds no output (the device is reconfigured there)
    assert s.lowest_levels(299.95, 300.05)[0][0] == 0.0
    assert s.phase_at(299.0).name == "warm-up" and s.phase_at(300.0).name == "work"


# --------------------------------------------------------------------------- dose and safety


@pytest.mark.parametrize("pid_or_doc", ["ems-strength-phases", "ifc"])
def test_the_dose_from_the_repeat_regions_of_each_phase_is_the_dose_pulse_by_pulse(monkeypatch, pid_or_doc):
    if pid_or_doc == "ifc":
        p = phased([{"name": "100 Hz", "duration_s": 40}, {"name": "80 Hz", "duration_s": 30,
                                                           "stimulus": {"pulse": {"beat_frequency_hz": 80}}}],
                   pulse=IFC, modality="interferential")
    else:
        p = es.load_program(pid_or_doc)
    monkeypatch.setattr(dose_module, "REPEAT_MIN_EVENTS", math.inf)
    every = es.compute_dose(p, level="max")
    monkeypatch.setattr(dose_module, "REPEAT_MIN_EVENTS", 0)
    fast = es.compute_dose(p, level="max")
    for a, b in zip(every.outputs, fast.outputs):
        for name, value in a:
            if isinstance(value, float):
                assert getattr(b, name) == pytest.approx(value, rel=1e-9, abs=1e-9), name
            elif isinstance(value, int):
                assert getattr(b, name) == value, name


@st.composite
def phased_programs(draw: st.DrawFn):
    """One channel in 2-4 phases of 12-90 s, each its own stimulus of one shape (rates, sweeps, bursts, duty cycles
    and ramps drawn as for any program) at its own intensity."""
    shape = draw(st.sampled_from(["symmetric-biphasic", "monophasic", "sine-burst", "interferential"]))
    own = [draw(stimuli(shape)) for _ in range(draw(st.integers(2, 4)))]
    if shape == "interferential":  # (one mode: a channel's pads are two or four)
        for st_ in own:
            st_["pulse"]["mode"] = own[0]["pulse"]["mode"]
    # every field of each phase's stimulus given (a phase's stimulus takes those it leaves out from the channel's)
    whole = {"amplitude": {"default_ma": 10.0, "max_ma": 20.0}, "burst": None, "duty_cycle": None, "modulation": [],
             "ramp_up_s": 0.0, "ramp_down_s": 0.0}
    phases = [{"name": f"p{k}", "duration_s": draw(st.sampled_from([12.0, 30.0, 47.3, 90.0])),
               "intensity_percent": draw(st.sampled_from([30.0, 75.0, 100.0])),
               "stimulus": {**whole, **st_, "amplitude": whole["amplitude"]}} for k, st_ in enumerate(own)]
    modality = "interferential" if shape == "interferential" else "russian" if shape == "sine-burst" else "tens"
    pads = 4 if shape == "interferential" and own[0]["pulse"]["mode"] == "quadripolar" else 2
    try:
        return es.validate_program({
            "id": "drawn-phases", "name": "drawn phases", "modality": modality, "phases": phases,
            "stimulus": phases[0]["stimulus"], "channels": [{"label": "a", "electrodes": [pad(w=5, h=5)] * pads}]})
    except ProgramError:
        assume(False)
        raise


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(program=phased_programs(), corners=st.booleans())
def test_property_a_phased_dose_from_its_regions_bounds_every_pulse(program, corners):
    """The kinds: each phase's regions ended a whole period before its end (its last pulses have the next phase's
    first as a neighbour; a window and its longest pulse suffice), that period streamed pulse by pulse; and ramps
    that overlap (12 s of a 5 s ramp up and a 9 s ramp down) had no corner where they cross, the envelope's
    highest: a phase dosed from the corners of its levels had its peak current 0.6 % below every pulse's. Dosed
    from their regions (``corners``: phases without one from the corners of their levels), drawn phased programs
    have every figure of every pulse: the same where every region repeats exactly, else their sums within 0.2 %
    and their window and per-pulse figures at or above."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(dose_module, "REPEAT_MIN_EVENTS", math.inf)
        every = es.compute_dose(program, level="max")
        monkeypatch.setattr(dose_module, "REPEAT_MIN_EVENTS", 0)
        if corners:
            monkeypatch.setattr(dose_module, "SLOW_LEVELS_MIN_EVENTS", 0)
        fast = es.compute_dose(program, level="max")
    exact = not corners and all(r.drift_s == 0 and not r.shifted and not r.slow
                                for g in es.Schedule(program, level="max")._dose_generators() for r in g.regions())
    for a, b in zip(every.outputs, fast.outputs, strict=True):  # (a quadripolar channel: two circuits)
        for name, value in a:
            if not isinstance(value, float):
                continue
            mine = getattr(b, name)
            if exact:
                assert mine == pytest.approx(value, rel=1e-9, abs=1e-9), name
            elif name.endswith(("_session_ma", "_session_mw")) or name == "net_charge_session_uc":
                assert mine == pytest.approx(value, rel=2e-3, abs=1e-9), name
            elif name != "dc_current_ma" and not name.startswith("net_charge"):
                assert mine >= value * (1 - 1e-9) - 1e-12, name
        assert b.pulse_count == (a.pulse_count if exact else pytest.approx(a.pulse_count, rel=2e-3))


def test_the_dose_of_a_phased_program_sums_its_phases():
    p = es.load_program("ems-strength-phases")
    whole = es.compute_dose(p, level="max").outputs[0]
    parts = [es.compute_dose(s.program, amplitude_ma=100.0 * s.intensity_percent / 100).outputs[0] for s in p.phase_spans]
    # the reference drops the pulses a phase's end cuts, as the schedule does (none here: the rates divide the phases)
    assert whole.pulse_count == sum(d.pulse_count for d in parts)
    assert whole.rms_current_ma == pytest.approx(max(d.rms_current_ma for d in parts), rel=1e-9)
    assert whole.max_phase_charge_uc == pytest.approx(max(d.max_phase_charge_uc for d in parts))
    assert whole.max_pulse_rate_hz == pytest.approx(75.0)


def test_each_phase_is_judged_and_a_refusal_names_the_phase():
    ok = [{"name": "easy", "duration_s": 5}]
    hot = {"name": "hot", "duration_s": 5, "stimulus": {"pulse": {"frequency_hz": 400, "pulse_width_us": 1000}}}
    assert es.assess(phased(ok + [{"name": "calm", "duration_s": 5}], amplitude=(10, 60))).verdict == "ok"
    a = es.assess(phased(ok + [hot, {"name": "after", "duration_s": 5}], amplitude=(10, 60)))
    assert a.verdict == "refused"
    rms = [r.message for r in a.reasons if r.rule == "iec-60601-2-10.rms-current-up-to-400hz"]
    assert len(rms) == 1 and rms[0].startswith("phase 'hot': ch1: rms current")
    # the same phase at 40 % of the intensity stays within the limits: each phase at the most it delivers
    assert es.assess(phased(ok + [{**hot, "intensity_percent": 40}], amplitude=(10, 60))).verdict == "ok"


def test_device_reasons_name_the_phases_they_hold_in():
    p = phased([{"name": "six", "duration_s": 2, "stimulus": {"pulse": {"frequency_hz": 6}}},
                {"name": "twenty", "duration_s": 2}])
    a = es.assess(p, device="rehastim2")
    steps = [r.message for r in a.reasons if r.rule == "device.rehastim2.period-step"]
    assert steps and all(m.startswith("phase 'six': ") for m in steps)
    gap = [r.message for r in a.reasons if r.rule == "device.rehastim2.interphase-gap"]
    assert len(gap) == 1 and not gap[0].startswith("phase")  # in every phase: said once
    swept = phased([{"name": "fixed", "duration_s": 2},
                    {"name": "swept", "duration_s": 2, "stimulus": {"modulation": [
                        {"kind": "frequency-sweep", "low_hz": 10, "high_hz": 30, "period_s": 1}]}}])
    r = es.assess(swept, device="p24")
    assert r.verdict == "refused"
    assert any(x.rule == "device.p24.fixed-rate" and x.message.startswith("phase 'swept': ") for x in r.reasons)


def test_the_envelope_covers_every_phase_and_the_plan_verifies():
    p = phased([{"name": "a", "duration_s": 2, "stimulus": {"pulse": {"frequency_hz": 80, "pulse_width_us": 100}}},
                {"name": "b", "duration_s": 2, "stimulus": {"pulse": {"frequency_hz": 10, "pulse_width_us": 450}}}])
    plan = es.assess(p).approve()
    env = plan.envelope.outputs[0]
    assert env.max_pulse_width_us == 450.0 and env.max_repetition_hz == 80.0
    assert plan.verified_program() == plan.program


# --------------------------------------------------------------------------- devices and sessions


THREE = [{"name": "slow", "duration_s": 1.0},
         {"name": "fast", "duration_s": 1.0, "stimulus": {"pulse": {"frequency_hz": 50, "pulse_width_us": 300}}},
         {"name": "slower", "duration_s": 1.0, "stimulus": {"pulse": {"frequency_hz": 10}}}]


def test_the_simulated_stimulator_delivers_each_phase_and_the_session_records_them():
    p = phased(THREE, pulse={"shape": "symmetric-biphasic", "pulse_width_us": 200, "interphase_gap_us": 100,
                             "frequency_hz": 20})
    plan = es.assess(p).approve()
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    events = []
    r = Runner(dev, start_ma={"ch1": 15.0}, slew_ma_per_s=1e6, ramp_s=0.0, on_event=lambda k, e: events.append((k, e)))
    seen = []
    r.run(step_s=0.01, speed=float("inf"), tick=lambda rr: seen.append(rr.phase.name))
    assert r.state.value == "completed"
    emitted = dev.emitted()
    ref = es.Schedule(p, amplitude_ma=15.0).pulses()
    assert len(emitted) == len(ref) == 20 + 50 + 10
    np.testing.assert_allclose(emitted.time_s, ref.time_s)
    np.testing.assert_allclose(emitted.first_width_us, ref.first_width_us)
    notes = [e for k, e in events if k == "note" and e.get("note") == "phase"]
    assert [(n["phase"], n["of"], n["name"], n["start_s"]) for n in notes] == [(1, 3, "slow", 0.0), (2, 3, "fast", 1.0),
                                                                              (3, 3, "slower", 2.0)]
    assert [n["t_s"] for n in notes] == pytest.approx([0.0, 1.0, 2.0], abs=0.011)
    assert seen[0] == "slow" and seen[-1] == "slower" and "fast" in seen


@pytest.mark.parametrize("device", ["rehastim2", "p24"])
def test_a_serial_stimulator_is_configured_anew_for_each_phase(device):
    Dev, Emu = (RehaStim2, RehaStim2Emulator) if device == "rehastim2" else (P24, P24Emulator)
    p = phased(THREE, pulse={"shape": "symmetric-biphasic", "pulse_width_us": 200, "interphase_gap_us": 100,
                             "frequency_hz": 20})
    plan = es.assess(p, device=device).approve(confirm=True, confirmed_by="test")
    with Emu() as emu, Dev(emu.port) as dev:
        dev.connect()
        dev.configure(plan)
        r = Runner(dev, start_ma={"ch1": 15.0}, slew_ma_per_s=1e6, ramp_s=0.0)
        assert r.run(step_s=0.02).value == "completed"
        assert [(t, k) for _, t, k in dev.phase_marks] == [(1.0, 1), (2.0, 2)]
        # each phase's commands carry its own pulse width, and never more than the plan's current
        t0 = dev.start_times[0]
        marks = [m for m, _, _ in dev.phase_marks]
        for when, commands in dev.command_log:
            k = sum(when >= m for m in marks)
            c = commands["ch1"]
            assert c.current_ma <= 15.0
            if c.current_ma > 0:
                assert c.pulse_width_us == [200.0, 300.0, 200.0][k], (when - t0, k, c)


def test_the_console_shows_the_phase_and_counts_contractions_across_phases():
    from electrostim.cli._run import OutputPhase, console_row, console_title, output_phase

    row = dict(label="q", selected=False, state="run", where=OutputPhase("on", None, None), level_ma=20.0,
               target_ma=20.0, max_ma=60.0, thresholds={}, contact="ok", session_left_s=100.0)
    assert console_row(**row, phase_percent=0.0)[3] == "off"  # a phase at 0 % delivers nothing
    assert console_row(**row, phase_percent=60.0)[3] == "12.0 (60 %)"  # what is delivered, and the part
    assert console_row(**row)[3] == "20.0"
    warm = es.load_program("ems-strength-phases").phase_spans[0]
    assert "phase 1/3 'warm-up' at 60 %" in console_title("EMS", "run", 1700.0, warm, 200.0)

    p = es.load_program("ems-strength-phases")
    work = p.phase_spans[1]
    assert "phase 2/3 'work' (10:00 left in it)" in console_title(p.name, "run", 900.0, work, 600.0)
    assert output_phase(p, "quadriceps", 100.0).contractions is None  # the warm-up has no on/off cycle
    where = output_phase(p, "quadriceps", 300.0 + 2 * 24 + 3.0)  # the third contraction of the work phase
    assert (where.phase, where.contractions) == ("on", 2)
    assert output_phase(p, "quadriceps", 1600.0).contractions is None


def test_check_show_and_plot_show_the_phases(tmp_path):
    r = runner.invoke(app, ["check", "ems-strength-phases"], env={"COLUMNS": "140"})
    assert r.exit_code == 0, r.output
    assert "Phases" in r.output and "warm-up" in r.output and "active rest" in r.output and "60 %" in r.output
    r = runner.invoke(app, ["programs", "show", "ems-strength-phases"], env={"COLUMNS": "140"})
    assert r.exit_code == 0 and "by phase (below)" in r.output
    from electrostim.waveform import plot_program

    fig = plot_program(es.load_program("ems-strength-phases"))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("phase 2/3 'work'") and "3 phases" in titles[-1]
    texts = {t.get_text() for t in fig.axes[-1].texts}
    assert {"warm-up", "work", "active rest"} <= texts
    assert "phase 1/3 'warm-up' (5 min, 60 % intensity)" in fig._suptitle.get_text()


def test_the_session_start_ramp_ends_within_the_first_phase_and_the_program_ends_itself():
    """The reported case: default 80 mA, a 30 s warm-up without a ramp, then contractions: the session's start ramp
    at 2 mA/s took 40 s and ate the first contractions of the work phase."""
    p = phased([{"name": "warm-up", "duration_s": 30, "intensity_percent": 60},
                {"name": "work", "duration_s": 30, "stimulus": {"duty_cycle": {"on_s": 5, "off_s": 10},
                                                                "ramp_up_s": 1, "ramp_down_s": 1}},
                {"name": "cool-down", "duration_s": 10, "stimulus": {"ramp_down_s": 3}}],
               amplitude=(80, 100))
    plan = es.assess(p).approve()
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    events = []
    r = Runner(dev, on_event=lambda k, e: events.append((k, e)))
    assert r.ramp_down_s == 0.0  # the cool-down ramps down itself: no session ramp on top
    r.run(step_s=0.05, speed=float("inf"))
    ends = [e for k, e in events if k == "intensity" and e.get("ramp") == "end" and e["from_ma"] == 0.0]
    assert ends and ends[0]["intensity_ma"] == 80.0 and ends[0]["t_s"] <= 30.0 + 1e-6
    states = [e["state"] for k, e in events if k == "state"]
    assert "run" in states
    # the first contraction of the work phase is at the full 80 mA
    emitted = dev.emitted(31.5, 35.0)
    assert np.abs(emitted.first_amplitude_ma).max() == pytest.approx(80.0)
    # cut short, the session closes with its own ramp (the program's end is not reached)
    dev2 = SimulatedStimulator()
    dev2.connect()
    dev2.configure(plan)
    assert Runner(dev2, duration_s=40.0).ramp_down_s == 3.0


def test_a_program_of_pulses_and_carrier_phases_says_it_counts_both():
    """The reported case: 60 s of pulses then 60 s of Russian bursts were reported as 'carrier cycles' with a
    pulse's charge called a half-cycle's."""
    p = phased([{"name": "pulses", "duration_s": 60},
                {"name": "russian", "duration_s": 60, "stimulus": {"pulse": {
                    "shape": "sine-burst", "carrier_frequency_hz": 2500, "frequency_hz": 50}}}],
               modality="russian")
    from electrostim.cli._app import assessment_json

    (out,) = assessment_json(es.assess(p))["dose"]["outputs"]
    assert out["counts"] == "pulses and carrier cycles" and "pulse_count" in out
    from electrostim.cli import _app

    kinds = _app._carrier_kinds(p, 0)
    assert kinds == {True, False}
    assert _app._dose_word(kinds, "phase", "half-cycle") == "phase (or half-cycle)"


def test_phases_whose_durations_sum_to_a_day_but_for_their_rounding_make_a_day():
    """The kind: 32 phases scaled to a day summed to 86400.00000000001 s in floating point and were refused with a
    message about session_duration_s, which the program does not write. Their sum is taken as a day; a sum truly
    over a day is refused, naming the phases."""
    rng = random.Random(6)
    weights = [rng.uniform(1.0, 2.0) for _ in range(32)]
    durations = [86400.0 * w / sum(weights) for w in weights]  # (a day, split in proportion)
    assert math.fsum(durations) > 86400.0
    p = phased([{"name": f"p{k}", "duration_s": d} for k, d in enumerate(durations)])
    assert p.session_duration_s == 86400.0
    with pytest.raises(es.ProgramError, match=r"phases: their durations sum to 86401 s, .* at most 86400 s"):
        phased([{"name": "a", "duration_s": 86400.0}, {"name": "b", "duration_s": 1.0}])
