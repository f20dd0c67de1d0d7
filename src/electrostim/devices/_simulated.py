"""A simulated stimulator: the pulses of the approved schedule, in (simulated) time, into a modelled electrode-skin load.

Time is a virtual clock that the caller advances (``advance``); the session engine
advances it in real time, or faster when asked. Each advance produces the schedule's
pulses in that interval, scaled by the present intensity of each output, and counts
pulses and charge. The load of each output is a body resistance in series with the
contact resistance of its two pads, which grows as a pad peels (its contact area falls);
like a real device the simulator measures it before each pulse and stops with an
electrode error when the contact is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..program import Program
from ..safety import ApprovedPlan, get_device
from ..waveform import PulseChunk, Schedule, pulse_terms
from ._stimulator import DeviceError, DeviceStatus, Stimulator

__all__ = ["LoadModel", "SimulatedStimulator"]


@dataclass
class LoadModel:
    """Electrode-skin load of one output.

    ``impedance_ohm = body_ohm + Σ contact_ohm_m2 / (area_m2 · contact)`` over its two pads.
    The values are typical orders of magnitude for self-adhesive pads [assumed]; an
    electrode error is raised when the impedance exceeds ``max_impedance_ohm`` or a pad's
    contact falls below ``min_contact``.
    """

    body_ohm: float = 300.0
    contact_ohm_m2: float = 1.0
    max_impedance_ohm: float = 5000.0
    min_contact: float = 0.2


class SimulatedStimulator(Stimulator):
    """The default stimulator: no hardware, the same checks and states as a real one.

    Examples
    --------
    >>> import electrostim as es
    >>> from electrostim.devices import SimulatedStimulator
    >>> plan = es.assess(es.load_program("knee-oa-tens")).approve()
    >>> dev = SimulatedStimulator()
    >>> dev.connect(); dev.configure(plan); dev.start()
    >>> dev.set_intensity("knee-1", 20.0)
    20.0
    >>> dev.advance(1.0)
    >>> dev.status().pulses_delivered > 0
    True
    >>> dev.stop()
    """

    virtual_time = True

    def __init__(self, device: str = "generic", load: LoadModel | None = None):
        super().__init__(get_device(device))
        self.load = load or LoadModel()
        self._t = 0.0
        self._pulses = 0
        self._charge_uc: dict[str, float] = {}
        self._contact: dict[str, list[float]] = {}
        self._areas_m2: dict[str, list[float]] = {}
        self._schedule: Schedule | None = None
        self._label_of: list[str] = []
        self._output_on = False
        #: what was emitted: (t0, t1, intensity of each output in mA) for each stretch of device time
        self._segments: list[tuple[float, float, tuple[float, ...]]] = []
        self.disconnected = False  # set to simulate a device that vanished

    # hooks ------------------------------------------------------------------------------
    def _connect(self) -> None:
        if self.disconnected:
            raise DeviceError("The simulated stimulator is disconnected.")

    def _configure(self, plan: ApprovedPlan, program: Program) -> None:
        labels = {c.label: 1.0 for c in program.channels}
        self._schedule = Schedule(program, amplitude_ma=labels)  # unit amplitude; intensity scales it
        self._label_of = [o.label for o in self._schedule.outputs]
        self._segments = []
        self._t = 0.0
        self._pulses = 0
        self._charge_uc = {lbl: 0.0 for lbl in self._label_of}
        self._areas_m2 = {o.label: [e.area_cm2 * 1e-4 for e in o.electrodes] for o in self._schedule.outputs}
        self._contact = {lbl: [1.0, 1.0] for lbl in self._label_of}

    def _start(self) -> None:
        self._output_on = True

    def _set_intensity(self, output: str, amplitude_ma: float) -> None:
        self._check_link()

    def _pause(self) -> None:
        self._output_on = False

    def _resume(self) -> None:
        self._output_on = True

    def _stop(self) -> None:
        self._output_on = False

    def _close(self) -> None:
        pass

    def _status(self) -> DeviceStatus:
        return DeviceStatus(state=self.state, impedance_ohm={lbl: self.impedance_ohm(lbl) for lbl in self._label_of},
                            pulses_delivered=self._pulses, time_s=self._t)

    # the simulated world ----------------------------------------------------------------
    def _check_link(self) -> None:
        if self.disconnected:
            self.fault("device not responding: the simulated stimulator was disconnected")
            raise DeviceError("device not responding: the simulated stimulator was disconnected")

    def impedance_ohm(self, output: str) -> float:
        """The load of one output now (Ω)."""
        contact = self._contact[output]
        areas = self._areas_m2[output]
        return self.load.body_ohm + sum(self.load.contact_ohm_m2 / (a * max(c, 1e-9)) for a, c in zip(areas, contact))

    def peel(self, output: str, pad: int, contact: float) -> None:
        """Let pad ``pad`` (0 or 1) of an output keep only ``contact`` (0..1) of its area on the skin."""
        if output not in self._contact:
            raise DeviceError(f"No output {output!r}: allowed {', '.join(self._label_of)}.")
        self._contact[output][pad] = float(np.clip(contact, 0.0, 1.0))

    def charge_delivered_uc(self) -> dict[str, float]:
        """Total absolute charge delivered per output so far (µC)."""
        return dict(self._charge_uc)

    @property
    def time_s(self) -> float:
        return self._t

    def advance(self, dt_s: float) -> None:
        """Let ``dt_s`` of device time pass: deliver the pulses due, check the electrodes."""
        if dt_s < 0:
            raise DeviceError(f"Time cannot run backwards: dt_s must be >= 0, but got {dt_s!r}.")
        with self._lock:
            if self._schedule is None:
                raise DeviceError("No plan is configured.")
            t0, t1 = self._t, min(self._t + dt_s, self._schedule.duration_s)
            self._t = self._t + dt_s
            if not self._output_on or t1 <= t0:
                return
            self._check_link()
            chunk = self._schedule.pulses(t0, t1)
            due = []
            for i, label in enumerate(self._label_of):
                amp = self._intensity.get(label, 0.0)
                mine = chunk.select(chunk.output == i)
                if len(mine) == 0 or amp <= 0:
                    continue
                # the test impulse before each pulse: stop on a lost contact (before any pulse of this stretch)
                z = self.impedance_ohm(label)
                if z > self.load.max_impedance_ohm or min(self._contact[label]) < self.load.min_contact:
                    self.fault(f"electrode error on {label!r}: impedance {z:.0f} Ω, contact {min(self._contact[label]) * 100:.0f} %")
                    raise DeviceError(self._error or "electrode error")
                due.append((label, amp, mine))
            for label, amp, mine in due:
                q1, q2, _, _, _ = pulse_terms(mine)
                self._charge_uc[label] += float((q1 + q2).sum()) * amp
                self._pulses += len(mine)
            levels = tuple(self._intensity.get(label, 0.0) for label in self._label_of)
            if self._segments and self._segments[-1][1] == t0 and self._segments[-1][2] == levels:
                self._segments[-1] = (self._segments[-1][0], t1, levels)
            else:
                self._segments.append((t0, t1, levels))

    def emitted(self, start_s: float = 0.0, stop_s: float | None = None) -> PulseChunk:
        """Every pulse the stimulator emitted in ``[start_s, stop_s)`` of device time, as delivered.

        The record is kept compactly (each stretch of device time with the intensity of
        every output); the pulses are the approved schedule's at unit amplitude times
        those intensities. ``output`` is the output index (the plan's order).
        """
        if self._schedule is None:
            return PulseChunk.concatenate([], start_s, start_s)
        stop = self._t if stop_s is None else stop_s
        parts = []
        for t0, t1, levels in self._segments:
            a, b = max(t0, start_s), min(t1, stop)
            if b <= a:
                continue
            chunk = self._schedule.pulses(a, b)
            scale = np.asarray(levels)[chunk.output]
            keep = scale > 0
            chunk = chunk.select(keep)
            scale = scale[keep]
            parts.append(PulseChunk(a, b, chunk.time_s, chunk.output, chunk.shape, chunk.first_amplitude_ma * scale,
                                    chunk.first_width_us, chunk.gap_us, chunk.second_amplitude_ma * scale,
                                    chunk.second_width_us))
        return PulseChunk.concatenate(parts, start_s, stop)
