"""Skin electrodes (pads) on layered tissue: patches, contact impedance, fields.

A pad is split into patches (small polygons tiling it). Each patch connects the pad's
metal, which is one equipotential ``V_e``, to the skin under it through a contact
resistance ``r_c / A_p`` (``r_c`` the specific contact resistivity in Ω·m², ``A_p`` the
patch area). Each patch injects a uniform current density; with ``Z_pq`` the skin
potential at the centroid of patch ``p`` per ampere spread over patch ``q``::

    Σ_q Z_pq I_q + (r_c/A_p) I_p = V_e   for every patch p,     Σ_p I_p = I.

Solved once per pad for ``I = 1 A``: the patch currents and the pad's resistance to
the far tissue ``R = V_e / I`` (contact included). With ``r_c = 0`` the current crowds
at the edges (Newman 1966: on a half-space ``J(r) = I/(2πa√(a² − r²))`` under a disk
of radius ``a``, ``R = 1/(4σa)``); a large ``r_c`` spreads it evenly.

Potentials of a patch (in ``Z`` and at field points alike) use the split of the
Green's function into closed-form image terms and a smooth tabulated remainder
(:mod:`._layered`): near a patch each image term is integrated over the polygon in
closed form (``_kernels.polygon_integral``) and the remainder is taken at the
centroid with its quadrupole correction; far from it the whole Green's function is
taken at the centroid with its quadrupole correction (relative error of order
``(s/R)⁴`` for a patch of size ``s`` at distance ``R``).

Several pads (:class:`Montage`) are solved together by default: each pad's metal
is an equipotential with its own net current, and the current under each pad responds
to the others' fields (one solve per set of pads, linear in the currents). The
simpler superposition of each pad's lone unit-current distribution (``coupled=False``)
is also available; with ideal contacts it misplaces a few per cent of the current for
pads closer than a few pad sizes.

Coordinates: ``x``, ``y`` on the skin, ``z`` depth below it, metres; SI throughout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ...errors import InvalidInputError
from ._layered import LayeredMedium, _max_distance

__all__ = ["Pad", "rectangle_pad", "disk_pad", "pad_from_spec", "PadSolution", "solve_pad", "Montage"]

#: closed-form patch integration within this many patch radii
_NEAR = 4.0
#: points per block of :meth:`Montage.potential` with a progress callback: whole chunks of the kernel
#: (64 points each), so that every point is computed exactly as in a single call
PROGRESS_BLOCK = 64 * 256


def _finite_positive(name: str, value: object) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"Invalid value for {name!r}: expected a number, but got {value!r}.") from None
    if not (v > 0.0) or math.isinf(v):
        raise InvalidInputError(f"Invalid value for {name!r}: it must be > 0 and finite, but got {value!r}.")
    return v


def _center(value: object) -> tuple[float, float]:
    c = np.asarray(value, dtype=float).ravel()
    if c.shape != (2,) or not np.all(np.isfinite(c)):
        raise InvalidInputError(f"Invalid value for 'center_m': expected (x, y) on the skin in metres, but got {value!r}.")
    return float(c[0]), float(c[1])


def _grading(value: float) -> float:
    g = float(value)
    if not 0.0 <= g <= 1.0:
        raise InvalidInputError(
            f"Invalid value for 'grading': allowed 0 (even patches) to 1 (strongly refined at the edges), but got {value!r}."
        )
    return g


def _polygon_props(verts: np.ndarray, nv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Areas, centroids and centroid-to-vertex radii of padded polygons (P, V, 2)."""
    p, vmax, _ = verts.shape
    idx = np.arange(vmax)[None, :]
    valid = idx < nv[:, None]
    nxt = np.where(idx + 1 < nv[:, None], idx + 1, 0)
    x, y = verts[..., 0], verts[..., 1]
    xn = np.take_along_axis(x, nxt, axis=1)
    yn = np.take_along_axis(y, nxt, axis=1)
    cross = np.where(valid, x * yn - xn * y, 0.0)
    area = 0.5 * cross.sum(axis=1)
    cx = ((x + xn) * cross).sum(axis=1) / (6.0 * area)
    cy = ((y + yn) * cross).sum(axis=1) / (6.0 * area)
    d = np.where(valid, np.hypot(x - cx[:, None], y - cy[:, None]), 0.0)
    return area, np.stack([cx, cy], axis=1), d.max(axis=1)


def _second_moments(verts: np.ndarray, nv: np.ndarray, centroids: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Central second moments per unit area ``(m_xx, m_xy, m_yy)`` of padded polygons, shape (P, 3), m²."""
    p, vmax, _ = verts.shape
    idx = np.arange(vmax)[None, :]
    valid = idx < nv[:, None]
    nxt = np.where(idx + 1 < nv[:, None], idx + 1, 0)
    x = verts[..., 0] - centroids[:, 0, None]
    y = verts[..., 1] - centroids[:, 1, None]
    xn = np.take_along_axis(x, nxt, axis=1)
    yn = np.take_along_axis(y, nxt, axis=1)
    cross = np.where(valid, x * yn - xn * y, 0.0)
    ixx = (cross * (x * x + x * xn + xn * xn)).sum(axis=1) / 12.0
    iyy = (cross * (y * y + y * yn + yn * yn)).sum(axis=1) / 12.0
    ixy = (cross * (x * yn + 2 * x * y + 2 * xn * yn + xn * y)).sum(axis=1) / 24.0
    return np.stack([ixx, ixy, iyy], axis=1) / areas[:, None]


@dataclass(frozen=True, eq=False)
class Pad:
    """A pad on the skin split into patches. Build it with :func:`rectangle_pad` or :func:`disk_pad`.

    Attributes
    ----------
    shape : str
        ``"rectangle"`` or ``"disk"``.
    center_m : tuple of float
        Centre on the skin ``(x, y)``, metres.
    size_m : tuple of float
        ``(width, height)`` of a rectangle or ``(diameter, diameter)`` of a disk, metres.
    angle_rad : float
        Rotation of a rectangle's width axis from ``x``, radians.
    vertices_m : numpy.ndarray, shape (P, V, 2)
        Patch polygons, counter-clockwise, padded to ``V`` vertices; metres.
    n_vertices : numpy.ndarray, shape (P,)
        Vertices used in each row of ``vertices_m``.
    centroids_m : numpy.ndarray, shape (P, 2)
    areas_m2 : numpy.ndarray, shape (P,)
    radii_m : numpy.ndarray, shape (P,)
        Largest centroid-to-vertex distance of each patch.
    ring_radii_m : numpy.ndarray or None
        For a disk: the radii bounding its rings (``n_rings + 1`` values).
    patch_ring : numpy.ndarray or None
        For a disk: the ring of each patch.
    """

    shape: str
    center_m: tuple[float, float]
    size_m: tuple[float, float]
    angle_rad: float
    vertices_m: np.ndarray = field(repr=False)
    n_vertices: np.ndarray = field(repr=False)
    centroids_m: np.ndarray = field(repr=False)
    areas_m2: np.ndarray = field(repr=False)
    radii_m: np.ndarray = field(repr=False)
    moments_m2: np.ndarray = field(repr=False)
    ring_radii_m: np.ndarray | None = field(default=None, repr=False)
    patch_ring: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_patches(self) -> int:
        """Number of patches."""
        return len(self.areas_m2)

    @property
    def area_m2(self) -> float:
        """Conductive area, m²."""
        return float(self.areas_m2.sum())


def _make_pad(shape: str, center: tuple[float, float], size: tuple[float, float], angle: float, verts: np.ndarray, nv: np.ndarray,
              ring_radii: np.ndarray | None = None, patch_ring: np.ndarray | None = None) -> Pad:
    area, cen, rad = _polygon_props(verts, nv)
    if np.any(area <= 0):  # pragma: no cover - the meshers make counter-clockwise polygons
        raise AssertionError("patch polygons must be counter-clockwise")
    mom = _second_moments(verts, nv, cen, area)
    arrays = [verts, nv, cen, area, rad, mom] + [a for a in (ring_radii, patch_ring) if a is not None]
    for a in arrays:
        a.setflags(write=False)
    return Pad(shape, center, size, angle, verts, nv, cen, area, rad, mom, ring_radii, patch_ring)


def _default_patch(smallest_m: float) -> float:
    return min(3e-3, max(1e-3, smallest_m / 16.0))


def rectangle_pad(
    center_m: object,
    width_m: float,
    height_m: float,
    *,
    angle_rad: float = 0.0,
    patch_size_m: float | None = None,
    grading: float = 0.0,
) -> Pad:
    """A rectangular pad split into a grid of patches.

    Parameters
    ----------
    center_m : (float, float)
        Centre on the skin, metres.
    width_m, height_m : float
        Sides, metres (``width_m`` along the rotated x axis).
    angle_rad : float
        Rotation of the width axis from ``x``, radians.
    patch_size_m : float, optional
        Target side of a patch, metres; default ``min(w, h)/16`` within 1–3 mm.
    grading : float
        0: even patches; up to 1: patches shrinking towards the edges (cosine
        spacing), which resolves the current crowding at the rim with fewer patches.

    Returns
    -------
    Pad

    Examples
    --------
    >>> pad = rectangle_pad((0.0, 0.0), 0.05, 0.09, patch_size_m=5e-3)
    >>> pad.n_patches, round(pad.area_m2 * 1e4, 6)
    (180, 45.0)
    """
    c = _center(center_m)
    w = _finite_positive("width_m", width_m)
    h = _finite_positive("height_m", height_m)
    ps = _default_patch(min(w, h)) if patch_size_m is None else _finite_positive("patch_size_m", patch_size_m)
    g = _grading(grading)
    nx = max(2, int(math.ceil(w / ps - 1e-9)))
    ny = max(2, int(math.ceil(h / ps - 1e-9)))

    def nodes(n: int, length: float) -> np.ndarray:
        xi = np.linspace(-1.0, 1.0, n + 1)
        return 0.5 * length * ((1.0 - g) * xi + g * np.sin(0.5 * math.pi * xi))

    xs, ys = nodes(nx, w), nodes(ny, h)
    i2, j2 = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    i, j = i2.ravel(), j2.ravel()
    local = np.stack(
        [np.stack([xs[i], ys[j]], -1), np.stack([xs[i + 1], ys[j]], -1),
         np.stack([xs[i + 1], ys[j + 1]], -1), np.stack([xs[i], ys[j + 1]], -1)],
        axis=1,
    )
    ca, sa = math.cos(angle_rad), math.sin(angle_rad)
    rot = np.array([[ca, -sa], [sa, ca]])
    verts = local @ rot.T + np.array(c)
    return _make_pad("rectangle", c, (w, h), float(angle_rad), verts, np.full(len(verts), 4, dtype=np.int64))


def disk_pad(center_m: object, radius_m: float, *, patch_size_m: float | None = None, grading: float = 0.0) -> Pad:
    """A round pad split into rings of patches (a central polygon, then annular sectors).

    Rings are ``patch_size_m`` wide (narrowing towards the rim with ``grading``);
    the sectors per ring double outwards so that neighbouring rings share vertices
    and the patches tile the disk exactly. The outer polygon's radius is set so its
    area is ``πa²``.

    Parameters
    ----------
    center_m : (float, float)
        Centre on the skin, metres.
    radius_m : float
        Radius, metres.
    patch_size_m : float, optional
        Target patch size, metres; default ``diameter/16`` within 1–3 mm.
    grading : float
        0: even rings; up to 1: rings narrowing towards the rim (``r = a sin(πs/2)``).

    Returns
    -------
    Pad

    Examples
    --------
    >>> pad = disk_pad((0.0, 0.0), 0.0125, patch_size_m=2.5e-3)
    >>> pad.n_patches, bool(np.isclose(pad.area_m2, np.pi * 0.0125**2))
    (109, True)
    """
    c = _center(center_m)
    a = _finite_positive("radius_m", radius_m)
    ps = _default_patch(2 * a) if patch_size_m is None else _finite_positive("patch_size_m", patch_size_m)
    g = _grading(grading)
    n_r = max(1, int(math.ceil(a / ps - 1e-9)))
    s = np.arange(n_r + 1) / n_r
    r = a * ((1.0 - g) * s + g * np.sin(0.5 * math.pi * s))
    # sectors per ring (ring 0 is the central polygon): doubling outwards
    n_t = [1]
    for i in range(1, n_r):
        n = max(6, n_t[-1])
        while 2.0 * math.pi * 0.5 * (r[i] + r[i + 1]) / n > ps * 1.0001:
            n *= 2
        n_t.append(n)
    n_outer = max(24, n_t[-1]) if n_r > 1 else 24
    while n_outer % n_t[-1]:
        n_outer += 1
    r_outer = a * math.sqrt(2.0 * math.pi / (n_outer * math.sin(2.0 * math.pi / n_outer)))

    polys: list[np.ndarray] = []
    rings: list[int] = []
    boundary = [n_t[1] if n_r > 1 else n_outer]  # subdivision of each ring's outer boundary
    for i in range(1, n_r):
        boundary.append(n_t[i + 1] if i + 1 < n_r else n_outer)
    radius_of = [r[1] if n_r > 1 else r_outer] + [r[i + 1] if i + 1 < n_r else r_outer for i in range(1, n_r)]

    th = 2.0 * math.pi * np.arange(boundary[0]) / boundary[0]
    polys.append(np.stack([radius_of[0] * np.cos(th), radius_of[0] * np.sin(th)], axis=1))
    rings.append(0)
    for i in range(1, n_r):
        f = boundary[i] // n_t[i]
        for m in range(n_t[i]):
            t0 = 2.0 * math.pi * m / n_t[i]
            t1 = 2.0 * math.pi * (m + 1) / n_t[i]
            outer = np.linspace(t0, t1, f + 1)
            pts = [(r[i] * math.cos(t0), r[i] * math.sin(t0))]
            pts += [(radius_of[i] * math.cos(t), radius_of[i] * math.sin(t)) for t in outer]
            pts.append((r[i] * math.cos(t1), r[i] * math.sin(t1)))
            polys.append(np.array(pts))
            rings.append(i)
    vmax = max(len(p) for p in polys)
    verts = np.zeros((len(polys), vmax, 2))
    nv = np.zeros(len(polys), dtype=np.int64)
    for q, poly in enumerate(polys):
        verts[q, : len(poly)] = poly
        nv[q] = len(poly)
    verts += np.array(c)
    return _make_pad("disk", c, (2 * a, 2 * a), 0.0, verts, nv, r.copy(), np.array(rings, dtype=np.int64))


def pad_from_spec(spec: object, center_m: object, *, angle_rad: float = 0.0, patch_size_m: float | None = None,
                  grading: float = 0.0) -> Pad:
    """The pad of a catalogue electrode or a program's electrode, placed on the skin.

    Sizes in centimetres (``width_cm``, ``height_cm``, ``diameter_cm``) are converted
    to metres here, once.

    Parameters
    ----------
    spec : str or object
        A catalogue id (:func:`electrostim.anatomy.get_electrode`) or anything with
        ``shape`` (``"rectangle"`` or ``"disk"``) and ``width_cm``/``height_cm`` or
        ``diameter_cm`` (:class:`electrostim.anatomy.ElectrodeSpec`, a program's
        electrode).
    center_m : (float, float)
        Centre on the skin, metres.
    angle_rad, patch_size_m, grading
        As for :func:`rectangle_pad` and :func:`disk_pad`.

    Returns
    -------
    Pad

    Examples
    --------
    >>> from electrostim.anatomy import ElectrodeSpec
    >>> spec = ElectrodeSpec("rect-5x9", "5 x 9 cm", "rectangle", 5.0, 9.0, None, "")
    >>> pad = pad_from_spec(spec, (0.0, 0.0), angle_rad=math.pi / 2)
    >>> pad.shape, pad.size_m, round(pad.area_m2 * 1e4, 6)
    ('rectangle', (0.05, 0.09), 45.0)
    >>> round_pad = ElectrodeSpec("round-3.2", "Round 3.2 cm", "disk", None, None, 3.2, "")
    >>> pad_from_spec(round_pad, (0.02, 0.0)).size_m
    (0.032, 0.032)
    """
    if isinstance(spec, str):
        from ... import anatomy

        spec = anatomy.get_electrode(spec)
    shape = getattr(spec, "shape", None)
    if shape == "rectangle":
        return rectangle_pad(center_m, float(spec.width_cm) * 1e-2, float(spec.height_cm) * 1e-2,  # type: ignore[attr-defined]
                             angle_rad=angle_rad, patch_size_m=patch_size_m, grading=grading)
    if shape == "disk":
        return disk_pad(center_m, 0.5e-2 * float(spec.diameter_cm), patch_size_m=patch_size_m, grading=grading)  # type: ignore[attr-defined]
    raise InvalidInputError(f"Invalid value for 'spec': expected an electrode with shape 'rectangle' or 'disk', but got {spec!r}.")


def _table_for(medium: LayeredMedium, reach_m: float, depth_m: float):
    """The surface-source table covering ``reach_m`` horizontally and ``depth_m`` deep (sizes rounded up, so tables are shared)."""
    rho = 0.5
    while rho < reach_m * 1.0001:
        rho *= 2.0
    z_default = max(0.1, float(medium.interfaces_m[-1]) + 0.05 if len(medium.interfaces_m) else 0.1)
    z = z_default
    while z < depth_m * 1.0001:
        z *= 2.0
    return medium.table(0.0, rho_max_m=rho, z_max_m=z)


def _patch_extent_m(pads: Sequence[Pad], points: np.ndarray) -> tuple[float, float]:
    """How far (m) the points (N, 3) lie from the patches of ``pads``, horizontally, and their largest depth (m)."""
    cen = np.concatenate([p.centroids_m for p in pads])
    return _max_distance(points[:, :2], cen), float(points[:, 2].max())


def _patch_potentials(medium: LayeredMedium, pads: Sequence[Pad], strengths: np.ndarray, points: np.ndarray,
                      group: np.ndarray | None = None, n_groups: int = 1,
                      extent_m: tuple[float, float] | None = None) -> np.ndarray:
    """Potentials (V) at ``points`` (N, 3) of uniform sheets of ``strengths`` (A) on the patches of ``pads``.

    Returns (N, n_groups); patch ``q`` (counted across the pads) adds into column ``group[q]``.
    ``extent_m`` (reach, depth) sizes the table; by default that of ``points``, so that the
    blocks of a larger set of points, given the set's extent, use the same table as the set.
    """
    from ._kernels import patch_superpose

    vmax = max(p.vertices_m.shape[1] for p in pads)
    verts = np.concatenate([np.pad(p.vertices_m, ((0, 0), (0, vmax - p.vertices_m.shape[1]), (0, 0))) for p in pads])
    nv = np.concatenate([p.n_vertices for p in pads])
    cen = np.concatenate([p.centroids_m for p in pads])
    rad = np.concatenate([p.radii_m for p in pads])
    area = np.concatenate([p.areas_m2 for p in pads])
    mom = np.concatenate([p.moments_m2 for p in pads])
    reach_m, depth_m = _patch_extent_m(pads, points) if extent_m is None else extent_m
    table = _table_for(medium, reach_m, depth_m)
    table.check_range(points, cen)
    a_img, c_img = table.images(points[:, 2])
    g = np.zeros(len(cen), dtype=np.int64) if group is None else np.ascontiguousarray(group, dtype=np.int64)
    col = np.ascontiguousarray
    return patch_superpose(
        col(points[:, 0]), col(points[:, 1]), col(points[:, 2]), col(a_img), col(c_img),
        col(verts[..., 0]), col(verts[..., 1]), nv, col(cen[:, 0]), col(cen[:, 1]), rad, area,
        col(mom[:, 0]), col(mom[:, 1]), col(mom[:, 2]), col(strengths, dtype=float), g, int(n_groups), _NEAR,
        table.remainder_v_per_a, table.full_v_per_a, *table.grid_args(),
    )


def _impedance_matrix(medium: LayeredMedium, pad: Pad) -> np.ndarray:
    """``Z_pq`` (Ω): skin potential at the centroid of patch ``p`` per ampere spread evenly over patch ``q``."""
    n = pad.n_patches
    pts = np.column_stack([pad.centroids_m, np.zeros(n)])
    return _patch_potentials(medium, [pad], np.ones(n), pts, np.arange(n, dtype=np.int64), n)


@dataclass(frozen=True, eq=False)
class PadSolution:
    """A pad on a medium with its unit-current patch distribution (from :func:`solve_pad`).

    Attributes
    ----------
    medium : LayeredMedium
    pad : Pad
    contact_resistivity_ohm_m2 : float
        Specific contact resistivity of the pad–skin interface, Ω·m².
    patch_currents_a : numpy.ndarray, shape (P,)
        Current through each patch when the pad carries 1 A (they sum to 1).
    resistance_ohm : float
        Potential of the pad's metal per ampere (contact + spreading into the tissue,
        referred to the far tissue), Ω.
    """

    medium: LayeredMedium
    pad: Pad
    contact_resistivity_ohm_m2: float
    patch_currents_a: np.ndarray = field(repr=False)
    resistance_ohm: float

    @property
    def current_density_a_per_m2(self) -> np.ndarray:
        """Current density under each patch for 1 A, A/m²."""
        return self.patch_currents_a / self.pad.areas_m2

    def potential(self, points_m: object, current_a: float = 1.0) -> np.ndarray:
        """Potential (V) at ``points_m`` (..., 3) when this pad alone injects ``current_a`` (A).

        Examples
        --------
        >>> import math
        >>> from electrostim.physics.field import Layer, LayeredMedium
        >>> half = LayeredMedium([Layer("tissue", math.inf, 0.2)])
        >>> sol = solve_pad(half, disk_pad((0, 0), 0.01, patch_size_m=2.5e-3), contact_resistivity_ohm_m2=1e3)
        >>> v = sol.potential([[0.0, 0.0, 0.2]], current_a=1e-3)       # far away: a point source
        >>> bool(np.isclose(v[0], 1e-3 / (2 * math.pi * 0.2 * 0.2), rtol=1e-3))
        True
        """
        return Montage([self], [current_a]).potential(points_m)


def solve_pad(medium: LayeredMedium, pad: Pad, *, contact_resistivity_ohm_m2: float = 0.0) -> PadSolution:
    """Distribute 1 A over a pad's patches: equipotential metal, contact resistance per area.

    Solves ``(Z + diag(r_c/A)) x = 1``, ``I = x/Σx``, ``R = 1/Σx`` (see the module notes).

    Parameters
    ----------
    medium : LayeredMedium
        The tissue under the pad.
    pad : Pad
        The pad on the skin.
    contact_resistivity_ohm_m2 : float
        Specific contact resistivity ``r_c`` (Ω·m²) between pad and skin; 0 is an
        ideal contact (current crowds at the edges).

    Returns
    -------
    PadSolution

    Examples
    --------
    Newman's disk on a half-space, ``R = 1/(4σa)``:

    >>> import math
    >>> from electrostim.physics.field import Layer, LayeredMedium
    >>> half = LayeredMedium([Layer("tissue", math.inf, 0.2)])
    >>> sol = solve_pad(half, disk_pad((0, 0), 0.01, patch_size_m=1e-3, grading=1.0))
    >>> round(sol.resistance_ohm / (1 / (4 * 0.2 * 0.01)), 3)
    1.002
    """
    rc = float(contact_resistivity_ohm_m2)
    if not (rc >= 0.0) or math.isinf(rc):
        raise InvalidInputError(
            f"Invalid value for 'contact_resistivity_ohm_m2': it must be >= 0 and finite, but got {contact_resistivity_ohm_m2!r}."
        )
    if not isinstance(medium, LayeredMedium) or not isinstance(pad, Pad):
        raise InvalidInputError("solve_pad needs a LayeredMedium and a Pad (see rectangle_pad, disk_pad).")
    z = _impedance_matrix(medium, pad)
    z[np.diag_indices_from(z)] += rc / pad.areas_m2
    x = np.linalg.solve(z, np.ones(pad.n_patches))
    total = float(x.sum())
    currents = x / total
    currents.setflags(write=False)
    return PadSolution(medium, pad, rc, currents, 1.0 / total)


@lru_cache(maxsize=16)
def _coupled(pads: tuple[PadSolution, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Patch currents (N, n) and metal potentials (n, n) of pads solved together, per ampere at each pad.

    With ``A = Z + diag(r_c/A_p)`` over all patches of all pads (the cross blocks are
    the potential under one pad of the others' patches), ``E`` the patch-to-pad
    incidence: ``A I = E V``, ``Eᵀ I = c`` gives ``V = (EᵀA⁻¹E)⁻¹ c`` and
    ``I = A⁻¹E V``. ``(EᵀA⁻¹E)⁻¹`` is the pads' resistance matrix (Ω).
    """
    medium = pads[0].medium
    geometry = [p.pad for p in pads]
    n = sum(g.n_patches for g in geometry)
    owner = np.concatenate([np.full(g.n_patches, i) for i, g in enumerate(geometry)])
    pts = np.column_stack([np.concatenate([g.centroids_m for g in geometry]), np.zeros(n)])
    a = _patch_potentials(medium, geometry, np.ones(n), pts, np.arange(n, dtype=np.int64), n)
    a[np.diag_indices(n)] += np.concatenate([p.contact_resistivity_ohm_m2 / p.pad.areas_m2 for p in pads])
    incidence = np.zeros((n, len(pads)))
    incidence[np.arange(n), owner] = 1.0
    y = np.linalg.solve(a, incidence)
    resistance = np.linalg.inv(incidence.T @ y)
    currents = y @ resistance
    for arr in (currents, resistance):
        arr.setflags(write=False)
    return currents, resistance


class Montage:
    """Pads with their currents, and the field they make together.

    By default the pads are solved together (``coupled=True``): every pad's metal is
    an equipotential carrying its net current, and each pad's current distribution
    responds to the field of the others; this is linear in the currents, so the
    coupled system is solved once per set of pads (n right-hand sides) and reused.
    ``coupled=False`` superposes each pad's own unit-current distribution (as if it
    were alone, :func:`solve_pad`): cheaper to set up, but with ideal contacts
    (``r_c → 0``) it misplaces the current under pads that are close together (a few
    per cent of the field for 5 × 5 cm pads 5 cm apart); a large contact resistance
    makes the two agree.

    Parameters
    ----------
    pads : sequence of PadSolution
        Pads (with their contact resistivity), all on the same medium.
    currents_a : sequence of float
        Net current each pad injects into the tissue, amperes (a channel: ``+I`` at
        one pad, ``−I`` at the other; 0 for a pad that floats).
    coupled : bool
        Solve the pads together (default) or superpose their lone solutions.

    Attributes
    ----------
    patch_currents_a : list of numpy.ndarray
        Current through every patch of every pad, amperes.
    pad_potentials_v : numpy.ndarray
        Potential of each pad's metal, volts (referred to the far tissue); for
        ``coupled=False`` the current-weighted mean potential under each pad plus its
        contact drop.

    Examples
    --------
    A channel of two 5 × 5 cm pads, 10 cm apart, 10 mA, on thigh tissue:

    >>> from electrostim.physics.field import get_tissue_preset, straight_fibre_points
    >>> med = get_tissue_preset("quadriceps").medium()
    >>> a = solve_pad(med, rectangle_pad((-0.05, 0.0), 0.05, 0.05))
    >>> b = solve_pad(med, rectangle_pad((0.05, 0.0), 0.05, 0.05))
    >>> ch = Montage.channel(a, b, 0.01)
    >>> fibre = straight_fibre_points((0.0, 0.0, 0.015), (1.0, 0.0, 0.0), 0.2, 201)
    >>> v = ch.potential(fibre)
    >>> v.shape, bool(v[0] > 0 > v[-1]), bool(abs(v[100]) < 1e-9)
    ((201,), True, True)
    >>> volts = ch.pad_potentials_v[0] - ch.pad_potentials_v[1]    # across the channel
    >>> round(float(volts) / 0.01, 1)                               # channel resistance, ohm
    146.9
    """

    def __init__(self, pads: Sequence[PadSolution], currents_a: Sequence[float], *, coupled: bool = True):
        pads = list(pads)
        cur = np.asarray(currents_a, dtype=float).ravel()
        if not pads or not all(isinstance(p, PadSolution) for p in pads):
            raise InvalidInputError("Invalid value for 'pads': expected one or more PadSolution objects (see solve_pad).")
        if len(cur) != len(pads) or not np.all(np.isfinite(cur)):
            raise InvalidInputError(
                f"Invalid value for 'currents_a': expected one finite current per pad ({len(pads)}), but got {list(cur)}."
            )
        medium = pads[0].medium
        if any(p.medium != medium for p in pads):
            raise InvalidInputError("Invalid value for 'pads': all pads of a montage must lie on the same medium.")
        self.pads: tuple[PadSolution, ...] = tuple(pads)
        self.currents_a: np.ndarray = cur
        self.medium: LayeredMedium = medium
        self.coupled = bool(coupled) and len(pads) > 1
        if self.coupled:
            basis, resistance = _coupled(self.pads)
            strengths = basis @ cur
            self.pad_potentials_v: np.ndarray = resistance @ cur
        else:
            strengths = np.concatenate([c * p.patch_currents_a for p, c in zip(pads, cur)])
            self.pad_potentials_v = self._mean_potentials(strengths)
        bounds = np.cumsum([0] + [p.pad.n_patches for p in pads])
        self.patch_currents_a: list[np.ndarray] = [strengths[i:j] for i, j in zip(bounds[:-1], bounds[1:])]
        self._strengths = strengths

    def _mean_potentials(self, strengths: np.ndarray) -> np.ndarray:
        out = np.zeros(len(self.pads))
        for i, (sol, c) in enumerate(zip(self.pads, self.currents_a)):
            pts = np.column_stack([sol.pad.centroids_m, np.zeros(sol.pad.n_patches)])
            body = _patch_potentials(self.medium, [p.pad for p in self.pads], strengths, pts)[:, 0]
            out[i] = float(sol.patch_currents_a @ body) + c * sol.contact_resistivity_ohm_m2 * float(
                sol.patch_currents_a @ (sol.patch_currents_a / sol.pad.areas_m2)
            )
        return out

    @classmethod
    def channel(cls, anode: PadSolution, cathode: PadSolution, current_a: float, *, coupled: bool = True) -> Montage:
        """Two pads of one channel: ``+current_a`` enters the tissue at ``anode``, leaves at ``cathode``."""
        return cls([anode, cathode], [current_a, -current_a], coupled=coupled)

    def potential(self, points_m: object, *, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Potential (V) at ``points_m``, shape (..., 3) in metres (``z`` = depth ≥ 0); returns shape (...).

        ``progress(done, total)``, when given, is called after each block of
        :data:`PROGRESS_BLOCK` points (and once at the end) with the points done so far;
        the result is the same as without it, to the last bit.
        """
        pts = np.asarray(points_m, dtype=float)
        if pts.ndim == 0 or pts.shape[-1] != 3:
            raise InvalidInputError(f"Invalid value for 'points_m': expected shape (..., 3) in metres, but got {pts.shape}.")
        shape = pts.shape[:-1]
        pts = pts.reshape(-1, 3)
        if len(pts) == 0:
            return np.zeros(shape)
        if not np.all(np.isfinite(pts)):
            raise InvalidInputError("Invalid value for 'points_m': every coordinate must be finite (metres).")
        if np.min(pts[:, 2]) < 0.0:
            raise InvalidInputError(f"Invalid value for 'points_m': depth z must be >= 0 (below the skin), but got {np.min(pts[:, 2])!r}.")
        pads = [p.pad for p in self.pads]
        if progress is None:
            return _patch_potentials(self.medium, pads, self._strengths, pts)[:, 0].reshape(shape)
        extent = _patch_extent_m(pads, pts)  # one table for every block: the numbers of a single call
        out = np.empty(len(pts))
        for i in range(0, len(pts), PROGRESS_BLOCK):
            j = min(len(pts), i + PROGRESS_BLOCK)
            out[i:j] = _patch_potentials(self.medium, pads, self._strengths, pts[i:j], extent_m=extent)[:, 0]
            progress(j, len(pts))
        return out.reshape(shape)
