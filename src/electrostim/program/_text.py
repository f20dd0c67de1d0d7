"""What a person may write as text in a program or a patient profile: ids, names, labels, notes."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["ID_RULE", "MAX_ID_LENGTH", "BIDI_CONTROLS", "check_id", "check_text", "describe_char"]

#: The longest program id.
MAX_ID_LENGTH = 64
#: What a program id may be, in words (the same words every message uses).
ID_RULE = (f"an id is 2 to {MAX_ID_LENGTH} characters: lowercase ASCII letters a-z, digits 0-9 and hyphens (-), "
           "starting with a letter or a digit")
_ID = re.compile(rf"[a-z0-9][a-z0-9-]{{1,{MAX_ID_LENGTH - 1}}}")

#: Characters that reorder how text is shown (Trojan Source): never allowed in any text.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_CONTROL_NAMES = {0x00: "NUL", 0x09: "tab", 0x0A: "line feed (a new line)", 0x0D: "carriage return", 0x1B: "escape",
                  0x7F: "delete"}


def describe_char(c: str) -> str:
    """A character as ``U+XXXX (NAME)``, readable even when the character itself is invisible.

    Examples
    --------
    >>> describe_char("\\u202e")
    'U+202E (RIGHT-TO-LEFT OVERRIDE)'
    >>> describe_char("\\x00")
    'U+0000 (NUL)'
    """
    name = _CONTROL_NAMES.get(ord(c)) or unicodedata.name(c, "")
    return f"U+{ord(c):04X}" + (f" ({name})" if name else "")


def _bad_in_free_text(c: str) -> bool:
    if c in BIDI_CONTROLS:
        return True
    if c in "\n\r\t":
        return False
    return unicodedata.category(c) in ("Cc", "Cs")


def _bad_in_one_line(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or c in BIDI_CONTROLS


def check_text(text: str, *, single_line: bool, what: str = "text", forbidden: str = "") -> str:
    """Return ``text`` if a person may write it here, else raise :class:`ValueError` saying which character is not.

    Parameters
    ----------
    text : str
        The text.
    single_line : bool
        True for a label, name or id: one line of visible characters (no control, format,
        private-use or unassigned characters). False for free text (descriptions, notes):
        new lines and tabs are allowed, NUL, other control characters and bidirectional
        controls are not.
    what : str
        What the text is, for the message (``"a channel label"``).
    forbidden : str
        Further characters not allowed.

    Returns
    -------
    str
        ``text`` unchanged.

    Raises
    ------
    ValueError
        A character is not allowed; the message names it by code point.

    Examples
    --------
    >>> check_text("knee 1", single_line=True, what="a channel label")
    'knee 1'
    >>> check_text("knee\\n1", single_line=True, what="a channel label")
    Traceback (most recent call last):
    ...
    ValueError: a channel label is one line of visible text: no control characters (NUL, new lines, tabs), no bidirectional or other invisible formatting characters; found U+000A (line feed (a new line))
    """
    bad_char = _bad_in_one_line if single_line else _bad_in_free_text
    seen: list[str] = []
    for c in text:
        if (bad_char(c) or c in forbidden) and c not in seen:
            seen.append(c)
    if not seen:
        return text
    found = ", ".join(describe_char(c) for c in seen[:5]) + (f" and {len(seen) - 5} more" if len(seen) > 5 else "")
    if single_line:
        rule = (f"{what} is one line of visible text: no control characters (NUL, new lines, tabs), no "
                "bidirectional or other invisible formatting characters")
        if forbidden:
            rule += ", no " + " or ".join(repr(c) for c in forbidden)
    else:
        rule = f"{what} must not contain NUL or other control characters, nor bidirectional controls that reorder it"
    raise ValueError(f"{rule}; found {found}")


def check_id(text: str) -> str:
    """Return ``text`` if it is a valid program id, else raise :class:`ValueError` saying in words what an id may be.

    Examples
    --------
    >>> check_id("knee-oa-tens")
    'knee-oa-tens'
    >>> check_id("knée")
    Traceback (most recent call last):
    ...
    ValueError: an id is 2 to 64 characters: lowercase ASCII letters a-z, digits 0-9 and hyphens (-), starting with a letter or a digit; found 'é' (U+00E9)
    """
    if _ID.fullmatch(text):
        return text
    bad = []
    for c in text:
        if not ("a" <= c <= "z" or "0" <= c <= "9" or c == "-") and c not in bad:
            bad.append(c)
    if bad:
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" if c.isprintable() else describe_char(c) for c in bad[:5])
        problem = f"found {shown}" + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    elif len(text) < 2:
        problem = f"it has {len(text)} character{'s' if len(text) != 1 else ''}"
    elif len(text) > MAX_ID_LENGTH:
        problem = f"it has {len(text)} characters"
    else:
        problem = "it starts with a hyphen"
    raise ValueError(f"{ID_RULE}; {problem}")


def _script(c: str) -> str | None:
    """The script of a letter (the first word of its Unicode name: LATIN, CYRILLIC, GREEK, ...); None for
    anything that is not a letter (digits, punctuation and spaces belong to every script)."""
    if not unicodedata.category(c).startswith("L"):
        return None
    name = unicodedata.name(c, "")
    return name.split(" ")[0] if name else None


def check_one_script(text: str, what: str = "a label") -> str:
    """Return ``text`` if its letters come from one script, else raise :class:`ValueError`.

    A Cyrillic ``е`` in a Latin ``knee`` makes a label that looks like another and is
    not: a label mixes no scripts (digits, punctuation and spaces go with any).

    Examples
    --------
    >>> check_one_script("knee-1")
    'knee-1'
    >>> check_one_script("kne\u0435.a")
    Traceback (most recent call last):
    ...
    ValueError: a label is written in one script (its letters all Latin, or all Greek, ...), but 'kneе.a' mixes CYRILLIC and LATIN letters (U+0435 CYRILLIC SMALL LETTER IE)
    """
    scripts: dict[str, str] = {}
    for c in text:
        sc = _script(c)
        if sc is not None:
            scripts.setdefault(sc, c)
    if len(scripts) <= 1:
        return text
    names = sorted(scripts)
    odd = [scripts[n] for n in names if n != "LATIN"] or [scripts[names[-1]]]
    raise ValueError(f"{what} is written in one script (its letters all Latin, or all Greek, ...), but {text!r} "
                     f"mixes {' and '.join(names)} letters ("
                     + ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in odd) + ")")


#: letters of other scripts that look like a Latin letter (the common ones of Unicode's confusables list)
_LOOK_ALIKE = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "і": "i", "ї": "i", "ј": "j", "к": "k", "м": "m", "н": "h",
    "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "һ": "h", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "ӏ": "l", "ү": "y",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ζ": "z", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ϲ": "c",
})


def look_alike_key(text: str) -> str:
    """What ``text`` looks like: compatibility-normalised (NFKC), case-folded, and letters of other scripts that
    look like Latin ones taken as those. Two labels with one key cannot be told apart on a screen.

    Examples
    --------
    >>> look_alike_key("KNEE.a") == look_alike_key("\u043a\u043d\u0435\u0435.\u0430")
    False
    >>> look_alike_key("ОКО") == look_alike_key("oko")
    True
    """
    return unicodedata.normalize("NFKC", text).casefold().translate(_LOOK_ALIKE)
