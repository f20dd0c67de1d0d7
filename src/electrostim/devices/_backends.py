"""The one table of stimulator backends: a URL-like name opens a stimulator or an emulator.

=============  ==========================  =============================  ====================
name           opens                       profile (``safety`` table)     emulator
=============  ==========================  =============================  ====================
``sim``        :class:`SimulatedStimulator`  ``generic``                    —
``rehastim2``  :class:`RehaStim2` on PORT  ``rehastim2``                  :class:`RehaStim2Emulator`
``p24``        :class:`P24` on PORT        ``p24``                        :class:`P24Emulator`
=============  ==========================  =============================  ====================

A spec is ``sim`` or ``NAME:PORT`` (a serial device such as ``/dev/ttyUSB0``, the port
an emulator prints, or a pyserial URL such as ``loop://``). ``sim:PROFILE`` is the
simulated stimulator with another profile of the device table, e.g. ``sim:hvpc`` (a
high-voltage pulsed current stimulator, set in volts). The command line builds its
``--device`` choices and help from this table.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError

if TYPE_CHECKING:  # the table loads no driver until one is opened
    from ._stimulator import Stimulator

__all__ = ["Backend", "BACKENDS", "parse_backend", "open_stimulator", "open_emulator", "backend_help", "backend_profile"]


@dataclass(frozen=True)
class Backend:
    """One kind of stimulator: how to open it, its device profile, and its emulator (if any)."""

    name: str
    description: str
    profile: str
    needs_port: bool
    opener: Callable[..., Stimulator]
    emulator: Callable[..., Any] | None = None


def _sim(port: str | None = None) -> Stimulator:
    from ._simulated import SimulatedStimulator

    return SimulatedStimulator() if port is None else SimulatedStimulator(port)  # sim:PROFILE


def _rehastim2(port: str) -> Stimulator:
    from ._sciencemode2.driver import RehaStim2

    return RehaStim2(port)


def _p24(port: str) -> Stimulator:
    from ._sciencemode4.driver import P24

    return P24(port)


def _rehastim2_emulator(**options: Any) -> Any:
    from ._sciencemode2.emulator import RehaStim2Emulator

    return RehaStim2Emulator(**options)


def _p24_emulator(**options: Any) -> Any:
    from ._sciencemode4.emulator import P24Emulator

    return P24Emulator(**options)


#: Every backend by name, in the order the help lists them.
BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("sim", "the simulated stimulator, no hardware (default; sim:hvpc simulates a high-voltage pulsed "
                "current stimulator, set in volts)", "generic", False, _sim),
        Backend("rehastim2", "HASOMED RehaStim2 on a serial port, ScienceMode2", "rehastim2", True, _rehastim2,
                _rehastim2_emulator),
        Backend("p24", "HASOMED P24 / RehaMove3 on a serial port, ScienceMode4", "p24", True, _p24, _p24_emulator),
    )
}


def backend_help() -> str:
    """One line for ``--device``: every spec the table accepts."""
    return "; ".join(f"{b.name}{':PORT' if b.needs_port else ''}: {b.description}" for b in BACKENDS.values())


def _allowed() -> str:
    return ", ".join(repr(b.name + (":PORT" if b.needs_port else "")) for b in BACKENDS.values())


def parse_backend(spec: str) -> tuple[Backend, str | None]:
    """The backend and port of a spec (nothing is opened).

    Raises
    ------
    InvalidInputError
        An unknown name, a port missing or given where none is taken, or a port that
        does not exist.

    Examples
    --------
    >>> b, port = parse_backend("rehastim2:loop://")
    >>> b.profile, port
    ('rehastim2', 'loop://')
    >>> parse_backend("com3")
    Traceback (most recent call last):
    ...
    electrostim.errors.InvalidInputError: Invalid value for 'device': allowed 'sim', 'rehastim2:PORT', 'p24:PORT', but got 'com3'.
    """
    if not isinstance(spec, str):
        raise InvalidInputError(f"Invalid value for 'device': allowed {_allowed()}, but got {spec!r}.")
    name, sep, port = spec.partition(":")
    if name == "sim" and sep:
        return BACKENDS["sim"], _sim_profile(spec, port)
    backend = BACKENDS.get(name)
    if backend is None or (backend.needs_port and not port) or (not backend.needs_port and sep):
        raise InvalidInputError(f"Invalid value for 'device': allowed {_allowed()}, but got {spec!r}.")
    if not backend.needs_port:
        return backend, None
    if "://" not in port and not os.path.exists(port):
        raise InvalidInputError(f"Invalid value for 'device': the serial port {port!r} does not exist "
                                "(plug the stimulator in, or start `electrostim emulate` and use the port it prints).")
    return backend, port


def _sim_profile(spec: str, profile: str) -> str:
    """The profile of a ``sim:PROFILE`` spec, checked against the device table."""
    from ..safety import device_profiles  # the table only: loaded when a profile is named

    profiles = list(device_profiles())
    if profile not in profiles:
        raise InvalidInputError(f"Invalid value for 'device': the simulated stimulator takes a device profile after "
                                f"'sim:' (allowed {', '.join(repr('sim:' + p) for p in profiles)}), but got {spec!r}.")
    return profile


def backend_profile(spec: str) -> str:
    """The device profile a spec delivers with: its backend's, or PROFILE of ``sim:PROFILE``.

    Raises
    ------
    InvalidInputError
        As :func:`parse_backend`.

    Examples
    --------
    >>> backend_profile("sim"), backend_profile("sim:hvpc"), backend_profile("p24:loop://")
    ('generic', 'hvpc', 'p24')
    """
    backend, port = parse_backend(spec)
    return port if backend.name == "sim" and port is not None else backend.profile


def open_stimulator(spec: str) -> Stimulator:
    """A stimulator (not yet connected) for a spec: ``sim``, ``sim:PROFILE``, ``rehastim2:PORT`` or ``p24:PORT``.

    Examples
    --------
    >>> open_stimulator("sim").profile.id, open_stimulator("sim:hvpc").profile.id
    ('generic', 'hvpc')
    """
    backend, port = parse_backend(spec)
    return backend.opener(port) if port is not None else backend.opener()  # sim:PROFILE passes its profile


def open_emulator(name: str, **options: Any) -> Any:
    """An emulator (not yet started) of a backend that has one: ``rehastim2`` or ``p24``."""
    backend = BACKENDS.get(name)
    if backend is None or backend.emulator is None:
        allowed = ", ".join(repr(b.name) for b in BACKENDS.values() if b.emulator is not None)
        raise InvalidInputError(f"Invalid value for 'device': allowed {allowed}, but got {name!r}.")
    return backend.emulator(**options)
