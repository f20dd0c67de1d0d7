"""``electrostim run``: check a program, deliver it on a stimulator, and show or print the session."""

from __future__ import annotations

import contextlib
import os
import select
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from ..errors import InvalidInputError
from ._app import EXIT_REFUSED, _emit_json, _guard, _load, _print_assessment, app, err, out

KEYS_HELP = ("up/down: intensity · tab: next channel · s/m/p: mark the sensory/motor/pain threshold · "
             "space: pause/resume · e or Esc: stop")
_MARKS = {"mark-s": "sensory", "mark-m": "motor", "mark-p": "pain"}


def _device_help() -> str:
    from ..devices import backend_help  # the backend table only: no driver is loaded

    return "stimulator: " + backend_help() + "; PORT is a serial port, or the port `electrostim emulate` prints"


@contextlib.contextmanager
def _raw_keys():
    """Read single keys without echo while the console runs (a no-op when stdin is not a terminal)."""
    if not sys.stdin.isatty():
        yield lambda: None
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def read():
        if not select.select([sys.stdin], [], [], 0)[0]:
            return None
        ch = os.read(fd, 1)
        if ch == b"\x1b":
            if select.select([sys.stdin], [], [], 0.01)[0]:
                seq = os.read(fd, 2)
                return {b"[A": "up", b"[B": "down"}.get(seq, "other")
            return "esc"
        return {b" ": "space", b"\t": "tab", b"e": "stop", b"E": "stop", b"q": "stop",
                b"s": "mark-s", b"m": "mark-m", b"p": "mark-p"}.get(ch, "other")

    try:
        yield read
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


class _Phases:
    """Each output's phase now: ``on``, ``off`` (the duty cycle's rest), ``ramp`` or ``paused``."""

    def __init__(self, program):
        from ..waveform import Schedule

        self.schedule = Schedule(program, amplitude_ma={c.label: 1.0 for c in program.channels})  # unit amplitude

    def __call__(self, runner, t_s: float) -> dict[str, str]:
        """Phase by output label at device time ``t_s``."""
        labels = [o.label for o in self.schedule.outputs]
        state = runner.state.value
        if state in ("paused", "prepare", "contact-check", "completed", "stopped", "failed"):
            return dict.fromkeys(labels, "paused" if state == "paused" else "—")
        phases = {}
        for label, (level, _) in zip(labels, self.schedule.levels_at(t_s)):
            ramping = state in ("ramp-up", "ramp-down") or 0.0 < level < 0.999
            phases[label] = "off" if level == 0.0 else "ramp" if ramping else "on"
        return phases


def _contact(status, label: str) -> str:
    z = status.impedance_ohm.get(label)
    if z is not None:
        return f"{z:.0f} Ω"
    return "error" if status.state.value == "fault" else "ok (device checks)"


def _view(runner, selected: int, phases: _Phases) -> Table:
    t = Table(title=f"{runner.plan.program.name} — {runner.state.value}, {max(0.0, runner.duration_s - runner.run_t):.0f} s left",
              caption=KEYS_HELP, title_justify="left")
    for col in ("", "channel", "phase", "intensity mA", "target mA", "max mA", "thresholds mA", "contact"):
        t.add_column(col)
    st = runner.device.status()
    now = phases(runner, st.time_s)
    for i, env in enumerate(runner.plan.envelope.outputs):
        t.add_row("▶" if i == selected else "", env.label, now.get(env.label, "—"), f"{runner.level[env.label]:.1f}",
                  f"{runner.target[env.label]:.1f}", f"{env.max_amplitude_ma:g}",
                  " ".join(f"{kind[0]} {ma:.1f}" for kind, ma in runner.thresholds[env.label].items()) or "—",
                  _contact(st, env.label))
    return t


def _check_timing(speed: float, duration_s: float | None) -> None:
    """Refuse a speed or session length that is not a finite number in range (before anything is loaded)."""
    from ..session import MIN_DURATION_S, check_number
    from ..session._deliver import MAX_SPEED, MIN_SPEED

    check_number("--speed", speed, low=MIN_SPEED, high=MAX_SPEED, low_open=False)
    if duration_s is not None:
        check_number("--duration-s", duration_s, low=MIN_DURATION_S, high=24 * 3600.0, low_open=False)


def _console_tick(read, live, phases):
    """The live console's tick: keys change intensity, pause, resume and stop; the view redraws."""
    selected = [0]

    def tick(r):
        labels = r.labels
        key = read()
        if key in ("up", "down"):
            try:
                r.nudge(labels[selected[0]], 1.0 if key == "up" else -1.0)
            except Exception:  # noqa: BLE001 - the envelope refused it; the view shows the target
                pass
        elif key in _MARKS and r.state.value in ("ramp-up", "run", "ramp-down", "paused"):
            r.mark_threshold(labels[selected[0]], _MARKS[key])
        elif key == "tab":
            selected[0] = (selected[0] + 1) % len(labels)
        elif key == "space":
            r.pause() if r.state.value != "paused" else r.resume()
        elif key in ("stop", "esc"):
            r.emergency_stop("stopped by the user")
        live.update(_view(r, selected[0], phases))

    return tick


def _deliver(plan, spec: str, *, duration_s, speed, db, interactive: bool):
    """Deliver through the library (session.deliver), under the live console when interactive."""
    from ..session import deliver

    if not interactive:
        return deliver(plan, spec, db, duration_s=duration_s, speed=speed, device=spec)
    phases = _Phases(plan.program)
    with _raw_keys() as read, Live(f"{plan.program.name}: connecting…", refresh_per_second=10, console=out) as live:
        return deliver(plan, spec, db, duration_s=duration_s, speed=speed, device=spec,
                       on_tick=_console_tick(read, live, phases))


def _print_result(result) -> None:
    s = result.summary
    line = (f"session {result.session_id} {result.end_state}: {s['run_s']:.1f} s delivered, "
            f"{s['pulses_delivered']} pulses")
    charge = s.get("charge_delivered_uc") or {}
    if charge:
        line += "; charge " + ", ".join(f"{k} {v:.0f} µC" for k, v in charge.items())
    out.print(line)
    if result.signal:
        out.print(f"ended by {result.signal}: output zeroed, session recorded as {result.end_state}")
    if result.error:
        out.print(f"error: {result.error}")
    if result.record_error:
        err.out(f"error: {result.record_error}")


@app.command()
@_guard
def run(
    ref: Annotated[str, typer.Argument(metavar="ID|FILE", help="preset id, user-program id, or path to a program .toml")],
    device: Annotated[str, typer.Option("--device", help=_device_help())] = "sim",
    patient: Annotated[Path | None, typer.Option("--patient", help="patient profile .toml")] = None,
    site: Annotated[str | None, typer.Option("--site", help="put every pad on this body site")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="confirm a plan that needs confirmation, and run without the console")] = False,
    duration_s: Annotated[float | None, typer.Option("--duration-s", help="session length, s: 0.01 <= X <= the program's (default: the program's)")] = None,
    speed: Annotated[float, typer.Option("--speed", help="run the simulated stimulator this many times faster than real time (0.01 <= X <= 1e6)")] = 1.0,
    db: Annotated[str | None, typer.Option("--db", help="database URL or SQLite file (default: the user data folder)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="print the session summary as JSON")] = False,
) -> None:
    """Check a program, then deliver it: a live console (keys change intensity, pause, stop), or with --yes a scripted run.

    Every state change, intensity change, mark and error is recorded as it happens.
    Exit code: 0 completed or stopped, 1 refused or failed, 2 bad input, 3 needs
    confirmation; a signal ends the session (output zero first, then the record) with
    128 + its number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
    """
    from ..anatomy import get_site
    from ..program import load_patient_file
    from ..safety import assess
    from ..session import parse_backend

    _check_timing(speed, duration_s)
    backend, _ = parse_backend(device)
    if speed != 1.0 and backend.needs_port:
        raise InvalidInputError(f"Invalid value for '--speed': a stimulator on a serial port runs in real time (1), but got {speed!r}.")
    program = _load(ref)
    if duration_s is not None and duration_s > program.session_duration_s:
        raise InvalidInputError(f"Invalid value for '--duration-s': allowed 0.01 <= X <= {program.session_duration_s:g} s "
                                f"(the program's session), but got {duration_s!r}.")
    if site:
        get_site(site)
        program = program.with_changes(site=site)
    pat = load_patient_file(patient) if patient else None
    a = assess(program, patient=pat, device=backend.profile)
    if a.verdict == "refused":
        if json_:
            _emit_json({"assessment": a.to_dict(), "session": None})
        else:
            _print_assessment(a)
        raise typer.Exit(EXIT_REFUSED)
    confirm = a.verdict == "needs_confirmation"
    if confirm and not yes:
        if not sys.stdin.isatty():
            raise InvalidInputError("The plan needs confirmation: read the reasons (electrostim check) and pass --yes.")
        _print_assessment(a)
        if not typer.confirm("Confirm this plan and start?"):
            raise typer.Exit(EXIT_REFUSED)
    plan = a.approve(confirm=confirm, confirmed_by="command line" if confirm else None)
    interactive = not yes and sys.stdin.isatty() and sys.stdout.isatty() and not json_
    result = _deliver(plan, device, duration_s=duration_s, speed=speed, db=db, interactive=interactive)
    if json_:
        _emit_json({"assessment": a.to_dict(), "session": result.to_dict()})
    else:
        _print_result(result)
    if result.exit_code:
        raise typer.Exit(result.exit_code)
