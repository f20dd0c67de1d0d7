"""Fibre populations under a program's electrodes: recruitment curves and the sensory / motor / pain window.

A channel's pads are laid on the skin of a layered tissue (the preset of the pads' body
site), a mixed population of fibres is sampled below them (classes, diameters and depths
from ``fibre_classes.toml``), the field of the pads is sampled along every fibre, and the
threshold of every fibre under one repetition of the program's own waveform (a pulse, a
burst, a few carrier cycles) is found in one batched search.

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
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np

from ..errors import OptionError
from ..program import Program
from ..waveform import Schedule
from . import field as fld
from .fibers import Case, build_cable, find_thresholds, schedule_wave
from .fibers._geometry import Cable

__all__ = ["FibreClass", "fibre_classes", "PopulationResult", "population_thresholds", "tissue_for_site", "DEFAULT_COUNTS"]

#: the default mixed population (fibres per class)
DEFAULT_COUNTS = {"a-beta": 60, "motor": 60, "a-delta": 30, "c": 10}
_DIAMETER_STEP_UM = 0.25  # diameters are binned so that fibres of a bin share one cable (and batch as lanes)
_MAX_CURRENT_A = 0.2  # fibres not recruited by 200 mA count as never recruited
#: the field of a channel is tabulated on a grid per fibre class and interpolated along the
#: fibres; the spacing follows the depth (the field is smoother deeper): along the fibres a
#: third of the shallowest depth, across them half of it, within these bounds; depth levels
#: are geometric
_GRID_DX_M, _GRID_DY_M, _GRID_NZ = (0.0005, 0.003), (0.001, 0.004), 16


class _GridField:
    """A circuit's potential tabulated on an (x, y, z) grid; trilinear interpolation in between."""

    def __init__(self, circuit, x: np.ndarray, y: np.ndarray, z: np.ndarray):
        from scipy.interpolate import RegularGridInterpolator

        X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
        values = circuit.potential(np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1)).reshape(X.shape)
        self._interp = RegularGridInterpolator((x, y, z), values, method="linear", bounds_error=False, fill_value=None)

    def potential(self, points: np.ndarray) -> np.ndarray:
        return self._interp(points)


@dataclass(frozen=True)
class FibreClass:
    """A class of fibres: model, diameter distribution (µm) and depth range (m) below the top of a tissue layer."""

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


@cache
def _data() -> dict:
    return tomllib.loads(resources.files(__package__).joinpath("fibre_classes.toml").read_text(encoding="utf-8"))


@cache
def fibre_classes() -> dict[str, FibreClass]:
    """The fibre classes by id."""
    out = {}
    for cid, c in _data()["classes"].items():
        d = c["diameter_um"]
        out[cid] = FibreClass(cid, c["name"], c["role"], c["model"], d["mean"], d["sd"], d["min"], d["max"], c["layer"],
                              tuple(c["depth_m"]), int(c.get("nodes", 41)), c.get("length_m"), float(c.get("dt_us", 1.0)))
    return out


_SITE_TISSUE = {
    "quadriceps": "quadriceps", "vastus-medialis": "quadriceps", "vastus-lateralis": "quadriceps",
    "rectus-femoris": "quadriceps", "hamstrings": "quadriceps", "gluteal": "quadriceps",
    "knee": "knee", "low-back": "low-back", "pelvis": "low-back", "abdomen": "low-back", "upper-back": "low-back",
    "calf": "calf", "tibialis-anterior": "calf", "ankle": "calf", "foot": "calf",
    "forearm": "forearm", "hand": "forearm", "upper-arm": "forearm",
    "upper-trapezius": "upper-trapezius", "shoulder": "upper-trapezius", "posterior-neck": "upper-trapezius",
}


def tissue_for_site(site: str) -> str:
    """The tissue preset for a body site (the nearest one where there is no preset of its own)."""
    if site not in _SITE_TISSUE:
        raise OptionError(f"No tissue model for body site {site!r}: allowed {', '.join(sorted(_SITE_TISSUE))}.")
    return _SITE_TISSUE[site]


@dataclass
class PopulationResult:
    """Thresholds of a sampled population (peak current of the channel, mA; NaN: not recruited by 200 mA)."""

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

    def recruitment(self, class_id: str, currents_ma: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Fraction of a class recruited at each current (mA)."""
        thr = self.threshold_ma[self.fibre_class == class_id]
        if currents_ma is None:
            finite = self.threshold_ma[np.isfinite(self.threshold_ma)]
            top = float(finite.max()) * 1.2 if finite.size else 1.0
            currents_ma = np.linspace(0.0, top, 200)
        frac = np.array([(np.nan_to_num(thr, nan=np.inf) <= c).mean() if thr.size else 0.0 for c in currents_ma])
        return np.asarray(currents_ma), frac

    def window(self, fraction: float = 0.05) -> dict[str, dict]:
        """Onset current of each role (sensory, motor, pain): where ``fraction`` of its fibres fire, and where half do."""
        out = {}
        for role in ("sensory", "motor", "pain"):
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
        return {
            "program": self.program, "channel": self.channel, "tissue": self.tissue,
            "window": self.window(),
            "fibres": [
                {"class": str(c), "diameter_um": float(d), "depth_mm": float(z * 1e3),
                 "threshold_ma": None if not math.isfinite(t) else float(t), "blocked": bool(b)}
                for c, d, z, t, b in zip(self.fibre_class, self.diameter_um, self.depth_m, self.threshold_ma, self.blocked)
            ],
            "notes": self.notes,
        }


def _stimulus_window(schedule: Schedule, output: int) -> tuple[float, float]:
    """Start and length of one repetition at full intensity: a pulse, a burst, or two beats."""
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
        length = p.duration_us * 1e-6
    elif st.burst is not None:
        length = (st.burst.pulses_per_burst - 1) / p.frequency_hz + p.duration_us * 1e-6
    else:
        length = p.duration_us * 1e-6
    return t0, length + 2e-6


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
) -> PopulationResult:
    """Thresholds of a sampled fibre population under one channel of a program.

    Parameters
    ----------
    program : Program
    channel : int or str
        Channel index or label.
    counts : mapping of class id to number of fibres
        Default :data:`DEFAULT_COUNTS`.
    tissue : str, optional
        Tissue preset; by default the one of the channel's first pad site.
    fat_thickness_mm : float, optional
        Replace the preset's subcutaneous fat thickness.
    gap_cm : float
        Edge-to-edge gap between the pads of a pair.
    seed : int
        Seed of the sampling (reproducible populations).
    tolerance : float
        Relative bracket of each threshold.
    """
    classes = fibre_classes()
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    bad = sorted(set(counts) - set(classes))
    if bad:
        raise OptionError(f"Unknown fibre class(es) {bad}: allowed {', '.join(classes)}.")
    labels = [c.label for c in program.channels]
    if isinstance(channel, str):
        if channel not in labels:
            raise OptionError(f"Invalid channel {channel!r}: allowed {labels}.")
        channel = labels.index(channel)
    if not (0 <= channel < len(program.channels)):
        raise OptionError(f"Invalid channel index {channel}: allowed 0 to {len(program.channels) - 1}.")
    ch = program.channels[channel]
    tissue = tissue or tissue_for_site(ch.electrodes[0].site)
    preset = fld.get_tissue_preset(tissue)
    medium = preset.medium(thickness_m={"fat": fat_thickness_mm * 1e-3} if fat_thickness_mm is not None else None)
    layer_top = {}
    depth = 0.0
    for layer in preset.layers:
        layer_top.setdefault(layer.tissue, depth)
        depth += layer.thickness_m if math.isfinite(layer.thickness_m) else 0.0
    if fat_thickness_mm is not None:  # layers below the fat move down with it
        old = next(x.thickness_m for x in preset.layers if x.tissue == "fat")
        shift = fat_thickness_mm * 1e-3 - old
        fat_top = layer_top["fat"]
        layer_top = {k: (v + shift if v > fat_top else v) for k, v in layer_top.items()}

    # field of each circuit of the channel, per ampere at its first pad
    pads = _layout(program, channel, gap_cm * 1e-2)
    sols = [fld.solve_pad(medium, p, contact_resistivity_ohm_m2=contact_resistivity_ohm_m2) for p in pads]
    circuits = [fld.Montage.channel(sols[k], sols[k + 1], 1.0) for k in range(0, len(sols), 2)]
    outputs = [o.index for o in program.outputs if o.channel_index == channel]
    sched = Schedule(program, level="max")
    t0, length = _stimulus_window(sched, outputs[0])
    # the region under the pads, where fibres are placed
    span_x = 2 * max(abs(p.center_m[0]) + p.size_m[0] / 2 for p in pads)
    span_y = 2 * max(abs(p.center_m[1]) + p.size_m[1] / 2 for p in pads)

    rng = np.random.default_rng(seed)
    cls_of, diam, dep, cases = [], [], [], []
    fibres = []  # (class, diameter, depth, x, y)
    waves: dict[float, np.ndarray] = {}
    cables: dict[tuple, Cable] = {}
    for cid, n in counts.items():
        fc = classes[cid]
        if fc.layer not in layer_top:
            raise OptionError(f"Tissue {tissue!r} has no layer {fc.layer!r} for fibre class {cid!r}.")
        d = rng.normal(fc.diameter_mean_um, fc.diameter_sd_um, n)
        d = np.clip(d, fc.diameter_min_um, fc.diameter_max_um)
        d = np.round(d / _DIAMETER_STEP_UM) * _DIAMETER_STEP_UM
        z = layer_top[fc.layer] + rng.uniform(fc.depth_m[0], fc.depth_m[1], n)
        xc = rng.uniform(-span_x / 2, span_x / 2, n)
        yc = rng.uniform(-span_y / 2, span_y / 2, n)
        dt = fc.dt_us * 1e-6
        if dt not in waves:
            w = np.stack([schedule_wave(sched, t0, length, dt, outputs=[o])[0] for o in outputs])
            waves[dt] = w
        wave = waves[dt]
        quiet = int(np.nonzero(wave.any(axis=0))[0].max()) + 1
        for k in range(n):
            key = (fc.model, float(d[k]), fc.nodes, fc.length_m)
            if key not in cables:
                if fc.length_m:
                    cables[key] = build_cable(fc.model, float(d[k]), length_um=fc.length_m * 1e6)
                else:
                    cables[key] = build_cable(fc.model, float(d[k]), n_nodes=fc.nodes)
            fibres.append((cid, key, dt, float(z[k]), float(xc[k]), float(yc[k])))
    # tabulate each circuit's field once per class over the region its fibres cover, then sample along them
    grids: dict[str, list[_GridField]] = {}
    spacing: dict[str, tuple[float, float, int]] = {}
    for cid in counts:
        mine = [f for f in fibres if f[0] == cid]
        if not mine:
            continue
        reach = max(cables[f[1]].z_m[-1] for f in mine) / 2 + 0.005
        zs = np.array([f[3] for f in mine])
        dx = float(np.clip(zs.min() / 3, *_GRID_DX_M))
        dy = float(np.clip(zs.min() / 2, *_GRID_DY_M))
        gx = np.arange(-span_x / 2 - reach, span_x / 2 + reach + dx, dx)
        gy = np.arange(-span_y / 2 - dy, span_y / 2 + 2 * dy, dy)
        gz = np.geomspace(zs.min() * 0.95, zs.max() * 1.05 + 1e-5, _GRID_NZ)
        grids[cid] = [_GridField(c, gx, gy, gz) for c in circuits]
        spacing[cid] = (dx, dy, gz.size)
    for cid, key, dt, zk, xk, yk in fibres:
        cable = cables[key]
        wave = waves[dt]
        quiet = int(np.nonzero(wave.any(axis=0))[0].max()) + 1
        L = cable.z_m[-1] + (cable.z_m[1] - cable.z_m[0]) / 2
        pts = np.stack([xk + cable.z_m - L / 2, np.full(cable.n, yk), np.full(cable.n, zk)], axis=1)
        phi = np.stack([g.potential(pts) for g in grids[cid]])
        detect = int(cable.node_index[int(0.9 * (len(cable.node_index) - 1))])
        travel = abs(cable.z_m[detect] - cable.z_m[cable.n // 2])
        tstop = length + 1e-4 + 2e-3 + travel / (0.25 if not cable.myelinated else 10.0)
        n_steps = int(round(tstop / dt))
        w = np.zeros((wave.shape[0], n_steps))
        m = min(n_steps, wave.shape[1])
        w[:, :m] = wave[:, :m]
        cases.append(Case(cable, phi, w, dt, detect, quiet))
        cls_of.append(cid)
        diam.append(key[1])
        dep.append(zk)
    res = find_thresholds(cases, tolerance=tolerance, max_amplitude_a=_MAX_CURRENT_A, progress=progress)
    thr = np.array([r.threshold_a * 1e3 if r.threshold_a is not None else np.nan for r in res])
    blocked = np.array([r.blocked for r in res])
    notes = [f"tissue preset {tissue!r}: {preset.thickness_source}",
             f"pads laid along the fibres with a {gap_cm:g} cm gap; one repetition of the waveform at t = {t0:g} s",
             "the pads' field is tabulated per class and interpolated linearly: "
             + "; ".join(f"{c}: every {dx * 1e3:.2g} mm along, {dy * 1e3:.2g} mm across, {nz} depths"
                         for c, (dx, dy, nz) in spacing.items()),
             "fibre classes, diameters and depths: see fibre_classes.toml ([assumed] where no source is given)"]
    return PopulationResult(program.id, ch.label, tissue, {c: classes[c] for c in counts}, np.array(cls_of),
                            np.array(diam), np.array(dep), thr, blocked, notes)
