"""RehaStim2: outputs at a whole multiple of the shortest period run as low-frequency channels.

The protocol runs every channel of its list at one main interval; channels in the
low-frequency mask fire every (factor + 1)-th main interval. A program with one output
at 5 Hz and one at 5/3 Hz is delivered with a 200 ms main interval, factor 2 and the
slow output in the mask (the case of the issue), and so is every pair of rates whose
periods are on the device's grid and in a ratio of 1 to 8.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import electrostim as es
from electrostim.devices import RehaStim2, RehaStim2Emulator


def two_rates(fast_hz: float, slow_hz: float) -> es.Program:
    """``knee-oa-tens`` on two outputs (symmetric biphasic, 100 µs gap) at these rates."""
    data = es.load_program("knee-oa-tens").model_dump(mode="python")
    first = data["channels"][0]
    first["stimulus"]["ramp_up_s"] = first["stimulus"]["ramp_down_s"] = 0.0
    chans = []
    for label, rate in (("slow", slow_hz), ("fast", fast_hz)):
        ch = copy.deepcopy(first)
        ch["label"] = label
        ch["stimulus"]["pulse"].update(frequency_hz=rate, interphase_gap_us=100.0)
        chans.append(ch)
    data["channels"] = chans
    return es.validate_program(data, source="two rates")


def _init_message(emu):
    return [m for _, m in emu.received if type(m).__name__ == "Sm2InitChannelListMode"][-1]


def test_5_and_5_thirds_hz_run_as_a_main_and_a_low_frequency_channel():
    a = es.assess(two_rates(5.0, 5.0 / 3.0), device="rehastim2")
    assert a.verdict != "refused", a.reasons
    plan = a.approve(confirm=True, confirmed_by="test")
    with RehaStim2Emulator() as emu, RehaStim2(emu.port) as dev:
        dev.connect()
        dev.configure(plan)
        init = _init_message(emu)
        assert (init.main_interval_ms, init.low_frequency_factor, init.low_frequency_channels) == (200.0, 2, (1,))
        dev.start()
        dev.set_intensity("slow", 10.0)
        dev.set_intensity("fast", 10.0)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:  # until the slow channel has fired four times
            if int((emu.emitted().output == 1).sum()) >= 4:
                break
            dev.heartbeat()
            time.sleep(0.02)
        dev.stop()
        pulses = emu.emitted()
    slow = np.diff(pulses.time_s[pulses.output == 1])
    fast = np.diff(pulses.time_s[pulses.output == 2])
    assert len(slow) >= 3 and np.allclose(slow, 0.6, atol=1e-6), slow
    assert len(fast) >= 9 and np.allclose(fast, 0.2, atol=1e-6), fast


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(main_code=st.integers(14, 398), k=st.integers(1, 8))
def test_every_whole_ratio_on_the_grid_is_delivered(main_code, k):
    """Main periods on the 0.5 ms grid (8 to 200 ms) and a second output k times slower: the check passes it and
    the driver configures it, with the slow output in the low-frequency mask at factor k - 1."""
    main_ms = 0.5 * main_code + 1.0
    program = two_rates(1000.0 / main_ms, 1000.0 / (main_ms * k))
    a = es.assess(program, device="rehastim2")
    assert a.verdict != "refused", a.reasons
    plan = a.approve(confirm=True, confirmed_by="test")
    with RehaStim2Emulator() as emu, RehaStim2(emu.port) as dev:
        dev.connect()
        dev.configure(plan)
        init = _init_message(emu)
    assert init.main_interval_ms == pytest.approx(main_ms, abs=1e-9)
    assert init.low_frequency_factor == k - 1
    assert init.low_frequency_channels == ((1,) if k > 1 else ())
