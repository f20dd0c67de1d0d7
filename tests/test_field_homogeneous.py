"""Point and line sources in a homogeneous medium against their closed forms and physics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

from electrostim.errors import InvalidInputError
from electrostim.physics.field import conductivity_tensor, line_source_potential, point_source_potential

MUSCLE = (0.35, 0.086, 0.086)


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_isotropic_point_source_is_i_over_4_pi_sigma_r():
    rng = np.random.default_rng(0)
    pts = rng.normal(scale=0.02, size=(200, 3))
    src = np.array([0.001, -0.002, 0.003])
    v = point_source_potential(pts, src, 2e-3, 0.2)
    r = np.linalg.norm(pts - src, axis=1)
    np.testing.assert_allclose(v, 2e-3 / (4 * math.pi * 0.2 * r), rtol=1e-13)


def test_anisotropic_point_source_matches_the_diagonal_formula():
    sx, sy, sz = MUSCLE
    rng = np.random.default_rng(1)
    p = rng.normal(scale=0.02, size=(200, 3))
    v = point_source_potential(p, [0, 0, 0], 1e-3, MUSCLE)
    x, y, z = p.T
    expected = 1e-3 / (4 * math.pi * np.sqrt(sy * sz * x**2 + sx * sz * y**2 + sx * sy * z**2))
    np.testing.assert_allclose(v, expected, rtol=1e-13)


def test_anisotropic_point_source_satisfies_the_field_equation():
    """∇·(σ∇V) = 0 away from the source (central differences, 4th order)."""
    sigma = np.array(MUSCLE)
    h = 2e-5
    for p in ([0.01, 0.004, -0.003], [0.002, 0.012, 0.005], [-0.006, -0.001, 0.008]):
        p = np.array(p)
        terms = []
        for axis in range(3):
            e = np.zeros(3)
            e[axis] = h
            stencil = np.array([p - 2 * e, p - e, p, p + e, p + 2 * e])
            f = point_source_potential(stencil, [0, 0, 0], 1.0, MUSCLE)
            second = (-f[0] + 16 * f[1] - 30 * f[2] + 16 * f[3] - f[4]) / (12 * h * h)
            terms.append(sigma[axis] * second)
        assert abs(sum(terms)) < 1e-6 * max(abs(t) for t in terms)


def test_anisotropic_point_source_carries_its_current():
    """The outward current through a cube around the source equals I (normalisation of the derivation).

    With ``V = C/√Q``, ``Q = det σ · xᵀσ⁻¹x``, ``C = I/4π``, the current density
    ``−σ∇V = C det σ · x / Q^{3/2}`` is radial.
    """
    sigma = np.diag(MUSCLE)
    current = 1e-3
    det = np.linalg.det(sigma)
    inv = np.linalg.inv(sigma)
    c = current / (4 * math.pi)
    x, w = np.polynomial.legendre.leggauss(60)
    half = 0.01
    u, v = np.meshgrid(x * half, x * half, indexing="ij")
    ww = np.outer(w, w) * half * half
    total = 0.0
    for axis in range(3):
        for sign in (-1.0, 1.0):
            pts = np.zeros(u.shape + (3,))
            others = [a for a in range(3) if a != axis]
            pts[..., axis] = sign * half
            pts[..., others[0]] = u
            pts[..., others[1]] = v
            q = det * np.einsum("...i,ij,...j->...", pts, inv, pts)
            jn = c * det * sign * pts[..., axis] / q**1.5
            total += float(np.sum(jn * ww))
    assert total == pytest.approx(current, rel=1e-9)


@given(st.floats(0, math.pi), st.floats(0, math.pi), st.floats(0, math.pi))
def test_rotating_tensor_and_points_together_changes_nothing(ax, ay, az):
    rot = _rotation(ax, ay, az)
    sigma = np.diag(MUSCLE)
    pts = np.array([[0.01, 0.002, -0.004], [0.0, 0.0, 0.02], [-0.005, 0.007, 0.001]])
    v0 = point_source_potential(pts, [0, 0, 0], 1.0, sigma)
    v1 = point_source_potential(pts @ rot.T, [0, 0, 0], 1.0, rot @ sigma @ rot.T)
    np.testing.assert_allclose(v1, v0, rtol=1e-10)


def test_point_sources_superpose():
    rng = np.random.default_rng(2)
    pts = rng.normal(scale=0.03, size=(50, 3))
    src = rng.normal(scale=0.01, size=(7, 3))
    cur = rng.normal(size=7) * 1e-3
    together = point_source_potential(pts, src, cur, MUSCLE)
    apart = sum(point_source_potential(pts, s, c, MUSCLE) for s, c in zip(src, cur))
    np.testing.assert_allclose(together, apart, rtol=1e-12, atol=1e-15)


def test_shapes_are_kept():
    v = point_source_potential(np.zeros((4, 5, 3)) + [0.01, 0, 0], [0, 0, 0], 1.0, 0.2)
    assert v.shape == (4, 5)
    assert point_source_potential([0.01, 0, 0], [0, 0, 0], 1.0, 0.2).shape == ()


@pytest.mark.parametrize("sigma", [0.2, MUSCLE, "rotated"])
def test_line_source_is_the_integral_of_point_sources(sigma):
    if sigma == "rotated":
        rot = _rotation(0.3, 0.7, 1.1)
        sigma = rot @ np.diag(MUSCLE) @ rot.T
    a, b = np.array([-0.01, 0.002, 0.003]), np.array([0.012, -0.004, 0.006])
    pts = np.array([[0.0, 0.01, 0.0], [0.02, 0.0, 0.01], [0.0, 0.0, 0.0045], [0.03, -0.006, 0.007]])
    v = line_source_potential(pts, a, b, 1e-3, sigma)
    for p, vp in zip(pts, v):
        f = lambda s, p=p: float(point_source_potential(p, a + s * (b - a), 1e-3, sigma))
        ref, _ = integrate.quad(f, 0.0, 1.0, epsabs=0.0, epsrel=1e-12, limit=200)
        assert vp == pytest.approx(ref, rel=1e-9)


def test_line_source_closed_form_broadside():
    """Seen from distance d off its middle: I/(4πσℓ) · 2 asinh(ℓ/(2d))."""
    ell, d, sigma = 0.04, 0.003, 0.2
    v = line_source_potential([0.0, d, 0.0], [-ell / 2, 0, 0], [ell / 2, 0, 0], 1.0, sigma)
    assert v == pytest.approx(1.0 / (4 * math.pi * sigma * ell) * 2 * math.asinh(ell / (2 * d)), rel=1e-13)


def test_zero_length_line_is_a_point_source():
    pts = np.array([[0.01, 0.02, 0.0], [0.0, 0.0, 0.01]])
    v = line_source_potential(pts, [0.001, 0, 0], [0.001, 0, 0], 1.0, MUSCLE)
    np.testing.assert_allclose(v, point_source_potential(pts, [0.001, 0, 0], 1.0, MUSCLE), rtol=1e-13)


def test_conductivity_tensor_forms():
    assert conductivity_tensor(0.2).tolist() == (np.eye(3) * 0.2).tolist()
    assert np.allclose(conductivity_tensor(MUSCLE), np.diag(MUSCLE))
    full = np.array([[0.3, 0.01, 0.0], [0.01, 0.1, 0.0], [0.0, 0.0, 0.1]])
    assert np.allclose(conductivity_tensor(full), full)


@pytest.mark.parametrize(
    "bad",
    [0.0, -0.2, [0.1, -0.1, 0.1], [0.1, 0.1], [[1, 2, 0], [0, 1, 0], [0, 0, 1]], [[1, 2, 0], [2, 1, 0], [0, 0, 1]], "x", math.nan],
)
def test_bad_conductivity_is_refused(bad):
    with pytest.raises(InvalidInputError, match=r"Invalid value for 'conductivity_s_per_m': it must be positive"):
        point_source_potential([0.01, 0, 0], [0, 0, 0], 1.0, bad)


def test_bad_points_and_currents_are_refused():
    with pytest.raises(InvalidInputError, match=r"expected points as an array of shape \(\.\.\., 3\)"):
        point_source_potential([0.01, 0], [0, 0, 0], 1.0, 0.2)
    with pytest.raises(InvalidInputError, match=r"every coordinate must be finite"):
        point_source_potential([math.inf, 0, 0], [0, 0, 0], 1.0, 0.2)
    with pytest.raises(InvalidInputError, match=r"one current per source \(2\)"):
        point_source_potential([0.01, 0, 0], [[0, 0, 0], [1, 0, 0]], [1.0, 2.0, 3.0], 0.2)
    with pytest.raises(InvalidInputError, match=r"as many segment ends as starts \(2\), but got 1"):
        line_source_potential([0.01, 0, 0], [[0, 0, 0], [1, 0, 0]], [[0, 0, 1]], 1.0, 0.2)
