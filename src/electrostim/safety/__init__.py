"""Check a therapy against limits, device capabilities and contraindications.

:func:`assess` is the only way to an :class:`ApprovedPlan`; devices and sessions accept
nothing else.

Examples
--------
>>> import electrostim as es
>>> a = es.assess(es.load_program("nmes-quadriceps-tka"), device="rehastim2")
>>> a.verdict, [r.rule for r in a.reasons]
('needs_confirmation', ['device.rehastim2.interphase-gap'])
"""

from ._assess import (
    VERDICTS,
    ApprovedPlan,
    Assessment,
    OutputEnvelope,
    PlanEnvelope,
    Reason,
    assess,
    asymmetric_second_phase,
    default_device,
)
from ._tables import DeviceProfile, device_profiles, get_device, limit_rules

__all__ = [
    "VERDICTS",
    "ApprovedPlan",
    "asymmetric_second_phase",
    "Assessment",
    "DeviceProfile",
    "OutputEnvelope",
    "PlanEnvelope",
    "Reason",
    "assess",
    "default_device",
    "device_profiles",
    "get_device",
    "limit_rules",
]
