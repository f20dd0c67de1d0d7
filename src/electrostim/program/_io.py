"""Reading and validating program and patient files (TOML), with messages that teach."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import PatientError, ProgramFileError
from ._format import MAX_NESTING, format_validation_error, nesting_problem
from ._models import validate_program

__all__ = ["validate_program", "load_program_file", "load_patient_file", "read_toml", "format_validation_error",
           "MAX_FILE_BYTES", "MAX_NESTING", "shown_path"]

#: The largest program or patient file read, in bytes (1 MB; the largest preset is under 5 kB).
MAX_FILE_BYTES = 1_000_000

_BOM_UTF8 = b"\xef\xbb\xbf"
_BOM_UTF16 = (b"\xff\xfe", b"\xfe\xff")


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path as messages show it: as it is, or quoted with escapes if it holds invisible or control characters.

    Examples
    --------
    >>> shown_path("my program.toml")
    'my program.toml'
    >>> shown_path("a\\nb.toml")
    "'a\\\\nb.toml'"
    """
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _read_bytes(path: Path, shown: str, error: type[Exception]) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_FILE_BYTES`: checked before reading, never blocking."""
    allowed = f"allowed a regular file of at most {MAX_FILE_BYTES:,} bytes (1 MB)"
    try:
        mode = os.stat(path).st_mode  # stat never opens: a FIFO or a device is named, not read
    except FileNotFoundError:
        raise error(f"{shown}: no such file") from None
    except OSError as exc:
        raise error(f"{shown}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise error(f"{shown}: is a directory, expected a .toml file") from None
    if not stat.S_ISREG(mode):
        raise error(f"{shown}: is {_kind(mode)}, not a regular file; {allowed}")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise error(f"{shown}: cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())  # the file opened, which may not be the one stat saw
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{shown}: is {_kind(info.st_mode)}, not a regular file; {allowed}")
        if info.st_size > MAX_FILE_BYTES:
            raise error(f"{shown}: too large; {allowed}, but it has {info.st_size:,} bytes")
        try:
            data = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise error(f"{shown}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_FILE_BYTES:  # it grew, or says it is smaller than it is
        raise error(f"{shown}: too large; {allowed}, but it has more than {MAX_FILE_BYTES:,} bytes")
    return data


def read_toml(path: str | os.PathLike[str], error: type[Exception] = ProgramFileError) -> dict[str, Any]:
    """Read a TOML file, raising ``error`` with the file, line and cause on any problem.

    Only a regular file of at most :data:`MAX_FILE_BYTES` is read (a FIFO, a device
    such as ``/dev/zero`` or a directory is refused before reading). A UTF-8
    byte-order mark at its start is skipped. Tables and arrays may nest at most
    :data:`MAX_NESTING` levels.

    Parameters
    ----------
    path : str or path-like
        The file.
    error : type of Exception
        What to raise (:class:`~electrostim.errors.ProgramFileError` by default).

    Returns
    -------
    dict
        The TOML document.

    Raises
    ------
    Exception
        ``error``, one line naming the file, what is wrong and what is allowed.
    """
    path = Path(path)
    shown = shown_path(path)
    raw = _read_bytes(path, shown, error)
    skipped = 0
    if raw.startswith(_BOM_UTF8):  # editors on Windows write one; it is not part of the text
        raw, skipped = raw[len(_BOM_UTF8):], len(_BOM_UTF8)
    elif raw.startswith(_BOM_UTF16):
        raise error(f"{shown}: is UTF-16 text (it starts with a UTF-16 byte-order mark); allowed UTF-8 text: "
                    "save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start + skipped})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{shown}: not valid TOML: {exc}") from None
    except RecursionError:
        raise error(f"{shown}: not a usable TOML file: arrays or inline tables nested too deeply; allowed at "
                    f"most {MAX_NESTING} levels") from None
    problem = nesting_problem(data)
    if problem is not None:
        raise error(f"{shown}: {problem}")
    return data


def load_program_file(path: str | os.PathLike[str]):  # -> Program
    """Load and validate a program file.

    Parameters
    ----------
    path : str or path-like
        A program ``.toml`` file.

    Returns
    -------
    Program
        The validated program.

    Raises
    ------
    ProgramFileError
        The file cannot be read or is not TOML (see :func:`read_toml`).
    ProgramError
        It does not validate: one line for one problem, else a heading and a line per problem.
    """
    path = Path(path)
    return validate_program(read_toml(path), source=shown_path(path))


def load_patient_file(path: str | os.PathLike[str]):  # -> Patient
    """Load and validate a patient profile file.

    Parameters
    ----------
    path : str or path-like
        A patient ``.toml`` file.

    Returns
    -------
    Patient
        The validated profile.

    Raises
    ------
    PatientError
        The file cannot be read, is not TOML or does not validate.
    """
    from ._patient import Patient

    path = Path(path)
    data = read_toml(path, PatientError)
    try:
        return Patient.model_validate(data)
    except ValidationError as exc:
        raise PatientError(format_validation_error(exc, shown_path(path), Patient)[0]) from None
