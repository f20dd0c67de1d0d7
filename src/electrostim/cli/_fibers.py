"""``electrostim fibers``: thresholds, strength-duration and conduction velocity of nerve fibres, and populations.

Every long computation shows its progress on stderr (a Rich progress bar on a terminal;
elsewhere a plain line every :data:`PLAIN_EVERY_S` seconds), never on stdout, so that
``--json`` output stays clean. Ctrl-C stops it: one line on stderr, exit code 130.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..errors import InvalidInputError
from ._app import _emit_json, _guard, app, err, interruption_reported, out

if TYPE_CHECKING:
    from ..physics.population import PopulationResult

fibres_app = typer.Typer(help="Nerve fibre thresholds, strength-duration curves, conduction velocity and fibre populations.",
                         no_args_is_help=True)
app.add_typer(fibres_app, name="fibers")  # the command's public name

#: the fibre models (``electrostim.physics.fibres.FIBRE_MODELS``; listed here so that the CLI starts without numba)
MODELS = ["mrg", "mrg-interp", "sweeney", "sensory", "adelta", "sundt"]
#: the ranges of the integer options
MAX_NODES, MAX_FIBRES, MAX_SEED = 1000, 100_000, 2**32 - 1
#: exit code after Ctrl-C (128 + SIGINT)
EXIT_INTERRUPTED = 130
#: without a terminal, a progress line at most this often (s); short runs print none
PLAIN_EVERY_S = 10.0


def _floats(name: str, text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InvalidInputError(f"Invalid value for '{name}': allowed a number or comma-separated numbers, but got {text!r}.") from None
    if not values:
        raise InvalidInputError(f"Invalid value for '{name}': allowed a number or comma-separated numbers, but got {text!r}.")
    return values


class _Reporter:
    """Progress of the steps of one command on stderr: a Rich bar per step on a terminal, plain lines elsewhere."""

    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.last: str = ""
        self._started = time.monotonic()
        self._printed = self._started
        if err.is_terminal:
            self.bar = Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("left"), TimeRemainingColumn(), console=err, transient=True,
                                redirect_stdout=False, redirect_stderr=False)  # stdout stays the JSON's alone

    def step(self, description: str, total: int, unit: str = "") -> Callable[[int, int], None]:
        """A callback ``(done, total)`` for one step of the computation."""
        bar = self.bar
        task = bar.add_task(description, total=total) if bar is not None else None

        def update(done: int, n: int) -> None:
            self.last = f"{description}: {done}/{n}{unit}"
            if bar is not None and task is not None:
                bar.update(task, completed=done, total=n)
                return
            now = time.monotonic()
            if now - self._printed >= PLAIN_EVERY_S or (done >= n and now - self._started >= PLAIN_EVERY_S):
                self._printed = now
                err.out(f"{self.last} after {now - self._started:.0f} s", highlight=False)

        return update


@contextmanager
def _progress(what: str) -> Iterator[_Reporter]:
    """Show progress while the body runs; Ctrl-C stops it with one line on stderr and exit code 130."""
    reporter = _Reporter()
    try:
        if reporter.bar is not None:
            with reporter.bar:
                yield reporter
        else:
            yield reporter
    except KeyboardInterrupt:
        where = f" at {reporter.last}" if reporter.last else ""
        err.out(f"interrupted: {what} stopped{where}; nothing was written.", highlight=False)
        interruption_reported()
        raise typer.Exit(EXIT_INTERRUPTED) from None


ModelOpt = Annotated[str, typer.Option("--model", help=f"fibre model: {', '.join(MODELS)}")]
DiamOpt = Annotated[str, typer.Option("--diameter-um", help="fibre diameter(s) in µm, comma-separated for a sweep")]
DistOpt = Annotated[str, typer.Option("--distance-um", help="point source distance(s) above the centre node, µm")]
PWOpt = Annotated[str, typer.Option("--pulse-width-us", help="pulse width(s) in µs (per phase)")]


@fibres_app.command("threshold")
@_guard
def threshold(
    model: ModelOpt = "mrg",
    diameter_um: DiamOpt = "10",
    distance_um: DistOpt = "1000",
    pulse_width_us: PWOpt = "100",
    waveform: Annotated[str, typer.Option("--waveform", help="monophasic or biphasic (cathodic/anodic first)")] = "monophasic",
    polarity: Annotated[str, typer.Option("--polarity", help="cathodic or anodic (first phase)")] = "cathodic",
    conductivity_s_per_m: Annotated[float, typer.Option("--conductivity-s-per-m", help="medium conductivity, S/m")] = 0.2,
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
    from ..physics.fibres import PointSourceCase, point_source_thresholds
    from ..units import MA, UA

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
    with _progress("the threshold search") as report:
        results = point_source_thresholds(cases, tolerance, progress=report.step("thresholds", len(cases)))
    rows: list[dict[str, Any]] = []
    for c, r in zip(cases, results):
        rows.append({
            "model": model, "diameter_um": c.diameter_um, "distance_um": c.distance_um, "pulse_width_us": c.pulse_width_us,
            "waveform": waveform, "polarity": polarity, "conductivity_s_per_m": conductivity_s_per_m, "nodes": nodes,
            "dt_us": dt_us, "tolerance": tolerance, "temperature_c": temperature_c,
            "threshold_ma": None if r.threshold_a is None else r.threshold_a / MA,
            "lower_bound_ma": r.lower_a / MA, "runs": r.runs, "blocked": r.blocked,
            "message": r.message or None,
        })
    if json_:
        _emit_json(rows[0] if len(rows) == 1 else {"results": rows})
        return
    t = Table(title=f"{model} thresholds (point source in {conductivity_s_per_m:g} S/m, {waveform} {polarity})", title_justify="left")
    for col in ("D µm", "R µm", "PW µs", "threshold µA", "note"):
        t.add_column(col, justify="right" if col != "note" else "left")
    for row in rows:
        thr = "—" if row["threshold_ma"] is None else f"{row['threshold_ma'] * MA / UA:.2f}"
        t.add_row(f"{row['diameter_um']:g}", f"{row['distance_um']:g}", f"{row['pulse_width_us']:g}", thr, row["message"] or "")
    out.print(t)


@fibres_app.command("sd")
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
    from ..physics.fibres import PointSourceCase
    from ..physics.fibres import strength_duration as sd
    from ..units import MA, UA, US

    check_option("model", model, MODELS)
    pws = _floats("pulse-widths-us", pulse_widths_us)
    if output:
        from pathlib import Path

        check_option("figure format", Path(output).suffix.lower(), [".png", ".svg", ".pdf"])
        check_output_file("--output", output)
    base = PointSourceCase(model=model, diameter_um=diameter_um, distance_um=distance_um)
    with _progress("the strength-duration search") as report:
        res, fit = sd(base, pws, progress=report.step("thresholds", len(pws)))
    data: dict[str, Any] = {
        "model": model, "diameter_um": diameter_um, "distance_um": distance_um,
        "waveform": base.waveform, "polarity": base.polarity, "conductivity_s_per_m": base.conductivity_s_per_m,
        "temperature_c": base.temperature_c, "nodes": base.n_nodes, "dt_us": base.dt_us,
        "points": [{"pulse_width_us": pw, "threshold_ma": None if r.threshold_a is None else r.threshold_a / MA}
                   for pw, r in zip(pws, res)],
        "rheobase_ma": None if fit is None else fit.rheobase_a / MA,
        "chronaxie_us": None if fit is None else fit.chronaxie_s / US,
    }
    if output:
        from ..physics.fibres.plots import plot_strength_duration

        plot_strength_duration(data, output)
        data["figure"] = output
    if json_:
        _emit_json(data)
        return
    t = Table(title=f"Strength-duration, {model} {diameter_um:g} µm at {distance_um:g} µm", title_justify="left")
    t.add_column("PW µs", justify="right")
    t.add_column("threshold µA", justify="right")
    for p in data["points"]:
        t.add_row(f"{p['pulse_width_us']:g}", "—" if p["threshold_ma"] is None else f"{p['threshold_ma'] * MA / UA:.2f}")
    out.print(t)
    if fit is not None:
        out.print(f"rheobase {data['rheobase_ma'] * MA / UA:.2f} µA, chronaxie {data['chronaxie_us']:.0f} µs")
    if output:
        out.print(f"wrote {output}")


@fibres_app.command("cv")
@_guard
def velocity(
    model: ModelOpt = "mrg",
    diameter_um: DiamOpt = "10",
    temperature_c: Annotated[float, typer.Option("--temperature-c", help="temperature, °C")] = 37.0,
    json_: Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")] = False,
) -> None:
    """Conduction velocity (intracellular stimulation at one end)."""
    from ..errors import check_option
    from ..physics.fibres import conduction_velocity

    check_option("model", model, MODELS)
    diameters = _floats("diameter-um", diameter_um)
    rows: list[dict[str, Any]] = []
    with _progress("the conduction-velocity runs") as report:
        step = report.step("fibres", len(diameters))
        step(0, len(diameters))
        for k, d in enumerate(diameters):
            kw = {"n_nodes": 601} if model == "sundt" else {}
            rows.append({"model": model, "diameter_um": d, "temperature_c": temperature_c,
                         "velocity_m_per_s": conduction_velocity(model, d, temperature_c=temperature_c, **kw)})
            step(k + 1, len(diameters))
    if json_:
        _emit_json(rows[0] if len(rows) == 1 else {"results": rows})
        return
    for r in rows:
        out.print(f"{model} {r['diameter_um']:g} µm at {temperature_c:g} °C: {r['velocity_m_per_s']:.3g} m/s")


def _population(ref: str, channel: str | None, fibres: int, tissue: str | None, fat_mm: float | None,
                seed: int) -> PopulationResult:
    """Sample the default mix scaled to ``fibres`` under the program's pads and find every threshold, with progress."""
    from ..physics.population import DEFAULT_COUNTS, population_thresholds
    from ._app import _load

    if not 4 <= fibres <= MAX_FIBRES:
        raise InvalidInputError(f"Invalid value for '--fibers': allowed a whole number 4 <= x <= {MAX_FIBRES}, but got {fibres}.")
    if not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(f"Invalid value for '--seed': allowed a whole number 0 <= x <= {MAX_SEED}, but got {seed}.")
    total = sum(DEFAULT_COUNTS.values())
    counts = {k: max(1, round(v * fibres / total)) for k, v in DEFAULT_COUNTS.items()}
    program = _load(ref)
    with _progress("the population") as report:
        field_step = report.step("field under the pads", 1, " points")
        field_step(0, 1)
        search_step = report.step("thresholds", sum(counts.values()), " fibres")
        return population_thresholds(program, channel if channel is not None else 0, counts, tissue, fat_mm, seed=seed,
                                     progress=search_step, field_progress=field_step)


ProgramArg = Annotated[str, typer.Argument(metavar="ID|FILE", help="preset id, user-program id, or path to a program .toml")]
ChannelOpt = Annotated[str | None, typer.Option("--channel", help="channel label (default: the first)")]
FibresOpt = Annotated[int, typer.Option("--fibers", min=4, max=MAX_FIBRES, help="fibres in the sampled population (all classes)")]
TissueOpt = Annotated[str | None, typer.Option("--tissue", help="tissue preset (default: from the pads' body site)")]
FatOpt = Annotated[float | None, typer.Option("--fat-mm", help="subcutaneous fat thickness, mm (default: the preset's)")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="seed of the sampled population")]


@fibres_app.command("recruitment")
@_guard
def recruitment(
    ref: ProgramArg,
    channel: ChannelOpt = None,
    fibres: FibresOpt = 160,
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
    res = _population(ref, channel, fibres, tissue, fat_mm, seed)
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


@fibres_app.command("window")
@_guard
def window(
    ref: ProgramArg,
    channel: ChannelOpt = None,
    fibres: FibresOpt = 160,
    tissue: TissueOpt = None,
    fat_mm: FatOpt = None,
    seed: SeedOpt = 0,
    json_: Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")] = False,
) -> None:
    """The sensory / motor / pain window of a program on its placement: the current at which each class starts to fire."""
    res = _population(ref, channel, fibres, tissue, fat_mm, seed)
    if json_:
        _emit_json({"program": res.program, "channel": res.channel, "tissue": res.tissue, "window": res.window(),
                    "parameters": res.parameters, "notes": res.notes})
        return
    _print_window(res)


def _print_window(res: PopulationResult) -> None:
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
