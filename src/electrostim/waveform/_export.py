"""Export the sampled waveform to CSV or NumPy .npz, atomically (a file is whole or absent)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import OptionError, check_option, check_output_file
from ._render import render
from ._schedule import Schedule

__all__ = ["export_waveform", "export_size_bytes", "check_export_window", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("csv", "npz")
_BLOCK_S = 1.0


def _atomic_target(path: Path):
    """A temporary file beside ``path`` (whose folder must exist: none is created)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    return fd, Path(tmp)


#: bytes a CSV sample takes, about: the time (a number with 9 decimals) and per output a number of 6 digits
_CSV_TIME_BYTES, _CSV_VALUE_BYTES = 15, 10


def export_size_bytes(n_outputs: int, duration_s: float, sample_rate_hz: float, fmt: str) -> int:
    """About how many bytes an export writes (to say it before writing).

    Examples
    --------
    >>> round(export_size_bytes(2, 100.0, 100_000.0, "csv") / 1e6)
    350
    >>> export_size_bytes(2, 1.0, 1000.0, "npz") > 8000
    True
    """
    n = int(round(duration_s * sample_rate_hz))
    if fmt == "npz":
        return 4 * n * n_outputs + 1024
    return n * (_CSV_TIME_BYTES + _CSV_VALUE_BYTES * n_outputs)


def check_export_window(schedule: Schedule, fmt: str, start_s: float, duration_s: float, sample_rate_hz: float) -> float:
    """Check an export's window before anything is written; returns its end (s).

    Raises
    ------
    OptionError
        The window does not lie in the session (it is never clipped), or an .npz
        would hold more samples than one rendering makes.
    """
    end = schedule.duration_s
    if not (0 <= start_s < end):
        raise OptionError(f"Invalid window: start_s must lie in the session (0 to {end:g} s), but got {start_s!r}.")
    if start_s + duration_s > end * (1 + 1e-12):  # never clipped: what is asked is written, or nothing
        raise OptionError(f"Invalid window: it must end within the session ({end:g} s): allowed start_s + duration_s "
                          f"<= {end:g} s (duration_s <= {end - start_s:g} s from {start_s:g} s), but got "
                          f"{start_s:g} + {duration_s:g} = {start_s + duration_s:g} s.")
    stop_s = min(start_s + duration_s, end)
    if int(round((stop_s - start_s) * sample_rate_hz)) < 1:
        raise OptionError(f"Invalid window: {duration_s:g} s at {sample_rate_hz:g} Hz holds no sample: allowed "
                          f"duration_s >= {0.5 / sample_rate_hz:g} s at this rate, but got {duration_s:g}.")
    if fmt == "npz":
        from ._render import MAX_SAMPLES

        n = int(round((stop_s - start_s) * sample_rate_hz)) * len(schedule.outputs)
        if n > MAX_SAMPLES:
            raise OptionError(f"Invalid window for .npz: {n} samples, allowed {MAX_SAMPLES} (an .npz is made in "
                              "memory); shorten it, or export to .csv, which is written block by block.")
    return stop_s


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
    stop_s = check_export_window(schedule, fmt, start_s, duration_s, sample_rate_hz)
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
