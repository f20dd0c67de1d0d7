"""ScienceMode4 (HASOMED P24 / RehaMove3) codec: pure bytes in, bytes out.

Frame (``reference/sciencemode.md``)::

    F0 | 81, len_hi ^ 55 | 81, len_lo ^ 55 | 81, crc_hi ^ 55 | 81, crc_lo ^ 55 | stuffed payload | 0F
    payload = (packet_number << 2 | command >> 8), command & 0xFF, data

The length is that of the whole frame, the checksum the CRC-16/XMODEM
(:func:`crc16_xmodem`) of the stuffed payload. Packet numbers are 6 bits (0-63),
commands 10 bits. Multi-byte fields are sent most significant byte first. Result 0 is
ok and 10 an electrode error.

From ``sciencemode.md``: the command groups (low level 0-5, mid level 30-37, general
50-69), and the mid-level update: a channel bitmask, then per enabled channel
``[(points - 1) << 4 | ramp]``, a 15-bit period in 0.5 ms steps and 4 bytes per
point (12-bit pulse width in µs, current code ``2 I + 300``, interpolation bits).

**Where the public description is silent** — every entry of :data:`SM4_LAYOUT`
(the individual command numbers, the bit positions in a point and in the period word,
and the data of every message other than the mid-level update) — the layout follows
the public ScienceMode4 C library's packet code (``smpt_*_packet_client.c``,
``smpt_ml_packet_utils.c``, ``smpt_packet_general.c``), and the suite checks it
against an independent client, ``science-mode-4`` (``tests/test_p24_sm4_client.py``).
Two details are settled by that code: bit 0 of the mid-level period word is
``double_period_accuracy`` (the 15-bit code then counts 0.25 ms), and a low-level
channel configuration with stimulation disabled carries no points whatever its point
count says. Correct a layout in that one table (and the bit
tables beside it). Messages are declared on the message base both codecs share
(:class:`~.._framing.Message`); command numbers without a message class here decode
to :class:`Sm4RawPacket`.

Examples
--------
>>> point = Sm4Point(pulse_width_us=200, current_ma=20)
>>> update = Sm4MlUpdate([Sm4MlChannel(channel=1, period_ms=25, points=[point, point.negated()])])
>>> frame = sm4_encode(update, packet_number=5)
>>> sm4_decode(frame).message == update
True
>>> sm4_encode(Sm4MlStop(), packet_number=3).hex(" ")
'f0 81 55 81 59 81 14 81 18 0c 22 0f'
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
    check_enum,
    check_field,
    check_int,
    crc16_xmodem,
    escaped_header,
    field_error,
    grid_code,
    mask_to_channels,
    read_header,
    stuff,
    unstuff,
)

__all__ = [
    "SM4_LAYOUT",
    "SM4_LIMITS",
    "SM4_MESSAGES",
    "SM4_PERIOD_BITS",
    "SM4_POINT_BITS",
    "Sm4ChannelError",
    "Sm4Command",
    "Sm4FrameDecoder",
    "Sm4GetDeviceId",
    "Sm4GetDeviceIdAck",
    "Sm4GetExtendedVersion",
    "Sm4GetExtendedVersionAck",
    "Sm4GetStimStatus",
    "Sm4GetStimStatusAck",
    "Sm4LlChannelConfig",
    "Sm4LlChannelConfigAck",
    "Sm4LlInit",
    "Sm4LlInitAck",
    "Sm4LlStop",
    "Sm4LlStopAck",
    "Sm4MlChannel",
    "Sm4MlGetCurrentData",
    "Sm4MlGetCurrentDataAck",
    "Sm4MlInit",
    "Sm4MlInitAck",
    "Sm4MlStop",
    "Sm4MlStopAck",
    "Sm4MlUpdate",
    "Sm4MlUpdateAck",
    "Sm4Point",
    "Sm4RawPacket",
    "Sm4Reset",
    "Sm4ResetAck",
    "Sm4Result",
    "Sm4StimStatus",
    "sm4_current_code",
    "sm4_current_ma",
    "sm4_decode",
    "sm4_encode",
    "sm4_period_code",
    "sm4_period_ms",
]


class Sm4Command(IntEnum):
    """ScienceMode4 command numbers (groups documented; individual numbers assumed)."""

    LL_INIT = 0
    LL_INIT_ACK = 1
    LL_CHANNEL_CONFIG = 2
    LL_CHANNEL_CONFIG_ACK = 3
    LL_STOP = 4
    LL_STOP_ACK = 5
    ML_INIT = 30
    ML_INIT_ACK = 31
    ML_UPDATE = 32
    ML_UPDATE_ACK = 33
    ML_STOP = 34
    ML_STOP_ACK = 35
    ML_GET_CURRENT_DATA = 36
    ML_GET_CURRENT_DATA_ACK = 37
    GET_VERSION_MAIN = 50
    GET_VERSION_MAIN_ACK = 51
    GET_DEVICE_ID = 52
    GET_DEVICE_ID_ACK = 53
    GET_BATTERY_STATUS = 54
    GET_BATTERY_STATUS_ACK = 55
    SET_POWER = 56
    SET_POWER_ACK = 57
    RESET = 58
    RESET_ACK = 59
    GET_VERSION_STIM = 60
    GET_VERSION_STIM_ACK = 61
    GET_STIM_STATUS = 62
    GET_STIM_STATUS_ACK = 63
    GET_MAIN_STATUS = 64
    GET_MAIN_STATUS_ACK = 65
    GENERAL_ERROR = 66
    UNKNOWN_COMMAND = 67
    GET_EXTENDED_VERSION = 68
    GET_EXTENDED_VERSION_ACK = 69


class Sm4Result(IntEnum):
    """Result byte of an acknowledgement (0 and 10 documented; the rest assumed)."""

    OK = 0
    TRANSFER_ERROR = 1
    PARAMETER_ERROR = 2
    PROTOCOL_ERROR = 3
    UC_STIM_TIMEOUT_ERROR = 4
    EMG_TIMEOUT_ERROR = 5
    EMG_REGISTER_ERROR = 6
    NOT_INITIALIZED_ERROR = 7
    HV_ERROR = 8
    DEMUX_TIMEOUT_ERROR = 9
    ELECTRODE_ERROR = 10
    INVALID_CMD_ERROR = 11
    DEMUX_PARAMETER_ERROR = 12
    DEMUX_NOT_INITIALIZED_ERROR = 13
    DEMUX_TRANSFER_ERROR = 14
    DEMUX_UNKNOWN_ACK_ERROR = 15
    PULSE_TIMEOUT_ERROR = 16
    FUEL_GAUGE_ERROR = 17
    LIVE_SIGNAL_ERROR = 18
    FILE_TRANSMISSION_TIMEOUT = 19
    FILE_NOT_FOUND = 20
    BUSY = 21
    FILE_ERROR = 22
    FLASH_ERASE_ERROR = 23
    FLASH_WRITE_ERROR = 24
    UNKNOWN_CONTROLLER_ERROR = 25
    FIRMWARE_TOO_LARGE_ERROR = 26
    FUEL_GAUGE_NOT_PROGRAMMED = 27
    PULSE_LOW_CURRENT_ERROR = 28


class Sm4StimStatus(IntEnum):
    """Stimulation status in GetStimStatusAck (assumed)."""

    UNINITIALISED = 0
    LL_INITIALISED = 1
    ML_INITIALISED = 2
    ML_RUNNING = 3


class Sm4ChannelError(IntEnum):
    """Per-channel state in MlGetCurrentDataAck (assumed)."""

    OK = 0
    ELECTRODE_ERROR = 1
    PULSE_TIMEOUT = 2
    PULSE_LOW_CURRENT = 3


#: Ranges: documented ones from ``sciencemode.md``, the rest what the fields can carry.
SM4_LIMITS: dict[str, Any] = {
    "packet_number": (0, 63),
    "command": (0, 1023),
    "ml_channel": (1, 8),  # 8-bit channel mask; the P24 itself has 4 channels
    "ll_channel": (1, 4),  # 2-bit channel field (assumed)
    "points": (1, 16),
    "ramp": (0, 15),
    "pulse_width_us": (0, 4095),  # 12 bits
    "current_ma": (-150.0, 150.0),  # code 2 I + 300, 0..600, in 0.5 mA steps
    "period_ms": (0.5, 4, 0x7FFF),  # step, lowest code (2 ms: up to 500 Hz), highest code (15 bits)
    "period_ms_double_accuracy": (0.25, 8, 0x7FFF),  # the same with double_period_accuracy: 2 to 8191.75 ms
    "interpolation": (0, 3),
    "high_voltage_level": (0, 6),
    "max_frame_bytes": 1200,  # the C library's largest packet (Smpt_Length_Max_Packet_Size)
    "raw_data_bytes_max": 593,  # so that any raw packet fits in max_frame_bytes after stuffing
    "device_id_chars": 10,
}

#: A point is one 32-bit word, MSB first: field → (lowest bit, width). Other bits are 0.
SM4_POINT_BITS: dict[str, tuple[int, int]] = {
    "pulse_width_us": (20, 12),
    "current_code": (10, 10),
    "interpolation": (5, 2),
}

#: The mid-level period is one 16-bit word, MSB first: field → (lowest bit, width).
#: ``double_period_accuracy`` (bit 0, the C library's name) says the code counts 0.25 ms
#: instead of 0.5 ms.
SM4_PERIOD_BITS: dict[str, tuple[int, int]] = {
    "double_period_accuracy": (0, 1),
    "period_code": (1, 15),
}

#: Data layout of every message (command number, bytes). Where the public description
#: is silent (everything but the mid-level update's structure) it follows the public C
#: library's packet code; ``tests/test_p24_sm4_client.py`` checks it with the
#: independent ``science-mode-4`` client.
SM4_LAYOUT: dict[str, tuple[int, str]] = {
    "LlInit": (0, "(high_voltage_level & 7) << 1; measurement type << 4 (not modelled: must be 0); "
                  "other bits 0"),
    "LlInitAck": (1, "result"),
    "LlChannelConfig": (2, "enable << 7 | (channel - 1) << 5 | connector << 4 | (points - 1 or 0); "
                           "then the points when enabled (when disabled: none, whatever the count; "
                           "points sent anyway are ignored)"),
    "LlChannelConfigAck": (3, "result, connector << 4 | (channel - 1), measurement type 0"),
    "LlStop": (4, "none"),
    "LlStopAck": (5, "result"),
    "MlInit": (30, "stop_all_channels_on_error in bit 0; other bits 0"),
    "MlInitAck": (31, "result"),
    "MlUpdate": (32, "channel mask; per enabled channel, increasing: (points - 1) << 4 | ramp, "
                     "period word (SM4_PERIOD_BITS: code << 1 | double_period_accuracy), "
                     "points (SM4_POINT_BITS)"),
    "MlUpdateAck": (33, "result"),
    "MlStop": (34, "none"),
    "MlStopAck": (35, "result"),
    "MlGetCurrentData": (36, "data selection 4 (channel states)"),
    "MlGetCurrentDataAck": (37, "result, 4, active channel mask, 4 bytes of 4-bit channel states "
                                "(channel 1 in the low nibble of the first)"),
    "GetDeviceId": (52, "none"),
    "GetDeviceIdAck": (53, "result, device id: 10 ASCII bytes, NUL padded"),
    "Reset": (58, "none"),
    "ResetAck": (59, "result"),
    "GetStimStatus": (62, "none"),
    "GetStimStatusAck": (63, "result, stim status, high voltage level"),
    "GetExtendedVersion": (68, "none"),
    "GetExtendedVersionAck": (69, "result, firmware major, minor, revision, ScienceMode major, minor, "
                                  "revision, firmware hash (4 bytes), hash type, hash valid (0/1)"),
}

_DATA_SELECTION_CHANNELS = 4


def _bits(word: int, lowest: int, width: int) -> int:
    return (word >> lowest) & ((1 << width) - 1)


# --------------------------------------------------------------------------- value codes


def sm4_current_code(current_ma: float) -> int:
    """The current code ``2 I + 300`` of a point current in mA (-150 to 150, 0.5 mA steps).

    >>> sm4_current_code(20), sm4_current_code(-20.5)
    (340, 259)
    """
    lo, hi = SM4_LIMITS["current_ma"]
    return grid_code("Sm4Point", "current_ma", current_ma, lo, 0.5, 0, round((hi - lo) / 0.5), unit="mA")


def sm4_current_ma(code: int) -> float:
    """The current in mA of a code 0-600 (``(code - 300) / 2``).

    >>> sm4_current_ma(340)
    20.0
    """
    c = check_int("Sm4Point", "current code", code, 0, 600)
    return (c - 300) / 2


def _period_limits(double_period_accuracy: bool) -> tuple[float, int, int]:
    return cast(tuple[float, int, int], SM4_LIMITS["period_ms_double_accuracy" if double_period_accuracy else "period_ms"])


def sm4_period_code(period_ms: float, *, exact: bool = True, double_period_accuracy: bool = False) -> int:
    """The 15-bit period code of a mid-level period (0.5 ms steps, 2 to 16383.5 ms).

    With ``exact=False`` the period is rounded to the nearest step first. With
    ``double_period_accuracy`` the code counts 0.25 ms (2 to 8191.75 ms).

    >>> sm4_period_code(25.0), sm4_period_code(1000 / 35, exact=False)
    (50, 57)
    >>> sm4_period_code(25.25, double_period_accuracy=True)
    101
    """
    step, lo, hi = _period_limits(double_period_accuracy)
    return grid_code("Sm4MlChannel", "period_ms", period_ms, 0.0, step, lo, hi, exact=exact)


def sm4_period_ms(code: int, *, double_period_accuracy: bool = False) -> float:
    """The period in ms of a 15-bit code (0.5 ms steps; 0.25 ms with ``double_period_accuracy``).

    >>> sm4_period_ms(50), sm4_period_ms(101, double_period_accuracy=True)
    (25.0, 25.25)
    """
    step, lo, hi = _period_limits(double_period_accuracy)
    return step * check_int("Sm4MlChannel", "period code", code, lo, hi)


# --------------------------------------------------------------------------- pieces


@dataclass(frozen=True)
class Sm4Point(Checked):
    """One point of a pulse shape: hold ``current_ma`` for ``pulse_width_us``.

    Parameters
    ----------
    pulse_width_us : int
        Duration of this point, 0-4095 µs (12 bits).
    current_ma : float
        -150 to 150 mA in 0.5 mA steps (sent as ``2 I + 300``).
    interpolation : int
        Interpolation mode bits, 0-3 (0: constant; meaning of others assumed unknown).
    """

    pulse_width_us: int
    current_ma: float
    interpolation: int = 0
    _ranges = {
        "pulse_width_us": SM4_LIMITS["pulse_width_us"],
        "current_ma": lambda owner, field, value: sm4_current_ma(sm4_current_code(value)),
        "interpolation": SM4_LIMITS["interpolation"],
    }

    def negated(self) -> Sm4Point:
        """The same point with the opposite current (the second phase of a biphasic pulse)."""
        return Sm4Point(self.pulse_width_us, -self.current_ma, self.interpolation)

    def _word(self) -> bytes:
        values = {"pulse_width_us": self.pulse_width_us, "current_code": sm4_current_code(self.current_ma),
                  "interpolation": self.interpolation}
        word = 0
        for name, (lowest, _width) in SM4_POINT_BITS.items():
            word |= values[name] << lowest
        return word.to_bytes(4, "big")

    @classmethod
    def _from_word(cls, raw: bytes) -> Sm4Point:
        word = int.from_bytes(raw, "big")
        used = 0
        values = {}
        for name, (lowest, width) in SM4_POINT_BITS.items():
            values[name] = _bits(word, lowest, width)
            used |= ((1 << width) - 1) << lowest
        if word & ~used:
            raise ProtocolError(f"point {raw.hex(' ')} has reserved bits set", reason="data", data=raw)
        return cls(values["pulse_width_us"], sm4_current_ma(values["current_code"]), values["interpolation"])


#: The range-table rule of a pulse shape: 1 to 16 points.
_POINTS = Items(Sm4Point, *SM4_LIMITS["points"])


def _read_points(data: bytes, index: int, n: int) -> tuple[tuple[Sm4Point, ...], int]:
    end = index + 4 * n
    if end > len(data):
        raise ProtocolError(f"{n} points need {4 * n} bytes at offset {index}, but only "
                            f"{len(data) - index} remain", reason="data", data=data)
    return tuple(Sm4Point._from_word(data[i:i + 4]) for i in range(index, end, 4)), end


@dataclass(frozen=True)
class Sm4MlChannel(Checked):
    """One channel of a mid-level update.

    Parameters
    ----------
    channel : int
        1-8 (the P24 has 4).
    period_ms : float
        Pulse period, 2 to 16383.5 ms in 0.5 ms steps (with ``double_period_accuracy``,
        2 to 8191.75 ms in 0.25 ms steps).
    points : sequence of Sm4Point
        The pulse shape, 1-16 points.
    ramp : int
        0-15: pulses over which the current ramps up.
    double_period_accuracy : bool
        Send the period in 0.25 ms steps (bit 0 of the period word; the C library's
        ``double_period_accuracy``) instead of 0.5 ms steps.
    """

    channel: int
    period_ms: float
    points: tuple[Sm4Point, ...]
    ramp: int = 0
    double_period_accuracy: bool = False
    _ranges = {
        "channel": SM4_LIMITS["ml_channel"],
        "double_period_accuracy": bool,
        "points": _POINTS,
        "ramp": SM4_LIMITS["ramp"],
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        fine = self.double_period_accuracy
        self._set("period_ms", sm4_period_ms(sm4_period_code(self.period_ms, double_period_accuracy=fine),
                                             double_period_accuracy=fine))


# --------------------------------------------------------------------------- messages


class _Sm4Message(Message):
    """Base of the ScienceMode4 messages: their registry."""

    messages: ClassVar[dict[int, type[Message]]] = {}


@dataclass(frozen=True)
class _ResultAck(ResultAck, _Sm4Message):
    """An acknowledgement whose data is one result byte."""

    result: Sm4Result = Sm4Result.OK
    _ranges = {"result": Sm4Result}


@dataclass(frozen=True)
class Sm4LlInit(_Sm4Message):
    """Low-level init (PC → device). ``high_voltage_level`` 0 (default) to 6 (assumed)."""

    high_voltage_level: int = 0
    command: ClassVar[int] = Sm4Command.LL_INIT
    _ranges = {"high_voltage_level": SM4_LIMITS["high_voltage_level"]}

    def _data(self) -> bytes:
        return bytes([self.high_voltage_level << 1])

    @classmethod
    def _from_data(cls, data: bytes) -> Sm4LlInit:
        cls._expect_length(data, 1)
        if data[0] & ~0x0E:
            raise ProtocolError(f"Sm4LlInit byte {data[0]:#04x} has bits set outside the high voltage level "
                                f"(measurement is not modelled)", reason="data", data=data)
        return cls(data[0] >> 1 & 7)


@dataclass(frozen=True)
class Sm4LlInitAck(_ResultAck):
    """Low-level init acknowledgement."""

    command: ClassVar[int] = Sm4Command.LL_INIT_ACK


@dataclass(frozen=True)
class Sm4LlChannelConfig(_Sm4Message):
    """Low-level channel configuration (PC → device): one pulse of a given shape now.

    ``channel`` 1-4, ``connector`` 0-1; ``points`` 1-16 when ``enable_stimulation``,
    none otherwise. With stimulation disabled the C library sends the header byte alone
    (with whatever point count it was given); the ``science-mode-4`` client sends the
    points anyway. Both decode to a configuration without points.
    """

    channel: int
    points: tuple[Sm4Point, ...]
    enable_stimulation: bool = True
    connector: int = 0
    command: ClassVar[int] = Sm4Command.LL_CHANNEL_CONFIG
    _ranges = {"channel": SM4_LIMITS["ll_channel"], "enable_stimulation": bool, "connector": (0, 1)}

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = "Sm4LlChannelConfig"
        if self.enable_stimulation:
            self._set("points", check_field(owner, "points", self.points, _POINTS))
        elif self.points:
            raise field_error(owner, "points", "no points when enable_stimulation is False", self.points)
        else:
            self._set("points", ())

    def _data(self) -> bytes:
        n = len(self.points) - 1 if self.points else 0
        head = self.enable_stimulation << 7 | (self.channel - 1) << 5 | self.connector << 4 | n
        return bytes([head]) + b"".join(p._word() for p in self.points)

    @classmethod
    def _from_data(cls, data: bytes) -> Sm4LlChannelConfig:
        if not data:
            raise ProtocolError("Sm4LlChannelConfig needs at least 1 data byte", reason="data", data=data)
        head = data[0]
        enable = bool(head >> 7)
        points: tuple[Sm4Point, ...] = ()
        if enable or len(data) > 1:  # points: always when enabled; when disabled, the count's worth or none
            sent, end = _read_points(data, 1, (head & 0x0F) + 1)
            cls._expect_length(data, end)
            if enable:
                points = sent  # a disabled channel emits nothing: its points, if sent, mean nothing
        return cls(channel=(head >> 5 & 3) + 1, points=points, enable_stimulation=enable, connector=head >> 4 & 1)


@dataclass(frozen=True)
class Sm4LlChannelConfigAck(_Sm4Message):
    """Low-level channel configuration acknowledgement (no measurement data)."""

    result: Sm4Result = Sm4Result.OK
    channel: int = 1
    connector: int = 0
    command: ClassVar[int] = Sm4Command.LL_CHANNEL_CONFIG_ACK
    _ranges = {"result": Sm4Result, "channel": SM4_LIMITS["ll_channel"], "connector": (0, 1)}

    def _data(self) -> bytes:
        return bytes([self.result, self.connector << 4 | (self.channel - 1), 0])

    @classmethod
    def _from_data(cls, data: bytes) -> Sm4LlChannelConfigAck:
        cls._expect_length(data, 3)
        if data[1] & 0xEC or data[2]:
            raise ProtocolError("Sm4LlChannelConfigAck: reserved bits or a measurement (not modelled)",
                                reason="data", data=data)
        return cls(data[0], (data[1] & 3) + 1, data[1] >> 4)  # type: ignore[arg-type]  # bytes: __post_init__ makes enums


@dataclass(frozen=True)
class Sm4LlStop(_Sm4Message):
    """Low-level stop (PC → device)."""

    command: ClassVar[int] = Sm4Command.LL_STOP


@dataclass(frozen=True)
class Sm4LlStopAck(_ResultAck):
    """Low-level stop acknowledgement."""

    command: ClassVar[int] = Sm4Command.LL_STOP_ACK


@dataclass(frozen=True)
class Sm4MlInit(_Sm4Message):
    """Mid-level init (PC → device)."""

    stop_all_channels_on_error: bool = False
    command: ClassVar[int] = Sm4Command.ML_INIT
    _ranges = {"stop_all_channels_on_error": bool}

    def _data(self) -> bytes:
        return bytes([int(self.stop_all_channels_on_error)])

    @classmethod
    def _from_data(cls, data: bytes) -> Sm4MlInit:
        cls._expect_length(data, 1)
        if data[0] > 1:
            raise ProtocolError(f"Sm4MlInit byte {data[0]:#04x} has reserved bits set", reason="data", data=data)
        return cls(bool(data[0]))


@dataclass(frozen=True)
class Sm4MlInitAck(_ResultAck):
    """Mid-level init acknowledgement."""

    command: ClassVar[int] = Sm4Command.ML_INIT_ACK


def _distinct_channels(owner: str, field: str, value: Any) -> tuple[Sm4MlChannel, ...]:
    """Sm4MlChannel entries, each channel at most once, sorted by channel."""
    lo, hi = SM4_LIMITS["ml_channel"]
    allowed = f"Sm4MlChannel entries for distinct channels {lo} to {hi}"
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise field_error(owner, field, allowed, value)
    chans = tuple(value)
    if not all(isinstance(c, Sm4MlChannel) for c in chans) or len({c.channel for c in chans}) != len(chans):
        raise field_error(owner, field, allowed, chans)
    return tuple(sorted(chans, key=lambda c: c.channel))


@dataclass(frozen=True)
class Sm4MlUpdate(_Sm4Message):
    """Mid-level update (PC → device): the pulse shape and period of every enabled channel.

    ``channels`` holds one :class:`Sm4MlChannel` per enabled channel (kept sorted by
    channel number; each channel at most once). Channels not listed are disabled.
    The host must poll (e.g. MlGetCurrentData) at least every 1.5 s to keep
    stimulation running.
    """

    channels: tuple[Sm4MlChannel, ...]
    command: ClassVar[int] = Sm4Command.ML_UPDATE
    _ranges = {"channels": _distinct_channels}

    def _data(self) -> bytes:
        out = bytearray([channels_to_mask(c.channel for c in self.channels)])
        fine_bit, code_bits = SM4_PERIOD_BITS["double_period_accuracy"][0], SM4_PERIOD_BITS["period_code"][0]
        for c in self.channels:
            out.append((len(c.points) - 1) << 4 | c.ramp)
            code = sm4_period_code(c.period_ms, double_period_accuracy=c.double_period_accuracy)
            out += (code << code_bits | int(c.double_period_accuracy) << fine_bit).to_bytes(2, "big")
            for p in c.points:
                out += p._word()
        return bytes(out)

    @classmethod
    def _from_data(cls, data: bytes) -> Sm4MlUpdate:
        if not data:
            raise ProtocolError("Sm4MlUpdate needs at least the channel mask", reason="data", data=data)
        index, channels = 1, []
        for ch in mask_to_channels(data[0]):
            if index + 3 > len(data):
                raise ProtocolError(f"Sm4MlUpdate ends inside channel {ch}'s header", reason="data", data=data)
            head, word = data[index], int.from_bytes(data[index + 1:index + 3], "big")
            fine = bool(_bits(word, *SM4_PERIOD_BITS["double_period_accuracy"]))
            period_ms = sm4_period_ms(_bits(word, *SM4_PERIOD_BITS["period_code"]), double_period_accuracy=fine)
            points, index = _read_points(data, index + 3, (head >> 4) + 1)
            channels.append(Sm4MlChannel(ch, period_ms, points, head & 0x0F, fine))
        cls._expect_length(data, index)
        return cls(tuple(channels))


@dataclass(frozen=True)
class Sm4MlUpdateAck(_ResultAck):
    """Mid-level update acknowledgement."""

    command: ClassVar[int] = Sm4Command.ML_UPDATE_ACK


@dataclass(frozen=True)
class Sm4MlStop(_Sm4Message):
    """Mid-level stop (PC → device)."""

    command: ClassVar[int] = Sm4Command.ML_STOP


@dataclass(frozen=True)
class Sm4MlStopAck(_ResultAck):
    """Mid-level stop acknowledgement."""

    command: ClassVar[int] = Sm4Command.ML_STOP_ACK


@dataclass(frozen=True)
class Sm4MlGetCurrentData(_Sm4Message):
    """Mid-level get current data (PC → device): asks for the channel states (data selection 4)."""

    command: ClassVar[int] = Sm4Command.ML_GET_CURRENT_DATA

    def _data(self) -> bytes:
        return bytes([_DATA_SELECTION_CHANNELS])

    @classmethod
    def _from_data(cls, data: bytes) -> Sm4MlGetCurrentData:
        cls._expect_length(data, 1)
        if data[0] != _DATA_SELECTION_CHANNELS:
            raise ProtocolError(f"Sm4MlGetCurrentData data selection {data[0]}: only "
                                f"{_DATA_SELECTION_CHANNELS} (channel states) is modelled", reason="data", data=data)
        return cls()


def _channel_states(owner: str, field: str, value: Any) -> tuple[Sm4ChannelError, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or len(tuple(value)) != 8:
        raise field_error(owner, field, "8 channel states (index 0 is channel 1)", value)
    return tuple(check_enum(owner, field, e, Sm4ChannelError) for e in value)


@dataclass(frozen=True)
class Sm4MlGetCurrentDataAck(_Sm4Message):
    """Mid-level current data (device → PC): which channels stimulate, and each channel's state.

    ``channel_errors`` has 8 entries, index 0 for channel 1.
    """

    result: Sm4Result = Sm4Result.OK
    active_channels: tuple[int, ...] = ()
    channel_errors: tuple[Sm4ChannelError, ...] = (Sm4ChannelError.OK,) * 8
    command: ClassVar[int] = Sm4Command.ML_GET_CURRENT_DATA_ACK
    _ranges = {
        "result": Sm4Result,
        "active_channels": Channels(*SM4_LIMITS["ml_channel"]),
        "channel_errors": _channel_states,
    }

    def _data(self) -> bytes:
        e = self.channel_errors
        nibbles = bytes(e[i] | e[i + 1] << 4 for i in range(0, 8, 2))
        return bytes([self.result, _DATA_SELECTION_CHANNELS, channels_to_mask(self.active_channels)]) + nibbles

    @classmethod
    def _from_data(cls, data: bytes) -> Sm4MlGetCurrentDataAck:
        cls._expect_length(data, 7)
        if data[1] != _DATA_SELECTION_CHANNELS:
            raise ProtocolError(f"Sm4MlGetCurrentDataAck data selection {data[1]}: only "
                                f"{_DATA_SELECTION_CHANNELS} (channel states) is modelled", reason="data", data=data)
        errors = tuple(b >> shift & 0x0F for b in data[3:7] for shift in (0, 4))
        return cls(data[0], mask_to_channels(data[2]), errors)  # type: ignore[arg-type]  # bytes: __post_init__ makes enums


@dataclass(frozen=True)
class Sm4GetDeviceId(_Sm4Message):
    """Get device id (PC → device)."""

    command: ClassVar[int] = Sm4Command.GET_DEVICE_ID


def _device_id(owner: str, field: str, value: Any) -> str:
    n = SM4_LIMITS["device_id_chars"]
    if not (isinstance(value, str) and len(value) <= n and all(" " <= ch <= "~" for ch in value)):
        raise field_error(owner, field, f"at most {n} printable ASCII characters", value)
    return value


@dataclass(frozen=True)
class Sm4GetDeviceIdAck(_Sm4Message):
    """Device id (device → PC): up to 10 printable ASCII characters."""

    result: Sm4Result = Sm4Result.OK
    device_id: str = ""
    command: ClassVar[int] = Sm4Command.GET_DEVICE_ID_ACK
    _ranges = {"result": Sm4Result, "device_id": _device_id}

    def _data(self) -> bytes:
        return bytes([self.result]) + self.device_id.encode("ascii").ljust(SM4_LIMITS["device_id_chars"], b"\0")

    @classmethod
    def _from_data(cls, data: bytes) -> Sm4GetDeviceIdAck:
        n = SM4_LIMITS["device_id_chars"]
        cls._expect_length(data, 1 + n)
        raw = data[1:]
        text = raw.rstrip(b"\0")
        if b"\0" in text:
            raise ProtocolError(f"device id {raw!r} has a NUL byte inside", reason="data", data=data)
        try:
            device_id = text.decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError(f"device id {raw!r} is not ASCII", reason="data", data=data) from None
        return cls(data[0], device_id)  # type: ignore[arg-type]  # bytes: __post_init__ makes enums


@dataclass(frozen=True)
class Sm4Reset(_Sm4Message):
    """Reset (PC → device)."""

    command: ClassVar[int] = Sm4Command.RESET


@dataclass(frozen=True)
class Sm4ResetAck(_ResultAck):
    """Reset acknowledgement."""

    command: ClassVar[int] = Sm4Command.RESET_ACK


@dataclass(frozen=True)
class Sm4GetStimStatus(_Sm4Message):
    """Get stimulation status (PC → device)."""

    command: ClassVar[int] = Sm4Command.GET_STIM_STATUS


@dataclass(frozen=True)
class Sm4GetStimStatusAck(_Sm4Message):
    """Stimulation status (device → PC)."""

    result: Sm4Result = Sm4Result.OK
    stim_status: Sm4StimStatus = Sm4StimStatus.UNINITIALISED
    high_voltage_level: int = 0
    command: ClassVar[int] = Sm4Command.GET_STIM_STATUS_ACK
    _ranges = {
        "result": Sm4Result,
        "stim_status": Sm4StimStatus,
        "high_voltage_level": SM4_LIMITS["high_voltage_level"],
    }

    def _data(self) -> bytes:
        return bytes([self.result, self.stim_status, self.high_voltage_level])

    @classmethod
    def _from_data(cls, data: bytes) -> Sm4GetStimStatusAck:
        cls._expect_length(data, 3)
        return cls(data[0], data[1], data[2])  # type: ignore[arg-type]  # bytes: __post_init__ makes enums


@dataclass(frozen=True)
class Sm4GetExtendedVersion(_Sm4Message):
    """Get extended version (PC → device)."""

    command: ClassVar[int] = Sm4Command.GET_EXTENDED_VERSION


def _version(owner: str, field: str, value: Any) -> tuple[int, int, int]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or len(tuple(value)) != 3:
        raise field_error(owner, field, "(major, minor, revision), each 0 to 255", value)
    return tuple(check_int(owner, field, x, 0, 255) for x in value)  # type: ignore[return-value]


@dataclass(frozen=True)
class Sm4GetExtendedVersionAck(_Sm4Message):
    """Firmware and ScienceMode versions (device → PC); versions are (major, minor, revision)."""

    result: Sm4Result = Sm4Result.OK
    firmware_version: tuple[int, int, int] = (0, 0, 0)
    science_mode_version: tuple[int, int, int] = (4, 0, 0)
    firmware_hash: int = 0
    hash_type: int = 0
    hash_valid: bool = False
    command: ClassVar[int] = Sm4Command.GET_EXTENDED_VERSION_ACK
    _ranges = {
        "result": Sm4Result,
        "firmware_version": _version,
        "science_mode_version": _version,
        "firmware_hash": (0, 0xFFFFFFFF),
        "hash_type": (0, 255),
        "hash_valid": bool,
    }

    def _data(self) -> bytes:
        return (bytes([self.result, *self.firmware_version, *self.science_mode_version])
                + self.firmware_hash.to_bytes(4, "big") + bytes([self.hash_type, int(self.hash_valid)]))

    @classmethod
    def _from_data(cls, data: bytes) -> Sm4GetExtendedVersionAck:
        cls._expect_length(data, 13)
        if data[12] > 1:
            raise ProtocolError(f"hash valid byte {data[12]} is not 0 or 1", reason="data", data=data)
        return cls(data[0], tuple(data[1:4]), tuple(data[4:7]), int.from_bytes(data[7:11], "big"),  # type: ignore[arg-type]
                   data[11], bool(data[12]))


#: Command number → message class: the table both directions use (every message class
#: above entered it when it was defined).
SM4_MESSAGES: dict[int, type[Message]] = _Sm4Message.messages


@dataclass(frozen=True)
class Sm4RawPacket(RawPacket, _Sm4Message):
    """A packet whose command this codec has no layout for (e.g. UnknownCommand, 67).

    ``command`` 0-1023 may not be one of :data:`SM4_MESSAGES`; ``data`` at most 593 bytes.
    """

    _ranges = {"command": SM4_LIMITS["command"]}
    max_data_bytes = SM4_LIMITS["raw_data_bytes_max"]


# --------------------------------------------------------------------------- frames


def sm4_encode(message: Any, packet_number: int) -> bytes:
    """One ScienceMode4 frame for ``message``.

    Parameters
    ----------
    message : Sm4... message
        Any message class of this module.
    packet_number : int
        0-63 (6 bits).

    Examples
    --------
    >>> sm4_encode(Sm4GetDeviceId(), packet_number=60).hex(" ")
    'f0 81 55 81 58 81 cd 81 63 81 a5 34 0f'
    """
    if not isinstance(message, _Sm4Message):
        raise field_error("sm4_encode", "message", "a ScienceMode4 message (Sm4...)", message)
    pn = check_int("sm4_encode", "packet_number", packet_number, *SM4_LIMITS["packet_number"])
    command = message.command
    payload = stuff(bytes([pn << 2 | command >> 8, command & 0xFF]) + message._data())
    length = 1 + 8 + len(payload) + 1
    if length > SM4_LIMITS["max_frame_bytes"]:
        raise field_error("sm4_encode", "message", f"a frame of at most {SM4_LIMITS['max_frame_bytes']} bytes",
                          f"{type(message).__name__} of {length} bytes")
    crc = crc16_xmodem(payload)
    return bytes([START]) + escaped_header((length >> 8, length & 0xFF, crc >> 8, crc & 0xFF)) + payload + bytes([STOP])


def _sm4_payload(frame: bytes) -> bytes:
    """Check a whole frame (framing, length, CRC, stuffing); return the unstuffed payload."""
    frame = bytes(frame)
    stuffed = check_delimiters(frame, 4, 2)
    len_hi, len_lo, crc_hi, crc_lo = read_header(frame, 4)
    if START in stuffed or STOP in stuffed:
        unstuff(stuffed)  # raises the framing error with its position
    length = len_hi << 8 | len_lo
    if length != len(frame):
        raise ProtocolError(f"header says a frame of {length} bytes, but it has {len(frame)}",
                            reason="length", data=frame)
    crc, actual = crc_hi << 8 | crc_lo, crc16_xmodem(stuffed)
    if actual != crc:
        raise ProtocolError(f"header checksum {crc:#06x} differs from the payload's CRC-16 {actual:#06x}",
                            reason="crc", data=frame)
    try:
        payload = unstuff(stuffed)
    except ProtocolError as exc:
        raise ProtocolError(str(exc), reason=exc.reason, data=frame) from None
    if len(payload) < 2:
        raise ProtocolError("a payload shorter than its 2-byte header", reason="length", data=frame)
    return payload


def sm4_decode(frame: bytes) -> DecodedPacket:
    """The packet number and message of one whole ScienceMode4 frame.

    Raises
    ------
    ProtocolError
        With ``reason`` ``"framing"``, ``"length"``, ``"crc"``, ``"stuffing"`` or
        ``"data"`` (wrong data size, reserved bits, or a field out of range).

    Examples
    --------
    >>> sm4_decode(bytes.fromhex("f0 81 55 81 58 81 cd 81 63 81 a5 34 0f"))
    DecodedPacket(packet_number=60, message=Sm4GetDeviceId())
    """
    payload = _sm4_payload(frame)
    pn, command, data = payload[0] >> 2, (payload[0] & 3) << 8 | payload[1], payload[2:]
    return DecodedPacket(pn, Sm4RawPacket.parse(command, data, frame))


class Sm4FrameDecoder(FrameSplitter):
    """Find ScienceMode4 frames in a byte stream, whatever its chunking.

    :meth:`feed` returns :class:`Frame` events for frames whose framing, length, CRC
    and stuffing are valid (pass ``event.data`` to :func:`sm4_decode`) and
    :class:`FrameError` events for discarded bytes; it never raises on bad input.

    Examples
    --------
    >>> d = Sm4FrameDecoder()
    >>> frame = sm4_encode(Sm4MlStop(), 1)
    >>> [type(e).__name__ for e in d.feed(frame[:5]) + d.feed(frame[5:] + b"\\x42")]
    ['Frame']
    >>> [e.reason for e in d.flush()]
    ['garbage']
    """

    def __init__(self) -> None:
        super().__init__(header_bytes=8, max_frame_bytes=SM4_LIMITS["max_frame_bytes"], check=_sm4_payload)
