"""The moments of a clock's events over spans (``waveform._moments``): each against the sum over every event."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from electrostim.waveform._moments import periodic_moments, power_sums, swept_moments
from electrostim.waveform._timing import PiecewiseClock, RandomClock, profile_segments


def _spans(draw, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
    """Spans in [t0, t1): long (many periods), short (within one), and edges anywhere."""
    edges = np.unique(np.array(draw(st.lists(st.floats(t0, t1), min_size=2, max_size=8))))
    keep = np.concatenate([[True], np.diff(edges) > 1e-9])  # (spans of at least a nanosecond, as corners make)
    edges = edges[keep]
    return edges[:-1], edges[1:]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_property_the_moments_of_repeating_events_are_their_sums(data):
    """Events that repeat (a random rate's sequence, bursts at a place each): whole periods by Faulhaber's formulas,
    the first and last period event by event; each moment, weighted or not, equals the sum over every event."""
    low, high = data.draw(st.sampled_from([(5.0, 40.0), (700.0, 1300.0), (10000.0, 20000.0)]))
    clock = RandomClock(low, high, data.draw(st.integers(0, 5)))
    a, b = _spans(data.draw, 0.0, 3.0 * clock.period + 7.3)
    weights = np.stack([np.ones(clock.CYCLE), clock.intervals / clock.intervals.max()])
    moments, first = periodic_moments(clock.period, clock.starts, weights, a, b)
    for c in range(a.shape[0]):
        k = clock.indices(a[c], b[c])
        t = clock.time_of(k)
        s = (t - a[c]) / (b[c] - a[c])
        w = weights[:, (k % clock.CYCLE).astype(int)]
        for row in range(2):
            exact = np.array([math.fsum(s ** q * w[row]) for q in range(6)])
            assert np.allclose(moments[row, c], exact, rtol=1e-12, atol=1e-12), (c, row)
        assert first[c] == (t[0] if t.shape[0] else math.inf)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_property_the_moments_of_a_swept_rate_are_their_sums(data):
    """Events of a rate that changes linearly over a span (a slow sweep, either way, any span): Euler-Maclaurin with
    end corrections from five events at each end, or event by event for a few; within 1e-10 of the sum over every
    event, carrier cycles weighted by their length too."""
    low, high = data.draw(st.sampled_from([(2.0, 450.0), (300.0, 2000.0), (19751.0, 20000.0)]))
    period = data.draw(st.floats(100.0, 3600.0))
    clock = PiecewiseClock(profile_segments(low, high, period, data.draw(st.sampled_from(["triangle", "sawtooth"]))))
    corners = np.concatenate([clock.tau0, clock.tau0 + clock.period])
    # spans within one segment of the profile (where the rate is linear)
    j = data.draw(st.integers(0, clock.tau0.shape[0] - 1))
    lo, hi = float(corners[j]), float(corners[j] + clock.dur[j])
    width = min(data.draw(st.sampled_from([1e-3, 0.2, 5.0, hi - lo])), 5e5 / high)  # (half a million events at most)
    start = data.draw(st.floats(lo, max(lo, hi - width)))
    a, b = np.array([start]), np.array([min(hi, start + width)])
    quarter = 0.25 * (b - a)
    r1, r2 = clock.rate(a + quarter), clock.rate(b - quarter)
    slope = (r2 - r1) / (2.0 * quarter)
    cycle = data.draw(st.sampled_from([None, 1.0 / low]))
    moments, count, _ = swept_moments(clock.time_of, clock.phase, r1 - slope * quarter, slope, a, b, cycle_weight_s=cycle)
    k = clock.indices(a[0], b[0])
    t = clock.time_of(k)
    s = (t - a[0]) / (b[0] - a[0])
    w = np.ones(t.shape) if cycle is None else (clock.time_of(k + 1.0) - t) / cycle
    exact = np.array([math.fsum(s ** q * w) for q in range(6)])
    assert count[0] == t.shape[0]
    # (to the rounding of the events' times, which both take: a rate's worth of an ulp of the span's end, per power)
    assert np.allclose(moments[0], exact, rtol=1e-10, atol=1e-9 + 60.0 * high * float(np.spacing(b[0]))), (moments[0], exact)


def test_power_sums_are_faulhabers():
    n = np.array([0.0, 1.0, 7.0, 1e6])
    for row, m in zip(power_sums(n), n):
        exact = [math.fsum(float(j) ** i for j in range(int(m))) for i in range(6)] if m < 100 else None
        if exact is not None:
            assert row.tolist() == exact
    assert power_sums(np.array([1e6]))[0, 5] == __import__("pytest").approx((1e6 - 1) ** 6 / 6, rel=1e-5)


@pytest.mark.parametrize("places", [5000, 40960, 300000])
def test_a_long_period_s_places_are_summed_in_blocks_of_their_own_size(places):
    """A period of many places (a premodulated sweep's carrier cycles: 720 000) is summed in blocks of about
    sqrt(places / 2), not 64: the moments are those of every event."""
    rng = np.random.default_rng(places)
    period = 7.3
    tau = np.sort(rng.uniform(0.0, period, places))
    weights = rng.uniform(0.5, 1.5, (2, places))
    a, b = np.array([0.37, 12.1, 3.0]), np.array([9.91, 40.7, 3.01])
    moments, _ = periodic_moments(period, tau, weights, a, b)
    for i in range(3):
        k = np.arange(math.floor(a[i] / period) - 1, math.floor(b[i] / period) + 2, dtype=float)
        t = (k[:, None] * period + tau[None, :]).ravel()
        w = np.tile(weights, (1, k.shape[0]))
        inside = (t >= a[i]) & (t < b[i])
        s = (t[inside] - a[i]) / (b[i] - a[i])
        expected = np.array([[np.sum(w[r][inside] * s ** q) for q in range(6)] for r in range(2)])
        np.testing.assert_allclose(moments[:, i, :], expected, rtol=1e-10, atol=1e-9)
