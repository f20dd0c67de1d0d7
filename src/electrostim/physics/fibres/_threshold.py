"""Batched threshold search: bracketing, then k-section, many cases at once.

Each *case* is a fibre with its extracellular potentials per unit current and its
stimulus waveform. All open cases of the same fibre run together as lanes of one
kernel call; each round every case tests one or more amplitudes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ...errors import ElectrostimError
from ._geometry import Cable
from ._simulate import RestState, rest_state, run_lanes

__all__ = ["Case", "ThresholdResult", "find_thresholds", "BlockError"]


class BlockError(ElectrostimError):
    """Stimulation excites the fibre but the action potential never reaches the detection node."""


@dataclass
class Case:
    """One threshold to find.

    Attributes
    ----------
    cable : Cable
    phi_v_per_a : numpy.ndarray, shape (sources, compartments)
        Extracellular potential (V) at each compartment per ampere of each source.
    wave : numpy.ndarray, shape (sources, steps)
        Signed waveform of each source sampled at the start of each time step, in units
        of the amplitude (dimensionless; cathodic < 0).
    dt_s : float
        Time step, s.
    detect : int
        Compartment where a propagated action potential is detected.
    quiet_after_step : int
        Step from which a lane at rest may stop early (the end of the stimulus).
    label : dict
        Free description of the case (what it stands for), carried along.
    start_a : float, optional
        First amplitude to try (A); by default an estimate from the activating function.
    """

    cable: Cable
    phi_v_per_a: np.ndarray
    wave: np.ndarray
    dt_s: float
    detect: int
    quiet_after_step: int
    label: dict = field(default_factory=dict)
    start_a: float | None = None


@dataclass
class ThresholdResult:
    """The threshold of one case: the lowest amplitude found to propagate, and the bracket.

    Attributes
    ----------
    threshold_a : float or None
        Lowest amplitude seen to propagate, A (None: none did, up to the ceiling or for a block).
    lower_a, upper_a : float
        The final bracket, A (``upper_a`` is inf when nothing propagated).
    runs : int
        Simulations (lanes) the search spent on this case.
    blocked : bool
        Excitation without propagation from ``block_a`` on, and nothing lower propagated.
    block_a : float or None
        Lowest amplitude seen to excite without propagating, A.
    fired_time_s : float or None
        When the action potential reached the detection compartment at ``threshold_a``, s.
    message : str
        A note for people (a block, no activation), empty when there is nothing to say.
    """

    threshold_a: float | None
    lower_a: float
    upper_a: float
    runs: int
    blocked: bool = False
    block_a: float | None = None
    fired_time_s: float | None = None
    message: str = ""


#: calibration of :func:`activating_estimate`: its raw value over the true MRG threshold
#: (geometric mean over 5.7-16 µm, 20-500 µs, 0.5-3 mm; spread ×/÷ 1.3) [derived]
_ESTIMATE_SCALE = 4.3
#: the drive is smoothed over this many node spacings (a space constant)
_ESTIMATE_SPACE_NODES = 3.0


def activating_estimate(case: Case) -> float:
    """A starting amplitude (A) from the activating function.

    The axial drive of the stimulus (the activating function, per ampere) is smoothed
    along the fibre with a space constant of three node spacings, charged onto a node
    through a 100 µs membrane time constant for the duration of the pulse, and scaled to
    the threshold by a constant calibrated on MRG fibres: a start within a factor of
    about 1.6 of the threshold, which the bracketing then corrects.
    """
    c = case.cable
    peak_wave = np.abs(case.wave).max(axis=1)
    phi = (case.phi_v_per_a * peak_wave[:, None]).sum(axis=0)
    drive = np.zeros(c.n)
    drive[:-1] += c.gi_s * (phi[1:] - phi[:-1])
    drive[1:] += c.gi_s * (phi[:-1] - phi[1:])
    nodes = c.active if c.active.size else np.arange(c.n)
    z = c.z_m
    spacing = float(np.median(np.diff(z[nodes]))) if nodes.size > 1 else float(z[-1] - z[0])
    lam = _ESTIMATE_SPACE_NODES * spacing
    # only compartments within a few space constants matter
    smoothed = np.empty(nodes.size)
    for k, j in enumerate(nodes):
        near = np.abs(z - z[j]) < 8 * lam
        smoothed[k] = np.sum(drive[near] * np.exp(-np.abs(z[near] - z[j]) / lam))
    cm_node = float(np.mean(c.cm_f[nodes]))
    on_s = max(1, int(np.count_nonzero(case.wave.any(axis=0)))) * case.dt_s
    tau_s = 1e-4
    eff = tau_s * (1 - math.exp(-on_s / tau_s))
    peak = float(np.max(np.abs(smoothed))) / cm_node
    return 1.0 / max(peak * eff * _ESTIMATE_SCALE, 1e-30)


#: factor by which the bracket grows or shrinks until it holds the threshold
_GROW = 1.6


def find_thresholds(
    cases: Sequence[Case],
    tolerance: float = 0.001,
    lanes_per_round: int = 8,
    max_amplitude_a: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[ThresholdResult]:
    """Find the activation threshold of every case to a relative bracket ``tolerance``.

    The bracket is grown or shrunk by a factor of 1.6 from the activating-function estimate,
    then narrowed by k-section (each open case gets ``lanes_per_round // open`` lanes,
    at least one). A lane that fires a node but never reaches the detection node is
    *blocked*: it narrows the bracket from above without counting as activation; if
    nothing above the lower bound ever propagates, the case reports the block.

    The reported threshold is the upper end of the final bracket (the lowest amplitude
    seen to propagate). The method is described in ``docs/nerve-engine.md`` (threshold
    search); its results are checked against NEURON in ``tests/test_fibres.py``.

    Parameters
    ----------
    cases : sequence of Case
    tolerance : float
        Relative width of the final bracket, ``(upper - lower) / upper``.
    lanes_per_round : int
        Amplitudes tested per round, shared among the open cases.
    max_amplitude_a : float
        Ceiling of the search, A: a case that does not fire below it has no threshold.
    progress : callable(done, total), optional
        Called after every round with the number of cases closed so far.

    Returns
    -------
    list of ThresholdResult
        One per case, in order.

    Notes
    -----
    Ctrl-C (``KeyboardInterrupt``) stops the search after the kernel calls already
    running; the groups not yet started are dropped.
    """
    n = len(cases)
    lo = np.zeros(n)  # highest amplitude seen not to propagate (0: none yet)
    hi = np.full(n, np.inf)  # lowest amplitude seen to propagate
    block = np.full(n, np.inf)  # lowest amplitude seen to excite without propagating
    fired_t = np.full(n, np.nan)
    runs = np.zeros(n, int)
    guess = np.array([c.start_a if c.start_a else activating_estimate(c) for c in cases])
    rests: dict[int, RestState] = {}
    open_ = np.ones(n, bool)

    def rest_of(c: Cable) -> RestState:
        if id(c) not in rests:
            rests[id(c)] = rest_state(c)
        return rests[id(c)]

    while open_.any():
        # amplitudes to test this round, per case
        idx = np.nonzero(open_)[0].tolist()
        per_case = max(1, lanes_per_round // len(idx))
        plan: list[tuple[int, float]] = []
        for i in idx:
            top = min(hi[i], block[i])
            if np.isinf(top) and lo[i] == 0:
                amps = [guess[i]]
            elif np.isinf(top):  # only subthreshold so far: grow
                amps = [lo[i] * _GROW ** (k + 1) for k in range(per_case)]
            elif lo[i] == 0:  # only suprathreshold so far: shrink
                amps = [top / _GROW ** (k + 1) for k in range(per_case)]
            else:
                amps = list(lo[i] + (top - lo[i]) * np.arange(1, per_case + 1) / (per_case + 1))
            for a in amps:
                if a > max_amplitude_a:
                    a = max_amplitude_a
                plan.append((int(i), float(a)))
        # run, grouped by fibre: every lane of a fibre in one call, each with its own waveform
        groups: dict[tuple, list[int]] = {}
        for k, (i, _) in enumerate(plan):
            groups.setdefault((id(cases[i].cable), cases[i].dt_s, cases[i].detect), []).append(k)

        def run_group(ks: list[int], plan: list[tuple[int, float]] = plan, groups: dict[tuple, list[int]] = groups):
            first = cases[plan[ks[0]][0]]
            waves: list[np.ndarray] = []
            wave_index: dict[int, int] = {}
            lane_wave = np.zeros(len(ks), np.int64)
            for j, k in enumerate(ks):
                c = cases[plan[k][0]]
                if id(c.wave) not in wave_index:
                    wave_index[id(c.wave)] = len(waves)
                    waves.append(c.wave)
                lane_wave[j] = wave_index[id(c.wave)]
            n_steps = max(w.shape[1] for w in waves)
            n_src = max(w.shape[0] for w in waves)
            wave = np.zeros((n_src, len(waves), n_steps))
            for w_i, w in enumerate(waves):
                wave[: w.shape[0], w_i, : w.shape[1]] = w
            phis = np.zeros((n_src, first.cable.n, len(ks)))
            for j, k in enumerate(ks):
                ph = cases[plan[k][0]].phi_v_per_a
                phis[: ph.shape[0], :, j] = ph
            amps = np.array([plan[k][1] for k in ks])
            quiet = np.array([cases[plan[k][0]].quiet_after_step for k in ks])
            return run_lanes(first.cable, rest_of(first.cable), phis, amps, wave, first.dt_s, first.detect, quiet,
                             lane_wave=lane_wave, threads=1 if len(groups) > 1 else None)

        for ks in groups.values():  # resting states first (cached), outside the threads
            rest_of(cases[plan[ks[0]][0]].cable)
        group_list = list(groups.values())
        if len(group_list) > 1 and (os.cpu_count() or 1) > 1:
            pool = ThreadPoolExecutor(min(len(group_list), os.cpu_count() or 1))
            try:
                outs = list(pool.map(run_group, group_list))
            except BaseException:
                # Ctrl-C (or an error): drop the groups not yet started, wait only for the kernels running
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
        else:
            outs = [run_group(ks) for ks in group_list]
        for ks, out in zip(group_list, outs):
            for j, k in enumerate(ks):
                i, a = plan[k]
                runs[i] += 1
                if out.fired[j]:
                    if a < hi[i]:
                        hi[i] = a
                        fired_t[i] = out.fired_time_s[j]
                elif out.local[j]:
                    block[i] = min(block[i], a)
                else:
                    lo[i] = max(lo[i], a)
        # close converged cases
        for i in idx:
            top = min(hi[i], block[i])
            if lo[i] > 0 and np.isfinite(top) and (top - lo[i]) / top <= tolerance:
                open_[i] = False
            elif lo[i] >= max_amplitude_a * (1 - 1e-12):
                open_[i] = False  # nothing up to the ceiling excites
            elif not np.isfinite(top) and lo[i] == 0 and runs[i] > 60:
                open_[i] = False
        if progress is not None:
            progress(n - int(open_.sum()), n)
    results = []
    for i in range(n):
        top = min(hi[i], block[i])
        if np.isfinite(hi[i]) and hi[i] <= top * (1 + tolerance) and hi[i] <= block[i]:
            seen_block = float(block[i]) if np.isfinite(block[i]) else None
            results.append(ThresholdResult(float(hi[i]), float(lo[i]), float(hi[i]), int(runs[i]), block_a=seen_block,
                                           fired_time_s=float(fired_t[i]),
                                           message="" if seen_block is None else
                                           f"virtual-anode block seen at {seen_block * 1e3:.4g} mA (above the threshold)"))
        elif np.isfinite(block[i]):
            results.append(ThresholdResult(None, float(lo[i]), float(block[i]), int(runs[i]), blocked=True,
                                           block_a=float(block[i]),
                                           message=f"virtual-anode block: from {block[i] * 1e3:.4g} mA the fibre is excited "
                                                   f"but the action potential does not propagate, and nothing lower propagates"))
        else:
            results.append(ThresholdResult(None, float(lo[i]), float("inf"), int(runs[i]),
                                           message=f"no activation up to {max_amplitude_a * 1e3:g} mA"))
    return results
