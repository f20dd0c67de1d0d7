"""Figures of fibre results (matplotlib, loaded on use)."""

from __future__ import annotations

import os

import numpy as np

from ...waveform import save_figure

__all__ = ["plot_strength_duration"]


def plot_strength_duration(data: dict, path: str | os.PathLike[str] | None = None):
    """Thresholds over pulse width with the Weiss fit; ``data`` as ``electrostim fibers sd --json`` gives it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    pts = [(p["pulse_width_us"], p["threshold_ma"]) for p in data["points"] if p["threshold_ma"] is not None]
    pw = np.array([p for p, _ in pts])
    thr = np.array([t for _, t in pts]) * 1e3
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    ax.loglog(pw, thr, "o", label="threshold")
    if data.get("rheobase_ma"):
        x = np.geomspace(pw.min() * 0.8, pw.max() * 1.25, 200)
        rh, tau = data["rheobase_ma"] * 1e3, data["chronaxie_us"]
        ax.loglog(x, rh * (1 + tau / x), "-", label=f"Weiss fit: rheobase {rh:.1f} µA, chronaxie {tau:.0f} µs")
        ax.axhline(2 * rh, color="0.7", lw=0.8, ls="--")
        ax.axvline(tau, color="0.7", lw=0.8, ls="--")
    ax.set_xlabel("pulse width (µs)")
    ax.set_ylabel("threshold (µA)")
    ax.set_title(f"{data['model']} {data['diameter_um']:g} µm, point source at {data['distance_um']:g} µm")
    ax.legend(fontsize=8)
    if path is not None:
        save_figure(fig, path)
    return fig
