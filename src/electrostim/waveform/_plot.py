"""Figures of a program: one pulse, a train, each modulation over a whole period, the duty cycle and the session.

Every figure says what it draws: the title gives each channel's amplitude in mA (at the
level drawn; in V for an output set in volts, with the mA it drives into 200 Ω) and its stimulus parameters; sweeps of frequency, amplitude or pulse width
get a panel over one whole modulation period; an on/off duty cycle (FES/NMES) gets a
panel over two cycles, in seconds, with the on phases shaded; legends sit outside the
axes, so they never cover a curve.
"""

from __future__ import annotations

import functools
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import numpy as np

from ..program import VOLTAGE_LOAD_OHM, Program
from ..units import MS, US
from ._render import render
from ._schedule import Schedule
from ._timing import duty_envelope, make_clock, sweep_factor

__all__ = ["amplitude_text", "plot_program", "save_figure", "session_envelope", "stimulus_summary"]

P = ParamSpec("P")
R = TypeVar("R")

#: legends are placed outside the axes, to the right: they never cover data
LEGEND_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0, "fontsize": 8}
#: at most this many outputs are drawn in the pulse and train panels
_MAX_TRACES = 4
#: the session panel shades each on phase when the session holds at most this many duty cycles
_MAX_SHADED_CYCLES = 120


def text_as_written(draw: Callable[P, R]) -> Callable[P, R]:
    """Make a drawing function show every text as written: names and labels are text, never markup.

    Matplotlib reads text between two ``$`` as mathematical notation (``$\\frac{1}{$``
    in a program name made a figure fail); inside the function it does not.
    """

    @functools.wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return wrapper


def stimulus_summary(stimulus) -> str:
    """A channel's stimulus in words: shape, pulse width, rate, bursts, modulation, duty cycle and ramps.

    Parameters
    ----------
    stimulus : Stimulus
        A channel's stimulus (``program.channels[i].stimulus``).

    Returns
    -------
    str
        One line, with the units of every number.

    Examples
    --------
    >>> import electrostim as es
    >>> stimulus_summary(es.load_program("nmes-quadriceps-tka").channels[0].stimulus)
    'symmetric-biphasic 250 µs (gap 50 µs) at 50 Hz; 15 s on / 45 s off; ramps 3 s up, 1 s down'
    >>> stimulus_summary(es.load_program("spasm-relief").channels[0].stimulus)
    'symmetric-biphasic 250 µs (gap 50 µs) at 10 Hz; rate swept 2-10 Hz over 20 s (triangle); ramps 5 s up, 5 s down'
    """
    st = stimulus
    p = st.pulse
    if p.shape == "interferential":
        parts = [f"interferential ({p.mode}), carrier {p.carrier_frequency_hz:g} Hz, beat {p.beat_frequency_hz:g} Hz"]
    elif p.shape == "sine-burst":
        parts = [f"sine bursts of {p.carrier_frequency_hz:g} Hz at {p.frequency_hz:g} Hz, {p.burst_duty_percent:g} % duty"]
    else:
        gap = getattr(p, "interphase_gap_us", 0.0) or 0.0
        text = f"{p.shape} {getattr(p, 'pulse_width_us', 0.0):g} µs" + (f" (gap {gap:g} µs)" if gap else "")
        if p.shape == "monophasic" and (p.phase_shape == "spike" or p.twin_peak_spacing_us is not None):
            twin = p.twin_peak_spacing_us
            text = (f"monophasic {'twin-peak ' if twin is not None else ''}"
                    f"{'spikes' if p.phase_shape == 'spike' else 'pulses'} {p.pulse_width_us:g} µs"
                    + (f" ({twin:g} µs apart)" if twin is not None else ""))
        parts = [f"{text} at {p.frequency_hz:g} Hz"]
        if st.burst is not None:
            parts[0] += f" in bursts of {st.burst.pulses_per_burst} at {st.burst.burst_frequency_hz:g} Hz"
    for m in st.modulation:
        if m.kind == "frequency-sweep":
            parts.append(f"rate swept {m.low_hz:g}-{m.high_hz:g} Hz over {m.period_s:g} s ({m.profile})")
        elif m.kind == "random-frequency":
            parts.append(f"random rate {m.low_hz:g}-{m.high_hz:g} Hz")
        elif m.kind == "alternating-frequency":
            parts.append(f"rate alternating {'/'.join(f'{f:g}' for f in m.frequencies_hz)} Hz, {m.dwell_s:g} s each")
        elif m.kind == "amplitude-sweep":
            parts.append(f"amplitude swept {m.low_percent:g}-100 % over {m.period_s:g} s ({m.profile}"
                         + (f", {m.phase_deg:g}° against the rate)" if m.phase_deg else ")"))
        elif m.kind == "width-sweep":
            parts.append(f"width swept {m.low_percent:g}-100 % over {m.period_s:g} s ({m.profile}"
                         + (f", {m.phase_deg:g}° against the rate)" if m.phase_deg else ")"))
    if st.duty_cycle is not None:
        parts.append(f"{st.duty_cycle.on_s:g} s on / {st.duty_cycle.off_s:g} s off")
    if st.ramp_up_s or st.ramp_down_s:
        parts.append(f"ramps {st.ramp_up_s:g} s up, {st.ramp_down_s:g} s down")
    return "; ".join(parts)


def session_envelope(schedule: Schedule, bins: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Peak |current| of each output in equal time bins over the whole session.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Bin centres (s), shape (bins,), and the peak current (mA), shape (outputs, bins).
    """
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
    """Time (s) of the first pulse at full intensity (within the first minutes), and its duration (s)."""
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
            dur = float((c.first_width_us[k] + c.gap_us[k] + c.second_width_us[k]) * US)
    return best_t, dur


def _repetition_window(program: Program) -> float:
    """A window (s) that shows the pattern: a few pulses, bursts or beats."""
    st = program.channels[0].stimulus
    p = st.pulse
    if p.shape == "interferential":
        return 2.0 / st.nominal_repetition_hz
    if p.shape == "sine-burst" or st.burst is not None:
        return 2.0 / st.nominal_repetition_hz
    return min(4.0 / st.nominal_repetition_hz, 2.0)


def _channel_amplitudes(schedule: Schedule) -> list[float]:
    """Each channel's amplitude (mA) in a schedule (the first output of a channel)."""
    seen: dict[int, float] = {}
    for out, amp in zip(schedule.outputs, schedule.amplitudes_ma):
        seen.setdefault(out.channel_index, amp)
    return [seen[i] for i in sorted(seen)]


def amplitude_text(stimulus, amplitude_ma: float) -> str:
    """An amplitude as the channel is set: ``"40 mA"``, or for an output set in volts ``"150 V (750 mA into 200 Ω)"``.

    Parameters
    ----------
    stimulus : Stimulus
        The channel's stimulus (says whether it is set in volts).
    amplitude_ma : float
        The amplitude in mA (for an output set in volts, the current it drives into
        :data:`~electrostim.program.VOLTAGE_LOAD_OHM`).

    Examples
    --------
    >>> import electrostim as es
    >>> amplitude_text(es.load_program("hvpc-edema").channels[0].stimulus, 900.0)
    '180 V (900 mA into 200 Ω)'
    >>> amplitude_text(es.load_program("knee-oa-tens").channels[0].stimulus, 20.0)
    '20 mA'
    """
    if not stimulus.amplitude.voltage_controlled:
        return f"{amplitude_ma:g} mA"
    return f"{amplitude_ma * 1e-3 * VOLTAGE_LOAD_OHM:.4g} V ({amplitude_ma:g} mA into {VOLTAGE_LOAD_OHM:g} Ω)"


def _amplitude_line(program: Program, schedule: Schedule) -> str:
    """Each channel's amplitude at the level drawn, in mA (in V and mA for an output set in volts)."""
    per_channel: dict[str, float] = {}
    for out, amp in zip(schedule.outputs, schedule.amplitudes_ma):
        label = program.channels[out.channel_index].label
        per_channel[label] = max(per_channel.get(label, 0.0), amp)
    level = "explicit" if schedule.level not in ("default", "max") else schedule.level
    stimuli = {c.label: c.stimulus for c in program.channels}
    return f"amplitude ({level} level): " + ", ".join(f"{lbl} {amplitude_text(stimuli[lbl], a)}"
                                                      for lbl, a in per_channel.items())


def _parameter_lines(program: Program, limit: int = 4) -> list[str]:
    """One line per channel (the first ``limit``), with its stimulus in words; per phase for a multi-phase program
    (its first channel's stimulus)."""
    spans = program.phase_spans
    if len(spans) > 1:
        lines = []
        for span in spans[:8]:
            head = (f"{span.title} ({_duration_text(span.duration_s)}"
                    + (f", {span.intensity_percent:g} % intensity" if span.intensity_percent != 100 else "") + "): ")
            said = {stimulus_summary(c.stimulus) for c in span.program.channels}
            if len(said) == 1:  # every channel the same: said once
                lines += _wrap(head + (f"{span.program.channels[0].label}: " if len(program.channels) == 1
                                       else "every channel: ") + said.pop())
            else:
                lines += _wrap(head + "; ".join(f"{c.label}: {stimulus_summary(c.stimulus)}"
                                                for c in span.program.channels[:limit]))
        if len(spans) > 8:
            lines.append(f"... and {len(spans) - 8} more phases")
        return lines
    lines = [w for c in program.channels[:limit] for w in _wrap(f"{c.label}: {stimulus_summary(c.stimulus)}")]
    if len(program.channels) > limit:
        lines.append(f"... and {len(program.channels) - limit} more channels")
    return lines


#: the longest line of a figure's title (characters at its font size, the figure 10 inches wide)
_TITLE_WIDTH = 125


def _wrap(line: str) -> list[str]:
    """A title line wrapped to the figure's width (continuation lines indented)."""
    return textwrap.wrap(line, _TITLE_WIDTH, subsequent_indent="    ", break_on_hyphens=False) or [line]


def _duration_text(seconds: float) -> str:
    """``25 min``, ``1 h 30 min`` or ``32 s``: a duration as a person says it."""
    if seconds < 120:
        return f"{seconds:.4g} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.4g} min"
    h, m = divmod(round(minutes), 60)
    return f"{h} h {m} min" if m else f"{h} h"


def _legend(ax) -> None:
    """A legend outside the axes (right), only when there is more than one labelled curve."""
    handles, labels = ax.get_legend_handles_labels()
    if len(handles) > 1:
        ax.legend(handles, labels, **LEGEND_OUTSIDE)


def _modulation_panels(program: Program) -> list[tuple[str, object]]:
    """The modulations of the first channel that get a panel: (kind, modulation), frequency first."""
    st = program.channels[0].stimulus
    out: list[tuple[str, object]] = []
    if st.frequency_modulation is not None:
        out.append(("frequency", st.frequency_modulation))
    if st.amplitude_modulation is not None:
        out.append(("amplitude", st.amplitude_modulation))
    if st.width_modulation is not None:
        out.append(("width", st.width_modulation))
    return out


def _modulation_period_s(m) -> float:
    """One whole period of a modulation (s); a random rate gets a window of about 40 intervals."""
    if m.kind == "alternating-frequency":
        return m.dwell_s * len(m.frequencies_hz)
    if m.kind == "random-frequency":
        return 40.0 / ((m.low_hz + m.high_hz) / 2.0)
    return float(m.period_s)


def _rate_clock(schedule: Schedule, st, base_hz: float, m):
    """The clock of a rate modulation as the schedule runs it (a random sequence stretched to its period, a
    premodulated beat to whole cycles per sweep), else as written."""
    g = schedule._generators()[0]
    if getattr(g, "stim", None) == st:
        if st.pulse.shape != "interferential":
            return g.clock
        if getattr(g, "beat_clock", None) is not None:
            return g.beat_clock
    return make_clock(base_hz, m)


def _draw_modulation(ax, program: Program, schedule: Schedule, kind: str, m) -> None:
    """One whole period of a frequency, amplitude or width modulation of the first channel, in seconds."""
    st = program.channels[0].stimulus
    period = _modulation_period_s(m)
    amp = schedule.amplitudes_ma[0]
    if kind == "frequency":
        base_hz = st.pulse.beat_frequency_hz if st.pulse.shape == "interferential" else st.nominal_repetition_hz
        slowest_hz = min(m.frequencies_hz) if m.kind == "alternating-frequency" else m.low_hz
        t = _rate_clock(schedule, st, base_hz, m).times(0.0, period + 2.0 / slowest_hz)  # the last interval too
        rate = 1.0 / np.diff(t)
        if st.pulse.shape == "interferential":
            what = "beat rate"
        else:
            what = "burst rate" if st.burst is not None or st.pulse.shape == "sine-burst" else "pulse rate"
        ax.plot(t[:-1], rate, drawstyle="steps-post", lw=1.2, color="tab:purple")
        ax.set_ylabel(f"{what} (Hz)")
        ax.set_ylim(0, float(rate.max()) * 1.15)
        ax.set_title(f"{what} {_frequency_modulation_text(m)} at {amplitude_text(st, amp)}, one whole period ({period:g} s)",
                     fontsize=9)
    else:
        t = np.linspace(0.0, period, 801)
        factor = sweep_factor(m, t)
        if kind == "amplitude":
            ax.plot(t, amp * factor, lw=1.2, color="tab:purple")
            ax.set_ylabel("pulse amplitude (mA)")
            ax.set_ylim(0, amp * 1.15 if amp > 0 else 1.0)
            ax.set_title(f"amplitude sweep {m.low_percent:g}-100 % of {amplitude_text(st, amp)}, one whole period "
                         f"({period:g} s)", fontsize=9)
        else:
            width = float(getattr(st.pulse, "pulse_width_us", 0.0))
            ax.plot(t, width * factor, lw=1.2, color="tab:purple")
            ax.set_ylabel("pulse width (µs)")
            ax.set_ylim(0, width * 1.15)
            ax.set_title(f"pulse-width sweep {m.low_percent:g}-100 % of {width:g} µs, one whole period ({period:g} s)", fontsize=9)
    ax.set_xlim(0.0, period)
    ax.set_xlabel("time in the session (s)")


def _frequency_modulation_text(m) -> str:
    """A frequency modulation in words (for a panel title)."""
    if m.kind == "frequency-sweep":
        return f"swept {m.low_hz:g}-{m.high_hz:g} Hz ({m.profile})"
    if m.kind == "alternating-frequency":
        return f"alternating {'/'.join(f'{f:g}' for f in m.frequencies_hz)} Hz, {m.dwell_s:g} s each"
    return f"random {m.low_hz:g}-{m.high_hz:g} Hz"


def _draw_duty_cycle(ax, program: Program, schedule: Schedule) -> None:
    """Two on/off cycles of the first channel's envelope (ramps included), in seconds, on phases shaded."""
    st = program.channels[0].stimulus
    dc = st.duty_cycle
    assert dc is not None, "only a stimulus with a duty cycle has this panel"
    amp = schedule.amplitudes_ma[0]
    span = min(2.0 * dc.cycle_s, schedule.duration_s)
    t = np.linspace(0.0, span, 2001)
    env = duty_envelope(t, session_s=schedule.duration_s, ramp_up_s=st.ramp_up_s, ramp_down_s=st.ramp_down_s,
                        on_s=dc.on_s, off_s=dc.off_s, offset_s=0.0, periodic_offset=False)
    ax.plot(t, amp * env, lw=1.4, color="tab:green", label="peak current")
    start = 0.0
    while start < span:
        ax.axvspan(start, min(start + dc.on_s, span), color="tab:green", alpha=0.12, lw=0, label="on" if start == 0 else None)
        ax.text(start + min(dc.on_s, span - start) / 2, amp * 1.06 if amp > 0 else 0.5, "on", ha="center", va="bottom", fontsize=8)
        if start + dc.on_s < span and dc.off_s > 0:
            ax.text(start + dc.on_s + min(dc.off_s, span - start - dc.on_s) / 2, amp * 1.06 if amp > 0 else 0.5, "off",
                    ha="center", va="bottom", fontsize=8, color="0.4")
        start += dc.cycle_s
    ax.set_xlim(0.0, span)
    ax.set_ylim(0, amp * 1.2 if amp > 0 else 1.0)
    ax.set_xlabel("time in the cycle (s)")
    ax.set_ylabel("current (mA)")
    ax.set_title(f"duty cycle: {dc.on_s:g} s on (ramps {st.ramp_up_s:g} s up, {st.ramp_down_s:g} s down) / "
                 f"{dc.off_s:g} s off, at {amplitude_text(st, amp)}", fontsize=9)


@text_as_written
def plot_program(program: Program, path: str | os.PathLike[str] | None = None, level: str = "default", schedule: Schedule | None = None):
    """Draw a program: one pulse, a train, each modulation over a whole period, the duty cycle and the session.

    The title gives the amplitude of every channel in mA at the level drawn and each
    channel's stimulus in words. Panels, top down: one pulse at full intensity (µs); a
    train of a few pulses, bursts or beats (ms); one panel per frequency, amplitude or
    width modulation of the first channel, over one whole period (s); two on/off cycles
    of a duty cycle with the on phases shaded (s); the session's peak current (s, or
    min beyond 20 minutes without a duty cycle). Legends sit outside the axes, to the right.

    Parameters
    ----------
    program : Program
    path : str or path-like, optional
        Write the figure there (PNG, SVG, PDF by suffix), the file appearing only when
        complete; the folder must exist.
    level : {"default", "max"}
        Which amplitude to draw.
    schedule : Schedule, optional
        A schedule of the program to draw instead (for explicit amplitudes).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    OptionError
        A bad ``level``, or a ``path`` in a folder that does not exist.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    whole = program
    whole_sched = schedule or Schedule(program, level=level)
    sched = whole_sched
    phase_note = ""
    if len(whole.phase_spans) > 1:  # the detail panels draw one phase; the session panel draws them all
        main = whole.main_phase  # the detail panels draw the work phase
        program = main.program
        sched = Schedule(program, amplitude_ma={c.label: a for c, a in zip(program.channels, _channel_amplitudes(whole_sched))})
        phase_note = f"{main.title}: "
    st0 = program.channels[0].stimulus
    modulations = _modulation_panels(program)
    has_duty = st0.duty_cycle is not None
    n_panels = 3 + len(modulations) + int(has_duty)
    fig, axes = plt.subplots(n_panels, 1, figsize=(10, 2.7 * n_panels + 1.2), constrained_layout=True)
    title = [whole.name, f"{whole.id} — {whole.modality.value}; {_amplitude_line(whole, whole_sched)}", *_parameter_lines(whole)]
    fig.suptitle("\n".join(title), fontsize=9.5)
    t_pulse, dur = _first_full_pulse(sched)
    shape = st0.pulse.shape
    sine = shape in ("sine-burst", "interferential")
    curved = sine or getattr(st0.pulse, "phase_shape", "rectangular") == "spike"  # drawn as a curve, not in steps

    # 1. one pulse (or a few carrier cycles)
    ax = axes[0]
    span = dur * (3.0 if sine else 1.0)
    pad = max(span * 0.25, 20e-6)
    a, b = max(0.0, t_pulse - pad), min(sched.duration_s, t_pulse + span + pad)
    fs = min(2e8, max(1e6, 400 / max(b - a, 1e-9)))
    r = render(sched, a, b, fs, dtype=np.float64)
    for i, lbl in enumerate(r.labels[:_MAX_TRACES]):
        ax.plot((r.time_s - t_pulse) / US, r.current_ma[i], lw=1.4, label=lbl, drawstyle="default" if curved else "steps-post")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("time from pulse start (µs)")
    ax.set_ylabel("current (mA)")
    what = "a few carrier cycles" if sine else "one pulse"
    ax.set_title(f"{phase_note}{what} at full intensity ({amplitude_text(st0, sched.amplitudes_ma[0])})", fontsize=9)
    _legend(ax)

    # 2. a train
    ax = axes[1]
    w = _repetition_window(program)
    a, b = t_pulse, min(sched.duration_s, t_pulse + w)
    if b <= a:
        a, b = 0.0, min(sched.duration_s, w)
    fs = min(5e6, max(2e4, 20 / max(sched.max_pulse_duration_s, 1e-6) if sine else 4e5))
    fs = min(fs, 400_000 / max(b - a, 1e-9))
    r = render(sched, a, b, fs, dtype=np.float64)
    for i, lbl in enumerate(r.labels[:_MAX_TRACES]):
        ax.plot((r.time_s - a) / MS, r.current_ma[i], lw=0.8, label=lbl)
    if shape == "interferential" and len(r.labels) >= 2 and getattr(st0.pulse, "mode", None) == "quadripolar":
        ax.plot((r.time_s - a) / MS, r.current_ma[0] + r.current_ma[1], lw=0.6, color="k", alpha=0.5, label="sum where circuits cross")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("current (mA)")
    ax.set_title(f"{phase_note}pulse train at {amplitude_text(st0, sched.amplitudes_ma[0])}", fontsize=9)
    _legend(ax)

    # 3. each modulation over one whole period; the duty cycle over two cycles
    k = 2
    for kind, m in modulations:
        _draw_modulation(axes[k], program, sched, kind, m)
        axes[k].set_title(phase_note + axes[k].get_title(), fontsize=9)
        k += 1
    if has_duty:
        _draw_duty_cycle(axes[k], program, sched)
        axes[k].set_title(phase_note + axes[k].get_title(), fontsize=9)
        _legend(axes[k])
        k += 1

    # 4. the whole session
    ax = axes[k]
    spans = whole.phase_spans
    sched = whole_sched
    centres, peak = session_envelope(sched)
    dc = st0.duty_cycle if len(spans) == 1 else None
    # seconds, as every envelope; minutes only for long sessions without an on/off cycle
    scale, unit = (60.0, "min") if sched.duration_s > 1200 and dc is None else (1.0, "s")
    for i, o in enumerate(sched.outputs):
        ax.plot(centres / scale, peak[i], lw=1.0, label=o.label)
    if dc is not None and sched.duration_s / dc.cycle_s <= _MAX_SHADED_CYCLES:
        for j, start in enumerate(np.arange(0.0, sched.duration_s, dc.cycle_s)):
            ax.axvspan(start / scale, min(start + dc.on_s, sched.duration_s) / scale, color="tab:green", alpha=0.10, lw=0,
                       label="on (first channel)" if j == 0 else None)
    if len(spans) > 1:
        top = float(peak.max()) if peak.size else 0.0
        for phase in spans:
            ax.axvspan(phase.start_s / scale, phase.stop_s / scale, color="0.5" if phase.index % 2 else "tab:blue",
                       alpha=0.08, lw=0)
            ax.axvline(phase.start_s / scale, color="0.4", lw=0.6, ls=":")
            ax.text((phase.start_s + phase.duration_s / 2) / scale, top * 1.04 if top > 0 else 0.5, phase.name,
                    ha="center", va="bottom", fontsize=8, clip_on=True)
        ax.set_ylim(0, top * 1.2 if top > 0 else 1.0)
    ax.set_xlabel(f"time in the session ({unit})")
    ax.set_ylabel("peak current (mA)")
    what = f"{len(spans)} phases, " if len(spans) > 1 else ""
    ax.set_title(f"session envelope: {_duration_text(sched.duration_s)}, {what}ramps, on/off and modulation", fontsize=9)
    ax.set_xlim(0, sched.duration_s / scale)
    if len(spans) == 1:
        ax.set_ylim(bottom=0)
    if len(sched.outputs) <= 8:
        _legend(ax)

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
