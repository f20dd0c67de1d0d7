"""``electrostim fibers``: thresholds, strength-duration and conduction velocity of nerve fibres."""

from __future__ import annotations

import itertools
import sys
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import InvalidInputError
from ._app import _emit_json, _guard, app, err, out

fibers_app = typer.Typer(help="Nerve fibre thresholds, strength-duration curves and conduction velocity.",
                         no_args_is_help=True)
app.add_typer(fibers_app, name="fibers")

MODELS = ["mrg", "mrg-interp", "sweeney", "sensory", "adelta", "sundt"]
#: the ranges of the integer options
MAX_NODES, MAX_FIBRES, MAX_SEED = 1000, 100_000, 2**32 - 1


def _floats(name: str, text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InvalidInputError(f"Invalid value for '{name}': allowed a number or comma-separated numbers, but got {text!r}.") from None
    if not values:
        raise InvalidInputError(f"Invalid value for '{name}': allowed a number or comma-separated numbers, but got {text!r}.")
    return values


def _progress(total: int):
    if total <= 1 or not sys.stderr.isatty():
        return None, None
    bar = Progress(TextColumn("thresholds"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True)
    return bar, bar.add_task("thresholds", total=total)


ModelOpt = Annotated[str, typer.Option("--model", help=f"fibre model: {', '.join(MODELS)}")]
DiamOpt = Annotated[str, typer.Option("--diameter-um", help="fibre diameter(s) in µm, comma-separated for a sweep")]
DistOpt = Annotated[str, typer.Option("--distance-um", help="point source distance(s) above the centre node, µm")]
PWOpt = Annotated[str, typer.Option("--pulse-width-us", help="pulse width(s) in µs (per phase)")]


@fibers_app.command("threshold")
@_guard
def threshold(
    model: ModelOpt = "mrg",
    diameter_um: DiamOpt = "10",
    distance_um: DistOpt = "1000",
    pulse_width_us: PWOpt = "100",
    waveform: Annotated[str, typer.Option("--waveform", help="monophasic or biphasic (cathodic/anodic first)")] = "monophasic",
    polarity: Annotated[str, typer.Option("--polarity", help="cathodic or anodic (first phase)")] = "cathodic",
    conductivity_s_per_m: Annotated[float, typer.Option("--conductivity-s-per-m", help="medium conductivity")] = 0.2,
    nodes: Annotated[int, typer.Option("--nodes", min=5, max=MAX_NODES, help="nodes of Ranvier (sections for sundt)")] = 51,
    dt_us: Annotated[float, typer.Option("--dt-us", help="time step, µs")] = 1.0,
    tstop_ms: Annotated[float | None, typer.Option("--tstop-ms", help="simulated time, ms (default: 5 ms, longer for slow fibres)")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", help="relative bracket at which the search stops")] = 0.001,
    temperature_c: Annotated[float, typer.Option("--temperature-c", help="temperature, °C")] = 37.0,
    json_: Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")] = False,
) -> None:
    """Activation threshold of a fibre under a point source in a homogeneous medium (the classic experiment).

    The source sits at --distance-um straight above the centre node of a straight fibre of
    --nodes nodes; a rectangular pulse starts at 0.1 ms; an action potential counts when it
    reaches the node at 90 % of the length. Comma-separated lists run the whole sweep.
    """
    from ..errors import check_option
    from ..physics.fibers import PointSourceCase, point_source_thresholds

    check_option("model", model, MODELS)
    check_option("waveform", waveform, ["monophasic", "biphasic"])
    check_option("polarity", polarity, ["cathodic", "anodic"])
    if not (1e-6 <= tolerance <= 0.1):
        raise InvalidInputError(f"Invalid value for 'tolerance': allowed 1e-6 to 0.1, but got {tolerance!r}.")
    combos = list(itertools.product(_floats("diameter-um", diameter_um), _floats("distance-um", distance_um),
                                    _floats("pulse-width-us", pulse_width_us)))
    cases = [PointSourceCase(model=model, diameter_um=d, distance_um=r, pulse_width_us=pw, waveform=waveform,
                             polarity=polarity, conductivity_s_per_m=conductivity_s_per_m, n_nodes=nodes, dt_us=dt_us,
                             tstop_ms=tstop_ms, temperature_c=temperature_c) for d, r, pw in combos]
    for c in cases:
        c.validate()
    bar, task = _progress(len(cases))
    if bar is not None:
        with bar:
            results = point_source_thresholds(cases, tolerance, progress=lambda done, total: bar.update(task, completed=done))
    else:
        results = point_source_thresholds(cases, tolerance)
    rows = []
    for c, r in zip(cases, results):
        rows.append({
            "model": model, "diameter_um": c.diameter_um, "distance_um": c.distance_um, "pulse_width_us": c.pulse_width_us,
            "waveform": waveform, "polarity": polarity, "conductivity_s_per_m": conductivity_s_per_m, "nodes": nodes,
            "dt_us": dt_us, "tolerance": tolerance, "temperature_c": temperature_c,
            "threshold_ma": None if r.threshold_a is None else r.threshold_a * 1e3,
            "lower_bound_ma": r.lower_a * 1e3, "runs": r.runs, "blocked": r.blocked,
            "message": r.message or None,
        })
    if json_:
        _emit_json(rows[0] if len(rows) == 1 else {"results": rows})
        return
    t = Table(title=f"{model} thresholds (point source in {conductivity_s_per_m:g} S/m, {waveform} {polarity})", title_justify="left")
    for col in ("D µm", "R µm", "PW µs", "threshold µA", "note"):
        t.add_column(col, justify="right" if col != "note" else "left")
    for row in rows:
        thr = "—" if row["threshold_ma"] is None else f"{row['threshold_ma'] * 1e3:.2f}"
        t.add_row(f"{row['diameter_um']:g}", f"{row['distance_um']:g}", f"{row['pulse_width_us']:g}", thr, row["message"] or "")
    out.print(t)


@fibers_app.command("sd")
@_guard
def strength_duration(
    model: ModelOpt = "mrg",
    diameter_um: Annotated[float, typer.Option("--diameter-um", help="fibre diameter, µm")] = 10.0,
    distance_um: Annotated[float, typer.Option("--distance-um", help="point source distance, µm")] = 1000.0,
    pulse_widths_us: Annotated[str, typer.Option("--pulse-widths-us", help="comma-separated pulse widths, µs")] = "20,50,100,200,500,1000",
    output: Annotated[str | None, typer.Option("-o", "--output", help="figure file (.png, .svg, .pdf)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")] = False,
) -> None:
    """Strength-duration curve: thresholds over pulse widths, rheobase and chronaxie (Weiss fit)."""
    from ..errors import check_option, check_output_file
    from ..physics.fibers import PointSourceCase
    from ..physics.fibers import strength_duration as sd

    check_option("model", model, MODELS)
    pws = _floats("pulse-widths-us", pulse_widths_us)
    if output:
        from pathlib import Path

        check_option("figure format", Path(output).suffix.lower(), [".png", ".svg", ".pdf"])
        check_output_file("--output", output)
    res, fit = sd(PointSourceCase(model=model, diameter_um=diameter_um, distance_um=distance_um), pws)
    data = {
        "model": model, "diameter_um": diameter_um, "distance_um": distance_um,
        "points": [{"pulse_width_us": pw, "threshold_ma": None if r.threshold_a is None else r.threshold_a * 1e3}
                   for pw, r in zip(pws, res)],
        "rheobase_ma": None if fit is None else fit.rheobase_a * 1e3,
        "chronaxie_us": None if fit is None else fit.chronaxie_s * 1e6,
    }
    if output:
        from ..physics.fibers.plots import plot_strength_duration

        plot_strength_duration(data, output)
        data["figure"] = output
    if json_:
        _emit_json(data)
        return
    t = Table(title=f"Strength-duration, {model} {diameter_um:g} µm at {distance_um:g} µm", title_justify="left")
    t.add_column("PW µs", justify="right")
    t.add_column("threshold µA", justify="right")
    for p in data["points"]:
        t.add_row(f"{p['pulse_width_us']:g}", "—" if p["threshold_ma"] is None else f"{p['threshold_ma'] * 1e3:.2f}")
    out.print(t)
    if fit is not None:
        out.print(f"rheobase {data['rheobase_ma'] * 1e3:.2f} µA, chronaxie {data['chronaxie_us']:.0f} µs")
    if output:
        out.print(f"wrote {output}")


@fibers_app.command("cv")
@_guard
def velocity(
    model: ModelOpt = "mrg",
    diameter_um: DiamOpt = "10",
    temperature_c: Annotated[float, typer.Option("--temperature-c", help="temperature, °C")] = 37.0,
    json_: Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")] = False,
) -> None:
    """Conduction velocity (intracellular stimulation at one end)."""
    from ..errors import check_option
    from ..physics.fibers import conduction_velocity

    check_option("model", model, MODELS)
    rows = []
    for d in _floats("diameter-um", diameter_um):
        kw = {"n_nodes": 601} if model == "sundt" else {}
        rows.append({"model": model, "diameter_um": d, "temperature_c": temperature_c,
                     "velocity_m_per_s": conduction_velocity(model, d, temperature_c=temperature_c, **kw)})
    if json_:
        _emit_json(rows[0] if len(rows) == 1 else {"results": rows})
        return
    for r in rows:
        out.print(f"{model} {r['diameter_um']:g} µm at {temperature_c:g} °C: {r['velocity_m_per_s']:.3g} m/s")


def _population(ref: str, channel: str | None, fibres: int, tissue: str | None, fat_mm: float | None, seed: int):
    from ..physics.population import DEFAULT_COUNTS, population_thresholds
    from ._app import _load

    if not 4 <= fibres <= MAX_FIBRES:
        raise InvalidInputError(f"Invalid value for '--fibers': allowed a whole number 4 <= x <= {MAX_FIBRES}, but got {fibres}.")
    if not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(f"Invalid value for '--seed': allowed a whole number 0 <= x <= {MAX_SEED}, but got {seed}.")
    total = sum(DEFAULT_COUNTS.values())
    counts = {k: max(1, round(v * fibres / total)) for k, v in DEFAULT_COUNTS.items()}
    program = _load(ref)
    bar = None
    if sys.stderr.isatty():
        bar = Progress(TextColumn("fibres"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True)
    if bar is not None:
        with bar:
            task = bar.add_task("fibres", total=sum(counts.values()))
            return population_thresholds(program, channel if channel is not None else 0, counts, tissue, fat_mm, seed=seed,
                                         progress=lambda done, n: bar.update(task, completed=done))
    return population_thresholds(program, channel if channel is not None else 0, counts, tissue, fat_mm, seed=seed)


ProgramArg = Annotated[str, typer.Argument(metavar="ID|FILE", help="preset id, user-program id, or path to a program .toml")]
ChannelOpt = Annotated[str | None, typer.Option("--channel", help="channel label (default: the first)")]
FibresOpt = Annotated[int, typer.Option("--fibers", min=4, max=MAX_FIBRES, help="fibres in the sampled population (all classes)")]
TissueOpt = Annotated[str | None, typer.Option("--tissue", help="tissue preset (default: from the pads' body site)")]
FatOpt = Annotated[float | None, typer.Option("--fat-mm", help="subcutaneous fat thickness, mm (default: the preset's)")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="seed of the sampled population")]


@fibers_app.command("recruitment")
@_guard
def recruitment(
    ref: ProgramArg,
    channel: ChannelOpt = None,
    fibers: FibresOpt = 160,
    tissue: TissueOpt = None,
    fat_mm: FatOpt = None,
    seed: SeedOpt = 0,
    output: Annotated[str | None, typer.Option("-o", "--output", help="figure file (.png, .svg, .pdf)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")] = False,
) -> None:
    """Recruitment curves of a mixed fibre population under a program's pads (one repetition of its waveform)."""
    from pathlib import Path

    from ..errors import check_option, check_output_file

    if output:
        check_option("figure format", Path(output).suffix.lower(), [".png", ".svg", ".pdf"])
        check_output_file("--output", output)
    res = _population(ref, channel, fibers, tissue, fat_mm, seed)
    data = res.to_dict()
    if output:
        from ..physics.plots import plot_recruitment

        plot_recruitment(res, output)
        data["figure"] = output
    if json_:
        _emit_json(data)
        return
    _print_window(res)
    if output:
        out.print(f"wrote {output}")


@fibers_app.command("window")
@_guard
def window(
    ref: ProgramArg,
    channel: ChannelOpt = None,
    fibers: FibresOpt = 160,
    tissue: TissueOpt = None,
    fat_mm: FatOpt = None,
    seed: SeedOpt = 0,
    json_: Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")] = False,
) -> None:
    """The sensory / motor / pain window of a program on its placement: the current at which each class starts to fire."""
    res = _population(ref, channel, fibers, tissue, fat_mm, seed)
    if json_:
        _emit_json({"program": res.program, "channel": res.channel, "tissue": res.tissue, "window": res.window(),
                    "notes": res.notes})
        return
    _print_window(res)


def _print_window(res) -> None:
    t = Table(title=f"{res.program} / {res.channel} on {res.tissue} tissue: peak current at which each class fires",
              title_justify="left")
    for col in ("role", "classes", "fibres", "onset mA (5 %)", "half mA (50 %)", "recruited by 200 mA"):
        t.add_column(col, justify="left" if col in ("role", "classes") else "right")
    for role, w in res.window().items():
        t.add_row(role, ", ".join(w["classes"]), str(w["fibres"]),
                  "—" if w["onset_ma"] is None else f"{w['onset_ma']:.1f}",
                  "—" if w["half_ma"] is None else f"{w['half_ma']:.1f}", f"{w['recruited_by_200_ma'] * 100:.0f} %")
    out.print(t)
    from rich.markup import escape

    for n in res.notes:
        out.print(f"[dim]{escape(n)}[/]")
