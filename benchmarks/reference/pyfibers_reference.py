"""Regenerate the NEURON reference values (via pyfibers) that electrostim's tests compare against.

This script is NOT part of electrostim and is never imported by it or by its tests: it
drives the peer implementation (pyfibers on NEURON) and writes its answers to
``neuron_reference.json`` beside this file. pyfibers is licensed for non-commercial use
only; it is installed in a separate virtual environment outside the repository, run, and
only its *outputs* (numbers) are stored here. No pyfibers code is copied.

Set-up (once per machine, outside the repo; Python 3.11, gcc and make needed)::

    python3 -m venv /work/peer-venv
    /work/peer-venv/bin/pip install pyfibers==0.13.0 neuron==9.0.2
    # nrnivmodl must be on PATH for the compile step:
    PATH=/work/peer-venv/bin:$PATH /work/peer-venv/bin/pyfibers_compile

Run (from the repository root; everything, resumable)::

    nohup /work/peer-venv/bin/python benchmarks/reference/pyfibers_reference.py \
        > /tmp/pyfibers_reference.log 2>&1 &

Other forms::

    .../python benchmarks/reference/pyfibers_reference.py --list          # groups and cases
    .../python benchmarks/reference/pyfibers_reference.py --only mrg-sd   # one group
    .../python benchmarks/reference/pyfibers_reference.py --only mrg_discrete_D10_R1000_PW100_cath
    .../python benchmarks/reference/pyfibers_reference.py --force --only cv-mrg   # recompute
    .../python benchmarks/reference/pyfibers_reference.py --jobs 2        # two at once

Each case runs in a fresh worker process (a clean NEURON state) and its result is written
into the JSON as soon as it finishes (atomic replace), so an interrupted run resumes where
it stopped: a case whose stored set-up equals the current one is skipped unless
``--force``. Timings are only meaningful for cases run with ``--jobs 1`` (the default);
each record says how many jobs ran concurrently.

The common threshold set-up (see SETUP.md beside this file for what pyfibers does with it):
``build_fiber(FiberModel.MRG_DISCRETE, diameter=D, n_nodes=51, temperature=37)``; a point
source of 1 mA at (x, y, z) = (0, R, fiber.length / 2) µm in an infinite isotropic medium
of 0.2 S/m (``fiber.point_source_potentials``), i.e. straight above the centre node; a
rectangular pulse of width PW starting at t = 0.1 ms, scaled by a negative stimamp for a
cathodic pulse; ``ScaledStim(dt=0.001, tstop=5)``; ``find_threshold`` with
``termination_tolerance=0.1`` (per cent), default bounds (-1 mA top, -0.01 mA bottom)
except -0.2 mA top for PW >= 500 µs and -0.1 mA top at R = 0.5 mm (a larger start is
above the block level there: node 45 never fires and the search never brackets); action potential detected at -30 mV at the node at
90 % of the length (node index 45 of 0..50). The stored threshold is the reported upper
bound, as a magnitude in µA.

The pulse is on for exactly round(PW / dt) time steps: the waveform is evaluated at
t_k = k * dt before each NEURON step k -> k+1 and is 1 for delay <= t_k < delay + PW (with
a 1e-9 ms guard against floating-point rounding; a plain ``t < 0.1 + PW`` comparison would
give one step too many for PW = 20, 50 or 200 µs because e.g. 0.1 + 0.02 > 120 * 0.001 in
binary floating point). The group ``mrg-sd-naive-edges`` stores those one-step-longer
pulses on purpose: they reproduce the PW = 20/50/200 µs values of shared/reference/peers.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "neuron_reference.json"
SCHEMA = 1

# --------------------------------------------------------------------------------------
# Case definitions (pure data: the worker builds everything from these dicts)
# --------------------------------------------------------------------------------------

MRG_DIAMETERS = [5.7, 8.7, 10.0, 14.0, 16.0]
SD_PWS_US = [20, 50, 100, 200, 500, 1000]


def _fmt(x: float) -> str:
    """5.7 -> '5.7', 10.0 -> '10'."""
    return f"{x:g}"


def threshold_case(
    model: str = "MRG_DISCRETE",
    diameter: float = 10.0,
    r_um: float = 1000.0,
    pw_us: float = 100.0,
    shape: str = "cathodic",
    dt_ms: float = 0.001,
    tol_pct: float = 0.1,
    stimamp_top: float | None = None,
    stimamp_bottom: float | None = None,
    edges: str = "exact",
) -> tuple[str, dict[str, Any]]:
    """One extracellular point-source threshold case; returns (case id, set-up).

    ``edges="naive"`` reproduces a pulse defined by plain floating-point comparisons
    (1 for 0.1 <= k*dt < 0.1 + PW, no guard), which is on for one extra step whenever
    0.1 + PW rounds above the grid point (PW = 20, 50, 200 µs at dt = 1 µs).
    """
    if stimamp_top is None:
        stimamp_top = -0.2 if pw_us >= 500 else -1.0
        if shape == "anodic":
            stimamp_top = -stimamp_top
    if stimamp_bottom is None:
        stimamp_bottom = 0.01 if shape == "anodic" else -0.01
    tag = {"cathodic": "cath", "anodic": "anod", "biphasic": "biph"}[shape]
    cid = f"{model.lower()}_D{_fmt(diameter)}_R{_fmt(r_um)}_PW{_fmt(pw_us)}_{tag}"
    if dt_ms != 0.001:
        cid += f"_dt{_fmt(dt_ms * 1000)}us"
    if tol_pct != 0.1:
        cid += f"_tol{_fmt(tol_pct)}pct"
    if edges != "exact":
        cid += f"_{edges}edges"
    setup = {
        "kind": "threshold",
        "fiber_model": model,
        "diameter_um": diameter,
        "n_nodes": 51,
        "temperature_C": 37.0,
        "passive_end_nodes": 1,
        "source": {
            "type": "point current source, infinite isotropic homogeneous medium",
            "sigma_S_per_m": 0.2,
            "position_um": {"x": 0.0, "y": r_um, "z": "fiber.length / 2 (centre node)"},
            "distance_R_um": r_um,
            "unit_current_mA": 1.0,
        },
        "waveform": {
            "shape": shape,
            "delay_ms": 0.1,
            "pw_ms": pw_us / 1000.0,
            "phases": {"cathodic": [1.0], "anodic": [1.0], "biphasic": [1.0, -1.0]}[shape],
            "note": (
                "unit waveform times stimamp (mA) times the 1 mA potentials; negative stimamp = "
                "cathodic (negative potential at the fibre). Biphasic: phase 1 has the sign of "
                "stimamp (cathodic), phase 2 the opposite, equal width, no interphase gap."
            ),
            "steps_on_per_phase": round(pw_us / 1000.0 / dt_ms),
        },
        "dt_ms": dt_ms,
        "tstop_ms": 5.0,
        "t_init_ss_ms": -200.0,
        "dt_init_ss_ms": 5.0,
        "ap_detect_threshold_mV": -30.0,
        "ap_detect_location": 0.9,
        "ap_detect_node_index": 45,
        "search": {
            "condition": "activation",
            "bounds_search_mode": "percent",
            "bounds_search_step_pct": 10.0,
            "termination_mode": "percent",
            "termination_tolerance_pct": tol_pct,
            "bisection_mean": "arithmetic",
            "stimamp_top_mA": stimamp_top,
            "stimamp_bottom_mA": stimamp_bottom,
            "max_iterations": 50,
            "exit_t_shift_ms": 5.0,
            "reported": "upper bound (stimamp_top) at convergence",
        },
    }
    if edges != "exact":
        setup["waveform"]["edges"] = edges
        setup["waveform"]["steps_on_per_phase"] = None  # see result.fiber.steps_on
        setup["waveform"]["edges_note"] = (
            "waveform 1 for 0.1 <= k*dt < 0.1 + PW evaluated in plain binary floating point "
            "(no rounding guard), as a pulse written with interp1d or a t-comparison would be"
        )
    return cid, setup


def cv_case(
    model: str,
    diameter: float,
    n_nodes: int = 51,
    tstop_ms: float = 5.0,
    dt_ms: float = 0.001,
    istim_loc: float = 0.1,
    amp_top: float = 5.0,
    amp_bottom: float = 0.05,
) -> tuple[str, dict[str, Any]]:
    """Conduction velocity with intracellular stimulation; returns (case id, set-up)."""
    cid = f"cv_{model.lower()}_D{_fmt(diameter)}"
    setup = {
        "kind": "cv",
        "fiber_model": model,
        "diameter_um": diameter,
        "n_nodes": n_nodes,
        "temperature_C": 37.0,
        "passive_end_nodes": "pyfibers default for the model (1 at each end; Tigerholm and Thio force 0)",
        "intracellular_stimulus": {
            "class": "IntraStim (trainIClamp, one rectangular current pulse)",
            "istim_loc": istim_loc,
            "delay_ms": 0.1,
            "pw_ms": 0.1,
            "train_ms": 0.1,
            "freq_Hz": 100.0,
            "protocol": (
                "intracellular threshold found by find_threshold (1 % bracket, bounds "
                f"{amp_bottom}..{amp_top} nA); the CV run is then done at 2 x that threshold "
                "(near threshold the AP can start late and the CV of that run is less clean)"
            ),
            "amp_search_top_nA": amp_top,
            "amp_search_bottom_nA": amp_bottom,
            "run_multiple_of_threshold": 2.0,
        },
        "dt_ms": dt_ms,
        "tstop_ms": tstop_ms,
        "ap_detect_threshold_mV": -30.0,
        "measure": {
            "method": "Fiber.measure_cv(start=0.25, end=0.75, tolerance=0.005)",
            "start_node_index": int(0.25 * (n_nodes - 1)),
            "end_node_index": int(0.75 * (n_nodes - 1)),
            "time_reference": "APCount.time (time step at which v first reaches >= -30 mV) at each node",
            "distance": "difference of the two nodes' section-centre coordinates",
        },
    }
    return cid, setup


def stepcost_case() -> tuple[str, dict[str, Any]]:
    """Cost of one NEURON time step of the 10 µm MRG fibre, bare and through ScaledStim."""
    cid, _ = threshold_case()
    setup = {
        "kind": "stepcost",
        "fiber_model": "MRG_DISCRETE",
        "diameter_um": 10.0,
        "n_nodes": 51,
        "temperature_C": 37.0,
        "dt_ms": 0.001,
        "tstop_ms": 5.0,
        "method": (
            "bare: h.finitialize then 5000 h.fadvance() calls with no Python work between; "
            "scaledstim: one ScaledStim.run_sim at a subthreshold amplitude (-0.05 mA, the "
            "1 mm / 100 µs set-up) for the full 5 ms (5000 steps, no early exit), includes "
            "pyfibers' 40-step steady-state pre-run and its per-step Python loop"
        ),
        "base_case": cid,
    }
    return "stepcost_mrg_D10", setup


def build_cases() -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """All cases (id -> set-up) and the named groups (group -> case ids)."""
    cases: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[str]] = {}

    def add(group: str, item: tuple[str, dict[str, Any]]) -> None:
        cid, setup = item
        if cid in cases and cases[cid] != setup:
            raise RuntimeError(f"case id clash: {cid}")
        cases[cid] = setup
        groups.setdefault(group, []).append(cid)

    for d in MRG_DIAMETERS:
        add("mrg-diameter", threshold_case(diameter=d))
    for pw in SD_PWS_US:
        add("mrg-sd", threshold_case(pw_us=pw))
    add("mrg-sensitivity", threshold_case(dt_ms=0.005))
    add("mrg-sensitivity", threshold_case(tol_pct=1.0))
    for pw in (20, 50, 200):  # the only SD widths where the naive pulse differs at dt = 1 µs
        add("mrg-sd-naive-edges", threshold_case(pw_us=pw, edges="naive"))
    # At 0.5 mm a -1 mA start is far above the block level (the search never brackets):
    # start at -0.1 mA (about 2x threshold) instead.
    add("mrg-distance", threshold_case(r_um=500.0, stimamp_top=-0.1))
    add("mrg-distance", threshold_case(r_um=2000.0))
    add("mrg-waveform", threshold_case(shape="anodic"))
    add("mrg-waveform", threshold_case(shape="biphasic"))
    for d in (5.7, 10.0, 16.0):
        add("sweeney-threshold", threshold_case(model="SWEENEY", diameter=d))
    for d in MRG_DIAMETERS:
        add("cv-mrg", cv_case("MRG_DISCRETE", d))
    add("cv-sweeney", cv_case("SWEENEY", 10.0))
    add("cv-sweeney", cv_case("SWEENEY", 5.7))
    add("cv-sweeney", cv_case("SWEENEY", 16.0))
    # Unmyelinated, 1 µm, 8.333 µm sections: 301 sections = 2.5 mm.
    for model in ("SUNDT", "TIGERHOLM", "RATTAY", "THIO_CUTANEOUS"):
        add("cv-c", cv_case(model, 1.0, n_nodes=301, tstop_ms=15.0, amp_top=1.0, amp_bottom=0.001))
    add("stepcost", stepcost_case())
    return cases, groups


# --------------------------------------------------------------------------------------
# Worker side (runs inside the peer venv; imports pyfibers)
# --------------------------------------------------------------------------------------


class RectPulse:
    """Unit rectangular pulse train: phase i is on for delay + i*pw <= t < delay + (i+1)*pw."""

    EPS = 1e-9  # ms; guards the interval ends against floating-point rounding of k * dt

    def __init__(self, delay: float, pw: float, phases: list[float], guard: bool = True) -> None:
        self.delay, self.pw, self.phases = delay, pw, list(phases)
        self.eps = self.EPS if guard else 0.0

    def __call__(self, t: float) -> float:
        for i, amp in enumerate(self.phases):
            t0 = self.delay + i * self.pw
            if t0 - self.eps <= t < t0 + self.pw - self.eps:
                return amp
        return 0.0


def _environment() -> dict[str, Any]:
    import importlib.metadata as md

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
    }
    for pkg in ("pyfibers", "neuron", "numpy", "scipy"):
        try:
            env[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            env[pkg] = None
    return env


def _build(setup: dict[str, Any]):
    from pyfibers import FiberModel, build_fiber

    model = getattr(FiberModel, setup["fiber_model"])
    return build_fiber(model, diameter=setup["diameter_um"], n_nodes=setup["n_nodes"], temperature=setup["temperature_C"])


def _fiber_summary(fiber) -> dict[str, Any]:
    import numpy as np

    node_idx = [i for i, s in enumerate(fiber.sections) if s in fiber.nodes]
    return {
        "n_sections": len(fiber.sections),
        "n_nodes": len(fiber.nodes),
        "delta_z_um": float(fiber.delta_z),
        "length_um": float(fiber.length),
        "centre_node_coordinate_um": float(fiber.longitudinal_coordinates[node_idx[len(node_idx) // 2]]),
        "first_node_coordinate_um": float(fiber.longitudinal_coordinates[0]),
        "passive_nodes": [i for i, n in enumerate(fiber.nodes) if "passive" in n.name()],
        "node_section_indices_first_last": [node_idx[0], node_idx[-1]],
        "max_abs_unit_potential_mV": float(np.max(np.abs(fiber.potentials))) if fiber.potentials.size else None,
    }


def run_threshold(setup: dict[str, Any]) -> dict[str, Any]:
    from pyfibers import ScaledStim

    t0 = time.perf_counter()
    fiber = _build(setup)
    src = setup["source"]
    fiber.potentials = fiber.point_source_potentials(
        0.0, src["distance_R_um"], fiber.length / 2, src["unit_current_mA"], src["sigma_S_per_m"]
    )
    wf = setup["waveform"]
    stim = ScaledStim(
        waveform=RectPulse(wf["delay_ms"], wf["pw_ms"], wf["phases"], guard=wf.get("edges", "exact") == "exact"),
        dt=setup["dt_ms"],
        tstop=setup["tstop_ms"],
        t_init_ss=setup["t_init_ss_ms"],
        dt_init_ss=setup["dt_init_ss_ms"],
    )
    steps_on = int((stim.sample_waveforms()[0] != 0).sum())
    t_build = time.perf_counter() - t0

    trace: list[dict[str, Any]] = []
    original = stim.threshsim

    def logged_threshsim(stimamp, fib, **kw):
        ts = time.perf_counter()
        supra, (n_aps, aptime) = original(stimamp, fib, **kw)
        trace.append(
            {
                "stimamp_mA": float(stimamp),
                "suprathreshold": bool(supra),
                "ap_time_ms": aptime,
                "stopped_at_ms": float(stim.time[-1]) if len(stim.time) else None,
                "wall_s": round(time.perf_counter() - ts, 3),
            }
        )
        return supra, (n_aps, aptime)

    stim.threshsim = logged_threshsim  # instance attribute shadows the method
    se = setup["search"]
    t1 = time.perf_counter()
    amp, (n_aps, aptime) = stim.find_threshold(
        fiber,
        condition="activation",
        bounds_search_mode="percent",
        bounds_search_step=se["bounds_search_step_pct"],
        termination_mode="percent",
        termination_tolerance=se["termination_tolerance_pct"],
        stimamp_top=se["stimamp_top_mA"],
        stimamp_bottom=se["stimamp_bottom_mA"],
        max_iterations=se["max_iterations"],
        exit_t_shift=se["exit_t_shift_ms"],
        bisection_mean="arithmetic",
        ap_detect_location=setup["ap_detect_location"],
        ap_detect_threshold=setup["ap_detect_threshold_mV"],
    )
    t_search = time.perf_counter() - t1
    init_nodes, n_sites, _times = fiber.initiation_nodes()
    # bracket at convergence: tightest subthreshold amplitude tried
    subs = [r["stimamp_mA"] for r in trace if not r["suprathreshold"]]
    bottom = max(subs, key=abs) if subs else None
    summary = _fiber_summary(fiber)
    summary["steps_on"] = steps_on
    return {
        "threshold_uA": abs(amp) * 1000.0,
        "threshold_stimamp_mA": float(amp),
        "final_bracket_mA": [bottom, float(amp)],
        "final_run": {
            "n_aps_at_detect_node": int(n_aps),
            "ap_time_at_detect_node_ms": aptime,
            "initiation_nodes": [int(i) for i in init_nodes],
            "n_initiation_sites": int(n_sites),
        },
        "search_trace": trace,
        "fiber": summary,
        "timing": {
            "build_s": round(t_build, 3),
            "threshold_search_s": round(t_search, 3),
            "n_search_runs": len(trace),
            "n_neuron_runs_incl_validation": len(trace) + 1,
            "note": "threshold_search_s includes pyfibers' final validation run at the reported amplitude",
        },
    }


def run_cv(setup: dict[str, Any]) -> dict[str, Any]:
    from pyfibers import IntraStim

    t0 = time.perf_counter()
    fiber = _build(setup)
    ic = setup["intracellular_stimulus"]
    clamp = {"delay": ic["delay_ms"], "pw": ic["pw_ms"], "dur": ic["train_ms"], "freq": ic["freq_Hz"], "amp": 1.0}
    stim = IntraStim(dt=setup["dt_ms"], tstop=setup["tstop_ms"], istim_loc=ic["istim_loc"], clamp_kws=clamp)
    t1 = time.perf_counter()
    thr, _ = stim.find_threshold(
        fiber,
        condition="activation",
        termination_tolerance=1.0,
        stimamp_top=ic["amp_search_top_nA"],
        stimamp_bottom=ic["amp_search_bottom_nA"],
        fail_on_end_excitation=False,  # near threshold a late or reflected AP can look like end excitation
    )
    t_thr = time.perf_counter() - t1
    cv_at_threshold = None
    try:
        cv_at_threshold = float(fiber.measure_cv())
    except (ValueError, RuntimeError) as exc:  # non-linear conduction etc.
        cv_at_threshold = f"failed: {exc}"
    t2 = time.perf_counter()
    amp = ic["run_multiple_of_threshold"] * thr
    n_aps, aptime = stim.run_sim(amp, fiber, fail_on_end_excitation=False)
    t_run = time.perf_counter() - t2
    cv = float(fiber.measure_cv())
    s, e = setup["measure"]["start_node_index"], setup["measure"]["end_node_index"]
    times = [float(fiber.apc[i].time) for i in range(s, e + 1)]
    counts = [int(fiber.apc[i].n) for i in range(s, e + 1)]
    init_nodes, _, _ = fiber.initiation_nodes()
    node_idx = [i for i, sec in enumerate(fiber.sections) if sec in fiber.nodes]
    coords = fiber.longitudinal_coordinates
    return {
        "cv_m_per_s": cv,
        "cv_at_threshold_m_per_s": cv_at_threshold,
        "intracellular_threshold_nA": float(thr),
        "run_amp_nA": float(amp),
        "ap_time_start_node_ms": times[0],
        "ap_time_end_node_ms": times[-1],
        "ap_counts_start_end_node": [counts[0], counts[-1]],
        "max_ap_count_between": max(counts),
        "initiation_nodes_cv_run": [int(i) for i in init_nodes],
        "stimulated_node_index": fiber.loc_index(ic["istim_loc"]),
        "distance_um": float(abs(coords[node_idx[e]] - coords[node_idx[s]])),
        "v_rest_declared_mV": fiber.v_rest,
        "fiber": _fiber_summary(fiber),
        "timing": {
            "build_s": round(t1 - t0, 3),
            "intracellular_threshold_search_s": round(t_thr, 3),
            "cv_run_s": round(t_run, 3),
        },
    }


def run_stepcost(setup: dict[str, Any]) -> dict[str, Any]:
    from neuron import h
    from pyfibers import ScaledStim

    fiber = _build(setup)
    fiber.potentials = fiber.point_source_potentials(0.0, 1000.0, fiber.length / 2, 1.0, 0.2)
    n = int(round(setup["tstop_ms"] / setup["dt_ms"]))
    h.celsius = 37.0
    h.finitialize(fiber.v_rest)
    h.dt = setup["dt_ms"]
    ts = time.perf_counter()
    for _ in range(n):
        h.fadvance()
    bare = (time.perf_counter() - ts) / n
    stim = ScaledStim(waveform=RectPulse(0.1, 0.1, [1.0]), dt=setup["dt_ms"], tstop=setup["tstop_ms"])
    reps = []
    for _ in range(2):
        ts = time.perf_counter()
        stim.run_sim(-0.05, fiber)
        reps.append(time.perf_counter() - ts)
    best = min(reps)
    return {
        "bare_step_ms": bare * 1e3,
        "scaledstim_run_s": [round(r, 3) for r in reps],
        "scaledstim_step_ms": best / n * 1e3,
        "n_steps": n,
        "timing": {"total_s": round(bare * n + sum(reps), 3)},
    }


def worker(case_id: str) -> None:
    import warnings

    cases, _ = build_cases()
    setup = cases[case_id]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        if setup["kind"] == "threshold":
            result = run_threshold(setup)
        elif setup["kind"] == "cv":
            result = run_cv(setup)
        elif setup["kind"] == "stepcost":
            result = run_stepcost(setup)
        else:
            raise ValueError(setup["kind"])
        result.setdefault("timing", {})["worker_total_s"] = round(time.perf_counter() - t0, 3)
    msgs = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    result["warnings"] = msgs
    print("@@RESULT@@" + json.dumps(result))


# --------------------------------------------------------------------------------------
# Driver side
# --------------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {}


def _save(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _headline(cid: str, rec: dict[str, Any]) -> str:
    r = rec.get("result", {})
    if "error" in rec:
        return f"{cid}: ERROR {rec['error'][-300:]}"
    if "threshold_uA" in r:
        t = r["timing"]
        return (
            f"{cid}: threshold {r['threshold_uA']:.2f} uA  ({t['n_neuron_runs_incl_validation']} runs, "
            f"search {t['threshold_search_s']:.1f} s)"
        )
    if "cv_m_per_s" in r:
        return f"{cid}: CV {r['cv_m_per_s']:.2f} m/s (at threshold: {r['cv_at_threshold_m_per_s']})"
    if "bare_step_ms" in r:
        return f"{cid}: step {r['bare_step_ms']:.3f} ms bare, {r['scaledstim_step_ms']:.3f} ms via ScaledStim"
    return cid


COMMON = {
    "what": (
        "Reference values computed with the peer implementation pyfibers (NEURON). "
        "Thresholds are magnitudes in µA of the point-source current; see each case's set-up "
        "and benchmarks/reference/SETUP.md for exactly what pyfibers computes."
    ),
    "generator": "benchmarks/reference/pyfibers_reference.py (run with the peer venv's python)",
    "licence_note": (
        "pyfibers is licensed for non-commercial use only: it was installed and run to produce "
        "these numbers; none of its code is in this repository."
    ),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma-separated group names and/or case ids")
    ap.add_argument("--force", action="store_true", help="recompute cases already stored")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes at once (timings need 1)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--list", action="store_true", help="list groups and cases and exit")
    ap.add_argument("--worker", metavar="CASE_ID", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        worker(args.worker)
        return 0

    cases, groups = build_cases()
    if args.list:
        for g, ids in groups.items():
            print(g)
            for cid in ids:
                print("   ", cid)
        return 0

    wanted: list[str] = []
    for token in [t for t in args.only.split(",") if t] or list(groups):
        ids = groups.get(token, [token] if token in cases else None)
        if ids is None:
            ap.error(f"unknown group or case: {token}")
        for cid in ids:
            if cid not in wanted:
                wanted.append(cid)

    data = _load(args.out)
    data.update({k: v for k, v in COMMON.items()})
    data["schema"] = SCHEMA
    data.setdefault("cases", {})
    data["groups"] = groups
    data["environment"] = _environment()

    todo = []
    for cid in wanted:
        rec = data["cases"].get(cid)
        if rec and not args.force and rec.get("setup") == cases[cid] and "result" in rec:
            print(f"[skip] {_headline(cid, rec)}", flush=True)
            continue
        todo.append(cid)
    print(f"{len(todo)} case(s) to run, {args.jobs} at a time", flush=True)

    def run_one(cid: str) -> tuple[str, dict[str, Any]]:
        started = _dt.datetime.now(_dt.UTC)
        ts = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", cid],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - ts
        rec: dict[str, Any] = {
            "setup": cases[cid],
            "computed_at": started.isoformat(timespec="seconds"),
            "process_wall_s": round(wall, 3),
            "concurrent_jobs": args.jobs,
            "environment": data["environment"],
        }
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")]
        if proc.returncode == 0 and line:
            rec["result"] = json.loads(line[-1][len("@@RESULT@@") :])
        else:
            rec["error"] = (proc.stderr or proc.stdout)[-4000:]
        return cid, rec

    done = 0
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_one, cid) for cid in todo]
        for fut in as_completed(futures):
            cid, rec = fut.result()
            done += 1
            data["cases"][cid] = rec
            data["updated_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
            _save(args.out, data)
            print(f"[{done}/{len(todo)}] {_headline(cid, rec)}  (process {rec['process_wall_s']:.1f} s)", flush=True)
    failed = [c for c in todo if "error" in data["cases"][c]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
