"""Shared helpers: build programs from a few numbers."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import electrostim as es

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True, derandomize=True
)
settings.load_profile("ci" if os.environ.get("CI") else "default")

# A suite started as a background job (``... &`` in a script) inherits SIGINT and SIGQUIT ignored, and so would
# every command it starts (``electrostim run`` then keeps them ignored, as under nohup); the tests that interrupt
# a command expect it started as a terminal starts one.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if hasattr(signal, "SIGQUIT") and signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)

_PG_URL = "postgresql+psycopg://electrostim:electrostim@127.0.0.1/electrostim_test"


def _start_scratch_postgres() -> None:
    """Give the store's PostgreSQL test a scratch database on this machine's PostgreSQL server
    (started here if it is installed but not running); without a server that test is skipped."""
    import shutil
    import subprocess

    if os.environ.get("ELECTROSTIM_TEST_POSTGRES_URL") or not shutil.which("pg_ctlcluster") or not shutil.which("su"):
        return

    def sh(cmd: list[str], stdin: str | None = None) -> bool:
        return subprocess.run(cmd, input=stdin.encode() if stdin else None, capture_output=True, timeout=60).returncode == 0

    try:
        for version in sorted(os.listdir("/etc/postgresql"), reverse=True):
            sh(["pg_ctlcluster", version, "main", "start"])
            break
        role = ("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='electrostim') THEN "
                "CREATE ROLE electrostim LOGIN PASSWORD 'electrostim'; END IF; END $$;")
        if not sh(["su", "postgres", "-c", "psql -q -v ON_ERROR_STOP=1"], stdin=role):
            return
        sh(["su", "postgres", "-c", "createdb -O electrostim electrostim_test"])
        os.environ["ELECTROSTIM_TEST_POSTGRES_URL"] = _PG_URL
    except (OSError, subprocess.SubprocessError):
        return


_start_scratch_postgres()


def pad(site: str = "quadriceps", w: float = 5.0, h: float = 5.0, side: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"site": site, "shape": "rectangle", "width_cm": w, "height_cm": h}
    if side:
        d["side"] = side
    return d


def make_program(
    pulse: dict[str, Any],
    *,
    amplitude_ma: float = 20.0,
    max_ma: float | None = None,
    duration_s: float = 10.0,
    channels: int = 1,
    modality: str = "nmes",
    pads: list[dict[str, Any]] | None = None,
    **stimulus: Any,
) -> es.Program:
    """A validated program with ``channels`` identical channels. Under a frequency modulation, which sets the rate,
    a nominal rate (pulse, burst or beat) outside its range is set to the nearest end of it (a program must have
    it inside)."""
    max_ma = amplitude_ma if max_ma is None else max_ma
    pulse, stimulus = _rate_within_modulation(dict(pulse), dict(stimulus))
    n_pads = 4 if pulse.get("shape") == "interferential" and pulse.get("mode", "quadripolar") == "quadripolar" else 2
    data = {
        "id": "test-program",
        "name": "test program",
        "modality": modality,
        "session_duration_s": duration_s,
        "stimulus": {"pulse": pulse, "amplitude": {"default_ma": amplitude_ma, "max_ma": max_ma}, **stimulus},
        "channels": [
            {"label": f"ch{i + 1}", "electrodes": pads or [pad() for _ in range(n_pads)]} for i in range(channels)
        ],
    }
    return es.validate_program(data)


def _rate_within_modulation(pulse: dict[str, Any], stimulus: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    fm = next((m for m in stimulus.get("modulation", []) if m.get("kind") in
               ("frequency-sweep", "random-frequency", "alternating-frequency")), None)
    if fm is None:
        return pulse, stimulus
    low, high = ((min(fm["frequencies_hz"]), max(fm["frequencies_hz"])) if "frequencies_hz" in fm
                 else (fm["low_hz"], fm["high_hz"]))
    if "burst" in stimulus:
        burst = dict(stimulus["burst"])
        burst["burst_frequency_hz"] = min(max(burst["burst_frequency_hz"], low), high)
        stimulus["burst"] = burst
    else:
        key = "beat_frequency_hz" if pulse.get("shape") == "interferential" else "frequency_hz"
        if key in pulse:
            pulse[key] = min(max(pulse[key], low), high)
    return pulse, stimulus


@pytest.fixture
def programs_dir(tmp_path, monkeypatch):
    """An empty user-program folder on the search path."""
    d = tmp_path / "programs"
    d.mkdir()
    monkeypatch.setenv("ELECTROSTIM_PROGRAM_PATH", str(d))
    return d


def first_line(proc) -> str:
    """The first line a child writes on its stdout pipe, read byte by byte: nothing after it is taken from the pipe,
    so ``proc.communicate()`` later gets the rest whole (a buffered ``readline()`` would keep some of it)."""
    raw = b""
    fd = proc.stdout.fileno()
    while not raw.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        raw += byte
    return raw.decode()
