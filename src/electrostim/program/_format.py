"""Readable messages from pydantic validation errors: field, problem, what is allowed, value given."""

from __future__ import annotations

import difflib
import math
import re
import types
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

__all__ = ["format_validation_error", "show_value", "closest_name"]

# discriminator values of the program's tagged unions, by discriminator field
_ALLOWED_TAGS = {
    "shape": ("symmetric-biphasic", "asymmetric-biphasic", "monophasic", "sine-burst", "interferential"),
    "kind": ("frequency-sweep", "random-frequency", "alternating-frequency", "amplitude-sweep", "width-sweep"),
}
# discriminator tags pydantic puts in error locations; they are not field names
_TAGS = set(_ALLOWED_TAGS["shape"]) | set(_ALLOWED_TAGS["kind"])

_NUMBER_TYPES = ("float_type", "int_type", "int_from_float", "float_parsing", "int_parsing", "finite_number")
# errors where a number was expected, or compared (a range, a fixed value such as schema_version = 1)
_NUMERIC_ERRORS = (*_NUMBER_TYPES, "literal_error", "greater_than", "greater_than_equal", "less_than",
                   "less_than_equal", "multiple_of")


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


def show_value(value: Any) -> str:
    """A value as a message shows it: TOML spelling for booleans and non-finite numbers, long values shortened.

    Examples
    --------
    >>> show_value(True), show_value(float("-inf")), show_value("knée"), show_value({"a": 1})
    ('true', '-inf', "'knée'", 'a table')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        text = str(value)
        return text if len(text) <= 24 else f"{text[:12]}… (a whole number of {len(text.lstrip('-'))} digits)"
    if isinstance(value, str):
        if len(value) <= 60:
            return repr(value)
        return repr(value[:50])[:-1] + f"…' ({len(value)} characters)"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"an array of {len(value)} value{'s' if len(value) != 1 else ''}"
    if value is None:
        return "nothing"
    return f"{value} (a {type(value).__name__})"


# --------------------------------------------------------------------------- where an error points in the schema


def _unwrap(tp: Any, meta: list[Any]) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` (collecting its constraints) and ``X | None``."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            args = get_args(tp)
            tp = args[0]
            for m in args[1:]:
                meta = [*meta, *(m.metadata if isinstance(m, FieldInfo) else [m])]
            continue
        if origin in (Union, types.UnionType):
            args = tuple(a for a in get_args(tp) if a is not type(None))
            if len(args) == 1:
                tp = args[0]
                continue
        return tp, meta


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tag(model: type[BaseModel]) -> Any:
    for key in _ALLOWED_TAGS:
        field = model.model_fields.get(key)
        if field is not None:
            return field.default
    return None


def _resolve(root: type[BaseModel] | None, loc: tuple[Any, ...]) -> tuple[Any, list[Any]]:
    """The type at ``loc`` below ``root`` and its constraints (``(None, [])`` where the schema has no such place)."""
    if root is None:
        return None, []
    tp: Any = root
    meta: list[Any] = []
    for part in loc:
        tp, meta = _unwrap(tp, meta)
        if isinstance(part, str) and part.startswith("function-"):
            continue
        if get_origin(tp) is dict and len(get_args(tp)) == 2:  # a table keyed by name (a phase's channels)
            tp, meta = get_args(tp)[1], []
            continue
        if isinstance(part, int):
            if get_origin(tp) in (list, tuple) and get_args(tp):
                tp, meta = get_args(tp)[0], []
                continue
            return None, []
        if get_origin(tp) in (Union, types.UnionType):
            pick = next((m for m in get_args(tp) if _is_model(m) and _tag(m) == part), None)
            if pick is None:
                return None, []
            tp, meta = pick, []
            continue
        if _is_model(tp) and part in tp.model_fields:
            field = tp.model_fields[part]
            tp, meta = field.annotation, list(field.metadata)
            continue
        return None, []
    return _unwrap(tp, meta)


def _number(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def _allowed(tp: Any, meta: list[Any]) -> str | None:
    """What a place in the schema allows, in words."""
    if tp in (int, float):
        words = "a whole number" if tp is int else "a finite number"
        low = high = ""
        for m in meta:
            if isinstance(m, at.Gt):
                low = f"{_number(m.gt)} < "
            elif isinstance(m, at.Ge):
                low = f"{_number(m.ge)} <= "
            elif isinstance(m, at.Lt):
                high = f" < {_number(m.lt)}"
            elif isinstance(m, at.Le):
                high = f" <= {_number(m.le)}"
        if low and high:
            return f"{words} {low}x{high}"
        if low:
            return f"{words} x {'>' if '<=' not in low else '>='} {low.split()[0]}"
        if high:
            return f"{words} x{high}"
        return words
    if get_origin(tp) is Literal:
        return ", ".join(repr(a) for a in get_args(tp))
    if isinstance(tp, type) and issubclass(tp, Enum):
        return ", ".join(repr(m.value) for m in tp)
    if tp is str:
        return "text in quotes"
    if _is_model(tp):
        return "a table"
    if get_origin(tp) in (list, tuple):
        return "an array"
    return None


# --------------------------------------------------------------------------- close names


def _osa(a: str, b: str) -> int:
    """Edit distance with transpositions (optimal string alignment)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def closest_name(name: str, candidates: Any) -> str | None:
    """The candidate ``name`` was most likely meant to be (a typo, a hyphen, a capital), or None.

    Examples
    --------
    >>> closest_name("sesion_duration_s", ["id", "name", "session_duration_s"])
    'session_duration_s'
    >>> closest_name("Frequency-Hz", ["frequency_hz", "pulse_width_us"])
    'frequency_hz'
    >>> closest_name("colour", ["id", "name"]) is None
    True
    """
    candidates = sorted(set(candidates))
    if not candidates or not isinstance(name, str):
        return None
    norm = name.strip().lower().replace("-", "_").replace(" ", "_")
    if norm in candidates:
        return norm
    dist, best = min((_osa(norm, c), c) for c in candidates)
    if dist <= (1 if len(best) <= 4 else 2 if len(best) <= 10 else 3):
        return best
    close = difflib.get_close_matches(norm, candidates, n=1, cutoff=0.8)
    return close[0] if close else None


# --------------------------------------------------------------------------- the message


#: a message that starts with the place it is about (``phases[0].channels: ...``)
_PATH_MESSAGE = re.compile(r"^[a-z_]+\[\d+\][\w.\[\]-]*: ")


def _clean(msg: str) -> str:
    msg = msg.removeprefix("Value error, ").rstrip(".")
    if msg.startswith("Input should be"):
        msg = "should be" + msg[len("Input should be"):]
    return msg


def _where(loc: tuple[Any, ...]) -> str:
    return _loc(loc) if loc else "the top level"


def format_validation_error(
    exc: ValidationError, source: str, model: type[BaseModel] | None = None,
    where: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None,
) -> tuple[str, list[tuple[str, str, Any]]]:
    """Turn a pydantic error into one readable message and a list of ``(field, problem, given)``.

    Parameters
    ----------
    exc : pydantic.ValidationError
        The error.
    source : str
        What was validated (a file name): the message starts with it.
    model : type of pydantic.BaseModel, optional
        The model that was validated: with it each problem also says what the field
        allows (a number's range, the choices), and an unknown field name gets the
        closest allowed name as a suggestion.
    where : callable, optional
        Maps a problem's location to the place the person wrote it (a value a channel
        inherited from the program's ``[stimulus]`` table is reported there, once).

    Returns
    -------
    message : str
        One line for one problem (``source: field: problem; allowed ...; given ...``);
        for several, a heading line and one line per problem.
    problems : list of tuple
        ``(field, problem, given)`` for each problem.

    Examples
    --------
    >>> from pydantic import BaseModel, ValidationError
    >>> class M(BaseModel):
    ...     rate_hz: float
    >>> try:
    ...     M.model_validate({"rate_hz": "fast"})
    ... except ValidationError as exc:
    ...     print(format_validation_error(exc, "m.toml", M)[0])
    m.toml: rate_hz: not a number; allowed a finite number; given 'fast'
    """
    errors = exc.errors(include_url=False)
    top_fields = set(model.model_fields) if model is not None else set()
    missing = {tuple(err["loc"]) for err in errors if err["type"] == "missing"}
    # an unknown key that names (or nearly names) a missing field speaks for it: one line, not two
    unknown: dict[int, tuple[str, str]] = {}
    answered: set[tuple[Any, ...]] = set()
    for i, err in enumerate(errors):
        if err["type"] == "extra_forbidden":
            unknown[i] = _unknown_key(tuple(err["loc"]), model, top_fields, missing, answered)
    problems: list[tuple[str, str, Any]] = []
    lines: list[str] = []

    def add(field: str, problem: str, given: Any, show_given: bool = True) -> None:
        sep = " " if problem.endswith("?") else "; "
        text = f"{field}: {problem}" + (f"{sep}given {show_value(given)}" if show_given else "")
        if text not in lines:
            lines.append(text)
            problems.append((field, problem, given if show_given else None))

    for i, err in enumerate(errors):
        loc = tuple(err["loc"])
        field = _loc(where(loc) if where is not None else loc)
        given = err.get("input")
        kind = err["type"]
        tp, meta = _resolve(model, loc)
        allowed = _allowed(tp, meta)
        allowed_text = f"; allowed {allowed}" if allowed else ""
        msg = _clean(err["msg"])
        # where a number belongs (a number type, a range, or a fixed number such as schema_version = 1)
        number_place = kind in _NUMBER_TYPES or (kind in _NUMERIC_ERRORS and _numeric_type(tp))
        if kind in ("union_tag_not_found", "union_tag_invalid"):
            key = str(err.get("ctx", {}).get("discriminator", "")).strip("'")
            tags = ", ".join(repr(t) for t in _ALLOWED_TAGS.get(key, ()))
            field = f"{field}.{key}"
            if kind == "union_tag_not_found":
                add(field, f"required, but missing; allowed {tags}", None, show_given=False)
            else:
                add(field, f"allowed {tags}", err.get("ctx", {}).get("tag"))
        elif kind == "missing":
            if loc not in answered:
                add(field, f"required, but missing{allowed_text}", None, show_given=False)
        elif kind == "extra_forbidden":
            place, problem = unknown[i]
            if where is not None and place == _loc(loc):
                place = field
            add(place, problem, given)
        elif kind == "finite_number" or (number_place and isinstance(given, float) and not math.isfinite(given)):
            add(field, f"not a finite number (nan and inf are never a setting){allowed_text}", given)
        elif number_place and isinstance(given, bool):
            add(field, f"a boolean (true or false) is never a number{allowed_text}", given)
        elif kind in ("float_type", "float_parsing") or (kind in ("int_type", "int_parsing") and not isinstance(given, float)):
            what = "a whole number" if kind.startswith("int") else "a number"
            hint = " (a number in quotes is text: write it without quotes)" if isinstance(given, str) and _numeric(given) else ""
            add(field, f"not {what}{hint}{allowed_text}", given)
        elif kind in ("int_type", "int_from_float"):
            hint = " (write it without a decimal point)" if isinstance(given, float) and given.is_integer() else ""
            add(field, f"not a whole number{hint}{allowed_text}", given)
        elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            add(field, f"{msg}{allowed_text}", given)
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            add(field, "should be a table ([name] header or { key = value })", given)
        elif kind in ("list_type", "tuple_type"):
            add(field, "should be an array ([a, b])", given)
        elif kind == "string_type":
            add(field, "should be text in quotes", given)
        elif kind == "string_too_short":
            n = err.get("ctx", {}).get("min_length", 1)
            add(field, f"at least {n} character{'s' * (n != 1)} of text (spaces at either end do not count)", given)
        elif kind == "too_long" and isinstance(given, list):
            n = err.get("ctx", {}).get("max_length")
            add(field, f"at most {n} entries, but {len(given)} were given", None, show_given=False)
        elif not loc and _PATH_MESSAGE.match(msg):  # a problem that names its own place
            place, _, problem = msg.partition(": ")
            add(place, problem, None, show_given=False)
        elif isinstance(given, (str, int, float, bool)) or given is None:
            add(field, msg, given)
        else:
            add(field, msg, None, show_given=False)
    if len(lines) == 1:
        return f"{source}: {lines[0]}", problems
    head = f"{source}: invalid ({len(lines)} problems)"
    return head + "\n  - " + "\n  - ".join(lines), problems


def _unknown_key(loc: tuple[Any, ...], model: type[BaseModel] | None, top_fields: set[str],
                 missing: set[tuple[Any, ...]], answered: set[tuple[Any, ...]]) -> tuple[str, str]:
    """``(field, problem)`` for a key the schema does not have: the name meant, where it belongs."""
    key, parent = str(loc[-1]), loc[:-1]
    holder, _ = _resolve(model, parent)
    local = set(holder.model_fields) if _is_model(holder) else set()
    nested = bool(parent) and model is not None

    def note(meant: tuple[Any, ...]) -> str:
        if meant in missing:
            answered.add(meant)
            return " (required, and missing)"
        return ""

    if nested and key in top_fields and key not in local:
        return key, (f"a top-level field{note((key,))}, but written under the [table] of {_where(parent)}: in TOML a "
                     "key belongs to the [table] header above it; write top-level fields before the first [table] "
                     "header")
    near = closest_name(key, local)
    if near is not None:
        return _loc(loc), f"unknown field; did you mean {near!r}{note((*parent, near))}?"
    near = closest_name(key, top_fields) if nested else None
    if near is not None:
        return key, (f"unknown field, written under the [table] of {_where(parent)} (in TOML a key belongs to the "
                     f"[table] header above it); did you mean the top-level field {near!r}{note((near,))}? Write "
                     "top-level fields before the first [table] header")
    here = f"; allowed here: {', '.join(sorted(local))}" if local else ""
    return _loc(loc), f"unknown field (not part of the schema){here}"


def _numeric_type(tp: Any) -> bool:
    """Whether a place in the schema holds a number (or one of fixed numbers)."""
    if tp in (int, float):
        return True
    args = get_args(tp) if get_origin(tp) is Literal else ()
    return bool(args) and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


#: The deepest nesting of tables and arrays a program or patient document may have (a program needs 6).
MAX_NESTING = 16


def nesting_problem(data: Any, limit: int = MAX_NESTING) -> str | None:
    """Where ``data`` nests tables and arrays deeper than ``limit``, in words; None if it does not.

    Walks without recursion, so any depth is measured safely.

    Examples
    --------
    >>> nesting_problem({"a": [[1]]}) is None
    True
    >>> deep = x = {}
    >>> for _ in range(20):
    ...     x["a"] = {}
    ...     x = x["a"]
    >>> nesting_problem(deep)
    'tables and arrays nested more than 16 levels deep (at a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a); allowed at most 16 levels'
    """
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(data, 0, ())]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            continue
        if depth >= limit + 1:
            return (f"tables and arrays nested more than {limit} levels deep (at {_loc(path)}); "
                    f"allowed at most {limit} levels")
        stack.extend((v, depth + 1, (*path, k)) for k, v in items)
    return None
