"""ScienceMode2 (HASOMED RehaStim2) codec: pure bytes in, bytes out.

Frame (``reference/sciencemode.md``)::

    F0 | 81, CRC ^ 55 | 81, LEN ^ 55 | stuffed body | 0F
    body = packet number, command, data (at most 60 bytes)

LEN is the length of the stuffed body and CRC its CRC-8 (:func:`crc8`). Multi-byte
fields are sent most significant byte first; results and error codes are signed bytes.
Messages are frozen dataclasses on the message base both codecs share
(:class:`~.._framing.Message`): their field names carry their units, and they check
their fields against their range table when built, raising :class:`FieldRangeError`
naming the field, the allowed range and the value. :func:`sm2_encode` turns one into
a frame, :func:`sm2_decode` a frame into ``(packet_number, message)``, and
:class:`Sm2FrameDecoder` finds frames in a byte stream.

=======  ==============================  ==========================================
command  message                         data bytes
=======  ==============================  ==========================================
1        :class:`Sm2Init`                protocol version
2        :class:`Sm2InitAck`             result (0 ok, -5 incompatible version)
3        :class:`Sm2UnknownCommand`      the command byte that was not understood
4        :class:`Sm2Watchdog`            none
10       :class:`Sm2GetStimulationMode`  none
11       ``Sm2GetStimulationModeAck``    result, mode (order assumed, see below)
30       ``Sm2InitChannelListMode``      low-frequency factor, active channels mask,
                                         low-frequency channels mask, inter-pulse
                                         interval code, main interval code MSB, LSB,
                                         channel execution
31       ``Sm2InitChannelListModeAck``   result
32       ``Sm2StartChannelListMode``     per active channel, increasing: mode, pulse
                                         width MSB, LSB (µs), current (mA)
33       ``Sm2StartChannelListModeAck``  result
34       ``Sm2StopChannelListMode``      none
35       ``Sm2StopChannelListModeAck``   result
36       :class:`Sm2SinglePulse`         channel (0-7), pulse width MSB, LSB, current
37       :class:`Sm2SinglePulseAck`      result
38       :class:`Sm2StimulationError`    error (-1 emergency switch, -2 electrode,
                                         -3 stimulation module)
=======  ==============================  ==========================================

Layout assumed where the public description is silent: an acknowledgement's data is
its result byte alone, and GetStimulationModeAck sends the result before the mode.
Channels are numbered 1-8 everywhere in this API (bit 0 of a mask is channel 1); the
SinglePulse channel byte 0-7 is the channel number minus one. Any other command byte
decodes to :class:`Sm2RawPacket`, so an emulator can answer it with
:class:`Sm2UnknownCommand`.

Lenient decoding (``lenient=True``) accepts what the pysciencemode 1.1.5 client sends
where the meaning is unambiguous, and otherwise checks as strictly:

1. An escape may stand for any byte (``81, x`` → ``x ^ 55``), not only for F0, 0F
   and 81: that client also escapes 0x55 and 0x0A in the data.
2. That client sends the packet number and command byte XOR 0x55 *without* the escape
   byte when they are F0, 0F, 81, 55 or 0A (see :data:`SM2_PYSCIENCEMODE_ALTERED`).
   The only command affected is 10 (GetStimulationMode), which arrives as 0x5F; 0x5F
   is no command, so it decodes as 10. An altered packet number cannot be told from a
   genuine one (0x0F arrives as 0x5A, which is also a valid number), so the packet
   number is returned as received. A correctly escaped packet number is still
   understood.
3. Inter-pulse and main interval codes below the documented 8 ms minimum are accepted
   (that client's default inter-pulse interval is below it); the message holds the
   interval the code means.

The encoder always writes frames the strict decoder accepts.

Examples
--------
>>> frame = sm2_encode(Sm2SinglePulse(channel=1, pulse_width_us=300, current_ma=20), packet_number=7)
>>> frame.hex(" ")
'f0 81 34 81 53 07 24 00 01 2c 14 0f'
>>> sm2_decode(frame)
DecodedPacket(packet_number=7, message=Sm2SinglePulse(channel=1, pulse_width_us=300, current_ma=20))
>>> sm2_main_interval_code(25.0), sm2_main_interval_ms(48)
(48, 25.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, cast

from .._framing import (
    START,
    STOP,
    Channels,
    Checked,
    DecodedPacket,
    FrameSplitter,
    Items,
    Message,
    ProtocolError,
    RawPacket,
    ResultAck,
    channels_to_mask,
    check_delimiters,
    check_int,
    crc8,
    escaped_header,
    field_error,
    grid_code,
    mask_to_channels,
    read_header,
    stuff,
    to_signed,
    unstuff,
)

__all__ = [
    "SM2_LIMITS",
    "SM2_MESSAGES",
    "SM2_PYSCIENCEMODE_ALTERED",
    "Sm2ChannelPulse",
    "Sm2Command",
    "Sm2FrameDecoder",
    "Sm2GetStimulationMode",
    "Sm2GetStimulationModeAck",
    "Sm2Init",
    "Sm2InitAck",
    "Sm2InitChannelListMode",
    "Sm2InitChannelListModeAck",
    "Sm2InitResult",
    "Sm2PulseMode",
    "Sm2RawPacket",
    "Sm2Result",
    "Sm2SinglePulse",
    "Sm2SinglePulseAck",
    "Sm2StartChannelListMode",
    "Sm2StartChannelListModeAck",
    "Sm2StimulationError",
    "Sm2StimulationErrorCode",
    "Sm2StimulationMode",
    "Sm2StopChannelListMode",
    "Sm2StopChannelListModeAck",
    "Sm2UnknownCommand",
    "Sm2Watchdog",
    "sm2_decode",
    "sm2_encode",
    "sm2_inter_pulse_interval_code",
    "sm2_inter_pulse_interval_ms",
    "sm2_main_interval_code",
    "sm2_main_interval_ms",
]


class Sm2Command(IntEnum):
    """ScienceMode2 command numbers."""

    INIT = 1
    INIT_ACK = 2
    UNKNOWN_COMMAND = 3
    WATCHDOG = 4
    GET_STIMULATION_MODE = 10
    GET_STIMULATION_MODE_ACK = 11
    INIT_CHANNEL_LIST_MODE = 30
    INIT_CHANNEL_LIST_MODE_ACK = 31
    START_CHANNEL_LIST_MODE = 32
    START_CHANNEL_LIST_MODE_ACK = 33
    STOP_CHANNEL_LIST_MODE = 34
    STOP_CHANNEL_LIST_MODE_ACK = 35
    SINGLE_PULSE = 36
    SINGLE_PULSE_ACK = 37
    STIMULATION_ERROR = 38


class Sm2Result(IntEnum):
    """Result of an acknowledgement (sent as a signed byte)."""

    OK = 0
    TRANSFER_ERROR = -1
    PARAMETER_ERROR = -2
    WRONG_MODE = -3
    BUSY = -8


class Sm2InitResult(IntEnum):
    """Result of InitAck (sent as a signed byte)."""

    OK = 0
    INCOMPATIBLE_VERSION = -5


class Sm2StimulationMode(IntEnum):
    """The device's stimulation mode, as GetStimulationModeAck reports it."""

    START = 0
    INITIALISED = 1
    STARTED = 2


class Sm2StimulationErrorCode(IntEnum):
    """Why the device stopped (StimulationError, sent as a signed byte)."""

    EMERGENCY_SWITCH = -1
    ELECTRODE_ERROR = -2
    MODULE_ERROR = -3


class Sm2PulseMode(IntEnum):
    """Pulses per period on a channel of the channel list."""

    SINGLE = 0
    DOUBLET = 1
    TRIPLET = 2


#: Documented ranges (``reference/sciencemode.md``), one place to correct them.
#: Intervals: ``(offset_ms, step_ms, lowest code, highest code, documented minimum ms)``.
SM2_LIMITS: dict[str, Any] = {
    "channel": (1, 8),
    "pulse_width_us": (20, 500),
    "current_ma": (0, 130),
    "low_frequency_factor": (0, 7),
    "channel_execution": (0,),  # 0: fixed 1.5 ms slots; no other value is documented
    "inter_pulse_interval_ms": (1.5, 0.5, 0, 0xFF, 8.0),
    "main_interval_ms": (1.0, 0.5, 1, 0xFFFF, 8.0),  # code 0 is one-shot mode (None)
    "channel_list_entries": (1, 8),
    "data_bytes_max": 60,
    "byte": (0, 0xFF),
}

#: Bytes pysciencemode 1.1.5 sends unescaped as ``b ^ 0x55`` when they are the packet
#: number or command byte: value meant → byte received.
SM2_PYSCIENCEMODE_ALTERED: dict[int, int] = {b: b ^ 0x55 for b in (0xF0, 0x0F, 0x81, 0x55, 0x0A)}

_MAX_FRAME_BYTES = 1 + 4 + 2 * (2 + SM2_LIMITS["data_bytes_max"]) + 1


# --------------------------------------------------------------------------- interval codes


def sm2_inter_pulse_interval_code(interval_ms: float, *, exact: bool = True) -> int:
    """The inter-pulse interval code ``c`` with ``interval = 0.5 c + 1.5 ms``.

    Checks the documented range, 8 to 129 ms. With ``exact=False`` the interval is
    rounded to the nearest 0.5 ms step first.

    Examples
    --------
    >>> sm2_inter_pulse_interval_code(8.0)
    13
    >>> sm2_inter_pulse_interval_code(5.0)
    Traceback (most recent call last):
    ...
    electrostim.devices._framing.FieldRangeError: Invalid value for 'inter_pulse_interval_ms' of ScienceMode2: allowed 8 to 129 ms in steps of 0.5 ms, but got 5.0.
    """
    offset, step, lo, hi, minimum = SM2_LIMITS["inter_pulse_interval_ms"]
    lowest = round((minimum - offset) / step)
    return grid_code("ScienceMode2", "inter_pulse_interval_ms", interval_ms, offset, step, lowest, hi, exact=exact)


def sm2_inter_pulse_interval_ms(code: int) -> float:
    """The inter-pulse interval of a code, ``0.5 c + 1.5`` ms (any byte, 0-255).

    >>> sm2_inter_pulse_interval_ms(13)
    8.0
    """
    offset, step, lo, hi, _ = SM2_LIMITS["inter_pulse_interval_ms"]
    return cast(float, offset + step * check_int("ScienceMode2", "inter_pulse_interval code", code, lo, hi))


def sm2_main_interval_code(interval_ms: float | None, *, exact: bool = True) -> int:
    """The main interval code ``c`` with ``interval = 0.5 c + 1 ms``; None (one-shot) is 0.

    Checks the documented minimum of 8 ms; the most a 16-bit code can carry is
    32768.5 ms. With ``exact=False`` the interval is rounded to the nearest 0.5 ms step.

    >>> sm2_main_interval_code(8.0), sm2_main_interval_code(None), sm2_main_interval_code(28.6, exact=False)
    (14, 0, 55)
    """
    if interval_ms is None:
        return 0
    offset, step, lo, hi, minimum = SM2_LIMITS["main_interval_ms"]
    lowest = round((minimum - offset) / step)
    return grid_code("ScienceMode2", "main_interval_ms", interval_ms, offset, step, lowest, hi, exact=exact)


def sm2_main_interval_ms(code: int) -> float | None:
    """The main interval of a code, ``0.5 c + 1`` ms; code 0 is one-shot mode (None).

    >>> sm2_main_interval_ms(14), sm2_main_interval_ms(0)
    (8.0, None)
    """
    offset, step, lo, hi, _ = SM2_LIMITS["main_interval_ms"]
    c = check_int("ScienceMode2", "main_interval code", code, 0, hi)
    return None if c == 0 else offset + step * c


# --------------------------------------------------------------------------- messages


class _Sm2Message(Message):
    """Base of the ScienceMode2 messages: their registry."""

    messages: ClassVar[dict[int, type[Message]]] = {}


@dataclass(frozen=True)
class _ResultAck(ResultAck, _Sm2Message):
    """An acknowledgement whose data is one signed result byte."""

    result: Sm2Result = Sm2Result.OK
    signed = True
    _ranges = {"result": Sm2Result}


@dataclass(frozen=True)
class Sm2Init(_Sm2Message):
    """Init (device → PC), sent every 500 ms until the PC answers with InitAck."""

    protocol_version: int = 1
    command: ClassVar[int] = Sm2Command.INIT
    _ranges = {"protocol_version": SM2_LIMITS["byte"]}

    def _data(self) -> bytes:
        return bytes([self.protocol_version])

    @classmethod
    def _from_data(cls, data: bytes) -> Sm2Init:
        cls._expect_length(data, 1)
        return cls(data[0])


@dataclass(frozen=True)
class Sm2InitAck(_ResultAck):
    """InitAck (PC → device): 0 ok, -5 incompatible protocol version."""

    result: Sm2InitResult = Sm2InitResult.OK  # type: ignore[assignment]  # InitAck has result codes of its own
    command: ClassVar[int] = Sm2Command.INIT_ACK
    _ranges = {"result": Sm2InitResult}


@dataclass(frozen=True)
class Sm2UnknownCommand(_Sm2Message):
    """UnknownCommand (device → PC): echoes the command byte it did not understand."""

    unknown_command: int
    command: ClassVar[int] = Sm2Command.UNKNOWN_COMMAND
    _ranges = {"unknown_command": SM2_LIMITS["byte"]}

    def _data(self) -> bytes:
        return bytes([self.unknown_command])

    @classmethod
    def _from_data(cls, data: bytes) -> Sm2UnknownCommand:
        cls._expect_length(data, 1)
        return cls(data[0])


@dataclass(frozen=True)
class Sm2Watchdog(_Sm2Message):
    """Watchdog (PC → device): keeps the connection alive (at least every 1200 ms)."""

    command: ClassVar[int] = Sm2Command.WATCHDOG


@dataclass(frozen=True)
class Sm2GetStimulationMode(_Sm2Message):
    """GetStimulationMode (PC → device)."""

    command: ClassVar[int] = Sm2Command.GET_STIMULATION_MODE


@dataclass(frozen=True)
class Sm2GetStimulationModeAck(_Sm2Message):
    """GetStimulationModeAck (device → PC): result, then mode (order assumed)."""

    result: Sm2Result = Sm2Result.OK
    mode: Sm2StimulationMode = Sm2StimulationMode.START
    command: ClassVar[int] = Sm2Command.GET_STIMULATION_MODE_ACK
    _ranges = {"result": Sm2Result, "mode": Sm2StimulationMode}

    def _data(self) -> bytes:
        return bytes([self.result & 0xFF, self.mode])

    @classmethod
    def _from_data(cls, data: bytes) -> Sm2GetStimulationModeAck:
        cls._expect_length(data, 2)
        return cls(to_signed(data[0]), data[1])  # type: ignore[arg-type]  # bytes: __post_init__ makes enums


def _channel_execution(owner: str, field: str, value: Any) -> int:
    if value not in SM2_LIMITS["channel_execution"] or isinstance(value, bool):
        raise field_error(owner, field, "0 (fixed 1.5 ms slots)", value)
    return int(value)


def _on_grid(owner: str, field: str, value: Any) -> float:
    """An interval on its code's grid: any code, documented or not."""
    offset, step, lo, hi, _ = SM2_LIMITS[field]
    return cast(float, offset + step * grid_code(owner, field, value, offset, step, lo, hi))


def _on_grid_or_one_shot(owner: str, field: str, value: Any) -> float | None:
    """A main interval on its code's grid, or None for one-shot mode."""
    return None if value is None else _on_grid(owner, field, value)


@dataclass(frozen=True)
class Sm2InitChannelListMode(_Sm2Message):
    """InitChannelListMode (PC → device): which channels run, and how often.

    Parameters
    ----------
    active_channels : collection of int
        Channels 1-8 in the channel list (kept as a sorted tuple).
    main_interval_ms : float or None
        Period of the channel list, ``0.5 c + 1`` ms (documented minimum 8 ms); None
        for one-shot mode (code 0).
    inter_pulse_interval_ms : float
        Interval between the pulses of a doublet or triplet, ``0.5 c + 1.5`` ms
        (documented minimum 8 ms).
    low_frequency_factor : int
        0-7: the low-frequency channels skip this many periods between pulses.
    low_frequency_channels : collection of int
        Channels 1-8 run at the low frequency.
    channel_execution : int
        0: fixed 1.5 ms slots (the only documented value).

    Notes
    -----
    Construction accepts every interval its code can carry (so that a lenient decode
    can hold what a client sent); :func:`sm2_encode` and the strict decoder refuse
    intervals below the documented 8 ms minimum.
    """

    active_channels: tuple[int, ...]
    main_interval_ms: float | None
    inter_pulse_interval_ms: float = 8.0
    low_frequency_factor: int = 0
    low_frequency_channels: tuple[int, ...] = ()
    channel_execution: int = 0
    command: ClassVar[int] = Sm2Command.INIT_CHANNEL_LIST_MODE
    _ranges = {
        "active_channels": Channels(*SM2_LIMITS["channel"]),
        "low_frequency_channels": Channels(*SM2_LIMITS["channel"]),
        "low_frequency_factor": SM2_LIMITS["low_frequency_factor"],
        "channel_execution": _channel_execution,
        "inter_pulse_interval_ms": _on_grid,
        "main_interval_ms": _on_grid_or_one_shot,
    }

    def _check_documented(self) -> None:
        sm2_inter_pulse_interval_code(self.inter_pulse_interval_ms)
        sm2_main_interval_code(self.main_interval_ms)

    def _data(self) -> bytes:
        ipi = round((self.inter_pulse_interval_ms - 1.5) / 0.5)
        main = 0 if self.main_interval_ms is None else round((self.main_interval_ms - 1.0) / 0.5)
        return bytes([
            self.low_frequency_factor,
            channels_to_mask(self.active_channels),
            channels_to_mask(self.low_frequency_channels),
            ipi,
            main >> 8,
            main & 0xFF,
            self.channel_execution,
        ])

    @classmethod
    def _from_data(cls, data: bytes) -> Sm2InitChannelListMode:
        cls._expect_length(data, 7)
        return cls(
            active_channels=mask_to_channels(data[1]),
            main_interval_ms=sm2_main_interval_ms(data[4] << 8 | data[5]),
            inter_pulse_interval_ms=sm2_inter_pulse_interval_ms(data[3]),
            low_frequency_factor=data[0],
            low_frequency_channels=mask_to_channels(data[2]),
            channel_execution=data[6],
        )


@dataclass(frozen=True)
class Sm2InitChannelListModeAck(_ResultAck):
    """InitChannelListModeAck (device → PC)."""

    command: ClassVar[int] = Sm2Command.INIT_CHANNEL_LIST_MODE_ACK


@dataclass(frozen=True)
class Sm2ChannelPulse(Checked):
    """One channel's entry in StartChannelListMode.

    Parameters
    ----------
    pulse_width_us : int
        20-500 µs.
    current_ma : int
        0-130 mA.
    mode : Sm2PulseMode
        Single pulse, doublet or triplet per period.
    """

    pulse_width_us: int
    current_ma: int
    mode: Sm2PulseMode = Sm2PulseMode.SINGLE
    _ranges = {
        "pulse_width_us": SM2_LIMITS["pulse_width_us"],
        "current_ma": SM2_LIMITS["current_ma"],
        "mode": Sm2PulseMode,
    }


@dataclass(frozen=True)
class Sm2StartChannelListMode(_Sm2Message):
    """StartChannelListMode (PC → device): starts or updates the channel list.

    ``pulses`` holds one :class:`Sm2ChannelPulse` per active channel, in increasing
    channel order (the channels themselves were named by InitChannelListMode).
    """

    pulses: tuple[Sm2ChannelPulse, ...]
    command: ClassVar[int] = Sm2Command.START_CHANNEL_LIST_MODE
    _ranges = {"pulses": Items(Sm2ChannelPulse, *SM2_LIMITS["channel_list_entries"])}

    def _data(self) -> bytes:
        out = bytearray()
        for p in self.pulses:
            out += bytes([p.mode, p.pulse_width_us >> 8, p.pulse_width_us & 0xFF, p.current_ma])
        return bytes(out)

    @classmethod
    def _from_data(cls, data: bytes) -> Sm2StartChannelListMode:
        if len(data) % 4 or not 1 <= len(data) // 4 <= 8:
            raise ProtocolError(f"Sm2StartChannelListMode carries 4 data bytes per channel for 1 to 8 channels, "
                                f"but the packet has {len(data)}", reason="data", data=data)
        return cls(tuple(Sm2ChannelPulse(mode=data[i], pulse_width_us=data[i + 1] << 8 | data[i + 2],  # type: ignore[arg-type]  # bytes: __post_init__ makes enums
                                         current_ma=data[i + 3]) for i in range(0, len(data), 4)))


@dataclass(frozen=True)
class Sm2StartChannelListModeAck(_ResultAck):
    """StartChannelListModeAck (device → PC)."""

    command: ClassVar[int] = Sm2Command.START_CHANNEL_LIST_MODE_ACK


@dataclass(frozen=True)
class Sm2StopChannelListMode(_Sm2Message):
    """StopChannelListMode (PC → device)."""

    command: ClassVar[int] = Sm2Command.STOP_CHANNEL_LIST_MODE


@dataclass(frozen=True)
class Sm2StopChannelListModeAck(_ResultAck):
    """StopChannelListModeAck (device → PC)."""

    command: ClassVar[int] = Sm2Command.STOP_CHANNEL_LIST_MODE_ACK


@dataclass(frozen=True)
class Sm2SinglePulse(_Sm2Message):
    """SinglePulse (PC → device): one pulse on one channel.

    ``channel`` is 1-8 and sent as 0-7; ``pulse_width_us`` 20-500; ``current_ma`` 0-130.
    """

    channel: int
    pulse_width_us: int
    current_ma: int
    command: ClassVar[int] = Sm2Command.SINGLE_PULSE
    _ranges = {
        "channel": SM2_LIMITS["channel"],
        "pulse_width_us": SM2_LIMITS["pulse_width_us"],
        "current_ma": SM2_LIMITS["current_ma"],
    }

    def _data(self) -> bytes:
        return bytes([self.channel - 1, self.pulse_width_us >> 8, self.pulse_width_us & 0xFF, self.current_ma])

    @classmethod
    def _from_data(cls, data: bytes) -> Sm2SinglePulse:
        cls._expect_length(data, 4)
        if data[0] > 7:
            raise ProtocolError(f"Sm2SinglePulse channel byte {data[0]} is not 0-7", reason="data", data=data)
        return cls(channel=data[0] + 1, pulse_width_us=data[1] << 8 | data[2], current_ma=data[3])


@dataclass(frozen=True)
class Sm2SinglePulseAck(_ResultAck):
    """SinglePulseAck (device → PC)."""

    command: ClassVar[int] = Sm2Command.SINGLE_PULSE_ACK


@dataclass(frozen=True)
class Sm2StimulationError(_Sm2Message):
    """StimulationError (device → PC): the device stopped and returned to start mode."""

    error: Sm2StimulationErrorCode
    command: ClassVar[int] = Sm2Command.STIMULATION_ERROR
    _ranges = {"error": Sm2StimulationErrorCode}

    def _data(self) -> bytes:
        return bytes([self.error & 0xFF])

    @classmethod
    def _from_data(cls, data: bytes) -> Sm2StimulationError:
        cls._expect_length(data, 1)
        return cls(to_signed(data[0]))  # type: ignore[arg-type]  # bytes: __post_init__ makes enums


#: Command number → message class: the table both directions use (every message class
#: above entered it when it was defined).
SM2_MESSAGES: dict[int, type[Message]] = _Sm2Message.messages

#: Lenient decoding: command byte received → command meant (only where the byte is no command).
_QUIRK_COMMANDS = {alt: meant for meant, alt in SM2_PYSCIENCEMODE_ALTERED.items()
                   if meant in SM2_MESSAGES and alt not in SM2_MESSAGES}


@dataclass(frozen=True)
class Sm2RawPacket(RawPacket, _Sm2Message):
    """A packet whose command this codec has no layout for (e.g. the Motomed commands).

    ``command`` may not be one of :data:`SM2_MESSAGES` (use that message's class).
    """

    _ranges = {"command": SM2_LIMITS["byte"]}
    max_data_bytes = SM2_LIMITS["data_bytes_max"]


# --------------------------------------------------------------------------- frames


def sm2_encode(message: Any, packet_number: int) -> bytes:
    """One ScienceMode2 frame for ``message``.

    Parameters
    ----------
    message : Sm2... message
        Any message class of this module.
    packet_number : int
        0-255; escaped like every other body byte when it is F0, 0F or 81.

    Raises
    ------
    FieldRangeError
        For a packet number out of range, or a field below a documented minimum.

    Examples
    --------
    >>> sm2_encode(Sm2Watchdog(), packet_number=0x0F).hex(" ")
    'f0 81 a7 81 56 81 5a 04 0f'
    """
    if not isinstance(message, _Sm2Message):
        raise field_error("sm2_encode", "message", "a ScienceMode2 message (Sm2...)", message)
    pn = check_int("sm2_encode", "packet_number", packet_number, 0, 255)
    message._check_documented()
    body = stuff(bytes([pn, message.command]) + message._data())
    return bytes([START]) + escaped_header((crc8(body), len(body))) + body + bytes([STOP])


def _sm2_body(frame: bytes, lenient: bool) -> bytes:
    """Check a whole frame (framing, length, CRC, stuffing); return the unstuffed body."""
    frame = bytes(frame)
    stuffed = check_delimiters(frame, 2, 2)
    crc, length = read_header(frame, 2)
    if START in stuffed or STOP in stuffed:
        unstuff(stuffed)  # raises the framing error with its position
    if len(stuffed) != length:
        raise ProtocolError(f"header says {length} body bytes, but the frame has {len(stuffed)}",
                            reason="length", data=frame)
    actual = crc8(stuffed)
    if actual != crc:
        raise ProtocolError(f"header checksum {crc:#04x} differs from the body's CRC-8 {actual:#04x}",
                            reason="crc", data=frame)
    try:
        body = unstuff(stuffed, canonical=not lenient)
    except ProtocolError as exc:
        raise ProtocolError(str(exc), reason=exc.reason, data=frame) from None
    if not 2 <= len(body) <= 2 + SM2_LIMITS["data_bytes_max"]:
        raise ProtocolError(f"a body of {len(body)} bytes: it holds a packet number, a command and at most "
                            f"{SM2_LIMITS['data_bytes_max']} data bytes", reason="length", data=frame)
    return body


def sm2_decode(frame: bytes, *, lenient: bool = False) -> DecodedPacket:
    """The packet number and message of one whole ScienceMode2 frame.

    Parameters
    ----------
    frame : bytes
        Exactly one frame, start byte to stop byte.
    lenient : bool
        Accept what the pysciencemode client sends where the meaning is unambiguous
        (the module docstring lists exactly what).

    Returns
    -------
    DecodedPacket
        ``(packet_number, message)``; an unknown command gives :class:`Sm2RawPacket`.

    Raises
    ------
    ProtocolError
        With ``reason`` ``"framing"``, ``"length"``, ``"crc"``, ``"stuffing"`` or
        ``"data"`` (wrong data size or a field out of range; the message names it).

    Examples
    --------
    >>> sm2_decode(bytes.fromhex("f0 81 a7 81 56 81 5a 04 0f"))
    DecodedPacket(packet_number=15, message=Sm2Watchdog())
    >>> sm2_decode(bytes.fromhex("f0 81 a7 81 56 81 5a 04 0e"))
    Traceback (most recent call last):
    ...
    electrostim.devices._framing.ProtocolError: frame ends with 0x0e, expected the stop byte 0x0f
    """
    body = _sm2_body(frame, lenient)
    pn, command, data = body[0], body[1], body[2:]
    if lenient:
        command = _QUIRK_COMMANDS.get(command, command)
    return DecodedPacket(pn, Sm2RawPacket.parse(command, data, frame, documented=not lenient))


class Sm2FrameDecoder(FrameSplitter):
    """Find ScienceMode2 frames in a byte stream, whatever its chunking.

    :meth:`feed` returns :class:`Frame` events for frames whose framing, length, CRC
    and stuffing are valid (pass ``event.data`` to :func:`sm2_decode`) and
    :class:`FrameError` events for discarded bytes; it never raises on bad input.

    Parameters
    ----------
    lenient : bool
        Accept escapes of any byte (see the module docstring); use the same flag for
        :func:`sm2_decode`.

    Examples
    --------
    >>> d = Sm2FrameDecoder()
    >>> frame = sm2_encode(Sm2Watchdog(), 1)
    >>> events = d.feed(b"\\x00\\x01" + frame[:4]) + d.feed(frame[4:])
    >>> [type(e).__name__ for e in events], events[1].data == frame
    (['FrameError', 'Frame'], True)
    >>> events[0].reason
    'garbage'
    """

    def __init__(self, *, lenient: bool = False):
        self.lenient = lenient
        super().__init__(header_bytes=4, max_frame_bytes=_MAX_FRAME_BYTES,
                         check=lambda frame: _sm2_body(frame, lenient))
