"""Describe a therapy: programs, the preset library and the patient profile.

Examples
--------
>>> from electrostim.program import load_program
>>> p = load_program("knee-oa-tens")
>>> [c.label for c in p.channels]
['knee-1']
"""

from ._format import MAX_NESTING
from ._io import MAX_FILE_BYTES, format_validation_error, load_patient_file, load_program_file, validate_program
from ._library import (
    PROGRAM_PATH_ENV,
    ProgramEntry,
    ProgramProblem,
    list_programs,
    load_program,
    program_dirs,
    user_program_problems,
)
from ._models import (
    MAX_AMPLITUDE_MA,
    MAX_PAD_CM,
    MAX_VOLTAGE_V,
    PULSED_SHAPES,
    VOLTAGE_LOAD_OHM,
    AlternatingFrequency,
    Amplitude,
    AmplitudeSweep,
    AsymmetricBiphasic,
    Burst,
    Channel,
    Citation,
    DutyCycle,
    Electrode,
    Evidence,
    FrequencySweep,
    Interferential,
    Modality,
    Monophasic,
    Output,
    Phase,
    PhaseChannel,
    PhaseSpan,
    Placement,
    Program,
    RandomFrequency,
    SineBurst,
    Stimulus,
    SymmetricBiphasic,
    WidthSweep,
)
from ._patient import CONDITIONS, Condition, Patient

__all__ = [
    "PULSED_SHAPES",
    "PROGRAM_PATH_ENV",
    "MAX_AMPLITUDE_MA",
    "MAX_FILE_BYTES",
    "MAX_NESTING",
    "MAX_PAD_CM",
    "MAX_VOLTAGE_V",
    "VOLTAGE_LOAD_OHM",
    "CONDITIONS",
    "AlternatingFrequency",
    "Amplitude",
    "AmplitudeSweep",
    "AsymmetricBiphasic",
    "Burst",
    "Channel",
    "Citation",
    "Condition",
    "DutyCycle",
    "Electrode",
    "Evidence",
    "FrequencySweep",
    "Interferential",
    "Modality",
    "Monophasic",
    "Output",
    "Patient",
    "Phase",
    "PhaseChannel",
    "PhaseSpan",
    "Placement",
    "Program",
    "ProgramEntry",
    "ProgramProblem",
    "RandomFrequency",
    "SineBurst",
    "Stimulus",
    "SymmetricBiphasic",
    "WidthSweep",
    "format_validation_error",
    "list_programs",
    "load_patient_file",
    "load_program",
    "load_program_file",
    "program_dirs",
    "user_program_problems",
    "validate_program",
]
