"""Dose: charge, current, energy and power of a schedule, per output and per electrode.

Figures are exact sums over the pulses of the schedule (closed forms per phase:
a rectangular phase of amplitude I and width w carries I·w and I²·w; a sine
half-wave carries 2·I·w/π and I²·w/2; a spike phase, decaying as I·e^(-3t/w), carries
I·w·(1 - e^-3)/3 and I²·w·(1 - e^-6)/6). "During stimulation" figures are the highest
over any one-second window starting at a pulse (the FDA averages power over 1 s at
maximum duty); "session" figures average over the whole session.

A long session is dosed from its repeat period where its pulses repeat; where only its
levels repeat (a sweep of odd length against the rate: the pulses drift against the
levels), every later level period is bounded by the second one's pulses at sampled phases
of the clock, each at the highest amplitude and width the levels reach until the next
sample: window and per-pulse figures are then upper bounds (within 0.1 % of the levels'
highest, or a few tenths of a percent more where the cost of the samples is capped; for a
changing rate, whose pulses may come closer, within a pulse or burst per window), and
session figures sum each level period at the clock phase it meets the levels at (where
level factors drift against one another too, at the shifts it meets them at: periods of
nearby shifts summed as one, corrected by the exact mean over every shift).

Long outputs are streamed through numba kernels (``waveform._kernels``: the same figures
as the array forms, session sums to rounding) and dosed side by side, a thread each.

Rate-dependent figures are judged per window at what the schedule does there: each
pulse (or carrier cycle) has a local rate, 1 / the shorter of its intervals to the
previous and the next pulse of the same output, and the rms current of a rate band
(:data:`RATE_BANDS_HZ`) is the highest over the 1 s windows that hold a pulse at a
rate in that band.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar, copy_context
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict
from threadpoolctl import threadpool_limits

from ..program import VOLTAGE_LOAD_OHM, Program
from ._moments import _BLOCK as _MOMENT_BLOCK
from ._moments import periodic_moments, poly_product, slow_rate_hz, swept_moments
from ._schedule import (
    _BOUND_TOLERANCE,
    SHAPE_SINE,
    SHAPE_SPIKE,
    SPIKE_TIME_CONSTANTS,
    PulseChunk,
    Region,
    Schedule,
    _clock_period,
    _lcm,
    _longest_pulse_s,
)
from ._timing import (
    LOADED_KERNEL_MIN_TIMES,
    ConstantClock,
    PiecewiseClock,
    RandomClock,
    compiled_kernels,
    dosing,
    short_arrays_take_kernels,
)

__all__ = ["ElectrodeDose", "OutputDose", "Dose", "compute_dose", "DEFAULT_LOAD_OHM", "WINDOW_S", "RATE_BANDS_HZ"]

#: an interval between pulses within this fraction of one the clock sets is that one, rounded in the pulses' times
_ROUNDED_INTERVAL = 1e-6
#: Standard test load of IEC 60601-2-10.
DEFAULT_LOAD_OHM = 500.0
#: Averaging window for "during stimulation" figures.
WINDOW_S = 1.0
#: Upper edges of the rate bands of the rms-current limits of IEC 60601-2-10 (1987),
#: cl. 51.104 [verify against the 2012 edition]: up to 400 Hz, above 400 up to 1500 Hz, above
#: 1500 Hz (the band figures of :class:`OutputDose` are named after them). A rate on an edge
#: belongs to the band below it; so does a rate within 1 ppm above an edge (rounding in
#: pulse times never moves a train set at an edge into the laxer band).
RATE_BANDS_HZ: tuple[float, float] = (400.0, 1500.0)
_BAND_REL_TOL = 1e-6
# a pulse whose shortest interval to a neighbour is at least _BAND_MIN_INTERVAL_S[0] lies in
# band 0, at least [1] in band 1, else in band 2 (an interval of inf, a lone pulse: rate 0, band 0)
_BAND_MIN_INTERVAL_S = tuple(1.0 / (edge * (1.0 + _BAND_REL_TOL)) for edge in RATE_BANDS_HZ)
_N_BANDS = len(RATE_BANDS_HZ) + 1
_BAND_EDGES = np.array(_BAND_MIN_INTERVAL_S)
#: a spike phase of peak I and width w (decaying as I·e^(-k t / w), k = SPIKE_TIME_CONSTANTS) carries
#: I·w·(1 - e^-k)/k of charge and I²·w·(1 - e^-2k)/(2k) of ∫i²dt
_SPIKE_CHARGE = -math.expm1(-SPIKE_TIME_CONSTANTS) / SPIKE_TIME_CONSTANTS
_SPIKE_I2T = -math.expm1(-2.0 * SPIKE_TIME_CONSTANTS) / (2.0 * SPIKE_TIME_CONSTANTS)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ElectrodeDose(_Frozen):
    """Dose at one pad."""

    site: str
    side: str | None
    size: str
    area_cm2: float
    rms_current_density_ma_per_cm2: float
    average_power_density_w_per_cm2: float
    charge_density_uc_per_cm2: float
    shannon_k: float | None


class OutputDose(_Frozen):
    """Dose of one stimulator output (channel)."""

    output: int
    label: str
    channel: str
    amplitude_ma: float
    pulse_count: int
    max_pulse_rate_hz: float
    peak_current_ma: float
    #: the peak current times the load; for a voltage-controlled output (set in volts) the set voltage at the
    #: level dosed (``max_v`` at the level "max", ``default_v`` at "default"), whatever the load
    peak_voltage_v: float
    max_phase_charge_uc: float
    #: the largest net charge of any one pulse, as a magnitude (what the charge-balance rule judges)
    max_net_charge_per_pulse_uc: float
    #: the same pulse's net charge with its sign (at the first pad: a cathodic monophasic pulse is negative),
    #: the sign the session's net charge has too
    net_charge_per_pulse_uc: float
    net_charge_session_uc: float
    dc_current_ma: float
    rms_current_ma: float
    #: highest rms over the 1 s windows holding a pulse at a local rate up to 400 Hz (0 if none)
    rms_current_up_to_400hz_ma: float
    #: the same for local rates above 400 Hz up to 1500 Hz
    rms_current_400_to_1500hz_ma: float
    #: the same for local rates above 1500 Hz
    rms_current_above_1500hz_ma: float
    rms_current_session_ma: float
    average_current_ma: float
    average_current_session_ma: float
    #: energy and power into the dose's load; for a voltage-controlled output into
    #: :data:`~electrostim.program.VOLTAGE_LOAD_OHM` (200 Ω), the load at which its currents flow
    max_energy_per_pulse_mj: float
    average_power_mw: float
    average_power_session_mw: float
    electrodes: list[ElectrodeDose]
    #: the set voltage of a voltage-controlled output at the level dosed, V (0 for an output set in mA)
    set_voltage_v: float = 0.0


class Dose(_Frozen):
    """Dose of a program at one intensity, into a stated load."""

    program: str
    level: str
    load_ohm: float
    window_s: float
    session_duration_s: float
    outputs: list[OutputDose]

    def output(self, label: str) -> OutputDose:
        """The dose of the output with this label."""
        for o in self.outputs:
            if o.label == label:
                return o
        raise KeyError(label)


def pulse_terms(c: PulseChunk) -> tuple[np.ndarray, ...]:
    """Per pulse: |charge| of phase 1 and 2 (µC), signed net charge (µC), ∫i²dt (mA²·µs), peak |I| (mA).

    Closed forms per phase of peak I and width w: rectangular I·w and I²·w; sine half-wave
    2·I·w/π and I²·w/2; spike (exponential decay to e^-3 at w) I·w·(1 - e^-3)/3 and
    I²·w·(1 - e^-6)/6. The peak is I in each case.

    Examples
    --------
    >>> import electrostim as es
    >>> from electrostim.program import validate_program
    >>> p = validate_program({"id": "hv", "name": "twin peak", "modality": "hvpc", "session_duration_s": 1,
    ...     "channels": [{"label": "a", "electrodes": [{"site": "calf", "width_cm": 5, "height_cm": 5}] * 2,
    ...     "stimulus": {"pulse": {"shape": "monophasic", "pulse_width_us": 30, "frequency_hz": 100,
    ...                            "twin_peak_spacing_us": 50, "phase_shape": "spike"},
    ...                  "amplitude": {"default_v": 100, "max_v": 100}}}]})
    >>> q1, q2, net, i2t, peak = pulse_terms(es.Schedule(p).pulses(0.0, 0.01))
    >>> round(float(q1[0]), 4), round(float(net[0]), 4), float(peak[0])  # 500 mA peaks
    (4.7511, -9.5021, 500.0)
    """
    kq: np.ndarray | float
    ke: np.ndarray | float
    factors = _shape_factors(c)
    if factors is not None:  # one shape (the common case): its factors
        kq, ke = factors
    else:
        sine = c.shape == SHAPE_SINE
        spike = c.shape == SHAPE_SPIKE
        kq = np.where(sine, 2.0 / math.pi, np.where(spike, _SPIKE_CHARGE, 1.0))
        ke = np.where(sine, 0.5, np.where(spike, _SPIKE_I2T, 1.0))
    a1, a2, w1, w2 = c.first_amplitude_ma, c.second_amplitude_ma, c.first_width_us, c.second_width_us
    s1 = a1 * w1 * kq * 1e-3
    s2 = a2 * w2 * kq * 1e-3
    i2t = (a1 * a1 * w1 + a2 * a2 * w2) * ke
    peak = np.maximum(np.abs(a1), np.abs(a2))
    return np.abs(s1), np.abs(s2), s1 + s2, i2t, peak


def _shape_factors(c: PulseChunk) -> tuple[float, float] | None:
    """The charge and ∫i²dt factors of the chunk's one phase shape (see :func:`pulse_terms`); None where its
    pulses have more than one."""
    if not c.shape.shape[0] or not bool((c.shape == c.shape[0]).all()):
        return None
    return {SHAPE_SINE: (2.0 / math.pi, 0.5), SHAPE_SPIKE: (_SPIKE_CHARGE, _SPIKE_I2T)}.get(int(c.shape[0]), (1.0, 1.0))


def _band_of_interval(interval_s: float) -> int:
    """Rate band (0, 1, 2) of a pulse whose shorter interval to a neighbour is ``interval_s``."""
    return 0 if interval_s >= _BAND_MIN_INTERVAL_S[0] else 1 if interval_s >= _BAND_MIN_INTERVAL_S[1] else 2


_NO_BANDS = np.zeros(0, np.int8)


class _OutputAccumulator:
    """Streams the pulses of one output, chunk by chunk, into its dose figures.

    Window figures are taken over the windows ``[t, t + w)`` that start at a pulse. A
    window is evaluated once every pulse in it is known and every pulse in it has a
    known local rate: once a later pulse lies at or beyond its end (or at the final
    chunk). Until then it waits in the tail, with the pulses it covers. The last pulse
    seen waits for its next neighbour (possibly chunks later) to get its local rate, so
    the figures do not depend on where the chunks are cut.
    """

    def __init__(self, window_s: float):
        self.w = window_s
        self.count = 0
        self.peak = 0.0
        self.max_q = 0.0
        self.max_net = 0.0
        self.net_extreme = 0.0  # the signed net charge of largest magnitude
        self.sum_net = 0.0
        self.sum_i2t = 0.0
        self.sum_absq = 0.0
        self.max_i2t = 0.0
        self.min_dt = math.inf
        self.last_t: float | None = None
        self.last_gap = math.inf  # interval from the last pulse seen to the one before it
        self.win_max = np.zeros(3)  # i2t, |q|, net
        self.win_min_net = 0.0
        self.band_max = np.zeros(_N_BANDS)  # highest window ∫i²dt among windows holding a pulse of each band
        self.tail_t = np.zeros(0)
        self.tail_v = np.zeros((3, 0))
        self.tail_b = _NO_BANDS  # bands of the tail's pulses but its last (whose next neighbour is unknown)
        #: leave out the window that starts at the first pulse (its pulse's previous neighbour was not seen)
        self.skip_first_window = False

    def scaled(self, factor: float, charge: float | None = None, i2t: float | None = None) -> _OutputAccumulator:
        """The figures of the same pulses with every current ``factor`` times as high (charges by the factor,
        ∫i²dt by its square; counts and rates as they are); or with currents, charges and ∫i²dt each scaled by its
        own factor (``charge``, ``i2t``: pulses whose widths change too)."""
        out = copy.copy(self)
        f = float(factor) if charge is None else float(charge)
        f2 = float(factor) ** 2 if i2t is None else float(i2t)
        for name in ("max_q", "max_net", "net_extreme", "sum_net", "sum_absq", "win_min_net"):
            setattr(out, name, getattr(self, name) * f)
        out.peak = self.peak * float(factor)
        out.sum_i2t, out.max_i2t = self.sum_i2t * f2, self.max_i2t * f2
        out.win_max = self.win_max * np.array([f2, f, f])
        out.band_max = self.band_max * f2
        return out

    def add(self, c: PulseChunk, final: bool, extra_s: np.ndarray | None = None, widen: bool = False) -> np.ndarray:
        """Take the next chunk of this output's pulses; the chunk's sums of (count, net charge, ∫i²dt, |charge|).

        Parameters
        ----------
        c : PulseChunk
            Pulses of this output only, later than every pulse already added.
        final : bool
            True for the last chunk: every window still open is then evaluated, and the
            last pulse's rate is settled on its previous interval alone.
        extra_s : numpy.ndarray, optional
            Per pulse, how much longer (s) the window starting at it is (bounding pulses
            that drift); only for one chunk given whole (``final``, nothing added before).
        widen : bool
            Whether each pulse stands for pulses whose rate may differ a little (bounding
            pulses that drift: see :func:`_widen_bands`); only with ``extra_s``.
        """
        if extra_s is not None and (not final or self.count or extra_s.shape != c.time_s.shape):
            raise ValueError("extra_s: one whole chunk, given alone and final, one length per pulse")
        if widen and extra_s is None:
            raise ValueError("widen: only with extra_s")
        t = c.time_s
        n = t.shape[0]
        sums = np.zeros(4)
        if n == 0 and not final:
            return sums  # nothing new: no window can complete, no rate can be settled
        pending = self.last_t is not None  # the last pulse seen, its rate still open
        g0 = float(t[0]) - self.last_t if (n and self.last_t is not None) else math.inf
        # (a long output, or a chunk of many pulses once numba is loaded: the same figures)
        many = self.count >= KERNEL_MIN_PULSES or (n >= LOADED_KERNEL_MIN_TIMES and short_arrays_take_kernels())
        kernels = _kernels() if many else None
        if n:
            k0 = self.tail_t.shape[0]
            V = np.empty((3, k0 + n))  # the tail's terms, then this chunk's (filled in place: no stacked copies)
            V[:, :k0] = self.tail_v
            stats = self._terms_into(c, V, k0, kernels)
            peak, max_q, net_extreme, sums[1], sums[2], sums[3], max_i2t = stats
            sums[0] = n
            self.count += n
            self.peak = max(self.peak, peak)
            self.max_q = max(self.max_q, max_q)
            if abs(net_extreme) > self.max_net:
                self.max_net, self.net_extreme = abs(net_extreme), net_extreme
            self.sum_net += sums[1]
            self.sum_i2t += sums[2]
            self.sum_absq += sums[3]
            self.max_i2t = max(self.max_i2t, max_i2t)
            T = np.concatenate([self.tail_t, t])
        else:
            T, V = self.tail_t, self.tail_v
        # shortest interval to a neighbour of each pulse whose rate is now settled: the pending
        # pulse, then the new pulses but the last (all of them at the final chunk)
        k = 1 if pending else 0
        m = np.empty(k + n)
        if pending:
            m[0] = min(self.last_gap, g0)
        end = k + n if final else k + n - 1 if n else 0
        d_min, m_max, m_min = self._intervals_into(t, g0, m, k, end, kernels)
        self.min_dt = min(self.min_dt, d_min, g0) if n else self.min_dt
        if n:
            self.last_gap = float(t[-1] - t[-2]) if n > 1 else g0
            self.last_t = float(t[-1])
        m = m[:end]
        # rate bands of the settled pulses, in the order of T: one band for all (the common
        # case, no per-pulse work) or, where bands mix, one per pulse
        tb = self.tail_b
        present: list[int] = []
        if m.shape[0]:
            present += [_band_of_interval(m_max), _band_of_interval(m_min)]
        if tb.shape[0]:
            present += [int(tb.min()), int(tb.max())]
        uniform = present[0] if present and min(present) == max(present) else None
        B: np.ndarray | None = None
        if present and uniform is None:
            new_b = (m < _BAND_MIN_INTERVAL_S[0]).view(np.int8) + (m < _BAND_MIN_INTERVAL_S[1]).view(np.int8)
            B = np.concatenate([tb, new_b])
        N = T.shape[0]
        if N == 0:
            return sums
        if extra_s is not None and kernels is not None and not self.skip_first_window:
            done = self._bound_windows_in_one_pass(kernels, T, V, extra_s, widen)
        elif extra_s is None and kernels is not None:
            done = self._windows_in_one_pass(kernels, T, V, B, final, uniform)
        else:
            done = self._windows_by_arrays(T, V, B, final, uniform, extra_s)
            if widen and extra_s is not None:
                _widen_bands(self, T, V[0], extra_s)
        # the tail: pulses of the windows still open, with the bands settled among them
        self.tail_t, self.tail_v = T[done:], V[:, done:]
        if B is not None:
            self.tail_b = B[done:]
        elif uniform is not None and not final:
            self.tail_b = np.full(N - 1 - done, uniform, np.int8)
        else:
            self.tail_b = _NO_BANDS
        return sums

    @staticmethod
    def _intervals_into(t: np.ndarray, g0: float, m: np.ndarray, k: int, end: int,
                        kernels: Any) -> tuple[float, float, float]:
        """Each new pulse's shorter interval to a neighbour into ``m[k:]`` (the first's previous one is ``g0``, the
        last's next is open); the shortest interval between them (inf for fewer than two), and the longest and
        shortest of ``m[:end]`` (by ``kernels`` where given)."""
        n = t.shape[0]
        if kernels is not None:
            d_min, hi, lo = kernels.neighbour_intervals(t, g0, m, k, end)
            return float(d_min), float(hi), float(lo)
        d = np.diff(t)
        if n == 1:
            m[k] = g0
        elif n > 1:
            m[k] = min(g0, float(d[0]))
            np.minimum(d[:-1], d[1:], out=m[k + 1 : k + n - 1])
            m[k + n - 1] = d[-1]
        head = m[:end]
        return (float(d.min()) if n > 1 else math.inf, float(head.max()) if end else -math.inf,
                float(head.min()) if end else math.inf)

    @staticmethod
    def _terms_into(c: PulseChunk, V: np.ndarray, at: int, kernels: Any) -> tuple[float, ...]:
        """Write the chunk's terms (∫i²dt, |charge|, net charge) into ``V[:, at:]``; the chunk's highest peak,
        phase charge, the net charge of largest magnitude, its sums of net charge, ∫i²dt and |charge|, and the
        highest ∫i²dt (by ``kernels`` where given and the pulses have one phase shape)."""
        factors = _shape_factors(c)
        if factors is not None and kernels is not None:
            stats = np.empty(7)
            kernels.terms_into(c.first_amplitude_ma, c.second_amplitude_ma, c.first_width_us,
                               c.second_width_us, factors[0], factors[1], V, at, stats)
            return tuple(float(x) for x in stats)
        q1, q2, net, i2t, peak = pulse_terms(c)
        absq = q1 + q2
        V[0, at:], V[1, at:], V[2, at:] = i2t, absq, net
        j = int(np.abs(net).argmax())
        return (float(peak.max()), max(float(q1.max()), float(q2.max())), float(net[j]), float(net.sum()),
                float(i2t.sum()), float(absq.sum()), float(i2t.max()))

    def _windows_in_one_pass(self, kernels: Any, T: np.ndarray, V: np.ndarray, B: np.ndarray | None, final: bool,
                             uniform: int | None) -> int:
        """:meth:`_windows_by_arrays` (without ``extra_s``) by the numba kernel: the same figures, bit for bit."""
        top = np.full(3, -np.inf)
        band_top = np.full(_N_BANDS, -np.inf)
        first = 1 if self.skip_first_window else 0
        done, min_net = kernels.window_pass(T, np.ascontiguousarray(V), self.w, first, final,
                                            _NO_BANDS if B is None else B, top, band_top)
        if done and self.skip_first_window:
            self.skip_first_window = False
        if done > first:
            self.win_max = np.maximum(self.win_max, top)
            self.win_min_net = min(self.win_min_net, min_net)
            if uniform is not None:
                self.band_max[uniform] = max(self.band_max[uniform], float(top[0]))
            elif B is not None:
                self.band_max = np.maximum(self.band_max, band_top)
        return int(done)

    def _bound_windows_in_one_pass(self, kernels: Any, T: np.ndarray, V: np.ndarray, extra_s: np.ndarray,
                                   widen: bool) -> int:
        """:meth:`_windows_by_arrays` with ``extra_s`` (and :func:`_widen_bands` where ``widen``) by the numba
        kernel, for one whole final chunk: the same figures."""
        top = np.full(3, -np.inf)
        band_top = np.full(_N_BANDS, -np.inf)
        min_net = kernels.bound_window_pass(T, np.ascontiguousarray(V), np.ascontiguousarray(extra_s, dtype=np.float64),
                                            self.w, _BAND_EDGES, widen, top, band_top)
        if T.shape[0]:
            self.win_max = np.maximum(self.win_max, top)
            self.win_min_net = min(self.win_min_net, float(min_net))
            self.band_max = np.maximum(self.band_max, band_top)
        return int(T.shape[0])

    def _windows_by_arrays(self, T: np.ndarray, V: np.ndarray, B: np.ndarray | None, final: bool,
                           uniform: int | None, extra_s: np.ndarray | None) -> int:
        """Evaluate the complete windows that start at the pulses ``T`` (terms ``V``, bands ``B`` or one band
        ``uniform`` for all); the number of pulses whose windows are complete."""
        N = T.shape[0]
        C = np.zeros((3, N + 1))
        np.cumsum(V, axis=1, out=C[:, 1:])
        # half-open windows [t, t + w); a pulse exactly at t + w (to 1 ns) belongs to the next
        stop = np.searchsorted(T, T + self.w + (0.0 if extra_s is None else extra_s) - 1e-9, side="left")
        # a window is complete once a known pulse lies at or past its end; stop never decreases
        done = N if final else int(np.searchsorted(stop, N, side="left"))
        first = 0
        if done and self.skip_first_window:
            first, self.skip_first_window = 1, False
        if done > first:
            s = stop[first:done]
            sums = [C[r][s] - C[r][first:done] for r in range(3)]  # row by row: 1-D gathers are the cheap kind
            top = np.array([x.max() for x in sums])
            self.win_max = np.maximum(self.win_max, top)
            self.win_min_net = min(self.win_min_net, float(sums[2].min()))
            # Band figures: the highest ∫i²dt over windows holding a pulse of the band. Windows
            # starting at pulses give the exact maximum over all windows: any window [a, a + w)
            # can slide right to its first pulse p without losing a pulse (its pulses lie in
            # [p, a + w) ⊂ [p, p + w)), so [p, p + w) holds the same band's pulse and at least
            # the same ∫i²dt (every term is ≥ 0).
            if uniform is not None:
                self.band_max[uniform] = max(self.band_max[uniform], float(top[0]))
            elif B is not None:
                K = np.zeros(B.shape[0] + 1, np.int32)
                for band in range(_N_BANDS):
                    np.cumsum(B == band, out=K[1:])
                    has = K[s] > K[first:done]
                    if has.any():
                        self.band_max[band] = max(self.band_max[band], float(sums[0][has].max()))
        return done


#: an output is streamed through the numba kernel once it has had this many pulses (a short one never loads numba)
KERNEL_MIN_PULSES = 200_000


_kernels = compiled_kernels


#: an output with at least this many pulses in its session is dosed from its repeat period, where it has one
#: (a tenth of it where every region repeats exactly: the figures are then those of every pulse)
REPEAT_MIN_EVENTS = 2_000_000


def _stream(acc: _OutputAccumulator | None, g, t0: float, t1: float, chunk_s: float, *, final: bool,
            phase: float = 0.0) -> np.ndarray:
    """Feed the pulses of generator ``g`` in ``[t0, t1)`` (its clock at ``phase``) to ``acc`` (if given); their
    sums of (count, net charge, ∫i²dt, |charge|)."""
    sums = np.zeros(4)
    n = max(1, math.ceil((t1 - t0) / chunk_s - 1e-9))
    prev: PulseChunk | None = None
    for k in range(n):
        _stop_if_asked()
        a = t0 + k * chunk_s
        b = t1 if k == n - 1 else t0 + (k + 1) * chunk_s
        if b <= a:
            break
        c = g.window(a, b, phase)
        if acc is None:
            if len(c):
                q1, q2, net, i2t, _ = pulse_terms(c)
                sums += (len(c), float(net.sum()), float(i2t.sum()), float((q1 + q2).sum()))
            continue
        if prev is not None:
            sums += acc.add(prev, final=False)
        prev = c
    if acc is not None and prev is not None:
        sums += acc.add(prev, final=final)
    return sums


def _merge(accs: list[_OutputAccumulator]) -> _OutputAccumulator:
    """One accumulator with the maxima of all (their sums are set by the caller)."""
    acc = accs[0]
    for other in accs[1:]:
        acc.peak = max(acc.peak, other.peak)
        acc.max_q = max(acc.max_q, other.max_q)
        if other.max_net > acc.max_net:
            acc.max_net, acc.net_extreme = other.max_net, other.net_extreme
        acc.max_i2t = max(acc.max_i2t, other.max_i2t)
        acc.min_dt = min(acc.min_dt, other.min_dt)
        acc.win_max = np.maximum(acc.win_max, other.win_max)
        acc.win_min_net = min(acc.win_min_net, other.win_min_net)
        acc.band_max = np.maximum(acc.band_max, other.band_max)
    return acc


#: the periods of drifting events are summed at up to this many clock phases (each standing for the periods whose
#: phases lie near it), about this many events in all
_MAX_SUM_BINS = 1024
#: the most bins of clock phases a drifting region's periods are summed in (each streamed once, at the mean of its
#: periods' phases: a few thousandths of an event from each, seen within 3e-5 of every pulse's sums over two hours)
_MAX_DRIFT_BINS = 256
_SUM_EVENTS = 1_000_000
#: a drifting period of at least this many events may be summed in one bin, at the mean of its periods' phases (where
#: the region's share of the sums leaves no more: many drifting regions); each period's sums then differ from those at
#: the mean phase by a small part of an event (seen within 4e-5 of every pulse's)
_ONE_BIN_EVENTS = 10_000
#: the phases of at most this many periods are looked at (evenly spread over the session beyond)
_MAX_PHASES = 1_000_000


def _period_phases(g: Any, r: Any, start_s: float, n_periods: int) -> np.ndarray:
    """The clock phase (a fraction of an event, in [0, 1)) at which each period ``start_s + k P`` of a drifting
    region meets the levels, relative to the first: ``-k`` times the fraction of an event the clock fires
    beyond whole events in a period (evenly chosen periods where there are very many)."""
    advance = g.phase_advance(start_s, r.period_s)
    step = advance - math.floor(advance)
    k = np.arange(0, n_periods, max(1, n_periods // _MAX_PHASES), dtype=np.float64)
    phases = np.mod(-k * step, 1.0)
    return np.where(phases >= 1.0, 0.0, phases)


def _repeating_dose(g: Any, window: float, chunk_s: float, duration: float, share: float = 1.0,
                    regions: list[Region] | None = None) -> _OutputAccumulator | None:
    """The dose figures of one output from its ``regions`` (by default ``_OutputGenerator.regions``; a multi-phase
    output has one per phase), or None when none is long enough to save work.

    In a region whose pulses in ``[a, b)`` repeat every ``P`` (drift 0), ``c`` lies mid-way between the first
    two pulses of the region and ``X`` mid-way between the last two that lie a window (``W``) before the last
    pulse of the region (no pulse lies near a cut, so the rounding of a time cannot count it twice or not at
    all). A window that starts at a pulse in ``[c, X)`` holds only repeating pulses whose neighbours repeat (its
    first pulse's previous one lies in the region, and so does the pulse after its last), so it is a copy of
    the one that starts a whole number of periods earlier, in ``[c, c + P)``. The windows are streamed up to
    ``c + P + W`` and on (past off phases) until those of ``[c, c + P)`` are complete, and again from ``X`` (a
    new pass whose first window, whose first pulse's previous neighbour it does not see, is the copy of one
    already seen): about one period in all. The sums are those of ``[0, c)``, ``N`` times those of
    ``[c, c + P)``, those of ``[c, c + x)`` (``X = c + NP + x``, summed in the same pass) and those of the
    last pass.

    In a region whose levels repeat every ``P`` while its events drift against them (``Region.drift_s``), the
    pulses of each later period lie, one for one, where the second period's would at a clock phase up to one
    event later. That phase is sampled at ``k / M`` (``Region.samples``): the pulses of the second period at
    each sample, each at the highest amplitude and width the levels reach until the next sample
    (``_OutputGenerator.window_bound``), bound those of every period whose phase lies between. Window and
    per-pulse figures are the highest over the samples: upper bounds, within ``_BOUND_TOLERANCE`` of the
    levels' highest. Events of a constant rate drift together, so a window keeps its pulses and their rates;
    those of a changing rate may not: each bounding window is longer by the drift to the next sample, a window
    holding a pulse whose rate may cross a band's edge over its drift is charged to both bands, and where the
    rate jumps or on/off edges part pulses every rate band the output has is charged the highest bounding
    window (a drifting pulse's nearest neighbour may change). A pulse that on/off edges may leave alone is
    charged to the bands of the rates it can then have (``lone_rate_range_hz``).
    Only the samples whose phases some period meets are evaluated (a clock whose periods keep nearly one phase
    needs one). The bounds stand for every window from ``a + P`` on: the first pass streams the windows before
    ``c``, mid-way between two pulses of the second period, and on only until they are complete. Sums are each
    period's at the phase it meets the levels at, the periods whose phases lie within 1/256 or so of one another
    summed as one, at the mean of their phases (``_MAX_DRIFT_BINS``).

    A slow region (``Region.slow``: levels too slow to repeat, see :func:`_slow_levels`) is summed from the corners
    of its levels from its start ``a`` to ``s0``, a window and twice its clock's longest interval and burst before
    its end (:func:`_slow_sums`), and its windows that start there are bounded by its pulses at the highest levels
    (:func:`_slow_bound`); the pass before it streams on until the windows that start before ``a`` are complete, and
    the one at its first pulse (whose rate its previous neighbour, in the phase before, may set).
    """
    jumps: list[tuple[float, float, float, int, float, Any, float]] = []  # cut, resume at, c1, N, P, region, x

    def plan(r: Region) -> tuple[float, float, float, int, float, Any, float] | None:
        a, period, b, drift = r.start_s, r.period_s, r.stop_s, r.drift_s
        if r.slow:  # its windows stay clear of its end (a pulse past a window's last, that sets its rate, inside)
            start, part_g = part_of(r)
            reach = part_g.clock_interval_range_s()[1] + _longest_burst_s(part_g)
            ls0 = round(b - start, 9) - window - 2.0 * reach
            # the last pass starts mid-way between two pulses (none lies near the cut, which the rounding of a time
            # could count on both sides of it: a day's times are rounded otherwise in the phase's own time), found in
            # the phase's own time (phases alike but for their start are planned alike: see _slow_region_figures);
            # the last two before the cut, however far back (after an off phase, the first pulse past the cut may lie
            # near the phase's end: its window, which the pass leaves out, would reach into the next phase)
            mid = _mid_gap(part_g, round(a - start, 9), ls0, first=False)
            s0 = start + (ls0 if mid is None else mid)
            return (a, s0, a, 0, 0.0, r, 0.0) if s0 > a + window and not (jumps and a < jumps[-1][1]) else None
        if period <= 0:
            return None
        if drift == 0:
            # pulses that repeat exactly: c1 lies mid-way between the first two pulses of [a, b), so the
            # windows that start at the pulses of [c1, c1 + P) see their previous neighbours; they stand for
            # every window that starts before X, mid-way between the last two pulses that lie a window before
            # the last pulse of [a, b) (e): the pulses of the window at the first pulse past X, and the one
            # after them, lie in [a, b)
            c1 = _mid_gap(g, a, b, first=True)
            e = _pulses_near(g, a, b, first=False, n=1)
            if c1 is None or e.shape[0] == 0:
                return None
            resume = _mid_gap(g, c1, float(e[0]) - window, first=False)
            if resume is None or resume <= c1 + period + window:
                return None
            n_periods = math.floor((resume - c1) / period)
            x = resume - c1 - n_periods * period
            if x >= period - 1e-9 * period:  # (rounding) the resume point is a whole number of periods on
                n_periods, x = n_periods + 1, 0.0
            cut = c1 + period + window  # and on, until the windows starting before c1 + P are complete
            s0 = resume
        else:
            # past the windows of a period, the next pulse: within the longest gap between two (at most P); found in
            # the phase's own time (phases alike but for their start are planned alike: see _drifting_region)
            start, part_g = part_of(r)
            la, lb = round(a - start, 9), round(b - start, 9)
            margin = min(period, part_g.longest_gap_s()) + drift
            # (searched over a span that holds every width of gap the pulses have, where it is shorter than P)
            span = _gap_span_s(part_g)
            lc1 = la + period + (_widest_gap_middle(part_g, la + period, la + period + span, max(chunk_s, 1e-6), False)
                                 if span < period else
                                 _widest_gap_middle(part_g, la + period, la + 2 * period, max(chunk_s, 1e-6)))
            # the periods [c1 + kP, c1 + (k + 1)P), k < N, end where windows that start there still end within b; and
            # a part x of the next, to mid-way between two pulses at most that far (summed with the bins' periods)
            end = lb - window - margin
            n_periods = math.floor((end - lc1) / period + 1e-9)
            whole = lc1 + n_periods * period
            mid = (_mid_gap(part_g, max(whole, end - 2.0 * margin), end, first=False)
                   if not r.shifted and end > whole and n_periods >= 4 else None)
            lx = 0.0 if mid is None else max(0.0, mid - whole)
            x = lx if lx < period else 0.0
            c1 = start + lc1
            s0 = c1 + n_periods * period + x
            cut = max(a + 2 * period + window + 2 * margin, c1 + period)
            if n_periods < (_MIN_SHIFTED_PERIODS if r.shifted else 4):
                return None
        if cut >= s0 or cut >= duration:
            return None
        if jumps and (cut <= jumps[-1][1] or c1 < jumps[-1][1]):
            return None  # overlaps the previous region's second pass (regions are in order)
        return (cut, s0, c1, n_periods, period, r, x)

    slow = _slow_region(window)
    regions = g.regions() if regions is None else regions

    def part_of(r: Region) -> tuple[float, Any]:
        start, _, part_g = _part_at(g, r.start_s)
        return start, part_g

    # regions that repeat exactly stream a period each: where their periods hold more than the output's share of
    # _MAX_EXACT_EVENTS in all (many phases of long periods), those of slow levels are dosed from their corners instead
    exact = [r for r in regions if r.drift_s == 0 and not r.shifted and not r.slow and r.period_s > 0]
    many = sum(part_of(r)[1].event_rate() * r.period_s for r in exact) > _MAX_EXACT_EVENTS * share
    for r in regions:
        start, part_g = part_of(r)
        # a drifting region whose period holds many events is costly to bound and sum: slow levels from their corners;
        # an exact one too where there are many and its period's events outnumber the corners' spans (4 a window)
        events = part_g.event_rate() * r.period_s
        drifts = r.drift_s > 0 or bool(r.shifted)
        costly = events > _SLOW_INSTEAD_EVENTS and (
            drifts or (many and events > _SPAN_EVENTS * _BOUND_STEPS * part_g.session_s / window))
        planned = None if costly and not r.slow and slow(part_g) else plan(r)
        if planned is None and not r.slow:  # a region too short to save work: the corners of slow levels instead
            alt = slow(part_g)
            planned = plan(replace(alt[0], start_s=start, stop_s=start + alt[0].stop_s)) if alt else None
        if planned is not None:
            jumps.append(planned)
    if not jumps:
        return None
    # regions whose pulses drift share the output's share of sums, and those whose level factors drift its share of
    # refinement (see _shifted_bounds)
    sums_share = share / max(1, sum(1 for j in jumps if j[5].drift_s > 0))
    share = share / max(1, sum(1 for j in jumps if j[5].shifted))
    chunk = max(chunk_s, 1e-6)
    accs: list[_OutputAccumulator] = []
    total, t0 = np.zeros(4), 0.0
    for k, (cut, s0, c1, n_periods, period, r, x) in enumerate(jumps):
        # one pass up to cut (its sums split at the period [c1, c1 + P), and within it at c1 + x), the next
        # from s0 = c1 + NP + x
        acc = _OutputAccumulator(window)
        acc.skip_first_window = k > 0
        total += _stream(acc, g, t0, c1, chunk, final=False)
        if r.drift_s == 0 and not r.slow:
            part = _stream(acc, g, c1, c1 + x, chunk, final=False)
            one = part + _stream(acc, g, c1 + x, c1 + period, chunk, final=False)
            _stream(acc, g, c1 + period, cut, chunk, final=False)
        else:  # the windows from a + P on (a slow region's from a) are bounded (below): on until those before c1 are
            cut = c1  # complete
        # on (past off phases) until the next pulse completes the windows that no bound stands for: those of
        # [c1, c1 + P) where the pulses repeat, those before c1 where they drift (a window is complete when a pulse
        # past its end is seen: after an off phase longer than the pass, that is the next on phase's first)
        step, complete_to = window, c1 + period if r.drift_s == 0 and not r.slow else c1
        if r.slow:  # and the window at a slow region's first pulse, whose previous neighbour (a phase's) lies before it
            first = _pulses_near(g, c1, s0, first=True, n=1)
            complete_to = float(np.nextafter(first[0], math.inf)) if first.shape[0] else c1
        while acc.tail_t.shape[0] and acc.tail_t[0] < complete_to:
            if cut >= s0:  # every pulse instead (where they repeat, not reached: the window at the first pulse past
                return None  # X is complete before e; where they drift, the next on phase starts past the last pass)
            _stream(acc, g, cut, min(s0, cut + step), chunk, final=False)
            cut, step = min(s0, cut + step), 2.0 * step
        accs.append(acc)
        if r.slow:
            sums, bounds = _slow_region_figures(g, r, c1, s0, window, chunk)
            total += sums
            accs.extend(bounds)
        elif r.drift_s == 0:
            total += n_periods * one + part
        else:
            sums, bounds = _drifting_region(g, r, c1, n_periods, x, s0, chunk, duration, window, share, sums_share)
            total += sums
            accs.extend(bounds)
        t0 = s0
    last = _OutputAccumulator(window)
    last.skip_first_window = True
    total += _stream(last, g, t0, duration, chunk, final=True)
    accs.append(last)
    acc = _merge(accs)
    acc.count = int(round(total[0]))
    acc.sum_net, acc.sum_i2t, acc.sum_absq = float(total[1]), float(total[2]), float(total[3])
    return acc


#: the figures of parts already dosed within a :func:`shared_dose_figures` (:func:`_memo`), at most this many kept
_REGION_MEMO_SIZE = 1024
_region_memo: ContextVar[OrderedDict[tuple, Any] | None] = ContextVar(
    "electrostim_region_memo", default=None)
_region_memo_lock = threading.Lock()


@contextlib.contextmanager
def shared_dose_figures() -> Iterator[None]:
    """Within it, the doses computed (:func:`compute_dose`, in this thread and the threads it starts) share the figures
    of alike parts: a phase alike another but for its start and intensity, an output alike another but for its current,
    in the same dose or another (the phases of a program dosed each on its own, to name those where a limit is
    breached), is dosed once.

    Examples
    --------
    >>> import electrostim as es
    >>> from electrostim.waveform import shared_dose_figures
    >>> with shared_dose_figures():
    ...     d = es.compute_dose(es.load_program("ems-strength-phases"))
    >>> d.outputs[0].pulse_count > 0
    True
    """
    token = _region_memo.set(OrderedDict()) if _region_memo.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _region_memo.reset(token)


def _memo(key: tuple, current: float, compute: Any) -> tuple[np.ndarray, list[_OutputAccumulator]]:
    """The sums and figures of a part of a dose (``compute()``: a region of a phase, or a whole output, at its highest
    ``current``, mA), or, within a :func:`shared_dose_figures`, those already found for a part of the same ``key``
    (its generator without its current, a region in its phase's own time, the shares), scaled by the ratio of the
    currents: charges by it, ∫i²dt by its square (a part without current is computed, not kept). A part another
    thread is computing is waited for, not computed twice (the wait ends when this dose is asked to stop)."""
    memo = _region_memo.get()
    if memo is None or not current > 0.0:
        return compute()
    while True:
        with _region_memo_lock:
            found = memo.get(key)
            if found is None:  # this thread computes it: the others wait
                computing = memo[key] = threading.Event()
            else:
                memo.move_to_end(key)
        if not isinstance(found, threading.Event):
            break
        while not found.wait(0.05):
            _stop_if_asked()
    if found is None:
        try:
            sums, bounds = compute()
            found = (current, sums, [b.scaled(1.0) for b in bounds])
            with _region_memo_lock:
                memo[key] = found
                while len(memo) > _REGION_MEMO_SIZE:
                    oldest = next(iter(memo))
                    if isinstance(memo[oldest], threading.Event):
                        break  # (one being computed stays)
                    memo.popitem(last=False)
        finally:
            with _region_memo_lock:
                if memo.get(key) is computing:  # (it failed: the next that asks computes it)
                    del memo[key]
            computing.set()
    had, sums, bounds = found
    f = current / had
    if f == 1.0:
        return sums.copy(), [b.scaled(1.0) for b in bounds]
    return sums * np.array([1.0, f, f * f, f]), [b.scaled(f) for b in bounds]


def _phase_holding(g: Any, t_s: float) -> tuple[float, Any]:
    """The start (s) of the phase of ``g`` that holds ``t_s``, and its generator at the phase's intensity (``g``
    itself, from 0, where the output has no phases)."""
    start, factor, part_g = _part_at(g, t_s)
    if factor != 1.0:  # a phase's intensity
        part_g = copy.copy(part_g)
        part_g.amplitude_ma *= factor
    return start, part_g


def _slow_region_figures(g: Any, r: Any, c1: float, s0: float, window: float,
                         chunk: float) -> tuple[np.ndarray, list[_OutputAccumulator]]:
    """The sums of a slow region from ``c1`` to ``s0`` (:func:`_slow_sums`) and the bound of its windows from ``c1``
    (:func:`_slow_bound`), in the phase's own time: a phase alike another but for its start and intensity takes the
    figures already found for it (:func:`_memo`)."""
    start, part_g = _phase_holding(g, c1)
    a, b, stop = c1 - start, s0 - start, r.stop_s - start
    key = ("slow", part_g.identity(amplitude=False), round(a, 9), round(b, 9), round(stop, 9), window)
    return _memo(key, part_g.amplitude_ma, lambda: (_slow_sums(part_g, a, b), [_slow_bound(part_g, window, a, stop, chunk)]))


def _drifting_region(g: Any, r: Any, c1: float, n_periods: int, x: float, s0: float, chunk: float, duration: float,
                     window: float, share: float, sums_share: float) -> tuple[np.ndarray, list[_OutputAccumulator]]:
    """The sums of a drifting region's ``n_periods`` periods from ``c1`` and ``x`` (s) of the next
    (:func:`_drifting_sums`), and the bounds of its windows from a period past its start to ``s0``
    (:func:`_drifting_bounds`).

    In a multi-phase program they are those of the phase's own generator in the phase's own time, at the phase's
    intensity: a phase alike another but for its start and intensity (in this output or another, in this dose or an
    earlier one: a phase dosed on its own to name the phases of a reason) takes the figures already found for it
    (:func:`_memo`), to rounding those it would have found (the phase's times are rounded otherwise in the session's
    time than in its own)."""
    start, part_g = _phase_holding(g, r.start_s)
    if hasattr(g, "parts"):
        duration = part_g.session_s  # (the events per period of the phase's own rate)
    local = replace(r, start_s=round(r.start_s - start, 9), stop_s=round(r.stop_s - start, 9))
    key = ("drifting", part_g.identity(amplitude=False), local, round(c1 - start, 9), n_periods, round(x, 9),
           round(s0 - start, 9), duration, window, share, sums_share)
    # every period whose windows start before s0: from a + P, one for each period up to s0 and one more
    return _memo(key, part_g.amplitude_ma, lambda: (
        _drifting_sums(part_g, local, c1 - start, n_periods, chunk, duration, share, sums_share, x),
        _drifting_bounds(part_g, local, window, math.ceil((s0 - r.start_s) / r.period_s), share)))


def _gap_span_s(g: Any) -> float:
    """A span (s) over which the gaps between an output's pulses go through all their widths: a cycle of its duty
    cycle and an off phase more, its clock's own period (a swept or random rate, an alternation) or interval,
    and two of its longest intervals."""
    longest = g.clock_interval_range_s()[1]
    dc = g.stim.duty_cycle
    duty = 0.0 if dc is None else dc.on_s + 2.0 * dc.off_s
    return max(duty, float(getattr(g.clock, "period", 0.0)), longest) + 2.0 * longest + _longest_burst_s(g)


def _widest_gap_middle(g: Any, lo: float, hi: float, chunk_s: float, wrap: bool = True) -> float:
    """Where, after ``lo`` (s), the middle of the widest gap between two pulses of ``[lo, hi)`` lies, the gap from
    the last to the first one ``hi - lo`` later counted where ``wrap`` (the pulses repeat every ``hi - lo``; 0
    without pulses): read chunk by chunk."""
    first = last = None
    widest, middle = -1.0, 0.0
    n = max(1, math.ceil((hi - lo) / chunk_s - 1e-9))
    for k in range(n):
        _stop_if_asked()
        t = g.window(lo + k * chunk_s, hi if k == n - 1 else lo + (k + 1) * chunk_s).time_s
        if not t.shape[0]:
            continue
        if first is None:
            first = float(t[0])
        gaps = np.diff(t if last is None else np.concatenate([[last], t]))
        if gaps.shape[0]:
            j = int(np.argmax(gaps))
            if gaps[j] > widest:
                widest, middle = float(gaps[j]), float((t[j] if last is None else np.concatenate([[last], t])[j])
                                                       + gaps[j] / 2.0)
        last = float(t[-1])
    if first is None or last is None:
        return 0.0
    if wrap and first + (hi - lo) - last > widest:  # (the gap across the period's end, as the first pulse repeats)
        middle = last + (first + (hi - lo) - last) / 2.0
    return middle - lo


def _pulses_near(g: Any, lo: float, hi: float, *, first: bool, n: int = 2) -> np.ndarray:
    """The first (``first``) or the last ``n`` pulse times of ``g`` in ``[lo, hi)`` (fewer where it holds fewer),
    read from that end over spans that grow from 1 ms up to about 100 000 events each."""
    longest = max(1e-3, 1e5 * g.session_s / max(g.expected_events(), 1.0))
    span, found = 1e-3, np.zeros(0)
    at = lo if first else hi
    while (at < hi if first else at > lo) and found.shape[0] < n:
        _stop_if_asked()
        if first:
            t, at = g.window(at, min(hi, at + span)).time_s, min(hi, at + span)
            found = np.concatenate([found, t])
        else:
            t, at = g.window(max(lo, at - span), at).time_s, max(lo, at - span)
            found = np.concatenate([t, found])
        span = min(longest, 4.0 * span)
    return found[:n] if first else found[found.shape[0] - min(n, found.shape[0]):]


def _mid_gap(g: Any, lo: float, hi: float, *, first: bool) -> float | None:
    """A time mid-way between two neighbouring pulses of ``g`` in ``[lo, hi)``: the first two (``first``) or the
    last two; None where ``[lo, hi)`` holds fewer than two."""
    t = _pulses_near(g, lo, hi, first=first)
    return float(t[0] + t[1]) / 2.0 if t.shape[0] == 2 else None


def _drifting_sums(g: Any, r: Any, c1: float, n_periods: int, chunk: float, duration: float,
                   share: float = 1.0, sums_share: float = 1.0, x: float = 0.0) -> np.ndarray:
    """The sums of the ``n_periods`` periods of a drifting region from ``c1``: each period's at the clock phase
    it meets the levels at, periods of nearby phases (within 1/bins) summed as one, at the mean of their phases (``share``: the region's share
    of the output's bins, where its level factors drift; else ``sums_share``, its share of the program's drifting
    regions: four of them or fewer take ``_SUM_EVENTS`` each, more share four times that; at least 4 bins (one for
    periods of ``_ONE_BIN_EVENTS``), 16 where not shared). And the sums of ``x`` (s, less than a period) of the period after them, from the stream of the bin that
    holds its phase (split there), at that bin's phase, of as many events as the clock fires at its own."""
    per_period = g.expected_events() / max(duration, 1e-300) * r.period_s
    if r.shifted:
        assert x == 0.0  # (see _repeating_dose)
        return _shifted_sums(g, r, c1, n_periods, chunk, per_period, share)
    phases = _period_phases(g, r, c1, n_periods)
    part = min(1.0, 4.0 * sums_share)
    fewest = 1 if per_period >= _ONE_BIN_EVENTS else 4
    bins = int(min(_MAX_DRIFT_BINS, max(fewest, 16 * part, _SUM_EVENTS * part // max(per_period, 1.0))))
    which = np.minimum(np.floor(phases * bins).astype(np.int64), bins - 1)
    members = np.bincount(which, minlength=bins)
    used = np.flatnonzero(members)
    # each bin's periods as one at the mean of their phases, each of as many events as the clock fires at its own
    # phase (see _PeriodSums.whole)
    mean = np.bincount(which, weights=phases, minlength=bins)[used] / members[used]
    own = np.zeros(bins)
    own[used] = g.clock_events_between(c1, c1 + r.period_s, mean)
    fired = g.clock_events_between(c1, c1 + r.period_s, phases)
    ratio = np.where(own[which] > 0, fired / np.maximum(own[which], 1.0), 1.0)
    counts = np.bincount(which, weights=ratio, minlength=bins)[used] * (n_periods / phases.shape[0])
    # the part period: at the phase the period after the last meets the levels at, in the bin that holds it
    advance = g.phase_advance(c1, r.period_s)
    last = float(np.mod(-n_periods * (advance - math.floor(advance)), 1.0)) if x > 0 else 0.0
    part_bin = int(np.argmin(np.abs(mean - last)))
    total = np.zeros(4)
    for j, (phase, n) in enumerate(zip(mean, counts, strict=True)):
        if j == part_bin and x > 0:
            head = _stream(None, g, c1, c1 + x, chunk, final=False, phase=float(phase))
            total += n * (head + _stream(None, g, c1 + x, c1 + r.period_s, chunk, final=False, phase=float(phase)))
            fired, held = g.clock_events_between(c1, c1 + x, np.array([last, float(phase)]))
            total += head * (fired / held if held > 0 else 1.0)
        else:
            total += n * _stream(None, g, c1, c1 + r.period_s, chunk, final=False, phase=float(phase))
    return total


def _drifting_bounds(g: Any, r: Any, window: float, n_periods: int, share: float = 1.0) -> list[_OutputAccumulator]:
    """The window and per-pulse figures that bound every later period of a drifting region (see
    ``_repeating_dose``): one accumulator per sample of the clock phases its periods meet (``share``: the
    region's share of the output's refinement, where its level factors drift)."""
    if r.shifted:
        return _shifted_bounds(g, r, window, n_periods, share)
    period = r.period_s
    lo, hi = r.start_s + period - r.drift_s, r.start_s + 2 * period + window + 2 * r.drift_s
    # the samples whose phases some period meets, each over the phases met in it (all where not every period's
    # phase was looked at)
    phases = _period_phases(g, r, r.start_s + period, n_periods)
    which = np.floor(phases * r.samples).astype(np.int64)
    spans = [(j / r.samples, 1.0 / r.samples) for j in range(r.samples)]
    if n_periods <= _MAX_PHASES:
        spans = [(float(phases[which == j].min()), float(np.ptp(phases[which == j])) + 1e-9)
                 for j in np.unique(which)]
    lone_bands = _lone_bands(_holding(g, r))  # the bands of a pulse that on/off edges may leave alone
    return [_bound_at(g, r, window, lo, hi, phase, step, lone_bands)[0] for phase, step in spans]


def _part_at(g: Any, t_s: float) -> tuple[float, float, Any]:
    """The start (s), intensity factor and generator of the phase of ``g`` that holds ``t_s`` (0, 1 and ``g`` itself
    where the output has no phases)."""
    return g.part_at(t_s) if hasattr(g, "parts") else (0.0, 1.0, g)


def _holding(g: Any, r: Any) -> Any:
    """The generator of the phase that holds region ``r`` (``g`` itself where the output has no phases)."""
    return _part_at(g, r.start_s)[2]


def _lone_bands(g: Any) -> tuple[int, int] | None:
    """The rate bands of a pulse that on/off edges may leave alone (``lone_rate_range_hz``), or None."""
    lone = g.lone_rate_range_hz()
    return None if lone is None else (_band_of_interval(1.0 / max(lone[0], 1e-300)),
                                      _band_of_interval(1.0 / max(lone[1], 1e-300)))


def _bound_at(g: Any, r: Any, window: float, lo: float, hi: float, phase: float, step: float,
              lone_bands: tuple[int, int] | None, widths: dict[str, float] | None = None) -> tuple[_OutputAccumulator, int]:
    """The figures of the bounding pulses of ``[lo, hi)`` at clock phases ``[phase, phase + step]`` (and drifting
    level factors widened by ``widths``, s: see ``window_bound``), and how many
    pulses that took."""
    _stop_if_asked()
    own = _holding(g, r)  # (the bounded pulses lie in the phase that holds the region: its jumps, not others')
    bounding, extra = g.window_bound(lo, hi, phase, step, r.drift_s, widths)
    bound = _OutputAccumulator(window)
    bound.add(bounding, final=True, extra_s=None if r.rigid else extra, widen=not r.rigid)
    if not r.rigid:
        if own.levels_jump():  # at a jump of the rate or an edge a drifting pulse's nearest neighbour may change:
            has = bound.band_max > 0  # every band the output has there is charged the highest window
            bound.band_max[has] = np.maximum(bound.band_max[has], bound.win_max[0])
    # a pulse whose neighbours drift into an off phase may stand alone, at a rate an off phase sets
    if lone_bands is not None:
        a, b = lone_bands
        bound.band_max[a:b + 1] = np.maximum(bound.band_max[a:b + 1], bound.win_max[0])
    if r.drift_s > 0:  # across a jump of the rate, drifting events take any interval between the two rates'
        for low_hz, high_hz in own.rate_jumps_hz():
            a, b = _band_of_interval(1.0 / low_hz), _band_of_interval(1.0 / high_hz)
            bound.band_max[a:b + 1] = np.maximum(bound.band_max[a:b + 1], bound.win_max[0])
    if r.shortest_s > 0:
        bound.min_dt = min(bound.min_dt, r.shortest_s)
    if widths and widths.get("clock", 0.0) > 0:  # a drifting rate profile: every band of its rates here
        a, b = _band_of_interval(r.drift_s), _band_of_interval(r.shortest_s)
        bound.band_max[a:b + 1] = np.maximum(bound.band_max[a:b + 1], bound.win_max[0])
    return bound, len(bounding)


def _period_configs(g: Any, r: Any, start_s: float, n_periods: int) -> np.ndarray:
    """Where each period ``start_s + k P`` of a region whose level factors drift (``Region.shifted``) meets the
    levels, relative to the first: one row per period (evenly chosen where there are very many), the clock phase
    (as :func:`_period_phases`) then each drifting factor's shift as a fraction of its period,
    ``(k P mod its period) / its period``."""
    k = np.arange(0, n_periods, max(1, n_periods // _MAX_PHASES), dtype=np.float64)
    # a drifting rate profile's shift places its events (their phase is then not looked at)
    phases = np.zeros(k.shape) if _clock_shifts(r) else _period_phases(g, r, start_s, n_periods)
    cols = [phases]
    for _, own, _ in r.shifted:
        f = np.mod(k * r.period_s, own) / own
        cols.append(np.where(f >= 1.0, 0.0, f))
    return np.column_stack(cols)


def _clock_shifts(r: Any) -> bool:
    """Whether region ``r``'s rate profile drifts against its period (``Region.shifted`` names ``"clock"``)."""
    return any(name == "clock" for name, _, _ in r.shifted)


def _shifted(g: Any, r: Any, config: np.ndarray) -> Any:
    """The generator as a period of region ``r`` at ``config`` (a row of :func:`_period_configs`) meets it."""
    return g.with_shifts({name: float(x) * own for (name, own, _), x in zip(r.shifted, config[1:], strict=True)}, r)


def _shifted_sums(g: Any, r: Any, c1: float, n_periods: int, chunk: float, per_period: float,
                  share: float = 1.0) -> np.ndarray:
    """The sums of the periods of a region whose level factors drift.

    Each period meets the levels at a configuration (:func:`_period_configs`: a clock phase and a shift of each
    drifting factor). Where the budget allows, each period is summed at its own: streamed, or with the pulses of
    one period held (:class:`_PeriodSums`: the factors alone evaluated at each configuration, at the nearest of a
    few clock phases; at one where the events are dense and the levels slow, whose sums the clock phase hardly
    changes). Else, where a period holds enough pulses, every period is summed with its pulses held in bins of
    neighbours (:meth:`_PeriodSums.binned`: the bins bend and jump with the shifts as the pulses do), plus what
    every pulse adds to that, taken from an even choice of the periods. Else the periods whose configurations lie
    in one cell of a grid are summed as one, at the mean of their configurations, and the sums corrected: a period's sums bend and jump as a shift moves a factor's corner
    across an end of the period or another factor's corner, and a cell that reaches across one is not summed at
    the mean of its configurations. The correction adds the periods times the exact mean of a period's sums over
    every configuration (:meth:`_PeriodSums.mean`) less the grid's mean of them (each cell at its centre): the
    same error of a cell's sums over its configurations, evenly spread. It is made where the pulses are held.

    Seen (against every pulse): within 0.02 % for one premodulated output, a duty cycle and an amplitude sweep
    drifting, over 10 minutes to a day; within 0.2 % for 16 swept outputs whose duty cycles and sweeps of
    amplitude and width all drift, over half an hour to a day."""
    configs = _period_configs(g, r, c1, n_periods)
    scale = n_periods / configs.shape[0]
    streamed = max(16, int(min(_MAX_SUM_BINS, 2 * _SUM_EVENTS / max(per_period, 1.0)) * share))

    def stream(config: np.ndarray) -> np.ndarray:
        return _stream(None, _shifted(g, r, config), c1, c1 + r.period_s, chunk, final=False, phase=float(config[0]))

    if configs.shape[0] <= streamed:  # every period (or an even choice of them) at its own configuration
        return scale * sum((stream(config) for config in configs), np.zeros(4))
    held = None
    # (the clock phases as offsets from the first, round the circle: 0.9999999 is next to 0)
    around = np.mod(configs[:, 0] - configs[0, 0] + 0.5, 1.0) - 0.5
    one_phase = not _clock_shifts(r) and float(np.ptp(around)) <= 1e-6
    if per_period <= _MAX_HELD_EVENTS and one_phase:
        # every period meets the clock at one phase (its events do not drift): the pulses held there, as they are
        # (a half event off, a duty cycle's edges each moved a burst in or out of its periods: 0.7 % of the power)
        held = _PeriodSums(g, r, c1, chunk, 1, at=float(configs[0, 0]))
    elif per_period <= _MAX_HELD_EVENTS and not _clock_shifts(r):
        dense = per_period >= _DENSE_PERIOD_EVENTS
        held = _PeriodSums(g, r, c1, chunk, 1) if dense else None
        if held is not None and r.level_rate * r.drift_s >= _SLOW_LEVELS:
            # the clock phase moves a pulse by up to its own interval: one phase, where the levels change by less than
            # _SLOW_LEVELS over the intervals of all but _SPARSE_SHARE of the pulses (a rate that dwells a while on
            # a low one among high ones)
            t = held.phases[0][0]
            dense = t.shape[0] > 1 and np.count_nonzero(np.diff(t) * r.level_rate >= _SLOW_LEVELS) <= _SPARSE_SHARE * t.shape[0]
        if not dense:
            held = _PeriodSums(g, r, c1, chunk, _HELD_PHASES)
    total_bins, phases = streamed, 0
    if held is not None:
        phases = len(held.phases)
        total_bins = max(_MIN_HELD_CELLS, int(_SUM_POINTS / (per_period * (len(r.shifted) + 2)) * share))
        if configs.shape[0] <= total_bins:  # each at its own shifts, at the clock phase held nearest its own
            return scale * held.at(g, r, configs).sum(axis=0)
        size = math.ceil(2.0 * configs.shape[0] / total_bins)
        if per_period / size >= _MIN_BINS:
            # every period with its pulses in bins of k (they bend and jump with the shifts as the pulses do), plus
            # what every pulse adds to that, from an even choice of periods
            binned = held.binned(size)
            m = max(16, int(total_bins / 2 / (1.0 + 1.0 / size)))
            pick = np.linspace(0, configs.shape[0] - 1, m).round().astype(np.int64)
            rest = (held.at(g, r, configs[pick]) - binned.at(g, r, configs[pick])).sum(axis=0)
            return scale * (binned.at(g, r, configs).sum(axis=0) + configs.shape[0] / m * rest)
    dims = configs.shape[1] - 1
    if held is not None:  # half the cells' evaluations at their mean configurations, half at their centres
        total_bins //= 2
    # the shifts change a period's sums most; the clock phase moves each pulse by up to an interval (the sums change
    # by an event or so where an edge meets one): a few clock phases (those held), one where the events are dense
    per_dim = max(2, int((total_bins / (phases or 4)) ** (1.0 / dims)))
    bins = np.array([phases or max(2, min(64, total_bins // per_dim ** dims))] + [per_dim] * dims)
    cells = np.ravel_multi_index(np.minimum(np.floor(configs * bins).astype(np.int64), bins - 1).T, bins)
    _, which, counts = np.unique(cells, return_inverse=True, return_counts=True)
    means = np.zeros((counts.shape[0], configs.shape[1]))
    np.add.at(means, which, configs)
    means /= counts[:, None]
    if held is None:
        return scale * (counts @ np.array([stream(m) for m in means]))
    # a cell's periods each of as many events as the clock fires at its own phase (not at their mean phase)
    fired = np.bincount(which, weights=held.whole(g, configs[:, 0], held.held_of(configs[:, 0]))) / counts
    total = scale * (counts @ held.at(g, r, means, fired))
    # the correction: the exact mean over every configuration less the grid's (the midpoint rule: each cell at its
    # centre, weighed by its volume), times the periods; the events each phase fires on average in both
    centres = (np.stack(np.meshgrid(*[np.arange(b) for b in bins], indexing="ij"), axis=-1).reshape(-1, bins.shape[0])
               + 0.5) / bins
    grid = held.at(g, r, centres, held.mean_whole(held.held_of(centres[:, 0])))
    return total + n_periods * (held.mean(g, r, c1) - grid.mean(axis=0))


#: a region's sums hold the pulses of a period of at most ``_MAX_HELD_EVENTS`` events (:class:`_PeriodSums`) at
#: ``_HELD_PHASES`` clock phases, at one where its levels change by less than ``_SLOW_LEVELS`` of their highest over
#: an interval of its clock (over their own interval for all but ``_SPARSE_SHARE`` of its pulses) and its periods hold
#: at least ``_DENSE_PERIOD_EVENTS`` events; the sums of an output then
#: evaluate about ``_SUM_POINTS`` values (factors and terms)
_MAX_HELD_EVENTS = 2_000_000
_HELD_PHASES = 8
_SLOW_LEVELS = 0.1
_SPARSE_SHARE = 1e-4
_DENSE_PERIOD_EVENTS = 1000.0
_SUM_POINTS = 64_000_000
_MIN_HELD_CELLS = 8
#: a period's pulses are summed in bins (:meth:`_PeriodSums.binned`) where that leaves at least this many bins
_MIN_BINS = 256


def _factor_terms(name: str, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the values ``v`` of level factor ``name`` make of a pulse's charges (currents and widths are linear in
    them) and of its ∫i²dt (squared where it sets the current; the duty cycle's envelope and the amplitude)."""
    return v, (v * v if name != "width" else v)


class _PeriodSums:
    """The pulses of a period ``[c1, c1 + P)`` of a region whose level factors drift, with those factors held at 1
    (``without``), at a few clock phases, as the terms of their sums: the sums at any configuration of the factors
    are these terms, at the clock phase held nearest to the configuration's, times the factors at the pulses' times
    (``level_factors``); the count is set by the duty cycle alone (a pulse where its envelope is above 0). Each held
    row is (times, pulses, net charge, ∫i²dt, |charge|): a pulse each, or a bin of them (:meth:`binned`)."""

    def __init__(self, g: Any, r: Any, c1: float, chunk: float, n_phases: int, at: float | None = None):
        self.names = frozenset(name for name, _, _ in r.shifted)
        neutral = g.without(self.names, r)
        n = max(1, math.ceil(r.period_s / chunk - 1e-9))
        cuts = [c1 + r.period_s * k / n for k in range(n)] + [c1 + r.period_s]
        self.phases = []
        self.span = (c1, cuts[-1])
        #: how many events the clock fires over the period at each held phase (off phases included)
        # (the middles of n equal parts of an event's phase, or the one phase ``at`` every period meets)
        held = (np.arange(n_phases) + 0.5) / n_phases if at is None else np.array([at])
        self.fired = g.clock_events_between(c1, cuts[-1], held)
        self.fired_mean = float(g.clock_events_between(c1, cuts[-1])[0])
        for phase in held:
            _stop_if_asked()
            c = PulseChunk.concatenate([neutral.window(a, b, float(phase)) for a, b in itertools.pairwise(cuts)],
                                       c1, cuts[-1])
            q1, q2, net, i2t, _ = pulse_terms(c)
            self.phases.append((c.time_s, np.ones(len(c)), net, i2t, q1 + q2))

    def held_of(self, phases: np.ndarray) -> np.ndarray:
        """The held phase (its index) that stands for each of the clock ``phases``: the nearest."""
        return np.minimum(len(self.phases) - 1, (phases * len(self.phases)).astype(np.int64))

    def mean_whole(self, which: np.ndarray) -> np.ndarray:
        """:meth:`whole` on average over every clock phase, for the held phases ``which``."""
        return np.where(self.fired[which] > 0, self.fired_mean / np.maximum(self.fired[which], 1.0), 1.0)

    def whole(self, g: Any, phases: np.ndarray, which: np.ndarray) -> np.ndarray:
        """What a period's sums at each clock phase of ``phases`` are of those at the held phase ``which`` stands for
        it: as many events as the clock fires over the period at the one against the other. A period that holds a
        fraction of an event more than whole ones fires one more at some phases than at others (63 or 64 bursts of
        12 carrier cycles where a sweep's three periods hold 63.63); the sums are those of the held phase's events,
        each as it is (the levels hardly change over an interval where one phase stands for many)."""
        fired = g.clock_events_between(*self.span, phases)
        held = self.fired[which]
        return np.where(held > 0, fired / np.maximum(held, 1.0), 1.0)

    def binned(self, size: int) -> _PeriodSums:
        """Every ``size`` neighbouring pulses held as one, at their middle time, their terms summed: the levels, slow
        against them, hardly change over a bin (an on/off edge inside one counts it all on or off)."""
        held = copy.copy(self)
        held.phases = []
        for t, *terms in self.phases:
            starts = np.arange(0, t.shape[0], size)
            middle = np.minimum(starts + size // 2, t.shape[0] - 1)
            held.phases.append((t[middle], *(np.add.reduceat(a, starts) for a in terms)))
        return held

    def at(self, g: Any, r: Any, configs: np.ndarray, whole: np.ndarray | None = None) -> np.ndarray:
        """The sums of the period at each of ``configs`` (rows of :func:`_period_configs`), one row each: each
        factor at the pulses' times shifted as the configuration shifts it (``with_shifts``: evaluated that much
        later), in batches of about ``_BATCH_POINTS`` values; each of as many events as the clock fires at its phase
        (:meth:`whole`), or ``whole`` times the held phase's."""
        out = np.zeros((configs.shape[0], 4))
        which = self.held_of(configs[:, 0])
        for k, (t, pulses, net, i2t, absq) in enumerate(self.phases):
            rows = np.flatnonzero(which == k)
            step = max(1, _BATCH_POINTS // max(t.shape[0], 1))
            for at in range(0, rows.shape[0], step):
                _stop_if_asked()
                batch = rows[at:at + step]
                count = np.full(batch.shape[0], float(pulses.sum()))
                current: np.ndarray | None = None  # the factors of the current, and of the width
                width: np.ndarray | None = None
                for j, (name, own, _) in enumerate(r.shifted):
                    v = g.level_factors(frozenset({name}), t[None, :] + (configs[batch, 1 + j] * own)[:, None], r)[name]
                    if name == "duty":
                        count = (v > 0) @ pulses
                    if name == "width":
                        width = v
                    else:
                        current = v if current is None else current * v
                lin = current if width is None else (width if current is None else current * width)
                assert lin is not None  # (a region's factors drift: one at least)
                sq = lin if current is None else current * lin  # (∫i²dt: the current's factors squared)
                out[batch] = np.column_stack([count, lin @ net, sq @ i2t, lin @ absq])
        return out * (self.whole(g, configs[:, 0], which) if whole is None else whole)[:, None]

    def mean(self, g: Any, r: Any, c1: float) -> np.ndarray:
        """The sums of the period averaged over the clock phases held and every shift of its drifting factors (see
        :func:`_level_means`)."""
        # each held phase's sums, of as many events as the clock fires on average over every phase (see whole)
        scale = self.mean_whole(np.arange(len(self.phases)))
        held = np.mean([np.array([a.sum() for a in terms]) * k for (_, *terms), k in zip(self.phases, scale, strict=True)],
                       axis=0)
        return held * _level_means(g, r, c1)


#: level factors are evaluated at the pulses of many configurations at once, about this many values at a time
_BATCH_POINTS = 1 << 20


#: points of a level factor's period its means are taken over (:func:`_level_means`): to 2e-5 of a jump
_LEVEL_MEAN_POINTS = 65_536


def _level_means(g: Any, r: Any, c1: float) -> np.ndarray:
    """What the drifting level factors of region ``r`` make of each of a period's sums (count, net charge, ∫i²dt,
    |charge|) on average over their shifts, each evenly spread and independent of the others: the product over the
    factors of the fraction of its period where the duty cycle's envelope is on (the count), of its mean (the
    charges) and of the mean of its square where it sets the current (∫i²dt). Midpoint sums over
    ``_LEVEL_MEAN_POINTS`` points of each factor's period from ``c1``."""
    means = np.ones(4)
    for name, own, _ in r.shifted:
        t = c1 + (np.arange(_LEVEL_MEAN_POINTS, dtype=float) + 0.5) * (own / _LEVEL_MEAN_POINTS)
        v = g.level_factors(frozenset({name}), t, r)[name]
        f1, f2 = _factor_terms(name, v)
        on = float(np.mean(v > 0)) if name == "duty" else 1.0
        means = means * np.array([on, float(np.mean(f1)), float(np.mean(f2)), float(np.mean(f1))])
    return means


#: a region whose level factors drift is dosed from its period only where it holds at least this many periods (a
#: shorter one is streamed: its sums, from cells of a few periods each, would gain little and lose precision)
_MIN_SHIFTED_PERIODS = 64
#: the most pulses, and the most evaluations, the refinement of an output's cells of drifting configurations may take
_MAX_REFINE_EVENTS = 4_000_000
_MAX_REFINE_CELLS = 160
#: a split that leaves its halves' excess below this fraction of the cell's went well; a cell is split across the
#: dimension its levels change most over, and across the next where they change at least ``_MINOR_SPLIT`` as much
_USEFUL_SPLIT = 0.8
_MINOR_SPLIT = 0.1


class _Cell(NamedTuple):
    """A box of drifting configurations (clock phase, then each factor's shift as a fraction of its period): its
    bound, that bound's key figures, its lower corner and size, and the configurations of the periods in it."""

    bound: _OutputAccumulator
    figures: np.ndarray
    low: np.ndarray
    size: np.ndarray
    members: np.ndarray
    #: whether its periods meet the levels at one configuration (it cannot be split)
    single: bool = False
    #: the dimension a split of this cell's parent went best across (-1: none known)
    prefer: int = -1


def _key_figures(acc: _OutputAccumulator) -> np.ndarray:
    """The figures a cell is refined for until its bound is within the tolerance of the highest a period reaches:
    peak current, phase charge, energy per pulse, window i²t and |charge|."""
    return np.array([acc.peak, acc.max_q, acc.max_i2t, acc.win_max[0], acc.win_max[1]])


def _shifted_bounds(g: Any, r: Any, window: float, n_periods: int, share: float = 1.0) -> list[_OutputAccumulator]:
    """The window and per-pulse figures that bound every later period of a region whose level factors drift
    against its period (``Region.shifted``), besides its events.

    Each period meets the levels at a configuration: a clock phase (as for drifting events) and a shift of each
    drifting factor. The configurations the periods meet are split into cells (boxes around them), each bounded
    by the pulses of the second period, each at the highest its levels reach over the cell's clock phases and
    shifts (``window_bound``). A cell whose bound
    of a key figure lies more than ``_BOUND_TOLERANCE`` above the highest that figure reaches at a configuration
    some period meets (its exact pulses) is split in two: across each of the two dimensions where the levels
    change most over it, the split whose halves lie least above kept (a shift that moves the levels less may
    raise a window's bound more: an amplitude sweep's crest in a window, against a duty cycle's edges outside
    it), its halves split across the same dimension while that goes well; until none is or
    ``_MAX_REFINE_EVENTS`` pulses were evaluated or ``_MAX_REFINE_CELLS`` evaluations (an output's regions share
    them: ``share`` is this one's). Every
    period lies in a cell: the figures are upper bounds, within the tolerance of those of the periods where the
    refinement completes (looser where it stops first).
    """
    period = r.period_s
    lo, hi = r.start_s + period - r.drift_s, r.start_s + 2 * period + window + 2 * r.drift_s
    configs = _period_configs(g, r, r.start_s + period, n_periods)
    lone_bands = _lone_bands(_holding(g, r))
    # how much the levels change per unit of each dimension (a fraction of their highest)
    change = np.array([r.level_rate * r.drift_s] + [rate * own for _, own, rate in r.shifted])
    spent = 0

    complete = n_periods <= _MAX_PHASES  # every period's configuration is known: cells shrink to those met
    evaluations = 0

    def evaluate(low: np.ndarray, size: np.ndarray, members: np.ndarray,
                 extent: tuple[np.ndarray, np.ndarray] | None = None) -> _Cell:
        nonlocal spent, evaluations
        if extent is None:  # (the lowest and highest configuration of its members)
            box = configs[members]
            extent = box.min(axis=0), box.max(axis=0)
        spread = extent[1] - extent[0]
        if complete:
            low, size = extent[0], spread + 1e-12
        widths = {name: float(size[1 + j]) * own for j, (name, own, _) in enumerate(r.shifted)}
        acc, n = _bound_at(_shifted(g, r, low), r, window, lo, hi, float(low[0]), float(size[0]), lone_bands, widths)
        spent += n
        evaluations += 1
        return _Cell(acc, _key_figures(acc), low, size, members, single=bool(spread.max() <= 0))

    def exact(member: int) -> np.ndarray:
        nonlocal spent
        _stop_if_asked()
        config = configs[member]
        c = _shifted(g, r, config).window(lo, hi, phase=float(config[0]))
        spent += len(c)
        acc = _OutputAccumulator(window)
        acc.add(c, final=True)
        return _key_figures(acc)

    most_cells, most_events = max(4.0, _MAX_REFINE_CELLS * share), _MAX_REFINE_EVENTS * share
    # a first grid of at most a quarter of the evaluations: up to 4 clock phases, up to 8 shifts of each factor
    per_dim = max(1, min(8, int((most_cells / 4.0) ** (1.0 / len(r.shifted)))))
    bins = np.array([max(1, min(r.samples, 4, int(most_cells / 4.0 / per_dim ** len(r.shifted))))]
                    + [per_dim] * len(r.shifted))
    cells_of = np.ravel_multi_index(np.minimum(np.floor(configs * bins).astype(np.int64), bins - 1).T, bins)
    index, which = np.unique(cells_of, return_inverse=True)
    order = np.argsort(which, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(which))[:-1]]
    of_cell = np.split(order, starts[1:])
    by_cell = configs[order]  # each cell's lowest and highest configuration, for all cells at once
    lows, highs = np.minimum.reduceat(by_cell, starts, axis=0), np.maximum.reduceat(by_cell, starts, axis=0)
    cells = [evaluate(np.array(np.unravel_index(index[j], bins)) / bins, 1.0 / bins, of_cell[j], (lows[j], highs[j]))
             for j in range(index.shape[0])]
    if spent >= most_events or evaluations >= most_cells:  # no refinement left: what periods reach is not needed
        return [c.bound for c in cells]
    reached = np.max([exact(int(c.members[0])) for c in cells], axis=0)

    def excess(c: _Cell) -> float:  # how far above the highest reached (-inf: the cell holds one config)
        if c.single:
            return -math.inf
        with np.errstate(over="ignore"):  # (a figure above one that no period reaches: infinitely far above)
            return float(np.max((c.figures - reached * (1 + _BOUND_TOLERANCE)) / np.maximum(reached, 1e-300)))

    while spent < most_events and evaluations < most_cells:
        over = np.array([excess(c) for c in cells])
        worst = int(np.argmax(over))
        if over[worst] <= 0:
            break
        low, size, members = cells[worst].low, cells[worst].size, cells[worst].members
        box = configs[members]
        # (a jump changes its factor at an infinite rate: a huge finite one, so that spreads compare)
        spread = np.minimum(change, 1e300) * np.ptp(box, axis=0)
        # split across the dimension whose halves lie least above the highest reached: where the levels change most,
        # and (a shift that moves the levels less may raise a window's bound more) the next where both change
        prefer = cells[worst].prefer
        dims = [prefer] if prefer >= 0 and spread[prefer] > 0 else [int(j) for j in np.argsort(-spread)[:2]
                                                                     if spread[j] > _MINOR_SPLIT * spread.max()]
        if not dims:  # its levels change across none of its dimensions: no split can lower its bound
            cells[worst] = cells[worst]._replace(single=True)
            continue
        best: list[_Cell] = []
        for dim in dims:
            cut = float(np.median(box[:, dim]))
            left = box[:, dim] <= cut if np.any(box[:, dim] > cut) else box[:, dim] < cut
            high = low + size
            halves = []
            for part, a, b in ((left, low[dim], cut), (~left, cut, high[dim])):
                if part.any():
                    sub_low, sub_size = low.copy(), size.copy()
                    sub_low[dim], sub_size[dim] = a, max(b - a, 1e-12)
                    halves.append(evaluate(sub_low, sub_size, members[part]))
            reached = np.maximum(reached, np.max([exact(int(h.members[0])) for h in halves], axis=0))
            if not best or max(excess(h) for h in halves) < max(excess(h) for h in best):
                best = [h._replace(prefer=dim) for h in halves]
        # a split across the dimension its parent's went best across that leaves the excess about as it was: the
        # halves try two again
        halves = best if max(excess(h) for h in best) < _USEFUL_SPLIT * over[worst] else [
            h._replace(prefer=-1) for h in best]
        cells[worst:worst + 1] = halves
    return [c.bound for c in cells]


def _widen_bands(acc: _OutputAccumulator, t: np.ndarray, i2t: np.ndarray, extra_s: np.ndarray) -> None:
    """Bounding pulses stand for pulses whose local rate may differ a little: a drifting pulse's shortest interval
    to a neighbour lies within those of its smoothly changing neighbours here (to 0.1 %). Where that
    range reaches across a band's edge, both bands of that edge are charged the highest window that holds such a
    pulse (a rate band is judged at its strictest). ``t``: the pulses' times (s), ``i2t`` their ∫i²dt, ``extra_s``
    how much longer (s) the window at each is."""
    if t.shape[0] < 3:
        return
    d = np.diff(t)
    local = np.minimum(np.r_[np.inf, d], np.r_[d, np.inf])  # each pulse's shortest interval to a neighbour
    lo, hi = local.copy(), local.copy()
    for nb in (np.r_[local[1:], local[-1]], np.r_[local[0], local[:-1]]):
        # a rate that changes smoothly (a sweep), not the jump from a burst's cycles to the gap between bursts
        smooth = (nb <= local * 1.5) & (nb >= local / 1.5)
        lo = np.where(smooth, np.minimum(lo, nb), lo)
        hi = np.where(smooth, np.maximum(hi, nb), hi)
    lo, hi = lo * (1 - 1e-3), hi * (1 + 1e-3)
    cum = np.r_[0.0, np.cumsum(i2t)]
    stop = np.searchsorted(t, t + acc.w + extra_s - 1e-9, side="left")
    sums = cum[stop] - cum[:-1]
    for edge, interval in enumerate(_BAND_MIN_INTERVAL_S):
        near = (lo < interval) & (hi >= interval)
        if near.any():
            k = np.r_[0, np.cumsum(near)]
            held = k[stop] > k[:-1]  # windows that hold such a pulse
            top = float(sums[held].max())
            acc.band_max[edge:edge + 2] = np.maximum(acc.band_max[edge:edge + 2], top)


#: an output (or a phase) with at least this many pulses, whose levels are slow and that has no region of its own, is
#: dosed from the corners of its levels (:func:`_slow_region`; fewer: every pulse)
SLOW_LEVELS_MIN_EVENTS = 2_000_000
#: a sweep (of amplitude, width or rate) at least this many windows long is slow: over a window its level changes
#: little (a full triangle of 100 windows by 2 % at most), so a window at the highest level of every factor bounds
#: any window closely
_SLOW_SWEEP_WINDOWS = 100.0
#: an output (or phase) whose levels are slow is dosed from their corners rather than from a drifting region whose
#: period holds more events than this
_SLOW_INSTEAD_EVENTS = 250_000
#: a program's regions that repeat exactly stream a period each while their periods hold at most this many events in
#: all (each output its share); beyond, those of slow levels are dosed from their corners (see ``_repeating_dose``)
_MAX_EXACT_EVENTS = 8_000_000
#: (where an exact region's period holds more events than this many per span the corners' bounds take)
_SPAN_EVENTS = 16.0
#: at most this many corners of the levels (cells) in a span, and this many blocks and events of a period held over
#: them
_MAX_SLOW_CELLS = 2_000_000
_MAX_SLOW_HELD = 8_000_000


def _places(g: Any) -> tuple[float, np.ndarray, np.ndarray] | None:
    """``(P, τ, cycle)``: the events of an output whose clock repeats (a constant or random rate) lie at ``m P + τ_p``
    (τ increasing, in ``[0, P)``: a burst's pulses each a place), each carrier cycle lasting ``cycle_p`` (s); None
    for a swept rate."""
    clock = g.clock
    if isinstance(clock, ConstantClock):
        period, starts, intervals = 1.0 / clock.f, np.zeros(1), np.full(1, 1.0 / clock.f)
    elif isinstance(clock, RandomClock):
        period, starts, intervals = clock.period, clock.starts, clock.intervals
    else:
        return None
    offsets = np.arange(g.n_inner, dtype=float) / g.inner_hz if g.n_inner > 1 else np.zeros(1)
    tau = np.mod((starts[:, None] + offsets[None, :]).ravel(), period)
    order = np.argsort(tau, kind="stable")
    return period, tau[order], np.repeat(intervals, offsets.shape[0])[order]


#: a constant beat's envelope repeats with its carrier over their common period, whose carrier cycles are then places
#: of their own (:func:`_beat_places`) where it holds at most this many
_MAX_BEAT_PLACES = 1 << 20
#: a premodulated beat swept, or whose common period with the carrier is longer: summed by its means where it stays
#: below this fraction of the carrier (their harmonics fold onto the carrier's rate by 0.82 (r / f)² at most: 0.3 %)
_MAX_SWEPT_BEAT = 1.0 / 16.0
_MAX_BEAT_CHANGE = 0.2


def _beat_cycles(g: Any) -> int | None:
    """How many carrier cycles the common period of a premodulated output's carrier and beat holds (a constant beat,
    or a beat swept over a whole number of its cycles a sweep: its envelope repeats with the sweep); None where they
    have none, or it holds more than ``_MAX_BEAT_PLACES``."""
    beat = getattr(g, "beat_clock", None)
    whole = isinstance(beat, PiecewiseClock) and abs(beat.phi_period - round(beat.phi_period)) <= 1e-9 * beat.phi_period
    if not (isinstance(beat, ConstantClock) or whole):
        return None
    own, theirs = _clock_period(g.clock), _clock_period(beat)
    if own is None or theirs is None:
        return None
    count = _lcm(own, theirs) / own
    return int(count) if count.denominator == 1 and count <= _MAX_BEAT_PLACES else None


def _beat_places(g: Any) -> tuple[float, np.ndarray, np.ndarray, np.ndarray] | None:
    """``(P, τ, cycle, envelope)``: the carrier cycles of a premodulated output over the common period ``P`` of its
    carrier and beat (:func:`_beat_cycles`; as :func:`_places`), each with the beat's ``|sin π Ψ|`` and
    ``sin² π Ψ`` at its middle (shape (2, K)); None where there is none."""
    count = _beat_cycles(g)
    if count is None:
        return None
    cycle = 1.0 / g.clock.f
    tau = np.arange(count, dtype=float) * cycle
    envelope = np.abs(np.sin(np.pi * g.beat_clock.phase(tau + 0.5 * cycle)))
    return count * cycle, tau, np.full(tau.shape, cycle), np.stack([envelope, envelope * envelope])


def _slow_levels(g: Any, window: float, span: float) -> bool:
    """Whether output generator ``g`` (a phase's, in its own time) is dosed from the corners of its levels over its
    ``span`` s (:func:`_slow_sums`, :func:`_slow_bound`): single pulses, bursts, sine bursts or carrier cycles (a
    premodulated beat's too, :func:`_beat_excess`) at a constant or random rate, or at a rate swept slowly (at least ``_SLOW_SWEEP_WINDOWS``
    windows), whose sweeps of amplitude and width are slow too and whose duty cycle, if any, holds a window between
    its ramps; with at most ``_MAX_SLOW_CELLS`` corners (cells) and ``_MAX_SLOW_HELD`` events of a period held
    over them."""
    st, clock = g.stim, g.clock
    beat = getattr(g, "beat_clock", None)
    beat_cycles = _beat_cycles(g)
    if beat is not None and beat_cycles is None and not _summed_beat(g, window):
        return False
    corners = 4.0
    places = 1.0
    if isinstance(clock, ConstantClock | RandomClock):  # a span holds a period's blocks and two blocks one by one
        places = float((clock.CYCLE if isinstance(clock, RandomClock) else 1) * g.n_inner)
        if beat_cycles is not None:
            places = float(beat_cycles)
        held, places = places / _MOMENT_BLOCK + 4.0 * _MOMENT_BLOCK, 1.0
    elif type(clock) is PiecewiseClock and clock.period >= _SLOW_SWEEP_WINDOWS * window:
        held, places = 1.0, float(g.n_inner)
        corners += clock.tau0.shape[0] * (span / clock.period + 2.0)
    else:
        return False
    for m in (st.amplitude_modulation, st.width_modulation):
        if m is not None:
            if m.period_s < _SLOW_SWEEP_WINDOWS * window:
                return False
            corners += 2.0 * span / m.period_s + 2.0
    dc = st.duty_cycle
    if dc is not None:
        if dc.on_s - st.ramp_up_s - st.ramp_down_s < window:
            return False
        corners += 4.0 * span / dc.cycle_s + 4.0
    return corners * places <= _MAX_SLOW_CELLS and corners * held <= _MAX_SLOW_HELD


def _summed_beat(g: Any, window: float) -> bool:
    """Whether a premodulated beat is summed by its means (:func:`_beat_excess`) and bounded per window
    (:func:`_beat_shares`) closely: at a constant carrier, below ``_MAX_SWEPT_BEAT`` of it; swept, changing by at
    most a fifth over a beat cycle (its slope over its lowest rate squared, ``_MAX_BEAT_CHANGE``: a cycle's mean then
    stays close to a constant beat's), and either slow to change over a window (its slope times a window squared at
    most 0.2 Hz) or at least 4 beats a window."""
    beat, clock = g.beat_clock, g.clock
    if not isinstance(clock, ConstantClock):
        return False
    if isinstance(beat, ConstantClock):
        return beat.f <= _MAX_SWEPT_BEAT * clock.f
    low, high = beat.rate_range(0.0, beat.period)
    steepest = float(np.abs(beat.slope).max())
    return (high <= _MAX_SWEPT_BEAT * clock.f and steepest <= _MAX_BEAT_CHANGE * low * low
            and (steepest * window * window <= 0.2 or low * window >= 4.0))


def _slow_region(window: float) -> Any:
    """The fallback of ``regions``: a slow region over the whole of an output (or phase) without one, where it has
    ``SLOW_LEVELS_MIN_EVENTS`` events and slow levels (none else)."""
    def fallback(g: Any) -> list[Region]:
        if g.expected_events() < SLOW_LEVELS_MIN_EVENTS or not _slow_levels(g, window, g.session_s):
            return []
        return [Region(0.0, 0.0, g.session_s, slow=True)]
    return fallback


def _longest_burst_s(g: Any) -> float:
    """How long a burst (a pulse, a carrier cycle) of output ``g`` lasts at most (s)."""
    parts = [p for _, _, _, p in g.parts] if hasattr(g, "parts") else [g]
    return max(p.span_s + _longest_pulse_s(p.stim.pulse) for p in parts)


def _half_us(g: Any, longest_s: float, bound: bool = False) -> float | None:
    """A carrier cycle's half-width (µs) at its longest (``longest_s``; for a ``bound``, as long as the rounding of
    times can make a swept rate's: ``cycle_rounding_s``), a sine burst's; None for pulses."""
    if g.shape == "interferential":
        return 0.5e6 * (longest_s + g.cycle_rounding_s()) * (1.0 + 1e-12) if bound else 0.5e6 * longest_s
    return 0.5e6 / g.inner_hz if g.shape == "sine-burst" else None


def _top(g: Any, half_us: float | None) -> PulseChunk:
    """One pulse (a carrier cycle of half-width ``half_us``) at the highest of every level."""
    return g._chunk(0.0, 1.0, np.zeros(1), None if half_us is None else np.full(1, half_us), np.full(1, g.amplitude_ma),
                    np.ones(1))


def _line(factor: Any, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A level factor, linear over each ``[lo, hi)``: its value at ``lo`` and its change to ``hi`` (read inside, at
    the quarters, clear of a jump at either end)."""
    quarter = 0.25 * (hi - lo)
    f1, f2 = factor(lo + quarter), factor(hi - quarter)
    return np.stack([1.5 * f1 - 0.5 * f2, 2.0 * (f2 - f1)], axis=1)


#: a premodulated carrier cycle's current is its peak times ``|sin(π Ψ)|``, Ψ the beat's phase at the cycle's middle:
#: over a beat cycle that is on average 2/π of the peak (its charges) and 1/2 of its square (its ∫i²dt)
_BEAT_MEANS = (2.0 / math.pi, 0.5)


def _aliased_phase(psi: np.ndarray, m: np.ndarray, j: np.ndarray, t: np.ndarray, fc: float) -> np.ndarray:
    """``2 π (m Ψ - j fc t)`` modulo 2 π (rad): harmonic ``m`` of a beat at phase ``psi`` as the carrier's cycles at
    ``fc`` (Hz) sample it, brought down by ``j`` of its rate (each of shape ``psi``'s broadcast with ``m``, ``j``)."""
    carrier = fc * t - np.floor(fc * t)
    return 2.0 * np.pi * (np.mod(m * (psi - np.floor(psi)), 1.0) - np.mod(j * carrier, 1.0))


#: the harmonics of ``|sin π x| - 2/π`` taken, ``-4 cos(2 π m x) / (π (4 m² - 1))`` (those left out weigh under 1e-4 of
#: the charge of a beat cycle at each corner); ``sin² π x - 1/2`` is ``-cos(2 π x) / 2``
_BEAT_HARMONICS = 64
_HARMONIC_WEIGHTS = (-4.0 / (np.pi * (4.0 * np.arange(1, _BEAT_HARMONICS + 1, dtype=float) ** 2 - 1.0)), np.array([-0.5]))
_GAUSS = np.polynomial.legendre.leggauss(16)


def _beat_excess(beat: Any, fc: float, mid: float, u: np.ndarray, v: np.ndarray, polys: tuple[np.ndarray, ...]
                 ) -> list[float]:
    """What a premodulated envelope adds to the sums of carrier cycles over its means (``_BEAT_MEANS``) between
    corners ``[u, v)`` of slow levels: ``Σ_k P(t_k) (|sin π Ψ_k| - 2/π)`` for the first polynomial of ``polys``
    (rows: coefficients in ``s = (t - u) / (v - u)``), ``Σ_k P(t_k) (sin² π Ψ_k - 1/2)`` for the second; Ψ_k the
    beat's phase at the middle (``mid``, s) of the carrier cycle at ``t_k = k / fc``.

    Each envelope is a sum of harmonics ``w_m cos(2 π m Ψ)`` (``_HARMONIC_WEIGHTS``). At the carrier's cycles a
    harmonic is ``cos θ_m(t_k)`` with ``θ_m = 2 π (m Ψ(t + mid) - j fc t)``, ``j`` the whole number that brings its
    rate ``ν = 2 π (m r - j fc)`` (``r`` the beat's rate) within half the carrier's (the samples alias it there), and
    its sum is ``fc ∫ P cos θ_m dt`` to about a cycle at either end: by parts until the polynomial is spent,
    ``Re [e^{iθ} Σ_n (-1)^n P⁽ⁿ⁾ / (iν)^(n+1)]`` from ``u`` to ``v`` (exact for a constant beat; a swept beat's rate
    taken as it is at each end, see :func:`_summed_beat`), or by 16-point Gauss-Legendre over a span that the
    harmonic turns less than once over. Returns one sum per polynomial."""
    length = v - u
    out = []
    for poly, weights in zip(polys, _HARMONIC_WEIGHTS, strict=True):
        m = np.arange(1, weights.shape[0] + 1, dtype=float)
        ends = []
        for t, s in ((u, 0.0), (v, 1.0)):
            psi, rate = beat.phase(t + mid), beat.rate(t + mid)
            j = np.round(np.outer(rate, m) / fc)
            nu = 2.0 * np.pi * (np.outer(rate, m) - j * fc)
            theta = _aliased_phase(psi[:, None], m[None, :], j, t[:, None], fc)
            series = np.zeros(nu.shape, dtype=complex)
            deriv = poly.copy()  # (the derivatives of P in s, then at s: in t)
            for n in range(poly.shape[1]):
                at = deriv @ (s ** np.arange(deriv.shape[1])) / length ** n
                with np.errstate(divide="ignore", invalid="ignore"):
                    series += (-1.0) ** n * at[:, None] / (1j * nu) ** (n + 1)
                deriv = deriv[:, 1:] * np.arange(1, deriv.shape[1])
            ends.append((np.real(np.exp(1j * theta) * series), np.abs(nu) * length[:, None]))
        (low, turn_u), (high, turn_v) = ends
        slow = (turn_u < 2.0 * np.pi) | (turn_v < 2.0 * np.pi)
        total = np.where(slow, 0.0, high - low) @ weights
        slow_rows, slow_cols = np.nonzero(slow)
        if slow_rows.shape[0]:  # a harmonic that turns less than once over its span: summed by quadrature
            nodes, gw = _GAUSS
            t = u[slow_rows, None] + length[slow_rows, None] * 0.5 * (nodes[None, :] + 1.0)
            psi = beat.phase((t + mid).ravel()).reshape(t.shape)
            jj = np.round(beat.rate(u[slow_rows] + mid) * m[slow_cols] / fc)
            theta = _aliased_phase(psi, m[slow_cols, None], jj[:, None], t, fc)
            sv = 0.5 * (nodes + 1.0)
            pv = poly[slow_rows] @ (sv[None, :] ** np.arange(poly.shape[1])[:, None])
            quad = 0.5 * length[slow_rows] * ((pv * np.cos(theta)) @ gw)
            np.add.at(total, slow_rows, weights[slow_cols] * quad)
        out.append(fc * float(total.sum()))
    return out


def _slow_sums(g: Any, a: float, b: float) -> np.ndarray:
    """The sums (count, net charge, ∫i²dt, |charge|) of the pulses of generator ``g`` in ``[a, b)`` (its own time)
    whose levels are slow (:func:`_slow_levels`), from their corners.

    Between two corners (a ramp's ends, an on/off edge, a sweep's turn; a swept rate's too) every level factor is
    linear, so a pulse's ∫i²dt there (its current's factor squared times its width's, times a carrier cycle's length)
    and its charges (their product) are polynomials of degree 5 and 3 in the pulse's place in the span, summed over
    the span's events by their moments (``waveform._moments``: in closed form for a repeating clock, by
    Euler-Maclaurin for a swept rate, a burst's pulses each a place of its own). A pulse whose envelope is 0 (at a
    ramp's start) is not counted, as it is not delivered. A premodulated beat's envelope is summed by its means and
    what it has run above them at the corners (:func:`_beat_excess`)."""
    clock = g.clock
    beat = getattr(g, "beat_clock", None)
    sine = g.shape in ("sine-burst", "interferential")
    places = _places(g)
    beat_places = _beat_places(g)
    spans: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    lin_row = sq_row = 0  # (a premodulated beat's envelope: its own weights for the charges and for ∫i²dt)
    if places is not None:
        period, tau, cycle = places if beat_places is None else beat_places[:3]
        longest = float(cycle.max())
        weights = np.stack([np.ones(tau.shape), cycle / longest if g.shape == "interferential" else np.ones(tau.shape)])
        if beat_places is not None:
            weights = np.concatenate([weights, weights[1] * beat_places[3]])
            lin_row, sq_row = 1, 2
        edges = np.unique(np.concatenate([[a, b], g.breakpoints(a, b)]))
        u, v = edges[:-1], edges[1:]
        moments, first = periodic_moments(period, tau, weights, u, v)
        spans.append((u, v, moments[0][:, 0], moments[1:], first))
    else:  # a slow swept rate: a burst's pulses place by place, each over its own cells in the clock's time
        longest = 1.0 / clock.rate_range(a - g.span_s - 1.0, b + 1.0)[0]
        for delta in (np.arange(g.n_inner, dtype=float) / g.inner_hz if g.n_inner > 1 else np.zeros(1)):
            lo, hi = a - delta, b - delta
            turns = _clock_corners(clock, lo, hi)
            edges = np.unique(np.concatenate([[lo, hi], g.breakpoints(a, b) - delta, turns[(turns > lo) & (turns < hi)]]))
            u, v = edges[:-1], edges[1:]
            rate = _line(clock.rate, u, v)
            moments, events, first = swept_moments(clock.time_of, clock.phase, rate[:, 0], rate[:, 1] / (v - u), u, v,
                                                   cycle_weight_s=longest if g.shape == "interferential" else None)
            spans.append((u + delta, v + delta, events, moments[None], first + delta))
    q1, q2, net, i2t, _ = (float(x[0]) for x in pulse_terms(_top(g, _half_us(g, longest))))
    count = sum_lin = sum_sq = 0.0
    for u, v, n_events, moments, first in spans:
        env = _line(g.envelope, u, v)
        level = poly_product(env, _line(g.amplitude_factor, u, v))
        width = np.tile([1.0, 0.0], (u.shape[0], 1)) if sine else _line(g.width_factor, u, v)
        on = (env[:, 0] > 0) | (env[:, 0] + env[:, 1] > 0)
        lin = poly_product(level, width)
        sq = poly_product(poly_product(level, level), width)
        s_lin = float(np.einsum("ij,ij->", lin[on], moments[lin_row][on, :lin.shape[1]]))
        s_sq = float(np.einsum("ij,ij->", sq[on], moments[sq_row][on]))
        if beat is not None and beat_places is None:  # a beat summed by its means (at a constant carrier)
            assert places is not None
            mid = 0.5 * float(places[2].max())  # (the beat is read at a carrier cycle's middle)
            excess = _beat_excess(beat, 1.0 / places[0], mid, u[on], v[on], (lin[on], sq[on]))
            s_lin = _BEAT_MEANS[0] * s_lin + excess[0]
            s_sq = _BEAT_MEANS[1] * s_sq + excess[1]
        sum_lin += s_lin
        sum_sq += s_sq
        at_start = first[on & np.isfinite(first)]  # (a first event at a ramp's start has an envelope of 0)
        count += float(n_events[on].sum()) - float(np.count_nonzero(g.envelope(at_start) <= 0))
    return np.array([count, net * sum_lin, i2t * sum_sq, (q1 + q2) * sum_lin])


def _clock_corners(clock: PiecewiseClock, lo: float, hi: float) -> np.ndarray:
    """The corners of a swept rate's profile about ``[lo, hi]`` (s), and where its rate crosses twice
    ``slow_rate_hz`` of its slope (below that a span's events may be summed one by one, see ``waveform._moments``:
    a few thousand at most; above it, none is)."""
    k = np.arange(math.floor(lo / clock.period) - 1, math.ceil(hi / clock.period) + 2, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.array([(2.0 * slow_rate_hz(x) - f) / x if x else -1.0 for f, x in zip(clock.f0, clock.slope)])
    inside = (cross > 0) & (cross < clock.dur)
    offsets = np.concatenate([clock.tau0, (clock.tau0 + cross)[inside]])
    return np.sort((k[:, None] * clock.period + offsets[None, :]).ravel())


def _events_in(rate_hz: np.ndarray, length_s: float) -> np.ndarray:
    """The most events at rates up to ``rate_hz`` a span of ``length_s`` holds (one at its start)."""
    x = length_s * np.asarray(rate_hz, dtype=float)
    return np.where(np.abs(x - np.round(x)) < 1e-6, np.floor(x + 1e-6) + 1.0, np.ceil(x))


#: a slow output's bounds are taken over spans of a window and a quarter, starting a quarter of a window apart (the
#: windows that start in a quarter end within its span)
_BOUND_STEPS = 4


def _span_maxima(factor: Any, a: float, b: float, window: float, corners: np.ndarray, slope: float) -> np.ndarray:
    """The highest a piecewise-linear ``factor`` reaches over each span ``[a + i d, a + i d + W + d]`` (``d`` a
    ``_BOUND_STEPS``-th of the window ``W``, up to ``b`` at most; i from 0 until ``a + i d`` reaches ``b``): at the
    ends or on either side of a corner inside (its left side read 1 ns before it, raised by ``slope`` over that)."""
    step = window / _BOUND_STEPS
    n = max(1, math.ceil((b - a) / step - 1e-9))
    v = factor(np.minimum(a + step * np.arange(n + _BOUND_STEPS + 1, dtype=float), b))
    top = v[:n].copy()
    for shift in range(1, _BOUND_STEPS + 2):
        np.maximum(top, v[shift:shift + n], out=top)
    corners = corners[(corners > a) & (corners < b)]
    if corners.shape[0]:
        at = np.maximum(factor(corners), factor(corners - 1e-9) + slope * 1e-9)
        i = np.floor((corners - a) / step).astype(np.int64)
        for shift in range(_BOUND_STEPS + 1):
            j = i - shift
            ok = (j >= 0) & (j < n)
            np.maximum.at(top, j[ok], at[ok])
    return top


def _spans_holding(t: np.ndarray, a: float, n: int, window: float) -> np.ndarray:
    """The spans of :func:`_span_maxima` (their indices) that hold any of the instants ``t``."""
    i = np.floor((t - a) / (window / _BOUND_STEPS)).astype(np.int64)
    j = np.concatenate([i - shift for shift in range(_BOUND_STEPS + 1)])
    return np.unique(j[(j >= 0) & (j < n)])


def _swept_bound(g: Any, window: float, a: float, b: float) -> _OutputAccumulator:
    """:func:`_slow_bound` of a slowly swept rate: window by window (each ``[a + i W, a + (i + 1) W)`` holds the
    starts of windows that end before ``a + (i + 2) W``), the most bursts (pulses) the highest rate over two
    windows lets a window hold, each at the highest levels there and a carrier cycle as long as at the lowest rate;
    a rate band charged with those the highest rate a window holding a pulse of that band can reach lets it hold
    (the band's edge and the sweep's change over a window and two intervals)."""
    clock = g.clock
    acc = _OutputAccumulator(window)
    k = np.arange(math.floor((a - g.span_s) / clock.period) - 1, math.ceil(b / clock.period) + 2, dtype=float)
    turns = (k[:, None] * clock.period + clock.tau0[None, :]).ravel()
    slope = float(np.abs(clock.slope).max())
    high = _span_maxima(clock.rate, a, b, window, turns, slope) + slope * g.span_s  # (a burst's start: its span before)
    low = np.maximum(-_span_maxima(lambda t: -clock.rate(t), a, b, window, turns, slope) - slope * g.span_s, 1e-300)
    n = high.shape[0]
    current, width = _level_maxima(g, window, a, b)
    # a carrier cycle's terms grow with its length: as at the lowest rate, its times rounded (cycle_rounding_s)
    rounding = g.cycle_rounding_s()
    stretch = (1.0 / low + rounding) / (1.0 + rounding) if g.shape == "interferential" else np.ones(n)
    q1, q2, net, i2t, _ = (float(x[0]) for x in pulse_terms(_top(g, _half_us(g, 1.0, bound=True))))  # (a 1 s cycle)
    i2t_each = i2t * current ** 2 * width * stretch
    q_each = (q1 + q2) * current * width * stretch
    net_each = net * current * width * stretch
    count = _events_in(high, window + g.span_s) * g.n_inner
    one = _OutputAccumulator(window)
    one.add(_top(g, _half_us(g, float(np.max(1.0 / low)), bound=True)), final=True)  # the pulse at the highest levels
    lv, q_level, i2t_level = float(current.max()), float((current * width).max()), float((current ** 2 * width).max())
    acc.peak, acc.max_q, acc.max_i2t = one.peak * lv, one.max_q * q_level, one.max_i2t * i2t_level
    acc.max_net, acc.net_extreme = one.max_net * q_level, one.net_extreme * q_level
    acc.win_max = np.array([float((count * i2t_each).max()), float((count * q_each).max()),
                            max(0.0, float((count * net_each).max()))])
    acc.win_min_net = min(0.0, float((count * net_each).min()))
    acc.band_max = np.zeros(_N_BANDS)
    if g.n_inner > 1:  # a burst's pulses are each other's nearest neighbours
        acc.band_max[_band_of_interval(1.0 / g.inner_hz)] = acc.win_max[0]
        acc.min_dt = 1.0 / g.inner_hz
    else:
        reach = slope * (window + 2.0 / low)
        ends = clock.f0 + clock.slope * clock.dur
        jumps = np.flatnonzero(np.abs(clock.f0 - np.roll(ends, 1)) > 1e-9 * clock.f0)
        if jumps.shape[0]:  # a rate that jumps (a sawtooth's return): a window holding it may hold any rate it jumps from
            reach[_spans_holding((k[:, None] * clock.period + clock.tau0[jumps][None, :]).ravel(), a, n, window)] = math.inf
        edges = [0.0, *(e * (1.0 + _BAND_REL_TOL) for e in RATE_BANDS_HZ), math.inf]
        for band in range(_N_BANDS):
            holds = (high > edges[band]) & (low <= edges[band + 1])
            if holds.any():
                n_band = _events_in(np.minimum(high, edges[band + 1] + reach), window)
                acc.band_max[band] = float((n_band * i2t_each)[holds].max())
        on = current > 0  # (the rates of spans the duty cycle keeps off are never delivered)
        acc.min_dt = 1.0 / float(high[on].max()) if on.any() else math.inf
    _charge_lone_bands(acc, g)
    _charge_ramp_starts(acc, g, window, a, b, count * i2t_each)
    return acc


def _slow_bound(g: Any, window: float, a: float, b: float, chunk_s: float) -> _OutputAccumulator:
    """Window and per-pulse figures that bound those of generator ``g`` (slow levels, :func:`_slow_levels`) over
    ``[a, b)``: its pulses at the highest levels. A repeating clock's: every window of two of its periods (from
    ``a``), each pulse at the highest every level reaches over ``[a, b]``. A swept rate's: see
    :func:`_swept_bound`. Upper bounds, within what the slow levels change over a window; where an on/off edge may
    leave a pulse alone, the bands of the rates it can then have are charged too."""
    places = _places(g)
    if places is None:
        return _swept_bound(g, window, a, b)
    acc = _OutputAccumulator(window)
    beat = getattr(g, "beat_clock", None)
    top = g.without(frozenset({"duty", "amplitude", "width"}))
    if beat is not None:  # every carrier cycle at its peak: the beat's share of a window is taken below
        top.beat_clock = None
    acc.skip_first_window = True  # (its first pulse's previous neighbour is not seen: a period later, it is)
    length = 2.0 * places[0] + window + 2.0 * (g.clock_interval_range_s()[1] + _longest_burst_s(g))
    start = a if top.periodic else max(a, top.offset_s)  # (a delayed output's pulses start at its offset)
    _stream(acc, top, start, min(b, start + length), chunk_s, final=True)  # (a repeating clock's cycles as it sets them)
    _charge_lone_bands(acc, g)
    current, width = _level_maxima(g, window, a, b)  # (each window and pulse lies in one of their spans)
    top_i2t = float(acc.win_max[0])
    top = acc
    acc = acc.scaled(float(current.max()), float((current * width).max()), float((current * current * width).max()))
    if beat is not None:  # a window's cycles under the beat: at most a share of their peaks' ∫i²dt, per span
        # (of the most cycles a window holds: the windows of the cycles at their peaks hold as many as any does, the
        # carrier's own; each cycle's ∫i²dt at its peak the same)
        held = round(float(top.win_max[0] / top.max_i2t)) if top.max_i2t > 0 else None
        shares = _beat_window_shares(g, window, a, b, current.shape[0], held)
        if shares is None:
            share = _beat_shares(g, window, a, b, held)
            shares = share, np.sqrt(share)
        f2, f1 = float((current * current * width * shares[0]).max()), float((current * width * shares[1]).max())
        acc.win_max = top.win_max * np.array([f2, f1, f1])
        acc.win_min_net = top.win_min_net * f1
        acc.band_max = top.band_max * f2
    _charge_ramp_starts(acc, g, window, a, b, top_i2t * current * current * width)
    return acc


def _beat_window_shares(g: Any, window: float, a: float, b: float, steps: int,
                        held: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Under a beat whose envelope repeats with the carrier (:func:`_beat_places`): per span of :func:`_span_maxima`
    (``steps`` of them from ``a``), the highest share of their peaks' ∫i²dt and charge that the cycles of a window
    starting in the span's first quarter carry, ``Σ sin² π Ψ_k`` and ``Σ |sin π Ψ_k|`` over the window's most
    cycles ``N`` (``held``, else as many as a window may hold, each side counted; more cycles, larger sums), over
    ``N``: every window of the common period summed (a running sum), the most over the starts a span holds taken (a
    running maximum). None without such a period."""
    places = _beat_places(g)
    if places is None:
        return None
    period, tau, cycle, envelope = places
    k_count = tau.shape[0]
    fc = 1.0 / float(cycle[0])
    n = int(_events_in(np.array([fc]), window)[0]) if held is None else held
    step = window / _BOUND_STEPS
    reach = math.ceil(step * fc) + 2  # (the starts a span's first quarter holds, and one before)
    starts = a + step * np.arange(steps, dtype=float)
    k0 = np.mod(np.floor(np.mod(starts, period) * fc).astype(np.int64) - 1, k_count)  # (a span's first start, and one before)
    from scipy.ndimage import maximum_filter1d  # (here: importing scipy.ndimage takes about 0.1 s)

    out = []
    for row in (envelope[1], envelope[0]):
        tiled = np.concatenate([row, np.resize(row, n + reach + 1)])
        sums = np.concatenate([[0.0], np.cumsum(tiled)])
        windows = sums[n:n + k_count + reach] - sums[:k_count + reach]  # the window from each start, a period and on
        highest = maximum_filter1d(windows, size=reach, origin=-(reach // 2))[:k_count]  # over starts k .. k + reach
        out.append(np.minimum(1.0, highest[k0] / n))
    return out[0], out[1]


def _beat_shares(g: Any, window: float, a: float, b: float, held: int | None = None) -> np.ndarray:
    """The most a window's carrier cycles under a premodulated beat carry of their ∫i²dt at their peaks (a share,
    at most 1), per span of :func:`_span_maxima` from ``a`` to ``b``; their charges carry at most its square root
    (Cauchy-Schwarz).

    A window holds at most ``N`` consecutive cycles ``k`` (``held``, else as many as a window may hold, each side
    counted; more cycles, a larger sum), whose ``sin² π Ψ_k`` sum to
    ``N/2 - Σ cos(2 π Ψ_k) / 2``, Ψ the beat's phase. The cosines' sum is bounded two ways, the lower taken:

    - against its chord over the window, Ψ bends by at most ``M (t - t0)(t1 - t) / 2`` (``M`` the steepest slope of
      the beat's rate, Hz/s), which moves the sum by at most ``π M (N L²/6 + L²/4)`` (``L = N / f``, ``f`` the
      carrier); along the chord, at a rate ``r`` between the span's lowest and highest beat, the sum is a Dirichlet
      kernel ``|sin(π N r/f) / sin(π r/f)|``: at most ``s / sin(π r_low / f)``, ``s`` the highest
      ``|sin(π N r/f)|`` over the span's rates (not where the span holds a jump of the rate: a sawtooth's return);
    - Kusmin-Landau: over each stretch where the beat's rate only rises or only falls, at most
      ``cot(π r_low / (2 f))`` (the beat stays below a quarter of the carrier), one stretch more for each corner of
      its profile in the span."""
    beat, fc = g.beat_clock, float(g.clock.f)
    n = float(_events_in(np.array([fc]), window)[0]) if held is None else float(held)
    length = n / fc
    mid = 0.5 / fc  # (the beat is read at a cycle's middle)
    steps = max(1, math.ceil((b - a) / (window / _BOUND_STEPS) - 1e-9))
    pieces = np.ones(steps)
    bend = np.zeros(steps)
    if isinstance(beat, ConstantClock):
        low = high = np.full(steps, beat.f)
    else:
        k = np.arange(math.floor(a / beat.period) - 1, math.ceil((b + window) / beat.period) + 2, dtype=float)
        corners = (k[:, None] * beat.period + beat.tau0[None, :]).ravel() - mid
        steepest = float(np.abs(beat.slope).max())
        high = _span_maxima(lambda t: beat.rate(t + mid), a, b, window, corners, steepest)
        low = -_span_maxima(lambda t: -beat.rate(t + mid), a, b, window, corners, steepest)
        near = np.floor((corners - a) / (window / _BOUND_STEPS)).astype(np.int64)
        for shift in range(_BOUND_STEPS + 1):  # (the spans holding each corner: see _spans_holding)
            j = near - shift
            np.add.at(pieces, j[(j >= 0) & (j < steps)], 1.0)
        bend[:] = np.pi * steepest * (n * length * length / 6.0 + length * length / 4.0)
        ends = beat.f0 + beat.slope * beat.dur
        jumping = np.abs(beat.f0 - np.roll(ends, 1)) > 1e-9 * beat.f0
        jumps = (k[:, None] * beat.period + beat.tau0[jumping][None, :]).ravel() - mid
        bend[_spans_holding(jumps, a, steps, window)] = math.inf
    x_low, x_high = low * length, high * length
    peaked = np.ceil(x_low - 0.5) + 0.5 <= x_high
    s = np.where(peaked, 1.0, np.maximum(np.abs(np.sin(np.pi * x_low)), np.abs(np.sin(np.pi * x_high))))
    kernel = s / np.sin(np.pi * low / fc) + bend
    landau = pieces / np.tan(0.5 * np.pi * low / fc)
    return np.minimum(1.0, 0.5 + 0.5 * np.minimum(kernel, landau) / n)



def _charge_ramp_starts(acc: _OutputAccumulator, g: Any, window: float, a: float, b: float, win_i2t: np.ndarray) -> None:
    """A burst of two pulses whose first lies on a ramp's start (its envelope 0: not delivered) leaves its second
    alone, its rate set by the gap to the next burst: charge the bands of those rates the highest window (``win_i2t``,
    per span of two windows from ``a``) of the spans holding a ramp's start."""
    if g.n_inner != 2:
        return
    starts = g.ramp_starts(a, b)
    if not starts.shape[0]:
        return
    near = _spans_holding(starts, a, win_i2t.shape[0], window)
    if not near.shape[0]:
        return
    shortest, longest = g.clock_interval_range_s()
    lo, hi = _band_of_interval(longest - g.span_s), _band_of_interval(shortest - g.span_s)
    acc.band_max[lo:hi + 1] = np.maximum(acc.band_max[lo:hi + 1], float(win_i2t[near].max()))


def _charge_lone_bands(acc: _OutputAccumulator, g: Any) -> None:
    """Charge the bands of a pulse that on/off edges may leave alone (``_lone_bands``) the highest window."""
    lone = _lone_bands(g)
    if lone is not None:
        acc.band_max[lone[0]:lone[1] + 1] = np.maximum(acc.band_max[lone[0]:lone[1] + 1], acc.win_max[0])


def _level_maxima(g: Any, window: float, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """The highest current factor (envelope times amplitude sweep, at most 1) and width factor over each span of
    :func:`_span_maxima` from ``a`` to ``b`` (each factor at its highest there)."""
    corners = g.breakpoints(a - window, b + window)
    rate = g.level_rate()
    # (each at most 1: a corner's left side raised by a steep slope may read more)
    current = (np.minimum(1.0, _span_maxima(g.envelope, a, b, window, corners, rate))
               * np.minimum(1.0, _span_maxima(g.amplitude_factor, a, b, window, corners, rate)))
    width = (np.ones(current.shape) if g.shape in ("sine-burst", "interferential")
             else np.minimum(1.0, _span_maxima(g.width_factor, a, b, window, corners, rate)))
    return current, width


def _output_dose(g: Any, window: float, chunk_s: float, duration: float, share: float = 1.0) -> _OutputAccumulator:
    """The figures of one output: from its repeat period where it has one and is long, else every pulse (``share``:
    the output's share of the refinement of drifting levels, see ``_shifted_bounds``)."""
    with dosing():
        # an output alike one already dosed (within a shared_dose_figures) but for its current: its figures, scaled
        key = ("output", g.identity(amplitude=False), window, chunk_s, duration, share)
        return _memo(key, g.amplitude_ma, lambda: (np.zeros(4), [_dose_of(g, window, chunk_s, duration, share)]))[1][0]


def _dose_of(g: Any, window: float, chunk_s: float, duration: float, share: float) -> _OutputAccumulator:
    # where an output (a phase) has no region of its own and its levels are slow: one dosed from their corners
    regions = g.regions(_slow_region(window))
    exact = all(r.drift_s == 0 and not r.slow for r in regions)
    events = g.expected_events()
    enough = events >= (REPEAT_MIN_EVENTS / 10 if exact else REPEAT_MIN_EVENTS)
    # chunks of about the schedule's events, of this output alone
    own = max(chunk_s, min(STREAM_EVENTS_PER_CHUNK * duration / max(events, 1.0), duration), 1e-6)
    acc = _repeating_dose(g, window, own, duration, share, regions) if enough and regions else None
    if acc is None:  # every pulse, chunk by chunk
        acc = _OutputAccumulator(window)
        _stream(acc, g, 0.0, duration, own, final=True)
    return acc


#: an output streamed pulse by pulse takes about this many at a time (its arrays stay in the cache)
STREAM_EVENTS_PER_CHUNK = 131_072

#: outputs are dosed side by side (one thread each, up to the cores) where together they have this many pulses
PARALLEL_MIN_EVENTS = 2_000_000


def _output_doses(gens: list[Any], window: float, chunk_s: float, duration: float,
                  budget: float = 1.0) -> list[_OutputAccumulator]:
    """:func:`_output_dose` of each generator; side by side where they are several and long (the kernels and
    NumPy's long operations let go of the interpreter), in order of the generators either way."""
    cores = os.cpu_count() or 1
    # the outputs share the refinement of drifting levels (short arrays: the interpreter, not the cores, bounds it)
    share = budget / max(len(gens), 1)
    if len(gens) < 2 or cores < 2 or sum(g.expected_events() for g in gens) < PARALLEL_MIN_EVENTS:
        return [_output_dose(g, window, chunk_s, duration, share) for g in gens]
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=min(len(gens), cores), thread_name_prefix="electrostim dose")
    try:
        with threadpool_limits(1):  # (each thread one BLAS thread: the cores are the threads')
            # (each in a copy of this thread's context: the figures of alike regions shared, see shared_dose_figures)
            futures = [pool.submit(copy_context().run, _asked_to_stop_by, stop, _output_dose, g, window, chunk_s,
                                   duration, share) for g in gens]
            return [f.result() for f in futures]
    except BaseException:  # an error or an interruption (Ctrl-C): the others stop at their next chunk
        stop.set()
        raise
    finally:  # and the outputs not yet started are not
        pool.shutdown(wait=True, cancel_futures=True)


class _DoseStopped(Exception):
    """A dose computed in a worker thread was asked to stop (the caller was interrupted or failed)."""


_worker = threading.local()


def _asked_to_stop_by(stop: threading.Event, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a worker thread that stops at its next chunk once ``stop`` is set."""
    _worker.stop = stop
    try:
        return fn(*args)
    finally:
        _worker.stop = None


def _stop_if_asked() -> None:
    stop = getattr(_worker, "stop", None)
    if stop is not None and stop.is_set():
        raise _DoseStopped("the dose was asked to stop")


def compute_dose(
    program: Program,
    level: str = "default",
    amplitude_ma=None,
    load_ohm: float = DEFAULT_LOAD_OHM,
    schedule: Schedule | None = None,
    *,
    budget: float = 1.0,
) -> Dose:
    """Dose of a program, per output and per electrode, into ``load_ohm``.

    Parameters
    ----------
    program : Program
    level : {"default", "max"}
        The amplitude used (ignored when ``schedule`` is given).
    amplitude_ma : float or mapping, optional
        Explicit amplitude(s) instead of ``level``.
    load_ohm : float
        Resistive load for energy and power (500 Ω, the IEC test load, by default).
    schedule : Schedule, optional
        A schedule to use instead of building one.
    budget : float
        The share (0 < budget <= 1) of the events and phases that the bounds and sums of outputs whose pulses drift
        against their levels may take: a part of a larger program (a phase dosed on its own) takes its part, as it
        does in the whole program's dose.

    Returns
    -------
    Dose

    Notes
    -----
    The rms current of each IEC rate band (:data:`RATE_BANDS_HZ`) is the highest rms
    over the 1 s windows (starting at a pulse, half-open) that hold at least one pulse
    whose local rate lies in the band, 0 where no pulse does. A pulse's local rate is
    1 / the shorter of its intervals to the previous and the next pulse of the same
    output (0 for a pulse alone in its session): the carrier inside a Russian or
    interferential burst, the intra-burst rate inside a burst, the train rate of a
    plain train. A window holding pulses of several bands counts for each, so a rate
    limit is judged by the strictest band the window holds.

    Examples
    --------
    >>> import electrostim as es
    >>> d = es.compute_dose(es.load_program("nmes-quadriceps-tka"), level="max")
    >>> round(d.outputs[0].max_phase_charge_uc, 3)
    25.0

    Russian current (2.5 kHz sine carrier in bursts) lies in the band above 1500 Hz:

    >>> r = es.compute_dose(es.load_program("russian-current"), level="max").outputs[0]
    >>> round(r.rms_current_above_1500hz_ma, 6), r.rms_current_up_to_400hz_ma
    (40.0, 0.0)
    """
    if load_ohm <= 0:
        from ..errors import OptionError

        raise OptionError(f"Invalid value for 'load_ohm': allowed > 0 Ω, but got {load_ohm!r}.")
    if not 0.0 < budget <= 1.0:
        from ..errors import OptionError

        raise OptionError(f"Invalid value for 'budget': allowed 0 < budget <= 1, but got {budget!r}.")
    sched = schedule if schedule is not None else Schedule(program, level=level, amplitude_ma=amplitude_ma)
    duration = sched.duration_s
    window = min(WINDOW_S, duration)
    accs: list[_OutputAccumulator | None] = [None] * len(sched.outputs)
    # outputs with the same pulses but for a factor of their currents (channels alike but for their intensity) are
    # dosed once, at the highest current, and the others' figures scaled from it (by the factor, or its square)
    groups: dict[tuple, list[tuple[int, Any]]] = {}
    nominal: list[list[float]] = []
    for i, g in enumerate(sched._dose_generators()):
        groups.setdefault(g.identity(amplitude=False), []).append((i, g))
        nominal.append(g.shortest_intervals_s())
        for part in ([p for _, _, _, p in g.parts] if hasattr(g, "parts") else [g]):
            part.bound_events *= budget
    loudest = [max((m[1] for m in members), key=lambda x: x.amplitude_ma) for members in groups.values()]
    with shared_dose_figures():  # (alike phases dosed once)
        doses = _output_doses(loudest, window, sched.chunk_s, duration, budget)
    for members, g, dosed in zip(groups.values(), loudest, doses, strict=True):
        for i, other in members:
            accs[i] = (dosed if other.amplitude_ma == g.amplitude_ma
                       else dosed.scaled(other.amplitude_ma / g.amplitude_ma))
    outs = []
    for o, amp, acc, intervals in zip(sched.outputs, sched.amplitudes_ma, accs, nominal, strict=True):
        assert acc is not None  # every output has one: repeating or streamed
        # the shortest interval between pulses, as the clock sets it where the pulses' times round it (a day's times
        # carry a rounding of 1e-11 s: a 10 kHz carrier read as 10 000.001 Hz)
        min_dt = next((x for x in intervals if abs(acc.min_dt - x) <= _ROUNDED_INTERVAL * x), acc.min_dt)
        rms = math.sqrt(acc.win_max[0] * 1e-6 / window)
        rms_band = [math.sqrt(x * 1e-6 / window) for x in acc.band_max]
        rms_session = math.sqrt(acc.sum_i2t * 1e-6 / duration)
        power_w = rms * rms * 1e-6 * load_ohm
        power_session_w = rms_session * rms_session * 1e-6 * load_ohm
        pads = []
        for e in o.electrodes:
            area = e.area_cm2
            density = acc.max_q / area
            # k = log10(q / area) + log10(q), written so that a charge whose density underflows to 0 still has one
            k = 2.0 * math.log10(acc.max_q) - math.log10(area) if acc.max_q > 0 else None
            pads.append(
                ElectrodeDose(
                    site=e.site,
                    side=e.side,
                    size=e.size_label,
                    area_cm2=area,
                    rms_current_density_ma_per_cm2=rms / area,
                    average_power_density_w_per_cm2=power_w / area,
                    charge_density_uc_per_cm2=density,
                    shannon_k=k,
                )
            )
        # a charge-balanced shape carries no net charge by construction: 0, not the rounding of its sums
        balanced = all(st.pulse.charge_balanced for st in program.stimuli(o.channel_index))
        outs.append(
            OutputDose(
                output=o.index,
                label=o.label,
                channel=program.channels[o.channel_index].label,
                amplitude_ma=amp,
                pulse_count=acc.count,
                max_pulse_rate_hz=round(1.0 / min_dt, 6) if min_dt not in (0.0, math.inf) else 0.0,
                peak_current_ma=acc.peak,
                peak_voltage_v=acc.peak * 1e-3 * load_ohm,
                max_phase_charge_uc=acc.max_q,
                max_net_charge_per_pulse_uc=0.0 if balanced else acc.max_net,
                net_charge_per_pulse_uc=0.0 if balanced else acc.net_extreme,
                net_charge_session_uc=0.0 if balanced else acc.sum_net,
                dc_current_ma=0.0 if balanced else max(acc.win_max[2], -acc.win_min_net) * 1e-3 / window,
                rms_current_ma=rms,
                rms_current_up_to_400hz_ma=rms_band[0],
                rms_current_400_to_1500hz_ma=rms_band[1],
                rms_current_above_1500hz_ma=rms_band[2],
                rms_current_session_ma=rms_session,
                average_current_ma=acc.win_max[1] * 1e-3 / window,
                average_current_session_ma=acc.sum_absq * 1e-3 / duration,
                max_energy_per_pulse_mj=acc.max_i2t * 1e-6 * 1e-6 * load_ohm * 1e3,
                average_power_mw=power_w * 1e3,
                average_power_session_mw=power_session_w * 1e3,
                electrodes=pads,
            )
        )
    outs = [_at_set_voltage(o, sched, load_ohm) for o in outs]
    return Dose(
        program=program.id,
        level=sched.level if amplitude_ma is None and schedule is None else _level_of(program, sched),
        load_ohm=load_ohm,
        window_s=window,
        session_duration_s=duration,
        outputs=outs,
    )


def _level_of(program: Program, sched: Schedule) -> str:
    """The level whose amplitudes a schedule of explicit amplitudes has, if it has one ("max" or "default", as
    ``es.assess`` doses each channel at its highest), else "explicit"."""
    for level in ("max", "default"):
        at = [getattr(program.channels[o.channel_index].stimulus.amplitude, f"{level}_ma") for o in sched.outputs]
        if at == sched.amplitudes_ma:
            return level
    return "explicit"


def _at_set_voltage(dose: OutputDose, sched: Schedule, load_ohm: float) -> OutputDose:
    """The dose of a voltage-controlled output as it delivers it: the set voltage, and energy and power into
    :data:`~electrostim.program.VOLTAGE_LOAD_OHM` (where its derived currents flow) instead of ``load_ohm``.

    Its currents are the set voltage's into 200 Ω (the most it drives), so its peak voltage is
    the set voltage at the level dosed (whether or not a pulse reaches it in the session) and
    its energy and power are those of 200 Ω; each of these scales with the load, so it is
    rescaled. An output set in mA is returned as it is.
    """
    out = sched.outputs[dose.output]
    if not out.stimulus.amplitude.voltage_controlled:
        return dose
    scale = VOLTAGE_LOAD_OHM / load_ohm
    pads = [e.model_copy(update={"average_power_density_w_per_cm2": e.average_power_density_w_per_cm2 * scale})
            for e in dose.electrodes]
    volts = sched.amplitudes_ma[dose.output] * 1e-3 * VOLTAGE_LOAD_OHM
    return dose.model_copy(update={
        "peak_voltage_v": volts,
        "set_voltage_v": volts,
        "max_energy_per_pulse_mj": dose.max_energy_per_pulse_mj * scale,
        "average_power_mw": dose.average_power_mw * scale,
        "average_power_session_mw": dose.average_power_session_mw * scale,
        "electrodes": pads,
    })
