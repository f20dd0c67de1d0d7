"""Layered tissue (Hankel transform + layer recursion) against image series and physics.

Reference values: the half-space closed form ``I/(2πσr)``, the method of images for a
source in a half-space, and the image series of a layer of thickness ``h`` on a
half-space (source on the surface), ``k = (σ₁ − σ₂)/(σ₁ + σ₂)``::

    0 ≤ z < h:  V = I/(2πσ₁) [1/√(ρ²+z²) + Σₙ₌₁ kⁿ (1/√(ρ²+(2nh−z)²) + 1/√(ρ²+(2nh+z)²))]
    z ≥ h:      V = I/(2πσ₁) (1 + k) Σₙ₌₀ kⁿ / √(ρ²+(2nh+z)²)

(continuity at ``z = h`` is term-by-term; at ``z = 0`` the first is the familiar
``1/r + 2Σ kⁿ/√(r² + (2nh)²)``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from electrostim.errors import InvalidInputError
from electrostim.physics.field import Layer, LayeredMedium, point_source_potential

FOUR = LayeredMedium(
    [Layer("skin", 1.5e-3, 0.43), Layer("fat", 8e-3, 1 / 30), Layer("muscle", 0.04, 0.1735, 0.086), Layer("bone", math.inf, 0.0055)]
)


def image_series(rho, z, h, s1, s2, current=1.0, terms=4000):
    k = (s1 - s2) / (s1 + s2)
    rho = np.asarray(rho, dtype=float)[..., None]
    z = np.asarray(z, dtype=float)[..., None]
    n = np.arange(1, terms)
    kn = k**n
    images = 1 / np.sqrt(rho**2 + (2 * n * h - z) ** 2) + 1 / np.sqrt(rho**2 + (2 * n * h + z) ** 2)
    top = 1 / np.sqrt(rho**2 + z**2) + np.sum(kn * images, -1)[..., None]
    below = (1 + k) * (1 / np.sqrt(rho**2 + z**2) + np.sum(kn / np.sqrt(rho**2 + (2 * n * h + z) ** 2), -1)[..., None])
    return current / (2 * math.pi * s1) * np.where(z < h, top, below)[..., 0]


def two_layer(h, s1, s2):
    return LayeredMedium([Layer("top", h, s1), Layer("bottom", math.inf, s2)])


CONTRASTS = [(0.43, 1 / 30), (1 / 30, 0.43), (0.2, 0.25), (0.1735, 0.0055)]
RHO = np.array([1e-5, 1e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3])


# --------------------------------------------------------------------------- closed forms


def test_one_layer_is_a_half_space():
    half = LayeredMedium([Layer("tissue", math.inf, 0.2)])
    rho = np.array([1e-4, 0.003, 0.02, 0.3, 0.0, 0.01])
    z = np.array([0.0, 0.0, 0.0, 0.0, 0.01, 0.004])
    expected = 1e-3 / (2 * math.pi * 0.2 * np.hypot(rho, z))
    np.testing.assert_allclose(half.potential(rho, z, current_a=1e-3), expected, rtol=1e-13)
    np.testing.assert_allclose(half.table(rho_max_m=0.4).potential(rho, z, current_a=1e-3), expected, rtol=1e-12)


def test_buried_source_in_a_half_space_is_source_plus_image():
    half = LayeredMedium([Layer("tissue", math.inf, 0.2)])
    zs = 0.01
    rho = np.array([0.0, 1e-3, 0.01, 0.05, 0.02, 0.2])
    z = np.array([0.0, 0.005, 0.02, 0.01, 0.0101, 0.03])
    expected = 1 / (4 * math.pi * 0.2) * (1 / np.hypot(rho, z - zs) + 1 / np.hypot(rho, z + zs))
    np.testing.assert_allclose(half.potential(rho, z, source_depth_m=zs), expected, rtol=1e-12)
    np.testing.assert_allclose(half.table(source_depth_m=zs, rho_max_m=0.25).potential(rho, z), expected, rtol=1e-6)


@pytest.mark.parametrize(("s1", "s2"), CONTRASTS)
def test_two_layers_on_the_surface_match_the_image_series(s1, s2):
    med = two_layer(1.5e-3, s1, s2)
    v = med.potential(RHO, 0.0)
    np.testing.assert_allclose(v, image_series(RHO, 0.0, 1.5e-3, s1, s2), rtol=1e-10)


@pytest.mark.parametrize(("s1", "s2"), CONTRASTS)
def test_two_layers_at_depth_match_the_image_series(s1, s2):
    h = 2e-3
    med = two_layer(h, s1, s2)
    rho, z = np.meshgrid(RHO, [1e-4, 1e-3, 1.999e-3, 2e-3, 2.001e-3, 5e-3, 0.02, 0.08])
    np.testing.assert_allclose(med.potential(rho, z), image_series(rho, z, h, s1, s2), rtol=1e-10)


@pytest.mark.parametrize(("s1", "s2"), CONTRASTS)
def test_two_layer_table_matches_the_image_series(s1, s2):
    h = 1.5e-3
    med = two_layer(h, s1, s2)
    rho, z = np.meshgrid(np.concatenate([RHO, [0.2, 0.45]]), [0.0, 3e-4, 1.4e-3, 1.5e-3, 1.6e-3, 4e-3, 0.03, 0.09])
    v = med.table(rho_max_m=0.5, z_max_m=0.1).potential(rho, z)
    err = np.abs(v / image_series(rho, z, h, s1, s2) - 1)
    assert err.max() < 2e-6


def test_transversely_isotropic_layer_is_a_stretched_isotropic_one():
    """Layers with the same λ = √(σh/σv) map to isotropic ones (σ → √(σhσv), z → λz)."""
    lam, s1, s2, h = 1.7, 0.3, 0.05, 2e-3
    ti = LayeredMedium([Layer("a", h, s1, s1 / lam**2), Layer("b", math.inf, s2, s2 / lam**2)])
    rho, z = np.meshgrid([1e-3, 0.01, 0.04], [0.0, 1e-3, 5e-3, 0.02])
    np.testing.assert_allclose(ti.potential(rho, z), image_series(rho, lam * z, lam * h, s1 / lam, s2 / lam), rtol=1e-10)


def test_transversely_isotropic_half_space_matches_the_anisotropic_closed_form():
    """A surface source on a half-space σ = diag(σh, σh, σv): twice the unbounded potential."""
    sh, sv = 0.1735, 0.086
    half = LayeredMedium([Layer("muscle", math.inf, sh, sv)])
    rho = np.array([1e-3, 0.01, 0.0, 0.03, 0.02])
    z = np.array([0.0, 0.0, 0.02, 0.01, 0.05])
    pts = np.stack([rho, np.zeros_like(rho), z], axis=1)
    expected = 2 * point_source_potential(pts, [0, 0, 0], 1.0, [sh, sh, sv])
    np.testing.assert_allclose(half.potential(rho, z), expected, rtol=1e-12)


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize(
    ("za", "zb"), [(0.0, 0.02), (0.0, 0.0012), (0.0005, 0.03), (0.005, 0.06), (0.02, 0.03), (0.0007, 0.0011), (0.012, 0.08)]
)
def test_reciprocity(za, zb):
    """Swapping source and field point leaves the potential unchanged (four layers, anisotropic muscle)."""
    rho = np.array([0.0, 0.002, 0.03, 0.2])
    a = FOUR.potential(rho, zb, source_depth_m=za)
    b = FOUR.potential(rho, za, source_depth_m=zb)
    np.testing.assert_allclose(a, b, rtol=1e-10)


@settings(max_examples=25)
@given(st.floats(0.05, 0.95), st.floats(1e-3, 0.1), st.floats(0.0, 0.02))
def test_splitting_a_layer_in_two_changes_nothing(fraction, rho, z):
    layers = list(FOUR.layers)
    fat = layers[1]
    split = [Layer("fat-a", fat.thickness_m * fraction, fat.sigma_h_s_per_m),
             Layer("fat-b", fat.thickness_m * (1 - fraction), fat.sigma_h_s_per_m)]
    other = LayeredMedium(layers[:1] + split + layers[2:])
    assert other.potential(rho, z) == pytest.approx(float(FOUR.potential(rho, z)), rel=1e-10)


@pytest.mark.parametrize("source_depth", [0.0, 0.02])
def test_potential_and_normal_current_are_continuous_across_interfaces(source_depth):
    d = 1e-7
    stack = FOUR.layers
    for i, zb in enumerate(FOUR.interfaces_m):
        above, below = stack[i], stack[i + 1]
        z = np.array([zb - 2 * d, zb - d, zb, zb + d, zb + 2 * d])
        for rho in (0.003, 0.02):
            v = FOUR.potential(rho, z, source_depth_m=source_depth)
            # extrapolated from either side to the boundary
            assert 2 * v[1] - v[0] == pytest.approx(v[2], rel=1e-9)
            assert 2 * v[3] - v[4] == pytest.approx(v[2], rel=1e-9)
            # second-order one-sided derivatives
            j_above = -above.sigma_v_s_per_m * (3 * v[2] - 4 * v[1] + v[0]) / (2 * d)
            j_below = -below.sigma_v_s_per_m * (-3 * v[2] + 4 * v[3] - v[4]) / (2 * d)
            assert j_above == pytest.approx(j_below, rel=1e-4)


def test_conductive_layer_over_resistive_bottom_spreads_far():
    """Muscle over poorly conducting bone: structure at small k (spreading length σt/σ_bottom) is resolved.

    Checked against reciprocity at large distance, where a coarse k-grid would fail.
    """
    med = LayeredMedium([Layer("muscle", 0.04, 0.35), Layer("bone", math.inf, 0.0055)])
    rho = np.array([0.05, 0.2, 0.45])
    a = med.potential(rho, 0.03)
    b = med.potential(rho, 0.0, source_depth_m=0.03)
    np.testing.assert_allclose(a, b, rtol=1e-10)
    # far away the bottom governs: between the layer's and the bottom's half-space values
    far = med.potential(5.0, 0.0)
    assert 1 / (2 * math.pi * 0.35 * 5.0) < far < 1 / (2 * math.pi * 0.0055 * 5.0)


def test_table_agrees_with_direct_evaluation_everywhere():
    rng = np.random.default_rng(3)
    n = 1500
    rho = np.exp(rng.uniform(math.log(1e-5), math.log(0.5), n))
    z = np.exp(rng.uniform(math.log(1e-6), math.log(0.1), n))
    z[:60] = 0.0
    z[60:150] = np.repeat(FOUR.interfaces_m, 30)
    tab = FOUR.table()
    err = np.abs(tab.potential(rho, z) / FOUR.potential(rho, z) - 1)
    assert err.max() < 5e-6


@pytest.mark.parametrize("source_depth", [0.005, 0.03, 0.08])
def test_buried_source_table_agrees_with_direct_evaluation(source_depth):
    rng = np.random.default_rng(4)
    n = 600
    rho = np.exp(rng.uniform(math.log(1e-5), math.log(0.4), n))
    z = rng.uniform(0.0, 0.1, n)
    tab = FOUR.table(source_depth_m=source_depth, rho_max_m=0.4)
    err = np.abs(tab.potential(rho, z) / FOUR.potential(rho, z, source_depth_m=source_depth) - 1)
    assert err.max() < 5e-5


def test_potential_scales_with_current():
    assert float(FOUR.potential(0.01, 0.005, current_a=0.02)) == pytest.approx(0.02 * float(FOUR.potential(0.01, 0.005)), rel=1e-14)


def test_tables_are_cached_and_read_only():
    tab = FOUR.table(rho_max_m=0.2)
    assert FOUR.table(rho_max_m=0.2) is tab
    with pytest.raises(ValueError):
        tab.remainder_v_per_a[0, 0] = 1.0


def test_layer_lookup_and_interfaces():
    assert FOUR.interfaces_m.tolist() == pytest.approx([1.5e-3, 9.5e-3, 0.0495])
    assert FOUR.layer_at([0.0, 1.4e-3, 1.5e-3, 0.0495, 1.0]).tolist() == [0, 0, 1, 3, 3]


# --------------------------------------------------------------------------- input errors


def test_bad_layers_are_refused():
    with pytest.raises(InvalidInputError, match=r"the last layer is the half-space below and needs thickness_m = inf"):
        LayeredMedium([Layer("skin", 1e-3, 0.43)])
    with pytest.raises(InvalidInputError, match=r"only the last layer may be a half-space"):
        LayeredMedium([Layer("a", math.inf, 0.43), Layer("b", math.inf, 0.2)])
    with pytest.raises(InvalidInputError, match=r"expected one or more Layer objects"):
        LayeredMedium([])
    with pytest.raises(InvalidInputError, match=r"Invalid value for 'thickness_m': it must be > 0"):
        Layer("skin", -1e-3, 0.43)
    with pytest.raises(InvalidInputError, match=r"Invalid value for 'conductivity_s_per_m': it must be > 0 and finite"):
        Layer("skin", 1e-3, 0.0)
    with pytest.raises(InvalidInputError, match=r"Invalid value for 'vertical_conductivity_s_per_m'"):
        Layer("skin", 1e-3, 0.4, -1.0)


def test_bad_points_and_sources_are_refused():
    with pytest.raises(InvalidInputError, match=r"depth z_m must be finite and >= 0"):
        FOUR.potential(0.01, -1e-3)
    with pytest.raises(InvalidInputError, match=r"a buried source must lie at least 1e-06 m from a layer boundary"):
        FOUR.potential(0.01, 0.0, source_depth_m=1.5e-3)
    with pytest.raises(InvalidInputError, match=r"'source_depth_m': it must be >= 0"):
        FOUR.potential(0.01, 0.0, source_depth_m=-0.01)
    tab = FOUR.table(rho_max_m=0.1, z_max_m=0.05)
    with pytest.raises(InvalidInputError, match=r"Field points beyond the table"):
        tab.potential(0.2, 0.01)
    with pytest.raises(InvalidInputError, match=r"Field points beyond the table"):
        tab.potential(0.01, 0.06)
    with pytest.raises(InvalidInputError, match=r"depth z must be >= 0"):
        tab.potential(0.01, -0.001)
