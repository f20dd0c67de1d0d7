"""Export the sampled waveform to CSV or NumPy .npz, atomically (a file is whole or absent)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import OptionError, check_option, check_output_file
from ._render import render
from ._schedule import Schedule

__all__ = ["export_waveform", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("csv", "npz")
_BLOCK_S = 1.0


def _atomic_target(path: Path):
    """A temporary file beside ``path`` (whose folder must exist: none is created)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    return fd, Path(tmp)


def export_waveform(
    schedule: Schedule,
    path: str | os.PathLike[str],
    fmt: str | None = None,
    start_s: float = 0.0,
    duration_s: float = 1.0,
    sample_rate_hz: float = 100_000.0,
    progress=None,
) -> Path:
    """Write the sampled current of every output to ``path``.

    CSV: a header ``time_s,<label>_ma,...`` and one row per sample, written block by
    block so that long windows never sit in memory. NPZ: arrays ``current_ma``
    (outputs × samples, float32), ``sample_rate_hz``, ``start_s`` and ``labels``.
    The file appears only when complete, and its folder must exist (none is created).

    Parameters
    ----------
    progress : callable, optional
        Called with the fraction done (0..1) after each block.
    """
    path = Path(path)
    fmt = check_option("format", fmt or path.suffix.lstrip(".").lower(), EXPORT_FORMATS)
    if duration_s <= 0:
        raise OptionError(f"Invalid value for 'duration_s': allowed > 0, but got {duration_s!r}.")
    stop_s = min(start_s + duration_s, schedule.duration_s)
    if not (0 <= start_s < stop_s):
        raise OptionError(
            f"Invalid window: start_s must lie in the session (0 to {schedule.duration_s:g} s), but got {start_s!r}."
        )
    check_output_file("path", path)
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            labels = [o.label for o in schedule.outputs]
            if fmt == "npz":
                r = render(schedule, start_s, stop_s, sample_rate_hz)
                np.savez(fh, current_ma=r.current_ma, sample_rate_hz=np.float64(sample_rate_hz),
                         start_s=np.float64(start_s), labels=np.array(labels))
                if progress:
                    progress(1.0)
            else:
                fh.write(("time_s," + ",".join(f"{lbl}_ma" for lbl in labels) + "\n").encode())
                n_total = int(round((stop_s - start_s) * sample_rate_hz))
                block = max(1, int(round(_BLOCK_S * sample_rate_hz)))
                for i0 in range(0, n_total, block):
                    i1 = min(n_total, i0 + block)
                    a = start_s + i0 / sample_rate_hz
                    b = start_s + i1 / sample_rate_hz
                    r = render(schedule, a, b, sample_rate_hz)
                    cols = np.column_stack([start_s + np.arange(i0, i0 + r.current_ma.shape[1]) / sample_rate_hz, r.current_ma.T])
                    np.savetxt(fh, cols, fmt=["%.9f"] + ["%.6g"] * len(labels), delimiter=",")
                    if progress:
                        progress(i1 / n_total)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
