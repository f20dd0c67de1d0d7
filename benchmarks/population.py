"""Thresholds of a 10 000-fibre mixed population under one electrode pair.

The population is the default mix (Aβ, motor, Aδ and C fibres in the proportions of
``electrostim.physics.population.DEFAULT_COUNTS``) scaled to 10 000 fibres, under the
pads of the ``knee-oa-tens`` preset on the knee tissue preset, at a 1 % bracket.
Target: at most 5 minutes and 2 GB peak memory on 2 cores.

Usage (from the repository root)::

    /usr/bin/time -v python -m benchmarks.population

It prints the wall time of the whole run, the wall time of the threshold search, the
window and the peak resident memory of the process, and exits with status 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

TARGET_S = 300.0
TARGET_MB = 2000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fibres", type=int, default=10_000)
    ap.add_argument("--program", default="knee-oa-tens")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    t_start = time.perf_counter()
    import electrostim as es
    from electrostim.physics.population import DEFAULT_COUNTS, population_thresholds

    total = sum(DEFAULT_COUNTS.values())
    counts = {k: round(v * args.fibres / total) for k, v in DEFAULT_COUNTS.items()}
    program = es.load_program(args.program)
    last = [0.0]

    def progress(done: int, n: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 15 or done == n:
            last[0] = now
            print(f"  {done}/{n} thresholds after {now - t_start:.0f} s", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    res = population_thresholds(program, counts=counts, progress=progress)
    search = time.perf_counter() - t0
    wall = time.perf_counter() - t_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 * 1.048576  # kB -> MB
    report = {
        "fibres": int(res.threshold_ma.size), "counts": counts, "program": args.program, "tissue": res.tissue,
        "wall_s": wall, "population_thresholds_s": search, "peak_rss_mb": peak_mb,
        "window": res.window(), "target_s": TARGET_S, "target_mb": TARGET_MB,
        "met": wall <= TARGET_S and peak_mb <= TARGET_MB,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['fibres']} fibres {counts} under {args.program} on {res.tissue} tissue")
        print(f"wall {wall:.1f} s (threshold search {search:.1f} s), peak memory {peak_mb:.0f} MB; "
              f"targets <= {TARGET_S:.0f} s and <= {TARGET_MB:.0f} MB: {'met' if report['met'] else 'NOT met'}")
        for role, w in report["window"].items():
            print(f"  {role}: onset {w['onset_ma']} mA, half {w['half_ma']} mA")
    return 0 if report["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
