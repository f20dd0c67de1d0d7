"""``electrostim run --device rehastim2:PORT|p24:PORT`` and ``electrostim emulate``, end to end in separate processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from electrostim.devices import P24Emulator, RehaStim2Emulator, Sm2Init, sm2_decode
from electrostim.store import Store

from .conftest import first_line

CLI = [sys.executable, "-m", "electrostim"]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("spec, needle", [
    ("rehastim", "allowed 'sim', 'rehastim2:PORT', 'p24:PORT'"),
    ("rehastim2:", "allowed 'sim', 'rehastim2:PORT', 'p24:PORT'"),
    ("p24:/dev/no-such-port", "'/dev/no-such-port' does not exist"),
])
def test_a_bad_device_is_bad_input(spec: str, needle: str, tmp_path: Path):
    r = cli("run", "knee-oa-tens", "--device", spec, "--yes", "--db", str(tmp_path / "s.db"))
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s.db").exists() or Store.open(str(tmp_path / "s.db")).list_sessions() == []


def test_only_the_simulated_stimulator_runs_faster_than_real_time(tmp_path: Path):
    with RehaStim2Emulator() as emu:
        r = cli("run", "tens-conventional", "--device", f"rehastim2:{emu.port}", "--yes", "--speed", "10",
                "--db", str(tmp_path / "s.db"))
    assert r.returncode == 2 and "runs in real time" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind, emulator", [("rehastim2", RehaStim2Emulator), ("p24", P24Emulator)])
def test_a_session_on_an_emulated_stimulator_is_delivered_and_recorded(kind: str, emulator, tmp_path: Path):
    db = tmp_path / "s.db"
    with emulator() as emu:
        r = cli("run", "tens-conventional", "--device", f"{kind}:{emu.port}", "--yes", "--confirmed-by", "test",
                "--duration-s", "12", "--db", str(db), "--json")
        log = list(emu.output_log)
    assert r.returncode == 0, r.stderr
    session = json.loads(r.stdout)["session"]
    assert session["state"] == "completed" and session["error"] is None and session["pulses_delivered"] > 0
    assert set(session["charge_delivered_uc"]) == {"low-back-left", "low-back-right"}
    assert all(q > 0 for q in session["charge_delivered_uc"].values())
    # the device carried current during the session, never above the envelope, and none at the end
    currents = [o.current_ma for _, outs in log for o in outs.values()]
    assert currents and 0 < max(currents) <= 50.0
    assert log[-1][1] == {}
    with Store.open(str(db)) as store:
        rec = store.get_session(session["session_id"])
        assert rec.state == "completed" and rec.device == f"{kind}:{emu.port}"
        assert [e.seq for e in rec.events] == list(range(1, len(rec.events) + 1))
        states = [e.payload["state"] for e in rec.events if e.kind == "state"]
        assert states == ["running", "prepare", "contact-check", "ramp-up", "run", "ramp-down", "completed"]


def test_a_stimulator_that_does_not_answer_leaves_no_session(tmp_path: Path):
    db = tmp_path / "s.db"
    with RehaStim2Emulator() as emu:
        emu.go_silent()  # never sends Init
        r = cli("run", "tens-conventional", "--device", f"rehastim2:{emu.port}", "--yes", "--confirmed-by", "test",
                "--db", str(db))
    assert r.returncode == 1 and "no Init from a RehaStim2" in r.stderr and "Traceback" not in r.stderr
    with Store.open(str(db)) as store:
        assert store.list_sessions() == []


def test_emulate_prints_its_port_and_serves_it():
    import serial

    proc = subprocess.Popen([*CLI, "emulate", "rehastim2", "--json", "--duration-s", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(first_line(proc))
        assert first["device"] == "rehastim2"
        with serial.Serial(first["port"], 460_800, parity="E", timeout=0.05) as port:
            port.reset_input_buffer()
            t0 = time.monotonic()
            data = b""
            while data.count(b"\x0f") < 2 and time.monotonic() - t0 < 3:
                data += port.read(64)
        frames = [f + b"\x0f" for f in data.split(b"\x0f") if f.startswith(b"\xf0")]
        assert len(frames) >= 2  # Init, repeated until acknowledged
        assert all(isinstance(sm2_decode(f).message, Sm2Init) for f in frames)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_emulate_refuses_bad_options():
    for value in ("-1", "nan", "inf", "1e308"):
        r = cli("emulate", "rehastim2", "--response-delay-ms", value)
        assert r.returncode == 2 and "'--response-delay-ms': allowed a finite number 0 <= x <= 1000" in r.stderr, value
    for value in ("0", "nan", "inf", "-5", "1e12"):
        r = cli("emulate", "p24", "--duration-s", value)
        assert r.returncode == 2 and "'--duration-s': allowed a finite number 0 < x" in r.stderr, value
    r = cli("emulate", "rehastim3")
    assert r.returncode == 2
