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


def _ended(proc: subprocess.Popen[str], timeout_s: float = 60.0) -> tuple[str, str]:
    """What the command printed once it ended; one that runs on past ``timeout_s`` is killed (nothing is left
    running) and fails the test with what it had printed."""
    try:
        return proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the command ran on {timeout_s:g} s after the signal; it printed {out!r} and {err!r}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("delay_s", [0.0, 0.3, 1.2])
def test_a_signal_at_any_moment_ends_run_in_one_line(signum, delay_s, tmp_path: Path):
    db = tmp_path / "s.db"
    proc = subprocess.Popen([*ENTRY, "run", "knee-oa-tens", "--yes", "--json", "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS))
    time.sleep(delay_s)
    proc.send_signal(signum)
    out, err = _ended(proc)
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


#: a child that installs the command's handlers, then gets a signal where Python drops what a handler raises
DROPPED = """
import gc, os, signal, sys, weakref
from electrostim.cli._app import _Signals, install_signal_handlers

install_signal_handlers()
where, times, signum = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def signalled(*_):
    os.kill(os.getpid(), signum)
    sum(range(10))  # (the handler runs at the next instruction: here, inside the callback)


class Dropped:
    def __del__(self):
        if where == "del":
            signalled()


things = [Dropped() for _ in range(times)]
refs = [weakref.ref(thing, signalled) for thing in things] if where == "weakref" else []
if where == "cycle":
    for thing in things:
        thing.me = thing  # a cycle: only the collector frees it, and runs __del__ there
    Dropped.__del__ = lambda self: signalled()
    del thing
try:
    del things
    gc.collect()
    for _ in range(10**6):
        pass
    print("ran on after", _Signals.seen)
except KeyboardInterrupt:
    print("interrupted by", _Signals.seen)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("where", ["weakref", "del", "cycle"])
@pytest.mark.parametrize("times", [1, 3])
def test_a_signal_whose_interruption_python_drops_still_interrupts(where, times, signum):
    """The kind: SIGTERM came while a lazily imported module's lock was released, inside its weakref callback;
    Python printed "Exception ignored ... KeyboardInterrupt" and ``run`` went on with its session until killed.
    Wherever Python drops a handler's interruption (a weakref callback, a ``__del__``, the cycle collector), and
    however many times in a row, it comes again where it unwinds the command, and nothing is printed for it."""
    proc = subprocess.run([sys.executable, "-c", DROPPED, where, str(times), str(int(signum))],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == f"interrupted by {int(signum)}", (proc.stdout, proc.stderr)
    assert proc.stderr == "", proc.stderr


def test_other_errors_python_drops_are_still_reported(capsys):
    """Only a signal's interruption is raised again; any other error Python drops is reported as before."""
    import weakref

    from electrostim.cli import _app

    saved = sys.unraisablehook
    try:
        _app.install_signal_handlers()
        assert sys.unraisablehook is _app._on_unraisable
        seen: list[BaseException | None] = []
        _app._Signals.previous_hook = lambda u: seen.append(u.exc_value)  # type: ignore[assignment]

        class Thing:
            pass

        def fails(_: object) -> None:
            raise ValueError("a callback's own error")

        thing = Thing()
        ref = weakref.ref(thing, fails)
        del thing
        assert ref() is None
        assert [type(e) for e in seen] == [ValueError]
    finally:
        sys.unraisablehook = saved
        for s in SIGNALS:
            signal.signal(s, signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL)
