"""Figures say what they draw: the amplitude (mA) and the parameters, sweeps over a whole period, a readable
duty cycle, a recruitment axis covering its table, and legends that never cover a curve (matplotlib Agg)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon, Rectangle

import electrostim as es
from electrostim.physics.plots import plot_recruitment, recruitment_range_ma
from electrostim.physics.population import PopulationResult, fibre_classes
from electrostim.waveform import plot_program
from electrostim.waveform._plot import stimulus_summary
from tests.conftest import make_program


def _legend_overlaps(fig) -> list[str]:
    """Every (axes title, line label) whose drawn extent a legend of that axes covers."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    found = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        if box.overlaps(ax.get_window_extent(renderer)):
            found.append(f"{ax.get_title()}: legend inside the axes")
        for line in ax.get_lines():
            if len(line.get_xdata()) and box.overlaps(line.get_window_extent(renderer)):
                found.append(f"{ax.get_title()}: {line.get_label()}")
    return found


def _axes_titled(fig, needle: str):
    return [ax for ax in fig.axes if needle in ax.get_title()]


# --------------------------------------------------------------------------- the program figure


PRESETS = ["nmes-quadriceps-tka", "spasm-relief", "recovery-massage", "tens-mixed-frequency", "russian-current", "tens-burst",
           "ifc-knee"]


@pytest.fixture(scope="module")
def figures():
    figs = {pid: plot_program(es.load_program(pid)) for pid in PRESETS}
    yield figs
    for f in figs.values():
        plt.close(f)


@pytest.mark.parametrize("pid", PRESETS)
def test_program_figure_title_gives_the_amplitude_in_ma_and_the_parameters(figures, pid):
    prog = es.load_program(pid)
    title = " ".join(figures[pid]._suptitle.get_text().split())  # long lines are wrapped to the figure's width
    for ch in prog.channels:
        assert f"{ch.label} {ch.stimulus.amplitude.default_ma:g} mA" in title, title
        assert stimulus_summary(ch.stimulus) in title
    assert "default level" in title
    assert all(len(line) <= 130 for line in figures[pid]._suptitle.get_text().splitlines())


def test_program_figure_at_max_level_says_the_max_amplitude():
    prog = es.load_program("nmes-quadriceps-tka")
    fig = plot_program(prog, level="max")
    title = fig._suptitle.get_text()
    plt.close(fig)
    assert "max level" in title and "quadriceps 100 mA" in title and "30 mA" not in title


@pytest.mark.parametrize("pid", PRESETS)
def test_no_legend_covers_a_curve(figures, pid):
    assert _legend_overlaps(figures[pid]) == []


@pytest.mark.parametrize("pid, kind, period_s", [
    ("spasm-relief", "pulse rate", 20.0),  # 2-10 Hz over 20 s
    ("tens-mixed-frequency", "pulse rate", 6.0),  # 4 and 100 Hz, 3 s each
    ("recovery-massage", "amplitude sweep", 10.0),  # 70-100 % over 10 s
    ("ifc-knee", "beat rate", 6.0),  # 80-100 Hz over 6 s
])
def test_sweeps_have_a_panel_over_a_whole_period(figures, pid, kind, period_s):
    axes = _axes_titled(figures[pid], "one whole period")
    assert len(axes) == 1
    ax = axes[0]
    assert kind in ax.get_title() and ax.get_xlabel().endswith("(s)")
    lo, hi = ax.get_xlim()
    assert lo <= 0.0 and hi >= period_s
    x = np.concatenate([line.get_xdata() for line in ax.get_lines()])
    y = np.concatenate([line.get_ydata() for line in ax.get_lines()])
    assert x.min() <= 0.05 * period_s and x.max() >= 0.95 * period_s  # the curve spans the period
    assert y.max() > 1.2 * y.min() > 0  # and shows the sweep


def test_frequency_sweep_panel_reaches_both_ends_of_the_sweep(figures):
    ax = _axes_titled(figures["spasm-relief"], "one whole period")[0]
    rate = ax.get_lines()[0].get_ydata()
    assert rate.min() == pytest.approx(2.0, rel=0.15) and rate.max() == pytest.approx(10.0, rel=0.05)


def test_width_sweep_has_a_panel_too():
    prog = make_program({"shape": "symmetric-biphasic", "pulse_width_us": 300, "frequency_hz": 50}, duration_s=60.0,
                        modulation=[{"kind": "width-sweep", "low_percent": 50, "period_s": 8}])
    fig = plot_program(prog)
    ax = _axes_titled(fig, "one whole period")[0]
    widths = ax.get_lines()[0].get_ydata()
    assert "pulse-width sweep" in ax.get_title() and ax.get_xlim()[1] >= 8.0
    assert widths.min() == pytest.approx(150.0) and widths.max() == pytest.approx(300.0, rel=1e-3)
    assert _legend_overlaps(fig) == []
    plt.close(fig)


@pytest.mark.parametrize("pid, on_s, off_s", [("nmes-quadriceps-tka", 15.0, 45.0), ("russian-current", 10.0, 50.0)])
def test_duty_cycle_panel_is_in_seconds_with_the_on_phases_shaded(figures, pid, on_s, off_s):
    axes = _axes_titled(figures[pid], "duty cycle")
    assert len(axes) == 1
    ax = axes[0]
    assert ax.get_xlabel() == "time in the cycle (s)" and ax.get_ylabel() == "current (mA)"
    assert ax.get_xlim()[1] >= 2 * (on_s + off_s) - 1e-9
    shaded = [p for p in ax.patches if isinstance(p, Polygon | Rectangle)]
    assert len(shaded) == 2
    for patch, start in zip(shaded, (0.0, on_s + off_s)):
        xs = patch.get_xy()[:, 0] if isinstance(patch, Polygon) else np.array([patch.get_x(), patch.get_x() + patch.get_width()])
        assert xs.min() == pytest.approx(start) and xs.max() == pytest.approx(start + on_s)
    words = [t.get_text() for t in ax.texts]
    assert words.count("on") == 2 and words.count("off") == 2
    env = ax.get_lines()[0]
    prog = es.load_program(pid)
    amp = prog.channels[0].stimulus.amplitude.default_ma
    assert np.max(env.get_ydata()) == pytest.approx(amp) and f"at {amp:g} mA" in ax.get_title()
    # the ramp is visible: the envelope passes through intermediate levels
    assert np.any((env.get_ydata() > 0.2 * amp) & (env.get_ydata() < 0.8 * amp))


def test_session_of_a_duty_cycle_is_in_seconds(figures):
    ax = _axes_titled(figures["nmes-quadriceps-tka"], "session envelope")[0]
    assert ax.get_xlabel() == "time in the session (s)" and ax.get_xlim()[1] == pytest.approx(900.0)


def test_every_program_panel_names_its_units(figures):
    for fig in figures.values():
        for ax in fig.axes:
            assert "(" in ax.get_xlabel() and "(" in ax.get_ylabel(), (ax.get_title(), ax.get_xlabel(), ax.get_ylabel())


# --------------------------------------------------------------------------- the recruitment figure


def _population(thresholds: dict[str, list[float]], amplitude_max_ma: float = 50.0) -> PopulationResult:
    classes = fibre_classes()
    cls = [c for c, ts in thresholds.items() for _ in ts]
    thr = np.array([t for ts in thresholds.values() for t in ts], dtype=float)
    return PopulationResult(
        "knee-oa-tens", "knee", "knee", {c: classes[c] for c in thresholds}, np.array(cls), np.full(thr.size, 9.0),
        np.full(thr.size, 0.002), thr, np.zeros(thr.size, bool), ["a note"],
        {"counts": {c: len(ts) for c, ts in thresholds.items()}, "seed": 3, "gap_cm": 2.5, "fat_thickness_mm": 6.0,
         "tolerance": 0.01, "stimulus": "symmetric-biphasic 200 µs at 100 Hz; ramps 5 s up, 5 s down",
         "amplitude_default_ma": 15.0, "amplitude_max_ma": amplitude_max_ma},
    )


#: a sensory class recruited early, and a motor class with a tail far beyond the bulk (the old axis stopped at
#: 1.3 times the 98th percentile and cut it off)
TAILED = {"a-beta": [4.0, 5.0, 6.0, 7.0, 8.0, 9.0], "motor": [20.0] * 100 + [190.0], "c": [np.nan, np.nan]}


def test_recruitment_axis_covers_the_whole_range_its_table_reports():
    res = _population(TAILED)
    fig = plot_recruitment(res)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    reported = [v for w in res.window().values() for v in (w["onset_ma"], w["half_ma"]) if v is not None]
    assert lo <= 0 and hi >= max(reported) and hi >= np.nanmax(res.threshold_ma) and hi >= 50.0
    assert hi == pytest.approx(recruitment_range_ma(res))
    for cid in res.classes:  # every curve reaches its plateau inside the axes
        curve = next(line for line in ax.get_lines() if line.get_label().startswith(res.classes[cid].name))
        frac = res.recruitment(cid, np.array([hi]))[1][0]
        assert curve.get_ydata()[-1] == pytest.approx(frac * 100)
    assert _legend_overlaps(fig) == []
    plt.close(fig)


def test_recruitment_figure_says_its_parameters_and_amplitudes():
    res = _population(TAILED)
    fig = plot_recruitment(res)
    ax = fig.axes[0]
    assert "knee-oa-tens" in ax.get_title() and "knee" in ax.get_title() and ax.get_xlabel() == "peak current of the channel (mA)"
    box = "\n".join(t.get_text() for t in ax.texts)
    for needle in ("200 µs at 100 Hz", "fat 6 mm", "2.5 cm", "seed 3", "recruited by 200 mA", "pain 0 %",
                   "program amplitude 15 mA (max 50 mA)"):
        assert needle in box, (needle, box)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "program max 50 mA" in labels and any(lbl.startswith("sensory onset") for lbl in labels)
    plt.close(fig)


def test_recruitment_axis_holds_the_program_amplitude_when_fibres_fire_early():
    res = _population({"a-beta": [2.0, 3.0, 4.0]}, amplitude_max_ma=60.0)
    fig = plot_recruitment(res)
    assert fig.axes[0].get_xlim()[1] >= 60.0
    plt.close(fig)


# --------------------------------------------------------------------------- the strength-duration figure


def test_strength_duration_figure_says_the_set_up_and_the_fit():
    from electrostim.physics.fibres.plots import plot_strength_duration

    data = {"model": "mrg", "diameter_um": 10.0, "distance_um": 1000.0, "waveform": "monophasic", "polarity": "cathodic",
            "conductivity_s_per_m": 0.2, "temperature_c": 37.0, "nodes": 51, "dt_us": 1.0,
            "points": [{"pulse_width_us": pw, "threshold_ma": 0.05 * (1 + 300 / pw)} for pw in (20, 50, 100, 200, 500, 1000)],
            "rheobase_ma": 0.05, "chronaxie_us": 300.0}
    fig = plot_strength_duration(data)
    ax = fig.axes[0]
    assert "mrg 10 µm" in ax.get_title() and "1000 µm" in ax.get_title()
    assert ax.get_ylabel() == "threshold current (µA)"
    box = "\n".join(t.get_text() for t in ax.texts)
    for needle in ("monophasic", "cathodic", "medium 0.2 S/m", "37 °C", "rheobase 50.0 µA", "chronaxie 300 µs", "thresholds 65.0-800.0 µA"):
        assert needle in box, (needle, box)
    assert _legend_overlaps(fig) == []
    assert all(isinstance(line, Line2D) for line in ax.get_lines())
    plt.close(fig)


def test_a_phase_lists_each_channel_where_the_channels_differ():
    """The reported case: a phase that gave one channel its own pulse width showed only the first channel's."""
    import json

    d = json.loads(es.load_program("tens-mixed-frequency").model_dump_json())
    d.pop("session_duration_s")
    labels = [c["label"] for c in d["channels"]]
    if len(labels) < 2:
        d["channels"].append({**d["channels"][0], "label": "second"})
        labels.append("second")
    d["phases"] = [{"name": "same", "duration_s": 60},
                   {"name": "own", "duration_s": 60, "channels": {labels[1]: {"stimulus": {"pulse": {"pulse_width_us": 400}}}}}]
    p = es.validate_program(d)
    title = " ".join(plot_program(p)._suptitle.get_text().split())
    assert "phase 1/2 'same' (60 s): every channel: " in title
    assert f"{labels[0]}: " in title and f"{labels[1]}: " in title and "400 µs" in title


@pytest.mark.parametrize("text", [r"knee $\undefinedcmd$ pain", r"$\frac{1}{$", "a$b", "c$d$"])
def test_names_and_labels_are_drawn_as_written_never_as_markup(tmp_path, text):
    """The kind: matplotlib read text between two $ as mathematics; a program name, label or phase name made
    `plot` fail or drew something else."""
    import json

    d = json.loads(es.load_program("ems-strength-phases").model_dump_json())
    d["name"] = f"name {text}"
    d["phases"][0]["name"] = text[:40]
    for ph in d["phases"]:
        ph["channels"] = {"q" + text[:30]: ph["channels"]["quadriceps"]}
    d["channels"][0]["label"] = "q" + text[:30]
    p = es.validate_program(d)
    fig = plot_program(p, tmp_path / "x.png")
    assert (tmp_path / "x.png").stat().st_size > 0
    assert f"name {text}" in fig._suptitle.get_text()
    texts = [t for ax in fig.axes for t in ax.texts] + [fig._suptitle]
    assert all(not t.get_parse_math() for t in texts)
