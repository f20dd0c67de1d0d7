"""Readable messages from pydantic validation errors: field, problem, value given."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

__all__ = ["format_validation_error"]

# discriminator values of the program's tagged unions, by discriminator field
_ALLOWED_TAGS = {
    "shape": ("symmetric-biphasic", "asymmetric-biphasic", "monophasic", "sine-burst", "interferential"),
    "kind": ("frequency-sweep", "random-frequency", "alternating-frequency", "amplitude-sweep", "width-sweep"),
}
# discriminator tags pydantic puts in error locations; they are not field names
_TAGS = set(_ALLOWED_TAGS["shape"]) | set(_ALLOWED_TAGS["kind"])


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
        if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            key = str(err.get("ctx", {}).get("discriminator", "")).strip("'")
            allowed = ", ".join(repr(t) for t in _ALLOWED_TAGS.get(key, ()))
            field = f"{field}.{key}"
            if err["type"] == "union_tag_not_found":
                text = f"{field}: required, but missing; allowed {allowed}"
                given = None
            else:
                given = err.get("ctx", {}).get("tag")
                text = f"{field}: allowed {allowed}; given {given!r}"
            problems.append((field, text, given))
            lines.append(text)
            continue
        msg = msg.rstrip(".")
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
