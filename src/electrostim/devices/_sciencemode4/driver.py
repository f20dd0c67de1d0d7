"""HASOMED P24 over serial (ScienceMode4, mid level): the driver.

Connect: GetDeviceId until the device answers (the handshake), GetExtendedVersion
(the device must speak ScienceMode 4), GetStimStatus, and MlStop if a stimulation was
left running. Configure: MlInit (every channel stops on an electrode error). Start and
every change: MlUpdate with the program's outputs on channels 1..n (in the program's
order), each with its own period (the output's repetition rate) and its pulse shape as
points (see :func:`p24_points`), at the current and width the schedule asks for now
(see :mod:`.._hardware`). Stop: MlStop. Every request waits at most 100 ms for its
acknowledgement.

While the device is initialised it is polled with MlGetCurrentData every
``keepalive_s`` (0.5 s), whatever else is sent: the P24 stops stimulating when not
polled for 1.5 s, and the poll's answer carries each channel's state. An electrode
error (or any other channel error), or a channel that stopped stimulating without
being told, is a fault: the driver stops and reports it. Before configure, and after
a stop, GetStimStatus is the keepalive.

The device runs each channel at its own period: ``assess(..., device="p24")`` puts it
on the 0.5 ms grid (rounded up: never faster than asked) and refuses a rate that varies;
ramps, on/off cycles and amplitude or width modulation are the host's (the device ramp
is not used). A burst is sent as one shape per period, its pulses with zero-current
points between them; ``assess`` refuses one that does not fit in the 16 points of a
shape, and the driver refuses it again at configure.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ...program import PULSED_SHAPES, AsymmetricBiphasic, Stimulus, SymmetricBiphasic
from ...safety import ApprovedPlan, asymmetric_second_phase
from .._framing import DecodedPacket, FieldRangeError
from .._hardware import OutputCommand, SerialStimulator
from .._link import SerialLink
from .._stimulator import DeviceError
from .codec import (
    SM4_LIMITS,
    Sm4ChannelError,
    Sm4Command,
    Sm4FrameDecoder,
    Sm4GetDeviceId,
    Sm4GetDeviceIdAck,
    Sm4GetExtendedVersion,
    Sm4GetExtendedVersionAck,
    Sm4GetStimStatus,
    Sm4GetStimStatusAck,
    Sm4LlChannelConfigAck,
    Sm4LlInitAck,
    Sm4LlStop,
    Sm4LlStopAck,
    Sm4MlChannel,
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
    Sm4ResetAck,
    Sm4Result,
    Sm4StimStatus,
    sm4_decode,
    sm4_encode,
    sm4_period_code,
    sm4_period_ms,
)

__all__ = ["P24", "SM4_SERIAL", "Sm4Codec", "p24_points"]

#: Serial settings of the P24: 3 000 000 baud, 8 data bits, no parity, 1 stop bit, RTS/CTS flow control.
SM4_SERIAL: dict[str, Any] = {"baudrate": 3_000_000, "parity": "N", "rtscts": True}

#: What the device sends only as an answer (UnknownCommand and GeneralError answer any request).
_ACKS = (Sm4LlInitAck, Sm4LlChannelConfigAck, Sm4LlStopAck, Sm4MlInitAck, Sm4MlUpdateAck, Sm4MlStopAck,
         Sm4MlGetCurrentDataAck, Sm4GetDeviceIdAck, Sm4ResetAck, Sm4GetStimStatusAck, Sm4GetExtendedVersionAck)
_ANSWERS_ANY = (Sm4Command.GENERAL_ERROR, Sm4Command.UNKNOWN_COMMAND)

_CHANNEL_ERRORS = {
    Sm4ChannelError.ELECTRODE_ERROR: "an electrode error",
    Sm4ChannelError.PULSE_TIMEOUT: "a pulse timeout",
    Sm4ChannelError.PULSE_LOW_CURRENT: "a pulse below its current (poor electrode contact?)",
}

_MAX_POINT_US = SM4_LIMITS["pulse_width_us"][1]
#: the current step of a point (mA): the current code counts half milliamperes
_CURRENT_STEP_MA = 0.5


class Sm4Codec:
    """ScienceMode4 for a :class:`~.._link.SerialLink`: 6-bit packet numbers, an acknowledgement is ``command + 1``.

    UnknownCommand and GeneralError (decoded as :class:`~.codec.Sm4RawPacket`,
    one result byte) answer whatever request is in flight.
    """

    name = "P24"
    packet_numbers = SM4_LIMITS["packet_number"][1] + 1

    def encode(self, message: Any, packet_number: int) -> bytes:
        return sm4_encode(message, packet_number)

    def decode(self, frame: bytes) -> DecodedPacket:
        return sm4_decode(frame)

    def stream_decoder(self) -> Sm4FrameDecoder:
        return Sm4FrameDecoder()

    def is_ack_of(self, ack: Any, request: Any) -> bool:
        if isinstance(ack, Sm4RawPacket) and ack.command in _ANSWERS_ANY:
            return True
        if request is None:
            return isinstance(ack, _ACKS)
        return isinstance(ack, _ACKS) and ack.command == request.command + 1


def _result_text(result: int) -> str:
    try:
        return Sm4Result(result).name.lower().replace("_", " ")
    except ValueError:
        return f"result {result}"


def _check_result(ack: Any, what: str) -> None:
    if isinstance(ack, Sm4RawPacket):
        why = _result_text(ack.data[0]) if ack.data else "no reason given"
        if ack.command == Sm4Command.UNKNOWN_COMMAND:
            raise DeviceError(f"the P24 does not know the command {what} ({why})")
        raise DeviceError(f"the P24 answered {what} with a general error ({why})")
    if ack.result != Sm4Result.OK:
        raise DeviceError(f"the P24 refused {what}: {_result_text(ack.result)}")


# --------------------------------------------------------------------------- pulse shapes


def _hold(current_ma: float, duration_us: float) -> list[Sm4Point]:
    """``current_ma`` held for ``duration_us``, in points of at most 4095 µs (none for a duration under 1 µs)."""
    total = round(duration_us)
    points = []
    while total > 0:
        part = min(total, _MAX_POINT_US)
        points.append(Sm4Point(part, current_ma))
        total -= part
    return points


def _pulse(stimulus: Stimulus, current_ma: float, pulse_width_us: float) -> list[Sm4Point]:
    p = stimulus.pulse
    w = pulse_width_us
    if p.shape == "monophasic":
        first = current_ma if p.polarity == "anodic" else -current_ma
        if p.twin_peak_spacing_us is None:
            return _hold(first, w)
        return _hold(first, w) + _hold(0.0, p.twin_peak_spacing_us) + _hold(first, w)
    assert isinstance(p, (SymmetricBiphasic, AsymmetricBiphasic))  # p24_points takes rectangular pulses
    first = current_ma if p.leading_phase == "anodic" else -current_ma
    points = _hold(first, w) + _hold(0.0, p.interphase_gap_us)
    if p.shape == "symmetric-biphasic":
        return points + _hold(-first, w)
    # asymmetric: the second phase rounded down to the 0.5 mA and 1 µs grid, never above the schedule's
    second, width = asymmetric_second_phase(current_ma, w, p.second_phase_ratio, current_step_ma=_CURRENT_STEP_MA,
                                            width_step_us=1.0)
    return points + _hold(-math.copysign(second, first) if second > 0 else 0.0, width)


def p24_points(stimulus: Stimulus, current_ma: float, pulse_width_us: float) -> tuple[Sm4Point, ...]:
    """The points of one period's pulse shape on a P24 channel.

    A phase is one point (a constant current), an interphase gap or twin-peak spacing a
    point at 0 mA, a burst its pulses with 0 mA points between them; a span longer than
    4095 µs takes several points. Currents are signed as in the schedule (a cathodic
    phase is negative). The second phase of an asymmetric pulse is ``current / ratio``
    for ``width × ratio``, each rounded down to the device's 0.5 mA and 1 µs steps
    (:func:`~electrostim.safety.asymmetric_second_phase`): never above the schedule's.

    Parameters
    ----------
    stimulus : Stimulus
        The output's stimulus (a rectangular pulse shape).
    current_ma : float
        The first phase's current, a multiple of 0.5 mA.
    pulse_width_us : float
        The first phase's width (µs, rounded to whole µs).

    Examples
    --------
    >>> import electrostim as es
    >>> stim = es.load_program("knee-oa-tens").channels[0].stimulus
    >>> [(p.pulse_width_us, p.current_ma) for p in p24_points(stim, 20.0, 100)]
    [(100, -20.0), (20, 0.0), (100, 20.0)]
    """
    burst = stimulus.burst
    if burst is None:
        return tuple(_pulse(stimulus, current_ma, pulse_width_us))
    pulse = _pulse(stimulus, current_ma, pulse_width_us)
    spacing_us = 1e6 / stimulus.pulse.frequency_hz - sum(p.pulse_width_us for p in pulse)
    points: list[Sm4Point] = []
    for k in range(burst.pulses_per_burst):
        points += pulse if k == 0 else _pulse(stimulus, current_ma, pulse_width_us)
        if k < burst.pulses_per_burst - 1:
            points += _hold(0.0, spacing_us)
    return tuple(points)


# --------------------------------------------------------------------------- the driver


class P24(SerialStimulator):
    """HASOMED P24 on a serial port (ScienceMode4, mid level).

    Parameters
    ----------
    port : str
        Serial device (``/dev/ttyUSB0``) or the port an emulator prints.
    response_timeout_s : float
        Longest wait for any acknowledgement (100 ms).
    keepalive_s : float
        Poll period (the device stops when not polled for 1.5 s).
    connect_timeout_s : float
        How long the handshake asks for the device id before giving up.

    Examples
    --------
    >>> import electrostim as es
    >>> from electrostim.devices import P24, P24Emulator
    >>> plan = es.assess(es.load_program("knee-oa-tens"), device="p24").approve()
    >>> with P24Emulator() as emu, P24(emu.port) as dev:
    ...     dev.connect(); dev.configure(plan); dev.start()
    ...     _ = dev.set_intensity("knee-1", 20.0)
    ...     emu.stim_status.name, dev.commands_at(6.0)["knee-1"]  # after the program's 5 s ramp
    ...     dev.stop()
    ('ML_RUNNING', OutputCommand(current_ma=20.0, pulse_width_us=100.0))
    >>> dev.state.value, emu.output_on
    ('disconnected', False)
    """

    def __init__(self, port: str, *, response_timeout_s: float = 0.1, keepalive_s: float = 0.5,
                 connect_timeout_s: float = 0.5):
        super().__init__(port, "p24", response_timeout_s=response_timeout_s, keepalive_s=keepalive_s)
        self.connect_timeout_s = float(connect_timeout_s)
        #: what the device said about itself at connect
        self.device_id: str | None = None
        self.firmware_version: tuple[int, int, int] | None = None
        self._channels: dict[str, int] = {}
        self._stimuli: dict[str, Stimulus] = {}
        self._period_ms: dict[str, float] = {}
        self._ml_ready = False  # MlInit acknowledged, no MlStop since
        self._updated = False  # an MlUpdate went out since MlInit
        self._last_poll = 0.0

    # -- link -------------------------------------------------------------------------------------
    def _open(self) -> SerialLink:
        return SerialLink(self.port, Sm4Codec(), response_timeout_s=self.response_timeout_s,
                          on_message=self._on_link_message, on_error=self._on_link_error, **SM4_SERIAL)

    def _device_message(self, message: Any) -> str | None:
        return f"unexpected {type(message).__name__} from the P24 (it sends nothing unasked)"

    # -- protocol ---------------------------------------------------------------------------------
    def _handshake(self) -> None:
        assert self.link is not None
        self._ml_ready = self._updated = False
        deadline = time.monotonic() + self.connect_timeout_s
        while True:
            try:
                ack = self.link.request(Sm4GetDeviceId())
                break
            except DeviceError as exc:
                if self.link.lost:
                    raise
                if time.monotonic() >= deadline:
                    raise DeviceError(f"no answer from a P24 on {self.port} within {self.connect_timeout_s:g} s: "
                                      "is it switched on, connected, and not in use by another program? "
                                      f"(last: {exc})") from None
        # bytes left on the line and answers to earlier tries belong to connecting, not to the session
        self._fault_text = None
        _check_result(ack, "GetDeviceId")
        self.device_id = ack.device_id
        version = self.link.request(Sm4GetExtendedVersion())
        _check_result(version, "GetExtendedVersion")
        if version.science_mode_version[0] != 4:
            raise DeviceError(f"the device on {self.port} speaks ScienceMode "
                              f"{'.'.join(map(str, version.science_mode_version))}, not 4: it is not a P24")
        self.firmware_version = version.firmware_version
        status = self.link.request(Sm4GetStimStatus())
        _check_result(status, "GetStimStatus")
        if status.stim_status in (Sm4StimStatus.ML_INITIALISED, Sm4StimStatus.ML_RUNNING):
            _check_result(self.link.request(Sm4MlStop()), "MlStop")
        elif status.stim_status == Sm4StimStatus.LL_INITIALISED:
            _check_result(self.link.request(Sm4LlStop()), "LlStop")
        self._last_poll = time.monotonic()

    def _send_config(self, plan: ApprovedPlan) -> None:
        assert self.link is not None and self._schedule is not None
        outputs = self._phase_outputs
        n_max = self.profile.channels
        if len(outputs) > n_max:
            raise DeviceError(f"the P24 has {n_max} channels, but this program has {len(outputs)} outputs")
        self._channels, self._stimuli, self._period_ms = {}, {}, {}
        for i, o in enumerate(outputs):
            st = o.stimulus
            if st.pulse.shape not in PULSED_SHAPES:
                raise DeviceError(f"the P24 driver delivers rectangular pulses ({', '.join(PULSED_SHAPES)}), "
                                  f"but output {o.label!r} has shape {st.pulse.shape!r}")
            if st.frequency_modulation is not None:
                raise DeviceError(f"the P24 driver runs each output at one fixed rate; output {o.label!r}'s varies "
                                  "(assess the program for the p24)")
            rate = st.nominal_repetition_hz
            try:  # the approved period, on the device's 0.5 ms grid (assess put it there)
                period_ms = sm4_period_ms(sm4_period_code(round(1000.0 / rate, 9)))
            except FieldRangeError as exc:  # a rate the period field cannot carry: say which
                raise DeviceError(f"the P24 cannot run output {o.label!r} at {rate:g} Hz: {exc}") from None
            env = plan.output_envelope(o.label)
            if 1000.0 / period_ms > env.max_repetition_hz * (1 + 1e-9):
                raise DeviceError(f"output {o.label!r}: a period of {period_ms:g} ms is faster than the approved "
                                  f"{env.max_repetition_hz:g} Hz")
            # the widest phase at no current (the longest shape: an asymmetric second phase is never longer
            # than width x ratio) and at the highest current approved
            width = round(st.pulse.pulse_width_us)
            try:
                shapes = [p24_points(st, amp, width)
                          for amp in (0.0, math.floor(2.0 * plan.output_envelope(o.label).max_amplitude_ma) / 2.0)]
                for points in shapes:
                    Sm4MlChannel(i + 1, period_ms, points)
            except FieldRangeError as exc:  # a shape the update cannot carry: say why
                raise DeviceError(f"the P24 cannot carry output {o.label!r}'s pulse shape in one mid-level "
                                  f"update: {exc}") from None
            shape_us = max(sum(p.pulse_width_us for p in points) for points in shapes)
            if shape_us > period_ms * 1000.0:
                raise DeviceError(f"output {o.label!r}: a pulse shape of {shape_us} µs does not fit in the "
                                  f"P24's period of {period_ms:g} ms")
            self._channels[o.label] = i + 1
            self._stimuli[o.label] = st
            self._period_ms[o.label] = period_ms
        self._ml_ready = self._updated = False
        _check_result(self.link.request(Sm4MlInit(stop_all_channels_on_error=True)), "MlInit")
        self._ml_ready = True
        self._last_poll = time.monotonic()

    def _send_outputs(self, commands: dict[str, OutputCommand], first: bool) -> None:
        assert self.link is not None
        channels = []
        for label, ch in self._channels.items():
            st = self._stimuli[label]
            assert st.pulse.shape in PULSED_SHAPES  # _configure keeps rectangular pulses only
            c = commands.get(label, OutputCommand(0.0, 0.0))
            width = round(c.pulse_width_us) or round(st.pulse.pulse_width_us)
            channels.append(Sm4MlChannel(ch, self._period_ms[label], p24_points(st, c.current_ma, width)))
        _check_result(self.link.request(Sm4MlUpdate(tuple(channels))), "MlUpdate")
        self._updated = True

    def _send_stop(self) -> None:
        assert self.link is not None
        self._ml_ready = self._updated = False
        _check_result(self.link.request(Sm4MlStop()), "MlStop")

    def _push(self, first: bool = False, judged: bool = False) -> None:
        super()._push(first, judged)
        # updates do not keep the device alive: poll on time whatever else was sent
        if self.link is not None and self._t0 is not None and time.monotonic() - self._last_poll >= self.keepalive_s:
            self._send_keepalive()

    def _send_keepalive(self) -> None:
        assert self.link is not None
        self._last_poll = time.monotonic()
        if not self._ml_ready:
            _check_result(self.link.request(Sm4GetStimStatus()), "GetStimStatus")
            return
        ack = self.link.request(Sm4MlGetCurrentData())
        if isinstance(ack, Sm4MlGetCurrentDataAck):
            for label, ch in self._channels.items():
                error = ack.channel_errors[ch - 1]
                if error != Sm4ChannelError.OK:
                    raise DeviceError(f"the P24 reports {_CHANNEL_ERRORS.get(error, f'error {int(error)}')} on "
                                      f"channel {ch} (output {label!r}); it stopped stimulating")
            if ack.result == Sm4Result.ELECTRODE_ERROR:
                raise DeviceError("the P24 reports an electrode error; it stopped stimulating")
        _check_result(ack, "MlGetCurrentData")
        if self._updated:
            stopped = [ch for ch in self._channels.values() if ch not in ack.active_channels]
            if stopped:
                raise DeviceError(f"the P24 stopped stimulating channel{'s' * (len(stopped) > 1)} "
                                  f"{', '.join(map(str, stopped))} without being told (its watchdog?)")
