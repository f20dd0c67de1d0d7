"""Figures of populations (matplotlib, loaded on use)."""

from __future__ import annotations

import os

import numpy as np

from ..waveform import save_figure, text_as_written

__all__ = ["plot_recruitment", "recruitment_range_ma"]

_ROLE_COLOURS = {"sensory": "tab:blue", "motor": "tab:orange", "pain": "tab:red"}


def recruitment_range_ma(result) -> float:
    """The top of the current axis of :func:`plot_recruitment`, mA.

    It holds every finite threshold (each curve reaches its plateau), every current the
    window reports (onset and half, :meth:`PopulationResult.window`) and the program's
    highest amplitude, with 8 % to spare.

    Parameters
    ----------
    result : PopulationResult

    Returns
    -------
    float
        mA (1 when nothing is recruited and no amplitude is known).
    """
    values = [float(v) for v in result.threshold_ma[np.isfinite(result.threshold_ma)]]
    for w in result.window().values():
        values += [v for v in (w["onset_ma"], w["half_ma"]) if v is not None]
    amp = result.parameters.get("amplitude_max_ma")
    if amp:
        values.append(float(amp))
    return max(values) * 1.08 if values else 1.0


def _parameter_text(result) -> str:
    """The parameters of the population, one per line, for the box beside the axes."""
    p = result.parameters
    lines = [f"{result.fibre_class.size} fibres, seed {p['seed']}" if "seed" in p else f"{result.fibre_class.size} fibres"]
    if p.get("stimulus"):
        lines.append(p["stimulus"].replace("; ", "\n"))
    if p.get("fat_thickness_mm") is not None:
        lines.append(f"fat {p['fat_thickness_mm']:g} mm")
    if "gap_cm" in p:
        lines.append(f"pads {p['gap_cm']:g} cm apart (edges)")
    if p.get("amplitude_default_ma") is not None:
        lines.append(f"program amplitude {p['amplitude_default_ma']:g} mA (max {p['amplitude_max_ma']:g} mA)")
    lines.append("recruited by 200 mA:")
    for role, w in result.window().items():
        lines.append(f"  {role} {w['recruited_by_200_ma'] * 100:.0f} %")
    return "\n".join(lines)


@text_as_written
def plot_recruitment(result, path: str | os.PathLike[str] | None = None):
    """Recruitment curves of every class of a population, with the onset currents of the window marked.

    The x axis is the peak current of the channel (the program's own waveform scaled),
    mA, from 0 to :func:`recruitment_range_ma` (every threshold and every current the
    window reports); the program's default and highest amplitudes are dotted lines. The
    title names the program, channel and tissue; a box beside the axes gives the
    stimulus and the population's parameters; the legend sits outside the axes.

    Parameters
    ----------
    result : PopulationResult
        From :func:`~electrostim.physics.population.population_thresholds`.
    path : str or path-like, optional
        Write the figure there (PNG, SVG, PDF by suffix); the folder must exist.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    top = recruitment_range_ma(result)
    currents = np.linspace(0, top, 600)
    fig, ax = plt.subplots(figsize=(9, 5), constrained_layout=True)
    for cid, fc in result.classes.items():
        x, frac = result.recruitment(cid, currents)
        ax.plot(x, frac * 100, lw=1.6, label=f"{fc.name} (n={int((result.fibre_class == cid).sum())})")
    for role, w in result.window().items():
        if w["onset_ma"] is not None:
            colour = _ROLE_COLOURS.get(role, "0.5")
            ax.axvline(w["onset_ma"], color=colour, lw=0.8, ls="--", label=f"{role} onset {w['onset_ma']:.1f} mA")
    p = result.parameters
    for key, words, style in (("amplitude_default_ma", "program default", "-."), ("amplitude_max_ma", "program max", ":")):
        if p.get(key):
            ax.axvline(p[key], color="0.35", lw=0.9, ls=style, label=f"{words} {p[key]:g} mA")
    ax.set_xlabel("peak current of the channel (mA)")
    ax.set_ylabel("fibres recruited (%)")
    ax.set_ylim(0, 102)
    ax.set_xlim(0, top)
    ax.set_title(f"{result.program} / {result.channel}: recruitment on {result.tissue} tissue", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=7)
    ax.text(1.01, 0.0, _parameter_text(result), transform=ax.transAxes, va="bottom", ha="left", fontsize=7,
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.7"})
    if path is not None:
        save_figure(fig, path)
    return fig
