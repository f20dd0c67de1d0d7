"""Per-threshold wall time of the fibre engine against NEURON (pyfibers), in one run.

electrostim: ``electrostim fibers threshold`` with a sweep of 20 thresholds (MRG 5.7, 8.7,
10, 14, 16 µm × 50, 100, 200, 500 µs; point source 1 mm above the centre node, 0.2 S/m,
dt 1 µs, 0.1 % bracket) in a fresh process: start-up, loading the compiled kernels and
the sweep, divided by 20. A second figure, with an empty kernel cache, includes the
one-off compilation too.

NEURON: the reference script ``benchmarks/reference/pyfibers_reference.py`` run with the
peer's Python for a few of the same cases at the same accuracy, one fresh process per
threshold (as that script always runs them), in the same invocation of this benchmark.

Usage (from the repository root)::

    python -m benchmarks.fibers_threshold --peer-python /work/peer-venv/bin/python

Without ``--peer-python`` the peer figures are taken from the stored reference data and
marked as such. The script exits with status 1 if the median ratio is below 300.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "benchmarks" / "reference"
DIAMETERS = "5.7,8.7,10,14,16"
PWS = "50,100,200,500"
N_THRESHOLDS = 20
PEER_CASES = ["mrg_discrete_D10_R1000_PW100_cath", "mrg_discrete_D5.7_R1000_PW100_cath", "mrg_discrete_D16_R1000_PW100_cath"]
TARGET = 300.0


def run_ours(env: dict[str, str] | None = None) -> tuple[float, list[dict]]:
    cmd = [sys.executable, "-m", "electrostim", "fibers", "threshold", "--model", "mrg", "--diameter-um", DIAMETERS,
           "--pulse-width-us", PWS, "--distance-um", "1000", "--dt-us", "1", "--tolerance", "0.001", "--json"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - t0
    return wall, json.loads(out.stdout)["results"]


def run_peer(python: str, case: str) -> tuple[float, float]:
    """Wall time of one peer threshold (fresh process) and its value (µA)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.json"
        cmd = [python, str(REF / "pyfibers_reference.py"), "--only", case, "--force", "--out", str(out)]
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        rec = json.loads(out.read_text())["cases"][case]
        return wall, rec["result"]["threshold_uA"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="fresh processes for electrostim (median)")
    ap.add_argument("--peer-python", default=None, help="Python of a virtual environment with pyfibers and NEURON")
    ap.add_argument("--peer-cases", type=int, default=3, help="how many peer thresholds to time (each 20-40 s)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    run_ours()  # make sure the compiled kernels are cached
    walls = []
    results = None
    for _ in range(args.runs):
        w, results = run_ours()
        walls.append(w)
    with tempfile.TemporaryDirectory() as cache:
        cold, _ = run_ours({**os.environ, "NUMBA_CACHE_DIR": cache})
    ours = statistics.median(walls) / N_THRESHOLDS
    by_case = {(r["diameter_um"], r["pulse_width_us"]): r["threshold_ma"] * 1e3 for r in results}

    peer_walls, accuracy, source = [], [], "measured in this run"
    stored = json.loads((REF / "neuron_reference.json").read_text())["cases"]
    for case in PEER_CASES[: args.peer_cases]:
        setup = stored[case]["setup"] if case in stored else None
        if args.peer_python:
            wall, value = run_peer(args.peer_python, case)
        else:
            source = "stored reference timings (no --peer-python)"
            if case not in stored or "result" not in stored[case]:
                continue
            wall, value = stored[case]["process_wall_s"], stored[case]["result"]["threshold_uA"]
        peer_walls.append(wall)
        if setup:
            key = (setup["diameter_um"], setup["waveform"]["pw_ms"] * 1e3)
            if key in by_case:
                accuracy.append(abs(by_case[key] / value - 1))
    peer = statistics.median(peer_walls) if peer_walls else float("nan")
    ratio = peer / ours
    report = {
        "electrostim_sweep_wall_s": {"median": statistics.median(walls), "min": min(walls), "max": max(walls), "runs": len(walls)},
        "electrostim_per_threshold_s": ours,
        "electrostim_per_threshold_cold_compile_s": cold / N_THRESHOLDS,
        "neuron_per_threshold_s": {"median": peer, "values": peer_walls, "source": source},
        "ratio_median": ratio,
        "ratio_cold_compile": peer / (cold / N_THRESHOLDS),
        "max_relative_difference_vs_neuron": max(accuracy) if accuracy else None,
        "target_ratio": TARGET,
        "met": ratio >= TARGET,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"electrostim: sweep of {N_THRESHOLDS} thresholds, median {statistics.median(walls):.2f} s "
              f"(min {min(walls):.2f}, max {max(walls):.2f}, {len(walls)} fresh processes) -> {ours * 1e3:.0f} ms per threshold")
        print(f"electrostim, empty kernel cache (compilation included): {cold:.1f} s -> {cold / N_THRESHOLDS * 1e3:.0f} ms per threshold")
        print(f"NEURON (pyfibers), {source}: median {peer:.1f} s per threshold over {len(peer_walls)} thresholds")
        if accuracy:
            print(f"largest difference between the two on the same cases: {max(accuracy) * 100:.3f} %")
        print(f"ratio: {ratio:.0f}x (compiled kernels cached), {peer / (cold / N_THRESHOLDS):.0f}x (compiling); "
              f"target >= {TARGET:.0f}x: {'met' if ratio >= TARGET else 'NOT met'}")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
