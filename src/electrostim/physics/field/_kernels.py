"""Numerical kernels of the volume conductor: pure functions on arrays, SI units.

No I/O and no objects: every argument is a number or a NumPy array, every length is in
metres, every current in amperes, every potential in volts. The public wrappers in
``_layered`` and ``_electrodes`` check their inputs and call these. They are compiled
by numba (cached on disk); with ``ELECTROSTIM_NO_NUMBA=1`` they run as plain Python.

The Green's function of a layered medium is split as ``G = Σⱼ cⱼ/√(ρ² + aⱼ²) + T``:
a few closed-form image terms (coefficient ``cⱼ``, scaled depth ``aⱼ``, both depending
on the depth of the field point) that carry every near singularity, and a smooth
tabulated remainder ``T(ρ, z)``. Tables are interpolated bicubically (4 × 4 Lagrange)
on a grid uniform in ``u = asinh(ρ/c)`` and, within each layer, uniform in
``w = asinh((z − z_s)/c)``; no stencil crosses a layer boundary.

* :func:`table_superpose` — point sources: images + remainder.
* :func:`patch_superpose` — uniform current sheets on surface polygons (pad patches):
  near a patch the image terms are integrated over the polygon exactly
  (:func:`polygon_integral`) and the remainder is a point source with its quadrupole
  correction; far from it the whole ``G`` (``t_full``) is a point source with its
  quadrupole correction (error of order ``(s/R)⁴``).
"""

from __future__ import annotations

import math

import numpy as np

from ..._jit import njit, prange

__all__ = ["table_superpose", "patch_superpose", "polygon_integral"]

#: field points per parallel task (each task has its own scratch memory)
_CHUNK = 64
#: fast-math flags for the inner loops: reassociation and contraction, but NaN and inf stay honest
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, nogil=True)
def _find_layer(z: float, z_top: np.ndarray, z_bot: np.ndarray, z_count: np.ndarray) -> int:
    """Layer of depth ``z`` among those the table covers (a boundary belongs to the layer below); -1 if none."""
    n_layers = z_top.shape[0]
    for i in range(n_layers):
        if z_count[i] > 0 and z >= z_top[i]:
            last = i == n_layers - 1 or z_count[i + 1] == 0
            if z < z_bot[i] or last:
                return i
    return -1


@njit(cache=True, nogil=True)
def _combine_rows(
    z: float, layer: int, table: np.ndarray, c: float, z_source: float, z_first: np.ndarray, z_count: np.ndarray,
    w_start: np.ndarray, dw: np.ndarray, row: np.ndarray,
) -> None:
    """``row[j]`` = the table interpolated to depth ``z`` at radial node ``j`` (cubic Lagrange in ``w``)."""
    tz = (math.asinh((z - z_source) / c) - w_start[layer]) / dw[layer]
    cnt = z_count[layer]
    base = int(math.floor(tz)) - 1
    if base < 0:
        base = 0
    if base > cnt - 4:
        base = cnt - 4
    x = tz - base
    x1 = x - 1.0
    x2 = x - 2.0
    x3 = x - 3.0
    l0 = -x1 * x2 * x3 / 6.0
    l1 = x * x2 * x3 / 2.0
    l2 = -x * x1 * x3 / 2.0
    l3 = x * x1 * x2 / 6.0
    r0 = z_first[layer] + base
    for j in range(table.shape[1]):
        row[j] = l0 * table[r0, j] + l1 * table[r0 + 1, j] + l2 * table[r0 + 2, j] + l3 * table[r0 + 3, j]


@njit(cache=True, nogil=True, fastmath=_FAST)
def _radial(row: np.ndarray, rho: float, inv_c: float, inv_du: float) -> tuple[float, float, float]:
    """``(G, ∂G/∂ρ, ∂²G/∂ρ²)`` at ``rho`` from a z-interpolated row (cubic Lagrange in ``u``; row[0] is ``u = −du``).

    ``inv_c = 1/c``, ``inv_du = 1/du``; ``ρ = c sinh u`` so ``dρ/du = c cosh u``.
    """
    x = rho * inv_c
    ch = math.sqrt(1.0 + x * x)  # cosh u
    t = math.log(x + ch) * inv_du  # asinh(x)/du
    i = int(t)
    n = row.shape[0]
    if i > n - 4:
        i = n - 4
    f = t - i
    f2 = f * f
    v0, v1, v2, v3 = row[i], row[i + 1], row[i + 2], row[i + 3]
    # cubic Lagrange weights at nodes -1, 0, 1, 2 and their first and second derivatives
    g = (-f * (f - 1.0) * (f - 2.0) * v0 + 3.0 * (f + 1.0) * (f - 1.0) * (f - 2.0) * v1
         - 3.0 * (f + 1.0) * f * (f - 2.0) * v2 + (f + 1.0) * f * (f - 1.0) * v3) * (1.0 / 6.0)
    gu = (-(3.0 * f2 - 6.0 * f + 2.0) * v0 + 3.0 * (3.0 * f2 - 4.0 * f - 1.0) * v1
          - 3.0 * (3.0 * f2 - 2.0 * f - 2.0) * v2 + (3.0 * f2 - 1.0) * v3) * (inv_du * (1.0 / 6.0))
    guu = ((1.0 - f) * v0 + (3.0 * f - 2.0) * v1 + (1.0 - 3.0 * f) * v2 + f * v3) * (inv_du * inv_du)
    inv_scale = inv_c / ch
    g_rho = gu * inv_scale
    g_rr = (guu - gu * (x / ch)) * (inv_scale * inv_scale)
    return g, g_rho, g_rr


@njit(cache=True, nogil=True, fastmath=_FAST)
def _with_quadrupole(g: float, g_rho: float, g_rr: float, dx: float, dy: float, rho2: float, mxx: float, mxy: float, myy: float,
                     tiny2: float) -> float:
    """``G + ½ Σ m_ij ∂i∂j G`` for a radial ``G(ρ)`` and central second moments ``m`` (per unit area)."""
    if rho2 > tiny2:
        ir2 = 1.0 / rho2
        gr = g_rho * math.sqrt(ir2)
        cxx = dx * dx * ir2
        cyy = dy * dy * ir2
        cxy = dx * dy * ir2
        gxx = g_rr * cxx + gr * cyy
        gyy = g_rr * cyy + gr * cxx
        gxy = (g_rr - gr) * cxy
    else:
        gxx = g_rr
        gyy = g_rr
        gxy = 0.0
    return g + 0.5 * (mxx * gxx + 2.0 * mxy * gxy + myy * gyy)


@njit(cache=True, nogil=True)
def polygon_integral(x0: float, y0: float, z: float, vx: np.ndarray, vy: np.ndarray, nv: int) -> float:
    """``∫∫ dA / √((x − x0)² + (y − y0)² + z²)`` over a counter-clockwise polygon (m).

    Edge by edge, with ``h`` the signed distance from the foot of the field point to
    the edge line (positive on the inner side), ``l`` the coordinate along the edge,
    ``A = √(h² + z²)`` and ``R`` the distance to a vertex::

        Σ_edges  h [asinh(l_b/A) − asinh(l_a/A)]
                 + |z| [atan2(h l (|z| − R), h² R + |z| l²)]_a^b

    (integrate ``√(S(θ)² + z²) − |z|`` over the polar angle around the foot).
    """
    az = abs(z)
    total = 0.0
    for j in range(nv):
        ax = vx[j] - x0
        ay = vy[j] - y0
        k = j + 1 if j + 1 < nv else 0
        bx = vx[k] - x0
        by = vy[k] - y0
        ex = bx - ax
        ey = by - ay
        length = math.sqrt(ex * ex + ey * ey)
        if length == 0.0:
            continue
        ex /= length
        ey /= length
        h = ey * ax - ex * ay
        la = ax * ex + ay * ey
        lb = bx * ex + by * ey
        big_a = math.sqrt(h * h + z * z)
        if big_a > 0.0 and h != 0.0:
            total += h * (math.asinh(lb / big_a) - math.asinh(la / big_a))
        if az > 0.0:
            ra = math.sqrt(ax * ax + ay * ay + z * z)
            rb = math.sqrt(bx * bx + by * by + z * z)
            total += az * (
                math.atan2(h * lb * (az - rb), h * h * rb + az * lb * lb)
                - math.atan2(h * la * (az - ra), h * h * ra + az * la * la)
            )
    return total


@njit(cache=True, nogil=True, fastmath=_FAST)
def _table_rows(
    lo: int, hi: int, px: np.ndarray, py: np.ndarray, pz: np.ndarray, img_a: np.ndarray, img_c: np.ndarray,
    sx: np.ndarray, sy: np.ndarray, sw: np.ndarray, group: np.ndarray, table: np.ndarray, c: float, du: float,
    z_top: np.ndarray, z_bot: np.ndarray, z_first: np.ndarray, z_count: np.ndarray, w_start: np.ndarray, dw: np.ndarray,
    z_source: float, out: np.ndarray,
) -> None:
    row = np.empty(table.shape[1])
    n_img = img_a.shape[1]
    inv_c = 1.0 / c
    inv_du = 1.0 / du
    for p in range(lo, hi):
        layer = _find_layer(pz[p], z_top, z_bot, z_count)
        if layer < 0:
            for g in range(out.shape[1]):
                out[p, g] = np.nan
            continue
        _combine_rows(pz[p], layer, table, c, z_source, z_first, z_count, w_start, dw, row)
        for q in range(sx.shape[0]):
            dx = px[p] - sx[q]
            dy = py[p] - sy[q]
            rho2 = dx * dx + dy * dy
            v, _, _ = _radial(row, math.sqrt(rho2), inv_c, inv_du)
            for j in range(n_img):
                if img_c[p, j] != 0.0:
                    v += img_c[p, j] / math.sqrt(rho2 + img_a[p, j] * img_a[p, j])
            out[p, group[q]] += sw[q] * v


@njit(cache=True, parallel=True, nogil=True)
def table_superpose(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray, img_a: np.ndarray, img_c: np.ndarray,
    sx: np.ndarray, sy: np.ndarray, sw: np.ndarray, group: np.ndarray, n_groups: int,
    table: np.ndarray, c: float, du: float, z_top: np.ndarray, z_bot: np.ndarray, z_first: np.ndarray,
    z_count: np.ndarray, w_start: np.ndarray, dw: np.ndarray, z_source: float,
) -> np.ndarray:
    """Potentials of point sources from the image terms and the tabulated remainder.

    Parameters
    ----------
    px, py, pz : float64 arrays (N,)
        Field points, metres (``pz`` is depth below the surface, ≥ 0).
    img_a, img_c : float64 arrays (N, J)
        Image terms of each field point: scaled depth (m) and coefficient (V·m/A);
        zero coefficients are skipped.
    sx, sy : float64 arrays (M,)
        Horizontal source positions, metres (all sources at depth ``z_source``).
    sw : float64 array (M,)
        Source currents, amperes.
    group : int64 array (M,)
        Output column of each source (all zeros for a plain sum).
    n_groups : int
        Number of output columns.
    table : float64 array (n_z, n_u + 1)
        Tabulated remainder (V/A) at ``u_j = (j − 1)·du`` (column 0 is the mirror
        node ``u = −du``) and at the depth nodes of each layer.
    c : float
        Length scale of the maps ``u = asinh(ρ/c)``, ``w = asinh((z − z_source)/c)``, metres.
    du : float
        Node spacing in ``u``.
    z_top, z_bot : float64 arrays (L,)
        Depth range of each layer covered by the table, metres (``z_count = 0``: none).
    z_first, z_count : int64 arrays (L,)
        First table row and number of rows of each layer (at least 4 when present).
    w_start, dw : float64 arrays (L,)
        ``w`` at the first node of each layer and the node spacing in ``w``.
    z_source : float
        Depth of the sources, metres.

    Returns
    -------
    float64 array (N, n_groups)
        Volts (NaN for a point outside the table's depth range).
    """
    n = px.shape[0]
    out = np.zeros((n, n_groups))
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for chunk in prange(n_chunks):
        _table_rows(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK), px, py, pz, img_a, img_c, sx, sy, sw, group, table, c, du,
                    z_top, z_bot, z_first, z_count, w_start, dw, z_source, out)
    return out


@njit(cache=True, nogil=True, fastmath=_FAST)
def _patch_rows(
    lo: int, hi: int, px: np.ndarray, py: np.ndarray, pz: np.ndarray, img_a: np.ndarray, img_c: np.ndarray,
    vx: np.ndarray, vy: np.ndarray, nv: np.ndarray, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray, area: np.ndarray,
    mxx: np.ndarray, mxy: np.ndarray, myy: np.ndarray, sw: np.ndarray, group: np.ndarray, near: float,
    t_rem: np.ndarray, t_full: np.ndarray, c: float, du: float, z_top: np.ndarray, z_bot: np.ndarray, z_first: np.ndarray,
    z_count: np.ndarray, w_start: np.ndarray, dw: np.ndarray, out: np.ndarray,
) -> None:
    row_rem = np.empty(t_rem.shape[1])
    row_full = np.empty(t_full.shape[1])
    n_img = img_a.shape[1]
    inv_c = 1.0 / c
    inv_du = 1.0 / du
    tiny2 = (1e-9 * c) ** 2
    single = out.shape[1] == 1
    for p in range(lo, hi):
        layer = _find_layer(pz[p], z_top, z_bot, z_count)
        if layer < 0:
            for g in range(out.shape[1]):
                out[p, g] = np.nan
            continue
        _combine_rows(pz[p], layer, t_rem, c, 0.0, z_first, z_count, w_start, dw, row_rem)
        _combine_rows(pz[p], layer, t_full, c, 0.0, z_first, z_count, w_start, dw, row_full)
        a_min = math.inf
        for j in range(n_img):
            if img_c[p, j] != 0.0 and img_a[p, j] < a_min:
                a_min = img_a[p, j]
        acc = 0.0
        for q in range(cx.shape[0]):
            dx = px[p] - cx[q]
            dy = py[p] - cy[q]
            rho2 = dx * dx + dy * dy
            rho = math.sqrt(rho2)
            lim = near * radius[q]
            lim2 = lim * lim
            if rho2 + a_min * a_min >= lim2:
                g, g1, g2 = _radial(row_full, rho, inv_c, inv_du)
                v = _with_quadrupole(g, g1, g2, dx, dy, rho2, mxx[q], mxy[q], myy[q], tiny2)
            else:
                g, g1, g2 = _radial(row_rem, rho, inv_c, inv_du)
                v = _with_quadrupole(g, g1, g2, dx, dy, rho2, mxx[q], mxy[q], myy[q], tiny2)
                for j in range(n_img):
                    cj = img_c[p, j]
                    if cj == 0.0:
                        continue
                    aj = img_a[p, j]
                    r2 = rho2 + aj * aj
                    if r2 < lim2:
                        v += cj * polygon_integral(px[p], py[p], aj, vx[q], vy[q], nv[q]) / area[q]
                    else:
                        r = math.sqrt(r2)
                        ir3 = 1.0 / (r * r2)
                        ir5 = ir3 / r2
                        quad = (mxx[q] * (3.0 * dx * dx * ir5 - ir3) + 2.0 * mxy[q] * 3.0 * dx * dy * ir5
                                + myy[q] * (3.0 * dy * dy * ir5 - ir3))
                        v += cj * (1.0 / r + 0.5 * quad)
            if single:
                acc += sw[q] * v
            else:
                out[p, group[q]] += sw[q] * v
        if single:
            out[p, 0] = acc


@njit(cache=True, parallel=True, nogil=True)
def patch_superpose(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray, img_a: np.ndarray, img_c: np.ndarray,
    vx: np.ndarray, vy: np.ndarray, nv: np.ndarray, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray, area: np.ndarray,
    mxx: np.ndarray, mxy: np.ndarray, myy: np.ndarray, sw: np.ndarray, group: np.ndarray, n_groups: int, near: float,
    t_rem: np.ndarray, t_full: np.ndarray, c: float, du: float, z_top: np.ndarray, z_bot: np.ndarray, z_first: np.ndarray,
    z_count: np.ndarray, w_start: np.ndarray, dw: np.ndarray,
) -> np.ndarray:
    """Potentials of uniform current sheets on surface polygons (pad patches).

    Parameters
    ----------
    px, py, pz, img_a, img_c
        Field points and their image terms, as for :func:`table_superpose`.
    vx, vy : float64 arrays (P, V)
        Polygon vertices, counter-clockwise, padded; metres.
    nv : int64 array (P,)
        Vertices used in each row.
    cx, cy, radius, area : float64 arrays (P,)
        Centroid, largest centroid–vertex distance and area of each polygon (m, m²).
    mxx, mxy, myy : float64 arrays (P,)
        Central second moments of each polygon per unit area (m²).
    sw : float64 array (P,)
        Current of each polygon, amperes.
    group : int64 array (P,)
        Output column of each polygon.
    n_groups : int
        Number of output columns.
    near : float
        A pair is near when the distance to the shallowest image is below
        ``near · radius``: then each image term within that distance is integrated
        over the polygon exactly.
    t_rem, t_full : float64 arrays (n_z, n_u + 1)
        Remainder and whole Green's function of a surface source (V/A); ``t_full``
        is used only far from the source.
    c, du, z_top, z_bot, z_first, z_count, w_start, dw
        The table grid, as for :func:`table_superpose` (source depth 0).

    Returns
    -------
    float64 array (N, n_groups)
        Volts.
    """
    n = px.shape[0]
    out = np.zeros((n, n_groups))
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for chunk in prange(n_chunks):
        _patch_rows(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK), px, py, pz, img_a, img_c, vx, vy, nv, cx, cy, radius, area,
                    mxx, mxy, myy, sw, group, near, t_rem, t_full, c, du, z_top, z_bot, z_first, z_count, w_start, dw, out)
    return out
