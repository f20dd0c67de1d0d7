"""Pads on tissue: patch geometry, the contact-impedance solve, Newman's disk, fields of pads.

Newman (1966), equipotential disk of radius ``a`` on a half-space ``σ``: current density
``J(r) = I/(2πa√(a² − r²))`` and access resistance ``R = 1/(4σa)``. Over a ring
``r₁ < r < r₂`` the average density is ``I (√(a² − r₁²) − √(a² − r₂²)) / (πa(r₂² − r₁²))``.
A disk carrying a uniform density instead has mean surface potential
``8I/(3π²σa)`` (its self-energy), the limit of a large contact resistance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from electrostim.errors import InvalidInputError
from electrostim.physics.field import Layer, LayeredMedium, Montage, disk_pad, rectangle_pad, solve_pad
from electrostim.physics.field._electrodes import _patch_potentials
from electrostim.physics.field._kernels import polygon_integral

from .conftest import make_program

SIGMA = 0.2
HALF = LayeredMedium([Layer("tissue", math.inf, SIGMA)])
LAYERED = LayeredMedium(
    [Layer("skin", 1.5e-3, 0.43), Layer("fat", 8e-3, 1 / 30), Layer("muscle", 0.04, 0.1735, 0.086), Layer("bone", math.inf, 0.0055)]
)


# --------------------------------------------------------------------------- geometry


def test_polygon_integral_matches_quadrature():
    verts = np.array([[0.0, 0.0], [0.003, 0.0], [0.004, 0.002], [0.001, 0.003]])

    def brute(x0, y0, z):
        # split the convex quadrilateral into two triangles and integrate each
        total = 0.0
        for tri in ([0, 1, 2], [0, 2, 3]):
            a, b, c = verts[tri]

            def f(t, s, a=a, b=b, c=c):
                p = a + s * (b - a) + t * (c - a)
                return 1.0 / math.sqrt((p[0] - x0) ** 2 + (p[1] - y0) ** 2 + z * z)

            jac = abs((b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1]))
            val, _ = integrate.dblquad(f, 0.0, 1.0, 0.0, lambda s: 1.0 - s, epsabs=0.0, epsrel=1e-11)
            total += jac * val
        return total

    for x0, y0, z in [(0.001, 0.001, 0.0005), (0.006, -0.002, 0.001), (0.0, 0.0, 0.002), (0.002, 0.0, 0.0003), (0.02, 0.01, 0.0)]:
        v = polygon_integral(x0, y0, z, verts[:, 0].copy(), verts[:, 1].copy(), 4)
        assert v == pytest.approx(brute(x0, y0, z), rel=1e-8)


def test_rectangle_pad_patches():
    pad = rectangle_pad((0.01, -0.02), 0.05, 0.09, angle_rad=0.3, patch_size_m=5e-3)
    assert pad.n_patches == 10 * 18
    assert pad.area_m2 == pytest.approx(0.05 * 0.09, rel=1e-12)
    assert np.average(pad.centroids_m, axis=0, weights=pad.areas_m2) == pytest.approx([0.01, -0.02], abs=1e-12)
    assert np.all(pad.areas_m2 > 0)  # counter-clockwise
    # a square patch has m_xx = m_yy = s²/12 and m_xy = 0 in any rotation
    square = rectangle_pad((0, 0), 0.01, 0.01, angle_rad=0.7, patch_size_m=5e-3)
    np.testing.assert_allclose(square.moments_m2, np.tile([25e-6 / 12, 0.0, 25e-6 / 12], (4, 1)), atol=1e-15)


def test_graded_pads_shrink_patches_towards_the_rim():
    pad = rectangle_pad((0, 0), 0.05, 0.05, patch_size_m=5e-3, grading=1.0)
    assert pad.area_m2 == pytest.approx(0.0025, rel=1e-12)
    assert pad.areas_m2.min() < 0.1 * pad.areas_m2.max()
    disk = disk_pad((0, 0), 0.01, patch_size_m=1e-3, grading=1.0)
    widths = np.diff(disk.ring_radii_m)
    assert widths[-1] < 0.1 * widths[0]


@pytest.mark.parametrize("ps", [5e-3, 2e-3, 1e-3])
def test_disk_pad_tiles_the_disk(ps):
    pad = disk_pad((0.003, 0.004), 0.0125, patch_size_m=ps)
    assert pad.area_m2 == pytest.approx(math.pi * 0.0125**2, rel=1e-12)
    assert np.all(pad.areas_m2 > 0)
    assert np.average(pad.centroids_m, axis=0, weights=pad.areas_m2) == pytest.approx([0.003, 0.004], abs=1e-12)


def test_pads_from_catalogue_and_program_electrodes():
    from electrostim import anatomy
    from electrostim.physics.field import pad_from_spec

    for spec in (
        anatomy.ElectrodeSpec("square-5", "5 x 5 cm", "rectangle", 5.0, 5.0, None, ""),
        anatomy.ElectrodeSpec("rect-7.6x12.7", "7.6 x 12.7 cm", "rectangle", 7.6, 12.7, None, ""),
        anatomy.ElectrodeSpec("round-3.2", "Round 3.2 cm", "disk", None, None, 3.2, ""),
    ):
        pad = pad_from_spec(spec, (0.0, 0.0))
        assert pad.area_m2 == pytest.approx(spec.area_cm2 * 1e-4, rel=1e-12)
    program = make_program({"shape": "symmetric-biphasic", "pulse_width_us": 300, "frequency_hz": 35})
    electrode = program.channels[0].electrodes[0]
    assert pad_from_spec(electrode, (0.0, 0.0)).area_m2 == pytest.approx(electrode.area_cm2 * 1e-4, rel=1e-12)
    with pytest.raises(InvalidInputError, match=r"expected an electrode with shape 'rectangle' or 'disk'"):
        pad_from_spec(object(), (0.0, 0.0))


def test_pads_by_catalogue_id():
    from electrostim.physics.field import pad_from_spec

    assert pad_from_spec("square-5", (0.0, 0.0)).area_m2 == pytest.approx(25e-4, rel=1e-12)


def test_bad_pads_are_refused():
    with pytest.raises(InvalidInputError, match=r"Invalid value for 'width_m': it must be > 0"):
        rectangle_pad((0, 0), -0.05, 0.05)
    with pytest.raises(InvalidInputError, match=r"Invalid value for 'center_m': expected \(x, y\)"):
        disk_pad((0, 0, 0), 0.01)
    with pytest.raises(InvalidInputError, match=r"Invalid value for 'grading': allowed 0"):
        disk_pad((0, 0), 0.01, grading=2.0)


# --------------------------------------------------------------------------- Newman's disk


def test_newman_resistance_converges_at_second_order():
    """Edge-graded rings: the error falls ~4× per halving of the patch size; Richardson removes it."""
    a = 0.01
    newman = 1 / (4 * SIGMA * a)
    sizes = [2e-3, 1e-3, 5e-4]
    r = np.array([solve_pad(HALF, disk_pad((0, 0), a, patch_size_m=ps, grading=1.0)).resistance_ohm for ps in sizes])
    err = r / newman - 1
    assert np.all(err > 0)  # the discrete current distribution is a little less crowded than the true one
    assert err[-1] < 1e-3  # 0.06 % at 0.5 mm patches
    rates = err[:-1] / err[1:]
    assert np.all((rates > 3.5) & (rates < 4.5))
    extrapolated = (4 * r[-1] - r[-2]) / 3
    assert extrapolated == pytest.approx(newman, rel=5e-5)


def test_newman_resistance_with_even_rings_converges_at_first_order():
    a = 0.01
    newman = 1 / (4 * SIGMA * a)
    r = np.array([solve_pad(HALF, disk_pad((0, 0), a, patch_size_m=ps)).resistance_ohm for ps in (2e-3, 1e-3)])
    err = r / newman - 1
    assert 1.8 < err[0] / err[1] < 2.2
    assert 2 * r[1] - r[0] == pytest.approx(newman, rel=2e-3)


def test_newman_current_density_crowds_at_the_edge():
    a = 0.01
    pad = disk_pad((0, 0), a, patch_size_m=1e-3, grading=1.0)
    sol = solve_pad(HALF, pad)
    r1, r2 = pad.ring_radii_m[pad.patch_ring], pad.ring_radii_m[pad.patch_ring + 1]
    exact = (np.sqrt(a * a - r1**2) - np.sqrt(np.maximum(a * a - r2**2, 0.0))) / (math.pi * a * (r2**2 - r1**2))
    dev = np.abs(sol.current_density_a_per_m2 / exact - 1)
    outer = pad.patch_ring == pad.patch_ring.max()
    assert dev[~outer].max() < 0.01
    assert dev[outer].max() < 0.05
    # the edge ring carries several times the central density
    centre = sol.current_density_a_per_m2[pad.patch_ring == 0][0]
    assert sol.current_density_a_per_m2[outer].mean() > 3 * centre
    assert centre == pytest.approx(1 / (2 * math.pi * a * a), rel=0.02)


def test_large_contact_resistance_spreads_current_evenly():
    a, rc = 0.01, 100.0
    pad = disk_pad((0, 0), a, patch_size_m=1e-3)
    sol = solve_pad(HALF, pad, contact_resistivity_ohm_m2=rc)
    density = sol.current_density_a_per_m2
    assert density.max() / density.min() - 1 < 1e-3
    # R → r_c/A + mean potential of a uniform disk, 8/(3π²σa)
    spreading = sol.resistance_ohm - rc / pad.area_m2
    assert spreading == pytest.approx(8 / (3 * math.pi**2 * SIGMA * a), rel=5e-3)


def test_contact_resistance_sits_in_series_and_evens_out_the_current():
    pad = rectangle_pad((0, 0), 0.05, 0.05, patch_size_m=4e-3)
    ideal = solve_pad(LAYERED, pad)
    real = solve_pad(LAYERED, pad, contact_resistivity_ohm_m2=0.02)
    assert real.resistance_ohm > ideal.resistance_ohm + 0.5 * 0.02 / pad.area_m2
    spread = lambda s: s.current_density_a_per_m2.max() / s.current_density_a_per_m2.min()
    assert spread(ideal) > 10 > spread(real)
    assert ideal.patch_currents_a.sum() == pytest.approx(1.0, rel=1e-12)
    assert np.all(ideal.patch_currents_a > 0)


def test_splitting_the_top_layer_changes_nothing():
    """A half-space written as two identical layers gives the same pad (exercises the remainder tables)."""
    pad = disk_pad((0, 0), 0.01, patch_size_m=2e-3)
    one = solve_pad(HALF, pad)
    two = solve_pad(LayeredMedium([Layer("a", 2e-3, SIGMA), Layer("b", math.inf, SIGMA)]), pad)
    assert two.resistance_ohm == pytest.approx(one.resistance_ohm, rel=1e-6)
    pts = np.array([[0.0, 0.0, 0.001], [0.005, 0.0, 0.003], [0.02, 0.01, 0.01]])
    np.testing.assert_allclose(two.potential(pts), one.potential(pts), rtol=1e-5)


# --------------------------------------------------------------------------- fields of pads


def test_patch_field_matches_fine_point_quadrature():
    """Near and under a pad, at every depth, against 40 000 point sources (0.1 mm squares)."""
    pad = rectangle_pad((0, 0), 0.02, 0.02, patch_size_m=2.5e-3)
    currents = pad.areas_m2 / pad.area_m2  # uniform density, 1 A
    n = 200
    xs = (np.arange(n) + 0.5) / n * 0.02 - 0.01
    gx, gy = np.meshgrid(xs, xs)
    src = np.column_stack([gx.ravel(), gy.ravel()])
    zs = np.array([0.5, 1.0, 1.4, 1.6, 3.0, 9.4, 9.6, 20.0]) * 1e-3
    xq = np.array([0.0, 0.0095, 0.0105, 0.02])
    pts = np.array([[x, 0.003, z] for z in zs for x in xq])
    ref = LAYERED.table().superpose(pts, src, np.full(len(src), 1.0 / len(src)))[:, 0]
    v = _patch_potentials(LAYERED, [pad], currents, pts)[:, 0]
    np.testing.assert_allclose(v, ref, rtol=2e-5)


def test_field_below_a_pad_converges_with_patch_size():
    pts = np.array([[0.0, 0.0, 0.005], [0.025, 0.0, 0.005], [0.025, 0.0, 0.02], [0.06, 0.01, 0.012]])
    values = []
    for ps in (5e-3, 2.5e-3, 1.25e-3):
        sol = solve_pad(LAYERED, rectangle_pad((0, 0), 0.05, 0.05, patch_size_m=ps), contact_resistivity_ohm_m2=0.01)
        values.append(sol.potential(pts))
    d1 = np.abs(values[1] / values[0] - 1).max()
    d2 = np.abs(values[2] / values[1] - 1).max()
    assert d2 < d1 / 2
    assert d2 < 2e-3


def test_far_from_a_pad_it_is_a_point_source():
    sol = solve_pad(LAYERED, rectangle_pad((0, 0), 0.04, 0.04), contact_resistivity_ohm_m2=0.01)
    pts = np.array([[0.3, 0.0, 0.0], [0.0, 0.4, 0.02], [0.25, 0.25, 0.06]])
    point = LAYERED.table().potential(np.hypot(pts[:, 0], pts[:, 1]), pts[:, 2])
    np.testing.assert_allclose(sol.potential(pts), point, rtol=2e-3)


def test_potential_is_continuous_below_the_skin():
    """The top layer uses closed-form patch integrals, the layers below the table: they must meet."""
    sol = solve_pad(LAYERED, rectangle_pad((0, 0), 0.03, 0.03, patch_size_m=3e-3))
    for zb in LAYERED.interfaces_m[:2]:
        for x in (0.0, 0.014, 0.03):
            above = sol.potential([x, 0.002, zb * (1 - 1e-9)])
            below = sol.potential([x, 0.002, zb])
            assert float(above) == pytest.approx(float(below), rel=2e-5)


def test_montage_superposes_and_scales():
    a = solve_pad(LAYERED, rectangle_pad((-0.04, 0), 0.04, 0.04, patch_size_m=5e-3))
    b = solve_pad(LAYERED, disk_pad((0.04, 0.01), 0.015, patch_size_m=5e-3))
    pts = np.array([[0.0, 0.0, 0.01], [0.03, -0.02, 0.004], [-0.05, 0.0, 0.001]])
    # lone pads superpose exactly
    both = Montage([a, b], [0.02, -0.015], coupled=False).potential(pts)
    np.testing.assert_allclose(both, 0.02 * a.potential(pts) - 0.015 * b.potential(pts), rtol=1e-12)
    # the coupled solution is linear in the currents
    coupled = Montage([a, b], [0.02, -0.015]).potential(pts)
    unit_a = Montage([a, b], [1.0, 0.0]).potential(pts)
    unit_b = Montage([a, b], [0.0, 1.0]).potential(pts)
    np.testing.assert_allclose(coupled, 0.02 * unit_a - 0.015 * unit_b, rtol=1e-10)
    np.testing.assert_allclose(Montage.channel(a, b, 0.01).potential(pts), Montage([a, b], [0.01, -0.01]).potential(pts), rtol=1e-14)


def test_one_pad_montage_is_the_lone_pad():
    a = solve_pad(LAYERED, rectangle_pad((0, 0), 0.04, 0.04, patch_size_m=5e-3), contact_resistivity_ohm_m2=0.003)
    m = Montage([a], [0.02])
    assert m.pad_potentials_v[0] == pytest.approx(0.02 * a.resistance_ohm, rel=1e-9)
    np.testing.assert_allclose(m.patch_currents_a[0], 0.02 * a.patch_currents_a, rtol=1e-12)


def test_coupled_pads_pull_current_towards_each_other():
    """With ideal contacts each pad's current shifts to its inner edge; a large contact resistance undoes it."""
    pa = rectangle_pad((-0.05, 0), 0.05, 0.05, patch_size_m=5e-3)
    pb = rectangle_pad((0.05, 0), 0.05, 0.05, patch_size_m=5e-3)
    a, b = solve_pad(LAYERED, pa), solve_pad(LAYERED, pb)
    ch = Montage.channel(a, b, 1.0)
    inner = pa.centroids_m[:, 0] > -0.05 + 1e-9
    outer = pa.centroids_m[:, 0] < -0.05 - 1e-9
    shift = lambda i: i[inner].sum() - i[outer].sum()
    assert abs(shift(a.patch_currents_a)) < 1e-6
    assert shift(ch.patch_currents_a[0]) > 0.05
    assert ch.patch_currents_a[0].sum() == pytest.approx(1.0, rel=1e-12)
    assert ch.patch_currents_a[1].sum() == pytest.approx(-1.0, rel=1e-12)
    # the channel's resistance: below the lone pads' sum (they share the tissue), and symmetric in the pads
    r = ch.pad_potentials_v[0] - ch.pad_potentials_v[1]
    assert 0.5 * (a.resistance_ohm + b.resistance_ohm) < r < a.resistance_ohm + b.resistance_ohm
    assert ch.pad_potentials_v[0] == pytest.approx(-ch.pad_potentials_v[1], rel=1e-6)
    # lone-pad superposition misplaces the field by several per cent with ideal contacts,
    # much less once the contact resistance (here 200 ohm per pad) dominates
    pts = straight_fibre_points_local()
    gap = lambda x, y: np.abs(x - y).max() / np.abs(x).max()
    assert gap(ch.potential(pts), Montage.channel(a, b, 1.0, coupled=False).potential(pts)) > 0.02
    rc = 0.5
    a2, b2 = solve_pad(LAYERED, pa, contact_resistivity_ohm_m2=rc), solve_pad(LAYERED, pb, contact_resistivity_ohm_m2=rc)
    assert gap(Montage.channel(a2, b2, 1.0).potential(pts), Montage.channel(a2, b2, 1.0, coupled=False).potential(pts)) < 0.01


def straight_fibre_points_local() -> np.ndarray:
    x = np.linspace(-0.1, 0.1, 81)
    return np.column_stack([x, np.full_like(x, 0.01), np.full_like(x, 0.008)])


def test_a_floating_pad_changes_the_field():
    """A pad carrying no net current is still an equipotential: current enters one side and leaves the other."""
    a = solve_pad(LAYERED, rectangle_pad((-0.06, 0), 0.04, 0.04, patch_size_m=5e-3))
    b = solve_pad(LAYERED, rectangle_pad((0.06, 0), 0.04, 0.04, patch_size_m=5e-3))
    f = solve_pad(LAYERED, rectangle_pad((0.0, 0), 0.04, 0.04, patch_size_m=5e-3))
    m = Montage([a, b, f], [1.0, -1.0, 0.0])
    floating = m.patch_currents_a[2]
    assert abs(floating.sum()) < 1e-12
    assert floating[floating > 0].sum() > 0.05 and floating.min() < 0
    pts = np.array([[0.0, 0.0, 0.005], [0.01, 0.0, 0.02]])
    assert not np.allclose(m.potential(pts), Montage([a, b], [1.0, -1.0]).potential(pts), rtol=1e-3)


def test_mutual_resistance_is_reciprocal():
    """Σ_p I_B,p V_A(p) = Σ_q I_A,q V_B(q): the kernel is symmetric (Green's reciprocity)."""
    a = solve_pad(LAYERED, rectangle_pad((-0.03, 0.0), 0.04, 0.03, patch_size_m=4e-3))
    b = solve_pad(LAYERED, disk_pad((0.035, 0.01), 0.012, patch_size_m=3e-3), contact_resistivity_ohm_m2=0.005)
    on_b = np.column_stack([b.pad.centroids_m, np.zeros(b.pad.n_patches)])
    on_a = np.column_stack([a.pad.centroids_m, np.zeros(a.pad.n_patches)])
    m_ab = float(b.patch_currents_a @ a.potential(on_b))
    m_ba = float(a.patch_currents_a @ b.potential(on_a))
    assert m_ab == pytest.approx(m_ba, rel=1e-4)
    # the coupled pads' resistance matrix is symmetric too
    r_ab = Montage([a, b], [0.0, 1.0]).pad_potentials_v[0]
    r_ba = Montage([a, b], [1.0, 0.0]).pad_potentials_v[1]
    assert r_ab == pytest.approx(r_ba, rel=1e-4)


def test_mirror_channel_is_antisymmetric():
    a = solve_pad(LAYERED, rectangle_pad((-0.05, 0.0), 0.05, 0.05, patch_size_m=5e-3))
    b = solve_pad(LAYERED, rectangle_pad((0.05, 0.0), 0.05, 0.05, patch_size_m=5e-3))
    ch = Montage.channel(a, b, 0.01)
    x = np.linspace(-0.1, 0.1, 41)
    pts = np.column_stack([x, np.full_like(x, 0.004), np.full_like(x, 0.012)])
    v = ch.potential(pts)
    np.testing.assert_allclose(v, -v[::-1], atol=1e-6 * np.abs(v).max())
    assert v[0] > 0 > v[-1]


def test_montage_input_errors():
    a = solve_pad(HALF, disk_pad((0, 0), 0.01))
    other = solve_pad(LAYERED, disk_pad((0, 0), 0.01))
    with pytest.raises(InvalidInputError, match=r"one finite current per pad \(1\)"):
        Montage([a], [1.0, 2.0])
    with pytest.raises(InvalidInputError, match=r"same medium"):
        Montage([a, other], [1.0, -1.0])
    with pytest.raises(InvalidInputError, match=r"expected one or more PadSolution"):
        Montage([], [])
    with pytest.raises(InvalidInputError, match=r"depth z must be >= 0"):
        a.potential([0.0, 0.0, -0.001])
    with pytest.raises(InvalidInputError, match=r"expected shape \(\.\.\., 3\)"):
        a.potential([0.0, 0.0])
    with pytest.raises(InvalidInputError, match=r"'contact_resistivity_ohm_m2': it must be >= 0"):
        solve_pad(HALF, disk_pad((0, 0), 0.01), contact_resistivity_ohm_m2=-1.0)
