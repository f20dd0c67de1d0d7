"""The stimulator interface every backend implements.

A stimulator accepts nothing but an :class:`~electrostim.safety.ApprovedPlan`, and every
intensity it is asked for is checked against the plan's envelope before anything is
sent. Backends implement the underscored hooks; the public methods here do the checks
and keep the state, so no backend can skip them.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum

from ..errors import ElectrostimError, SafetyError
from ..program import Program
from ..safety import ApprovedPlan, DeviceProfile

__all__ = ["DeviceState", "DeviceStatus", "DeviceError", "Stimulator"]


class DeviceError(ElectrostimError):
    """A stimulator failed, vanished or answered wrongly; stimulation has been stopped."""


class DeviceState(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTED = "connected"
    CONFIGURED = "configured"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FAULT = "fault"


@dataclass
class DeviceStatus:
    """What a stimulator reports: its state, the intensity of each output (mA), the
    measured electrode impedance where it measures one (Ω), pulses delivered, device
    time (s), the longest a host-switched level ran on past its time (``host_late_s``,
    s; 0 where the device times everything itself) and its last error."""

    state: DeviceState
    intensity_ma: dict[str, float] = field(default_factory=dict)
    impedance_ohm: dict[str, float] = field(default_factory=dict)
    pulses_delivered: int = 0
    time_s: float = 0.0
    error: str | None = None
    host_late_s: float = 0.0


_ALLOWED = {
    "connect": {DeviceState.DISCONNECTED},
    "configure": {DeviceState.CONNECTED, DeviceState.STOPPED, DeviceState.CONFIGURED},
    "start": {DeviceState.CONFIGURED},
    "pause": {DeviceState.RUNNING},
    "resume": {DeviceState.PAUSED},
}


class Stimulator(ABC):
    """A stimulator: connect, configure with an approved plan, start, set intensities, pause, resume, stop."""

    #: True for a stimulator whose time the caller advances (:meth:`advance`); a real device runs in real time
    virtual_time = False
    #: a backend that runs on its own (a serial device) stops with a fault when :meth:`heartbeat` has not been
    #: called for this long while it stimulates (None: not watched). The session engine sets it.
    host_timeout_s: float | None = None

    def __init__(self, profile: DeviceProfile):
        self.profile = profile
        self._state = DeviceState.DISCONNECTED
        self._plan: ApprovedPlan | None = None
        self._intensity: dict[str, float] = {}
        self._lock = threading.RLock()
        self._error: str | None = None
        self._heartbeat = time.monotonic()

    # -- the public surface: checks here, hardware in the hooks -----------------------
    @property
    def state(self) -> DeviceState:
        return self._state

    @property
    def plan(self) -> ApprovedPlan | None:
        return self._plan

    def _require(self, action: str) -> None:
        if self._state not in _ALLOWED[action]:
            allowed = ", ".join(sorted(s.value for s in _ALLOWED[action]))
            raise DeviceError(f"Cannot {action} a stimulator that is {self._state.value}: allowed from {allowed}.")

    def connect(self) -> None:
        """Open the connection to the device."""
        with self._lock:
            self._require("connect")
            self._connect()
            self._state = DeviceState.CONNECTED

    def configure(self, plan: ApprovedPlan) -> None:
        """Load an approved plan (and nothing else). Intensities start at zero.

        The stimulator configures from the plan's snapshot only
        (:meth:`~electrostim.safety.ApprovedPlan.verified_program`: a new copy, checked
        against the snapshot's SHA-256 and the envelope: amplitude, pulse and phase
        widths, rate and pad area per output).
        """
        with self._lock:
            if type(plan) is not ApprovedPlan or not plan.made_by_approve():
                raise SafetyError(f"A stimulator accepts only an ApprovedPlan from safety.assess(...).approve(), not {type(plan).__name__}.")
            if plan.device.id != self.profile.id:
                raise SafetyError(f"The plan was approved for device {plan.device.id!r}, not for {self.profile.id!r}: assess it for this device.")
            self._require("configure")
            program = plan.verified_program()
            self._configure(plan, program)
            self._plan = plan
            self._intensity = {o.label: 0.0 for o in plan.envelope.outputs}
            self._state = DeviceState.CONFIGURED

    def start(self) -> None:
        """Start stimulation (at the present intensities, zero after configure)."""
        with self._lock:
            self._require("start")
            self._start()
            self._state = DeviceState.RUNNING

    def set_intensity(self, output: str | int, amplitude_ma: float) -> float:
        """Set one output's intensity; refused (and not sent) outside the approved envelope."""
        with self._lock:
            if self._plan is None:
                raise DeviceError("No plan is configured: configure the stimulator with an approved plan first.")
            env = self._plan.output_envelope(output)
            amplitude_ma = self._plan.check_amplitude(env.label, amplitude_ma)  # one conversion: what was checked is sent
            if self._state == DeviceState.FAULT:
                raise DeviceError(self._error or "The stimulator is in fault.")  # the cause: a session records it
            if self._state not in (DeviceState.CONFIGURED, DeviceState.RUNNING, DeviceState.PAUSED):
                raise DeviceError(f"Cannot set intensity on a stimulator that is {self._state.value}.")
            self._set_intensity(env.label, float(amplitude_ma))
            self._intensity[env.label] = float(amplitude_ma)
            return float(amplitude_ma)

    def pause(self) -> None:
        """Pause: output goes to zero; intensities are kept for resume."""
        with self._lock:
            self._require("pause")
            self._pause()
            self._state = DeviceState.PAUSED

    def resume(self) -> None:
        with self._lock:
            self._require("resume")
            self._resume()
            self._state = DeviceState.RUNNING

    def stop(self) -> None:
        """Stop at once: zero output. Allowed in every state; never raises for a device already stopped."""
        with self._lock:
            if self._state in (DeviceState.DISCONNECTED, DeviceState.STOPPED):
                return
            try:
                self._stop()
            finally:
                self._intensity = {k: 0.0 for k in self._intensity}
                if self._state != DeviceState.FAULT:
                    self._state = DeviceState.STOPPED

    def close(self) -> None:
        """Stop and disconnect."""
        with self._lock:
            self.stop()
            self._close()
            self._state = DeviceState.DISCONNECTED

    def status(self) -> DeviceStatus:
        with self._lock:
            st = self._status()
            st.state = self._state
            st.intensity_ma = dict(self._intensity)
            st.error = self._error
            return st

    def heartbeat(self) -> None:
        """The host is alive (see :attr:`host_timeout_s`)."""
        self._heartbeat = time.monotonic()

    def advance(self, dt_s: float) -> None:  # noqa: B027 - a no-op unless the device keeps virtual time
        """Let ``dt_s`` of device time pass (a stimulator with :attr:`virtual_time`); a real device ignores it."""

    def charge_delivered_uc(self) -> dict[str, float] | None:
        """Charge delivered per output so far (µC), where the backend counts it; None otherwise."""
        return None

    def fault(self, message: str) -> None:
        """Record a fault: stimulation stops at once and the state becomes ``fault``."""
        with self._lock:
            self._error = message
            try:
                self._stop()
            finally:
                self._intensity = {k: 0.0 for k in self._intensity}
                self._state = DeviceState.FAULT

    def __enter__(self) -> Stimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backend hooks --------------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _configure(self, plan: ApprovedPlan, program: Program) -> None:
        """Prepare to deliver ``program`` (the plan's verified snapshot copy)."""

    @abstractmethod
    def _start(self) -> None: ...

    @abstractmethod
    def _set_intensity(self, output: str, amplitude_ma: float) -> None: ...

    @abstractmethod
    def _pause(self) -> None: ...

    @abstractmethod
    def _resume(self) -> None: ...

    @abstractmethod
    def _stop(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _status(self) -> DeviceStatus: ...
