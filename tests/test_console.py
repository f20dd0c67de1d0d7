"""The live console of ``electrostim run`` on a terminal: keys change intensity, pause, resume and stop."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from electrostim.store import Store

pty = pytest.importorskip("pty")

UP, DOWN, SPACE = b"\x1b[A", b"\x1b[B", b" "


class Terminal:
    """``electrostim ARGS`` on a pseudo-terminal of ``columns`` columns: what it shows, and keys typed into it."""

    def __init__(self, args: list[str], columns: int = 120):
        self.master, slave = pty.openpty()
        env = {**os.environ, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm"}
        self.proc = subprocess.Popen([sys.executable, "-m", "electrostim", *args], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.screen = bytearray()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            self.screen.extend(data)

    def wait_for(self, text: bytes, timeout_s: float = 30.0) -> None:
        """Wait until the screen shows ``text`` (the process still running)."""
        deadline = time.monotonic() + timeout_s
        while text not in self.screen:
            assert self.proc.poll() is None and time.monotonic() < deadline, self.text
            time.sleep(0.05)

    def type(self, key: bytes) -> None:
        os.write(self.master, key)

    @property
    def text(self) -> str:
        return self.screen.decode(errors="replace")

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=2)
        os.close(self.master)


def console_session(db: Path, keys: list[tuple[float, bytes]]) -> tuple[int, str]:
    """Run ``electrostim run knee-oa-tens`` on a pseudo-terminal, typing ``keys`` (delay before each, bytes)."""
    with Terminal(["run", "knee-oa-tens", "--duration-s", "120", "--db", str(db)]) as term:
        term.wait_for(b"s left")  # the console is up
        for delay, key in keys:
            time.sleep(delay)
            term.type(key)
        code = term.proc.wait(timeout=30)
    return code, term.text


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
    from electrostim.cli._run import console_phase, output_phase
    from electrostim.devices import SimulatedStimulator
    from electrostim.session import Runner

    plan = es.assess(es.load_program("nmes-quadriceps-tka")).approve()  # 3 s ramp up, 15 s on (1 s down), 45 s off
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    r = Runner(dev)
    program = plan.program
    label = r.labels[0]

    def phase(t):
        return console_phase(r.state.value, output_phase(program, label, t).phase)

    r.run(step_s=0.05, speed=float("inf"), until_s=1.0)
    assert r.state.value == "run"  # the program ramps itself: the session is at its starting intensity at once
    assert phase(1.5) == "ramp"  # the contraction's own ramp up
    assert phase(8.0) == "on"
    assert phase(14.5) == "ramp"  # its ramp down
    assert phase(30.0) == "off"
    r.pause()
    assert phase(8.0) == "paused"


# --------------------------------------------------------------------------- the view's pure functions


def test_the_view_shows_off_a_contraction_count_and_countdowns():
    import electrostim as es
    from electrostim.cli._run import OutputPhase, console_row, console_title, output_phase

    p = es.load_program("nmes-quadriceps-tka")  # cycles of 15 s on, 45 s off
    assert output_phase(p, "quadriceps", 0.0) == OutputPhase("ramp", 0, 15.0)
    assert output_phase(p, "quadriceps", 8.0) == OutputPhase("on", 0, 7.0)
    assert output_phase(p, "quadriceps", 15.0) == OutputPhase("off", 1, 45.0)
    assert output_phase(p, "quadriceps", 130.0) == OutputPhase("on", 2, 5.0)
    assert output_phase(p, "quadriceps", 200.0) == OutputPhase("off", 4, 40.0)
    common = dict(label="quadriceps", selected=False, level_ma=30.0, target_ma=32.0, max_ma=60.0, thresholds={},
                  contact="505 Ω")
    off = console_row(state="run", where=output_phase(p, "quadriceps", 200.0), session_left_s=600.0, **common)
    on = console_row(state="run", where=output_phase(p, "quadriceps", 130.0), session_left_s=600.0, **common)
    assert off == ("", "quadriceps", "off", "off", "32.0", "60", "4", "on in 40 s", "—", "505 Ω")  # not 30 mA: off
    assert on == ("", "quadriceps", "on", "30.0", "32.0", "60", "2", "off in 5 s", "—", "505 Ω")
    last = console_row(state="run", where=output_phase(p, "quadriceps", 200.0), session_left_s=12.0, **common)
    assert last[7] == "session ends"  # the countdown never runs past the session's end
    paused = console_row(state="paused", where=output_phase(p, "quadriceps", 200.0), session_left_s=600.0, **common)
    assert paused[2:4] == ("paused", "30.0")
    tens = console_row(state="run", where=output_phase(es.load_program("knee-oa-tens"), "knee-1", 100.0),
                       session_left_s=600.0, **{**common, "label": "knee-1"})
    assert tens[2:4] == ("on", "30.0") and tens[6:8] == ("—", "—")  # no duty cycle: no count, no countdown
    assert console_title("NMES", "run", 754.2) == "NMES — run, 754 s left (12:34)"
    assert console_title("NMES", "completed", -1.0) == "NMES — completed, 0 s left (0:00)"


@settings(max_examples=200, deadline=None)
@given(pid=st.sampled_from(["nmes-quadriceps-tka", "nmes-atrophy", "circulation", "russian-current",
                            "edema-muscle-pump"]), t=st.floats(0.0, 1200.0))
def test_property_phase_count_and_countdown_agree_with_the_program(pid, t):
    """At any moment: the phase is the program envelope's, the count is the on phases that ended before, and the
    countdown reaches the next change of on/off."""
    import numpy as np

    import electrostim as es
    from electrostim.cli._run import output_phase
    from electrostim.waveform._timing import duty_envelope

    p = es.load_program(pid)
    o = p.outputs[0]
    st_ = o.stimulus
    dc = st_.duty_cycle

    def env(x):
        return float(duty_envelope(np.array([x]), session_s=p.session_duration_s, ramp_up_s=st_.ramp_up_s,
                                   ramp_down_s=st_.ramp_down_s, on_s=dc.on_s, off_s=dc.off_s, offset_s=0.0,
                                   periodic_offset=False)[0])

    t = min(t, p.session_duration_s)
    where = output_phase(p, o.label, t)
    pos = t % dc.cycle_s
    assume(min(abs(pos - dc.on_s), pos, dc.cycle_s - pos) > 1e-5)  # not on a change of on/off itself
    assert (where.phase == "off") == (env(t) == 0.0 and env(t + 1e-6) == 0.0)  # on: rising, full, or falling
    ends = [k * dc.cycle_s + dc.on_s for k in range(int(t // dc.cycle_s) + 2)]
    assert where.contractions == sum(1 for e in ends if e <= t)
    assert 0.0 < where.phase_left_s <= max(dc.on_s, dc.off_s)
    change = t + where.phase_left_s
    is_on = where.phase != "off"
    before, after = change - 1e-6, change + 1e-6
    if where.phase_left_s > 2e-6:
        assert (output_phase(p, o.label, before).phase != "off") == is_on
    assert (output_phase(p, o.label, after).phase != "off") != is_on


def test_on_a_terminal_a_plan_with_precautions_asks_who_confirms(tmp_path: Path):
    """The console path: the assessment with every precaution, a question, and the name of who confirms, recorded."""
    db = tmp_path / "s.db"
    patient = tmp_path / "p.toml"
    patient.write_text('id = "P-9"\nconditions = ["recent-surgery", "metal-implant"]\n')
    with Terminal(["run", "nmes-quadriceps-tka", "--patient", str(patient), "--duration-s", "60", "--db", str(db)],
                  columns=160) as term:
        term.wait_for(b"Confirm this plan and start?")
        term.type(b"y\r")
        term.wait_for(b"Confirmed by")
        term.type(b"Dr A. Lee\r")
        term.wait_for(b"s left")
        term.wait_for(b"contractions")
        time.sleep(0.5)
        term.type(b"e")
        code = term.proc.wait(timeout=30)
    text = term.text
    assert code == 0, text
    assert "p.recent-surgery" in text and "p.metal-implant" in text  # the assessment showed both precautions
    assert "confirmed by Dr A. Lee" in text and "stopped: stopped by the user" in text
    with Store.open(str(db), readonly=True) as store:
        (session,) = store.list_sessions()
    assert (session.verdict, session.confirmed_by, session.state) == ("needs_confirmation", "Dr A. Lee", "stopped")


def test_the_console_shows_the_program_phase_running(tmp_path: Path):
    """A multi-phase program: the title names the phase and the time left in it, phase after phase."""
    with Terminal(["run", "ems-strength-phases", "--speed", "60", "--duration-s", "330", "--db",
                   str(tmp_path / "s.db")], columns=250) as term:
        term.wait_for(b"phase 1/3 'warm-up'")
        term.wait_for(b"phase 2/3 'work'")
        term.type(b"e")
        code = term.proc.wait(timeout=30)
    assert code == 0, term.text
    assert "left in it" in term.text
