"""Reading and checking the data files of ``electrostim.physics`` (TOML shipped beside the code).

Every table of numbers about fibres and tissue lives in a TOML file with its sources:
``fibre_models.toml`` (membrane and geometry parameters), ``fibre_classes.toml``
(populations) and ``field/tissues.toml`` (layers per body site, and the preset that
stands in for sites without one). These helpers read such a file and check its values,
so that a broken file gives one line naming the file, the place and what is wrong.

Examples
--------
>>> _number("x.toml [mrg]", "gnabar", 3.0)
3.0
>>> _number("x.toml [mrg]", "gnabar", "3")
Traceback (most recent call last):
...
electrostim.errors.InvalidInputError: Invalid data file x.toml [mrg]: gnabar must be a number, but got '3'.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Set as AbstractSet
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError

__all__: list[str] = []


def _fail(where: str, problem: str) -> InvalidInputError:
    """The error for a broken data file: ``Invalid data file <file> [<table>]: <problem>.``"""
    return InvalidInputError(f"Invalid data file {where}: {problem}.")


def read_toml(package: str, name: str, path: str | Path | None = None) -> tuple[dict[str, Any], str]:
    """Parse a data file: ``path`` when given, else the file ``name`` shipped in ``package``.

    Returns
    -------
    (dict, str)
        The parsed table and the name to use in messages.

    Raises
    ------
    InvalidInputError
        The file cannot be read or is not valid TOML.
    """
    where = str(path) if path is not None else name
    try:
        if path is not None:
            text = Path(path).read_text(encoding="utf-8")
        else:
            text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
        return tomllib.loads(text), where
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _fail(where, " ".join(str(exc).split())) from None


def _table(where: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"{key} must be a table, but got {value!r}")
    return value


def _number(where: str, key: str, value: Any, *, lo: float = -math.inf, hi: float = math.inf,
            lo_open: bool = False) -> float:
    """A finite number (not a boolean) in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(where, f"{key} must be a number, but got {value!r}")
    v = float(value)
    if v < lo or v > hi or (lo_open and v == lo):
        low = f"> {lo:g}" if lo_open else f">= {lo:g}"
        rng = low if math.isinf(hi) else f"{low} and <= {hi:g}"
        raise _fail(where, f"{key} must be {rng}, but got {value!r}")
    return v


def _integer(where: str, key: str, value: Any, *, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise _fail(where, f"{key} must be a whole number >= {lo}, but got {value!r}")
    return int(value)


def _text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"{key} must be a non-empty string, but got {value!r}")
    return value


def _numbers(where: str, key: str, value: Any, *, length: int | None = None, min_length: int = 1) -> list[float]:
    """A list of finite numbers, of ``length`` items (or at least ``min_length``)."""
    if not isinstance(value, list) or (length is not None and len(value) != length) or len(value) < min_length:
        size = f"{length}" if length is not None else f"at least {min_length}"
        raise _fail(where, f"{key} must be a list of {size} numbers, but got {value!r}")
    return [_number(where, f"{key}[{i}]", v) for i, v in enumerate(value)]


def _keys(where: str, table: dict[str, Any], required: AbstractSet[str], optional: AbstractSet[str] = frozenset()) -> None:
    """Every required key is there and no other key than the optional ones."""
    missing = sorted(required - set(table))
    if missing:
        raise _fail(where, f"missing keys {missing}")
    extra = sorted(set(table) - required - set(optional))
    if extra:
        raise _fail(where, f"unknown keys {extra}; allowed {sorted(set(required) | set(optional))}")
