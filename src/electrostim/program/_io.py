"""Reading and validating program and patient files (TOML), with messages that teach."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import PatientError, ProgramFileError
from ._format import format_validation_error
from ._models import validate_program

__all__ = ["validate_program", "load_program_file", "read_toml", "format_validation_error"]

def read_toml(path: Path, error: type[Exception] = ProgramFileError) -> dict[str, Any]:
    """Read a TOML file, raising ``error`` with the file, line and cause on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected a .toml file") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None


def load_program_file(path: str | Path):  # -> Program
    """Load and validate a program file."""
    path = Path(path)
    return validate_program(read_toml(path), source=str(path))


def load_patient_file(path: str | Path):  # -> Patient
    """Load and validate a patient profile file."""
    from ._patient import Patient

    path = Path(path)
    try:
        return Patient.model_validate(read_toml(path, PatientError))
    except ValidationError as exc:
        raise PatientError(format_validation_error(exc, str(path))[0]) from None
