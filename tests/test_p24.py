"""The P24 driver against its pseudo-terminal emulator: a whole session, the protocol's timing, and faults.

Every fault must end in a safe stop: the driver in ``fault`` with an error that names
the cause, and zero output within 100 ms of the moment the fault could be seen (the
injection for garbage, a damaged checksum, a vanished port and an electrode error
once polled; the 100 ms deadline for an acknowledgement that is missing or late).
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

import electrostim as es
from electrostim.devices import (
    P24,
    DeviceError,
    DeviceState,
    OutputCommand,
    OutputState,
    P24Emulator,
    Sm4ChannelError,
    Sm4Codec,
    Sm4Command,
    Sm4GetDeviceId,
    Sm4GetStimStatus,
    Sm4MlChannel,
    Sm4MlGetCurrentData,
    Sm4MlGetCurrentDataAck,
    Sm4MlInit,
    Sm4MlStop,
    Sm4MlUpdate,
    Sm4MlUpdateAck,
    Sm4Point,
    Sm4RawPacket,
    Sm4Result,
    Sm4StimStatus,
)
from electrostim.devices._link import SerialLink
from electrostim.devices._sciencemode4.driver import SM4_SERIAL, p24_points
from electrostim.session import Runner

SAFE_STOP_S = 0.1


def _program(**pulse: object) -> es.Program:
    """tens-conventional without the program's own ramps, the right output at 50 Hz."""
    data = es.load_program("tens-conventional").model_dump(mode="python")
    for ch in data["channels"]:
        ch["stimulus"]["ramp_up_s"] = ch["stimulus"]["ramp_down_s"] = 0.0
        ch["stimulus"]["pulse"].update(pulse)
    data["channels"][1]["stimulus"]["pulse"]["frequency_hz"] = 50.0
    return es.validate_program(data)


@pytest.fixture(scope="module")
def plan() -> es.ApprovedPlan:
    return es.assess(_program(), device="p24").approve()


@pytest.fixture
def emu():
    with P24Emulator() as e:
        yield e


def _wait(condition, timeout_s: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return condition()


def _running(emu: P24Emulator, plan: es.ApprovedPlan, ma: float = 10.0) -> P24:
    dev = P24(emu.port)
    dev.connect()
    dev.configure(plan)
    dev.start()
    for label in ("low-back-left", "low-back-right"):
        dev.set_intensity(label, ma)
    assert _wait(lambda: {ch: o.current_ma for ch, o in emu.outputs.items()} == {1: ma, 2: ma})
    return dev


def _zero_logged_at(dev: P24, since: float) -> float:
    """When the driver's command log first shows every output at zero, at or after ``since``."""
    for stamp, commands in dev.command_log:
        if stamp >= since and all(c.current_ma == 0 for c in commands.values()):
            return stamp
    raise AssertionError(f"no zero command after {since}: {dev.command_log[-3:]}")


# --------------------------------------------------------------------------- pulse shapes and codec


def _stim(pulse: dict, burst: dict | None = None) -> es.Program:
    base = {"frequency_hz": 50.0, **pulse}
    data = es.load_program("tens-conventional").model_dump(mode="python")
    st = data["channels"][0]["stimulus"]
    st["pulse"] = base
    st["burst"] = burst
    return es.validate_program(data).channels[0].stimulus


def _pairs(points) -> list[tuple[int, float]]:
    return [(p.pulse_width_us, p.current_ma) for p in points]


def test_points_follow_the_program_pulse_shape():
    sym = _stim({"shape": "symmetric-biphasic", "pulse_width_us": 200, "interphase_gap_us": 50})
    assert _pairs(p24_points(sym, 20.0, 200)) == [(200, -20.0), (50, 0.0), (200, 20.0)]
    sym_anodic = _stim({"shape": "symmetric-biphasic", "pulse_width_us": 200, "leading_phase": "anodic"})
    assert _pairs(p24_points(sym_anodic, 20.0, 150)) == [(150, 20.0), (150, -20.0)]  # no gap: no 0 mA point
    mono = _stim({"shape": "monophasic", "pulse_width_us": 100, "polarity": "anodic"})
    assert _pairs(p24_points(mono, 7.5, 100)) == [(100, 7.5)]
    twin = _stim({"shape": "monophasic", "pulse_width_us": 100, "twin_peak_spacing_us": 60})
    assert _pairs(p24_points(twin, 7.5, 100)) == [(100, -7.5), (60, 0.0), (100, -7.5)]


def test_asymmetric_second_phase_is_never_above_the_schedules():
    asym = _stim({"shape": "asymmetric-biphasic", "pulse_width_us": 300, "second_phase_ratio": 4})
    assert _pairs(p24_points(asym, 20.0, 300)) == [(300, -20.0), (1200, 5.0)]
    # 2.5 mA / 4 = 0.625 mA is not on the 0.5 mA grid: 0.5 mA for 1200 µs (less charge than the first phase)
    assert _pairs(p24_points(asym, 2.5, 300)) == [(300, -2.5), (1200, 0.5)]
    # the case found: 99.5 mA, 37 µs, ratio 3 -> 33.17 mA for 111 µs in the schedule; 33 mA for 111 µs delivered
    odd = _stim({"shape": "asymmetric-biphasic", "pulse_width_us": 37, "second_phase_ratio": 3, "interphase_gap_us": 55})
    assert _pairs(p24_points(odd, 99.5, 37)) == [(37, -99.5), (55, 0.0), (111, 33.0)]
    # a second phase longer than one point (4095 µs) takes several
    long = _stim({"shape": "asymmetric-biphasic", "pulse_width_us": 2000, "second_phase_ratio": 3, "frequency_hz": 20})
    assert _pairs(p24_points(long, 30.0, 2000)) == [(2000, -30.0), (4095, 10.0), (1905, 10.0)]


@given(current=st.integers(1, 260).map(lambda k: k / 2.0), width=st.integers(10, 1000),
       ratio=st.floats(1.0, 8.0).map(lambda r: round(r, 3)))
def test_any_asymmetric_second_phase_stays_within_the_schedules(current, width, ratio):
    """Current, width, charge and ∫i²dt of the delivered second phase never exceed the schedule's
    (``current / ratio`` for ``width × ratio``) where that current is at least one step."""
    asym = _stim({"shape": "asymmetric-biphasic", "pulse_width_us": width, "second_phase_ratio": ratio,
                  "frequency_hz": 10})
    pts = p24_points(asym, current, width)
    second = [p for p in pts[1:] if p.current_ma != 0]
    q2 = sum(p.pulse_width_us * abs(p.current_ma) for p in second)
    w2 = sum(p.pulse_width_us for p in pts[1:] if p.current_ma != 0 or len(second) == 0)
    assert q2 <= current * width + 1e-9
    assert w2 <= width * ratio + 1e-9
    if current / ratio >= 0.5:
        assert all(abs(p.current_ma) <= current / ratio + 1e-9 for p in second)
        assert sum(p.pulse_width_us * p.current_ma ** 2 for p in second) <= (current / ratio) ** 2 * width * ratio + 1e-6
    assert q2 >= current * width - (0.5 * width * ratio + current / ratio) - 1e-9  # within one step of balance


def test_burst_is_one_shape_per_period():
    burst = _stim({"shape": "symmetric-biphasic", "pulse_width_us": 100, "frequency_hz": 500},
                  {"pulses_per_burst": 3, "burst_frequency_hz": 2})
    assert _pairs(p24_points(burst, 10.0, 100)) == [(100, -10.0), (100, 10.0), (1800, 0.0)] * 2 + [
        (100, -10.0), (100, 10.0)]


def test_codec_numbers_packets_in_six_bits_and_matches_acknowledgements():
    codec = Sm4Codec()
    assert codec.packet_numbers == 64
    assert codec.is_ack_of(Sm4MlUpdateAck(), Sm4MlUpdate([]))
    assert not codec.is_ack_of(Sm4MlUpdateAck(), Sm4MlStop())
    unknown = Sm4RawPacket(Sm4Command.UNKNOWN_COMMAND, bytes([Sm4Result.INVALID_CMD_ERROR]))
    assert codec.is_ack_of(unknown, Sm4MlStop()) and codec.is_ack_of(unknown, None)
    assert not codec.is_ack_of(Sm4MlStop(), None)
    assert SM4_SERIAL == {"baudrate": 3_000_000, "parity": "N", "rtscts": True}


# --------------------------------------------------------------------------- connect and configure


def test_connect_reads_the_device_and_stops_a_stimulation_left_running(emu):
    emu.stim_status = Sm4StimStatus.ML_RUNNING
    emu.set_outputs({3: OutputState(12.0, 200)})
    with P24(emu.port) as dev:
        dev.connect()
        assert dev.device_id == "EMU0000001" and dev.firmware_version == (1, 0, 0)
        assert not emu.output_on and emu.stim_status == Sm4StimStatus.UNINITIALISED
        assert [type(m).__name__ for _, m in emu.received][:4] == [
            "Sm4GetDeviceId", "Sm4GetExtendedVersion", "Sm4GetStimStatus", "Sm4MlStop"]


def test_connect_to_a_silent_port_says_what_to_check():
    emu = P24Emulator()  # its port exists, but nothing answers
    try:
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match=r"no answer from a P24 on /dev/\S+ within 0.3 s: is it switched on"):
            P24(emu.port, connect_timeout_s=0.3).connect()
        assert time.monotonic() - t0 < 1.0
    finally:
        emu.close()


def test_a_burst_that_does_not_fit_in_16_points_is_refused_by_the_check_with_the_numbers():
    a = es.assess(es.load_program("tens-burst"), device="p24")
    assert a.verdict == "refused"
    (reason,) = [r for r in a.reasons if r.verdict == "refused"]
    assert reason.rule == "device.p24.shape-points" and "39 points" in reason.message and "takes 16" in reason.message


def test_update_carries_each_channel_period_and_shape(emu, plan):
    with _running(emu, plan, ma=12.5) as dev:
        update = emu.update
        assert [(c.channel, c.period_ms, c.ramp) for c in update.channels] == [(1, 10.0, 0), (2, 20.0, 0)]
        assert _pairs(update.channels[0].points) == [(80, -12.5), (20, 0.0), (80, 12.5)]
        assert emu.outputs == {1: OutputState(12.5, 80), 2: OutputState(12.5, 80)}
        assert dev.state == DeviceState.RUNNING
    assert not emu.output_on and emu.stim_status == Sm4StimStatus.UNINITIALISED


def test_period_is_rounded_up_never_faster_than_approved(emu):
    a = es.assess(es.load_program("edema-muscle-pump"), device="p24")  # 35 Hz: 28.57 ms
    assert [r.rule for r in a.reasons] == ["device.p24.period-step"] and "34.4828 Hz (29 ms)" in a.reasons[0].message
    plan = a.approve(confirm=True, confirmed_by="test")
    assert plan.program.channels[0].stimulus.pulse.frequency_hz == pytest.approx(1000 / 29)
    with P24(emu.port) as dev:
        dev.connect()
        dev.configure(plan)
        dev.start()
        assert [c.period_ms for c in emu.update.channels] == [29.0]


# --------------------------------------------------------------------------- a whole session


def test_session_ramps_up_runs_and_ends_at_zero(emu, plan):
    events: list[tuple[str, dict]] = []
    with P24(emu.port) as dev:
        dev.connect()
        dev.configure(plan)
        runner = Runner(dev, duration_s=2.0, ramp_s=0.5, slew_ma_per_s=30.0, on_event=lambda k, p: events.append((k, p)))
        t0 = time.monotonic()
        assert runner.run(step_s=0.05).value == "completed", runner.error
        t_end = time.monotonic()
    assert 1.9 < t_end - t0 < 3.0
    assert [p["state"] for k, p in events if k == "state"] == ["prepare", "contact-check", "ramp-up", "run",
                                                               "ramp-down", "completed"]
    limit = {o.output + 1: o.max_amplitude_ma for o in plan.envelope.outputs}
    for ch in (1, 2):
        series = [outs.get(ch, OutputState(0.0, 0.0)).current_ma for _, outs in emu.output_log]
        assert max(series) == 15.0  # the default amplitude, reached and held
        assert all(i <= limit[ch] for i in series)
        top = series.index(15.0)
        rise, fall = series[:top + 1], series[len(series) - series[::-1].index(15.0) - 1:]
        assert rise == sorted(rise) and len(set(rise)) >= 5, rise  # the ramp up, in steps
        assert fall == sorted(fall, reverse=True) and len(set(fall)) >= 5, fall  # the ramp down
    assert emu.output_log[-1][1] == {} and not emu.output_on
    # the device was polled on time throughout, while updates were flowing
    polls = [t for t, m in emu.received if isinstance(m, Sm4MlGetCurrentData)]
    assert len(polls) >= 3 and max(b - a for a, b in zip(polls, polls[1:])) < 0.5 + 0.1
    assert emu.watchdog_stops == 0 and emu.errors == []


def test_session_fails_with_the_error_recorded_in_order(emu, plan):
    events: list[tuple[str, dict]] = []
    injected: list[float] = []

    def garbage(r: Runner) -> None:
        if r.t >= 1.0 and not injected:  # in the run phase: the session only watches the device
            injected.append(time.monotonic())
            emu.inject(b"\x13\x37 line noise")

    with P24(emu.port) as dev:
        dev.connect()
        dev.configure(plan)
        runner = Runner(dev, duration_s=3.0, ramp_s=0.5, slew_ma_per_s=30.0, on_event=lambda k, p: events.append((k, p)))
        assert runner.run(step_s=0.05, tick=garbage).value == "failed"
        assert dev.state == DeviceState.FAULT
        assert _zero_logged_at(dev, injected[0]) - injected[0] < SAFE_STOP_S
        assert not emu.output_on
    kinds = [k for k, _ in events]
    assert kinds[-3:] == ["error", "dose", "state"]  # the cause, what was delivered, the end
    error = events[-3][1]["message"]
    assert "invalid bytes from the P24" in error
    assert events[-1][1]["state"] == "failed" and events[-1][1]["reason"] == error
    assert runner.error == error
    assert events[-2][1]["pulses_delivered"] == dev.status().pulses_delivered > 0
    times = [p["t_s"] for _, p in events]
    assert times == sorted(times)
    assert "intensity" in kinds[:-3]


# --------------------------------------------------------------------------- protocol timing


def test_emulator_watchdog_stops_output_1_5_s_after_the_last_poll(emu):
    emu.response_delay_s = 0.02
    link = SerialLink(emu.port, Sm4Codec(), **SM4_SERIAL)
    try:
        assert link.request(Sm4MlInit(), timeout_s=1.0).result == Sm4Result.OK
        shape = [Sm4Point(200, -10.0), Sm4Point(200, 10.0)]
        assert link.request(Sm4MlUpdate([Sm4MlChannel(1, 20.0, shape)])).result == Sm4Result.OK
        start = time.monotonic()
        round_trips = []
        while time.monotonic() - start < 2.0:  # longer than the watchdog: the polls keep it going
            t = time.monotonic()
            ack = link.request(Sm4MlGetCurrentData())
            round_trips.append(time.monotonic() - t)
            assert isinstance(ack, Sm4MlGetCurrentDataAck) and ack.active_channels == (1,)
            time.sleep(0.4)
        assert emu.output_on
        # answered after the configured delay, well within the protocol's 100 ms
        assert min(round_trips) >= 0.02 and max(round_trips) < 0.1, round_trips
        assert sorted(round_trips)[len(round_trips) // 2] < 0.02 + 0.01, round_trips
        last_poll = emu.last_poll_s
        for k in (1, 2, 3, 4):  # updates, 0.3 to 1.2 s after the last poll, are not polls
            time.sleep(max(0.0, last_poll + 0.3 * k - time.monotonic()))
            assert link.request(Sm4MlUpdate([Sm4MlChannel(1, 20.0, shape)])).result == Sm4Result.OK
        assert _wait(lambda: not emu.output_on, 1.0)
        stopped = emu.output_log[-1][0]
        assert 1.5 <= stopped - last_poll < 1.5 + 0.05
        assert emu.watchdog_stops == 1
        assert link.request(Sm4MlGetCurrentData()).active_channels == ()
    finally:
        link.close()


def test_emulator_answers_unknown_and_premature_commands(emu):
    link = SerialLink(emu.port, Sm4Codec(), **SM4_SERIAL)
    try:
        answer = link.request(Sm4RawPacket(100, b"\x01"), timeout_s=1.0)
        assert answer == Sm4RawPacket(Sm4Command.UNKNOWN_COMMAND, bytes([Sm4Result.INVALID_CMD_ERROR]))
        shape = [Sm4Point(200, 10.0)]
        assert link.request(Sm4MlUpdate([Sm4MlChannel(1, 20.0, shape)])).result == Sm4Result.NOT_INITIALIZED_ERROR
        assert link.request(Sm4MlInit()).result == Sm4Result.OK
        assert link.request(Sm4MlUpdate([Sm4MlChannel(5, 20.0, shape)])).result == Sm4Result.PARAMETER_ERROR
        assert link.request(Sm4GetStimStatus()).stim_status == Sm4StimStatus.ML_INITIALISED
        assert not emu.output_on
    finally:
        link.close()


def test_corrupted_reply_has_a_bad_crc_not_a_bad_length(emu):
    link = SerialLink(emu.port, Sm4Codec(), **SM4_SERIAL)
    try:
        emu.corrupt_replies(1)
        with pytest.raises(DeviceError, match=r"invalid bytes from the P24 device \(crc\).*Sm4GetDeviceId, packet 0"):
            link.request(Sm4GetDeviceId(), timeout_s=1.0)  # fails when the damaged reply comes, not at the timeout
        assert link.request(Sm4GetDeviceId()).device_id == "EMU0000001"
    finally:
        link.close()


# --------------------------------------------------------------------------- faults: a safe stop within 100 ms


def test_garbage_on_the_line_stops_at_once(emu, plan):
    with _running(emu, plan) as dev:
        t_fault = time.monotonic()
        emu.inject(b"\x00\x13\x37garbage")
        assert _wait(lambda: dev.state == DeviceState.FAULT)
        assert dev.status().error.startswith("invalid bytes from the P24")
        assert _zero_logged_at(dev, t_fault) - t_fault < SAFE_STOP_S
        assert emu.output_zero_since(t_fault) - t_fault < SAFE_STOP_S


def test_corrupted_ack_stops_at_once(emu, plan):
    with _running(emu, plan) as dev:
        emu.corrupt_replies(1)
        t_fault = time.monotonic()
        with pytest.raises(DeviceError):
            dev.set_intensity("low-back-left", 12.0)
        assert dev.state == DeviceState.FAULT
        assert "(crc)" in dev.status().error
        assert _zero_logged_at(dev, t_fault) - t_fault < SAFE_STOP_S
        assert emu.output_zero_since(t_fault) - t_fault < SAFE_STOP_S


@pytest.mark.parametrize("fault", ["dropped", "late"])
def test_missing_or_late_ack_stops_at_the_deadline(emu, plan, fault):
    with _running(emu, plan) as dev:
        if fault == "dropped":
            emu.drop_replies(1)
        else:
            emu.response_delay_s = 0.15
        t_sent = time.monotonic()
        with pytest.raises(DeviceError, match=r"did not acknowledge Sm4MlUpdate \(packet \d+\) within 100 ms"):
            dev.set_intensity("low-back-left", 12.0)
        deadline = t_sent + 0.1
        assert dev.state == DeviceState.FAULT
        assert dev.status().error.startswith("the P24 device did not acknowledge Sm4MlUpdate")
        assert _zero_logged_at(dev, t_sent) - deadline < SAFE_STOP_S
        assert emu.output_zero_since(t_sent) - deadline < SAFE_STOP_S


def test_vanished_device_stops_at_once(emu, plan):
    with _running(emu, plan) as dev:
        t_fault = time.monotonic()
        emu.vanish()
        assert _wait(lambda: dev.state == DeviceState.FAULT)
        assert "the P24 device on" in dev.status().error and "vanished" in dev.status().error
        assert _zero_logged_at(dev, t_fault) - t_fault < SAFE_STOP_S


def test_electrode_error_is_reported_at_the_next_poll(emu, plan):
    with _running(emu, plan) as dev:
        emu.electrode_error(2)
        t_fault = emu.output_log[-1][0]
        assert not emu.output_on  # the device stops itself
        assert _wait(lambda: dev.state == DeviceState.FAULT, dev.keepalive_s + 0.2)
        assert dev.status().error == ("the P24 reports an electrode error on channel 2 (output 'low-back-right'); "
                                      "it stopped stimulating")
        polled = next(t for t, m in emu.received if t > t_fault and isinstance(m, Sm4MlGetCurrentData))
        assert polled - t_fault < dev.keepalive_s + 0.05
        assert _zero_logged_at(dev, polled) - polled < SAFE_STOP_S
        assert any(isinstance(m, Sm4MlStop) for t, m in emu.received if t > polled)
    assert emu.channel_errors == {}  # cleared by the stop


def test_channel_error_other_than_electrode_is_named(emu, plan):
    with _running(emu, plan) as dev:
        emu.electrode_error(1, Sm4ChannelError.PULSE_LOW_CURRENT)
        assert _wait(lambda: dev.state == DeviceState.FAULT, dev.keepalive_s + 0.2)
        assert "a pulse below its current" in dev.status().error and "channel 1" in dev.status().error


def test_emulator_watchdog_stop_is_a_driver_fault(emu, plan):
    with _running(emu, plan) as dev:
        emu._halt(time.monotonic())  # as if the device's own watchdog had fired
        assert _wait(lambda: dev.state == DeviceState.FAULT, dev.keepalive_s + 0.2)
        assert "stopped stimulating channels 1, 2 without being told" in dev.status().error


def test_commands_never_exceed_the_approved_envelope(emu, plan):
    with _running(emu, plan, ma=50.0) as dev:
        assert emu.outputs[1] == OutputState(50.0, 80)
        with pytest.raises(es.SafetyError):
            dev.set_intensity("low-back-left", 50.5)
        assert all(c.current_ma <= 50.0 for _, cmds in dev.command_log for c in cmds.values())
        assert isinstance(dev.command_log[-1][1]["low-back-left"], OutputCommand)
