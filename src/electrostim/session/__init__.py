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
'done'
"""

from ._runner import Runner, SessionError, SessionState

__all__ = ["Runner", "SessionError", "SessionState"]
