"""Device emulators on a pseudo-terminal: what the serial drivers and the tests talk to when no stimulator is plugged in.

An emulator opens a pseudo-terminal pair, serves the device side from one thread and
publishes the other side's path as :attr:`PtyEmulator.port`; a driver (ours, or any
other client) opens that path like a serial port. The thread keeps the protocol's
timing: it answers after ``response_delay_s`` (the protocols allow 100 ms), runs the
device's timers (ScienceMode2 repeats Init every 500 ms until acknowledged and drops a
link silent for 1.2 s; ScienceMode4 stops stimulation when not polled for 1.5 s), and
logs every change of its outputs with a timestamp, so a test can see when the output
really went to zero, and records every pulse it emits (:attr:`PtyEmulator.pulse_recorder`,
listed by :meth:`PtyEmulator.emitted`), so a test can compare what was delivered with
what was approved. Whatever stops the outputs (a stop command, a watchdog, an
electrode error, :meth:`~PtyEmulator.vanish`) stops the pulses at that moment.

Faults to inject, for the tests and for anyone checking a client:
:meth:`~PtyEmulator.inject` (raw bytes, e.g. garbage), :meth:`~PtyEmulator.corrupt_replies`
(bad checksums), :meth:`~PtyEmulator.drop_replies`, :attr:`~PtyEmulator.response_delay_s`
(late replies), :meth:`~PtyEmulator.go_silent` and :meth:`~PtyEmulator.vanish` (the
device stops answering, or disappears with its port).

One client after another: like a device on a serial cable, an emulator serves any
number of clients in turn on the same :attr:`~PtyEmulator.port` (one at a time), for
as long as it runs. It does not know when a client closes the port, as a device does
not: its own timers notice a host that went away (the ScienceMode2 watchdog drops the
link, stops the outputs and sends Init again; the ScienceMode4 poll watchdog stops a
stimulation), and the next client finds it as a real device would be then. Its records
(:attr:`~PtyEmulator.output_log`, :meth:`~PtyEmulator.emitted`, ``received``) run on
across clients. Two things keep the port usable whatever a client left behind:

* **Line settings.** A pseudo-terminal keeps the settings (termios) of the client
  that set them last, and cannot hold parity: it drops PARENB. Debian's C library (a
  local patch to glibc's ``tcsetattr``) reads the settings back and fails with EINVAL
  when nothing changed but such a dropped bit; so the first client that opened the
  port with even parity (a ScienceMode2 client) succeeded, since it changed the speed
  too, and the next one, asking for exactly what the first had left, got EINVAL. The
  emulator's thread puts the speed back to 50 baud (a speed no client asks for; a
  pseudo-terminal ignores it) at each turn, every 5 ms at most, so every client's
  configuration changes the speed and succeeds (unless the client before it opened
  and closed the port within those milliseconds).
* **A line nobody reads.** What the device sends while no client listens (Init every
  500 ms) would fill the pseudo-terminal's buffer (some 20 kB) and then block the
  device, its timers and watchdogs included. The emulator never waits for the line:
  when it is full, what it holds is discarded (an overrun, counted in
  :attr:`~PtyEmulator.overruns`) and the new bytes are put on it. A client empties
  its input when it opens the port (pyserial does), so it reads fresh bytes only.

Subclasses supply the protocol: :meth:`~PtyEmulator._handle` answers one packet and
:meth:`~PtyEmulator._tick` runs the timers; both get the time ``now`` (monotonic
seconds) and act as if it were now, so a test can drive an emulator in virtual time
through :meth:`~PtyEmulator._receive` (bytes as they arrive on the line) and
:meth:`~PtyEmulator._tick` without starting its thread.
"""

from __future__ import annotations

import math
import os
import select
import termios
import threading
import time
import tty
from dataclasses import dataclass
from typing import Any

from ..waveform import PulseChunk
from ._emitted import PulseRecorder
from ._framing import Frame, FrameError, ProtocolError

__all__ = ["PtyEmulator", "OutputState"]

#: The speed the emulator keeps on its side of the line: one no client asks for (see the module's docstring).
_LINE_SPEED = termios.B50


@dataclass(frozen=True)
class OutputState:
    """One output of an emulated device: current (mA) and phase width (µs); 0 mA is no output."""

    current_ma: float
    pulse_width_us: float


class PtyEmulator:
    """A device on a pseudo-terminal. Use as a context manager, or :meth:`start` and :meth:`close`.

    Parameters
    ----------
    response_delay_s : float
        Time from a complete request to its reply.
    """

    #: protocol name, for messages
    name = "ScienceMode"
    #: index in a frame of the first checksum value byte (after its escape)
    checksum_byte = 2

    def __init__(self, *, response_delay_s: float = 0.0005):
        self.response_delay_s = float(response_delay_s)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: bytes pass unchanged
        # the device side is held open for the emulator's life: a client that closes the port does not hang it up
        os.set_blocking(self._master, False)  # the device never waits for the line (see _send)
        self.port: str = os.ttyname(self._slave)
        #: times the line was full (nobody read it) and what it held was discarded
        self.overruns = 0
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._outbox: list[tuple[float, bytes]] = []
        #: every reply sent: (time it was due, the serving loop's tick before, the tick that sent it); a reply goes
        #: out at the first tick at or past its due time, however late a loaded machine runs the ticks
        self.reply_log: list[tuple[float, float, float]] = []
        self._last_serve_s = -math.inf
        self._corrupt = 0
        self._drop = 0
        self.silent = False
        self.gone = False
        self.outputs: dict[int, OutputState] = {}
        #: (monotonic time, {channel: OutputState}) at every change of the outputs
        self.output_log: list[tuple[float, dict[int, OutputState]]] = [(time.monotonic(), {})]
        #: (monotonic time, message) of every valid packet received
        self.received: list[tuple[float, Any]] = []
        #: every pulse emitted (see :meth:`emitted`)
        self.pulse_recorder = PulseRecorder()
        #: what could not be understood: (monotonic time, text)
        self.errors: list[tuple[float, str]] = []
        self._decoder = self._stream_decoder()
        self.last_valid_s = time.monotonic()
        self._reset_line()

    # -- protocol hooks ---------------------------------------------------------------------------
    def _stream_decoder(self) -> Any:
        raise NotImplementedError

    def _decode(self, frame: bytes) -> tuple[int, Any]:
        raise NotImplementedError

    def _encode(self, message: Any, packet_number: int) -> bytes:
        raise NotImplementedError

    def _handle(self, packet_number: int, message: Any, now: float) -> list[tuple[Any, int]]:
        """Answer one valid packet: the replies as ``(message, packet_number)``."""
        raise NotImplementedError

    def _bad_packet(self, frame: bytes, error: ProtocolError, now: float) -> list[tuple[Any, int]]:
        """A frame with valid framing but a message that could not be decoded."""
        return []

    def _tick(self, now: float) -> list[tuple[Any, int]]:
        """Run the device's timers; return what it sends unasked."""
        return []

    # -- outputs ----------------------------------------------------------------------------------
    def set_outputs(self, outputs: dict[int, OutputState], now: float | None = None) -> None:
        """Change what the outputs deliver (logged when it changes)."""
        clean = {ch: o for ch, o in outputs.items() if o.current_ma > 0}
        if clean != {ch: o for ch, o in self.outputs.items() if o.current_ma > 0} or not self.output_log:
            self.output_log.append((time.monotonic() if now is None else now, dict(clean)))
        self.outputs = dict(outputs)

    def stop_outputs(self, now: float | None = None) -> None:
        """Every output stops: logged, and no pulse starts from ``now`` on."""
        t = time.monotonic() if now is None else now
        self.pulse_recorder.stop(t)
        self.set_outputs({}, t)

    def emitted(self, start_s: float | None = None, stop_s: float | None = None) -> PulseChunk:
        """Every pulse the device emitted in ``[start_s, stop_s)`` (monotonic seconds), as the device would.

        Parameters
        ----------
        start_s : float, optional
            Start of the window (default: the first pulse).
        stop_s : float, optional
            End of the window (default, and at most: now).

        Returns
        -------
        PulseChunk
            Sorted by time then channel; ``output`` is the device channel (1..n).
        """
        with self._lock:
            return self.pulse_recorder.emitted(start_s, stop_s)

    @property
    def output_on(self) -> bool:
        return any(o.current_ma > 0 for o in self.outputs.values())

    def output_zero_since(self, t: float) -> float | None:
        """The first time at or after ``t`` from which every output stayed zero, or None if output is on now."""
        if self.output_on:
            return None
        last_on_end = None
        for stamp, outs in self.output_log:
            if outs:
                last_on_end = None
            elif last_on_end is None:
                last_on_end = stamp
        if last_on_end is None:
            return None
        return max(t, last_on_end)

    # -- faults -----------------------------------------------------------------------------------
    def inject(self, data: bytes) -> None:
        """Write raw bytes to the line now (garbage, a hand-made frame)."""
        with self._lock:
            self._send(data)

    def corrupt_replies(self, n: int = 1) -> None:
        """Send the next ``n`` replies with a wrong checksum."""
        with self._lock:
            self._corrupt += n

    def drop_replies(self, n: int = 1) -> None:
        """Do not send the next ``n`` replies."""
        with self._lock:
            self._drop += n

    def go_silent(self) -> None:
        """Stop answering, port left open (a hung device). Its own timers still run."""
        self.silent = True

    def vanish(self, now: float | None = None) -> None:
        """The device disappears with its port (unplugged): the client's next read or write fails.

        Its outputs stop at ``now`` (default: the time of the call).
        """
        with self._lock:
            self.silent = True
            self.stop_outputs(now)
            self._release_port()

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> PtyEmulator:
        self._thread = threading.Thread(target=self._serve, name=f"{self.name} emulator", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._release_port()

    def _release_port(self) -> None:
        """Close both ends of the pseudo-terminal (once)."""
        if self.gone:
            return
        self.gone = True
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def _reset_line(self) -> None:
        """Put the line speed back to the emulator's own, if a client changed it (lock held, or not started).

        A pseudo-terminal ignores speeds, so the client in session reads and writes on
        unchanged; the next client's configuration then always changes the speed, and
        so succeeds (see the module's docstring).
        """
        try:
            attrs = termios.tcgetattr(self._slave)
            if attrs[4] != _LINE_SPEED or attrs[5] != _LINE_SPEED:
                attrs[4] = attrs[5] = _LINE_SPEED
                termios.tcsetattr(self._slave, termios.TCSANOW, attrs)
        except (termios.error, OSError):
            pass  # the port is gone (vanish, close)

    def _send(self, data: bytes) -> None:
        """Put bytes on the line without waiting (lock held, or not started).

        A line that nobody reads (no client, or one that stopped reading) fills up: then
        what it holds is discarded, an overrun, and ``data`` is put on it whole.
        """
        try:
            if os.write(self._master, data) == len(data):
                return
        except BlockingIOError:
            pass
        self.overruns += 1
        termios.tcflush(self._slave, termios.TCIFLUSH)  # also what went out of a frame cut short
        os.write(self._master, data)

    def __enter__(self) -> PtyEmulator:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C)."""
        if self._thread is None:
            self.start()
        try:
            while not self._closing.wait(0.2):
                pass
        finally:
            self.close()

    def _queue(self, replies: list[tuple[Any, int]], now: float) -> None:
        for message, pn in replies:
            frame = self._encode(message, pn)
            if self._drop:
                self._drop -= 1
                continue
            if self._corrupt:
                self._corrupt -= 1
                frame = _corrupt_checksum(frame, self.checksum_byte)
            self._outbox.append((now + self.response_delay_s, frame))

    def _serve(self) -> None:
        while not self._closing.is_set():
            now = time.monotonic()
            with self._lock:
                if self.gone:
                    return
                self._reset_line()
                due = [(t, f) for t, f in self._outbox if t <= now]
                self._outbox = [(t, f) for t, f in self._outbox if t > now]
                for t, frame in due:
                    if not self.silent:
                        # logged first: whoever reads the reply finds it logged
                        self.reply_log.append((t, self._last_serve_s, now))
                        try:
                            self._send(frame)
                        except (OSError, termios.error):
                            pass
                self._last_serve_s = now
                self._queue(self._tick(now), now)
                wait = min([0.005] + [t - now for t, _ in self._outbox])
            try:
                ready = select.select([self._master], [], [], max(0.0, wait))[0]
            except (OSError, ValueError):
                return
            if not ready:
                continue
            with self._lock:
                if self.gone:
                    return
                try:
                    data = os.read(self._master, 4096)
                except OSError:
                    continue
                self._receive(data, time.monotonic())

    def _receive(self, data: bytes, now: float) -> None:
        """Bytes that arrived on the line at ``now``: decode, log and answer every whole packet (lock held)."""
        for event in self._decoder.feed(data):
            if isinstance(event, FrameError):
                self.errors.append((now, f"{event.reason}: {event.message}"))
                continue
            assert isinstance(event, Frame)
            try:
                pn, msg = self._decode(event.data)
            except ProtocolError as exc:
                self.errors.append((now, f"{exc.reason}: {exc}"))
                if not self.silent:
                    self._queue(self._bad_packet(event.data, exc, now), now)
                continue
            self.last_valid_s = now
            self.received.append((now, msg))
            if not self.silent:
                self._queue(self._handle(pn, msg, now), now)


def _corrupt_checksum(frame: bytes, pos: int) -> bytes:
    """The same frame with one checksum byte changed (it stays a well-formed frame)."""
    b = bytearray(frame)
    # header values are escaped (81, value ^ 55); flip a bit that keeps the byte off F0/0F/81
    b[pos] ^= 0x01 if b[pos] ^ 0x01 not in (0xF0, 0x0F, 0x81) else 0x02
    return bytes(b)
