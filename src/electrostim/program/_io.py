"""Reading and validating program and patient files (TOML), with messages that teach."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import PatientError, ProgramError, ProgramFileError

__all__ = ["validate_program", "load_program_file", "read_toml", "format_validation_error"]

M = TypeVar("M", bound=BaseModel)

# discriminator tags pydantic puts in error locations; they are not field names
_TAGS = {
    "symmetric-biphasic", "asymmetric-biphasic", "monophasic", "sine-burst", "interferential",
    "frequency-sweep", "random-frequency", "alternating-frequency", "amplitude-sweep", "width-sweep",
}


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS or str(part).startswith("function-"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_error(exc: ValidationError, source: str) -> tuple[str, list[tuple[str, str, Any]]]:
    """Turn a pydantic error into one readable message and a list of ``(field, problem, given)``."""
    problems: list[tuple[str, str, Any]] = []
    lines = []
    for err in exc.errors(include_url=False):
        field = _loc(tuple(err["loc"]))
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        given = err.get("input")
        if err["type"] == "missing":
            text = f"{field}: required, but missing"
            given = None
        elif err["type"] == "extra_forbidden":
            text = f"{field}: unknown field (not part of the schema), given {given!r}"
        elif isinstance(given, (str, int, float, bool)) or given is None:
            text = f"{field}: {msg}; given {given!r}"
        else:
            text = f"{field}: {msg}"
            given = None
        problems.append((field, msg, given))
        lines.append(text)
    head = f"{source}: invalid ({len(lines)} problem{'s' if len(lines) != 1 else ''})"
    return head + "\n  - " + "\n  - ".join(lines), problems


def _validate(model: type[M], data: Any, source: str, error: type[Exception]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, problems = format_validation_error(exc, source)
        if issubclass(error, ProgramError):
            raise error(message, problems) from None
        raise error(message) from None


def validate_program(data: Any, source: str = "program"):  # -> Program
    """Validate a program from a mapping, raising :class:`~electrostim.errors.ProgramError` on any problem."""
    from ._models import Program

    if not isinstance(data, dict):
        raise ProgramError(f"{source}: a program must be a table of fields, but got {type(data).__name__}")
    return _validate(Program, data, source, ProgramError)


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
    return _validate(Patient, read_toml(path, PatientError), str(path), PatientError)
