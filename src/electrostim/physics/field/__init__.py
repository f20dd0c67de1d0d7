"""Volume conductors: the potential that skin electrodes set up in the tissue below.

SI throughout: metres, amperes, siemens per metre, volts. ``x``, ``y`` lie on the skin
and ``z`` is depth below it (positive into the body).

* Closed forms in a homogeneous medium, isotropic or anisotropic:
  :func:`point_source_potential`, :func:`line_source_potential`.
* Horizontally layered tissue over a half-space (:class:`Layer`,
  :class:`LayeredMedium`): the potential of a point current by a Hankel transform
  with the layer recursion, direct (:meth:`LayeredMedium.potential`) or tabulated and
  interpolated (:meth:`LayeredMedium.table`, :class:`GreenTable`). Layers may be
  anisotropic between the horizontal and the vertical, not within the plane.
* Pads on the skin split into patches (:func:`rectangle_pad`, :func:`disk_pad`,
  :func:`pad_from_spec` for catalogue and program electrodes), with
  a contact resistance per area and an equipotential metal (:func:`solve_pad`); their
  fields superpose (:class:`Montage`).
* Tissue layers per body site, with their sources (:func:`get_tissue_preset`).
* Potentials along fibres (:func:`straight_fibre_points`, :func:`fibre_potentials`).

Examples
--------
A channel of two 5 × 5 cm pads over the quadriceps and a fibre 1.5 cm deep:

>>> from electrostim.physics import field
>>> tissue = field.get_tissue_preset("quadriceps").medium()
>>> a = field.solve_pad(tissue, field.rectangle_pad((-0.04, 0.0), 0.05, 0.05), contact_resistivity_ohm_m2=1e-3)
>>> b = field.solve_pad(tissue, field.rectangle_pad((0.04, 0.0), 0.05, 0.05), contact_resistivity_ohm_m2=1e-3)
>>> channel = field.Montage.channel(a, b, current_a=0.02)
>>> fibre = field.straight_fibre_points((0.0, 0.0, 0.015), (1.0, 0.0, 0.0), 0.16, 161)
>>> v = field.fibre_potentials(channel, fibre)
>>> v.shape, bool(v.max() > 0 > v.min())
((161,), True)
"""

from __future__ import annotations

from ._electrodes import Montage, Pad, PadSolution, disk_pad, pad_from_spec, rectangle_pad, solve_pad
from ._fibres import fibre_potentials, straight_fibre_points
from ._homogeneous import conductivity_tensor, line_source_potential, point_source_potential
from ._layered import GreenTable, Layer, LayeredMedium
from ._presets import TissueLayer, TissuePreset, get_tissue_preset, list_tissue_presets, load_tissue_presets

__all__ = [
    "GreenTable",
    "Layer",
    "LayeredMedium",
    "Montage",
    "Pad",
    "PadSolution",
    "TissueLayer",
    "TissuePreset",
    "conductivity_tensor",
    "disk_pad",
    "fibre_potentials",
    "get_tissue_preset",
    "line_source_potential",
    "list_tissue_presets",
    "load_tissue_presets",
    "pad_from_spec",
    "point_source_potential",
    "rectangle_pad",
    "solve_pad",
    "straight_fibre_points",
]
