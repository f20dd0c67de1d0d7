"""Sums of powers of the events' places in a span, in closed form: the session sums of slow levels.

Between two corners of slow levels (a ramp's ends, an on/off edge, a sweep's turn) every
level factor is linear in time, so a pulse's terms there are polynomials of degree at
most 5 in its place ``s = (t - a) / (b - a)`` in the span ``[a, b)``. Their sums over the
span's events are those polynomials' coefficients times the span's *moments*
``Σ s**q`` (q = 0 .. 5), each event weighted (a carrier cycle by its length). This
module gives the moments of two kinds of clock:

* :func:`periodic_moments`: events ``m P + τ_p`` that repeat every ``P`` (a constant rate,
  a random rate's repeating sequence, the pulses of bursts at either): the whole periods
  of a span by Faulhaber's formulas over the places' power sums, the first and last
  (partial) periods event by event, every term positive (no cancellation).
* :func:`swept_moments`: events of a rate that changes linearly over the span (a slow
  frequency sweep): the Euler-Maclaurin formula, ``∫ s**q f dt`` in closed form plus end
  corrections of order 1 and 3 from seven events at each end (exact for a polynomial of
  degree 5 in the event's index; what it leaves out is of the order of the rate's change from
  one event to the next, to the sixth); spans of fewer than
  :data:`MIN_EM_EVENTS` events are summed event by event.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DEGREE", "MIN_EM_EVENTS", "EM_MAX_CHANGE", "power_sums", "periodic_moments", "swept_moments", "poly_product",
           "slow_rate_hz"]

#: the highest power of a place whose sum is taken (∫i²dt: amplitude² × width, each of two linear factors)
DEGREE = 5
#: a span of a swept rate with fewer events than this is summed event by event
MIN_EM_EVENTS = 16
#: and one where the rate changes by more than this fraction of itself from one event to the next (its events are
#: then too unlike their neighbours for the end corrections: a sweep's slow end, at most ``4 / EM_MAX_CHANGE`` events
#: once its spans are cut where the rate crosses twice ``sqrt(slope / EM_MAX_CHANGE)``, see :func:`slow_rate_hz`)
EM_MAX_CHANGE = 1e-3

_BINOMIAL = np.array([[math.comb(k, i) for i in range(DEGREE + 1)] for k in range(DEGREE + 1)], dtype=float)


def power_sums(n: np.ndarray, degree: int = DEGREE) -> np.ndarray:
    """``Σ_{m=0}^{n-1} m**i`` for i = 0 .. ``degree`` (at most 5), one row per ``n`` (0 where ``n`` is 0).

    Examples
    --------
    >>> power_sums(np.array([4.0]))[0].tolist()
    [4.0, 6.0, 14.0, 36.0, 98.0, 276.0]
    """
    n = np.maximum(np.asarray(n, dtype=float), 0.0)
    N = np.maximum(n - 1.0, 0.0)  # sums of m**i over m = 1 .. N (and m = 0 for i = 0)
    S = [n, N * (N + 1) / 2, N * (N + 1) * (2 * N + 1) / 6, (N * (N + 1) / 2) ** 2,
         N * (N + 1) * (2 * N + 1) * (3 * N * N + 3 * N - 1) / 30, N * N * (N + 1) ** 2 * (2 * N * N + 2 * N - 1) / 12]
    return np.stack(S[:degree + 1], axis=-1)


def poly_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row by row, the coefficients (lowest first) of the product of two polynomials.

    Examples
    --------
    >>> poly_product(np.array([[1.0, 1.0]]), np.array([[1.0, -1.0]])).tolist()
    [[1.0, 0.0, -1.0]]
    """
    out = np.zeros((a.shape[0], a.shape[1] + b.shape[1] - 1))
    for i in range(a.shape[1]):
        out[:, i:i + b.shape[1]] += a[:, i:i + 1] * b
    return out


def periodic_moments(period_s: float, tau_s: np.ndarray, weights: np.ndarray, a: np.ndarray, b: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The moments of events that repeat every ``period_s`` over the spans ``[a, b)``.

    Parameters
    ----------
    period_s : float
        The period ``P`` (s).
    tau_s : ndarray, shape (K,)
        The events of a period, increasing, in ``[0, P)`` (s): the events are ``m P + τ_p``.
    weights : ndarray, shape (W, K)
        Weights of each event of a period (a row of ones counts them).
    a, b : ndarray, shape (C,)
        The spans (s), ``a < b``.

    Returns
    -------
    moments : ndarray, shape (W, C, 6)
        ``Σ w s**q`` over the events in each span, ``s = (t - a) / (b - a)``, q = 0 .. 5.
    first_s : ndarray, shape (C,)
        The first event in each span (s; ``inf`` where it has none).

    Examples
    --------
    >>> m, first = periodic_moments(0.25, np.array([0.0]), np.ones((1, 1)), np.array([0.1]), np.array([1.1]))
    >>> m[0, 0, :2].round(12).tolist(), first.tolist()
    ([4.0, 2.1], [0.25])
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    span = b - a
    q = np.arange(DEGREE + 1)
    m_a, m_b = np.floor(a / period_s), np.floor(b / period_s)
    out = np.zeros((weights.shape[0], a.shape[0], DEGREE + 1))
    first = np.full(a.shape, np.inf)
    # the first and last periods: the places in [a - mP, b - mP) of each
    for m, own, lo, hi in ((m_a, np.ones(a.shape, dtype=bool), a - m_a * period_s, np.minimum(b - m_a * period_s, period_s)),
                           (m_b, m_b > m_a, np.zeros(a.shape), b - m_b * period_s)):
        _partial_period(out, first, m * period_s, lo, hi, own, a, span, tau_s, weights)
    # the whole periods between: m = m_a + 1 .. m_b - 1, their events at s = α + j β + τ_p / (b - a), all terms >= 0
    rows = np.flatnonzero(m_b - m_a - 1.0 > 0)
    if rows.shape[0]:
        n = m_b[rows] - m_a[rows] - 1.0
        L = span[rows]
        alpha = ((m_a[rows] + 1.0) * period_s - a[rows]) / L
        beta = period_s / L
        first[rows] = np.minimum(first[rows], (m_a[rows] + 1.0) * period_s + tau_s[0])
        tau_q = (tau_s[None, :] ** q[:, None]) @ weights.T  # (6, W): Σ_p τ_p**q w_p
        # Σ_p (α + τ_p / L)**r w_p = Σ_i C(r, i) α**(r - i) L**-i Σ_p τ_p**i w_p
        sig = np.zeros((weights.shape[0], rows.shape[0], DEGREE + 1))
        for r in q:
            for i in range(r + 1):
                sig[:, :, r] += _BINOMIAL[r, i] * (alpha ** (r - i) * L ** -float(i))[None, :] * tau_q[i][:, None]
        sums = power_sums(n)  # Σ_j j**i over the whole periods
        for k in q:
            for i in range(k + 1):
                out[:, rows, k] += (_BINOMIAL[k, i] * beta ** i * sums[:, i])[None, :] * sig[:, :, k - i]
    return out, first


#: a period's places are summed in blocks of at least this many (each block's own powers about its first place, all
#: terms >= 0), those of a block only partly in a span one by one; a period of ``K`` places takes blocks of about
#: ``sqrt(K / 2)`` (the fewest blocks and places one by one together), a power of two
_BLOCK = 64


def _block_of(places: int) -> int:
    """The block size of a period of ``places`` places (see ``_BLOCK``)."""
    return max(_BLOCK, 1 << max(0, round(math.log2(max(places, 1) / 2.0) / 2.0)))


def _partial_period(out: np.ndarray, first: np.ndarray, start: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    own: np.ndarray, a: np.ndarray, span: np.ndarray, tau: np.ndarray, weights: np.ndarray) -> None:
    """Add to ``out`` the moments of the events ``start + τ_p`` with ``τ_p`` in ``[lo, hi)`` (per span, where
    ``own``), and lower ``first`` to the first of them: the places of whole blocks by their power sums about the
    block's first place, the others one by one."""
    size = _block_of(tau.shape[0])  # (this period's blocks)
    q = np.arange(DEGREE + 1)
    i_lo = np.where(own, np.searchsorted(tau, lo, side="left"), 0)
    i_hi = np.where(own, np.searchsorted(tau, hi, side="left"), 0)
    has = i_hi > i_lo
    first[has] = np.minimum(first[has], start[has] + tau[i_lo[has]])
    n_blocks = math.ceil(tau.shape[0] / size)
    b_lo, b_hi = -(-i_lo // size), i_hi // size  # the whole blocks [b_lo, b_hi)
    whole = has & (b_hi > b_lo)
    # the places outside whole blocks: [i_lo, b_lo B) and [b_hi B, i_hi), or [i_lo, i_hi) within two blocks
    ranges = [(i_lo, np.where(whole, b_lo * size, i_hi)), (np.where(whole, b_hi * size, i_hi), i_hi)]
    j = np.arange(2 * size)
    for r0, r1 in ranges:
        rows = np.flatnonzero(has & (r1 > r0))
        if not rows.shape[0]:
            continue
        idx = r0[rows][:, None] + j[None, :]
        keep = idx < r1[rows][:, None]
        idx = np.where(keep, idx, 0)
        s = np.where(keep, (start[rows][:, None] + tau[idx] - a[rows][:, None]) / span[rows][:, None], 0.0)
        term = keep.astype(float)
        for k in q:
            out[:, rows, k] += np.einsum("rj,wrj->wr", term, weights[:, idx])
            term = term * s
    rows = np.flatnonzero(whole)
    if not rows.shape[0]:
        return
    starts = np.arange(n_blocks) * size
    origin = tau[starts]
    local = tau - np.repeat(origin, np.diff(np.append(starts, tau.shape[0])))
    block = np.add.reduceat(weights[:, :, None] * (local[:, None] ** q[None, :])[None, :, :], starts, axis=1)  # (W, nb, 6)
    blocks = np.arange(n_blocks)
    inside = (blocks[None, :] >= b_lo[rows][:, None]) & (blocks[None, :] < b_hi[rows][:, None])
    L = span[rows][:, None]
    beta = np.where(inside, (start[rows][:, None] + origin[None, :] - a[rows][:, None]) / L, 0.0)  # (rows, nb) >= 0
    for k in q:
        for r in range(k + 1):
            coef = np.where(inside, _BINOMIAL[k, r] * beta ** (k - r) / L ** r, 0.0)
            out[:, rows, k] += np.einsum("rb,wb->wr", coef, block[:, :, r])


def swept_moments(time_of, phase, rate_at_s: np.ndarray, slope_hz_per_s: np.ndarray, a: np.ndarray, b: np.ndarray,
                  *, cycle_weight_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The moments of a clock's events over spans ``[a, b)`` in each of which its rate is linear.

    Parameters
    ----------
    time_of, phase : callable
        The clock: the time (s) of event ``k`` (a float array), and the clock's phase at times (events at whole
        phases).
    rate_at_s, slope_hz_per_s : ndarray, shape (C,)
        The rate at ``a`` (Hz) and its slope (Hz/s) in each span.
    a, b : ndarray, shape (C,)
        The spans (s).
    cycle_weight_s : float, optional
        Weigh each event by the time to the next, over this (a carrier cycle's length against the longest);
        unweighted without.

    Returns
    -------
    moments : ndarray, shape (C, 6)
        ``Σ w s**q`` over the events in each span, ``s = (t - a) / (b - a)``.
    count : ndarray, shape (C,)
        The events in each span.
    first_s : ndarray, shape (C,)
        The first event in each span (s; ``inf`` where it has none).

    Notes
    -----
    Euler-Maclaurin: ``Σ_{k0}^{k1} G(k) = ∫ G dk + (G(k0) + G(k1)) / 2 + (G'(k1) - G'(k0)) / 12
    - (G'''(k1) - G'''(k0)) / 720 + R``, ``G(k) = s(t_k)**q w_k``; ``∫ G dk = ∫ s**q w f dt`` over
    ``[t_k0, t_k1]`` (``f`` the rate, linear: in closed form; ``w f`` of a weighted cycle is
    ``2 / (1 + sqrt(1 + 2 f' / f**2))``, nearly 1: by Gauss-Legendre),
    derivatives from one-sided seven-point differences of the events at each end.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    span = b - a
    q = np.arange(DEGREE + 1)
    k0 = np.ceil(phase(a) - 1e-9)
    k0 = np.where(time_of(k0) < a, k0 + 1.0, k0)
    k0 = np.where(time_of(k0 - 1.0) >= a, k0 - 1.0, k0)
    k1 = np.ceil(phase(b) - 1e-9)
    k1 = np.where(time_of(k1) < b, k1 + 1.0, k1)
    k1 = np.where(time_of(k1 - 1.0) >= b, k1 - 1.0, k1) - 1.0  # the last event before b
    count = np.maximum(k1 - k0 + 1.0, 0.0)
    first = np.where(count > 0, time_of(k0), np.inf)
    out = np.zeros((a.shape[0], DEGREE + 1))

    def g(k: np.ndarray, rows: np.ndarray, smooth: bool = False) -> np.ndarray:
        """G(k) for each power, (..., 6) (``rows``: each k's span); ``smooth``: a cycle's length as the span's linear
        rate sets it (the last cycle of a span at a corner of the profile ends past it, at another rate)."""
        t = time_of(k.ravel()).reshape(k.shape)
        shape = rows.shape + (1,) * (k.ndim - rows.ndim)
        s = (t - a[rows].reshape(shape)) / span[rows].reshape(shape)
        if cycle_weight_s is None:
            w = np.ones(k.shape)
        elif smooth:  # the root of f dt + f' dt**2 / 2 = 1 (f the rate at t)
            f = rate_at_s[rows].reshape(shape) + slope_hz_per_s[rows].reshape(shape) * (t - a[rows].reshape(shape))
            w = 2.0 / (f + np.sqrt(np.maximum(f * f + 2.0 * slope_hz_per_s[rows].reshape(shape), 0.0))) / cycle_weight_s
        else:
            w = (time_of(k.ravel() + 1.0).reshape(k.shape) - t) / cycle_weight_s
        return s[..., None] ** q * w[..., None]

    lowest = np.maximum(np.minimum(rate_at_s, rate_at_s + slope_hz_per_s * span), 1e-300)
    few = (count > 0) & ((count < MIN_EM_EVENTS) | (np.abs(slope_hz_per_s) > EM_MAX_CHANGE * lowest * lowest))
    if few.any():  # event by event
        rows = np.flatnonzero(few)
        n = count[rows].astype(np.int64)
        row_of = np.repeat(np.arange(rows.shape[0]), n)
        k = k0[rows][row_of] + (np.arange(row_of.shape[0]) - np.repeat(np.cumsum(n) - n, n))
        terms = g(k, rows[row_of])
        np.add.at(out, rows[row_of], terms)
    many = (count > 0) & ~few
    if many.any():
        rows = np.flatnonzero(many)
        j = np.arange(7, dtype=float)
        k_head, k_tail = k0[rows][:, None] + j[None, :], k1[rows][:, None] - j[None, ::-1]
        head, tail = g(k_head, rows, smooth=True), g(k_tail, rows, smooth=True)  # G(k0) .. G(k0 + 6), G(k1 - 6) .. G(k1)
        # what the cycles at either end add to their smooth lengths (0 but where one ends past a corner)
        extra = (g(k_head, rows) - head).sum(axis=1) + (g(k_tail, rows) - tail).sum(axis=1)
        # one-sided differences exact up to degree 6 (a pulse's terms are of degree 5 in its place)
        d1 = np.array([-147.0, 360.0, -450.0, 400.0, -225.0, 72.0, -10.0]) / 60.0
        d3 = np.array([-49.0 / 8.0, 29.0, -461.0 / 8.0, 62.0, -307.0 / 8.0, 13.0, -15.0 / 8.0])
        g1_head, g3_head = np.einsum("j,rjq->rq", d1, head), np.einsum("j,rjq->rq", d3, head)
        g1_tail, g3_tail = -np.einsum("j,rjq->rq", d1, tail[:, ::-1]), -np.einsum("j,rjq->rq", d3, tail[:, ::-1])
        t0, t1 = time_of(k0[rows]), time_of(k1[rows])
        s0, s1 = (t0 - a[rows]) / span[rows], (t1 - a[rows]) / span[rows]
        f_a, slope, L = rate_at_s[rows], slope_hz_per_s[rows], span[rows]
        p1 = (s1[:, None] ** (q + 1) - s0[:, None] ** (q + 1)) / (q + 1)
        if cycle_weight_s is None:  # ∫ s**q f dt, f = f_a + slope L s
            p2 = (s1[:, None] ** (q + 2) - s0[:, None] ** (q + 2)) / (q + 2)
            integral = L[:, None] * (f_a[:, None] * p1 + (slope * L)[:, None] * p2)
        else:  # ∫ s**q (w f) dt, w f = 2 / (1 + sqrt(1 + 2 f' / f**2)) (nearly 1)
            integral = (L / cycle_weight_s)[:, None] * _cycle_integral(f_a, slope, L, s0, s1)
        out[rows] = (integral + 0.5 * (head[:, 0] + tail[:, -1]) + (g1_tail - g1_head) / 12.0
                     - (g3_tail - g3_head) / 720.0 + extra)
    return out, count, first


#: pieces of a span over which a carrier cycle's length is integrated hold rates within this ratio (8-point
#: Gauss-Legendre then meets its 1 / f**2 to rounding)
_PIECE_RATIO = 1.2


def _cycle_integral(f_a: np.ndarray, slope: np.ndarray, span: np.ndarray, s0: np.ndarray, s1: np.ndarray) -> np.ndarray:
    """``∫ s**q κ ds`` over ``[s0, s1]`` (q = 0 .. 5, one row per span), ``κ = 2 / (1 + sqrt(1 + 2 f' / f**2))`` for
    the rate ``f = f_a + f' L s`` (Hz; ``f'`` the ``slope``, Hz/s, ``L`` the ``span``, s): 8-point Gauss-Legendre
    over pieces whose rates lie within ``_PIECE_RATIO`` of one another (geometric in the rate)."""
    q = np.arange(DEGREE + 1)
    change = slope * span
    fs0, fs1 = f_a + change * s0, f_a + change * s1
    ratio = np.maximum(fs0, fs1) / np.maximum(np.minimum(fs0, fs1), 1e-300)
    pieces = int(min(256, max(1, math.ceil(math.log(float(ratio.max())) / math.log(_PIECE_RATIO)))))
    j = np.arange(pieces + 1, dtype=float) / pieces
    geometric = fs0[:, None] * (fs1 / fs0)[:, None] ** j[None, :]
    moving = change != 0
    edges = np.where(moving[:, None], (geometric - f_a[:, None]) / np.where(moving, change, 1.0)[:, None],
                     s0[:, None] + (s1 - s0)[:, None] * j[None, :])
    edges[:, 0], edges[:, -1] = s0, s1
    x, wx = np.polynomial.legendre.leggauss(8)
    half = 0.5 * np.diff(edges, axis=1)  # (spans, pieces)
    s_m = (edges[:, :-1] + half)[..., None] + half[..., None] * x  # (spans, pieces, 8)
    f_m = f_a[:, None, None] + change[:, None, None] * s_m
    kappa = 2.0 / (1.0 + np.sqrt(1.0 + 2.0 * slope[:, None, None] / (f_m * f_m)))
    return np.einsum("rp,m,rpm,rpmq->rq", half, wx, kappa, s_m[..., None] ** q)


def slow_rate_hz(slope_hz_per_s: float) -> float:
    """The rate (Hz) below which a rate changing by ``slope_hz_per_s`` changes by more than ``EM_MAX_CHANGE`` of
    itself from one event to the next: where a span of a swept rate is cut.

    Examples
    --------
    >>> slow_rate_hz(9.0)
    94.86832980505137
    """
    return math.sqrt(abs(slope_hz_per_s) / EM_MAX_CHANGE)
