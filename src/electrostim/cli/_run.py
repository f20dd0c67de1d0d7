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
from ._app import EXIT_REFUSED, _emit_json, _guard, _load, _print_assessment, app, out

KEYS_HELP = ("up/down: intensity · tab: next channel · s/m/p: mark the sensory/motor/pain threshold · "
             "space: pause/resume · e or Esc: stop")
_MARKS = {"mark-s": "sensory", "mark-m": "motor", "mark-p": "pain"}


DEVICE_HELP = "stimulator: sim (simulated), rehastim2:PORT or p24:PORT (a serial port, or the port `electrostim emulate` prints)"


def _device(spec: str):
    """The stimulator for a ``--device`` value: ``sim``, ``rehastim2:PORT`` or ``p24:PORT``."""
    from .. import devices

    if spec == "sim":
        return devices.SimulatedStimulator()
    kind, _, port = spec.partition(":")
    drivers = {"rehastim2": devices.RehaStim2, "p24": devices.P24}
    if kind not in drivers or not port:
        raise InvalidInputError(f"Invalid value for '--device': allowed 'sim', 'rehastim2:PORT' or 'p24:PORT', but got {spec!r}.")
    if "://" not in port and not os.path.exists(port):
        raise InvalidInputError(f"Invalid value for '--device': the serial port {port!r} does not exist "
                                "(plug the stimulator in, or start `electrostim emulate` and use the port it prints).")
    return drivers[kind](port)


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
        if state in ("paused", "prepare", "contact-check", "done", "stopped", "failed"):
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
    """Refuse a speed or session length that is not > 0 (before anything is loaded)."""
    if speed <= 0:
        raise InvalidInputError(f"Invalid value for '--speed': allowed > 0, but got {speed!r}.")
    if duration_s is not None and duration_s <= 0:
        raise InvalidInputError(f"Invalid value for '--duration-s': allowed > 0, but got {duration_s!r}.")


def _console(runner, speed: float) -> None:
    """Run the session under the live console: keys change intensity, pause, resume and stop."""
    selected = [0]
    labels = runner.labels
    phases = _Phases(runner.plan.program)
    with _raw_keys() as read, Live(_view(runner, 0, phases), refresh_per_second=10, console=out) as live:
        def tick(r):
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

        runner.run(step_s=0.05, speed=speed, tick=tick)


def deliver(plan, dev, device: str, *, duration_s: float | None = None, speed: float = 1.0, db: str | None = None,
            interactive: bool = False) -> dict[str, Any]:
    """Deliver an approved plan on a stimulator and record every event in the store as it happens.

    Sessions left running by a process that died are marked interrupted first. The
    session ends in the store as completed, stopped or failed, also when delivery is
    interrupted (Ctrl-C stops the stimulator at once).

    Parameters
    ----------
    plan : ApprovedPlan
        From ``assess(...).approve()``.
    dev : Stimulator
        The stimulator, not yet connected (from ``_device(device)``).
    device : str
        The ``--device`` text, recorded with the session.
    duration_s : float, optional
        Session length, s; by default the program's.
    speed : float
        Times faster than real time (a simulated stimulator only); ``inf``: as fast as it computes.
    db : str, optional
        Database URL or SQLite file; by default the user's data folder.
    interactive : bool
        Run under the live console (a terminal) instead of scripted.

    Returns
    -------
    dict
        ``program``, ``device``, ``session_id``, the runner's summary (``state``,
        ``session_s``, ``run_s``, ``thresholds_ma``, ``pulses_delivered``, ``error``,
        ``charge_delivered_uc`` where the stimulator counts it), ``events`` (how many were
        recorded) and ``db`` (where, password hidden).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import electrostim as es
    >>> plan = es.assess(es.load_program("knee-oa-tens")).approve()
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     s = deliver(plan, _device("sim"), "sim", duration_s=10, speed=float("inf"), db=str(pathlib.Path(folder) / "s.db"))
    >>> s["state"], round(s["session_s"]), s["pulses_delivered"] > 0, s["session_id"]
    ('done', 10, True, 1)
    """
    from ..session import Runner
    from ..store import Store

    store = Store.open(db)
    store.mark_interrupted()
    dev.connect()  # a stimulator that cannot be reached leaves no session behind
    try:
        dev.configure(plan)
        plan_rec = store.record_plan(plan)
        record = store.start_session(plan_rec.id, device)
    except BaseException:
        dev.close()
        store.close()
        raise
    kinds = {"contact": "note", "target": "intensity"}
    events: list[tuple[str, dict]] = []

    def on_event(kind: str, payload: dict) -> None:
        events.append((kind, payload))
        store.append_event(record.id, kinds.get(kind, kind), payload, output=payload.get("output"))

    runner = Runner(dev, duration_s=duration_s, on_event=on_event)
    try:
        if interactive:
            _console(runner, speed)
        else:
            runner.run(step_s=0.05, speed=speed)
    except KeyboardInterrupt:
        runner.emergency_stop("interrupted")
    finally:
        dev.close()
        final = {"done": "completed", "stopped": "stopped", "failed": "failed"}.get(runner.state.value, "stopped")
        store.end_session(record.id, final, runner.summary())
        store.close()
    return {"program": plan.program.id, "device": device, "session_id": record.id, **runner.summary(),
            "events": len(events), "db": store.url}


@app.command()
@_guard
def run(
    ref: Annotated[str, typer.Argument(metavar="ID|FILE", help="preset id, user-program id, or path to a program .toml")],
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "sim",
    patient: Annotated[Path | None, typer.Option("--patient", help="patient profile .toml")] = None,
    site: Annotated[str | None, typer.Option("--site", help="put every pad on this body site")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="confirm a plan that needs confirmation, and run without the console")] = False,
    duration_s: Annotated[float | None, typer.Option("--duration-s", help="session length, s (default: the program's)")] = None,
    speed: Annotated[float, typer.Option("--speed", help="run the simulated stimulator this many times faster than real time")] = 1.0,
    db: Annotated[str | None, typer.Option("--db", help="database URL or SQLite file (default: the user data folder)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="print the session summary as JSON")] = False,
) -> None:
    """Check a program, then deliver it: a live console (keys change intensity, pause, stop), or with --yes a scripted run.

    Every state change, intensity change, mark and error is recorded as it happens.
    """
    from ..anatomy import get_site
    from ..program import load_patient_file
    from ..safety import assess

    _check_timing(speed, duration_s)
    if speed != 1.0 and device != "sim":
        raise InvalidInputError(f"Invalid value for '--speed': a stimulator on a serial port runs in real time (1), but got {speed!r}.")
    program = _load(ref)
    if site:
        get_site(site)
        program = program.with_changes(site=site)
    pat = load_patient_file(patient) if patient else None
    dev = _device(device)
    a = assess(program, patient=pat, device=dev.profile.id)
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
    summary = deliver(plan, dev, device, duration_s=duration_s, speed=speed, db=db, interactive=interactive)
    if json_:
        _emit_json({"assessment": a.to_dict(), "session": summary})
    else:
        out.print(f"session {summary['state']}: {summary['session_s']:.1f} s, {summary['pulses_delivered']} pulses"
                  + (f", error: {summary['error']}" if summary["error"] else ""))
    if summary["state"] == "failed":
        raise typer.Exit(1)
