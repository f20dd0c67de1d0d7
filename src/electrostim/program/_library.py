"""The preset library (package data) and the user's own program files and folders.

A user program is a ``.toml`` file in one of :func:`program_dirs`. One bad file never
hides the others: every file that loads is listed and can be used by its id, and every
file that cannot is reported on its own line (:func:`user_program_problems`). An id
claimed twice (a user file that reuses a preset id, or two user files with one id) is
refused wherever that id is asked for, with one message naming both files: a program
that runs must be the one its author meant.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from ..errors import ProgramError, UnknownProgramError
from ._io import load_program_file, shown_path, validate_program
from ._models import Program

__all__ = ["ProgramEntry", "ProgramProblem", "list_programs", "load_program", "program_dirs", "user_program_problems",
           "PROGRAM_PATH_ENV"]

#: Environment variable: extra folders of program files, separated like PATH.
PROGRAM_PATH_ENV = "ELECTROSTIM_PROGRAM_PATH"


@dataclass(frozen=True)
class ProgramEntry:
    """A program the library can find: its id, name and where it comes from.

    Attributes
    ----------
    id, name, modality : str
        The program's id, name and modality.
    origin : str
        ``"preset"`` or the user file's path.
    program : Program
        The program.
    """

    id: str
    name: str
    modality: str
    origin: str  # "preset" or the user file's path
    program: Program


@dataclass(frozen=True)
class ProgramProblem:
    """A user program file that cannot be used, and why.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    message : str
        One line: the file, what is wrong, what is allowed.
    program_id : str or None
        The id the file claims, when the problem is an id claimed twice (that id is
        then refused everywhere until one file is renamed); None when the file itself
        is bad.
    """

    path: Path
    message: str
    program_id: str | None = None


def program_dirs() -> list[Path]:
    """Folders searched for user programs: ``$ELECTROSTIM_PROGRAM_PATH`` then the user data folder.

    Returns
    -------
    list of pathlib.Path
        The folders, in search order (they need not exist).
    """
    import platformdirs

    dirs = [Path(p) for p in os.environ.get(PROGRAM_PATH_ENV, "").split(os.pathsep) if p]
    dirs.append(Path(platformdirs.user_data_dir("electrostim")) / "programs")
    return dirs


def _preset_folder():
    return resources.files(__package__).joinpath("presets")


@cache
def _presets() -> dict[str, tuple[str, Program]]:
    """Preset id -> (its file, its program)."""
    import tomllib

    out: dict[str, tuple[str, Program]] = {}
    for item in sorted(_preset_folder().iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            program = validate_program(tomllib.loads(item.read_text(encoding="utf-8")), source=f"preset {item.name}")
            out[program.id] = (str(item), program)
    return out


def _one_line(message: str) -> str:
    """A (possibly multi-line) validation message on one line."""
    lines = [ln.strip().removeprefix("- ") for ln in message.splitlines() if ln.strip()]
    return lines[0] if len(lines) == 1 else f"{lines[0]}: " + "; ".join(lines[1:])


@dataclass(frozen=True)
class _Scan:
    programs: dict[str, tuple[Path, Program]]  # the user programs that can be used, by id
    problems: list[ProgramProblem]
    refused: dict[str, str]  # id claimed twice -> the message naming both files


def _scan() -> _Scan:
    presets = _presets()
    claims: dict[str, list[tuple[Path, Program]]] = {}
    problems: list[ProgramProblem] = []
    seen: set[Path] = set()
    files: list[Path] | list[str]
    for folder in program_dirs():
        try:
            if not folder.is_dir():
                continue
            files = sorted(folder.glob("*.toml"))
        except OSError as exc:
            problems.append(ProgramProblem(folder, f"{shown_path(folder)}: the program folder cannot be read "
                                                   f"({exc.strerror or exc})"))
            continue
        for f in files:
            try:
                key = f.resolve()
            except (OSError, RuntimeError):
                key = f.absolute()
            if key in seen:  # a folder listed twice, or a link to a file already read
                continue
            seen.add(key)
            try:
                program = load_program_file(f)
            except ProgramError as exc:
                problems.append(ProgramProblem(f, _one_line(str(exc))))
                continue
            claims.setdefault(program.id, []).append((f, program))
    programs: dict[str, tuple[Path, Program]] = {}
    refused: dict[str, str] = {}
    for pid, owners in claims.items():
        files = [shown_path(f) for f, _ in owners]
        if pid in presets:
            message = (f"program id {pid!r} is claimed twice: by the preset {presets[pid][0]} and by "
                       f"{' and by '.join(files)}; a user program needs an id of its own: change the id in "
                       f"{files[0]}")
        elif len(owners) > 1:
            message = (f"program id {pid!r} is claimed twice: by {' and by '.join(files)}; each program needs an "
                       "id of its own: change the id in one of them")
        else:
            programs[pid] = owners[0]
            continue
        refused[pid] = message
        problems.extend(ProgramProblem(f, f"{shown_path(f)}: {message}", pid) for f, _ in owners)
    return _Scan(programs, problems, refused)


def user_program_problems() -> list[ProgramProblem]:
    """The user program files that cannot be used, one :class:`ProgramProblem` each.

    A file that cannot be read, is not TOML or does not validate, and every file
    whose id is claimed twice (with a preset or another user file), in folder order.

    Returns
    -------
    list of ProgramProblem
        Empty when every user program file can be used.

    Examples
    --------
    >>> from electrostim.program import user_program_problems
    >>> all(p.message.count("\\n") == 0 for p in user_program_problems())
    True
    """
    return _scan().problems


def list_programs(include_user: bool = True) -> list[ProgramEntry]:
    """Presets, then the user's programs: every program that can be loaded by its id.

    A user file that cannot be used is left out (see :func:`user_program_problems`);
    so is an id claimed twice, preset or not, since loading it is refused.

    Parameters
    ----------
    include_user : bool
        Also the user's programs (default), else the presets only.

    Returns
    -------
    list of ProgramEntry
        Presets in id order, then user programs in folder and file order.

    Examples
    --------
    >>> from electrostim.program import list_programs
    >>> "knee-oa-tens" in [e.id for e in list_programs(include_user=False)]
    True
    """
    scan = _scan() if include_user else _Scan({}, [], {})
    entries = [ProgramEntry(p.id, p.name, p.modality.value, "preset", p.model_copy(deep=True))
               for pid, (_, p) in _presets().items() if pid not in scan.refused]
    entries += [ProgramEntry(p.id, p.name, p.modality.value, str(f), p) for f, p in scan.programs.values()]
    return entries


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a name with a NUL, or too long for the system
        return False


def load_program(ref: str | os.PathLike[str]) -> Program:
    """Load a program by preset id, user-program id or file path.

    Every call returns a new object: changing it changes nothing for anyone else.

    Parameters
    ----------
    ref : str or path-like
        A preset id, a user-program id, or the path of a ``.toml`` file.

    Returns
    -------
    Program
        The validated program.

    Raises
    ------
    ProgramError
        The file does not load, or the id is claimed twice (the message names both files).
    UnknownProgramError
        No program has that id.

    Examples
    --------
    >>> from electrostim.program import load_program
    >>> load_program("nmes-quadriceps-tka").channels[0].stimulus.pulse.pulse_width_us
    250.0
    """
    text = os.fspath(ref)
    if text.endswith(".toml") or os.sep in text or (os.altsep and os.altsep in text) or _is_file(text):
        return load_program_file(text)
    scan = _scan()
    if text in scan.refused:
        raise ProgramError(f"{scan.refused[text]}. Until then {text!r} is refused.", [("id", scan.refused[text], text)])
    if text in _presets():
        # a copy: the cached preset is shared by the whole process, and a caller may change what it gets
        return _presets()[text][1].model_copy(deep=True)
    if text in scan.programs:
        return scan.programs[text][1]
    known = ", ".join(sorted((set(_presets()) | set(scan.programs)) - set(scan.refused)))
    unusable = [p for p in scan.problems if p.program_id is None]
    note = (f" ({len(unusable)} user program file{'s' if len(unusable) != 1 else ''} could not be loaded: "
            "'electrostim programs list' names them)") if unusable else ""
    raise UnknownProgramError(f"No program {text!r}: give a preset or user-program id ({known}) or a path to a "
                              f".toml file.{note}")
