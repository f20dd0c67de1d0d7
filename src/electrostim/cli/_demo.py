"""``electrostim demo``: the main job end to end on embedded defaults, on the simulated stimulator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import EXIT_NEEDS_CONFIRMATION, EXIT_REFUSED, JsonOpt, _emit_json, _guard, _load, _print_assessment, app, out
from ._run import _check_timing

#: the demo's program, and how fast its session runs (as fast as the simulation computes)
DEMO_PROGRAM = "knee-oa-tens"
DEMO_SPEED = float("inf")


@app.command()
@_guard
def demo(
    output_dir: Annotated[Path, typer.Option("-o", "--output-dir", help="folder for the figure (created if missing)")] = Path("."),
    duration_s: Annotated[float, typer.Option("--duration-s", help="session time to deliver, s (simulated, not wall time)")] = 60.0,
    db: Annotated[str | None, typer.Option("--db", help="database URL or SQLite file (default: the user data folder)")] = None,
    json_: JsonOpt = False,
) -> None:
    """The main job on embedded defaults: check the knee-pain preset, draw its waveform, deliver a short session
    on the simulated stimulator and record it.
    """
    from ..safety import assess
    from ..session import check_store, deliver
    from ..waveform import plot_program

    _check_timing(1.0, duration_s)
    check_store(db)  # a --db that cannot be a store: before the folder or the figure is made
    p = _load(DEMO_PROGRAM)
    if duration_s > p.session_duration_s:
        from ..errors import InvalidInputError

        raise InvalidInputError(f"Invalid value for '--duration-s': allowed 0.01 <= X <= {p.session_duration_s:g} s "
                                f"(the program's session), but got {duration_s!r}.")
    a = assess(p, device="generic")
    output_dir.mkdir(parents=True, exist_ok=True)  # the demo's own folder (other commands create none)
    fig = output_dir / f"{DEMO_PROGRAM}.png"
    plot_program(p, fig)
    if not json_:
        _print_assessment(a)
        out.print(f"wrote {fig}")
    if a.verdict != "ok":  # the embedded preset is ok; never deliver a plan nobody confirmed
        if json_:
            _emit_json({"assessment": a.to_dict(), "figure": str(fig), "session": None})
        raise typer.Exit(EXIT_REFUSED if a.verdict == "refused" else EXIT_NEEDS_CONFIRMATION)
    s = deliver(a.approve(), "sim", db, duration_s=duration_s, speed=DEMO_SPEED).to_dict()
    if json_:
        _emit_json({"assessment": a.to_dict(), "figure": str(fig), "session": s})
    else:
        charge = ", ".join(f"{label} {uc:.0f} µC" for label, uc in s.get("charge_delivered_uc", {}).items())
        out.print(f"session {s['state']}: {s['session_s']:.1f} s of session time on the simulated stimulator, "
                  f"{s['pulses_delivered']} pulses" + (f", error: {s['error']}" if s["error"] else ""))
        out.print(f"charge delivered: {charge}")
        out.print(f"recorded as session {s['session_id']} ({s['events']} events) in {s['db']}")
        out.print(f"see it with: electrostim sessions show {s['session_id']}" + (f" --db {db}" if db else ""))
    if s["exit_code"]:
        raise typer.Exit(s["exit_code"])
