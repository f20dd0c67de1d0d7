"""The session engine on the simulated stimulator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import electrostim as es
from electrostim.devices._simulated import SimulatedStimulator
from electrostim.errors import OptionError, SafetyError
from electrostim.session import Runner, SessionError, SessionState, intensity_at, intensity_timeline, program_ramps

FAST = float("inf")


def session(pid="knee-oa-tens", **kw):
    plan = es.assess(es.load_program(pid)).approve()
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    events = []
    r = Runner(dev, on_event=lambda k, p: events.append((k, p)), **kw)
    return r, dev, events


def states(events):
    return [p["state"] for k, p in events if k == "state"]


def test_a_session_goes_through_its_phases():
    r, dev, events = session(duration_s=30.0)
    assert r.run(step_s=0.05, speed=FAST) == SessionState.COMPLETED
    assert states(events) == ["prepare", "contact-check", "ramp-up", "run", "ramp-down", "completed"]
    s = r.summary()
    assert s["pulses_delivered"] > 0 and s["charge_delivered_uc"]["knee-1"] > 0
    assert dev.status().intensity_ma["knee-1"] == 0.0


def test_slew_rate_limits_every_change():
    r, _, events = session(duration_s=60.0, slew_ma_per_s=2.0)
    r.begin()
    r.step(0.05)
    assert r.level["knee-1"] == r.start_ma["knee-1"]  # the program ramps itself: the session starts at once
    r.set_target("knee-1", r.start_ma["knee-1"] + 8.0)
    levels = [r.level["knee-1"]]
    for _ in range(100):
        r.step(0.05)
        levels.append(r.level["knee-1"])
    steps = [b - a for a, b in zip(levels, levels[1:])]
    assert max(steps) <= 2.0 * 0.05 + 1e-9
    assert r.level["knee-1"] == pytest.approx(r.start_ma["knee-1"] + 8.0)


def test_a_start_ramp_asked_for_is_linear_over_its_length():
    r, _, events = session(duration_s=60.0, start_ramp_s=7.5)
    r.begin()
    levels = []
    for _ in range(200):
        r.step(0.05)
        levels.append((r.t, r.level["knee-1"]))
    start = r.start_ma["knee-1"]
    for t, level in levels:
        assert level == pytest.approx(min(start, start * t / 7.5), abs=1e-9)
    ends = [p for k, p in events if k == "intensity" and p.get("ramp") == "end"]
    assert ends == [{"t_s": 7.5, "output": "knee-1", "ramp": "end", "intensity_ma": start, "from_ma": 0.0, "duration_s": 7.5}]


@pytest.mark.parametrize("value", [-1.0, 600.5, float("nan"), float("inf"), "x"])
def test_a_start_ramp_out_of_range_is_refused(value):
    with pytest.raises(OptionError, match=r"Invalid value for 'start_ramp_s': allowed a finite number 0 <= x <= 600"):
        session(start_ramp_s=value)


def _first_contraction(start_ramp_s=None):
    """nmes-quadriceps-tka delivered for its first contraction: (the pulses emitted, the program's schedule at the
    starting intensity)."""
    plan = es.assess(es.load_program("nmes-quadriceps-tka")).approve()  # 3 s ramp up, 15 s on, 45 s off
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    r = Runner(dev, duration_s=120.0, start_ramp_s=start_ramp_s)
    r.run(step_s=0.05, speed=FAST, until_s=20.0)
    schedule = es.Schedule(plan.program, amplitude_ma={"quadriceps": r.start_ma["quadriceps"]})
    return dev.emitted(0.0, 15.0), schedule.pulses(0.0, 15.0), r.start_ma["quadriceps"]


def test_the_first_contraction_rises_as_the_program_ramp_says():
    emitted, program, start = _first_contraction()
    assert start == 30.0 and len(emitted) == len(program) > 0
    np.testing.assert_allclose(emitted.time_s, program.time_s)
    np.testing.assert_allclose(emitted.first_amplitude_ma, program.first_amplitude_ma, rtol=1e-12)
    peak = np.abs(emitted.first_amplitude_ma)
    ramp = emitted.time_s < 3.0
    np.testing.assert_allclose(peak[ramp], start * emitted.time_s[ramp] / 3.0, atol=start * 0.01)  # the program's 3 s ramp
    assert peak[(emitted.time_s >= 3.0) & (emitted.time_s < 14.0)] == pytest.approx(start)  # then the whole intensity
    # a session ramp on top (what the old 2 mA/s start did) would eat the contraction: it is an option now
    slow, _, _ = _first_contraction(start_ramp_s=15.0)
    assert np.abs(slow.first_amplitude_ma)[(slow.time_s >= 3.0) & (slow.time_s < 14.0)].min() < 0.25 * start


PRESETS = sorted(e.id for e in es.list_programs(include_user=False))


@settings(max_examples=20, deadline=None)
@given(pid=st.sampled_from(PRESETS), until=st.floats(0.5, 6.0))
def test_property_a_program_that_ramps_itself_is_delivered_as_its_schedule_from_the_start(pid, until):
    """Every preset ramps up or has a duty cycle: its output from the first pulse is the program's own schedule at the
    starting intensity (no session ramp on top)."""
    plan = es.assess(es.load_program(pid)).approve(confirm=True)  # a monophasic preset (HVPC) needs confirmation
    assert all(program_ramps(plan.program).values())
    dev = SimulatedStimulator(plan.device.id)  # the profile the preset was assessed on (hvpc for one set in volts)
    dev.connect()
    dev.configure(plan)
    r = Runner(dev, duration_s=60.0)
    r.run(step_s=0.05, speed=FAST, until_s=until)
    emitted = dev.emitted(0.0, r.t)
    schedule = es.Schedule(plan.program)  # at each channel's starting (default) intensity
    assert r.start_ma == dict(zip(r.labels, schedule.amplitudes_ma))
    expected = schedule.pulses(0.0, r.t)
    assert len(emitted) == len(expected)
    np.testing.assert_allclose(emitted.first_amplitude_ma, expected.first_amplitude_ma, rtol=1e-9, atol=1e-12)


def test_titration_marks_and_envelope():
    r, _, events = session(duration_s=120.0)
    r.begin()
    r.run(step_s=0.1, speed=FAST, until_s=10.0)
    with pytest.raises(SafetyError, match="outside the approved envelope"):
        r.set_target("knee-1", 500.0)
    for _ in range(100):
        r.nudge("knee-1", 1.0)  # clipped at the envelope's maximum
    assert r.target["knee-1"] == r.plan.envelope.outputs[0].max_amplitude_ma
    r.run(step_s=0.1, speed=FAST, until_s=20.0)
    v = r.mark_threshold("knee-1", "sensory")
    assert v == r.level["knee-1"] and ("threshold", ) == tuple(e[0] for e in events if e[0] == "threshold")


def test_pause_resume_and_emergency_stop():
    r, dev, events = session(duration_s=60.0)
    r.begin()
    r.run(step_s=0.1, speed=FAST, until_s=5.0)
    r.pause()
    before = dev.status().pulses_delivered
    r.run(step_s=0.1, speed=FAST, until_s=8.0)
    assert dev.status().pulses_delivered == before
    r.resume()
    r.run(step_s=0.1, speed=FAST, until_s=9.0)
    assert dev.status().pulses_delivered > before
    r.emergency_stop()
    assert r.state == SessionState.STOPPED and dev.status().intensity_ma["knee-1"] == 0.0
    with pytest.raises(SessionError):
        r.set_target("knee-1", 1.0)


def test_peeling_pad_and_vanished_device_end_in_a_safe_stop():
    r, dev, events = session(duration_s=60.0)
    r.begin()
    r.run(step_s=0.1, speed=FAST, until_s=3.0)
    dev.peel("knee-1", 1, 0.05)
    r.run(step_s=0.1, speed=FAST, until_s=6.0)
    assert r.state == SessionState.FAILED and "electrode error" in r.error
    assert dev.status().intensity_ma["knee-1"] == 0.0
    assert any(k == "error" for k, _ in events)

    r, dev, events = session(duration_s=60.0)
    r.begin()
    r.run(step_s=0.1, speed=FAST, until_s=3.0)
    dev.disconnected = True
    r.run(step_s=0.1, speed=FAST, until_s=6.0)
    assert r.state == SessionState.FAILED and "not responding" in r.error


def test_contact_check_refuses_a_bad_contact():
    r, dev, events = session(duration_s=60.0)
    dev.peel("knee-1", 0, 0.01)
    r.begin()
    assert r.state == SessionState.FAILED and "contact check" in r.error


def test_cli_run_scripted(tmp_path):
    import json

    from typer.testing import CliRunner

    from electrostim.cli import app

    db = str(tmp_path / "s.db")
    r = CliRunner().invoke(app, ["run", "knee-oa-tens", "--yes", "--duration-s", "20", "--speed", "1000", "--json", "--db", db])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["assessment"]["verdict"] == "ok" and d["session"]["state"] == "completed" and d["session"]["pulses_delivered"] > 0
    r = CliRunner().invoke(app, ["run", "tens-conventional", "--site", "anterior-neck", "--yes", "--json", "--db", db])
    assert r.exit_code == 1 and json.loads(r.stdout)["session"] is None
    r = CliRunner().invoke(app, ["run", "nmes-quadriceps-tka", "--patient", "/nonexistent.toml", "--db", db])
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["run", "knee-oa-tens", "--device", "p24:/dev/no-such-port", "--yes", "--db", db])
    assert r.exit_code == 2 and "'/dev/no-such-port' does not exist" in r.output


def test_cli_run_records_the_session(tmp_path):
    import csv
    import json

    from typer.testing import CliRunner

    from electrostim.cli import app
    from electrostim.store import Store

    db = str(tmp_path / "es.sqlite")
    r = CliRunner().invoke(app, ["run", "knee-oa-tens", "--yes", "--duration-s", "10", "--speed", "1000", "--db", db, "--json"])
    assert r.exit_code == 0, r.output
    sid = json.loads(r.stdout)["session"]["session_id"]
    with Store.open(db) as store:
        detail = store.get_session(sid)
    assert detail.state == "completed"
    kinds = {e.kind for e in detail.events}
    assert {"state", "intensity", "note"} <= kinds
    seqs = [e.seq for e in detail.events]
    assert seqs == list(range(1, len(seqs) + 1))
    r = CliRunner().invoke(app, ["sessions", "list", "--db", db, "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["state"] == "completed"
    out = tmp_path / "s.csv"
    r = CliRunner().invoke(app, ["sessions", "export", str(sid), "-o", str(out), "--db", db])
    assert r.exit_code == 0
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(seqs)
    r = CliRunner().invoke(app, ["sessions", "show", str(sid), "--db", db, "--tail", "2"], env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    assert "knee-oa-tens" in r.output and "completed" in r.output and f"{len(seqs)} events, the last 2" in r.output
    assert "dose" in r.output and "state=completed" in r.output and "pulses" in r.output
    r = CliRunner().invoke(app, ["sessions", "show", str(sid), "--db", db, "--tail", "-1"])
    assert r.exit_code == 2 and "--tail" in r.output and "allowed a whole number 0 <= x <=" in r.output
    r = CliRunner().invoke(app, ["sessions", "show", "999", "--db", db])
    assert r.exit_code != 0 and "Traceback" not in r.output


def test_ramp_down_only_goes_down_and_the_session_ends_on_time():
    r, _, events = session(duration_s=20.0, ramp_s=3.0)
    r.run(step_s=0.05, speed=FAST, until_s=18.0)
    assert r.state == SessionState.RAMP_DOWN
    with pytest.raises(SessionError, match="ramping down"):
        r.nudge("knee-1", 1.0)
    assert r.target["knee-1"] == 0.0
    r.nudge("knee-1", -1.0)  # down is allowed (already at the floor)
    assert r.run(step_s=0.05, speed=FAST) == SessionState.COMPLETED
    assert r.t <= 20.0 + 1e-6


def test_a_nan_step_is_refused():
    r, _, _ = session(duration_s=20.0)
    r.begin()
    with pytest.raises(SessionError, match="Invalid intensity step"):
        r.nudge("knee-1", float("nan"))


def test_dose_events_come_every_period_and_at_the_end():
    r, dev, events = session(duration_s=45.0, dose_every_s=10.0)
    assert r.run(step_s=0.05, speed=FAST) == SessionState.COMPLETED
    doses = [p for k, p in events if k == "dose"]
    assert [round(p["t_s"]) for p in doses] == [10, 20, 30, 40, 45]
    pulses = [p["pulses_delivered"] for p in doses]
    charge = [p["charge_delivered_uc"]["knee-1"] for p in doses]
    assert pulses == sorted(pulses) and charge == sorted(charge) and pulses[0] > 0
    assert pulses[-1] == dev.status().pulses_delivered
    assert charge[-1] == pytest.approx(dev.charge_delivered_uc()["knee-1"], abs=1e-6)
    assert [k for k, _ in events][-2:] == ["dose", "state"]
    with pytest.raises(OptionError, match="dose_every_s"):
        session(dose_every_s=0.0)


# --------------------------------------------------------------------------- the intensity record


class CommandRecorder(SimulatedStimulator):
    """A simulated stimulator that records every intensity it is commanded, with the session time of the step."""

    def __init__(self):
        super().__init__()
        self.runner = None
        self.commanded: list[tuple[float, str, float]] = []

    def _set_intensity(self, output, amplitude_ma):
        super()._set_intensity(output, amplitude_ma)
        self.commanded.append((self.runner.t if self.runner else 0.0, output, amplitude_ma))


def recorded_session(pid="knee-oa-tens", **kw):
    plan = es.assess(es.load_program(pid)).approve()
    dev = CommandRecorder()
    dev.connect()
    dev.configure(plan)
    events = []
    r = Runner(dev, on_event=lambda k, p: events.append((k, p)), **kw)
    dev.runner = r
    return r, dev, events


def assert_reconstructs(events, dev):
    """The intensity rebuilt from the events is what the stimulator was commanded, at every command."""
    timeline = intensity_timeline(events)
    for t, output, ma in dev.commanded:
        t = round(t, 6)  # the record's times are to the microsecond
        assert intensity_at(timeline[output], t) == pytest.approx(ma, abs=1e-6), (t, output, ma, timeline[output])


def test_ramps_are_recorded_once_each_not_per_step():
    r, dev, events = recorded_session(duration_s=60.0, start_ramp_s=10.0)
    assert r.run(step_s=0.05, speed=FAST) == SessionState.COMPLETED
    intensity = [p for k, p in events if k == "intensity"]
    assert len(dev.commanded) > 250  # a level every step of the two ramps
    assert [(p.get("by"), p.get("ramp")) for p in intensity] == [("start", "start"), (None, "end"),
                                                                ("ramp-down", "start"), (None, "end")]
    up, up_end, down, down_end = intensity
    assert (up["t_s"], up["from_ma"], up["to_ma"], up["target_ma"], up["rate_ma_per_s"]) == (0.0, 0.0, 15.0, 15.0, 1.5)
    assert (up_end["t_s"], up_end["intensity_ma"], up_end["from_ma"], up_end["duration_s"]) == (10.0, 15.0, 0.0, 10.0)
    assert (down["t_s"], down["from_ma"], down["to_ma"], down["rate_ma_per_s"]) == (57.0, 15.0, 0.0, pytest.approx(5.0))
    assert (down_end["t_s"], down_end["intensity_ma"], down_end["duration_s"]) == (60.0, 0.0, 3.0)
    assert_reconstructs(events, dev)


def test_every_key_is_recorded_and_the_record_gives_the_intensity_over_time():
    r, dev, events = recorded_session(duration_s=30.0)
    r.begin()
    r.run(step_s=0.05, speed=FAST, until_s=2.0)
    for _ in range(3):
        r.nudge("knee-1", 1.0)  # three keys: three events, one ramp
    r.run(step_s=0.05, speed=FAST, until_s=2.5)
    r.pause()
    r.run(step_s=0.05, speed=FAST, until_s=4.0)
    r.resume()
    r.run(step_s=0.05, speed=FAST, until_s=30.0)
    assert r.state == SessionState.RAMP_DOWN
    r.nudge("knee-1", -5.0)  # lowered during the closing ramp
    assert r.run(step_s=0.05, speed=FAST) == SessionState.COMPLETED
    asked = [p["target_ma"] for k, p in events if k == "intensity" and p.get("by") == "user"]
    assert asked[:3] == [16.0, 17.0, 18.0] and len(asked) == 4
    ends = [p for k, p in events if k == "intensity" and p.get("ramp") == "end"]
    assert ends[1]["from_ma"] == 15.0 and ends[1]["intensity_ma"] == 18.0  # the three keys' ramp: 15 -> 18 mA
    assert ends[1]["duration_s"] == pytest.approx(3.0 / 2.0 + 1.5)  # at 2 mA/s, the pause held it 1.5 s
    assert_reconstructs(events, dev)
    timeline = intensity_timeline(events)["knee-1"]
    paused = next(p["t_s"] for k, p in events if k == "state" and p["state"] == "paused")
    held = intensity_at(timeline, paused)
    assert 15.0 < held < 18.0 and intensity_at(timeline, paused + 1.4) == held  # the pause held it mid-ramp
    assert timeline[-1] == (pytest.approx(r.t), 0.0) and r.t == pytest.approx(31.5)  # 30 s run, 1.5 s paused


KEYS = st.lists(st.tuples(st.floats(0.0, 3.0), st.sampled_from(["up", "down", "target", "pause", "resume", "stop"]),
                          st.floats(0.0, 40.0)), max_size=25)


@settings(max_examples=40, deadline=None)
@given(pid=st.sampled_from(["knee-oa-tens", "nmes-quadriceps-tka", "ifc-knee", "tens-conventional"]), keys=KEYS,
       start_ramp=st.one_of(st.none(), st.sampled_from([0.0, 1.0, 7.5])), slew=st.sampled_from([1.0, 2.0, 50.0]),
       ramp_s=st.sampled_from([0.0, 3.0]), step=st.sampled_from([0.05, 0.1]))
def test_property_the_record_rebuilds_the_commanded_intensity(pid, keys, start_ramp, slew, ramp_s, step):
    """Any keys at any moments (nudges, targets, pauses, a stop): the intensity rebuilt from the recorded events is the
    intensity the stimulator was commanded, at every command, and zero after the session."""
    r, dev, events = recorded_session(pid, duration_s=20.0, start_ramp_s=start_ramp, slew_ma_per_s=slew, ramp_s=ramp_s)
    r.begin()
    t = 0.0
    for delay, key, value in keys:
        t += delay
        r.run(step_s=step, speed=FAST, until_s=t)
        if r.state in (SessionState.COMPLETED, SessionState.STOPPED, SessionState.FAILED):
            break
        label = r.labels[int(value) % len(r.labels)]
        try:
            if key == "up":
                r.nudge(label, 1.0)
            elif key == "down":
                r.nudge(label, -1.0)
            elif key == "target":
                r.set_target(label, min(value, r.plan.output_envelope(label).max_amplitude_ma))
            elif key == "pause":
                r.pause()
            elif key == "resume":
                r.resume()
            else:
                r.emergency_stop("stopped by the user")
        except SessionError:
            pass  # not allowed now (e.g. up during the closing ramp): nothing changes
    r.run(step_s=step, speed=FAST, until_s=t + 60.0)
    if r.state == SessionState.PAUSED:
        r.emergency_stop("stopped by the user")
    assert_reconstructs(events, dev)
    timeline = intensity_timeline(events)
    assert all(points[-1][1] == 0.0 for points in timeline.values())
    per_step = sum(1 for k, p in events if k == "intensity" and "to_ma" not in p and p.get("ramp") != "end")
    assert per_step == 0  # no event per step: only movements and their ends


def test_a_delivered_session_record_rebuilds_the_intensity(tmp_path):
    from electrostim.session import deliver
    from electrostim.store import Store

    plan = es.assess(es.load_program("nmes-quadriceps-tka")).approve()
    dev = CommandRecorder()
    presses = iter([(1.0, 2.0), (5.0, -4.0), (9.0, 1.0)])
    nxt = [next(presses)]

    def tick(r):
        dev.runner = r
        if nxt[0] is not None and r.t >= nxt[0][0]:
            r.nudge(r.labels[0], nxt[0][1])
            nxt[0] = next(presses, None)

    result = deliver(plan, dev, tmp_path / "s.db", duration_s=15.0, speed=FAST, on_tick=tick,
                     runner_options={"start_ramp_s": 2.0})
    assert result.end_state == "completed"
    with Store.open(tmp_path / "s.db", readonly=True) as store:
        detail = store.get_session(result.session_id)
    dev.commanded = [(t, o, ma) for t, o, ma in dev.commanded if t > 0.0]  # before the first tick: the first step
    assert_reconstructs(detail.events, dev)
    assert sum(e.kind == "intensity" for e in detail.events) < 15


def test_a_record_with_a_level_per_step_still_plays_back():
    """Sessions recorded before ramps were one event each hold a level per step (and targets): the line through them."""
    events = [("state", {"t_s": 0.0, "state": "ramp-up"}), ("intensity", {"t_s": 0.0, "output": "a", "target_ma": 1.0})]
    events += [("intensity", {"t_s": round(0.05 * k, 2), "output": "a", "intensity_ma": round(0.1 * k, 1)})
               for k in range(1, 11)]
    events.append(("state", {"t_s": 5.0, "state": "stopped"}))
    curve = intensity_timeline(events)["a"]
    assert intensity_at(curve, 0.25) == pytest.approx(0.5) and intensity_at(curve, 4.0) == 1.0
    assert curve[-2:] == [(5.0, 1.0), (5.0, 0.0)]
