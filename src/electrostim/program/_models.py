"""Pydantic schemas of a therapy program.

A program is data: modality, channels with their electrode pairs, and per channel the
stimulus (pulse shape, amplitude, bursts, modulation, ramps, duty cycle), plus the
session duration and how channels are sequenced. Every quantity carries its unit in
its name. A top-level ``stimulus`` table is the default for every channel; a channel's
own ``stimulus`` table overrides it key by key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .. import anatomy
from ..errors import ProgramError
from ..units import pad_area_cm2
from ._format import format_validation_error, nesting_problem, show_value
from ._text import ID_RULE, check_id, check_one_script, check_text, look_alike_key

__all__ = [
    "Modality",
    "Electrode",
    "SymmetricBiphasic",
    "AsymmetricBiphasic",
    "Monophasic",
    "SineBurst",
    "Interferential",
    "Pulse",
    "Amplitude",
    "Burst",
    "DutyCycle",
    "FrequencySweep",
    "RandomFrequency",
    "AlternatingFrequency",
    "AmplitudeSweep",
    "WidthSweep",
    "Modulation",
    "Stimulus",
    "Channel",
    "Citation",
    "Evidence",
    "Placement",
    "Program",
    "Phase",
    "PhaseChannel",
    "PhaseSpan",
    "Output",
    "PULSED_SHAPES",
    "MAX_AMPLITUDE_MA",
    "MAX_PAD_CM",
    "MAX_VOLTAGE_V",
    "VOLTAGE_LOAD_OHM",
    "validate_program",
]

#: Upper bounds that keep programs physical; beyond them a value is a typing error.
MAX_AMPLITUDE_MA = 500.0
MAX_PULSE_WIDTH_US = 100_000.0
MAX_FREQUENCY_HZ = 20_000.0
MAX_SESSION_S = 24 * 3600.0
#: The most phases a program may have.
MAX_PHASES = 32
#: The longest side (or diameter) of a pad, in cm.
MAX_PAD_CM = 50.0
#: The load (Ω) at which a voltage-controlled output (high-voltage pulsed current, HVPC) is
#: dosed: its set voltage drives ``V / VOLTAGE_LOAD_OHM`` peak current. It is the lowest load
#: HVPC stimulators are specified into, where their 500 V drives their 2.5 A peak: peak
#: currents of 2-2.5 A at up to 500 V (Alon G, DeDomenico G. High Voltage Stimulation: An
#: Integrated Approach to Clinical Electrotherapy. Chattanooga Corp., 1987; Polak A, Franek A,
#: Taradaj J. High-voltage pulsed current electrical stimulation in wound treatment. Adv Wound
#: Care 2014;3(2):104-117, doi:10.1089/wound.2013.0445). Into any higher load the same voltage
#: drives less current, so the figures at this load are the most the output can deliver.
VOLTAGE_LOAD_OHM = 200.0
#: The highest voltage an output may be set to, V: the peak output voltage of IEC 60601-2-10.
MAX_VOLTAGE_V = 500.0
#: The highest peak current a voltage-controlled output drives, mA (500 V into 200 Ω: 2500 mA).
MAX_VOLTAGE_CONTROLLED_MA = MAX_VOLTAGE_V / VOLTAGE_LOAD_OHM * 1000.0


class _Model(BaseModel):
    # NaN and infinity are never a setting: validation refuses them (a safety engine
    # compares figures, and every comparison with NaN is false). Numbers are strict:
    # a boolean or a string is never taken for a number, nor 2.5 for a whole number.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)

    #: fields that are one line of visible text (a name or a label), and what they are called in messages
    _one_line: ClassVar[dict[str, str]] = {}
    #: characters a one-line field must not contain besides invisible ones
    _one_line_forbidden: ClassVar[str] = ""
    #: fields that are ids (see :data:`ID_RULE`)
    _id_fields: ClassVar[tuple[str, ...]] = ()

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, v: Any, info: ValidationInfo) -> Any:
        # every text a person writes is shown on screens and in records: no NUL, no control or
        # bidirectional-override characters (they hide or reorder what is shown); names and
        # labels are one line of visible text (a phase's program holds the program's own texts, checked already)
        if info.context is not None and info.context.get("texts_checked"):
            return v
        what = cls._one_line.get(info.field_name or "")
        for text in (v if isinstance(v, list) else [v]):
            if isinstance(text, str):
                if info.field_name in cls._id_fields:
                    check_id(text)  # its own rule, in words
                elif what is None:
                    check_text(text, single_line=False, what="text")
                else:
                    check_text(text, single_line=True, what=what, forbidden=cls._one_line_forbidden)
                    if info.field_name == "label":  # a label names an output on screens and keys: one script
                        check_one_script(text, what=what)
        return v


class Modality(StrEnum):
    """Kinds of electrotherapy."""

    TENS = "tens"
    NMES = "nmes"
    FES = "fes"
    INTERFERENTIAL = "interferential"
    RUSSIAN = "russian"
    HVPC = "hvpc"


# --------------------------------------------------------------------------- electrodes


class Electrode(_Model):
    """One skin electrode (pad): its size and shape and where it goes."""

    site: str = Field(description="body-site id from the anatomy catalogue")
    side: Literal["left", "right", "midline"] | None = None
    shape: Literal["rectangle", "disk"] = "rectangle"
    width_cm: Annotated[float, Field(strict=True, gt=0, le=MAX_PAD_CM)] | None = None
    height_cm: Annotated[float, Field(strict=True, gt=0, le=MAX_PAD_CM)] | None = None
    diameter_cm: Annotated[float, Field(strict=True, gt=0, le=MAX_PAD_CM)] | None = None
    position: str = Field("", description="where exactly on the site, in words")

    @field_validator("site")
    @classmethod
    def _known_site(cls, v: str) -> str:
        anatomy.get_site(v)
        return v

    @model_validator(mode="after")
    def _size(self) -> Electrode:
        if self.shape == "rectangle":
            if self.width_cm is None or self.height_cm is None or self.diameter_cm is not None:
                raise ValueError("a rectangle pad needs width_cm and height_cm (and no diameter_cm)")
        elif self.diameter_cm is None or self.width_cm is not None or self.height_cm is not None:
            raise ValueError("a disk pad needs diameter_cm (and no width_cm/height_cm)")
        return self

    @property
    def area_cm2(self) -> float:
        """Conductive contact area in cm²."""
        return pad_area_cm2(self.shape, self.width_cm, self.height_cm, self.diameter_cm)

    @property
    def size_label(self) -> str:
        """Human label of the size, e.g. ``5x5 cm`` or ``Ø3.2 cm``."""
        if self.shape == "disk":
            return f"Ø{self.diameter_cm:g} cm"
        return f"{self.width_cm:g}x{self.height_cm:g} cm"


# --------------------------------------------------------------------------- pulse shapes

PulseWidthUs = Annotated[float, Field(strict=True, gt=0, le=MAX_PULSE_WIDTH_US)]
#: the slowest rate a program may name: one pulse per 100 s
MIN_FREQUENCY_HZ = 0.01
FrequencyHz = Annotated[float, Field(strict=True, ge=MIN_FREQUENCY_HZ, le=MAX_FREQUENCY_HZ)]


class SymmetricBiphasic(_Model):
    """Two rectangular phases of equal width and amplitude, opposite sign: zero net charge."""

    shape: Literal["symmetric-biphasic"] = "symmetric-biphasic"
    pulse_width_us: PulseWidthUs = Field(description="width of each phase")
    interphase_gap_us: Annotated[float, Field(strict=True, ge=0, le=10_000)] = 0.0
    frequency_hz: FrequencyHz
    leading_phase: Literal["cathodic", "anodic"] = "cathodic"

    #: zero net charge per pulse (or per carrier cycle)
    charge_balanced: ClassVar[bool] = True

    @property
    def duration_us(self) -> float:
        return 2 * self.pulse_width_us + self.interphase_gap_us


class AsymmetricBiphasic(_Model):
    """A rectangular first phase and a longer, lower second phase of equal charge."""

    shape: Literal["asymmetric-biphasic"] = "asymmetric-biphasic"
    pulse_width_us: PulseWidthUs = Field(description="width of the first (leading) phase")
    second_phase_ratio: Annotated[float, Field(strict=True, ge=1, le=20)] = Field(
        4.0, description="second-phase width / first-phase width; its amplitude is divided by the same factor"
    )
    interphase_gap_us: Annotated[float, Field(strict=True, ge=0, le=10_000)] = 0.0
    frequency_hz: FrequencyHz
    leading_phase: Literal["cathodic", "anodic"] = "cathodic"

    #: zero net charge per pulse (or per carrier cycle)
    charge_balanced: ClassVar[bool] = True

    @property
    def duration_us(self) -> float:
        return self.pulse_width_us * (1 + self.second_phase_ratio) + self.interphase_gap_us


class Monophasic(_Model):
    """One phase (or a twin peak): carries a DC component, flagged by the safety engine.

    ``phase_shape`` is ``"rectangular"`` (a constant current for ``pulse_width_us``) or
    ``"spike"``: an instantaneous rise to the peak and an exponential decay to 5 % of it at
    the end of the phase (time constant ``pulse_width_us / 3``; e^-3 = 4.98 %), the peaks of
    a high-voltage pulsed current (HVPC) stimulator. A spike phase of peak I and width w
    carries I·w·(1 - e^-3)/3 of charge (0.317 I·w) and I²·w·(1 - e^-6)/6 of ∫i²dt.

    Examples
    --------
    >>> p = Monophasic(pulse_width_us=20, frequency_hz=120, twin_peak_spacing_us=50, phase_shape="spike")
    >>> p.duration_us, p.phase_shape
    (90.0, 'spike')
    """

    shape: Literal["monophasic"] = "monophasic"
    pulse_width_us: PulseWidthUs
    frequency_hz: FrequencyHz
    polarity: Literal["cathodic", "anodic"] = "cathodic"
    twin_peak_spacing_us: Annotated[float, Field(strict=True, ge=0, le=10_000)] | None = Field(
        None, description="if set, a second identical phase follows after this gap (high-voltage twin peak)"
    )
    phase_shape: Literal["rectangular", "spike"] = Field(
        "rectangular", description="'spike': instant rise, exponential decay to 5 % at the end of the phase (HVPC)"
    )

    #: a monophasic pulse carries a DC component (net charge); the safety engine flags it
    charge_balanced: ClassVar[bool] = False

    @property
    def duration_us(self) -> float:
        if self.twin_peak_spacing_us is None:
            return self.pulse_width_us
        return 2 * self.pulse_width_us + self.twin_peak_spacing_us


class SineBurst(_Model):
    """Bursts of a sine carrier (Russian current): ``frequency_hz`` bursts per second."""

    shape: Literal["sine-burst"] = "sine-burst"
    carrier_frequency_hz: Annotated[float, Field(strict=True, ge=500, le=MAX_FREQUENCY_HZ)]
    frequency_hz: Annotated[float, Field(strict=True, ge=1, le=1000)] = Field(description="burst rate")
    burst_duty_percent: Annotated[float, Field(strict=True, gt=0, le=100)] = 50.0

    @property
    def cycles_per_burst(self) -> int:
        """Whole carrier cycles in one burst (at least one)."""
        return max(1, math.floor(self.burst_duty_percent / 100.0 * self.carrier_frequency_hz / self.frequency_hz + 1e-9))

    #: zero net charge per pulse (or per carrier cycle)
    charge_balanced: ClassVar[bool] = True

    @property
    def duration_us(self) -> float:
        return self.cycles_per_burst / self.carrier_frequency_hz * 1e6


class Interferential(_Model):
    """Interferential current: two kHz carriers whose difference is the beat.

    ``quadripolar``: two circuits (four pads, crossed), the first at the carrier and
    the second at carrier + beat; the beat arises where they cross. ``premodulated``:
    one circuit carrying the carrier amplitude-modulated at the beat frequency.
    """

    shape: Literal["interferential"] = "interferential"
    mode: Literal["quadripolar", "premodulated"] = "quadripolar"
    carrier_frequency_hz: Annotated[float, Field(strict=True, ge=1000, le=MAX_FREQUENCY_HZ)]
    beat_frequency_hz: Annotated[float, Field(strict=True, ge=0.1, le=250)]

    @property
    def frequency_hz(self) -> float:
        return self.beat_frequency_hz

    #: zero net charge per pulse (or per carrier cycle)
    charge_balanced: ClassVar[bool] = True

    @property
    def duration_us(self) -> float:
        return 0.0


Pulse = Annotated[
    SymmetricBiphasic | AsymmetricBiphasic | Monophasic | SineBurst | Interferential,
    Field(discriminator="shape"),
]

#: Shapes made of rectangular phases.
PULSED_SHAPES: Final = ("symmetric-biphasic", "asymmetric-biphasic", "monophasic")


# --------------------------------------------------------------------------- amplitude, bursts, cycles


class _DerivedCurrent(float):
    """A current (mA) derived from a set voltage: validated with the voltage, not against :data:`MAX_AMPLITUDE_MA`."""


def _plain_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


class Amplitude(_Model):
    """Intensity: the starting value and the most the program allows (peak current of a phase).

    An output is set either in mA (``default_ma``, ``max_ma``: a current-controlled
    output, at most :data:`MAX_AMPLITUDE_MA`) or in volts (``default_v``, ``max_v``: a
    voltage-controlled output, high-voltage pulsed current, at most :data:`MAX_VOLTAGE_V`).
    For an output set in volts the currents are derived: the peak current the voltage drives
    into :data:`VOLTAGE_LOAD_OHM` (``V / 200 Ω``, up to 2500 mA at 500 V), so every dose figure
    is the most the output can deliver. A dump holds both pairs; validating it again checks
    that they agree (to 1e-9, relative).

    Examples
    --------
    >>> a = Amplitude(default_v=50, max_v=150)
    >>> a.voltage_controlled, a.default_ma, a.max_ma
    (True, 250.0, 750.0)
    >>> Amplitude.model_validate(a.model_dump()) == a
    True
    """

    default_ma: Annotated[float, Field(strict=True, ge=0, le=MAX_AMPLITUDE_MA)]
    max_ma: Annotated[float, Field(strict=True, gt=0, le=MAX_AMPLITUDE_MA)]
    goal: str = Field("", description='how to set it, e.g. "strong but comfortable, below motor threshold"')
    default_v: Annotated[float, Field(strict=True, ge=0, le=MAX_VOLTAGE_V)] | None = Field(
        None, description="starting voltage of a voltage-controlled output (HVPC), V; with max_v, instead of default_ma"
    )
    max_v: Annotated[float, Field(strict=True, gt=0, le=MAX_VOLTAGE_V)] | None = Field(
        None, description="highest voltage of a voltage-controlled output (HVPC), V; with default_v, instead of max_ma"
    )

    @model_validator(mode="before")
    @classmethod
    def _currents_from_volts(cls, data: Any) -> Any:
        # an output set in volts: its currents are what the voltage drives into VOLTAGE_LOAD_OHM
        if not isinstance(data, dict):
            return data
        dv, mv = data.get("default_v"), data.get("max_v")
        if dv is None and mv is None:
            return data
        if dv is None or mv is None:
            raise ValueError(f"an amplitude set in volts needs both default_v and max_v, but "
                             f"{'default_v' if dv is None else 'max_v'} is missing")
        given = (data.get("default_ma"), data.get("max_ma"))
        if not (_plain_number(dv) and _plain_number(mv) and 0 <= dv <= MAX_VOLTAGE_V and 0 < mv <= MAX_VOLTAGE_V):
            # the voltage fields report their own problem; no current field repeats it
            if given == (None, None):
                return {**data, "default_ma": _DerivedCurrent(0.0), "max_ma": _DerivedCurrent(1.0)}
            return data
        if dv > mv:
            raise ValueError(f"default_v ({dv:g}) must not exceed max_v ({mv:g})")
        derived = (dv / VOLTAGE_LOAD_OHM * 1000.0, mv / VOLTAGE_LOAD_OHM * 1000.0)
        if given != (None, None) and not all(
            isinstance(g, int | float) and _plain_number(g) and abs(g - d) <= 1e-9 * max(abs(d), abs(g))
            for g, d in zip(given, derived)
        ):
            shown = ", ".join(f"{n} {show_value(g)}" for n, g in zip(("default_ma", "max_ma"), given))
            raise ValueError(
                f"give either default_ma and max_ma (a current, mA) or default_v and max_v (a voltage, V), not both; "
                f"{dv:g} V and {mv:g} V drive {derived[0]:g} mA and {derived[1]:g} mA into {VOLTAGE_LOAD_OHM:g} Ω, "
                f"but given {shown}"
            )
        return {**data, "default_ma": _DerivedCurrent(derived[0]), "max_ma": _DerivedCurrent(derived[1])}

    @field_validator("default_ma", "max_ma", mode="wrap")
    @classmethod
    def _derived_current(cls, v: Any, handler: Any) -> Any:
        # a current derived from a valid voltage may reach MAX_VOLTAGE_CONTROLLED_MA; one written in mA may not
        if type(v) is _DerivedCurrent:
            return float(v)
        return handler(v)

    @model_validator(mode="after")
    def _order(self) -> Amplitude:
        if self.default_ma > self.max_ma:
            raise ValueError(f"default_ma ({self.default_ma:g}) must not exceed max_ma ({self.max_ma:g})")
        return self

    @property
    def voltage_controlled(self) -> bool:
        """Whether the output is set in volts (``default_v``, ``max_v``): a high-voltage pulsed current output."""
        return self.max_v is not None


class Burst(_Model):
    """Pulses grouped in bursts: ``pulses_per_burst`` at the pulse frequency, bursts at ``burst_frequency_hz``."""

    pulses_per_burst: Annotated[int, Field(strict=True, ge=2, le=1000)]
    burst_frequency_hz: Annotated[float, Field(strict=True, ge=MIN_FREQUENCY_HZ, le=100)]


#: the shortest on phase, sweep period or dwell (s): the resolution of pulse timing (a microsecond); shorter ones
#: are not a timing a stimulator can keep (and a period near the smallest float overflows the phase arithmetic)
MIN_TIMING_S = 1e-6


class DutyCycle(_Model):
    """Stimulation on for ``on_s`` (ramps included), then off for ``off_s``, repeated."""

    on_s: Annotated[float, Field(strict=True, ge=MIN_TIMING_S, le=3600)]
    off_s: Annotated[float, Field(strict=True, ge=0, le=3600)]

    @property
    def cycle_s(self) -> float:
        return self.on_s + self.off_s


# --------------------------------------------------------------------------- modulation

Profile = Literal["triangle", "sawtooth"]


class _FrequencyRange(_Model):
    """A rate range ``low_hz`` < ``high_hz``."""

    low_hz: FrequencyHz
    high_hz: FrequencyHz

    @model_validator(mode="after")
    def _order(self) -> _FrequencyRange:
        if self.low_hz >= self.high_hz:
            raise ValueError(f"low_hz ({self.low_hz:g}) must be below high_hz ({self.high_hz:g})")
        return self


class FrequencySweep(_FrequencyRange):
    """Repetition rate swept between ``low_hz`` and ``high_hz`` (beat rate for interferential)."""

    kind: Literal["frequency-sweep"] = "frequency-sweep"
    period_s: Annotated[float, Field(strict=True, ge=MIN_TIMING_S, le=3600)]
    profile: Profile = "triangle"


class RandomFrequency(_FrequencyRange):
    """Each interval drawn uniformly from 1/high_hz..1/low_hz rates (seeded, reproducible)."""

    kind: Literal["random-frequency"] = "random-frequency"
    seed: Annotated[int, Field(strict=True, ge=0)] = 0


class AlternatingFrequency(_Model):
    """Rate alternates between the listed frequencies, each held ``dwell_s`` (mixed-frequency TENS)."""

    kind: Literal["alternating-frequency"] = "alternating-frequency"
    frequencies_hz: Annotated[list[FrequencyHz], Field(min_length=2, max_length=16)]
    dwell_s: Annotated[float, Field(strict=True, ge=MIN_TIMING_S, le=3600)]


_PHASE_DEG = Annotated[float, Field(strict=True, ge=0, lt=360)]


class _LevelSweep(_Model):
    """A sweep of a level (amplitude or width) between ``low_percent`` and 100 %.

    ``phase_deg`` shifts the sweep against time 0, where a frequency sweep starts at its
    ``low_hz``: with 0 a triangle sweep reaches 100 % when a triangle frequency sweep of
    the same period reaches its ``high_hz`` (in step); with 180 it is at ``low_percent``
    there (against the rate: the TENS "modulated" mode whose widest pulses come at the
    lowest rate).
    """

    low_percent: float
    period_s: Annotated[float, Field(strict=True, ge=MIN_TIMING_S, le=3600)]
    profile: Profile = "triangle"
    phase_deg: _PHASE_DEG = 0.0


class AmplitudeSweep(_LevelSweep):
    """Amplitude swept between ``low_percent`` of the set amplitude and 100 %."""

    kind: Literal["amplitude-sweep"] = "amplitude-sweep"
    low_percent: Annotated[float, Field(strict=True, ge=0, lt=100)]


class WidthSweep(_LevelSweep):
    """Pulse width swept between ``low_percent`` of the set width and 100 % (``phase_deg``: see the amplitude sweep)."""

    kind: Literal["width-sweep"] = "width-sweep"
    low_percent: Annotated[float, Field(strict=True, gt=0, lt=100)]


Modulation = Annotated[
    FrequencySweep | RandomFrequency | AlternatingFrequency | AmplitudeSweep | WidthSweep,
    Field(discriminator="kind"),
]

_FREQUENCY_KINDS = ("frequency-sweep", "random-frequency", "alternating-frequency")


# --------------------------------------------------------------------------- stimulus and channel


class Stimulus(_Model):
    """Everything a channel delivers."""

    pulse: Pulse
    amplitude: Amplitude
    burst: Burst | None = None
    modulation: list[Modulation] = Field(default_factory=list)
    ramp_up_s: Annotated[float, Field(strict=True, ge=0, le=600)] = 0.0
    ramp_down_s: Annotated[float, Field(strict=True, ge=0, le=600)] = 0.0
    duty_cycle: DutyCycle | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Stimulus:
        p = self.pulse
        kinds = [m.kind for m in self.modulation]
        if sum(k in _FREQUENCY_KINDS for k in kinds) > 1:
            raise ValueError("at most one frequency modulation (frequency-sweep, random-frequency, alternating-frequency)")
        for k in ("amplitude-sweep", "width-sweep"):
            if kinds.count(k) > 1:
                raise ValueError(f"at most one {k}")
        if self.burst is not None and p.shape not in PULSED_SHAPES:
            raise ValueError(f"burst applies to rectangular pulses, not to shape {p.shape!r}")
        if "width-sweep" in kinds and p.shape not in PULSED_SHAPES:
            raise ValueError(f"width-sweep applies to rectangular pulses, not to shape {p.shape!r}")
        if p.shape == "interferential" and "random-frequency" in kinds:
            raise ValueError("random-frequency does not apply to interferential current; use frequency-sweep of the beat")
        if self.duty_cycle is not None and self.ramp_up_s + self.ramp_down_s > self.duty_cycle.on_s + 1e-9:
            raise ValueError(
                f"ramp_up_s + ramp_down_s ({self.ramp_up_s + self.ramp_down_s:g} s) must fit in duty_cycle.on_s "
                f"({self.duty_cycle.on_s:g} s)"
            )
        # pulses (or bursts) must not overlap at the highest repetition rate
        rate = self.max_repetition_hz
        if p.shape in PULSED_SHAPES:
            if self.burst is None:
                if p.duration_us * 1e-6 * rate >= 1.0:
                    raise ValueError(
                        f"pulses overlap: a pulse lasts {p.duration_us:g} µs but the rate reaches {rate:g} Hz "
                        f"(period {1e6 / rate:g} µs)"
                    )
            else:
                if p.duration_us * 1e-6 * p.frequency_hz >= 1.0:
                    raise ValueError(
                        f"pulses overlap within a burst: a pulse lasts {p.duration_us:g} µs at {p.frequency_hz:g} Hz"
                    )
                burst_s = (self.burst.pulses_per_burst - 1) / p.frequency_hz + p.duration_us * 1e-6
                if burst_s * rate >= 1.0:
                    raise ValueError(
                        f"bursts overlap: a burst of {self.burst.pulses_per_burst} pulses at {p.frequency_hz:g} Hz "
                        f"lasts {burst_s * 1e3:g} ms but bursts repeat at up to {rate:g} Hz"
                    )
        elif p.shape == "sine-burst":
            if p.duration_us * 1e-6 * rate > 1.0 + 1e-9:
                raise ValueError(
                    f"bursts overlap: a burst of {p.cycles_per_burst} carrier cycles lasts {p.duration_us:g} µs "
                    f"but bursts repeat at up to {rate:g} Hz"
                )
        elif p.shape == "interferential":
            if rate >= p.carrier_frequency_hz / 4:
                raise ValueError(
                    f"beat frequency must stay below a quarter of the carrier ({p.carrier_frequency_hz:g} Hz), "
                    f"< {p.carrier_frequency_hz / 4:g} Hz, or the beat is too close to the carrier; given up to "
                    f"{rate:g} Hz"
                )
        return self

    @model_validator(mode="after")
    def _rate_within_its_modulation(self) -> Stimulus:
        # a frequency modulation sets the rate: a nominal rate outside its range would be shown and never delivered
        fm = self.frequency_modulation
        if fm is None:
            return self
        low, high = self.repetition_range_hz
        what = ("alternating-frequency's frequencies_hz" if isinstance(fm, AlternatingFrequency)
                else f"{fm.kind}'s low_hz-high_hz")
        rate = self.nominal_repetition_hz
        if not low * (1 - 1e-9) <= rate <= high * (1 + 1e-9):
            field = ("burst.burst_frequency_hz" if self.burst is not None else
                     "pulse.beat_frequency_hz" if self.pulse.shape == "interferential" else "pulse.frequency_hz")
            raise ValueError(f"{field} must lie within the {what}, {low:g}-{high:g} Hz, which sets the rate (a rate "
                             f"outside would be shown and never delivered); given {rate:g} Hz")
        return self

    @model_validator(mode="after")
    def _slower_than_the_pulses(self) -> Stimulus:
        # what the modulations act on samples them: pulses, bursts, or an interferential current's carrier cycles.
        # A modulation faster than half their lowest rate is met at levels, rates and on/off states its profile
        # does not follow (aliasing: the Nyquist-Shannon sampling theorem), so it is not what was written
        if self.pulse.shape == "interferential":
            rate, what = self.pulse.carrier_frequency_hz, "carrier cycle"
        else:
            rate, what = self.min_repetition_hz, self.repetition_name
        interval = 1.0 / rate
        one = f"one {what} interval is {interval:.6g} s at {rate:g} Hz, the lowest {what} rate"
        slack = 1.0 - 1e-9
        for m in self.modulation:
            if isinstance(m, FrequencySweep | AmplitudeSweep | WidthSweep) and m.period_s < 2.0 * interval * slack:
                met = "rates" if m.kind == "frequency-sweep" else "levels"
                raise ValueError(
                    f"{m.kind} period_s must span at least two {what} intervals, >= {2.0 * interval:.6g} s ({one}): "
                    f"a faster sweep is met at {met} its profile does not follow; given {m.period_s:g} s")
            if isinstance(m, AlternatingFrequency) and m.dwell_s < interval * slack:
                raise ValueError(
                    f"alternating-frequency dwell_s must hold at least one {what} interval, >= {interval:.6g} s "
                    f"({one}); given {m.dwell_s:g} s")
        dc = self.duty_cycle
        if dc is not None:
            for name, value in (("on_s", dc.on_s), ("off_s", dc.off_s)):
                if 0.0 < value < interval * slack:
                    zero = " (or 0: no off time)" if name == "off_s" else ""
                    raise ValueError(
                        f"duty_cycle.{name} must hold at least one {what} interval, >= {interval:.6g} s{zero} "
                        f"({one}): a shorter one is met at on/off times the duty cycle does not have; "
                        f"given {value:g} s")
        return self

    @model_validator(mode="after")
    def _voltage_needs_monophasic(self) -> Stimulus:
        # a voltage-controlled output is a high-voltage pulsed current stimulator: monophasic pulses only
        if self.amplitude.voltage_controlled and self.pulse.shape != "monophasic":
            raise ValueError(f"an amplitude set in volts (default_v, max_v) needs a monophasic pulse, not "
                             f"{self.pulse.shape!r}; set other shapes in mA (default_ma, max_ma)")
        return self

    @property
    def frequency_modulation(self) -> FrequencySweep | RandomFrequency | AlternatingFrequency | None:
        for m in self.modulation:
            if isinstance(m, FrequencySweep | RandomFrequency | AlternatingFrequency):
                return m
        return None

    def _modulation(self, kind: str) -> Any:
        return next((m for m in self.modulation if m.kind == kind), None)

    @property
    def amplitude_modulation(self) -> AmplitudeSweep | None:
        return self._modulation("amplitude-sweep")

    @property
    def width_modulation(self) -> WidthSweep | None:
        return self._modulation("width-sweep")

    @property
    def nominal_repetition_hz(self) -> float:
        """Pulse rate, burst rate (bursts or sine bursts) or beat rate (interferential)."""
        if self.burst is not None:
            return self.burst.burst_frequency_hz
        return self.pulse.frequency_hz

    @property
    def repetition_range_hz(self) -> tuple[float, float]:
        """The lowest and the highest repetition rate (Hz): the nominal one, or those the frequency modulation
        reaches (it sets the rate)."""
        fm = self.frequency_modulation
        if fm is None:
            return self.nominal_repetition_hz, self.nominal_repetition_hz
        if isinstance(fm, AlternatingFrequency):
            return min(fm.frequencies_hz), max(fm.frequencies_hz)
        return fm.low_hz, fm.high_hz

    @property
    def min_repetition_hz(self) -> float:
        """Lowest repetition rate the modulation reaches (Hz)."""
        return self.repetition_range_hz[0]

    @property
    def max_repetition_hz(self) -> float:
        """Highest repetition rate the modulation reaches."""
        return self.repetition_range_hz[1]

    @property
    def repetition_name(self) -> str:
        """What repeats at the repetition rate: ``"pulse"``, ``"burst"`` (bursts, sine bursts) or ``"beat"``."""
        if self.burst is not None or self.pulse.shape == "sine-burst":
            return "burst"
        return "beat" if self.pulse.shape == "interferential" else "pulse"


class Channel(_Model):
    """One stimulation channel and its electrodes.

    Two pads (active and reference), or four for quadripolar interferential current
    (pads 1–2 form the first circuit, pads 3–4 the second).
    """

    # one line of plain text: it names an output on screens, in CSV headers and in device records
    _one_line: ClassVar[dict[str, str]] = {"label": "a channel label"}
    _one_line_forbidden: ClassVar[str] = ',"'

    label: Annotated[str, Field(min_length=1, max_length=40)]
    electrodes: Annotated[list[Electrode], Field(min_length=2, max_length=4)]
    stimulus: Stimulus


    @model_validator(mode="after")
    def _pads(self) -> Channel:
        quad = self.stimulus.pulse.shape == "interferential" and self.stimulus.pulse.mode == "quadripolar"
        need = 4 if quad else 2
        if len(self.electrodes) != need:
            what = "quadripolar interferential current" if quad else f"shape {self.stimulus.pulse.shape!r}"
            raise ValueError(f"{what} needs {need} electrodes, but {len(self.electrodes)} were given")
        return self

    @property
    def n_outputs(self) -> int:
        """Stimulator outputs this channel occupies (2 for quadripolar interferential)."""
        return len(self.electrodes) // 2


# --------------------------------------------------------------------------- program


class Citation(_Model):
    """A source for a program."""

    text: Annotated[str, Field(min_length=3)]
    doi: str | None = None
    url: str | None = None


class Evidence(_Model):
    """What the evidence says, plainly, including when it is weak."""

    level: Literal["high", "moderate", "low", "very-low", "insufficient"]
    summary: Annotated[str, Field(min_length=10)]
    mechanisms: list[str] = Field(default_factory=list)


class Placement(_Model):
    """Electrode placement recipe: site, pad sizes and positions in words."""

    summary: Annotated[str, Field(min_length=3)]
    steps: list[str] = Field(default_factory=list)


class Output:
    """One stimulator output: a channel, or one of the two circuits of a quadripolar channel."""

    __slots__ = ("index", "channel_index", "circuit", "label", "electrodes", "stimulus")

    def __init__(self, index: int, channel_index: int, circuit: int, label: str, electrodes: tuple[Electrode, Electrode], stimulus: Stimulus):
        self.index = index
        self.channel_index = channel_index
        self.circuit = circuit
        self.label = label
        self.electrodes = electrodes
        self.stimulus = stimulus

    def __repr__(self) -> str:
        return f"Output({self.index}, {self.label!r})"


class PhaseChannel(_Model):
    """What one channel delivers in one phase (its whole stimulus, resolved)."""

    stimulus: Stimulus


class Phase(_Model):
    """One phase of a multi-phase program: a name, a duration and what every channel delivers in it.

    In a program file a phase may give a ``stimulus`` table (laid over every channel's
    stimulus, key by key) and a ``channels`` table of per-channel ``stimulus`` tables
    (keyed by channel label, laid over that); the validated phase holds every channel's
    resolved stimulus. The pads, the labels and the amplitude (``default_ma``,
    ``max_ma``) are the channel's in every phase; ``intensity_percent`` runs a phase at
    a part of the intensity (a warm-up at 60 %). Each phase starts afresh at its start:
    its ramps, duty cycle and sweeps begin there, and a pulse that would not end within
    its phase is not delivered.
    """

    _one_line: ClassVar[dict[str, str]] = {"name": "a phase name"}

    name: Annotated[str, Field(min_length=1, max_length=40)]
    duration_s: Annotated[float, Field(strict=True, gt=0, le=MAX_SESSION_S)]
    intensity_percent: Annotated[float, Field(strict=True, ge=0, le=100)] = Field(
        100.0, description="the phase's intensity as a percentage of the channel's (the amplitude set for the session)")
    channels: dict[str, PhaseChannel]


@dataclass(frozen=True, slots=True)
class PhaseSpan:
    """One phase of a program in session time: ``[start_s, stop_s)``, and the program it delivers there.

    ``program`` is a single-phase program (no ``phases``) whose channels carry the
    phase's stimuli and whose ``session_duration_s`` is the phase's duration; a program
    without phases is one span of itself (``name`` empty); ``count`` is how many phases
    the program has.
    """

    index: int
    name: str
    start_s: float
    stop_s: float
    intensity_percent: float
    program: Program = field(repr=False)
    count: int = 1

    @property
    def duration_s(self) -> float:
        return self.stop_s - self.start_s

    @property
    def title(self) -> str:
        """``phase 2/4 'work'`` (empty for a program without phases)."""
        return "" if not self.name else f"phase {self.index + 1}/{self.count} {self.name!r}"



def _resolve_phases(data: dict[str, Any]) -> dict[str, Any]:
    """Lay each phase's ``stimulus`` and per-channel ``stimulus`` tables over every channel's stimulus (raw data).

    Malformed input is left for validation to report. A phase's per-channel table naming
    no channel is refused here, with the labels allowed. Without ``session_duration_s``,
    a program with phases lasts the sum of their durations.
    """
    phases, chans = data.get("phases"), data.get("channels")
    if not isinstance(phases, list) or not isinstance(chans, list):
        return data
    labels = [c.get("label") for c in chans if isinstance(c, dict)]
    resolved = []
    for k, ph in enumerate(phases):
        if not isinstance(ph, dict):
            resolved.append(ph)
            continue
        for key in ("stimulus", "channels"):
            if not isinstance(ph.get(key, {}), dict):
                raise PydanticCustomError("phase_table", "{message}", {
                    "message": f"phases[{k}].{key}: allowed a table, but given {ph[key]!r}"})
        ph = dict(ph)
        over = ph.pop("stimulus", {})
        per = ph.get("channels", {})
        unknown = [lbl for lbl in per if lbl not in labels]
        if unknown:
            raise PydanticCustomError("phase_channel", "{message}", {
                "message": f"phases[{k}].channels: no channel {', '.join(map(repr, unknown))}; allowed the channel "
                           f"labels {', '.join(map(repr, labels))}"})
        for lbl, own in per.items():
            own_stim = own.get("stimulus", {}) if isinstance(own, dict) else None
            if not isinstance(own_stim, dict):
                what = f"phases[{k}].channels.{lbl}" + (".stimulus" if isinstance(own, dict) else "")
                raise PydanticCustomError("phase_table", "{message}", {
                    "message": f"{what}: allowed a table, but given {own_stim if isinstance(own, dict) else own!r}"})
        out: dict[str, Any] = {}
        for c in chans:
            if not isinstance(c, dict) or not isinstance(c.get("label"), str) or not isinstance(c.get("stimulus"), dict):
                continue
            own = per.get(c["label"], {})
            own_stim = own.get("stimulus", {}) if isinstance(own, dict) else {}
            merged = _deep_merge(c["stimulus"], over)
            if isinstance(own_stim, dict):
                merged = _deep_merge(merged, own_stim)
            out[c["label"]] = {**(own if isinstance(own, dict) else {}), "stimulus": merged}
        ph["channels"] = out
        resolved.append(ph)
    data = dict(data)
    data["phases"] = resolved
    if "session_duration_s" not in data:
        durations = [ph.get("duration_s") if isinstance(ph, dict) else None for ph in resolved]
        if resolved and all(isinstance(d, int | float) and not isinstance(d, bool) and 0 < d <= MAX_SESSION_S
                            for d in durations):
            total = math.fsum(durations)  # type: ignore[arg-type]
            if total > MAX_SESSION_S * (1 + 1e-12):
                raise PydanticCustomError("phases_too_long", "{message}", {
                    "message": f"phases: their durations sum to {total:g} s, longer than a session may last: allowed "
                               f"at most {MAX_SESSION_S:g} s in all, given {len(durations)} phases of {total:g} s"})
            # durations that sum to the longest session but for their rounding take it (as _check_phases allows)
            data["session_duration_s"] = min(total, MAX_SESSION_S)
        elif resolved:  # a phase's duration is reported on its own; the session's (left out) is not reported too
            data["session_duration_s"] = 1.0
    return data


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            # a different pulse shape or modulation kind replaces the whole table
            if k == "pulse" and v.get("shape", out[k].get("shape")) != out[k].get("shape"):
                out[k] = v
            else:
                out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


class Program(_Model):
    """A therapy program.

    Examples
    --------
    >>> import electrostim as es
    >>> p = es.load_program("tens-conventional")
    >>> p.modality, p.channels[0].stimulus.pulse.frequency_hz
    (<Modality.TENS: 'tens'>, 100.0)
    """

    _one_line: ClassVar[dict[str, str]] = {"name": "a program name"}
    _id_fields: ClassVar[tuple[str, ...]] = ("id",)

    schema_version: Literal[1] = 1
    id: str = Field(description=ID_RULE)
    name: Annotated[str, Field(min_length=3, max_length=120)]
    modality: Modality
    description: str = ""
    session_duration_s: Annotated[float, Field(strict=True, gt=0, le=MAX_SESSION_S)]
    sequencing: Literal["synchronous", "alternating", "delayed"] = "synchronous"
    sequencing_delay_s: Annotated[float, Field(strict=True, ge=0, le=3600)] = 0.0
    channels: Annotated[list[Channel], Field(min_length=1, max_length=16)]
    phases: Annotated[list[Phase], Field(max_length=MAX_PHASES)] = Field(
        default_factory=list, description="a sequence of phases, each with its own stimulus and duration (none: one)")
    regimen: str = Field("", description="how often and how long, e.g. 'twice daily for 6 weeks'")
    citations: list[Citation] = Field(default_factory=list)
    evidence: Evidence | None = None
    placement: Placement | None = None
    notes: list[str] = Field(default_factory=list)

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version_is_a_number(cls, v: Any) -> Any:
        if isinstance(v, bool):  # Python's True == 1: never a version
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return v

    @model_validator(mode="before")
    @classmethod
    def _inherit_stimulus(cls, data: Any) -> Any:
        data = cls._inherit_program_stimulus(data)
        return _resolve_phases(data) if isinstance(data, dict) else data

    @classmethod
    def _inherit_program_stimulus(cls, data: Any) -> Any:
        if isinstance(data, dict) and "stimulus" in data:
            data = dict(data)
            base = data.pop("stimulus")
            chans = data.get("channels")
            if isinstance(base, dict) and isinstance(chans, list):
                data["channels"] = [
                    {**c, "stimulus": _deep_merge(base, c.get("stimulus") or {})}
                    if isinstance(c, dict) and isinstance(c.get("stimulus") or {}, dict)
                    else c  # not a table: validation reports it
                    for c in chans
                ]
            # without a list of channels there is nothing to inherit: validation reports the channels
        return data

    @model_validator(mode="after")
    def _program(self) -> Program:
        # one identity per output from the program to the device: every channel label and every output
        # label (a quadripolar channel 'ifc' drives outputs 'ifc.a' and 'ifc.b') names one channel only
        owner: dict[str, str] = {}
        for c in self.channels:
            names = {c.label} | ({f"{c.label}.a", f"{c.label}.b"} if c.n_outputs == 2 else set())
            for name in sorted(names):
                name = look_alike_key(name)  # 'Knee', 'knee' and a Cyrillic 'кnее' look alike: one name
                if name in owner:
                    other = owner[name]
                    if other == c.label:
                        raise ValueError(f"channel labels must be unique, but {[c.label]} repeat")
                    if look_alike_key(other) == look_alike_key(c.label):
                        raise ValueError(f"channel labels must be unique, ignoring case and look-alike characters, but "
                                         f"{other!r} and {c.label!r} are one label")
                    raise ValueError(
                        f"output labels must be unique: channel {c.label!r} and channel {other!r} both name an "
                        f"output {name!r} (a quadripolar channel 'X' drives outputs 'X.a' and 'X.b'); rename one"
                    )
                owner[name] = c.label
        if self.sequencing == "alternating":
            if len(self.channels) < 2:
                raise ValueError("alternating sequencing needs at least 2 channels")
            if any(c.stimulus.duty_cycle is None for c in self.channels):
                raise ValueError("alternating sequencing needs a duty_cycle on every channel")
        if self.sequencing == "delayed" and self.sequencing_delay_s <= 0:
            raise ValueError("delayed sequencing needs sequencing_delay_s > 0")
        for c in self.channels:
            shape = c.stimulus.pulse.shape
            if self.modality in (Modality.INTERFERENTIAL,) and shape != "interferential":
                raise ValueError(f"modality 'interferential' needs pulse shape 'interferential', channel {c.label!r} has {shape!r}")
            if shape == "interferential" and self.modality != Modality.INTERFERENTIAL:
                raise ValueError(f"pulse shape 'interferential' needs modality 'interferential', not {self.modality.value!r}")
        if self.phases:
            self._check_phases()
        return self

    def _check_phases(self) -> None:
        total = math.fsum(ph.duration_s for ph in self.phases)
        if abs(total - self.session_duration_s) > 1e-6 * max(1.0, total):
            raise ValueError(f"session_duration_s ({self.session_duration_s:g} s) must equal the sum of the phases' "
                             f"durations ({total:g} s); leave it out to take the sum")
        names: dict[str, int] = {}
        programs = []
        for k, ph in enumerate(self.phases):
            key = look_alike_key(ph.name)
            if key in names:
                other = self.phases[names[key]].name
                same = f"both {ph.name!r}" if other == ph.name else (
                    f"{other!r} and {ph.name!r}, one name ignoring case and look-alike characters")
                raise ValueError(f"phase names must be unique: phases {names[key] + 1} and {k + 1} are {same}")
            names[key] = k
            for c in self.channels:
                if ph.channels[c.label].stimulus.amplitude != c.stimulus.amplitude:
                    raise ValueError(f"phase {k + 1} ({ph.name!r}) changes the amplitude of channel {c.label!r}: the "
                                     "amplitude is the channel's in every phase (run a phase at a part of it with "
                                     "intensity_percent)")
            try:
                programs.append(self._phase_program(ph))
            except ValidationError as exc:
                _, problems = format_validation_error(exc, "", Program)
                said = "; ".join(p if f == "(top level)" else f"{f}: {p}" for f, p, _ in problems)
                raise ValueError(f"phase {k + 1} ({ph.name!r}): {said}") from None
        self.__dict__["_phase_programs"] = (self._spans_key(), tuple(programs))  # (for phase_spans: validated once)

    def _spans_key(self) -> tuple:
        """What the phases' programs are made of: a copy with other phases, channels or program fields (pydantic's
        model_copy(update=...)) makes its own."""
        return (id(self.phases), id(self.channels), self.session_duration_s, self.sequencing, self.sequencing_delay_s,
                self.modality, self.id, self.name)

    def _phase_program(self, phase: Phase) -> Program:
        data = self.model_dump(mode="python", exclude={"phases"})
        data["session_duration_s"] = phase.duration_s
        for ch in data["channels"]:
            ch["stimulus"] = phase.channels[ch["label"]].stimulus.model_dump(mode="python")
        # (every text in it is the program's or the phase's, checked with them)
        return Program.model_validate(data, context={"texts_checked": True})

    @property
    def phase_spans(self) -> list[PhaseSpan]:
        """The phases in session time, each with the single-phase program it delivers (one span without phases).

        Examples
        --------
        >>> import electrostim as es
        >>> [(s.name, s.start_s, s.stop_s) for s in es.load_program("ems-strength-phases").phase_spans]
        [('warm-up', 0.0, 300.0), ('work', 300.0, 1500.0), ('active rest', 1500.0, 1800.0)]
        """
        if not self.phases:
            return [PhaseSpan(0, "", 0.0, self.session_duration_s, 100.0, self)]
        # made once per program (each phase's program is validated, when the program is: see _check_phases)
        key = self._spans_key()
        cached = self.__dict__.get("_phase_spans")
        if cached is not None and cached[0] == key:
            return list(cached[1])
        made = self.__dict__.get("_phase_programs")
        programs = made[1] if made is not None and made[0] == key else [self._phase_program(ph) for ph in self.phases]
        spans, t = [], 0.0
        for k, ph in enumerate(self.phases):
            stop = self.session_duration_s if k == len(self.phases) - 1 else t + ph.duration_s
            spans.append(PhaseSpan(k, ph.name, t, stop, ph.intensity_percent, programs[k], len(self.phases)))
            t = stop
        self.__dict__["_phase_spans"] = (key, tuple(spans))
        return spans

    @property
    def main_phase(self) -> PhaseSpan:
        """The phase that stands for the program where one stimulus is shown or modelled: the longest at full
        intensity (the work phase of a strengthening program), else the longest; the whole program without phases.

        Examples
        --------
        >>> import electrostim as es
        >>> es.load_program("ems-strength-phases").main_phase.name
        'work'
        """
        return max(self.phase_spans, key=lambda s: (s.intensity_percent, s.duration_s))

    def stimuli(self, channel: int | str) -> list[Stimulus]:
        """Every stimulus a channel delivers: one per phase (its own without phases)."""
        ci = channel if isinstance(channel, int) else [c.label for c in self.channels].index(channel)
        if not self.phases:
            return [self.channels[ci].stimulus]
        label = self.channels[ci].label
        return [ph.channels[label].stimulus for ph in self.phases]

    @model_validator(mode="after")
    def _hvpc(self) -> Program:
        # high-voltage pulsed current: monophasic pulses; and only it is set in volts
        for c in self.channels:
            shape = c.stimulus.pulse.shape
            if self.modality == Modality.HVPC and shape != "monophasic":
                raise ValueError(f"modality 'hvpc' needs pulse shape 'monophasic', channel {c.label!r} has {shape!r}")
            if c.stimulus.amplitude.voltage_controlled and self.modality != Modality.HVPC:
                raise ValueError(f"an amplitude set in volts (default_v, max_v) needs modality 'hvpc', not "
                                 f"{self.modality.value!r} (channel {c.label!r}); set other modalities in mA")
        return self

    @property
    def outputs(self) -> list[Output]:
        """Stimulator outputs in order (a quadripolar channel gives two)."""
        out: list[Output] = []
        for ci, c in enumerate(self.channels):
            for k in range(c.n_outputs):
                label = c.label if c.n_outputs == 1 else f"{c.label}.{'ab'[k]}"
                pads = (c.electrodes[2 * k], c.electrodes[2 * k + 1])
                out.append(Output(len(out), ci, k, label, pads, c.stimulus))
        return out

    @property
    def channel_offsets_s(self) -> list[float]:
        """Start offset of each channel's duty cycle, from the sequencing."""
        n = len(self.channels)
        if self.sequencing == "alternating":
            return [i * self.channels[i].stimulus.duty_cycle.cycle_s / n for i in range(n)]  # type: ignore[union-attr]
        if self.sequencing == "delayed":
            return [i * self.sequencing_delay_s for i in range(n)]
        return [0.0] * n

    def with_changes(
        self,
        *,
        max_amplitude_ma: float | None = None,
        electrode_cm: tuple[float, float] | None = None,
        site: str | None = None,
    ) -> Program:
        """A copy with every channel's maximum amplitude, every pad's size or every pad's site replaced.

        The default amplitude is lowered to the new maximum where it would exceed it.
        """
        data = self.model_dump(mode="python")
        stimuli = [ch["stimulus"] for ch in data["channels"]]
        stimuli += [c["stimulus"] for ph in data["phases"] for c in ph["channels"].values()]  # the same in every phase
        for stim in stimuli:
            if max_amplitude_ma is not None:
                amp = stim["amplitude"]
                amp["max_ma"] = max_amplitude_ma
                amp["default_ma"] = min(amp["default_ma"], max_amplitude_ma)
        for ch in data["channels"]:
            for pad in ch["electrodes"]:
                if electrode_cm is not None:
                    pad.update(shape="rectangle", width_cm=electrode_cm[0], height_cm=electrode_cm[1], diameter_cm=None)
                if site is not None:
                    pad["site"] = site
        return validate_program(data, source="command-line options")


def validate_program(data: Any, source: str = "program") -> Program:
    """Validate a program from a mapping.

    Parameters
    ----------
    data : dict
        The program's fields, as a TOML file gives them.
    source : str
        What the data came from (a file name), for messages.

    Returns
    -------
    Program
        The validated program.

    Raises
    ------
    ProgramError
        On any problem: one line for one problem (``source: field: problem; allowed ...;
        given ...``), else a heading line and one line per problem; ``problems`` lists
        ``(field, problem, given)``.

    Examples
    --------
    >>> from electrostim.program import validate_program
    >>> validate_program({"id": "knée"}).id
    Traceback (most recent call last):
    ...
    electrostim.errors.ProgramError: program: invalid (5 problems)
      - id: an id is 2 to 64 characters: lowercase ASCII letters a-z, digits 0-9 and hyphens (-), starting with a letter or a digit; found 'é' (U+00E9); given 'knée'
      - name: required, but missing; allowed text in quotes
      - modality: required, but missing; allowed 'tens', 'nmes', 'fes', 'interferential', 'russian', 'hvpc'
      - session_duration_s: required, but missing; allowed a finite number 0 < x <= 86400
      - channels: required, but missing; allowed an array
    """
    if not isinstance(data, dict):
        raise ProgramError(f"{source}: a program must be a table of fields, but got {type(data).__name__}")
    problem = nesting_problem(data)
    if problem is not None:
        raise ProgramError(f"{source}: {problem}", [("(top level)", problem, None)])
    try:
        return Program.model_validate(data)
    except ValidationError as exc:
        message, problems = format_validation_error(exc, source, Program, where=_written_at(data))
        raise ProgramError(message, problems) from None


def _written_at(data: dict[str, Any]) -> Any:
    """Where a problem of a channel's (or a phase's) stimulus was written: in the program's ``[stimulus]`` table
    when the channel inherited the value there (the channel's, and the phase's, own tables do not set it), so
    that one mistake there is reported once, at its place."""
    def table(key: str, kind: type) -> Any:
        value = data.get(key)
        return value if isinstance(value, kind) else kind()

    base: dict[str, Any] = table("stimulus", dict)
    chans: list[Any] = table("channels", list)
    phases: list[Any] = table("phases", list)

    def own(table: Any, key: Any) -> bool:
        return isinstance(table, dict) and isinstance(table.get("stimulus"), dict) and key in table["stimulus"]

    def where(loc: tuple[Any, ...]) -> tuple[Any, ...]:
        if len(loc) > 3 and loc[0] == "channels" and loc[2] == "stimulus":
            rest, chan = loc[3:], chans[loc[1]] if isinstance(loc[1], int) and loc[1] < len(chans) else None
        elif len(loc) > 5 and loc[0] == "phases" and loc[2] == "channels" and loc[4] == "stimulus":
            ph = phases[loc[1]] if isinstance(loc[1], int) and loc[1] < len(phases) else None
            chan = next((c for c in chans if isinstance(c, dict) and c.get("label") == loc[3]), None)
            per: dict[Any, Any] = ph["channels"] if isinstance(ph, dict) and isinstance(ph.get("channels"), dict) else {}
            rest = loc[5:]
            if own(per.get(loc[3]), rest[0]):
                return loc  # the phase's own table for this channel
            if own(ph, rest[0]):
                return ("phases", loc[1], "stimulus", *rest)  # the phase's table, laid over every channel
        else:
            return loc
        if rest[0] in base and not own(chan, rest[0]):
            return ("stimulus", *rest)
        return loc

    return where
