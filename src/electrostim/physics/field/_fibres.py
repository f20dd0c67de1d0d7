"""Sample the extracellular potential along nerve fibres.

Coordinates: ``x``, ``y`` on the skin, ``z`` depth below it; metres. Potentials in volts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ...errors import InvalidInputError

__all__ = ["straight_fibre_points", "fibre_potentials"]


class _Field(Protocol):
    def potential(self, points_m: object) -> np.ndarray: ...


def straight_fibre_points(center_m: object, direction: object, length_m: object, n_points: int) -> np.ndarray:
    """Evenly spaced points along straight fibres (metres).

    Parameters
    ----------
    center_m : array_like, shape (..., 3)
        Midpoint of each fibre ``(x, y, z)``, metres (``z`` is depth below the skin).
    direction : array_like, shape (..., 3)
        Direction of each fibre (any length; normalised here). Broadcast with ``center_m``.
    length_m : float or array_like, shape (...)
        Length of each fibre, metres.
    n_points : int
        Points per fibre (≥ 2), including both ends.

    Returns
    -------
    numpy.ndarray, shape (..., n_points, 3)

    Examples
    --------
    One fibre 1 cm deep along x, and a fan of three at 2 cm at 0°, 45° and 90°:

    >>> straight_fibre_points((0, 0, 0.01), (1, 0, 0), 0.02, 3).tolist()
    [[-0.01, 0.0, 0.01], [0.0, 0.0, 0.01], [0.01, 0.0, 0.01]]
    >>> th = np.radians([0, 45, 90])
    >>> dirs = np.stack([np.cos(th), np.sin(th), np.zeros(3)], axis=-1)
    >>> straight_fibre_points((0, 0, 0.02), dirs, 0.1, 101).shape
    (3, 101, 3)
    """
    c = np.asarray(center_m, dtype=float)
    d = np.asarray(direction, dtype=float)
    if c.shape[-1:] != (3,) or d.shape[-1:] != (3,):
        raise InvalidInputError(f"Invalid fibre: center_m and direction need shape (..., 3), but got {c.shape} and {d.shape}.")
    norm = np.linalg.norm(d, axis=-1, keepdims=True)
    if np.any(norm == 0) or not np.all(np.isfinite(norm)):
        raise InvalidInputError("Invalid value for 'direction': every direction must be a finite non-zero vector.")
    n = int(n_points)
    if n < 2:
        raise InvalidInputError(f"Invalid value for 'n_points': at least 2, but got {n_points!r}.")
    length = np.asarray(length_m, dtype=float)
    if np.any(~(length > 0)) or not np.all(np.isfinite(length)):
        raise InvalidInputError(f"Invalid value for 'length_m': it must be > 0 and finite, but got {length_m!r}.")
    c, d = np.broadcast_arrays(c, d / norm)
    s = np.linspace(-0.5, 0.5, n)
    ell = np.broadcast_to(length, c.shape[:-1])[..., None, None]
    return c[..., None, :] + ell * s[:, None] * d[..., None, :]


def fibre_potentials(field: _Field, fibres_m: object) -> np.ndarray | list[np.ndarray]:
    """Potential (V) at every point of every fibre, in one evaluation.

    Parameters
    ----------
    field : Montage or PadSolution
        Anything with ``potential(points_m)``; a :class:`Montage` carries its currents.
    fibres_m : array_like of shape (..., n_points, 3), or a sequence of (n_i, 3) arrays
        Fibre paths in metres; fibres of different lengths may come as a list.

    Returns
    -------
    numpy.ndarray of shape (..., n_points), or a list of (n_i,) arrays for a list input

    Examples
    --------
    >>> import math
    >>> from electrostim.physics.field import Layer, LayeredMedium, Montage, disk_pad, solve_pad
    >>> half = LayeredMedium([Layer("tissue", math.inf, 0.2)])
    >>> pad = solve_pad(half, disk_pad((0, 0), 0.01, patch_size_m=2.5e-3))
    >>> fibres = straight_fibre_points([[0, 0, 0.01], [0, 0, 0.02]], (1, 0, 0), 0.05, 51)
    >>> v = fibre_potentials(Montage([pad], [1e-3]), fibres)
    >>> v.shape, bool(v[0, 25] > v[1, 25] > 0)
    ((2, 51), True)
    >>> ragged = [fibres[0, :10], fibres[1]]
    >>> [a.shape for a in fibre_potentials(Montage([pad], [1e-3]), ragged)]
    [(10,), (51,)]
    """
    if isinstance(fibres_m, Sequence) and not isinstance(fibres_m, np.ndarray) and len(fibres_m) and all(
        np.ndim(f) == 2 for f in fibres_m
    ):
        arrays = [np.asarray(f, dtype=float) for f in fibres_m]
        if any(a.shape[-1] != 3 for a in arrays):
            raise InvalidInputError("Invalid value for 'fibres_m': every fibre must be an (n, 3) array of points in metres.")
        v = field.potential(np.concatenate(arrays))
        return np.split(v, np.cumsum([len(a) for a in arrays])[:-1])
    return field.potential(np.asarray(fibres_m, dtype=float))
