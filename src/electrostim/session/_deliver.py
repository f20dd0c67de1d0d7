"""Deliver an approved plan on a stimulator and record it: the one function every face calls.

:func:`deliver` connects the stimulator, configures it from the plan's snapshot, runs
the session (:class:`~._runner.Runner`), records every event in the store as it
happens and ends the record exactly once, whatever ends the session:

* the session's own end (``completed``), a stop key or :meth:`Runner.emergency_stop`
  (``stopped``), a device fault (``failed``, with its cause);
* a signal asking the process to end — SIGINT (Ctrl-C), SIGTERM, SIGHUP: the output is
  zeroed at once by a thread woken by the signal itself (not when the main thread gets
  round to it), then the session ends ``stopped`` with the signal as its cause; later
  signals change nothing (a second Ctrl-C cannot interrupt the recording);
* a store that fails (locked by another process, disk full, read-only): the output is
  zeroed first, the session fails with the store's error as its first cause, and the
  ending is written if the store recovers; if it cannot be written the result says so
  (the next start marks the record ``interrupted``).

Process exit codes the command line uses (:data:`EXIT_CODES`): 0 completed or stopped
by the user, 1 failed (device, store), 128 + the signal's number when a signal ended
it (130 SIGINT, 129 SIGHUP, 143 SIGTERM).
"""

from __future__ import annotations

import math
import os
import signal
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..devices import Stimulator, open_stimulator
from ..devices import parse_backend as _parse_backend
from ..errors import ElectrostimError, InvalidInputError, OptionError
from ..safety import ApprovedPlan
from ._runner import MAX_STEP_S, MIN_DURATION_S, MIN_STEP_S, Runner, SessionState, check_number

if TYPE_CHECKING:  # the store is imported when a session is delivered
    from ..store import Store, StoreError

__all__ = ["deliver", "check_store", "parse_backend", "SessionResult", "END_STATES", "EXIT_CODES", "HANDLED_SIGNALS", "MAX_SPEED"]

#: The signals that end a session cleanly while :func:`deliver` runs (SIGHUP where the platform has it).
HANDLED_SIGNALS: tuple[signal.Signals, ...] = tuple(
    s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None
)
#: How a session ends in the store, by the session engine's final state.
#: (the session engine and the store name them alike)
END_STATES = {SessionState.COMPLETED: "completed", SessionState.STOPPED: "stopped", SessionState.FAILED: "failed"}
END_FINAL = {s.value for s in END_STATES}
#: Process exit codes for an ending (a signal adds 128 to its number).
EXIT_CODES = {"completed": 0, "stopped": 0, "failed": 1}
#: How long the ending of a session waits for a store that failed to take it again (the output is zero by then)
RECORD_RETRY_S = 5.0
#: Fastest speed-up of a simulated session asked for by a number (``math.inf``: as fast as it computes).
MAX_SPEED = 1e6
#: Slowest speed of a simulated session (a hundredth of real time)
MIN_SPEED = 0.01


@dataclass
class SessionResult:
    """What a delivered session came to.

    Attributes
    ----------
    session_id : int or None
        The record's id (None when no session was started: the stimulator could not
        be reached or configured).
    end_state : {"completed", "stopped", "failed"}
        How the record ends.
    error : str or None
        The first cause of a failure (device, store), or None.
    signal : str or None
        The signal that ended the session (``SIGTERM``, ...), or None.
    record_error : str or None
        Why the ending could not be written to the store, or None when it was.
    summary : dict
        The session engine's summary (state, times, thresholds, pulses, charge).
    events : int
        Events the session recorded between the store's first event (``running``) and
        its last (the ending): all of them unless ``record_error``.
    db : str
        The store's URL (password hidden).
    """

    program: str
    device: str
    session_id: int | None
    end_state: str
    error: str | None
    signal: str | None
    record_error: str | None
    summary: dict[str, Any] = field(default_factory=dict)
    events: int = 0
    db: str = ""

    @property
    def exit_code(self) -> int:
        """The process exit code for this ending (see :data:`EXIT_CODES`)."""
        if self.signal is not None:
            return 128 + int(signal.Signals[self.signal])
        if self.record_error is not None:
            return 1
        return EXIT_CODES[self.end_state]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields, with the summary's keys at the top level."""
        d = asdict(self)
        summary = d.pop("summary")
        return {**summary, **d, "exit_code": self.exit_code}


class _SignalGuard:
    """While active (main thread only): the handled signals zero the output at once and ask the session to stop.

    The C-level handler writes the signal number to a pipe (:func:`signal.set_wakeup_fd`);
    a thread blocked on that pipe stops the stimulator the moment it arrives, even when
    the main thread is busy (a store write waiting for a lock). The Python-level
    handler only records the signal: nothing is raised in the main thread, so no
    transaction or device request is cut in half.
    """

    def __init__(self, stimulator: Stimulator):
        self.stimulator = stimulator
        self.runner: Runner | None = None
        self.signal: signal.Signals | None = None
        self._lock = threading.Lock()
        self._previous: dict[int, Any] = {}
        self._old_fd = -1
        self._thread: threading.Thread | None = None
        self._r = self._w = -1

    def _take(self, signum: int) -> bool:
        with self._lock:
            if self.signal is not None or signum not in [int(s) for s in HANDLED_SIGNALS]:
                return False
            self.signal = signal.Signals(signum)
            return True

    def _act(self) -> None:
        if self.runner is not None:
            self.runner.request_stop(f"signal {self.signal.name}")  # type: ignore[union-attr]
        try:
            self.stimulator.stop()  # zero output now
        except ElectrostimError:
            pass  # a stop that fails leaves the device in fault; its own watchdog stops it

    def _watch(self) -> None:
        while True:
            try:
                data = os.read(self._r, 64)
            except InterruptedError:
                continue
            except OSError:
                return
            if not data:
                return
            for b in data:
                if b == 0:  # the guard is closing
                    return
                if self._take(b):
                    self._act()

    def _handler(self, signum: int, frame: Any) -> None:
        """The Python-level handler: nothing. The watcher thread acts (this runs in the main thread, which may be
        inside a device request: stopping from here could cut that request in half)."""

    def __enter__(self) -> _SignalGuard:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread can handle signals; the caller handles them
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        self._thread = threading.Thread(target=self._watch, name="session signal watcher", daemon=True)
        self._thread.start()
        for s in HANDLED_SIGNALS:
            self._previous[s] = signal.signal(s, self._handler)
        self._old_fd = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._thread is None:
            return
        signal.set_wakeup_fd(self._old_fd)
        for s, h in self._previous.items():
            signal.signal(s, h)
        try:
            os.write(self._w, b"\0")
        except OSError:
            pass
        self._thread.join(timeout=2.0)
        os.close(self._r)
        os.close(self._w)
        self._thread = None


_FILE_KINDS = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISBLK, "a block device (a disk)"))


def parse_backend(spec: str) -> tuple[Any, str | None]:
    """The backend and port of a stimulator spec, the port checked to be a serial line (nothing is written to it).

    :func:`electrostim.devices.parse_backend`, and on POSIX systems the port must be a
    character device (a serial port such as ``/dev/ttyUSB0``, or the pseudo-terminal
    ``electrostim emulate`` prints) or a pyserial URL (``loop://``): a regular file, a
    folder, a pipe, a socket, a disk or a character device that is not a terminal line
    (``/dev/null``) is refused before anything is written.

    Raises
    ------
    InvalidInputError
        An unknown name, a port missing or given where none is taken, a port that does
        not exist or is not a serial device.

    Examples
    --------
    >>> parse_backend("rehastim2:/etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    electrostim.errors.InvalidInputError: Invalid value for 'device': allowed a serial port ..., but '/etc/passwd' is a regular file ...
    """
    backend, port = _parse_backend(spec)
    if port is None or "://" in port or os.name != "posix" or not backend.needs_port:  # sim:PROFILE names no port
        return backend, port
    try:
        mode = os.stat(port).st_mode
    except OSError as exc:
        raise InvalidInputError(f"Invalid value for 'device': allowed a serial port, but {port!r} cannot be read "
                                f"({exc.strerror or exc}) (got {spec!r}).") from None
    if not stat.S_ISCHR(mode):
        what = next((name for test, name in _FILE_KINDS if test(mode)), "not a character device")
        raise InvalidInputError(f"Invalid value for 'device': allowed a serial port (a character device such as "
                                f"/dev/ttyUSB0, or the port `electrostim emulate` prints), but {port!r} is {what} "
                                f"(got {spec!r}).")
    if not _is_terminal(port):  # /dev/null, /dev/zero, a sound card: character devices that are no serial line
        raise InvalidInputError(f"Invalid value for 'device': allowed a serial port (a terminal device such as "
                                f"/dev/ttyUSB0, or the port `electrostim emulate` prints), but {port!r} is a character "
                                f"device that is not a serial line (got {spec!r}).")
    return backend, port


def _is_terminal(port: str) -> bool:
    """Whether a character device is a terminal (serial) line; True when it cannot be opened to tell (busy, no
    permission): the driver then says why it cannot use it."""
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return True
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def check_store(store: Any = None) -> None:
    """Refuse, before a session is prepared, a store :func:`deliver` could not open for writing; create nothing.

    ``store`` as :func:`deliver` takes it (an open :class:`~electrostim.store.Store` is
    taken as it is). A command calls this first, so that a wrong ``--db`` is one clear
    error before any question is asked or any stimulator is opened.

    Raises
    ------
    StoreLocationError
        A folder, a file that is not SQLite, an unsupported database URL, a path under
        a file (an :class:`~electrostim.errors.InvalidInputError`).
    StoreDamagedError
        An SQLite file that is damaged.
    """
    from ..store import Store, check_location

    if not isinstance(store, Store):
        check_location(store, readonly=False)


def _check_speed(speed: Any, virtual: bool) -> float:
    if isinstance(speed, (int, float)) and speed == math.inf and virtual:
        return math.inf
    value = check_number("speed", speed, low=MIN_SPEED, high=MAX_SPEED, low_open=False)
    if value != 1.0 and not virtual:
        raise OptionError(f"Invalid value for 'speed': a stimulator on a serial port runs in real time (1), but got {speed!r}.")
    return value


def deliver(
    plan: ApprovedPlan,
    stimulator: Stimulator | str,
    store: Any = None,
    *,
    duration_s: float | None = None,
    speed: float = 1.0,
    step_s: float = 0.05,
    device: str | None = None,
    on_tick: Callable[[Runner], None] | None = None,
    handle_signals: bool = True,
    runner_options: dict[str, Any] | None = None,
) -> SessionResult:
    """Deliver an approved plan on a stimulator and record every event as it happens.

    Parameters
    ----------
    plan : ApprovedPlan
        From ``assess(...).approve()``.
    stimulator : Stimulator or str
        A stimulator not yet connected, or a backend spec (``sim``, ``sim:PROFILE``,
        ``rehastim2:PORT``, ``p24:PORT``; see :data:`electrostim.devices.BACKENDS`).
    store : Store, str, path or None
        An open :class:`~electrostim.store.Store`, or where to open one (database URL
        or SQLite file; None: the default in the user's data folder). A store opened
        here is closed here. Sessions left running by processes that died are marked
        interrupted first.
    duration_s : float, optional
        Run time of the session, s: 0.01 (:data:`~electrostim.session.MIN_DURATION_S`) to the program's
        (the default).
    speed : float
        Times faster than real time (a simulated stimulator only; ``math.inf`` as fast
        as it computes); 1 for a serial device.
    step_s : float
        Session step, s: 0.001 to 1 (:data:`~electrostim.session.MIN_STEP_S`, ``MAX_STEP_S``).
    device : str, optional
        What to record as the device (default: the spec, or the stimulator's profile).
    on_tick : callable(Runner), optional
        Called after every step (a console reads keys and redraws there).
    handle_signals : bool
        In the main thread, let SIGINT, SIGTERM and SIGHUP zero the output at once and
        end the session ``stopped`` (see the module notes).
    runner_options : dict, optional
        More :class:`~._runner.Runner` options (``slew_ma_per_s``, ``start_ramp_s``, ``ramp_s``, ...).

    Returns
    -------
    SessionResult

    Raises
    ------
    OptionError
        A duration, speed or step out of range (before anything is opened).
    InvalidInputError
        A stimulator spec that names no backend, or a port that does not exist or is
        not a serial device (:func:`parse_backend`; before anything is opened).
    DeviceError
        The stimulator cannot be reached or configured (no session is recorded).
    StoreError
        The store cannot be opened.

    Examples
    --------
    >>> import tempfile, pathlib, math
    >>> import electrostim as es
    >>> from electrostim.session import deliver
    >>> plan = es.assess(es.load_program("knee-oa-tens")).approve()
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     r = deliver(plan, "sim", pathlib.Path(folder) / "s.db", duration_s=10, speed=math.inf)
    >>> r.end_state, round(r.summary["session_s"]), r.summary["pulses_delivered"] > 0, r.exit_code
    ('completed', 10, True, 0)
    """
    from ..store import Store, StoreError

    if not isinstance(plan, ApprovedPlan):
        raise OptionError(f"Invalid value for 'plan': allowed an ApprovedPlan from assess(...).approve(), "
                          f"but got {type(plan).__name__}.")
    spec = stimulator if isinstance(stimulator, str) else None
    if spec is not None:
        parse_backend(spec)  # a port that is not a serial device is refused before anything is opened
    dev = open_stimulator(stimulator) if isinstance(stimulator, str) else stimulator
    program_s = plan.program.session_duration_s
    if duration_s is not None:
        duration_s = check_number("duration_s", duration_s, low=MIN_DURATION_S, high=program_s, low_open=False)
    speed = _check_speed(speed, dev.virtual_time)
    step_s = check_number("step_s", step_s, low=MIN_STEP_S, high=MAX_STEP_S, low_open=False)
    device_name = device or spec or dev.profile.id

    own_store = not isinstance(store, Store)
    db = Store.open(store) if own_store else store
    try:
        db.mark_interrupted()
        guard = _SignalGuard(dev) if handle_signals else None
        with guard if guard is not None else _Nothing():
            dev.connect()  # a stimulator that cannot be reached leaves no session behind
            try:
                dev.configure(plan)
                plan_rec = db.record_plan(plan)
                record = db.start_session(plan_rec.id, device_name)
            except BaseException:
                dev.close()
                raise
            return _run(plan, dev, db, record.id, device_name, guard, duration_s, speed, step_s, on_tick,
                        runner_options or {}, StoreError)
    finally:
        if own_store:
            db.close()


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _run(plan: ApprovedPlan, dev: Stimulator, db: Store, session_id: int, device_name: str, guard: _SignalGuard | None,
         duration_s: float | None, speed: float, step_s: float, on_tick: Callable[[Runner], None] | None,
         options: dict[str, Any], StoreError: type[StoreError]) -> SessionResult:
    events = [0]
    final: list[dict[str, Any]] = []
    store_failure: list[str] = []
    pending: list[tuple[str, dict[str, Any]]] = []
    holder: list[Runner] = []

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "state" and payload.get("state") in END_FINAL:
            final[:] = [payload]  # the store's ending records it, once
            return
        events[0] += 1
        if store_failure:
            pending.append((kind, payload))
            return
        try:
            started = time.monotonic()
            db.append_event(session_id, kind, payload, output=payload.get("output"))
            waited = time.monotonic() - started
            if holder and not dev.virtual_time and waited > holder[0].keepalive_s:
                # the session's thread was held by the store past the keepalive: a serial device has stopped by
                # itself (its host watchdog); the store is the cause
                holder[0].fail(f"the session store took {waited:.1f} s to record an event (is it locked by another "
                               "process?); the stimulator's watchdog stopped the output")
        except StoreError as exc:
            store_failure.append(str(exc))
            pending.append((kind, payload))
            try:
                dev.stop()  # zero output first
            except ElectrostimError:
                pass
            if holder:
                holder[0].fail(f"the session store failed: {exc}")

    runner = Runner(dev, duration_s=duration_s, on_event=on_event, **options)
    holder.append(runner)
    if guard is not None:
        guard.runner = runner
        if guard.signal is not None:  # a signal came while connecting
            runner.request_stop(f"signal {guard.signal.name}")
    try:
        runner.run(step_s=step_s, speed=speed, tick=on_tick)
    except KeyboardInterrupt:  # signals not handled here (not the main thread): Ctrl-C still stops
        runner.emergency_stop("interrupted")
    except BaseException as exc:  # anything else (a console that lost its terminal): stop, record, then raise
        runner.fail(f"internal error: {type(exc).__name__}: {exc}")
        _end(plan, dev, db, session_id, device_name, runner, guard, events, final, pending, StoreError)
        raise
    return _end(plan, dev, db, session_id, device_name, runner, guard, events, final, pending, StoreError)


def _end(plan: ApprovedPlan, dev: Stimulator, db: Store, session_id: int, device_name: str, runner: Runner,
         guard: _SignalGuard | None, events: list[int], final: list[dict[str, Any]], pending: list[tuple[str, dict[str, Any]]],
         StoreError: type[StoreError]) -> SessionResult:
    if runner.state not in END_STATES:
        runner.emergency_stop("the session ended early")
    try:
        dev.close()
    except ElectrostimError as exc:
        if runner.error is None:
            runner.error = f"closing the stimulator failed: {exc}"
    end_state = END_STATES[runner.state]
    sig = guard.signal.name if guard is not None and guard.signal is not None else None
    summary = runner.summary()
    summary["end_state"] = end_state
    reason = (final[0] if final else {}).get("reason")
    if reason:
        summary["reason"] = reason
    if sig:
        summary["signal"] = sig
    record_error = None
    deadline = time.monotonic() + RECORD_RETRY_S
    while True:  # the output is zero already: the record may wait a little for a store that recovers
        try:
            while pending:  # what the store could not take, if it recovered
                kind, payload = pending[0]
                db.append_event(session_id, kind, payload, output=payload.get("output"))
                pending.pop(0)
            db.end_session(session_id, end_state, summary, reason=reason)
            break
        except StoreError as exc:
            if time.monotonic() >= deadline:
                record_error = (f"the ending of session {session_id} could not be recorded ({exc}); the next start "
                                "marks it interrupted")
                break
            time.sleep(0.2)
    return SessionResult(program=plan.program.id, device=device_name, session_id=session_id, end_state=end_state,
                         error=runner.error, signal=sig, record_error=record_error, summary=summary,
                         events=events[0], db=db.url)
