"""The fibre engine against NEURON (pyfibers) reference values, and its own properties.

Reference values: benchmarks/reference/neuron_reference.json, written by
benchmarks/reference/pyfibers_reference.py (see SETUP.md there for the set-up).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from electrostim.physics.fibres import (
    PointSourceCase,
    conduction_velocity,
    find_thresholds,
    point_source_thresholds,
    strength_duration,
)

REFERENCE = json.loads((Path(__file__).parents[1] / "benchmarks" / "reference" / "neuron_reference.json").read_text())
MODELS = {"MRG_DISCRETE": "mrg", "SWEENEY": "sweeney", "SUNDT": "sundt"}


def _case(setup: dict) -> PointSourceCase:
    w = setup["waveform"]
    shape = w["shape"]
    return PointSourceCase(
        model=MODELS[setup["fiber_model"]],
        diameter_um=setup["diameter_um"],
        distance_um=setup["source"]["distance_R_um"],
        pulse_width_us=w["pw_ms"] * 1e3,
        waveform="biphasic" if shape.startswith("biph") else "monophasic",
        polarity="anodic" if shape.startswith("anod") else "cathodic",
        conductivity_s_per_m=setup["source"]["sigma_S_per_m"],
        n_nodes=setup["n_nodes"],
        dt_us=setup["dt_ms"] * 1e3,
        tstop_ms=setup["tstop_ms"],
        temperature_c=setup["temperature_C"],
    )


THRESHOLD_GROUPS = ["mrg-diameter", "mrg-sd", "mrg-sensitivity", "mrg-distance", "mrg-waveform", "sweeney-threshold"]


@pytest.mark.parametrize("group", THRESHOLD_GROUPS)
def test_thresholds_within_one_percent_of_neuron(group):
    # cases where the peer's own search failed carry an "error" instead of a result (see SETUP.md)
    keys = [k for k in REFERENCE["groups"][group] if "result" in REFERENCE["cases"].get(k, {})]
    assert keys, group
    cases = [REFERENCE["cases"][k] for k in keys]
    ours = point_source_thresholds(
        [_case(c["setup"]) for c in cases],
        tolerance=cases[0]["setup"]["search"]["termination_tolerance_pct"] / 100.0,
    )
    for key, ref, got in zip(keys, cases, ours):
        assert got.threshold_a is not None, (key, got.message)
        want = ref["result"]["threshold_uA"]
        assert got.threshold_a * 1e6 == pytest.approx(want, rel=0.01), key


def test_ten_micron_classic_value():
    # the headline check of the reference: 120.40 µA
    r = point_source_thresholds([PointSourceCase()])[0]
    assert r.threshold_a * 1e6 == pytest.approx(120.40, rel=0.01)


@pytest.mark.parametrize("group, model", [("cv-mrg", "mrg"), ("cv-sweeney", "sweeney")])
def test_myelinated_conduction_velocity_within_two_percent(group, model):
    keys = REFERENCE["groups"][group]
    assert len(keys) >= 3
    for k in keys:
        c = REFERENCE["cases"][k]
        got = conduction_velocity(model, c["setup"]["diameter_um"])
        assert got == pytest.approx(c["result"]["cv_m_per_s"], rel=0.02), k


def test_sundt_conduction_velocity_within_five_percent():
    c = REFERENCE["cases"]["cv_sundt_D1"]
    n = c["result"]["fiber"]["n_sections"]
    got = conduction_velocity("sundt", c["setup"]["diameter_um"], n_nodes=n)
    assert got == pytest.approx(c["result"]["cv_m_per_s"], rel=0.05)


def test_thresholds_converge_as_dt_shrinks():
    dts = [4.0, 2.0, 1.0, 0.5]
    res = point_source_thresholds([PointSourceCase(dt_us=dt) for dt in dts], tolerance=1e-5)
    thr = np.array([r.threshold_a for r in res])
    steps = np.abs(np.diff(thr))
    assert np.all(steps[1:] < steps[:-1])  # each halving changes the threshold less
    ratios = steps[:-1] / steps[1:]
    assert np.all((ratios > 1.6) & (ratios < 2.5))  # first order in dt (backward Euler)


def test_sensory_chronaxie_exceeds_motor():
    pws = [50, 100, 200, 500, 1000]
    _, motor = strength_duration(PointSourceCase(model="mrg-interp", diameter_um=10.0), pws)
    _, sensory = strength_duration(PointSourceCase(model="sensory", diameter_um=10.0), pws)
    ratio = sensory.chronaxie_s / motor.chronaxie_s
    assert 1.3 <= ratio <= 1.6


def test_interpolated_mrg_matches_the_table_at_tabulated_diameters():
    a = point_source_thresholds([PointSourceCase(model="mrg", diameter_um=8.7)])[0].threshold_a
    b = point_source_thresholds([PointSourceCase(model="mrg-interp", diameter_um=8.7)])[0].threshold_a
    assert a == b
    mids = point_source_thresholds([PointSourceCase(model="mrg-interp", diameter_um=d) for d in (3.0, 6.5, 9.3, 15.5)])
    thr = [r.threshold_a for r in mids]
    assert all(t is not None for t in thr) and thr == sorted(thr, reverse=True)  # larger fibres, lower thresholds


def test_search_finds_the_threshold_from_far_above_and_reports_block():
    base = PointSourceCase(pulse_width_us=1000).case()
    ref = find_thresholds([base])[0].threshold_a
    for start in (1e-3, 0.1):
        r = find_thresholds([dataclasses.replace(base, start_a=start)])[0]
        assert r.threshold_a == pytest.approx(ref, rel=2e-3)
        assert r.block_a is not None and r.block_a > r.threshold_a and "block" in r.message


def test_unknown_model_and_bad_values():
    from electrostim.errors import OptionError

    with pytest.raises(OptionError, match="allowed 'mrg'"):
        point_source_thresholds([PointSourceCase(model="hodgkin")])
    with pytest.raises(OptionError, match="tabulated diameters"):
        point_source_thresholds([PointSourceCase(model="mrg", diameter_um=9.0)])
    with pytest.raises(OptionError, match="pulse_width_us"):
        PointSourceCase(pulse_width_us=0).validate()


def _program_case(pulse: dict, start_s: float, duration_s: float, **stim):
    import electrostim as es
    from electrostim.physics.fibres import schedule_wave
    from tests.conftest import make_program

    s = es.Schedule(make_program(pulse, amplitude_ma=1.0, duration_s=2.0, **stim))
    wave = schedule_wave(s, start_s, duration_s, 1e-6)[:1]
    base = PointSourceCase().case()
    return dataclasses.replace(base, wave=wave, quiet_after_step=int(np.nonzero(wave[0])[0].max()) + 1)


def test_program_waveforms_drive_fibres():
    # a monophasic 100 µs cathodic pulse from the pulse-train layer gives the classic threshold
    mono = _program_case({"shape": "monophasic", "pulse_width_us": 100, "frequency_hz": 1}, 1.0, 0.003)
    classic = find_thresholds([PointSourceCase().case()])[0].threshold_a
    got = find_thresholds([mono])[0].threshold_a
    assert got == pytest.approx(classic, rel=2e-3)
    # a charge-balanced biphasic pulse needs more current than its first phase alone
    bi = _program_case({"shape": "symmetric-biphasic", "pulse_width_us": 100, "frequency_hz": 1}, 1.0, 0.003)
    assert find_thresholds([bi])[0].threshold_a > got
    # bursts and kHz carriers work too; a burst never needs more than its first pulse alone
    burst = _program_case({"shape": "symmetric-biphasic", "pulse_width_us": 100, "frequency_hz": 1000}, 0.0, 0.02,
                          burst={"pulses_per_burst": 10, "burst_frequency_hz": 2})
    sine = _program_case({"shape": "sine-burst", "carrier_frequency_hz": 2500, "frequency_hz": 50}, 0.0, 0.012)
    res = find_thresholds([burst, sine])
    assert all(r.threshold_a is not None for r in res)
    assert res[0].threshold_a <= find_thresholds([bi])[0].threshold_a * (1 + 2e-3)
