"""How much faster than real time the simulated stimulator runs a 30-minute session.

Usage (from the repository root)::

    python -m benchmarks.session_speed [--runs 5] [--step-s 0.05]

A session of the ``tens-conventional`` preset (two channels, 100 Hz, 30 minutes) runs on
the simulated stimulator as fast as it can (the session engine steps every 50 ms of
session time, as the live console does); the figure is session time / wall time, the
median of several runs. Target: at least 100×.
"""

from __future__ import annotations

import argparse
import statistics
import time

TARGET = 100.0


def one(step_s: float) -> tuple[float, float]:
    import electrostim as es
    from electrostim.devices import SimulatedStimulator
    from electrostim.session import Runner

    plan = es.assess(es.load_program("tens-conventional")).approve()
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    r = Runner(dev)
    t0 = time.perf_counter()
    r.run(step_s=step_s, speed=float("inf"))
    wall = time.perf_counter() - t0
    return r.t, wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--step-s", type=float, default=0.05)
    args = ap.parse_args()
    ratios = []
    for _ in range(args.runs):
        session_s, wall = one(args.step_s)
        ratios.append(session_s / wall)
    med = statistics.median(ratios)
    print(f"30-minute session ({session_s:.0f} s of session time) on the simulated stimulator: "
          f"median {med:.0f}× real time (min {min(ratios):.0f}, max {max(ratios):.0f}, {len(ratios)} runs); "
          f"target >= {TARGET:.0f}×: {'met' if med >= TARGET else 'NOT met'}")
    return 0 if med >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
