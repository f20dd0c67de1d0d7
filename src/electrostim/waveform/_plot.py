"""Figures of a program: one pulse, a train, and the session envelope."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..program import Program
from ._render import render
from ._schedule import Schedule

__all__ = ["plot_program", "save_figure", "session_envelope"]


def session_envelope(schedule: Schedule, bins: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Peak |current| of each output in ``bins`` equal time bins: (bin centres in s, array outputs × bins)."""
    duration = schedule.duration_s
    edges = np.linspace(0.0, duration, bins + 1)
    peak = np.zeros((len(schedule.outputs), bins))
    for parts in schedule.output_chunks():
        for i, c in enumerate(parts):
            if len(c) == 0:
                continue
            b = np.clip(np.searchsorted(edges, c.time_s, side="right") - 1, 0, bins - 1)
            np.maximum.at(peak[i], b, np.maximum(np.abs(c.first_amplitude_ma), np.abs(c.second_amplitude_ma)))
    return (edges[:-1] + edges[1:]) / 2, peak


def _first_full_pulse(schedule: Schedule) -> tuple[float, float]:
    """Time of the first pulse at full intensity (within the first minutes), and its duration."""
    horizon = min(schedule.duration_s, 300.0)
    best_t, best_a, dur = 0.0, -1.0, schedule.max_pulse_duration_s
    for c in schedule.chunks(0.0, horizon):
        if len(c) == 0:
            continue
        a = np.abs(c.first_amplitude_ma)
        top = a.max()
        if top > best_a + 1e-9:
            k = int(np.argmax(a >= top - 1e-9))
            best_t, best_a = float(c.time_s[k]), float(top)
            dur = float((c.first_width_us[k] + c.gap_us[k] + c.second_width_us[k]) * 1e-6)
    return best_t, dur


def _repetition_window(program: Program) -> float:
    """A window that shows the pattern: a few pulses, bursts or beats."""
    st = program.channels[0].stimulus
    p = st.pulse
    if p.shape == "interferential":
        return 2.0 / st.nominal_repetition_hz
    if p.shape == "sine-burst" or st.burst is not None:
        return 2.0 / st.nominal_repetition_hz
    return min(4.0 / st.nominal_repetition_hz, 2.0)


def plot_program(program: Program, path: str | os.PathLike[str] | None = None, level: str = "default", schedule: Schedule | None = None):
    """Draw the pulse shape, a train and the session envelope of a program.

    Returns the matplotlib figure; writes it to ``path`` when given (PNG, SVG, PDF
    by suffix), the file appearing only when complete.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    sched = schedule or Schedule(program, level=level)
    t_pulse, dur = _first_full_pulse(sched)
    fig, axes = plt.subplots(3, 1, figsize=(9, 9.5), constrained_layout=True)
    title = f"{program.name}\n{program.id} — {program.modality.value}, amplitude: {sched.level}"
    fig.suptitle(title, fontsize=11)

    # 1. one pulse (or a few carrier cycles)
    ax = axes[0]
    shape = program.channels[0].stimulus.pulse.shape
    span = dur * (3.0 if shape in ("sine-burst", "interferential") else 1.0)
    pad = max(span * 0.25, 20e-6)
    a, b = max(0.0, t_pulse - pad), min(sched.duration_s, t_pulse + span + pad)
    fs = min(2e8, max(1e6, 400 / max(b - a, 1e-9)))
    r = render(sched, a, b, fs, dtype=np.float64)
    for i, lbl in enumerate(r.labels[:4]):
        ax.plot((r.time_s - t_pulse) * 1e6, r.current_ma[i], lw=1.4, label=lbl, drawstyle="steps-post" if shape not in ("sine-burst", "interferential") else "default")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("time from pulse start (µs)")
    ax.set_ylabel("current (mA)")
    ax.set_title("pulse shape")
    ax.legend(loc="upper right", fontsize=8)

    # 2. a train
    ax = axes[1]
    w = _repetition_window(program)
    a, b = t_pulse, min(sched.duration_s, t_pulse + w)
    if b <= a:
        a, b = 0.0, min(sched.duration_s, w)
    fs = min(5e6, max(2e4, 20 / max(sched.max_pulse_duration_s, 1e-6) if shape in ("sine-burst", "interferential") else 4e5))
    fs = min(fs, 400_000 / max(b - a, 1e-9))
    r = render(sched, a, b, fs, dtype=np.float64)
    for i, lbl in enumerate(r.labels[:4]):
        ax.plot((r.time_s - a) * 1e3, r.current_ma[i], lw=0.8, label=lbl)
    if shape == "interferential" and len(r.labels) >= 2 and program.channels[0].stimulus.pulse.mode == "quadripolar":
        ax.plot((r.time_s - a) * 1e3, r.current_ma[0] + r.current_ma[1], lw=0.6, color="k", alpha=0.5, label="sum where circuits cross")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("current (mA)")
    ax.set_title("pulse train")
    ax.legend(loc="upper right", fontsize=8)

    # 3. session envelope
    ax = axes[2]
    centres, peak = session_envelope(sched)
    scale, unit = (60.0, "min") if sched.duration_s > 600 else (1.0, "s")
    for i, o in enumerate(sched.outputs):
        ax.plot(centres / scale, peak[i], lw=1.0, label=o.label)
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("peak current (mA)")
    ax.set_title("session envelope (ramps, on/off, modulation)")
    ax.set_xlim(0, sched.duration_s / scale)
    ax.set_ylim(bottom=0)
    if len(sched.outputs) <= 8:
        ax.legend(loc="upper right", fontsize=8)

    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig, path: str | os.PathLike[str]) -> Path:
    """Write a figure (format from the suffix) so that the file appears only when complete, then close it.

    The folder must exist (none is created): else :class:`~electrostim.errors.OptionError`, and nothing is written.
    """
    import matplotlib.pyplot as plt

    from ..errors import check_output_file

    path = Path(path)
    try:
        check_output_file("path", path)
    except BaseException:
        plt.close(fig)
        raise
    tmp = path.with_name(f".{path.name}.part{path.suffix}")
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    plt.close(fig)
    return path


