"""One emulator, many clients: sessions one after another on the same port, as on a stimulator's serial cable.

A pseudo-terminal keeps the line settings of the client that set them last and drops
parity, which once made every client after the first fail to open a ScienceMode2
port (EINVAL from ``tcsetattr``). Here each emulator serves several driver sessions
in turn, a client that goes away while stimulating (its host crashed) is noticed by
the device's own watchdog, bytes nobody reads never block the device, and the
emulator of ``electrostim emulate`` serves one session after another from another
process.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serial

import electrostim as es
from electrostim.devices import P24, DeviceState, P24Emulator, RehaStim2, RehaStim2Emulator
from electrostim.devices._framing import Frame
from electrostim.devices._sciencemode2.codec import (
    Sm2ChannelPulse,
    Sm2FrameDecoder,
    Sm2Init,
    Sm2InitAck,
    Sm2InitChannelListMode,
    Sm2PulseMode,
    Sm2StartChannelListMode,
    Sm2StartChannelListModeAck,
    sm2_decode,
    sm2_encode,
)
from electrostim.devices._sciencemode2.driver import SM2_SERIAL
from electrostim.devices._sciencemode4.codec import (
    Sm4FrameDecoder,
    Sm4MlChannel,
    Sm4MlInit,
    Sm4MlInitAck,
    Sm4MlUpdate,
    Sm4MlUpdateAck,
    Sm4Point,
    sm4_decode,
    sm4_encode,
)
from electrostim.devices._sciencemode4.driver import SM4_SERIAL

from ._waiting import wait_for

CLI = [sys.executable, "-m", "electrostim"]
LABEL = "knee-1"
CURRENT_MA = 10.0

DEVICES = {"rehastim2": (RehaStim2Emulator, RehaStim2), "p24": (P24Emulator, P24)}


def _plan(device: str) -> es.ApprovedPlan:
    """knee-oa-tens (one output, 100 Hz, 100 µs) without its 5 s ramps: pulses at the set current at once."""
    data = es.load_program("knee-oa-tens").model_dump(mode="python")
    for channel in data["channels"]:
        channel["stimulus"].update(ramp_up_s=0.0, ramp_down_s=0.0)
    return es.assess(es.validate_program(data), device=device).approve(confirm=True, confirmed_by="test")


def _session(driver: type, port: str, plan: es.ApprovedPlan,
             delivering: Callable[[float], bool]) -> tuple[float, float]:
    """Connect, configure, start, wait until ``delivering(t0)`` (the device delivers what was set, seen from the
    session's start ``t0``), stop, close; the session's (start, end) in monotonic seconds."""
    t0 = time.monotonic()
    with driver(port) as dev:
        dev.connect()
        dev.configure(plan)
        dev.start()
        dev.set_intensity(LABEL, CURRENT_MA)
        wait_for(lambda: delivering(t0), 5.0, "the device delivered the current set")
        dev.stop()
        assert dev.state == DeviceState.STOPPED and dev.status().error is None
    assert dev.state == DeviceState.DISCONNECTED
    return t0, time.monotonic()


def _pulses_at_current(emu: Any, t0: float) -> int:
    chunk = emu.emitted(t0)
    return int(np.count_nonzero(np.abs(chunk.first_amplitude_ma) == CURRENT_MA))


def _ten_pulses(emu: Any) -> Callable[[float], bool]:
    return lambda t0: _pulses_at_current(emu, t0) >= 10


@pytest.mark.parametrize("device", DEVICES)
def test_three_driver_sessions_one_after_another_on_one_emulator(device: str):
    emulator, driver = DEVICES[device]
    plan = _plan(device)
    with emulator() as emu:
        windows = [_session(driver, emu.port, plan, _ten_pulses(emu)) for _ in range(3)]
        assert not emu.output_on
        log = list(emu.output_log)
        errors = list(emu.errors)
        everything = emu.emitted()
        if device == "rehastim2":
            # each later client was found by the device's watchdog: the link of the one before dropped, Init again
            assert emu.drops >= 2
    assert errors == []
    # the recording runs on across clients: each session's pulses, at its current, inside its own window
    assert len(everything) > 0 and np.all(np.abs(everything.first_amplitude_ma) == CURRENT_MA)
    for start, end in windows:
        inside = (everything.time_s >= start) & (everything.time_s < end)
        assert np.count_nonzero(inside) >= 10
    assert np.count_nonzero(everything.time_s >= windows[-1][1]) == 0  # nothing after the last session
    # the output log: on and off once per session, off at the end
    ons = sum(1 for (_, before), (_, after) in zip(log, log[1:]) if not before and after)
    offs = sum(1 for (_, before), (_, after) in zip(log, log[1:]) if before and not after)
    assert ons == offs == 3 and log[-1][1] == {}


# --------------------------------------------------------------------------- a host that goes away


def _read_until(port: serial.Serial, decoder: Any, decode: Callable[[bytes], Any], wanted: type,
                timeout_s: float) -> tuple[int, Any]:
    """Read frames until one of type ``wanted`` arrives: its (packet number, message)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for event in decoder.feed(port.read(max(1, port.in_waiting))):
            if isinstance(event, Frame):
                pn, message = decode(event.data)
                if isinstance(message, wanted):
                    return pn, message
    pytest.fail(f"no {wanted.__name__} within {timeout_s} s")


def _rehastim2_crashing_host(port_name: str) -> None:
    """Handshake and start 10 mA on channel 1 with raw frames, then close the port without a stop."""
    with serial.Serial(port_name, **SM2_SERIAL, timeout=0.01) as port:
        decoder = Sm2FrameDecoder()
        pn, _ = _read_until(port, decoder, sm2_decode, Sm2Init, 2.0)
        port.write(sm2_encode(Sm2InitAck(), pn))
        port.write(sm2_encode(Sm2InitChannelListMode(active_channels=(1,), main_interval_ms=10.0), 0))
        pulse = Sm2ChannelPulse(pulse_width_us=100, current_ma=int(CURRENT_MA), mode=Sm2PulseMode.SINGLE)
        port.write(sm2_encode(Sm2StartChannelListMode((pulse,)), 1))
        _read_until(port, decoder, sm2_decode, Sm2StartChannelListModeAck, 1.0)


def _p24_crashing_host(port_name: str) -> None:
    """MlInit and an MlUpdate at 10 mA on channel 1 with raw frames, then close the port without a stop."""
    with serial.Serial(port_name, **SM4_SERIAL, timeout=0.01) as port:
        decoder = Sm4FrameDecoder()
        port.write(sm4_encode(Sm4MlInit(), 0))
        _read_until(port, decoder, sm4_decode, Sm4MlInitAck, 1.0)
        shape = (Sm4Point(100, CURRENT_MA), Sm4Point(100, -CURRENT_MA))
        port.write(sm4_encode(Sm4MlUpdate((Sm4MlChannel(channel=1, period_ms=10.0, points=shape),)), 1))
        _read_until(port, decoder, sm4_decode, Sm4MlUpdateAck, 1.0)


@pytest.mark.parametrize("device", DEVICES)
def test_a_host_that_goes_away_while_stimulating_is_stopped_by_the_watchdog_and_the_next_is_served(device: str):
    emulator, driver = DEVICES[device]
    with emulator() as emu:
        (_rehastim2_crashing_host if device == "rehastim2" else _p24_crashing_host)(emu.port)
        gone = time.monotonic()
        assert emu.output_on  # the device does not know the port was closed
        wait_for(lambda: not emu.output_on, emu.watchdog_s + 1.0, "the watchdog stopped the outputs")
        stopped_at = emu.output_log[-1][0]
        if device == "rehastim2":
            assert emu.drops == 1
            assert stopped_at - emu.last_valid_s == pytest.approx(emu.watchdog_s, abs=0.05)
        else:
            assert emu.watchdog_stops == 1
            assert stopped_at - emu.last_poll_s == pytest.approx(emu.watchdog_s, abs=0.05)
        assert len(emu.emitted(gone)) > 0 and len(emu.emitted(stopped_at)) == 0  # pulses until then, none after
        _session(driver, emu.port, _plan(device), _ten_pulses(emu))
        assert not emu.output_on


def test_bytes_nobody_reads_never_block_the_device():
    """Init as fast as the device can send it, with no client, fills the line: the device keeps running (its
    lock stays free, its timers and watchdog run on), and the next client reads a fresh Init and connects."""
    with RehaStim2Emulator(init_period_s=0.0, response_delay_s=0.0) as emu:
        wait_for(lambda: emu.overruns >= 2, 10.0, "the line filled up twice")
        assert emu._lock.acquire(timeout=1.0)
        emu._lock.release()
        emu.init_period_s = 0.5
        _session(RehaStim2, emu.port, _plan("rehastim2"), _ten_pulses(emu))


# --------------------------------------------------------------------------- electrostim emulate


def _lines(stream: Any) -> tuple[queue.Queue, threading.Thread]:
    """The lines of a child's output, as they come (None at its end), read by a thread: a read never blocks the
    test. The thread ends with the output."""
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    thread = threading.Thread(target=pump, name="child output", daemon=True)
    thread.start()
    return lines, thread


@pytest.mark.parametrize("device", DEVICES)
def test_electrostim_emulate_serves_one_session_after_another(device: str):
    """The emulator in its own process, as a user runs it in a terminal; three driver sessions in turn."""
    driver = DEVICES[device][1]
    plan = _plan(device)
    proc = subprocess.Popen([*CLI, "emulate", device, "--json", "--duration-s", "120"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines, pump = _lines(proc.stdout)
    try:
        first = lines.get(timeout=60)
        assert first is not None, "the emulator ended before printing its port"
        port = json.loads(first)["port"]
        reports: list[dict[str, list[float]]] = []  # the outputs at each change the emulator reported

        def read_reports() -> list[dict[str, list[float]]]:
            while not lines.empty():
                line = lines.get_nowait()
                assert line is not None, "the emulator ended"
                reports.append(json.loads(line)["outputs"])
            return reports

        def on_since(before: int) -> Callable[[float], bool]:
            return lambda _t0: any(read_reports()[before:])

        for n in range(1, 4):
            before = len(read_reports())
            _session(driver, port, plan, on_since(before))
            wait_for(lambda: read_reports() and read_reports()[-1] == {}, 5.0,
                      f"the emulator reported the outputs off after session {n}")
        ons = sum(1 for a, b in zip([{}, *reports], reports) if not a and b)
        assert ons == 3, reports
        assert all(ma == CURRENT_MA for outputs in reports for ma, _ in outputs.values()), reports
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        pump.join(timeout=30)
        err = proc.stderr.read()  # type: ignore[union-attr]
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.slow
def test_electrostim_run_three_times_against_one_electrostim_emulate(tmp_path: Path):
    """The user's way, both ends on the command line: ``electrostim emulate rehastim2`` in one terminal, then
    ``electrostim run`` three times in another (the second used to fail to open the port: EINVAL)."""
    proc = subprocess.Popen([*CLI, "emulate", "rehastim2", "--json", "--duration-s", "300"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines, pump = _lines(proc.stdout)
    try:
        first = lines.get(timeout=60)
        assert first is not None, "the emulator ended before printing its port"
        port = json.loads(first)["port"]
        for n in range(3):
            r = subprocess.run([*CLI, "run", "knee-oa-tens", "--device", f"rehastim2:{port}", "--yes",
                                "--confirmed-by", "test", "--duration-s", "1", "--db", str(tmp_path / "s.db"), "--json"],
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, (n, r.stderr)
            assert json.loads(r.stdout)["session"]["state"] == "completed", (n, r.stdout)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        pump.join(timeout=30)
        err = proc.stderr.read()  # type: ignore[union-attr]
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == 0, err
    assert "Traceback" not in err
