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

Every pulse it emits is recorded (:meth:`~.._emulator.PtyEmulator.emitted`), with
these rules for the timing the public description leaves open:

* **Channel list mode.** The period timing starts when the first StartChannelListMode
  after InitChannelListMode is processed (time ``t0``). Period ``k`` starts at
  ``t0 + k * main interval``; the ``i``-th active channel (0-based, in increasing
  channel order, whatever the channel numbers) fires in its fixed 1.5 ms slot, at
  ``i * 1.5 ms`` after the period start. A doublet or triplet adds 1 or 2 pulses at
  the inter-pulse interval after the first. A low-frequency channel fires in periods
  ``0, f + 1, 2 (f + 1), ...`` only (``f`` the low-frequency factor).
* **Update.** A later StartChannelListMode changes the current, width and mode of
  every pulse that starts at or after the moment it is processed; the period timing
  runs on from ``t0``.
* **One-shot mode** (main interval code 0, ``main_interval_ms`` None): each
  StartChannelListMode fires one period's pulses (slots, doublets and triplets as
  above) from the moment it is processed; low-frequency channels take part in every
  ``(f + 1)``-th of them, counted from the first after InitChannelListMode.
* **SinglePulse** (start mode) fires one pulse on its channel when processed.
* **A pulse** is biphasic and charge balanced: a first phase of ``+current_ma``
  (:attr:`RehaStim2Emulator.first_phase_sign`), the fixed 100 µs gap, then
  ``-current_ma``, each phase ``pulse_width_us`` wide. The sign is the device's own,
  between its channel's two leads (first phase positive, as assumed here; the device
  cannot reverse it). The schedule signs currents at the active pad, cathodic
  negative: compare magnitudes, or the sign after mapping the pads to the leads. A
  channel at 0 mA emits nothing (its slot stays). Test impulses are not recorded.
* StopChannelListMode, a watchdog drop, an electrode error and
  :meth:`~.._emulator.PtyEmulator.vanish` end every pulse from that moment (a pulse
  already started is whole).

It decodes leniently (what the pysciencemode client sends is understood where the
meaning is unambiguous; see :func:`~.codec.sm2_decode`).
"""

from __future__ import annotations

import math
import time
from typing import Any

from .._emitted import Pulse
from .._emulator import OutputState, PtyEmulator
from .._framing import ProtocolError, unstuff
from .codec import (
    Sm2FrameDecoder,
    Sm2GetStimulationMode,
    Sm2GetStimulationModeAck,
    Sm2Init,
    Sm2InitAck,
    Sm2InitChannelListMode,
    Sm2InitChannelListModeAck,
    Sm2InitResult,
    Sm2PulseMode,
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

#: the fixed time between the two phases of a pulse (µs)
_GAP_US = 100.0
#: the slot of each channel of the list (s)
_SLOT_S = 1.5e-3
#: pulses per period of each mode
_PULSES_PER_MODE = {Sm2PulseMode.SINGLE: 1, Sm2PulseMode.DOUBLET: 2, Sm2PulseMode.TRIPLET: 3}


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
    #: sign of a pulse's first phase (+1: positive first, as assumed; the second is opposite)
    first_phase_sign = 1.0

    def __init__(self, *, response_delay_s: float = 0.0005, init_period_s: float = 0.5, watchdog_s: float = 1.2):
        super().__init__(response_delay_s=response_delay_s)
        self.init_period_s = float(init_period_s)
        self.watchdog_s = float(watchdog_s)
        self.initialised = False  # InitAck received
        self.mode = Sm2StimulationMode.START
        self.channel_list: Sm2InitChannelListMode | None = None
        self.single_pulses: list[Sm2SinglePulse] = []
        self.drops = 0  # connections dropped by the watchdog
        #: (timer, due, previous tick, tick) each time a timer fires ("init", "drop"; monotonic seconds): a timer
        #: fires at the first tick at or past its due time, however late the tick itself ran
        self.timer_log: list[tuple[str, float, float, float]] = []
        self._last_tick_s = -math.inf
        self._own_number = 0
        self._next_init = 0.0
        self._train_origin_s: float | None = None  # start of period 0 of the running channel list
        self._one_shots = 0  # StartChannelListMode in one-shot mode since InitChannelListMode

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
        previous, self._last_tick_s = self._last_tick_s, now
        if self.initialised and now - self.last_valid_s > self.watchdog_s:
            self.timer_log.append(("drop", self.last_valid_s + self.watchdog_s, previous, now))
            self.drops += 1
            self._drop_link(now)
        if not self.initialised and now >= self._next_init:
            self.timer_log.append(("init", self._next_init, previous, now))
            self._next_init = now + self.init_period_s
            return [(Sm2Init(protocol_version=1), self._own())]
        return []

    def _drop_link(self, now: float) -> None:
        self.initialised = False
        self.mode = Sm2StimulationMode.START
        self.channel_list = None
        self._train_origin_s = None
        self.stop_outputs(now)
        self._next_init = now

    def electrode_error(self, error: Sm2StimulationErrorCode = Sm2StimulationErrorCode.ELECTRODE_ERROR,
                        now: float | None = None) -> None:
        """The test impulse failed (or ``error``): stop, return to start mode, send StimulationError.

        ``now`` is when it happens (default: the time of the call).
        """
        with self._lock:
            now = time.monotonic() if now is None else now
            self.mode = Sm2StimulationMode.START
            self._train_origin_s = None
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
            self._train_origin_s = None
            self._one_shots = 0
            return [(Sm2InitChannelListModeAck(Sm2Result.OK), pn)]
        if isinstance(msg, Sm2StartChannelListMode):
            if self.channel_list is None or self.mode == Sm2StimulationMode.START:
                return [(Sm2StartChannelListModeAck(Sm2Result.WRONG_MODE), pn)]
            channels = self.channel_list.active_channels
            if len(msg.pulses) != len(channels):
                return [(Sm2StartChannelListModeAck(Sm2Result.PARAMETER_ERROR), pn)]
            self.mode = Sm2StimulationMode.STARTED
            self.set_outputs({ch: OutputState(p.current_ma, p.pulse_width_us) for ch, p in zip(channels, msg.pulses)}, now)
            self._emit_channel_list(msg, now)
            return [(Sm2StartChannelListModeAck(Sm2Result.OK), pn)]
        if isinstance(msg, Sm2StopChannelListMode):
            if self.mode == Sm2StimulationMode.START:
                return [(Sm2StopChannelListModeAck(Sm2Result.WRONG_MODE), pn)]
            self.mode = Sm2StimulationMode.START
            self.channel_list = None
            self._train_origin_s = None
            self.stop_outputs(now)
            return [(Sm2StopChannelListModeAck(Sm2Result.OK), pn)]
        if isinstance(msg, Sm2SinglePulse):
            if self.mode != Sm2StimulationMode.START:
                return [(Sm2SinglePulseAck(Sm2Result.WRONG_MODE), pn)]
            self.single_pulses.append(msg)
            pulse = self._pulses(msg.current_ma, msg.pulse_width_us, 1, 0.0, 0.0)
            self.pulse_recorder.add_group(msg.channel, now, pulse)
            return [(Sm2SinglePulseAck(Sm2Result.OK), pn)]
        if isinstance(msg, Sm2RawPacket):
            return [(Sm2UnknownCommand(msg.command), pn)]
        return [(Sm2UnknownCommand(msg.command), pn)]  # a device → PC message sent to the device

    # -- pulses -----------------------------------------------------------------------------------
    def _pulses(self, current_ma: float, pulse_width_us: float, count: int, slot_s: float,
                inter_pulse_s: float) -> list[Pulse]:
        """The pulses of one channel in one period: ``count`` from ``slot_s`` on, ``inter_pulse_s`` apart."""
        if current_ma <= 0:
            return []
        first = self.first_phase_sign * float(current_ma)
        return [Pulse(slot_s + j * inter_pulse_s, first, float(pulse_width_us), _GAP_US, -first, float(pulse_width_us))
                for j in range(count)]

    def _emit_channel_list(self, msg: Sm2StartChannelListMode, now: float) -> None:
        """Start or update the pulse trains of the channel list (one-shot: fire one period now)."""
        cl = self.channel_list
        assert cl is not None
        every = cl.low_frequency_factor + 1
        inter_pulse_s = cl.inter_pulse_interval_ms * 1e-3
        if cl.main_interval_ms is None:
            shot = self._one_shots
            self._one_shots += 1
            for i, (ch, p) in enumerate(zip(cl.active_channels, msg.pulses)):
                if ch in cl.low_frequency_channels and shot % every:
                    continue
                pulses = self._pulses(p.current_ma, p.pulse_width_us, _PULSES_PER_MODE[p.mode], i * _SLOT_S,
                                      inter_pulse_s)
                self.pulse_recorder.add_group(ch, now, pulses)
            return
        if self._train_origin_s is None:
            self._train_origin_s = now
        for i, (ch, p) in enumerate(zip(cl.active_channels, msg.pulses)):
            period_s = cl.main_interval_ms * 1e-3 * (every if ch in cl.low_frequency_channels else 1)
            pulses = self._pulses(p.current_ma, p.pulse_width_us, _PULSES_PER_MODE[p.mode], i * _SLOT_S, inter_pulse_s)
            self.pulse_recorder.start_train(ch, origin_s=self._train_origin_s, period_s=period_s, pulses=pulses,
                                            begin_s=now)

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
