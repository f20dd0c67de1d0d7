"""Rate-dependent limits are judged per 1 s window at what the schedule does there.

The IEC 60601-2-10 rms-current limit depends on the rate (50 mA up to 400 Hz, 80 mA up
to 1500 Hz, 100 mA above). Each pulse has a local rate (1 / its shorter interval to a
neighbour of the same output); the figure of a band is the highest rms over the 1 s
windows that hold a pulse at a rate in that band.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import electrostim as es
from electrostim.waveform import RATE_BANDS_HZ, SHAPE_SINE

from .conftest import make_program, pad

BAND_FIELDS = ("rms_current_up_to_400hz_ma", "rms_current_400_to_1500hz_ma", "rms_current_above_1500hz_ma")
RMS_RULES = ("iec-60601-2-10.rms-current-up-to-400hz", "iec-60601-2-10.rms-current-up-to-1500hz",
             "iec-60601-2-10.rms-current-above-1500hz")


def rules(a: es.Assessment) -> set[str]:
    return {r.rule for r in a.reasons}


def band_of(rate_hz: float) -> int:
    """The band of a rate, as documented: edges belong below, and so does 1 ppm above an edge."""
    return sum(rate_hz > edge * (1 + 1e-6) for edge in RATE_BANDS_HZ)


def alternating(rates, dwell_s, *, width_us=1000.0, amp=89.0, duration_s=20.0, shape="symmetric-biphasic"):
    pulse = {"shape": shape, "pulse_width_us": width_us, "frequency_hz": max(rates)}
    return make_program(pulse, amplitude_ma=amp, duration_s=duration_s, pads=[pad(w=10, h=10)] * 2,
                        modulation=[{"kind": "alternating-frequency", "frequencies_hz": list(rates), "dwell_s": dwell_s}])


def fixed(rate, *, width_us=1000.0, amp=89.0, duration_s=20.0, shape="symmetric-biphasic"):
    pulse = {"shape": shape, "pulse_width_us": width_us, "frequency_hz": rate}
    return make_program(pulse, amplitude_ma=amp, duration_s=duration_s, pads=[pad(w=10, h=10)] * 2)


# --------------------------------------------------------------------------- the fault


@pytest.mark.parametrize("dwell_s", [5.0, 0.4])
def test_alternating_390_and_401_hz_is_refused_like_390_hz_alone(dwell_s):
    # 89 mA, 1000 µs biphasic: 78.6 mA rms at 390 Hz (limit 50 mA), 79.7 mA at 401 Hz (limit 80 mA)
    low = es.assess(fixed(390))
    assert low.verdict == "refused" and "iec-60601-2-10.rms-current-up-to-400hz" in rules(low)
    a = es.assess(alternating([390, 401], dwell_s))
    assert a.verdict == "refused"
    r = next(r for r in a.reasons if r.rule == "iec-60601-2-10.rms-current-up-to-400hz")
    assert "up to 400 Hz" in r.message and "highest 1 s window" in r.message and "50 mA" in r.message
    d = es.compute_dose(alternating([390, 401], dwell_s), level="max").outputs[0]
    assert d.rms_current_up_to_400hz_ma >= 89 * math.sqrt(390 * 2 * 1000e-6) * (1 - 1e-9)
    assert d.rms_current_400_to_1500hz_ma > 0 and d.rms_current_above_1500hz_ma == 0.0


def test_401_hz_alone_stays_within_its_band():
    a = es.assess(fixed(401))
    assert not rules(a) & set(RMS_RULES)
    d = es.compute_dose(fixed(401), level="max").outputs[0]
    assert d.rms_current_up_to_400hz_ma == 0.0
    assert d.rms_current_400_to_1500hz_ma == pytest.approx(89 * math.sqrt(401 * 2e-3), rel=1e-9)


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("rate, width_us, band", [
    (1, 200, 0), (100, 200, 0), (400, 200, 0), (401, 200, 1), (1000, 200, 1), (1500, 100, 1), (1501, 100, 2),
    (2000, 100, 2),
])
def test_fixed_rate_train_lies_in_its_band(rate, width_us, band):
    p = fixed(rate, width_us=width_us, amp=30.0, duration_s=3.0)
    d = es.compute_dose(p, level="max").outputs[0]
    rms = 30.0 * math.sqrt(rate * 2 * width_us * 1e-6)
    assert d.rms_current_ma == pytest.approx(rms, rel=1e-9)
    for b, name in enumerate(BAND_FIELDS):
        assert getattr(d, name) == (pytest.approx(rms, rel=1e-9) if b == band else 0.0), name


def test_a_lone_pulse_has_rate_zero():
    d = es.compute_dose(fixed(1, width_us=200, amp=30.0, duration_s=1.0), level="max").outputs[0]
    assert d.pulse_count == 1 and d.max_pulse_rate_hz == 0.0
    assert d.rms_current_ma > 0
    assert d.rms_current_up_to_400hz_ma == pytest.approx(d.rms_current_ma, rel=1e-12)
    assert d.rms_current_400_to_1500hz_ma == d.rms_current_above_1500hz_ma == 0.0


@pytest.mark.parametrize("carrier_hz, band", [(1000, 1), (2500, 2)])
def test_russian_current_falls_in_its_carriers_band(carrier_hz, band):
    # sine bursts at 50 Hz, 50 % duty: rms = A/√2 · √0.5 = A/2, whatever the carrier
    p = make_program({"shape": "sine-burst", "carrier_frequency_hz": carrier_hz, "frequency_hz": 50,
                      "burst_duty_percent": 50}, amplitude_ma=80, modality="russian", duration_s=3.0)
    d = es.compute_dose(p, level="max").outputs[0]
    assert d.max_pulse_rate_hz == pytest.approx(carrier_hz, rel=1e-6)
    assert d.rms_current_ma == pytest.approx(40.0, rel=1e-9)
    for b, name in enumerate(BAND_FIELDS):
        assert getattr(d, name) == (pytest.approx(40.0, rel=1e-9) if b == band else 0.0), name


def test_bursts_take_their_intra_burst_rate():
    # 10 pulses at 1000 Hz per burst, bursts at 2 Hz: the pulses are at 1000 Hz, not 2 Hz
    p = make_program({"shape": "symmetric-biphasic", "pulse_width_us": 100, "frequency_hz": 1000},
                     amplitude_ma=20, duration_s=3.0, burst={"pulses_per_burst": 10, "burst_frequency_hz": 2})
    d = es.compute_dose(p, level="max").outputs[0]
    assert d.rms_current_ma == pytest.approx(20 * math.sqrt(20 * 2 * 100e-6), rel=1e-9)
    assert d.rms_current_400_to_1500hz_ma == pytest.approx(d.rms_current_ma, rel=1e-12)
    assert d.rms_current_up_to_400hz_ma == d.rms_current_above_1500hz_ma == 0.0


def test_interferential_carriers_are_above_1500_hz():
    p = make_program({"shape": "interferential", "carrier_frequency_hz": 4000, "beat_frequency_hz": 100},
                     amplitude_ma=40, modality="interferential", duration_s=3.0)
    for o in es.compute_dose(p, level="max").outputs:
        assert o.rms_current_above_1500hz_ma == pytest.approx(o.rms_current_ma, rel=1e-12)
        assert o.rms_current_up_to_400hz_ma == o.rms_current_400_to_1500hz_ma == 0.0


# --------------------------------------------------------------------------- the property


def brute_force_bands(times: np.ndarray, i2t: np.ndarray, window_s: float) -> list[float]:
    """O(n²) reference: the highest rms over windows [t_j, t_j + w) that hold a pulse of each band."""
    n = times.shape[0]
    gaps = np.diff(times)
    prev = np.concatenate([[np.inf], gaps])
    nxt = np.concatenate([gaps, [np.inf]])
    m = np.minimum(prev, nxt)
    with np.errstate(divide="ignore"):
        rate = np.where(np.isinf(m), 0.0, 1.0 / m)
    onehot = np.array([[band_of(r) == b for b in range(3)] for r in rate], dtype=float).reshape(n, 3)
    best = [0.0, 0.0, 0.0]
    for j0 in range(0, n, 512):  # every pair (window start j, pulse i), a block of starts at a time
        start = times[j0 : j0 + 512, None]
        inside = ((times[None, :] >= start) & (times[None, :] < start + window_s - 1e-9)).astype(float)
        total = inside @ i2t
        held = inside @ onehot > 0
        for b in range(3):
            if held[:, b].any():
                best[b] = max(best[b], float(total[held[:, b]].max()))
    return [math.sqrt(x * 1e-6 / window_s) for x in best]


def i2t_of(c) -> np.ndarray:
    """∫i²dt per pulse (mA²·µs), written out here independently of the library."""
    k = np.where(c.shape == SHAPE_SINE, 0.5, 1.0)
    return k * (c.first_amplitude_ma**2 * c.first_width_us + c.second_amplitude_ma**2 * c.second_width_us)


RATES = st.one_of(st.integers(150, 2500), st.sampled_from([400, 401, 1500, 1501]))


@st.composite
def piecewise(draw, min_dwell_s: float, max_dwell_s: float, max_duration_s: float | None):
    rates = draw(st.lists(RATES, min_size=2, max_size=4, unique=True))
    dwell = draw(st.floats(min_dwell_s, max_dwell_s))
    shape = draw(st.sampled_from(["symmetric-biphasic", "monophasic"]))
    # widest pulse that fits the fastest rate with room to spare
    width = draw(st.floats(0.05, 1.0)) * 0.4e6 / max(rates) / (2 if shape == "symmetric-biphasic" else 1)
    amp = draw(st.floats(1.0, 150.0))
    duration = dwell * len(rates) if max_duration_s is None else min(max_duration_s, dwell * len(rates) + 0.3)
    return rates, dwell, shape, width, amp, duration


@settings(max_examples=50)
@given(case=piecewise(0.02, 1.5, 2.5), chunk_s=st.sampled_from([None, 0.0013, 0.05, 0.31, 1.0]))
def test_band_figures_equal_a_brute_force_reference(case, chunk_s):
    rates, dwell, shape, width, amp, duration = case
    p = alternating(rates, dwell, width_us=width, amp=amp, duration_s=duration, shape=shape)
    d = es.compute_dose(p, schedule=es.Schedule(p, level="max", chunk_s=chunk_s))
    o = d.outputs[0]
    c = es.Schedule(p, level="max").pulses()
    ref = brute_force_bands(c.time_s, i2t_of(c), d.window_s)
    for name, want in zip(BAND_FIELDS, ref):
        got = getattr(o, name)
        # (a) no band figure exceeds the highest rms of any window
        assert got <= o.rms_current_ma * (1 + 1e-12)
        # (c) the streamed figure is the brute-force one
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), name
    # every window holds a pulse of some band: the highest band figure is the rms figure
    assert max(getattr(o, n) for n in BAND_FIELDS) == pytest.approx(o.rms_current_ma, rel=1e-12)


@given(case=piecewise(1.0, 2.0, None))
def test_band_figure_is_at_least_each_rate_held_for_a_second(case):
    # (b) a rate held for ≥ 1 s gives a window as full as the fixed-rate program's, in the rate's band
    rates, dwell, shape, width, amp, duration = case
    o = es.compute_dose(alternating(rates, dwell, width_us=width, amp=amp, duration_s=duration, shape=shape),
                        level="max").outputs[0]
    for name in BAND_FIELDS:
        assert getattr(o, name) <= o.rms_current_ma * (1 + 1e-12)  # (a)
    for r in set(rates):
        alone = es.compute_dose(fixed(r, width_us=width, amp=amp, duration_s=2.0, shape=shape), level="max").outputs[0]
        assert getattr(o, BAND_FIELDS[band_of(r)]) >= alone.rms_current_ma * (1 - 1e-9), r


# --------------------------------------------------------------------------- the rules


def test_rms_rules_read_the_band_figures():
    from electrostim.safety._tables import limit_rules

    by_id = {r.id: r for r in limit_rules()}
    for rule_id, name, limit in zip(RMS_RULES, BAND_FIELDS, (50.0, 80.0, 100.0)):
        rule = by_id[rule_id]
        assert (rule.metric, rule.limit, rule.when) == (name, limit, None)
        assert "highest 1 s window" in rule.message
