"""Nerve fibre models and the threshold engine.

Fibre models are data (``models.toml``) plus equations (the private kernel); the
kernel integrates any of them, many lanes (fibres × amplitudes) at once.

Examples
--------
>>> from electrostim.physics.fibres import PointSourceCase, point_source_thresholds
>>> r = point_source_thresholds([PointSourceCase(model="mrg", diameter_um=10.0, distance_um=1000.0)])[0]
>>> round(r.threshold_a * 1e6)
120
"""

from ._experiments import (
    PointSourceCase,
    SDFit,
    conduction_velocity,
    fit_strength_duration,
    point_source_thresholds,
    pulse_wave,
    strength_duration,
)
from ._geometry import FIBRE_MODELS, Cable, build_cable, mrg_geometry
from ._simulate import Outcome, RestState, rest_state, run_lanes
from ._threshold import BlockError, Case, ThresholdResult, find_thresholds
from ._waveforms import schedule_wave

__all__ = [
    "FIBRE_MODELS",
    "BlockError",
    "Cable",
    "Case",
    "Outcome",
    "PointSourceCase",
    "RestState",
    "SDFit",
    "ThresholdResult",
    "build_cable",
    "conduction_velocity",
    "find_thresholds",
    "fit_strength_duration",
    "mrg_geometry",
    "point_source_thresholds",
    "pulse_wave",
    "rest_state",
    "run_lanes",
    "schedule_wave",
    "strength_duration",
]
