"""Body sites and the electrode catalogue.

Sites are data (``sites.toml``): each has an id, a name and the regions it lies in,
from specific to broad. Safety rules and patient conditions are written against site
ids and regions; :func:`site_matches` decides whether a pad's site falls in one.

Examples
--------
>>> from electrostim import anatomy
>>> anatomy.get_site("vastus-medialis").regions[:2]
('vastus-medialis', 'quadriceps')
>>> anatomy.site_matches("vastus-medialis", "knee")
True
>>> anatomy.site_matches("forearm", "knee")
False
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ..errors import UnknownSiteError
from ..units import pad_area_cm2

__all__ = ["Site", "ElectrodeSpec", "get_site", "list_sites", "site_matches", "list_electrodes", "get_electrode", "known_regions"]


@dataclass(frozen=True)
class Site:
    """A body site where a pad can go."""

    id: str
    name: str
    regions: tuple[str, ...]
    lateral: bool


@dataclass(frozen=True)
class ElectrodeSpec:
    """A catalogue electrode (pad)."""

    id: str
    name: str
    shape: str
    width_cm: float | None
    height_cm: float | None
    diameter_cm: float | None
    use: str

    @property
    def area_cm2(self) -> float:
        """Conductive area in cm²."""
        return pad_area_cm2(self.shape, self.width_cm, self.height_cm, self.diameter_cm)


def _read(name: str) -> dict:
    return tomllib.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


@cache
def _sites() -> dict[str, Site]:
    raw = _read("sites.toml")["sites"]
    return {
        sid: Site(id=sid, name=s["name"], regions=tuple(s["regions"]), lateral=bool(s.get("lateral", False)))
        for sid, s in raw.items()
    }


@cache
def _electrodes() -> dict[str, ElectrodeSpec]:
    raw = _read("electrodes.toml")["electrodes"]
    return {
        eid: ElectrodeSpec(
            id=eid,
            name=e["name"],
            shape=e["shape"],
            width_cm=e.get("width_cm"),
            height_cm=e.get("height_cm"),
            diameter_cm=e.get("diameter_cm"),
            use=e.get("use", ""),
        )
        for eid, e in raw.items()
    }


def list_sites() -> list[Site]:
    """All body sites in the catalogue, in file order."""
    return list(_sites().values())


@cache
def known_regions() -> frozenset[str]:
    """Every region named by some site (site ids included)."""
    out: set[str] = set()
    for s in _sites().values():
        out.add(s.id)
        out.update(s.regions)
    return frozenset(out)


def get_site(site_id: str) -> Site:
    """Return the site with this id, or raise :class:`~electrostim.errors.UnknownSiteError`."""
    try:
        return _sites()[site_id]
    except KeyError:
        allowed = ", ".join(_sites())
        raise UnknownSiteError(f"Unknown body site {site_id!r}: allowed sites are {allowed}.") from None


def site_matches(site_id: str, target: str) -> bool:
    """Whether a pad on ``site_id`` lies in ``target`` (a site id or a region).

    A site matches itself and every region it lists; a site also matches a target
    site whose regions include it (a pad on the knee is in the region of a
    condition written against ``vastus-medialis``, which lists ``knee``).
    """
    site = get_site(site_id)
    if target == site_id or target in site.regions:
        return True
    other = _sites().get(target)
    return other is not None and site_id in other.regions


def list_electrodes() -> list[ElectrodeSpec]:
    """All catalogue electrodes."""
    return list(_electrodes().values())


def get_electrode(electrode_id: str) -> ElectrodeSpec:
    """Return a catalogue electrode by id."""
    try:
        return _electrodes()[electrode_id]
    except KeyError:
        allowed = ", ".join(_electrodes())
        raise UnknownSiteError(f"Unknown electrode {electrode_id!r}: allowed electrodes are {allowed}.") from None
