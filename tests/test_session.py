"""The session engine on the simulated stimulator."""

from __future__ import annotations

import pytest

import electrostim as es
from electrostim.devices._simulated import SimulatedStimulator
from electrostim.errors import OptionError, SafetyError
from electrostim.session import Runner, SessionError, SessionState

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
    levels = []
    for _ in range(100):
        r.step(0.05)
        levels.append(r.level["knee-1"])
    steps = [b - a for a, b in zip([0.0] + levels, levels)]
    assert max(steps) <= 2.0 * 0.05 + 1e-9
    assert r.level["knee-1"] == pytest.approx(min(5 * 2.0, r.start_ma["knee-1"]))


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
