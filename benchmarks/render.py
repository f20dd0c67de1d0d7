"""Rendering 60 s of an 8-channel, 100 Hz program at 100 kHz.

Target: ``es.render(es.Schedule(p, level="max"), 100.0, 160.0, 100_000)`` (8 outputs
x 6 000 000 float32 samples) in <= 1 s. In one process, after building the program
(not timed), the first render is timed alone as the cold run (it pays the first-touch
page faults of its 192 MB output), then ``--runs`` further renders are timed. The
growth of the process's peak RSS over the cold run and the tracemalloc peak of one
more render give its memory.

Run from the repository root::

    python -m benchmarks.render [--runs 7] [--json]

``--single`` does one (cold) render in this process and prints its figures as JSON, the
form to time as a whole process (imports included) from outside.

The exit code is 1 when the median of the warm runs misses the target.
"""

from __future__ import annotations

import argparse
import json
import sys

import electrostim as es

from ._harness import MB, max_rss_bytes, positive_int, report, timed, traced_peak_bytes
from .programs import eight_channel_hour

TARGET_S = 1.0
START_S, STOP_S, RATE_HZ = 100.0, 160.0, 100_000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=positive_int, default=7, help="warm renders to time (default 7)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--single", action="store_true", help="one render in this process, figures as JSON")
    args = ap.parse_args(argv)
    p = eight_channel_hour()

    def render():
        return es.render(es.Schedule(p, level="max"), START_S, STOP_S, RATE_HZ)

    rss0 = max_rss_bytes()
    cold_s, r = timed(render)
    rss1 = max_rss_bytes()
    if args.single:
        print(json.dumps({"render_s": cold_s, "rss_growth_mb": (rss1 - rss0) / MB, "rss_peak_mb": rss1 / MB}))
        return 0
    shape, dtype = r.current_ma.shape, r.current_ma.dtype
    del r
    warm_s = [timed(render)[0] for _ in range(args.runs)]
    traced = traced_peak_bytes(render)
    rows = {
        "render, warm": (warm_s, "s"),
        "render, cold (first in process)": ([cold_s], "s"),
        "peak RSS growth, cold run": ([(rss1 - rss0) / MB], "MB"),
        "peak RSS of the process": ([max_rss_bytes() / MB], "MB"),
        "tracemalloc peak": ([traced / MB], "MB"),
    }
    meta = {
        "program": "tens-conventional as 8 channels, 3600 s, 100 Hz symmetric biphasic, level max",
        "window": f"{START_S:g} s to {STOP_S:g} s at {RATE_HZ} Hz: array {shape} {dtype}",
        "renders in one process": f"1 cold, then {args.runs} warm",
        "target": f"render in <= {TARGET_S:g} s (median of warm runs)",
    }
    return report("benchmarks.render", rows, {"time, render": ("render, warm", TARGET_S)}, meta, args.json)


if __name__ == "__main__":
    sys.exit(main())
