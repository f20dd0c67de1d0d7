"""Deliver pulses: the stimulator interface, the simulated stimulator, and the HASOMED protocol codecs.

A stimulator accepts only an :class:`~electrostim.safety.ApprovedPlan` and checks every
intensity against its envelope before sending anything.
"""

from ._simulated import LoadModel, SimulatedStimulator
from ._stimulator import DeviceError, DeviceState, DeviceStatus, Stimulator

__all__ = [
    "DeviceError",
    "DeviceState",
    "DeviceStatus",
    "LoadModel",
    "SimulatedStimulator",
    "Stimulator",
]
