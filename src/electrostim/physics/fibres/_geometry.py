"""Fibre geometry: sections, their electrical properties, and the SI arrays the kernel integrates.

Each section is one compartment (as NEURON with ``nseg = 1``). Sections are described
with the units the papers use (µm, Ω·cm, µF/cm², S/cm², MΩ/cm) and converted to SI
once, in :func:`_to_cable`. The parameters are data, ``physics/fibre_models.toml``,
read and checked when this module is imported; each model there names its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import OptionError
from .. import _data
from . import _kernels as K

__all__ = ["Cable", "FIBRE_MODELS", "build_cable", "model_table", "mrg_geometry"]

#: model ids people use, and what they are
FIBRE_MODELS = {
    "mrg": "MRG 2002, tabulated diameters (5.7-16 µm)",
    "mrg-interp": "MRG 2002, geometry interpolated over 2-16 µm",
    "sensory": "MRG-based sensory (Aβ) axon with more persistent Na+",
    "adelta": "small myelinated Aδ axon (MRG geometry scaled, 1-5 µm)",
    "sweeney": "Sweeney 1987 (CRRSS), nodes only",
    "sundt": "Sundt 2015 unmyelinated C fibre",
}

_HUGE_XG = 1e10  # S/cm²: a layer shorted to the outside (NEURON's convention)
_HUGE_XRAXIAL = 1e9  # MΩ/cm: no periaxonal path

#: what each table of fibre_models.toml must hold: single numbers, lists of three numbers (per gate
#: group), and the columns of a geometry table (one value per tabulated diameter)
_MODEL_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "mrg": {
        "numbers": ("gnabar", "gnapbar", "gkbar", "gl", "ena_mv", "ek_mv", "el_mv", "v_rest_mv", "rhoa_ohm_cm",
                    "node_cm_uf_per_cm2", "mysa_g_s_per_cm2", "flut_stin_g_s_per_cm2", "myelin_c_uf_per_cm2_per_lamella",
                    "myelin_g_s_per_cm2_per_lamella", "node_length_um", "mysa_length_um", "space_node_mysa_um",
                    "space_flut_stin_um"),
        "triples": ("temperature_ref_c", "q10"),
        "columns": ("diameters_um", "axon_diameter_um", "node_diameter_um", "internode_um", "flut_length_um", "lamellae"),
    },
    "sensory": {"numbers": ("fast_persistent_na_fraction",)},
    "sweeney": {"numbers": ("gnabar", "gl", "ena_mv", "el_mv", "v_rest_mv", "cm_uf_per_cm2", "ra_ohm_cm", "axon_ratio",
                            "internode_ratio", "node_length_um", "q10", "temperature_ref_c")},
    "sundt": {"numbers": ("gnabar", "gkdrbar", "g_pas", "ena_mv", "ek_mv", "v_rest_mv", "ra_ohm_cm", "cm_uf_per_cm2",
                          "section_length_um", "m_shift_mv", "h_shift_mv", "q10", "temperature_ref_c")},
}


def _validate_models(raw: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """Check a parsed ``fibre_models.toml``; returns its tables with every number as a float."""
    _data._keys(where, raw, set(_MODEL_KEYS))
    out: dict[str, dict[str, Any]] = {}
    for model, spec in _MODEL_KEYS.items():
        at = f"{where} [{model}]"
        t = _data._table(where, f"[{model}]", raw[model])
        fields = {"name", "source", *spec.get("numbers", ()), *spec.get("triples", ()), *spec.get("columns", ())}
        _data._keys(at, t, fields)
        entry: dict[str, Any] = {"name": _data._text(at, "name", t["name"]), "source": _data._text(at, "source", t["source"])}
        for key in spec.get("numbers", ()):
            entry[key] = _data._number(at, key, t[key])
        for key in spec.get("triples", ()):
            entry[key] = _data._numbers(at, key, t[key], length=3)
        columns = spec.get("columns", ())
        if columns:
            n = len(_data._numbers(at, columns[0], t[columns[0]], min_length=2))
            for key in columns:
                values = _data._numbers(at, key, t[key], length=n)
                if any(v <= 0 for v in values):
                    raise _data._fail(at, f"{key} must hold numbers > 0, but got {t[key]!r}")
                entry[key] = values
            if any(b <= a for a, b in zip(entry[columns[0]], entry[columns[0]][1:])):
                raise _data._fail(at, f"{columns[0]} must increase, but got {t[columns[0]]!r}")
        out[model] = entry
    return out


def load_model_table(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Read and check a fibre-model parameter file (default: the shipped ``fibre_models.toml``).

    Parameters
    ----------
    path : str or Path, optional
        A TOML file in the format of the shipped one.

    Returns
    -------
    dict
        Model table id (``mrg``, ``sensory``, ``sweeney``, ``sundt``) → its parameters.

    Raises
    ------
    InvalidInputError
        The file cannot be read, or a table or value is missing or malformed; one line
        naming the file, the table and the value.
    """
    raw, where = _data.read_toml(__package__.rpartition(".")[0], "fibre_models.toml", path)
    return _validate_models(raw, where)


@cache
def model_table() -> dict:
    """The fibre-model parameter tables (``physics/fibre_models.toml``), checked."""
    return load_model_table()


model_table()  # read and checked at import: a broken file fails here, with one line


@dataclass
class _Section:
    kind: str
    length_um: float
    diam_um: float
    ra_ohm_cm: float
    cm_uf_cm2: float
    g_pas_s_cm2: float = 0.0
    e_pas_mv: float = 0.0
    xraxial_mohm_cm: float = _HUGE_XRAXIAL
    xg_s_cm2: float = _HUGE_XG
    xc_uf_cm2: float = 0.0
    active: bool = False


@dataclass
class Cable:
    """A discretised fibre: per-compartment SI arrays for the kernel, and where each compartment lies.

    Built by :func:`build_cable`. Each section of the model is one compartment (as
    NEURON with ``nseg = 1``); arrays run over compartments (``n`` of them) unless said
    otherwise. Sources of the parameters: ``fibre_models.toml``.

    Attributes
    ----------
    model : str
        Model id (one of :data:`FIBRE_MODELS`).
    diameter_um : float
        Fibre diameter, µm (for ``sundt`` the axon diameter).
    temperature_c : float
        Temperature the channel rates are scaled to, °C.
    kernel_model : int
        Membrane model of the kernel (``MODEL_MRG``, ``MODEL_SWEENEY``, ``MODEL_SUNDT``).
    params : numpy.ndarray, shape (N_PARAMS,)
        Kernel parameter vector, SI (conductance densities S/m², potentials V, Q10
        factors; layout ``P_*`` in the kernel module).
    n_gates : int
        Gates per active compartment.
    v_rest_v : float
        Resting membrane potential, V.
    cm_f, gm_s, em_v : numpy.ndarray, shape (n,)
        Membrane capacitance (F), passive membrane conductance (S) and its reversal
        potential (V) of each compartment.
    gx_s, cx_f : numpy.ndarray, shape (n,)
        Conductance (S) and capacitance (F) of the myelin between the periaxonal space
        and the outside (a very large conductance where there is no periaxonal layer).
    gi_s, gp_s : numpy.ndarray, shape (n - 1,)
        Axial conductance (S) between neighbouring compartments, intracellular and periaxonal.
    area_m2 : numpy.ndarray, shape (n,)
        Membrane area of each active compartment, m² (0 for passive ones).
    active : numpy.ndarray of int, shape (n_active,)
        Indices of the active compartments.
    act_of : numpy.ndarray of int, shape (n,)
        Index into ``active`` of each compartment (-1: passive).
    z_m : numpy.ndarray, shape (n,)
        Centre of each compartment along the fibre, from its start, m.
    node_index : numpy.ndarray of int
        Compartment index of each node (myelinated) or of each section (unmyelinated).
    kinds : list of str
        Section kind of each compartment (``node``, ``passive-node``, ``mysa``, ...).
    myelinated : bool
    """

    model: str
    diameter_um: float
    temperature_c: float
    kernel_model: int
    params: np.ndarray
    n_gates: int
    v_rest_v: float
    cm_f: np.ndarray
    gm_s: np.ndarray
    em_v: np.ndarray
    gx_s: np.ndarray
    cx_f: np.ndarray
    gi_s: np.ndarray
    gp_s: np.ndarray
    area_m2: np.ndarray
    active: np.ndarray
    act_of: np.ndarray
    z_m: np.ndarray
    node_index: np.ndarray
    kinds: list[str] = field(default_factory=list)
    myelinated: bool = True

    @property
    def n(self) -> int:
        """Number of compartments."""
        return int(self.cm_f.shape[0])

    @property
    def length_m(self) -> float:
        """Length of the fibre, m."""
        return float(self.z_m[-1] + (self.z_m[-1] - self.z_m[-2]) / 2) if self.n > 1 else 0.0


def mrg_geometry(diameter_um: float, interpolate: bool) -> dict[str, float]:
    """MRG section geometry for a fibre diameter.

    Tabulated diameters are taken from the table; with ``interpolate`` other diameters
    are interpolated linearly between tabulated ones, and below the smallest (5.7 µm)
    scaled in proportion to the diameter (a self-similar extension, an assumption).
    """
    t = model_table()["mrg"]
    ds = np.array(t["diameters_um"], float)
    keys = ("axon_diameter_um", "node_diameter_um", "internode_um", "flut_length_um", "lamellae")
    hit = np.nonzero(np.isclose(ds, diameter_um, rtol=0, atol=1e-9))[0]
    if hit.size:
        i = int(hit[0])
        return {k: float(t[k][i]) for k in keys}
    if not interpolate:
        raise OptionError(
            f"Invalid value for 'diameter_um' of model 'mrg': allowed the tabulated diameters "
            f"{', '.join(f'{d:g}' for d in ds)} µm (use 'mrg-interp' for others), but got {diameter_um:g}."
        )
    if diameter_um >= ds[0]:
        return {k: float(np.interp(diameter_um, ds, np.array(t[k], float))) for k in keys}
    scale = diameter_um / ds[0]
    return {k: float(t[k][0]) * scale for k in keys}


def _mrg_sections(diameter_um: float, n_nodes: int, interpolate: bool, passive_end_nodes: bool) -> list[_Section]:
    t = model_table()["mrg"]
    g = mrg_geometry(diameter_um, interpolate)
    D = diameter_um
    rhoa = t["rhoa_ohm_cm"]
    nl = g["lamellae"]
    xc = t["myelin_c_uf_per_cm2_per_lamella"] / (2 * nl)
    xg = t["myelin_g_s_per_cm2_per_lamella"] / (2 * nl)
    node_d, axon_d = g["node_diameter_um"], g["axon_diameter_um"]
    flut_len = g["flut_length_um"]
    node_len, mysa_len = t["node_length_um"], t["mysa_length_um"]
    stin_len = (g["internode_um"] - node_len - 2 * mysa_len - 2 * flut_len) / 6.0
    if stin_len <= 0:
        raise OptionError(f"MRG geometry for {D:g} µm leaves no room for internodal sections.")

    def periaxonal(d_um: float, space_um: float) -> float:
        # resistance per length of the periaxonal annulus, MΩ/cm (ρ in Ω·cm over an area in µm²)
        area_um2 = math.pi * ((d_um / 2 + space_um) ** 2 - (d_um / 2) ** 2)
        return rhoa / (area_um2 * 1e-8) * 1e-6

    v_rest = t["v_rest_mv"]

    def internodal(kind: str, length: float, inner_d: float, g_pas: float, space: float) -> _Section:
        # NEURON builds these with diam = fibre diameter and scales Ra, cm and g by the inner
        # diameter; the same is written here with the fibre diameter and the scaled values
        return _Section(kind, length, D, rhoa * (D / inner_d) ** 2, 2.0 * inner_d / D, g_pas * inner_d / D, v_rest,
                        periaxonal(inner_d, space), xg, xc)

    period = [
        internodal("mysa", mysa_len, node_d, t["mysa_g_s_per_cm2"], t["space_node_mysa_um"]),
        internodal("flut", flut_len, axon_d, t["flut_stin_g_s_per_cm2"], t["space_flut_stin_um"]),
        *[internodal("stin", stin_len, axon_d, t["flut_stin_g_s_per_cm2"], t["space_flut_stin_um"]) for _ in range(6)],
        internodal("flut", flut_len, axon_d, t["flut_stin_g_s_per_cm2"], t["space_flut_stin_um"]),
        internodal("mysa", mysa_len, node_d, t["mysa_g_s_per_cm2"], t["space_node_mysa_um"]),
    ]
    rpn0 = periaxonal(node_d, t["space_node_mysa_um"])
    secs: list[_Section] = []
    for k in range(n_nodes):
        if passive_end_nodes and k in (0, n_nodes - 1):
            secs.append(_Section("passive-node", node_len, node_d, 1e10, 1.0, 0.0001, v_rest, rpn0, _HUGE_XG, 0.0))
        else:
            secs.append(_Section("node", node_len, node_d, rhoa, t["node_cm_uf_per_cm2"], 0.0, 0.0, rpn0, _HUGE_XG, 0.0, True))
        if k < n_nodes - 1:
            secs.extend(_Section(**vars(s)) for s in period)
    return secs


def _sweeney_sections(diameter_um: float, n_nodes: int, passive_end_nodes: bool) -> list[_Section]:
    t = model_table()["sweeney"]
    d = t["axon_ratio"] * diameter_um
    node_len = t["node_length_um"]
    myelin_len = t["internode_ratio"] * diameter_um - node_len
    secs: list[_Section] = []
    for k in range(n_nodes):
        if passive_end_nodes and k in (0, n_nodes - 1):
            secs.append(_Section("passive-node", node_len, d, 1e10, 1.0, 0.0001, t["v_rest_mv"]))
        else:
            secs.append(_Section("node", node_len, d, t["ra_ohm_cm"], t["cm_uf_per_cm2"], active=True))
        if k < n_nodes - 1:
            secs.append(_Section("myelin", myelin_len, d, t["ra_ohm_cm"], 0.0))
    return secs


def _sundt_sections(diameter_um: float, n_sections: int, passive_end_nodes: bool, e_leak_mv: float) -> list[_Section]:
    t = model_table()["sundt"]
    L = t["section_length_um"]
    secs = []
    for k in range(n_sections):
        if passive_end_nodes and k in (0, n_sections - 1):
            secs.append(_Section("passive-node", L, diameter_um, 1e10, 1.0, 0.0001, t["v_rest_mv"]))
        else:
            secs.append(_Section("node", L, diameter_um, t["ra_ohm_cm"], t["cm_uf_per_cm2"], active=True))
    return secs


def _to_cable(model: str, diameter_um: float, temperature_c: float, secs: list[_Section], kernel_model: int,
              params: np.ndarray, n_gates: int, v_rest_mv: float, myelinated: bool) -> Cable:
    n = len(secs)
    L = np.array([s.length_um for s in secs]) * 1e-6  # m
    d = np.array([s.diam_um for s in secs]) * 1e-6  # m
    area = math.pi * d * L  # m²
    cm = np.array([s.cm_uf_cm2 for s in secs]) * 1e-2 * area  # µF/cm² = 1e-2 F/m²
    gm = np.array([0.0 if s.active else s.g_pas_s_cm2 for s in secs]) * 1e4 * area
    em = np.array([s.e_pas_mv for s in secs]) * 1e-3
    gx = np.array([s.xg_s_cm2 for s in secs]) * 1e4 * area
    cx = np.array([s.xc_uf_cm2 for s in secs]) * 1e-2 * area
    ra = np.array([s.ra_ohm_cm for s in secs]) * 1e-2  # Ω·m
    r_half_i = ra * (L / 2) / (math.pi * (d / 2) ** 2)  # Ω
    r_half_p = np.array([s.xraxial_mohm_cm for s in secs]) * 1e6 * 1e2 * (L / 2)  # MΩ/cm -> Ω/m
    gi = 1.0 / (r_half_i[:-1] + r_half_i[1:])
    gp = 1.0 / (r_half_p[:-1] + r_half_p[1:])
    edges = np.concatenate([[0.0], np.cumsum(L)])
    z = (edges[:-1] + edges[1:]) / 2
    active = np.array([i for i, s in enumerate(secs) if s.active], np.int64)
    act_of = np.full(n, -1, np.int64)
    act_of[active] = np.arange(active.size)
    node_index = np.array([i for i, s in enumerate(secs) if s.kind in ("node", "passive-node")], np.int64)
    return Cable(model, diameter_um, temperature_c, kernel_model, params, n_gates, v_rest_mv * 1e-3,
                 cm, gm, em, gx, cx, gi, gp, np.where(np.isin(np.arange(n), active), area, 0.0), active, act_of,
                 z, node_index, [s.kind for s in secs], myelinated)


def _mrg_params(temperature_c: float, fast_persistent_fraction: float = 0.0) -> np.ndarray:
    t = model_table()["mrg"]
    p = np.zeros(K.N_PARAMS)
    p[K.P_GNA] = t["gnabar"] * 1e4
    p[K.P_GNAP] = t["gnapbar"] * 1e4
    p[K.P_GNAPF] = t["gnabar"] * fast_persistent_fraction * 1e4
    p[K.P_GK] = t["gkbar"] * 1e4
    p[K.P_GL] = t["gl"] * 1e4
    p[K.P_ENA] = t["ena_mv"] * 1e-3
    p[K.P_EK] = t["ek_mv"] * 1e-3
    p[K.P_EL] = t["el_mv"] * 1e-3
    (r1, r2, r3), (q1, q2, q3) = t["temperature_ref_c"], t["q10"]
    p[K.P_Q1] = q1 ** ((temperature_c - r1) / 10)
    p[K.P_Q2] = q2 ** ((temperature_c - r2) / 10)
    p[K.P_Q3] = q3 ** ((temperature_c - r3) / 10)
    p[K.P_TEMP] = temperature_c
    return p


def _balance_leak(model: int, p: np.ndarray, n_gates: int, v_rest: float, gl_index: int, el_index: int) -> float:
    """Leak reversal (V) that makes the net ionic current zero at ``v_rest`` with gates at steady state."""
    q = p.copy()
    q[gl_index] = 0.0
    g = K.steady_gates(model, q, v_rest, n_gates)
    i_other, _ = K.membrane_current(model, q, v_rest, g[0], g[1], g[2], g[3])
    return v_rest + i_other / p[gl_index]


def build_cable(
    model: str,
    diameter_um: float,
    n_nodes: int = 51,
    temperature_c: float = 37.0,
    passive_end_nodes: bool = True,
    length_um: float | None = None,
) -> Cable:
    """Build a discretised fibre.

    Parameters
    ----------
    model : str
        One of :data:`FIBRE_MODELS`.
    diameter_um : float
        Fibre (outer) diameter; for ``sundt`` the axon diameter.
    n_nodes : int
        Nodes of Ranvier (myelinated models). For ``sundt``, the number of sections
        unless ``length_um`` is given.
    temperature_c : float
        Temperature; channel rates scale with their Q10.
    passive_end_nodes : bool
        Make the first and last node passive and axially isolated (as the peer set-up does).
    """
    if model not in FIBRE_MODELS:
        raise OptionError(f"Invalid value for 'model': allowed {', '.join(repr(m) for m in FIBRE_MODELS)}, but got {model!r}.")
    if not (0.1 <= diameter_um <= 30):
        raise OptionError(f"Invalid value for 'diameter_um': allowed 0.1 to 30 µm, but got {diameter_um!r}.")
    if not (-5 <= temperature_c <= 45):
        raise OptionError(f"Invalid value for 'temperature_c': allowed -5 to 45 °C, but got {temperature_c!r}.")
    if model in ("mrg", "mrg-interp", "sensory", "adelta"):
        if model == "mrg-interp" and not (2.0 <= diameter_um <= 16.0):
            raise OptionError(f"Invalid value for 'diameter_um' of model 'mrg-interp': allowed 2 to 16 µm, but got {diameter_um:g}.")
        if model == "adelta" and not (1.0 <= diameter_um <= 5.0):
            raise OptionError(f"Invalid value for 'diameter_um' of model 'adelta': allowed 1 to 5 µm, but got {diameter_um:g}.")
        if model == "sensory" and not (2.0 <= diameter_um <= 16.0):
            raise OptionError(f"Invalid value for 'diameter_um' of model 'sensory': allowed 2 to 16 µm, but got {diameter_um:g}.")
        if n_nodes < 5:
            raise OptionError(f"Invalid value for 'n_nodes': allowed at least 5, but got {n_nodes}.")
        secs = _mrg_sections(diameter_um, n_nodes, model != "mrg", passive_end_nodes)
        t = model_table()["mrg"]
        if model == "sensory":
            p = _mrg_params(temperature_c, model_table()["sensory"]["fast_persistent_na_fraction"])
            p[K.P_EL] = _balance_leak(K.MODEL_MRG, p, 4, t["v_rest_mv"] * 1e-3, K.P_GL, K.P_EL)
        else:
            p = _mrg_params(temperature_c)
        return _to_cable(model, diameter_um, temperature_c, secs, K.MODEL_MRG, p, 4, t["v_rest_mv"], True)
    if model == "sweeney":
        t = model_table()["sweeney"]
        if n_nodes < 5:
            raise OptionError(f"Invalid value for 'n_nodes': allowed at least 5, but got {n_nodes}.")
        p = np.zeros(K.N_PARAMS)
        p[K.P_GNA] = t["gnabar"] * 1e4
        p[K.P_GL] = t["gl"] * 1e4
        p[K.P_ENA] = t["ena_mv"] * 1e-3
        p[K.P_EL] = t["el_mv"] * 1e-3
        p[K.P_Q1] = t["q10"] ** ((temperature_c - t["temperature_ref_c"]) / 10)
        p[K.P_TEMP] = temperature_c
        secs = _sweeney_sections(diameter_um, n_nodes, passive_end_nodes)
        return _to_cable(model, diameter_um, temperature_c, secs, K.MODEL_SWEENEY, p, 2, t["v_rest_mv"], True)
    # sundt
    t = model_table()["sundt"]
    n_sec = int(round(length_um / t["section_length_um"])) if length_um else n_nodes
    if n_sec < 5:
        raise OptionError(f"Invalid fibre length: at least 5 sections of {t['section_length_um']:g} µm, but got {n_sec}.")
    p = np.zeros(K.N_PARAMS)
    p[K.P_GNA] = t["gnabar"] * 1e4
    p[K.P_GK] = t["gkdrbar"] * 1e4
    p[K.P_GL] = t["g_pas"] * 1e4
    p[K.P_ENA] = t["ena_mv"] * 1e-3
    p[K.P_EK] = t["ek_mv"] * 1e-3
    p[K.P_Q1] = t["q10"] ** ((temperature_c - t["temperature_ref_c"]) / 10)
    p[K.P_SHIFT_M] = t["m_shift_mv"]
    p[K.P_SHIFT_H] = t["h_shift_mv"]
    p[K.P_TEMP] = temperature_c
    p[K.P_EL] = _balance_leak(K.MODEL_SUNDT, p, 4, t["v_rest_mv"] * 1e-3, K.P_GL, K.P_EL)
    secs = _sundt_sections(diameter_um, n_sec, passive_end_nodes, p[K.P_EL] * 1e3)
    return _to_cable(model, diameter_um, temperature_c, secs, K.MODEL_SUNDT, p, 4, t["v_rest_mv"], False)
