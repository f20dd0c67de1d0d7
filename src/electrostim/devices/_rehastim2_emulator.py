"""A RehaStim2 (ScienceMode2) on a pseudo-terminal.

It behaves as ``reference/sciencemode.md`` describes the device:

* until it gets InitAck it sends Init (protocol version 1) every 500 ms;
* after InitAck a link that carries no valid packet for 1200 ms is dropped: the outputs
  stop, the mode returns to start and Init is sent again every 500 ms;
* modes: start → InitChannelListMode → initialised → StartChannelListMode → started
  (a later StartChannelListMode updates the pulses) → StopChannelListMode → start;
  a command in the wrong mode is answered with result -3, fields out of range with -2;
* an acknowledgement echoes the packet number of its request as it arrived; what the
  device sends unasked (Init, StimulationError) counts with its own number. (A
  pysciencemode client sends packet number 0x0F as 0x5A, unescaped, gets 0x5A back, and
  so finds the command byte of the acknowledgement where it reads it.)
* :meth:`RehaStim2Emulator.electrode_error` stops the outputs, returns to start mode
  and sends StimulationError -2, as the device does when its test impulse fails.

It decodes leniently (what the pysciencemode client sends is understood where the
meaning is unambiguous; see :func:`~._sciencemode2.sm2_decode`).
"""

from __future__ import annotations

import time
from typing import Any

from ._emulator import OutputState, PtyEmulator
from ._framing import ProtocolError, unstuff
from ._sciencemode2 import (
    Sm2FrameDecoder,
    Sm2GetStimulationMode,
    Sm2GetStimulationModeAck,
    Sm2Init,
    Sm2InitAck,
    Sm2InitChannelListMode,
    Sm2InitChannelListModeAck,
    Sm2InitResult,
    Sm2RawPacket,
    Sm2Result,
    Sm2SinglePulse,
    Sm2SinglePulseAck,
    Sm2StartChannelListMode,
    Sm2StartChannelListModeAck,
    Sm2StimulationError,
    Sm2StimulationErrorCode,
    Sm2StimulationMode,
    Sm2StopChannelListMode,
    Sm2StopChannelListModeAck,
    Sm2UnknownCommand,
    Sm2Watchdog,
    sm2_decode,
    sm2_encode,
)

__all__ = ["RehaStim2Emulator"]


class RehaStim2Emulator(PtyEmulator):
    """A RehaStim2 on a pseudo-terminal: connect a driver to :attr:`port`.

    Parameters
    ----------
    response_delay_s : float
        Time from a request to its acknowledgement (the device answers within 100 ms).
    init_period_s, watchdog_s : float
        Init repetition and watchdog timeout (500 ms and 1200 ms on the device).
    """

    name = "RehaStim2"
    checksum_byte = 2

    def __init__(self, *, response_delay_s: float = 0.0005, init_period_s: float = 0.5, watchdog_s: float = 1.2):
        super().__init__(response_delay_s=response_delay_s)
        self.init_period_s = float(init_period_s)
        self.watchdog_s = float(watchdog_s)
        self.initialised = False  # InitAck received
        self.mode = Sm2StimulationMode.START
        self.channel_list: Sm2InitChannelListMode | None = None
        self.single_pulses: list[Sm2SinglePulse] = []
        self.drops = 0  # connections dropped by the watchdog
        self._own_number = 0
        self._next_init = 0.0

    # -- codec ------------------------------------------------------------------------------------
    def _stream_decoder(self) -> Sm2FrameDecoder:
        return Sm2FrameDecoder(lenient=True)

    def _decode(self, frame: bytes) -> tuple[int, Any]:
        return sm2_decode(frame, lenient=True)

    def _encode(self, message: Any, packet_number: int) -> bytes:
        return sm2_encode(message, packet_number)

    def _own(self) -> int:
        n = self._own_number
        self._own_number = (n + 1) % 256
        return n

    # -- timers -----------------------------------------------------------------------------------
    def _tick(self, now: float) -> list[tuple[Any, int]]:
        if self.initialised and now - self.last_valid_s > self.watchdog_s:
            self.drops += 1
            self._drop_link(now)
        if not self.initialised and now >= self._next_init:
            self._next_init = now + self.init_period_s
            return [(Sm2Init(protocol_version=1), self._own())]
        return []

    def _drop_link(self, now: float) -> None:
        self.initialised = False
        self.mode = Sm2StimulationMode.START
        self.channel_list = None
        self.stop_outputs(now)
        self._next_init = now

    def electrode_error(self, error: Sm2StimulationErrorCode = Sm2StimulationErrorCode.ELECTRODE_ERROR) -> None:
        """The test impulse failed (or ``error``): stop, return to start mode, send StimulationError."""
        with self._lock:
            now = time.monotonic()
            self.mode = Sm2StimulationMode.START
            self.stop_outputs(now)
            self._queue([(Sm2StimulationError(error), self._own())], now - self.response_delay_s)

    # -- requests ---------------------------------------------------------------------------------
    def _handle(self, pn: int, msg: Any, now: float) -> list[tuple[Any, int]]:
        if isinstance(msg, Sm2InitAck):
            if msg.result == Sm2InitResult.OK:
                self.initialised = True
            return []
        if not self.initialised:
            return []  # before InitAck the device only repeats Init
        if isinstance(msg, Sm2Watchdog):
            return []
        if isinstance(msg, Sm2GetStimulationMode):
            return [(Sm2GetStimulationModeAck(Sm2Result.OK, self.mode), pn)]
        if isinstance(msg, Sm2InitChannelListMode):
            if self.mode == Sm2StimulationMode.STARTED:
                return [(Sm2InitChannelListModeAck(Sm2Result.WRONG_MODE), pn)]
            self.channel_list = msg
            self.mode = Sm2StimulationMode.INITIALISED
            return [(Sm2InitChannelListModeAck(Sm2Result.OK), pn)]
        if isinstance(msg, Sm2StartChannelListMode):
            if self.channel_list is None or self.mode == Sm2StimulationMode.START:
                return [(Sm2StartChannelListModeAck(Sm2Result.WRONG_MODE), pn)]
            channels = self.channel_list.active_channels
            if len(msg.pulses) != len(channels):
                return [(Sm2StartChannelListModeAck(Sm2Result.PARAMETER_ERROR), pn)]
            self.mode = Sm2StimulationMode.STARTED
            self.set_outputs({ch: OutputState(p.current_ma, p.pulse_width_us) for ch, p in zip(channels, msg.pulses)}, now)
            return [(Sm2StartChannelListModeAck(Sm2Result.OK), pn)]
        if isinstance(msg, Sm2StopChannelListMode):
            if self.mode == Sm2StimulationMode.START:
                return [(Sm2StopChannelListModeAck(Sm2Result.WRONG_MODE), pn)]
            self.mode = Sm2StimulationMode.START
            self.channel_list = None
            self.stop_outputs(now)
            return [(Sm2StopChannelListModeAck(Sm2Result.OK), pn)]
        if isinstance(msg, Sm2SinglePulse):
            if self.mode != Sm2StimulationMode.START:
                return [(Sm2SinglePulseAck(Sm2Result.WRONG_MODE), pn)]
            self.single_pulses.append(msg)
            return [(Sm2SinglePulseAck(Sm2Result.OK), pn)]
        if isinstance(msg, Sm2RawPacket):
            return [(Sm2UnknownCommand(msg.command), pn)]
        return [(Sm2UnknownCommand(msg.command), pn)]  # a device → PC message sent to the device

    def _bad_packet(self, frame: bytes, error: ProtocolError, now: float) -> list[tuple[Any, int]]:
        """A valid frame whose fields are out of range: parameter error, for the command it named."""
        if not self.initialised or error.reason != "data" or len(frame) < 7:
            return []
        try:
            body = unstuff(frame[5:-1], canonical=False)
        except ProtocolError:
            return []
        pn, command = body[0], body[1]
        acks = {Sm2InitChannelListMode.command: Sm2InitChannelListModeAck,
                Sm2StartChannelListMode.command: Sm2StartChannelListModeAck,
                Sm2SinglePulse.command: Sm2SinglePulseAck}
        ack = acks.get(command)
        return [(ack(Sm2Result.PARAMETER_ERROR), pn)] if ack else []
