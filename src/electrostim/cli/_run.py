"""``electrostim run``: check a program, deliver it on a stimulator, and show or print the session."""

from __future__ import annotations

import contextlib
import math
import os
import select
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from ..errors import InvalidInputError
from ._app import EXIT_REFUSED, _emit_json, _guard, _load, _print_assessment, app, err, out

if TYPE_CHECKING:  # loaded when a session runs
    from ..safety import ApprovedPlan
    from ..session import Runner, SessionResult

KEYS_HELP = ("up/down: intensity · tab: next channel · s/m/p: mark the sensory/motor/pain threshold · "
             "space: pause/resume · e or Esc: stop")
_MARKS = {"mark-s": "sensory", "mark-m": "motor", "mark-p": "pain"}


def _device_help() -> str:
    from ..devices import backend_help  # the backend table only: no driver is loaded

    return "stimulator: " + str(backend_help()) + "; PORT is a serial port, or the port `electrostim emulate` prints"


@contextlib.contextmanager
def _raw_keys() -> Iterator[Callable[[], str | None]]:
    """Read single keys without echo while the console runs (a no-op when stdin is not a terminal)."""
    if not sys.stdin.isatty():
        yield lambda: None
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def read() -> str | None:
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


#: the longest name ``--confirmed-by`` takes (the store keeps up to 200 characters)
MAX_CONFIRMER = 200


def check_confirmer(name: object) -> str:
    """Who confirms a plan that needs confirmation (``--confirmed-by``): one line of 1 to 200 printable characters.

    Surrounding spaces are dropped; anything else is :class:`InvalidInputError`.

    Examples
    --------
    >>> check_confirmer("  Dr A. Lee ")
    'Dr A. Lee'
    >>> check_confirmer("")
    Traceback (most recent call last):
    ...
    electrostim.errors.InvalidInputError: Invalid value for '--confirmed-by': allowed the name of the person who confirms the plan (1 to 200 printable characters on one line), but got ''.
    """
    text = name.strip() if isinstance(name, str) else ""
    if not text or len(text) > MAX_CONFIRMER or not text.isprintable():
        raise InvalidInputError(f"Invalid value for '--confirmed-by': allowed the name of the person who confirms the "
                                f"plan (1 to {MAX_CONFIRMER} printable characters on one line), but got {name!r:.300}.")
    return text


# --------------------------------------------------------------------------- the live console's view (pure)


@dataclass(frozen=True)
class OutputPhase:
    """Where an output is in its program at a moment of device time.

    Attributes
    ----------
    phase : {"on", "ramp", "off"}
        ``off``: the duty cycle's rest (or a delayed channel not started yet);
        ``ramp``: the program's ramp up or down; ``on``: full intensity.
    contractions : int or None
        On phases completed so far (None: the program has no duty cycle).
    phase_left_s : float or None
        Time left in the current on or off phase (None: no duty cycle, and started).
    """

    phase: str
    contractions: int | None
    phase_left_s: float | None


def output_phase(program: Any, label: str, t_s: float) -> OutputPhase:
    """The phase of output ``label`` of ``program`` at device time ``t_s``: on, ramp or off, contractions, time left.

    Examples
    --------
    >>> import electrostim as es
    >>> p = es.load_program("nmes-quadriceps-tka")  # 3 s ramp up, 15 s on (1 s ramp down), 45 s off
    >>> output_phase(p, "quadriceps", 1.5)
    OutputPhase(phase='ramp', contractions=0, phase_left_s=13.5)
    >>> output_phase(p, "quadriceps", 100.0)
    OutputPhase(phase='off', contractions=2, phase_left_s=20.0)
    """
    import numpy as np

    from ..waveform._timing import duty_envelope

    outputs = {o.label: o for o in program.outputs}
    if label not in outputs:
        raise InvalidInputError(f"Invalid output: allowed {', '.join(map(repr, outputs))}, but got {label!r}.")
    spans = program.phase_spans
    if len(spans) > 1:  # a multi-phase program: the phase's own program, in the phase's time
        span = next((s for s in spans if t_s < s.stop_s), spans[-1])
        where = output_phase(span.program, label, t_s - span.start_s)
        if where.contractions is None:
            return where
        before = 0
        for s in spans[: span.index]:
            done = output_phase(s.program, label, s.duration_s).contractions
            before += done or 0
        return OutputPhase(where.phase, before + where.contractions, where.phase_left_s)
    o = outputs[label]
    st = o.stimulus
    dc = st.duty_cycle
    offset = program.channel_offsets_s[o.channel_index]
    periodic = program.sequencing == "alternating"
    level = float(duty_envelope(np.array([float(t_s)]), session_s=program.session_duration_s, ramp_up_s=st.ramp_up_s,
                                ramp_down_s=st.ramp_down_s, on_s=dc.on_s if dc else None, off_s=dc.off_s if dc else 0.0,
                                offset_s=offset, periodic_offset=periodic)[0])
    lit = "ramp" if level < 0.999 else "on"  # in an on phase (or a session without a duty cycle)
    tau = t_s - offset
    if dc is None:
        return OutputPhase("off", None, -tau) if tau < 0 else OutputPhase(lit, None, None)
    cycle = dc.on_s + dc.off_s
    if tau < 0 and not periodic:  # a delayed channel not started yet
        return OutputPhase("off", 0, -tau)
    pos = tau - math.floor(tau / cycle) * cycle
    on = pos < dc.on_s
    left = dc.on_s - pos if on else cycle - pos
    first = 0 if not periodic else math.floor((-offset - dc.on_s) / cycle) + 1  # the first on phase inside the session
    done = math.floor((tau - dc.on_s) / cycle) - first + 1
    return OutputPhase(lit if on else "off", max(0, done), left)


def console_phase(state: str, program_phase: str) -> str:
    """What the phase column shows: the session's state where it decides (paused, not started or ended),
    ``ramp`` while the session ramps (except in an off phase), else the program's phase.

    Examples
    --------
    >>> console_phase("run", "off"), console_phase("ramp-down", "on"), console_phase("paused", "on")
    ('off', 'ramp', 'paused')
    """
    if state == "paused":
        return "paused"
    if state in ("prepare", "contact-check", "completed", "stopped", "failed"):
        return "—"
    if state in ("ramp-up", "ramp-down") and program_phase != "off":
        return "ramp"
    return program_phase


def console_title(program_name: str, state: str, session_left_s: float, phase: Any = None, phase_left_s: float = 0.0) -> str:
    """The console's title: the program, the session's state and the time left in the session; for a
    multi-phase program the phase running and the time left in it.

    Examples
    --------
    >>> console_title("Knee pain", "run", 754.2)
    'Knee pain — run, 754 s left (12:34)'
    >>> import electrostim as es
    >>> work = es.load_program("ems-strength-phases").phase_spans[1]
    >>> console_title("EMS", "run", 1000.0, work, 700.0)
    "EMS — run, phase 2/3 'work' (11:40 left in it), 1000 s left (16:40)"
    """
    left = max(0.0, session_left_s)
    text = f"{program_name} — {state}, "
    if phase is not None and phase.name:
        part = f" at {phase.intensity_percent:g} %" if phase.intensity_percent != 100 else ""
        text += f"phase {phase.index + 1}/{phase.count} {phase.name!r}{part} ({_clock(phase_left_s)} left in it), "
    return text + f"{left:.0f} s left ({_clock(left)})"


def _clock(seconds: float) -> str:
    s = max(0.0, seconds)
    whole = math.ceil(s - 0.5) if s >= 0.5 else 0
    return f"{whole // 60}:{whole % 60:02d}"


CONSOLE_COLUMNS = ("", "channel", "phase", "intensity mA", "target mA", "max mA", "contractions", "next",
                   "thresholds mA", "contact")


def console_row(*, label: str, selected: bool, state: str, where: OutputPhase, level_ma: float, target_ma: float,
                max_ma: float, thresholds: dict[str, float], contact: str, session_left_s: float,
                phase_percent: float = 100.0) -> tuple[str, ...]:
    """One output's row of the console (the cells of :data:`CONSOLE_COLUMNS`).

    The intensity shows ``off`` in an off phase (nothing is delivered then, whatever
    the set intensity) and in a program phase at 0 %; in a program phase at a part of
    the intensity it shows what is delivered and the part (``12.0 (60 %)``). The
    countdown is the time left in the current on or off phase (never past the
    session's end).

    Examples
    --------
    >>> console_row(label="quad", selected=True, state="run", where=OutputPhase("off", 2, 30.4), level_ma=25.0,
    ...             target_ma=25.0, max_ma=60.0, thresholds={"motor": 21.5}, contact="520 Ω", session_left_s=600.0)
    ('▶', 'quad', 'off', 'off', '25.0', '60', '2', 'on in 30 s', 'm 21.5', '520 Ω')
    """
    phase = console_phase(state, where.phase)
    if phase == "off" or phase_percent <= 0:
        intensity = "off"
    elif phase_percent < 100:
        intensity = f"{level_ma * phase_percent / 100.0:.1f} ({phase_percent:g} %)"
    else:
        intensity = f"{level_ma:.1f}"
    if where.phase_left_s is None or phase == "—":
        countdown = "—"
    else:
        left = max(0.0, min(where.phase_left_s, session_left_s))
        upcoming = "on" if where.phase == "off" else "off"
        countdown = "session ends" if left >= session_left_s else f"{upcoming} in {left:.0f} s"
    return ("▶" if selected else "", label, phase, intensity, f"{target_ma:.1f}", f"{max_ma:g}",
            "—" if where.contractions is None else str(where.contractions), countdown,
            " ".join(f"{kind[0]} {ma:.1f}" for kind, ma in thresholds.items()) or "—", contact)


def _contact(status: Any, label: str) -> str:  # a DeviceStatus (this module imports no device module)
    z = status.impedance_ohm.get(label)
    if z is not None:
        return f"{z:.0f} Ω"
    return "error" if status.state.value == "fault" else "ok (device checks)"


def _view(runner: Runner, selected: int) -> Table:
    left = runner.duration_s - runner.run_t
    phase = runner.phase if len(runner.spans) > 1 else None
    title = console_title(runner.program.name, runner.state.value, left, phase,
                          (phase.stop_s - runner.run_t) if phase is not None else 0.0)
    t = Table(title=escape(title), caption=KEYS_HELP, title_justify="left")
    for col in CONSOLE_COLUMNS:
        t.add_column(col)
    st = runner.device.status()
    program = runner.program
    for i, env in enumerate(runner.plan.envelope.outputs):
        t.add_row(*map(escape, console_row(label=env.label, selected=i == selected, state=runner.state.value,
                               where=output_phase(program, env.label, st.time_s), level_ma=runner.level[env.label],
                               target_ma=runner.target[env.label], max_ma=env.max_amplitude_ma,
                               thresholds=runner.thresholds[env.label], contact=_contact(st, env.label),
                               session_left_s=left, phase_percent=runner.phase.intensity_percent)))
    return t


def _check_timing(speed: float, duration_s: float | None, start_ramp_s: float | None = None) -> None:
    """Refuse a speed, session length or start ramp that is not a finite number in range (before anything is loaded)."""
    from ..session import MAX_START_RAMP_S, MIN_DURATION_S, check_number
    from ..session._deliver import MAX_SPEED, MIN_SPEED

    check_number("--speed", speed, low=MIN_SPEED, high=MAX_SPEED, low_open=False)
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s >= MIN_DURATION_S):
        # the top of the range is the program's session, checked once the program is loaded
        raise InvalidInputError(f"Invalid value for '--duration-s': allowed a finite number from {MIN_DURATION_S:g} s "
                                f"up to the program's session length, but got {duration_s!r}.")
    if start_ramp_s is not None:
        check_number("--start-ramp-s", start_ramp_s, low=0.0, high=MAX_START_RAMP_S, low_open=False)


def _console_tick(read: Callable[[], str | None], live: Live) -> Callable[[Runner], None]:
    """The live console's tick: keys change intensity, pause, resume and stop; the view redraws."""
    selected = [0]

    def tick(r: Runner) -> None:
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
        live.update(_view(r, selected[0]))

    return tick


def _deliver(plan: ApprovedPlan, spec: str, *, duration_s: float | None, speed: float, db: str | None, interactive: bool,
             start_ramp_s: float | None = None, end_ramp_s: float | None = None) -> SessionResult:
    """Deliver through the library (session.deliver), under the live console when interactive."""
    from ..session import deliver

    options = {k: v for k, v in (("start_ramp_s", start_ramp_s), ("ramp_s", end_ramp_s)) if v is not None} or None
    if not interactive:
        return deliver(plan, spec, db, duration_s=duration_s, speed=speed, device=spec, runner_options=options)
    with _raw_keys() as read, Live(f"{plan.program.name}: connecting…", refresh_per_second=10, console=out) as live:
        return deliver(plan, spec, db, duration_s=duration_s, speed=speed, device=spec, runner_options=options,
                       on_tick=_console_tick(read, live))


def precaution_lines(assessment: Any) -> list[str]:
    """Every precaution of an assessment (its reasons), one line each, as ``run`` shows them on stderr.

    Examples
    --------
    >>> import electrostim as es
    >>> p = es.Patient(id="P-1", conditions=["metal-implant"])
    >>> print(*precaution_lines(es.assess(es.load_program("nmes-quadriceps-tka"), p)))  # doctest: +ELLIPSIS
    precaution [p.metal-implant]: metal implant near the pads: ... (source: M: sources conflict ...)
    """
    return [f"precaution [{r.rule}]" + (f" on {r.output}" if r.output else "")
            + f": {r.message.removeprefix('precaution: ')} (source: {r.source})" for r in assessment.reasons]


def _rules(assessment: Any) -> str:
    """The rules of an assessment's precautions, each once, in order (a rule that holds several times says how
    many: ``device.rehastim2.period-step ×2``)."""
    counts: dict[str, int] = {}
    for r in assessment.reasons:
        counts[r.rule] = counts.get(r.rule, 0) + 1
    return ", ".join(rule if n == 1 else f"{rule} ×{n}" for rule, n in counts.items())


def verdict_text(assessment: Any, confirmed_by: str | None) -> str:
    """The verdict in words, with who confirmed it and the rules of its precautions.

    Examples
    --------
    >>> import electrostim as es
    >>> verdict_text(es.assess(es.load_program("knee-oa-tens")), None)
    'ok'
    """
    if assessment.verdict == "ok":
        return "ok" + (f" (approved by {confirmed_by})" if confirmed_by else "")
    rules = _rules(assessment)
    n = len(assessment.reasons)
    return (f"needs confirmation, confirmed by {confirmed_by}: {n} precaution{'s' if n != 1 else ''} ({rules})"
            if confirmed_by else f"needs confirmation: {n} precaution{'s' if n != 1 else ''} ({rules})")


def result_lines(result: Any, verdict: str, db_option: str | None = None) -> list[tuple[str, str]]:
    """What ``run`` prints when a session ends: verdict, session, how it ended, duration, charge, pulses.

    Each line is ``(what, text)``; a session that did not complete says why.
    """
    s = result.summary
    cause = s.get("reason") or result.error
    if result.signal:
        ended = f"{result.end_state}: signal {result.signal} (output zeroed first, then the record)"
    elif result.end_state == "completed":
        ended = "completed"
    else:
        ended = f"{result.end_state}: {cause or 'no cause recorded'}"
    show = f"electrostim sessions show {result.session_id}" + (f" --db {db_option}" if db_option else "")
    lines = [("verdict", verdict), ("session", f"{result.session_id}, recorded in {result.db} (see it with: {show})"),
             ("ended", ended),
             ("duration", f"{s.get('run_s', 0.0):.1f} s delivered ({s.get('session_s', 0.0):.1f} s of session time, "
                          "pauses included)"
              + (f" in {s['wall_s']:.1f} s ({s['speed_reached']:.3g}× real time)"
                 if s.get("wall_s") and abs(s.get("speed_reached", 1.0) - 1.0) > 0.05 else ""))]
    charge = s.get("charge_delivered_uc") or {}
    lines.append(("charge", ", ".join(f"{k} {v:.0f} µC" for k, v in charge.items()) if charge
                  else "not measured by this stimulator"))
    lines.append(("pulses", str(s.get("pulses_delivered", 0))))
    if result.error and result.error != cause:
        lines.append(("error", result.error))
    return lines


def _print_result(result: SessionResult, verdict: str, db_option: str | None) -> None:
    for what, text in result_lines(result, verdict, db_option):  # one line each, never wrapped
        out.print(f"[bold]{what:<9}[/] {escape(text)}", soft_wrap=True)
    if result.record_error:
        err.out(f"error: {result.record_error}")


@app.command()
@_guard
def run(
    ref: Annotated[str, typer.Argument(metavar="ID|FILE", help="preset id, user-program id, or path to a program .toml")],
    device: Annotated[str, typer.Option("--device", help=_device_help())] = "sim",
    patient: Annotated[Path | None, typer.Option("--patient", help="patient profile .toml")] = None,
    site: Annotated[str | None, typer.Option("--site", help="put every pad on this body site")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="run without the console; confirms a plan that needs "
                                                    "confirmation only together with --confirmed-by")] = False,
    confirmed_by: Annotated[str | None, typer.Option("--confirmed-by", metavar="NAME", help=(
        "who read the precautions and confirms the plan (recorded with it): needed with --yes when the plan needs "
        "confirmation; 1 to 200 characters"))] = None,
    start_ramp_s: Annotated[float | None, typer.Option("--start-ramp-s", help=(
        "the session's own ramp to the starting intensity, s: 0 <= X <= 600 (default: none where the program ramps "
        "up or has on/off cycles, whose ramps shape every contraction; a rise at 2 mA/s elsewhere)"))] = None,
    end_ramp_s: Annotated[float | None, typer.Option("--end-ramp-s", help=(
        "the session's closing ramp to zero, s: 0 <= X <= 600 (default: none where the session runs to the end of a "
        "program that ramps down itself; 3 s, at most half the session, elsewhere)"))] = None,
    duration_s: Annotated[float | None, typer.Option("--duration-s", help="session length, s: 0.01 <= X <= the program's (default: the program's)")] = None,
    speed: Annotated[float, typer.Option("--speed", help="run the simulated stimulator this many times faster than real time (0.01 <= X <= 1e6; at most as fast "
                                                     "as the computer delivers it: the summary says the speed reached)")] = 1.0,
    db: Annotated[str | None, typer.Option("--db", help="database URL or SQLite file (default: the user data folder)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="print the session summary as JSON")] = False,
) -> None:
    """Check a program, then deliver it: a live console (keys change intensity, pause, stop), or with --yes a scripted run.

    A plan that needs confirmation shows every precaution (with --yes or --json on
    stderr, and in the JSON) and needs the name of who confirms it (--confirmed-by,
    asked for on the console). Every state change, intensity change, mark and error
    is recorded as it happens. Exit code: 0 completed or stopped, 1 refused or failed,
    2 bad input (a plan that needs confirmation given --yes without --confirmed-by too);
    a signal ends the session (output zero first, then the record) with 128 + its
    number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
    """
    from ..anatomy import get_site
    from ..program import load_patient_file
    from ..safety import assess, default_device
    from ..session import backend_profile, check_store, parse_backend

    _check_timing(speed, duration_s, start_ramp_s)
    if end_ramp_s is not None:
        from ..session import check_number

        check_number("--end-ramp-s", end_ramp_s, low=0.0, high=600.0, low_open=False)
    name = check_confirmer(confirmed_by) if confirmed_by is not None else None
    backend, _ = parse_backend(device)
    if speed != 1.0 and backend.needs_port:
        raise InvalidInputError(f"Invalid value for '--speed': a stimulator on a serial port runs in real time (1), but got {speed!r}.")
    check_store(db)  # a --db that cannot be a store: before any question is asked
    program = _load(ref)
    if duration_s is not None and duration_s > program.session_duration_s:
        raise InvalidInputError(f"Invalid value for '--duration-s': allowed 0.01 <= X <= {program.session_duration_s:g} s "
                                f"(the program's session), but got {duration_s!r}.")
    if site:
        get_site(site)
        program = program.with_changes(site=site)
    pat = load_patient_file(patient) if patient else None
    if device == "sim" and default_device(program) != "generic":  # plain "sim" simulates the profile check picks
        device = f"sim:{default_device(program)}"
    a = assess(program, patient=pat, device=backend_profile(device))
    if a.verdict == "refused":
        if json_:
            _emit_json({"assessment": a.to_dict(), "session": None})
        else:
            _print_assessment(a)
        raise typer.Exit(EXIT_REFUSED)
    confirm = a.verdict == "needs_confirmation"
    interactive_terminal = sys.stdin.isatty()
    if confirm and (yes or not interactive_terminal) and name is None:
        n = len(a.reasons)
        how = "--yes confirms it only together with" if yes else "without a terminal to ask on, pass --yes and"
        raise InvalidInputError(
            f"The plan needs confirmation ({n} precaution{'s' if n != 1 else ''}: {_rules(a)}; read them with "
            f"`electrostim check`): {how} --confirmed-by NAME (who read them and confirms), but --confirmed-by was "
            f"not given.")
    if confirm and not yes and not interactive_terminal:
        raise InvalidInputError("Invalid value for '--yes': the plan needs confirmation and there is no terminal to "
                                "ask on: allowed --yes --confirmed-by NAME, but got no --yes.")
    if confirm and (yes or json_):  # every precaution, one line each, also when nobody is asked (stdout: JSON only)
        for line in precaution_lines(a):
            err.out(line)
    if confirm and not yes:  # on a terminal: ask, and ask who confirms
        if not json_:
            _print_assessment(a)
        if not typer.confirm("Confirm this plan and start?", err=json_):
            raise typer.Exit(EXIT_REFUSED)
        if name is None:
            name = check_confirmer(typer.prompt("Confirmed by (your name)", err=json_))
    plan = a.approve(confirm=confirm, confirmed_by=name)
    if confirm and (yes or json_):
        err.out(f"confirmed by {name}")
    interactive = not yes and sys.stdin.isatty() and sys.stdout.isatty() and not json_
    result = _deliver(plan, device, duration_s=duration_s, speed=speed, db=db, interactive=interactive,
                      start_ramp_s=start_ramp_s, end_ramp_s=end_ramp_s)
    if json_:
        _emit_json({"assessment": a.to_dict(), "precautions": [r.model_dump(mode="json") for r in a.reasons],
                    "confirmed_by": name, "session": result.to_dict()})
        if result.record_error:
            err.out(f"error: {result.record_error}")
    else:
        _print_result(result, verdict_text(a, name), db)
    if result.exit_code:
        raise typer.Exit(result.exit_code)
