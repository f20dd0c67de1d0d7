"""The verdict engine: one function, three verdicts, reasons that name their rule and source.

:func:`assess` evaluates a program at the highest amplitude it allows (rounded up to
the device's current step), on the given device, for the given patient, against the
limit, device and contraindication tables. Only an :class:`Assessment` can make an
:class:`ApprovedPlan`, and only when its verdict allows it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .. import anatomy
from ..errors import RefusedError, SafetyError
from ..program import PULSED_SHAPES, Electrode, Patient, Program
from ..waveform import DEFAULT_LOAD_OHM, Dose, compute_dose
from ._tables import DeviceProfile, contraindication_tables, get_device, limit_rules, program_rules

__all__ = ["Reason", "Assessment", "ApprovedPlan", "PlanEnvelope", "OutputEnvelope", "assess", "VERDICTS"]

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
    max_pulse_width_us: float
    max_pulse_rate_hz: float
    min_electrode_area_cm2: float


class PlanEnvelope(BaseModel):
    """Everything an approved plan allows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str
    current_step_ma: float
    load_ohm: float
    outputs: list[OutputEnvelope]


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
        reasons.append(Reason(rule=f"device.{dev.id}.{rule}", verdict=verdict, source=dev.source, message=message, output=output))  # type: ignore[arg-type]

    n_out = len(program.outputs)
    if n_out > dev.channels:
        add("channels", "refused", f"the program needs {n_out} outputs; {dev.name} has {dev.channels}")
    amps: dict[str, float] = {}
    for ch in program.channels:
        st = ch.stimulus
        p = st.pulse
        if p.shape not in dev.shapes:
            add("shape", "refused", f"{dev.name} cannot make {p.shape!r} pulses (it makes {', '.join(dev.shapes)})", ch.label)
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
        if a > dev.current_max_ma:
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
            if dev.pulse_width_step_us > 0 and abs(p.pulse_width_us / dev.pulse_width_step_us - round(p.pulse_width_us / dev.pulse_width_step_us)) > 1e-9:
                add("pulse-width-step", "needs_confirmation",
                    f"{dev.name} sets pulse width in {dev.pulse_width_step_us:g} µs steps; {p.pulse_width_us:g} µs will be rounded", ch.label)
            rate = max(st.max_repetition_hz, p.frequency_hz)
            if rate > dev.max_pulse_rate_hz:
                add("pulse-rate", "refused", f"pulse rate up to {rate:g} Hz exceeds the device's {dev.max_pulse_rate_hz:g} Hz", ch.label)
            gap = getattr(p, "interphase_gap_us", None)
            if dev.fixed_interphase_gap_us is not None and gap is not None and abs(gap - dev.fixed_interphase_gap_us) > 1e-9:
                add("interphase-gap", "needs_confirmation",
                    f"{dev.name} uses a fixed {dev.fixed_interphase_gap_us:g} µs interphase gap; the program asks for {gap:g} µs",
                    ch.label)
        else:
            carrier = p.carrier_frequency_hz + (st.max_repetition_hz if p.shape == "interferential" else 0.0)
            if carrier > dev.max_carrier_hz:
                add("carrier", "refused", f"carrier up to {carrier:g} Hz exceeds what {dev.name} can make ({dev.max_carrier_hz:g} Hz)", ch.label)
    return reasons, amps


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


class Assessment:
    """The safety engine's answer for one program, patient and device.

    Attributes
    ----------
    verdict : {"ok", "needs_confirmation", "refused"}
    reasons : tuple of Reason
    warnings : tuple of str
        Standing warnings that do not change the verdict.
    dose : Dose
        The dose at the highest allowed amplitude, as the device delivers it.
    """

    __slots__ = ("_verdict", "_reasons", "_warnings", "_dose", "_program", "_patient", "_device", "_amps", "_load")

    def __init__(self, program: Program, patient: Patient | None, device: DeviceProfile, dose: Dose,
                 reasons: list[Reason], warnings: list[str], amps: dict[str, float], load_ohm: float):
        worst = max((VERDICTS.index(r.verdict) for r in reasons), default=0)
        object.__setattr__(self, "_verdict", VERDICTS[worst])
        object.__setattr__(self, "_reasons", tuple(reasons))
        object.__setattr__(self, "_warnings", tuple(warnings))
        object.__setattr__(self, "_dose", dose)
        object.__setattr__(self, "_program", program)
        object.__setattr__(self, "_patient", patient)
        object.__setattr__(self, "_device", device)
        object.__setattr__(self, "_amps", dict(amps))
        object.__setattr__(self, "_load", load_ohm)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("an Assessment cannot be changed")

    verdict = property(lambda self: self._verdict)
    reasons = property(lambda self: self._reasons)
    warnings = property(lambda self: self._warnings)
    dose = property(lambda self: self._dose)
    program = property(lambda self: self._program)
    patient = property(lambda self: self._patient)
    device = property(lambda self: self._device)

    @property
    def ok(self) -> bool:
        return self._verdict == "ok"

    def __repr__(self) -> str:
        return f"Assessment({self._program.id!r}, verdict={self._verdict!r}, reasons={len(self._reasons)})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: verdict, reasons, warnings, device and dose."""
        return {
            "program": self._program.id,
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
        for o in self._program.outputs:
            ch = self._program.channels[o.channel_index]
            st = ch.stimulus
            p = st.pulse
            outs.append(OutputEnvelope(
                output=o.index,
                label=o.label,
                channel=ch.label,
                max_amplitude_ma=self._amps[ch.label],
                default_amplitude_ma=min(st.amplitude.default_ma, self._amps[ch.label]),
                max_pulse_width_us=getattr(p, "pulse_width_us", 0.0),
                max_pulse_rate_hz=dose[o.label].max_pulse_rate_hz,
                min_electrode_area_cm2=min(e.area_cm2 for e in o.electrodes),
            ))
        return PlanEnvelope(device=self._device.id, current_step_ma=self._device.current_step_ma, load_ohm=self._load, outputs=outs)

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


_KEY = object()


class ApprovedPlan:
    """A program the safety engine approved, with its envelope. Made only by :meth:`Assessment.approve`.

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

    def __init__(self, key: object, assessment: Assessment, confirmed: bool, confirmed_by: str | None):
        if key is not _KEY:
            raise SafetyError("an ApprovedPlan is made only by electrostim.safety.assess(...).approve()")
        object.__setattr__(self, "_assessment", assessment)
        object.__setattr__(self, "_envelope", assessment.envelope())
        object.__setattr__(self, "_confirmed", confirmed)
        object.__setattr__(self, "_confirmed_by", confirmed_by)
        object.__setattr__(self, "_approved_at", datetime.now(UTC))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("an ApprovedPlan cannot be changed")

    def __reduce__(self):  # no copies that bypass the engine
        raise TypeError("an ApprovedPlan cannot be pickled or copied; assess the program again")

    assessment = property(lambda self: self._assessment)
    envelope = property(lambda self: self._envelope)
    confirmed = property(lambda self: self._confirmed)
    confirmed_by = property(lambda self: self._confirmed_by)
    approved_at = property(lambda self: self._approved_at)
    program = property(lambda self: self._assessment.program)
    patient = property(lambda self: self._assessment.patient)
    device = property(lambda self: self._assessment.device)

    def __repr__(self) -> str:
        return f"ApprovedPlan({self.program.id!r}, device={self.device.id!r}, confirmed={self._confirmed})"

    def output_envelope(self, output: int | str) -> OutputEnvelope:
        """The envelope of one output, by index or label."""
        for o in self._envelope.outputs:
            if o.output == output or o.label == output:
                return o
        allowed = ", ".join(repr(o.label) for o in self._envelope.outputs)
        raise SafetyError(f"No output {output!r} in the approved plan: allowed {allowed}.")

    def check_amplitude(self, output: int | str, amplitude_ma: float) -> float:
        """Return ``amplitude_ma`` if it lies in the approved envelope of ``output``, else raise :class:`SafetyError`."""
        env = self.output_envelope(output)
        if not (0.0 <= amplitude_ma <= env.max_amplitude_ma + 1e-9) or math.isnan(amplitude_ma):
            raise SafetyError(
                f"{amplitude_ma:g} mA on output {env.label!r} is outside the approved envelope (0 to {env.max_amplitude_ma:g} mA)."
            )
        return amplitude_ma


def assess(
    program: Program,
    patient: Patient | None = None,
    device: str | DeviceProfile = "generic",
    load_ohm: float = DEFAULT_LOAD_OHM,
) -> Assessment:
    """Assess a program for a patient on a device, at the highest amplitude it allows.

    Parameters
    ----------
    program : Program
    patient : Patient, optional
        Without one, only site and dose rules apply.
    device : str or DeviceProfile
        ``generic`` (default), ``rehastim2`` or ``p24``.
    load_ohm : float
        Load for energy and power figures (500 Ω, the IEC test load).

    Returns
    -------
    Assessment

    Examples
    --------
    >>> import electrostim as es
    >>> es.assess(es.load_program("knee-oa-tens")).verdict
    'ok'
    >>> es.assess(es.load_program("knee-oa-tens").with_changes(electrode_cm=(0.3, 0.3))).verdict
    'refused'
    """
    dev = get_device(device)
    reasons, amps = _device_reasons(program, dev)
    dose = compute_dose(program, amplitude_ma=amps, load_ohm=load_ohm)
    reasons += _limit_reasons(dose)
    reasons += _program_reasons(program)
    site_reasons, warnings = _site_reasons(program, patient)
    reasons += site_reasons
    return Assessment(program, patient, dev, dose, reasons, warnings, amps, load_ohm)
