"""Potentials along fibres: geometry helpers, one evaluation for many fibres, cost."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from electrostim.errors import InvalidInputError
from electrostim.physics.field import (
    Layer,
    LayeredMedium,
    Montage,
    disk_pad,
    fibre_potentials,
    get_tissue_preset,
    rectangle_pad,
    solve_pad,
    straight_fibre_points,
)


@pytest.fixture(scope="module")
def channel() -> Montage:
    med = get_tissue_preset("quadriceps").medium()
    a = solve_pad(med, rectangle_pad((-0.05, 0.0), 0.05, 0.05), contact_resistivity_ohm_m2=1e-3)
    b = solve_pad(med, rectangle_pad((0.05, 0.0), 0.05, 0.05), contact_resistivity_ohm_m2=1e-3)
    return Montage.channel(a, b, 0.01)


def test_straight_fibre_points_geometry():
    pts = straight_fibre_points((0.01, 0.02, 0.015), (3.0, 4.0, 0.0), 0.1, 11)
    assert pts.shape == (11, 3)
    np.testing.assert_allclose(pts.mean(axis=0), [0.01, 0.02, 0.015], atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(pts[-1] - pts[0]), 0.1, rtol=1e-14)
    np.testing.assert_allclose(np.diff(pts, axis=0), np.tile([0.006, 0.008, 0.0], (10, 1)), atol=1e-15)


def test_straight_fibres_broadcast():
    centres = np.array([[0.0, 0.0, 0.01], [0.0, 0.0, 0.02]])
    th = np.radians([0.0, 30.0, 60.0, 90.0])
    dirs = np.stack([np.cos(th), np.sin(th), np.zeros(4)], axis=-1)
    pts = straight_fibre_points(centres[:, None, :], dirs[None, :, :], [[0.05], [0.08]], 21)
    assert pts.shape == (2, 4, 21, 3)
    lengths = np.linalg.norm(pts[..., -1, :] - pts[..., 0, :], axis=-1)
    np.testing.assert_allclose(lengths, [[0.05] * 4, [0.08] * 4], rtol=1e-14)


def test_bad_fibres_are_refused():
    with pytest.raises(InvalidInputError, match=r"every direction must be a finite non-zero vector"):
        straight_fibre_points((0, 0, 0.01), (0, 0, 0), 0.1, 11)
    with pytest.raises(InvalidInputError, match=r"'n_points': at least 2"):
        straight_fibre_points((0, 0, 0.01), (1, 0, 0), 0.1, 1)
    with pytest.raises(InvalidInputError, match=r"'length_m': it must be > 0"):
        straight_fibre_points((0, 0, 0.01), (1, 0, 0), -0.1, 11)
    with pytest.raises(InvalidInputError, match=r"need shape \(\.\.\., 3\)"):
        straight_fibre_points((0, 0.01), (1, 0, 0), 0.1, 11)


def test_array_and_ragged_inputs_agree(channel):
    fibres = straight_fibre_points([[0.0, 0.0, 0.01], [0.01, 0.01, 0.02]], (1.0, 0.0, 0.0), 0.1, 51)
    v = fibre_potentials(channel, fibres)
    assert v.shape == (2, 51)
    ragged = fibre_potentials(channel, [fibres[0, :17], fibres[1]])
    np.testing.assert_allclose(ragged[0], v[0, :17], rtol=1e-14)
    np.testing.assert_allclose(ragged[1], v[1], rtol=1e-14)


def test_fibre_potentials_match_pointwise_evaluation(channel):
    fibres = straight_fibre_points([[0.0, 0.0, 0.004], [0.03, 0.0, 0.02]], (0.6, 0.8, 0.0), 0.08, 9)
    v = fibre_potentials(channel, fibres)
    for f, vf in zip(fibres, v):
        for p, vp in zip(f, vf):
            assert float(channel.potential(p)) == pytest.approx(vp, rel=1e-12)


def test_field_along_a_fibre_between_pads_is_smooth_and_antisymmetric(channel):
    fibre = straight_fibre_points((0.0, 0.0, 0.015), (1.0, 0.0, 0.0), 0.2, 401)
    v = fibre_potentials(channel, fibre)
    np.testing.assert_allclose(v, -v[::-1], atol=1e-8 * np.abs(v).max())
    # the second difference (activating function) is finite and small compared with V/dx²
    dx = 0.2 / 400
    af = np.diff(v, 2) / dx**2
    assert np.all(np.isfinite(af))
    assert np.abs(np.diff(af)).max() < 0.05 * np.abs(af).max()


def test_thousands_of_fibre_points_are_cheap(channel):
    """500 fibres × 100 points (5·10⁴ points, ~6·10² patches) in well under the time of a fibre simulation."""
    rng = np.random.default_rng(0)
    n = 500
    centres = np.column_stack([rng.uniform(-0.08, 0.08, n), rng.uniform(-0.05, 0.05, n), rng.uniform(0.002, 0.03, n)])
    th = rng.uniform(0, math.pi, n)
    dirs = np.column_stack([np.cos(th), np.sin(th), np.zeros(n)])
    fibres = straight_fibre_points(centres, dirs, 0.1, 100)
    fibre_potentials(channel, fibres[:2])  # compile / load the kernels
    t0 = time.perf_counter()
    v = fibre_potentials(channel, fibres)
    elapsed = time.perf_counter() - t0
    assert v.shape == (n, 100) and np.all(np.isfinite(v))
    assert elapsed < 5.0


def test_half_space_fibre_far_from_a_small_pad_sees_a_point_source():
    half = LayeredMedium([Layer("tissue", math.inf, 0.2)])
    pad = solve_pad(half, disk_pad((0, 0), 0.005, patch_size_m=1e-3), contact_resistivity_ohm_m2=1.0)
    fibre = straight_fibre_points((0.0, 0.0, 0.1), (1.0, 0.0, 0.0), 0.2, 21)
    v = fibre_potentials(Montage([pad], [1e-3]), fibre)
    r = np.linalg.norm(fibre, axis=1)
    # a uniform disk of radius a differs from a point by a²/(4z²) on its axis (6e-4 here)
    np.testing.assert_allclose(v, 1e-3 / (2 * math.pi * 0.2 * r), rtol=7e-4)
    a, z = 0.005, 0.1
    on_axis = 1e-3 / (math.pi * 0.2 * a * a) * (math.hypot(a, z) - z)
    assert v[10] == pytest.approx(on_axis, rel=2e-5)
