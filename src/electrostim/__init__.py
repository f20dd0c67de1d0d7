"""electrostim: electrical stimulation therapy through skin electrodes.

Describe a therapy (program, placement, patient), check it (exact pulse train, dose,
safety), and later predict, deliver and record it.

Examples
--------
>>> import electrostim as es
>>> program = es.load_program("knee-oa-tens")
>>> dose = es.compute_dose(program, level="max")
>>> round(dose.outputs[0].max_phase_charge_uc, 2)
5.0
>>> es.assess(program).verdict
'ok'
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # describe
    "Program": "electrostim.program",
    "Patient": "electrostim.program",
    "load_program": "electrostim.program",
    "load_patient_file": "electrostim.program",
    "list_programs": "electrostim.program",
    "validate_program": "electrostim.program",
    # check
    "Schedule": "electrostim.waveform",
    "PulseChunk": "electrostim.waveform",
    "Dose": "electrostim.waveform",
    "compute_dose": "electrostim.waveform",
    "render": "electrostim.waveform",
    "export_waveform": "electrostim.waveform",
    "plot_program": "electrostim.waveform",
    "assess": "electrostim.safety",
    "Assessment": "electrostim.safety",
    "ApprovedPlan": "electrostim.safety",
    "get_device": "electrostim.safety",
    # errors
    "ElectrostimError": "electrostim.errors",
    "InvalidInputError": "electrostim.errors",
    "ProgramError": "electrostim.errors",
    "SafetyError": "electrostim.errors",
    "RefusedError": "electrostim.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'electrostim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
