"""Event clocks and envelopes: pure functions and small stateful generators on arrays.

A clock fires events (pulses, bursts, carrier cycles) where its phase
``Φ(t) = ∫₀ᵗ f(τ) dτ`` crosses an integer. Event ``k`` has one time, computed by one
formula, whatever window asks for it, so chunked generation never duplicates or
drops an event at a window edge. Times are in seconds, rates in hertz.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["SNAP_S", "sweep_factor", "sweep_shift_s", "ConstantClock", "PiecewiseClock", "RandomClock", "cycle_phase", "make_clock", "triangle01",
           "duty_envelope", "with_whole_cycles"]


class _IndexedClock:
    """A clock whose event ``k`` has a closed-form time (``time_of``) and phase (``phase``)."""

    def time_of(self, k: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def phase(self, t: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def indices(self, t0: float, t1: float) -> np.ndarray:
        """Indices (as floats) of the events in [t0, t1)."""
        return self.events(t0, t1)[0]

    def times(self, t0: float, t1: float) -> np.ndarray:
        """Event times in [t0, t1)."""
        return self.time_of(self.indices(t0, t1))

    def events(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices (as floats) of the events in [t0, t1), their times and the time of the event after each, each
        time computed once (the same values as ``time_of(k)`` and ``time_of(k + 1)``)."""
        k0 = max(0, math.floor(float(self.phase(np.array(t0)))) - 1)
        k1 = math.ceil(float(self.phase(np.array(t1)))) + 1
        k = np.arange(k0, k1 + 1, dtype=np.float64)  # k1 only as the next of the last
        if k.shape[0] == 0:  # (a span before the clock's first event)
            return k, k, k
        t = self.time_of(k)
        inside = (t >= t0) & (t < t1)
        inside[-1] = False
        n = int(np.count_nonzero(inside))
        lo = int(inside.argmax()) if n else 0
        if int(np.count_nonzero(inside[lo : lo + n])) == n:  # one run of events (times in order): slices
            return k[lo : lo + n], t[lo : lo + n], t[lo + 1 : lo + n + 1]
        at = np.flatnonzero(inside)
        return k[at], t[at], t[at + 1]


class ConstantClock(_IndexedClock):
    """Events at ``k / f``."""

    def __init__(self, frequency_hz: float):
        self.f = float(frequency_hz)

    def time_of(self, k: np.ndarray) -> np.ndarray:
        return k / self.f

    def phase(self, t: np.ndarray) -> np.ndarray:
        return np.asarray(t, dtype=float) * self.f

    def rate(self, t: np.ndarray) -> np.ndarray:
        """The rate (Hz) at times ``t``: the same throughout."""
        return np.full(np.shape(t), self.f)

    def lowest_rate(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """The lowest rate (Hz) over each ``[t0, t1]``: the rate."""
        return np.full(np.shape(t0), self.f)


def _segment(starts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The segment of each ``x``: the last of the increasing ``starts`` at or before it (0 before the first).

    As ``clip(searchsorted(starts, x, "right") - 1, 0, len(starts) - 1)``; a profile has a few segments, and
    counting the starts passed is cheaper than a binary search per value."""
    if starts.shape[0] > 8:
        return np.clip(np.searchsorted(starts, x, side="right") - 1, 0, starts.shape[0] - 1)
    j = np.zeros(np.shape(x), dtype=np.intp)
    for edge in starts[1:]:
        j += x >= edge
    return j


class PiecewiseClock(_IndexedClock):
    """A rate that follows a periodic piecewise-linear profile.

    Parameters
    ----------
    segments : list of (duration_s, start_hz, end_hz)
        One period of the profile; rates must stay above zero.
    """

    def __init__(self, segments: list[tuple[float, float, float]]):
        dur = np.array([s[0] for s in segments], dtype=float)
        f0 = np.array([s[1] for s in segments], dtype=float)
        f1 = np.array([s[2] for s in segments], dtype=float)
        if np.any(dur <= 0) or np.any(f0 <= 0) or np.any(f1 <= 0):
            raise ValueError("clock segments need positive durations and rates")
        self.tau0 = np.concatenate([[0.0], np.cumsum(dur)[:-1]])
        self.dur = dur
        self.f0 = f0
        self.slope = (f1 - f0) / dur
        seg_phase = dur * (f0 + f1) / 2.0
        self.phi0 = np.concatenate([[0.0], np.cumsum(seg_phase)[:-1]])
        self.period = float(dur.sum())
        self.phi_period = float(seg_phase.sum())

    def rate(self, t: np.ndarray) -> np.ndarray:
        tau = np.mod(t, self.period)
        j = _segment(self.tau0, tau)
        return self.f0[j] + self.slope[j] * (tau - self.tau0[j])

    def phase(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        kernels = _kernels_for(t) if t.ndim == 1 else None
        if kernels is not None:
            out = np.empty(t.shape)
            kernels.piecewise_phase_into(t, self.phi_period, self.period, self.phi0, self.tau0, self.f0, self.slope, out)
            return out
        m = np.floor(t / self.period)
        tau = t - m * self.period
        j = _segment(self.tau0, tau)
        u = tau - self.tau0[j]
        return m * self.phi_period + self.phi0[j] + self.f0[j] * u + 0.5 * self.slope[j] * u * u

    def lowest_rate(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """The lowest rate (Hz) over each ``[t0, t1]``: at either end, or at a segment's edge inside (either
        side of it; the profile's lowest where more than one edge lies inside)."""
        t0, t1 = np.asarray(t0, dtype=float), np.asarray(t1, dtype=float)
        low = np.minimum(PiecewiseClock.rate(self, t0), PiecewiseClock.rate(self, t1))  # (unshifted: see ShiftedClock)
        if t0.size == 0:
            return low
        ends = self.f0 + self.slope * self.dur
        edges_in_period = self.tau0
        m0 = math.floor(float(t0.min()) / self.period) - 1
        m1 = math.ceil(float(t1.max()) / self.period) + 1
        edges = (self.period * np.arange(m0, m1 + 1, dtype=float)[:, None] + edges_in_period[None, :]).ravel()
        sides = np.minimum(self.f0, np.roll(ends, 1))  # right of edge j, and left of it (the previous segment's end)
        side = np.tile(sides, m1 - m0 + 1)
        a = np.searchsorted(edges, t0, side="right")
        b = np.searchsorted(edges, t1, side="right")
        one = b - a == 1
        low = np.where(one, np.minimum(low, side[np.minimum(a, side.shape[0] - 1)]), low)
        return np.where(b - a > 1, min(float(self.f0.min()), float(ends.min())), low)

    def rate_range(self, t0: float, t1: float) -> tuple[float, float]:
        """The lowest and the highest rate (Hz) over ``[t0, t1]``: at either end or either side of a segment's
        edge inside (the profile's extremes where it spans a period)."""
        ends = self.f0 + self.slope * self.dur
        if t1 - t0 >= self.period:
            return float(min(self.f0.min(), ends.min())), float(max(self.f0.max(), ends.max()))
        m = np.arange(math.floor(t0 / self.period), math.floor(t1 / self.period) + 1, dtype=float)
        edges = (self.period * m[:, None] + self.tau0[None, :]).ravel()
        j = np.tile(np.arange(self.tau0.shape[0]), m.shape[0])
        inside = (edges > t0) & (edges < t1)
        values = np.concatenate([PiecewiseClock.rate(self, np.array([t0, t1])), self.f0[j[inside]], np.roll(ends, 1)[j[inside]]])
        return float(values.min()), float(values.max())

    def time_of(self, k: np.ndarray) -> np.ndarray:
        k = np.asarray(k, dtype=float)
        kernels = _kernels_for(k) if k.ndim == 1 else None
        if kernels is not None:
            out = np.empty(k.shape)
            kernels.piecewise_time_of_into(k, self.phi_period, self.period, self.phi0, self.tau0, self.f0, self.slope,
                                           out)
            return out
        m = np.floor(k / self.phi_period)
        r = k - m * self.phi_period
        j = _segment(self.phi0, r)
        d = r - self.phi0[j]
        f0 = self.f0[j]
        # root of ½·s·u² + f0·u − d = 0 in its cancellation-free form (also for s = 0)
        u = 2.0 * d / (f0 + np.sqrt(np.maximum(f0 * f0 + 2.0 * self.slope[j] * d, 0.0)))
        return m * self.period + self.tau0[j] + u


class ShiftedClock(PiecewiseClock):
    """A :class:`PiecewiseClock` evaluated ``shift_s`` later: its events come ``shift_s`` earlier (event ``k`` at
    ``clock.time_of(k) - shift_s``), as a later period of a region whose rate profile drifts against its period
    meets it (``Region.shifted``)."""

    def __init__(self, clock: PiecewiseClock, shift_s: float):
        self.__dict__.update(clock.__dict__)
        self.shift_s = float(shift_s)

    def rate(self, t: np.ndarray) -> np.ndarray:
        return super().rate(np.asarray(t, dtype=float) + self.shift_s)

    def phase(self, t: np.ndarray) -> np.ndarray:
        return super().phase(np.asarray(t, dtype=float) + self.shift_s)

    def time_of(self, k: np.ndarray) -> np.ndarray:
        return super().time_of(k) - self.shift_s

    def lowest_rate(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        return super().lowest_rate(np.asarray(t0, dtype=float) + self.shift_s, np.asarray(t1, dtype=float) + self.shift_s)

    def rate_range(self, t0: float, t1: float) -> tuple[float, float]:
        return super().rate_range(t0 + self.shift_s, t1 + self.shift_s)


class RandomClock(_IndexedClock):
    """Events whose intervals are ``1/f`` with ``f`` uniform in ``[low_hz, high_hz]``, seeded.

    The first :attr:`CYCLE` intervals are drawn from the seed; the sequence then
    repeats, every :attr:`period` seconds (their sum), like the pseudo-random tables of
    stimulators. The drawn intervals are stretched (or shrunk) a little, each within
    ``[1/high_hz, 1/low_hz]``, so that the period is a round number of seconds (a whole
    second where the range allows, else a tenth, a hundredth or a thousandth): a duty
    cycle or a sweep of round length then repeats with it, and a long session is dosed
    from one repeat period. With ``multiple_of_s`` (the period of an output's duty cycle
    and sweeps, where it is not round) the period is stretched to a whole number of those
    instead, where the range allows. Event ``k`` has a closed-form time, so any window can
    be asked for.
    """

    #: intervals drawn before the sequence repeats
    CYCLE = 4096
    #: the steps the period is rounded to, coarsest first (s)
    PERIOD_STEPS_S = (1.0, 0.1, 0.01, 0.001)

    def __init__(self, low_hz: float, high_hz: float, seed: int, multiple_of_s: float | None = None):
        self.low, self.high = float(low_hz), float(high_hz)
        intervals = 1.0 / np.random.default_rng(seed).uniform(self.low, self.high, self.CYCLE)
        total = float(np.sum(intervals))
        steps = self.PERIOD_STEPS_S if multiple_of_s is None else (float(multiple_of_s),)
        for step in steps:
            done = False
            for target in (math.ceil(total / step - 1e-12) * step, math.floor(total / step + 1e-12) * step):
                gap = target - total
                room = (1.0 / self.low - intervals) if gap >= 0 else (intervals - 1.0 / self.high)
                if target > 0 and abs(gap) <= 0.5 * float(room.sum()):
                    intervals = intervals + gap * room / float(room.sum())
                    total, done = (round(target, 9) if multiple_of_s is None else target), True
                    break
            if done:
                break
        ends = np.cumsum(intervals)
        self.starts = np.concatenate([[0.0], ends[:-1]])  # event j of a cycle, from the cycle's start
        self.intervals = np.diff(np.concatenate([self.starts, [total]]))
        #: length of one cycle of the sequence (s): a round number of seconds where the range allows
        self.period = float(total)

    def time_of(self, k: np.ndarray) -> np.ndarray:
        k = np.asarray(k, dtype=float)
        m = np.floor(k / self.CYCLE)
        j = (k - m * self.CYCLE).astype(np.int64)
        return m * self.period + self.starts[j]

    def phase(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        m = np.floor(t / self.period)
        tau = t - m * self.period
        j = np.clip(np.searchsorted(self.starts, tau, side="right") - 1, 0, self.CYCLE - 1)
        return m * self.CYCLE + j + (tau - self.starts[j]) / self.intervals[j]


def profile_segments(low: float, high: float, period_s: float, profile: str) -> list[tuple[float, float, float]]:
    """One period of a sweep between ``low`` and ``high``."""
    if profile == "triangle":
        return [(period_s / 2, low, high), (period_s / 2, high, low)]
    return [(period_s, low, high)]  # sawtooth


def make_clock(nominal_hz: float, modulation, *, offset_hz: float = 0.0):
    """The clock of a repetition rate under an optional frequency modulation (shifted by ``offset_hz``)."""
    if modulation is None:
        return ConstantClock(nominal_hz + offset_hz)
    kind = modulation.kind
    if kind == "frequency-sweep":
        segs = profile_segments(modulation.low_hz, modulation.high_hz, modulation.period_s, modulation.profile)
    elif kind == "alternating-frequency":
        segs = [(modulation.dwell_s, f, f) for f in modulation.frequencies_hz]
    elif kind == "random-frequency":
        return RandomClock(modulation.low_hz, modulation.high_hz, modulation.seed)
    else:  # pragma: no cover - schema forbids
        raise ValueError(kind)
    return PiecewiseClock([(d, a + offset_hz, b + offset_hz) for d, a, b in segs])


def with_whole_cycles(clock: _IndexedClock) -> _IndexedClock:
    """``clock``, or for a swept clock whose profile's period holds no whole number of events, the same profile
    with every rate scaled by ``n / c`` (``c`` the events per period, ``n`` the nearest whole number, at least
    1): a change of at most ``1 / (2c)`` of each rate (0.1 % for a beat swept 1.37-100 Hz over 6.1234567 s).

    A premodulated interferential beat takes this clock, so that its envelope repeats with each sweep (as the
    sweeps of the devices' beat tables do) and a long session is dosed from one sweep.

    Examples
    --------
    >>> c = with_whole_cycles(make_clock(100.0, None))  # a constant rate is left as it is
    >>> float(c.f)
    100.0
    """
    if not isinstance(clock, PiecewiseClock):
        return clock
    c = clock.phi_period
    n = max(1, round(c))
    if abs(n - c) <= 1e-12 * c:
        return clock
    k = n / c
    return PiecewiseClock([(float(d), float(f0 * k), float((f0 + s * d) * k))
                           for d, f0, s in zip(clock.dur, clock.f0, clock.slope, strict=True)])


#: a time within this much (s) of a cycle's start or of a jump is taken to be exactly there: a pulse on a
#: boundary belongs to the same side whatever the rounding of its time (its time is exact to about 1e-11 s
#: in a day-long session)
SNAP_S = 1e-10


def cycle_phase(t: np.ndarray, cycle_s: float) -> np.ndarray:
    """``t`` modulo ``cycle_s`` in [0, cycle_s), with a time within :data:`SNAP_S` of a cycle's start taken as 0."""
    t = np.asarray(t, dtype=float)
    # t - floor(t / c) c is within a few ulp of t (1e-11 s in a day) of the remainder, well inside the snap; a
    # quotient rounded across a whole number gives a phase near 0 or near c, both taken as 0
    phase = t - np.floor(t / cycle_s) * cycle_s
    return np.where((phase < SNAP_S) | (cycle_s - phase < SNAP_S), 0.0, phase)


def triangle01(t: np.ndarray, period_s: float, profile: str) -> np.ndarray:
    """A wave between 0 and 1: triangle (0→1→0) or sawtooth (0→1) of the given period."""
    x = cycle_phase(t, period_s) / period_s
    if profile == "triangle":
        return 1.0 - np.abs(2.0 * x - 1.0)
    return x


def sweep_factor(sweep, t: np.ndarray) -> np.ndarray:
    """An amplitude or width sweep's factor at times ``t`` (s): ``low_percent`` / 100 to 1, shifted by its
    ``phase_deg`` (1 without a sweep)."""
    t = np.asarray(t, dtype=float)
    if sweep is None:
        return np.ones_like(t)
    low = sweep.low_percent / 100.0
    kernels = _kernels_for(t)
    if kernels is not None:
        out = np.empty(t.shape)
        kernels.sweep_factor_into(t.ravel(), low, float(sweep.period_s), sweep_shift_s(sweep),
                                  sweep.profile == "triangle", SNAP_S, out.reshape(-1))
        return out
    return low + (1.0 - low) * triangle01(t + sweep_shift_s(sweep), sweep.period_s, sweep.profile)


#: arrays of at least this many times take the numba kernels (``waveform._kernels``: the same numbers), where
#: kernels are compiled; a short program never loads numba (once they are loaded, arrays of ``LOADED_KERNEL_MIN_TIMES``)
KERNEL_MIN_TIMES = 50_000
LOADED_KERNEL_MIN_TIMES = 1024


def compiled_kernels() -> Any:
    """The waveform's numba kernels (``waveform._kernels``, loaded on first use), or None where kernels are plain
    Python (``ELECTROSTIM_NO_NUMBA``): the array forms are then the quicker."""
    from .._jit import HAVE_NUMBA

    if not HAVE_NUMBA:
        return None
    from . import _kernels

    return _kernels


_dosing = threading.local()


def short_arrays_take_kernels() -> bool:
    """Whether arrays of ``LOADED_KERNEL_MIN_TIMES`` take the kernels: where this thread computes a dose
    (:func:`dosing`) and the numba kernels are loaded already (not while pulses are delivered, where a kernel's first
    call would hold the interpreter)."""
    return getattr(_dosing, "on", False) and "electrostim.waveform._kernels" in sys.modules


@contextlib.contextmanager
def dosing() -> Iterator[None]:
    """Within it, this thread computes a dose (see :func:`short_arrays_take_kernels`)."""
    before = getattr(_dosing, "on", False)
    _dosing.on = True
    try:
        yield
    finally:
        _dosing.on = before


def _kernels_for(t: np.ndarray) -> Any:
    """The level kernels for times ``t`` (contiguous, many), or None: the array forms then."""
    if t.size < (LOADED_KERNEL_MIN_TIMES if short_arrays_take_kernels() else KERNEL_MIN_TIMES) or not t.flags.c_contiguous:
        return None
    return compiled_kernels()


def sweep_shift_s(sweep) -> float:
    """How far (s) a sweep runs ahead of time 0: ``phase_deg`` of its period."""
    return sweep.period_s * getattr(sweep, "phase_deg", 0.0) / 360.0


def _ramp(x: np.ndarray, ramp_s: float) -> np.ndarray:
    """``x / ramp_s`` clipped to [0, 1]. A ramp shorter than 1e-300 s is taken as 1e-300 s (the same
    step for any time the schedule holds), so that the division cannot overflow."""
    return np.clip(x / max(ramp_s, 1e-300), 0.0, 1.0)


def duty_envelope(
    t: np.ndarray,
    *,
    session_s: float,
    ramp_up_s: float,
    ramp_down_s: float,
    on_s: float | None,
    off_s: float,
    offset_s: float,
    periodic_offset: bool,
) -> np.ndarray:
    """Intensity factor in [0, 1] from ramps and the on/off duty cycle.

    Without a duty cycle the ramps open and close the session. With one, each on-time
    (ramps included) ramps up from its start and down to its end; ``offset_s`` shifts
    the channel's cycle (alternating channels wrap round, delayed channels start late).
    """
    t = np.asarray(t, dtype=float)
    kernels = _kernels_for(t)
    if kernels is not None:
        out = np.empty(t.shape)
        if on_s is None:
            kernels.ramp_envelope_into(t.ravel(), float(session_s), float(ramp_up_s), float(ramp_down_s),
                                       float(offset_s), out.reshape(-1))
        else:
            kernels.duty_envelope_into(t.ravel(), float(ramp_up_s), float(ramp_down_s), float(on_s), float(off_s),
                                       float(offset_s), bool(periodic_offset), SNAP_S, out.reshape(-1))
        return out
    if on_s is None:
        tau = t - offset_s
        up: np.ndarray | float = _ramp(tau, ramp_up_s) if ramp_up_s > 0 else (tau >= 0).astype(float)
        down: np.ndarray | float = _ramp(session_s - t, ramp_down_s) if ramp_down_s > 0 else np.ones_like(t)
        return np.minimum(up, down)
    cycle = on_s + off_s
    tau = t - offset_s
    started = np.ones_like(t, dtype=bool) if periodic_offset else tau >= 0
    phase = cycle_phase(tau, cycle)
    phase = np.where(np.abs(phase - on_s) < SNAP_S, on_s, phase)  # a pulse on the end of the on time is off
    on = (phase < on_s) & started
    up = _ramp(phase, ramp_up_s) if ramp_up_s > 0 else 1.0
    down = _ramp(on_s - phase, ramp_down_s) if ramp_down_s > 0 else 1.0
    return np.where(on, np.minimum(up, down), 0.0)
