"""The pulse schedule: timing, bursts, modulation, duty cycles, sequencing and chunking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import electrostim as es
from electrostim.waveform import SHAPE_SINE

from .conftest import make_program


def all_pulses(program, **kw):
    return es.Schedule(program, **kw).pulses()


def per_output(chunk, i):
    return chunk.select(chunk.output == i)


def test_constant_rate_times_are_exact():
    p = make_program({"shape": "symmetric-biphasic", "pulse_width_us": 100, "frequency_hz": 100}, duration_s=3.0)
    c = all_pulses(p)
    assert len(c) == 300
    np.testing.assert_allclose(c.time_s, np.arange(300) / 100.0, rtol=0, atol=1e-12)
    assert np.all(c.first_amplitude_ma == -20.0) and np.all(c.second_amplitude_ma == 20.0)


def test_anodic_leading_phase_and_asymmetric_balance():
    p = make_program({"shape": "asymmetric-biphasic", "pulse_width_us": 200, "second_phase_ratio": 4,
                      "frequency_hz": 50, "leading_phase": "anodic"}, duration_s=1.0)
    c = all_pulses(p)
    assert np.all(c.first_amplitude_ma == 20.0)
    np.testing.assert_allclose(c.second_amplitude_ma, -5.0)
    np.testing.assert_allclose(c.second_width_us, 800.0)


def test_bursts_seven_pulses_at_100hz_twice_a_second():
    p = es.load_program("tens-burst")
    c = per_output(es.Schedule(p).pulses(10.0, 12.0), 0)
    assert len(c) == 2 * 2 * 7
    t = c.time_s.reshape(-1, 7)
    np.testing.assert_allclose(np.diff(t, axis=1), 0.01, atol=1e-12)
    np.testing.assert_allclose(np.diff(t[:, 0]), 0.5, atol=1e-12)


def test_russian_bursts_of_carrier_cycles():
    p = es.load_program("russian-current")
    c = es.Schedule(p).pulses(4.0, 5.0)  # inside the first on-time (10 s)
    assert np.all(c.shape == SHAPE_SINE)
    assert len(c) == 50 * 25  # 50 bursts of 25 cycles of 2.5 kHz (10 ms)
    np.testing.assert_allclose(c.first_width_us, 200.0)


def test_duty_cycle_and_ramps():
    p = make_program({"shape": "symmetric-biphasic", "pulse_width_us": 250, "frequency_hz": 50},
                     duration_s=60.0, duty_cycle={"on_s": 15, "off_s": 45}, ramp_up_s=3, ramp_down_s=1)
    c = all_pulses(p)
    phase = np.mod(c.time_s, 60.0)
    assert np.all(phase < 15.0)
    amp = -c.first_amplitude_ma
    up = phase < 3.0
    np.testing.assert_allclose(amp[up], 20.0 * phase[up] / 3.0, rtol=1e-12)
    plateau = (phase >= 3.0) & (phase <= 14.0)
    np.testing.assert_allclose(amp[plateau], 20.0)
    down = phase > 14.0
    np.testing.assert_allclose(amp[down], 20.0 * (15.0 - phase[down]), rtol=1e-9)


def test_alternating_channels_never_overlap():
    p = make_program({"shape": "symmetric-biphasic", "pulse_width_us": 300, "frequency_hz": 35}, duration_s=40.0,
                     channels=2, duty_cycle={"on_s": 4, "off_s": 4}, ramp_up_s=1, ramp_down_s=1)
    data = p.model_dump(mode="python")
    data["sequencing"] = "alternating"
    p = es.validate_program(data)
    c = all_pulses(p)
    t0, t1 = c.time_s[c.output == 0], c.time_s[c.output == 1]
    assert len(t0) and len(t1)
    on0 = np.mod(t1, 8.0) < 4.0  # channel 1's pulses fall in channel 0's off-time
    assert not on0.any()
    assert np.all(np.mod(t1 - 4.0, 8.0) < 4.0)


def test_delayed_sequencing_starts_late():
    p = make_program({"shape": "symmetric-biphasic", "pulse_width_us": 300, "frequency_hz": 35}, duration_s=20.0,
                     channels=2, duty_cycle={"on_s": 5, "off_s": 5})
    data = p.model_dump(mode="python")
    data.update(sequencing="delayed", sequencing_delay_s=1.5)
    c = all_pulses(es.validate_program(data))
    assert c.time_s[c.output == 1].min() >= 1.5
    assert c.time_s[c.output == 0].min() == 0.0


def test_frequency_sweep_rates_stay_in_range_and_average():
    p = make_program({"shape": "symmetric-biphasic", "pulse_width_us": 100, "frequency_hz": 100}, duration_s=60.0,
                     modulation=[{"kind": "frequency-sweep", "low_hz": 20, "high_hz": 100, "period_s": 10}])
    c = all_pulses(p)
    rate = 1.0 / np.diff(c.time_s)
    assert rate.min() >= 20 - 1e-6 and rate.max() <= 100 + 1e-6
    # a triangle sweep fires (low + high) / 2 pulses per second on average: 6 periods of 10 s
    assert len(c) == pytest.approx(60 * 60, abs=1)


def test_alternating_frequency_dwells():
    p = es.load_program("tens-mixed-frequency")
    c = per_output(es.Schedule(p).pulses(30.0, 36.0), 0)
    rates = np.round(1.0 / np.diff(c.time_s), 6)
    assert set(np.unique(rates)) <= {4.0, 100.0} | set(rates[(rates > 4) & (rates < 100)])
    assert (rates == 100.0).sum() > 250 and (rates == 4.0).sum() >= 10


def test_random_frequency_reproducible_and_in_range():
    kw = dict(duration_s=30.0, modulation=[{"kind": "random-frequency", "low_hz": 50, "high_hz": 150, "seed": 7}])
    p = make_program({"shape": "symmetric-biphasic", "pulse_width_us": 100, "frequency_hz": 100}, **kw)
    a = es.Schedule(p).pulses()
    b = es.Schedule(p, chunk_s=0.37).pulses()
    np.testing.assert_array_equal(a.time_s, b.time_s)
    rate = 1.0 / np.diff(a.time_s)
    assert rate.min() >= 50 - 1e-9 and rate.max() <= 150 + 1e-9


def test_interferential_quadripolar_beat():
    p = es.load_program("ifc-knee")
    data = p.model_dump(mode="python")
    data["channels"][0]["stimulus"]["modulation"] = []  # a fixed 100 Hz beat
    c = es.Schedule(es.validate_program(data)).pulses(100.0, 101.0)
    na, nb = (c.output == 0).sum(), (c.output == 1).sum()
    assert na == 4000 and nb == 4100


def test_premodulated_envelope_follows_the_beat():
    p = make_program({"shape": "interferential", "mode": "premodulated", "carrier_frequency_hz": 4000,
                      "beat_frequency_hz": 100}, modality="interferential", duration_s=2.0)
    c = es.Schedule(p).pulses(1.0, 1.02)
    env = c.first_amplitude_ma
    # each carrier cycle takes the envelope |sin(π f_beat t)| at its middle
    np.testing.assert_allclose(env, 20.0 * np.abs(np.sin(np.pi * 100.0 * (c.time_s + 0.5 / 4000))), rtol=1e-9)
    peaks = np.nonzero((env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:]))[0]
    assert len(peaks) == 2


PROGRAMS = ["tens-burst", "russian-current", "ifc-knee", "tens-mixed-frequency", "recovery-massage",
            "nmes-quadriceps-tka", "spasm-relief"]


@pytest.mark.parametrize("pid", PROGRAMS)
def test_chunking_does_not_change_the_schedule(pid):
    p = es.load_program(pid)
    a = es.Schedule(p, chunk_s=50.0).pulses(0.0, 40.0)
    b = es.Schedule(p, chunk_s=0.731).pulses(0.0, 40.0)
    for name, x in a.to_dict().items():
        np.testing.assert_array_equal(x, getattr(b, name), err_msg=name)


@pytest.mark.parametrize("pid", PROGRAMS + ["tens-conventional", "knee-oa-tens"])
def test_pulses_on_one_output_never_overlap(pid):
    c = es.Schedule(es.load_program(pid)).pulses(0.0, 30.0)
    for i in np.unique(c.output):
        o = per_output(c, i)
        assert np.all(o.time_s[1:] >= o.end_s[:-1] - 1e-12)


@given(
    pw=st.floats(20, 500), f=st.integers(1, 400), amp=st.floats(0.5, 120), gap=st.floats(0, 100),
    ratio=st.floats(1, 8), shape=st.sampled_from(["symmetric-biphasic", "asymmetric-biphasic"]),
    sweep=st.booleans(), wsweep=st.booleans(),
)
def test_charge_balanced_pulses_have_zero_net_charge(pw, f, amp, gap, ratio, shape, sweep, wsweep):
    pulse = {"shape": shape, "pulse_width_us": pw, "interphase_gap_us": gap, "frequency_hz": f}
    if shape == "asymmetric-biphasic":
        pulse["second_phase_ratio"] = ratio
    period_us = 1e6 / f
    dur_us = pw * (1 + (ratio if shape == "asymmetric-biphasic" else 1)) + gap
    if dur_us >= 0.9 * period_us:
        return
    mod = []
    if sweep and f >= 4:
        mod.append({"kind": "amplitude-sweep", "low_percent": 30, "period_s": 1.3})
    if wsweep and f >= 3:  # (a sweep spans two intervals at least)
        mod.append({"kind": "width-sweep", "low_percent": 40, "period_s": 0.7})
    p = make_program(pulse, amplitude_ma=amp, duration_s=3.0, ramp_up_s=0.5, modulation=mod)
    c = all_pulses(p)
    q1 = c.first_amplitude_ma * c.first_width_us
    q2 = c.second_amplitude_ma * c.second_width_us
    scale = np.abs(q1) + np.abs(q2)
    assert np.all(np.abs(q1 + q2) <= 1e-12 * scale)


@given(carrier=st.floats(1000, 10000), beat=st.floats(1, 200), sweep=st.booleans())
def test_sine_cycles_are_charge_balanced(carrier, beat, sweep):
    if beat >= carrier / 4.5:
        return
    mod = [{"kind": "frequency-sweep", "low_hz": beat / 2, "high_hz": beat, "period_s": 0.3}] if sweep else []
    p = make_program({"shape": "interferential", "carrier_frequency_hz": carrier, "beat_frequency_hz": beat},
                     modality="interferential", duration_s=0.5, modulation=mod)
    c = all_pulses(p)
    net = c.first_amplitude_ma * c.first_width_us + c.second_amplitude_ma * c.second_width_us
    assert np.all(np.abs(net) <= 1e-12 * np.abs(c.first_amplitude_ma * c.first_width_us) * 2)


def test_levels_at_follow_the_ramp_and_the_duty_cycle():
    p = es.load_program("nmes-quadriceps-tka")  # 3 s ramp up, 15 s on (1 s ramp down), 45 s off
    s = es.Schedule(p, level="max")
    (level, width), = s.levels_at(1.5, window_s=0.01)
    assert level == pytest.approx(1.5 / 3.0, abs=0.01) and width == p.channels[0].stimulus.pulse.pulse_width_us
    assert s.levels_at(8.0)[0][0] == pytest.approx(1.0)
    assert s.levels_at(30.0)[0] == (0.0, 0.0)
    assert 0.05 <= s.lookahead_s <= 1.0


@given(on=st.sampled_from([0.1, 0.5, 1.0, 2.5]), off=st.sampled_from([0.05, 0.5, 1.0, 3.0]),
       rate=st.sampled_from([3.0, 50.0, 1000.0]), burst=st.booleans(),
       seq=st.sampled_from(["simultaneous", "delayed", "alternating"]),
       cuts=st.lists(st.floats(0.0, 20.0), min_size=1, max_size=8), chunk_s=st.sampled_from([0.05, 0.07, 0.1, 0.3]),
       ramps=st.booleans(), delay_s=st.sampled_from([0.1, 0.37]))
@example(on=0.1, off=0.05, rate=50.0, burst=False, seq="simultaneous", cuts=[1.0], chunk_s=0.05, ramps=False,
         delay_s=0.1)
def test_windows_skip_off_phases_but_no_pulse(on, off, rate, burst, seq, cuts, chunk_s, ramps, delay_s):
    """A window's events are computed only from its first on phase to the end of its last (off phases hold no
    pulse): any cutting of the session gives the pulses of the whole, on every channel and sequencing. The kind
    found: a window ending a rounding error past the start of an on phase (chunks of 0.07 s against a 0.3 s
    cycle) lost the pulse there."""
    extra = {"burst": {"pulses_per_burst": 3, "burst_frequency_hz": min(rate, 10.0)}} if burst else {}
    assume(min(on, off) * (min(rate, 10.0) if burst else rate) >= 1.0)  # (on and off times hold an interval)
    pulse = {"shape": "symmetric-biphasic", "pulse_width_us": 100, "frequency_hz": 100.0 if burst else rate}
    ramp = on / 4 if ramps else 0.0  # (a ramp starts an on phase at 0: no pulse on its first instant)
    p = make_program(pulse, duration_s=20.0, channels=2, duty_cycle={"on_s": on, "off_s": off}, ramp_up_s=ramp,
                     ramp_down_s=ramp, **extra)
    if seq != "simultaneous":
        data = p.model_dump(mode="python")
        data.update(sequencing=seq, sequencing_delay_s=delay_s)
        p = es.validate_program(data)
    gens = es.Schedule(p)._generators()
    grid = [k * chunk_s for k in range(1, math.ceil(20.0 / chunk_s - 1e-9))]  # the edges of chunks, as streamed
    for g in gens:
        whole = g.window(0.0, 20.0)
        assert sum(len(g.window(a, b)) for a, b in zip([0.0, *grid], [*grid, 20.0], strict=True)) == len(whole)
    edges = [0.0, *sorted(cuts), 20.0]
    for g in gens:
        whole = g.window(0.0, 20.0)
        parts = [g.window(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        np.testing.assert_array_equal(np.concatenate([c.time_s for c in parts]), whole.time_s)
        np.testing.assert_array_equal(np.concatenate([c.first_amplitude_ma for c in parts]), whole.first_amplitude_ma)
        # and a window is asked for nothing outside its on phases' hull, whatever the session's pulses
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            u, v = g._on_hull(a, b)
            inside = whole.time_s[(whole.time_s >= a) & (whole.time_s < b)]
            assert np.all((inside >= u) & (inside < v))
