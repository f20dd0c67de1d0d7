"""Figures of fibre results (matplotlib, loaded on use)."""

from __future__ import annotations

import os

import numpy as np

from ...units import MA, UA
from ...waveform import save_figure

__all__ = ["plot_strength_duration"]

#: the set-up keys shown in the figure's box, with their units
_SETUP = (("waveform", "{}"), ("polarity", "{}"), ("conductivity_s_per_m", "medium {:g} S/m"),
          ("temperature_c", "{:g} °C"), ("nodes", "{} nodes"), ("dt_us", "dt {:g} µs"))


def plot_strength_duration(data: dict, path: str | os.PathLike[str] | None = None):
    """Thresholds over pulse width with the Weiss fit.

    The title names the fibre (model, diameter) and the source distance; a box beside
    the axes gives the rest of the set-up and the fit; the legend sits outside the axes.

    Parameters
    ----------
    data : dict
        As ``electrostim fibers sd --json`` gives it: ``model``, ``diameter_um``,
        ``distance_um``, ``points`` (``pulse_width_us``, ``threshold_ma``),
        ``rheobase_ma`` and ``chronaxie_us`` (None without a fit), and optionally
        ``waveform``, ``polarity``, ``conductivity_s_per_m``, ``temperature_c``,
        ``nodes``, ``dt_us``.
    path : str or path-like, optional
        Write the figure there (PNG, SVG, PDF by suffix); the folder must exist.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    pts = [(p["pulse_width_us"], p["threshold_ma"]) for p in data["points"] if p["threshold_ma"] is not None]
    pw = np.array([p for p, _ in pts])
    thr = np.array([t for _, t in pts]) * MA / UA
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    ax.loglog(pw, thr, "o", label="threshold")
    box = [fmt.format(data[key]) for key, fmt in _SETUP if data.get(key) is not None]
    if data.get("rheobase_ma"):
        x = np.geomspace(pw.min() * 0.8, pw.max() * 1.25, 200)
        rh, tau = data["rheobase_ma"] * MA / UA, data["chronaxie_us"]
        ax.loglog(x, rh * (1 + tau / x), "-", label="Weiss fit")
        ax.axhline(2 * rh, color="0.7", lw=0.8, ls="--", label=f"2 × rheobase ({2 * rh:.1f} µA)")
        ax.axvline(tau, color="0.7", lw=0.8, ls=":", label=f"chronaxie {tau:.0f} µs")
        box += [f"rheobase {rh:.1f} µA", f"chronaxie {tau:.0f} µs"]
    ax.set_xlabel("pulse width (µs)")
    ax.set_ylabel("threshold current (µA)")
    ax.set_title(f"strength-duration: {data['model']} {data['diameter_um']:g} µm fibre, "
                 f"point source {data['distance_um']:g} µm above its centre node", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8)
    if thr.size:
        box.append(f"thresholds {thr.min():.1f}-{thr.max():.1f} µA")
    ax.text(1.01, 0.0, "\n".join(box), transform=ax.transAxes, va="bottom", ha="left", fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.7"})
    if path is not None:
        save_figure(fig, path)
    return fig
