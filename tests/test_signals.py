"""Every way a process can be asked to end zeroes the output first, then records how the session ended, once.

``electrostim run`` drives an emulated RehaStim2 or P24 (in this process) from its own
process; at a random moment of the session the test sends SIGTERM, SIGHUP, SIGINT or
two SIGINTs 2 ms apart. The output must be zero at the emulator within 50 ms of the
(first) signal; the process must exit with 128 + the signal's number and print its
JSON summary; the record must end ``stopped`` with the signal as its cause, exactly
once (one final state event, sequence numbers without a gap).

Both tests are ``slow`` (part of ``.ci/run``): one tries each signal once on each device,
the other 20 times each on each device.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from electrostim.devices import P24Emulator, RehaStim2Emulator
from electrostim.store import Store

CLI = [sys.executable, "-m", "electrostim", "run", "knee-oa-tens", "--yes", "--confirmed-by", "test", "--json", "--duration-s", "600"]
EMULATORS = {"rehastim2": RehaStim2Emulator, "p24": P24Emulator}
KINDS = {"SIGTERM": [signal.SIGTERM], "SIGHUP": [signal.SIGHUP], "SIGINT": [signal.SIGINT],
         "double-SIGINT": [signal.SIGINT, signal.SIGINT]}
#: longest time from the signal to zero output at the emulator
ZERO_WITHIN_S = 0.050
START_TIMEOUT_S = 60.0


def _session_started(emu) -> bool:
    """The driver has configured the device (the session's record exists by then)."""
    names = {type(m).__name__ for _, m in list(emu.received)}
    return bool(names & {"Sm2InitChannelListMode", "Sm4MlInit"})


def _trial(device: str, kind: str, seed: int, tmp: Path) -> dict:
    rng = random.Random(seed)
    db = tmp / f"{device}-{kind}-{seed}.db"
    with EMULATORS[device]() as emu:
        proc = subprocess.Popen([*CLI, "--device", f"{device}:{emu.port}", "--db", str(db)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _session_started(emu):
                if proc.poll() is not None or time.monotonic() > deadline:
                    out, err = proc.communicate(timeout=10)
                    pytest.fail(f"{device} {kind}: the session did not start (exit {proc.returncode}): {err}")
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 2.5))  # a random moment: contact check, ramp up, run
            was_on = emu.output_on
            t_signal = time.monotonic()
            for i, sig in enumerate(KINDS[kind]):
                if i:
                    time.sleep(0.002)
                proc.send_signal(sig)
            out, err = proc.communicate(timeout=30)
            zero_at = emu.output_zero_since(t_signal)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return {"device": device, "kind": kind, "seed": seed, "was_on": was_on, "code": proc.returncode, "out": out,
            "err": err, "zero_s": None if zero_at is None else zero_at - t_signal, "db": db}


def _check(t: dict) -> None:
    first = KINDS[t["kind"]][0]
    where = f"{t['device']} {t['kind']} seed {t['seed']}"
    assert t["zero_s"] is not None and t["zero_s"] <= ZERO_WITHIN_S, f"{where}: output zero after {t['zero_s']} s"
    assert t["code"] == 128 + int(first), f"{where}: exit {t['code']}: {t['err']}"
    assert "Traceback" not in t["err"], f"{where}: {t['err']}"
    summary = json.loads(t["out"])["session"]
    assert summary["signal"] == first.name and summary["end_state"] == "stopped", f"{where}: {summary}"
    with Store.open(t["db"], readonly=True) as store:
        (rec,) = store.list_sessions()
        log = store.get_session(rec.id)
    assert log.state == "stopped" and log.summary["signal"] == first.name and log.summary["error"] is None, where
    seqs = [e.seq for e in log.events]
    assert seqs == list(range(1, len(seqs) + 1)), where
    finals = [e for e in log.events if e.kind == "state" and e.payload["state"] in ("completed", "stopped", "failed")]
    assert len(finals) == 1 and finals[0].seq == seqs[-1], f"{where}: {finals}"
    stops = [e for e in log.events if e.kind == "state" and e.payload["state"] == "stopped"]
    assert len(stops) == 1 and stops[0].payload["reason"] == f"signal {first.name}", f"{where}: {stops}"


def _run_trials(tmp_path: Path, per_kind: int, workers: int) -> list[dict]:
    jobs = [(device, kind, 1000 * i + j) for i, device in enumerate(EMULATORS) for kind in KINDS for j in range(per_kind)]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda job: _trial(*job, tmp_path), jobs))


@pytest.mark.slow
def test_signals_zero_the_output_then_record_the_stop(tmp_path: Path):
    trials = _run_trials(tmp_path, per_kind=1, workers=2)
    for t in trials:
        _check(t)
    assert sum(t["was_on"] for t in trials) >= len(trials) // 3  # most signals came while the output was on


@pytest.mark.slow
def test_signals_twenty_times_each_on_each_serial_device(tmp_path: Path):
    trials = _run_trials(tmp_path, per_kind=20, workers=3)
    for t in trials:
        _check(t)
    assert sum(t["was_on"] for t in trials) >= len(trials) // 3
