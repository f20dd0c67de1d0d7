"""The RehaStim2 (ScienceMode2) driver and emulator, end to end on a pseudo-terminal.

1. The emulator serves an independent client, pysciencemode 1.1.5 from PyPI, through
   connect, init, start, updates, pause and stop, despite that client's quirks
   (``reference/sciencemode.md``); what arrived is checked on the emulator's side.
2. Our driver against the emulator: every command, a real-time session through the
   :class:`~electrostim.session.Runner`, and the protocol's timing measured with a raw
   pyserial client (Init every 500 ms, the 1.2 s watchdog, answers well within 100 ms).
3. Faults: each one ends the session in a safe stop within 100 ms of the moment the
   driver could know, with an error that names the cause and a complete record in the
   store.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import serial
from pysciencemode import Channel, Device, Modes, Rehastim2

import electrostim as es
from electrostim.devices import DeviceState, OutputCommand, OutputState, RehaStim2, RehaStim2Emulator
from electrostim.devices._framing import Frame
from electrostim.devices._sciencemode2.codec import (
    Sm2ChannelPulse,
    Sm2FrameDecoder,
    Sm2GetStimulationMode,
    Sm2GetStimulationModeAck,
    Sm2Init,
    Sm2InitAck,
    Sm2InitChannelListMode,
    Sm2PulseMode,
    Sm2StartChannelListMode,
    Sm2StimulationMode,
    Sm2StopChannelListMode,
    Sm2Watchdog,
    sm2_decode,
    sm2_encode,
)
from electrostim.session import Runner, SessionState
from electrostim.store import Store

from ._waiting import wait_for

#: The protocol's limit for an acknowledgement, and so for a safe stop after a fault.
LIMIT_S = 0.1


def _plan(duty_cycle: dict[str, float] | None = None) -> es.ApprovedPlan:
    """knee-oa-tens (one output, 100 Hz, 100 µs, at most 50 mA) without its 5 s ramps, for short sessions."""
    data = es.load_program("knee-oa-tens").model_dump(mode="python")
    for channel in data["channels"]:
        channel["stimulus"].update(ramp_up_s=0.0, ramp_down_s=0.0, duty_cycle=duty_cycle)
    assessment = es.assess(es.validate_program(data), device="rehastim2")
    return assessment.approve(confirm=True, confirmed_by="test")


# --------------------------------------------------------------------------- 1. pysciencemode


def _within(timeout_s: float, emu: RehaStim2Emulator, client: Rehastim2, call: Callable[..., Any], *args: Any,
            **kwargs: Any) -> Any:
    """Run one pysciencemode call in a thread: it waits for acknowledgements without a timeout, so a hang must
    fail the test (its port is closed to end the wait) instead of hanging the suite."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call(*args, **kwargs)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, name="pysciencemode call", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        client.stimulation_active = client.reha_connected = False  # its own threads end
        port = getattr(client, "port", None)
        if port is not None:
            port.close()  # its read loop fails and the call returns
        emu.vanish()
        thread.join(1.0)
        pytest.fail(f"pysciencemode {call.__name__} still waited for an acknowledgement after {timeout_s} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def test_pysciencemode_imports_without_the_p24_extension():
    """The compiled P24 extension (the ``sciencemode`` package) is optional: importing the RehaStim2 client
    works without it, and without any warning."""
    code = "import sys; sys.modules['sciencemode'] = None; from pysciencemode import Rehastim2, Channel; print('ok')"
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_pysciencemode_client_init_start_update_pause_stop():
    with RehaStim2Emulator() as emu:
        # the object exists before its constructor waits for Init, so a hang can close its port
        client = Rehastim2.__new__(Rehastim2)

        def guard(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            return _within(3.0, emu, client, call, *args, **kwargs)

        guard(client.__init__, emu.port)  # waits for Init, answers InitAck
        # InitAck has no acknowledgement of its own: the device takes it when its reader gets to it
        wait_for(lambda: emu.initialised, 5.0, "the emulator took the client's InitAck")
        exchanges: list[tuple[bytes, bytes]] = []  # (frame the client sent, the acknowledgement it read)
        read_ack = client._get_last_ack

        def recording(init: bool = False) -> bytes:
            sent = bytes(client.packet_send_history)
            ack = read_ack(init)
            exchanges.append((sent, bytes(ack)))
            return ack

        client._get_last_ack = recording
        try:
            channels = [Channel(mode=Modes.SINGLE, no_channel=1, amplitude=10, pulse_width=200,
                                device_type=Device.Rehastim2),
                        Channel(mode=Modes.DOUBLET, no_channel=3, amplitude=15, pulse_width=300,
                                device_type=Device.Rehastim2)]
            # its default inter-pulse interval, 2 ms, is below the documented 8 ms minimum: accepted as sent
            guard(client.init_channel, stimulation_interval=25, list_channels=channels)
            assert emu.mode == Sm2StimulationMode.INITIALISED
            guard(client.start_stimulation, upd_list_channels=channels)
            assert emu.outputs == {1: OutputState(10, 200), 3: OutputState(15, 300)}
            updates = []
            for i in range(16):  # its packet numbers pass 0x0A and 0x0F, which it sends altered
                channels[0].set_amplitude(11 + i)
                channels[1].set_pulse_width(150 + 10 * i)
                guard(client.start_stimulation, upd_list_channels=channels)
                assert emu.outputs == {1: OutputState(11 + i, 200), 3: OutputState(15, 150 + 10 * i)}
                updates.append(Sm2StartChannelListMode((Sm2ChannelPulse(200, 11 + i, Sm2PulseMode.SINGLE),
                                                        Sm2ChannelPulse(150 + 10 * i, 15, Sm2PulseMode.DOUBLET))))
            # the one command whose byte it alters (10 arrives as 0x5F); its public methods send it the same way
            guard(client._send_packet, "GetStimulationMode")
            mode = client._calling_ack(guard(client._get_last_ack))
            guard(client.pause_stimulation)
            assert not emu.output_on and emu.mode == Sm2StimulationMode.STARTED
            guard(client.end_stimulation)
        finally:
            guard(client.disconnect)
            client.close_port()

        # what arrived, in order, as the emulator understood it
        arrived = [m for _, m in emu.received if not isinstance(m, (Sm2Watchdog, Sm2InitAck))]
        assert arrived == [
            Sm2StopChannelListMode(),  # init_channel stops first
            Sm2InitChannelListMode(active_channels=(1, 3), main_interval_ms=25.0, inter_pulse_interval_ms=2.0),
            Sm2StartChannelListMode((Sm2ChannelPulse(200, 10, Sm2PulseMode.SINGLE),
                                     Sm2ChannelPulse(300, 15, Sm2PulseMode.DOUBLET))),
            *updates,
            Sm2GetStimulationMode(),
            Sm2StartChannelListMode((Sm2ChannelPulse(200, 0, Sm2PulseMode.SINGLE),  # pause: the last widths, 0 mA
                                     Sm2ChannelPulse(300, 0, Sm2PulseMode.DOUBLET))),
            Sm2StopChannelListMode(),
        ]
        assert emu.errors == []  # nothing it sent was refused as malformed
        assert not emu.output_on and emu.output_log[-1][1] == {} and emu.mode == Sm2StimulationMode.START
        assert emu.drops == 0

        # the client read an acknowledgement of each command, with its packet number echoed as it sent it
        assert len(exchanges) == len(arrived)
        for sent, ack in exchanges:
            assert ack[5] == sent[5], (sent.hex(" "), ack.hex(" "))
        assert {sent[5] for sent, _ in exchanges} >= {0x0A ^ 0x55, 0x0F ^ 0x55}  # the quirk was exercised
        assert exchanges[-3][0][6] == 10 ^ 0x55
        understood = [client._calling_ack(ack) for _, ack in exchanges]
        assert understood == ["Wrong mode error", "Stimulation initialized", *["Stimulation started"] * 17,
                              "Stimulation started", "Stimulation started", "Stimulation stopped"]
        assert mode == "Stimulation started"


# --------------------------------------------------------------------------- 2. our driver, and the protocol's timing


def test_driver_connect_configure_start_intensity_pause_resume_stop():
    plan = _plan()
    with RehaStim2Emulator() as emu, RehaStim2(emu.port) as dev:
        dev.connect()
        assert emu.initialised and dev.state == DeviceState.CONNECTED
        dev.configure(plan)
        assert emu.mode == Sm2StimulationMode.INITIALISED
        assert emu.channel_list == Sm2InitChannelListMode(active_channels=(1,), main_interval_ms=10.0,
                                                          inter_pulse_interval_ms=8.0)
        dev.start()
        assert emu.mode == Sm2StimulationMode.STARTED and not emu.output_on  # started at zero intensity
        dev.set_intensity("knee-1", 20.0)
        assert emu.outputs == {1: OutputState(20, 100)}
        dev.pause()
        assert not emu.output_on and emu.outputs[1].pulse_width_us == 100
        dev.resume()
        assert emu.outputs == {1: OutputState(20, 100)}
        dev.stop()
        assert not emu.output_on and emu.mode == Sm2StimulationMode.START and dev.state == DeviceState.STOPPED
        assert emu.errors == [] and dev.link is not None and dev.link.stats.errors == []


def test_runner_session_in_real_time_ends_done_with_zero_output():
    plan = _plan()
    top_ma = plan.envelope.outputs[0].max_amplitude_ma
    events: list[tuple[str, dict[str, Any]]] = []
    with RehaStim2Emulator() as emu, RehaStim2(emu.port) as dev:
        dev.connect()
        dev.configure(plan)
        runner = Runner(dev, slew_ma_per_s=40.0, start_ma={"knee-1": 20.0}, duration_s=2.0, ramp_s=0.4,
                        on_event=lambda kind, payload: events.append((kind, payload)))
        t0 = time.monotonic()
        assert runner.run(step_s=0.05) == SessionState.COMPLETED
        wall_s = time.monotonic() - t0
        assert runner.error is None and 1.9 <= wall_s <= 3.0
        assert not emu.output_on and emu.mode == Sm2StimulationMode.START and emu.output_zero_since(t0) is not None
        currents = [o.current_ma for _, outs in emu.output_log for o in outs.values()]
        assert max(currents) == 20  # it did stimulate, at the intensity the session reached
        assert all(c <= top_ma for c in currents)
        assert all(c.current_ma <= top_ma for _, cmds in dev.command_log for c in cmds.values())
        assert emu.drops == 0 and emu.errors == []  # the keepalive held the link for the whole session
    assert [p["state"] for k, p in events if k == "state"] == ["prepare", "contact-check", "ramp-up", "run",
                                                               "ramp-down", "completed"]


class _RawClient:
    """A bare pyserial client on the emulator's port, with our codec: for timing the protocol."""

    def __init__(self, port: str):
        self.serial = serial.Serial(port, 460_800, parity=serial.PARITY_EVEN, timeout=0.005)
        self.decoder = Sm2FrameDecoder()
        self.pn = 0

    def __enter__(self) -> _RawClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.serial.close()

    def send(self, message: Any, packet_number: int | None = None) -> float:
        if packet_number is None:
            packet_number, self.pn = self.pn, (self.pn + 1) % 256
        self.serial.write(sm2_encode(message, packet_number))
        self.serial.flush()
        return time.monotonic()

    def read(self, for_s: float, until: Callable[[Any], bool] = lambda m: False) -> list[tuple[float, int, Any]]:
        """Packets received within ``for_s`` (stamped on arrival), ending early after one ``until`` accepts."""
        out: list[tuple[float, int, Any]] = []
        deadline = time.monotonic() + for_s
        while time.monotonic() < deadline:
            data = self.serial.read(max(1, self.serial.in_waiting))
            now = time.monotonic()
            for event in self.decoder.feed(data):
                assert isinstance(event, Frame), event
                pn, message = sm2_decode(event.data)
                out.append((now, pn, message))
                if until(message):
                    return out
        return out

    def handshake(self, emu: RehaStim2Emulator) -> None:
        inits = self.read(1.0, until=lambda m: isinstance(m, Sm2Init))
        assert inits and isinstance(inits[-1][2], Sm2Init)
        self.send(Sm2InitAck(), packet_number=inits[-1][1])
        # InitAck has no acknowledgement of its own: the device takes it when its reader gets to it
        wait_for(lambda: emu.initialised, 5.0, "the emulator took the InitAck")


def test_init_repeats_every_500_ms_until_init_ack():
    with RehaStim2Emulator() as emu, _RawClient(emu.port) as raw:
        received = raw.read(1.6)  # pyserial empties the input buffer on open: an Init sent before may be gone
        assert all(isinstance(m, Sm2Init) and m.protocol_version == 1 for _, _, m in received)
        stamps = [t for t, _, _ in received]
        assert len(stamps) >= 3
        numbers = [pn for _, pn, _ in received]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # the device's own counter
        # the device's own timer: each Init at the first tick at or past 500 ms after the one before (however
        # late a loaded machine runs the tick; the host's receive times would add its own delays)
        inits = [e for e in emu.timer_log if e[0] == "init"]
        assert len(inits) >= len(received)
        for (_, _, _, tick), (_, due, previous, now) in zip(inits, inits[1:]):
            assert due == tick + 0.5 and previous < due <= now
        raw.send(Sm2InitAck(), packet_number=received[-1][1])
        wait_for(lambda: emu.initialised, 5.0, "the emulator took the InitAck")
        acked = next(t for t, m in reversed(emu.received) if isinstance(m, Sm2InitAck))
        raw.read(0.8)  # 0.8 s is within the watchdog
        # acknowledged: no Init from the device's timer after it took the InitAck (one already on the line, sent
        # before a loaded machine let its reader take the InitAck, is no fault)
        assert [e for e in emu.timer_log if e[0] == "init" and e[3] > acked] == []
        assert emu.initialised


def test_watchdog_drops_a_quiet_link_after_1200_ms_and_init_starts_again():
    with RehaStim2Emulator() as emu, _RawClient(emu.port) as raw:
        raw.handshake(emu)
        last = time.monotonic()
        for _ in range(4):  # a Watchdog every half second keeps the link (1.5 s without a drop)
            assert raw.read(0.5) == []
            last = raw.send(Sm2Watchdog())
        assert emu.initialised and emu.drops == 0
        received = raw.read(5.0, until=lambda m: isinstance(m, Sm2Init))  # then nothing: the device drops it
        assert received and isinstance(received[-1][2], Sm2Init)
        quiet_s = received[-1][0] - last
        assert quiet_s >= 1.2 - 0.02, quiet_s  # never before 1.2 s of quiet (a loaded machine only adds to it)
        assert emu.drops == 1 and not emu.initialised
        # the device's own timer: the drop at the first tick past 1.2 s after the last valid packet, and Init at once
        log = emu.timer_log
        at = max(k for k, e in enumerate(log) if e[0] == "drop")
        _, due, previous, tick = log[at]
        assert due == emu.last_valid_s + 1.2 and previous <= due < tick
        assert log[at + 1][0] == "init" and log[at + 1][3] == tick


def test_responses_arrive_well_within_100_ms():
    with RehaStim2Emulator() as emu, _RawClient(emu.port) as raw:
        raw.handshake(emu)
        for _ in range(40):  # packet numbers 0-39 include 0x0F, which is escaped, and echoed as such
            pn = raw.pn
            raw.send(Sm2GetStimulationMode())
            (_, ack_pn, ack), = raw.read(5.0, until=lambda m: True)
            assert ack == Sm2GetStimulationModeAck(mode=Sm2StimulationMode.START) and ack_pn == pn
        assert emu.errors == []
        # on the device's own clock: each answer is due its response delay after the request was taken, well
        # within the protocol's 100 ms, and goes out at the first tick at or past that (a loaded machine's late
        # ticks, and the host's own delays, cannot fail this)
        taken = [t for t, m in emu.received if isinstance(m, Sm2GetStimulationMode)]
        replies = emu.reply_log[-40:]
        assert len(taken) == 40 and len(replies) == 40
        for t, (due, previous, tick) in zip(taken, replies):
            assert due == t + emu.response_delay_s and emu.response_delay_s < LIMIT_S / 5
            assert previous < due <= tick


# --------------------------------------------------------------------------- 3. faults


@dataclass(frozen=True)
class Fault:
    """A fault to inject during a session, and what the session must make of it.

    ``detectable``: when the driver can first know — at the injection, when the damaged
    reply can arrive (taken as the moment the driver sent the request it answers), or at
    the 100 ms deadline of the first request the driver sent after the injection.
    ``device``: ``obeys`` (it still executes the stop, so its output must reach zero in
    time too), ``gone`` (vanished with its port) or ``hung`` (it executes nothing; only
    its own 1.2 s watchdog stops it).
    """

    name: str
    inject: Callable[[RehaStim2Emulator], None]
    detectable: str
    cause: str
    device: str = "obeys"
    duty_cycle: dict[str, float] | None = None
    while_off: bool = False  # inject while the schedule keeps the output off, so the next request turns it on


def _respond_after(delay_s: float) -> Callable[[RehaStim2Emulator], None]:
    def inject(emu: RehaStim2Emulator) -> None:
        emu.response_delay_s = delay_s

    return inject


NO_ACK = r"did not acknowledge Sm2StartChannelListMode \(packet \d+\) within 100 ms"
FAULTS = [
    Fault("garbage", lambda emu: emu.inject(b"\x00\x13 not a frame \xfe"), "injection", r"invalid bytes .*\(garbage\)"),
    Fault("corrupted-crc", lambda emu: emu.corrupt_replies(1), "reply", r"invalid bytes .*\(crc\)"),
    Fault("dropped-ack", lambda emu: emu.drop_replies(1), "deadline", NO_ACK),
    Fault("late-ack", _respond_after(0.15), "deadline", NO_ACK),
    # slower than the protocol allows, on an update the worker sends as the schedule turns the output on
    Fault("slow-schedule-update", _respond_after(0.11), "deadline", NO_ACK, duty_cycle={"on_s": 0.3, "off_s": 0.2},
          while_off=True),
    Fault("vanished", lambda emu: emu.vanish(), "injection", r"RehaStim2 device on .* vanished", device="gone"),
    Fault("silent", lambda emu: emu.go_silent(), "deadline", NO_ACK, device="hung"),
    Fault("electrode-error", lambda emu: emu.electrode_error(), "injection", r"electrode error"),
]


def _is_stop(commands: dict[str, OutputCommand]) -> bool:
    """The driver's safe stop (an off phase or a pause keeps the pulse width; a stop zeroes both)."""
    return bool(commands) and all(c == OutputCommand(0.0, 0.0) for c in commands.values())


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_ends_in_a_safe_stop_within_100_ms_and_a_complete_record(fault: Fault, tmp_path, request):
    plan = _plan(fault.duty_cycle)
    db = str(tmp_path / "sessions.db")
    store = Store.open(db)
    record = store.start_session(store.record_plan(plan).id, "rehastim2")
    kinds = {"contact": "note", "target": "intensity"}  # as `electrostim run` records a session

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        store.append_event(record.id, kinds.get(kind, kind), payload, output=payload.get("output"))

    injected: list[float] = []
    requests: list[tuple[float, Any]] = []  # (monotonic time, message) of each request the driver sends
    with RehaStim2Emulator() as emu, RehaStim2(emu.port) as dev:
        dev.connect()
        assert dev.link is not None
        send_request = dev.link.request

        def stamped(message: Any, timeout_s: float | None = None) -> Any:
            requests.append((time.monotonic(), message))
            return send_request(message, timeout_s)

        dev.link.request = stamped  # type: ignore[method-assign]
        dev.configure(plan)
        runner = Runner(dev, slew_ma_per_s=40.0, start_ma={"knee-1": 20.0}, duration_s=3.0, ramp_s=0.3,
                        on_event=on_event)

        def tick(r: Runner) -> None:
            if injected or r.t < 0.3:
                return
            ready = (r.state == SessionState.RUN and not emu.output_on) if fault.while_off else emu.output_on
            if ready:
                injected.append(time.monotonic())
                fault.inject(emu)

        try:
            runner.run(step_s=0.05, tick=tick)
            device_state, device_error = dev.state, dev.status().error
        finally:  # as `electrostim run` ends a session: close the device, then end the record
            dev.close()
            final = {"completed": "completed", "stopped": "stopped", "failed": "failed"}.get(runner.state.value, "stopped")
            store.end_session(record.id, final, runner.summary())
            store.close()

        assert injected, "the session ended before the fault was injected"
        t_inject = injected[0]
        assert runner.state == SessionState.FAILED and device_state == DeviceState.FAULT
        assert re.search(fault.cause, runner.error or ""), runner.error
        assert device_error == runner.error

        # when the driver could know, and when it commanded zero output
        if fault.detectable == "injection":
            t_detect = t_inject
        else:
            t_request, message = next((t, m) for t, m in requests if t >= t_inject)
            assert isinstance(message, Sm2StartChannelListMode)
            t_detect = t_request + (LIMIT_S if fault.detectable == "deadline" else 0.0)
        t_stop = next(t for t, commands in dev.command_log if t >= t_inject and _is_stop(commands))
        request.node.user_properties.append(("stop_latency_s", round(t_stop - t_detect, 6)))
        assert t_stop - t_detect <= LIMIT_S, (t_stop - t_detect, fault.name)

        # when the device's output reached zero
        if fault.device == "obeys":
            t_zero = emu.output_zero_since(t_inject)
            assert t_zero is not None and emu.mode == Sm2StimulationMode.START
            request.node.user_properties.append(("device_zero_latency_s", round(t_zero - t_detect, 6)))
            assert t_zero - t_detect <= LIMIT_S, (t_zero - t_detect, fault.name)
        elif fault.device == "hung":
            deadline = time.monotonic() + emu.watchdog_s + 5.0  # (a bound on the wait, not on the device)
            while emu.output_on and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not emu.output_on and emu.drops == 1
            # its outputs off at the first tick past the watchdog's 1.2 s (however late a loaded machine ran it)
            _, due, previous, tick = [e for e in emu.timer_log if e[0] == "drop"][-1]
            assert previous <= due < tick and emu.output_log[-1][0] == tick
        else:
            assert emu.gone

    # the record: complete, in order, with the error and the final state, read back from the file
    with Store.open(db) as again:
        detail = again.get_session(record.id)
    seqs = [e.seq for e in detail.events]
    assert seqs == list(range(1, len(seqs) + 1)) and detail.event_count == len(seqs)
    assert [e.payload["message"] for e in detail.events if e.kind == "error"] == [runner.error]
    states = [e.payload for e in detail.events if e.kind == "state"]
    assert [p["state"] for p in states[:4]] == ["running", "prepare", "contact-check", "ramp-up"]
    assert states[-2] == {"t_s": states[-2]["t_s"], "state": "failed", "reason": runner.error}  # the runner's
    assert detail.events[-1].kind == "state" and detail.events[-1].payload == {"state": "failed"}  # the store's end
    assert detail.state == "failed" and detail.summary is not None and detail.summary["error"] == runner.error


def test_pulses_and_charge_are_counted_at_the_currents_sent():
    """At a constant 10 mA: charge = pulses × 10 mA × (100 µs + 100 µs), and the count matches 100 Hz of running time."""
    plan = _plan()
    with RehaStim2Emulator() as emu, RehaStim2(emu.port) as dev:
        dev.connect()
        dev.configure(plan)
        dev.start()
        dev.set_intensity("knee-1", 10.0)
        time.sleep(0.6)
        dev.pause()
        time.sleep(0.3)  # nothing is counted while paused
        dev.resume()
        time.sleep(0.4)
        dev.stop()
        on_s = sum(b - a for (a, outs), (b, _) in zip(emu.output_log, emu.output_log[1:]) if outs)
        status = dev.status()
        charge = dev.charge_delivered_uc()
    assert status.pulses_delivered == pytest.approx(100.0 * on_s, abs=4)
    assert charge["knee-1"] == pytest.approx(status.pulses_delivered * 10.0 * 200.0 * 1e-3, rel=1e-9)


def test_a_hung_session_is_stopped_by_the_driver_itself():
    """The session's thread stops stepping (a hung console): the driver stops stimulation on its own."""
    plan = _plan()
    events: list[tuple[str, dict[str, Any]]] = []
    with RehaStim2Emulator() as emu, RehaStim2(emu.port) as dev:
        dev.connect()
        dev.configure(plan)
        runner = Runner(dev, slew_ma_per_s=100.0, start_ma={"knee-1": 10.0}, duration_s=60.0, keepalive_s=0.3,
                        on_event=lambda kind, payload: events.append((kind, payload)))
        runner.run(step_s=0.05, until_s=0.5)
        assert emu.output_on
        last_step = runner._last_step_wall  # the session's last sign of life
        time.sleep(0.6)  # no step: the session hangs
        assert dev.state == DeviceState.FAULT and "watchdog: the session did not check in" in dev.status().error
        stop_at = emu.output_zero_since(last_step)
        assert stop_at is not None and 0.3 <= stop_at - last_step <= 0.3 + 0.1
        runner.step(0.05)  # the session wakes up: it fails with the cause
    assert runner.state == SessionState.FAILED and "watchdog" in runner.error
    assert [k for k, _ in events][-3:] == ["error", "dose", "state"]
