"""``electrostim emulate``: a stimulator emulator on a pseudo-terminal, for trying the serial drivers without hardware."""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from ._app import _guard, app, interruption_handled, out


def _emulated() -> type[StrEnum]:
    from ..devices import BACKENDS  # the backend table only

    return cast(type[StrEnum], StrEnum("EmulatedDevice", {b.name: b.name for b in BACKENDS.values() if b.emulator is not None}))


#: the devices that have an emulator, from the backend table
if TYPE_CHECKING:  # made at run time: to mypy, a StrEnum
    EmulatedDevice = StrEnum
else:
    EmulatedDevice = _emulated()


def make_emulator(device: str, response_delay_ms: float) -> Any:  # a PtyEmulator (open_emulator says Any)
    """The emulator for a device id (from the backend table)."""
    from ..session import check_number, open_emulator

    delay = check_number("--response-delay-ms", response_delay_ms, low=0.0, high=1000.0, low_open=False)
    return open_emulator(device, response_delay_s=delay / 1000.0)


def _line(data: dict) -> None:
    """One JSON object on one line, flushed at once (a script reads them as they come)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _describe(outputs: dict) -> str:
    if not outputs:
        return "all outputs off"
    return ", ".join(f"ch{ch} {o.current_ma:g} mA {o.pulse_width_us:g} µs" for ch, o in sorted(outputs.items()))


@app.command()
@_guard
def emulate(
    device: Annotated[EmulatedDevice, typer.Argument(help="the device to emulate")],
    response_delay_ms: Annotated[float, typer.Option("--response-delay-ms", help="time before each answer (the device allows 100 ms)")] = 0.5,
    duration_s: Annotated[float | None, typer.Option("--duration-s", help="stop after this long (default: until Ctrl-C)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="print the port as JSON, then one JSON line per output change")] = False,
) -> None:
    """Emulate a RehaStim2 or P24 on a pseudo-terminal and print its port; connect with
    ``electrostim run ID --device rehastim2:PORT`` (or p24:PORT), as many sessions as you
    like, one after another, as to a device on its cable. Runs until Ctrl-C.

    The emulator keeps the protocol's timing (ScienceMode2: Init every 500 ms until
    acknowledged, the link dropped after 1.2 s of silence; ScienceMode4: stimulation
    stops without a poll for 1.5 s) and prints every change of its outputs.
    """
    if duration_s is not None:
        from ..session import check_number

        check_number("--duration-s", duration_s, low=0.0, high=7 * 24 * 3600.0)
    emu = make_emulator(device.value, response_delay_ms)
    stop = {"now": False}

    def _stop(*_: object) -> None:
        stop["now"] = True

    previous = signal.signal(signal.SIGTERM, _stop)
    emu.start()
    try:
        if json_:
            _line({"device": device.value, "port": emu.port})
        else:
            out.print(f"{emu.name} emulator on [bold]{emu.port}[/bold]")
            out.print(f"connect with: electrostim run knee-oa-tens --device {device.value}:{emu.port}")
            out.print("(one session after another, as many as you like; Ctrl-C stops)")
        seen = len(emu.output_log)
        t_end = None if duration_s is None else time.monotonic() + duration_s
        while not stop["now"] and (t_end is None or time.monotonic() < t_end):
            time.sleep(0.01)
            new = emu.output_log[seen:]  # the emulator's thread appends meanwhile: count what was taken
            seen += len(new)
            for stamp, outputs in new:
                wall = datetime.now().strftime("%H:%M:%S.%f")[:-3]
                if json_:
                    _line({"t": round(stamp, 6), "outputs": {str(ch): [o.current_ma, o.pulse_width_us]
                                                                   for ch, o in outputs.items()}})
                else:
                    out.print(f"{wall}  {_describe(outputs)}")
    except KeyboardInterrupt:
        interruption_handled()  # Ctrl-C is how an emulator is closed
    finally:
        emu.close()
        signal.signal(signal.SIGTERM, previous)
    if not json_:
        out.print("emulator closed")
