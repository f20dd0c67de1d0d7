"""``electrostim run``: check a program, deliver it on a stimulator, and show or print the session."""

from __future__ import annotations

import contextlib
import os
import select
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from ..errors import InvalidInputError
from ._app import EXIT_REFUSED, _emit_json, _guard, _load, _print_assessment, app, out

KEYS_HELP = "up/down: intensity · tab: next channel · space: pause/resume · e or Esc: stop"


def _device(spec: str):
    from ..devices import SimulatedStimulator

    if spec == "sim":
        return SimulatedStimulator()
    raise InvalidInputError(f"Invalid value for '--device': allowed 'sim' (serial drivers are not in this version), but got {spec!r}.")


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
        return {b" ": "space", b"\t": "tab", b"e": "stop", b"E": "stop", b"q": "stop"}.get(ch, "other")

    try:
        yield read
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _view(runner, selected: int) -> Table:
    t = Table(title=f"{runner.plan.program.name} — {runner.state.value}, {max(0.0, runner.duration_s - runner.run_t):.0f} s left",
              caption=KEYS_HELP, title_justify="left")
    for col in ("", "channel", "intensity mA", "target mA", "max mA", "contact"):
        t.add_column(col)
    st = runner.device.status()
    for i, env in enumerate(runner.plan.envelope.outputs):
        z = st.impedance_ohm.get(env.label)
        t.add_row("▶" if i == selected else "", env.label, f"{runner.level[env.label]:.1f}", f"{runner.target[env.label]:.1f}",
                  f"{env.max_amplitude_ma:g}", "—" if z is None else f"{z:.0f} Ω")
    return t


@app.command()
@_guard
def run(
    ref: Annotated[str, typer.Argument(metavar="ID|FILE", help="preset id, user-program id, or path to a program .toml")],
    device: Annotated[str, typer.Option("--device", help="stimulator: sim (the simulated stimulator)")] = "sim",
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
    from ..session import Runner

    if speed <= 0:
        raise InvalidInputError(f"Invalid value for '--speed': allowed > 0, but got {speed!r}.")
    if duration_s is not None and duration_s <= 0:
        raise InvalidInputError(f"Invalid value for '--duration-s': allowed > 0, but got {duration_s!r}.")
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
    from ..store import Store

    store = Store.open(db)
    store.mark_interrupted()
    plan_rec = store.record_plan(plan)
    record = store.start_session(plan_rec.id, device)
    kinds = {"contact": "note", "target": "intensity"}
    events: list[tuple[str, dict]] = []

    def on_event(kind: str, payload: dict) -> None:
        events.append((kind, payload))
        store.append_event(record.id, kinds.get(kind, kind), payload, output=payload.get("output"))

    dev.connect()
    dev.configure(plan)
    runner = Runner(dev, duration_s=duration_s, on_event=on_event)
    interactive = not yes and sys.stdin.isatty() and sys.stdout.isatty() and not json_
    try:
        if interactive:
            selected = [0]
            labels = runner.labels
            with _raw_keys() as read, Live(_view(runner, 0), refresh_per_second=10, console=out) as live:
                def tick(r):
                    key = read()
                    if key in ("up", "down"):
                        try:
                            r.nudge(labels[selected[0]], 1.0 if key == "up" else -1.0)
                        except Exception:  # noqa: BLE001 - the envelope refused it; the view shows the target
                            pass
                    elif key == "tab":
                        selected[0] = (selected[0] + 1) % len(labels)
                    elif key == "space":
                        r.pause() if r.state.value != "paused" else r.resume()
                    elif key in ("stop", "esc"):
                        r.emergency_stop("stopped by the user")
                    live.update(_view(r, selected[0]))

                runner.run(step_s=0.05, speed=speed, tick=tick)
        else:
            runner.run(step_s=0.05, speed=speed)
    except KeyboardInterrupt:
        runner.emergency_stop("interrupted")
    finally:
        dev.close()
        final = {"done": "completed", "stopped": "stopped", "failed": "failed"}.get(runner.state.value, "stopped")
        store.end_session(record.id, final, runner.summary())
        store.close()
    summary = {"program": program.id, "device": device, "session_id": record.id, **runner.summary(), "events": len(events)}
    if json_:
        _emit_json({"assessment": a.to_dict(), "session": summary})
    else:
        out.print(f"session {summary['state']}: {summary['session_s']:.1f} s, {summary['pulses_delivered']} pulses"
                  + (f", error: {summary['error']}" if summary["error"] else ""))
    if summary["state"] == "failed":
        raise typer.Exit(1)
