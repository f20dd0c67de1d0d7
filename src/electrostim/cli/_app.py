"""The ``electrostim`` command: thin commands over the public API."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Callable
from enum import Enum, StrEnum
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from ..errors import ElectrostimError, InvalidInputError, SafetyError

if TYPE_CHECKING:  # loaded by the commands that use them (the command line stays quick to start)
    from ..program import Channel, Citation, Program, Stimulus
    from ..safety import Assessment

try:  # a newer Typer carries its own copy of Click
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - Typer on Click
    from click import exceptions as _click_errors  # type: ignore[no-redef]
#: a group given no command (Click >= 8.2; older ones print its help themselves)
_NoArgsIsHelp = getattr(_click_errors, "NoArgsIsHelpError", ())

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

#: exit codes of ``check``
EXIT_OK, EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_NEEDS_CONFIRMATION = 0, 1, 2, 3

#: The largest id or count the store holds (its INTEGER columns are 32-bit on PostgreSQL): the top of
#: every session-id and event-count range.
MAX_ROW_ID = 2**31 - 1


# --------------------------------------------------------------------------- usage errors in one line


def _flat(text: str) -> str:
    """A message on one line."""
    return " ".join(str(text).split())


def _param_label(param: Any) -> str:
    """How a parameter is named on the command line: ``--limit`` or ``SESSION_ID``."""
    if getattr(param, "param_type_name", "") == "argument":
        return str(getattr(param, "metavar", None) or param.name).upper()
    opts: list[str] = list(getattr(param, "opts", []) or [])
    longs = [o for o in opts if o.startswith("--")]
    return (longs or opts or [param.name])[0]


def _param_allowed(param: Any) -> str | None:
    """What a parameter allows, in words: its choices, or a whole number or a number and its range."""
    desc = getattr(param, "type_descriptor", None)  # a newer Typer
    kind = getattr(desc, "annotation", None)
    lo, hi = getattr(param, "min", None), getattr(param, "max", None)
    ptype = getattr(param, "type", None)  # Typer on Click
    if desc is None and ptype is not None:
        lo, hi = getattr(ptype, "min", None), getattr(ptype, "max", None)
        kind = {"integer": int, "integer range": int, "float": float, "float range": float}.get(getattr(ptype, "name", ""))
        if getattr(ptype, "choices", None):
            return ", ".join(repr(getattr(c, "value", c)) for c in ptype.choices)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return ", ".join(repr(m.value) for m in kind)
    if kind in (int, float):
        words = "a whole number" if kind is int else "a number"
        if lo is not None and hi is not None:
            return f"{words} {lo} <= x <= {hi}"
        if lo is not None:
            return f"{words} >= {lo}"
        if hi is not None:
            return f"{words} <= {hi}"
        return words
    help_text = getattr(param, "help", None)
    return _flat(help_text) if help_text else None


_NOTHING = object()


def _given(exc: BaseException) -> Any:
    """The value given, where the error carries it (Typer's validation error does), else ``_NOTHING``."""
    errors = getattr(exc.__cause__, "errors", None)
    if callable(errors):
        try:
            return errors()[0].get("input", _NOTHING)
        except Exception:  # noqa: BLE001 - the message is then shown as it is
            return _NOTHING
    return _NOTHING


def _param_by_option(command: Any, option: str) -> Any:
    for param in getattr(command, "params", ()):
        if option in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
            return param
    return None


def _command_of(root: Any, prog: str, args: list[str]) -> tuple[Any, str]:
    """The (sub)command that ``args`` name, and its path: for errors Click raises without a context."""
    command, path = root, [prog]
    for token in args:
        sub = getattr(command, "commands", {}).get(token)
        if sub is None:
            break
        command, path = sub, [*path, token]
    return command, " ".join(path)


def usage_error_line(exc: Any, command: Any = None, where: str = "electrostim") -> str:
    """A Click usage error as one line: what was wrong, what is allowed and what was given (no usage panel).

    Examples
    --------
    >>> from typer.testing import CliRunner
    >>> from electrostim.cli import app
    >>> CliRunner().invoke(app, ["sessions", "list", "--limit", "abc"]).output
    "error: Invalid value for '--limit': allowed a whole number 1 <= x <= 1000000, but got 'abc'.\\n"
    """
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        command, where = ctx.command, ctx.command_path
    param = getattr(exc, "param", None)
    if isinstance(exc, _click_errors.MissingParameter) and param is not None:
        kind = getattr(param, "param_type_name", "parameter")
        allowed = _param_allowed(param)
        return (f"Missing {kind} '{_param_label(param)}' of '{where}'"
                + (f": allowed {allowed}, but got nothing." if allowed else ", but got nothing."))
    if isinstance(exc, _click_errors.BadParameter) and param is not None:
        allowed, given = _param_allowed(param), _given(exc)
        if allowed is not None and given is not _NOTHING:
            return f"Invalid value for '{_param_label(param)}': allowed {allowed}, but got {given!r}."
        return _flat(exc.format_message()) + (f" (allowed {allowed})" if allowed else "")
    if isinstance(exc, _click_errors.NoSuchOption) and ctx is not None:
        options = [o for p in ctx.command.get_params(ctx) for o in (*p.opts, *getattr(p, "secondary_opts", ()))
                   if o.startswith("-")]
        return f"No such option of '{where}': allowed {', '.join(options)}, but got {exc.option_name!r}."
    message = _flat(exc.format_message())
    if isinstance(exc, _click_errors.BadOptionUsage) and "requires an argument" in message:
        option = getattr(exc, "option_name", "")
        param = _param_by_option(command, option)
        allowed = _param_allowed(param) if param is not None else None
        return f"Option '{option}' of '{where}' needs a value" + (f": allowed {allowed}" if allowed else "") + ", but got nothing."
    if ctx is not None and message.startswith("No such command") and hasattr(ctx.command, "list_commands"):
        name = message[len("No such command"):].strip().rstrip(".")
        return f"No such command of '{where}': allowed {', '.join(ctx.command.list_commands(ctx))}, but got {name}."
    extra = re.fullmatch(r"Got unexpected extra argument(?:s|\(s\))? \((.*)\)", message)
    if extra and ctx is not None:
        return (f"Too many arguments for '{where}': allowed {_flat(ctx.get_usage()).removeprefix('Usage: ')}, "
                f"but got also {extra.group(1)!r}.")
    return message + (f" (see '{where} --help')" if command is not None else "")


class _Signals:
    """The signal that interrupted a command (outside a session, which handles its own), and whether the command
    said so itself."""

    seen: int | None = None
    reported = False
    previous_hook: Callable[[Any], object] = staticmethod(sys.__unraisablehook__)


def _on_signal(signum: int, frame: Any) -> None:
    if _Signals.seen is None:
        _Signals.seen = signum
    raise KeyboardInterrupt  # unwinds the command (its cleanup runs); the code is settled in _Group.main


def _on_unraisable(unraisable: Any) -> None:
    """A signal's interruption that Python dropped comes again; any other unraisable error is reported as before.

    Python runs a signal's handler between any two instructions of the main thread, also
    inside a weakref callback or a ``__del__`` (an import lock's clean-up, a file being
    closed), where what the handler raises is printed as "Exception ignored" and dropped:
    the command would run on, a session would start. The interruption is raised again at
    the next call or return, until it lands where it unwinds the command.
    """
    if _Signals.seen is not None and isinstance(unraisable.exc_value, KeyboardInterrupt):
        sys.setprofile(_interrupt_at_next_call)  # (a profile function's error goes to the code it watches)
        return
    _Signals.previous_hook(unraisable)


def _interrupt_at_next_call(frame: Any, event: str, arg: Any) -> None:
    """The interruption again, at the first call or return after the hook that found it dropped (Python clears a
    profile function that raises)."""
    if frame.f_code is _on_unraisable.__code__:
        return
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """Ctrl-C, SIGTERM and SIGHUP interrupt a command: its cleanup runs, then one line and exit code 128 + the
    signal's number. A session in progress installs its own (output zero first, then the record).

    An interruption that Python drops (the signal came inside a weakref callback or a
    ``__del__``) is not lost: it comes again where it can unwind the command.
    """
    import signal

    if sys.unraisablehook is not _on_unraisable:
        _Signals.previous_hook = sys.unraisablehook
        sys.unraisablehook = _on_unraisable
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _on_signal)


def interruption_reported() -> None:
    """A command that said itself, in one line, how it was interrupted (no second line is added)."""
    _Signals.reported = True


def interruption_handled() -> None:
    """A command for which an interruption is its normal end (an emulator): it exits as it returns."""
    _Signals.seen, _Signals.reported = None, False


def _interrupted_exit() -> None:
    """If a signal interrupted the command: one line (unless the command gave it) and exit 128 + its number."""
    import signal

    if _Signals.seen is None:
        return
    if not _Signals.reported:
        err.out(f"interrupted by {signal.Signals(_Signals.seen).name}")
    sys.exit(128 + _Signals.seen)


class _Group(TyperGroup):
    """The ``electrostim`` command: every usage error is one line on stderr, exit code 2, never a panel.

    Click parses with ``standalone_mode=False`` so that its errors come here instead
    of to its boxed usage panel; ``--help`` and a command given without arguments
    still print their help.
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:  # the width asked for now (the consoles were made at import)
            out.width = err.width = int(columns)

        def run() -> Any:
            return super(_Group, self).main(args=argv, prog_name=prog_name, complete_var=complete_var,
                                            standalone_mode=False, windows_expand_args=windows_expand_args, **extra)

        if not standalone_mode:
            return run()
        try:
            code = run()  # what the command returned, or the code of the Exit it raised (--help: 0)
        except KeyboardInterrupt:  # outside the command (while its options were read)
            code = 130
        except _NoArgsIsHelp as exc:  # a group given no command: its help
            text = exc.format_message()  # (Rich has printed it already)
            if text.strip():
                print(text)
            sys.exit(EXIT_BAD_INPUT)
        except _click_errors.UsageError as exc:
            err.out(f"error: {usage_error_line(exc, *_command_of(self, prog_name or self.name or 'electrostim', argv))}")
            sys.exit(EXIT_BAD_INPUT)
        except _click_errors.ClickException as exc:
            err.out(f"error: {_flat(exc.format_message())}")
            sys.exit(exc.exit_code)
        except typer.Abort:
            _interrupted_exit()
            err.out("aborted")
            sys.exit(1)
        _interrupted_exit()  # a signal: its own code, whatever the command returned
        sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)


app = typer.Typer(
    name="electrostim",
    help="Electrical stimulation therapy: describe, check and plot TENS, NMES, interferential and Russian current programs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Group,
)
programs_app = typer.Typer(help="List and show therapy programs (presets and your own files).", no_args_is_help=True)
app.add_typer(programs_app, name="programs")

ProgramRef = Annotated[str, typer.Argument(metavar="ID|FILE", help="preset id, user-program id, or path to a program .toml")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")]


class Level(StrEnum):
    default = "default"
    max = "max"


class Device(StrEnum):
    generic = "generic"
    rehastim2 = "rehastim2"
    p24 = "p24"
    hvpc = "hvpc"


class Format(StrEnum):
    csv = "csv"
    npz = "npz"


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Bad input: one line on stderr and exit code 2, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InvalidInputError as exc:
            err.out(f"error: {exc}")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except SafetyError as exc:
            err.out(f"refused: {exc}")
            raise typer.Exit(EXIT_REFUSED) from None
        except ElectrostimError as exc:
            err.out(f"error: {exc}")
            raise typer.Exit(1) from None
        except OSError as exc:
            err.out(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def _load(ref: str) -> Program:
    from ..program import load_program

    return load_program(ref)


def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "—"
    return f"{x:.{digits}g}"


# --------------------------------------------------------------------------- programs


@programs_app.command("list")
@_guard
def programs_list(json_: JsonOpt = False) -> None:
    """List presets and your own programs.

    Every program that can be used by its id is listed; each user program file that
    cannot be used (unreadable, not valid, or an id claimed twice) is reported on its
    own line on stderr, and the others are still listed (exit code 0).
    """
    from ..program import list_programs, program_dirs, user_program_problems

    entries = list_programs()
    problems = user_program_problems()
    if json_:
        _emit_json([
            {"id": e.id, "name": e.name, "modality": e.modality, "origin": e.origin,
             "evidence_level": e.program.evidence.level if e.program.evidence else None}
            for e in entries
        ])
    else:
        t = Table(title="Therapy programs", title_justify="left")
        # an id is what a person types: shown whole (the name wraps instead)
        t.add_column("id", no_wrap=True, min_width=max([2, *(len(e.id) for e in entries)]))
        for col in ("modality", "name", "evidence", "origin"):
            t.add_column(col, overflow="fold")
        for e in entries:  # user text is text, never markup
            t.add_row(Text(e.id), Text(e.modality), Text(e.name),
                      Text(e.program.evidence.level if e.program.evidence else "—"), Text(e.origin))
        out.print(t)
        out.print(Text(f"Your own programs go in: {', '.join(str(d) for d in program_dirs())}"))
    for problem in problems:
        err.out(f"skipped: {_flat(problem.message)}")


def _print_phases(p: Program) -> None:
    """A multi-phase program's phases: when, how long, at what intensity, and each channel's stimulus."""
    spans = p.phase_spans
    if len(spans) < 2:
        return
    t = Table(title="Phases (each starts afresh: its ramps, on/off cycle and sweeps begin at its start)",
              title_justify="left")
    for col in ("phase", "from", "duration", "intensity", "stimulus"):
        t.add_column(col, overflow="fold")
    for span in spans:
        stim = "\n".join(f"{c.label}: {_stimulus_text(c.stimulus)}" for c in span.program.channels)
        t.add_row(Text(f"{span.index + 1} {span.name}"), Text(_clock_text(span.start_s)), Text(_clock_text(span.duration_s)),
                  Text(f"{span.intensity_percent:g} %"), Text(stim))
    out.print(t)


def _clock_text(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}" if abs(seconds - whole) < 1e-9 else f"{seconds:g} s"


def _stimulus_text(st: Stimulus) -> str:
    p: Any = st.pulse  # one of the pulse shapes: each branch reads the fields of its own
    parts = [p.shape]
    if p.shape in ("symmetric-biphasic", "asymmetric-biphasic", "monophasic"):
        parts.append(f"{p.pulse_width_us:g} µs at {p.frequency_hz:g} Hz")
        if getattr(p, "interphase_gap_us", 0):
            parts.append(f"gap {p.interphase_gap_us:g} µs")
        if p.shape == "asymmetric-biphasic":
            parts.append(f"second phase ×{p.second_phase_ratio:g}")
        if p.shape == "monophasic":
            parts.append(f"{p.polarity} (DC component)")
            if p.twin_peak_spacing_us is not None:
                parts.append(f"twin peaks {p.twin_peak_spacing_us:g} µs apart")
            if p.phase_shape == "spike":
                parts.append("spike phases (exponential decay)")
    elif p.shape == "sine-burst":
        parts.append(f"{p.carrier_frequency_hz:g} Hz carrier in {p.frequency_hz:g} Hz bursts ({p.burst_duty_percent:g} % duty)")
    else:
        parts.append(f"{p.mode}, {p.carrier_frequency_hz:g} Hz carrier, beat {p.beat_frequency_hz:g} Hz")
    if st.burst:
        parts.append(f"bursts of {st.burst.pulses_per_burst} at {st.burst.burst_frequency_hz:g} Hz")
    for m in st.modulation:
        parts.append(m.kind)
    if st.duty_cycle:
        parts.append(f"{st.duty_cycle.on_s:g} s on / {st.duty_cycle.off_s:g} s off")
    if st.ramp_up_s or st.ramp_down_s:
        parts.append(f"ramps {st.ramp_up_s:g}/{st.ramp_down_s:g} s")
    a = st.amplitude
    if a.voltage_controlled:
        parts.append(f"amplitude {a.default_v:g} V (max {a.max_v:g} V; {a.default_ma:g}-{a.max_ma:g} mA into 200 Ω)")
    else:
        parts.append(f"amplitude {a.default_ma:g} mA (max {a.max_ma:g} mA)")
    return ", ".join(parts)


def _line(label: str, text: str) -> Text:
    """``label`` in bold, then ``text`` as plain text (never read as markup)."""
    return Text.assemble((label, "bold"), " ", text)


@programs_app.command("show")
@_guard
def programs_show(ref: ProgramRef, json_: JsonOpt = False) -> None:
    """Show a program: stimulus, placement, evidence and sources."""
    p = _load(ref)
    if json_:
        _emit_json(p.model_dump(mode="json"))
        return
    # every text of a program is the author's: shown as text, never interpreted as markup
    head = Text.assemble((p.name, "bold"), "\n", f"{p.id} · {p.modality.value} · {p.session_duration_s / 60:g} min"
                         + (f" · {p.sequencing}" if len(p.channels) > 1 else ""))
    out.print(Panel.fit(head, border_style="cyan"))
    if p.description:
        out.print(Text(p.description.strip()))
    if p.regimen:
        out.print(_line("Regimen:", p.regimen))
    t = Table(title="Channels", title_justify="left")
    for col in ("channel", "stimulus", "pads"):
        t.add_column(col, overflow="fold")
    c: Channel | Citation
    for c in p.channels:
        pads = "; ".join(f"{e.site}{' ' + e.side if e.side else ''} {e.size_label}" for e in c.electrodes)
        a = c.stimulus.amplitude
        stim = (_stimulus_text(c.stimulus) if not p.phases
                else f"by phase (below); amplitude {a.default_ma:g} mA (max {a.max_ma:g} mA)")
        t.add_row(Text(c.label), Text(stim), Text(pads))
    out.print(t)
    _print_phases(p)
    goals = dict.fromkeys(c.stimulus.amplitude.goal for c in p.channels if c.stimulus.amplitude.goal)
    for g in goals:
        out.print(_line("Intensity:", g))
    if p.placement:
        out.print(_line("Placement:", p.placement.summary))
        for i, s in enumerate(p.placement.steps, 1):
            out.print(Text(f"  {i}. {s}"))
    if p.evidence:
        out.print(_line(f"Evidence ({p.evidence.level}):", " ".join(p.evidence.summary.split())))
        if p.evidence.mechanisms:
            out.print(_line("Mechanisms:", ", ".join(p.evidence.mechanisms)))
    for n in p.notes:
        out.print(_line("Note:", n))
    for c in p.citations:
        out.print(Text(f"  · {c.text}" + (f" doi:{c.doi}" if c.doi else "")))


# --------------------------------------------------------------------------- check


def _apply_overrides(p: Program, amplitude_ma: float | None, electrode: str | None, site: str | None) -> Program:
    """The program with the options of ``check`` applied; each bad option is one line naming it."""
    import math

    from ..errors import OptionError, ProgramError
    from ..program import MAX_AMPLITUDE_MA, MAX_PAD_CM
    from ..units import parse_pad_size_cm

    if amplitude_ma is not None:
        if not math.isfinite(amplitude_ma):
            raise OptionError(f"Invalid value for '--amplitude-ma': not a finite number; allowed a finite number "
                              f"0 < X <= {MAX_AMPLITUDE_MA:g} mA, but got {amplitude_ma!r}.")
        if not (0 < amplitude_ma <= MAX_AMPLITUDE_MA):
            raise OptionError(f"Invalid value for '--amplitude-ma': allowed 0 < X <= {MAX_AMPLITUDE_MA:g} mA, but got "
                              f"{amplitude_ma:g}.")
    pad = parse_pad_size_cm(electrode) if electrode else None
    if pad is not None and not all(math.isfinite(x) and 0 < x <= MAX_PAD_CM for x in pad):
        raise OptionError(f"Invalid value for '--electrode': allowed WxH with each side 0 < x <= {MAX_PAD_CM:g} cm, "
                          f"but got {electrode!r}.")
    if site is not None:
        from ..anatomy import get_site

        get_site(site)
    if amplitude_ma is None and pad is None and site is None:
        return p
    try:
        return p.with_changes(max_amplitude_ma=amplitude_ma, electrode_cm=pad, site=site)
    except ProgramError as exc:  # what the options made of the program does not validate: one line
        options = " ".join(f"{name} {value}" for name, value in (("--amplitude-ma", amplitude_ma),
                           ("--electrode", electrode), ("--site", site)) if value is not None)
        first = exc.problems[0] if exc.problems else ("", str(exc), None)
        raise OptionError(f"Invalid options '{options}' for {p.id}: {first[0]}: {first[1]}.") from None


_VERDICT_STYLE = {"ok": "bold green", "needs_confirmation": "bold yellow", "refused": "bold red"}


@app.command()
@_guard
def check(
    ref: ProgramRef,
    amplitude_ma: Annotated[float | None, typer.Option("--amplitude-ma", help="check at this maximum amplitude (mA) instead of the program's")] = None,
    electrode: Annotated[str | None, typer.Option("--electrode", metavar="WxH_CM", help="use pads of this size on every channel, e.g. 5x5")] = None,
    site: Annotated[str | None, typer.Option("--site", help="put every pad on this body site")] = None,
    patient: Annotated[Path | None, typer.Option("--patient", help="patient profile .toml (conditions)")] = None,
    device: Annotated[Device | None, typer.Option("--device", help=(
        "device capability profile (default: hvpc for a program set in volts, else generic)"))] = None,
    json_: JsonOpt = False,
) -> None:
    """Check a program: verdict (ok, needs confirmation, refused), reasons and dose at its highest amplitude.

    Exit code: 0 ok, 3 needs confirmation, 1 refused, 2 bad input. For a sine carrier
    (Russian, interferential) the dose counts carrier cycles, not pulses: the table
    says "cycles", and so do its JSON keys (cycle_count, max_cycle_rate_hz,
    max_energy_per_cycle_mj, ... for pulse_count, max_pulse_rate_hz, ...); each
    output's "counts" says which.
    """
    from ..program import load_patient_file
    from ..safety import assess

    _ENDING["streams_only"] = True  # (it writes nothing but its output: see ends_at_once)
    p = _apply_overrides(_load(ref), amplitude_ma, electrode, site)
    pat = load_patient_file(patient) if patient else None
    a = assess(p, patient=pat, device=None if device is None else device.value)
    code = {"ok": EXIT_OK, "needs_confirmation": EXIT_NEEDS_CONFIRMATION, "refused": EXIT_REFUSED}[a.verdict]
    if json_:
        _emit_json(assessment_json(a))
        raise typer.Exit(code)
    _print_assessment(a)
    raise typer.Exit(code)


#: pulse shapes whose "pulses" in the dose are cycles of a sine carrier
_CARRIER_SHAPES = ("sine-burst", "interferential")


def _carrier_kinds(program: Program, output_index: int) -> set[bool]:
    """What an output's dose counts, phase by phase: True where it delivers a sine carrier (Russian,
    interferential: carrier cycles), False where it delivers pulses; both for a program that mixes them."""
    outputs = program.outputs
    if not 0 <= output_index < len(outputs):
        return {False}
    return {st.pulse.shape in _CARRIER_SHAPES for st in program.stimuli(outputs[output_index].channel_index)}


def assessment_json(a: Assessment) -> dict[str, Any]:
    """The JSON of ``check``: the assessment, with dose keys that say what they count.

    An output that delivers a sine carrier (Russian current, interferential) has no
    pulses: its dose counts carrier cycles. There every dose key that says "pulse"
    says "cycle" instead (``cycle_count``, ``max_cycle_rate_hz``,
    ``max_net_charge_per_cycle_uc``, ``net_charge_per_cycle_uc``,
    ``max_energy_per_cycle_mj``); every output says what it counts in ``counts``
    (``"pulses"``, ``"carrier cycles"``, or ``"pulses and carrier cycles"`` for a
    multi-phase program that delivers both: its keys keep "pulse").

    Parameters
    ----------
    a : Assessment
        The assessment.

    Returns
    -------
    dict
        Ready for JSON.
    """
    data = a.to_dict()
    outputs = (data.get("dose") or {}).get("outputs") or []
    for o in outputs:
        kinds = _carrier_kinds(a.program, o.get("output", -1))
        if kinds == {True}:
            for key in [k for k in o if "pulse" in k]:
                o[key.replace("pulse", "cycle")] = o.pop(key)
        o["counts"] = {frozenset({True}): "carrier cycles", frozenset({False}): "pulses"}.get(
            frozenset(kinds), "pulses and carrier cycles")
    return data


def _dose_word(kinds: set[bool], pulse: str, cycle: str) -> str:
    """The word for what the outputs repeat: ``pulse``, ``cycle``, or both where they differ."""
    if kinds == {True}:
        return cycle
    if kinds == {False}:
        return pulse
    return f"{pulse} (or {cycle})"


def _print_assessment(a: Assessment) -> None:
    p = a.program
    # names, labels, sites and messages hold the program author's text: shown as text, never as markup
    head = Text.assemble((a.verdict.replace("_", " ").upper(), _VERDICT_STYLE[a.verdict]),
                         f"  {p.id} on {a.device.name}" + (f", patient {a.patient.id}" if a.patient else ""),
                         "\nchecked at the highest amplitude the program allows, into 500 Ω"
                         + ("; outputs set in volts at their highest voltage, into 200 Ω"
                            if any(c.stimulus.amplitude.voltage_controlled for c in p.channels) else ""))
    out.print(Panel.fit(head, border_style=_VERDICT_STYLE[a.verdict].split()[-1]))
    if a.reasons:
        t = Table(title="Reasons", title_justify="left", show_lines=True)
        t.add_column("verdict")
        t.add_column("rule and why", overflow="fold")
        for r in a.reasons:
            t.add_row(Text(r.verdict.replace("_", " "), style=_VERDICT_STYLE[r.verdict]),
                      Text.assemble((r.rule, "bold"), "\n", r.message, "\n", (f"source: {r.source}", "dim")))
        out.print(t)
    _print_phases(p)
    from ..program import VOLTAGE_LOAD_OHM

    d = a.dose
    # an output set in volts delivers its energy and power into VOLTAGE_LOAD_OHM (see compute_dose)
    volts = [bool(o.set_voltage_v) for o in d.outputs]
    load = (f"load {VOLTAGE_LOAD_OHM:g} Ω" if volts and all(volts) else
            f"load {d.load_ohm:g} Ω, outputs set in volts {VOLTAGE_LOAD_OHM:g} Ω" if any(volts) else
            f"load {d.load_ohm:g} Ω")
    t = Table(title=f"Dose at the highest amplitude ({load}; during = highest {d.window_s:g} s window)",
              title_justify="left")
    t.add_column("figure")
    for o in d.outputs:
        t.add_column(Text(o.label), justify="right")
    # a sine carrier (Russian, interferential) has no pulses: its figures count carrier cycles
    each = [_carrier_kinds(p, o.output) for o in d.outputs]
    kinds = set().union(*each)
    within = any(len(k) == 2 for k in each)  # an output of pulses and carrier phases counts both
    rate = _dose_word(kinds, "highest pulse rate (Hz)", "highest carrier rate (cycles/s)")
    if kinds == {True, False}:
        rate = "highest pulse rate (Hz) or carrier rate (cycles/s)"
    rows = [
        ("amplitude (mA)", lambda o: _num(o.amplitude_ma)),
        *([("set voltage (V)", lambda o: _num(o.set_voltage_v) if o.set_voltage_v else "—")]
          if any(o.set_voltage_v for o in d.outputs) else []),
        (rate, lambda o: _num(o.max_pulse_rate_hz, 5)),
        (f"charge per {_dose_word(kinds, 'phase', 'half-cycle')} (µC)", lambda o: _num(o.max_phase_charge_uc)),
        (f"net charge per {_dose_word(kinds, 'pulse', 'cycle')} (µC)", lambda o: _num(o.net_charge_per_pulse_uc)),
        ("net charge, session (µC)", lambda o: _num(o.net_charge_session_uc)),
        ("rms current during / session (mA)", lambda o: f"{_num(o.rms_current_ma)} / {_num(o.rms_current_session_ma)}"),
        ("average current during / session (mA)", lambda o: f"{_num(o.average_current_ma)} / {_num(o.average_current_session_ma)}"),
        ("DC component (mA)", lambda o: _num(o.dc_current_ma)),
        (f"energy per {_dose_word(kinds, 'pulse', 'cycle')} (mJ)", lambda o: _num(o.max_energy_per_pulse_mj)),
        ("power during / session (mW)", lambda o: f"{_num(o.average_power_mw)} / {_num(o.average_power_session_mw)}"),
        ("pulses and carrier cycles in session" if within
         else f"{_dose_word(kinds, 'pulses', 'carrier cycles')} in session", lambda o: str(o.pulse_count)),
    ]
    for name, fn in rows:
        t.add_row(Text(name), *[Text(fn(o)) for o in d.outputs])
    out.print(t)
    t = Table(title="Per electrode", title_justify="left")
    for col in ("pad", "cm²", "mA/cm² rms", "W/cm²", "µC/cm²", "k"):
        t.add_column(col, justify="right" if col != "pad" else "left")
    for o in d.outputs:
        for i, e in enumerate(o.electrodes, 1):
            t.add_row(Text(f"{o.label} {i}: {e.site}{' ' + e.side if e.side else ''} ({e.size})"), _num(e.area_cm2),
                      _num(e.rms_current_density_ma_per_cm2), _num(e.average_power_density_w_per_cm2),
                      _num(e.charge_density_uc_per_cm2), "—" if e.shannon_k is None else f"{e.shannon_k:.2f}")
    out.print(t)
    out.print(Text("k: Shannon's k = log10(charge density × charge per phase)", style="dim"))
    for w in a.warnings:
        out.print(Text(f"warning: {w}", style="dim"))


# --------------------------------------------------------------------------- plot and export


@app.command()
@_guard
def plot(
    ref: ProgramRef,
    output: Annotated[Path, typer.Option("-o", "--output", help="figure file (.png, .svg or .pdf) in an existing folder")],
    level: Annotated[Level, typer.Option("--level", help="amplitude to draw: the program's default or its maximum")] = Level.default,
    json_: JsonOpt = False,
) -> None:
    """Draw the pulse shape, a pulse train and the session envelope."""
    from ..errors import check_option, check_output_file
    from ..waveform import plot_program

    check_option("figure format", output.suffix.lower(), [".png", ".svg", ".pdf"])
    check_output_file("--output", output)  # no folder is created
    p = _load(ref)
    plot_program(p, output, level=level.value)
    if json_:
        _emit_json({"program": p.id, "figure": str(output)})
    else:
        out.print(Text(f"wrote {output}"), soft_wrap=True)  # a file name is text, never markup, on one line


@app.command()
@_guard
def export(
    ref: ProgramRef,
    output: Annotated[Path, typer.Option("-o", "--output", help="output file, in an existing folder")],
    fmt: Annotated[Format | None, typer.Option("--format", help="csv or npz (default: from the file suffix)")] = None,
    start_s: Annotated[float, typer.Option("--start-s", help="window start in the session (s)")] = 0.0,
    duration_s: Annotated[float, typer.Option("--duration-s", help="window length (s)")] = 1.0,
    sample_rate_hz: Annotated[float, typer.Option("--sample-rate-hz", help="sampling rate (Hz)")] = 100_000.0,
    level: Annotated[Level, typer.Option("--level", help="amplitude: the program's default or its maximum")] = Level.default,
    json_: JsonOpt = False,
) -> None:
    """Write the sampled current of every output (CSV or NumPy .npz)."""
    from rich.progress import Progress

    from ..errors import check_option, check_output_file
    from ..session import check_number
    from ..waveform import Schedule, export_waveform
    from ..waveform._export import check_export_window, export_size_bytes

    check_number("--sample-rate-hz", sample_rate_hz, low=1.0, high=100e6, low_open=False)
    check_output_file("--output", output)  # no folder is created
    p = _load(ref)
    check_number("--start-s", start_s, low=0.0, high=p.session_duration_s, low_open=False)
    check_number("--duration-s", duration_s, low=0.0, high=p.session_duration_s)
    if start_s + duration_s > p.session_duration_s * (1 + 1e-12):  # never clipped
        raise InvalidInputError(f"Invalid value for '--duration-s': the window must end within the session "
                                f"({p.session_duration_s:g} s): allowed up to {p.session_duration_s - start_s:g} s from "
                                f"--start-s {start_s:g}, but got {duration_s:g}.")
    sched = Schedule(p, level=level.value)
    kind = check_option("format", fmt.value if fmt else output.suffix.lstrip(".").lower(), ["csv", "npz"])
    check_export_window(sched, kind, start_s, duration_s, sample_rate_hz)
    size = export_size_bytes(len(sched.outputs), duration_s, sample_rate_hz, kind)
    if size >= 10e6:  # a big file says its size before it is written
        err.out(f"writing up to about {size / 1e6:.0f} MB to {output} ({duration_s:g} s at {sample_rate_hz:g} Hz, "
                f"{len(sched.outputs)} output{'s' * (len(sched.outputs) > 1)})")
    if json_ or not sys.stderr.isatty():
        path = export_waveform(sched, output, fmt.value if fmt else None, start_s, duration_s, sample_rate_hz)
    else:
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task(f"exporting {p.id}", total=1.0)
            path = export_waveform(sched, output, fmt.value if fmt else None, start_s, duration_s, sample_rate_hz,
                                   progress=lambda f: bar.update(task, completed=f))
    info: dict[str, Any] = {"program": p.id, "file": str(path), "format": (fmt.value if fmt else path.suffix.lstrip(".")),
            "start_s": start_s, "duration_s": duration_s, "bytes": path.stat().st_size,
            "sample_rate_hz": sample_rate_hz, "outputs": [o.label for o in sched.outputs]}
    if json_:
        _emit_json(info)
    else:
        out.print(Text(f"wrote {path} ({info['format']}, {len(info['outputs'])} outputs, {info['duration_s']:g} s at "
                       f"{sample_rate_hz:g} Hz)"), soft_wrap=True)  # a file name is text, never markup


#: how the command that ran may end (see :func:`ends_at_once`)
_ENDING = {"streams_only": False}


def ends_at_once() -> bool:
    """Whether the command that ran wrote nothing but its standard output and error (``check``), and no other thread
    runs: the process may then end without tearing the interpreter down (see ``electrostim.__main__``)."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    return _ENDING["streams_only"] and not others


def main() -> None:
    """Entry point of the ``electrostim`` command."""
    try:
        app()
    except KeyboardInterrupt:
        if _Signals.seen is not None:
            _interrupted_exit()
        err.out("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:  # an internal error: short message unless debugging
        if _Signals.seen is not None:  # a signal's KeyboardInterrupt may surface wrapped (in a class being made)
            _interrupted_exit()
        if os.environ.get("ELECTROSTIM_DEBUG"):
            raise
        err.out(f"internal error: {type(exc).__name__}: {exc} (set ELECTROSTIM_DEBUG=1 for the traceback)")
        raise SystemExit(1) from None
