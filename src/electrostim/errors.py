"""The exceptions electrostim raises.

Every error derives from one root, so ``except ElectrostimError`` catches all of
them, and each message says what was wrong, what is allowed and what was given::

    ElectrostimError
    ├── InvalidInputError            bad input from a person or a file (CLI exit code 2)
    │   ├── ProgramError             a program that does not validate
    │   │   └── ProgramFileError     a program file that cannot be read or parsed
    │   ├── UnknownProgramError      no preset or file by that name
    │   ├── PatientError             a patient profile that does not validate
    │   ├── UnknownSiteError         a body site that is not in the catalogue
    │   ├── UnknownDeviceError       a device profile that does not exist
    │   └── OptionError              any other option outside its allowed values
    ├── SafetyError                  the safety engine would not approve
    │   └── RefusedError             approval asked for a refused assessment
    ├── physics.fibres.BlockError    excitation without propagation (virtual-anode block)
    ├── store.StoreError             the session store failed (RecordNotFoundError, SessionStateError,
    │                                StoreNotFoundError and StoreLocationError (also InvalidInputErrors),
    │                                StoreDamagedError, StoreNotADatabaseError (damaged, and a bad location),
    │                                StoreReadOnlyError)
    ├── devices.DeviceError          a stimulator failed or vanished; output was stopped
    ├── devices.ProtocolError        bytes that are not a valid ScienceMode frame or message
    ├── devices.FieldRangeError      (an InvalidInputError) a message field outside the protocol's range
    └── session.SessionError         a session could not go on; output was stopped

The subclasses after ``SafetyError`` live with the code that raises them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "ElectrostimError",
    "InvalidInputError",
    "OptionError",
    "PatientError",
    "ProgramError",
    "ProgramFileError",
    "RefusedError",
    "SafetyError",
    "UnknownDeviceError",
    "UnknownProgramError",
    "UnknownSiteError",
    "check_option",
    "check_output_file",
]


class ElectrostimError(Exception):
    """Root of every error raised by electrostim."""


class InvalidInputError(ElectrostimError, ValueError):
    """Input that cannot be used; the message names what, what is allowed and what was given."""


class ProgramError(InvalidInputError):
    """A therapy program that does not validate.

    Parameters
    ----------
    message : str
        The whole message.
    problems : list of tuple
        ``(field, problem, given)`` for each problem found.
    """

    def __init__(self, message: str, problems: list[tuple[str, str, Any]] | None = None):
        super().__init__(message)
        self.problems = problems or []


class ProgramFileError(ProgramError):
    """A program file that cannot be read or is not valid TOML."""


class UnknownProgramError(InvalidInputError):
    """No preset, user program or file has that name."""


class PatientError(InvalidInputError):
    """A patient profile that does not validate."""


class UnknownSiteError(InvalidInputError):
    """A body-site label that is not in the site catalogue."""


class UnknownDeviceError(InvalidInputError):
    """A device capability profile that does not exist."""


class OptionError(InvalidInputError):
    """An option outside its allowed values."""


class SafetyError(ElectrostimError):
    """The safety engine would not approve a plan."""


class RefusedError(SafetyError):
    """Approval was asked for an assessment whose verdict is *refused*."""


def check_option(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise :class:`OptionError`.

    Examples
    --------
    >>> check_option("format", "csv", ["csv", "npz"])
    'csv'
    >>> check_option("format", "xls", ["csv", "npz"])
    Traceback (most recent call last):
    ...
    electrostim.errors.OptionError: Invalid value for 'format': allowed 'csv', 'npz', but got 'xls'.
    """
    allowed = list(allowed)
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise OptionError(f"Invalid value for {name!r}: allowed {choices}, but got {value!r}.")
    return value


def check_output_file(name: str, path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path if a file can be written there without creating a folder, else :class:`OptionError`.

    Writing a file never creates folders: a folder that does not exist is most often
    a typo, and nothing is created on bad input.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> check_output_file("path", folder / "s.csv") == folder / "s.csv"
    True
    >>> check_output_file("--output", folder / "new" / "s.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    electrostim.errors.OptionError: Invalid value for '--output': the folder .../new does not exist; allowed a file in an existing folder (no folder is created), but got .../new/s.csv. Nothing was written.
    """
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise OptionError(f"Invalid value for {name!r}: allowed a file, but {path} is a folder. Nothing was written.")
    if not parent.is_dir():
        problem = "is not a folder" if parent.exists() else "does not exist"
        raise OptionError(f"Invalid value for {name!r}: the folder {parent} {problem}; allowed a file in an existing "
                          f"folder (no folder is created), but got {path}. Nothing was written.")
    return path
