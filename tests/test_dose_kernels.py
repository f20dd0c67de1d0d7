"""The dose's numba kernels give the figures of its array forms: bit for bit where they take the same steps (levels,
per-pulse terms and maxima, 1 s windows, intervals), to rounding where they add in another order (session sums);
outputs dosed side by side give the figures of outputs dosed one after another.

The kernels take over once an output is long (``KERNEL_MIN_PULSES``, ``KERNEL_MIN_TIMES``); here they are made to
take over from the first pulse, so that short random programs go through them.
"""

from __future__ import annotations

import math
import os
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import electrostim as es
import electrostim.waveform._dose as dose_module
import electrostim.waveform._timing as timing
from electrostim.waveform._schedule import SHAPE_RECT, SHAPE_SINE, SHAPE_SPIKE, PulseChunk

from .test_dose import drifting_programs
from .test_envelope_property import programs

#: figures that are sums over the session (added in order by the kernel, pairwise by NumPy: equal to rounding,
#: which for a sum of n terms in order is within n ulp, n up to a chunk of 131 072 pulses)
SUM_REL = 1e-10
SESSION_SUMS = {"net_charge_session_uc", "rms_current_session_ma", "average_current_session_ma",
                "average_power_session_mw"}


def _arrays_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dose_module, "_kernels", lambda: None)
    monkeypatch.setattr(timing, "KERNEL_MIN_TIMES", math.inf)
    monkeypatch.setattr(timing, "LOADED_KERNEL_MIN_TIMES", math.inf)
    monkeypatch.setattr(dose_module, "LOADED_KERNEL_MIN_TIMES", math.inf)
    monkeypatch.setattr(dose_module, "PARALLEL_MIN_EVENTS", math.inf)


def _kernels_throughout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dose_module, "KERNEL_MIN_PULSES", 0)
    monkeypatch.setattr(timing, "KERNEL_MIN_TIMES", 1)
    monkeypatch.setattr(timing, "LOADED_KERNEL_MIN_TIMES", 1)
    monkeypatch.setattr(dose_module, "PARALLEL_MIN_EVENTS", 0)  # and the outputs side by side


def _assert_same_figures(arrays: es.Dose, kernels: es.Dose) -> None:
    for a, b in zip(arrays.outputs, kernels.outputs, strict=True):
        x, y = a.model_dump(), b.model_dump()
        for key, value in x.items():
            if key in SESSION_SUMS:
                assert y[key] == pytest.approx(value, rel=SUM_REL, abs=1e-15), (a.label, key)
            elif key == "electrodes":
                for pa, pb in zip(value, y[key], strict=True):
                    for k, v in pa.items():
                        assert pb[k] == (pytest.approx(v, rel=SUM_REL, abs=1e-15) if "session" in k else v), (a.label, k)
            else:
                assert y[key] == value, (a.label, key)


def _both_ways(program: es.Program) -> tuple[es.Dose, es.Dose]:
    with pytest.MonkeyPatch.context() as mp:
        _arrays_only(mp)
        arrays = es.compute_dose(program, level="max")
    with pytest.MonkeyPatch.context() as mp:
        _kernels_throughout(mp)
        kernels = es.compute_dose(program, level="max")
    return arrays, kernels


pytestmark = pytest.mark.skipif(dose_module._kernels() is None, reason="kernels are plain Python here (no numba)")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(program=programs(), duration=st.sampled_from([3.0, 40.0, 200.0]))
def test_property_the_kernels_give_the_figures_of_the_array_forms(program, duration):
    program = program.model_copy(update={"session_duration_s": duration})
    _assert_same_figures(*_both_ways(program))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=drifting_programs())
def test_property_drifting_programs_get_the_same_bounds_through_the_kernels(program):
    _assert_same_figures(*_both_ways(program))


@pytest.mark.parametrize("preset", ["ifc-knee", "tens-mixed-frequency", "russian-current", "nmes-quadriceps-tka"])
def test_presets_get_the_same_figures_through_the_kernels(preset):
    _assert_same_figures(*_both_ways(es.load_program(preset)))


def _chunks(draw: st.DrawFn) -> tuple[list[PulseChunk], float]:
    """Pulses at intervals that cross the rate bands' edges (alone, in trains, in bursts), with random terms, cut
    into random chunks."""
    n = draw(st.integers(1, 3000))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    intervals = rng.choice([1 / 2.0, 1 / 399.0, 1 / 400.0, 1 / 401.0, 1 / 1500.0, 1 / 1501.0, 1 / 5000.0, 0.7, 1.0],
                           size=n)
    t = np.cumsum(intervals) - intervals[0] + draw(st.sampled_from([0.0, 3.25, 86000.0]))
    shape = draw(st.sampled_from([SHAPE_RECT, SHAPE_SINE, SHAPE_SPIKE]))
    a1 = rng.uniform(-100, 100, n) * draw(st.sampled_from([1.0, 0.0, 1e-9]))
    a2 = np.where(rng.random(n) < 0.5, -a1, rng.uniform(-50, 50, n))
    w1, w2 = rng.uniform(1, 500, n), rng.uniform(0, 500, n)
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, draw(st.integers(0, 12))), replace=False)) if n > 1 else []
    bounds = [0, *(int(c) for c in cuts), n]
    chunks = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        m = hi - lo
        chunks.append(PulseChunk(float(t[lo]), float(t[hi - 1]) + 1e-6, t[lo:hi].copy(), np.zeros(m, np.int16),
                                 np.full(m, shape, np.uint8), a1[lo:hi].copy(), w1[lo:hi].copy(), np.zeros(m),
                                 a2[lo:hi].copy(), w2[lo:hi].copy()))
    return chunks, draw(st.sampled_from([1.0, 0.5, 0.01]))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_property_an_output_streamed_through_the_kernels_ends_in_the_same_state(data):
    """Chunk by chunk, the accumulator's every figure (windows, bands, maxima, intervals, its tail) is the array
    form's; its sums agree to rounding."""
    chunks, window_s = _chunks(data.draw)
    skip = data.draw(st.booleans())
    states = []
    for kernels in (False, True):
        with pytest.MonkeyPatch.context() as mp:
            (_kernels_throughout if kernels else _arrays_only)(mp)
            acc = dose_module._OutputAccumulator(window_s)
            acc.skip_first_window = skip
            for i, c in enumerate(chunks):
                acc.add(c, final=i == len(chunks) - 1)
            states.append(acc)
    a, k = states
    for name in ("count", "peak", "max_q", "max_net", "net_extreme", "max_i2t", "min_dt", "last_t", "last_gap",
                 "win_min_net", "skip_first_window"):
        assert getattr(k, name) == getattr(a, name), name
    for name in ("win_max", "band_max", "tail_t", "tail_v", "tail_b"):
        assert np.array_equal(getattr(k, name), getattr(a, name)), name
    for name in ("sum_net", "sum_i2t", "sum_absq"):
        assert getattr(k, name) == pytest.approx(getattr(a, name), rel=SUM_REL, abs=1e-12), name


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), duty=st.booleans(), profile=st.sampled_from(["triangle", "sawtooth"]),
       periodic=st.booleans())
def test_property_the_level_kernels_give_the_array_forms_numbers_bit_for_bit(seed, duty, profile, periodic):
    """The levels (sweep factors, duty envelopes) and a swept rate's event times and phases, through the kernels
    and the array forms: the same numbers."""
    rng = np.random.default_rng(seed)
    n = 5000
    t = np.sort(rng.uniform(-5.0, 86400.0, n)) if seed % 2 else np.arange(n) / rng.uniform(1.0, 12000.0)
    t[:50] = np.round(t[:50] * 4) / 4  # on the edges of cycles, ramps and sweeps
    sweep = types.SimpleNamespace(low_percent=float(rng.choice([0.0, 40.0, rng.uniform(0, 100)])),
                                  period_s=float(rng.choice([6.7654321, 1.0, 0.25, rng.uniform(0.01, 100)])),
                                  profile=profile, phase_deg=float(rng.choice([0.0, 90.0, rng.uniform(0, 360)])))
    levels = dict(session_s=float(rng.choice([86400.0, 30.0])), ramp_up_s=float(rng.choice([0.0, 1.0, 0.25])),
                  ramp_down_s=float(rng.choice([0.0, 2.0, 1e-301])), on_s=float(rng.choice([7.0, 0.5])) if duty else None,
                  off_s=float(rng.choice([6.1234567, 0.25, 0.0])), offset_s=float(rng.choice([0.0, 1.0, -0.75])),
                  periodic_offset=periodic)
    segments = [(float(rng.uniform(0.001, 10.0)), float(rng.uniform(1.0, 2000.0)), float(rng.uniform(1.0, 2000.0)))
                for _ in range(int(rng.choice([1, 2, 3, 12])))]
    clock = timing.PiecewiseClock(segments)
    k = np.sort(rng.uniform(0.0, 1e7, n)) if seed % 3 else np.arange(n) * clock.phi_period / 97.0
    found = []
    for kernels in (False, True):
        with pytest.MonkeyPatch.context() as mp:
            (_kernels_throughout if kernels else _arrays_only)(mp)
            found.append((timing.sweep_factor(sweep, t), timing.duty_envelope(t, **levels), clock.time_of(k),
                          clock.phase(t)))
    for a, b in zip(*found, strict=True):
        assert np.array_equal(a, b)


def test_an_interruption_stops_outputs_dosed_side_by_side_at_their_next_chunk(monkeypatch):
    """The kind: Ctrl-C or SIGTERM on ``check`` of a day-long program on several outputs took 16-46 s to act, the
    caller waiting for every output's dose to finish. Once the caller is interrupted, each worker stops at its
    next chunk: after the interruption, at most the chunk each worker was in is generated."""
    import concurrent.futures
    import threading

    from electrostim.waveform._schedule import _OutputGenerator

    program = es.validate_program({
        "schema_version": 1, "id": "many", "name": "eight long outputs", "modality": "tens",
        "session_duration_s": 86400.0,
        "channels": [{"label": f"ch-{i + 1}", "electrodes": [{"site": "quadriceps", "width_cm": 5, "height_cm": 5}] * 2,
                      "stimulus": {"pulse": {"shape": "symmetric-biphasic", "pulse_width_us": 200.0,
                                             "frequency_hz": 150.0 + i},
                                   "modulation": [{"kind": "amplitude-sweep", "low_percent": 40.0,
                                                   "period_s": 6.7654321}],
                                   "amplitude": {"default_ma": 10.0, "max_ma": 20.0}}} for i in range(4)]})
    monkeypatch.setattr(dose_module, "PARALLEL_MIN_EVENTS", 0)
    started, interrupted = threading.Event(), threading.Event()
    after: list[str] = []
    window = _OutputGenerator.window

    def counted(self, *args, **kwargs):
        if interrupted.is_set():
            after.append(threading.current_thread().name)
        started.set()
        return window(self, *args, **kwargs)

    def interrupted_result(self, timeout=None):
        started.wait(60)
        raise KeyboardInterrupt

    shutdown = concurrent.futures.ThreadPoolExecutor.shutdown

    def shut_down_once_told(self, *args, **kwargs):  # (the workers were told to stop just before: count from here)
        interrupted.set()
        return shutdown(self, *args, **kwargs)

    monkeypatch.setattr(_OutputGenerator, "window", counted)
    monkeypatch.setattr(concurrent.futures.Future, "result", interrupted_result)
    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "shutdown", shut_down_once_told)
    with pytest.raises(KeyboardInterrupt):
        es.compute_dose(program, level="max")
    workers = min(4, os.cpu_count() or 1)
    assert len(after) <= workers, after  # (the whole day is hundreds of chunks an output)
    assert not any(t.name.startswith("electrostim dose") for t in threading.enumerate())


@settings(max_examples=60, deadline=None)
@given(corners=st.lists(st.floats(0.0, 10.0), max_size=300).map(lambda v: np.unique(np.array(v, dtype=float))),
       times=st.lists(st.floats(-1.0, 11.0), max_size=300).map(lambda v: np.sort(np.array(v, dtype=float))),
       on_corners=st.booleans())
def test_property_corners_up_to_each_time_counts_as_a_binary_search(corners, times, on_corners):
    """How many corners of a level lie at or before each pulse's time (``_schedule._corners_up_to``: one pass over
    both where they are about as many, the kernel ``corners_up_to_into``) is what a binary search for each gives,
    times on a corner too."""
    from electrostim.waveform._schedule import _corners_up_to

    if on_corners and corners.shape[0]:
        times = np.sort(np.concatenate([times, corners[::3]]))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(timing, "KERNEL_MIN_TIMES", 1)
        assert np.array_equal(_corners_up_to(corners, times), np.searchsorted(corners, times, side="right"))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400), rates=st.sampled_from(["one", "bands", "near edges"]),
       drifts=st.booleans(), widen=st.booleans())
def test_property_bounding_windows_through_the_kernel_are_those_of_the_array_forms(seed, n, rates, drifts, widen):
    """The windows of a chunk of bounding pulses, each longer by its drift (``extra_s``) and each pulse's rate widened
    to its smoothly changing neighbours' (``widen``), are the same through the kernel ``bound_window_pass`` as
    through the array forms (``_windows_by_arrays`` and ``_widen_bands``): highest window sums, lowest net charge and
    every band's highest window, for rates in one band, across the bands, and near the bands' edges."""
    from electrostim.waveform import _kernels

    rng = np.random.default_rng(seed)
    if rates == "one":
        d = np.full(n, 1.0 / rng.uniform(2.0, 300.0))
    elif rates == "bands":
        d = rng.choice([1 / 50, 1 / 1000, 1 / 3000, 1 / 5000], size=n) * rng.uniform(0.9, 1.1, size=n)
    else:  # intervals within 0.2 % of a band's edge (1/400 s, 1/1500 s), each a little off its neighbours
        d = rng.choice(dose_module._BAND_EDGES, size=n) * rng.uniform(0.998, 1.002, size=n)
    t = np.cumsum(d) * rng.uniform(0.5, 30.0)
    v = np.abs(rng.normal(size=(3, n)))
    v[2] = rng.normal(size=n)
    extra = rng.uniform(0.0, 0.01, size=n) if drifts else np.zeros(n)
    local = np.minimum(np.r_[np.inf, np.diff(t)], np.r_[np.diff(t), np.inf])
    bands = sum((local < edge).view(np.int8) for edge in dose_module._BAND_MIN_INTERVAL_S).astype(np.int8)
    arrays, kernel = dose_module._OutputAccumulator(1.0), dose_module._OutputAccumulator(1.0)
    arrays._windows_by_arrays(t, v, bands, True, None, extra)
    if widen:
        dose_module._widen_bands(arrays, t, v[0], extra)
    assert kernel._bound_windows_in_one_pass(_kernels, t, v, extra, widen) == n
    for name in ("win_max", "band_max", "win_min_net"):
        assert np.allclose(getattr(kernel, name), getattr(arrays, name), rtol=1e-12, atol=0.0), name


def test_a_part_another_thread_is_computing_is_waited_for_and_a_failed_one_computed_again():
    """Within a shared dose (``shared_dose_figures``), a part of a dose that another thread is computing is waited
    for, not computed twice (outputs dosed side by side meet the same phases), and taken scaled by the ratio of the
    currents; where that computation fails, the thread that waited computes it itself."""
    import contextvars
    import threading

    started, release = threading.Event(), threading.Event()
    calls: list[str] = []
    results: dict[str, object] = {}

    def slow_part():
        calls.append("computed")
        started.set()
        assert release.wait(60)
        return np.array([10.0, 1.0, 1.0, 1.0]), [dose_module._OutputAccumulator(1.0)]

    def failing_part():
        calls.append("failed")
        started.set()
        assert release.wait(60)
        raise RuntimeError("no figures")

    def in_thread(name, current, compute):
        def run():
            try:
                results[name] = dose_module._memo(("part",), current, compute)
            except RuntimeError as exc:
                results[name] = exc
        thread = threading.Thread(target=contextvars.copy_context().run, args=(run,))
        thread.start()
        return thread

    for first in (slow_part, failing_part):
        calls.clear()
        results.clear()
        started.clear()
        release.clear()
        with dose_module.shared_dose_figures():
            a = in_thread("a", 2.0, first)
            assert started.wait(60)  # (the first is computing: the second finds it so)
            b = in_thread("b", 4.0, slow_part)
            release.set()
            a.join(60)
            b.join(60)
        if first is slow_part:
            assert calls == ["computed"]
            sums, _ = results["b"]
            assert list(sums) == [10.0, 2.0, 4.0, 2.0]  # (count as it is, charges x2, i2t x4)
        else:
            assert calls == ["failed", "computed"]
            assert isinstance(results["a"], RuntimeError)
            assert list(results["b"][0]) == [10.0, 1.0, 1.0, 1.0]
