"""The electrostim command: output, JSON, exit codes, and bad input without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from electrostim.cli import app

from .test_library import REQUIRED

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_programs_list_and_show():
    r = run("programs", "list", "--json")
    assert r.exit_code == 0
    ids = {p["id"] for p in json.loads(r.stdout)}
    assert set(REQUIRED) <= ids
    r = run("programs", "show", "nmes-quadriceps-tka", "--json")
    assert json.loads(r.stdout)["channels"][0]["stimulus"]["pulse"]["pulse_width_us"] == 250
    r = run("programs", "show", "knee-oa-tens")
    assert r.exit_code == 0 and "Evidence (low)" in r.stdout and "Placement" in r.stdout


def test_check_json_carries_verdict_reasons_and_dose():
    r = run("check", "nmes-quadriceps-tka", "--device", "rehastim2", "--json")
    assert r.exit_code == 3  # needs confirmation
    d = json.loads(r.stdout)
    assert d["verdict"] == "needs_confirmation"
    assert {"rule", "source", "message"} <= set(d["reasons"][0])
    out = d["dose"]["outputs"][0]
    for key in ("max_phase_charge_uc", "net_charge_session_uc", "rms_current_ma", "average_power_mw",
                "max_energy_per_pulse_mj", "peak_current_ma"):
        assert key in out
    e = out["electrodes"][0]
    for key in ("rms_current_density_ma_per_cm2", "average_power_density_w_per_cm2", "charge_density_uc_per_cm2", "shannon_k"):
        assert key in e


def test_check_options_and_exit_codes(tmp_path):
    assert run("check", "knee-oa-tens").exit_code == 0
    r = run("check", "knee-oa-tens", "--electrode", "0.3x0.3", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["verdict"] == "refused"
    r = run("check", "knee-oa-tens", "--amplitude-ma", "30", "--json")
    assert json.loads(r.stdout)["dose"]["outputs"][0]["amplitude_ma"] == 30
    r = run("check", "tens-conventional", "--site", "anterior-neck", "--json")
    assert any(x["rule"] == "site.anterior-neck" for x in json.loads(r.stdout)["reasons"])
    pat = tmp_path / "p.toml"
    pat.write_text('id = "P-7"\nconditions = ["pacemaker"]\n')
    r = run("check", "knee-oa-tens", "--patient", str(pat), "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["patient"] == "P-7"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["check", "no-such-program"], "No program 'no-such-program'"),
        (["check", "knee-oa-tens", "--electrode", "five"], "allowed WxH"),
        (["check", "knee-oa-tens", "--site", "elbow"], "Unknown body site 'elbow'"),
        (["check", "knee-oa-tens", "--amplitude-ma", "-3"], "--amplitude-ma"),
        (["check", "knee-oa-tens", "--patient", "/nonexistent/p.toml"], "no such file"),
        (["export", "knee-oa-tens", "-o", "x.xls"], "allowed 'csv', 'npz'"),
        (["plot", "knee-oa-tens", "-o", "x.gif"], "allowed '.png', '.svg', '.pdf'"),
        (["export", "knee-oa-tens", "-o", "x.csv", "--start-s", "99999"], "'--start-s': allowed a finite number 0 <= x <= 2400"),
    ],
)
def test_bad_input_exits_2_with_one_clear_message(args, needle):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert "Traceback" not in r.output


def test_bad_patient_file(tmp_path):
    pat = tmp_path / "p.toml"
    pat.write_text('conditions = ["dragon-pox"]\n')
    r = runner.invoke(app, ["check", "knee-oa-tens", "--patient", str(pat)])
    assert r.exit_code == 2 and "conditions[0].condition" in r.output and "dragon-pox" in r.output


def test_plot_and_export(tmp_path):
    png = tmp_path / "f.png"
    assert run("plot", "tens-burst", "-o", str(png)).exit_code == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    npz = tmp_path / "w.npz"
    r = run("export", "nmes-quadriceps-tka", "-o", str(npz), "--start-s", "5", "--duration-s", "0.1",
            "--sample-rate-hz", "100000", "--level", "max", "--json")
    assert r.exit_code == 0
    with np.load(npz) as z:
        assert z["current_ma"].shape == (1, 10000) and z["current_ma"].max() == 100.0
    csv = tmp_path / "w.csv"
    assert run("export", "knee-oa-tens", "-o", str(csv), "--format", "csv", "--duration-s", "0.05",
               "--start-s", "10").exit_code == 0
    rows = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert rows.shape == (5000, 2)
    assert csv.read_text().splitlines()[0] == "time_s,knee-1_ma"


def test_export_leaves_nothing_half_written(tmp_path):
    import electrostim as es

    target = tmp_path / "w.csv"
    calls = []

    def boom(frac):
        calls.append(frac)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        es.export_waveform(es.Schedule(es.load_program("knee-oa-tens")), target, duration_s=3.0, progress=boom)
    assert calls and not target.exists() and list(tmp_path.iterdir()) == []


@settings(max_examples=25, deadline=None)
@given(start=st.floats(0, 2400), duration=st.floats(0.001, 2400))
def test_an_export_window_is_written_whole_or_refused_never_clipped(tmp_path_factory, start, duration):
    """The kind: a window reaching past the session's end was clipped silently (a 20 s request wrote 5 s)."""
    import electrostim as es
    from electrostim.errors import OptionError

    folder = tmp_path_factory.mktemp("w")
    sched = es.Schedule(es.load_program("knee-oa-tens"))  # 2400 s
    target = folder / "w.csv"
    try:
        es.export_waveform(sched, target, start_s=start, duration_s=duration, sample_rate_hz=20.0)
    except OptionError as exc:
        assert start + duration > 2400 or start >= 2400 or round(duration * 20.0) < 1, exc
        assert not target.exists() and list(folder.iterdir()) == []
        return
    assert start + duration <= 2400 * (1 + 1e-12)
    rows = np.loadtxt(target, delimiter=",", skiprows=1, ndmin=2)
    assert rows.shape[0] == round(duration * 20.0)


def test_export_cli_refuses_a_window_past_the_end_and_states_a_big_size_first(tmp_path):
    r = run("export", "nmes-atrophy", "-o", str(tmp_path / "x.csv"), "--start-s", "1795", "--duration-s", "20")
    assert r.exit_code == 2 and "allowed up to 5 s from --start-s 1795, but got 20" in r.output
    assert list(tmp_path.iterdir()) == []
    r = run("export", "knee-oa-tens", "-o", str(tmp_path / "x.npz"), "--duration-s", "100", "--sample-rate-hz", "1e7")
    assert r.exit_code == 2 and "export to .csv, which is written block by block" in r.output
    assert "writing" not in r.output and list(tmp_path.iterdir()) == []
    r = run("export", "knee-oa-tens", "-o", str(tmp_path / "x.csv"), "--duration-s", "6", "--sample-rate-hz", "1e5")
    assert r.exit_code == 0 and "writing up to about 15 MB" in r.output
    assert (tmp_path / "x.csv").stat().st_size <= 15e6


def test_console_script_has_no_traceback_on_bad_input():
    r = subprocess.run([sys.executable, "-m", "electrostim", "check", "knee-oa-tens", "--electrode", "0x5"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "both sides must be > 0" in r.stderr


# --------------------------------------------------------------------------- usage errors: one line, exit code 2


def _walk(command, path=()):
    """Every command of the CLI with its path, and its parameters."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


def _int_params():
    from typer.main import get_command

    for path, command in _walk(get_command(app)):
        for param in command.params:
            desc = getattr(param, "type_descriptor", None)
            if desc is not None and desc.annotation is int:
                yield path, param


#: Every integer option and argument of the CLI: the arguments before it, how it is given, and its range.
INT_OPTIONS = {
    "sessions list --limit": (["sessions", "list"], ["--limit"], 1, 1_000_000),
    "sessions show SESSION_ID": (["sessions", "show"], [], 1, 2**31 - 1),
    "sessions show --tail": (["sessions", "show", "1"], ["--tail"], 0, 2**31 - 1),
    "sessions export SESSION_ID": (["sessions", "export", "-o", "x.csv"], [], 1, 2**31 - 1),
    "fibers threshold --nodes": (["fibers", "threshold"], ["--nodes"], 5, 1000),
    "fibers recruitment --fibers": (["fibers", "recruitment", "knee-oa-tens"], ["--fibers"], 4, 100_000),
    "fibers recruitment --seed": (["fibers", "recruitment", "knee-oa-tens"], ["--seed"], 0, 2**32 - 1),
    "fibers window --fibers": (["fibers", "window", "knee-oa-tens"], ["--fibers"], 4, 100_000),
    "fibers window --seed": (["fibers", "window", "knee-oa-tens"], ["--seed"], 0, 2**32 - 1),
}


def test_every_integer_option_has_a_stated_range():
    found = {}
    for path, param in _int_params():
        label = param.opts[0] if param.param_type_name == "option" else param.name.upper()
        label = next((o for o in param.opts if o.startswith("--")), label)
        found[" ".join((*path, label))] = (param.min, param.max)
    assert found == {name: (lo, hi) for name, (_, _, lo, hi) in INT_OPTIONS.items()}


def _usage_error(args, needle: str | None = None) -> str:
    r = runner.invoke(app, list(args))
    assert r.exit_code == 2, (args, r.output)
    assert r.stdout == "" and "Traceback" not in r.output, (args, r.output)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr)
    assert "╭" not in r.stderr and "Usage:" not in r.stderr
    if needle is not None:
        assert needle in lines[0], (args, lines[0])
    return lines[0]


@settings(max_examples=200, deadline=None)
@given(option=st.sampled_from(sorted(INT_OPTIONS)), data=st.data())
def test_any_out_of_range_or_non_integer_value_is_one_line_exit_2(tmp_path_factory, option, data):
    """Any integer outside an option's range (10**30 too: no SQLite overflow), or any non-integer: one line, exit 2."""
    before, flag, lo, hi = INT_OPTIONS[option]
    value = data.draw(st.one_of(
        st.integers(max_value=lo - 1), st.integers(min_value=hi + 1), st.sampled_from([-(10**30), 10**30, 2**63]),
    ).map(str) | st.sampled_from(["1e20", "abc", "1.5", "", "0x10", "nan", "inf", "--"]), label="value")
    db = tmp_path_factory.mktemp("db") / "none.db"
    given_as = flag or ["--"]  # an argument after `--`, so that -1 is not taken for an option
    line = _usage_error([*before, "--db", str(db), *given_as, value] if before[0] == "sessions" else [*before, *given_as, value])
    name = flag[0] if flag else "SESSION_ID"
    assert line == f"error: Invalid value for '{name}': allowed a whole number {lo} <= x <= {hi}, but got {value!r}.", line
    assert not db.exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["sessions", "list", "--bogus"],
         "error: No such option of 'electrostim sessions list': allowed --db, --limit, --json, --help, but got '--bogus'."),
        (["sessions", "show"], "error: Missing argument 'SESSION_ID' of 'electrostim sessions show': allowed a whole number "
                               "1 <= x <= 2147483647, but got nothing."),
        (["sessions", "export", "1"], "error: Missing option '--output' of 'electrostim sessions export': allowed file "
                                      "(.csv or .json) in an existing folder, but got nothing."),
        (["sessions", "list", "--limit"], "error: Option '--limit' of 'electrostim sessions list' needs a value: allowed a "
                                          "whole number 1 <= x <= 1000000, but got nothing."),
        (["check", "knee-oa-tens", "--device", "zzz"],
         "error: Invalid value for '--device': allowed 'generic', 'rehastim2', 'p24', 'hvpc', but got 'zzz'."),
        (["plot", "knee-oa-tens", "-o", "f.png", "--level", "loud"],
         "error: Invalid value for '--level': allowed 'default', 'max', but got 'loud'."),
        (["emulate", "foo"], "error: Invalid value for 'DEVICE': allowed 'rehastim2', 'p24', but got 'foo'."),
        (["run", "knee-oa-tens", "--speed", "fast"], "error: Invalid value for '--speed': allowed a number, but got 'fast'."),
        (["demo", "--duration-s", "1e"], "error: Invalid value for '--duration-s': allowed a number, but got '1e'."),
        (["emulate", "p24", "--response-delay-ms", "x"],
         "error: Invalid value for '--response-delay-ms': allowed a number, but got 'x'."),
        (["check", "knee-oa-tens", "--amplitude-ma", "ten"],
         "error: Invalid value for '--amplitude-ma': allowed a number, but got 'ten'."),
        (["sessions", "nope"], "error: No such command of 'electrostim sessions': allowed list, show, export, upgrade, "
                               "recover, but got 'nope'."),
        (["nope"], None),
        (["sessions", "show", "1", "2"], "error: Too many arguments for 'electrostim sessions show': allowed electrostim "
                                         "sessions show [OPTIONS] {session_id}, but got also '2'."),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(args, expected):
    line = _usage_error(args)
    if expected is not None:
        assert line == expected
    else:
        assert line.startswith("error: No such command of 'electrostim': allowed ") and "sessions" in line and "'nope'" in line


def test_help_still_works():
    r = runner.invoke(app, ["sessions", "list", "--help"])
    assert r.exit_code == 0 and "Usage" in r.stdout and "--limit" in r.stdout and "1<=x<=1000000" in r.stdout
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "sessions" in r.stdout and "check" in r.stdout
    r = runner.invoke(app, ["sessions"])  # a group without a command: its help, as before
    assert r.exit_code == 2 and "list" in r.output and "recover" in r.output and "error" not in r.output


def test_console_script_usage_error_is_one_line():
    r = subprocess.run([sys.executable, "-m", "electrostim", "sessions", "list", "--limit", str(10**30)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"error: Invalid value for '--limit': allowed a whole number 1 <= x <= 1000000, "
                        f"but got '{10**30}'.\n")


@pytest.mark.parametrize("args", [
    ["plot", "knee-oa-tens", "-o", "{new}/f.png"],
    ["export", "knee-oa-tens", "-o", "{new}/w.csv", "--duration-s", "0.01"],
    ["fibers", "sd", "-o", "{new}/sd.png"],
    ["fibers", "recruitment", "knee-oa-tens", "--fibers", "12", "-o", "{new}/rec.png"],
])
def test_output_files_need_an_existing_folder(tmp_path, args):
    new = tmp_path / "new" / "dir"
    line = _usage_error([a.format(new=new) for a in args], f"the folder {new} does not exist")
    assert "'--output'" in line and not (tmp_path / "new").exists()


_ENDING_SCRIPT = """
import atexit, sys, threading
from electrostim import __main__ as entry
from electrostim.cli import _app
atexit.register(lambda: open(sys.argv[1], "w").write("exit handlers ran"))
sys.stdout.write("x" * 100000)  # (buffered: flushed before the end)
_app._ENDING["streams_only"] = True
release = threading.Event()
if sys.argv[2] == "thread":  # (another thread runs until released)
    threading.Thread(target=release.wait).start()
at_once = _app.ends_at_once()
print(at_once, file=sys.stderr)
release.set()
if at_once:
    entry._end_now(int(sys.argv[2]) if sys.argv[2].isdigit() else sys.argv[2])
raise SystemExit(4)
"""


@pytest.mark.parametrize(("code", "status", "at_once"), [("3", 3, True), ("0", 0, True), ("a reason", 1, True),
                                                        ("thread", 4, False)])
def test_a_command_that_only_printed_ends_at_once_with_everything_said(code, status, at_once, tmp_path):
    """``check`` (it writes only to its standard output and error) ends without tearing the interpreter down (a tenth
    of a second or more once numba's compiler is loaded): its exit handlers run, its buffered output is complete,
    its exit code is the command's (a text said on standard error and 1); not while another thread runs."""
    marker = tmp_path / "ran"
    proc = subprocess.run([sys.executable, "-c", _ENDING_SCRIPT, str(marker), code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == status, proc.stderr
    assert proc.stdout == "x" * 100000
    assert proc.stderr.splitlines()[0] == str(at_once)
    if code == "a reason":
        assert proc.stderr.splitlines()[-1] == "a reason"
    assert marker.read_text() == "exit handlers ran"


def test_check_ends_with_its_whole_report_and_exit_code():
    """The ``electrostim`` command's ``check`` ends at once (see above) with its whole report and its verdict's exit
    code."""
    proc = subprocess.run([sys.executable, "-m", "electrostim", "check", "tens-conventional", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "ok"
