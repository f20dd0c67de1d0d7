"""Fibre populations under a program's electrodes: recruitment curves and the sensory / motor / pain window.

A channel's pads are laid on the skin of a layered tissue (the preset of the pads' body
site), a mixed population of fibres is sampled below them (classes, diameters and depths
from ``fibre_classes.toml``), the field of the pads is sampled along every fibre, and the
threshold of every fibre under one repetition of the program's own waveform (a pulse, a
burst, a few carrier cycles) is found in one batched search.

The data are TOML files read and checked when this module is imported:
``physics/fibre_classes.toml`` (the classes, with their sources) and
``physics/field/tissues.toml`` (the layers per body site, and the preset that stands in
for a site without one).

Examples
--------
>>> import electrostim as es
>>> from electrostim.physics.population import population_thresholds
>>> res = population_thresholds(es.load_program("knee-oa-tens"), counts={"a-beta": 8, "motor": 8}, seed=1)
>>> w = res.window()
>>> w["sensory"]["onset_ma"] < w["motor"]["onset_ma"]
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OptionError
from ..program import Program
from ..units import MA, MM, US
from ..waveform import Schedule
from . import _data
from . import field as fld
from .fibres import FIBRE_MODELS, Case, build_cable, find_thresholds, schedule_wave
from .fibres._geometry import Cable

__all__ = [
    "DEFAULT_COUNTS",
    "FibreClass",
    "PopulationResult",
    "fibre_classes",
    "load_fibre_classes",
    "population_thresholds",
    "tissue_for_site",
]

#: the default mixed population (fibres per class)
DEFAULT_COUNTS = {"a-beta": 60, "motor": 60, "a-delta": 30, "c": 10}
#: the roles of fibre classes, in the order the window reports them
ROLES = ("sensory", "motor", "pain")
_DIAMETER_STEP_UM = 0.25  # diameters are binned so that fibres of a bin share one cable (and batch as lanes)
_MAX_CURRENT_MA = 200.0  # fibres not recruited by 200 mA count as never recruited
#: the field of a channel is tabulated on a grid per fibre class and interpolated along the
#: fibres; the spacing follows the depth (the field is smoother deeper): along the fibres a
#: third of the shallowest depth, across them half of it, within these bounds; depth levels
#: are geometric
_GRID_DX_M, _GRID_DY_M, _GRID_NZ = (0.0005, 0.003), (0.001, 0.004), 16


# --------------------------------------------------------------------------- fibre classes (data)


@dataclass(frozen=True)
class FibreClass:
    """A class of fibres: model, diameter distribution and depth range below the top of a tissue layer.

    Source: ``physics/fibre_classes.toml`` (diameter ranges from the model reference;
    depths and spreads marked ``[assumed]`` there).

    Attributes
    ----------
    id, name : str
        Class id (``a-beta``, ``motor``, ``a-delta``, ``c``) and what it is, in words.
    role : str
        ``sensory``, ``motor`` or ``pain``: the column of the window it counts in.
    model : str
        Fibre model (one of :data:`~electrostim.physics.fibres.FIBRE_MODELS`).
    diameter_mean_um, diameter_sd_um, diameter_min_um, diameter_max_um : float
        Normal distribution of diameters (µm), clipped to ``[min, max]``.
    layer : str
        Tissue layer the fibres run in (``skin``, ``muscle``, ...).
    depth_m : tuple of float
        Depth range below the top of that layer, m.
    nodes : int
        Nodes of Ranvier of each fibre (myelinated models).
    length_m : float or None
        Length of each fibre (unmyelinated models), m.
    dt_us : float
        Time step of the simulation, µs.
    """

    id: str
    name: str
    role: str
    model: str
    diameter_mean_um: float
    diameter_sd_um: float
    diameter_min_um: float
    diameter_max_um: float
    layer: str
    depth_m: tuple[float, float]
    nodes: int = 41
    length_m: float | None = None
    dt_us: float = 1.0


_CLASS_KEYS = {"name", "role", "model", "diameter_um", "layer", "depth_m"}
_CLASS_OPTIONAL = {"nodes", "length_m", "dt_us"}


def _validate_classes(raw: dict[str, Any], where: str) -> dict[str, FibreClass]:
    """Check a parsed ``fibre_classes.toml``; returns the classes by id."""
    _data._keys(where, raw, {"classes"})
    classes = _data._table(where, "[classes]", raw["classes"])
    if not classes:
        raise _data._fail(where, "[classes] holds no class")
    out = {}
    for cid, c in classes.items():
        at = f"{where} [classes.{cid}]"
        c = _data._table(where, f"[classes.{cid}]", c)
        _data._keys(at, c, _CLASS_KEYS, _CLASS_OPTIONAL)
        role = _data._text(at, "role", c["role"])
        if role not in ROLES:
            raise _data._fail(at, f"role must be one of {', '.join(ROLES)}, but got {role!r}")
        model = _data._text(at, "model", c["model"])
        if model not in FIBRE_MODELS:
            raise _data._fail(at, f"model must be one of {', '.join(FIBRE_MODELS)}, but got {model!r}")
        d = _data._table(at, "diameter_um", c["diameter_um"])
        _data._keys(f"{at} diameter_um", d, {"mean", "sd", "min", "max"})
        mean, sd, lo, hi = (_data._number(f"{at} diameter_um", k, d[k], lo=0.0, hi=30.0, lo_open=k != "sd")
                            for k in ("mean", "sd", "min", "max"))
        if not lo <= mean <= hi:
            raise _data._fail(at, f"diameter_um needs min <= mean <= max, but got {d!r}")
        depth = _data._numbers(at, "depth_m", c["depth_m"], length=2)
        if not 0.0 <= depth[0] < depth[1] <= 0.2:
            raise _data._fail(at, f"depth_m must be [top, bottom] with 0 <= top < bottom <= 0.2 m, but got {c['depth_m']!r}")
        length = c.get("length_m")
        out[cid] = FibreClass(
            cid, _data._text(at, "name", c["name"]), role, model, mean, sd, lo, hi, _data._text(at, "layer", c["layer"]),
            (depth[0], depth[1]), _data._integer(at, "nodes", c.get("nodes", 41), lo=5),
            None if length is None else _data._number(at, "length_m", length, lo=0.0, hi=1.0, lo_open=True),
            _data._number(at, "dt_us", c.get("dt_us", 1.0), lo=0.0, hi=100.0, lo_open=True),
        )
    return out


def load_fibre_classes(path: str | Path | None = None) -> dict[str, FibreClass]:
    """Read and check a fibre-class file (default: the shipped ``fibre_classes.toml``).

    Parameters
    ----------
    path : str or Path, optional
        A TOML file in the format of the shipped one.

    Returns
    -------
    dict
        Class id → :class:`FibreClass`, in file order.

    Raises
    ------
    InvalidInputError
        The file cannot be read, or a class is missing a value, has an unknown one or
        one outside its range; one line naming the file, the class and the value.

    Examples
    --------
    >>> list(load_fibre_classes())
    ['a-beta', 'motor', 'a-delta', 'c']
    """
    raw, where = _data.read_toml(__package__, "fibre_classes.toml", path)
    return _validate_classes(raw, where)


@cache
def fibre_classes() -> dict[str, FibreClass]:
    """The shipped fibre classes by id (``physics/fibre_classes.toml``, read and checked at import).

    Examples
    --------
    >>> fibre_classes()["motor"].model
    'mrg-interp'
    """
    return load_fibre_classes()


fibre_classes()  # read and checked at import: a broken file fails here, with one line naming it


def tissue_for_site(site: str) -> str:
    """The tissue preset id for a body site: its own or its region's, else the nearest one (``tissues.toml``).

    Raises
    ------
    UnknownSiteError
        The site is not in the catalogue, or no preset covers it nor stands in for it.

    Examples
    --------
    >>> tissue_for_site("vastus-medialis"), tissue_for_site("hand")
    ('quadriceps', 'forearm')
    """
    from .field._presets import nearest_tissue_preset

    return nearest_tissue_preset(site).id


# --------------------------------------------------------------------------- the result


@dataclass
class PopulationResult:
    """Thresholds of a sampled population under one channel.

    Attributes
    ----------
    program, channel, tissue : str
        Program id, channel label and tissue preset id.
    classes : dict of str to FibreClass
        The classes sampled.
    fibre_class : numpy.ndarray of str, shape (fibres,)
        Class id of each fibre.
    diameter_um : numpy.ndarray, shape (fibres,)
        Diameter of each fibre, µm.
    depth_m : numpy.ndarray, shape (fibres,)
        Depth of each fibre below the skin, m.
    threshold_ma : numpy.ndarray, shape (fibres,)
        Peak current of the channel at which each fibre fires, mA (NaN: not recruited by 200 mA).
    blocked : numpy.ndarray of bool, shape (fibres,)
        Excited without propagating (virtual-anode block) and nothing lower propagated.
    notes : list of str
        Where the numbers come from and what was assumed.
    parameters : dict
        How the population was made: ``counts``, ``seed``, ``gap_cm``, ``fat_thickness_mm``
        (the fat used), ``tolerance``, ``contact_resistivity_ohm_m2``, ``stimulus`` (the
        channel's waveform in words), ``stimulus_start_s`` (the repetition applied), and
        ``amplitude_default_ma`` and ``amplitude_max_ma`` (the program's amplitudes, mA).
    """

    program: str
    channel: str
    tissue: str
    classes: dict[str, FibreClass]
    fibre_class: np.ndarray
    diameter_um: np.ndarray
    depth_m: np.ndarray
    threshold_ma: np.ndarray
    blocked: np.ndarray
    notes: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    def recruitment(self, class_id: str, currents_ma: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Fraction of a class recruited at each current.

        Parameters
        ----------
        class_id : str
        currents_ma : numpy.ndarray, optional
            Currents, mA; by default 200 points from 0 to 1.2 times the highest finite threshold.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            The currents (mA) and the fraction (0 to 1) of the class recruited at each.
        """
        thr = self.threshold_ma[self.fibre_class == class_id]
        if currents_ma is None:
            finite = self.threshold_ma[np.isfinite(self.threshold_ma)]
            top = float(finite.max()) * 1.2 if finite.size else 1.0
            currents_ma = np.linspace(0.0, top, 200)
        frac = np.array([(np.nan_to_num(thr, nan=np.inf) <= c).mean() if thr.size else 0.0 for c in currents_ma])
        return np.asarray(currents_ma), frac

    def window(self, fraction: float = 0.05) -> dict[str, dict]:
        """Onset current of each role (sensory, motor, pain): where ``fraction`` of its fibres fire, and where half do.

        Returns
        -------
        dict
            Role → ``classes``, ``fibres``, ``onset_ma`` and ``half_ma`` (mA, None where
            not reached by 200 mA) and ``recruited_by_200_ma`` (fraction 0 to 1).
        """
        out = {}
        for role in ROLES:
            ids = [c for c, fc in self.classes.items() if fc.role == role]
            thr = self.threshold_ma[np.isin(self.fibre_class, ids)]
            if thr.size == 0:
                continue
            t = np.sort(np.nan_to_num(thr, nan=np.inf))
            k = max(0, int(math.ceil(fraction * t.size)) - 1)
            onset = float(t[k])
            half = float(t[max(0, int(math.ceil(0.5 * t.size)) - 1)])
            out[role] = {"classes": ids, "fibres": int(t.size), "onset_ma": onset if math.isfinite(onset) else None,
                         "half_ma": half if math.isfinite(half) else None,
                         "recruited_by_200_ma": float(np.isfinite(t).mean())}
        return out

    def to_dict(self) -> dict:
        """Everything, as JSON-ready values (None for a threshold not reached)."""
        return {
            "program": self.program, "channel": self.channel, "tissue": self.tissue,
            "window": self.window(),
            "parameters": self.parameters,
            "fibres": [
                {"class": str(c), "diameter_um": float(d), "depth_mm": float(z / MM),
                 "threshold_ma": None if not math.isfinite(t) else float(t), "blocked": bool(b)}
                for c, d, z, t, b in zip(self.fibre_class, self.diameter_um, self.depth_m, self.threshold_ma, self.blocked)
            ],
            "notes": self.notes,
        }


# --------------------------------------------------------------------------- the steps


def _checked_counts(counts: Mapping[str, int] | None, classes: Mapping[str, FibreClass]) -> dict[str, int]:
    """The number of fibres per class (default :data:`DEFAULT_COUNTS`); unknown classes raise OptionError."""
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    bad = sorted(set(counts) - set(classes))
    if bad:
        raise OptionError(f"Unknown fibre class(es) {bad}: allowed {', '.join(classes)}.")
    return counts


def _channel_index(program: Program, channel: int | str) -> int:
    """A channel given by index or label, as an index; a bad one raises OptionError."""
    labels = [c.label for c in program.channels]
    if isinstance(channel, str):
        if channel not in labels:
            raise OptionError(f"Invalid channel {channel!r}: allowed {labels}.")
        channel = labels.index(channel)
    if not (0 <= channel < len(program.channels)):
        raise OptionError(f"Invalid channel index {channel}: allowed 0 to {len(program.channels) - 1}.")
    return channel


def _layer_tops_m(preset: fld.TissuePreset, fat_thickness_mm: float | None) -> dict[str, float]:
    """Depth (m) of the top of the first layer of each tissue; with ``fat_thickness_mm``, the layers
    below the fat move down with it."""
    layer_top: dict[str, float] = {}
    depth = 0.0
    for layer in preset.layers:
        layer_top.setdefault(layer.tissue, depth)
        depth += layer.thickness_m if math.isfinite(layer.thickness_m) else 0.0
    if fat_thickness_mm is not None:
        old = next(x.thickness_m for x in preset.layers if x.tissue == "fat")
        shift = fat_thickness_mm * MM - old
        fat_top = layer_top["fat"]
        layer_top = {k: (v + shift if v > fat_top else v) for k, v in layer_top.items()}
    return layer_top


def _layout(program: Program, channel: int, gap_m: float) -> list[fld.Pad]:
    """Pads on the skin: a pair along x (edge gap ``gap_m``); four pads crossing for quadripolar current."""
    pads = program.channels[channel].electrodes

    def size(e):
        if e.shape == "disk":
            return e.diameter_cm * 1e-2, e.diameter_cm * 1e-2
        return e.width_cm * 1e-2, e.height_cm * 1e-2

    out = []
    for k in range(0, len(pads), 2):
        (w1, h1), (w2, h2) = size(pads[k]), size(pads[k + 1])
        along_x = k == 0
        half = (max(h1, h2) + gap_m) / 2 if along_x else (max(w1, w2) + gap_m) / 2
        for sign, e, (w, h) in ((-1, pads[k], (w1, h1)), (1, pads[k + 1], (w2, h2))):
            c = (sign * half, 0.0) if along_x else (0.0, sign * half)
            if e.shape == "disk":
                out.append(fld.disk_pad(c, w / 2))
            else:
                out.append(fld.rectangle_pad(c, w if along_x else h, h if along_x else w))
    return out


def _circuits(medium: fld.LayeredMedium, pads: list[fld.Pad], contact_resistivity_ohm_m2: float) -> list[fld.Montage]:
    """The field of each circuit of the channel (a pair of pads), per ampere at its first pad."""
    sols = [fld.solve_pad(medium, p, contact_resistivity_ohm_m2=contact_resistivity_ohm_m2) for p in pads]
    return [fld.Montage.channel(sols[k], sols[k + 1], 1.0) for k in range(0, len(sols), 2)]


def _stimulus_window(schedule: Schedule, output: int) -> tuple[float, float]:
    """Start and length (s) of one repetition at full intensity: a pulse, a burst, or two beats."""
    st = schedule.outputs[output].stimulus
    p = st.pulse
    horizon = min(schedule.duration_s, 120.0)
    chunk = schedule.pulses(0.0, horizon)
    mine = chunk.select(chunk.output == output)
    if len(mine) == 0:
        raise OptionError("The program delivers no pulse in its first two minutes.")
    amp = np.abs(mine.first_amplitude_ma)
    k = int(np.argmax(amp >= amp.max() * (1 - 1e-9)))
    t0 = float(mine.time_s[k])
    if p.shape == "interferential":
        length = min(0.02, 2.0 / st.nominal_repetition_hz)
    elif p.shape == "sine-burst":
        length = p.duration_us * US
    elif st.burst is not None:
        length = (st.burst.pulses_per_burst - 1) / p.frequency_hz + p.duration_us * US
    else:
        length = p.duration_us * US
    return t0, length + 2e-6


@dataclass
class _Stimulus:
    """One repetition of the channel's waveform: its start and length (s), sampled once per time step."""

    schedule: Schedule
    outputs: list[int]
    start_s: float
    length_s: float
    _waves: dict[float, np.ndarray] = field(default_factory=dict)

    def wave(self, dt_s: float) -> np.ndarray:
        """The waveform of every output of the channel, ``[output, step]`` at ``dt_s`` (computed once per step)."""
        if dt_s not in self._waves:
            self._waves[dt_s] = np.stack([schedule_wave(self.schedule, self.start_s, self.length_s, dt_s, outputs=[o])[0]
                                          for o in self.outputs])
        return self._waves[dt_s]


def _stimulus(program: Program, channel: int) -> _Stimulus:
    """The repetition of the channel's waveform applied to the fibres, at the program's highest amplitude."""
    outputs = [o.index for o in program.outputs if o.channel_index == channel]
    sched = Schedule(program, level="max")
    t0, length = _stimulus_window(sched, outputs[0])
    return _Stimulus(sched, outputs, t0, length)


@dataclass(frozen=True)
class _Fibre:
    """One sampled fibre: its class, the cable it shares with fibres of its diameter, its time step (s),
    its depth below the skin and the position of its middle on the skin (m)."""

    class_id: str
    cable_key: tuple
    dt_s: float
    depth_m: float
    x_m: float
    y_m: float


def _sample_fibres(counts: Mapping[str, int], classes: Mapping[str, FibreClass], layer_top_m: Mapping[str, float],
                   span_m: tuple[float, float], rng: np.random.Generator, tissue: str) -> list[_Fibre]:
    """Draw every fibre: diameter (normal, clipped, binned to 0.25 µm), depth in its layer and position
    under the pads (uniform), class by class in the order of ``counts``."""
    span_x, span_y = span_m
    fibres = []
    for cid, n in counts.items():
        fc = classes[cid]
        if fc.layer not in layer_top_m:
            raise OptionError(f"Tissue {tissue!r} has no layer {fc.layer!r} for fibre class {cid!r}.")
        d = rng.normal(fc.diameter_mean_um, fc.diameter_sd_um, n)
        d = np.clip(d, fc.diameter_min_um, fc.diameter_max_um)
        d = np.round(d / _DIAMETER_STEP_UM) * _DIAMETER_STEP_UM
        z = layer_top_m[fc.layer] + rng.uniform(fc.depth_m[0], fc.depth_m[1], n)
        xc = rng.uniform(-span_x / 2, span_x / 2, n)
        yc = rng.uniform(-span_y / 2, span_y / 2, n)
        for k in range(n):
            key = (fc.model, float(d[k]), fc.nodes, fc.length_m)
            fibres.append(_Fibre(cid, key, fc.dt_us * US, float(z[k]), float(xc[k]), float(yc[k])))
    return fibres


def _cables(fibres: list[_Fibre]) -> dict[tuple, Cable]:
    """One cable per (model, diameter, nodes, length): fibres that share one run as lanes of one kernel call."""
    cables: dict[tuple, Cable] = {}
    for f in fibres:
        if f.cable_key not in cables:
            model, diameter_um, nodes, length_m = f.cable_key
            if length_m:
                cables[f.cable_key] = build_cable(model, diameter_um, length_um=length_m * 1e6)
            else:
                cables[f.cable_key] = build_cable(model, diameter_um, n_nodes=nodes)
    return cables


@dataclass(frozen=True)
class _Grid:
    """The grid on which a class's field is tabulated (m): along x (the fibres), across (y) and in depth."""

    x_m: np.ndarray
    y_m: np.ndarray
    z_m: np.ndarray
    dx_m: float
    dy_m: float

    @property
    def points(self) -> np.ndarray:
        """Every grid point, shape (nx·ny·nz, 3), x slowest."""
        X, Y, Z = np.meshgrid(self.x_m, self.y_m, self.z_m, indexing="ij")
        return np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1)

    @property
    def size(self) -> int:
        return self.x_m.size * self.y_m.size * self.z_m.size


def _class_grid(mine: list[_Fibre], cables: Mapping[tuple, Cable], span_m: tuple[float, float]) -> _Grid:
    """The grid of one class: over the region under the pads, half a fibre beyond it along x, and the
    depths of the class's fibres; spacing from the shallowest depth (``_GRID_DX_M``, ``_GRID_DY_M``)."""
    span_x, span_y = span_m
    reach = max(cables[f.cable_key].z_m[-1] for f in mine) / 2 + 0.005
    zs = np.array([f.depth_m for f in mine])
    dx = float(np.clip(zs.min() / 3, *_GRID_DX_M))
    dy = float(np.clip(zs.min() / 2, *_GRID_DY_M))
    gx = np.arange(-span_x / 2 - reach, span_x / 2 + reach + dx, dx)
    gy = np.arange(-span_y / 2 - dy, span_y / 2 + 2 * dy, dy)
    gz = np.geomspace(zs.min() * 0.95, zs.max() * 1.05 + 1e-5, _GRID_NZ)
    return _Grid(gx, gy, gz, dx, dy)


class _GridField:
    """A circuit's potential tabulated on a grid; trilinear interpolation in between."""

    def __init__(self, grid: _Grid, values: np.ndarray):
        from scipy.interpolate import RegularGridInterpolator

        shape = (grid.x_m.size, grid.y_m.size, grid.z_m.size)
        self._interp = RegularGridInterpolator((grid.x_m, grid.y_m, grid.z_m), values.reshape(shape), method="linear",
                                               bounds_error=False, fill_value=None)

    def potential(self, points: np.ndarray) -> np.ndarray:
        return self._interp(points)


def _tabulate_fields(fibres: list[_Fibre], cables: Mapping[tuple, Cable], circuits: list[fld.Montage],
                     span_m: tuple[float, float], progress: Callable[[int, int], None] | None = None,
                     ) -> tuple[dict[str, list[_GridField]], dict[str, _Grid]]:
    """Tabulate every circuit's field on each class's grid (the slow part before the search).

    ``progress(done, total)`` counts grid points (times circuits) as they are computed.
    Returns the fields (class → one per circuit) and the grids (class → grid).
    """
    grids: dict[str, _Grid] = {}
    for f in fibres:
        if f.class_id not in grids:
            grids[f.class_id] = _class_grid([g for g in fibres if g.class_id == f.class_id], cables, span_m)
    total = sum(g.size for g in grids.values()) * len(circuits)
    done = 0

    def offset(base: int) -> Callable[[int, int], None] | None:
        """The progress of one grid: its points done, counted after the ``base`` points of the grids before it."""
        if progress is None:
            return None
        report = progress
        return lambda k, n: report(base + k, total)

    fields: dict[str, list[_GridField]] = {}
    for cid, grid in grids.items():
        pts = grid.points
        fields[cid] = []
        for circuit in circuits:
            values = circuit.potential(pts, progress=offset(done))
            done += len(pts)
            fields[cid].append(_GridField(grid, values))
    return fields, grids


def _threshold_case(fibre: _Fibre, cable: Cable, fields: list[_GridField], stim: _Stimulus) -> Case:
    """The threshold search's case for one fibre: the field along it, the waveform for long enough that an
    action potential reaches the node at 90 % of its length, and its detection node."""
    wave = stim.wave(fibre.dt_s)
    quiet = int(np.nonzero(wave.any(axis=0))[0].max()) + 1
    half_length = (cable.z_m[-1] + (cable.z_m[1] - cable.z_m[0]) / 2) / 2
    pts = np.stack([fibre.x_m + cable.z_m - half_length, np.full(cable.n, fibre.y_m), np.full(cable.n, fibre.depth_m)],
                   axis=1)
    phi = np.stack([g.potential(pts) for g in fields])
    detect = int(cable.node_index[int(0.9 * (len(cable.node_index) - 1))])
    travel = abs(cable.z_m[detect] - cable.z_m[cable.n // 2])
    tstop = stim.length_s + 1e-4 + 2e-3 + travel / (0.25 if not cable.myelinated else 10.0)
    n_steps = int(round(tstop / fibre.dt_s))
    w = np.zeros((wave.shape[0], n_steps))
    m = min(n_steps, wave.shape[1])
    w[:, :m] = wave[:, :m]
    return Case(cable, phi, w, fibre.dt_s, detect, quiet)


def _notes(tissue: str, preset: fld.TissuePreset, gap_cm: float, stim: _Stimulus, grids: Mapping[str, _Grid]) -> list[str]:
    """Where the numbers come from, for people."""
    return [f"tissue preset {tissue!r}: {preset.thickness_source}",
            f"pads laid along the fibres with a {gap_cm:g} cm gap; one repetition of the waveform at t = {stim.start_s:g} s",
            "the pads' field is tabulated per class and interpolated linearly: "
            + "; ".join(f"{c}: every {g.dx_m * 1e3:.2g} mm along, {g.dy_m * 1e3:.2g} mm across, {g.z_m.size} depths"
                        for c, g in grids.items()),
            "fibre classes, diameters and depths: see fibre_classes.toml ([assumed] where no source is given)"]


def population_thresholds(
    program: Program,
    channel: int | str = 0,
    counts: Mapping[str, int] | None = None,
    tissue: str | None = None,
    fat_thickness_mm: float | None = None,
    gap_cm: float = 2.5,
    seed: int = 0,
    tolerance: float = 0.01,
    contact_resistivity_ohm_m2: float = 1e-3,
    progress: Callable[[int, int], None] | None = None,
    field_progress: Callable[[int, int], None] | None = None,
) -> PopulationResult:
    """Thresholds of a sampled fibre population under one channel of a program.

    The steps: lay the channel's pads on the tissue (:func:`_layout`) and solve their
    field (:func:`_circuits`); take one repetition of the waveform at the program's
    highest amplitude (:func:`_stimulus`); draw the fibres (:func:`_sample_fibres`) and
    build their cables (:func:`_cables`); tabulate the field per class
    (:func:`_tabulate_fields`); find every threshold in one batched search
    (:func:`~electrostim.physics.fibres.find_thresholds`, one case per fibre from
    :func:`_threshold_case`). Models and sources: ``fibre_classes.toml``,
    ``fibre_models.toml``, ``field/tissues.toml``; ``docs/nerve-engine.md``.

    Parameters
    ----------
    program : Program
    channel : int or str
        Channel index or label.
    counts : mapping of class id to number of fibres
        Default :data:`DEFAULT_COUNTS`.
    tissue : str, optional
        Tissue preset; by default that of the channel's first pad site (:func:`tissue_for_site`).
    fat_thickness_mm : float, optional
        Replace the preset's subcutaneous fat thickness, mm.
    gap_cm : float
        Edge-to-edge gap between the pads of a pair, cm.
    seed : int
        Seed of the sampling (reproducible populations).
    tolerance : float
        Relative bracket of each threshold.
    contact_resistivity_ohm_m2 : float
        Contact resistance of the pads per area, Ω·m².
    progress : callable(done, total), optional
        Called every round of the threshold search with the fibres whose threshold is known.
    field_progress : callable(done, total), optional
        Called while the pads' field is tabulated, with the grid points done (the slow
        part before the search).

    Returns
    -------
    PopulationResult
        Thresholds in mA (peak current of the channel), fibre by fibre, in the order of ``counts``.

    Raises
    ------
    OptionError
        An unknown class, channel or tissue layer, or a program that delivers nothing
        in its first two minutes.
    UnknownSiteError
        No tissue preset for the pads' site (give ``tissue``).
    """
    classes = fibre_classes()
    counts = _checked_counts(counts, classes)
    channel = _channel_index(program, channel)
    phase_note = None
    if len(program.phase_spans) > 1:  # one stimulus is modelled: the program's main (work) phase
        main = program.main_phase
        phase_note = f"the stimulus of {main.title} (a multi-phase program: its longest phase at full intensity)"
        program = main.program
    ch = program.channels[channel]
    tissue = tissue or tissue_for_site(ch.electrodes[0].site)
    preset = fld.get_tissue_preset(tissue)
    medium = preset.medium(thickness_m={"fat": fat_thickness_mm * MM} if fat_thickness_mm is not None else None)
    layer_top = _layer_tops_m(preset, fat_thickness_mm)

    pads = _layout(program, channel, gap_cm * 1e-2)
    circuits = _circuits(medium, pads, contact_resistivity_ohm_m2)
    stim = _stimulus(program, channel)
    span_m = (2 * max(abs(p.center_m[0]) + p.size_m[0] / 2 for p in pads),
              2 * max(abs(p.center_m[1]) + p.size_m[1] / 2 for p in pads))  # the region under the pads

    fibres = _sample_fibres(counts, classes, layer_top, span_m, np.random.default_rng(seed), tissue)
    cables = _cables(fibres)
    fields, grids = _tabulate_fields(fibres, cables, circuits, span_m, field_progress)
    cases = [_threshold_case(f, cables[f.cable_key], fields[f.class_id], stim) for f in fibres]

    res = find_thresholds(cases, tolerance=tolerance, max_amplitude_a=_MAX_CURRENT_MA * MA, progress=progress)
    thr = np.array([r.threshold_a / MA if r.threshold_a is not None else np.nan for r in res])
    fat_mm = fat_thickness_mm if fat_thickness_mm is not None else next(
        (la.thickness_m / MM for la in preset.layers if la.tissue == "fat"), None)
    from ..waveform._plot import stimulus_summary

    parameters = {"counts": counts, "seed": seed, "gap_cm": gap_cm, "fat_thickness_mm": fat_mm, "tolerance": tolerance,
                  "contact_resistivity_ohm_m2": contact_resistivity_ohm_m2, "stimulus": stimulus_summary(ch.stimulus),
                  "stimulus_start_s": stim.start_s, "amplitude_default_ma": ch.stimulus.amplitude.default_ma,
                  "amplitude_max_ma": ch.stimulus.amplitude.max_ma}
    if phase_note is not None:
        parameters["phase"] = phase_note
    return PopulationResult(program.id, ch.label, tissue, {c: classes[c] for c in counts},
                            np.array([f.class_id for f in fibres]), np.array([f.cable_key[1] for f in fibres]),
                            np.array([f.depth_m for f in fibres]), thr, np.array([r.blocked for r in res]),
                            _notes(tissue, preset, gap_cm, stim, grids) + ([f"Stimulus: {phase_note}."] if phase_note else []),
                            parameters)
