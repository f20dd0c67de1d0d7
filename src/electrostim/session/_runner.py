"""The session engine: a state machine that delivers an approved plan on a stimulator.

prepare → contact check → ramp up → run → ramp down → done, with pause and resume,
an emergency stop from any state, intensity titration with a slew-rate limit, marks of
the sensory and motor thresholds the person reports, and a keepalive watchdog. Every
intensity goes through the stimulator, which checks it against the plan's envelope.
Every state change, intensity change, mark and error is reported to ``on_event`` as it
happens (the store appends them durably).

The start
---------
The program shapes its own output: its ``ramp_up_s`` and its on/off duty cycle scale
the intensity the session sets, so a session does not ramp on top of them. By default
an output whose program ramps up or has a duty cycle gets its starting intensity at
once (its first contraction rises as the program's ramp says); an output with neither
is brought up at the slew rate, and in a multi-phase program at least fast enough to
arrive within the first phase (a long warm-up ramp would eat the work phase).
``start_ramp_s`` asks for a session ramp of that length (0 to
:data:`MAX_START_RAMP_S`) on every output instead.

The end
-------
A session that runs its program to the end, whose last phase ramps down itself (a
``ramp_down_s`` and no on/off cycle), ends with the program's ramp; any other ends with
a closing ramp of :data:`DEFAULT_END_RAMP_S` (or ``ramp_s``), at most half the session.

Intensity events
----------------
An ``intensity`` event is recorded when a movement of an output's intensity starts or
changes, and one when it ends, not one per step:

* a movement (``ramp="start"`` when the intensity will change) carries ``from_ma`` (the
  intensity at ``t_s``), ``to_ma`` (where it goes), ``rate_ma_per_s`` (its speed in
  run time, pauses excluded; None: at once) and ``by`` (``start``: the session's
  start, ``user``: a key or :meth:`Runner.set_target`, ``ramp-down``: the closing
  ramp); ``target_ma`` is the intensity asked for (the starting intensity, or what a
  user or key asked);
* the end of a ramp (``ramp="end"``) carries ``intensity_ma`` (where it arrived),
  ``from_ma`` (where the ramp started) and ``duration_s`` (session time it took).

With the ``state`` events (a pause holds every intensity; an ending zeroes it) they
give the intensity commanded at any moment: :func:`~electrostim.session.intensity_timeline`.

Time is advanced by :meth:`Runner.step`; :meth:`Runner.run` steps in real time, or
``speed`` times faster on a simulated stimulator.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from ..devices._stimulator import DeviceError, DeviceState, Stimulator
from ..errors import ElectrostimError, OptionError, SafetyError

__all__ = ["MAX_STEP_S", "MIN_DURATION_S", "MIN_STEP_S", "MAX_START_RAMP_S", "DEFAULT_END_RAMP_S", "SessionState", "SessionError",
           "Runner", "check_number", "program_ramps", "program_ends_itself"]

#: the shortest session (s of run time) a runner accepts: one step of a 100 Hz train
MIN_DURATION_S = 0.01
#: the shortest and longest session step (s) a runner takes: a session of a day at the shortest step is 86.4
#: million steps; a longer step than 1 s would let a ramp or a key wait too long
MIN_STEP_S, MAX_STEP_S = 0.001, 1.0
#: the longest session ramp to the starting intensity (``start_ramp_s``, ``--start-ramp-s``), s
MAX_START_RAMP_S = 600.0
#: the session's closing ramp (``ramp_s``, ``--end-ramp-s``) where the program does not ramp down at its end, s
DEFAULT_END_RAMP_S = 3.0


def program_ramps(program: Any) -> dict[str, bool]:
    """Per output label: whether the program shapes the output's start itself (a ``ramp_up_s`` or a duty cycle in
    its first phase).

    Examples
    --------
    >>> import electrostim as es
    >>> program_ramps(es.load_program("nmes-quadriceps-tka"))
    {'quadriceps': True}
    """
    first = program.phase_spans[0].program  # a multi-phase program starts with its first phase
    return {o.label: bool(o.stimulus.ramp_up_s > 0 or o.stimulus.duty_cycle is not None) for o in first.outputs}


def program_ends_itself(program: Any) -> bool:
    """Whether the program ramps every output down at its end itself: its last phase has a ``ramp_down_s`` and
    no on/off cycle (an on/off cycle may be in the middle of a contraction when the session ends).

    Examples
    --------
    >>> import electrostim as es
    >>> program_ends_itself(es.load_program("ems-strength-phases")), program_ends_itself(es.load_program("nmes-quadriceps-tka"))
    (True, False)
    """
    last = program.phase_spans[-1].program
    return all(o.stimulus.ramp_down_s > 0 and o.stimulus.duty_cycle is None for o in last.outputs)


def check_number(name: str, value: object, *, low: float, high: float, low_open: bool = True) -> float:
    """``value`` as a float if it is a finite number in the range, else :class:`OptionError` naming it.

    Examples
    --------
    >>> check_number("duration_s", 10, low=0, high=60)
    10.0
    >>> check_number("duration_s", float("nan"), low=0, high=60)
    Traceback (most recent call last):
    ...
    electrostim.errors.OptionError: Invalid value for 'duration_s': allowed a finite number 0 < x <= 60, but got nan.
    """
    if isinstance(value, (bool, str, bytes)):  # True is not 1 s, "40" is not 40 mA
        x = math.nan
    else:
        try:
            x = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            x = math.nan
    ok = math.isfinite(x) and (x > low if low_open else x >= low) and x <= high
    if not ok:
        raise OptionError(f"Invalid value for {name!r}: allowed a finite number {low:g} {'<' if low_open else '<='} x "
                          f"<= {high:g}, but got {value!r}.")
    return x


class SessionError(ElectrostimError):
    """A session could not go on; the stimulator has been stopped."""


class SessionState(StrEnum):
    PREPARE = "prepare"
    CONTACT_CHECK = "contact-check"
    RAMP_UP = "ramp-up"
    RUN = "run"
    PAUSED = "paused"
    RAMP_DOWN = "ramp-down"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"


_ACTIVE = (SessionState.RAMP_UP, SessionState.RUN, SessionState.RAMP_DOWN)
_FINAL = (SessionState.COMPLETED, SessionState.STOPPED, SessionState.FAILED)


class Runner:
    """Deliver an approved plan on a stimulator.

    Parameters
    ----------
    device : Stimulator
        Already configured with the plan (``device.plan``).
    slew_ma_per_s : float
        Fastest change of any output's intensity asked for by a user or key (and of the
        start of an output whose program has no ramp of its own).
    start_ma : mapping of output label to mA, optional
        Intensity reached by the ramp up; by default each output's default amplitude.
    start_ramp_s : float, optional
        The session's own ramp to the starting intensity, s: 0 to
        :data:`MAX_START_RAMP_S` (600), the same length on every output (0: at once).
        By default (None) the program's ramps govern: an output whose program ramps up
        or has a duty cycle starts at once (the program's ``ramp_up_s`` shapes each
        contraction, the first one too), any other at ``slew_ma_per_s``.
    duration_s : float, optional
        Session length, s: :data:`MIN_DURATION_S` (0.01) to the program's (the default).
    ramp_s : float, optional
        Length of the closing ramp down, s (0 to 600). By default (None) the program's
        ramp governs where it has one at its end and the session runs to it (see "The
        end" above); else :data:`DEFAULT_END_RAMP_S`.
    keepalive_s : float
        Longest time between steps before the watchdog stops the session. A stimulator
        that runs on its own (a serial device) is told too, and stops by itself if the
        session's thread hangs and no step comes at all.
    on_event : callable(kind, payload), optional
        Receives every event as it happens.
    max_impedance_ohm : float
        Contact check: the highest electrode impedance allowed before starting.
    dose_every_s : float
        Session time between ``dose`` events (what was delivered so far); one more comes
        when the session ends, so a record cut short still holds the dose up to its
        last event.
    """

    def __init__(self, device: Stimulator, *, slew_ma_per_s: float = 2.0, start_ma: dict[str, float] | None = None,
                 start_ramp_s: float | None = None, duration_s: float | None = None, ramp_s: float | None = None, keepalive_s: float = 1.2,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None, max_impedance_ohm: float = 5000.0,
                 dose_every_s: float = 10.0):
        if device.plan is None:
            raise SessionError("The stimulator has no plan: configure it with an approved plan first.")
        program_s = device.plan.program.session_duration_s
        duration = program_s if duration_s is None else check_number("duration_s", duration_s, low=MIN_DURATION_S, high=program_s,
                                                                           low_open=False)
        dose_every_s = check_number("dose_every_s", dose_every_s, low=0.0, high=86400.0)
        slew_ma_per_s = check_number("slew_ma_per_s", slew_ma_per_s, low=0.0, high=1e6)
        if ramp_s is None:
            whole = duration_s is None or duration >= program_s - 1e-9
            ramp_s = 0.0 if whole and program_ends_itself(device.plan.program) else DEFAULT_END_RAMP_S
        ramp_s = check_number("ramp_s", ramp_s, low=0.0, high=600.0, low_open=False)
        keepalive_s = check_number("keepalive_s", keepalive_s, low=0.0, high=60.0)
        if start_ramp_s is not None:
            start_ramp_s = check_number("start_ramp_s", start_ramp_s, low=0.0, high=MAX_START_RAMP_S, low_open=False)
        self.device = device
        self.plan = device.plan
        env = self.plan.envelope.outputs
        self.labels = [o.label for o in env]
        self.slew = float(slew_ma_per_s)
        self.start_ma = {o.label: o.default_amplitude_ma for o in env}
        if start_ma:
            for k, v in start_ma.items():
                self.plan.check_amplitude(k, v)
                self.start_ma[self.plan.output_envelope(k).label] = float(v)
        self.target = {lbl: 0.0 for lbl in self.labels}
        self.level = {lbl: 0.0 for lbl in self.labels}
        #: the session's ramp to the starting intensity, s (None: the program's ramps govern; see above)
        self.start_ramp_s = start_ramp_s
        program = self.plan.program
        ramps = program_ramps(program)
        spans = program.phase_spans
        #: how fast each output starts, mA/s (inf: at once)
        self.start_rate: dict[str, float] = {}
        for lbl in self.labels:
            if start_ramp_s is None:
                rate = self.slew
                if len(spans) > 1 and spans[0].duration_s > 0:  # arrive within the first phase
                    rate = max(rate, self.start_ma[lbl] / spans[0].duration_s)
                self.start_rate[lbl] = math.inf if ramps.get(lbl, False) else rate
            else:
                self.start_rate[lbl] = math.inf if start_ramp_s == 0 else self.start_ma[lbl] / start_ramp_s
        # how fast each output moves toward its target now (mA/s; inf: at once)
        self._rate = {lbl: self.slew for lbl in self.labels}
        # each output's ramp in progress: where and when it started, or None
        self._ramp: dict[str, tuple[float, float] | None] = {lbl: None for lbl in self.labels}
        #: run time the session lasts (pauses excluded), s: the program's, or less when asked
        self.duration_s = float(duration)
        self.ramp_s = float(ramp_s)
        #: the closing ramp: the last ``ramp_s`` of the session, or its second half when shorter
        self.ramp_down_s = min(self.ramp_s, self.duration_s / 2.0)
        self._down_from: dict[str, float] = {}
        self.keepalive_s = float(keepalive_s)
        self.max_impedance_ohm = float(max_impedance_ohm)
        self.dose_every_s = float(dose_every_s)
        self._next_dose_s = self.dose_every_s
        self.on_event = on_event
        self.state = SessionState.PREPARE
        self.t = 0.0  # session time
        self.run_t = 0.0  # time in the run phase (pauses excluded)
        self.thresholds: dict[str, dict[str, float]] = {lbl: {} for lbl in self.labels}
        #: the approved program (one copy of the plan's snapshot, for views; the device configured from its own)
        self.program = self.plan.program
        #: the program's phases in run time (one span without phases)
        self.spans = self.program.phase_spans
        self._phase_index = 0
        self.error: str | None = None
        self._overruns_reported = 0  # overruns of the device (a late host) this session has reported
        #: wall-clock time :meth:`run` took, and the session time it covered, s (their ratio: the speed reached)
        self.wall_s = 0.0
        self.run_session_s = 0.0
        self._stop_request: str | None = None
        self._last_step_wall = time.monotonic()
        self._emit("state", {"state": self.state.value})

    # -- events -------------------------------------------------------------------------------
    def _emit(self, kind: str, payload: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(kind, {"t_s": round(self.t, 6), **payload})

    def _emit_dose(self) -> None:
        """What has been delivered so far (pulses, and charge where the stimulator counts it)."""
        st = self.device.status()
        payload: dict[str, Any] = {"pulses_delivered": st.pulses_delivered}
        if st.host_late_s > 0:  # a host-switched level ran on past its time by this much (s)
            payload["host_late_s"] = round(st.host_late_s, 6)
        charge = self.device.charge_delivered_uc()
        if charge is not None:
            payload["charge_delivered_uc"] = {k: round(v, 6) for k, v in charge.items()}
        self._emit("dose", payload)

    def _move(self, label: str, target: float, rate: float, *, by: str, asked: float | None = None) -> None:
        """Send an output toward ``target`` at ``rate`` mA/s (inf: at once), and record the movement once."""
        self.target[label] = target
        self._rate[label] = rate
        level = self.level[label]
        payload: dict[str, Any] = {"output": label}
        if asked is not None:
            payload["target_ma"] = asked
        payload.update({"from_ma": round(level, 6), "to_ma": target,
                        "rate_ma_per_s": None if math.isinf(rate) else rate, "by": by})
        if target != level:
            payload["ramp"] = "start"
            if self._ramp[label] is None:
                self._ramp[label] = (self.t, level)
        self._emit("intensity", payload)
        if target == level:
            self._end_ramp(label)

    def _emit_down(self, label: str, *, by: str, asked: float | None = None) -> None:
        """Record the closing ramp of an output from now: from its line's value now to zero at the session's end."""
        frac = self._down_fraction()
        start = self._down_from.get(label, 0.0) * frac if frac > 0 else 0.0
        start = min(start, self.level[label])
        left = self.duration_s - self.run_t
        rate = start / left if frac > 0 and left > 0 else math.inf
        payload: dict[str, Any] = {"output": label}
        if asked is not None:
            payload["target_ma"] = asked
        payload.update({"from_ma": round(start, 6), "to_ma": 0.0,
                        "rate_ma_per_s": None if math.isinf(rate) else rate, "by": by})
        if start > 0 or self.level[label] > 0:
            payload["ramp"] = "start"
            if self._ramp[label] is None:
                self._ramp[label] = (self.t, self.level[label])
        self._emit("intensity", payload)
        if self.level[label] == 0.0:
            self._end_ramp(label)

    def _end_ramp(self, label: str) -> None:
        """Record the end of an output's ramp (if one is in progress): where it arrived, from where, how long."""
        ramp = self._ramp[label]
        if ramp is None:
            return
        self._ramp[label] = None
        t0, from_ma = ramp
        self._emit("intensity", {"output": label, "ramp": "end", "intensity_ma": round(self.level[label], 6),
                                 "from_ma": round(from_ma, 6), "duration_s": round(self.t - t0, 6)})

    def _set_state(self, state: SessionState, **extra: Any) -> None:
        if state != self.state and self.state not in _FINAL:
            if state in _FINAL:
                self._emit_dose()  # the record holds the dose of every ended session, whatever ended it
                if self.state in _FINAL:  # recording the dose failed, and that ended the session
                    return
            self.state = state
            self._emit("state", {"state": state.value, **extra})

    # -- commands -------------------------------------------------------------------------------
    def begin(self) -> None:
        """Contact check, then start the device and ramp up to the starting intensities."""
        if self.state != SessionState.PREPARE:
            raise SessionError(f"A session starts once, from 'prepare'; it is {self.state.value}.")
        if self._stop_request is not None:
            self.emergency_stop(self._stop_request)
            return
        self._set_state(SessionState.CONTACT_CHECK)
        status = self.device.status()
        bad = {k: z for k, z in status.impedance_ohm.items() if z > self.max_impedance_ohm}
        if bad:
            self._fail(f"contact check failed: impedance {', '.join(f'{k} {z:.0f} Ω' for k, z in bad.items())} "
                       f"above {self.max_impedance_ohm:.0f} Ω")
            return
        self._emit("note", {"note": "contact", "impedance_ohm": status.impedance_ohm})
        if not self.device.virtual_time:
            self.device.host_timeout_s = self.keepalive_s  # the device stops by itself if this session hangs
        self.device.heartbeat()
        self._last_step_wall = time.monotonic()
        try:
            self.device.start()
        except ElectrostimError as exc:
            self._fail(str(exc))
            return
        for label, value in self.start_ma.items():
            self._move(label, value, self.start_rate[label], by="start", asked=value)
        self._set_state(SessionState.RAMP_UP)
        if len(self.spans) > 1:
            self._emit_phase()

    def set_target(self, output: str | int, amplitude_ma: float) -> float:
        """Ask for an intensity; the output moves there at the slew rate. Refused outside the envelope."""
        label = self.plan.output_envelope(output).label
        self.plan.check_amplitude(label, amplitude_ma)
        if self.state in _FINAL:
            raise SessionError(f"The session is {self.state.value}.")
        if self.state == SessionState.RAMP_DOWN:
            if amplitude_ma > self.level[label]:
                raise SessionError(f"The session is ramping down: {label!r} can only go down "
                                   f"(now {self.level[label]:g} mA), but {amplitude_ma:g} mA was asked.")
            frac = self._down_fraction()
            if frac > 0:
                self._down_from[label] = min(self._down_from.get(label, 0.0), float(amplitude_ma) / frac)
            self._emit_down(label, by="user", asked=float(amplitude_ma))
            return float(amplitude_ma)  # the target stays 0: the ramp is heading there
        self._move(label, float(amplitude_ma), self.slew, by="user", asked=float(amplitude_ma))
        return float(amplitude_ma)

    def nudge(self, output: str | int, delta_ma: float) -> float:
        """Titration key: change an output's target by ``delta_ma`` (clipped to the envelope)."""
        env = self.plan.output_envelope(output)
        if math.isnan(delta_ma):
            raise SessionError(f"Invalid intensity step: allowed a number of mA, but got {delta_ma!r}.")
        base = self.level[env.label] if self.state == SessionState.RAMP_DOWN else self.target[env.label]
        new = min(env.max_amplitude_ma, max(0.0, base + delta_ma))
        return self.set_target(env.label, new)

    def mark_threshold(self, output: str | int, kind: str) -> float:
        """Record that the person reports the ``sensory`` or ``motor`` threshold at the present intensity."""
        if kind not in ("sensory", "motor", "pain"):
            raise SessionError(f"Invalid threshold kind: allowed 'sensory', 'motor', 'pain', but got {kind!r}.")
        label = self.plan.output_envelope(output).label
        self.thresholds[label][kind] = self.level[label]
        self._emit("threshold", {"output": label, "kind": kind, "intensity_ma": self.level[label]})
        return self.level[label]

    def pause(self) -> None:
        if self.state not in _ACTIVE:
            raise SessionError(f"Cannot pause a session that is {self.state.value}.")
        self._resume_state = self.state
        try:
            self.device.pause()
        except DeviceError as exc:  # the device failed closed (e.g. an output ran on while the host was late)
            self._fail(str(exc))
            return
        self._set_state(SessionState.PAUSED)

    def resume(self) -> None:
        if self.state != SessionState.PAUSED:
            raise SessionError(f"Cannot resume a session that is {self.state.value}.")
        try:
            self.device.resume()
        except DeviceError as exc:  # the device failed closed
            self._fail(str(exc))
            return
        self._set_state(self._resume_state)

    def request_stop(self, reason: str) -> None:
        """Ask the session to stop at its next step (safe from another thread or a signal handler).

        The output is not touched here: the caller zeroes it (:meth:`Stimulator.stop`).
        A device error that follows is then put down to this stop, not recorded as a
        failure."""
        if self._stop_request is None:
            self._stop_request = reason

    def emergency_stop(self, reason: str = "emergency stop") -> None:
        """Stop at once, from any state: zero output first, then the record."""
        fault = self._stop_device()
        self.level = {k: 0.0 for k in self.labels}
        self.target = {k: 0.0 for k in self.labels}
        if self.state not in _FINAL:
            if fault is not None:  # an output ran on past the schedule before the stop: that is what ended it
                self._record_failure(fault)
            else:
                self._set_state(SessionState.STOPPED, reason=reason)

    def _stop_device(self) -> str | None:
        """Stop the device; the fault of an output that ran on past the approved schedule (the host was late),
        where the device recorded one this session has not reported yet (found by this stop, or by one sent
        before it, e.g. by a signal handler)."""
        self.device.stop()
        seen = len(getattr(self.device, "overruns", ()))
        if seen == self._overruns_reported:
            return None
        self._overruns_reported = seen
        return self.device.status().error or "an output ran on past the approved schedule"

    def _fail(self, message: str) -> None:
        """Zero the output, then record the first cause (a later failure does not replace it).

        After a stop request (a signal) the device was stopped for it: what fails then is its consequence, and the
        session ends ``stopped`` with the request as its cause."""
        if self._stop_request is not None:
            self.emergency_stop(self._stop_request)
            return
        try:
            fault = self._stop_device()
            if fault is not None:  # an output had run on past the schedule meanwhile: the record says so too
                message = f"{message}; {fault}"
        except ElectrostimError as exc:  # the stop itself failed: the device's own watchdog stops it
            message = f"{message}; the stop was not confirmed ({exc})"
        finally:
            self.level = {k: 0.0 for k in self.labels}
            self.target = {k: 0.0 for k in self.labels}
        self._record_failure(message)

    def _record_failure(self, message: str) -> None:
        """End the session ``failed`` with ``message`` as its cause (an ended session keeps its end)."""
        if self.state in _FINAL:
            return
        self.error = message
        self._emit("error", {"message": message})
        self._set_state(SessionState.FAILED, reason=message)

    def fail(self, message: str) -> None:
        """End the session as failed with this cause, output zero first (from any state; once)."""
        self._fail(message)

    # -- the program's phases ---------------------------------------------------------------------
    @property
    def phase(self) -> Any:
        """The program's phase running now (a :class:`~electrostim.program.PhaseSpan`; the whole session for a
        program without phases)."""
        return self.spans[self._phase_index]

    def _emit_phase(self) -> None:
        span = self.phase
        self._emit("note", {"note": "phase", "phase": span.index + 1, "of": len(self.spans), "name": span.name,
                             "start_s": span.start_s, "duration_s": span.duration_s,
                             "intensity_percent": span.intensity_percent})

    def _follow_phases(self) -> None:
        """Record each phase of a multi-phase program as run time enters it."""
        while self._phase_index + 1 < len(self.spans) and self.run_t >= self.spans[self._phase_index + 1].start_s - 1e-9:
            self._phase_index += 1
            if self.run_t < self.duration_s - 1e-9:  # a phase the session reaches (not its end instant)
                self._emit_phase()

    # -- time -----------------------------------------------------------------------------------
    def _down_fraction(self) -> float:
        """Where the closing ramp is: 1 at its start, 0 at the end of the session."""
        return max(0.0, min(1.0, (self.duration_s - self.run_t) / self.ramp_down_s)) if self.ramp_down_s > 0 else 0.0

    def step(self, dt_s: float) -> None:
        """Advance the session by ``dt_s`` (never past its end): slew intensities, deliver, move through the phases.

        The session lasts :attr:`duration_s` of run time exactly: the closing ramp
        brings every output linearly to zero at that moment, and the last step is
        shortened to end there.
        """
        dt_s = check_number("dt_s", dt_s, low=0.0, high=3600.0, low_open=False)
        if self._stop_request is not None and self.state not in _FINAL:
            self.emergency_stop(self._stop_request)
            return
        now = time.monotonic()
        if self.state in _FINAL or self.state == SessionState.PREPARE:
            self._last_step_wall = now
            return
        if now - self._last_step_wall > self.keepalive_s and not self.device.virtual_time:
            self._fail(f"watchdog: no step for {now - self._last_step_wall:.2f} s (limit {self.keepalive_s:g} s)")
            return
        self._last_step_wall = now
        self.device.heartbeat()
        if self.state == SessionState.PAUSED:
            self.t += dt_s
            return
        dt_s = min(dt_s, max(0.0, self.duration_s - self.run_t))
        self.t += dt_s
        self.run_t += dt_s
        try:
            if self.state == SessionState.RAMP_DOWN:
                frac = self._down_fraction()
                wanted = {lbl: min(self.level[lbl], self._down_from[lbl] * frac) for lbl in self.labels}
                wanted = {lbl: (0.0 if v < 1e-9 else v) for lbl, v in wanted.items()}
            else:  # move every output toward its target at its rate
                wanted = {}
                for lbl in self.labels:
                    cur, tgt, rate = self.level[lbl], self.target[lbl], self._rate[lbl]
                    if math.isinf(rate):
                        new = tgt
                    else:
                        new = cur + max(-rate * dt_s, min(rate * dt_s, tgt - cur))
                    wanted[lbl] = tgt if abs(tgt - new) < 1e-9 else new
            for lbl in self.labels:
                new = wanted[lbl]
                if new != self.level[lbl]:
                    self.device.set_intensity(lbl, new)
                    self.level[lbl] = new
                    arrived = 0.0 if self.state == SessionState.RAMP_DOWN else self.target[lbl]
                    if new == arrived:
                        self._end_ramp(lbl)
                if self.state in _FINAL:
                    return
            if self.device.virtual_time:
                self.device.advance(dt_s)
            status = self.device.status()
            if status.state == DeviceState.FAULT:
                raise DeviceError(status.error or "device fault")
        except (DeviceError, SafetyError) as exc:
            if self._stop_request is not None:  # the device was stopped for a stop request: that is the cause
                self.emergency_stop(self._stop_request)
            else:
                self._fail(str(exc))
            return
        if self.state in _FINAL:
            return
        self._follow_phases()
        # the session's states
        if self.state == SessionState.RAMP_UP and all(self.level[k] == self.target[k] for k in self.labels):
            self._set_state(SessionState.RUN)
        if self.state in (SessionState.RUN, SessionState.RAMP_UP) and self.run_t >= self.duration_s - self.ramp_down_s - 1e-9:
            frac = self._down_fraction()
            # the closing ramp's line through each output's intensity now, reaching zero at the session's end
            self._down_from = {k: (v / frac if frac > 0 else 0.0) for k, v in self.level.items()}
            self.target = {k: 0.0 for k in self.labels}
            self._set_state(SessionState.RAMP_DOWN)
            if self.state == SessionState.RAMP_DOWN:
                for lbl in self.labels:
                    self._ramp[lbl] = None  # a ramp still going is taken over by the closing ramp
                    self._emit_down(lbl, by="ramp-down")
        if self.run_t >= self.duration_s - 1e-9:
            fault = self._stop_device()
            self.level = {k: 0.0 for k in self.labels}
            if fault is not None:  # an output ran on past the schedule before the end's stop went out
                self._fail(fault)
            else:
                self._set_state(SessionState.COMPLETED)
        elif self.t >= self._next_dose_s:
            self._next_dose_s += self.dose_every_s
            self._emit_dose()

    def run(self, step_s: float = 0.05, speed: float = 1.0, until_s: float | None = None,
            tick: Callable[[Runner], None] | None = None) -> SessionState:
        """Step until the session ends (or ``until_s`` of session time), in real time or ``speed``× faster.

        ``speed`` above 1 needs a simulated stimulator. ``tick`` is called after every step
        (a console redraws there, a script may send keys).
        """
        step_s = check_number("step_s", step_s, low=MIN_STEP_S, high=MAX_STEP_S, low_open=False)
        if not (isinstance(speed, (int, float)) and speed > 0):  # NaN fails too
            raise OptionError(f"Invalid value for 'speed': allowed a number > 0 (inf: as fast as it computes), but got {speed!r}.")
        if speed != 1.0 and not self.device.virtual_time:
            raise SessionError("Only a simulated stimulator can run faster than real time.")
        if self.state == SessionState.PREPARE:
            self.begin()
        wall0 = time.monotonic()
        t0 = self.t
        while self.state not in _FINAL and (until_s is None or self.t < until_s):
            self.step(step_s)
            if tick is not None:
                tick(self)
            if speed != float("inf"):
                due = wall0 + self.t / speed
                delay = due - time.monotonic()
                # sleep in short pieces: a stop request (a signal) is acted on within one piece, whatever the speed
                while delay > 0 and self._stop_request is None:
                    time.sleep(min(delay, 0.02))
                    delay = due - time.monotonic()
        self.wall_s += time.monotonic() - wall0
        self.run_session_s += self.t - t0
        return self.state

    def summary(self) -> dict[str, Any]:
        """What happened: final state, times, thresholds, pulses and charge delivered, how late the host
        switched levels (``host_late_s``, s, only when it was), and the wall-clock time :meth:`run` took with the
        speed it reached (``wall_s``, ``speed_reached``: session time per wall-clock time)."""
        st = self.device.status()
        out: dict[str, Any] = {"state": self.state.value, "session_s": round(self.t, 6), "run_s": round(self.run_t, 6),
                               "thresholds_ma": self.thresholds, "pulses_delivered": st.pulses_delivered,
                               "error": self.error}
        if st.host_late_s > 0:
            out["host_late_s"] = round(st.host_late_s, 6)
        if self.wall_s > 0:
            out["wall_s"] = round(self.wall_s, 6)
            out["speed_reached"] = round(self.run_session_s / self.wall_s, 3)
        charge = self.device.charge_delivered_uc()
        if charge is not None:
            out["charge_delivered_uc"] = charge
        return out
