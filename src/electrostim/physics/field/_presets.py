"""Tissue layer presets per body site (data in ``tissues.toml``, read and validated at import).

Muscle
------
The layered solver takes layers that are transversely isotropic about the vertical
(one horizontal conductivity ``σh``, one vertical ``σv``). Muscle with its fibres
parallel to the skin is anisotropic *within* the plane (0.35 S/m along the fibres,
0.086 S/m across, Gielen 1984), which that solver cannot represent. The default
mapping (``muscle="anisotropic"``) keeps the vertical value exact, ``σv = σ_across``,
and takes ``σh = √(σ_along σ_across)`` (≈ 0.173 S/m), the geometric mean. In a
homogeneous muscle half-space this gives the exact potential straight below a surface
source (``V = I/(2π √(σ_along σ_across) z)``), while at the surface it is too low
along the fibres and too high across them, both by the factor
``(σ_along/σ_across)^{1/4}`` ≈ 1.42 (the true surface potential is
``I/(2π σ_across x)`` along and ``I/(2π √(σ_along σ_across) y)`` across). Use
:func:`~electrostim.physics.field.point_source_potential` with the full tensor when the
fibre direction matters in a homogeneous muscle. ``muscle="isotropic"`` uses 0.16 S/m.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ...errors import InvalidInputError, UnknownSiteError, check_option
from ._layered import Layer, LayeredMedium

__all__ = ["TissueLayer", "TissuePreset", "get_tissue_preset", "list_tissue_presets", "load_tissue_presets"]

_TISSUE_KEYS = {"name", "source", "conductivity_s_per_m", "conductivity_along_s_per_m", "conductivity_across_s_per_m",
                "conductivity_isotropic_s_per_m"}


@dataclass(frozen=True)
class TissueLayer:
    """One layer of a preset: its tissue, thickness and what it stands for.

    Attributes
    ----------
    tissue : str
        Tissue id (``skin``, ``fat``, ``muscle``, ``cortical-bone``, ``cancellous-bone``).
    thickness_m : float
        Metres; ``math.inf`` for the bottom half-space.
    label : str
        What the layer stands for at this site.
    """

    tissue: str
    thickness_m: float
    label: str


@dataclass(frozen=True)
class TissuePreset:
    """Planar tissue layers at a body site, with the sources of every number.

    Attributes
    ----------
    id : str
        Body-site id (``electrostim.anatomy``).
    name : str
    layers : tuple of TissueLayer
        Skin first; the last is the half-space below.
    thickness_source : str
        Where the thicknesses come from (``[assumed]`` where no source is cited).
    conductivities : dict
        Tissue id → ``{"conductivity_s_per_m": ..., "source": ...}`` (muscle: along,
        across, isotropic).
    """

    id: str
    name: str
    layers: tuple[TissueLayer, ...]
    thickness_source: str
    conductivities: Mapping[str, Mapping[str, Any]]

    def medium(
        self,
        *,
        muscle: str = "anisotropic",
        thickness_m: Mapping[str, float] | None = None,
        conductivity_s_per_m: Mapping[str, float] | None = None,
    ) -> LayeredMedium:
        """The layered medium of this preset.

        Parameters
        ----------
        muscle : {"anisotropic", "isotropic"}
            ``"anisotropic"``: ``σh = √(0.35 · 0.086)``, ``σv = 0.086`` S/m (see the
            module notes); ``"isotropic"``: 0.16 S/m.
        thickness_m : mapping, optional
            Tissue id → thickness in metres replacing the preset's (e.g. this
            person's fat), applied to every finite layer of that tissue.
        conductivity_s_per_m : mapping, optional
            Tissue id → isotropic conductivity in S/m replacing the preset's (e.g. a
            skin value from a measurement).

        Returns
        -------
        LayeredMedium

        Examples
        --------
        >>> p = get_tissue_preset("quadriceps")
        >>> [la.name for la in p.medium().layers]
        ['skin', 'fat', 'muscle', 'cortical-bone', 'cancellous-bone']
        >>> p.medium(thickness_m={"fat": 0.02}).interfaces_m.round(4).tolist()
        [0.0015, 0.0215, 0.0665, 0.0725]
        >>> round(p.medium().layers[2].sigma_h_s_per_m, 4), p.medium().layers[2].sigma_v_s_per_m
        (0.1735, 0.086)
        """
        check_option("muscle", muscle, ["anisotropic", "isotropic"])
        thick = dict(thickness_m or {})
        cond = dict(conductivity_s_per_m or {})
        for name, mapping in (("thickness_m", thick), ("conductivity_s_per_m", cond)):
            unknown = sorted(set(mapping) - set(self.conductivities))
            if unknown:
                raise InvalidInputError(
                    f"Invalid value for {name!r}: allowed tissues {', '.join(repr(t) for t in self.conductivities)}, "
                    f"but got {', '.join(map(repr, unknown))}."
                )
        layers = []
        for la in self.layers:
            t = la.thickness_m if math.isinf(la.thickness_m) else float(thick.get(la.tissue, la.thickness_m))
            c = self.conductivities[la.tissue]
            if la.tissue in cond:
                layers.append(Layer(la.tissue, t, float(cond[la.tissue])))
            elif "conductivity_s_per_m" in c:
                layers.append(Layer(la.tissue, t, float(c["conductivity_s_per_m"])))
            elif muscle == "isotropic":
                layers.append(Layer(la.tissue, t, float(c["conductivity_isotropic_s_per_m"])))
            else:
                along, across = float(c["conductivity_along_s_per_m"]), float(c["conductivity_across_s_per_m"])
                layers.append(Layer(la.tissue, t, math.sqrt(along * across), across))
        return LayeredMedium(tuple(layers))


def _fail(where: str, problem: str) -> InvalidInputError:
    return InvalidInputError(f"Invalid tissue preset file {where}: {problem}.")


def _number(where: str, key: str, value: Any, *, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (lo < float(value) < hi):
        raise _fail(where, f"{key} must be a number in ({lo:g}, {hi:g}), but got {value!r}")
    return float(value)


def _text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"{key} must be a non-empty string, but got {value!r}")
    return value


def _validate(raw: dict[str, Any], origin: str) -> dict[str, TissuePreset]:
    if raw.get("schema") != 1:
        raise _fail(origin, f"schema must be 1, but got {raw.get('schema')!r}")
    tissues = raw.get("tissues")
    sites = raw.get("sites")
    if not isinstance(tissues, dict) or not tissues:
        raise _fail(origin, "a [tissues.<id>] table is required")
    if not isinstance(sites, dict) or not sites:
        raise _fail(origin, "a [sites.<id>] table is required")
    conductivities: dict[str, dict[str, Any]] = {}
    for tid, t in tissues.items():
        where = f"{origin} [tissues.{tid}]"
        if not isinstance(t, dict):
            raise _fail(where, "expected a table")
        extra = sorted(set(t) - _TISSUE_KEYS)
        if extra:
            raise _fail(where, f"unknown keys {extra}; allowed {sorted(_TISSUE_KEYS)}")
        entry: dict[str, Any] = {"name": _text(where, "name", t.get("name")), "source": _text(where, "source", t.get("source"))}
        if "conductivity_s_per_m" in t:
            entry["conductivity_s_per_m"] = _number(where, "conductivity_s_per_m", t["conductivity_s_per_m"], lo=0.0, hi=100.0)
        else:
            for key in ("conductivity_along_s_per_m", "conductivity_across_s_per_m", "conductivity_isotropic_s_per_m"):
                if key not in t:
                    raise _fail(where, "give conductivity_s_per_m, or all of conductivity_along_s_per_m, "
                                       "conductivity_across_s_per_m and conductivity_isotropic_s_per_m")
                entry[key] = _number(where, key, t[key], lo=0.0, hi=100.0)
        conductivities[tid] = entry
    presets: dict[str, TissuePreset] = {}
    for sid, s in sites.items():
        where = f"{origin} [sites.{sid}]"
        if not isinstance(s, dict):
            raise _fail(where, "expected a table")
        extra = sorted(set(s) - {"name", "layers", "thickness_source"})
        if extra:
            raise _fail(where, f"unknown keys {extra}; allowed ['layers', 'name', 'thickness_source']")
        raw_layers = s.get("layers")
        if not isinstance(raw_layers, list) or len(raw_layers) < 1:
            raise _fail(where, "layers must be a list of one or more layers, skin first")
        layers = []
        for i, la in enumerate(raw_layers):
            lw = f"{where} layers[{i}]"
            if not isinstance(la, dict):
                raise _fail(lw, "expected an inline table {tissue = ..., thickness_mm = ...}")
            extra = sorted(set(la) - {"tissue", "thickness_mm", "label"})
            if extra:
                raise _fail(lw, f"unknown keys {extra}; allowed ['label', 'thickness_mm', 'tissue']")
            tissue = la.get("tissue")
            if tissue not in conductivities:
                raise _fail(lw, f"tissue must be one of {', '.join(repr(t) for t in conductivities)}, but got {tissue!r}")
            last = i == len(raw_layers) - 1
            if last:
                if "thickness_mm" in la:
                    raise _fail(lw, "the last layer is the half-space below and takes no thickness_mm")
                thickness = math.inf
            else:
                if "thickness_mm" not in la:
                    raise _fail(lw, "thickness_mm is required for every layer but the last")
                thickness = _number(lw, "thickness_mm", la["thickness_mm"], lo=0.0, hi=1000.0) * 1e-3
            label = _text(lw, "label", la.get("label", conductivities[tissue]["name"]))
            layers.append(TissueLayer(tissue, thickness, label))
        presets[sid] = TissuePreset(
            id=sid,
            name=_text(where, "name", s.get("name")),
            layers=tuple(layers),
            thickness_source=_text(where, "thickness_source", s.get("thickness_source")),
            conductivities={t: conductivities[t] for t in dict.fromkeys(la.tissue for la in layers)},
        )
    return presets


def load_tissue_presets(path: str | Path | None = None) -> dict[str, TissuePreset]:
    """Read and validate a tissue-preset file (default: the presets shipped with electrostim).

    Parameters
    ----------
    path : str or Path, optional
        A TOML file in the format of the shipped ``tissues.toml``.

    Returns
    -------
    dict
        Preset id → :class:`TissuePreset`.

    Raises
    ------
    InvalidInputError
        The file cannot be read or does not validate (its ``[nearest_preset]`` table
        included); one line naming the file and the place.

    Examples
    --------
    >>> sorted(load_tissue_presets())
    ['calf', 'forearm', 'knee', 'low-back', 'quadriceps', 'upper-trapezius']
    """
    if path is None:
        return dict(_shipped())
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInputError(f"Invalid tissue preset file {p}: {' '.join(str(exc).split())}.") from None
    presets = _validate(raw, str(p))
    _validate_nearest(raw, str(p), presets)
    return presets


def _validate_nearest(raw: dict[str, Any], origin: str, presets: Mapping[str, TissuePreset]) -> dict[str, str]:
    """The ``[nearest_preset]`` table: body-site id → the preset that stands in for it (optional in a file)."""
    from ... import anatomy

    table = raw.get("nearest_preset", {})
    where = f"{origin} [nearest_preset]"
    if not isinstance(table, dict):
        raise _fail(where, "expected a table of site id = preset id")
    sites = {s.id for s in anatomy.list_sites()}
    out: dict[str, str] = {}
    for site, preset in table.items():
        if site not in sites:
            raise _fail(where, f"{site!r} is not a body site of electrostim.anatomy; allowed {', '.join(sorted(sites))}")
        if preset not in presets:
            raise _fail(where, f"{site} must name a preset ({', '.join(repr(p) for p in presets)}), but got {preset!r}")
        own = _covering_preset(site, presets)
        if own is not None:
            raise _fail(where, f"{site!r} already has the preset {own!r} (its own or its region's); remove it here")
        out[site] = preset
    return out


def _covering_preset(site: str, presets: Mapping[str, TissuePreset]) -> str | None:
    """The preset of a site: its own, or that of the most specific region it lies in (None: none)."""
    from ... import anatomy

    if site in presets:
        return site
    for region in anatomy.get_site(site).regions:  # an unknown site raises UnknownSiteError
        if region in presets:
            return region
    return None


@cache
def _shipped_tables() -> tuple[dict[str, TissuePreset], dict[str, str]]:
    """The shipped presets and nearest-preset table, read and checked once."""
    text = resources.files(__package__).joinpath("tissues.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    presets = _validate(raw, "tissues.toml")
    return presets, _validate_nearest(raw, "tissues.toml", presets)


def _shipped() -> dict[str, TissuePreset]:
    return _shipped_tables()[0]


def nearest_tissue_preset(site: str) -> TissuePreset:
    """The tissue preset for a body site, with a stand-in where no preset covers it.

    Like :func:`get_tissue_preset`, then the ``[nearest_preset]`` table of
    ``tissues.toml`` for sites that no preset covers (the abdomen takes the low back's
    layers, the hand the forearm's; marked ``[assumed]`` there).

    Parameters
    ----------
    site : str
        A body-site id of :mod:`electrostim.anatomy`.

    Returns
    -------
    TissuePreset

    Raises
    ------
    UnknownSiteError
        The site is not in the catalogue, or neither a preset nor a stand-in covers it.

    Examples
    --------
    >>> nearest_tissue_preset("abdomen").id, nearest_tissue_preset("vastus-medialis").id
    ('low-back', 'quadriceps')
    >>> nearest_tissue_preset("head")
    Traceback (most recent call last):
    ...
    electrostim.errors.UnknownSiteError: No tissue preset or stand-in for body site 'head': allowed abdomen, ankle,
    calf, foot, forearm, gluteal, hamstrings, hand, knee, low-back, pelvis, posterior-neck, quadriceps, rectus-femoris,
    shoulder, tibialis-anterior, upper-arm, upper-back, upper-trapezius, vastus-lateralis, vastus-medialis.
    """
    presets, nearest = _shipped_tables()
    own = _covering_preset(site, presets)
    if own is not None:
        return presets[own]
    if site in nearest:
        return presets[nearest[site]]
    raise UnknownSiteError(f"No tissue preset or stand-in for body site {site!r}: allowed {', '.join(sites_with_tissue())}.")


def sites_with_tissue() -> list[str]:
    """Body-site ids that :func:`nearest_tissue_preset` answers for, sorted.

    Examples
    --------
    >>> "hand" in sites_with_tissue(), "head" in sites_with_tissue()
    (True, False)
    """
    from ... import anatomy

    presets, nearest = _shipped_tables()
    return sorted(s.id for s in anatomy.list_sites() if s.id in nearest or _covering_preset(s.id, presets) is not None)


_shipped_tables()  # read and checked at import: a broken file fails here, with one line naming it


def list_tissue_presets() -> list[TissuePreset]:
    """The shipped tissue presets, in file order.

    Returns
    -------
    list of TissuePreset

    Examples
    --------
    >>> [p.id for p in list_tissue_presets()][:2]
    ['quadriceps', 'knee']
    """
    return list(_shipped().values())


def get_tissue_preset(site: str) -> TissuePreset:
    """The tissue preset for a body site: its own, or that of the most specific region it lies in.

    A site lists its regions from specific to broad (:mod:`electrostim.anatomy`);
    ``"vastus-medialis"`` lies in ``"quadriceps"`` (before ``"knee"``) and gets the
    thigh preset.

    Parameters
    ----------
    site : str
        A body-site id of :mod:`electrostim.anatomy`.

    Returns
    -------
    TissuePreset

    Raises
    ------
    UnknownSiteError
        The site is not in the catalogue, or no preset covers it.

    Examples
    --------
    >>> get_tissue_preset("vastus-medialis").id
    'quadriceps'
    >>> get_tissue_preset("abdomen")
    Traceback (most recent call last):
    ...
    electrostim.errors.UnknownSiteError: No tissue preset for body site 'abdomen': presets exist for 'quadriceps',
    'knee', 'low-back', 'calf', 'forearm', 'upper-trapezius' and the sites within them.
    """
    presets = _shipped()
    own = _covering_preset(site, presets)
    if own is not None:
        return presets[own]
    allowed = ", ".join(repr(p) for p in presets)
    raise UnknownSiteError(f"No tissue preset for body site {site!r}: presets exist for {allowed} and the sites within them.")
