"""Shared helpers of the benchmarks: memory probes, summaries and the report."""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

MB = 1e6


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"allowed >= 1, but got {value}")
    return value


def max_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of one call, and what it returned."""
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def traced_peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak of memory allocated during one call, as tracemalloc sees it (numpy arrays included)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def summary(values: list[float]) -> dict[str, float]:
    """Median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def report(
    title: str,
    rows: dict[str, tuple[list[float], str]],
    targets: dict[str, tuple[str, float]],
    meta: dict[str, Any],
    as_json: bool,
) -> int:
    """Print the figures and the verdict on each target; return the exit code (1 when a target is missed).

    ``rows`` maps a figure's name to its values and unit; ``targets`` maps a target's
    name to the figure it bounds and the limit on that figure's median.
    """
    results = {name: summary(v) | {"unit": unit, "values": v} for name, (v, unit) in rows.items()}
    verdicts = {}
    for name, (row, limit) in targets.items():
        m = results[row]["median"]
        verdicts[name] = {"figure": row, "median": m, "limit": limit, "unit": results[row]["unit"], "met": m <= limit}
    ok = all(v["met"] for v in verdicts.values())
    if as_json:
        json.dump({"benchmark": title, **meta, "results": results, "targets": verdicts, "ok": ok}, sys.stdout, indent=2)
        print()
        return 0 if ok else 1
    print(title)
    for k, v in meta.items():
        print(f"  {k}: {v}")
    print(f"  {'figure':<32} {'median':>9} {'min':>9} {'max':>9}")
    for name, r in results.items():
        print(f"  {name:<32} {r['median']:>9.3f} {r['min']:>9.3f} {r['max']:>9.3f}  {r['unit']}")
    for name, v in verdicts.items():
        verdict = "met" if v["met"] else "NOT MET"
        print(f"  target {name}: median {v['median']:.3f} {v['unit']} <= {v['limit']:g} {v['unit']}: {verdict}")
    return 0 if ok else 1
