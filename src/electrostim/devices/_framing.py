"""Byte stuffing, checksums, the message base and frame splitting shared by the ScienceMode codecs.

Both HASOMED protocols wrap a packet the same way: a start byte ``F0``, a header of
escaped bytes (``81, b ^ 55``: checksum and length), the byte-stuffed packet and a stop
byte ``0F``. Inside the packet any byte equal to ``F0``, ``0F`` or ``81`` is sent as
``81, b ^ 55``, so the start and stop bytes never occur there. The header bytes are
always escaped, so *their* value bytes may be ``F0`` or ``0F``: a frame is found by
position (start, fixed-size header, stuffed bytes up to the stop byte), not by
searching for delimiters alone.

Both declare their messages the same way, on :class:`Message`: a frozen dataclass
with its command number, a range table its fields are checked against when it is
built (:class:`Checked`), its data bytes both ways, and a registry per protocol from
command number to message class; :class:`ResultAck` (an acknowledgement that is its
result byte) and :class:`RawPacket` (a command without a class) are shared too.

Everything here is pure: functions on bytes, the message base and one small state
machine (:class:`FrameSplitter`, the base of the protocols' ``FrameDecoder``) that never
does I/O and never starts a thread.

Errors::

    ElectrostimError
    ├── InvalidInputError
    │   └── FieldRangeError     a message field outside what the protocol allows
    └── ProtocolError           bytes that are not a valid frame or message (``.reason``)

Examples
--------
>>> stuff(bytes([0x01, 0xF0, 0x0F, 0x81])).hex(" ")
'01 81 a5 81 5a 81 d4'
>>> unstuff(bytes.fromhex("01 81 a5 81 5a 81 d4")).hex(" ")
'01 f0 0f 81'
>>> hex(crc8(b"123456789")), hex(crc16_xmodem(b"123456789"))
('0xf4', '0x31c3')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, NamedTuple, TypeVar, cast

from ..errors import ElectrostimError, InvalidInputError

__all__ = [
    "DecodedPacket",
    "FieldRangeError",
    "Frame",
    "FrameError",
    "PROTOCOL_ERROR_REASONS",
    "ProtocolError",
    "crc16_xmodem",
    "crc8",
    "stuff",
    "unstuff",
]

START = 0xF0
STOP = 0x0F
ESCAPE = 0x81
KEY = 0x55
#: Bytes that are escaped inside a packet.
SPECIAL = frozenset({START, STOP, ESCAPE})

#: Why bytes were refused: the values of :attr:`ProtocolError.reason` and :attr:`FrameError.reason`.
PROTOCOL_ERROR_REASONS: dict[str, str] = {
    "framing": "start byte, header escapes or stop byte not where the protocol puts them",
    "stuffing": "an escape byte not followed by an escaped special byte",
    "length": "the length in the header does not match the bytes received",
    "crc": "the checksum in the header does not match the bytes received",
    "command": "a command number this codec has no layout for where one was required",
    "data": "packet data of the wrong size, with reserved bits set, or with a field out of range",
    "garbage": "bytes outside any frame (skipped while looking for a start byte)",
    "truncated": "a frame cut short by a new start byte",
    "too_long": "no stop byte within the longest frame the protocol allows",
}


# --------------------------------------------------------------------------- errors


class ProtocolError(ElectrostimError):
    """Bytes that are not a valid frame or message of the protocol.

    Parameters
    ----------
    message : str
        The whole message.
    reason : str
        One key of :data:`PROTOCOL_ERROR_REASONS`.
    data : bytes
        The bytes concerned (a frame, or part of one).
    """

    def __init__(self, message: str, *, reason: str, data: bytes = b""):
        super().__init__(message)
        self.reason = reason
        self.data = bytes(data)


class FieldRangeError(InvalidInputError):
    """A message field outside what the protocol allows.

    The message names the field, the allowed range or values, and the value given.
    ``field``, ``allowed`` and ``value`` hold the same facts for programs.
    """

    def __init__(self, message: str, *, field: str, allowed: str, value: Any):
        super().__init__(message)
        self.field = field
        self.allowed = allowed
        self.value = value


def field_error(owner: str, field: str, allowed: str, value: Any) -> FieldRangeError:
    """The one wording of a field error: field, allowed range, value given."""
    return FieldRangeError(
        f"Invalid value for {field!r} of {owner}: allowed {allowed}, but got {value!r}.",
        field=field,
        allowed=allowed,
        value=value,
    )


# --------------------------------------------------------------------------- field checks


def _fmt(x: float) -> str:
    return f"{x:g}"


def check_int(owner: str, field: str, value: Any, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]``; integral floats are accepted, bools are not."""
    allowed = f"integers {lo} to {hi}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise field_error(owner, field, allowed, value)
    if isinstance(value, float):
        if not value.is_integer():
            raise field_error(owner, field, allowed, value)
        value = int(value)
    if not lo <= value <= hi:
        raise field_error(owner, field, allowed, value)
    return int(value)


def check_bool(owner: str, field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise field_error(owner, field, "True or False", value)
    return value


E = TypeVar("E", bound=IntEnum)


def check_enum(owner: str, field: str, value: Any, enum: type[E]) -> E:
    """``value`` as a member of ``enum`` (by value)."""
    if not isinstance(value, bool) and isinstance(value, int):
        try:
            return enum(value)
        except ValueError:
            pass
    allowed = ", ".join(f"{m.value} ({m.name.lower()})" for m in enum)
    raise field_error(owner, field, allowed, value)


def grid_code(owner: str, field: str, value_ms: Any, offset: float, step: float, lo: int, hi: int, *,
              exact: bool = True, unit: str = "ms") -> int:
    """The code ``c`` with ``value = offset + step * c``, ``lo <= c <= hi``.

    With ``exact`` the value must lie on the grid (to 1e-9 of a step); without, it is
    rounded to the nearest grid point (half away from zero) before the range check.
    """
    vmin, vmax = offset + step * lo, offset + step * hi
    allowed = f"{_fmt(vmin)} to {_fmt(vmax)} {unit} in steps of {_fmt(step)} {unit}"
    if isinstance(value_ms, bool) or not isinstance(value_ms, (int, float)) or not math.isfinite(value_ms):
        raise field_error(owner, field, allowed, value_ms)
    c = (value_ms - offset) / step
    code = math.floor(c + 0.5) if c >= 0 else -math.floor(-c + 0.5)
    if exact and abs(code - c) > 1e-9:
        raise field_error(owner, field, allowed, value_ms)
    if not lo <= code <= hi:
        raise field_error(owner, field, allowed, value_ms)
    return int(code)


def check_channels(owner: str, field: str, value: Any, lo: int, hi: int) -> tuple[int, ...]:
    """A collection of distinct channel numbers in ``[lo, hi]``, as a sorted tuple."""
    allowed = f"distinct channel numbers {lo} to {hi}"
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise field_error(owner, field, allowed, value)
    items = list(value)
    out = [check_int(owner, field, ch, lo, hi) for ch in items]
    if len(set(out)) != len(out):
        raise field_error(owner, field, allowed, tuple(items))
    return tuple(sorted(out))


def check_items(owner: str, field: str, value: Any, kind: type, lo: int, hi: int) -> tuple[Any, ...]:
    """``lo`` to ``hi`` instances of ``kind`` (from any iterable but a string), as a tuple."""
    allowed = f"{lo} to {hi} {kind.__name__} entries"
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise field_error(owner, field, allowed, value)
    items = tuple(value)
    if not lo <= len(items) <= hi or not all(isinstance(x, kind) for x in items):
        raise field_error(owner, field, allowed, items)
    return items


def channels_to_mask(channels: Iterable[int]) -> int:
    """Bit ``k - 1`` set for channel ``k``."""
    mask = 0
    for ch in channels:
        mask |= 1 << (ch - 1)
    return mask


def mask_to_channels(mask: int) -> tuple[int, ...]:
    return tuple(k + 1 for k in range(8) if mask >> k & 1)


def to_signed(b: int) -> int:
    return b - 256 if b >= 128 else b


# --------------------------------------------------------------------------- messages


class Channels(NamedTuple):
    """A range-table rule: distinct channel numbers ``lo`` to ``hi``, kept as a sorted tuple."""

    lo: int
    hi: int


class Items(NamedTuple):
    """A range-table rule: ``lo`` to ``hi`` instances of ``kind``, kept as a tuple."""

    kind: type
    lo: int
    hi: int


#: What a range table may say of a field: ``(lo, hi)`` (integers), an ``IntEnum`` (a
#: member, given by value), ``bool``, :class:`Channels`, :class:`Items`, or for any
#: other check a function ``(owner, field, value) -> value to keep`` that raises
#: :class:`FieldRangeError` (see :func:`field_error`).
Rule = tuple[int, int] | type[IntEnum] | type[bool] | Channels | Items | Callable[[str, str, Any], Any]


def check_field(owner: str, field: str, value: Any, rule: Rule) -> Any:
    """``value`` checked against one rule of a range table: the value to keep."""
    if isinstance(rule, Channels):
        return check_channels(owner, field, value, rule.lo, rule.hi)
    if isinstance(rule, Items):
        return check_items(owner, field, value, rule.kind, rule.lo, rule.hi)
    if rule is bool:
        return check_bool(owner, field, value)
    if isinstance(rule, type) and issubclass(rule, IntEnum):
        return check_enum(owner, field, value, rule)
    if callable(rule):  # a check function (bool and enums are handled above)
        return cast(Callable[[str, str, Any], Any], rule)(owner, field, value)
    lo, hi = rule
    return check_int(owner, field, value, lo, hi)


class Checked:
    """A frozen dataclass whose fields are checked against its range table when built.

    ``_ranges`` maps a field to its :data:`Rule`, in the order they are checked; the
    field then holds the checked value (an int for an integral float, the enum member
    for its value, a sorted tuple of channels, a value on its grid). A check that
    depends on another field extends ``__post_init__`` after ``super().__post_init__()``.
    A field error names the class.
    """

    _ranges: ClassVar[dict[str, Rule]] = {}

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for field, rule in self._ranges.items():
            self._set(field, check_field(owner, field, getattr(self, field), rule))

    def _set(self, field: str, value: Any) -> None:
        """Set a field of the frozen instance (while it is being built)."""
        object.__setattr__(self, field, value)


class Message(Checked):
    """Base of the messages of both ScienceMode codecs.

    A message is a frozen dataclass whose field names carry their units, with:

    * ``command``: its command number (a class constant);
    * ``_ranges``: its range table, checked when it is built (:class:`Checked`);
    * ``_data()`` and ``_from_data(data)``: the packet data after the command, both
      ways (none by default);
    * ``_check_documented()``: limits the encoder and the strict decoder enforce
      beyond what construction checks (none by default).

    A protocol's own base class holds ``messages``, its registry (command number →
    message class, the table both directions use): every subclass with a ``command``
    of its own enters it when it is defined, and a second class for one command is
    refused. A command without a class decodes to the protocol's :class:`RawPacket`.
    """

    command: ClassVar[int]
    messages: ClassVar[dict[int, type[Message]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        command = cls.__dict__.get("command")
        if isinstance(command, int):
            known = cls.messages.setdefault(command, cls)
            if known is not cls:
                raise TypeError(f"{cls.__name__}: command {command} already belongs to {known.__name__}")

    def _data(self) -> bytes:
        return b""

    @classmethod
    def _from_data(cls, data: bytes) -> Message:
        cls._expect_length(data, 0)
        return cls()

    def _check_documented(self) -> None:
        """Limits the encoder and the strict decoder enforce beyond what construction checks."""

    @classmethod
    def _expect_length(cls, data: bytes, n: int) -> None:
        if len(data) != n:
            raise ProtocolError(f"{cls.__name__} carries {n} data bytes, but the packet has {len(data)}",
                                reason="data", data=data)


class ResultAck(Message):
    """An acknowledgement whose data is its result byte alone (``signed``: a signed byte)."""

    result: IntEnum
    signed: ClassVar[bool] = False

    def _data(self) -> bytes:
        return bytes([self.result & 0xFF])

    @classmethod
    def _from_data(cls, data: bytes) -> Message:
        cls._expect_length(data, 1)
        return cls(to_signed(data[0]) if cls.signed else data[0])  # type: ignore[call-arg]


@dataclass(frozen=True)
class RawPacket(Message):
    """A packet whose command has no message class in its protocol: its data as sent.

    A protocol's raw packet gives the command range in its range table and
    ``max_data_bytes``; a command that has a class is refused (use that class).
    """

    command: int  # type: ignore[misc]
    data: bytes = b""
    max_data_bytes: ClassVar[int]

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        if self.command in self.messages:
            raise field_error(owner, "command", "a command number without its own message class "
                              f"(use {self.messages[self.command].__name__})", self.command)
        n = self.max_data_bytes
        if not isinstance(self.data, (bytes, bytearray)) or len(self.data) > n:
            raise field_error(owner, "data", f"bytes, at most {n}", self.data)
        self._set("data", bytes(self.data))

    def _data(self) -> bytes:
        return self.data

    @classmethod
    def parse(cls, command: int, data: bytes, frame: bytes, *, documented: bool = True) -> Message:
        """The message one packet of this protocol carries: its command's class, else a raw packet.

        With ``documented`` the message must also keep the documented limits. Every
        error is a :class:`ProtocolError` about ``frame`` that names the command.
        """
        known = cls.messages.get(command)
        try:
            message = cls(command, data) if known is None else known._from_data(data)
            if documented:
                message._check_documented()
        except FieldRangeError as exc:
            raise ProtocolError(f"command {command}: {exc}", reason="data", data=bytes(frame)) from exc
        except ProtocolError as exc:
            raise ProtocolError(f"command {command}: {exc}", reason=exc.reason, data=bytes(frame)) from None
        return message


# --------------------------------------------------------------------------- stuffing and CRCs


def stuff(data: bytes) -> bytes:
    """Escape every ``F0``, ``0F`` and ``81`` as ``81, b ^ 55``."""
    out = bytearray()
    for b in data:
        if b in SPECIAL:
            out += bytes((ESCAPE, b ^ KEY))
        else:
            out.append(b)
    return bytes(out)


def unstuff(data: bytes, *, canonical: bool = True) -> bytes:
    """Undo :func:`stuff`.

    Parameters
    ----------
    data : bytes
        Stuffed bytes; they must not contain a start or stop byte.
    canonical : bool
        Require every escape to stand for ``F0``, ``0F`` or ``81`` (what :func:`stuff`
        writes). With False any escaped byte is accepted (``81, x`` → ``x ^ 55``), as
        some clients also escape other bytes.

    Raises
    ------
    ProtocolError
        ``reason="stuffing"`` for a trailing escape or (when ``canonical``) an escape of
        an ordinary byte; ``reason="framing"`` for a start or stop byte inside.
    """
    out = bytearray()
    it = iter(range(len(data)))
    for i in it:
        b = data[i]
        if b in (START, STOP):
            raise ProtocolError(f"byte {b:#04x} at position {i} of stuffed data: start and stop bytes "
                                f"cannot occur inside a packet", reason="framing", data=data)
        if b != ESCAPE:
            out.append(b)
            continue
        j = next(it, None)
        if j is None:
            raise ProtocolError("stuffed data ends with an escape byte 0x81", reason="stuffing", data=data)
        value = data[j] ^ KEY
        if data[j] in (START, STOP) or (canonical and value not in SPECIAL):
            raise ProtocolError(f"escape 0x81 followed by {data[j]:#04x} at position {j}: only escaped "
                                f"0xf0, 0x0f, 0x81 (sent as 0xa5, 0x5a, 0xd4) are allowed", reason="stuffing", data=data)
        out.append(value)
    return bytes(out)


def _table(width: int, poly: int) -> tuple[int, ...]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) if crc & top else (crc << 1)
        table.append(crc & mask)
    return tuple(table)


_CRC8 = _table(8, 0x07)
_CRC16 = _table(16, 0x1021)


def crc8(data: bytes) -> int:
    """CRC-8: polynomial 0x07, initial value 0, no reflection, no final XOR (ScienceMode2).

    >>> hex(crc8(b"123456789"))
    '0xf4'
    """
    crc = 0
    for b in data:
        crc = _CRC8[crc ^ b]
    return crc


def crc16_xmodem(data: bytes) -> int:
    """CRC-16/XMODEM: polynomial 0x1021, initial value 0, no reflection (ScienceMode4).

    >>> hex(crc16_xmodem(b"123456789"))
    '0x31c3'
    """
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ b]
    return crc


def escaped_header(values: Iterable[int]) -> bytes:
    """Header bytes, each sent escaped as ``81, b ^ 55``."""
    out = bytearray()
    for v in values:
        out += bytes((ESCAPE, v ^ KEY))
    return bytes(out)


def read_header(frame: bytes, count: int) -> list[int]:
    """The ``count`` escaped header values after the start byte; checks the escapes."""
    values = []
    for k in range(count):
        esc, val = frame[1 + 2 * k], frame[2 + 2 * k]
        if esc != ESCAPE:
            raise ProtocolError(f"header byte {1 + 2 * k} is {esc:#04x}, expected the escape 0x81",
                                reason="framing", data=frame)
        values.append(val ^ KEY)
    return values


def check_delimiters(frame: bytes, header_values: int, min_payload: int) -> bytes:
    """Check start, header escapes positions and stop byte; return the stuffed payload."""
    header = 1 + 2 * header_values
    if len(frame) < header + min_payload + 1:
        raise ProtocolError(f"a frame of {len(frame)} bytes is shorter than the shortest frame "
                            f"({header + min_payload + 1} bytes)", reason="framing", data=frame)
    if frame[0] != START:
        raise ProtocolError(f"frame starts with {frame[0]:#04x}, expected the start byte 0xf0",
                            reason="framing", data=frame)
    if frame[-1] != STOP:
        raise ProtocolError(f"frame ends with {frame[-1]:#04x}, expected the stop byte 0x0f",
                            reason="framing", data=frame)
    return bytes(frame[header:-1])


# --------------------------------------------------------------------------- decoded values and events


class DecodedPacket(NamedTuple):
    """What a ``decode`` returns: the packet number and the message."""

    packet_number: int
    message: Any


@dataclass(frozen=True)
class Frame:
    """A complete frame whose framing, length, checksum and stuffing are valid.

    ``data`` is the whole frame, start to stop byte; pass it to the protocol's ``decode``.
    """

    data: bytes


@dataclass(frozen=True)
class FrameError:
    """Bytes a frame decoder discarded, and why.

    ``reason`` is a key of :data:`PROTOCOL_ERROR_REASONS`; ``data`` the bytes discarded.
    Together with the :class:`Frame` events, the ``data`` of every event is the input,
    each byte exactly once, in order.
    """

    reason: str
    message: str
    data: bytes


class FrameSplitter:
    """Split a byte stream into frames, whatever its chunking; resynchronise after garbage.

    A candidate frame starts at a start byte ``F0``; the next ``header_bytes`` bytes are
    escape/value pairs (every even one must be ``81``; the values may be anything); the
    stuffed packet runs up to the first stop byte ``0F``. A new start byte before it
    cuts the candidate short. When a candidate fails (bad header escape, checksum,
    length, stuffing, too long), only its start byte and the bytes up to the next start
    byte inside it are discarded, so a real frame that began inside a false one is
    still found.

    Decisions depend only on the bytes, never on how they were chunked: garbage before a
    start byte is reported as one event when the start byte arrives (or at
    :meth:`flush`).

    Parameters
    ----------
    header_bytes : int
        Bytes after the start byte that are escape/value pairs.
    max_frame_bytes : int
        The longest frame, start and stop bytes included.
    check : callable
        ``check(frame)`` raises :class:`ProtocolError` for an invalid complete frame.
    """

    def __init__(self, *, header_bytes: int, max_frame_bytes: int, check: Callable[[bytes], object]):
        self._header = header_bytes
        self._max = max_frame_bytes
        self._check = check
        self._buf = bytearray()
        self._garbage = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held back: garbage not yet reported and an incomplete frame."""
        return len(self._buf) + len(self._garbage)

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        """Add bytes; return the events they complete, in stream order."""
        self._buf += data
        events: list[Frame | FrameError] = []
        while self._step(events):
            pass
        return events

    def flush(self) -> list[FrameError]:
        """Report whatever is held back (garbage, an incomplete frame) and start afresh."""
        events: list[FrameError] = []
        self._emit_garbage(events)
        if self._buf:
            events.append(FrameError("truncated", f"stream ended inside a frame ({len(self._buf)} bytes)",
                                      bytes(self._buf)))
            self._buf.clear()
        return events

    def reset(self) -> None:
        """Forget everything held back, reporting nothing."""
        self._buf.clear()
        self._garbage.clear()

    # ------------------------------------------------------------------ internals

    def _emit_garbage(self, events: list) -> None:
        if self._garbage:
            events.append(FrameError("garbage", f"{len(self._garbage)} bytes outside any frame",
                                     bytes(self._garbage)))
            self._garbage.clear()

    def _reject(self, events: list, candidate: bytes, reason: str, message: str) -> None:
        """Discard the candidate's start byte and the bytes up to the next start byte inside it."""
        k = candidate.find(START, 1)
        n = len(candidate) if k < 0 else k
        events.append(FrameError(reason, message, bytes(self._buf[:n])))
        del self._buf[:n]

    def _step(self, events: list) -> bool:
        buf = self._buf
        if not buf:
            return False
        if buf[0] != START:
            k = buf.find(START)
            if k < 0:
                self._garbage += buf
                buf.clear()
                return False
            self._garbage += buf[:k]
            del buf[:k]
        self._emit_garbage(events)
        # header: escape/value pairs
        for pos in range(1, min(len(buf), 1 + self._header), 2):
            if buf[pos] != ESCAPE:
                self._reject(events, bytes(buf[: pos + 1]), "framing",
                             f"header byte {pos} is {buf[pos]:#04x}, expected the escape 0x81")
                return True
        if len(buf) <= self._header:
            return False
        # stuffed packet up to the first start or stop byte
        body_start = 1 + self._header
        limit = min(len(buf), self._max)
        ends = [i for i in (buf.find(STOP, body_start, limit), buf.find(START, body_start, limit)) if i >= 0]
        end = min(ends) if ends else -1
        if end < 0:
            if len(buf) >= self._max:
                self._reject(events, bytes(buf[: self._max]), "too_long",
                             f"no stop byte within {self._max} bytes")
                return True
            return False
        if buf[end] == START:
            self._reject(events, bytes(buf[:end]), "truncated",
                         f"a start byte at position {end} cut a frame short")
            return True
        frame = bytes(buf[: end + 1])
        try:
            self._check(frame)
        except ProtocolError as exc:
            self._reject(events, frame, exc.reason, str(exc))
            return True
        events.append(Frame(frame))
        del buf[: end + 1]
        return True
