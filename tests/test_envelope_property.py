"""Property: over random programs and random sequences of intensity keys, the commanded
output never leaves the approved envelope.

Programs are drawn from the whole space the program model allows (a preset with random
changes, or channels drawn afresh: shape, width, rate, amplitude, ramps, duty cycle,
modulation, bursts, pads, sites, sequencing), assessed on every device profile they may
fit, and discarded when the safety engine refuses them. Each approved plan is delivered
by the session engine on a simulated stimulator that records every intensity reaching its
hardware hook, while random keys arrive: nudges, targets (some outside the envelope),
pause, resume, time steps, runs, direct intensity calls, peeling pads and an emergency stop.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

import electrostim as es
from electrostim import anatomy
from electrostim.devices._simulated import SimulatedStimulator
from electrostim.devices._stimulator import DeviceError, DeviceState
from electrostim.errors import ProgramError, SafetyError
from electrostim.program import list_programs
from electrostim.safety import get_device
from electrostim.session import MIN_DURATION_S, Runner, SessionError, SessionState

DEVICES = ("generic", "rehastim2", "p24")
PRESET_IDS = sorted(e.id for e in list_programs(include_user=False))
SITES = [s.id for s in anatomy.list_sites()]
FINAL = (SessionState.COMPLETED, SessionState.STOPPED, SessionState.FAILED)


class RecordingStimulator(SimulatedStimulator):
    """A simulated stimulator that records every intensity that reaches its hardware hook."""

    def __init__(self, device: str):
        super().__init__(device)
        self.commanded: list[tuple[str, str, float]] = []  # (who asked, output, mA)
        self.source = "runner"
        self.stops = 0

    def _set_intensity(self, output: str, amplitude_ma: float) -> None:
        self.commanded.append((self.source, output, amplitude_ma))
        super()._set_intensity(output, amplitude_ma)

    def _stop(self) -> None:
        self.stops += 1
        super()._stop()


# --------------------------------------------------------------------------- programs


def _num(lo: float, hi: float, round_values: list[float] | None = None) -> st.SearchStrategy[float]:
    """A float in [lo, hi], often a whole number or a usual setting (as a person would type it)."""
    parts = [st.integers(math.ceil(lo), math.floor(hi)).map(float), st.floats(lo, hi)]
    if round_values:
        parts.insert(0, st.sampled_from([v for v in round_values if lo <= v <= hi]))
    return st.one_of(*parts)


RATES_HZ = [1, 2, 4, 10, 20, 35, 50, 80, 100, 120, 150, 200, 500]


@st.composite
def pulses(draw: st.DrawFn, shape: str) -> dict[str, Any]:
    if shape in ("symmetric-biphasic", "asymmetric-biphasic", "monophasic"):
        p: dict[str, Any] = {
            "shape": shape,
            "pulse_width_us": draw(_num(10, 1200, [50, 100, 200, 250, 300, 400])),
            "frequency_hz": draw(_num(0.5, 1000, RATES_HZ)),
        }
        if shape == "monophasic":
            p["polarity"] = draw(st.sampled_from(["cathodic", "anodic"]))
            p["twin_peak_spacing_us"] = draw(st.none() | _num(0, 200, [0, 50, 100]))
        else:
            p["interphase_gap_us"] = draw(_num(0, 200, [0, 50, 100]))
            p["leading_phase"] = draw(st.sampled_from(["cathodic", "anodic"]))
        if shape == "asymmetric-biphasic":
            p["second_phase_ratio"] = draw(_num(1, 20, [2, 4, 8]))
        return p
    if shape == "sine-burst":
        return {
            "shape": shape,
            "carrier_frequency_hz": draw(_num(500, 10_000, [1000, 2500, 5000])),
            "frequency_hz": draw(_num(1, 200, [20, 50, 100])),
            "burst_duty_percent": draw(_num(5, 100, [10, 50])),
        }
    return {
        "shape": "interferential",
        "mode": draw(st.sampled_from(["quadripolar", "premodulated"])),
        "carrier_frequency_hz": draw(_num(1000, 10_000, [2000, 4000, 5000])),
        "beat_frequency_hz": draw(_num(0.1, 250, [1, 10, 80, 100, 150])),
    }


@st.composite
def modulations(draw: st.DrawFn, shape: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    kinds = ["frequency-sweep", "alternating-frequency"] + ([] if shape == "interferential" else ["random-frequency"])
    kind = draw(st.none() | st.sampled_from(kinds))
    if kind == "alternating-frequency":
        freqs = draw(st.lists(_num(0.5, 300, RATES_HZ), min_size=2, max_size=4))
        out.append({"kind": kind, "frequencies_hz": freqs, "dwell_s": draw(_num(0.1, 10))})
    elif kind is not None:
        low = draw(_num(0.5, 200, RATES_HZ))
        m = {"kind": kind, "low_hz": low, "high_hz": low + draw(_num(0.1, 200, [1, 10, 50]))}
        if kind == "frequency-sweep":
            m.update(period_s=draw(_num(0.1, 30)), profile=draw(st.sampled_from(["triangle", "sawtooth"])))
        else:
            m["seed"] = draw(st.integers(0, 2**16))
        out.append(m)
    if draw(st.booleans()):
        out.append({"kind": "amplitude-sweep", "low_percent": draw(_num(0, 99, [0, 50])), "period_s": draw(_num(0.1, 30)),
                    "profile": draw(st.sampled_from(["triangle", "sawtooth"])), "phase_deg": draw(_num(0, 359, [0, 180]))})
    if shape in ("symmetric-biphasic", "asymmetric-biphasic", "monophasic") and draw(st.booleans()):
        out.append({"kind": "width-sweep", "low_percent": draw(_num(1, 99, [50])), "period_s": draw(_num(0.1, 30)),
                    "profile": draw(st.sampled_from(["triangle", "sawtooth"])), "phase_deg": draw(_num(0, 359, [0, 180]))})
    return draw(st.permutations(out))


@st.composite
def stimuli(draw: st.DrawFn, shape: str, needs_duty_cycle: bool = False) -> dict[str, Any]:
    top = draw(_num(0.5, 200, [10, 20, 30, 40, 50, 60, 80, 100, 130, 150]))
    s: dict[str, Any] = {
        "pulse": draw(pulses(shape)),
        "amplitude": {"max_ma": top, "default_ma": top * draw(st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0, 1))},
        "modulation": draw(modulations(shape)),
    }
    if shape in ("symmetric-biphasic", "asymmetric-biphasic", "monophasic") and draw(st.booleans()):
        s["burst"] = {"pulses_per_burst": draw(st.integers(2, 20)), "burst_frequency_hz": draw(_num(0.5, 10, [1, 2]))}
    if needs_duty_cycle or draw(st.booleans()):
        on = draw(_num(0.5, 30, [1, 5, 10]))
        s["duty_cycle"] = {"on_s": on, "off_s": draw(_num(0, 60, [0, 1, 10, 20]))}
        # ramps fit in the on-time
        s["ramp_up_s"] = on * draw(st.floats(0, 0.5))
        s["ramp_down_s"] = on * draw(st.floats(0, 0.5))
    else:
        s["ramp_up_s"] = draw(_num(0, 10, [0, 2, 5]))
        s["ramp_down_s"] = draw(_num(0, 10, [0, 2, 5]))
    return s


@st.composite
def electrodes(draw: st.DrawFn) -> dict[str, Any]:
    # sites are weighted away from the few that are always refused, so that most draws survive
    safe = [s for s in SITES if s not in ("head", "eye", "anterior-neck")]
    pad: dict[str, Any] = {
        "site": draw(st.sampled_from(SITES if draw(st.integers(0, 9)) == 0 else safe)),
        "side": draw(st.sampled_from([None, "left", "right", "midline"])),
    }
    if draw(st.booleans()):
        pad.update(shape="rectangle", width_cm=draw(_num(1, 15, [2, 5, 10])), height_cm=draw(_num(1, 15, [2, 5, 10])))
    else:
        pad.update(shape="disk", diameter_cm=draw(_num(1, 10, [3.2, 5])))
    return pad


@st.composite
def drawn_programs(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """Modality, sequencing and channels drawn afresh, on a preset's descriptive fields."""
    shapes = ["symmetric-biphasic", "asymmetric-biphasic", "monophasic", "sine-burst", "interferential"]
    shape = draw(st.sampled_from(shapes))
    if shape == "interferential":
        modality = "interferential"
    else:
        modality = draw(st.sampled_from(["tens", "nmes", "fes", "russian", "hvpc"]))
    n = draw(st.integers(1, 4))
    sequencing = draw(st.sampled_from(["synchronous", "alternating", "delayed"]) if n > 1 else st.just("synchronous"))
    # the same shape on every channel, or another one on some (never mixing interferential in)
    others = [shape] if shape == "interferential" else [s for s in shapes if s != "interferential"]
    chans = []
    for i in range(n):
        sh = shape if i == 0 else draw(st.sampled_from([shape, shape] + others))
        stim = draw(stimuli(sh, needs_duty_cycle=sequencing == "alternating"))
        quad = sh == "interferential" and stim["pulse"]["mode"] == "quadripolar"
        pads = draw(st.lists(electrodes(), min_size=4 if quad else 2, max_size=4 if quad else 2))
        chans.append({"label": f"ch-{i + 1}", "electrodes": pads, "stimulus": stim})
    data = {**base, "modality": modality, "sequencing": sequencing, "channels": chans}
    if sequencing == "delayed":
        data["sequencing_delay_s"] = draw(_num(0.1, 30, [1, 5]))
    if draw(st.booleans()):
        # a shared stimulus table that every channel inherits, each overriding only its amplitude
        data["stimulus"] = chans[0]["stimulus"]
        for c in chans:
            if c["stimulus"]["pulse"]["shape"] == shape and draw(st.booleans()):
                c["stimulus"] = {"amplitude": c["stimulus"]["amplitude"]}
    return data


@st.composite
def programs(draw: st.DrawFn) -> es.Program:
    """A valid program from anywhere in the model's space (invalid draws are discarded)."""
    preset = es.load_program(draw(st.sampled_from(PRESET_IDS)))
    if draw(st.booleans()):
        try:
            preset = preset.with_changes(
                max_amplitude_ma=draw(st.none() | _num(0.5, 200, [20, 50, 100])),
                electrode_cm=draw(st.none() | st.tuples(_num(1, 15, [5]), _num(1, 15, [5]))),
                site=draw(st.none() | st.sampled_from(SITES)),
            )
        except ProgramError:
            assume(False)
        data = preset.model_dump(mode="python")
    else:
        base = preset.model_dump(mode="python", exclude={"channels", "modality", "sequencing", "sequencing_delay_s"})
        data = draw(drawn_programs(base))
    # short sessions keep the dose computation and the simulation quick
    data["session_duration_s"] = draw(_num(2, 120, [10, 30, 60]))
    try:
        return es.validate_program(data, source="drawn program")
    except ProgramError:
        assume(False)
        raise  # not reached


patients = st.none() | st.builds(
    lambda conds: es.Patient.model_validate({"id": "P-prop", "conditions": conds}),
    st.lists(st.sampled_from(["epilepsy", "bleeding-tendency", "heart-disease", "recent-surgery", "metal-implant",
                              "pregnancy", "pacemaker"]), max_size=2, unique=True),
)


# --------------------------------------------------------------------------- keys


def _out_of_range(top: float) -> st.SearchStrategy[float]:
    """Intensities the envelope must refuse: below zero, above its maximum, not a number."""
    return st.one_of(
        st.floats(max_value=-1e-6, allow_infinity=True, allow_nan=False),
        st.floats(min_value=top + 1e-6, allow_infinity=True, allow_nan=False),
        st.sampled_from([top + 1e-3, top + 0.5, top * 2 + 1, -1e-3, math.nan, math.inf, -math.inf]),
    )


def _in_range(top: float) -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from([0.0, top]), st.floats(0.0, top))


#: keys and how often each comes (an emergency stop is rare, so that most sessions run a while first)
KEYS = (["nudge"] * 6 + ["target"] * 3 + ["bad-target"] * 2 + ["direct"] * 2 + ["bad-direct"] * 2 + ["bad-output"]
        + ["step"] * 6 + ["run"] * 2 + ["pause", "resume", "begin", "peel", "estop"])


def _snapshot(r: Runner, dev: RecordingStimulator) -> tuple:
    st_ = dev.status()
    return (dict(r.target), dict(r.level), r.state, dev.state, st_.intensity_ma, len(dev.commanded),
            st_.pulses_delivered, dev.charge_delivered_uc())


# --------------------------------------------------------------------------- the property


@settings(max_examples=100, deadline=None)
@given(program=programs(), patient=patients, data=st.data())
def test_commanded_output_never_leaves_the_envelope_over_random_programs_and_keys(program, patient, data):
    _envelope_case(program, patient, data)


@pytest.mark.slow
@settings(max_examples=1000, deadline=None)
@given(program=programs(), patient=patients, data=st.data())
def test_commanded_output_never_leaves_the_envelope_over_1000_random_programs_and_keys(program, patient, data):
    _envelope_case(program, patient, data)


def _envelope_case(program, patient, data):
    # the devices the program fits, then one of them
    fits = {}
    for name in DEVICES:
        prof = get_device(name)
        if len(program.outputs) > prof.channels or any(c.stimulus.pulse.shape not in prof.shapes for c in program.channels):
            continue
        a = es.assess(program, patient=patient, device=name)
        if a.verdict != "refused":
            fits[name] = a
    assume(fits)
    device = data.draw(st.sampled_from(sorted(fits)), label="device")
    assessment = fits[device]
    plan = assessment.approve(confirm=True, confirmed_by="property test")
    event(f"device {device}, verdict {assessment.verdict}")
    event(f"shapes {'+'.join(sorted({c.stimulus.pulse.shape for c in program.channels}))}")

    dev = RecordingStimulator(device)
    dev.connect()
    dev.configure(plan)
    env = {o.label: o for o in plan.envelope.outputs}
    labels = list(env)
    assert len(labels) == len(program.outputs)

    # a start intensity outside the envelope is refused before anything is sent
    if data.draw(st.booleans(), label="try a bad start_ma"):
        lbl = data.draw(st.sampled_from(labels))
        with pytest.raises(SafetyError, match="outside the approved envelope"):
            Runner(dev, start_ma={lbl: data.draw(_out_of_range(env[lbl].max_amplitude_ma))})
        assert dev.commanded == [] and dev.state == DeviceState.CONFIGURED
    start = data.draw(st.fixed_dictionaries({}, optional={lbl: _in_range(env[lbl].max_amplitude_ma) for lbl in labels}),
                      label="start_ma")
    r = Runner(dev, start_ma=start or None, slew_ma_per_s=data.draw(_num(0.1, 50, [2, 5]), label="slew"),
               duration_s=data.draw(st.none() | _num(MIN_DURATION_S, program.session_duration_s), label="duration_s"),
               ramp_s=data.draw(_num(0, 10, [0, 3]), label="ramp_s"))

    checked = 0
    stopped: tuple[int, int, dict[str, float]] | None = None  # (commands, pulses, charge) at the emergency stop

    def check() -> None:
        nonlocal checked
        for who, lbl, ma in dev.commanded[checked:]:
            top = env[lbl].max_amplitude_ma
            assert not math.isnan(ma) and 0.0 <= ma <= top, (
                f"{who} commanded {ma!r} mA on {lbl!r}, outside the envelope 0..{top} mA")
        checked = len(dev.commanded)
        status = dev.status()
        for lbl, ma in status.intensity_ma.items():
            assert 0.0 <= ma <= env[lbl].max_amplitude_ma
        for lbl in labels:
            assert 0.0 <= r.target[lbl] <= env[lbl].max_amplitude_ma
            assert 0.0 <= r.level[lbl] <= env[lbl].max_amplitude_ma
        if r.state in FINAL:
            # a finished, stopped or failed session leaves every output at zero
            assert dev.state in (DeviceState.STOPPED, DeviceState.FAULT)
            assert all(v == 0.0 for v in status.intensity_ma.values())
        if stopped is not None:
            # after the emergency stop nothing reaches the hardware and nothing is delivered
            assert (len(dev.commanded), status.pulses_delivered, dev.charge_delivered_uc()) == stopped
            assert all(v == 0.0 for v in status.intensity_ma.values())
            assert all(v == 0.0 for v in r.level.values()) and all(v == 0.0 for v in r.target.values())
            assert r.state in FINAL

    def refused(call, match: str) -> None:
        """A request the envelope must refuse: it raises SafetyError and changes nothing."""
        before = _snapshot(r, dev)
        with pytest.raises(SafetyError, match=match):
            call()
        assert _snapshot(r, dev) == before

    def output_ref(lbl: str) -> str | int:
        return data.draw(st.sampled_from([lbl, env[lbl].output]), label="output by label or index")

    if data.draw(st.integers(0, 3), label="begin at once") > 0:
        r.begin()
    check()
    n_keys = data.draw(st.integers(0, 60), label="number of keys")
    for _ in range(n_keys):
        key = data.draw(st.sampled_from(KEYS), label="key")
        lbl = data.draw(st.sampled_from(labels), label="output")
        top = env[lbl].max_amplitude_ma
        if key == "nudge":
            delta = data.draw(st.one_of(st.sampled_from([-5.0, -1.0, -0.5, 0.5, 1.0, 5.0, math.inf, -math.inf]),
                                        st.floats(-2 * top - 1, 2 * top + 1)), label="delta")
            before = r.target[lbl]
            try:
                r.nudge(output_ref(lbl), delta)
            except SessionError:
                # refused only when the session is over, or a rise while it ramps down
                assert r.state in FINAL or (r.state == SessionState.RAMP_DOWN and delta > 0)
                assert r.target[lbl] == before
        elif key == "target":
            before = r.target[lbl]
            value = data.draw(_in_range(top), label="target")
            try:
                assert r.set_target(output_ref(lbl), value) >= 0.0
            except SessionError:
                assert r.state in FINAL or (r.state == SessionState.RAMP_DOWN and value > before)
                assert r.target[lbl] == before
        elif key == "bad-target":
            value = data.draw(_out_of_range(top), label="bad target")
            refused(lambda: r.set_target(output_ref(lbl), value), "outside the approved envelope")
        elif key == "direct":
            value = data.draw(_in_range(top), label="direct")
            dev.source = "direct call"
            try:
                assert dev.set_intensity(output_ref(lbl), value) == value
            except DeviceError:
                assert dev.state in (DeviceState.STOPPED, DeviceState.FAULT)
            finally:
                dev.source = "runner"
        elif key == "bad-direct":
            value = data.draw(_out_of_range(top), label="bad direct")
            refused(lambda: dev.set_intensity(output_ref(lbl), value), "outside the approved envelope")
        elif key == "bad-output":
            ref = data.draw(st.sampled_from(["no-such-output", len(labels), -1]), label="bad output")
            how = data.draw(st.sampled_from(["nudge", "target", "direct"]), label="bad output via")
            call = {"nudge": lambda: r.nudge(ref, 1.0), "target": lambda: r.set_target(ref, 0.0),
                    "direct": lambda: dev.set_intensity(ref, 0.0)}[how]
            refused(call, "No output")
        elif key == "step":
            r.step(data.draw(st.one_of(st.sampled_from([0.0, 0.05, 0.1]), st.floats(0.0, 5.0)), label="dt"))
        elif key == "run":
            r.run(step_s=data.draw(_num(0.02, 1.0, [0.05, 0.1]), label="step_s"), speed=float("inf"),
                  until_s=r.t + data.draw(_num(0.0, 20.0), label="run for"))
        elif key == "pause":
            try:
                r.pause()
            except SessionError:
                assert r.state not in (SessionState.RAMP_UP, SessionState.RUN, SessionState.RAMP_DOWN)
        elif key == "resume":
            try:
                r.resume()
            except SessionError:
                assert r.state != SessionState.PAUSED
        elif key == "begin":
            try:
                r.begin()
            except SessionError:
                assert r.state != SessionState.PREPARE
        elif key == "peel":
            dev.peel(lbl, data.draw(st.sampled_from([0, 1])), data.draw(st.floats(0.0, 1.0), label="contact"))
        elif key == "estop":
            r.emergency_stop()
            assert dev.stops >= 1 and dev.state in (DeviceState.STOPPED, DeviceState.FAULT)
            st_ = dev.status()
            stopped = (len(dev.commanded), st_.pulses_delivered, dev.charge_delivered_uc())
        check()
    event(f"ended {r.state.value}" + (" after an emergency stop" if stopped else ""))
    event(f"{sum(who == 'runner' for who, _, _ in dev.commanded) > 0 and 'some' or 'no'} intensities sent by the runner")

    # whatever happened, an emergency stop leaves everything at zero and nothing more is sent
    r.emergency_stop()
    stopped = (len(dev.commanded), dev.status().pulses_delivered, dev.charge_delivered_uc())
    for _ in range(3):
        r.step(0.5)
        dev.advance(0.5)
        try:
            dev.set_intensity(labels[0], 0.0)
        except DeviceError:
            pass
        check()
    assert dev.state in (DeviceState.STOPPED, DeviceState.FAULT)


# --------------------------------------------------------------------------- cases the property found


def _changed(pid: str, **stimulus: Any) -> es.Program:
    data = es.load_program(pid).model_dump(mode="python")
    for ch in data["channels"]:
        for key, value in stimulus.items():
            if isinstance(value, dict):
                ch["stimulus"][key] = {**ch["stimulus"][key], **value}
            else:
                ch["stimulus"][key] = value
    return es.validate_program(data)


def test_a_sine_burst_of_a_single_carrier_cycle_is_assessed():
    # 5 % of a 20 ms burst period at a 1 kHz carrier: one cycle per burst
    program = _changed("russian-current", pulse={"carrier_frequency_hz": 1000.0, "frequency_hz": 50.0, "burst_duty_percent": 5.0})
    assert program.channels[0].stimulus.pulse.cycles_per_burst == 1
    a = es.assess(program)
    assert a.verdict != "refused"
    out = a.dose.outputs[0]
    assert out.max_pulse_rate_hz == pytest.approx(50.0)
    # one full carrier cycle: each half lasts 500 µs at the peak amplitude
    assert out.max_phase_charge_uc == pytest.approx(out.amplitude_ma * 500e-6 * 1e3 * 2 / math.pi, rel=1e-6)


def test_a_vanishing_ramp_is_assessed_like_no_ramp():
    tiny = _changed("knee-oa-tens", ramp_up_s=2e-308, ramp_down_s=2e-308)  # > 0, so allowed; overflows x / ramp
    none = _changed("knee-oa-tens", ramp_up_s=0.0, ramp_down_s=0.0)
    a, b = es.assess(tiny).dose.outputs[0], es.assess(none).dose.outputs[0]
    assert a.peak_current_ma == b.peak_current_ma and a.rms_current_ma == pytest.approx(b.rms_current_ma)
    assert b.pulse_count - a.pulse_count == 1  # only the pulse at t = 0, where the ramp starts from zero
