"""Ctrl-C, SIGTERM and SIGHUP at any moment of ``electrostim run``, from the first instant of its entry point.

The child starts with the three signals blocked (as a launcher does that must not lose
one), so a signal sent while the interpreter itself starts waits until the entry point
has its handlers in place and unblocks them: every delay below, 0 included, tests the
command and not the race with the interpreter's start.

Before the session starts (while the command line is imported, the program loaded and
assessed) a signal ends the command with one line and 128 + the signal's number, and
nothing is left running; once the session runs, the session handles it (output zero,
then the record, ``tests/test_signals.py``) and ends with the same code.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from electrostim.store import Store

ENTRY = [sys.executable, "-c", "from electrostim.__main__ import main; main()"]
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("delay_s", [0.0, 0.3, 1.2])
def test_a_signal_at_any_moment_ends_run_in_one_line(signum, delay_s, tmp_path: Path):
    db = tmp_path / "s.db"
    proc = subprocess.Popen([*ENTRY, "run", "knee-oa-tens", "--yes", "--json", "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS))
    time.sleep(delay_s)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, (proc.returncode, err)
    assert "Traceback" not in err, err
    assert err.strip() or out.strip(), "the command said nothing about how it ended"
    if db.exists() and out.strip():  # the session had started: it says how it ended, and the record agrees
        summary = json.loads(out)["session"]
        assert summary["state"] == "stopped"
        with Store.open(str(db), readonly=True) as store:
            assert [s.state for s in store.list_sessions()] == ["stopped"]
    elif db.exists():  # the store may have been opened, but no session runs on
        with Store.open(str(db), readonly=True) as store:
            assert all(s.state != "running" for s in store.list_sessions())


def test_a_signal_that_surfaces_as_another_error_still_ends_in_one_line(monkeypatch, capsys):
    """The kind: SIGTERM while a model class was being made reached the command as "RuntimeError: Error calling
    __set_name__" (Python wraps what a descriptor's __set_name__ raises), and run exited 1 with "internal error".
    Once a signal has come, whatever error unwinds the command is its interruption: one line, 128 + its number."""
    from electrostim.cli import _app

    def interrupted_while_making_a_class() -> None:
        _app._Signals.seen = signal.SIGTERM
        raise RuntimeError("Error calling __set_name__ on 'PydanticDescriptorProxy' instance")

    monkeypatch.setattr(_app, "app", interrupted_while_making_a_class)
    monkeypatch.setattr(_app._Signals, "seen", None)
    monkeypatch.setattr(_app._Signals, "reported", False)
    with pytest.raises(SystemExit) as ended:
        _app.main()
    assert ended.value.code == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert err.strip() == "interrupted by SIGTERM" and "internal error" not in err
