"""Numba kernel of the dose: the 1 s windows of a stream of pulses in one pass.

:func:`window_pass` gives, for the windows ``[t_i, t_i + w)`` that start at the pulses
of one output, the same figures as the array form of ``_OutputAccumulator.add``
(prefix sums, a binary search for each window's end, the differences), bit for bit:
the prefix sums are taken in the same order, one running sum at each window's start
and one at its end, and each end is found by walking forward (the ends never move
back). It holds no array of the pulses' size, and costs a few ns a pulse.

Compiled by numba (cached on disk); with ``ELECTROSTIM_NO_NUMBA=1`` it runs as plain
Python (the switch is ``electrostim._jit``, shared by every kernel), and the dose then
keeps to its array form.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import njit

__all__ = ["bound_window_pass", "corners_up_to_into", "duty_envelope_into", "neighbour_intervals", "ramp_envelope_into", "sweep_factor_into",
           "terms_into", "window_pass"]


@njit(cache=True, nogil=True)
def window_pass(t: np.ndarray, v: np.ndarray, window_s: float, first: int, final: bool, bands: np.ndarray,
                top: np.ndarray, band_top: np.ndarray) -> tuple[int, float]:
    """Figures of the windows that start at the pulses ``t`` and are complete.

    Parameters
    ----------
    t : numpy.ndarray, shape (n,)
        Pulse times (s), non-decreasing.
    v : numpy.ndarray, shape (3, n)
        Per pulse: ∫i²dt (mA²·µs), |charge| (µC), signed net charge (µC).
    window_s : float
        Window length (s); a pulse at ``t_i + window_s`` (to 1 ns) lies in the next window.
    first : int
        Windows starting before pulse ``first`` are left out (they still count for ``done``).
    final : bool
        Whether no later pulse will come: every window is then complete.
    bands : numpy.ndarray of int8, shape (n,), (n - 1,) or (0,)
        Rate band of each pulse whose band is settled (the last one's may wait for its
        next neighbour: no complete window then holds it), or empty where one band holds
        for all.
    top : numpy.ndarray, shape (3,)
        Raised in place to the highest window sum of each row.
    band_top : numpy.ndarray, shape (n_bands,)
        Raised in place to the highest window ∫i²dt among windows holding a pulse of
        each band (only with ``bands``).

    Returns
    -------
    done : int
        The windows starting at pulses ``0 .. done - 1`` are complete (a later pulse lies
        at or past their end, or ``final``); those from ``done`` on wait for more pulses.
    min_net : float
        The lowest window net charge among the complete windows from ``first`` on (inf if none).
    """
    n = t.shape[0]
    n_banded = bands.shape[0]  # the pulses whose band is settled (all but the last until the final chunk)
    use_bands = n_banded > 0
    n_bands = band_top.shape[0]
    at_end = np.zeros(n_bands, np.int64)  # pulses of each band before the window's end
    at_start = np.zeros(n_bands, np.int64)  # and before its start
    e0 = e1 = e2 = 0.0  # prefix sums up to the window's end (exclusive)
    s0 = s1 = s2 = 0.0  # and up to its start
    min_net = np.inf
    j = 0
    for i in range(n):
        edge = t[i] + window_s - 1e-9
        while j < n and t[j] < edge:
            e0 += v[0, j]
            e1 += v[1, j]
            e2 += v[2, j]
            if j < n_banded:
                at_end[bands[j]] += 1
            j += 1
        if j == n and not final:
            return i, min_net
        if i >= first:
            d0 = e0 - s0
            d1 = e1 - s1
            d2 = e2 - s2
            if d0 > top[0]:
                top[0] = d0
            if d1 > top[1]:
                top[1] = d1
            if d2 > top[2]:
                top[2] = d2
            if d2 < min_net:
                min_net = d2
            if use_bands:
                for b in range(n_bands):
                    if at_end[b] > at_start[b] and d0 > band_top[b]:
                        band_top[b] = d0
        s0 += v[0, i]
        s1 += v[1, i]
        s2 += v[2, i]
        if i < n_banded:
            at_start[bands[i]] += 1
    return n, min_net


@njit(cache=True, nogil=True)
def bound_window_pass(t: np.ndarray, v: np.ndarray, extra: np.ndarray, window_s: float, edges: np.ndarray,
                      widen: bool, top: np.ndarray, band_top: np.ndarray) -> float:
    """Figures of the windows ``[t_i, t_i + window_s + extra_i)`` of one whole chunk of bounding pulses: those of
    ``_OutputAccumulator._windows_by_arrays`` with ``extra_s`` (and ``_widen_bands`` where ``widen``), in one pass.

    Parameters
    ----------
    t : numpy.ndarray, shape (n,)
        Pulse times (s), non-decreasing: the whole chunk (no pulse before or after it).
    v : numpy.ndarray, shape (3, n)
        Per pulse: ∫i²dt (mA²·µs), |charge| (µC), signed net charge (µC).
    extra : numpy.ndarray, shape (n,)
        How much longer (s) the window starting at each pulse is.
    window_s : float
        Window length (s); a pulse at a window's end (to 1 ns) lies past it.
    edges : numpy.ndarray, shape (n_bands - 1,)
        The shortest interval (s) of each rate band but the fastest, decreasing: a pulse lies in as many bands past
        the first as edges lie above its shorter interval to a neighbour (an end's pulse: its one interval).
    widen : bool
        Whether a pulse stands for pulses whose rate may differ a little (``_widen_bands``): where its interval,
        widened to its smoothly changing neighbours' and by 0.1 %, reaches across an edge, both bands of the edge
        are raised to the highest window holding it.
    top : numpy.ndarray, shape (3,)
        Raised in place to the highest window sum of each row.
    band_top : numpy.ndarray, shape (n_bands,)
        Raised in place to the highest window ∫i²dt among windows holding a pulse of each band.

    Returns
    -------
    float
        The lowest window net charge (inf without pulses).
    """
    n = t.shape[0]
    n_edges = edges.shape[0]
    c = np.zeros((3, n + 1))
    local = np.empty(n)
    for i in range(n):
        for r in range(3):
            c[r, i + 1] = c[r, i] + v[r, i]
        before = t[i] - t[i - 1] if i > 0 else np.inf
        after = t[i + 1] - t[i] if i < n - 1 else np.inf
        local[i] = min(before, after)
    # per band, and per edge that a widened interval reaches across, how many such pulses lie before each
    in_band = np.zeros((n_edges + 1, n + 1), np.int64)
    across = np.zeros((n_edges, n + 1), np.int64)
    for i in range(n):
        band = 0
        for e in range(n_edges):
            if local[i] < edges[e]:
                band += 1
        for b in range(n_edges + 1):
            in_band[b, i + 1] = in_band[b, i] + (1 if b == band else 0)
        lo = hi = local[i]
        if widen and n >= 3:
            for nb in (local[i + 1] if i < n - 1 else local[n - 1], local[i - 1] if i > 0 else local[0]):
                if nb <= local[i] * 1.5 and nb >= local[i] / 1.5:
                    lo = min(lo, nb)
                    hi = max(hi, nb)
        lo, hi = lo * (1 - 1e-3), hi * (1 + 1e-3)
        for e in range(n_edges):
            near = widen and n >= 3 and lo < edges[e] and hi >= edges[e]
            across[e, i + 1] = across[e, i] + (1 if near else 0)
    min_net = np.inf
    j0 = 0  # the first pulse at or past t_i + window_s (to 1 ns): it never moves back
    for i in range(n):
        while j0 < n and t[j0] < t[i] + window_s - 1e-9:
            j0 += 1
        edge = t[i] + window_s + extra[i] - 1e-9
        j = j0 if extra[i] >= 0 else np.searchsorted(t, edge)  # and on over the window's extra length
        while j < n and t[j] < edge:
            j += 1
        d0 = c[0, j] - c[0, i]
        d1 = c[1, j] - c[1, i]
        d2 = c[2, j] - c[2, i]
        top[0] = max(top[0], d0)
        top[1] = max(top[1], d1)
        top[2] = max(top[2], d2)
        min_net = min(min_net, d2)
        for b in range(n_edges + 1):
            if in_band[b, j] > in_band[b, i]:
                band_top[b] = max(band_top[b], d0)
        for e in range(n_edges):
            if across[e, j] > across[e, i]:
                band_top[e] = max(band_top[e], d0)
                band_top[e + 1] = max(band_top[e + 1], d0)
    return min_net


@njit(cache=True, nogil=True, inline="always")
def _cycle_phase(x: float, cycle_s: float, snap_s: float) -> float:
    phase = x - math.floor(x / cycle_s) * cycle_s
    if phase < snap_s or cycle_s - phase < snap_s:
        return 0.0
    return phase


@njit(cache=True, nogil=True, inline="always")
def _ramp(x: float, ramp_s: float) -> float:
    r = x / max(ramp_s, 1e-300)
    return min(max(r, 0.0), 1.0)


@njit(cache=True, nogil=True)
def sweep_factor_into(t: np.ndarray, low: float, period_s: float, shift_s: float, triangle: bool, snap_s: float,
                      out: np.ndarray) -> None:
    """``_timing.sweep_factor`` of a sweep at times ``t`` (s), into ``out``: the same numbers, bit for bit."""
    for i in range(t.shape[0]):
        x = _cycle_phase(t[i] + shift_s, period_s, snap_s) / period_s
        if triangle:
            x = 1.0 - abs(2.0 * x - 1.0)
        out[i] = low + (1.0 - low) * x


@njit(cache=True, nogil=True, inline="always")
def _segment_of(starts: np.ndarray, x: float) -> int:
    """The last of the increasing ``starts`` at or before ``x`` (0 before the first), as ``_timing._segment``."""
    j = 0
    while j < starts.shape[0] - 1 and x >= starts[j + 1]:
        j += 1
    return j


@njit(cache=True, nogil=True)
def piecewise_time_of_into(k: np.ndarray, phi_period: float, period: float, phi0: np.ndarray, tau0: np.ndarray,
                           f0: np.ndarray, slope: np.ndarray, out: np.ndarray) -> None:
    """``_timing.PiecewiseClock.time_of`` of events ``k``, into ``out``: the same numbers, bit for bit."""
    for i in range(k.shape[0]):
        m = math.floor(k[i] / phi_period)
        r = k[i] - m * phi_period
        j = _segment_of(phi0, r)
        d = r - phi0[j]
        u = 2.0 * d / (f0[j] + math.sqrt(max(f0[j] * f0[j] + 2.0 * slope[j] * d, 0.0)))
        out[i] = m * period + tau0[j] + u


@njit(cache=True, nogil=True)
def piecewise_phase_into(t: np.ndarray, phi_period: float, period: float, phi0: np.ndarray, tau0: np.ndarray,
                         f0: np.ndarray, slope: np.ndarray, out: np.ndarray) -> None:
    """``_timing.PiecewiseClock.phase`` at times ``t`` (s), into ``out``: the same numbers, bit for bit."""
    for i in range(t.shape[0]):
        m = math.floor(t[i] / period)
        tau = t[i] - m * period
        j = _segment_of(tau0, tau)
        u = tau - tau0[j]
        out[i] = m * phi_period + phi0[j] + f0[j] * u + 0.5 * slope[j] * u * u


@njit(cache=True, nogil=True)
def duty_envelope_into(t: np.ndarray, ramp_up_s: float, ramp_down_s: float, on_s: float, off_s: float,
                       offset_s: float, periodic_offset: bool, snap_s: float, out: np.ndarray) -> None:
    """``_timing.duty_envelope`` with a duty cycle, at times ``t`` (s), into ``out``: the same numbers, bit for
    bit."""
    cycle = on_s + off_s
    for i in range(t.shape[0]):
        tau = t[i] - offset_s
        phase = _cycle_phase(tau, cycle, snap_s)
        if abs(phase - on_s) < snap_s:
            phase = on_s
        if phase < on_s and (periodic_offset or tau >= 0):
            up = _ramp(phase, ramp_up_s) if ramp_up_s > 0 else 1.0
            down = _ramp(on_s - phase, ramp_down_s) if ramp_down_s > 0 else 1.0
            out[i] = min(up, down)
        else:
            out[i] = 0.0


@njit(cache=True, nogil=True)
def terms_into(a1: np.ndarray, a2: np.ndarray, w1: np.ndarray, w2: np.ndarray, kq: float, ke: float,
               v: np.ndarray, at: int, stats: np.ndarray) -> None:
    """The per-pulse terms of ``_dose.pulse_terms`` (one phase shape for all: its charge and ∫i²dt factors
    ``kq``, ``ke``) written into ``v[:, at:]`` as (∫i²dt, |charge|, net charge), and their figures.

    ``stats`` receives: highest peak |I| (mA), highest phase |charge| (µC), the net charge of largest
    magnitude (the first such), the sums of net charge, ∫i²dt and |charge|, and the highest ∫i²dt.
    """
    peak = 0.0  # (magnitudes: the highest of none is 0)
    max_q = 0.0
    largest_net = 0.0
    net_extreme = 0.0
    sum_net = 0.0
    sum_i2t = 0.0
    sum_absq = 0.0
    max_i2t = -np.inf
    for i in range(a1.shape[0]):
        x1 = a1[i]
        x2 = a2[i]
        s1 = x1 * w1[i] * kq * 1e-3
        s2 = x2 * w2[i] * kq * 1e-3
        i2t = (x1 * x1 * w1[i] + x2 * x2 * w2[i]) * ke
        net = s1 + s2
        q1 = abs(s1)
        q2 = abs(s2)
        peak = max(peak, max(abs(x1), abs(x2)))
        max_q = max(max_q, max(q1, q2))
        max_i2t = max(max_i2t, i2t)
        if abs(net) > largest_net:  # the first of the largest magnitude
            largest_net = abs(net)
            net_extreme = net
        sum_net += net
        sum_i2t += i2t
        sum_absq += q1 + q2
        v[0, at + i] = i2t
        v[1, at + i] = q1 + q2
        v[2, at + i] = net
    stats[0] = peak
    stats[1] = max_q
    stats[2] = net_extreme
    stats[3] = sum_net
    stats[4] = sum_i2t
    stats[5] = sum_absq
    stats[6] = max_i2t


@njit(cache=True, nogil=True)
def ramp_envelope_into(t: np.ndarray, session_s: float, ramp_up_s: float, ramp_down_s: float, offset_s: float,
                       out: np.ndarray) -> None:
    """``_timing.duty_envelope`` without a duty cycle (the ramps open and close the session), at times ``t`` (s),
    into ``out``: the same numbers, bit for bit."""
    for i in range(t.shape[0]):
        tau = t[i] - offset_s
        if ramp_up_s > 0:
            up = _ramp(tau, ramp_up_s)
        else:
            up = 1.0 if tau >= 0 else 0.0
        down = _ramp(session_s - t[i], ramp_down_s) if ramp_down_s > 0 else 1.0
        out[i] = min(up, down)


@njit(cache=True, nogil=True)
def neighbour_intervals(t: np.ndarray, g0: float, m: np.ndarray, k: int, end: int) -> tuple[float, float, float]:
    """The shorter interval to a neighbour of each pulse ``t`` (s) into ``m[k:]``, as ``_dose`` reckons it: the
    first pulse's previous interval is ``g0``, the last one's next is not known yet (its previous one stands).

    Returns the shortest interval between the pulses ``t`` (inf for fewer than two), and the longest and
    shortest of ``m[:end]``.
    """
    n = t.shape[0]
    d_min = np.inf
    hi = -np.inf
    lo = np.inf
    for i in range(min(k, end)):  # (the pending pulse's, set by the caller)
        hi = max(hi, m[i])
        lo = min(lo, m[i])
    before = g0
    for i in range(n):
        if i < n - 1:
            after = t[i + 1] - t[i]
            d_min = min(d_min, after)
            x = min(before, after)
            before = after
        else:
            x = before  # the last pulse's next neighbour is not known: its previous interval stands
        m[k + i] = x
        if k + i < end:
            hi = max(hi, x)
            lo = min(lo, x)
    return d_min, hi, lo


@njit(cache=True, nogil=True)
def corners_up_to_into(corners: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    """How many of the increasing ``corners`` lie at or before each of the increasing times ``x``, into ``out``: as
    ``searchsorted(corners, x, side="right")``, in one pass over both (the count never moves back)."""
    j = 0
    m = corners.shape[0]
    for i in range(x.shape[0]):
        while j < m and corners[j] <= x[i]:
            j += 1
        out[i] = j
