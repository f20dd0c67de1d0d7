"""The electrostim command: output, JSON, exit codes, and bad input without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
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


def test_console_script_has_no_traceback_on_bad_input():
    r = subprocess.run([sys.executable, "-m", "electrostim", "check", "knee-oa-tens", "--electrode", "0x5"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "both sides must be > 0" in r.stderr
