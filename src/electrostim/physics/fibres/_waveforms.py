"""Drive fibres with any waveform the pulse-train layer produces."""

from __future__ import annotations

import numpy as np

from ...errors import OptionError
from ...waveform import Schedule, render

__all__ = ["schedule_wave"]


def schedule_wave(schedule: Schedule, start_s: float, duration_s: float, dt_s: float, outputs: list[int] | None = None,
                  lead_s: float = 1e-4) -> np.ndarray:
    """Sample a schedule's current for the fibre kernel: ``[output, step]``, in units of each output's amplitude.

    The current of each output is rendered at the kernel's time step (the value at the
    start of each step, as the kernel applies it) from ``start_s`` for ``duration_s``,
    after ``lead_s`` of no stimulus so that the fibre starts at rest, and divided by the
    output's amplitude so that the threshold search can scale it: a threshold of ``x``
    then means ``x`` times the program's amplitude for that output.
    """
    if dt_s <= 0 or duration_s <= 0:
        raise OptionError(f"Invalid window: dt_s and duration_s must be > 0, but got {dt_s!r} and {duration_s!r}.")
    outs = list(range(len(schedule.outputs))) if outputs is None else outputs
    r = render(schedule, start_s, start_s + duration_s, 1.0 / dt_s, dtype=np.float64)
    lead = int(round(lead_s / dt_s))
    wave = np.zeros((len(outs), lead + r.current_ma.shape[1]))
    for k, o in enumerate(outs):
        amp = schedule.amplitudes_ma[o]
        if amp <= 0:
            raise OptionError(f"Output {schedule.outputs[o].label!r} has amplitude 0 mA: nothing to scale.")
        wave[k, lead:] = r.current_ma[o] / amp
    return wave
