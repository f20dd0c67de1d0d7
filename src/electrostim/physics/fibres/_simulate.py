"""Run fibres: resting state, stimulation in batches of lanes, and the outcome of each lane."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import _kernels as K
from ._geometry import Cable

__all__ = ["RestState", "rest_state", "Outcome", "run_lanes", "DETECT_THRESHOLD_V"]

#: an action potential is a crossing of -30 mV
DETECT_THRESHOLD_V = -0.030
#: settle the resting state as the peer set-up does: 200 ms in steps of 5 ms before t = 0
SETTLE_S, SETTLE_DT_S = 0.200, 0.005


@dataclass
class RestState:
    """One fibre at rest: potentials of every compartment and the gates of every active one.

    Attributes
    ----------
    vi_v, vp_v : numpy.ndarray, shape (n,)
        Intracellular and periaxonal potential of each compartment, V.
    gates : numpy.ndarray, shape (n_active, N_GATES)
        Gate values (fractions open, 0 to 1) of each active compartment.
    """

    vi_v: np.ndarray
    vp_v: np.ndarray
    gates: np.ndarray


def _kernel_args(c: Cable):
    return (c.kernel_model, c.params, c.n_gates)


def _cable_arrays(c: Cable):
    return (c.cm_f, c.gm_s, c.em_v, c.gx_s, c.cx_f, c.gi_s, c.gp_s, c.active, c.act_of, c.area_m2)


_TABLES: dict = {}


def gate_tables(c: Cable, dt_s: float):
    """Gate tables for a model, its parameters and a time step (kept for reuse)."""
    key = (c.kernel_model, c.params.tobytes(), c.n_gates, dt_s)
    if key not in _TABLES:
        if len(_TABLES) > 32:
            _TABLES.clear()
        _TABLES[key] = K.gate_tables(c.kernel_model, c.params, c.n_gates, dt_s)
    return _TABLES[key]


def rest_state(c: Cable) -> RestState:
    """The fibre at rest: membrane at its resting potential, gates at steady state, then settled."""
    n = c.n
    vi = np.full((n, 1), c.v_rest_v)
    vp = np.zeros((n, 1))
    g = K.steady_gates(c.kernel_model, c.params, c.v_rest_v, c.n_gates)
    gates = np.zeros((c.active.size, K.N_GATES, 1))
    gates[:, :, 0] = g
    steps = int(round(SETTLE_S / SETTLE_DT_S))
    K.relax(*_kernel_args(c), SETTLE_DT_S, steps, *_cable_arrays(c), vi, vp, gates)
    return RestState(vi[:, 0].copy(), vp[:, 0].copy(), gates[:, :, 0].copy())


@dataclass
class Outcome:
    """What each lane did.

    Attributes
    ----------
    fired : numpy.ndarray of bool, shape (lanes,)
        An action potential reached the detection compartment.
    fired_time_s : numpy.ndarray, shape (lanes,)
        When it got there, s (NaN where it did not).
    local : numpy.ndarray of bool, shape (lanes,)
        Some node crossed the detection level (excitation that may have been blocked).
    steps : numpy.ndarray of int, shape (lanes,)
        Time steps the lane's block ran.
    """

    fired: np.ndarray
    fired_time_s: np.ndarray
    local: np.ndarray
    steps: np.ndarray


def run_lanes(
    cable: Cable,
    rest: RestState,
    phi_v_per_a: np.ndarray,
    amplitudes_a: np.ndarray,
    wave: np.ndarray,
    dt_s: float,
    detect_node: int,
    quiet_after_step: int | np.ndarray,
    block: int = 8,
    quiet_margin_v: float = 0.005,
    injection: tuple[int, np.ndarray] | None = None,
    lane_wave: np.ndarray | None = None,
    threads: int | None = None,
) -> Outcome:
    """Simulate lanes of one fibre model.

    Parameters
    ----------
    phi_v_per_a : array [source, compartment, lane]
        Extracellular potential (V) per ampere of each source, for each lane's fibre.
    amplitudes_a : array [lane]
        Current amplitude (A) of each lane; every source is scaled by it.
    wave : array [source, step] or [source, waveform, step]
        Waveform(s) of each source, sampled at the start of each step (unitless, signed).
    dt_s : float
        Time step.
    detect_node : int
        Compartment index where an action potential counts as propagated.
    quiet_after_step : int or array [lane]
        From this step on, a lane whose nodes are all within ``quiet_margin_v`` of rest stops.
    injection : (compartment, current per step in A), optional
        Intracellular current injected into one compartment (the same in every lane).
    lane_wave : array [lane] of int, optional
        Which waveform each lane uses (with a 3-D ``wave``).
    threads : int, optional
        Run lane sets in this many threads (default: up to the number of CPUs for 16+ lanes).
    """
    L = amplitudes_a.shape[0]
    if wave.ndim == 2:
        wave = wave[:, None, :]
    lane_wave = np.zeros(L, np.int64) if lane_wave is None else np.asarray(lane_wave, np.int64)
    quiet = np.broadcast_to(np.asarray(quiet_after_step, np.int64), (L,)).copy()
    n_steps = wave.shape[2]
    tab_inf, tab_fac = gate_tables(cable, dt_s)
    inj_idx = -1 if injection is None else int(injection[0])
    inj = np.zeros(n_steps) if injection is None else np.ascontiguousarray(injection[1], dtype=np.float64)
    v_rest = float(np.max(rest.vi_v[cable.active] - rest.vp_v[cable.active])) if cable.active.size else cable.v_rest_v
    wave = np.ascontiguousarray(wave, dtype=np.float64)
    amps = np.ascontiguousarray(amplitudes_a, dtype=np.float64)

    def run(sl: slice):
        m = sl.stop - sl.start
        vi0 = np.repeat(rest.vi_v[:, None], m, axis=1)
        vp0 = np.repeat(rest.vp_v[:, None], m, axis=1)
        g0 = np.zeros((cable.active.size, K.N_GATES, m))
        g0[:] = rest.gates[:, :, None]
        return K.simulate(
            *_kernel_args(cable), dt_s, n_steps, tab_inf, tab_fac, *_cable_arrays(cable),
            np.ascontiguousarray(phi_v_per_a[:, :, sl]), amps[sl], wave, lane_wave[sl], inj_idx, inj,
            vi0, vp0, g0, detect_node, DETECT_THRESHOLD_V, cable.active, quiet[sl], quiet_margin_v, v_rest, block,
        )

    n_threads = threads if threads is not None else (min(os.cpu_count() or 1, 4) if L >= 2 * block else 1)
    if n_threads > 1:
        # split into equal lane sets, whole blocks each; the kernel releases the GIL
        per = -(-L // n_threads)
        per = -(-per // block) * block
        slices = [slice(i, min(L, i + per)) for i in range(0, L, per)]
        with ThreadPoolExecutor(len(slices)) as pool:
            parts = list(pool.map(run, slices))
        fired, fired_step, local, steps = (np.concatenate([p[k] for p in parts]) for k in range(4))
    else:
        fired, fired_step, local, steps = run(slice(0, L))
    return Outcome(fired.astype(bool), np.where(fired_step >= 0, (fired_step + 1) * dt_s, np.nan), local.astype(bool), steps)
