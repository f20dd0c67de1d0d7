"""Horizontally layered tissue: the potential of a point current by a Hankel transform.

Geometry and units
------------------
``z`` is depth below the skin (metres, positive into the body), ``ρ`` the horizontal
distance from the source. Layers are stacked from the skin down; the last one is a
half-space. Each layer is *transversely isotropic about the vertical*: one
conductivity ``σh`` for every horizontal direction and ``σv`` for the vertical
(``σh = σv``: isotropic). In-plane anisotropy (a preferred fibre direction within the
layer) is **not** representable here, because it breaks the axial symmetry; see
:mod:`electrostim.physics.field._presets` for how muscle is mapped, and the
homogeneous closed forms (:func:`point_source_potential`) for full tensors.

Physics
-------
In layer ``i``, ``σh ∇h²V + σv ∂²V/∂z² = −I δ``. With ``V(ρ, z) = ∫₀^∞ F(k, z) J₀(kρ)
dk`` the layer equation becomes ``F'' = λᵢ² k² F`` with ``λᵢ = √(σh/σv)``, so ``F`` is
a sum of ``exp(±λᵢ k z)``; the normal current is ``−σv F'``. Define the admittance
looking down (or up) from a plane, ``y = (current away from the plane)/(k F)``: it is
``ηN = √(σh σv)`` on top of the bottom half-space, ``0`` at the insulating skin surface
seen from below, and through a layer of thickness ``t`` it transforms as ::

    R = (η − y_far)/(η + y_far),   E = exp(−2λkt),   y_near = η (1 − R E)/(1 + R E)

(the reflection-coefficient form of the transmission-line recursion: only decaying
exponentials, stable for every ``k``). A source ``I`` at depth ``z_s`` (its plane
splits its layer in two) sees the up and down admittances in parallel::

    F(k, z_s) = I / (2π (y_up + y_down))

and inside a layer ``F(ζ) = F_near (e^{−λkζ} + R e^{−λk(2t − ζ)}) / (1 + R E)``, ``ζ``
measured away from the source plane, carries it to every depth.

Image split and quadrature
--------------------------
As ``k → ∞`` the kernel tends to a sum of exponentials ``Σⱼ cⱼ e^{−k aⱼ}`` whose
transforms are closed-form, ``Σⱼ cⱼ/√(ρ² + aⱼ²)`` (:func:`_images`): for a buried
source the primary ``1/(4πη) e^{−λk|z − z_s|}``; for a source on the skin, in the top
layer the primary ``1/(2πη₀)`` (its surface image included) with its first
``_N_IMAGES`` skin echoes ``rⁿ/(2πη₀)`` at ``λ₀(2nt₀ ∓ z)``, ``r = (η₀ − η₁)/(η₀ + η₁)``
(the two-layer image series), and in deeper layers the transmitted wave with its
first echoes, ``Tᵢ rⁿ/(2πη₀)`` at ``τ(z) + 2nλ₀t₀`` (``τ`` the depth stretched by each
layer's ``λ``, ``Tᵢ = Π(1 + r_{j,j+1})`` over the interfaces crossed). These carry
every singularity and near-singularity; they are subtracted in ``k``-space and added
back in closed form. The remainder decays at least like ``exp(−k d)``, with ``d`` the
stretched distance from a buried source to the nearest boundary, or for a skin
source ``min((2N + 1)λ₀t₀, λ₀t₀ + λ₁t₁)`` (``t₀`` skin, ``t₁`` the next layer): the
integral is cut at ``K = 32/d`` (``e^{−32} ≈ 10⁻¹⁴``) and summed with composite
12-point Gauss–Legendre rules on panels of one period of ``J₀(kρ_max)``, narrowing
geometrically towards ``k = 0`` (current spreading far along a conductive layer over
a resistive one puts structure at small ``k``). Direct evaluation is accurate to
about 1e-13 relative; the tables to about 1e-6 (surface source) and 1e-5 (buried).
Everything is SI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import special

from ...errors import InvalidInputError

__all__ = ["Layer", "LayeredMedium", "GreenTable"]

#: Gauss–Legendre nodes per k-panel
_GL_ORDER = 12
#: exponent at which the spectral remainder is cut (e^-32 ≈ 1.3e-14)
_CUT = 32.0
#: k-nodes per block when summing (bounds temporaries)
_K_BLOCK = 4096
#: most k-nodes a single evaluation may use
_MAX_K_NODES = 4_000_000
#: a buried source must sit at least this far from a layer boundary (m)
_MIN_CLEARANCE_M = 1e-6
#: skin echoes kept in closed form for a source on the skin
_N_IMAGES = 3


def _positive(name: str, value: object, *, allow_inf: bool = False) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"Invalid value for {name!r}: expected a number, but got {value!r}.") from None
    if not (v > 0.0) or (math.isinf(v) and not allow_inf) or math.isnan(v):
        raise InvalidInputError(f"Invalid value for {name!r}: it must be > 0{'' if allow_inf else ' and finite'}, but got {value!r}.")
    return v


@dataclass(frozen=True)
class Layer:
    """One horizontal tissue layer.

    Parameters
    ----------
    name : str
        What the layer is (``"skin"``, ``"fat"``, ...).
    thickness_m : float
        Thickness in metres; ``math.inf`` for the bottom half-space.
    conductivity_s_per_m : float
        Conductivity in every horizontal direction (S/m).
    vertical_conductivity_s_per_m : float, optional
        Conductivity across the layer, vertically (S/m); defaults to
        ``conductivity_s_per_m`` (isotropic).

    Examples
    --------
    >>> Layer("fat", 8e-3, 1 / 30).eta_s_per_m
    0.03333333333333333
    >>> m = Layer("muscle", 0.04, 0.1735, 0.086)
    >>> round(m.eta_s_per_m, 4), round(m.lam, 4)
    (0.1222, 1.4204)
    """

    name: str
    thickness_m: float
    conductivity_s_per_m: float
    vertical_conductivity_s_per_m: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "thickness_m", _positive("thickness_m", self.thickness_m, allow_inf=True))
        object.__setattr__(self, "conductivity_s_per_m", _positive("conductivity_s_per_m", self.conductivity_s_per_m))
        if self.vertical_conductivity_s_per_m is not None:
            object.__setattr__(
                self, "vertical_conductivity_s_per_m", _positive("vertical_conductivity_s_per_m", self.vertical_conductivity_s_per_m)
            )

    @property
    def sigma_h_s_per_m(self) -> float:
        """Horizontal conductivity ``σh``, S/m."""
        return self.conductivity_s_per_m

    @property
    def sigma_v_s_per_m(self) -> float:
        """Vertical conductivity ``σv``, S/m."""
        v = self.vertical_conductivity_s_per_m
        return self.conductivity_s_per_m if v is None else v

    @property
    def eta_s_per_m(self) -> float:
        """Effective conductivity ``η = √(σh σv)``, S/m."""
        return math.sqrt(self.sigma_h_s_per_m * self.sigma_v_s_per_m)

    @property
    def lam(self) -> float:
        """Depth stretch ``λ = √(σh/σv)`` (dimensionless)."""
        return math.sqrt(self.sigma_h_s_per_m / self.sigma_v_s_per_m)


@dataclass(frozen=True)
class _Stack:
    """The medium as arrays (SI): layer tops, bottoms (last = inf), η and λ."""

    top: np.ndarray
    bot: np.ndarray
    eta: np.ndarray
    lam: np.ndarray

    def layer_of(self, z: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.top, z, side="right") - 1


@dataclass(frozen=True)
class _Source:
    """A source depth resolved against a stack: its layer, primary coefficient, k-cut."""

    depth: float
    layer: int
    coef: float
    rate: float  # slowest decay rate (1/m) of the spectral remainder; inf if there is none


def _resolve_source(stack: _Stack, depth: float) -> _Source:
    if not (depth >= 0.0) or math.isinf(depth):
        raise InvalidInputError(
            f"Invalid value for 'source_depth_m': it must be >= 0 and finite (depth below the skin), but got {depth!r}."
        )
    m = int(stack.layer_of(np.array([depth]))[0])
    n = len(stack.eta)
    if depth == 0.0:
        if n == 1:
            rate = math.inf
        else:
            t0 = stack.bot[0] - stack.top[0]
            rate = (2 * _N_IMAGES + 1) * stack.lam[0] * t0
            if n > 2:
                rate = min(rate, stack.lam[0] * t0 + stack.lam[1] * (stack.bot[1] - stack.top[1]))
        return _Source(0.0, 0, 1.0 / (2.0 * math.pi), float(rate))
    up = depth - stack.top[m]
    down = stack.bot[m] - depth
    clearance = min(up, down)
    if clearance < _MIN_CLEARANCE_M:
        raise InvalidInputError(
            f"Invalid value for 'source_depth_m': a buried source must lie at least {_MIN_CLEARANCE_M:g} m from a layer "
            f"boundary (boundaries at {', '.join(f'{b:g}' for b in stack.top[1:])} m), but got {depth!r}."
        )
    return _Source(depth, m, 1.0 / (4.0 * math.pi), float(stack.lam[m] * clearance))


def _images(stack: _Stack, src: _Source, z: np.ndarray, layer: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form image terms of each depth: scaled depths ``a`` and coefficients ``c`` (V·m/A), shape (nz, J).

    ``G(ρ, z) = Σⱼ cⱼ/√(ρ² + aⱼ²) + remainder``; in ``k``-space each term is
    ``cⱼ e^{−k aⱼ}``. For a buried source (or a half-space) the single term is the
    primary ``1/(4πη)`` (``1/(2πη)`` on the skin of a half-space). For a source on the
    skin of a layered medium the terms are the ``k → ∞`` asymptote: in the top layer
    the primary and its first ``N`` images in the skin (``rⁿ`` at ``2nt ∓ z``, with
    ``r = (η₀ − η₁)/(η₀ + η₁)``); below it the transmitted wave and its first ``N``
    skin echoes, ``Tᵢ rⁿ/(2πη₀)`` at ``τ(z) + 2nλ₀t₀`` (``τ`` the stretched depth,
    ``Tᵢ = Π(1 + r_{j,j+1})`` over the interfaces crossed).
    """
    z = np.asarray(z, dtype=float)
    layer = stack.layer_of(z) if layer is None else np.asarray(layer)
    n = len(stack.eta)
    eta, lam, top, bot = stack.eta, stack.lam, stack.top, stack.bot
    if src.depth > 0.0 or n == 1:
        a = np.zeros((len(z), 1))
        c = np.zeros((len(z), 1))
        m = src.layer
        sel = layer == m
        a[sel, 0] = lam[m] * np.abs(z[sel] - src.depth)
        c[sel, 0] = src.coef / eta[m]
        return a, c
    n_img = _N_IMAGES
    a = np.zeros((len(z), 2 * n_img + 1))
    c = np.zeros((len(z), 2 * n_img + 1))
    base = 1.0 / (2.0 * math.pi * eta[0])
    t0 = bot[0] - top[0]
    refl = (eta[:-1] - eta[1:]) / (eta[:-1] + eta[1:])
    r = refl[0]
    sel = layer == 0
    a[sel, 0] = lam[0] * z[sel]
    c[sel, 0] = base
    for k in range(1, n_img + 1):
        a[sel, 2 * k - 1] = lam[0] * (2 * k * t0 - z[sel])
        a[sel, 2 * k] = lam[0] * (2 * k * t0 + z[sel])
        c[sel, 2 * k - 1] = c[sel, 2 * k] = base * r**k
    tau_top = np.concatenate([[0.0], np.cumsum(lam[:-1] * (bot[:-1] - top[:-1]))])
    trans = np.concatenate([[1.0], np.cumprod(1.0 + refl)])
    for i in range(1, n):
        sel = layer == i
        if not np.any(sel):
            continue
        tau = tau_top[i] + lam[i] * (z[sel] - top[i])
        for k in range(n_img + 1):
            a[sel, k] = tau + 2 * k * lam[0] * t0
            c[sel, k] = base * trans[i] * r**k
    return a, c


def _image_sum(a: np.ndarray, c: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``Σⱼ cⱼ/√(ρ² + aⱼ²)`` for ``a``, ``c`` (n, J) and ``rho`` broadcast to (n,) or (n, m) via a trailing axis."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if rho.ndim == 1:
            return np.sum(np.where(c != 0.0, c / np.sqrt(rho[:, None] ** 2 + a**2), 0.0), axis=1)
        out = np.zeros(np.broadcast_shapes(rho.shape, (a.shape[0], 1)))
        for j in range(a.shape[1]):
            if np.any(c[:, j] != 0.0):
                out += np.where(c[:, j, None] != 0.0, c[:, j, None] / np.sqrt(rho**2 + a[:, j, None] ** 2), 0.0)
        return out


def _spectral(k: np.ndarray, z: np.ndarray, stack: _Stack, src: _Source, layer: np.ndarray | None = None) -> np.ndarray:
    """``F(k, z)`` per ampere (V·m), minus the image terms of :func:`_images`.

    ``k`` shape (nk,), ``z`` shape (nz,) → (nk, nz). ``layer`` (nz,) says which layer
    each depth counts as (a boundary may be the last node of the layer above);
    default: the layer below a boundary.
    """
    eta, lam, top, bot = stack.eta, stack.lam, stack.top, stack.bot
    n, m, zs = len(eta), src.layer, src.depth
    kk = k[:, None]
    # sub-layers below and above the source plane: (top, bottom, layer index)
    down = [(zs, bot[m], m)] + [(top[i], bot[i], i) for i in range(m + 1, n)]
    up = [(top[i], bot[i], i) for i in range(m)] + [(top[m], zs, m)]

    y = np.full(k.shape, eta[n - 1])
    r_down: list[np.ndarray | None] = [None] * len(down)
    e_down: list[np.ndarray | None] = [None] * len(down)
    for j in range(len(down) - 2, -1, -1):
        t0, t1, i = down[j]
        r = (eta[i] - y) / (eta[i] + y)
        e = np.exp(-2.0 * lam[i] * k * (t1 - t0))
        r_down[j], e_down[j] = r, e
        y = eta[i] * (1.0 - r * e) / (1.0 + r * e)
    if len(down) == 1 and m != n - 1:  # pragma: no cover - the last sub-layer below is always the half-space
        raise AssertionError
    y_down = y

    y = np.zeros(k.shape)
    r_up: list[np.ndarray] = []
    e_up: list[np.ndarray] = []
    for t0, t1, i in up:
        r = (eta[i] - y) / (eta[i] + y)
        e = np.exp(-2.0 * lam[i] * k * (t1 - t0))
        r_up.append(r)
        e_up.append(e)
        y = eta[i] * (1.0 - r * e) / (1.0 + r * e)
    y_up = y

    f_src = 1.0 / (2.0 * math.pi * (y_up + y_down))
    out = np.zeros((len(k), len(z)))

    f_near = f_src
    for j, (t0, t1, i) in enumerate(down):
        last = j == len(down) - 1
        sel = (z >= t0) & ((z < t1) | last)
        if last:
            if np.any(sel):
                out[:, sel] = f_near[:, None] * np.exp(-lam[i] * kk * (z[sel] - t0))
            break
        r, e = r_down[j], e_down[j]
        assert r is not None and e is not None
        if np.any(sel):
            zeta = z[sel] - t0
            out[:, sel] = (f_near / (1.0 + r * e))[:, None] * (
                np.exp(-lam[i] * kk * zeta) + r[:, None] * np.exp(-lam[i] * kk * (2.0 * (t1 - t0) - zeta))
            )
        f_near = f_near * np.exp(-lam[i] * k * (t1 - t0)) * (1.0 + r) / (1.0 + r * e)

    f_near = f_src
    for j in range(len(up) - 1, -1, -1):
        t0, t1, i = up[j]
        sel = (z < t1) & (z >= t0)
        r, e = r_up[j], e_up[j]
        if np.any(sel):
            zeta = t1 - z[sel]
            out[:, sel] = (f_near / (1.0 + r * e))[:, None] * (
                np.exp(-lam[i] * kk * zeta) + r[:, None] * np.exp(-lam[i] * kk * (2.0 * (t1 - t0) - zeta))
            )
        f_near = f_near * np.exp(-lam[i] * k * (t1 - t0)) * (1.0 + r) / (1.0 + r * e)

    a_img, c_img = _images(stack, src, z, layer)
    for j in range(a_img.shape[1]):
        if np.any(c_img[:, j] != 0.0):
            out -= c_img[None, :, j] * np.exp(-kk * a_img[None, :, j])
    return out


def _k_nodes(k_max: float, panel: float) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss–Legendre nodes and weights on ``[0, k_max]``.

    Panels of width ``panel``, except near ``k = 0`` where they shrink geometrically
    (halving down to ``panel/4096``): the kernel has features of width proportional
    to ``k`` there (current spreading far along a conductive layer over a resistive
    one gives structure at ``k ≈ σ_bottom/(σ_layer · thickness)``).
    """
    n_panels = max(1, int(math.ceil(k_max / panel)))
    if n_panels * _GL_ORDER > _MAX_K_NODES:
        raise InvalidInputError(
            f"The layered-medium integral would need {n_panels * _GL_ORDER} quadrature nodes (limit {_MAX_K_NODES}): "
            "a source too close to a layer boundary or too large a horizontal range; move the source or reduce the range."
        )
    x, w = np.polynomial.legendre.leggauss(_GL_ORDER)
    fine = panel * 2.0 ** -np.arange(12, 0, -1)
    edges = np.concatenate([[0.0], fine, np.linspace(panel, n_panels * panel, n_panels)])
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    k = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    wk = (half[:, None] * w[None, :]).ravel()
    return k, wk


def _k_grid(stack: _Stack, src: _Source, rho_max: float, z_max: float) -> tuple[np.ndarray, np.ndarray]:
    if math.isinf(src.rate):
        return np.zeros(0), np.zeros(0)
    k_max = _CUT / src.rate
    depth_scale = 2.0 * float(np.sum(stack.lam[:-1] * (stack.bot[:-1] - stack.top[:-1]))) + src.depth * float(np.max(stack.lam))
    depth_scale = max(depth_scale, float(np.max(stack.lam)) * z_max, 1e-9)
    panel = min(2.0 * math.pi / max(rho_max, 1e-12), 2.0 * math.pi / depth_scale, k_max)
    return _k_nodes(k_max, panel)


def _depth_grid(stack: _Stack, src: _Source, c: float, z_max: float, dw_target: float) -> dict[str, np.ndarray]:
    """Depth nodes per layer, uniform in ``w = asinh((z − z_s)/c)``."""
    n = len(stack.eta)
    z_top = np.zeros(n)
    z_bot = np.zeros(n)
    first = np.zeros(n, dtype=np.int64)
    count = np.zeros(n, dtype=np.int64)
    w0 = np.zeros(n)
    dw = np.ones(n)
    nodes: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    row = 0
    for i in range(n):
        a, b = stack.top[i], min(stack.bot[i], z_max)
        if a >= z_max and i > 0:
            break
        wa, wb = math.asinh((a - src.depth) / c), math.asinh((b - src.depth) / c)
        cnt = max(4, int(math.ceil((wb - wa) / dw_target)) + 1)
        w = np.linspace(wa, wb, cnt)
        nodes.append(src.depth + c * np.sinh(w))
        nodes[-1][0], nodes[-1][-1] = a, b
        owner.append(np.full(cnt, i))
        z_top[i], z_bot[i], first[i], count[i], w0[i], dw[i] = a, b, row, cnt, wa, (wb - wa) / (cnt - 1)
        row += cnt
    return {"z": np.concatenate(nodes), "layer": np.concatenate(owner), "z_top": z_top, "z_bot": z_bot, "first": first,
            "count": count, "w0": w0, "dw": dw}


def _max_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest horizontal distance between a point of ``a`` (N, 2) and one of ``b`` (M, 2), metres."""
    a = _extreme_points(a)
    b = _extreme_points(b)
    d2 = (a[:, None, 0] - b[None, :, 0]) ** 2 + (a[:, None, 1] - b[None, :, 1]) ** 2
    return float(np.sqrt(d2.max()))


def _extreme_points(a: np.ndarray) -> np.ndarray:
    """The vertices of the convex hull of ``a`` (or its bounding-box corners when degenerate)."""
    if len(a) <= 64:
        return a
    from scipy.spatial import ConvexHull, QhullError

    try:
        return a[ConvexHull(a).vertices]
    except (QhullError, ValueError):
        lo, hi = a.min(axis=0), a.max(axis=0)
        return np.array([[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], lo[1]], [hi[0], hi[1]]])


@dataclass(frozen=True, eq=False)
class GreenTable:
    """Tabulated potential of a unit point current in a layered medium, ``G(ρ, z)`` (V/A).

    Built by :meth:`LayeredMedium.table`. ``G`` is split into closed-form image terms
    (which carry the singularities near the source; see the module notes) and a smooth
    remainder, tabulated and interpolated bicubically (4 × 4 Lagrange) on a grid
    uniform in ``u = asinh(ρ/c)`` and, within each layer, in ``w = asinh((z − z_s)/c)``:
    fine near the source, coarse far away. Depth nodes fall on every layer boundary and
    no stencil crosses one. The whole ``G`` is tabulated too (``full_v_per_a``), for use far
    from the source.

    Attributes
    ----------
    medium : LayeredMedium
        The medium.
    source_depth_m : float
        Depth of the source below the skin, metres.
    rho_max_m, z_max_m : float
        Horizontal and vertical extent covered, metres.
    c_m, du : float
        Grid scale (m) and node spacing in ``u`` (dimensionless).
    remainder_v_per_a, full_v_per_a : numpy.ndarray, shape (depth nodes, radial nodes + 1)
        Tabulated remainder and whole ``G``, V/A.
    z_top_m, z_bot_m : numpy.ndarray, shape (layers,)
        Depth range tabulated in each layer, m.
    z_first, z_count : numpy.ndarray of int, shape (layers,)
        First depth node of each layer and how many it has.
    w0, dw : numpy.ndarray, shape (layers,)
        Start and spacing of each layer's depth nodes in ``w`` (dimensionless).
    """

    medium: LayeredMedium
    source_depth_m: float
    rho_max_m: float
    z_max_m: float
    c_m: float
    du: float
    remainder_v_per_a: np.ndarray = field(repr=False)
    full_v_per_a: np.ndarray = field(repr=False)
    z_top_m: np.ndarray = field(repr=False)
    z_bot_m: np.ndarray = field(repr=False)
    z_first: np.ndarray = field(repr=False)
    z_count: np.ndarray = field(repr=False)
    w0: np.ndarray = field(repr=False)
    dw: np.ndarray = field(repr=False)

    def covers(self, rho_max_m: float, z_max_m: float) -> bool:
        """Whether the table reaches horizontal distance ``rho_max_m`` and depth ``z_max_m`` (m)."""
        return rho_max_m <= self.rho_max_m and z_max_m <= self.z_max_m

    def images(self, z_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image terms at depths ``z_m``: scaled depths (m) and coefficients (V·m/A), shape (n, J)."""
        stack = self.medium._stack
        return _images(stack, _resolve_source(stack, self.source_depth_m), np.asarray(z_m, dtype=float))

    def grid_args(self) -> tuple:
        """The grid description the kernels take, after the table arrays."""
        return (self.c_m, self.du, self.z_top_m, self.z_bot_m, self.z_first, self.z_count, self.w0, self.dw)

    def superpose(self, points_m: np.ndarray, sources_xy_m: np.ndarray, currents_a: np.ndarray, *,
                  group: np.ndarray | None = None, n_groups: int = 1) -> np.ndarray:
        """Potentials (V) at ``points_m`` (N, 3) of point currents (A) at ``sources_xy_m`` (M, 2) at the source depth.

        Returns shape (N, n_groups); sources add into column ``group[q]``.
        """
        from ._kernels import table_superpose

        pts = np.ascontiguousarray(points_m, dtype=float).reshape(-1, 3)
        src = np.ascontiguousarray(sources_xy_m, dtype=float).reshape(-1, 2)
        self.check_range(pts, src)
        g = np.zeros(len(src), dtype=np.int64) if group is None else np.ascontiguousarray(group, dtype=np.int64)
        a_img, c_img = self.images(pts[:, 2])
        return table_superpose(
            np.ascontiguousarray(pts[:, 0]), np.ascontiguousarray(pts[:, 1]), np.ascontiguousarray(pts[:, 2]),
            np.ascontiguousarray(a_img), np.ascontiguousarray(c_img),
            np.ascontiguousarray(src[:, 0]), np.ascontiguousarray(src[:, 1]), np.ascontiguousarray(currents_a, dtype=float),
            g, int(n_groups), self.remainder_v_per_a, *self.grid_args()[:2], *self.grid_args()[2:], self.source_depth_m,
        )

    def check_range(self, pts: np.ndarray, src: np.ndarray) -> None:
        """Raise if points (N, 3) lie above the skin or beyond the table from sources (M, 2)."""
        if len(pts) == 0 or len(src) == 0:
            return
        z = pts[:, 2]
        if not np.all(np.isfinite(pts)):
            raise InvalidInputError("Invalid field point: every coordinate must be finite (metres).")
        if np.min(z) < 0.0:
            raise InvalidInputError(
                f"Invalid field point: depth z must be >= 0 (z is depth below the skin, metres), but got {np.min(z)!r}."
            )
        reach = _max_distance(pts[:, :2], src)
        if not self.covers(reach, float(np.max(z))):
            raise InvalidInputError(
                f"Field points beyond the table (horizontal reach {reach:.4g} m, depth {np.max(z):.4g} m; the table covers "
                f"{self.rho_max_m:.4g} m and {self.z_max_m:.4g} m): build a larger one with "
                "LayeredMedium.table(rho_max_m=..., z_max_m=...)."
            )

    def potential(self, rho_m: object, z_m: object, current_a: float = 1.0) -> np.ndarray:
        """Potential (V) at horizontal distance ``rho_m`` and depth ``z_m`` (metres, broadcast).

        Examples
        --------
        >>> med = LayeredMedium([Layer("skin", 1.5e-3, 0.43), Layer("fat", 8e-3, 1 / 30), Layer("muscle", math.inf, 0.16)])
        >>> tab = med.table(rho_max_m=0.1, z_max_m=0.05)
        >>> rho, z = np.array([0.005, 0.02, 0.05]), np.array([0.0, 0.012, 0.03])
        >>> v_tab = tab.potential(rho, z, current_a=1e-3)
        >>> v_direct = med.potential(rho, z, current_a=1e-3)
        >>> bool(np.allclose(v_tab, v_direct, rtol=1e-5))
        True
        """
        rho = np.abs(np.asarray(rho_m, dtype=float))
        z = np.asarray(z_m, dtype=float)
        rho, z = np.broadcast_arrays(rho, z)
        pts = np.stack([rho.ravel(), np.zeros(rho.size), z.ravel()], axis=1)
        v = self.superpose(pts, np.zeros((1, 2)), np.array([float(current_a)]))
        return v[:, 0].reshape(rho.shape)


@dataclass(frozen=True)
class LayeredMedium:
    """Horizontal tissue layers over a bottom half-space.

    Parameters
    ----------
    layers : sequence of Layer
        From the skin down. Every layer but the last has a finite thickness; the last
        is the half-space below (``thickness_m = math.inf``).

    Notes
    -----
    Layers are transversely isotropic about the vertical (``σh`` horizontal, ``σv``
    vertical): see the module notes for the physics and what is not supported.

    Examples
    --------
    A single layer is a half-space: ``V = I/(2πσr)`` on its surface.

    >>> half = LayeredMedium([Layer("tissue", math.inf, 0.2)])
    >>> v = half.potential(0.01, 0.0, current_a=1e-3)
    >>> bool(np.isclose(v, 1e-3 / (2 * np.pi * 0.2 * 0.01)))
    True
    >>> LayeredMedium([Layer("skin", 1e-3, 0.43)])
    Traceback (most recent call last):
    ...
    electrostim.errors.InvalidInputError: Invalid layers: the last layer is the half-space below and needs
    thickness_m = inf, but 'skin' has 0.001 m.
    """

    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers or not all(isinstance(la, Layer) for la in layers):
            raise InvalidInputError(f"Invalid layers: expected one or more Layer objects, skin first, but got {self.layers!r}.")
        for la in layers[:-1]:
            if math.isinf(la.thickness_m):
                raise InvalidInputError(
                    f"Invalid layers: only the last layer may be a half-space (thickness_m = inf), but {la.name!r} is one."
                )
        if not math.isinf(layers[-1].thickness_m):
            raise InvalidInputError(
                f"Invalid layers: the last layer is the half-space below and needs thickness_m = inf, "
                f"but {layers[-1].name!r} has {layers[-1].thickness_m:g} m."
            )

    @property
    def _stack(self) -> _Stack:
        return _stack_of(self)

    @property
    def interfaces_m(self) -> np.ndarray:
        """Depths of the layer boundaries below the skin, metres."""
        return self._stack.top[1:].copy()

    def layer_at(self, z_m: object) -> np.ndarray:
        """Index of the layer at each depth ``z_m`` (metres; a boundary belongs to the layer below).

        Examples
        --------
        >>> med = LayeredMedium([Layer("skin", 1e-3, 0.43), Layer("fat", 5e-3, 0.04), Layer("muscle", math.inf, 0.16)])
        >>> med.layer_at([0.0, 0.5e-3, 1e-3, 0.01]).tolist()
        [0, 0, 1, 2]
        """
        return self._stack.layer_of(np.asarray(z_m, dtype=float))

    def potential(self, rho_m: object, z_m: object, *, source_depth_m: float = 0.0, current_a: float = 1.0) -> np.ndarray:
        """Potential (V) of a point current by direct Hankel quadrature (no table).

        Accurate to about 1e-10 relative (see the module notes) and cost proportional
        to the number of points; for many points use :meth:`table`.

        Parameters
        ----------
        rho_m : array_like
            Horizontal distance from the source, metres.
        z_m : array_like
            Depth of the field point below the skin, metres (≥ 0); broadcast with ``rho_m``.
        source_depth_m : float
            Depth of the source (0: on the skin).
        current_a : float
            Injected current, amperes.

        Returns
        -------
        numpy.ndarray
            Volts, the broadcast shape of ``rho_m`` and ``z_m``.

        Examples
        --------
        Reciprocity: swap source and field point.

        >>> med = LayeredMedium([Layer("skin", 1.5e-3, 0.43), Layer("fat", 8e-3, 1 / 30), Layer("muscle", math.inf, 0.16)])
        >>> a = med.potential(0.01, 0.02)                       # source on the skin, point 2 cm deep
        >>> b = med.potential(0.01, 0.0, source_depth_m=0.02)   # source 2 cm deep, point on the skin
        >>> bool(np.isclose(a, b, rtol=1e-8))
        True
        """
        stack = self._stack
        src = _resolve_source(stack, float(source_depth_m))
        rho = np.abs(np.asarray(rho_m, dtype=float))
        z = np.asarray(z_m, dtype=float)
        rho, z = np.broadcast_arrays(rho, z)
        shape = rho.shape
        rho, z = rho.ravel(), z.ravel()
        if np.any(z < 0.0) or not np.all(np.isfinite(z)) or not np.all(np.isfinite(rho)):
            raise InvalidInputError("Invalid field point: depth z_m must be finite and >= 0 (depth below the skin, metres).")
        a_img, c_img = _images(stack, src, z)
        out = _image_sum(a_img, c_img, rho)
        if rho.size and not math.isinf(src.rate):
            k, wk = _k_grid(stack, src, float(rho.max()), float(z.max()))
            block = max(1, (1 << 22) // len(k))
            for i in range(0, rho.size, block):
                f = _spectral(k, z[i : i + block], stack, src)
                out[i : i + block] += np.einsum("k,kn,kn->n", wk, f, special.j0(np.outer(k, rho[i : i + block])))
        return float(current_a) * out.reshape(shape)

    def table(self, source_depth_m: float = 0.0, rho_max_m: float = 0.5, z_max_m: float | None = None) -> GreenTable:
        """The tabulated potential of a unit point current at ``source_depth_m`` (built once, cached).

        Parameters
        ----------
        source_depth_m : float
            Depth of the source below the skin, metres (0: on the skin).
        rho_max_m : float
            Largest horizontal distance to cover, metres.
        z_max_m : float, optional
            Largest depth to cover, metres; default: 5 cm below the deepest layer
            boundary and at least 10 cm.

        Returns
        -------
        GreenTable

        Examples
        --------
        >>> med = LayeredMedium([Layer("skin", 1.5e-3, 0.43), Layer("fat", 8e-3, 1 / 30), Layer("muscle", math.inf, 0.16)])
        >>> tab = med.table(rho_max_m=0.2)
        >>> tab is med.table(rho_max_m=0.2)
        True
        >>> tab.z_max_m
        0.1
        """
        if z_max_m is None:
            z_max_m = max(0.1, float(self._stack.top[-1]) + 0.05)
        rho_max = _positive("rho_max_m", rho_max_m)
        z_max = _positive("z_max_m", z_max_m)
        return _build_table(self, float(source_depth_m), rho_max, z_max)


@lru_cache(maxsize=64)
def _stack_of(medium: LayeredMedium) -> _Stack:
    th = np.array([la.thickness_m for la in medium.layers])
    top = np.concatenate([[0.0], np.cumsum(th[:-1])])
    bot = np.concatenate([top[1:], [math.inf]])
    eta = np.array([la.eta_s_per_m for la in medium.layers])
    lam = np.array([la.lam for la in medium.layers])
    for a in (top, bot, eta, lam):
        a.setflags(write=False)
    return _Stack(top, bot, eta, lam)


#: node spacing of the tables in u = asinh(ρ/c) and w = asinh(z/c)
_DU = 0.03
_DW = 0.03


@lru_cache(maxsize=32)
def _build_table(medium: LayeredMedium, source_depth: float, rho_max: float, z_max: float) -> GreenTable:
    stack = medium._stack
    src = _resolve_source(stack, source_depth)
    if src.depth > z_max:
        raise InvalidInputError(f"Invalid value for 'z_max_m': the table must reach the source depth {src.depth!r} m, but got {z_max!r}.")
    if src.depth > 0.0:
        c = 0.5 * src.rate / float(stack.lam[src.layer])  # half the clearance to the nearest boundary
    elif len(stack.eta) > 1:
        c = 0.5 * float(stack.bot[0])  # half the top layer
    else:
        c = max(rho_max, z_max) / 1000.0
    u_max = math.asinh(rho_max / c)
    n_u = max(4, int(math.ceil(u_max / _DU))) + 3  # nodes u_0 .. u_{n_u-1}; the last two lie beyond rho_max
    du = u_max / (n_u - 3)
    u = np.arange(-1, n_u) * du
    rho_nodes = c * np.sinh(u)
    grid = _depth_grid(stack, src, c, z_max, _DW)
    z_nodes = grid["z"]
    remainder = np.zeros((len(z_nodes), len(rho_nodes)))
    if not math.isinf(src.rate):
        k, wk = _k_grid(stack, src, float(rho_nodes[-1]), z_max)
        for i in range(0, len(k), _K_BLOCK):
            ks, ws = k[i : i + _K_BLOCK], wk[i : i + _K_BLOCK]
            f = _spectral(ks, z_nodes, stack, src, grid["layer"]) * ws[:, None]
            remainder += f.T @ special.j0(np.outer(ks, rho_nodes))
    a_img, c_img = _images(stack, src, z_nodes, grid["layer"])
    full = remainder + _image_sum(a_img, c_img, np.broadcast_to(np.abs(rho_nodes), (len(z_nodes), len(rho_nodes))))
    full[~np.isfinite(full)] = 0.0  # on the source itself; `full` serves only far from the source
    for a in (remainder, full):
        a.setflags(write=False)
    return GreenTable(
        medium=medium,
        source_depth_m=src.depth,
        rho_max_m=float(c * math.sinh(u_max)),
        z_max_m=z_max,
        c_m=c,
        du=du,
        remainder_v_per_a=remainder,
        full_v_per_a=full,
        z_top_m=grid["z_top"],
        z_bot_m=grid["z_bot"],
        z_first=grid["first"],
        z_count=grid["count"],
        w0=grid["w0"],
        dw=grid["dw"],
    )
