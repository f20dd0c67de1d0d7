"""Emulators record every pulse they emit, as the device would: the delivered side of "approved is delivered".

The emulators are driven with raw codec frames through :meth:`PtyEmulator._receive`
(the path the serving thread takes for bytes from the line) at explicit, virtual
times, and their timers through ``_tick(now)``; the recorder's clock is set to the
same virtual time. No thread runs, nothing sleeps, so the closed forms hold exactly on
a loaded machine. One test runs an emulator in real time and checks the record
against the times at which the emulator itself processed the commands.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import serial

from electrostim.devices import P24Emulator, RehaStim2Emulator
from electrostim.devices._emitted import Pulse, PulseRecorder
from electrostim.devices._sciencemode2.codec import (
    Sm2ChannelPulse,
    Sm2InitAck,
    Sm2InitChannelListMode,
    Sm2PulseMode,
    Sm2SinglePulse,
    Sm2StartChannelListMode,
    Sm2StopChannelListMode,
    Sm2Watchdog,
    sm2_encode,
)
from electrostim.devices._sciencemode4.codec import (
    Sm4LlChannelConfig,
    Sm4LlInit,
    Sm4MlChannel,
    Sm4MlGetCurrentData,
    Sm4MlInit,
    Sm4MlStop,
    Sm4MlUpdate,
    Sm4Point,
    Sm4StimStatus,
    sm4_encode,
)
from electrostim.devices._sciencemode4.emulator import p24_shape_pulses
from electrostim.waveform import SHAPE_RECT, PulseChunk

T0 = 1000.0  # virtual time of the first command
EPS = 1e-9  # float rounding of k * period


class _Driver:
    """Feeds an emulator raw frames at virtual times; the recorder's clock follows."""

    def __init__(self, emu, encode, packet_numbers: int):
        self.emu, self.encode, self.packet_numbers = emu, encode, packet_numbers
        self.now = T0
        self.pn = 0
        emu.pulse_recorder.clock = lambda: self.now

    def send(self, message, at_s: float) -> None:
        self.now = max(self.now, at_s)
        frame = self.encode(message, self.pn)
        self.pn = (self.pn + 1) % self.packet_numbers
        with self.emu._lock:
            self.emu._receive(frame, at_s)

    def tick(self, at_s: float) -> None:
        self.now = max(self.now, at_s)
        with self.emu._lock:
            self.emu._tick(at_s)

    def until(self, at_s: float) -> PulseChunk:
        """Everything emitted up to ``at_s``."""
        self.now = max(self.now, at_s)
        return self.emu.emitted()


@pytest.fixture
def sm2():
    emu = RehaStim2Emulator()  # not started: driven in virtual time
    drv = _Driver(emu, sm2_encode, 256)
    drv.send(Sm2InitAck(), T0 - 0.1)
    yield drv
    emu.close()


@pytest.fixture
def sm4():
    emu = P24Emulator()
    drv = _Driver(emu, sm4_encode, 64)
    drv.send(Sm4MlInit(), T0 - 0.1)
    yield drv
    emu.close()


def _of(chunk: PulseChunk, channel: int) -> PulseChunk:
    return chunk.select(chunk.output == channel)


def _assert_times(actual: np.ndarray, expected: np.ndarray) -> None:
    assert len(actual) == len(expected), (len(actual), len(expected))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- ScienceMode2 (RehaStim2)


def _sm2_start(sm2: _Driver, *pulses: Sm2ChannelPulse, at_s: float = T0) -> None:
    sm2.send(Sm2StartChannelListMode(pulses), at_s)


def test_rehastim2_each_channel_fires_every_main_interval_in_its_slot(sm2):
    sm2.send(Sm2InitChannelListMode(active_channels=(1, 3), main_interval_ms=10.0), T0 - 0.05)
    _sm2_start(sm2, Sm2ChannelPulse(200, 20), Sm2ChannelPulse(300, 30))
    sm2.send(Sm2StopChannelListMode(), T0 + 0.995)
    chunk = sm2.until(T0 + 5.0)
    k = np.arange(100)
    _assert_times(_of(chunk, 1).time_s, T0 + k * 0.010)
    _assert_times(_of(chunk, 3).time_s, T0 + 0.0015 + k * 0.010)  # the second active channel: slot 2
    assert np.all(np.diff(chunk.time_s) > 0) and chunk.output[:2].tolist() == [1, 3]
    one = _of(chunk, 3)
    assert set(one.first_amplitude_ma) == {30.0} and set(one.second_amplitude_ma) == {-30.0}  # positive first
    assert set(one.first_width_us) == set(one.second_width_us) == {300.0} and set(one.gap_us) == {100.0}
    assert set(chunk.shape) == {SHAPE_RECT} and chunk.output.dtype == np.int16


def test_rehastim2_update_changes_the_pulses_from_then_on_without_restarting_the_timing(sm2):
    sm2.send(Sm2InitChannelListMode(active_channels=(1, 2), main_interval_ms=10.0), T0 - 0.05)
    _sm2_start(sm2, Sm2ChannelPulse(200, 20), Sm2ChannelPulse(200, 20))
    t_update = T0 + 0.5013  # after channel 1's pulse of period 50, before channel 2's (at 0.5015 s)
    _sm2_start(sm2, Sm2ChannelPulse(250, 25), Sm2ChannelPulse(200, 20), at_s=t_update)
    _sm2_start(sm2, Sm2ChannelPulse(250, 25), Sm2ChannelPulse(200, 0), at_s=T0 + 0.7)  # 0 mA: no pulse
    chunk = sm2.until(T0 + 1.0)
    one, two = _of(chunk, 1), _of(chunk, 2)
    _assert_times(one.time_s, T0 + np.arange(100) * 0.010)
    assert one.first_amplitude_ma.tolist() == [20.0] * 51 + [25.0] * 49  # k = 50 at 0.500 s is before the update
    assert one.first_width_us.tolist() == [200.0] * 51 + [250.0] * 49
    _assert_times(two.time_s, T0 + 0.0015 + np.arange(70) * 0.010)  # nothing from 0.7 s on
    assert sm2.emu.pulse_recorder.running_channels == (1,)


def test_rehastim2_doublets_and_triplets_at_the_inter_pulse_interval(sm2):
    sm2.send(Sm2InitChannelListMode(active_channels=(2, 5), main_interval_ms=50.0, inter_pulse_interval_ms=8.0),
             T0 - 0.05)
    _sm2_start(sm2, Sm2ChannelPulse(100, 10, Sm2PulseMode.DOUBLET), Sm2ChannelPulse(100, 12, Sm2PulseMode.TRIPLET))
    sm2.send(Sm2StopChannelListMode(), T0 + 0.499)
    chunk = sm2.until(T0 + 1.0)
    k = np.arange(10)[:, None] * 0.050
    _assert_times(_of(chunk, 2).time_s, T0 + (k + [0.0, 0.008]).ravel())
    _assert_times(_of(chunk, 5).time_s, T0 + (k + 0.0015 + np.array([0.0, 0.008, 0.016])).ravel())


def test_rehastim2_low_frequency_channel_fires_every_factor_plus_one_period(sm2):
    sm2.send(Sm2InitChannelListMode(active_channels=(1, 2), main_interval_ms=20.0, low_frequency_factor=2,
                                    low_frequency_channels=(2,)), T0 - 0.05)
    _sm2_start(sm2, Sm2ChannelPulse(200, 20), Sm2ChannelPulse(200, 20))
    chunk = sm2.until(T0 + 1.0)
    _assert_times(_of(chunk, 1).time_s, T0 + np.arange(50) * 0.020)
    _assert_times(_of(chunk, 2).time_s, T0 + 0.0015 + np.arange(0, 50, 3) * 0.020)  # periods 0, 3, 6, ...


def test_rehastim2_window_is_half_open_and_capped_at_now(sm2):
    sm2.send(Sm2InitChannelListMode(active_channels=(1,), main_interval_ms=10.0), T0 - 0.05)
    _sm2_start(sm2, Sm2ChannelPulse(200, 20))
    sm2.now = T0 + 0.2
    assert len(sm2.emu.emitted(T0 + 0.1, T0 + 0.15)) == 5
    future = sm2.emu.emitted(T0 + 0.1, T0 + 9.0)  # not yet emitted: listed up to now
    assert len(future) == 10 and future.stop_s == T0 + 0.2


@pytest.mark.parametrize("how", ["stop", "watchdog", "electrode", "vanish"])
def test_rehastim2_pulses_end_when_the_output_stops(sm2, how):
    sm2.send(Sm2InitChannelListMode(active_channels=(1,), main_interval_ms=10.0), T0 - 0.05)
    _sm2_start(sm2, Sm2ChannelPulse(200, 20))
    sm2.send(Sm2Watchdog(), T0 + 0.100)
    t_end = T0 + 0.1001 + sm2.emu.watchdog_s if how == "watchdog" else T0 + 0.2345
    if how == "stop":
        sm2.send(Sm2StopChannelListMode(), t_end)
    elif how == "watchdog":
        sm2.tick(T0 + 1.0)
        assert len(sm2.emu.pulse_recorder.running_channels) == 1
        sm2.tick(t_end)
        assert sm2.emu.drops == 1
    elif how == "electrode":
        sm2.emu.electrode_error(now=t_end)
    else:
        sm2.emu.vanish(now=t_end)
    chunk = sm2.until(T0 + 5.0)
    _assert_times(chunk.time_s, T0 + np.arange(math.floor((t_end - T0) / 0.010) + 1) * 0.010)
    assert not sm2.emu.output_on and sm2.emu.output_log[-1][0] == t_end  # the state log agrees


def test_rehastim2_one_shot_fires_one_period_per_start_and_a_stop_cancels_the_rest(sm2):
    sm2.send(Sm2InitChannelListMode(active_channels=(1, 2), main_interval_ms=None, inter_pulse_interval_ms=10.0),
             T0 - 0.05)
    group = (Sm2ChannelPulse(200, 20), Sm2ChannelPulse(200, 15, Sm2PulseMode.DOUBLET))
    _sm2_start(sm2, *group, at_s=T0)
    _sm2_start(sm2, *group, at_s=T0 + 0.3)
    sm2.send(Sm2StopChannelListMode(), T0 + 0.305)  # before channel 2's second pulse of that shot (0.3115)
    chunk = sm2.until(T0 + 1.0)
    _assert_times(chunk.time_s, T0 + np.array([0.0, 0.0015, 0.0115, 0.3, 0.3015]))
    assert chunk.output.tolist() == [1, 2, 2, 1, 2]


def test_rehastim2_single_pulse_fires_once_in_start_mode(sm2):
    sm2.send(Sm2SinglePulse(channel=4, pulse_width_us=300, current_ma=40), T0 + 0.25)
    sm2.send(Sm2SinglePulse(channel=4, pulse_width_us=300, current_ma=0), T0 + 0.5)  # 0 mA: nothing
    chunk = sm2.until(T0 + 1.0)
    assert chunk.time_s.tolist() == [T0 + 0.25] and chunk.output.tolist() == [4]
    assert (chunk.first_amplitude_ma[0], chunk.gap_us[0], chunk.second_amplitude_ma[0]) == (40.0, 100.0, -40.0)


def test_rehastim2_record_in_real_time_matches_the_commands_as_processed():
    """The emulator's thread, a pyserial client: the pulses follow the times the emulator took the commands."""
    with RehaStim2Emulator() as emu, serial.Serial(emu.port, 460_800, parity=serial.PARITY_EVEN, timeout=0.01) as port:
        for pn, msg in enumerate([Sm2InitAck(), Sm2InitChannelListMode(active_channels=(1, 2), main_interval_ms=10.0),
                                  Sm2StartChannelListMode((Sm2ChannelPulse(200, 20), Sm2ChannelPulse(100, 10)))]):
            port.write(sm2_encode(msg, pn))
        deadline = time.monotonic() + 5.0
        while not emu.output_on and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.2)
        port.write(sm2_encode(Sm2StopChannelListMode(), 3))
        while emu.output_on and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not emu.output_on
        [t_start] = [t for t, m in emu.received if isinstance(m, Sm2StartChannelListMode)]
        [t_stop] = [t for t, m in emu.received if isinstance(m, Sm2StopChannelListMode)]
        chunk = emu.emitted()
    for ch, slot_s in ((1, 0.0), (2, 0.0015)):
        n = math.ceil((t_stop - t_start - slot_s) / 0.010 - EPS)
        _assert_times(_of(chunk, ch).time_s, t_start + slot_s + np.arange(n) * 0.010)


# --------------------------------------------------------------------------- ScienceMode4 (P24)

BIPHASIC = (Sm4Point(200, -20), Sm4Point(50, 0), Sm4Point(200, 20))


def _update(*channels: Sm4MlChannel) -> Sm4MlUpdate:
    return Sm4MlUpdate(channels)


def test_p24_symmetric_biphasic_shape_fires_every_period(sm4):
    sm4.send(_update(Sm4MlChannel(1, 20.0, BIPHASIC)), T0)
    sm4.send(Sm4MlGetCurrentData(), T0 + 0.5)
    sm4.send(Sm4MlStop(), T0 + 0.999)
    chunk = sm4.until(T0 + 2.0)
    _assert_times(chunk.time_s, T0 + np.arange(50) * 0.020)
    assert set(zip(chunk.first_amplitude_ma, chunk.first_width_us, chunk.gap_us, chunk.second_amplitude_ma,
                   chunk.second_width_us)) == {(-20.0, 200.0, 50.0, 20.0, 200.0)}
    assert set(chunk.output) == {1}


def test_p24_burst_shape_is_three_pulses_per_period_at_their_offsets(sm4):
    spacing = (Sm4Point(4095, 0), Sm4Point(4095, 0), Sm4Point(10_000 - 450 - 8190, 0))  # 100 Hz inside the burst
    shape = BIPHASIC + spacing + BIPHASIC + spacing + BIPHASIC  # 15 points
    sm4.send(_update(Sm4MlChannel(2, 100.0, shape)), T0)
    chunk = sm4.until(T0 + 0.5 - 1e-6)
    _assert_times(chunk.time_s, T0 + (np.arange(5)[:, None] * 0.100 + [0.0, 0.010, 0.020]).ravel())
    assert set(chunk.gap_us) == {50.0} and set(chunk.output) == {2}


def test_p24_a_long_phase_split_into_points_is_one_phase(sm4):
    shape = (Sm4Point(4095, -2), Sm4Point(905, -2), Sm4Point(100, 0), Sm4Point(4095, 2), Sm4Point(905, 2))
    sm4.send(_update(Sm4MlChannel(3, 50.0, shape)), T0)
    chunk = sm4.until(T0 + 0.2)
    _assert_times(chunk.time_s, T0 + np.arange(4) * 0.050)
    assert set(zip(chunk.first_amplitude_ma, chunk.first_width_us, chunk.gap_us, chunk.second_amplitude_ma,
                   chunk.second_width_us)) == {(-2.0, 5000.0, 100.0, 2.0, 5000.0)}


def test_p24_shape_conversion_rules():
    def rows(points):
        return [(round(p.offset_s * 1e6), p.first_amplitude_ma, p.first_width_us, p.gap_us, p.second_amplitude_ma,
                 p.second_width_us) for p in p24_shape_pulses(points)]

    # a monophasic twin peak: two monophasic pulses
    assert rows([Sm4Point(100, -10), Sm4Point(500, 0), Sm4Point(100, -10)]) == [
        (0, -10.0, 100.0, 0.0, 0.0, 0.0), (600, -10.0, 100.0, 0.0, 0.0, 0.0)]
    # no gap point: a biphasic pulse with a 0 µs gap; an asymmetric second phase over two points
    assert rows([Sm4Point(100, -30), Sm4Point(4095, 5), Sm4Point(1905, 5)]) == [(0, -30.0, 100.0, 0.0, 5.0, 6000.0)]
    # after a completed pair, a phase starts a new pulse; 0 µs points and leading zeros are nothing
    assert rows([Sm4Point(50, 0), Sm4Point(100, -10), Sm4Point(0, 7), Sm4Point(100, 10), Sm4Point(100, -10)]) == [
        (50, -10.0, 100.0, 0.0, 10.0, 100.0), (250, -10.0, 100.0, 0.0, 0.0, 0.0)]
    assert rows([Sm4Point(100, 0), Sm4Point(100, 0)]) == []


def test_p24_update_keeps_the_timing_and_omitted_channels_stop(sm4):
    sm4.send(_update(Sm4MlChannel(1, 20.0, BIPHASIC), Sm4MlChannel(2, 20.0, BIPHASIC)), T0)
    new_shape = (Sm4Point(300, -25), Sm4Point(50, 0), Sm4Point(300, 25))
    t_update = T0 + 0.105  # the last shape of channel 1 started at T0 + 0.100
    sm4.send(_update(Sm4MlChannel(1, 30.0, new_shape)), t_update)
    sm4.send(_update(Sm4MlChannel(1, 30.0, new_shape)), T0 + 0.2)  # the same again: the train runs on
    chunk = sm4.until(T0 + 0.3)
    one, two = _of(chunk, 1), _of(chunk, 2)
    _assert_times(one.time_s, T0 + np.r_[np.arange(6) * 0.020, 0.130 + np.arange(6) * 0.030])
    assert one.first_amplitude_ma.tolist() == [-20.0] * 6 + [-25.0] * 6
    _assert_times(two.time_s, T0 + np.arange(6) * 0.020)  # omitted at 0.105 s: disabled from then on
    assert sm4.emu.pulse_recorder.segment_count == 3


def test_p24_update_before_the_next_shape_replaces_it(sm4):
    sm4.send(_update(Sm4MlChannel(1, 20.0, BIPHASIC)), T0)
    sm4.send(_update(Sm4MlChannel(1, 40.0, BIPHASIC)), T0 + 0.005)  # next shape at 0.040
    sm4.send(_update(Sm4MlChannel(1, 10.0, BIPHASIC)), T0 + 0.010)  # before it: next shape at 0.010
    chunk = sm4.until(T0 + 0.1)
    _assert_times(chunk.time_s, T0 + np.arange(10) * 0.010)


@pytest.mark.parametrize("how", ["watchdog", "stop", "init", "electrode", "vanish"])
def test_p24_pulses_end_when_the_output_stops(sm4, how):
    sm4.send(_update(Sm4MlChannel(1, 20.0, BIPHASIC)), T0)
    t_end = T0 + 0.4567
    if how == "watchdog":
        sm4.send(Sm4MlGetCurrentData(), T0 + 0.3)
        sm4.tick(T0 + 1.7)
        assert sm4.emu.stim_status == Sm4StimStatus.ML_RUNNING
        t_end = T0 + 1.8001  # 1.5 s after the last poll, at the next tick
        sm4.tick(t_end)
        assert sm4.emu.watchdog_stops == 1
    elif how == "stop":
        sm4.send(Sm4MlStop(), t_end)
    elif how == "init":
        sm4.send(Sm4MlInit(), t_end)
    elif how == "electrode":
        sm4.emu.electrode_error(2, now=t_end)
    else:
        sm4.emu.vanish(now=t_end)
    chunk = sm4.until(T0 + 5.0)
    _assert_times(chunk.time_s, T0 + np.arange(math.floor((t_end - T0) / 0.020) + 1) * 0.020)
    assert not sm4.emu.output_on and sm4.emu.output_log[-1][0] == t_end


def test_p24_restart_after_a_stop_starts_a_new_train(sm4):
    sm4.send(_update(Sm4MlChannel(1, 20.0, BIPHASIC)), T0)
    sm4.send(Sm4MlInit(), T0 + 0.05)
    sm4.send(_update(Sm4MlChannel(1, 20.0, BIPHASIC)), T0 + 0.0537)
    chunk = sm4.until(T0 + 0.1)
    _assert_times(chunk.time_s, T0 + np.r_[0.0, 0.020, 0.040, 0.0537 + np.arange(3) * 0.020])


def test_p24_low_level_pulse_fires_once(sm4):
    sm4.send(Sm4MlStop(), T0)
    sm4.send(Sm4LlInit(), T0 + 0.01)
    sm4.send(Sm4LlChannelConfig(channel=2, points=BIPHASIC), T0 + 0.02)
    chunk = sm4.until(T0 + 1.0)
    assert chunk.time_s.tolist() == [T0 + 0.02] and chunk.output.tolist() == [2] and chunk.gap_us.tolist() == [50.0]


# --------------------------------------------------------------------------- the recorder


def test_recorder_holds_a_30_minute_session_compactly_and_lists_any_window():
    """8 channels x 125 Hz x 30 min = 1.8 M pulses, held as one segment per channel and setting."""
    rec = PulseRecorder(clock=lambda: 1800.0)
    pulse = Pulse(0.0, -20.0, 200.0, 50.0, 20.0, 200.0)
    for ch in range(1, 9):
        rec.start_train(ch, origin_s=0.0, period_s=0.008, pulses=[pulse])
    for minute in range(1, 30):  # the same setting again every minute changes nothing
        for ch in range(1, 9):
            rec.start_train(ch, origin_s=0.0, period_s=0.008, pulses=[pulse], begin_s=60.0 * minute)
    assert rec.segment_count == 8
    window = rec.emitted(600.0, 601.0)
    assert len(window) == 8 * 125 and np.all(np.diff(window.time_s) >= 0)
    assert window.output[:8].tolist() == list(range(1, 9))  # same time: by channel
    assert len(rec.emitted()) == 8 * 125 * 1800


def test_recorder_groups_and_blocks_are_cut_by_a_stop():
    rec = PulseRecorder(clock=lambda: 10.0)
    rec.add_group(1, 1.0, [Pulse(0.0, 5.0, 100.0), Pulse(0.010, 5.0, 100.0)])
    t = np.array([0.5, 1.001, 2.0])
    rec.add_pulses(PulseChunk(0.0, 3.0, t, np.array([3, 3, 3], np.int16), np.zeros(3, np.uint8), np.full(3, -1.0),
                              np.full(3, 50.0), np.zeros(3), np.full(3, 1.0), np.full(3, 50.0)))
    rec.stop(1.005)
    chunk = rec.emitted()
    assert chunk.time_s.tolist() == [0.5, 1.0, 1.001] and chunk.output.tolist() == [3, 1, 3]
    assert chunk.start_s == 0.5 and chunk.stop_s == 10.0
    empty = rec.emitted(5.0, 6.0)
    assert len(empty) == 0 and (empty.start_s, empty.stop_s) == (5.0, 6.0)


def test_recorder_refuses_a_period_that_is_not_positive():
    with pytest.raises(ValueError, match=r"Invalid value for the 'period_s' parameter.*but got 0.0 instead"):
        PulseRecorder().start_train(1, origin_s=0.0, period_s=0.0, pulses=[Pulse(0.0, 1.0, 100.0)])
