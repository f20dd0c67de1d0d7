"""The serial side of a ScienceMode stimulator: a port, a reader thread, and requests that wait for their acknowledgement.

The codecs (:mod:`._sciencemode2.codec`, :mod:`._sciencemode4.codec`) are pure; this module adds the
transport and the threads. A :class:`SerialLink` owns one serial port (pyserial: a
device path, or any URL pyserial opens) and one reader thread that splits the incoming
bytes into frames and decodes them:

* an acknowledgement of the request in flight completes it (:meth:`SerialLink.request`);
* anything else the device sends on its own (ScienceMode2 Init, StimulationError) goes
  to ``on_message``;
* bytes that are not a valid frame (garbage, a corrupted checksum) and an
  acknowledgement nobody waits for (late or unexpected) go to ``on_error``;
* a port that fails (the device vanished) makes the link *lost*: ``on_error`` is told
  once, and every later request fails at once.

Every wait has a timeout: a request waits at most ``response_timeout_s`` (the
protocols' 100 ms) for its acknowledgement, and a write at most that long.
Callbacks run on the reader thread; they must return quickly and must not call
:meth:`SerialLink.request`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import serial

from ._framing import Frame, FrameError, ProtocolError
from ._stimulator import DeviceError

try:
    import termios

    #: what opening a port can raise (pyserial lets termios.error, which is no OSError, through from its settings)
    _OPEN_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, ValueError, termios.error)
except ImportError:  # not POSIX
    _OPEN_ERRORS = (serial.SerialException, OSError, ValueError)

__all__ = ["Codec", "SerialLink", "LinkStats"]


class Codec(Protocol):
    """What a link needs of a protocol: encode, decode, a stream decoder and its packet numbering."""

    name: str
    packet_numbers: int  # packet numbers run 0 .. packet_numbers - 1

    def encode(self, message: Any, packet_number: int) -> bytes: ...

    def decode(self, frame: bytes) -> tuple[int, Any]: ...

    def stream_decoder(self) -> Any: ...

    def is_ack_of(self, ack: Any, request: Any) -> bool: ...


@dataclass
class LinkStats:
    """Counts kept by a link (for status and tests)."""

    frames_out: int = 0
    frames_in: int = 0
    bytes_in: int = 0
    errors: list[str] = field(default_factory=list)


class _Pending:
    __slots__ = ("request", "packet_number", "done", "reply", "error")

    def __init__(self, request: Any, packet_number: int):
        self.request = request
        self.packet_number = packet_number
        self.done = threading.Event()
        self.reply: Any = None
        self.error: str | None = None  # invalid bytes while waiting: most likely the acknowledgement, damaged


class SerialLink:
    """One serial connection to a ScienceMode device.

    Parameters
    ----------
    port : str
        Device path (``/dev/ttyUSB0``, a pseudo-terminal) or pyserial URL.
    codec : Codec
        The protocol.
    baudrate, parity : int, str
        Serial settings (``serial.PARITY_EVEN`` ...).
    rtscts : bool
        Hardware flow control.
    response_timeout_s : float
        Longest wait for an acknowledgement (and for a write).
    on_message, on_error : callable, optional
        ``on_message(packet_number, message)`` for what the device sends unasked;
        ``on_error(text)`` for invalid bytes, stray acknowledgements and a lost port.
    """

    def __init__(self, port: str, codec: Codec, *, baudrate: int, parity: str, rtscts: bool = False,
                 response_timeout_s: float = 0.1,
                 on_message: Callable[[int, Any], None] | None = None,
                 on_error: Callable[[str], None] | None = None):
        self.port = port
        self.codec = codec
        self.response_timeout_s = float(response_timeout_s)
        self.on_message = on_message
        self.on_error = on_error
        self.stats = LinkStats()
        self.lost: str | None = None
        self._io = threading.Lock()  # one request at a time
        self._pending: _Pending | None = None
        self._pending_lock = threading.RLock()  # _dispatch reports errors while holding it
        self._packet_number = 0
        self._closing = threading.Event()
        self.last_sent = time.monotonic()
        try:
            self._serial = serial.serial_for_url(port, baudrate=baudrate, parity=parity, bytesize=serial.EIGHTBITS,
                                                 stopbits=serial.STOPBITS_ONE, rtscts=rtscts, timeout=0.005,
                                                 write_timeout=self.response_timeout_s, exclusive=True)
        except _OPEN_ERRORS as exc:
            raise DeviceError(f"Cannot open the {codec.name} port {port!r}: {exc}") from None
        self._decoder = codec.stream_decoder()
        self._reader = threading.Thread(target=self._read_loop, name=f"{codec.name} reader {port}", daemon=True)
        self._reader.start()

    # -- sending ----------------------------------------------------------------------------------
    def _next_packet_number(self) -> int:
        n = self._packet_number
        self._packet_number = (n + 1) % self.codec.packet_numbers
        return n

    def _write(self, frame: bytes) -> None:
        if self.lost:
            raise DeviceError(self.lost)
        try:
            self._serial.write(frame)  # waits at most write_timeout; no tcdrain, which has no timeout
        except (serial.SerialException, OSError) as exc:
            self._lose(f"the {self.codec.name} device on {self.port} cannot be written to: {exc}")
            raise DeviceError(self.lost) from None
        self.stats.frames_out += 1
        self.last_sent = time.monotonic()

    def send(self, message: Any, packet_number: int | None = None) -> int:
        """Send a message that has no acknowledgement; returns its packet number."""
        with self._io:
            pn = self._next_packet_number() if packet_number is None else packet_number
            self._write(self.codec.encode(message, pn))
            return pn

    def request(self, message: Any, timeout_s: float | None = None) -> Any:
        """Send ``message`` and return its acknowledgement.

        Raises
        ------
        DeviceError
            When the link is lost or no acknowledgement comes within the timeout.
        """
        timeout = self.response_timeout_s if timeout_s is None else float(timeout_s)
        with self._io:
            pn = self._next_packet_number()
            slot = _Pending(message, pn)
            with self._pending_lock:
                self._pending = slot
            try:
                self._write(self.codec.encode(message, pn))
                if not slot.done.wait(timeout):
                    if self.lost:
                        raise DeviceError(self.lost)
                    raise DeviceError(f"the {self.codec.name} device did not acknowledge {type(message).__name__} "
                                      f"(packet {pn}) within {timeout * 1000:.0f} ms")
            finally:
                with self._pending_lock:
                    self._pending = None
            if self.lost and slot.reply is None:
                raise DeviceError(self.lost)
            if slot.error is not None and slot.reply is None:
                raise DeviceError(slot.error)
            return slot.reply

    # -- receiving --------------------------------------------------------------------------------
    def _error(self, text: str) -> None:
        self.stats.errors.append(text)
        with self._pending_lock:
            # a request in flight fails now with the cause, not 100 ms later as a missing acknowledgement
            if self._pending is not None and self._pending.error is None and not self._pending.done.is_set():
                self._pending.error = f"{text} (while waiting for the acknowledgement of " \
                                      f"{type(self._pending.request).__name__}, packet {self._pending.packet_number})"
                self._pending.done.set()
        if self.on_error is not None:
            self.on_error(text)

    def _lose(self, text: str) -> None:
        if self.lost is None:
            self.lost = text
            with self._pending_lock:
                if self._pending is not None:
                    self._pending.done.set()
            self._error(text)

    def _read_loop(self) -> None:
        while not self._closing.is_set():
            try:
                data = self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                if not self._closing.is_set():
                    self._lose(f"the {self.codec.name} device on {self.port} vanished: {exc}")
                return
            if not data:
                # a quiet line: bytes held back (garbage, a frame cut short) are reported now, not at the next frame
                events = self._decoder.flush() if self._decoder.buffered else []
            else:
                self.stats.bytes_in += len(data)
                events = self._decoder.feed(data)
            for event in events:
                if isinstance(event, FrameError):
                    self._error(f"invalid bytes from the {self.codec.name} device ({event.reason}): {event.message}")
                    continue
                assert isinstance(event, Frame)
                try:
                    pn, msg = self.codec.decode(event.data)
                except ProtocolError as exc:
                    self._error(f"invalid {self.codec.name} packet ({exc.reason}): {exc}")
                    continue
                self.stats.frames_in += 1
                self._dispatch(pn, msg)

    def _dispatch(self, pn: int, msg: Any) -> None:
        with self._pending_lock:
            slot = self._pending
            if slot is not None and self.codec.is_ack_of(msg, slot.request):
                if pn != slot.packet_number:
                    self._error(f"{type(msg).__name__} for packet {pn} while packet {slot.packet_number} waits: "
                                "a late or foreign acknowledgement")
                    return
                slot.reply = msg
                slot.done.set()
                return
        if self.codec.is_ack_of(msg, None):
            self._error(f"{type(msg).__name__} (packet {pn}) that no request waits for: a late acknowledgement")
            return
        if self.on_message is not None:
            self.on_message(pn, msg)

    # -- closing ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the reader and close the port (idempotent)."""
        if self._closing.is_set():
            return
        self._closing.set()
        try:
            self._serial.cancel_read()
        except Exception:  # noqa: BLE001 - not every port type can cancel a read
            pass
        self._reader.join(timeout=1.0)
        try:
            self._serial.close()
        except Exception:  # noqa: BLE001 - a vanished port may fail to close; it is gone either way
            pass
