"""The live console of ``electrostim run`` on a terminal: keys change intensity, pause, resume and stop."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from electrostim.store import Store

pty = pytest.importorskip("pty")

UP, DOWN, SPACE = b"\x1b[A", b"\x1b[B", b" "


def console_session(db: Path, keys: list[tuple[float, bytes]]) -> tuple[int, str]:
    """Run ``electrostim run knee-oa-tens`` on a pseudo-terminal, typing ``keys`` (delay before each, bytes)."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "electrostim", "run", "knee-oa-tens", "--duration-s", "120",
                             "--db", str(db)], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    screen = bytearray()

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            screen.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while b"s left" not in screen:  # the console is up
            assert proc.poll() is None and time.monotonic() < deadline, screen.decode(errors="replace")
            time.sleep(0.05)
        for delay, key in keys:
            time.sleep(delay)
            os.write(master, key)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=2)
        os.close(master)
    return code, screen.decode(errors="replace")


@pytest.mark.parametrize("stop_key", [b"e", b"\x1b"], ids=["e", "esc"])
def test_keys_change_intensity_pause_resume_and_stop(tmp_path: Path, stop_key: bytes):
    db = tmp_path / "s.db"
    keys = [(0.3, UP), (0.1, UP), (0.1, UP), (0.1, DOWN), (0.3, b"s"), (0.1, b"m"), (0.2, SPACE), (0.5, SPACE),
            (0.3, stop_key)]
    code, screen = console_session(db, keys)
    assert code == 0, screen
    assert "Traceback" not in screen and "knee-1" in screen
    assert "phase" in screen and "ramp" in screen and "s left" in screen
    with Store.open(str(db)) as store:
        (summary,) = store.list_sessions()
        log = store.get_session(summary.id)
    assert log.state == "stopped"
    targets = [e.payload["target_ma"] for e in log.events if e.kind == "intensity" and "target_ma" in e.payload]
    start = 15.0  # knee-oa-tens' default amplitude: the ramp's target
    assert targets[:5] == [start, start + 1, start + 2, start + 3, start + 2]
    states = [e.payload["state"] for e in log.events if e.kind == "state"]
    paused = states.index("paused")
    assert states[paused + 1] in ("ramp-up", "run")  # resumed where it was
    assert states[-1] == "stopped" and states.count("stopped") == 1  # recorded once, by the store's ending
    stop = [e for e in log.events if e.kind == "state" and e.payload["state"] == "stopped"][0]
    assert stop.payload["reason"] == "stopped by the user"
    marks = [(e.payload["kind"], e.payload["intensity_ma"]) for e in log.events if e.kind == "threshold"]
    assert [kind for kind, _ in marks] == ["sensory", "motor"]
    assert all(0 < ma <= start + 3 for _, ma in marks) and marks[0][1] <= marks[1][1]  # marked as the ramp rose
    assert log.summary["thresholds_ma"]["knee-1"] == dict(marks)
    # nothing was delivered after the stop
    after = [e for e in log.events if e.seq > stop.seq and e.kind == "intensity"]
    assert after == []


def test_the_phase_column_follows_ramps_and_the_duty_cycle():
    import electrostim as es
    from electrostim.cli._run import _Phases
    from electrostim.devices import SimulatedStimulator
    from electrostim.session import Runner

    plan = es.assess(es.load_program("nmes-quadriceps-tka")).approve()  # 3 s ramp up, 15 s on (1 s down), 45 s off
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    r = Runner(dev, slew_ma_per_s=1000.0)
    phases = _Phases(plan.program)
    r.run(step_s=0.05, speed=float("inf"), until_s=0.5)
    label = r.labels[0]
    assert phases(r, 1.0)[label] == "ramp"
    r.run(step_s=0.05, speed=float("inf"), until_s=1.0)
    assert r.state.value == "run"
    assert phases(r, 1.5)[label] == "ramp"  # the contraction's own ramp up
    assert phases(r, 8.0)[label] == "on"
    assert phases(r, 30.0)[label] == "off"
    r.pause()
    assert set(phases(r, 8.0).values()) == {"paused"}
