"""A P24 (ScienceMode4) on a pseudo-terminal.

It behaves as ``reference/sciencemode.md`` describes the device, mid level:

* every request is answered (after ``response_delay_s``) with its acknowledgement,
  which echoes the request's packet number; the device sends nothing unasked;
* stimulation status: uninitialised → MlInit → initialised → MlUpdate → running (a
  later MlUpdate changes the shapes) → MlStop → uninitialised. MlUpdate before MlInit
  is answered "not initialized"; a channel above 4, a current above 130 mA or a shape
  longer than its period "parameter error";
* an output's current is the largest magnitude among its points, its width the first
  point's;
* when stimulating, a poll (MlGetCurrentData) must come at least every 1.5 s, or the
  device stops its outputs (updates do not count as polls);
* :meth:`P24Emulator.electrode_error` stops the outputs, as the device does when a
  channel's electrode check fails; the next polls report it (result 10, and the
  channel's state), and updates are refused until MlStop or MlInit;
* GetDeviceId, GetExtendedVersion (ScienceMode 4.0.0), GetStimStatus and Reset are
  answered; the low-level commands are acknowledged and their pulses recorded;
* a command it does not know is answered with UnknownCommand (67, result
  "invalid cmd error"), a known command whose data cannot be decoded with its
  acknowledgement carrying "parameter error".

Every pulse it emits is recorded (:meth:`~.._emulator.PtyEmulator.emitted`), with
these rules for the timing the public description leaves open:

* **Trains.** A channel fires its shape (the points of its MlUpdate entry, converted
  by :func:`p24_shape_pulses`) once per period. Its first update after MlInit (or
  after a stop) starts its train at the moment the update is processed.
* **Updates keep the timing.** A later update that lists the channel lets the shape
  under way finish (the last shape that started at or before the update) and starts
  the new shape one *new* period after that shape's start, then every new period.
  A channel the update omits is disabled (the codec's rule: "channels not listed are
  disabled"): no pulse of it starts from that moment.
* **Not modelled:** the ramp field (pulses are recorded at full current) and the
  interpolation bits (each point holds its current).
* MlStop, MlInit, Reset, the 1.5 s poll watchdog, an electrode error and
  :meth:`~.._emulator.PtyEmulator.vanish` end every pulse from that moment (a pulse
  already started is whole).
* A low-level LlChannelConfig with stimulation enabled fires its shape once, when
  processed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from .._emitted import Pulse
from .._emulator import OutputState, PtyEmulator
from .._framing import Message, ProtocolError, unstuff
from .codec import (
    SM4_MESSAGES,
    Sm4ChannelError,
    Sm4Command,
    Sm4FrameDecoder,
    Sm4GetDeviceId,
    Sm4GetDeviceIdAck,
    Sm4GetExtendedVersion,
    Sm4GetExtendedVersionAck,
    Sm4GetStimStatus,
    Sm4GetStimStatusAck,
    Sm4LlChannelConfig,
    Sm4LlChannelConfigAck,
    Sm4LlInit,
    Sm4LlInitAck,
    Sm4LlStop,
    Sm4LlStopAck,
    Sm4MlGetCurrentData,
    Sm4MlGetCurrentDataAck,
    Sm4MlInit,
    Sm4MlInitAck,
    Sm4MlStop,
    Sm4MlStopAck,
    Sm4MlUpdate,
    Sm4MlUpdateAck,
    Sm4Point,
    Sm4RawPacket,
    Sm4Reset,
    Sm4ResetAck,
    Sm4Result,
    Sm4StimStatus,
    sm4_decode,
    sm4_encode,
)

__all__ = ["P24Emulator", "p24_shape_pulses"]

#: The device's limits (profile ``p24``).
_CHANNELS = 4
_MAX_CURRENT_MA = 130.0

#: request command → its acknowledgement class (for answering a request whose data are wrong)
_ACK_OF: dict[int, Callable[..., Message]] = {cmd: SM4_MESSAGES[cmd + 1] for cmd in (
    Sm4Command.LL_INIT, Sm4Command.LL_CHANNEL_CONFIG, Sm4Command.LL_STOP, Sm4Command.ML_INIT,
    Sm4Command.ML_UPDATE, Sm4Command.ML_STOP, Sm4Command.ML_GET_CURRENT_DATA, Sm4Command.GET_DEVICE_ID,
    Sm4Command.RESET, Sm4Command.GET_STIM_STATUS, Sm4Command.GET_EXTENDED_VERSION)}


def p24_shape_pulses(points: Iterable[Sm4Point]) -> tuple[Pulse, ...]:
    """The pulses of one mid-level (or low-level) shape, with their offsets from its start.

    The points are read in order, each holding its current for its width:

    1. Consecutive points of the same current are one span (a phase longer than
       4095 µs comes as several points); points 0 µs wide are skipped.
    2. A nonzero span is a phase. A phase followed by a phase of the opposite sign is
       one biphasic pulse; a 0 mA span between them is its interphase gap.
    3. A 0 mA span anywhere else separates pulses, and so does a change of current
       within one sign: a phase followed by a phase of the same sign (with or without
       0 mA between them), or any phase after a completed biphasic pair, starts a new
       pulse. So a monophasic twin peak is two monophasic pulses, and a staircase
       phase is one monophasic pulse per step (a pulse record holds one current per
       phase).
    4. A phase left without a partner is a monophasic pulse (second phase 0 mA, 0 µs,
       gap 0 µs).

    Currents keep their sign (the schedule's convention: cathodic at the active pad
    negative). A shape of 0 mA points emits nothing.

    Parameters
    ----------
    points : iterable of Sm4Point
        The shape's points.

    Returns
    -------
    tuple of Pulse
        In order of their start.

    Examples
    --------
    A symmetric biphasic pulse, then a 5000 µs monophasic phase sent as two points:

    >>> pts = [Sm4Point(200, -20), Sm4Point(50, 0), Sm4Point(200, 20), Sm4Point(1000, 0),
    ...        Sm4Point(4095, -5), Sm4Point(905, -5)]
    >>> [(round(p.offset_s * 1e6), p.first_amplitude_ma, p.first_width_us, p.gap_us, p.second_amplitude_ma,
    ...   p.second_width_us) for p in p24_shape_pulses(pts)]
    [(0, -20.0, 200.0, 50.0, 20.0, 200.0), (1450, -5.0, 5000.0, 0.0, 0.0, 0.0)]
    """
    spans: list[list[float]] = []  # [start_us, width_us, current_ma]
    t_us = 0.0
    for p in points:
        w, a = float(p.pulse_width_us), float(p.current_ma)
        if w > 0:
            if spans and spans[-1][2] == a:
                spans[-1][1] += w
            else:
                spans.append([t_us, w, a])
        t_us += w
    pulses: list[Pulse] = []
    first: list[float] | None = None  # the phase waiting for its partner
    gap_us = 0.0

    def monophasic(phase: list[float]) -> Pulse:
        return Pulse(phase[0] * 1e-6, phase[2], phase[1])

    for span in spans:
        start_us, width_us, current_ma = span
        if current_ma == 0:
            if first is not None:
                gap_us = width_us
            continue
        if first is None:
            first, gap_us = span, 0.0
        elif (current_ma > 0) != (first[2] > 0):
            pulses.append(Pulse(first[0] * 1e-6, first[2], first[1], gap_us, current_ma, width_us))
            first = None
        else:
            pulses.append(monophasic(first))
            first, gap_us = span, 0.0
    if first is not None:
        pulses.append(monophasic(first))
    return tuple(pulses)


def _unknown(result: Sm4Result = Sm4Result.INVALID_CMD_ERROR) -> Sm4RawPacket:
    return Sm4RawPacket(Sm4Command.UNKNOWN_COMMAND, bytes([result]))


class P24Emulator(PtyEmulator):
    """A P24 on a pseudo-terminal: connect a driver to :attr:`port`.

    Parameters
    ----------
    response_delay_s : float
        Time from a request to its acknowledgement.
    watchdog_s : float
        Longest time without a poll before a running stimulation stops (1.5 s).
    device_id : str
        What GetDeviceId answers (at most 10 characters).

    Examples
    --------
    >>> from electrostim.devices import P24, P24Emulator
    >>> with P24Emulator(device_id="P24-TEST") as emu, P24(emu.port) as dev:
    ...     dev.connect()
    ...     dev.device_id, emu.stim_status.name
    ('P24-TEST', 'UNINITIALISED')
    """

    name = "P24"
    #: F0, then (81, length high), (81, length low): the CRC's first value byte is at 6
    checksum_byte = 6

    def __init__(self, *, response_delay_s: float = 0.0005, watchdog_s: float = 1.5, device_id: str = "EMU0000001"):
        super().__init__(response_delay_s=response_delay_s)
        self.watchdog_s = float(watchdog_s)
        self.device_id = device_id
        self.stim_status = Sm4StimStatus.UNINITIALISED
        #: the last MlUpdate accepted (None when not stimulating)
        self.update: Sm4MlUpdate | None = None
        #: channel → state reported by MlGetCurrentData (index 0 of the ack's list is channel 1)
        self.channel_errors: dict[int, Sm4ChannelError] = {}
        self.low_level_pulses: list[Sm4LlChannelConfig] = []
        self.watchdog_stops = 0  # stimulations stopped for want of a poll
        self.last_poll_s = time.monotonic()
        #: channel → (start of its current train's period 0 in s, its period in s, its pulses)
        self._trains: dict[int, tuple[float, float, tuple[Pulse, ...]]] = {}

    # -- codec ------------------------------------------------------------------------------------
    def _stream_decoder(self) -> Sm4FrameDecoder:
        return Sm4FrameDecoder()

    def _decode(self, frame: bytes) -> tuple[int, Any]:
        return sm4_decode(frame)

    def _encode(self, message: Any, packet_number: int) -> bytes:
        return sm4_encode(message, packet_number)

    # -- timers and faults ------------------------------------------------------------------------
    def _tick(self, now: float) -> list[tuple[Any, int]]:
        if self.stim_status == Sm4StimStatus.ML_RUNNING and now - self.last_poll_s > self.watchdog_s:
            self.watchdog_stops += 1
            self._halt(now)
        return []

    def _halt(self, now: float) -> None:
        """Stop stimulating; the mid level stays initialised."""
        self.update = None
        self.stim_status = Sm4StimStatus.ML_INITIALISED
        self._trains = {}
        self.stop_outputs(now)

    def electrode_error(self, channel: int = 1, error: Sm4ChannelError = Sm4ChannelError.ELECTRODE_ERROR,
                        now: float | None = None) -> None:
        """``channel``'s electrode check failed: stop every output; the next polls report it.

        ``now`` is when it happens (default: the time of the call).
        """
        with self._lock:
            self.channel_errors[int(channel)] = Sm4ChannelError(error)
            if self.stim_status == Sm4StimStatus.ML_RUNNING:
                self._halt(time.monotonic() if now is None else now)

    # -- requests ---------------------------------------------------------------------------------
    def _ml_initialised(self) -> bool:
        return self.stim_status in (Sm4StimStatus.ML_INITIALISED, Sm4StimStatus.ML_RUNNING)

    def _handle(self, pn: int, msg: Any, now: float) -> list[tuple[Any, int]]:
        if isinstance(msg, Sm4MlGetCurrentData):
            return [(self._current_data(now), pn)]
        if isinstance(msg, Sm4MlUpdate):
            return [(Sm4MlUpdateAck(self._ml_update(msg, now)), pn)]
        if isinstance(msg, Sm4MlInit):
            self._halt(now)
            self.channel_errors = {}
            return [(Sm4MlInitAck(Sm4Result.OK), pn)]
        if isinstance(msg, Sm4MlStop):
            self._halt(now)
            self.stim_status = Sm4StimStatus.UNINITIALISED
            self.channel_errors = {}
            return [(Sm4MlStopAck(Sm4Result.OK), pn)]
        if isinstance(msg, Sm4GetDeviceId):
            return [(Sm4GetDeviceIdAck(Sm4Result.OK, self.device_id), pn)]
        if isinstance(msg, Sm4GetExtendedVersion):
            return [(Sm4GetExtendedVersionAck(Sm4Result.OK, (1, 0, 0), (4, 0, 0)), pn)]
        if isinstance(msg, Sm4GetStimStatus):
            return [(Sm4GetStimStatusAck(Sm4Result.OK, self.stim_status), pn)]
        if isinstance(msg, Sm4Reset):
            self._halt(now)
            self.stim_status = Sm4StimStatus.UNINITIALISED
            self.channel_errors = {}
            return [(Sm4ResetAck(Sm4Result.OK), pn)]
        if isinstance(msg, Sm4LlInit):
            if self.stim_status == Sm4StimStatus.ML_RUNNING:
                return [(Sm4LlInitAck(Sm4Result.BUSY), pn)]
            self.stim_status = Sm4StimStatus.LL_INITIALISED
            return [(Sm4LlInitAck(Sm4Result.OK), pn)]
        if isinstance(msg, Sm4LlChannelConfig):
            if self.stim_status != Sm4StimStatus.LL_INITIALISED:
                return [(Sm4LlChannelConfigAck(Sm4Result.NOT_INITIALIZED_ERROR, msg.channel, msg.connector), pn)]
            self.low_level_pulses.append(msg)
            if msg.enable_stimulation:
                self.pulse_recorder.add_group(msg.channel, now, p24_shape_pulses(msg.points))
            return [(Sm4LlChannelConfigAck(Sm4Result.OK, msg.channel, msg.connector), pn)]
        if isinstance(msg, Sm4LlStop):
            if self.stim_status == Sm4StimStatus.LL_INITIALISED:
                self.stim_status = Sm4StimStatus.UNINITIALISED
            return [(Sm4LlStopAck(Sm4Result.OK), pn)]
        # an acknowledgement (device → PC) sent to the device, or a command without a layout here
        return [(_unknown(), pn)]

    def _current_data(self, now: float) -> Sm4MlGetCurrentDataAck:
        if not self._ml_initialised():
            return Sm4MlGetCurrentDataAck(Sm4Result.NOT_INITIALIZED_ERROR)
        self.last_poll_s = now
        errors = tuple(self.channel_errors.get(ch, Sm4ChannelError.OK) for ch in range(1, 9))
        active = tuple(c.channel for c in self.update.channels) if self.update is not None else ()
        result = Sm4Result.ELECTRODE_ERROR if Sm4ChannelError.ELECTRODE_ERROR in errors else Sm4Result.OK
        return Sm4MlGetCurrentDataAck(result, active, errors)

    def _ml_update(self, msg: Sm4MlUpdate, now: float) -> Sm4Result:
        if not self._ml_initialised():
            return Sm4Result.NOT_INITIALIZED_ERROR
        if any(e != Sm4ChannelError.OK for e in self.channel_errors.values()):
            return Sm4Result.ELECTRODE_ERROR
        for c in msg.channels:
            too_long = sum(p.pulse_width_us for p in c.points) > c.period_ms * 1000.0
            too_strong = any(abs(p.current_ma) > _MAX_CURRENT_MA for p in c.points)
            if c.channel > _CHANNELS or too_long or too_strong:
                return Sm4Result.PARAMETER_ERROR
        if self.stim_status != Sm4StimStatus.ML_RUNNING:
            self.last_poll_s = now  # the watchdog runs from the start of stimulation
        self.update = msg
        self.stim_status = Sm4StimStatus.ML_RUNNING
        self.set_outputs({c.channel: OutputState(max(abs(p.current_ma) for p in c.points), c.points[0].pulse_width_us)
                          for c in msg.channels}, now)
        self._emit_update(msg, now)
        return Sm4Result.OK

    def _emit_update(self, msg: Sm4MlUpdate, now: float) -> None:
        """Start, change or end each channel's train (the rules are in the module docstring)."""
        listed = {c.channel for c in msg.channels}
        for ch in [ch for ch in self._trains if ch not in listed]:
            self.pulse_recorder.end_train(ch, now)
            del self._trains[ch]
        for c in msg.channels:
            period_s = c.period_ms * 1e-3
            pulses = p24_shape_pulses(c.points)
            if c.channel in self._trains:
                origin_s, old_period_s, old_pulses = self._trains[c.channel]
                if (old_period_s, old_pulses) == (period_s, pulses):
                    continue  # the same shape at the same period: the train runs on
                last = math.floor((now - origin_s) / old_period_s + 1e-9)  # the last shape started at or before now
                self.pulse_recorder.end_train(c.channel, periods=last + 1)
                origin_s += last * old_period_s + period_s
            else:
                origin_s = now
            self._trains[c.channel] = (origin_s, period_s, pulses)
            self.pulse_recorder.start_train(c.channel, origin_s=origin_s, period_s=period_s, pulses=pulses)

    def _bad_packet(self, frame: bytes, error: ProtocolError, now: float) -> list[tuple[Any, int]]:
        """A valid frame whose data could not be decoded: its acknowledgement with "parameter error"."""
        try:
            payload = unstuff(frame[9:-1])
        except ProtocolError:
            return []
        if len(payload) < 2:
            return []
        pn, command = payload[0] >> 2, (payload[0] & 3) << 8 | payload[1]
        ack = _ACK_OF.get(command)
        return [(ack(Sm4Result.PARAMETER_ERROR), pn)] if ack is not None else [(_unknown(), pn)]
