"""What the serial stimulators share: a worker thread that follows the schedule, keeps the link alive and stops safely.

A ScienceMode device runs a pulse train at a set current and width until it is told
otherwise; ramps, on/off cycles and modulation are the host's job. The worker thread
of a :class:`SerialStimulator` wakes every ``tick_s`` and

* works out, from the approved schedule, what each output should carry now: the
  schedule's envelope (0 during an off phase, rising through a ramp, following an
  amplitude or width modulation) times the intensity the session asked for, rounded
  *down* to the device's current step, so it never exceeds what was approved;
* sends an update when that differs from what the device has (at most once a tick);
* sends the keepalive the protocol wants when nothing else was sent for
  ``keepalive_s``;
* turns any fault into a safe stop at once: an acknowledgement missing or late,
  invalid bytes on the line, an error the device reports, a port that vanished, and a
  host that stopped checking in (:attr:`~._stimulator.Stimulator.host_timeout_s`: the
  session engine's thread hung, so nobody could stop stimulation any more), and a
  host that came back later than its look-ahead where the schedule asked for less than
  the device carried (an output ran on past the approved schedule). The
  reader thread wakes the worker, which stops stimulation (zero output), records the
  error and leaves the stimulator in the ``fault`` state. If the device itself is
  gone, nothing can be sent; its own watchdog stops it.

Subclasses supply the protocol: :meth:`_open`, :meth:`_handshake`, :meth:`_send_config`,
:meth:`_send_outputs`, :meth:`_send_stop`, :meth:`_send_keepalive` and
:meth:`_device_message`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..program import Program
from ..safety import ApprovedPlan, get_device
from ..waveform import Schedule, pulse_terms
from ._link import SerialLink
from ._stimulator import DeviceError, DeviceState, DeviceStatus, Stimulator

__all__ = ["OutputCommand", "SerialStimulator"]


@dataclass(frozen=True)
class OutputCommand:
    """What one output is told to deliver: current (mA, a multiple of the device step) and phase width (µs)."""

    current_ma: float
    pulse_width_us: float


class SerialStimulator(Stimulator):
    """A stimulator on a serial port; the protocol is the subclass's.

    Parameters
    ----------
    port : str
        Serial device or pyserial URL.
    device : str
        Device profile id (``rehastim2``, ``p24``).
    response_timeout_s : float
        Longest wait for any acknowledgement (the protocols allow 100 ms).
    tick_s : float
        Period of the worker thread.
    keepalive_s : float
        Longest silence on the link before a keepalive is sent.
    """

    tick_s = 0.02

    def __init__(self, port: str, device: str, *, response_timeout_s: float = 0.1, keepalive_s: float = 0.5):
        super().__init__(get_device(device))
        self.port = port
        self.response_timeout_s = float(response_timeout_s)
        self.keepalive_s = float(keepalive_s)
        self.link: SerialLink | None = None
        self._schedule: Schedule | None = None
        self._labels: list[str] = []
        self._widths_us: list[float] = []
        self._common_period_s = 1.0
        #: monotonic time of device time 0 of every start (what the tests align emitted pulses with)
        self.start_times: list[float] = []
        #: (monotonic time, device time) at every start and resume: device time of any moment
        self.time_marks: list[tuple[float, float]] = []
        self._commanded: dict[str, OutputCommand] = {}
        self._t0: float | None = None  # monotonic time of device time 0
        self._paused_at: float | None = None
        self._pulses = 0
        self._charge_uc: dict[str, float] = {}
        self._counted_to = 0.0
        self._fault_text: str | None = None
        self._valid_until: float | None = None  # device time until which the commands in force hold
        self._late_s = 0.0  # the longest the host let a command run past what it covered
        #: (from, to) device time of every stretch an output ran on past the approved schedule (the host was late)
        self.overruns: list[tuple[float, float]] = []
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._worker: threading.Thread | None = None
        #: every command sent to the outputs: (monotonic time, {label: OutputCommand}); zero output is all-zero currents
        self.command_log: list[tuple[float, dict[str, OutputCommand]]] = []

    # -- protocol hooks ---------------------------------------------------------------------------
    def _open(self) -> SerialLink:
        raise NotImplementedError

    def _handshake(self) -> None:
        """Bring the device to the state where it takes a configuration."""
        raise NotImplementedError

    def _send_config(self, plan: ApprovedPlan) -> None:
        raise NotImplementedError

    def _send_outputs(self, commands: dict[str, OutputCommand], first: bool) -> None:
        """Start (``first``) or update stimulation with these per-output commands."""
        raise NotImplementedError

    def _send_stop(self) -> None:
        raise NotImplementedError

    def _send_keepalive(self) -> None:
        raise NotImplementedError

    def _device_message(self, message: Any) -> str | None:
        """A message the device sent unasked: the fault it reports, or None."""
        return None

    # -- link callbacks (reader thread) -----------------------------------------------------------
    def _on_link_error(self, text: str) -> None:
        if self._fault_text is None:
            self._fault_text = text
        self._wake.set()

    def _on_link_message(self, packet_number: int, message: Any) -> None:
        text = self._device_message(message)
        if text is not None:
            self._on_link_error(text)

    # -- Stimulator hooks -------------------------------------------------------------------------
    def _connect(self) -> None:
        self._fault_text = None
        self.link = self._open()
        try:
            self._handshake()
        except BaseException:
            self.link.close()
            self.link = None
            raise
        self._closing.clear()
        self._worker = threading.Thread(target=self._work, name=f"{self.profile.id} worker", daemon=True)
        self._worker.start()

    def _configure(self, plan: ApprovedPlan, program: Program) -> None:
        self._raise_fault()
        self._schedule = Schedule(program, amplitude_ma={c.label: 1.0 for c in program.channels})
        self._labels = [o.label for o in self._schedule.outputs]
        self._enter_phase(0)
        #: (monotonic time, device time, phase index) at every change of phase after the first
        self.phase_marks: list[tuple[float, float, int]] = []
        self.start_times = []
        self.time_marks = []
        self._commanded = {}
        self._pulses = 0
        self._charge_uc = {}
        self._counted_to = 0.0
        self._t0 = None
        self._valid_until = None
        self._late_s = 0.0
        self.overruns = []
        self._send_config(plan)

    def _enter_phase(self, k: int) -> None:
        """Take phase ``k``'s outputs (their stimuli, widths and common period) as the ones configured."""
        assert self._schedule is not None
        self._phase = k
        #: the outputs of the phase now configured (a program without phases: its outputs)
        self._phase_outputs = self._schedule.spans[k].program.outputs
        self._widths_us = [getattr(o.stimulus.pulse, "pulse_width_us", 0.0) for o in self._phase_outputs]
        # every output's train repeats after this long on the device's clock (periods lie on a 1 µs grid at least)
        units = [max(1, round(1e6 / o.stimulus.nominal_repetition_hz)) for o in self._phase_outputs]
        self._common_period_s = math.lcm(*units) * 1e-6

    def _switch_phase(self, k: int) -> None:
        """At a phase's start: stop, configure the device for the phase, and start its trains at the phase's
        start in device time (the device's trains and the schedule stay in step; the stop-configure-start takes
        a few ms, during which the outputs are off)."""
        assert self._schedule is not None and self._plan is not None and self._t0 is not None
        start = self._schedule.spans[k].start_s
        self._count_pulses(min(self.device_time_s(), start))
        self._send_stop()
        self.command_log.append((time.monotonic(), {lbl: OutputCommand(0.0, 0.0) for lbl in self._labels}))
        self._commanded = {}
        self._enter_phase(k)
        self._send_config(self._plan)
        now = time.monotonic()
        self._t0 = now - start
        self._counted_to = start
        self.time_marks.append((now, start))
        self.phase_marks.append((now, start, k))
        self._valid_until = None
        self._send_outputs_logged(self.commands_at(start), first=True)
        self._valid_until = start + self.horizon_s

    def _start(self) -> None:
        self._raise_fault()
        self._t0 = time.monotonic()
        self.start_times.append(self._t0)
        self.time_marks.append((self._t0, 0.0))
        self._paused_at = None
        self._guarded(self._push, first=True)

    def _set_intensity(self, output: str, amplitude_ma: float) -> None:
        self._raise_fault()
        if self._state == DeviceState.RUNNING:
            self._guarded(self._raise_if_overrun)  # a stretch the host missed is judged by what was in force
            self._intensity[output] = float(amplitude_ma)  # the base class sets it too, after this returns
            self._guarded(self._push, judged=True)  # up to now, judged above with the intensity then

    def _pause(self) -> None:
        if self._state == DeviceState.RUNNING:
            self._guarded(self._raise_if_overrun)
        if self._schedule is not None and self._t0 is not None:
            self._count_pulses(self.device_time_s())
        self._paused_at = time.monotonic()
        self._valid_until = None  # zero output holds for ever
        self._guarded(self._send_outputs_logged, {lbl: OutputCommand(0.0, c.pulse_width_us) for lbl, c in self._commanded.items()})

    def _resume(self) -> None:
        if self._paused_at is not None and self._t0 is not None:
            # the device's trains ran on through the pause (at zero current): the schedule resumes where it is in
            # step with them, a whole number of their common period later (it skips less than one such period,
            # never repeats a pulse)
            now = time.monotonic()
            paused = now - self._paused_at
            self._t0 += math.floor(paused / self._common_period_s + 1e-9) * self._common_period_s
            self.time_marks.append((now, now - self._t0))
        self._paused_at = None
        self._guarded(self._push)

    def _stop(self) -> None:
        """Zero output now (the stop goes out first; the bookkeeping after). A stop that cannot be
        confirmed leaves the stimulator in ``fault``."""
        t_end = self.device_time_s() if self._schedule is not None and self._t0 is not None else None
        error_before = self._error
        self.command_log.append((time.monotonic(), {lbl: OutputCommand(0.0, 0.0) for lbl in self._labels}))
        try:
            if self.link is not None:
                self._send_stop()
        except DeviceError as exc:
            self._error = self._error or f"stop not confirmed: {exc}; the stimulator's own watchdog stops it"
            self._state = DeviceState.FAULT
        finally:
            over = None
            if t_end is not None and self._paused_at is None and error_before is None:
                over = self._late_check(t_end, judged_after_fault=True)
            if over is not None:  # the host came back only to stop: an output ran on before it did
                self._error = over if self._error is None else f"{over}; {self._error}"
                self._state = DeviceState.FAULT
            if t_end is not None:
                self._count_pulses(t_end)  # what ran up to the stop, at the currents it ran at
            self._t0 = None
            self._valid_until = None
            self._commanded = {}

    def fault(self, message: str) -> None:
        """Record a fault and stop at once; where the host was late and an output ran on past the schedule
        meanwhile (:meth:`_late_check`), the message says that too (a watchdog that fires after a long stall)."""
        with self._lock:
            over = self._late_now()
            super().fault(message if over is None else f"{message}; {over}")

    def _close(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=2.0)
        self._worker = None
        if self.link is not None:
            self.link.close()
            self.link = None

    def _status(self) -> DeviceStatus:
        return DeviceStatus(state=self.state, pulses_delivered=self._pulses, time_s=self.device_time_s(),
                            host_late_s=self._late_s)

    # -- the schedule -----------------------------------------------------------------------------
    def device_time_s(self) -> float:
        """Time since stimulation started, pauses excluded (0 before the start)."""
        if self._t0 is None:
            return 0.0
        now = self._paused_at if self._paused_at is not None else time.monotonic()
        return now - self._t0

    #: the most the look-ahead grows with the host's measured lateness (s)
    max_extra_horizon_s = 0.4

    @property
    def horizon_s(self) -> float:
        """How far ahead a command must hold: it stays in force until the next one.

        A few ticks and the link (0.12 s), plus the longest the host has been late in
        this configuration (at most :attr:`max_extra_horizon_s`): a host that was late
        once switches the following off phases and ramps down that much earlier.
        """
        return max(6 * self.tick_s, 0.12) + min(self._late_s, self.max_extra_horizon_s)

    @property
    def host_late_s(self) -> float:
        """The longest time (s) a command stayed in force past the span it was computed for.

        The outputs' levels are switched by this host (ramps, on/off cycles,
        modulation): a command holds the lowest level of the next :attr:`horizon_s`. A
        host that comes back later than that (a loaded machine, a stalled process)
        lets an output run on at its last level until it does; that time is measured
        here and reported in :meth:`status` and in the session's record. Where the
        schedule held its level meanwhile it widens the look-ahead (:attr:`horizon_s`);
        where it asked for less, the output ran past what was approved and the stimulator
        fails closed (see :attr:`overruns`). 0.0 when the host was always on time.
        """
        return self._late_s

    def commands_at(self, t_s: float, until_s: float | None = None) -> dict[str, OutputCommand]:
        """What each output should carry from device time ``t_s`` until the next command can take over.

        The lowest level and width the schedule has over ``[t_s, until_s]`` (by default
        ``t_s + horizon_s``; :meth:`~electrostim.waveform.Schedule.lowest_levels`), times
        the intensity, rounded *down* to the device's current and width steps: no pulse delivered while
        the command holds exceeds the schedule's (an off phase, a ramp down or a
        modulation trough ahead lowers it in time).
        """
        assert self._schedule is not None
        step = self.profile.current_step_ma
        wstep = self.profile.pulse_width_step_us or 1.0
        out: dict[str, OutputCommand] = {}
        lows = self._schedule.lowest_levels(t_s, t_s + self.horizon_s if until_s is None else until_s)
        for label, (level, width_factor), width in zip(self._labels, lows, self._widths_us):
            if level <= 0.0:
                out[label] = OutputCommand(0.0, self._commanded.get(label, OutputCommand(0.0, width)).pulse_width_us)
                continue
            amp = self._intensity.get(label, 0.0) * level
            current = math.floor(amp / step + 1e-9) * step if step > 0 else amp
            out[label] = OutputCommand(current, math.floor(width * width_factor / wstep + 1e-9) * wstep)
        return out

    def _late_check(self, now_s: float, judged_after_fault: bool = False) -> str | None:
        """The host acts at device time ``now_s``. If the commands in force stopped covering the schedule
        before that (the host was late), measure how late and judge the stretch it missed: where the schedule
        asked for less than they carried anywhere in it (an off phase, a ramp down, a modulation trough, a new
        phase, the session's end), an output ran on past what was approved. That stretch is recorded
        (:attr:`overruns`) and the fault's message returned; None when nothing ran past the schedule (the
        stretch is then covered up to ``now_s``). Nothing is judged once a fault is recorded (unless
        ``judged_after_fault``: the stop that found it failed too).
        """
        if self._valid_until is None or now_s <= self._valid_until or (self._error is not None and not judged_after_fault):
            return None
        assert self._schedule is not None
        since = self._valid_until
        horizon = self.horizon_s  # the look-ahead that was in force
        self._late_s = max(self._late_s, now_s - since)
        self._valid_until = now_s
        if not any(c.current_ma > 0 for c in self._commanded.values()):
            return None
        crossed = self._schedule.phase_at(now_s).index != self._phase or now_s >= self._schedule.duration_s
        # the intensity set now is the one in force: every change of it is judged here before it is taken
        allowed = self.commands_at(since, until_s=now_s)
        over = [label for label, c in self._commanded.items() if c.current_ma > 0 and (
            crossed or c.current_ma > allowed[label].current_ma + 1e-9
            or c.pulse_width_us > allowed[label].pulse_width_us + 1e-9)]
        if not over:
            return None
        self.overruns.append((since, now_s))
        self._valid_until = None  # the output is stopped next: nothing more to judge
        names = ", ".join(repr(lbl) for lbl in over)
        return (f"the host was {(now_s - since) * 1e3:.0f} ms late (look-ahead {horizon * 1e3:.0f} ms): output "
                f"{names} ran on past the approved schedule from {since:.3f} s; stopped")

    def _raise_if_overrun(self) -> None:
        """Fail closed where the host was late and an output ran on past the schedule (see :meth:`_late_check`).

        Raises
        ------
        DeviceError
            Naming how late the host was, the look-ahead in force and the outputs that ran on.
        """
        over = self._late_now()
        if over is not None:
            raise DeviceError(over)

    def _late_now(self) -> str | None:
        """:meth:`_late_check` at the device time now (nothing to judge unless running: the commands in force
        cover no stretch before a start, after a pause or after a stop)."""
        return self._late_check(self.device_time_s())

    def _count_pulses(self, t_s: float) -> None:
        assert self._schedule is not None
        t_s = min(t_s, self._schedule.duration_s)
        if t_s <= self._counted_to:
            return
        chunk = self._schedule.pulses(self._counted_to, t_s)
        for i, label in enumerate(self._labels):
            current = self._commanded.get(label, OutputCommand(0.0, 0.0)).current_ma
            mine = chunk.select(chunk.output == i)
            if current <= 0 or len(mine) == 0:
                continue
            self._pulses += len(mine)
            # charge per mA of the commanded current: both phases, relative to the first phase's amplitude
            q1, q2, _, _, _ = pulse_terms(mine)
            lead = np.abs(mine.first_amplitude_ma)
            per_ma = np.divide(q1 + q2, lead, out=np.zeros_like(lead), where=lead > 0)
            self._charge_uc[label] = self._charge_uc.get(label, 0.0) + float(per_ma.sum()) * current
        self._counted_to = t_s

    def charge_delivered_uc(self) -> dict[str, float]:
        """Charge commanded per output so far (µC, both phases): the pulses of the schedule at the currents sent.

        The device may suppress a pulse (its test impulse failed); it then also reports
        an error, which stops the session."""
        return {label: self._charge_uc.get(label, 0.0) for label in self._labels}

    def _send_outputs_logged(self, commands: dict[str, OutputCommand], first: bool = False) -> None:
        self._send_outputs(commands, first)
        self.command_log.append((time.monotonic(), dict(commands)))
        self._commanded = dict(commands)

    def _push(self, first: bool = False, judged: bool = False) -> None:
        """Send what the outputs should carry now, if it changed."""
        if self._schedule is None or self._t0 is None or self._paused_at is not None:
            return
        t = self.device_time_s()
        over = None if judged else self._late_check(t)
        if over is not None:
            raise DeviceError(over)
        k = self._schedule.phase_at(t).index
        if k > self._phase:
            self._switch_phase(k)
            return
        self._count_pulses(t)
        commands = self.commands_at(t)
        if first or commands != self._commanded:
            self._send_outputs_logged(commands, first)
        self._valid_until = t + self.horizon_s

    # -- the worker -------------------------------------------------------------------------------
    def _guarded(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run a protocol action; a failure is a fault (safe stop), then raised to the caller."""
        try:
            action(*args, **kwargs)
        except DeviceError as exc:
            # a fault the link reported first (StimulationError, invalid bytes) is the cause; this failure is its
            # consequence (e.g. 'wrong mode' from a device that had already stopped itself)
            cause = self._fault_text or str(exc)
            self.fault(cause)
            if cause != str(exc):
                raise DeviceError(cause) from exc
            raise

    def _raise_fault(self) -> None:
        if self._fault_text is not None or self._state == DeviceState.FAULT:
            raise DeviceError(self._error or self._fault_text or "device fault")

    def _work(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(self.tick_s)
            self._wake.clear()
            if self._closing.is_set():
                return
            # not a blocking 'with': close() holds the lock while it joins this thread
            if not self._lock.acquire(timeout=self.tick_s):
                continue
            try:
                if self._state in (DeviceState.DISCONNECTED, DeviceState.FAULT) or self.link is None:
                    continue
                try:
                    if self._fault_text is not None:
                        raise DeviceError(self._fault_text)
                    if self._state in (DeviceState.RUNNING, DeviceState.PAUSED) and self.host_timeout_s is not None:
                        silent_s = time.monotonic() - self._heartbeat
                        if silent_s > self.host_timeout_s:
                            over = self._late_now()
                            raise DeviceError(f"watchdog: the session did not check in for {silent_s:.2f} s "
                                              f"(limit {self.host_timeout_s:g} s)" + (f"; {over}" if over else ""))
                    if self._state == DeviceState.RUNNING:
                        self._push()
                    if time.monotonic() - self.link.last_sent >= self.keepalive_s:
                        self._send_keepalive()
                except DeviceError as exc:
                    self.fault(str(exc))
            finally:
                self._lock.release()
