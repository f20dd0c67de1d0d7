"""Emergency stop to zero output, measured on the device emulators.

Usage (from the repository root)::

    python -m benchmarks.estop [--trials 1000] [--device rehastim2|p24|all]

Each trial configures the driver with an approved plan, starts a session through the
session engine, waits until the emulator's outputs carry current, then calls
``Runner.emergency_stop()``. The figure is the time from that call to the moment the
emulator received the command that set its outputs to zero (StopChannelListMode on the
RehaStim2, MlStop on the P24), both read from the same monotonic clock. The emulator
answers after 0.5 ms, as the real devices answer within 100 ms (average < 20 ms).
Target: p99 <= 20 ms over 1000 trials.
"""

from __future__ import annotations

import argparse
import statistics
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


def trials(device: str, n: int) -> list[float]:
    """Latencies (ms) of ``n`` emergency stops."""
    from electrostim import devices
    from electrostim.session import Runner

    names = {"rehastim2": ("RehaStim2", "RehaStim2Emulator"), "p24": ("P24", "P24Emulator")}[device]
    driver, emulator = (getattr(devices, n) for n in names)
    plan = _plan(device)
    label = plan.envelope.outputs[0].label
    out: list[float] = []
    with emulator() as emu, driver(emu.port) as dev:
        dev.connect()
        for _ in range(n):
            dev.configure(plan)
            r = Runner(dev, start_ma={label: 10.0}, slew_ma_per_s=1000.0)
            r.begin()
            deadline = time.monotonic() + 1.0
            while not emu.output_on:
                r.step(0.005)
                time.sleep(0.001)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {device} emulator never carried current: {r.state.value} {r.error}")
            t0 = time.monotonic()
            r.emergency_stop("benchmark")
            zero = emu.output_zero_since(t0)
            if zero is None:
                raise RuntimeError("the output did not go to zero")
            out.append((zero - t0) * 1000.0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--device", choices=["rehastim2", "p24", "all"], default="all")
    args = ap.parse_args()
    ok = True
    for device in (["rehastim2", "p24"] if args.device == "all" else [args.device]):
        lat = sorted(trials(device, args.trials))
        p99 = lat[min(len(lat) - 1, int(round(0.99 * len(lat))) - 1)]
        met = p99 <= TARGET_P99_MS
        ok &= met
        print(f"{device}: emergency stop to zero output over {len(lat)} trials: median {statistics.median(lat):.2f} ms, "
              f"p99 {p99:.2f} ms, max {lat[-1]:.2f} ms; target p99 <= {TARGET_P99_MS:g} ms: {'met' if met else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
