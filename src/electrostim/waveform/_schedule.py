"""The exact pulse schedule of a program, produced in chunks.

Every pulse is one record: its start time, its output, and two phases (amplitude and
width each) with the gap between them. Rectangular pulses use the phases as written;
a carrier cycle of a sine waveform is a pulse of two sine half-waves (shape ``1``),
the first positive, the second negative; a spike pulse (shape ``2``, high-voltage
pulsed current) has phases that decay exponentially from their amplitude. Amplitudes
are signed (cathodic < 0 at the active pad).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from fractions import Fraction
from typing import Any, cast

import numpy as np

from ..errors import OptionError
from ..program import MAX_VOLTAGE_V, VOLTAGE_LOAD_OHM, AsymmetricBiphasic, Monophasic, Output, Program, RandomFrequency, SymmetricBiphasic
from ._timing import (
    ConstantClock,
    PiecewiseClock,
    RandomClock,
    ShiftedClock,
    _kernels_for,
    duty_envelope,
    make_clock,
    sweep_factor,
    sweep_shift_s,
    with_whole_cycles,
)

__all__ = ["PulseChunk", "Schedule", "schedule", "SHAPE_RECT", "SHAPE_SINE", "SHAPE_SPIKE"]

#: shape code of a pulse of rectangular phases
SHAPE_RECT = 0
#: shape code of a carrier cycle (two sine half-waves)
SHAPE_SINE = 1
#: shape code of a pulse of spike phases (high-voltage pulsed current): each phase jumps to its
#: amplitude and decays exponentially, to e^-3 (5 %) of it at the end of its width
SHAPE_SPIKE = 2
#: time constants in the width of a spike phase: the time constant is width / SPIKE_TIME_CONSTANTS
SPIKE_TIME_CONSTANTS = 3.0

_TARGET_EVENTS_PER_CHUNK = 250_000
#: the highest current an output set in volts drives (500 V into 200 Ω: 2500 mA)
_MAX_VOLTAGE_CONTROLLED_MA = MAX_VOLTAGE_V / VOLTAGE_LOAD_OHM * 1000.0


@dataclass(frozen=True)
class PulseChunk:
    """Pulses in a time window, sorted by time then output.

    Attributes
    ----------
    time_s : float64 array
        Start of each pulse.
    output : int16 array
        Output (stimulator channel) index.
    shape : uint8 array
        ``SHAPE_RECT``, ``SHAPE_SINE`` or ``SHAPE_SPIKE``.
    first_amplitude_ma, second_amplitude_ma : float64 arrays
        Signed peak current of each phase.
    first_width_us, second_width_us, gap_us : float64 arrays
        Phase widths and the gap between the phases.
    """

    start_s: float
    stop_s: float
    time_s: np.ndarray
    output: np.ndarray
    shape: np.ndarray
    first_amplitude_ma: np.ndarray
    first_width_us: np.ndarray
    gap_us: np.ndarray
    second_amplitude_ma: np.ndarray
    second_width_us: np.ndarray

    _ARRAYS = ("time_s", "output", "shape", "first_amplitude_ma", "first_width_us", "gap_us", "second_amplitude_ma", "second_width_us")

    def __len__(self) -> int:
        return int(self.time_s.shape[0])

    @property
    def end_s(self) -> np.ndarray:
        """End of each pulse."""
        return self.time_s + (self.first_width_us + self.gap_us + self.second_width_us) * 1e-6

    def select(self, mask_or_index: np.ndarray) -> PulseChunk:
        """The pulses picked by a boolean mask or an index array."""
        return PulseChunk(self.start_s, self.stop_s, **{n: getattr(self, n)[mask_or_index] for n in self._ARRAYS})

    def to_dict(self) -> dict[str, np.ndarray]:
        """Column arrays by name."""
        return {n: getattr(self, n) for n in self._ARRAYS}

    @staticmethod
    def concatenate(chunks: list[PulseChunk], start_s: float, stop_s: float) -> PulseChunk:
        """Join chunks (already in time order) into one."""
        if not chunks:
            return _empty(start_s, stop_s)
        if len(chunks) == 1:
            return replace(chunks[0], start_s=start_s, stop_s=stop_s)
        return PulseChunk(start_s, stop_s, **{n: np.concatenate([getattr(c, n) for c in chunks]) for n in PulseChunk._ARRAYS})


#: the longest repeat period (s) looked for, and the finest denominator of a period as a fraction of a second
_MAX_REPEAT_S = 3600.0
_MAX_DENOMINATOR = 10**6


#: an exact repeat period up to this long (s) is used even where the levels repeat sooner
_EXACT_UP_TO = 60.0
#: the finest denominator of a level period (a sweep or duty cycle written with up to 12 decimals)
_MAX_LEVEL_DENOMINATOR = 10**12
#: the clock phases at which a drifting period is evaluated are this close: a level changes by at most this
#: much (a fraction of its highest) between two, and a window's bound is at most this much of it longer
_BOUND_TOLERANCE = 1e-3
#: a rate profile whose period holds more events than this (or that has no period within an hour) drifts against the
#: levels' period instead of setting it, where its events are dense (at most this far apart, s: a window's bound,
#: at the highest rate the profile reaches, holds at most one event more than it, 0.1 % of a 1 s window); with no
#: level factor to set it, the period is this long (s)
_CLOCK_IN_PERIOD_EVENTS = 4_000_000
_DENSE_INTERVAL_S = 1e-3
_DENSE_PERIOD_S = 10.0
#: factors drift against a period of at least this long (s); a level factor whose common multiple with the rest is
#: longer than a minute, four of its own periods and ``_JOIN_EVENTS`` events drifts against it too
_MIN_SHIFTED_PERIOD_S = 1.0
_JOIN_EVENTS = 250_000
#: at most this many clock phases, and about this many events evaluated in all (the bound is looser beyond), per
#: drifting output (and phase); a program's distinct outputs and phases share ``_MAX_PROGRAM_BOUND_EVENTS`` where
#: they are more than four
_MAX_SAMPLES = 64
_MAX_BOUND_EVENTS = 2_000_000
_MAX_PROGRAM_BOUND_EVENTS = 8_000_000
#: a region whose levels repeat while its events drift is bounded from two of its periods and a window: not where
#: they hold more events than this (each bound holds them at once)
_MAX_REGION_EVENTS = 8_000_000


@dataclass(frozen=True)
class Region:
    """A stretch of an output's session dosed from one period of it (see ``_OutputGenerator.regions``).

    Attributes
    ----------
    start_s, period_s, stop_s : float
        The stretch ``[start_s, stop_s)`` and its period (s).
    drift_s : float
        0 where the pulses repeat every period; else the longest interval of the clock (s): the
        pulses of each period lie, one for one, at a clock phase up to one event later than the
        first period's (the levels repeat, the events drift against them).
    shortest_s : float
        The shortest interval between two events of the clock (s; 0 where not known or not needed).
    rigid : bool
        Whether drifting events move together (a constant rate): a window then keeps its pulses
        and their intervals, only the levels they meet change.
    samples : int
        The clock phases ``k / samples`` at which the drifting period is evaluated.
    level_rate : float
        The fastest a level factor changes there (a fraction of its highest, per s; see
        ``_OutputGenerator.level_rate``).
    shifted : tuple of (str, float, float)
        The level factors (``"duty"``, ``"amplitude"``, ``"width"``) whose period shares no
        multiple of at most an hour with ``period_s``: each later period meets them shifted by
        ``k period_s`` modulo their own period (s, the second of each triple); the third is
        the fastest each changes (a fraction of its highest, per s; an on/off edge or a
        sawtooth jump counts as a change over 1 s).
    slow : bool
        Whether the stretch is dosed from the corners of its slow levels instead (no period: ``period_s`` 0; see
        ``waveform._dose``), a region the dose adds where an output (or phase) has none of its own.
    """

    start_s: float
    period_s: float
    stop_s: float
    drift_s: float = 0.0
    shortest_s: float = 0.0
    rigid: bool = True
    samples: int = 1
    level_rate: float = 0.0
    shifted: tuple[tuple[str, float, float], ...] = ()
    slow: bool = False


def _interval_range(clock: Any) -> tuple[float, float]:
    """The shortest and the longest interval (s) between two events of a clock."""
    if isinstance(clock, ConstantClock):
        return 1.0 / clock.f, 1.0 / clock.f
    if isinstance(clock, PiecewiseClock):
        rates = np.concatenate([clock.f0, clock.f0 + clock.slope * clock.dur])
        return 1.0 / float(rates.max()), 1.0 / float(rates.min())
    if isinstance(clock, RandomClock):
        return float(clock.intervals.min()), float(clock.intervals.max())
    raise TypeError(type(clock).__name__)


def _fraction(x: float, max_denominator: int | None = None) -> Fraction | None:
    """``x`` as a fraction of small denominator: the decimal it was written as (its shortest form) where that
    has one, else the nearest such fraction if it is ``x`` to 1e-12 (relative); else None."""
    if not (math.isfinite(x) and x > 0):
        return None
    written = Fraction(repr(float(x)))
    if written.denominator <= (max_denominator or _MAX_DENOMINATOR):
        return written
    f = Fraction(x).limit_denominator(max_denominator or _MAX_DENOMINATOR)
    return f if f > 0 and abs(float(f) - x) <= 1e-12 * x else None


def _lcm(a: Fraction, b: Fraction) -> Fraction:
    """The least common multiple of two positive fractions."""
    return Fraction(math.lcm(a.numerator, b.numerator), math.gcd(a.denominator, b.denominator))


def _clock_period(clock, max_denominator: int | None = None) -> Fraction | None:
    """The shortest time after which a clock fires the same events shifted by it (None: never, or not found);
    a swept clock's profile period as a fraction of denominator up to ``max_denominator``."""
    if isinstance(clock, ConstantClock):
        f = _fraction(clock.f)
        return None if f is None else 1 / f
    if isinstance(clock, PiecewiseClock):
        period, cycles = _fraction(clock.period, max_denominator), _fraction(clock.phi_period)
        if period is None or cycles is None:
            return None
        return period * cycles.denominator  # whole periods of the profile that hold whole events
    if isinstance(clock, RandomClock):
        # a round number of seconds, or of the output's level periods, where the rate range allows (see RandomClock)
        return _fraction(clock.period, max_denominator)
    return None


def _duty_shapes_levels(st) -> bool:
    """Whether a stimulus's duty cycle shapes its levels: not where it has none, nor where it never turns off and
    never ramps (an off phase of 0 s and no ramps leave its envelope at 1 throughout)."""
    dc = st.duty_cycle
    return dc is not None and not (dc.off_s == 0 and st.ramp_up_s == 0 and st.ramp_down_s == 0)


def _levels_period(st) -> Fraction | None:
    """The period (s) after which a stimulus's duty cycle and sweeps of amplitude and width all repeat (their
    least common multiple, each a fraction of denominator up to 1e12, at most an hour); None without any, or
    where they have no such multiple."""
    periods = [_fraction(m.period_s, _MAX_LEVEL_DENOMINATOR) for m in (st.amplitude_modulation, st.width_modulation)
               if m is not None]
    if _duty_shapes_levels(st):  # on + off as written (their float sum may round away from it)
        on, off = (Fraction(0) if v == 0 else _fraction(v, _MAX_LEVEL_DENOMINATOR)
                   for v in (st.duty_cycle.on_s, st.duty_cycle.off_s))
        periods.append(None if on is None or off is None else on + off)
    if not periods or any(p is None for p in periods):
        return None
    period = cast(Fraction, periods[0])
    for p in periods[1:]:
        period = _lcm(period, cast(Fraction, p))
    return period if period <= _MAX_REPEAT_S else None


def _level_parts(st) -> list[tuple[str, Fraction | None, float, float]]:
    """The periodic factors of a stimulus's levels: name, period as a fraction of denominator up to 1e12 (None
    where it has none), period (s), and the fastest the factor changes (a fraction of its highest, per s; a jump
    counts as a change over 1 s)."""
    parts: list[tuple[str, Fraction | None, float, float]] = []
    if _duty_shapes_levels(st):
        dc = st.duty_cycle
        on, off = (Fraction(0) if v == 0 else _fraction(v, _MAX_LEVEL_DENOMINATOR) for v in (dc.on_s, dc.off_s))
        ramps = [1.0 / r for r in (st.ramp_up_s, st.ramp_down_s) if r > 0]
        parts.append(("duty", None if on is None or off is None else on + off, float(dc.cycle_s),
                      max(ramps + ([1.0] if len(ramps) < 2 else []))))
    for name, m in (("amplitude", st.amplitude_modulation), ("width", st.width_modulation)):
        if m is not None:
            depth = 1.0 - m.low_percent / 100.0
            rate = depth / m.period_s * (2.0 if m.profile == "triangle" else 1.0)
            parts.append((name, _fraction(m.period_s, _MAX_LEVEL_DENOMINATOR), float(m.period_s),
                          rate if m.profile == "triangle" else max(rate, depth)))
    return parts


#: a factor's value just left of a corner is taken this much (s) before it (a time within a rounding of the corner
#: may be read on either side of it), plus what it climbs over that time at its steepest
_LEFT_OF_CORNER_S = 1e-9


def _corners_up_to(corners: np.ndarray, x: np.ndarray) -> np.ndarray:
    """How many of the increasing ``corners`` lie at or before each of the times ``x`` (``searchsorted``, side
    right). Where ``x`` is increasing: far longer, by where each corner falls among them (one pass over ``x``); about
    as long or shorter, by the kernel ``corners_up_to_into`` (one pass over both)."""
    if x.shape[0] > 1 and bool(np.all(x[1:] >= x[:-1])):
        if x.shape[0] > 8 * corners.shape[0]:
            return np.cumsum(np.bincount(np.searchsorted(x, corners, side="left"), minlength=x.shape[0] + 1)[:-1])
        kernels = _kernels_for(x)
        if kernels is not None:  # as many corners as times, or more: one pass over both
            out = np.empty(x.shape, dtype=np.int64)
            kernels.corners_up_to_into(np.ascontiguousarray(corners, dtype=float), x, out)
            return out
    return np.searchsorted(corners, x, side="right")


def _product(arrays: Iterator[np.ndarray]) -> np.ndarray:
    """The elementwise product of one or more arrays of one shape, in order (``np.prod`` of them stacked, without
    the stack): a new array."""
    out = np.array(next(arrays), dtype=float)
    for a in arrays:
        out *= a
    return out


def _highest_over(t: np.ndarray, end: np.ndarray, factors: list[Any], corners: np.ndarray,
                  slope: float = 0.0) -> np.ndarray:
    """The highest product of ``factors`` (each at most 1) over each ``[t, end]``, each factor linear between
    ``corners`` (where it may jump) and changing by at most ``slope`` per s between them: split at a corner inside,
    on each side the product is at most that of each factor's highest there (at that side's ends; just left of the
    corner, its value ``_LEFT_OF_CORNER_S`` before it raised by what the slope adds over that time), never one
    factor's highest on one side times another's on the other; 1 where two corners lie inside."""
    corners = np.unique(corners)
    first = _corners_up_to(corners, t)
    n_inside = _corners_up_to(corners, end) - first
    c = corners[np.minimum(first, corners.shape[0] - 1)] if corners.shape[0] else t
    one = np.flatnonzero(n_inside == 1)  # the few events with one corner inside their span
    # each factor at the two ends of every span, and at either side of the corner only where one lies inside (the
    # same products as over all three spans, without computing the unused ones)
    top = _product(np.maximum(f(t), f(end)) for f in factors)
    if one.shape[0]:
        a, b, cc = t[one], end[one], c[one]
        lift = slope * _LEFT_OF_CORNER_S * (1.0 + 1e-6)
        left = _product(np.maximum(f(a), np.minimum(f(cc - _LEFT_OF_CORNER_S) + lift, 1.0)) for f in factors)
        right = _product(np.maximum(f(cc), f(b)) for f in factors)
        top[one] = np.maximum(left, right)
    top[n_inside > 1] = 1.0
    return top


def _empty(t0: float, t1: float) -> PulseChunk:
    z = np.zeros(0)
    return PulseChunk(t0, t1, z, np.zeros(0, np.int16), np.zeros(0, np.uint8), z, z, z, z, z)


class _OutputGenerator:
    """Pulses of one output, window by window (windows in increasing order)."""

    #: about how many events the bounds of a drifting region may evaluate (see :meth:`regions`; less where the
    #: program's outputs and phases share them, ``Schedule._dose_generators``)
    bound_events: float = _MAX_BOUND_EVENTS

    def __init__(self, program: Program, out: Output, amplitude_ma: float, offset_s: float):
        st = out.stimulus
        p = st.pulse
        self.index = out.index
        self.amplitude_ma = float(amplitude_ma)
        self.stim = st
        self.shape = p.shape
        self.session_s = program.session_duration_s
        self.offset_s = offset_s
        self.periodic = program.sequencing == "alternating"
        self.circuit = out.circuit
        #: level factors evaluated this much later (s, by name: "duty", "amplitude", "width"): a later period of a
        #: region whose levels drift against its period (see :meth:`with_shifts`)
        self.shifts: dict[str, float] = {}
        fm = st.frequency_modulation
        #: the clock's period as an exact fraction where its float rounds it (a random sequence stretched to a
        #: whole number of level periods); None: found from the clock (``_clock_period``)
        self.clock_period: Fraction | None = None
        self.inner_hz: float | None = None  # event rate inside a burst
        self.n_inner = 1
        if p.shape == "interferential":
            if p.mode == "quadripolar":
                # circuit a at the carrier, circuit b at carrier + beat (the beat may be swept)
                if out.circuit == 0:
                    self.clock = make_clock(p.carrier_frequency_hz, None)
                else:
                    self.clock = make_clock(p.beat_frequency_hz, fm, offset_hz=p.carrier_frequency_hz)
                self.beat_clock = None
            else:
                self.clock = make_clock(p.carrier_frequency_hz, None)
                # the beat shapes the envelope: a swept beat completes a whole number of cycles per sweep, so
                # that the envelope repeats with the sweep (see with_whole_cycles)
                self.beat_clock = with_whole_cycles(make_clock(p.beat_frequency_hz, fm))
            self.span_s = 0.0
        else:
            if p.shape == "sine-burst":
                self.inner_hz, self.n_inner = p.carrier_frequency_hz, p.cycles_per_burst
            elif st.burst is not None:
                self.inner_hz, self.n_inner = p.frequency_hz, st.burst.pulses_per_burst
            self.span_s = (self.n_inner - 1) / self.inner_hz if self.inner_hz else 0.0
            self.clock = make_clock(st.nominal_repetition_hz, fm)
            if isinstance(self.clock, RandomClock) and isinstance(fm, RandomFrequency):
                # a random sequence whose round period shares no multiple of an hour with the duty cycle and
                # sweeps: its period stretched to a whole number of theirs instead, so that the output repeats
                levels = _levels_period(st)
                own = _fraction(self.clock.period, _MAX_LEVEL_DENOMINATOR)
                if levels is not None and (own is None or _lcm(own, levels) > _MAX_REPEAT_S):
                    self.clock = RandomClock(fm.low_hz, fm.high_hz, fm.seed, multiple_of_s=float(levels))
                    whole = round(self.clock.period / float(levels))
                    if abs(self.clock.period - whole * float(levels)) <= 1e-9 * self.clock.period:
                        self.clock_period = levels * whole  # (the float period rounds its fraction)

    # -- envelopes ---------------------------------------------------------------
    def envelope(self, t: np.ndarray) -> np.ndarray:
        """Ramps, duty cycle and sequencing: a factor in [0, 1] at times ``t`` (0 in an off phase)."""
        st = self.stim
        dc = st.duty_cycle
        return duty_envelope(np.asarray(t, dtype=float), session_s=self.session_s, ramp_up_s=st.ramp_up_s,
                             ramp_down_s=st.ramp_down_s, on_s=dc.on_s if dc else None, off_s=dc.off_s if dc else 0.0,
                             offset_s=self._duty_offset_s(), periodic_offset=self.periodic)

    def _duty_offset_s(self) -> float:
        """Where the duty cycle's first cycle starts (s): the output's offset, less the duty cycle's shift."""
        return self.offset_s - (self.shifts.get("duty", 0.0) if self.stim.duty_cycle is not None else 0.0)

    def amplitude_factor(self, t: np.ndarray) -> np.ndarray:
        """The amplitude modulation's factor at times ``t`` (1 without one)."""
        shift = self.shifts.get("amplitude", 0.0)
        return sweep_factor(self.stim.amplitude_modulation, t + shift if shift else t)

    def width_factor(self, t: np.ndarray) -> np.ndarray:
        """The width modulation's factor at times ``t`` (1 without one)."""
        shift = self.shifts.get("width", 0.0)
        return sweep_factor(self.stim.width_modulation, t + shift if shift else t)

    def with_shifts(self, shifts: Mapping[str, float], region: Region | None = None) -> _OutputGenerator:
        """This output with its level factors shifted (s, by name: ``"duty"``, ``"amplitude"``, ``"width"``, and
        ``"clock"`` for its rate profile; each evaluated that much later): as a later period of a region whose levels drift against its period
        meets them (``Region.shifted``). ``region`` is not needed here (see ``_PhasedGenerator.with_shifts``)."""
        g = copy.copy(self)
        g.shifts = {k: float(v) for k, v in shifts.items() if v and k != "clock"}
        if shifts.get("clock"):
            assert isinstance(self.clock, PiecewiseClock)  # (only a rate profile drifts: see _clock_drifts)
            g.clock = ShiftedClock(self.clock, float(shifts["clock"]))
        return g

    def without(self, names: frozenset[str], region: Region | None = None) -> _OutputGenerator:
        """This output with the level factors ``names`` (``"duty"``, ``"amplitude"``, ``"width"``) held at 1: the
        duty cycle's envelope (its ramps with it) on throughout its session (from its start where it is delayed),
        a sweep gone. ``region`` is not needed here (see
        ``_PhasedGenerator.without``)."""
        st = self.stim
        update: dict[str, Any] = {}
        if "duty" in names:
            update.update(duty_cycle=None, ramp_up_s=0.0, ramp_down_s=0.0)
        gone = {k for name, k in (("amplitude", "amplitude-sweep"), ("width", "width-sweep")) if name in names}
        if gone:
            update["modulation"] = [m for m in st.modulation if m.kind not in gone]
        g = copy.copy(self)
        g.stim = st.model_copy(update=update)
        if "duty" in names and self.periodic:  # (an alternating channel's cycle wraps round: on from the start)
            g.offset_s = 0.0
        return g

    def level_factors(self, names: frozenset[str], t: np.ndarray, region: Region | None = None) -> dict[str, np.ndarray]:
        """The level factors ``names`` (``"duty"``: the duty cycle's envelope, ``"amplitude"``, ``"width"``) at times
        ``t`` (s); a width factor of 1 for a carrier cycle or sine burst, whose width no sweep sets. ``region`` is
        not needed here (see ``_PhasedGenerator.level_factors``)."""
        f = {"duty": self.envelope, "amplitude": self.amplitude_factor, "width": self.width_factor}
        sine = self.shape in ("sine-burst", "interferential")
        return {name: np.ones(np.shape(t)) if sine and name == "width" else f[name](t) for name in names}

    def breakpoints(self, t0: float, t1: float, which: frozenset[str] | None = None) -> np.ndarray:
        """Times in (t0, t1) where an envelope or modulation changes slope or jumps (ramps that overlap where they
        cross): with t0 and t1, where the lowest value of their product over [t0, t1] lies, and the highest of each
        (each factor is linear between them). ``which`` keeps
        the corners of those factors only (``"duty"`` standing for the envelope, ``"amplitude"``, ``"width"``)."""
        st = self.stim
        pts: list[np.ndarray] = []

        def grid(origin: float, period: float, offsets: list[float]) -> None:
            if period <= 0:
                return
            k0 = math.floor((t0 - origin) / period) - 1
            k1 = math.ceil((t1 - origin) / period) + 1
            if k1 - k0 > 100_000:  # an interval of many periods: its lowest value is one of a whole period's
                k1 = k0 + 100_000
            base = origin + period * np.arange(k0, k1 + 1, dtype=float)
            for off in offsets:
                pts.append(base + off)

        dc = st.duty_cycle
        if which is not None and "duty" not in which:
            pass
        elif dc is None:
            pts.append(np.array([self.offset_s, self.offset_s + st.ramp_up_s, self.session_s - st.ramp_down_s]))
            if st.ramp_up_s > 0 and st.ramp_down_s > 0 and self.offset_s + st.ramp_up_s > self.session_s - st.ramp_down_s:
                # ramps that overlap: the envelope, the lower of the two, turns down where they cross (its highest)
                pts.append(np.array([(self.session_s * st.ramp_up_s + self.offset_s * st.ramp_down_s)
                                     / (st.ramp_up_s + st.ramp_down_s)]))
        else:
            grid(self._duty_offset_s(), dc.cycle_s, [0.0, st.ramp_up_s, dc.on_s - st.ramp_down_s, dc.on_s])
        for name, m in (("amplitude", st.amplitude_modulation), ("width", st.width_modulation)):
            if m is not None and (which is None or name in which):
                grid(-sweep_shift_s(m) - self.shifts.get(name, 0.0), m.period_s,
                     [0.0, m.period_s / 2.0] if m.profile == "triangle" else [0.0])
        t = np.concatenate(pts) if pts else np.zeros(0)
        return t[(t > t0) & (t < t1)]

    def lowest(self, t0: float, t1: float) -> tuple[float, float]:
        """The lowest amplitude factor (envelope × amplitude modulation) and width factor over [t0, t1]."""
        t = np.concatenate([[t0, t1], self.breakpoints(t0, t1)])
        # the off phase begins at on_s: a point just before each breakpoint catches a factor that jumps up there
        t = np.concatenate([t, np.maximum(t0, t - 1e-9)])
        level = float(np.min(self.envelope(t) * self.amplitude_factor(t)))
        return level, float(np.min(self.width_factor(t)))

    def repeat(self) -> tuple[float, float, float] | None:
        """``(start_s, period_s, stop_s)``: the pulses in ``[start_s, stop_s)`` repeat every ``period_s``
        (every pulse there, shifted by ``period_s``, is the next period's pulse, with the same phases and the
        same neighbours); None when no such period of at most an hour was found (periods with no small common
        multiple, such as a random rate's cycle with a duty cycle or a sweep).

        Between the ramps (or from the first on phase, with a duty cycle) an output's clock, bursts, duty
        cycle and sweeps all repeat; the period is their least common multiple, where each clock contributes
        the time after which it fires whole events again.
        """
        st = self.stim
        periods = [self.clock_period or _clock_period(self.clock, _MAX_LEVEL_DENOMINATOR)]
        if getattr(self, "beat_clock", None) is not None:
            periods.append(_clock_period(self.beat_clock, _MAX_LEVEL_DENOMINATOR))
        levels = _levels_period(st)
        if levels is not None:
            periods.append(levels)
        elif _duty_shapes_levels(st) or st.amplitude_modulation or st.width_modulation:
            return None
        if st.duty_cycle is None:
            start, stop = self.offset_s + st.ramp_up_s, self.session_s - st.ramp_down_s
        else:
            start, stop = (0.0 if self.periodic else max(0.0, self.offset_s)), self.session_s
        if any(p is None for p in periods):
            return None
        period = cast(Fraction, periods[0])  # none is None (checked above)
        for p in periods[1:]:
            period = _lcm(period, cast(Fraction, p))
        if period > _MAX_REPEAT_S:
            return None
        return start, float(period), stop

    def identity(self, amplitude: bool = True) -> tuple:
        """What makes this output's pulses: two outputs of equal identity have the same pulses (but their index);
        without ``amplitude``, the same pulses but for a factor of their currents (:attr:`amplitude_ma`). Level
        factors and a rate profile shifted (:meth:`with_shifts`) are part of it."""
        return (self.stim.model_dump_json(exclude=None if amplitude else {"amplitude"}),
                self.amplitude_ma if amplitude else None, self.offset_s, self.periodic, self.session_s, self.circuit,
                tuple(sorted(self.shifts.items())), getattr(self.clock, "shift_s", 0.0))

    def quasi(self) -> tuple[float, float, float, float] | None:
        """``(start_s, period_s, stop_s, drift_s)`` where the output's levels repeat but its events may not.

        Between ``start_s`` and ``stop_s`` (as in :meth:`repeat`) the duty cycle, the
        sweeps of amplitude and width and the rate profile repeat every ``period_s`` (their
        least common multiple, at most an hour, each period a fraction of denominator up
        to 1e12), while the events of a clock whose period holds no whole number of events
        drift against them: each period's events lie, one for one, within ``drift_s``
        (the clock's longest interval) after the first period's. Level factors whose period
        shares no such multiple with the rest drift against it too (``Region.shifted``).
        None where the clock's own period (a swept, random or premodulated beat's) is not
        such a fraction, or where a level period is shorter than the clock's shortest interval.
        """
        split = self._split_levels()
        return None if split is None else split[0]

    def _split_levels(self) -> tuple[tuple[float, float, float, float], tuple[tuple[str, float, float], ...]] | None:
        """:meth:`quasi`'s figures and the level factors that drift against its period: the period is that of the
        clock's profile (a swept or random rate, a premodulated beat) and of as many level factors as share a
        multiple of at most an hour with it (the duty cycle first, then the sweeps of amplitude and width), a
        multiple of a minute or four of the factor's periods, or one holding at most ``_JOIN_EVENTS`` events; a
        whole number of at least ``_MIN_SHIFTED_PERIOD_S`` where factors drift."""
        st = self.stim
        parts = _level_parts(st)
        if any(seconds < _interval_range(self.clock)[0] for _, _, seconds, _ in parts):
            return None  # a level period shorter than any interval: the events of a period are not those of the next
        periods: list[Fraction | None] = []
        drifting: list[tuple[str, float, float]] = []
        if self._clock_drifts():
            assert isinstance(self.clock, PiecewiseClock)
            low, high = self.clock.rate_range(0.0, self.clock.period)
            drifting.append(("clock", float(self.clock.period), 2.0 * (high - low) / low / self.clock.period))
        elif isinstance(self.clock, PiecewiseClock | RandomClock):
            periods.append(self.clock_period or _fraction(self.clock.period, _MAX_LEVEL_DENOMINATOR))
        if getattr(self, "beat_clock", None) is not None:
            # the beat's phase sets levels: it must repeat (a swept beat completes whole cycles in a sweep)
            periods.append(_clock_period(self.beat_clock, _MAX_LEVEL_DENOMINATOR))
        if any(p is None for p in periods):
            return None
        period: Fraction | None = None
        for p in periods:
            period = cast(Fraction, p) if period is None else _lcm(period, cast(Fraction, p))
        if period is not None and period > _MAX_REPEAT_S:
            return None
        events_per_s = Schedule._event_rate_of(st)
        for name, frac, seconds, rate in parts:
            joined = None if frac is None else (frac if period is None else _lcm(period, frac))
            # a factor joins the period where their common multiple is short, or holds few events (a long one that
            # holds many would make each period costly to bound: the factor drifts against it instead)
            if joined is not None and joined <= _MAX_REPEAT_S and (
                    joined <= max(_EXACT_UP_TO, 4 * seconds) or float(joined) * events_per_s <= _JOIN_EVENTS):
                period = joined
            else:
                drifting.append((name, seconds, rate))
        if period is None:
            if not drifting:
                return None
            period = Fraction(_DENSE_PERIOD_S)  # a drifting rate profile alone: any period serves
        if drifting and period < _MIN_SHIFTED_PERIOD_S:
            # (a beat's period: each would hold a few dozen cycles, its cells' sums too coarse): a whole number of it
            period *= math.ceil(_MIN_SHIFTED_PERIOD_S / period)
        longest = _interval_range(self.clock)[1]
        if any(seconds < 2.0 * longest for name, seconds, _ in drifting if name != "clock"):
            return None  # a drifting factor that a pulse or two samples per period: its cells say little of them
        if st.duty_cycle is None:
            start, stop = self.offset_s + st.ramp_up_s, self.session_s - st.ramp_down_s
        else:
            start, stop = (0.0 if self.periodic else max(0.0, self.offset_s)), self.session_s
        return (start, float(period), stop, _interval_range(self.clock)[1]), tuple(drifting)

    def _clock_drifts(self) -> bool:
        """Whether this output's rate profile drifts against its levels' period rather than setting it: a profile
        of dense events (intervals of at most ``_DENSE_INTERVAL_S``) whose period has no exact fraction within
        an hour or holds more than ``_CLOCK_IN_PERIOD_EVENTS`` events; not for bursts nor a premodulated beat."""
        clock = self.clock
        if not isinstance(clock, PiecewiseClock) or self.n_inner != 1 or getattr(self, "beat_clock", None) is not None:
            return False
        if _interval_range(clock)[1] > _DENSE_INTERVAL_S:
            return False
        own = self.clock_period or _fraction(clock.period, _MAX_LEVEL_DENOMINATOR)
        return (own is None or own > _MAX_REPEAT_S
                or float(own) * Schedule._event_rate_of(self.stim) > _CLOCK_IN_PERIOD_EVENTS)

    def regions(self, fallback: Callable[[_OutputGenerator], list[Region]] | None = None) -> list[Region]:
        """Where this output is dosed from one period (``fallback(self)`` where it has none): where its pulses repeat (:meth:`repeat`; the exact period
        where it is short, its pulses being streamed over a few periods), else where its levels repeat while its
        events drift (:meth:`quasi`), evaluated at enough clock phases that the levels change by at most
        ``_BOUND_TOLERANCE`` between two (and a window's bound is at most that much of 1 s longer); level
        factors of a period that shares no multiple of at most an hour with the rest drift too
        (``Region.shifted``). None of the latter where two periods and a window hold more than
        ``_MAX_REGION_EVENTS`` events (each bound would hold them at once): every pulse is dosed then."""
        own = self._regions()
        return own if own or fallback is None else fallback(self)

    def _regions(self) -> list[Region]:
        rep = self.repeat()
        split = self._split_levels()
        q = None if split is None else split[0]
        rigid = isinstance(self.clock, ConstantClock)
        if rep is not None and (q is None or rep[1] <= max(_EXACT_UP_TO, 4.0 * q[1])):
            return [Region(*rep)]
        if split is None or q is None:
            return []
        start, period, stop, drift = q
        rate = self.level_rate()
        need = min(float(_MAX_SAMPLES), max(drift * rate, 0.0 if rigid else drift / 1.0) / _BOUND_TOLERANCE)
        if self.levels_jump():  # a pulse that drifts across an on/off edge or a jump: as few as the samples allow
            need = float(_MAX_SAMPLES)
        events = Schedule._event_rate_of(self.stim) * (2.0 * period + 1.0 + 3.0 * drift)
        if events > _MAX_REGION_EVENTS:  # each bound would hold millions of events at once: every pulse, in chunks
            return []
        samples = max(1, min(math.ceil(need - 1e-9), int(self.bound_events // max(events, 1.0))))
        shortest = _interval_range(self.clock)[0] if self.n_inner == 1 else 0.0
        return [Region(start, period, stop, drift, shortest, rigid, samples, rate, split[1])]

    def shortest_intervals_s(self) -> list[float]:
        """The shortest interval (s) of its clock, and a burst's pulse interval: what the shortest interval between
        two of its pulses is, but for rounding in their times (an edge or a phase's end may part pulses further)."""
        found = [_interval_range(self.clock)[0]]
        if self.inner_hz and self.n_inner > 1:
            found.append(1.0 / self.inner_hz)
        return found

    def ramp_starts(self, t0: float, t1: float) -> np.ndarray:
        """The instants in ``[t0, t1)`` (s) where the output's envelope starts a ramp up from 0 (its session's start,
        each on phase's): a pulse there is not delivered."""
        st = self.stim
        if st.ramp_up_s <= 0:
            return np.zeros(0)
        dc = st.duty_cycle
        if dc is None:
            t = np.array([self.offset_s])
        else:
            origin = self._duty_offset_s()
            k0 = math.floor((t0 - origin) / dc.cycle_s) if self.periodic else max(0, math.floor((t0 - origin) / dc.cycle_s))
            t = origin + dc.cycle_s * np.arange(k0, math.ceil((t1 - origin) / dc.cycle_s) + 1, dtype=float)
        return t[(t >= t0) & (t < t1)]

    def clock_interval_range_s(self) -> tuple[float, float]:
        """The clock's shortest and longest interval (s): between two pulses (bursts) of an on phase."""
        return _interval_range(self.clock)

    def longest_gap_s(self) -> float:
        """The longest time (s) between two pulses between the ramps: the clock's longest interval, or with a duty
        cycle an off phase and an interval on each side (inf where an on phase may hold no pulse)."""
        longest = self.clock_interval_range_s()[1]
        dc = self.stim.duty_cycle
        if dc is None:
            return longest
        return dc.off_s + 2.0 * longest if dc.on_s >= longest else math.inf

    def levels_jump(self) -> bool:
        """Whether a level jumps: an on/off edge of a duty cycle, a sawtooth sweep."""
        st = self.stim
        return _duty_shapes_levels(st) or any(getattr(m, "profile", "") == "sawtooth" for m in st.modulation)

    def lone_rate_range_hz(self) -> tuple[float, float] | None:
        """The local rates (Hz, lowest and highest) a pulse can have where on/off edges part it from the pulses
        it would have as neighbours (a pulse's rate is set by its nearest neighbour), or None where none can: an
        on phase of two intervals or more holds two pulses (or bursts) at least, though an edge may cut a burst down
        to its first pulse, at the rate the gap from the burst before it sets. In a shorter one a pulse may
        stand alone, an off phase on each side: no faster than 1 / an off phase, no slower than 1 / an off phase
        and an interval on each side (0 where an on phase may hold no pulse); a burst cut by an edge keeps the
        burst before it as a neighbour, down to the gap between two bursts."""
        dc = self.stim.duty_cycle
        shortest, longest = _interval_range(self.clock)
        if dc is None:
            return None
        if dc.on_s >= 2.0 * longest:
            if self.n_inner > 1 and _duty_shapes_levels(self.stim):
                # an edge may cut a burst down to its first pulse, the burst before it its only neighbour
                return (1.0 / max(longest - self.span_s, 1e-300), 1.0 / max(shortest - self.span_s, 1e-300))
            return None
        low = 0.0 if dc.on_s < longest else 1.0 / (dc.off_s + 2.0 * longest)
        high = 1.0 / dc.off_s if dc.off_s > 0 else math.inf
        if self.n_inner > 1:
            high = max(high, 1.0 / max(shortest - self.span_s, 1e-300))
        return low, high

    def rate_jumps_hz(self) -> list[tuple[float, float]]:
        """The rates (Hz, lower and higher) on either side of each jump of the clock's rate (an alternating rate's
        change of dwell, a sawtooth's return). The interval across a jump is a mix of the two rates' (the fraction
        of an event the old rate had run, at the new): any between them, as the events drift against the jump. A
        burst's pulses keep their own neighbours."""
        clock = self.clock
        if self.n_inner > 1 or not isinstance(clock, PiecewiseClock):
            return []
        before = np.roll(clock.f0 + clock.slope * clock.dur, 1)
        jumps = np.abs(clock.f0 - before) > 1e-9 * clock.f0
        return [(float(min(a, b)), float(max(a, b))) for a, b in zip(before[jumps], clock.f0[jumps], strict=True)]

    def phase_advance(self, t_s: float, period_s: float) -> float:
        """How many events (a real number) the clock fires from ``t_s`` to ``t_s + period_s``."""
        return float(self.clock.phase(np.array(t_s + period_s)) - self.clock.phase(np.array(t_s)))

    def level_rate(self) -> float:
        """The fastest a level factor changes (a fraction of its highest, per s): ramps, sweeps of amplitude and
        width, and a premodulated beat's envelope ``|sin(π Ψ)|`` (π times the highest beat rate)."""
        st = self.stim
        rate = max([1.0 / r for r in (st.ramp_up_s, st.ramp_down_s) if r > 0], default=0.0)
        for m in (st.amplitude_modulation, st.width_modulation):
            if m is not None:
                rate = max(rate, (1.0 - m.low_percent / 100.0) / m.period_s * (2.0 if m.profile == "triangle" else 1.0))
        beat = getattr(self, "beat_clock", None)
        if beat is not None:
            rate = max(rate, math.pi / _interval_range(beat)[0])
        return rate



    def event_rate(self) -> float:
        """About how many pulses (or carrier cycles) this output delivers a second, at its highest."""
        return Schedule._event_rate_of(self.stim)

    def expected_events(self) -> float:
        """About how many pulses (or carrier cycles) this output delivers in its session."""
        return self.event_rate() * self.session_s

    def clock_events_between(self, t0: float, t1: float, phases: np.ndarray | None = None) -> np.ndarray:
        """How many pulses (a burst's each) the clock fires in ``[t0, t1)`` at each of the clock ``phases`` (see
        :meth:`_clock_events`; off phases included): a burst's pulse ``i`` lies there where its burst starts at a
        clock phase ``j + phase`` in ``[Ψ(t0 - i/f), Ψ(t1 - i/f))``, ``f`` the rate inside a burst. Without
        ``phases``: their mean over every phase (a real number, shape (1,))."""
        delta = np.arange(self.n_inner, dtype=float) / self.inner_hz if self.inner_hz and self.n_inner > 1 else np.zeros(1)
        hi, lo = self.clock.phase(t1 - delta), self.clock.phase(t0 - delta)
        if phases is None:
            return np.array([float((hi - lo).sum())])
        # ceil(x - phase) is floor(x) + 1 where the phase lies below x's fraction, floor(x) else
        phases = np.asarray(phases, dtype=float)
        fh, fl = np.sort(hi - np.floor(hi)), np.sort(lo - np.floor(lo))
        above = fh.shape[0] - np.searchsorted(fh, phases, side="right") - (fl.shape[0] - np.searchsorted(fl, phases, side="right"))
        return float((np.floor(hi) - np.floor(lo)).sum()) + above

    # -- event times -------------------------------------------------------------
    def _clock_events(self, t0: float, t1: float, phase: float = 0.0,
                      following: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The clock's events in [t0, t1) at clock phases ``k + phase`` (``phase`` in [0, 1): the clock as a
        later period of drifting events meets the levels, see :meth:`quasi`): their phases, their times and (with
        ``following``, or where it comes at no cost) the time of the event after each."""
        if phase == 0.0:
            return self.clock.events(t0, t1)
        k = self.clock.indices(max(0.0, t0 - _interval_range(self.clock)[1]), t1) + phase
        t = self.clock.time_of(k)
        keep = (t >= t0) & (t < t1)
        k = k[keep]
        return k, t[keep], self.clock.time_of(k + 1.0) if following else None

    def _events(self, t0: float, t1: float, phase: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
        """Event times in [t0, t1), and each carrier cycle's half-width in µs (sine shapes); the clock at
        ``phase`` (see :meth:`_clock_events`)."""
        if self.shape == "interferential":
            if isinstance(self.clock, ConstantClock):  # (its length as the clock sets it: not a difference of times,
                t = self._clock_events(t0, t1, phase)[1]  # whose rounding grows over a day)
                return t, np.full(t.shape, 0.5e6 / self.clock.f)
            k, t, following = self._clock_events(t0, t1, phase, following=True)
            assert following is not None
            if isinstance(self.clock, RandomClock):
                return t, 0.5e6 * self.clock.intervals[np.mod(np.floor(k), RandomClock.CYCLE).astype(np.int64)]
            return t, (following - t) * 0.5e6
        if self.n_inner == 1:
            t = self._clock_events(t0, t1, phase)[1]
            # a sine burst of a single carrier cycle still carries its half-width
            return t, (np.full(t.shape, 0.5e6 / cast(float, self.inner_hz)) if self.shape == "sine-burst" else None)
        assert self.inner_hz is not None  # set with n_inner > 1
        starts = self._clock_events(max(0.0, t0 - self.span_s), t1, phase)[1]
        j = np.arange(self.n_inner, dtype=float) / self.inner_hz
        t = (starts[:, None] + j[None, :]).ravel()
        t = t[(t >= t0) & (t < t1)]
        if self.shape == "sine-burst":
            return t, np.full(t.shape, 0.5e6 / self.inner_hz)
        return t, None

    def _on_hull(self, t0: float, t1: float) -> tuple[float, float]:
        """The part of ``[t0, t1)`` from the first on phase of a duty cycle in it to the end of the last (a
        little wider, the envelope deciding at the edges; all of it without a duty cycle): no pulse outside it
        is delivered, so its events need not be computed."""
        dc = self.stim.duty_cycle
        if dc is None or dc.off_s <= 0:
            return t0, t1
        cycle, on, slack, offset = dc.cycle_s, dc.on_s, 1e-6, self._duty_offset_s()
        k0 = math.floor((t0 - offset) / cycle)
        k1 = math.floor((t1 + slack - offset) / cycle)  # a cycle that starts at t1 (to rounding) counts
        if not self.periodic:  # a delayed channel is off before its start
            k0 = max(k0, 0)
        if k1 < k0:
            return t0, t0
        first = offset + k0 * cycle
        if t0 > first + on + slack:  # t0 lies in the off phase of cycle k0: from the next on phase
            k0 += 1
            first += cycle
        last = offset + k1 * cycle
        return max(t0, first - slack), min(t1, last + on + slack)

    def window(self, t0: float, t1: float, phase: float = 0.0) -> PulseChunk:
        """The pulses in ``[t0, t1)`` (with the clock at ``phase``: see :meth:`_clock_events`)."""
        t1 = min(t1, self.session_s)
        if t1 <= t0:
            return _empty(t0, t1)
        u, v = self._on_hull(t0, t1)
        if v <= u:
            return _empty(t0, t1)
        t, half_us = self._events(u, v, phase)
        st = self.stim
        if st.duty_cycle is None and u - self.offset_s >= st.ramp_up_s and self.session_s - v >= st.ramp_down_s:
            amp = self.amplitude_ma * self.amplitude_factor(t)  # between the session's ramps: on throughout
        else:
            env = self.envelope(t)
            keep = env > 0
            if int(np.count_nonzero(keep)) < keep.shape[0]:  # (all are kept where the chunk is on throughout)
                t, env = t[keep], env[keep]
                if half_us is not None:
                    half_us = half_us[keep]
            amp = self.amplitude_ma * env * self.amplitude_factor(t)
        beat = getattr(self, "beat_clock", None)
        if self.shape == "interferential" and beat is not None:
            # premodulated: the carrier's envelope follows |sin(π Ψ)|, Ψ the beat phase
            assert half_us is not None
            mid = t + half_us * 1e-6
            amp = amp * np.abs(np.sin(np.pi * beat.phase(mid)))
        return self._chunk(t0, t1, t, half_us, amp, self.width_factor(t))

    def window_bound(self, t0: float, t1: float, phase: float, step: float,
                     drift_s: float, widths: Mapping[str, float] | None = None) -> tuple[PulseChunk, np.ndarray]:
        """Pulses that bound, one for one, those of any copy of ``[t0, t1)`` whose events drifted against its
        levels (see :meth:`quasi`) by a clock phase in ``[phase, phase + step]`` (fractions of an event), and how
        much longer a window starting at each must be to hold every pulse it may hold (s; 0 for a constant rate,
        whose events drift together).

        ``widths`` (s, by level factor) widens what a drifting level factor may be shifted by: from its shift
        (:meth:`with_shifts`) to that much more. Such a factor is given at the highest it reaches over the event's
        drift and that width (at either end, or on either side of a corner inside).

        Event ``k`` of the clock (off phases included; a burst's pulses drift with it) at phase ``k + phase``
        stands for any at ``[t, t + d]``, ``d`` the time the clock takes from ``k + phase`` to
        ``k + phase + step``: its amplitude and width are the highest the levels reach there (at either end or on
        either side of a corner of a ramp, an on/off edge or a sweep inside, or a crest of a premodulated beat), a
        carrier cycle's half-width half the clock's longest interval over its drift and its length. Whole bursts
        are given: those starting in ``[t0, t1)``.
        """
        t1 = min(t1, self.session_s)
        if t1 <= t0:
            return _empty(t0, t1), np.zeros(0)
        clock = self.clock
        widths = {name: v for name, v in (widths or {}).items() if v > 0}
        dense = widths.get("clock", 0.0) > 0
        lowest_hz = 0.0
        if dense:
            # a rate profile shifted by up to widths["clock"] more: events at its highest rate here, each standing
            # for an event of any of those shifts up to one interval later (mapped one for one: their intervals are
            # no shorter), a window one interval longer holding those of any window
            assert isinstance(clock, PiecewiseClock)
            lowest_hz, highest_hz = clock.rate_range(t0 - 1.0, t1 + widths["clock"] + 1.0)
            spacing = 1.0 / highest_hz
            start = np.arange(math.ceil(t0 / spacing - 1e-9), math.ceil(t1 / spacing - 1e-9), dtype=float) * spacing
            start = start[(start >= t0) & (start < t1)]
            d: np.ndarray = np.full(start.shape, spacing)
            k: np.ndarray = np.zeros(start.shape)
        else:
            k = clock.indices(max(0.0, t0 - self.span_s - drift_s), t1)
            k = np.concatenate([k[:1] - 1.0, k]) if k.shape[0] and k[0] >= 1.0 else k
            start = clock.time_of(k + phase)
            d = clock.time_of(k + phase + step) - start
            inside_window = (start >= t0) & (start < t1)  # whole bursts: a burst's first pulse has its own neighbours
            k, start, d = k[inside_window], start[inside_window], d[inside_window]
        half_us = None
        # each factor is linear between corners (where it may jump): over [t, t + d] split at a corner inside, on
        # each side the product of two factors is at most the product of their highest there (at that side's ends),
        # never one factor's highest on one side times the other's on the other (1 where two corners lie inside);
        # a factor whose shift is widened is bounded on its own, over its drift and its width
        reach = 2 * drift_s + 1.0 + max(widths.values(), default=0.0)
        slope = self.level_rate()  # (the fastest a level factor changes between its corners, per s)
        dc = self.stim.duty_cycle
        if dc is not None and dc.off_s > 0:  # the events (bursts) no drift or shift brings into an on phase go first
            on = _highest_over(start, start + d + self.span_s + widths.get("duty", 0.0), [self.envelope],
                               self.breakpoints(t0 - reach, t1 + reach, frozenset({"duty"})), slope)
            if not on.all():
                k, start, d = k[on > 0], start[on > 0], d[on > 0]
        if self.n_inner > 1:  # the pulses of a burst drift with it
            assert self.inner_hz is not None
            j = np.arange(self.n_inner, dtype=float) / self.inner_hz
            t = (start[:, None] + j[None, :]).ravel()
            d = np.repeat(d, self.n_inner)
            t1 = t1 + self.span_s
        else:
            t = start
        if self.shape == "interferential" and dense:  # a cycle lasts at most as long as at the lowest rate here
            half_us = np.full(t.shape, 0.5e6 * (1.0 / lowest_hz + self.cycle_rounding_s()) * (1.0 + 1e-12))
        elif self.shape == "interferential":
            # a cycle that drifts over [t, t + d] lasts at most as long as the clock's longest interval over
            # [t, t + d + its own length]
            cycle_end = clock.time_of(k + phase + step + 1.0)
            half_us = 0.5e6 * (1.0 / clock.lowest_rate(t, cycle_end) + self.cycle_rounding_s()) * (1.0 + 1e-12)
        elif self.shape == "sine-burst":
            half_us = np.full(t.shape, 0.5e6 / cast(float, self.inner_hz))

        def highest(named: dict[str, Any]) -> np.ndarray:
            fixed = {k: f for k, f in named.items() if k not in widths}
            top = (_highest_over(t, t + d, list(fixed.values()), self.breakpoints(t0 - reach, t1 + reach,
                                                                                  frozenset(fixed)), slope)
                   if fixed else np.ones(t.shape))
            for name in (k for k in named if k in widths):  # over its drift and its width
                top = top * _highest_over(t, t + d + widths[name], [named[name]],
                                          self.breakpoints(t0 - reach, t1 + reach, frozenset({name})), slope)
            return top

        st = self.stim
        named = {"duty": self.envelope}
        if st.amplitude_modulation is not None:
            named["amplitude"] = self.amplitude_factor
        amp = self.amplitude_ma * highest(named)
        beat = getattr(self, "beat_clock", None)
        if self.shape == "interferential" and beat is not None:  # |sin(π Ψ)| at its highest over the drift
            assert half_us is not None
            psi0 = beat.phase(t + half_us * 1e-6)
            psi1 = beat.phase(t + d + half_us * 1e-6)
            crest = np.floor(psi0 - 0.5) != np.floor(psi1 - 0.5)
            amp = amp * np.where(crest, 1.0, np.maximum(np.abs(np.sin(np.pi * psi0)), np.abs(np.sin(np.pi * psi1))))
        wfac = highest({"width": self.width_factor}) if st.width_modulation is not None else np.ones(t.shape)
        keep = amp > 0
        extra = np.zeros(int(keep.sum())) if isinstance(clock, ConstantClock) else d[keep]
        return (self._chunk(t0, t1, t[keep], None if half_us is None else half_us[keep], amp[keep], wfac[keep]),
                extra)

    def cycle_rounding_s(self) -> float:
        """How much longer the rounding of two times within the session can make a carrier cycle of a swept rate
        (the difference of the times of its ends; a constant or random rate's is set without it)."""
        return 0.0 if isinstance(self.clock, ConstantClock | RandomClock) else 2.0 * float(np.spacing(self.session_s))

    def _chunk(self, t0: float, t1: float, t: np.ndarray, half_us: np.ndarray | None, amp: np.ndarray,
               wfac: np.ndarray) -> PulseChunk:
        """The pulses at times ``t`` with peak currents ``amp`` (mA, unsigned) and width factors ``wfac``."""
        n = t.shape[0]
        p = self.stim.pulse
        if self.shape in ("sine-burst", "interferential"):
            assert half_us is not None
            return PulseChunk(t0, t1, t, self._constant(n, self.index, np.int16),
                              self._constant(n, SHAPE_SINE, np.uint8), amp, half_us, self._constant(n, 0.0, np.float64),
                              -amp, half_us.copy())
        assert isinstance(p, (SymmetricBiphasic, AsymmetricBiphasic, Monophasic))
        width = p.pulse_width_us * wfac
        if self.shape == "monophasic":
            assert isinstance(p, Monophasic)
            sign = -1.0 if p.polarity == "cathodic" else 1.0
            a1 = sign * amp
            if p.twin_peak_spacing_us is None:
                a2, w2, gap = np.zeros(n), np.zeros(n), np.zeros(n)
            else:
                a2, w2, gap = a1.copy(), width.copy(), np.full(n, p.twin_peak_spacing_us)
        else:
            assert isinstance(p, (SymmetricBiphasic, AsymmetricBiphasic))
            sign = -1.0 if p.leading_phase == "cathodic" else 1.0
            a1 = sign * amp
            gap = self._constant(n, p.interphase_gap_us, np.float64)
            if self.shape == "symmetric-biphasic":
                a2, w2 = -a1, width.copy()
            else:
                assert isinstance(p, AsymmetricBiphasic)
                ratio = p.second_phase_ratio
                w2 = width * ratio
                a2 = -a1 / ratio
        code = SHAPE_SPIKE if isinstance(p, Monophasic) and p.phase_shape == "spike" else SHAPE_RECT
        return PulseChunk(t0, t1, t, self._constant(n, self.index, np.int16), self._constant(n, code, np.uint8), a1,
                          width, gap, a2, w2)

    def _constant(self, n: int, value: float, dtype: Any) -> np.ndarray:
        """``n`` times ``value``: a read-only view of one array per value kept by the generator (chunk after chunk
        needs the same)."""
        cache: dict[tuple[float, Any], np.ndarray] = self.__dict__.setdefault("_constants", {})
        key = (value, np.dtype(dtype))
        held = cache.get(key)
        if held is None or held.shape[0] < n:
            held = np.full(max(n, 1024), value, dtype)
            held.setflags(write=False)
            cache[key] = held
        return held[:n]


class _PhasedGenerator:
    """Pulses of one output of a multi-phase program: each phase's own generator, shifted to the phase's start.

    ``parts`` holds ``(start_s, stop_s, factor, generator)`` per phase: the generator runs
    in the phase's own time (its ramps, duty cycle and sweeps start at the phase's
    start), ``factor`` is the phase's ``intensity_percent`` / 100. A pulse that would not
    end within its phase is not delivered (the next phase starts on a clean output).
    """

    def __init__(self, index: int, parts: list[tuple[float, float, float, _OutputGenerator]]):
        self.index = index
        self.parts = parts
        self.session_s = parts[-1][1]
        # a pulse (a burst) that starts in a window lasts at most this long past its end (s, with a margin)
        self._longest_s = 2.0 * max(g.span_s + _longest_pulse_s(g.stim.pulse) for _, _, _, g in parts) + 1e-6

    def _parts(self, t0: float, t1: float) -> list[tuple[float, float, float, _OutputGenerator]]:
        if t1 <= t0:
            return [p for p in self.parts if p[0] <= t0 < p[1]][:1]
        return [p for p in self.parts if p[0] < t1 and p[1] > t0]

    def window(self, t0: float, t1: float, phase: float = 0.0) -> PulseChunk:
        t1 = min(t1, self.session_s)
        chunks = []
        for start, stop, factor, g in self._parts(t0, t1):
            a, b = max(t0, start), min(t1, stop)
            if b <= a or factor <= 0:
                continue
            c = g.window(a - start, b - start, phase)
            if len(c) and b > stop - self._longest_s:  # near its end: the pulses that would not end within it go
                c = c.select(c.end_s <= (stop - start) + 1e-12)
            if factor != 1.0:
                c = PulseChunk(c.start_s, c.stop_s, **{**c.to_dict(), "first_amplitude_ma": c.first_amplitude_ma * factor,
                                                       "second_amplitude_ma": c.second_amplitude_ma * factor})
            chunks.append(PulseChunk(a, b, **{**c.to_dict(), "time_s": c.time_s + start}))
        return PulseChunk.concatenate(chunks, t0, t1)

    def lowest(self, t0: float, t1: float) -> tuple[float, float]:
        """The lowest amplitude factor and pulse width over ``[t0, t1]``; the width as a factor of the pulse width
        of the phase at ``t0`` (each phase's width factor times its pulse width, the lowest of them)."""
        parts = self._parts(t0, t1) if t1 > t0 else self._parts(t0, t0)
        if not parts:
            return 0.0, 1.0
        ref = _pulse_width_us(parts[0][3])
        level, width = math.inf, math.inf
        for start, stop, factor, g in parts:
            lv, wf = g.lowest(max(t0, start) - start, min(t1, stop) - start)
            if t1 > stop - 1e-12:  # the pulses that would not end within the phase are not delivered
                lv = 0.0
            level = min(level, lv * factor)
            width = min(width, wf * _pulse_width_us(g) / ref if ref > 0 else 1.0)
        return level, width

    def regions(self, fallback: Callable[[_OutputGenerator], list[Region]] | None = None) -> list[Region]:
        """The regions of every phase (see ``_OutputGenerator.regions``; ``fallback`` for a phase's generator where
        it has none), in session time, each ending before its phase's last pulses: those a pulse that would not end
        within the phase is taken from (its longest pulse or burst, twice), and two of its clock's longest intervals
        more (the last pulses have the next phase's first as a neighbour: their windows, a window and more from the
        region's end, are streamed)."""
        return [replace(r, start_s=start + r.start_s,
                        stop_s=min(start + r.stop_s, stop - self._longest_s - 2.0 * g.clock_interval_range_s()[1]))
                for start, stop, factor, g in self.parts if factor > 0 for r in g.regions(fallback)]

    def part_at(self, t_s: float) -> tuple[float, float, _OutputGenerator]:
        """The start (s), intensity factor and generator of the phase that holds ``t_s``."""
        return next((start, factor, g) for start, stop, factor, g in self.parts if start <= t_s < stop)

    def with_shifts(self, shifts: Mapping[str, float], region: Region | None = None) -> _PhasedGenerator:
        """This output with the level factors of the phase that holds ``region`` shifted (see
        ``_OutputGenerator.with_shifts``; those of every phase without a region)."""
        at = None if region is None else region.start_s
        parts = [(start, stop, factor, g.with_shifts(shifts) if at is None or start <= at < stop else g)
                 for start, stop, factor, g in self.parts]
        return _PhasedGenerator(self.index, parts)

    def _holding(self, region: Region) -> tuple[float, _OutputGenerator]:
        """The start (s) and generator of the phase that holds ``region``."""
        start, _, g = self.part_at(region.start_s)
        return start, g

    def without(self, names: frozenset[str], region: Region | None = None) -> _PhasedGenerator:
        """This output with the level factors ``names`` of the phase that holds ``region`` held at 1 (see
        ``_OutputGenerator.without``)."""
        assert region is not None
        held = self._holding(region)[1]
        return _PhasedGenerator(self.index, [(start, stop, factor, g.without(names) if g is held else g)
                                             for start, stop, factor, g in self.parts])

    def level_factors(self, names: frozenset[str], t: np.ndarray, region: Region | None = None) -> dict[str, np.ndarray]:
        """``_OutputGenerator.level_factors`` of the phase that holds ``region`` (``t`` in session time)."""
        assert region is not None
        start, g = self._holding(region)
        return g.level_factors(names, t - start)

    def shortest_intervals_s(self) -> list[float]:
        return [x for _, _, _, g in self.parts for x in g.shortest_intervals_s()]

    def longest_gap_s(self) -> float:
        return max(g.longest_gap_s() for _, _, _, g in self.parts)

    def levels_jump(self) -> bool:
        return any(g.levels_jump() for _, _, _, g in self.parts)

    def rate_jumps_hz(self) -> list[tuple[float, float]]:
        return [jump for _, _, _, g in self.parts for jump in g.rate_jumps_hz()]

    def lone_rate_range_hz(self) -> tuple[float, float] | None:
        ranges = [r for _, _, _, g in self.parts if (r := g.lone_rate_range_hz()) is not None]
        return (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None

    def phase_advance(self, t_s: float, period_s: float) -> float:
        start, _, _, g = self._parts(t_s, t_s)[0]
        return g.phase_advance(t_s - start, period_s)

    def window_bound(self, t0: float, t1: float, phase: float, step: float,
                     drift_s: float, widths: Mapping[str, float] | None = None) -> tuple[PulseChunk, np.ndarray]:
        chunks, extras = [], []
        for start, stop, factor, g in self._parts(t0, t1):
            a, b = max(t0, start), min(t1, stop)
            if b <= a or factor <= 0:
                continue
            c, extra = g.window_bound(a - start, b - start, phase, step, drift_s, widths)
            c = PulseChunk(c.start_s, c.stop_s, **{**c.to_dict(), "first_amplitude_ma": c.first_amplitude_ma * factor,
                                                   "second_amplitude_ma": c.second_amplitude_ma * factor})
            chunks.append(PulseChunk(a, b, **{**c.to_dict(), "time_s": c.time_s + start}))
            extras.append(extra)
        return PulseChunk.concatenate(chunks, t0, t1), (np.concatenate(extras) if extras else np.zeros(0))

    def expected_events(self) -> float:
        return sum(g.expected_events() for _, _, _, g in self.parts)

    def clock_events_between(self, t0: float, t1: float, phases: np.ndarray | None = None) -> np.ndarray:
        start, _, _, g = self._parts(t0, t0)[0]  # (a region lies in one phase)
        return g.clock_events_between(t0 - start, t1 - start, phases)

    def identity(self, amplitude: bool = True) -> tuple:
        # without amplitude: every phase's current a factor of the channel's (:attr:`amplitude_ma`)
        return tuple((start, stop, factor, g.identity(amplitude),
                      None if amplitude or not self.amplitude_ma else g.amplitude_ma / self.amplitude_ma)
                     for start, stop, factor, g in self.parts)

    @property
    def amplitude_ma(self) -> float:
        """The highest current (mA) of the phases' outputs."""
        return max((g.amplitude_ma for _, _, _, g in self.parts), default=0.0)


def _share_bound_events(outputs: list, parts: list[_OutputGenerator]) -> None:
    """Give each of ``parts`` (the generators of ``outputs``, one per output and phase) its share of
    ``_MAX_PROGRAM_BOUND_EVENTS``: at most ``_MAX_BOUND_EVENTS`` each, split evenly among the distinct outputs'
    parts (outputs alike but for their intensity count once)."""
    distinct = len({g.identity(amplitude=False) for g in outputs})
    per_output = max(1.0, len(parts) / max(len(outputs), 1))
    share = min(float(_MAX_BOUND_EVENTS), _MAX_PROGRAM_BOUND_EVENTS / (distinct * per_output))
    for g in parts:
        g.bound_events = share


def _pulse_width_us(g: _OutputGenerator) -> float:
    return float(getattr(g.stim.pulse, "pulse_width_us", 0.0))


def _longest_pulse_s(pulse: Any) -> float:
    """The longest pulse (or carrier cycle) of a pulse model (s): a width sweep only shortens it, and a carrier
    cycle is at most as long as at the carrier frequency."""
    if pulse.shape in ("sine-burst", "interferential"):
        return 1.0 / pulse.carrier_frequency_hz
    return pulse.duration_us * 1e-6


class Schedule:
    """The pulse schedule of a program at a chosen intensity, streamed in chunks.

    Parameters
    ----------
    program : Program
        The therapy program.
    level : {"default", "max"}
        Which amplitude of each channel to use: the program's starting value or the
        highest it allows.
    amplitude_ma : float or mapping of channel label to float, optional
        Explicit amplitude(s), overriding ``level``.
    chunk_s : float, optional
        Length of each chunk; by default chosen so that a chunk holds about
        250 000 pulses.

    Examples
    --------
    >>> import electrostim as es
    >>> s = es.Schedule(es.load_program("tens-burst"))
    >>> c = s.pulses(0.0, 1.0)
    >>> len(c) > 0, float(c.first_width_us[0])
    (True, 200.0)
    """

    def __init__(
        self,
        program: Program,
        level: str = "default",
        amplitude_ma: float | Mapping[str, float] | None = None,
        chunk_s: float | None = None,
    ):
        if level not in ("default", "max"):
            raise OptionError(f"Invalid value for 'level': allowed 'default', 'max', but got {level!r}.")
        self.program = program
        self.level = level
        self.outputs = program.outputs
        labels = [c.label for c in program.channels]
        if isinstance(amplitude_ma, Mapping):
            bad = sorted(set(amplitude_ma) - set(labels))
            if bad:
                raise OptionError(f"Invalid channel label(s) {bad} in amplitude_ma: allowed {labels}.")
        amps: list[float] = []
        for out in self.outputs:
            ch = program.channels[out.channel_index]
            a = ch.stimulus.amplitude
            value = a.max_ma if level == "max" else a.default_ma
            if isinstance(amplitude_ma, Mapping):
                value = amplitude_ma.get(ch.label, value)
            elif amplitude_ma is not None:
                value = amplitude_ma
            top = _MAX_VOLTAGE_CONTROLLED_MA if a.voltage_controlled else 1000  # volts drive up to 2.5 A into 200 Ω
            if not (0 <= float(value) <= top):
                raise OptionError(f"Invalid amplitude for channel {ch.label!r}: allowed 0 to {top:g} mA, but got {value!r}.")
            amps.append(float(value))
        #: amplitude of each output in mA
        self.amplitudes_ma = amps
        self.duration_s = program.session_duration_s
        #: the program's phases in session time (one span without phases)
        self.spans = program.phase_spans
        rate = sum(max(self._event_rate_of(st) for st in program.stimuli(o.channel_index)) for o in self.outputs)
        self.chunk_s = float(chunk_s) if chunk_s else max(0.01, min(self.duration_s, _TARGET_EVENTS_PER_CHUNK / rate))

    @staticmethod
    def _event_rate(out: Output) -> float:
        return Schedule._event_rate_of(out.stimulus)

    @staticmethod
    def _event_rate_of(st) -> float:
        p = st.pulse
        if p.shape == "interferential":
            return p.carrier_frequency_hz + p.beat_frequency_hz * 2
        per = p.cycles_per_burst if p.shape == "sine-burst" else (st.burst.pulses_per_burst if st.burst else 1)
        return per * st.max_repetition_hz

    @property
    def lookahead_s(self) -> float:
        """A window that holds at least two pulses of the slowest output (0.05 to 1 s):
        long enough that a slow train is not read as an off phase by :meth:`levels_at`."""
        rate = min(st.nominal_repetition_hz for o in self.outputs for st in self.program.stimuli(o.channel_index))
        return min(1.0, max(0.05, 2.0 / rate))

    def phase_at(self, t_s: float):
        """The phase (a :class:`~electrostim.program.PhaseSpan`) running at session time ``t_s``."""
        for span in self.spans:
            if t_s < span.stop_s:
                return span
        return self.spans[-1]

    def levels_at(self, t_s: float, window_s: float | None = None) -> list[tuple[float, float]]:
        """Per output, ``(level, pulse_width_us)`` of the pulses just ahead of ``t_s``.

        ``level`` is the largest first-phase amplitude in ``[t_s, t_s + window_s)`` as a
        fraction of the output's amplitude (0 in an off phase; rising through a ramp;
        following an amplitude modulation), ``pulse_width_us`` the widest first phase
        there (0 when there is none). ``window_s`` defaults to :attr:`lookahead_s`.
        """
        t_s = min(max(t_s, 0.0), self.duration_s)
        window = self.lookahead_s if window_s is None else window_s
        chunk = self.pulses(t_s, min(t_s + window, self.duration_s))
        out = []
        for i, amp in enumerate(self.amplitudes_ma):
            mine = chunk.output == i
            if not mine.any() or amp <= 0:
                out.append((0.0, 0.0))
                continue
            level = float(np.max(np.abs(chunk.first_amplitude_ma[mine]))) / amp
            out.append((min(1.0, level), float(np.max(chunk.first_width_us[mine]))))
        return out

    def lowest_levels(self, t0_s: float, t1_s: float) -> list[tuple[float, float]]:
        """Per output, ``(level, width_factor)``: the lowest amplitude and pulse-width factors of the schedule
        over ``[t0_s, t1_s]``, exactly (each factor is linear between the breakpoints of ramps, duty cycle and
        modulation, so the lowest product lies at an end or a breakpoint).

        ``level`` is 0 when any part of the interval is in an off phase, before an
        output's start or after the session. A host that commands an output at
        ``level × intensity`` and ``width_factor × pulse width`` for the whole interval
        delivers no pulse above the schedule's there.

        Examples
        --------
        >>> import electrostim as es
        >>> s = es.Schedule(es.load_program("nmes-quadriceps-tka"), level="max")
        >>> s.lowest_levels(0.0, 0.1)[0], s.lowest_levels(5.0, 6.0)[0]  # the start of the ramp up; on
        ((0.0, 1.0), (1.0, 1.0))
        """
        t0 = max(0.0, float(t0_s))
        t1 = max(t0, float(t1_s))
        out = []
        for g in self._generators():
            if t1 > g.session_s or t0 >= g.session_s:
                out.append((0.0, 1.0))
                continue
            out.append(g.lowest(t0, t1))
        return out

    @property
    def max_pulse_duration_s(self) -> float:
        """Longest single pulse (or carrier cycle) any output can produce."""
        return max((_longest_pulse_s(st.pulse) for o in self.outputs for st in self.program.stimuli(o.channel_index)),
                   default=0.0)

    def _generators(self) -> list:
        """One generator per output (for the dose: :meth:`_dose_generators`)."""
        if len(self.spans) == 1:
            offsets = self.program.channel_offsets_s
            return [_OutputGenerator(self.program, o, a, offsets[o.channel_index])
                    for o, a in zip(self.outputs, self.amplitudes_ma)]
        parts: list[list[tuple[float, float, float, _OutputGenerator]]] = [[] for _ in self.outputs]
        for span in self.spans:
            prog = span.program
            offsets = prog.channel_offsets_s
            for o, a, mine in zip(prog.outputs, self.amplitudes_ma, parts):
                mine.append((span.start_s, span.stop_s, span.intensity_percent / 100.0,
                             _OutputGenerator(prog, o, a, offsets[o.channel_index])))
        return [_PhasedGenerator(o.index, p) for o, p in zip(self.outputs, parts)]

    def _dose_generators(self) -> list:
        """The generators as the dose takes them: the distinct outputs (and phases) sharing the events the bounds
        of their drifting regions may evaluate (``_MAX_PROGRAM_BOUND_EVENTS``; outputs alike but for their
        intensity are dosed once)."""
        gens = self._generators()
        parts = [g for p in gens for _, _, factor, g in p.parts if factor > 0] if len(self.spans) > 1 else gens
        _share_bound_events(gens, parts)
        return gens

    def output_chunks(self, start_s: float = 0.0, stop_s: float | None = None) -> Iterator[list[PulseChunk]]:
        """Per window, one chunk per output (not merged): the cheap form for per-output work."""
        stop = self.duration_s if stop_s is None else min(stop_s, self.duration_s)
        gens = self._generators()
        t0 = max(0.0, start_s)
        n = max(1, math.ceil((stop - t0) / self.chunk_s - 1e-9))
        for i in range(n):
            a = t0 + i * self.chunk_s
            b = stop if i == n - 1 else t0 + (i + 1) * self.chunk_s
            if b <= a:
                break
            yield [g.window(a, b) for g in gens]

    def chunks(self, start_s: float = 0.0, stop_s: float | None = None) -> Iterator[PulseChunk]:
        """Pulses of all outputs, chunk by chunk, sorted by time then output."""
        for parts in self.output_chunks(start_s, stop_s):
            merged = PulseChunk.concatenate(parts, parts[0].start_s, parts[0].stop_s)
            if len(parts) > 1:
                merged = merged.select(np.argsort(merged.time_s, kind="stable"))
            yield merged

    def pulses(self, start_s: float = 0.0, stop_s: float | None = None) -> PulseChunk:
        """All pulses in a window as one chunk (mind the memory for long windows)."""
        stop = self.duration_s if stop_s is None else stop_s
        return PulseChunk.concatenate(list(self.chunks(start_s, stop)), start_s, stop)

    def __iter__(self) -> Iterator[PulseChunk]:
        return self.chunks()


def schedule(program: Program, level: str = "default", amplitude_ma: float | Mapping[str, float] | None = None) -> Schedule:
    """Shortcut for :class:`Schedule`."""
    return Schedule(program, level=level, amplitude_ma=amplitude_ma)


def _fields_ok() -> None:  # keep the ARRAYS list in step with the dataclass
    names = [f.name for f in fields(PulseChunk) if f.name not in ("start_s", "stop_s")]
    assert tuple(names) == PulseChunk._ARRAYS


_fields_ok()
