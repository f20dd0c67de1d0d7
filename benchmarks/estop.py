"""Emergency stop to zero output, measured on the device emulators.

Usage (from the repository root)::

    python -m benchmarks.estop [--trials 1000] [--device rehastim2|p24|all]

The emulator runs in its own process (``electrostim emulate DEVICE --json``, which
prints every change of its outputs with the time it received the command). Each trial
configures the driver with an approved plan, starts a session through the session
engine, waits until the emulator reports current on its outputs, then calls
``Runner.emergency_stop()``. The figure is the time from that call to the moment the
emulator received the command that set its outputs to zero (StopChannelListMode on the
RehaStim2, MlStop on the P24); both processes read the same system monotonic clock.
The emulator answers after 0.5 ms (the real devices answer within 100 ms, on average
in less than 20 ms). ``--in-process`` runs the emulator on a thread instead.
Target: p99 <= 20 ms over 1000 trials.
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import subprocess
import sys
import threading
import time

TARGET_P99_MS = 20.0


def _plan(device: str):
    import electrostim as es
    from electrostim.program import validate_program

    data = es.load_program("tens-conventional").model_dump(mode="python")
    for ch in data["channels"]:
        ch["stimulus"]["ramp_up_s"] = 0.0  # full current from the first pulse: every trial starts at once
        ch["stimulus"]["pulse"]["interphase_gap_us"] = 100.0
    data["channels"] = data["channels"][:1]
    program = validate_program(data, source="benchmark")
    a = es.assess(program, device=device)
    return a.approve(confirm=a.verdict == "needs_confirmation", confirmed_by="benchmark")


class EmulatorProcess:
    """``electrostim emulate DEVICE --json`` in its own process; its output changes as they are printed."""

    def __init__(self, device: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "electrostim", "emulate", device, "--json"],
                                     stdout=subprocess.PIPE, text=True)
        self.port = json.loads(self.proc.stdout.readline())["port"]  # type: ignore[union-attr]
        self.changes: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.changes.put(json.loads(line))

    def wait(self, on: bool, timeout_s: float = 2.0) -> float:
        """The time of the next change to outputs on (or all off)."""
        deadline = time.monotonic() + timeout_s
        while True:
            change = self.changes.get(timeout=max(0.001, deadline - time.monotonic()))
            if bool(change["outputs"]) == on:
                return change["t"]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def trials(device: str, n: int, in_process: bool = False) -> list[float]:
    """Latencies (ms) of ``n`` emergency stops."""
    from electrostim import devices
    from electrostim.session import Runner

    names = {"rehastim2": ("RehaStim2", "RehaStim2Emulator"), "p24": ("P24", "P24Emulator")}[device]
    driver = getattr(devices, names[0])
    plan = _plan(device)
    label = plan.envelope.outputs[0].label
    out: list[float] = []
    emu = getattr(devices, names[1])().start() if in_process else EmulatorProcess(device)
    try:
        with driver(emu.port) as dev:
            dev.connect()
            for _ in range(n):
                dev.configure(plan)
                r = Runner(dev, start_ma={label: 10.0}, slew_ma_per_s=1000.0)
                r.begin()
                if in_process:
                    while not emu.output_on:
                        r.step(0.005)
                        time.sleep(0.001)
                else:
                    r.step(0.005)
                    emu.wait(on=True)
                t0 = time.monotonic()
                r.emergency_stop("benchmark")
                zero = emu.output_zero_since(t0) if in_process else emu.wait(on=False)
                if zero is None:
                    raise RuntimeError("the output did not go to zero")
                out.append((zero - t0) * 1000.0)
    finally:
        emu.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--device", choices=["rehastim2", "p24", "all"], default="all")
    ap.add_argument("--in-process", action="store_true", help="run the emulator on a thread of this process")
    args = ap.parse_args()
    ok = True
    for device in (["rehastim2", "p24"] if args.device == "all" else [args.device]):
        lat = sorted(trials(device, args.trials, args.in_process))
        p99 = lat[min(len(lat) - 1, int(round(0.99 * len(lat))) - 1)]
        met = p99 <= TARGET_P99_MS
        ok &= met
        where = "in this process" if args.in_process else "in its own process"
        print(f"{device} (emulator {where}): emergency stop to zero output over {len(lat)} trials: median {statistics.median(lat):.2f} ms, "
              f"p99 {p99:.2f} ms, max {lat[-1]:.2f} ms; target p99 <= {TARGET_P99_MS:g} ms: {'met' if met else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
