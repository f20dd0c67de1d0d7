"""Dose: charge, current, energy and power of a schedule, per output and per electrode.

Figures are exact sums over the pulses of the schedule (closed forms per phase:
a rectangular phase of amplitude I and width w carries I·w and I²·w; a sine
half-wave carries 2·I·w/π and I²·w/2). "During stimulation" figures are the highest
over any one-second window starting at a pulse (the FDA averages power over 1 s at
maximum duty); "session" figures average over the whole session.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..program import Program
from ._schedule import SHAPE_SINE, PulseChunk, Schedule

__all__ = ["ElectrodeDose", "OutputDose", "Dose", "compute_dose", "DEFAULT_LOAD_OHM", "WINDOW_S"]

#: Standard test load of IEC 60601-2-10.
DEFAULT_LOAD_OHM = 500.0
#: Averaging window for "during stimulation" figures.
WINDOW_S = 1.0


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ElectrodeDose(_Frozen):
    """Dose at one pad."""

    site: str
    side: str | None
    size: str
    area_cm2: float
    rms_current_density_ma_per_cm2: float
    average_power_density_w_per_cm2: float
    charge_density_uc_per_cm2: float
    shannon_k: float | None


class OutputDose(_Frozen):
    """Dose of one stimulator output (channel)."""

    output: int
    label: str
    channel: str
    amplitude_ma: float
    pulse_count: int
    max_pulse_rate_hz: float
    peak_current_ma: float
    peak_voltage_v: float
    max_phase_charge_uc: float
    max_net_charge_per_pulse_uc: float
    net_charge_session_uc: float
    dc_current_ma: float
    rms_current_ma: float
    rms_current_session_ma: float
    average_current_ma: float
    average_current_session_ma: float
    max_energy_per_pulse_mj: float
    average_power_mw: float
    average_power_session_mw: float
    electrodes: list[ElectrodeDose]


class Dose(_Frozen):
    """Dose of a program at one intensity, into a stated load."""

    program: str
    level: str
    load_ohm: float
    window_s: float
    session_duration_s: float
    outputs: list[OutputDose]

    def output(self, label: str) -> OutputDose:
        """The dose of the output with this label."""
        for o in self.outputs:
            if o.label == label:
                return o
        raise KeyError(label)


def pulse_terms(c: PulseChunk) -> tuple[np.ndarray, ...]:
    """Per pulse: |charge| of phase 1 and 2 (µC), signed net charge (µC), ∫i²dt (mA²·µs), peak |I| (mA)."""
    sine = c.shape == SHAPE_SINE
    kq = np.where(sine, 2.0 / math.pi, 1.0)
    ke = np.where(sine, 0.5, 1.0)
    a1, a2, w1, w2 = c.first_amplitude_ma, c.second_amplitude_ma, c.first_width_us, c.second_width_us
    s1 = a1 * w1 * kq * 1e-3
    s2 = a2 * w2 * kq * 1e-3
    i2t = (a1 * a1 * w1 + a2 * a2 * w2) * ke
    peak = np.maximum(np.abs(a1), np.abs(a2))
    return np.abs(s1), np.abs(s2), s1 + s2, i2t, peak


class _OutputAccumulator:
    def __init__(self, window_s: float):
        self.w = window_s
        self.count = 0
        self.peak = 0.0
        self.max_q = 0.0
        self.max_net = 0.0
        self.sum_net = 0.0
        self.sum_i2t = 0.0
        self.sum_absq = 0.0
        self.max_i2t = 0.0
        self.min_dt = math.inf
        self.last_t: float | None = None
        self.win_max = np.zeros(3)  # i2t, |q|, net
        self.win_min_net = 0.0
        self.tail_t = np.zeros(0)
        self.tail_v = np.zeros((3, 0))

    def add(self, c: PulseChunk, final: bool) -> None:
        t = c.time_s
        n = t.shape[0]
        if n:
            q1, q2, net, i2t, peak = pulse_terms(c)
            self.count += n
            self.peak = max(self.peak, float(peak.max()))
            self.max_q = max(self.max_q, float(q1.max()), float(q2.max()))
            self.max_net = max(self.max_net, float(np.abs(net).max()))
            self.sum_net += float(net.sum())
            self.sum_i2t += float(i2t.sum())
            absq = q1 + q2
            self.sum_absq += float(absq.sum())
            self.max_i2t = max(self.max_i2t, float(i2t.max()))
            if n > 1:
                self.min_dt = min(self.min_dt, float(np.diff(t).min()))
            if self.last_t is not None:
                self.min_dt = min(self.min_dt, float(t[0]) - self.last_t)
            self.last_t = float(t[-1])
            T = np.concatenate([self.tail_t, t])
            V = np.concatenate([self.tail_v, np.stack([i2t, absq, net])], axis=1)
        else:
            T, V = self.tail_t, self.tail_v
        if T.shape[0] == 0:
            return
        C = np.zeros((3, T.shape[0] + 1))
        np.cumsum(V, axis=1, out=C[:, 1:])
        ends = T + self.w
        complete = np.ones(T.shape[0], bool) if final else ends <= c.stop_s
        if complete.any():
            start = np.nonzero(complete)[0]
            # half-open windows [t, t + w); a pulse exactly at t + w (to 1 ns) belongs to the next
            stop = np.searchsorted(T, ends[start] - 1e-9, side="left")
            sums = C[:, stop] - C[:, start]
            self.win_max = np.maximum(self.win_max, sums.max(axis=1))
            self.win_min_net = min(self.win_min_net, float(sums[2].min()))
        pending = ~complete
        self.tail_t, self.tail_v = T[pending], V[:, pending]


def compute_dose(
    program: Program,
    level: str = "default",
    amplitude_ma=None,
    load_ohm: float = DEFAULT_LOAD_OHM,
    schedule: Schedule | None = None,
) -> Dose:
    """Dose of a program, per output and per electrode, into ``load_ohm``.

    Parameters
    ----------
    program : Program
    level : {"default", "max"}
        The amplitude used (ignored when ``schedule`` is given).
    amplitude_ma : float or mapping, optional
        Explicit amplitude(s) instead of ``level``.
    load_ohm : float
        Resistive load for energy and power (500 Ω, the IEC test load, by default).
    schedule : Schedule, optional
        A schedule to use instead of building one.

    Examples
    --------
    >>> import electrostim as es
    >>> d = es.compute_dose(es.load_program("nmes-quadriceps-tka"), level="max")
    >>> round(d.outputs[0].max_phase_charge_uc, 3)
    25.0
    """
    if load_ohm <= 0:
        from ..errors import OptionError

        raise OptionError(f"Invalid value for 'load_ohm': allowed > 0 Ω, but got {load_ohm!r}.")
    sched = schedule if schedule is not None else Schedule(program, level=level, amplitude_ma=amplitude_ma)
    duration = sched.duration_s
    window = min(WINDOW_S, duration)
    accs = [_OutputAccumulator(window) for _ in sched.outputs]
    prev: list[PulseChunk] | None = None
    for parts in sched.output_chunks():
        if prev is not None:
            for acc, c in zip(accs, prev):
                acc.add(c, final=False)
        prev = parts
    if prev is not None:
        for acc, c in zip(accs, prev):
            acc.add(c, final=True)
    outs = []
    for o, amp, acc in zip(sched.outputs, sched.amplitudes_ma, accs):
        rms = math.sqrt(acc.win_max[0] * 1e-6 / window)
        rms_session = math.sqrt(acc.sum_i2t * 1e-6 / duration)
        power_w = rms * rms * 1e-6 * load_ohm
        power_session_w = rms_session * rms_session * 1e-6 * load_ohm
        pads = []
        for e in o.electrodes:
            area = e.area_cm2
            density = acc.max_q / area
            k = math.log10(density) + math.log10(acc.max_q) if acc.max_q > 0 else None
            pads.append(
                ElectrodeDose(
                    site=e.site,
                    side=e.side,
                    size=e.size_label,
                    area_cm2=area,
                    rms_current_density_ma_per_cm2=rms / area,
                    average_power_density_w_per_cm2=power_w / area,
                    charge_density_uc_per_cm2=density,
                    shannon_k=k,
                )
            )
        outs.append(
            OutputDose(
                output=o.index,
                label=o.label,
                channel=program.channels[o.channel_index].label,
                amplitude_ma=amp,
                pulse_count=acc.count,
                max_pulse_rate_hz=round(1.0 / acc.min_dt, 6) if acc.min_dt not in (0.0, math.inf) else 0.0,
                peak_current_ma=acc.peak,
                peak_voltage_v=acc.peak * 1e-3 * load_ohm,
                max_phase_charge_uc=acc.max_q,
                max_net_charge_per_pulse_uc=acc.max_net,
                net_charge_session_uc=acc.sum_net,
                dc_current_ma=max(acc.win_max[2], -acc.win_min_net) * 1e-3 / window,
                rms_current_ma=rms,
                rms_current_session_ma=rms_session,
                average_current_ma=acc.win_max[1] * 1e-3 / window,
                average_current_session_ma=acc.sum_absq * 1e-3 / duration,
                max_energy_per_pulse_mj=acc.max_i2t * 1e-6 * 1e-6 * load_ohm * 1e3,
                average_power_mw=power_w * 1e3,
                average_power_session_mw=power_session_w * 1e3,
                electrodes=pads,
            )
        )
    return Dose(
        program=program.id,
        level=sched.level if amplitude_ma is None and schedule is None else "explicit",
        load_ohm=load_ohm,
        window_s=window,
        session_duration_s=duration,
        outputs=outs,
    )
