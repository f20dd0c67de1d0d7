"""The stimulator interface on the simulated stimulator: only approved plans, never outside the envelope, safe stops."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import electrostim as es
from electrostim.devices._simulated import SimulatedStimulator
from electrostim.devices._stimulator import DeviceError, DeviceState
from electrostim.errors import SafetyError


def running(pid="knee-oa-tens", **kw):
    plan = es.assess(es.load_program(pid)).approve(**kw)
    dev = SimulatedStimulator()
    dev.connect()
    dev.configure(plan)
    dev.start()
    return dev, plan


def test_only_an_approved_plan_for_this_device():
    dev = SimulatedStimulator()
    dev.connect()
    with pytest.raises(SafetyError, match="only an ApprovedPlan"):
        dev.configure(es.load_program("knee-oa-tens"))  # type: ignore[arg-type]
    other = es.assess(es.load_program("nmes-quadriceps-tka"), device="p24").approve()
    with pytest.raises(SafetyError, match="approved for device 'p24'"):
        dev.configure(other)


def test_intensity_outside_the_envelope_is_refused_and_not_applied():
    dev, plan = running()
    top = plan.envelope.outputs[0].max_amplitude_ma
    assert dev.set_intensity("knee-1", top) == top
    with pytest.raises(SafetyError, match="outside the approved envelope"):
        dev.set_intensity("knee-1", top + 0.5)
    assert dev.status().intensity_ma["knee-1"] == top


def test_pulses_follow_the_schedule_and_pause_stops_them():
    dev, plan = running("nmes-quadriceps-tka")
    dev.set_intensity("quadriceps", 30.0)
    dev.advance(15.0)  # the first on-time: 15 s at 50 Hz, less the pulses at zero ramp
    first = dev.status().pulses_delivered
    expected = len(es.Schedule(plan.program).pulses(0.0, 15.0))
    assert first == expected
    dev.pause()
    dev.advance(60.0)
    assert dev.status().pulses_delivered == first
    assert dev.charge_delivered_uc()["quadriceps"] > 0


def test_a_peeling_pad_stops_stimulation_with_an_electrode_error():
    dev, _ = running()
    dev.set_intensity("knee-1", 20.0)
    dev.advance(1.0)
    z0 = dev.status().impedance_ohm["knee-1"]
    dev.peel("knee-1", 0, 0.1)
    assert dev.status().impedance_ohm["knee-1"] > z0
    with pytest.raises(DeviceError, match="electrode error"):
        dev.advance(1.0)
    s = dev.status()
    assert s.state == DeviceState.FAULT and s.intensity_ma["knee-1"] == 0.0 and "electrode error" in s.error


def test_a_vanished_device_ends_in_a_safe_stop():
    dev, _ = running()
    dev.set_intensity("knee-1", 10.0)
    dev.disconnected = True
    with pytest.raises(DeviceError, match="not responding"):
        dev.advance(0.5)
    assert dev.state == DeviceState.FAULT and dev.status().intensity_ma["knee-1"] == 0.0
    dev.stop()  # stopping a faulted device is allowed and safe


def test_states_are_enforced():
    dev = SimulatedStimulator()
    with pytest.raises(DeviceError, match="Cannot start a stimulator that is disconnected"):
        dev.start()
    dev.connect()
    with pytest.raises(DeviceError, match="No plan is configured"):
        dev.set_intensity(0, 1.0)


PRESETS = ["knee-oa-tens", "tens-conventional", "nmes-quadriceps-tka", "russian-current", "ifc-knee"]


@settings(max_examples=40, deadline=None)
@given(pid=st.sampled_from(PRESETS), keys=st.lists(st.tuples(st.sampled_from(["up", "down", "jump"]), st.floats(0, 300)),
                                                      max_size=60))
def test_commanded_output_never_leaves_the_envelope(pid, keys):
    dev, plan = running(pid)
    env = plan.envelope.outputs
    for key, value in keys:
        for o in env:
            now = dev.status().intensity_ma[o.label]
            target = {"up": now + 1.0, "down": max(0.0, now - 1.0), "jump": value}[key]
            try:
                dev.set_intensity(o.label, target)
            except SafetyError:
                pass
            got = dev.status().intensity_ma[o.label]
            assert 0.0 <= got <= o.max_amplitude_ma
