"""Check a therapy: the exact pulse schedule, its sampled rendering, its dose, figures and export.

Examples
--------
>>> import electrostim as es
>>> p = es.load_program("tens-conventional")
>>> d = es.compute_dose(p, level="max")
>>> d.outputs[0].max_pulse_rate_hz
100.0
"""

from ._dose import (
    DEFAULT_LOAD_OHM,
    RATE_BANDS_HZ,
    WINDOW_S,
    Dose,
    ElectrodeDose,
    OutputDose,
    compute_dose,
    pulse_terms,
    shared_dose_figures,
)
from ._schedule import SHAPE_RECT, SHAPE_SINE, SHAPE_SPIKE, PulseChunk, Schedule, schedule

__all__ = [
    "DEFAULT_LOAD_OHM",
    "RATE_BANDS_HZ",
    "WINDOW_S",
    "SHAPE_RECT",
    "SHAPE_SINE",
    "SHAPE_SPIKE",
    "Dose",
    "ElectrodeDose",
    "OutputDose",
    "PulseChunk",
    "Schedule",
    "compute_dose",
    "pulse_terms",
    "schedule",
    "shared_dose_figures",
    "render",
    "export_waveform",
    "plot_program",
    "save_figure",
    "text_as_written",
]


def __getattr__(name: str):
    # rendering, export and figures load on first use (matplotlib is slow to import)
    if name == "render":
        from ._render import render

        return render
    if name == "export_waveform":
        from ._export import export_waveform

        return export_waveform
    if name in ("plot_program", "save_figure", "text_as_written"):
        from . import _plot

        return getattr(_plot, name)
    raise AttributeError(name)
