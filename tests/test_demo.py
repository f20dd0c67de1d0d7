"""``electrostim demo``: check, figure, and a short session delivered on the simulated stimulator and recorded."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

import electrostim as es
from electrostim.cli import app
from electrostim.store import Store


def demo(*args: str):
    return CliRunner().invoke(app, ["demo", *args], catch_exceptions=False)


def test_demo_json_has_the_assessment_the_figure_and_the_recorded_session(tmp_path):
    db = str(tmp_path / "demo.sqlite")
    r = demo("-o", str(tmp_path / "fig"), "--db", db, "--duration-s", "30", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert set(d) == {"assessment", "figure", "session"}
    assert d["assessment"]["verdict"] == "ok" and d["assessment"]["dose"]["outputs"][0]["label"] == "knee-1"
    assert d["figure"] == str(tmp_path / "fig" / "knee-oa-tens.png") and (tmp_path / "fig" / "knee-oa-tens.png").stat().st_size > 0
    s = d["session"]
    assert (s["program"], s["device"], s["state"], s["error"]) == ("knee-oa-tens", "sim", "completed", None)
    assert 30.0 <= s["session_s"] < 30.2
    # pulses: the program's rate over the session (ramps included), less the first pulse's wait
    rate_hz = es.load_program("knee-oa-tens").channels[0].stimulus.pulse.frequency_hz
    assert 0.99 * rate_hz * s["session_s"] <= s["pulses_delivered"] <= rate_hz * s["session_s"] + 1
    assert set(s["charge_delivered_uc"]) == {"knee-1"} and s["charge_delivered_uc"]["knee-1"] > 0
    with Store.open(db) as store:
        log = store.get_session(s["session_id"])
        assert s["db"] == store.url
    assert log.state == "completed" and log.program_id == "knee-oa-tens" and log.device == "sim"
    # the start, every event of the session, the end
    assert log.event_count == s["events"] + 2 and [e.seq for e in log.events] == list(range(1, log.event_count + 1))
    assert log.summary["pulses_delivered"] == s["pulses_delivered"]


def test_demo_prints_the_assessment_and_the_session(tmp_path):
    db = str(tmp_path / "demo.sqlite")
    r = demo("-o", str(tmp_path), "--db", db)
    assert r.exit_code == 0, r.output
    text = r.stdout.replace("\n", "")  # lines the console wrapped, joined
    assert "OK" in text and "Dose at the highest amplitude" in text and f"wrote {tmp_path / 'knee-oa-tens.png'}" in text
    assert re.search(r"session completed: 60\.0 s of session time on the simulated stimulator, [1-9]\d* pulses", text)
    assert "charge delivered: knee-1 " in text and " µC" in text
    assert "recorded as session 1 (" in text and f"see it with: electrostim sessions show 1 --db {db}" in text
    r = demo("-o", str(tmp_path), "--db", db, "--duration-s", "5")  # a second session in the same store
    assert r.exit_code == 0 and "recorded as session 2 (" in r.stdout.replace("\n", "")
    with Store.open(db) as store:
        assert [x.state for x in store.list_sessions()] == ["completed", "completed"]


def test_demo_refuses_a_bad_duration_without_recording(tmp_path):
    db = tmp_path / "demo.sqlite"
    r = demo("-o", str(tmp_path), "--db", str(db), "--duration-s", "0")
    assert r.exit_code == 2 and "Invalid value for '--duration-s': allowed a finite number from 0.01 s up to the program's session length, but got 0.0." in r.output
    assert "Traceback" not in r.output and not db.exists() and not (tmp_path / "knee-oa-tens.png").exists()


def test_demo_refuses_a_db_that_cannot_be_a_store_before_making_anything(tmp_path):
    (tmp_path / "notes.txt").write_text("my notes\n")
    for db in (str(tmp_path), str(tmp_path / "notes.txt"), "mysql://host/db"):
        r = demo("-o", str(tmp_path / "fig"), "--db", db)
        assert r.exit_code == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r.output
        assert r.stderr.startswith("error: ") and "Traceback" not in r.output
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no folder, no figure
