"""Pulse schedule and dose of an 8-channel, 60-minute, 100 Hz program.

Target: the whole pulse schedule and every dose figure in <= 1 s with <= 200 MB peak
memory. Each run is a fresh process that builds the program (not timed), then times

(a) iterating every chunk of ``es.Schedule(p, level="max").chunks()``, counting pulses;
(b) ``es.compute_dose(p, level="max")``, which streams the schedule again;

and records the growth of the process's peak RSS over (a) + (b). A second pass of
(a) + (b) in the same process, under tracemalloc, gives the peak of memory allocated.

Run from the repository root::

    python -m benchmarks.schedule_dose [--runs 7] [--json]

``--single`` does (a) + (b) once in this process and prints its figures as JSON, the
form to time as a whole process (imports included) from outside.

The exit code is 1 when a median misses its target.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from ._harness import MB, max_rss_bytes, positive_int, report, timed, traced_peak_bytes

TARGET_S = 1.0
TARGET_MB = 200.0


def measure(trace: bool = False) -> dict[str, float]:
    """One measurement in this process; with ``trace``, then a second pass under tracemalloc."""
    import electrostim as es

    from .programs import eight_channel_hour

    p = eight_channel_hour()

    def schedule() -> int:
        return sum(len(c) for c in es.Schedule(p, level="max").chunks())

    def dose() -> es.Dose:
        return es.compute_dose(p, level="max")

    rss0 = max_rss_bytes()
    t_sched, n_pulses = timed(schedule)
    t_dose, d = timed(dose)
    rss1 = max_rss_bytes()
    assert n_pulses == sum(o.pulse_count for o in d.outputs)
    figures = {
        "total_s": t_sched + t_dose,
        "schedule_s": t_sched,
        "dose_s": t_dose,
        "rss_growth_mb": (rss1 - rss0) / MB,
        "rss_peak_mb": rss1 / MB,
        "pulses": n_pulses,
    }
    if trace:
        figures["traced_peak_mb"] = traced_peak_bytes(lambda: (schedule(), dose())) / MB
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=positive_int, default=7, help="fresh processes to time (default 7)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--single", action="store_true", help="one run in this process, figures as JSON")
    ap.add_argument("--trace", action="store_true", help="with --single: add the tracemalloc pass")
    args = ap.parse_args(argv)
    if args.single:
        print(json.dumps(measure(trace=args.trace)))
        return 0
    runs = []
    for _ in range(args.runs):
        cmd = [sys.executable, "-m", __spec__.name, "--single", "--trace"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout))
    col = {k: [r[k] for r in runs] for k in runs[0]}
    rows = {
        "schedule + dose": (col["total_s"], "s"),
        "(a) schedule, all chunks": (col["schedule_s"], "s"),
        "(b) compute_dose": (col["dose_s"], "s"),
        "peak RSS growth": (col["rss_growth_mb"], "MB"),
        "peak RSS of the process": (col["rss_peak_mb"], "MB"),
        "tracemalloc peak": (col["traced_peak_mb"], "MB"),
    }
    targets = {
        "time, schedule + dose": ("schedule + dose", TARGET_S),
        "memory, peak RSS growth": ("peak RSS growth", TARGET_MB),
        "memory, tracemalloc peak": ("tracemalloc peak", TARGET_MB),
    }
    meta = {
        "program": "tens-conventional as 8 channels, 3600 s, 100 Hz symmetric biphasic, level max",
        "pulses": int(runs[0]["pulses"]),
        "fresh processes": args.runs,
        "target": f"schedule + dose in <= {TARGET_S:g} s with <= {TARGET_MB:g} MB peak memory",
    }
    return report("benchmarks.schedule_dose", rows, targets, meta, args.json)


if __name__ == "__main__":
    sys.exit(main())
