"""The verdict engine: one function, three verdicts, reasons that name their rule and source.

:func:`assess` evaluates a program at the highest amplitude it allows (rounded up to
the device's current step), on the given device, for the given patient, against the
limit, device and contraindication tables. Only an :class:`Assessment` can make an
:class:`ApprovedPlan`, and only when its verdict allows it.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict

from .. import anatomy
from ..errors import ProgramError, RefusedError, SafetyError
from ..program import PULSED_SHAPES, VOLTAGE_LOAD_OHM, Electrode, Interferential, Patient, Program, SineBurst, validate_program
from ..waveform import DEFAULT_LOAD_OHM, Dose, compute_dose, shared_dose_figures
from ._tables import ConditionRule, DeviceProfile, PathRule, SiteRule, contraindication_tables, get_device, limit_rules, program_rules

__all__ = ["Reason", "Assessment", "ApprovedPlan", "PlanEnvelope", "OutputEnvelope", "assess", "VERDICTS",
           "asymmetric_second_phase", "default_device", "program_snapshot"]

VerdictName = Literal["ok", "needs_confirmation", "refused"]
#: The three verdicts, from best to worst.
VERDICTS: tuple[str, ...] = ("ok", "needs_confirmation", "refused")


class Reason(BaseModel):
    """Why a program needs confirmation or is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    verdict: Literal["needs_confirmation", "refused"]
    source: str
    message: str
    output: str | None = None


class OutputEnvelope(BaseModel):
    """The approved limits of one output: later intensity changes are checked against them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    output: int
    label: str
    channel: str
    max_amplitude_ma: float
    default_amplitude_ma: float
    #: widest first phase (rectangular pulses) or sine half-wave (kHz carriers), µs
    max_pulse_width_us: float
    #: widest phase of any kind (the long second phase of an asymmetric pulse included), µs
    max_phase_width_us: float
    max_pulse_rate_hz: float
    #: highest repetition rate (pulses, bursts or beats) the program names: a device's period never runs faster
    max_repetition_hz: float
    min_electrode_area_cm2: float


class PlanEnvelope(BaseModel):
    """Everything an approved plan allows. Immutable: its outputs are a tuple."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str
    current_step_ma: float
    load_ohm: float
    #: SHA-256 of the approved program's canonical JSON (the snapshot devices configure from)
    program_sha256: str
    outputs: tuple[OutputEnvelope, ...]


# --------------------------------------------------------------------------- the snapshot


def _canonical_json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def program_snapshot(program: Program) -> tuple[str, str]:
    """A program's canonical JSON text and its SHA-256, re-validated: what an assessment judges and a plan keeps.

    The program is dumped and validated again, so a program changed without validation
    (e.g. by pydantic's ``model_copy(update=...)``) is judged by what it holds, and a value
    that is not a finite number is refused as bad input.

    Raises
    ------
    ProgramError
        The program does not validate (a NaN or infinite figure, a value out of range).

    Examples
    --------
    >>> import electrostim as es
    >>> text, sha = program_snapshot(es.load_program("knee-oa-tens"))
    >>> len(sha), text.startswith("{")
    (64, True)
    """
    text, sha, _ = _snapshot(program)
    return text, sha


def _snapshot(program: Program) -> tuple[str, str, Program]:
    """:func:`program_snapshot`, and the program validated from its text (a new copy: what is judged)."""
    if not isinstance(program, Program):
        raise ProgramError(f"Invalid program: allowed an electrostim Program, but got {type(program).__name__}.")
    try:
        document = program.model_dump(mode="json")
        text = _canonical_json(document)
    except (TypeError, ValueError) as exc:
        raise ProgramError(f"program {getattr(program, 'id', '?')!r}: a figure is not a finite number ({exc}); "
                           "nothing can be assessed") from None
    judged = validate_program(json.loads(text), source=f"program {document.get('id')!r}")
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest(), judged


def _from_snapshot(text: str) -> Program:
    return Program.model_validate_json(text)


def _phase_widths_us(program: Program, output_index: int) -> tuple[float, float]:
    """(widest first phase, widest phase of any kind) of an output over every phase of the program, µs."""
    out = program.outputs[output_index]
    widths = [_stimulus_widths_us(st) for st in program.stimuli(out.channel_index)]
    return max(w[0] for w in widths), max(w[1] for w in widths)


def _max_repetition_hz(program: Program, output_index: int) -> float:
    """The highest repetition rate an output reaches in any phase of the program."""
    return max(st.max_repetition_hz for st in program.stimuli(program.outputs[output_index].channel_index))


def _stimulus_widths_us(stimulus: Any) -> tuple[float, float]:
    p = stimulus.pulse
    if p.shape == "sine-burst":
        half = 0.5e6 / p.carrier_frequency_hz
        return half, half
    if p.shape == "interferential":
        half = 0.5e6 / p.carrier_frequency_hz  # circuit b runs at carrier + beat: shorter half-waves
        return half, half
    w = p.pulse_width_us
    return w, w * (p.second_phase_ratio if p.shape == "asymmetric-biphasic" else 1.0)


# --------------------------------------------------------------------------- rules


def _fmt(template: str, **values: Any) -> str:
    try:
        return template.format(**values)
    except (KeyError, ValueError, IndexError):
        return template


def _device_reasons(program: Program, dev: DeviceProfile) -> tuple[list[Reason], dict[str, float]]:
    """Device capability checks, and each channel's maximum amplitude as the device will deliver it."""
    reasons: list[Reason] = []

    def add(rule: str, verdict: str, message: str, output: str | None = None) -> None:
        reasons.append(Reason(rule=f"device.{dev.id}.{rule}", verdict=verdict, source=dev.source, message=message, output=output))

    n_out = len(program.outputs)
    if n_out > dev.channels:
        add("channels", "refused", f"the program needs {n_out} outputs; {dev.name} has {dev.channels}")
    amps: dict[str, float] = {}
    for ch in program.channels:
        st = ch.stimulus
        p = st.pulse
        if p.shape not in dev.shapes:
            add("shape", "refused", f"{dev.name} cannot make {p.shape!r} pulses (it makes {', '.join(dev.shapes)})", ch.label)
        for rule, message in _control_reasons(ch.label, st, p, dev):
            add(rule, "refused", message, ch.label)
        a = st.amplitude.max_ma
        if dev.current_step_ma > 0:
            steps = math.ceil(a / dev.current_step_ma - 1e-9)
            rounded = round(steps * dev.current_step_ma, 9)
            if abs(rounded - a) > 1e-9:
                add("current-step", "needs_confirmation",
                    f"{dev.name} sets current in {dev.current_step_ma:g} mA steps: the maximum {a:g} mA is delivered and checked as {rounded:g} mA",
                    ch.label)
            a = rounded
        amps[ch.label] = a
        if a > dev.current_max_ma and st.amplitude.voltage_controlled == dev.voltage_controlled:
            add("current-range", "refused", f"maximum amplitude {a:g} mA exceeds the device's {dev.current_max_ma:g} mA", ch.label)
        if p.shape in PULSED_SHAPES:
            widths = [p.pulse_width_us]
            if p.shape == "asymmetric-biphasic":
                widths.append(p.pulse_width_us * p.second_phase_ratio)
            wm = st.width_modulation
            low = p.pulse_width_us * (wm.low_percent / 100.0 if wm else 1.0)
            if low < dev.pulse_width_min_us or max(widths) > dev.pulse_width_max_us:
                add("pulse-width-range", "refused",
                    f"phase widths {low:g}-{max(widths):g} µs are outside the device's {dev.pulse_width_min_us:g}-{dev.pulse_width_max_us:g} µs",
                    ch.label)
            rate = max(st.max_repetition_hz, p.frequency_hz)
            if rate > dev.max_pulse_rate_hz:
                add("pulse-rate", "refused", f"pulse rate up to {rate:g} Hz exceeds the device's {dev.max_pulse_rate_hz:g} Hz", ch.label)
        else:
            assert isinstance(p, (SineBurst, Interferential))
            carrier = p.carrier_frequency_hz + (st.max_repetition_hz if p.shape == "interferential" else 0.0)
            if carrier > dev.max_carrier_hz:
                add("carrier", "refused", f"carrier up to {carrier:g} Hz exceeds what {dev.name} can make ({dev.max_carrier_hz:g} Hz)", ch.label)
    return reasons, amps



def _control_reasons(label: str, st: Any, p: Any, dev: DeviceProfile) -> list[tuple[str, str]]:
    """``(rule, message)`` of what a device cannot set: a voltage on a current-controlled device (or a current on a
    voltage-controlled one), a voltage above its highest, a phase shape it does not make."""
    out: list[tuple[str, str]] = []
    amp = st.amplitude
    if amp.voltage_controlled and not dev.voltage_controlled:
        out.append(("voltage-control", f"{label!r} is set in volts (up to {amp.max_v:g} V, {amp.max_ma:g} mA into "
                    f"{VOLTAGE_LOAD_OHM:g} Ω); {dev.name} sets a current (0-{dev.current_max_ma:g} mA): use a "
                    "voltage-controlled device, profile 'hvpc' (the simulated one: sim:hvpc)"))
    elif dev.voltage_controlled and not amp.voltage_controlled:
        out.append(("current-control", f"{label!r} is set in mA (up to {amp.max_ma:g} mA); {dev.name} sets a voltage "
                    f"(0-{dev.max_voltage_v:g} V): set it in volts (default_v, max_v)"))
    elif amp.voltage_controlled and amp.max_v is not None and amp.max_v > dev.max_voltage_v:
        out.append(("voltage-range", f"maximum voltage {amp.max_v:g} V exceeds the device's {dev.max_voltage_v:g} V"))
    phase = getattr(p, "phase_shape", None)
    if phase is not None and p.shape in dev.shapes and phase not in dev.phase_shapes:
        out.append(("phase-shape", f"{dev.name} cannot make {phase} phases (it makes {', '.join(dev.phase_shapes)})"))
    return out


def _describe_rate(st: Any) -> str:
    fm = st.frequency_modulation
    if fm is None:
        return f"{st.nominal_repetition_hz:g} Hz"
    if fm.kind == "alternating-frequency":
        return f"alternating {', '.join(f'{f:g}' for f in fm.frequencies_hz)} Hz"
    return f"{fm.kind} {fm.low_hz:g}-{fm.high_hz:g} Hz"


def _hold_points(duration_us: float, max_point_us: float = 4095.0) -> int:
    total = round(duration_us)
    return 0 if total <= 0 else math.ceil(total / max_point_us)


def shape_points(stimulus: Any) -> int:
    """Points one period's pulse shape takes on a device that draws shapes as points (the P24).

    A phase is one point (several when longer than 4095 µs), an interphase gap or a
    twin-peak spacing one point at 0 mA, a burst its pulses with a 0 mA point between
    them. The long second phase of an asymmetric pulse is counted at its longest.

    Examples
    --------
    >>> import electrostim as es
    >>> shape_points(es.load_program("tens-burst").channels[0].stimulus)
    39
    """
    p = stimulus.pulse
    w = p.pulse_width_us
    if p.shape == "monophasic":
        one = _hold_points(w)
        if p.twin_peak_spacing_us is not None:
            one += _hold_points(p.twin_peak_spacing_us) + _hold_points(w)
        duration = p.duration_us
    else:
        second = w * (p.second_phase_ratio if p.shape == "asymmetric-biphasic" else 1.0)
        one = _hold_points(w) + _hold_points(p.interphase_gap_us) + _hold_points(second)
        duration = w + p.interphase_gap_us + second
    burst = stimulus.burst
    if burst is None:
        return one
    spacing = 1e6 / p.frequency_hz - round(duration)
    return int(burst.pulses_per_burst * one + (burst.pulses_per_burst - 1) * _hold_points(spacing))


def asymmetric_second_phase(current_ma: float, width_us: float, ratio: float, *, current_step_ma: float,
                            width_step_us: float) -> tuple[float, float]:
    """The second phase ``(current_ma, width_us)`` of an asymmetric pulse as a device on a current and width grid
    delivers it: never above the schedule's.

    The schedule's second phase is ``current / ratio`` for ``width × ratio`` (the same
    charge as the first). On a grid both are rounded *down* (current to the current
    step, width to the width step), so that its current, width, charge and ∫i²dt stay at
    or below the schedule's; the pulse then carries a small net charge (the first
    phase's charge minus the second's). A second phase below one current
    step is not delivered at all (0 mA: below ``step × ratio`` of first-phase current
    the pulse is monophasic, its whole charge net; :func:`assess` says how much).

    Parameters
    ----------
    current_ma, width_us : float
        The first phase (on the device's grid).
    ratio : float
        The program's ``second_phase_ratio`` (>= 1).
    current_step_ma, width_step_us : float
        The device's steps (0: continuous).

    Returns
    -------
    tuple of float
        Second phase current (mA, >= 0) and width (µs).

    Examples
    --------
    >>> asymmetric_second_phase(99.5, 37.0, 3.0, current_step_ma=0.5, width_step_us=1.0)
    (33.0, 111.0)
    """
    def down(x: float, step: float) -> float:
        return math.floor(x / step + 1e-9) * step if step > 0 else x

    if current_ma <= 0:
        return 0.0, down(width_us * ratio, width_step_us)
    second = down(current_ma / ratio, current_step_ma)
    width = down(width_us * ratio, width_step_us)
    return second, width


def _realize(program: Program, dev: DeviceProfile) -> tuple[Program, list[Reason]]:
    """The program as ``dev`` delivers it, and the reasons that say what changed or cannot be delivered.

    A period off the device's grid is rounded *up* (never faster than asked), an
    interphase gap the device fixes takes its value, a width off the device's step is
    rounded to it: each needs confirmation, and the program is then judged, approved
    and delivered as changed. What the drivers cannot deliver is refused, with the
    numbers: a varying rate on a fixed-rate device, a period or burst interval out of
    range, more pulses per burst than a period carries, outputs whose periods one main
    interval cannot serve, a pulse shape of more points than the device takes.
    """
    reasons: list[Reason] = []

    def add(rule: str, verdict: str, message: str, output: str | None = None) -> None:
        reasons.append(Reason(rule=f"device.{dev.id}.{rule}", verdict=verdict, source=dev.source, message=message, output=output))

    data = program.model_dump(mode="python")
    changed = False
    periods: dict[str, float] = {}
    bursts: dict[str, float] = {}
    for ci, ch in enumerate(program.channels):
        st, p, label = ch.stimulus, ch.stimulus.pulse, ch.label
        if p.shape not in PULSED_SHAPES:
            continue  # kHz carriers: the shape check refuses them where the device cannot make them
        cst = data["channels"][ci]["stimulus"]
        if st.frequency_modulation is not None and dev.fixed_rate:
            add("fixed-rate", "refused", f"{dev.name} runs each output at one fixed rate, but the rate of {label!r} "
                f"varies ({_describe_rate(st)})", label)
            continue
        grid = dev.period_step_ms
        if grid > 0:
            rate = st.nominal_repetition_hz
            period = 1000.0 / rate
            real = round(math.ceil(period / grid - 1e-9) * grid, 9)
            if real < dev.min_period_ms - 1e-9 or real > dev.max_period_ms + 1e-9:
                add("period-range", "refused", f"{label!r} repeats every {period:.6g} ms ({rate:g} Hz); {dev.name} "
                    f"takes periods of {dev.min_period_ms:g} to {dev.max_period_ms:g} ms", label)
                continue
            if abs(real - period) > 1e-9:
                new = 1000.0 / real
                cst["burst" if st.burst is not None else "pulse"]["burst_frequency_hz" if st.burst is not None
                                                                   else "frequency_hz"] = new
                changed = True
                add("period-step", "needs_confirmation", f"{dev.name} sets periods in {grid:g} ms steps: {label!r} at "
                    f"{rate:g} Hz ({period:.6g} ms) is delivered and checked at {new:.6g} Hz ({real:g} ms)", label)
            periods[label] = real
        if st.burst is not None:
            n = st.burst.pulses_per_burst
            if n > dev.max_pulses_per_burst:
                add("burst-pulses", "refused", f"{label!r} has bursts of {n} pulses; {dev.name} delivers at most "
                    f"{dev.max_pulses_per_burst} per period", label)
                continue
            step = dev.burst_interval_step_ms
            if step > 0:
                ipi = 1000.0 / p.frequency_hz
                real_ipi = round(math.ceil(ipi / step - 1e-9) * step, 9)
                if real_ipi < dev.min_burst_interval_ms - 1e-9 or real_ipi > dev.max_burst_interval_ms + 1e-9:
                    add("burst-interval", "refused", f"the pulses of {label!r}'s bursts are {ipi:.6g} ms apart "
                        f"({p.frequency_hz:g} Hz); {dev.name} takes {dev.min_burst_interval_ms:g} to "
                        f"{dev.max_burst_interval_ms:g} ms", label)
                    continue
                if abs(real_ipi - ipi) > 1e-9:
                    cst["pulse"]["frequency_hz"] = 1000.0 / real_ipi
                    changed = True
                    add("burst-interval-step", "needs_confirmation", f"{dev.name} sets the interval between the "
                        f"pulses of a burst in {step:g} ms steps: {label!r}'s {ipi:.6g} ms is delivered as "
                        f"{real_ipi:g} ms", label)
                bursts[label] = real_ipi
        gap = getattr(p, "interphase_gap_us", None)
        if dev.fixed_interphase_gap_us is not None and gap is not None and abs(gap - dev.fixed_interphase_gap_us) > 1e-9:
            cst["pulse"]["interphase_gap_us"] = dev.fixed_interphase_gap_us
            changed = True
            add("interphase-gap", "needs_confirmation", f"{dev.name} uses a fixed {dev.fixed_interphase_gap_us:g} µs "
                f"interphase gap; the program asks for {gap:g} µs (delivered and checked with "
                f"{dev.fixed_interphase_gap_us:g} µs)", label)
        wstep = dev.pulse_width_step_us
        if wstep > 0:
            w = p.pulse_width_us
            real_w = round(round(w / wstep) * wstep, 9)
            if abs(real_w - w) > 1e-9 and real_w > 0:
                cst["pulse"]["pulse_width_us"] = real_w
                changed = True
                add("pulse-width-step", "needs_confirmation", f"{dev.name} sets pulse width in {wstep:g} µs steps: "
                    f"{label!r}'s {w:g} µs is delivered and checked as {real_w:g} µs", label)
    if dev.max_rate_factor > 0 and len(set(periods.values())) > 1:
        base = min(periods.values())
        factors = {round(v / base, 9) for v in periods.values()}
        slow = factors - {1.0}
        if len(slow) > 1 or any(abs(k - round(k)) > 1e-9 or k > dev.max_rate_factor for k in slow):
            add("main-interval", "refused", f"{dev.name} runs its outputs at one main interval, and some every k-th "
                f"period (k <= {dev.max_rate_factor}, one k for all); this program's outputs repeat every "
                f"{', '.join(f'{lbl} {v:g} ms' for lbl, v in periods.items())}")
    if len(set(bursts.values())) > 1 and dev.max_rate_factor > 0:
        add("burst-interval", "refused", f"{dev.name} has one interval between the pulses of every burst, but this "
            f"program's bursts use {', '.join(f'{lbl} {v:g} ms' for lbl, v in bursts.items())}")
    if not changed:
        realized = program
    else:
        try:
            realized = validate_program(data, source=f"program {program.id!r} as {dev.name} delivers it")
        except ProgramError as exc:
            add("realize", "refused", f"{exc}")
            return program, reasons
    if dev.current_step_ma > 0:
        for ch in realized.channels:
            p = ch.stimulus.pulse
            if p.shape != "asymmetric-biphasic":
                continue
            top = ch.stimulus.amplitude.max_ma
            step, w = dev.current_step_ma, p.pulse_width_us
            net = 0.0
            for k in range(1, int(math.floor(top / step + 1e-9)) + 1):  # every current the device can set
                second, w2 = asymmetric_second_phase(k * step, w, p.second_phase_ratio, current_step_ma=step,
                                                     width_step_us=dev.pulse_width_step_us)
                net = max(net, k * step * w - second * w2)
            if net > 1e-9:
                add("asymmetric-balance", "needs_confirmation", f"{dev.name} sets currents in {step:g} mA and widths "
                    f"in {dev.pulse_width_step_us:g} µs steps: the second phase of {ch.label!r}'s asymmetric pulses is "
                    f"rounded down (never above the program's), leaving up to {net * 1e-3:.3g} µC net charge per "
                    "pulse", ch.label)
    if dev.max_shape_points > 0:
        for ch in realized.channels:
            if ch.stimulus.pulse.shape in PULSED_SHAPES:
                n = shape_points(ch.stimulus)
                if n > dev.max_shape_points:
                    add("shape-points", "refused", f"one period of {ch.label!r} needs a pulse shape of {n} points; "
                        f"{dev.name} takes {dev.max_shape_points}", ch.label)
    return realized, reasons

def _per_phase(program: Program, dev: DeviceProfile, patient: Patient | None = None) -> tuple[Program, list[Reason], dict[str, float]]:
    """Device and program checks of every phase (each phase is configured on its own), and the program as the
    device delivers each phase.

    A reason that holds in every phase is given once; one that holds in some phases
    names them. Returns the realized program, the reasons and each channel's maximum
    amplitude as the device delivers it (the channel's in every phase).
    """
    spans = program.phase_spans
    if len(spans) == 1:
        realized, reasons = _realize(program, dev)
        if reasons:  # what the device delivers is what is judged: validate it as such
            realized = _snapshot(realized)[2]
        device_reasons, amps = _device_reasons(realized, dev)
        return realized, reasons + device_reasons + _program_reasons(realized), amps
    found: dict[tuple[str, VerdictName, str, str, str | None], list[str]] = {}
    data = program.model_dump(mode="python")
    changed = False
    for k, span in enumerate(spans):
        realized, reasons = _realize(span.program, dev)
        device_reasons, amps = _device_reasons(realized, dev)
        for r in reasons + device_reasons + _program_reasons(realized):
            found.setdefault((r.rule, r.verdict, r.source, r.message, r.output), []).append(span.name)
        if realized is not span.program:
            changed = True
            for ch in realized.channels:
                data["phases"][k]["channels"][ch.label]["stimulus"] = ch.stimulus.model_dump(mode="python")
    out = []
    for (rule, verdict, source, message, output), names in found.items():
        if len(names) < len(spans):
            message = f"phase{'s' * (len(names) > 1)} {', '.join(repr(n) for n in names)}: {message}"
        out.append(Reason(rule=rule, verdict=verdict, source=source, message=message, output=output))
    if changed:
        try:
            program = validate_program(data, source=f"program {program.id!r} as {dev.name} delivers it")
        except ProgramError as exc:
            out.append(Reason(rule=f"device.{dev.id}.realize", verdict="refused", source=dev.source, message=f"{exc}"))
    return program, out, amps


def _name_phases(program: Program, reasons: list[Reason], amps: dict[str, float], load: float) -> list[Reason]:
    """The dose reasons of a multi-phase program, each naming the phases it holds in.

    Each phase is dosed on its own (at its part of the intensity, with its part of the
    budget of the bounds and sums, as in the whole program's dose); a reason of the whole
    session names the phases whose own dose breaches the same rule on the same output,
    or says that it arises only in a window across a boundary between phases.
    """
    spans = program.phase_spans
    if len(spans) < 2 or not reasons:
        return reasons
    held: dict[tuple[str, str | None], list[str]] = {}
    for span in spans:
        if span.intensity_percent <= 0:
            continue
        part = compute_dose(span.program, amplitude_ma={k: v * span.intensity_percent / 100.0 for k, v in amps.items()},
                            load_ohm=load, budget=1.0 / len(spans))
        for r in _limit_reasons(part):
            names = held.setdefault((r.rule, r.output), [])
            if span.name not in names:
                names.append(span.name)
    out = []
    for r in reasons:
        names = held.get((r.rule, r.output), [])
        if not names:
            where = "across a boundary between phases (no phase alone)"
        elif len(names) == len(spans):
            out.append(r)
            continue
        else:
            where = f"phase{'s' * (len(names) > 1)} {', '.join(repr(n) for n in names)}"
        out.append(r.model_copy(update={"message": f"{where}: {r.message}"}))
    return out


def _non_finite_reasons(dose: Dose) -> list[Reason]:
    """Fail closed: a dose figure that is not a finite number is a refusal (every comparison with NaN is false)."""
    reasons: list[Reason] = []
    for out in dose.outputs:
        items: list[tuple[BaseModel, str]] = [(out, out.label)]
        items += [(e, f"{out.label} pad {i + 1}") for i, e in enumerate(out.electrodes)]
        for item, where in items:
            for name, value in item:
                if isinstance(value, float) and not math.isfinite(value):
                    reasons.append(Reason(rule="safety.non-finite-figure", verdict="refused",
                                          source="electrostim: a figure that cannot be computed cannot be judged safe",
                                          message=f"{where}: {name} is {value!r}, not a finite number", output=out.label))
    return reasons


def _limit_reasons(dose: Dose) -> list[Reason]:
    reasons: list[Reason] = []
    for rule in limit_rules():
        for out in dose.outputs:
            items: list[tuple[BaseModel, str]]
            if rule.scope == "output":
                items = [(out, out.label)]
            else:
                items = [(e, f"{out.label} pad {i + 1} ({e.site}, {e.size})") for i, e in enumerate(out.electrodes)]
            for item, where in items:
                if rule.when is not None and not rule.when.holds(getattr(item, rule.when.metric)):
                    continue
                value = getattr(item, rule.metric)
                if value is not None and not math.isfinite(value):
                    continue  # refused by _non_finite_reasons
                if rule.breached(value):
                    reasons.append(Reason(rule=rule.id, verdict=rule.verdict, source=rule.source,
                                          message=f"{where}: " + _fmt(rule.message, value=value, limit=rule.limit), output=out.label))
    return reasons


def _program_reasons(program: Program) -> list[Reason]:
    reasons = []
    for rule in program_rules():
        if program.modality not in rule.modalities:
            continue
        for ch in program.channels:
            dc = ch.stimulus.duty_cycle
            if dc is None:
                continue
            if dc.on_s < rule.min_on_s or (dc.off_s < rule.min_off_s):
                reasons.append(Reason(rule=rule.id, verdict=rule.verdict, source=rule.source,
                                      message=f"{ch.label}: " + _fmt(rule.message, on_s=dc.on_s, off_s=dc.off_s), output=ch.label))
    return reasons


def _pad_in(pad: Electrode, target: str) -> bool:
    site, _, side = target.partition(":")
    return anatomy.site_matches(pad.site, site) and (not side or pad.side == side)


def _sides_compatible(a: str | None, b: str | None) -> bool:
    return a is None or b is None or "midline" in (a, b) or a == b


def _site_reasons(program: Program, patient: Patient | None) -> tuple[list[Reason], list[str]]:
    site_rules, path_rules, cond_rules, warnings = contraindication_tables()
    reasons: list[Reason] = []
    outputs = program.outputs
    pads = [(o.label, e) for o in outputs for e in o.electrodes]
    rule: SiteRule | PathRule | ConditionRule
    for rule in site_rules:
        hit = sorted({f"{lbl}: {e.site}" for lbl, e in pads if any(_pad_in(e, r) for r in rule.regions)})
        if hit:
            reasons.append(Reason(rule=rule.id, verdict=rule.verdict, source=rule.source, message=f"{rule.message} ({'; '.join(hit)})"))
    for rule in path_rules:
        for o in outputs:
            e1, e2 = o.electrodes
            if any((_pad_in(e1, x) and _pad_in(e2, y)) or (_pad_in(e1, y) and _pad_in(e2, x)) for x, y in rule.pairs):
                reasons.append(Reason(rule=rule.id, verdict=rule.verdict, source=rule.source,
                                      message=f"{o.label}: {rule.message} ({e1.site} to {e2.site})", output=o.label))
    if patient is not None:
        for rule in cond_rules:
            if rule.modalities and program.modality not in rule.modalities:
                continue
            for cond in patient.conditions:
                if cond.condition not in rule.conditions:
                    continue
                near = [(lbl, e) for lbl, e in pads if not rule.regions or any(anatomy.site_matches(e.site, r) for r in rule.regions)]
                if rule.localised and cond.sites:
                    near = [
                        (lbl, e) for lbl, e in near
                        if _sides_compatible(e.side, cond.side)
                        and any(anatomy.site_matches(e.site, s) for s in cond.sites)
                    ]
                if near:
                    where = ", ".join(sorted({e.site + (f" ({e.side})" if e.side else "") for _, e in near}))
                    reasons.append(Reason(rule=rule.id, verdict=rule.verdict, source=rule.source,
                                          message=f"{rule.class_}: {rule.message} [{cond.condition}; pads on {where}]"))
                    break
    return reasons, [w.message for w in warnings]


# --------------------------------------------------------------------------- results


_KEY = object()


class Assessment:
    """The safety engine's answer for one program, patient and device. Made only by :func:`assess`.

    The assessment keeps its own snapshot of the program (canonical JSON and its
    SHA-256): changing the program object afterwards changes nothing here, and
    :attr:`program` gives a new copy of what was judged each time.

    Attributes
    ----------
    verdict : {"ok", "needs_confirmation", "refused"}
    reasons : tuple of Reason
    warnings : tuple of str
        Standing warnings that do not change the verdict.
    dose : Dose
        The dose at the highest allowed amplitude, as the device delivers it (a copy).
    program_sha256 : str
        SHA-256 of the judged program's canonical JSON.
    """

    __slots__ = ("_verdict", "_reasons", "_warnings", "_dose", "_snapshot", "_sha256", "_program", "_patient",
                 "_device", "_amps", "_load")
    _verdict: str
    _reasons: tuple[Reason, ...]
    _warnings: tuple[str, ...]
    _dose: Dose
    _snapshot: str
    _sha256: str
    _program: Program
    _patient: Patient | None
    _device: DeviceProfile
    _amps: dict[str, float]
    _load: float

    def __init__(self, key: object, snapshot: tuple[str, str], program: Program, patient: Patient | None,
                 device: DeviceProfile, dose: Dose, reasons: list[Reason], warnings: list[str], amps: dict[str, float],
                 load_ohm: float):
        if key is not _KEY:
            raise SafetyError("an Assessment is made only by electrostim.safety.assess(...)")
        worst = max((VERDICTS.index(r.verdict) for r in reasons), default=0)
        object.__setattr__(self, "_verdict", VERDICTS[worst])
        object.__setattr__(self, "_reasons", tuple(reasons))
        object.__setattr__(self, "_warnings", tuple(warnings))
        object.__setattr__(self, "_dose", dose)
        object.__setattr__(self, "_snapshot", snapshot[0])
        object.__setattr__(self, "_sha256", snapshot[1])
        object.__setattr__(self, "_program", program)  # private: built from the snapshot, never handed out
        object.__setattr__(self, "_patient", None if patient is None else patient.model_copy(deep=True))
        object.__setattr__(self, "_device", device)
        object.__setattr__(self, "_amps", dict(amps))
        object.__setattr__(self, "_load", float(load_ohm))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("Assessment cannot be subclassed: only assess(...) makes one")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("an Assessment cannot be changed")

    def __reduce__(self) -> NoReturn:  # no copies that bypass the engine
        raise TypeError("an Assessment cannot be pickled or copied; assess the program again")

    verdict = property(lambda self: self._verdict)
    reasons = property(lambda self: self._reasons)
    warnings = property(lambda self: self._warnings)
    device = property(lambda self: self._device)
    program_sha256 = property(lambda self: self._sha256)

    @property
    def dose(self) -> Dose:
        return self._dose.model_copy(deep=True)

    @property
    def program(self) -> Program:
        """A new copy of the program that was judged."""
        return _from_snapshot(self._snapshot)

    @property
    def patient(self) -> Patient | None:
        return None if self._patient is None else self._patient.model_copy(deep=True)

    @property
    def ok(self) -> bool:
        return self._verdict == "ok"

    def __repr__(self) -> str:
        return f"Assessment({self._program.id!r}, verdict={self._verdict!r}, reasons={len(self._reasons)})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: verdict, reasons, warnings, device and dose."""
        return {
            "program": self._program.id,
            "program_sha256": self._sha256,
            "verdict": self._verdict,
            "reasons": [r.model_dump() for r in self._reasons],
            "warnings": list(self._warnings),
            "device": self._device.id,
            "patient": self._patient.id if self._patient else None,
            "dose": self._dose.model_dump(),
        }

    def envelope(self) -> PlanEnvelope:
        """The envelope an approved plan would carry."""
        outs = []
        dose = {o.label: o for o in self._dose.outputs}
        program = self._program
        for o in program.outputs:
            ch = program.channels[o.channel_index]
            st = ch.stimulus
            first_us, widest_us = _phase_widths_us(program, o.index)
            outs.append(OutputEnvelope(
                output=o.index,
                label=o.label,
                channel=ch.label,
                max_amplitude_ma=self._amps[ch.label],
                default_amplitude_ma=min(st.amplitude.default_ma, self._amps[ch.label]),
                max_pulse_width_us=first_us,
                max_phase_width_us=widest_us,
                max_pulse_rate_hz=dose[o.label].max_pulse_rate_hz,
                max_repetition_hz=_max_repetition_hz(program, o.index),
                min_electrode_area_cm2=min(e.area_cm2 for e in o.electrodes),
            ))
        return PlanEnvelope(device=self._device.id, current_step_ma=self._device.current_step_ma, load_ohm=self._load,
                            program_sha256=self._sha256, outputs=tuple(outs))

    def approve(self, confirm: bool = False, confirmed_by: str | None = None) -> ApprovedPlan:
        """Make the approved plan.

        Parameters
        ----------
        confirm : bool
            Must be true when the verdict is ``needs_confirmation``: the caller has
            read the reasons and takes responsibility.
        confirmed_by : str, optional
            Who confirmed (recorded with the plan).

        Raises
        ------
        RefusedError
            The verdict is ``refused``.
        SafetyError
            The verdict needs confirmation and ``confirm`` is false.
        """
        if self._verdict == "refused":
            lines = "\n  - ".join(f"[{r.rule}] {r.message}" for r in self._reasons if r.verdict == "refused")
            raise RefusedError(f"program {self._program.id!r} is refused:\n  - {lines}")
        if self._verdict == "needs_confirmation" and not confirm:
            lines = "\n  - ".join(f"[{r.rule}] {r.message}" for r in self._reasons)
            raise SafetyError(f"program {self._program.id!r} needs confirmation (approve(confirm=True)):\n  - {lines}")
        return ApprovedPlan(_KEY, self, confirmed=self._verdict == "needs_confirmation", confirmed_by=confirmed_by)


class ApprovedPlan:
    """A program the safety engine approved, with its envelope. Made only by :meth:`Assessment.approve`.

    The plan holds an immutable snapshot of the program (canonical JSON and its
    SHA-256, :attr:`program_sha256`) and of the envelope. :attr:`program` is a new copy of
    the snapshot each time; a device configures from :meth:`verified_program`, which
    checks the copy against the snapshot's hash and the envelope first.

    Examples
    --------
    >>> import electrostim as es
    >>> plan = es.assess(es.load_program("tens-conventional")).approve()
    >>> plan.envelope.outputs[0].max_amplitude_ma
    50.0
    >>> plan.check_amplitude("low-back-left", 60.0)
    Traceback (most recent call last):
    ...
    electrostim.errors.SafetyError: 60 mA on output 'low-back-left' is outside the approved envelope (0 to 50 mA).
    """

    __slots__ = ("_assessment", "_envelope", "_confirmed", "_confirmed_by", "_approved_at")
    _assessment: Assessment
    _envelope: PlanEnvelope
    _confirmed: bool
    _confirmed_by: str | None
    _approved_at: datetime

    def __init__(self, key: object, assessment: Assessment, confirmed: bool, confirmed_by: str | None):
        if key is not _KEY:
            raise SafetyError("an ApprovedPlan is made only by electrostim.safety.assess(...).approve()")
        object.__setattr__(self, "_assessment", assessment)
        object.__setattr__(self, "_envelope", assessment.envelope())
        object.__setattr__(self, "_confirmed", bool(confirmed))
        object.__setattr__(self, "_confirmed_by", confirmed_by)
        object.__setattr__(self, "_approved_at", datetime.now(UTC))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("ApprovedPlan cannot be subclassed: only assess(...).approve() makes one")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("an ApprovedPlan cannot be changed")

    def __reduce__(self) -> NoReturn:  # no copies that bypass the engine
        raise TypeError("an ApprovedPlan cannot be pickled or copied; assess the program again")

    assessment = property(lambda self: self._assessment)
    envelope = property(lambda self: self._envelope)
    confirmed = property(lambda self: self._confirmed)
    confirmed_by = property(lambda self: self._confirmed_by)
    approved_at = property(lambda self: self._approved_at)
    program = property(lambda self: self._assessment.program)
    patient = property(lambda self: self._assessment.patient)
    device = property(lambda self: self._assessment.device)
    program_sha256 = property(lambda self: self._assessment.program_sha256)

    def __repr__(self) -> str:
        return f"ApprovedPlan({self._assessment._program.id!r}, device={self.device.id!r}, confirmed={self._confirmed})"

    def made_by_approve(self) -> bool:
        """Whether this object went through :meth:`Assessment.approve` (one built with ``object.__new__`` did not)."""
        try:
            return isinstance(object.__getattribute__(self, "_assessment"), Assessment)
        except AttributeError:
            return False

    def verified_program(self) -> Program:
        """A new copy of the approved program, checked against the snapshot's hash and the envelope.

        What a device configures from. Each output's maximum amplitude, pulse and phase
        widths, highest repetition rate and smallest pad must lie in the envelope, and
        the outputs must be the envelope's, in its order.

        Raises
        ------
        SafetyError
            The copy differs from what was approved.
        """
        program: Program = self.program
        text, sha = program_snapshot(program)
        if sha != self._envelope.program_sha256:
            raise SafetyError("The program differs from the approved snapshot (its SHA-256 changed): assess it again.")
        outs = program.outputs
        if [o.label for o in outs] != [e.label for e in self._envelope.outputs]:
            raise SafetyError("The program's outputs differ from the approved envelope's: assess it again.")
        step = self._envelope.current_step_ma
        for o, env in zip(outs, self._envelope.outputs):
            st = o.stimulus
            first_us, widest_us = _phase_widths_us(program, o.index)
            amp = st.amplitude.max_ma
            if step > 0:
                amp = math.ceil(amp / step - 1e-9) * step
            problems = []
            if amp > env.max_amplitude_ma + 1e-9:
                problems.append(f"maximum amplitude {amp:g} mA > {env.max_amplitude_ma:g} mA")
            if first_us > env.max_pulse_width_us + 1e-9 or widest_us > env.max_phase_width_us + 1e-9:
                problems.append(f"phase width {widest_us:g} µs > {env.max_phase_width_us:g} µs")
            area = min(e.area_cm2 for e in o.electrodes)
            if area < env.min_electrode_area_cm2 * (1 - 1e-12):
                problems.append(f"pad area {area:g} cm² < {env.min_electrode_area_cm2:g} cm²")
            if problems:
                raise SafetyError(f"Output {o.label!r} is outside the approved envelope: {'; '.join(problems)}.")
        return program

    def output_envelope(self, output: int | str) -> OutputEnvelope:
        """The envelope of one output, by index or label."""
        for o in self._envelope.outputs:
            if (isinstance(output, int) and not isinstance(output, bool) and o.output == output) or o.label == output:
                return o
        allowed = ", ".join(repr(o.label) for o in self._envelope.outputs)
        raise SafetyError(f"No output {output!r} in the approved plan: allowed {allowed}.")

    def check_amplitude(self, output: int | str, amplitude_ma: float) -> float:
        """Return ``amplitude_ma`` if it lies in the approved envelope of ``output``, else raise :class:`SafetyError`."""
        env = self.output_envelope(output)
        if isinstance(amplitude_ma, (bool, str, bytes)):  # True is not 1 mA, "40" is not 40 mA
            raise SafetyError(f"{amplitude_ma!r} on output {env.label!r} is not an amplitude in mA (a number).")
        try:
            value = float(amplitude_ma)
        except (TypeError, ValueError):
            raise SafetyError(f"{amplitude_ma!r} on output {env.label!r} is not an amplitude in mA.") from None
        if not math.isfinite(value) or not (0.0 <= value <= env.max_amplitude_ma + 1e-9):
            raise SafetyError(
                f"{value:.12g} mA on output {env.label!r} is outside the approved envelope "
                f"(0 to {env.max_amplitude_ma:.12g} mA)."
            )
        return value


def default_device(program: Program) -> str:
    """The device profile a program is assessed on when none is named: ``hvpc`` for a program set in volts
    (a voltage-controlled, high-voltage pulsed current output), else ``generic``.

    Examples
    --------
    >>> import electrostim as es
    >>> default_device(es.load_program("hvpc-edema")), default_device(es.load_program("knee-oa-tens"))
    ('hvpc', 'generic')
    """
    if any(c.stimulus.amplitude.voltage_controlled for c in program.channels):
        return "hvpc"
    return "generic"


def assess(
    program: Program,
    patient: Patient | None = None,
    device: str | None = None,
    load_ohm: float = DEFAULT_LOAD_OHM,
) -> Assessment:
    """Assess a program for a patient on a device, at the highest amplitude it allows.

    The program is judged as a snapshot (re-validated canonical JSON): what the caller
    does with the program object afterwards changes nothing. Any figure that is not a
    finite number is a refusal.

    Parameters
    ----------
    program : Program
    patient : Patient, optional
        Without one, only site and dose rules apply.
    device : str, optional
        ``generic``, ``rehastim2``, ``p24`` or ``hvpc``: a profile of the device table.
        By default :func:`default_device` of the program: ``hvpc`` for a program set in
        volts, else ``generic``.
    load_ohm : float
        Load for energy and power figures (500 Ω, the IEC test load); an output set in
        volts is dosed into :data:`~electrostim.program.VOLTAGE_LOAD_OHM` (200 Ω), where
        its currents flow.

    Returns
    -------
    Assessment

    Raises
    ------
    ProgramError
        The program does not validate (e.g. a NaN put in without validation).
    UnknownDeviceError
        No such device profile in the table.

    Examples
    --------
    >>> import electrostim as es
    >>> es.assess(es.load_program("knee-oa-tens")).verdict
    'ok'
    >>> es.assess(es.load_program("knee-oa-tens").with_changes(electrode_cm=(0.3, 0.3))).verdict
    'refused'
    """
    from ..errors import OptionError

    text, sha, judged = _snapshot(program)
    snapshot = (text, sha)
    dev = get_device(default_device(judged) if device is None else device)
    if patient is not None:
        if not isinstance(patient, Patient):
            raise OptionError(f"Invalid value for 'patient': allowed a Patient or None, but got {type(patient).__name__}.")
        patient = Patient.model_validate(patient.model_dump())
    try:
        load = float(load_ohm)
    except (TypeError, ValueError):
        load = math.nan
    if not (math.isfinite(load) and DEFAULT_LOAD_OHM <= load <= 100_000.0):
        raise OptionError(f"Invalid value for 'load_ohm': allowed {DEFAULT_LOAD_OHM:g} to 100000 Ω (the limits are "
                          f"judged at the IEC 500 Ω test load or above), but got {load_ohm!r}.")
    realized, reasons, amps = _per_phase(judged, dev)
    if realized is not judged:
        text, sha, judged = _snapshot(realized)  # what the device delivers is what is judged, approved and kept
        snapshot = (text, sha)
    # every phase at the most it delivers: the whole session at each channel's maximum amplitude (a phase at
    # its intensity_percent of it), windows across the phases' boundaries included
    with shared_dose_figures():  # (a phase dosed on its own, to name it in a reason, takes the figures found for it)
        dose = compute_dose(judged, amplitude_ma=amps, load_ohm=load)
        reasons += _non_finite_reasons(dose)
        reasons += _name_phases(judged, _limit_reasons(dose), amps, load)
    site_reasons, warnings = _site_reasons(judged, patient)
    reasons += site_reasons
    return Assessment(_KEY, snapshot, judged, patient, dev, dose, reasons, warnings, amps, load)
