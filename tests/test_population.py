"""Fibre populations under skin electrodes: recruitment order, fat, and the sensory / motor / pain window."""

from __future__ import annotations

import numpy as np
import pytest

import electrostim as es
from electrostim.errors import OptionError
from electrostim.physics.population import population_thresholds


@pytest.fixture(scope="module")
def knee():
    return population_thresholds(es.load_program("knee-oa-tens"), counts={"a-beta": 16, "motor": 16, "a-delta": 8, "c": 3},
                                 seed=3)


@pytest.mark.slow
def test_window_orders_sensory_motor_pain(knee):
    w = knee.window()
    assert w["sensory"]["onset_ma"] < w["motor"]["onset_ma"] < w["pain"]["onset_ma"]
    x, frac = knee.recruitment("a-beta")
    recruited = np.isfinite(knee.threshold_ma[knee.fibre_class == "a-beta"]).mean()
    assert frac[0] == 0.0 and frac[-1] == pytest.approx(recruited) and np.all(np.diff(frac) >= 0)


def test_large_fibres_are_recruited_before_small_ones():
    # motor fibres at one depth and position, only the diameter varies
    prog = es.load_program("nmes-quadriceps-tka")
    res = population_thresholds(prog, counts={"motor": 12}, seed=5)
    from electrostim.physics.population import fibre_classes

    # same sampling, so compare fibres pairwise by depth bin: threshold falls with diameter overall
    d, t, z = res.diameter_um, res.threshold_ma, res.depth_m
    # remove the depth effect with a fit of log threshold on depth and diameter
    A = np.stack([np.ones_like(d), z, d], axis=1)
    coef, *_ = np.linalg.lstsq(A, np.log(t), rcond=None)
    assert coef[2] < 0  # larger diameter, lower threshold at equal depth
    assert "motor" in fibre_classes()


@pytest.mark.slow
def test_thicker_fat_raises_the_motor_threshold():
    prog = es.load_program("nmes-quadriceps-tka")
    thin = population_thresholds(prog, counts={"motor": 10}, fat_thickness_mm=4.0, seed=7)
    thick = population_thresholds(prog, counts={"motor": 10}, fat_thickness_mm=16.0, seed=7)
    assert np.nanmedian(thick.threshold_ma) > np.nanmedian(thin.threshold_ma)
    assert thick.window()["motor"]["onset_ma"] > thin.window()["motor"]["onset_ma"]


def test_bad_population_input():
    with pytest.raises(OptionError, match="Unknown fibre class"):
        population_thresholds(es.load_program("knee-oa-tens"), counts={"unicorn": 3})
    with pytest.raises(OptionError, match="Invalid channel"):
        population_thresholds(es.load_program("knee-oa-tens"), channel="nope", counts={"motor": 2})


@pytest.mark.slow
def test_cli_window_and_recruitment(tmp_path):
    import json

    from typer.testing import CliRunner

    from electrostim.cli import app

    r = CliRunner().invoke(app, ["fibers", "window", "knee-oa-tens", "--fibers", "12", "--json"])
    assert r.exit_code == 0, r.output
    w = json.loads(r.stdout)["window"]
    assert {"sensory", "motor", "pain"} <= set(w)
    png = tmp_path / "rec.png"
    r = CliRunner().invoke(app, ["fibers", "recruitment", "knee-oa-tens", "--fibers", "12", "-o", str(png)])
    assert r.exit_code == 0 and png.read_bytes()[:4] == b"\x89PNG" and "[assumed]" in r.stdout
    r = CliRunner().invoke(app, ["fibers", "window", "knee-oa-tens", "--fibers", "2"])
    assert r.exit_code == 2 and "--fibers" in r.output


#: thresholds of a small seeded population, recorded before population_thresholds was split into steps
#: (the split must not change a single number: same sampling, same field, same search)
PINNED_SMALL = {
    "fibre_class": ["a-beta", "a-beta", "motor", "motor"],
    "diameter_um": [9.0, 11.0, 13.5, 8.25],
    "depth_m": [0.0021232963867713864, 0.000863115818418278, 0.01614187622713624, 0.018705020392458728],
    "threshold_ma": [8.006503107358474, 7.669620863863847, 34.399044170552436, 100.97596484690665],
}
#: every class, with an unrecruited Aδ pair and a blocked C fibre
PINNED_MIXED = {
    "fibre_class": ["a-beta", "a-beta", "a-beta", "motor", "motor", "motor", "a-delta", "a-delta", "c"],
    "diameter_um": [9.0, 11.0, 10.75, 13.25, 11.75, 11.25, 1.0, 2.25, 0.5],
    "depth_m": [0.000863115818418278, 0.001125437386070403, 0.002842064250512813, 0.023684712701071857,
                0.02156649051384471, 0.01872288164269689, 0.0009706024633351611, 0.002104405367556967,
                0.0013751331699004411],
    "threshold_ma": [9.301722525377807, 6.6536016051540345, 9.922307429555522, 57.92856465115534, 56.10928964042274,
                     137.21780519762171, np.nan, np.nan, np.nan],
    "blocked": [False, False, False, False, False, False, False, False, True],
}


def _assert_pinned(res, pinned):
    assert res.fibre_class.tolist() == pinned["fibre_class"]
    assert res.diameter_um.tolist() == pinned["diameter_um"]
    np.testing.assert_allclose(res.depth_m, pinned["depth_m"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(res.threshold_ma, pinned["threshold_ma"], rtol=1e-9, atol=0, equal_nan=True)
    if "blocked" in pinned:
        assert res.blocked.tolist() == pinned["blocked"]


@pytest.mark.slow
def test_small_seeded_population_is_pinned():
    """The same numbers as before the split, with progress reported (the field then comes in blocks: the same
    table for every block, so the same bits)."""
    field_calls: list[tuple[int, int]] = []
    search_calls: list[tuple[int, int]] = []
    res = population_thresholds(es.load_program("knee-oa-tens"), counts={"a-beta": 2, "motor": 2}, seed=11,
                                progress=lambda d, n: search_calls.append((d, n)),
                                field_progress=lambda d, n: field_calls.append((d, n)))
    _assert_pinned(res, PINNED_SMALL)
    assert len(field_calls) > 2, field_calls  # the grids were computed in several blocks
    done = [d for d, _ in field_calls]
    assert done == sorted(done) and field_calls[-1][0] == field_calls[-1][1] and len({n for _, n in field_calls}) == 1
    assert search_calls[-1] == (4, 4) and [d for d, _ in search_calls] == sorted(d for d, _ in search_calls)


@pytest.mark.slow
def test_mixed_seeded_population_is_pinned():
    res = population_thresholds(es.load_program("knee-oa-tens"), counts={"a-beta": 3, "motor": 3, "a-delta": 2, "c": 1},
                                seed=11)
    _assert_pinned(res, PINNED_MIXED)
