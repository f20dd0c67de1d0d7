"""HASOMED RehaStim2 over serial (ScienceMode2): the driver.

Connect: wait for the device's Init (it repeats it every 500 ms), answer InitAck, ask
the stimulation mode and stop a channel list left running. Configure:
InitChannelListMode with the program's outputs on channels 1..n (in the program's
order), its repetition period as the main interval, and doublets or triplets for
bursts of 2 or 3 pulses. Start and every change: StartChannelListMode with each
channel's current and width (see :mod:`.._hardware` for how they follow the schedule).
Stop: StopChannelListMode. A Watchdog goes out whenever the link was quiet for 0.5 s
(the device drops it after 1.2 s). Every request waits at most 100 ms for its
acknowledgement.

The device runs every channel of the list at the one main interval, and low-frequency
channels every k-th period; ``assess(..., device="rehastim2")`` puts each period and
burst interval on the device's 0.5 ms grid (rounded up: never faster) and refuses what
one main interval cannot serve, and the driver refuses it again at configure.
"""

from __future__ import annotations

import time
from typing import Any

from ...safety import ApprovedPlan
from .._framing import DecodedPacket, FieldRangeError
from .._hardware import OutputCommand, SerialStimulator
from .._link import SerialLink
from .._stimulator import DeviceError
from .codec import (
    Sm2ChannelPulse,
    Sm2FrameDecoder,
    Sm2GetStimulationMode,
    Sm2GetStimulationModeAck,
    Sm2Init,
    Sm2InitAck,
    Sm2InitChannelListMode,
    Sm2InitChannelListModeAck,
    Sm2PulseMode,
    Sm2Result,
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

__all__ = ["RehaStim2", "SM2_SERIAL", "Sm2Codec"]

#: Serial settings of the RehaStim2: 460 800 baud, 8 data bits, even parity, 1 stop bit, no flow control.
SM2_SERIAL: dict[str, Any] = {"baudrate": 460_800, "parity": "E", "rtscts": False}

_ACKS = (Sm2GetStimulationModeAck, Sm2InitChannelListModeAck, Sm2StartChannelListModeAck, Sm2StopChannelListModeAck,
         Sm2SinglePulseAck, Sm2UnknownCommand)

_ERRORS = {
    Sm2StimulationErrorCode.EMERGENCY_SWITCH: "the emergency switch was pressed",
    Sm2StimulationErrorCode.ELECTRODE_ERROR: "electrode error (the skin resistance test failed)",
    Sm2StimulationErrorCode.MODULE_ERROR: "stimulation module error",
}

_RESULTS = {
    Sm2Result.TRANSFER_ERROR: "transfer error",
    Sm2Result.PARAMETER_ERROR: "parameter error",
    Sm2Result.WRONG_MODE: "wrong mode",
    Sm2Result.BUSY: "busy",
}


class Sm2Codec:
    """ScienceMode2 for a :class:`~.._link.SerialLink`."""

    name = "RehaStim2"
    packet_numbers = 256

    def __init__(self, *, lenient: bool = False):
        self.lenient = lenient

    def encode(self, message: Any, packet_number: int) -> bytes:
        return sm2_encode(message, packet_number)

    def decode(self, frame: bytes) -> DecodedPacket:
        return sm2_decode(frame, lenient=self.lenient)

    def stream_decoder(self) -> Sm2FrameDecoder:
        return Sm2FrameDecoder(lenient=self.lenient)

    def is_ack_of(self, ack: Any, request: Any) -> bool:
        if request is None:
            return isinstance(ack, _ACKS)
        if isinstance(ack, Sm2UnknownCommand):
            return bool(ack.unknown_command == request.command)
        return isinstance(ack, _ACKS) and ack.command == request.command + 1


def _check_result(ack: Any, what: str) -> None:
    if isinstance(ack, Sm2UnknownCommand):
        raise DeviceError(f"the RehaStim2 does not know the command {what}")
    if ack.result != Sm2Result.OK:
        raise DeviceError(f"the RehaStim2 refused {what}: {_RESULTS.get(ack.result, ack.result)}")


class RehaStim2(SerialStimulator):
    """HASOMED RehaStim2 on a serial port (ScienceMode2).

    Parameters
    ----------
    port : str
        Serial device (``/dev/ttyUSB0``) or the port an emulator prints.
    init_timeout_s : float
        Longest wait for the device's first Init.

    Examples
    --------
    >>> import electrostim as es
    >>> from electrostim.devices import RehaStim2, RehaStim2Emulator
    >>> a = es.assess(es.load_program("knee-oa-tens"), device="rehastim2")
    >>> a.verdict  # the RehaStim2's interphase gap is fixed at 100 µs: a person confirms the change
    'needs_confirmation'
    >>> plan = a.approve(confirm=True, confirmed_by="doctest")
    >>> with RehaStim2Emulator() as emu, RehaStim2(emu.port) as dev:
    ...     dev.connect(); dev.configure(plan); dev.start()
    ...     _ = dev.set_intensity("knee-1", 20.0)
    ...     dev.stop()
    >>> dev.state.value
    'disconnected'
    """

    def __init__(self, port: str, *, response_timeout_s: float = 0.1, keepalive_s: float = 0.5,
                 init_timeout_s: float = 1.5):
        super().__init__(port, "rehastim2", response_timeout_s=response_timeout_s, keepalive_s=keepalive_s)
        self.init_timeout_s = float(init_timeout_s)
        self._channels: dict[str, int] = {}
        self._modes: dict[str, Sm2PulseMode] = {}
        self._init_seen: list[int] = []

    # -- link -------------------------------------------------------------------------------------
    def _open(self) -> SerialLink:
        return SerialLink(self.port, Sm2Codec(), response_timeout_s=self.response_timeout_s,
                          on_message=self._on_link_message, on_error=self._on_link_error, **SM2_SERIAL)

    def _on_link_message(self, packet_number: int, message: Any) -> None:
        if isinstance(message, Sm2Init) and self._state.value == "disconnected":
            self._init_seen.append(packet_number)
            return
        super()._on_link_message(packet_number, message)

    def _device_message(self, message: Any) -> str | None:
        if isinstance(message, Sm2StimulationError):
            return f"the RehaStim2 stopped: {_ERRORS.get(message.error, message.error)}"
        if isinstance(message, Sm2Init):
            return "the RehaStim2 sent Init again: it dropped the connection (watchdog or restart)"
        return f"unexpected {type(message).__name__} from the RehaStim2"

    # -- protocol ---------------------------------------------------------------------------------
    def _handshake(self) -> None:
        assert self.link is not None
        deadline = time.monotonic() + self.init_timeout_s
        while not self._init_seen:
            if self.link.lost:
                raise DeviceError(self.link.lost)
            if time.monotonic() > deadline:
                raise DeviceError(f"no Init from a RehaStim2 on {self.port} within {self.init_timeout_s:g} s: "
                                  "is it switched on, connected, and not in use by another program?")
            time.sleep(0.002)
        self.link.send(Sm2InitAck(), packet_number=self._init_seen[-1])
        ack = self.link.request(Sm2GetStimulationMode())
        _check_result(ack, "GetStimulationMode")
        if ack.mode != Sm2StimulationMode.START:
            _check_result(self.link.request(Sm2StopChannelListMode()), "StopChannelListMode")

    def _send_config(self, plan: ApprovedPlan) -> None:
        """InitChannelListMode for the approved program (as the RehaStim2 delivers it: ``assess`` put its periods
        and burst intervals on the device's grids). Outputs at the shortest period form the main list; outputs
        at k times that period are low-frequency channels (factor k - 1). Anything else is refused here too."""
        assert self.link is not None and self._schedule is not None
        outputs = self._phase_outputs
        periods: dict[str, float] = {}
        inner: set[float] = set()
        self._modes = {}
        for o in outputs:
            st = o.stimulus
            if st.pulse.shape != "symmetric-biphasic" or st.frequency_modulation is not None:
                raise DeviceError(f"the RehaStim2 driver delivers fixed-rate symmetric biphasic pulses; output "
                                  f"{o.label!r} is not one (assess the program for the rehastim2)")
            periods[o.label] = round(1000.0 / st.nominal_repetition_hz, 9)
            env = plan.output_envelope(o.label)
            if st.nominal_repetition_hz > env.max_repetition_hz * (1 + 1e-9):
                raise DeviceError(f"output {o.label!r}: {st.nominal_repetition_hz:g} Hz is above the approved "
                                  f"{env.max_repetition_hz:g} Hz")
            burst = st.burst
            n = burst.pulses_per_burst if burst else 1
            if n > 3:
                raise DeviceError(f"the RehaStim2 delivers at most 3 pulses per period (a triplet); output "
                                  f"{o.label!r} asks for bursts of {n}")
            self._modes[o.label] = Sm2PulseMode(n - 1)
            if n > 1:
                inner.add(round(1000.0 / st.pulse.frequency_hz, 9))
        if len(inner) > 1:
            raise DeviceError("the RehaStim2 has one inter-pulse interval for every doublet and triplet, but this "
                              f"program's bursts use {', '.join(f'{v:g}' for v in sorted(inner))} ms")
        main = min(periods.values())
        slow = {round(v / main, 9) for v in periods.values()} - {1.0}
        if len(slow) > 1 or any(abs(k - round(k)) > 1e-9 or k > 8 for k in slow):
            raise DeviceError("the RehaStim2 runs every channel at one main interval (some every k-th period, one k "
                              f"up to 8), but this program's outputs repeat every "
                              f"{', '.join(f'{v:g}' for v in sorted(set(periods.values())))} ms")
        factor = round(slow.pop()) if slow else 1
        self._channels = {o.label: i + 1 for i, o in enumerate(outputs)}
        low = tuple(self._channels[lbl] for lbl, v in periods.items() if abs(v - main * factor) < 1e-9 and factor > 1)
        try:
            message = Sm2InitChannelListMode(active_channels=tuple(self._channels.values()), main_interval_ms=main,
                                             inter_pulse_interval_ms=inner.pop() if inner else 8.0,
                                             low_frequency_factor=factor - 1, low_frequency_channels=low)
            message._check_documented()
        except FieldRangeError as exc:  # a period off the grid or out of range: the plan was not made for this device
            raise DeviceError(f"the RehaStim2 cannot run this program: {exc}") from None
        _check_result(self.link.request(message), "InitChannelListMode")

    def _send_outputs(self, commands: dict[str, OutputCommand], first: bool) -> None:
        assert self.link is not None
        pulses = []
        for label in self._channels:
            c = commands.get(label, OutputCommand(0.0, 0.0))
            width = int(min(500, max(20, c.pulse_width_us or 20)))
            pulses.append(Sm2ChannelPulse(pulse_width_us=width, current_ma=int(c.current_ma), mode=self._modes[label]))
        _check_result(self.link.request(Sm2StartChannelListMode(tuple(pulses))), "StartChannelListMode")

    def _send_stop(self) -> None:
        assert self.link is not None
        ack = self.link.request(Sm2StopChannelListMode())
        if not isinstance(ack, Sm2UnknownCommand) and ack.result == Sm2Result.WRONG_MODE:
            return  # nothing was running: the outputs are off
        _check_result(ack, "StopChannelListMode")

    def _send_keepalive(self) -> None:
        assert self.link is not None
        self.link.send(Sm2Watchdog())
