"""Figures of populations (matplotlib, loaded on use)."""

from __future__ import annotations

import os

import numpy as np

from ..waveform import save_figure

__all__ = ["plot_recruitment"]


def plot_recruitment(result, path: str | os.PathLike[str] | None = None):
    """Recruitment curves of every class of a :class:`~electrostim.physics.population.PopulationResult`,
    with the onset currents of the window marked."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    finite = result.threshold_ma[np.isfinite(result.threshold_ma)]
    top = float(np.percentile(finite, 98)) * 1.3 if finite.size else 1.0
    currents = np.linspace(0, top, 400)
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for cid, fc in result.classes.items():
        x, frac = result.recruitment(cid, currents)
        ax.plot(x, frac * 100, lw=1.6, label=f"{fc.name} (n={int((result.fibre_class == cid).sum())})")
    colours = {"sensory": "tab:blue", "motor": "tab:orange", "pain": "tab:red"}
    for role, w in result.window().items():
        if w["onset_ma"] is not None and w["onset_ma"] <= top:
            ax.axvline(w["onset_ma"], color=colours.get(role, "0.5"), lw=0.8, ls="--")
            ax.text(w["onset_ma"], 2, f" {role} onset {w['onset_ma']:.1f} mA", rotation=90, va="bottom", fontsize=7,
                    color=colours.get(role, "0.5"))
    ax.set_xlabel("peak current of the channel (mA)")
    ax.set_ylabel("fibres recruited (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(0, top)
    ax.set_title(f"{result.program} / {result.channel}: recruitment on {result.tissue} tissue", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    if path is not None:
        save_figure(fig, path)
    return fig
