"""Point and line current sources in an unbounded homogeneous medium (closed forms).

Physics
-------
A current ``I`` injected at the origin of a medium with conductivity tensor ``σ``
satisfies ``-∇·(σ∇V) = I δ(x)``. Write ``σ = L Lᵀ`` (Cholesky) and change to the
scaled coordinates ``x' = L⁻¹x``: then ``∇·(σ∇) = ∇'²`` and ``δ(x) = δ(x')/√det σ``,
so the problem is the isotropic one with unit conductivity and source
``I/√det σ``::

    V(x) = I / (4π √det σ · |L⁻¹x|) = I / (4π √(det σ · xᵀσ⁻¹x)).

For a diagonal tensor ``σ = diag(σx, σy, σz)``, ``det σ · xᵀσ⁻¹x = σyσz x² + σxσz y²
+ σxσy z²``, the familiar form; for ``σx = σy = σz = σ`` it is ``I/(4πσr)``.

A finite segment from ``a`` to ``b`` carrying total current ``I`` spread uniformly
along it maps to a segment of length ``ℓ' = |L⁻¹(b − a)|`` in scaled coordinates with
the same total current, and ``∫₀^ℓ' ds / |x' − s| = ln((r'ₐ + r'_b + ℓ')/(r'ₐ + r'_b −
ℓ'))`` (the ellipsoidal-coordinate form), so::

    V(x) = I / (4π √det σ · ℓ') · ln((r'ₐ + r'_b + ℓ') / (r'ₐ + r'_b − ℓ')),

with ``r'ₐ = |L⁻¹(x − a)|``, ``r'_b = |L⁻¹(x − b)|``. It tends to the point source as
``ℓ' → 0``.

Everything is SI: metres, amperes, siemens per metre, volts.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import InvalidInputError

__all__ = ["point_source_potential", "line_source_potential", "conductivity_tensor"]

#: points × sources evaluated per block (bounds the temporary arrays to ~ 8 MB each)
_BLOCK = 1 << 20


def conductivity_tensor(conductivity_s_per_m: object) -> np.ndarray:
    """The 3 × 3 conductivity tensor (S/m) from a scalar, a diagonal or a full tensor.

    Parameters
    ----------
    conductivity_s_per_m : float, sequence of 3 floats, or 3 × 3 array
        Isotropic conductivity; the diagonal ``(σx, σy, σz)`` in the frame of the
        coordinates; or a full symmetric positive-definite tensor. S/m.

    Returns
    -------
    numpy.ndarray
        Shape ``(3, 3)``, S/m.

    Examples
    --------
    >>> conductivity_tensor(0.2).diagonal().tolist()
    [0.2, 0.2, 0.2]
    >>> conductivity_tensor([0.35, 0.086, 0.086]).diagonal().tolist()
    [0.35, 0.086, 0.086]
    >>> conductivity_tensor(-1.0)
    Traceback (most recent call last):
    ...
    electrostim.errors.InvalidInputError: Invalid value for 'conductivity_s_per_m': it must be positive (a scalar,
    3 diagonal values or a symmetric positive-definite 3 x 3 tensor), but got -1.0.
    """
    given = conductivity_s_per_m
    try:
        s = np.asarray(conductivity_s_per_m, dtype=float)
    except (TypeError, ValueError):
        s = np.full(1, np.nan)
    if s.ndim == 0:
        s = np.eye(3) * float(s)
    elif s.shape == (3,):
        s = np.diag(s)
    if s.shape != (3, 3) or not np.all(np.isfinite(s)) or not np.allclose(s, s.T, rtol=0.0, atol=1e-12 * np.abs(s).max()):
        ok = False
    else:
        s = 0.5 * (s + s.T)
        ok = bool(np.all(np.linalg.eigvalsh(s) > 0.0))
    if not ok:
        raise InvalidInputError(
            "Invalid value for 'conductivity_s_per_m': it must be positive (a scalar, 3 diagonal values or a "
            f"symmetric positive-definite 3 x 3 tensor), but got {given!r}."
        )
    return s


def _points(name: str, value: object) -> np.ndarray:
    a = np.asarray(value, dtype=float)
    if a.ndim == 0 or a.shape[-1] != 3:
        raise InvalidInputError(
            f"Invalid value for {name!r}: expected points as an array of shape (..., 3) in metres, but got shape {a.shape}."
        )
    if not np.all(np.isfinite(a)):
        raise InvalidInputError(f"Invalid value for {name!r}: every coordinate must be finite.")
    return a


def _scaling(conductivity_s_per_m: object) -> tuple[np.ndarray, float]:
    """``(L⁻¹ᵀ, 1/(4π√det σ))``: row vectors times the first give scaled coordinates."""
    sigma = conductivity_tensor(conductivity_s_per_m)
    chol = np.linalg.cholesky(sigma)
    inv = np.linalg.inv(chol)
    return inv.T, 1.0 / (4.0 * math.pi * math.sqrt(float(np.linalg.det(sigma))))


def _currents(value: object, n: int) -> np.ndarray:
    c = np.asarray(value, dtype=float)
    try:
        c = np.broadcast_to(c, (n,)).astype(float)
    except ValueError:
        raise InvalidInputError(
            f"Invalid value for 'currents_a': expected one current per source ({n}), but got shape {c.shape}."
        ) from None
    return c


def point_source_potential(points_m: object, sources_m: object, currents_a: object, conductivity_s_per_m: object) -> np.ndarray:
    """Potential (V) of point current sources in an unbounded homogeneous medium.

    ``V(x) = Σᵢ Iᵢ / (4π √(det σ · (x − sᵢ)ᵀ σ⁻¹ (x − sᵢ)))``; for a diagonal tensor
    this is ``Iᵢ / (4π √(σyσz Δx² + σxσz Δy² + σxσy Δz²))`` and for an isotropic
    medium ``Iᵢ / (4πσ rᵢ)``.

    Parameters
    ----------
    points_m : array_like, shape (..., 3)
        Field points, metres.
    sources_m : array_like, shape (M, 3) or (3,)
        Source positions, metres.
    currents_a : float or array_like, shape (M,)
        Current injected at each source, amperes (positive into the medium).
    conductivity_s_per_m : float, sequence of 3, or 3 × 3 array
        See :func:`conductivity_tensor`. S/m.

    Returns
    -------
    numpy.ndarray, shape (...)
        Potential at each field point, volts (``inf`` on a source).

    Examples
    --------
    1 mA in 0.2 S/m, 1 cm away: ``1e-3 / (4π · 0.2 · 0.01)``:

    >>> v = point_source_potential([0.01, 0, 0], [0, 0, 0], 1e-3, 0.2)
    >>> round(float(v), 6)
    0.039789
    >>> bool(np.isclose(v, 1e-3 / (4 * np.pi * 0.2 * 0.01)))
    True

    Muscle (0.35 S/m along x, 0.086 across), 1 cm along and across the fibres:

    >>> p = [[0.01, 0, 0], [0, 0.01, 0]]
    >>> point_source_potential(p, [0, 0, 0], 1e-3, [0.35, 0.086, 0.086]).round(4).tolist()
    [0.0925, 0.0459]
    """
    pts = _points("points_m", points_m)
    shape = pts.shape[:-1]
    x = pts.reshape(-1, 3)
    src = _points("sources_m", sources_m).reshape(-1, 3)
    cur = _currents(currents_a, len(src))
    scale, pref = _scaling(conductivity_s_per_m)
    xs = x @ scale
    ss = src @ scale
    out = np.zeros(len(xs))
    step = max(1, _BLOCK // max(1, len(ss)))
    with np.errstate(divide="ignore"):
        for i in range(0, len(xs), step):
            d = xs[i : i + step, None, :] - ss[None, :, :]
            r = np.sqrt(np.einsum("ijk,ijk->ij", d, d))
            out[i : i + step] = (cur[None, :] / r).sum(axis=1)
    return (pref * out).reshape(shape)


def line_source_potential(
    points_m: object, starts_m: object, ends_m: object, currents_a: object, conductivity_s_per_m: object
) -> np.ndarray:
    """Potential (V) of finite straight line sources (uniform current along each segment).

    Each segment from ``a`` to ``b`` carries total current ``I`` spread evenly along
    its length. In scaled coordinates ``x' = L⁻¹x`` (``σ = LLᵀ``)::

        V = I / (4π √det σ · ℓ') · ln((r'ₐ + r'_b + ℓ') / (r'ₐ + r'_b − ℓ'))

    (see the module notes); a zero-length segment is a point source.

    Parameters
    ----------
    points_m : array_like, shape (..., 3)
        Field points, metres.
    starts_m, ends_m : array_like, shape (M, 3) or (3,)
        Segment end points, metres.
    currents_a : float or array_like, shape (M,)
        Total current of each segment, amperes.
    conductivity_s_per_m : float, sequence of 3, or 3 × 3 array
        See :func:`conductivity_tensor`. S/m.

    Returns
    -------
    numpy.ndarray, shape (...)
        Volts (``inf`` on a segment).

    Examples
    --------
    A 2 cm segment seen from 1 cm off its middle, against the closed form
    ``I/(4πσℓ) · 2 asinh(ℓ/(2d))``:

    >>> v = line_source_potential([0, 0.01, 0], [-0.01, 0, 0], [0.01, 0, 0], 1e-3, 0.2)
    >>> bool(np.isclose(v, 1e-3 / (4 * np.pi * 0.2 * 0.02) * 2 * np.arcsinh(1.0)))
    True

    Far away it is a point source:

    >>> far = [[5.0, 3.0, 1.0]]
    >>> a = line_source_potential(far, [0, 0, 0], [0, 0, 1e-3], 1e-3, 0.2)
    >>> b = point_source_potential(far, [0, 0, 0.5e-3], 1e-3, 0.2)
    >>> bool(np.isclose(a[0], b[0], rtol=1e-9))
    True
    """
    pts = _points("points_m", points_m)
    shape = pts.shape[:-1]
    x = pts.reshape(-1, 3)
    a = _points("starts_m", starts_m).reshape(-1, 3)
    b = _points("ends_m", ends_m).reshape(-1, 3)
    if a.shape != b.shape:
        raise InvalidInputError(f"Invalid value for 'ends_m': expected as many segment ends as starts ({len(a)}), but got {len(b)}.")
    cur = _currents(currents_a, len(a))
    scale, pref = _scaling(conductivity_s_per_m)
    xs, as_, bs = x @ scale, a @ scale, b @ scale
    seg = np.linalg.norm(bs - as_, axis=1)
    out = np.zeros(len(xs))
    step = max(1, _BLOCK // max(1, len(as_)))
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(0, len(xs), step):
            da = xs[i : i + step, None, :] - as_[None, :, :]
            db = xs[i : i + step, None, :] - bs[None, :, :]
            ra = np.sqrt(np.einsum("ijk,ijk->ij", da, da))
            rb = np.sqrt(np.einsum("ijk,ijk->ij", db, db))
            s = ra + rb
            ell = np.broadcast_to(seg[None, :], s.shape)
            # ln((s + ℓ)/(s − ℓ))/ℓ, with its ℓ → 0 limit 2/s
            short = ell <= 1e-9 * s
            lsafe = np.where(short, 1.0, ell)
            g = np.where(short, 2.0 / s, np.log((s + lsafe) / np.maximum(s - lsafe, 0.0)) / lsafe)
            out[i : i + step] = (cur[None, :] * g).sum(axis=1)
    return (pref * out).reshape(shape)
