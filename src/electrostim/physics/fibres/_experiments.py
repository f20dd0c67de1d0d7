"""Standard experiments: a point source above a fibre, strength-duration, conduction velocity."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...errors import OptionError
from ...units import MS, US
from ._geometry import Cable, build_cable
from ._simulate import rest_state, run_lanes
from ._threshold import Case, ThresholdResult, find_thresholds

__all__ = ["PointSourceCase", "point_source_thresholds", "pulse_wave", "strength_duration", "conduction_velocity",
           "SDFit", "fit_strength_duration"]

#: the stimulus starts this long after t = 0, as in the peer set-up
PULSE_DELAY_S = 1e-4


def pulse_wave(pulse_width_s: float, dt_s: float, tstop_s: float, waveform: str = "monophasic",
               polarity: str = "cathodic", delay_s: float = PULSE_DELAY_S) -> np.ndarray:
    """A rectangular pulse sampled at the start of every step ``[1, n_steps]``: −1 for a cathodic phase.

    ``biphasic`` adds an equal opposite phase right after the first (no gap).
    """
    n = int(round(tstop_s / dt_s))
    t = np.arange(n) * dt_s
    sign = -1.0 if polarity == "cathodic" else 1.0
    w = np.zeros(n)
    eps = 1e-9 * dt_s
    first = (t >= delay_s - eps) & (t < delay_s + pulse_width_s - eps)
    w[first] = sign
    if waveform == "biphasic":
        second = (t >= delay_s + pulse_width_s - eps) & (t < delay_s + 2 * pulse_width_s - eps)
        w[second] = -sign
    return w[None, :]


@lru_cache(maxsize=64)
def _cable(model: str, diameter_um: float, n_nodes: int, temperature_c: float) -> Cable:
    return build_cable(model, diameter_um, n_nodes=n_nodes, temperature_c=temperature_c)


@dataclass(frozen=True)
class PointSourceCase:
    """A point current source at ``distance_um`` from the centre node of a straight fibre in a homogeneous medium."""

    model: str = "mrg"
    diameter_um: float = 10.0
    distance_um: float = 1000.0
    pulse_width_us: float = 100.0
    waveform: str = "monophasic"
    polarity: str = "cathodic"
    conductivity_s_per_m: float = 0.2
    n_nodes: int = 51
    dt_us: float = 1.0
    tstop_ms: float | None = None
    temperature_c: float = 37.0

    def validate(self) -> None:
        checks = [
            ("distance_um", self.distance_um, 1.0, 1e6),
            ("pulse_width_us", self.pulse_width_us, 1.0, 1e5),
            ("conductivity_s_per_m", self.conductivity_s_per_m, 1e-4, 100.0),
            ("dt_us", self.dt_us, 0.05, 100.0),
            ("tstop_ms", 5.0 if self.tstop_ms is None else self.tstop_ms, 0.5, 1000.0),
        ]
        for name, v, a, b in checks:
            if not (a <= v <= b):
                raise OptionError(f"Invalid value for '{name}': allowed {a:g} to {b:g}, but got {v!r}.")
        if self.waveform not in ("monophasic", "biphasic"):
            raise OptionError(f"Invalid value for 'waveform': allowed 'monophasic', 'biphasic', but got {self.waveform!r}.")
        if self.polarity not in ("cathodic", "anodic"):
            raise OptionError(f"Invalid value for 'polarity': allowed 'cathodic', 'anodic', but got {self.polarity!r}.")
        span = PULSE_DELAY_S / US + self.pulse_width_us * (2 if self.waveform == "biphasic" else 1)
        if self.tstop_ms is not None and span * US >= self.tstop_ms * MS:
            raise OptionError(f"The pulse ({span:g} µs from t = 0) does not end before tstop_ms ({self.tstop_ms:g} ms).")

    def tstop_s(self, cable: Cable, travel_m: float) -> float:
        """The simulated time: as given, or 5 ms, or long enough for a slow unmyelinated fibre's
        action potential to travel from the centre to the detection point at 0.25 m/s."""
        if self.tstop_ms is not None:
            return self.tstop_ms * MS
        end = PULSE_DELAY_S + self.pulse_width_us * US * (2 if self.waveform == "biphasic" else 1)
        if cable.myelinated:
            return max(5e-3, end + 2e-3)
        return end + 2e-3 + travel_m / 0.25

    def case(self) -> Case:
        self.validate()
        cable = _cable(self.model, float(self.diameter_um), int(self.n_nodes), float(self.temperature_c))
        centre = cable.node_index[len(cable.node_index) // 2]
        zc = cable.z_m[centre]
        r = np.sqrt((cable.z_m - zc) ** 2 + (self.distance_um * 1e-6) ** 2)
        phi = (1.0 / (4.0 * math.pi * self.conductivity_s_per_m * r))[None, :]
        dt = self.dt_us * US
        detect = int(cable.node_index[int(0.9 * (len(cable.node_index) - 1))])
        tstop = self.tstop_s(cable, abs(cable.z_m[detect] - zc))
        wave = pulse_wave(self.pulse_width_us * US, dt, tstop, self.waveform, self.polarity)
        end_step = int(np.nonzero(wave[0])[0].max()) + 1 if wave.any() else 0
        return Case(cable, phi, wave, dt, detect, end_step, label=dict(vars(self)))


def point_source_thresholds(cases: Sequence[PointSourceCase], tolerance: float = 0.001,
                            progress: Callable[[int, int], None] | None = None) -> list[ThresholdResult]:
    """Thresholds of the classic experiment for many cases in one batched search."""
    return find_thresholds([c.case() for c in cases], tolerance=tolerance, progress=progress)


@dataclass(frozen=True)
class SDFit:
    """Weiss fit I = I_rh (1 + τ / PW): rheobase (A) and chronaxie (s)."""

    rheobase_a: float
    chronaxie_s: float


def fit_strength_duration(pulse_widths_s: np.ndarray, thresholds_a: np.ndarray) -> SDFit:
    """Least-squares fit of the Weiss law: charge Q = I·PW is linear in PW, Q = I_rh·PW + I_rh·τ."""
    pw = np.asarray(pulse_widths_s, float)
    q = np.asarray(thresholds_a, float) * pw
    slope, intercept = np.polyfit(pw, q, 1)
    return SDFit(float(slope), float(intercept / slope))


def strength_duration(base: PointSourceCase, pulse_widths_us: Sequence[float], tolerance: float = 0.001,
                      progress: Callable[[int, int], None] | None = None) -> tuple[list[ThresholdResult], SDFit | None]:
    """Thresholds over pulse widths, and their Weiss fit.

    Parameters
    ----------
    base : PointSourceCase
        The set-up; its pulse width is replaced by each of ``pulse_widths_us``.
    pulse_widths_us : sequence of float
        Pulse widths, µs.
    tolerance : float
        Relative bracket of each threshold.
    progress : callable(done, total), optional
        Called every round of the search with the thresholds found so far.

    Returns
    -------
    (list of ThresholdResult, SDFit or None)
        One result per pulse width, and the fit (None with fewer than two thresholds).
    """
    cases = [PointSourceCase(**{**vars(base), "pulse_width_us": float(pw)}) for pw in pulse_widths_us]
    res = point_source_thresholds(cases, tolerance, progress=progress)
    ok = [(pw, r.threshold_a) for pw, r in zip(pulse_widths_us, res) if r.threshold_a is not None]
    fit = fit_strength_duration(np.array([p for p, _ in ok]) * US, np.array([t for _, t in ok])) if len(ok) >= 2 else None
    return res, fit


def conduction_velocity(model: str, diameter_um: float, n_nodes: int = 51, temperature_c: float = 37.0,
                        dt_us: float = 1.0, length_um: float | None = None) -> float:
    """Conduction velocity (m/s): a suprathreshold intracellular-like stimulus at one end,
    velocity from the action potential's arrival times between the nodes at 25 % and 75 % of the length."""
    cable = build_cable(model, diameter_um, n_nodes=n_nodes, temperature_c=temperature_c, length_um=length_um)
    rest = rest_state(cable)
    dt = dt_us * US
    nodes = cable.node_index
    a_i, b_i = nodes[int(0.25 * (len(nodes) - 1))], nodes[int(0.75 * (len(nodes) - 1))]
    # intracellular stimulation at the second node (the first is passive): 2 nA for 0.1 ms
    tstop = 5e-3 if cable.myelinated else 100e-3
    n_steps = int(round(tstop / dt))
    inj = np.zeros(n_steps)
    inj[int(round(PULSE_DELAY_S / dt)):int(round((PULSE_DELAY_S + 1e-4) / dt))] = 2e-9 if cable.myelinated else 5e-9
    phi = np.zeros((1, cable.n, 1))
    wave = np.zeros((1, n_steps))
    times = []
    for target in (a_i, b_i):
        out = run_lanes(cable, rest, phi, np.array([0.0]), wave, dt, int(target), 10**9, injection=(int(nodes[1]), inj))
        if not out.fired[0]:
            raise OptionError(f"No action potential reached node {target} of the {model} fibre: cannot measure velocity.")
        times.append(out.fired_time_s[0])
    return float((cable.z_m[b_i] - cable.z_m[a_i]) / (times[1] - times[0]))


