"""Deliver an approved plan: the session state machine.

Examples
--------
>>> import electrostim as es
>>> from electrostim.devices._simulated import SimulatedStimulator
>>> from electrostim.session import Runner
>>> plan = es.assess(es.load_program("knee-oa-tens")).approve()
>>> dev = SimulatedStimulator(); dev.connect(); dev.configure(plan)
>>> r = Runner(dev, duration_s=20.0)
>>> r.run(step_s=0.1, speed=float("inf")).value
'completed'
"""

from ..devices import BACKENDS, backend_help, backend_profile, open_emulator, open_stimulator
from ._deliver import END_STATES, EXIT_CODES, HANDLED_SIGNALS, MAX_SPEED, SessionResult, check_store, deliver, parse_backend
from ._runner import (
    DEFAULT_END_RAMP_S,
    MAX_START_RAMP_S,
    MAX_STEP_S,
    MIN_DURATION_S,
    MIN_STEP_S,
    Runner,
    SessionError,
    SessionState,
    check_number,
    program_ends_itself,
    program_ramps,
)
from ._timeline import intensity_at, intensity_timeline

__all__ = ["BACKENDS", "DEFAULT_END_RAMP_S", "END_STATES", "EXIT_CODES", "HANDLED_SIGNALS", "MAX_SPEED", "MAX_START_RAMP_S", "MAX_STEP_S", "MIN_DURATION_S", "MIN_STEP_S",
           "Runner", "SessionError", "SessionResult", "SessionState", "backend_help", "backend_profile", "check_number", "check_store", "deliver",
           "intensity_at", "intensity_timeline", "open_emulator", "open_stimulator", "parse_backend", "program_ends_itself", "program_ramps"]
