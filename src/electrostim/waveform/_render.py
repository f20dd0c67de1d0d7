"""Sampled rendering of a schedule: current of each output at a chosen rate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import OptionError
from ._schedule import SHAPE_SINE, SHAPE_SPIKE, SPIKE_TIME_CONSTANTS, PulseChunk, Schedule

__all__ = ["Rendered", "render", "render_chunk"]

#: Refuse to allocate more than this many samples in one call (use export, which streams).
MAX_SAMPLES = 500_000_000


@dataclass(frozen=True)
class Rendered:
    """Sampled current: ``current_ma[output, sample]`` at ``start_s + i / sample_rate_hz``."""

    start_s: float
    sample_rate_hz: float
    labels: list[str]
    current_ma: np.ndarray

    @property
    def time_s(self) -> np.ndarray:
        """Sample times."""
        return self.start_s + np.arange(self.current_ma.shape[1]) / self.sample_rate_hz


def render_chunk(c: PulseChunk, start_s: float, n: int, fs: float, out: np.ndarray) -> None:
    """Write the pulses of one output (sorted by time) into ``out`` (length ``n``), sampling at ``fs``.

    A sample at time t takes the value of the phase with start ≤ t < end: its amplitude
    (rectangular), ``I sin(π (t - start) / w)`` (sine half-wave) or
    ``I exp(-3 (t - start) / w)`` (spike), for a phase of amplitude I and width w.
    """
    out[:] = 0
    if len(c) == 0 or n == 0:
        return
    b0 = c.time_s
    b1 = b0 + c.first_width_us * 1e-6
    b2 = b1 + c.gap_us * 1e-6
    b3 = b2 + c.second_width_us * 1e-6
    bt = np.stack([b0, b1, b2, b3], axis=1).ravel()
    # a boundary within 1e-6 of a sample instant counts as on it (time round-off)
    idx = np.clip(np.ceil((bt - start_s) * fs - 1e-6), 0, n).astype(np.int64)
    zero = np.zeros_like(c.first_amplitude_ma)
    vals = np.stack([c.first_amplitude_ma, zero, c.second_amplitude_ma, zero], axis=1).ravel()
    lengths = np.diff(np.concatenate([idx, [n]]))
    lead = int(idx[0])
    out[lead:] = np.repeat(vals, lengths)
    # shaped phases: a sine half-wave, or a spike's decay to e^-3 at the phase's end
    for code, shape in ((SHAPE_SINE, lambda f: np.sin(np.pi * f)), (SHAPE_SPIKE, lambda f: np.exp(-SPIKE_TIME_CONSTANTS * f))):
        mine = c.shape == code
        if not mine.any():
            continue
        seg = np.repeat(np.arange(vals.shape[0]), lengths)
        seg_on = np.repeat(mine, 4)
        seg_on[1::2] = False  # gaps and rests
        width = np.stack([c.first_width_us, zero, c.second_width_us, zero], axis=1).ravel() * 1e-6
        on = seg_on[seg]
        s = seg[on]
        t = start_s + (lead + np.nonzero(on)[0]) / fs
        # the fraction of its phase each sample lies at (time round-off never puts a sample before the start)
        frac = np.clip((t - bt[s]) / np.where(width[s] > 0, width[s], 1.0), 0.0, 1.0)
        view = out[lead:]
        view[on] = vals[s] * shape(frac)


def render(
    schedule: Schedule,
    start_s: float = 0.0,
    stop_s: float | None = None,
    sample_rate_hz: float = 100_000.0,
    dtype: type = np.float32,
) -> Rendered:
    """Render the current of every output between ``start_s`` and ``stop_s``.

    Examples
    --------
    >>> import electrostim as es
    >>> s = es.Schedule(es.load_program("nmes-quadriceps-tka"), level="max")
    >>> r = es.render(s, 5.0, 5.1, sample_rate_hz=100_000)
    >>> r.current_ma.shape, float(r.current_ma.min()), float(r.current_ma.max())
    ((1, 10000), -100.0, 100.0)
    """
    stop = schedule.duration_s if stop_s is None else stop_s
    if not (sample_rate_hz > 0 and math.isfinite(sample_rate_hz)):
        raise OptionError(f"Invalid value for 'sample_rate_hz': allowed > 0, but got {sample_rate_hz!r}.")
    if not (0 <= start_s < stop):
        raise OptionError(f"Invalid window: allowed 0 <= start_s < stop_s, but got start_s={start_s!r}, stop_s={stop!r}.")
    n = int(round((stop - start_s) * sample_rate_hz))
    n_out = len(schedule.outputs)
    if n * n_out > MAX_SAMPLES:
        raise OptionError(
            f"Window too large to render at once: {n * n_out} samples (allowed {MAX_SAMPLES}); shorten it, or export it "
            "to CSV (written block by block)."
        )
    data: np.ndarray = np.zeros((n_out, n), dtype=dtype)
    margin = schedule.max_pulse_duration_s
    parts_by_output: list[list[PulseChunk]] = [[] for _ in range(n_out)]
    for parts in schedule.output_chunks(max(0.0, start_s - margin), stop):
        for i, c in enumerate(parts):
            parts_by_output[i].append(c)
    for i in range(n_out):
        c = PulseChunk.concatenate(parts_by_output[i], start_s, stop)
        render_chunk(c, start_s, n, sample_rate_hz, data[i])
    return Rendered(start_s, float(sample_rate_hz), [o.label for o in schedule.outputs], data)
