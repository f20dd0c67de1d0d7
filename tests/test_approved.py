"""Approved is delivered: each fault kind of the attack on the safety chain, its case and a property.

1. a device emits a rate the plan never approved → the check and the driver agree;
2. two outputs share one label → refused when the program is loaded;
3. an approved plan changes after approval → approval takes an immutable snapshot;
4. the safety engine fails open → any non-finite figure is a refusal, only ``assess``
   makes an assessment, device profiles come from the table;
7. sessions with impossible durations → every numeric option finite and in range, a
   session lasts what was asked;
8. a store failure recorded as a clean stop → the record states the first cause.

(5, the rate bands, is in ``test_rate_bands.py``; 6, signals, in ``test_signals.py``;
9, reading a store, in ``test_store_readonly.py``; the output of every backend in
``test_delivered.py``.)
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import electrostim as es
from electrostim.devices import P24, P24Emulator, RehaStim2, RehaStim2Emulator, SimulatedStimulator
from electrostim.errors import ElectrostimError, OptionError, ProgramError, SafetyError, UnknownDeviceError
from electrostim.safety import Assessment, DeviceProfile, get_device
from electrostim.session import MIN_DURATION_S, Runner, SessionState, deliver
from electrostim.store import Store, StoreError

from .conftest import make_program, pad
from .test_delivered import Approved, check_delivered, configured_sim, serial_programs
from .test_envelope_property import programs

CLI = [sys.executable, "-m", "electrostim"]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def _program(**stimulus) -> es.Program:
    base = {"pulse": {"shape": "symmetric-biphasic", "pulse_width_us": 500.0, "frequency_hz": 125.0},
            "amplitude": {"default_ma": 10.0, "max_ma": 130.0}}
    base.update(stimulus)
    return es.validate_program({"id": "case", "name": "a case", "modality": "tens", "session_duration_s": 60.0,
                                "channels": [{"label": "a", "electrodes": [pad("knee", 1.3, 1.3), pad("knee", 1.3, 1.3)],
                                              "stimulus": base}]})


# --------------------------------------------------------------------------- 1. the check agrees with the driver


def test_a_swept_rate_is_refused_for_a_device_that_runs_one_rate():
    """The case: 125 Hz nominal, swept 2-10 Hz, 500 µs, 130 mA on 1.3 cm pads: the RehaStim2 would fire 125 Hz (a
    nominal rate must now lie within the sweep: 10 Hz, which it would fire as well)."""
    p = _program(pulse={"shape": "symmetric-biphasic", "pulse_width_us": 500.0, "frequency_hz": 10.0},
                 modulation=[{"kind": "frequency-sweep", "low_hz": 2.0, "high_hz": 10.0, "period_s": 10.0}])
    for device in ("rehastim2", "p24"):
        a = es.assess(p, device=device)
        assert a.verdict == "refused", device
        assert any(r.rule == f"device.{device}.fixed-rate" and "frequency-sweep 2-10 Hz" in r.message for r in a.reasons)
    mixed = es.assess(es.load_program("tens-mixed-frequency"), device="rehastim2")
    assert mixed.verdict == "refused" and "alternating 4, 100 Hz" in " ".join(r.message for r in mixed.reasons)


def test_a_period_off_the_grid_is_rounded_up_and_judged_as_delivered():
    p = _program(pulse={"shape": "symmetric-biphasic", "pulse_width_us": 200.0, "frequency_hz": 30.0},
                 amplitude={"default_ma": 10.0, "max_ma": 20.0})
    a = es.assess(p, device="rehastim2")
    assert a.verdict == "needs_confirmation"
    assert "30 Hz (33.3333 ms) is delivered and checked at 29.8507 Hz (33.5 ms)" in " ".join(r.message for r in a.reasons)
    assert a.program.channels[0].stimulus.pulse.frequency_hz == pytest.approx(1000 / 33.5)
    assert a.dose.outputs[0].max_pulse_rate_hz <= 30.0


@st.composite
def _device_programs(draw):
    device = draw(st.sampled_from(["rehastim2", "p24"]))
    return device, draw(serial_programs(device))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=_device_programs(), rate=st.sampled_from([3.0, 7.0, 30.0, 33.0, 90.0, 125.0, 130.0, 400.0, 600.0]),
       sweep=st.booleans())
def test_the_driver_configures_exactly_what_the_check_does_not_refuse(case, rate, sweep):
    device, program = case
    doc = program.model_dump(mode="python")
    for ch in doc["channels"]:
        ch["stimulus"]["pulse"]["frequency_hz"] = rate if ch["stimulus"].get("burst") is None else 100.0
        if sweep:
            ch["stimulus"]["modulation"] = [{"kind": "frequency-sweep", "low_hz": 2.0, "high_hz": 10.0, "period_s": 1.0}]
    try:
        program = es.validate_program(doc, source="case")
    except ProgramError:
        assume(False)
    a = es.assess(program, device=device)
    driver, emulator = {"rehastim2": (RehaStim2, RehaStim2Emulator), "p24": (P24, P24Emulator)}[device]
    if sweep:
        assert a.verdict == "refused" and any(r.rule == f"device.{device}.fixed-rate" for r in a.reasons)
    if a.verdict == "refused":
        return
    plan = a.approve(confirm=True, confirmed_by="test")
    with emulator() as emu, driver(emu.port) as dev:
        dev.connect()
        dev.configure(plan)  # must not raise: what the check passes, the driver delivers
        assert dev.state.value == "configured"


# --------------------------------------------------------------------------- 2. one identity per output


def test_a_channel_may_not_take_the_label_of_another_channels_output():
    ifc = es.load_program("ifc-knee").model_dump(mode="python")
    second = json.loads(json.dumps(ifc["channels"][0]))
    second["label"] = ifc["channels"][0]["label"] + ".a"
    ifc["channels"].append(second)
    with pytest.raises(ProgramError, match=r"output labels must be unique: channel .* both name an output"):
        es.validate_program(ifc)


@given(labels=st.lists(st.sampled_from(["ifc", "ifc.a", "ifc.b", "a", "a.a", "b"]), min_size=1, max_size=4),
       quad=st.lists(st.booleans(), min_size=4, max_size=4))
def test_output_labels_are_unique_or_the_program_is_refused(labels, quad):
    chans = []
    for label, q in zip(labels, quad):
        pulse = ({"shape": "interferential", "mode": "quadripolar", "carrier_frequency_hz": 4000.0, "beat_frequency_hz": 100.0}
                 if q else {"shape": "interferential", "mode": "premodulated", "carrier_frequency_hz": 4000.0,
                            "beat_frequency_hz": 100.0})
        chans.append({"label": label, "electrodes": [pad("knee")] * (4 if q else 2),
                      "stimulus": {"pulse": pulse, "amplitude": {"default_ma": 5.0, "max_ma": 10.0}}})
    doc = {"id": "labels", "name": "labels", "modality": "interferential", "session_duration_s": 10.0, "channels": chans}
    names = []
    for label, q in zip(labels, quad):
        names += [label] + ([f"{label}.a", f"{label}.b"] if q else [])
    try:
        program = es.validate_program(doc)
    except ProgramError as exc:
        assert len(set(names)) < len(names), exc
        return
    assert len(set(names)) == len(names)
    outputs = [o.label for o in program.outputs]
    assert len(set(outputs)) == len(outputs)


# --------------------------------------------------------------------------- 3. the snapshot


def test_changing_the_program_after_approval_changes_nothing_delivered():
    program = es.load_program("knee-oa-tens").with_changes(max_amplitude_ma=50.0)
    plan = es.assess(program).approve()
    sha = plan.program_sha256
    before = es.compute_dose(plan.program, level="max").outputs[0]
    # the caller's object: replace the channel, add a modulation, shrink a pad (lists inside frozen models)
    wide = program.channels[0].model_copy(update={"stimulus": program.channels[0].stimulus.model_copy(
        update={"pulse": program.channels[0].stimulus.pulse.model_copy(update={"pulse_width_us": 1000.0})})})
    program.channels[0] = wide
    program.channels[0].stimulus.modulation.append(es.program.AlternatingFrequency(frequencies_hz=[1000.0, 999.0], dwell_s=1.0))
    program.channels[0].electrodes[0] = program.channels[0].electrodes[0].model_copy(update={"width_cm": 2.0, "height_cm": 2.0})
    assert plan.program_sha256 == sha and plan.program.channels[0].stimulus.pulse.pulse_width_us == 100.0
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    r = Runner(dev, start_ma={"knee-1": 50.0}, slew_ma_per_s=100.0, duration_s=20.0)
    r.run(step_s=0.05, speed=math.inf)
    check_delivered(Approved(plan), dev.emitted(), exact=True, where="after changes")
    assert es.compute_dose(plan.program, level="max").outputs[0] == before
    with pytest.raises(TypeError):
        plan.envelope.outputs[0] = plan.envelope.outputs[0]  # type: ignore[index]
    with pytest.raises(Exception):
        plan.envelope.outputs[0].max_amplitude_ma = 150.0  # type: ignore[misc]


def test_load_program_gives_a_copy():
    a = es.load_program("knee-oa-tens")
    a.channels.clear()
    assert len(es.load_program("knee-oa-tens").channels) == 1


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(program=programs(), data=st.data())
def test_no_change_to_the_callers_program_reaches_the_plan(program, data):
    a = es.assess(program)
    assume(a.verdict != "refused")
    plan = a.approve(confirm=True)
    sha, envelope = plan.program_sha256, plan.envelope.model_dump()
    ch = data.draw(st.integers(0, len(program.channels) - 1))
    action = data.draw(st.sampled_from(["drop", "pads", "modulation", "duplicate"]))
    if action == "drop" and len(program.channels) > 1:
        program.channels.pop(ch)
    elif action == "pads":
        program.channels[ch].electrodes.reverse()
        program.channels[ch].electrodes[0] = program.channels[ch].electrodes[0].model_copy(update={"site": "chest"})
    elif action == "modulation":
        program.channels[ch].stimulus.modulation.clear()
    else:
        program.channels.append(program.channels[ch])
    assert plan.program_sha256 == sha and plan.envelope.model_dump() == envelope
    assert plan.verified_program().model_dump() == plan.program.model_dump()


# --------------------------------------------------------------------------- 4. fail closed


@pytest.mark.parametrize("field, value", [("pulse_width_us", math.nan), ("frequency_hz", math.nan),
                                          ("pulse_width_us", math.inf), ("interphase_gap_us", math.nan)])
def test_a_figure_that_is_not_finite_is_never_approved(field, value):
    p = es.load_program("knee-oa-tens")
    st_ = p.channels[0].stimulus
    bad_pulse = st_.pulse.model_copy(update={field: value})  # model_copy skips validation
    bad = p.model_copy(update={"channels": [p.channels[0].model_copy(update={"stimulus": st_.model_copy(update={"pulse": bad_pulse})})]})
    with pytest.raises(ProgramError, match="finite"):
        es.assess(bad)


def test_a_non_finite_dose_figure_is_a_refusal(monkeypatch):
    import electrostim.safety._assess as engine

    real = engine.compute_dose

    def nan_dose(*a, **k):
        d = real(*a, **k)
        o = d.outputs[0].model_copy(update={"rms_current_ma": math.nan})
        return d.model_copy(update={"outputs": [o]})

    monkeypatch.setattr(engine, "compute_dose", nan_dose)
    a = es.assess(es.load_program("knee-oa-tens"))
    assert a.verdict == "refused" and any(r.rule == "safety.non-finite-figure" for r in a.reasons)
    with pytest.raises(SafetyError):
        a.approve(confirm=True)


def test_only_assess_makes_an_assessment_and_profiles_come_from_the_table():
    a = es.assess(es.load_program("knee-oa-tens"))
    with pytest.raises(SafetyError, match="only by electrostim.safety.assess"):
        Assessment(object(), None, a.program, None, a.device, a.dose, [], [], {"knee-1": 300.0}, 500.0)
    wide = get_device("rehastim2").model_copy(update={"current_max_ma": 500.0})
    with pytest.raises(UnknownDeviceError, match="profiles come from the device table"):
        es.assess(es.load_program("knee-oa-tens"), device=wide)
    assert es.assess(es.load_program("knee-oa-tens"), device=get_device("p24")).device.id == "p24"
    forged = DeviceProfile.model_validate({**get_device("generic").model_dump(), "id": "p24"})
    with pytest.raises(UnknownDeviceError):
        es.assess(es.load_program("knee-oa-tens"), device=forged)


@settings(max_examples=40, deadline=None)
@given(path=st.sampled_from(["pulse_width_us", "frequency_hz", "max_ma", "default_ma", "width_cm", "session_duration_s"]),
       value=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_no_non_finite_value_reaches_an_approved_plan(path, value):
    p = es.load_program("tens-conventional")
    ch = p.channels[0]
    stim = ch.stimulus
    if path in ("pulse_width_us", "frequency_hz"):
        ch = ch.model_copy(update={"stimulus": stim.model_copy(update={"pulse": stim.pulse.model_copy(update={path: value})})})
    elif path in ("max_ma", "default_ma"):
        ch = ch.model_copy(update={"stimulus": stim.model_copy(update={"amplitude": stim.amplitude.model_copy(update={path: value})})})
    elif path == "width_cm":
        ch = ch.model_copy(update={"electrodes": [ch.electrodes[0].model_copy(update={path: value}), ch.electrodes[1]]})
    bad = p.model_copy(update={"channels": [ch, *p.channels[1:]]} if path != "session_duration_s" else {path: value})
    with pytest.raises(ElectrostimError):
        es.assess(bad).approve(confirm=True)


# --------------------------------------------------------------------------- 7. durations


@pytest.mark.parametrize("option, value", [("--duration-s", "nan"), ("--duration-s", "inf"), ("--duration-s", "1e308"),
                                           ("--duration-s", "1e12"), ("--duration-s", "0"), ("--duration-s", "-3"),
                                           ("--duration-s", "1e-300"), ("--duration-s", "0.0099"),
                                           ("--speed", "nan"), ("--speed", "inf"), ("--speed", "0"), ("--speed", "1e9")])
def test_impossible_numbers_are_bad_input(option, value, tmp_path: Path):
    db = tmp_path / "s.db"
    r = cli("run", "knee-oa-tens", "--yes", option, value, "--db", str(db))
    assert r.returncode == 2 and f"Invalid value for '{option}'" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not db.exists()


@pytest.mark.parametrize("duration_s", [0.05, 1.0, 3.0, 4.0, 5.0, 7.3])
def test_a_session_lasts_what_was_asked(duration_s, tmp_path: Path):
    plan = es.assess(es.load_program("knee-oa-tens")).approve()
    r = deliver(plan, "sim", tmp_path / "s.db", duration_s=duration_s, speed=math.inf, handle_signals=False)
    assert r.end_state == "completed" and r.summary["run_s"] == pytest.approx(duration_s, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(duration=st.one_of(st.floats(), st.floats(-1.0, 0.02), st.just(MIN_DURATION_S * 0.999)))
def test_a_duration_out_of_range_is_refused_before_anything_runs(duration):
    plan = es.assess(es.load_program("tens-conventional")).approve()
    assume(not MIN_DURATION_S <= duration <= plan.program.session_duration_s)
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    with pytest.raises(OptionError, match="duration_s"):
        Runner(dev, duration_s=duration)
    assert dev.state.value == "configured" and dev.status().pulses_delivered == 0


@settings(max_examples=30, deadline=None)
@given(duration=st.one_of(st.floats(MIN_DURATION_S, 10.0), st.floats(10.0, 1800.0)), step=st.sampled_from([0.05, 0.1, 0.3, 1.0]),
       ramp=st.floats(0.0, 10.0))
def test_every_session_ends_at_its_duration(duration, step, ramp):
    plan = es.assess(es.load_program("tens-conventional")).approve()
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    r = Runner(dev, duration_s=duration, ramp_s=ramp, slew_ma_per_s=50.0)
    if duration > 10.0:
        step = min(1.0, max(step, duration / 200.0))  # a few hundred steps (at most 1 s each): the end is checked
    assert r.run(step_s=step, speed=math.inf) == SessionState.COMPLETED
    assert r.run_t == pytest.approx(duration, rel=1e-12, abs=1e-9)
    assert dev.status().intensity_ma == {k: 0.0 for k in r.labels}


# --------------------------------------------------------------------------- 8. the first cause


def _lock_the_store(db: Path, at_s: float, for_s: float, mode: str):
    """A session tick that, at ``at_s`` of session time, lets another connection hold the store's lock for ``for_s``."""
    holder: dict = {}

    def tick(runner: Runner) -> None:
        if runner.t >= at_s and "con" not in holder:
            con = sqlite3.connect(db, timeout=0, check_same_thread=False)
            con.isolation_level = None
            con.execute(f"BEGIN {mode}")
            holder["con"] = con
            threading.Timer(for_s, lambda: (con.execute("COMMIT"), con.close())).start()
            runner.nudge(runner.labels[0], 1.0)  # a key press while the lock is held: an event to record

    return tick


def test_a_store_that_fails_mid_session_is_the_recorded_cause(tmp_path: Path, monkeypatch):
    """Another process holds the store's write lock: the output stops, the session fails with that cause, and the
    ending is recorded once the lock is released."""
    import electrostim.store._engine as engine

    monkeypatch.setattr(engine, "BUSY_TIMEOUT_S", 0.2)
    db = tmp_path / "s.db"
    plan = es.assess(es.load_program("knee-oa-tens")).approve()
    dev = SimulatedStimulator()
    r = deliver(plan, dev, db, duration_s=30.0, speed=10.0, on_tick=_lock_the_store(db, 2.0, 1.0, "IMMEDIATE"),
                handle_signals=False)
    assert r.end_state == "failed" and r.error.startswith("the session store failed:") and "locked" in r.error
    assert r.record_error is None and r.exit_code == 1
    assert dev.emitted(start_s=2.2).time_s.size == 0  # nothing after the failure
    with Store.open(db, readonly=True) as store:
        log = store.get_session(r.session_id)
    assert log.state == "failed" and log.summary["error"] == r.error
    assert log.events[-1].payload["reason"] == r.error


def test_a_store_that_stays_broken_is_named_as_the_first_cause(tmp_path: Path, monkeypatch):
    import electrostim.session._deliver as delivery

    monkeypatch.setattr(delivery, "RECORD_RETRY_S", 0.5)
    calls = {"n": 0}
    plan = es.assess(es.load_program("knee-oa-tens")).approve()
    store = Store.open(tmp_path / "s.db")
    real = store.append_event

    def full_disk(*a, **k):
        calls["n"] += 1
        if calls["n"] > 5:
            raise StoreError("Cannot append an event: database or disk is full.")
        return real(*a, **k)

    store.append_event = full_disk  # type: ignore[method-assign]
    store.end_session = lambda *a, **k: (_ for _ in ()).throw(StoreError("Cannot end the session: disk is full."))  # type: ignore[method-assign]
    r = deliver(plan, "sim", store, duration_s=30.0, speed=math.inf, handle_signals=False)
    store.close()
    assert r.end_state == "failed" and r.error == "the session store failed: Cannot append an event: database or disk is full."
    assert r.record_error is not None and "could not be recorded" in r.record_error and r.exit_code == 1


# --------------------------------------------------------------------------- delivery in the library


def test_the_run_command_is_a_thin_face():
    """``electrostim run`` calls session.deliver; it imports neither the store nor a driver (only the backend table)."""
    import ast

    import electrostim.cli._run as run_module

    tree = ast.parse(Path(run_module.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            imported.add(node.module or "")
            imported.update(f"{node.module}.{a.name}" for a in node.names)
    assert not any(m.startswith("store") for m in imported), imported
    assert not any(m.startswith("devices") and m != "devices" and m != "devices.backend_help" for m in imported), imported
    assert "session.deliver" in imported


def test_the_backend_table_opens_every_stimulator_and_names_the_choices():
    from electrostim.devices import BACKENDS, backend_help, open_emulator, open_stimulator, parse_backend
    from electrostim.errors import InvalidInputError

    assert set(BACKENDS) == {"sim", "rehastim2", "p24"}
    assert open_stimulator("sim").profile.id == "generic"
    for name, backend in BACKENDS.items():
        assert name in backend_help()
        if backend.emulator is not None:
            with open_emulator(name) as emu:
                dev = open_stimulator(f"{name}:{emu.port}")
                assert dev.profile.id == backend.profile
    for bad in ("", "sim:x", "rehastim2", "p24:", "gizmo:1", "com3"):
        with pytest.raises(InvalidInputError, match="Invalid value for 'device'"):
            parse_backend(bad)


def test_sessions_and_the_store_share_one_vocabulary():
    from electrostim.session import END_STATES
    from electrostim.store import END_STATES as STORE_END_STATES
    from electrostim.store import EVENT_KINDS

    assert set(END_STATES.values()) == set(STORE_END_STATES)
    plan = es.assess(es.load_program("knee-oa-tens")).approve()
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    kinds = set()
    r = Runner(dev, duration_s=15.0, on_event=lambda k, p: kinds.add(k))
    r.begin()
    r.run(step_s=0.05, speed=math.inf, until_s=3.0)
    r.mark_threshold("knee-1", "sensory")
    r.pause()
    r.resume()
    r.run(step_s=0.05, speed=math.inf)
    assert kinds <= set(EVENT_KINDS) and {"state", "intensity", "note", "threshold", "dose"} <= kinds
    assert r.state.value in STORE_END_STATES


# --------------------------------------------------------------------------- forging through public names


def test_plans_and_assessments_cannot_be_subclassed_or_forged():
    from electrostim.safety import ApprovedPlan

    with pytest.raises(TypeError, match="cannot be subclassed"):
        type("Evil", (ApprovedPlan,), {})
    with pytest.raises(TypeError, match="cannot be subclassed"):
        type("Evil", (Assessment,), {})
    dev = SimulatedStimulator()
    dev.connect()
    with pytest.raises(SafetyError, match="accepts only an ApprovedPlan"):
        dev.configure(object.__new__(ApprovedPlan))  # type: ignore[arg-type]


def test_an_intensity_is_converted_once_and_what_was_checked_is_sent():
    class Sly:
        calls = 0

        def __float__(self):
            Sly.calls += 1
            return 10.0 if Sly.calls == 1 else 500.0

    plan = es.assess(es.load_program("knee-oa-tens")).approve()
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    dev.start()
    dev.set_intensity("knee-1", Sly())  # type: ignore[arg-type]
    dev.advance(8.0)
    assert dev.status().intensity_ma["knee-1"] == 10.0
    check_delivered(Approved(plan), dev.emitted(), exact=True, where="sly")


def test_the_device_table_cannot_be_changed_from_outside():
    from electrostim.safety import device_profiles

    table = device_profiles()
    table["p24"] = table["p24"].model_copy(update={"max_pulse_rate_hz": 5000.0})
    assert get_device("p24").max_pulse_rate_hz == 500.0

    class Lenient(DeviceProfile):
        def __eq__(self, other):
            return True

    with pytest.raises(UnknownDeviceError):
        es.assess(es.load_program("knee-oa-tens"), device=Lenient(**{**get_device("rehastim2").model_dump(),
                                                                     "current_max_ma": 500.0}))


@pytest.mark.parametrize("load", [1.0, 1e-9, 499.0, math.nan, 1e9])
def test_limits_are_judged_at_the_test_load_or_above(load):
    from electrostim.errors import OptionError

    with pytest.raises(OptionError, match="load_ohm"):
        es.assess(es.load_program("knee-oa-tens"), load_ohm=load)


def test_a_stop_request_ends_a_slow_session_at_once():
    dev = configured_sim(es.assess(es.load_program("knee-oa-tens")).approve())
    r = Runner(dev, duration_s=60.0)
    threading.Timer(0.3, lambda: (r.request_stop("signal SIGTERM"), dev.stop())).start()
    t0 = time.monotonic()
    assert r.run(step_s=0.05, speed=0.01) == SessionState.STOPPED  # each step would sleep 5 s
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("labels", [("knee", "KNEE"), ("knee", "ｋnee"), ("kn\u200bee", "x"), ("a,b", "c"), ("a\nb", "c")])
def test_labels_that_look_alike_or_hide_characters_are_refused(labels):
    doc = es.load_program("tens-conventional").model_dump(mode="json")
    doc["channels"][0]["label"], doc["channels"][1]["label"] = labels
    with pytest.raises(ProgramError, match="label"):
        es.validate_program(doc)


def test_a_store_locked_during_a_serial_session_is_the_recorded_cause(tmp_path: Path):
    """The session's thread waits for the store's lock; the P24 stops by itself (host watchdog); the record names the
    store, not only the watchdog."""
    db = tmp_path / "s.db"
    plan = es.assess(es.load_program("knee-oa-tens"), device="p24").approve()
    with P24Emulator() as emu:
        r = deliver(plan, f"p24:{emu.port}", db, duration_s=30.0, on_tick=_lock_the_store(db, 1.0, 2.5, "EXCLUSIVE"),
                    handle_signals=False)
        assert not emu.output_on
    assert r.end_state == "failed" and r.error.startswith("the session store took") and r.exit_code == 1, r.error
    with Store.open(db, readonly=True) as store:
        log = store.get_session(r.session_id)
    assert log.state == "failed" and log.summary["error"] == r.error


# --------------------------------------------------------------------------- numbers that are not numbers


@pytest.mark.parametrize("value", [True, False, "40", b"40"])
def test_an_amplitude_must_be_a_number(value):
    plan = es.assess(es.load_program("knee-oa-tens")).approve()
    with pytest.raises(SafetyError, match="not an amplitude in mA"):
        plan.check_amplitude("knee-1", value)


def test_an_amplitude_just_above_the_envelope_says_by_how_much():
    plan = es.assess(es.load_program("knee-oa-tens")).approve()
    top = plan.output_envelope("knee-1").max_amplitude_ma
    with pytest.raises(SafetyError, match=r"50\.0000001 mA .* \(0 to 50 mA\)"):
        plan.check_amplitude("knee-1", top + 1e-7)


@pytest.mark.parametrize("option, value", [("duration_s", True), ("duration_s", "3"), ("step_s", 1e-9), ("step_s", 0.0),
                                           ("step_s", 2.0), ("step_s", math.nan), ("step_s", True)])
def test_deliver_refuses_numbers_out_of_range_before_anything_is_created(option, value, tmp_path: Path):
    plan = es.assess(es.load_program("knee-oa-tens")).approve()
    db = tmp_path / "s.db"
    with pytest.raises(OptionError, match=f"'{option}'"):
        deliver(plan, "sim", db, speed=math.inf, handle_signals=False, **{option: value})
    assert not db.exists()


def test_the_device_table_cannot_be_changed_by_a_caller():
    """The table's rows are frozen, their lists are tuples: what one caller does cannot widen another's check."""
    p24 = get_device("p24")
    with pytest.raises(AttributeError):
        p24.shapes.append("interferential")  # type: ignore[attr-defined]
    with pytest.raises(Exception):
        p24.current_max_ma = 1000.0  # type: ignore[misc]
    a = es.assess(es.load_program("ifc-knee"), device="p24")
    assert any(r.rule == "device.p24.shape" for r in a.reasons)


@pytest.mark.parametrize("second", ["kne\u0435.a", "\u043a\u0578ee", "KNEE.\u0430"])
def test_labels_in_mixed_scripts_or_that_look_like_another_are_refused(second):
    """A Cyrillic letter inside a Latin label, or a label of look-alike letters, cannot name a second output."""
    data = es.load_program("ifc-knee").model_dump(mode="python")
    first = data["channels"][0]
    other = json.loads(json.dumps(first))
    other["label"] = second
    other["stimulus"] = {"pulse": {"shape": "symmetric-biphasic", "pulse_width_us": 100.0, "frequency_hz": 50.0},
                         "amplitude": {"default_ma": 5.0, "max_ma": 10.0}}
    other["electrodes"] = other["electrodes"][:2]
    data["channels"] = [first, other]
    with pytest.raises(ProgramError, match="one script|unique"):
        es.validate_program(data, source="look-alike labels")


@settings(max_examples=60, deadline=None)
@given(label=st.text(alphabet=st.sampled_from(list("kneabc") + list("\u0430\u0435\u043e\u0440\u0441\u03bf\u03b1")), min_size=1,
                     max_size=6))
def test_a_label_mixes_no_scripts(label):
    scripts = {unicodedata.name(c).split()[0] for c in label if c.isalpha()}
    data = make_program({"shape": "symmetric-biphasic", "pulse_width_us": 100.0, "frequency_hz": 50.0}).model_dump(mode="python")
    data["channels"][0]["label"] = label
    if len(scripts) > 1:
        with pytest.raises(ProgramError, match="one script"):
            es.validate_program(data, source="drawn label")
    else:
        assert es.validate_program(data, source="drawn label").channels[0].label == label
