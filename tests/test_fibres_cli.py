"""``electrostim fibers``: progress on stderr for every long computation (never on stdout), Ctrl-C stops cleanly."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from rich.console import Console
from typer.testing import CliRunner

from electrostim.cli import _fibers, app

runner = CliRunner()


@pytest.fixture
def terminal(monkeypatch):
    """stderr as a terminal: the Rich bar is drawn into this buffer."""
    buf = io.StringIO()
    monkeypatch.setattr(_fibers, "err", Console(file=buf, force_terminal=True, width=120, highlight=False))
    return buf


def test_threshold_json_is_clean_and_the_bar_goes_to_stderr(terminal):
    r = runner.invoke(app, ["fibers", "threshold", "--model", "sweeney", "--nodes", "11", "--diameter-um", "10,12", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)  # stdout is exactly the JSON
    assert [row["diameter_um"] for row in data["results"]] == [10.0, 12.0]
    drawn = terminal.getvalue()
    assert "thresholds" in drawn and "2/2" in drawn


def test_without_a_terminal_progress_is_plain_lines_on_stderr(monkeypatch):
    monkeypatch.setattr(_fibers, "PLAIN_EVERY_S", 0.0)
    r = runner.invoke(app, ["fibers", "cv", "--model", "sweeney", "--diameter-um", "8,10", "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["results"]) == 2
    lines = r.stderr.splitlines()
    assert "fibres: 2/2 after" in lines[-1] and all(line.startswith("fibres: ") for line in lines)


def test_short_runs_without_a_terminal_print_no_progress():
    r = runner.invoke(app, ["fibers", "cv", "--model", "sweeney", "--diameter-um", "10", "--json"])
    assert r.exit_code == 0 and r.stderr == ""


def _interrupting(report_first: bool):
    def fake(*args, progress=None, field_progress=None, **kwargs):
        if report_first:
            (field_progress or progress)(3, 10)
        raise KeyboardInterrupt

    return fake


@pytest.mark.parametrize("argv, target", [
    (["fibers", "threshold", "--diameter-um", "8,10", "--json"], "electrostim.physics.fibres.point_source_thresholds"),
    (["fibers", "sd", "--json"], "electrostim.physics.fibres.strength_duration"),
    (["fibers", "recruitment", "knee-oa-tens", "--fibers", "12", "--json"], "electrostim.physics.population.population_thresholds"),
    (["fibers", "window", "knee-oa-tens", "--fibers", "12"], "electrostim.physics.population.population_thresholds"),
])
def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, argv, target):
    monkeypatch.setattr(target, _interrupting(report_first=True))
    r = runner.invoke(app, argv)
    assert r.exit_code == 130, r.output
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted: ") and lines[0].endswith("nothing was written."), lines
    assert "3/10" in lines[0]  # where it stopped
    assert "Traceback" not in r.output


def test_ctrl_c_on_a_terminal_clears_the_bar_and_leaves_one_line(monkeypatch, terminal):
    monkeypatch.setattr("electrostim.physics.population.population_thresholds", _interrupting(report_first=True))
    r = runner.invoke(app, ["fibers", "recruitment", "knee-oa-tens", "--fibers", "12", "--json"])
    assert r.exit_code == 130 and r.stdout == ""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())  # without the terminal's control codes
    lines = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
    assert lines[-1].startswith("interrupted: the population stopped at field under the pads: 3/10 points")
    assert sum("interrupted" in line for line in lines) == 1


@pytest.mark.slow
def test_ctrl_c_stops_a_real_population_run():
    """SIGINT to a running ``fibers recruitment``: it stops within seconds, exit 130, one line, no traceback."""
    env = {k: v for k, v in os.environ.items() if k != "ELECTROSTIM_DEBUG"}
    proc = subprocess.Popen([sys.executable, "-m", "electrostim", "fibers", "recruitment", "knee-oa-tens", "--fibers", "12",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(8.0)  # imports, the program, the pads: then the field and the search (tens of seconds)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert [line for line in lines if "interrupted" in line] == [lines[-1]] and lines[-1].startswith("interrupted")
    assert took < 60, took
