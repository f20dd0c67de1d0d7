"""``electrostim run`` SIGKILLed at a random moment: the log stays whole, and the next start marks it interrupted.

Each of 20 runs starts the real command (``python -m electrostim run``) on a shared
SQLite file, waits until the store shows its session, lets it deliver for a random
0.05-1.0 s of wall time (2.5-50 s of session time at ``--speed 50``) and kills it.
The session must then be readable, with event numbers 1..n and no gap, and still
``running``; the start of the next run (the last one: a short final run) must mark it
``interrupted`` by appending exactly one event and changing none of the others.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from electrostim.store import Store

RUNS = 20
RUN = [sys.executable, "-m", "electrostim", "run", "knee-oa-tens", "--yes"]
#: a session far longer than any run lives: 600 s at 50x is 12 s of wall time
KILLED = [*RUN, "--duration-s", "600", "--speed", "50"]
#: the last start: short, as fast as it computes
FINAL = [*RUN, "--duration-s", "2", "--speed", "1e6", "--json"]
START_TIMEOUT_S = 30.0


def _snapshot(log) -> list[tuple]:
    return [(e.seq, e.kind, e.output, e.payload, e.at) for e in log.events]


def _wait_for_session(store: Store, proc: subprocess.Popen, after_id: int) -> int:
    """The id of the session ``proc`` started (the first one newer than ``after_id``), as soon as the store shows it."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        newest = store.list_sessions(limit=1)
        if newest and newest[0].id > after_id:
            return newest[0].id
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"electrostim run ended (exit {proc.returncode}) before its session showed: {err}")
        time.sleep(0.02)
    pytest.fail(f"no session after {START_TIMEOUT_S:g} s")


def _integrity(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_run_leaves_a_whole_log_that_the_next_start_marks_interrupted(tmp_path: Path):
    db = tmp_path / "kill.sqlite"
    Store.open(db).close()  # the schema, so that the test can read while the first run starts
    rng = random.Random(20261122)
    killed: dict[int, list[tuple]] = {}  # session id -> its events when killed
    previous = 0
    with Store.open(db, migrate=False) as store:
        for run in range(RUNS):
            proc = subprocess.Popen([*KILLED, "--db", str(db)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                sid = _wait_for_session(store, proc, previous)
                if previous:
                    # this start marked the run before as interrupted (the test itself never does)
                    assert store.get_session(previous).state == "interrupted", f"run {run}: session {previous}"
                time.sleep(rng.uniform(0.05, 1.0))
                proc.send_signal(signal.SIGKILL)
                _, err = proc.communicate(timeout=10)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            assert proc.returncode == -signal.SIGKILL, f"run {run} ended by itself before the kill: {err}"
            assert _integrity(db) == [("ok",)], f"run {run}"
            log = store.get_session(sid)
            seqs = [e.seq for e in log.events]
            assert seqs == list(range(1, len(seqs) + 1)), f"run {run}: gaps in {seqs}"
            assert log.state == "running" and log.event_count == len(seqs), f"run {run}: {log.state}, {log.event_count}"
            killed[sid] = _snapshot(log)
            previous = sid

        final = subprocess.run([*FINAL, "--db", str(db)], capture_output=True, text=True, timeout=60)
        assert final.returncode == 0, final.stderr
        assert _integrity(db) == [("ok",)]
        last_sid = json.loads(final.stdout)["session"]["session_id"]
        assert last_sid > previous and store.get_session(last_sid).state == "completed"
        assert len(killed) == RUNS
        for sid, before in killed.items():
            after = store.get_session(sid)
            assert after.state == "interrupted", f"session {sid}"
            # nothing changed, one event appended: the interruption
            assert _snapshot(after)[:-1] == before, f"session {sid}"
            last = after.events[-1]
            assert (last.seq, last.kind, last.payload["state"], last.payload["last_event_seq"]) == \
                (len(before) + 1, "state", "interrupted", len(before)), f"session {sid}: {last}"
            assert after.event_count == len(before) + 1
    # the kills fell in the middle of delivery, not before it
    delivering = sum(any(kind == "intensity" for _, kind, *_ in events) for events in killed.values())
    assert delivering >= RUNS // 2, f"only {delivering} of {RUNS} runs were killed while delivering"
    # the dose delivered is in the log up to the kill: a dose event for every 10 s of session time recorded
    for sid, events in killed.items():
        reached_s = max(p.get("t_s", 0.0) for _, _, _, p, _ in events)
        doses = [p for _, kind, _, p, _ in events if kind == "dose"]
        assert [round(d["t_s"] / 10.0) for d in doses] == list(range(1, len(doses) + 1)), f"session {sid}"
        # none missing: the next one was not yet due (one 50 ms step of slack for the step it falls in)
        assert reached_s < 10.0 * (len(doses) + 1) + 0.05, f"session {sid}: {len(doses)} doses by {reached_s} s"
        assert [d["pulses_delivered"] for d in doses] == sorted(d["pulses_delivered"] for d in doses)
