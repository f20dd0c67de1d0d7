"""The preset library (package data) and the user's own program files and folders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from ..errors import ProgramError, UnknownProgramError
from ._io import load_program_file, read_toml, validate_program
from ._models import Program

__all__ = ["ProgramEntry", "list_programs", "load_program", "program_dirs", "PROGRAM_PATH_ENV"]

#: Environment variable: extra folders of program files, separated like PATH.
PROGRAM_PATH_ENV = "ELECTROSTIM_PROGRAM_PATH"


@dataclass(frozen=True)
class ProgramEntry:
    """A program the library can find: its id, name and where it comes from."""

    id: str
    name: str
    modality: str
    origin: str  # "preset" or the user file's path
    program: Program


def program_dirs() -> list[Path]:
    """Folders searched for user programs: ``$ELECTROSTIM_PROGRAM_PATH`` then the user data folder."""
    import platformdirs

    dirs = [Path(p) for p in os.environ.get(PROGRAM_PATH_ENV, "").split(os.pathsep) if p]
    dirs.append(Path(platformdirs.user_data_dir("electrostim")) / "programs")
    return dirs


@cache
def _presets() -> dict[str, Program]:
    out: dict[str, Program] = {}
    folder = resources.files(__package__).joinpath("presets")
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            import tomllib

            program = validate_program(tomllib.loads(item.read_text(encoding="utf-8")), source=f"preset {item.name}")
            out[program.id] = program
    return out


def _user_programs() -> dict[str, tuple[Path, Program]]:
    out: dict[str, tuple[Path, Program]] = {}
    presets = _presets()
    for d in program_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.toml")):
            program = validate_program(read_toml(f), source=str(f))
            if program.id in presets:
                raise ProgramError(f"{f}: program id {program.id!r} is already a preset id; give your program another id")
            if program.id in out:
                raise ProgramError(f"{f}: program id {program.id!r} is also defined in {out[program.id][0]}")
            out[program.id] = (f, program)
    return out


def list_programs(include_user: bool = True) -> list[ProgramEntry]:
    """Presets, then the user's programs.

    Examples
    --------
    >>> from electrostim.program import list_programs
    >>> "knee-oa-tens" in [e.id for e in list_programs(include_user=False)]
    True
    """
    entries = [ProgramEntry(p.id, p.name, p.modality.value, "preset", p.model_copy(deep=True)) for p in _presets().values()]
    if include_user:
        entries += [ProgramEntry(p.id, p.name, p.modality.value, str(f), p) for f, p in _user_programs().values()]
    return entries


def load_program(ref: str | os.PathLike[str]) -> Program:
    """Load a program by preset id, user-program id or file path.

    Every call returns a new object: changing it changes nothing for anyone else.

    Examples
    --------
    >>> from electrostim.program import load_program
    >>> load_program("nmes-quadriceps-tka").channels[0].stimulus.pulse.pulse_width_us
    250.0
    """
    text = os.fspath(ref)
    if text.endswith(".toml") or os.sep in text or Path(text).is_file():
        return load_program_file(text)
    if text in _presets():
        # a copy: the cached preset is shared by the whole process, and a caller may change what it gets
        return _presets()[text].model_copy(deep=True)
    users = _user_programs()
    if text in users:
        return users[text][1]
    known = ", ".join(sorted(set(_presets()) | set(users)))
    raise UnknownProgramError(f"No program {text!r}: give a preset or user-program id ({known}) or a path to a .toml file.")
