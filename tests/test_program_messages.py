"""Program and patient files: messages that say what is wrong, and user folders one bad file cannot break.

Each kind of fault has the reported case as a test and a property over its kind:

- user program folders: every file that loads is listed and usable, each bad file is
  one line, an id claimed twice is refused everywhere with one message naming both files;
- a figure that is nan or inf is "not a finite number", a boolean is never a number;
- a UTF-8 byte-order mark is skipped;
- an id that is not allowed is explained in words, never as a regular expression;
- an unknown key that is a misspelt or misplaced top-level field is reported at the top
  level, with the name meant;
- names, labels and every text are printed as text, never as Rich markup, and NUL, new
  lines and bidirectional controls are refused in labels, names and ids;
- only a regular file of at most 1 MB is read, nested at most 16 levels;
- the TOML in README.md and docs/*.md is valid;
- one problem is one line, for validation and for options;
- a sine carrier's dose counts carrier cycles, and says so;
- a nominal rate (pulse, burst, beat) lies within the frequency modulation that sets it.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
import tomllib
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

import electrostim as es
from electrostim.cli import app
from electrostim.errors import PatientError, ProgramError, ProgramFileError, UnknownProgramError
from electrostim.program import (
    MAX_FILE_BYTES,
    MAX_NESTING,
    Channel,
    Patient,
    Program,
    list_programs,
    load_patient_file,
    load_program,
    load_program_file,
    user_program_problems,
    validate_program,
)
from electrostim.program._text import BIDI_CONTROLS, ID_RULE

from .conftest import make_program

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

PRESETS = {
    item.name: item.read_text(encoding="utf-8")
    for item in resources.files("electrostim.program").joinpath("presets").iterdir()
    if item.name.endswith(".toml")
}
PRESET_NAMES = sorted(PRESETS)
KNEE = PRESETS["knee-oa-tens.toml"]

#: ``key = <number>`` on one line
_NUMBER_LINE = re.compile(r"^(\s*)([A-Za-z0-9_-]+)(\s*=\s*)([-+]?\d[\d_]*(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")

_SETTINGS = settings(max_examples=30, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _number_lines() -> list[tuple[str, int, str]]:
    """(preset, line index, key) of every ``key = number`` line of every preset."""
    out = []
    for name in PRESET_NAMES:
        for i, line in enumerate(PRESETS[name].split("\n")):
            m = _NUMBER_LINE.match(line)
            if m:
                out.append((name, i, m.group(2)))
    return out


NUMBER_LINES = _number_lines()


def _with_line(name: str, i: int, value: str) -> str:
    lines = PRESETS[name].split("\n")
    m = _NUMBER_LINE.match(lines[i])
    assert m is not None
    lines[i] = m.group(1) + m.group(2) + m.group(3) + value
    return "\n".join(lines)


def _load_text(folder: Path, text: str | bytes, name: str = "program.toml") -> Program:
    path = folder / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return load_program_file(path)


def _problems_of(exc: ProgramError, key: str) -> list[tuple[str, str, Any]]:
    """The problems whose field is ``key`` or ends in ``.key``."""
    return [p for p in exc.problems if p[0] == key or p[0].endswith("." + key)]


def _toml(value: Any) -> str:
    """A value in TOML (inline tables and arrays), for programs built from dicts."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def to_toml(data: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {_toml(v)}\n" for k, v in data.items())


def program_dict(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "my-program", "name": "my program", "modality": "tens", "session_duration_s": 5,
        "stimulus": {"pulse": {"shape": "symmetric-biphasic", "pulse_width_us": 100, "frequency_hz": 50},
                     "amplitude": {"default_ma": 5, "max_ma": 10}},
        "channels": [{"label": "ch1", "electrodes": [{"site": "knee", "width_cm": 5, "height_cm": 5}] * 2}],
    }
    data.update(changes)
    return data


@contextmanager
def user_folder(base: Path):
    """A fresh, empty user-program folder (and an empty data folder), for the time of the block."""
    folder = base / "programs"
    folder.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ELECTROSTIM_PROGRAM_PATH", str(folder))
        mp.setenv("XDG_DATA_HOME", str(base / "data"))
        yield folder


def _one_error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# =========================================================================== 1. user program folders


def _user_text(pid: str) -> str:
    return KNEE.replace('id = "knee-oa-tens"', f'id = "{pid}"')


def test_one_bad_file_does_not_hide_the_good_ones(tmp_path):
    """The reported case: one invalid .toml broke `programs list` and every user program."""
    with user_folder(tmp_path) as folder:
        (folder / "good.toml").write_text(_user_text("my-knee"))
        (folder / "broken.toml").write_text("this is = not = toml\n")
        assert "my-knee" in [e.id for e in list_programs()]
        (problem,) = user_program_problems()
        assert problem.path == folder / "broken.toml" and "not valid TOML" in problem.message
        assert load_program("my-knee").id == "my-knee"
        r = runner.invoke(app, ["programs", "list", "--json"])
        assert r.exit_code == 0, r.output
        assert "my-knee" in {e["id"] for e in json.loads(r.stdout)}
        (line,) = r.stderr.splitlines()
        assert str(folder / "broken.toml") in line and "not valid TOML" in line
        r = runner.invoke(app, ["programs", "list"])
        assert r.exit_code == 0 and "my-knee" in r.stdout and len(r.stderr.splitlines()) == 1
        assert runner.invoke(app, ["check", "my-knee"]).exit_code == 0
        assert runner.invoke(app, ["programs", "show", "my-knee"]).exit_code == 0
        png = tmp_path / "f.png"
        assert runner.invoke(app, ["plot", "my-knee", "-o", str(png)]).exit_code == 0 and png.exists()


def test_user_file_reusing_a_preset_id_is_refused_everywhere(tmp_path):
    """The reported case: a user file reusing a preset id was silently ignored by check and run."""
    with user_folder(tmp_path) as folder:
        clash = folder / "clash.toml"
        clash.write_text(KNEE)
        (folder / "good.toml").write_text(_user_text("my-knee"))
        with pytest.raises(ProgramError) as info:
            load_program("knee-oa-tens")
        message = str(info.value)
        assert "\n" not in message and str(clash) in message and "knee-oa-tens.toml" in message
        assert "preset" in message
        ids = [e.id for e in list_programs()]
        assert "knee-oa-tens" not in ids and "my-knee" in ids
        (problem,) = user_program_problems()
        assert problem.program_id == "knee-oa-tens" and str(clash) in problem.message
        for args in (["check", "knee-oa-tens"], ["programs", "show", "knee-oa-tens"],
                     ["plot", "knee-oa-tens", "-o", str(tmp_path / "x.png")]):
            line = _one_error_line(runner.invoke(app, args))
            assert str(clash) in line and "knee-oa-tens.toml" in line
        assert not (tmp_path / "x.png").exists()
        assert runner.invoke(app, ["check", "my-knee"]).exit_code == 0
        assert runner.invoke(app, ["check", "tens-burst"]).exit_code == 0


def test_two_user_files_with_one_id_are_refused(tmp_path):
    with user_folder(tmp_path) as folder:
        (folder / "a.toml").write_text(_user_text("twin"))
        (folder / "b.toml").write_text(_user_text("twin"))
        line = _one_error_line(runner.invoke(app, ["check", "twin"]))
        assert str(folder / "a.toml") in line and str(folder / "b.toml") in line
        assert "twin" not in [e.id for e in list_programs()]
        assert {p.path.name for p in user_program_problems()} == {"a.toml", "b.toml"}


def test_a_folder_listed_twice_is_read_once(tmp_path):
    with user_folder(tmp_path) as folder:
        (folder / "mine.toml").write_text(_user_text("mine"))
        os.environ["ELECTROSTIM_PROGRAM_PATH"] = os.pathsep.join([str(folder), str(folder)])
        assert load_program("mine").id == "mine" and user_program_problems() == []


_FILE_KINDS = ("good", "twin", "preset-id", "not-toml", "invalid", "not-utf8", "empty", "directory", "bom", "too-deep")


@_SETTINGS
@given(kinds=st.lists(st.sampled_from(_FILE_KINDS), min_size=1, max_size=6),
       ids=st.lists(st.sampled_from(["alpha", "beta", "gamma"]), min_size=6, max_size=6))
def test_user_folder_property(tmp_path_factory, kinds, ids):
    """Any mix of good and bad files: the good ones are listed and load, each bad one is one line,
    and an id claimed twice is refused with one message naming every file that claims it."""
    base = tmp_path_factory.mktemp("user")
    with user_folder(base) as folder:
        claims: dict[str, list[Path]] = {}
        bad: set[Path] = set()
        for n, (kind, pid) in enumerate(zip(kinds, ids)):
            f = folder / f"{n} {kind}.toml"
            if kind in ("good", "twin", "bom"):
                pid = pid if kind != "twin" else "twin"
                f.write_bytes((b"\xef\xbb\xbf" if kind == "bom" else b"") + _user_text(pid).encode())
                claims.setdefault(pid, []).append(f)
            elif kind == "preset-id":
                f.write_text(KNEE)
                claims.setdefault("knee-oa-tens", []).append(f)
            else:
                bad.add(f)
                if kind == "not-toml":
                    f.write_text("x = = 1\n")
                elif kind == "invalid":
                    f.write_text(_user_text(pid).replace("pulse_width_us = 100", "pulse_width_us = nan"))
                elif kind == "not-utf8":
                    f.write_bytes(_user_text(pid).encode().replace(b"knee-1", b"knee-\xff"))
                elif kind == "empty":
                    f.write_text("")
                elif kind == "directory":
                    f.mkdir()
                elif kind == "too-deep":
                    f.write_text("notes = " + "[" * 40 + "]" * 40 + "\n")
        usable = {pid for pid, files in claims.items() if len(files) == 1 and pid != "knee-oa-tens"}
        refused = {pid for pid in claims if pid not in usable}
        entries = list_programs()
        assert {e.id for e in entries if e.origin != "preset"} == usable
        assert refused.isdisjoint(e.id for e in entries)
        problems = user_program_problems()
        expected_bad = bad | {f for pid in refused for f in claims[pid]}
        assert sorted(p.path for p in problems) == sorted(expected_bad)
        for p in problems:
            assert "\n" not in p.message and str(p.path) in p.message
        for pid in usable:
            assert load_program(pid).id == pid
        for pid in refused:
            with pytest.raises(ProgramError) as info:
                load_program(pid)
            assert "\n" not in str(info.value)
            for f in claims[pid]:
                assert str(f) in str(info.value)
        r = runner.invoke(app, ["programs", "list", "--json"])
        assert r.exit_code == 0
        assert {e["id"] for e in json.loads(r.stdout) if e["origin"] != "preset"} == usable
        assert len(r.stderr.splitlines()) == len(expected_bad)
        with pytest.raises(UnknownProgramError, match="no-such-id"):
            load_program("no-such-id")


# =========================================================================== 2. messages


# ---------------------------------------------------------------- nan and inf


def test_nan_frequency_says_not_a_finite_number(tmp_path):
    """The reported case: `frequency_hz = nan` said "should be <= 20000"."""
    with pytest.raises(ProgramError) as info:
        _load_text(tmp_path, KNEE.replace("frequency_hz = 100", "frequency_hz = nan"))
    message = str(info.value)
    assert "\n" not in message
    assert "frequency_hz: not a finite number" in message and "given nan" in message
    assert "should be" not in message


@_SETTINGS
@given(where=st.sampled_from(NUMBER_LINES), value=st.sampled_from(["nan", "+nan", "-nan", "inf", "+inf", "-inf"]))
def test_every_number_field_says_nan_and_inf_are_not_finite(tmp_path_factory, where, value):
    name, i, key = where
    with pytest.raises(ProgramError) as info:
        _load_text(tmp_path_factory.mktemp("nan"), _with_line(name, i, value))
    mine = _problems_of(info.value, key)
    assert mine, str(info.value)
    for _field, problem, given_value in mine:
        assert problem.startswith("not a finite number"), str(info.value)
        assert isinstance(given_value, float) and not math.isfinite(given_value)
    assert "should be less" not in str(info.value) and "should be greater" not in str(info.value)


# ---------------------------------------------------------------- booleans are never numbers


def test_true_is_not_one_second(tmp_path):
    """The reported case: `session_duration_s = true` was taken as 1 s."""
    with pytest.raises(ProgramError) as info:
        _load_text(tmp_path, KNEE.replace("session_duration_s = 2400", "session_duration_s = true"))
    message = str(info.value)
    assert "\n" not in message
    assert "session_duration_s: a boolean (true or false) is never a number" in message
    assert "allowed a finite number 0 < x <= 86400" in message and message.endswith("given true")


@_SETTINGS
@given(where=st.sampled_from(NUMBER_LINES), value=st.sampled_from(["true", "false"]))
def test_every_number_field_refuses_booleans(tmp_path_factory, where, value):
    name, i, key = where
    with pytest.raises(ProgramError) as info:
        _load_text(tmp_path_factory.mktemp("bool"), _with_line(name, i, value))
    mine = _problems_of(info.value, key)
    assert mine, str(info.value)
    for _field, problem, given_value in mine:
        assert problem.startswith("a boolean (true or false) is never a number"), str(info.value)
        assert given_value is (value == "true")


def test_booleans_in_arrays_and_strict_numbers():
    data = program_dict()
    data["stimulus"]["modulation"] = [{"kind": "alternating-frequency", "frequencies_hz": [4, True], "dwell_s": 1}]
    with pytest.raises(ProgramError, match=r"frequencies_hz\[1\]: a boolean .* never a number.*; given true$"):
        validate_program(data)
    with pytest.raises(ProgramError, match=r"session_duration_s: not a number \(a number in quotes is text: write it "
                                           r"without quotes\); allowed .*; given '10'$"):
        validate_program(program_dict(session_duration_s="10"))
    with pytest.raises(ProgramError, match=r"schema_version: a boolean"):
        validate_program(program_dict(schema_version=True))
    data = program_dict()
    data["stimulus"]["burst"] = {"pulses_per_burst": 3.5, "burst_frequency_hz": 2}
    with pytest.raises(ProgramError, match=r"pulses_per_burst: not a whole number; allowed a whole number 2 <= x <= 1000"):
        validate_program(data)


# ---------------------------------------------------------------- byte-order mark


def test_utf8_bom_is_accepted(tmp_path):
    """The reported case: a BOM gave "Invalid statement at line 1"."""
    program = _load_text(tmp_path, b"\xef\xbb\xbf" + KNEE.encode("utf-8"))
    assert program == _load_text(tmp_path, KNEE)


@_SETTINGS
@given(name=st.sampled_from(PRESET_NAMES), cut=st.integers(0, 200))
def test_bom_property(tmp_path_factory, name, cut):
    """A BOM before any preset changes nothing; a BOM before any broken text never shows up as the problem."""
    folder = tmp_path_factory.mktemp("bom")
    assert _load_text(folder, b"\xef\xbb\xbf" + PRESETS[name].encode()) == _load_text(folder, PRESETS[name])
    broken = PRESETS[name][cut:]
    outcomes = []
    for raw in (broken.encode(), b"\xef\xbb\xbf" + broken.encode()):
        try:
            outcomes.append(_load_text(folder, raw))
        except ProgramError as exc:
            outcomes.append(type(exc).__name__ + ":" + str(exc).split(": ", 1)[1])
    assert outcomes[0] == outcomes[1]


def test_utf16_file_is_named_as_such(tmp_path):
    with pytest.raises(ProgramFileError, match=r"program\.toml: is UTF-16 text .*allowed UTF-8 text"):
        _load_text(tmp_path, KNEE.encode("utf-16"))


# ---------------------------------------------------------------- ids in words


def test_non_ascii_id_is_explained_in_words(tmp_path):
    """The reported case: `id = "knée"` showed a raw regular expression."""
    with pytest.raises(ProgramError) as info:
        _load_text(tmp_path, KNEE.replace('id = "knee-oa-tens"', 'id = "knée"'))
    message = str(info.value)
    assert "\n" not in message
    assert f"id: {ID_RULE}; found 'é' (U+00E9); given 'knée'" in message
    assert "^" not in message and "{1," not in message and "pattern" not in message


_ID_OK = re.compile(r"[a-z0-9][a-z0-9-]{1,63}")


@_SETTINGS
@given(pid=st.one_of(st.text(max_size=70), st.text(alphabet="abcz09-_. ÉéA\u202e\x00\n", max_size=70)))
def test_any_bad_id_is_explained_in_words(pid):
    assume(not _ID_OK.fullmatch(pid.strip()))
    with pytest.raises(ProgramError) as info:
        validate_program(program_dict(id=pid))
    (problem,) = _problems_of(info.value, "id")
    assert problem[1].startswith(ID_RULE + "; "), problem
    rest = problem[1][len(ID_RULE) + 2:]
    assert re.fullmatch(r"found .+|it has \d+ characters?|it starts with a hyphen", rest), problem
    assert "should match" not in problem[1] and "pattern" not in problem[1]  # never the regular expression
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- misspelt and misplaced top-level fields


def test_top_level_typo_is_reported_at_the_top_level(tmp_path):
    """The reported case: `sesion_duration_s = 60` was reported under channels[0]."""
    for text in (KNEE.replace("session_duration_s = 2400", "sesion_duration_s = 60"),
                 KNEE.replace("session_duration_s = 2400\n", "").replace('label = "knee-1"\n',
                                                                          'label = "knee-1"\nsesion_duration_s = 60\n')):
        with pytest.raises(ProgramError) as info:
            _load_text(tmp_path, text)
        message = str(info.value)
        assert "\n" not in message, message
        assert ": sesion_duration_s: unknown field" in message
        assert "'session_duration_s' (required, and missing)" in message
        assert "channels[0].sesion" not in message


def test_top_level_field_under_a_table_is_reported_as_misplaced(tmp_path):
    text = KNEE.replace("session_duration_s = 2400\n", "").replace('label = "knee-1"\n',
                                                                  'label = "knee-1"\nsession_duration_s = 60\n')
    with pytest.raises(ProgramError, match=r"\.toml: session_duration_s: a top-level field \(required, and missing\), "
                                           r"but written under the \[table\] of channels\[0\].*given 60$"):
        _load_text(tmp_path, text)


_TOP_FIELDS = sorted(Program.model_fields)
_CHANNEL_FIELDS = sorted(Channel.model_fields)


def _top_value_lines(text: str) -> list[tuple[int, str]]:
    """(index, key) of the one-line ``key = value`` lines before the first table header."""
    out = []
    for i, line in enumerate(text.split("\n")):
        if line.startswith("["):
            break
        m = re.match(r"^([a-z_]+) = ", line)
        if m:
            try:
                tomllib.loads(line)
            except tomllib.TOMLDecodeError:
                continue
            out.append((i, m.group(1)))
    return out


def _osa(a: str, b: str) -> int:
    from electrostim.program._format import _osa as osa

    return osa(a, b)


@st.composite
def _typo(draw, word: str) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz_"
    i = draw(st.integers(0, len(word) - 1))
    kind = draw(st.sampled_from(["delete", "insert", "replace", "swap"]))
    if kind == "delete" and len(word) > 2:
        return word[:i] + word[i + 1:]
    if kind == "insert":
        return word[:i] + draw(st.sampled_from(letters)) + word[i:]
    if kind == "swap" and i < len(word) - 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + draw(st.sampled_from(letters)) + word[i + 1:]


@_SETTINGS
@given(name=st.sampled_from(PRESET_NAMES), data=st.data(), under_channel=st.booleans())
def test_any_top_level_typo_is_reported_at_the_top_level_with_the_name_meant(tmp_path_factory, name, data,
                                                                            under_channel):
    text = PRESETS[name]
    i, key = data.draw(st.sampled_from(_top_value_lines(text)), label="line")
    typo = data.draw(_typo(key), label="typo")
    others = set(_TOP_FIELDS) | set(_CHANNEL_FIELDS)
    assume(typo not in others and re.fullmatch(r"[a-z_]+", typo))
    assume(all(_osa(typo, f) > 1 for f in _TOP_FIELDS if f != key))
    assume(all(_osa(typo, f) > 3 for f in _CHANNEL_FIELDS))
    lines = text.split("\n")
    line = typo + lines[i][len(key):]
    if under_channel:
        del lines[i]
        at = lines.index("[[channels]]") + 1
        lines.insert(at, line)
    else:
        lines[i] = line
    with pytest.raises(ProgramError) as info:
        _load_text(tmp_path_factory.mktemp("typo"), "\n".join(lines))
    mine = [p for p in info.value.problems if typo in p[0]]
    assert len(mine) == 1, str(info.value)
    field, problem, _ = mine[0]
    assert field == typo, str(info.value)  # at the top level, wherever the table put it
    assert f"{key!r}" in problem, str(info.value)
    assert not any(p[0] == key and "required" in p[1] for p in info.value.problems), str(info.value)


# ---------------------------------------------------------------- text, never markup; no invisible characters


def _write_program(folder: Path, data: dict[str, Any], name: str = "p.toml") -> Path:
    path = folder / name
    path.write_text(to_toml(data), encoding="utf-8")
    return path


def test_markup_in_a_label_is_shown_as_text(tmp_path):
    """The reported case: a channel label `[/]` crashed Rich markup in check and programs show."""
    data = program_dict()
    data["channels"][0]["label"] = "[/]"
    path = _write_program(tmp_path, data)
    for args in (["check", str(path)], ["programs", "show", str(path)]):
        r = runner.invoke(app, args)
        assert r.exit_code in (0, 1, 3), r.output
        assert "[/]" in r.stdout and "internal error" not in r.output


_MARKUP = st.text(alphabet="[]/:\\@#*_~`{}()<>=!|^$%&+-. abcXYZ019é", min_size=3, max_size=10)


@_SETTINGS
@given(text=_MARKUP)
def test_any_markup_in_any_text_is_shown_as_text(tmp_path_factory, text):
    assume(text.strip() == text and len(text) >= 3)
    folder = tmp_path_factory.mktemp("markup")
    data = program_dict(name=text, description=text, regimen=text, notes=[text])
    data["channels"][0]["label"] = text
    data["stimulus"]["amplitude"]["goal"] = text
    data["placement"] = {"summary": text, "steps": [text]}
    path = _write_program(folder, data)
    patient = folder / "patient.toml"
    patient.write_text(f"id = {json.dumps(text)}\n", encoding="utf-8")
    r = runner.invoke(app, ["programs", "show", str(path)])
    assert r.exit_code == 0, r.output
    assert r.stdout.count(text) >= 6, r.stdout
    r = runner.invoke(app, ["check", str(path), "--patient", str(patient)])
    assert r.exit_code in (0, 1, 3), r.output
    assert f"patient {text}" in r.stdout and r.stdout.count(text) >= 3, r.stdout


def test_markup_in_a_file_name_is_shown_as_text(tmp_path):
    png = tmp_path / "[bold]x[red]y[not markup.png"
    r = runner.invoke(app, ["plot", "tens-burst", "-o", str(png)])
    assert r.exit_code == 0 and r.stdout == f"wrote {png}\n", r.output


_INVISIBLE = ["\x00", "\n", "\r", "\t", "\x1b", *sorted(BIDI_CONTROLS)]


@_SETTINGS
@given(bad=st.sampled_from(_INVISIBLE), where=st.sampled_from(["label", "name", "id", "patient"]),
       before=st.text(alphabet="abc", min_size=2, max_size=4), after=st.text(alphabet="xyz", min_size=1, max_size=4))
def test_invisible_characters_in_labels_names_and_ids_are_refused(bad, where, before, after):
    text = before + bad + after
    code = f"U+{ord(bad):04X}"
    if where == "patient":
        with pytest.raises(Exception) as info:
            Patient.model_validate({"id": text})
        assert code in str(info.value)
        return
    data = program_dict()
    if where == "label":
        data["channels"][0]["label"] = text
    else:
        data[where] = text
    with pytest.raises(ProgramError) as info:
        validate_program(data)
    message = str(info.value)
    assert "\n" not in message and code in message, message


@_SETTINGS
@given(bad=st.sampled_from(["\x00", "\x1b", *sorted(BIDI_CONTROLS)]),
       field=st.sampled_from(["description", "regimen", "notes", "goal"]))
def test_nul_and_bidi_controls_are_refused_in_every_text(bad, field):
    text = "some text " + bad + " more"
    data = program_dict()
    if field == "notes":
        data["notes"] = [text]
    elif field == "goal":
        data["stimulus"]["amplitude"]["goal"] = text
    else:
        data[field] = text
    with pytest.raises(ProgramError, match=f"U\\+{ord(bad):04X}"):
        validate_program(data)
    # new lines and tabs are fine in free text
    data = program_dict(description="line one\n\tline two")
    assert validate_program(data).description == "line one\n\tline two"


# ---------------------------------------------------------------- what is read: regular files, 1 MB, 16 levels


def _cli_one_line(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "electrostim", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_refused_before_reading():
    line = _cli_one_line("check", "/dev/zero")
    assert "/dev/zero: is a character device, not a regular file" in line and "1 MB" in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "program.toml"
    os.mkfifo(fifo)
    line = _cli_one_line("check", str(fifo))  # a reader that opened it would wait for a writer forever
    assert "is a named pipe (FIFO), not a regular file" in line
    with pytest.raises(ProgramFileError, match="named pipe"):
        load_program_file(fifo)
    with pytest.raises(PatientError, match="named pipe"):
        load_patient_file(fifo)


def test_size_limit_is_checked_before_reading(tmp_path):
    exact = tmp_path / "exact.toml"
    body = KNEE.encode() + b"\n#"
    exact.write_bytes(body + b"x" * (MAX_FILE_BYTES - len(body)))
    assert exact.stat().st_size == MAX_FILE_BYTES
    assert load_program_file(exact).id == "knee-oa-tens"
    big = tmp_path / "big.toml"
    big.write_bytes(body + b"x" * (MAX_FILE_BYTES - len(body) + 1))
    line = _cli_one_line("check", str(big))
    assert "too large" in line and f"{MAX_FILE_BYTES + 1:,} bytes" in line and "at most 1,000,000 bytes" in line


_NESTS = {
    "arrays": lambda n: "notes = " + "[" * n + "]" * n + "\n",
    "inline tables": lambda n: "notes = " + "{ a = " * n + "1" + " }" * n + "\n",
    "dotted tables": lambda n: "[" + ".".join(["a"] * n) + "]\nb = 1\n",
    "dotted keys": lambda n: ".".join(["a"] * n) + " = 1\n",
    "arrays of tables": lambda n: "".join("[[" + ".".join(["t"] * (k + 1)) + "]]\n" for k in range(n)),
}


def test_toml_nested_500_deep_is_refused_in_one_line(tmp_path):
    """The reported case: TOML nested 500 deep crashed."""
    for kind, make in _NESTS.items():
        path = tmp_path / f"{kind}.toml"
        path.write_text(make(500))
        line = _cli_one_line("check", str(path))
        assert f"allowed at most {MAX_NESTING} levels" in line, (kind, line)


@_SETTINGS
@given(kind=st.sampled_from(sorted(_NESTS)), depth=st.one_of(st.integers(1, 40), st.integers(41, 600)))
def test_nesting_property(tmp_path_factory, kind, depth):
    """Deeper than the limit: one line, for programs and patients alike; within it: never a nesting error."""
    path = tmp_path_factory.mktemp("deep") / "deep.toml"
    path.write_text(_NESTS[kind](depth))
    for load, error in ((load_program_file, ProgramError), (load_patient_file, PatientError)):
        with pytest.raises(error) as info:
            load(path)
        message = str(info.value)
        nesting = f"allowed at most {MAX_NESTING} levels" in message
        # "arrays of tables" with n headers nest 2n levels (array, table, array, ...)
        levels = {"arrays of tables": 2 * depth, "dotted keys": depth - 1}.get(kind, depth)
        assert nesting == (levels > MAX_NESTING), (kind, depth, message)
        if nesting:
            assert "\n" not in message


# ---------------------------------------------------------------- the TOML of the documentation


def _doc_toml_blocks() -> list[tuple[str, str]]:
    blocks = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for n, block in enumerate(re.findall(r"^```toml\n(.*?)^```", text, re.S | re.M)):
            blocks.append((f"{doc.name}#{n + 1}", block))
    return blocks


def test_readme_has_toml():
    assert any(name.startswith("README.md") for name, _ in _doc_toml_blocks())


@pytest.mark.parametrize("name, block", _doc_toml_blocks(), ids=[n for n, _ in _doc_toml_blocks()])
def test_documentation_toml_is_valid(name, block):
    """The reported case: the README's patient example was not valid TOML."""
    data = tomllib.loads(block)
    if "channels" in data or "modality" in data or "stimulus" in data:
        validate_program(data, source=name)
    else:
        Patient.model_validate(data)


# ---------------------------------------------------------------- one problem, one line


@_SETTINGS
@given(where=st.sampled_from(NUMBER_LINES),
       value=st.sampled_from(["-1", "0", "1e9", "-1e9", "nan", "inf", "true", '"5"', "2.5", "[1]", "{ a = 1 }"]))
def test_one_problem_is_one_line(tmp_path_factory, where, value):
    name, i, _key = where
    folder = tmp_path_factory.mktemp("one")
    text = _with_line(name, i, value)
    try:
        _load_text(folder, text)
    except ProgramError as exc:
        lines = str(exc).splitlines()
        if len(exc.problems) == 1:
            assert len(lines) == 1, str(exc)
        else:
            assert len(lines) == len(exc.problems) + 1 and "problems)" in lines[0], str(exc)
        if len(exc.problems) == 1:
            path = folder / "program.toml"
            r = runner.invoke(app, ["check", str(path)])
            assert _one_error_line(r) == "error: " + lines[0]


_AMPLITUDES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "0", "-3", "500", "500.0001", "1e400", "1e-300"]),
)
_PADS = st.one_of(
    st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True))
    .map(lambda t: f"{t[0]!r}x{t[1]!r}"),
    st.sampled_from(["5x5", "0x5", "51x5", "50x50", "1e400x5", "nanx5", "infxinf", "5x", "x", "5 x 5", "-5x5"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amplitude=st.none() | _AMPLITUDES, electrode=st.none() | _PADS)
def test_any_option_value_is_accepted_or_one_line(amplitude, electrode):
    args = ["check", "tens-conventional", "--json"]
    if amplitude is not None:
        args += ["--amplitude-ma", amplitude]
    if electrode is not None:
        args += ["--electrode", electrode]
    r = runner.invoke(app, args)
    if r.exit_code in (0, 1, 3):
        json.loads(r.stdout)
        return
    line = _one_error_line(r)
    assert ("--amplitude-ma" in line) or ("electrode" in line), line


def test_an_electrode_beyond_the_largest_pad_is_one_line():
    line = _one_error_line(runner.invoke(app, ["check", "knee-oa-tens", "--electrode", "60x60"]))
    assert line == "error: Invalid value for '--electrode': allowed WxH with each side 0 < x <= 50 cm, but got '60x60'."


def test_patient_with_one_problem_is_one_line(tmp_path):
    pat = tmp_path / "p.toml"
    pat.write_text('conditions = ["dragon-pox"]\n')
    line = _one_error_line(runner.invoke(app, ["check", "knee-oa-tens", "--patient", str(pat)]))
    assert "conditions[0].condition" in line and "'dragon-pox'" in line


# =========================================================================== 3. carrier cycles, not pulses


def _assessment_text(a, monkeypatch) -> str:
    from electrostim.cli import _app

    buffer = io.StringIO()
    monkeypatch.setattr(_app, "out", Console(file=buffer, width=200, highlight=False, color_system=None))
    _app._print_assessment(a)
    return buffer.getvalue()


def _dose_table(text: str) -> str:
    return text[text.index("Dose at the highest amplitude"):text.index("Per electrode")]


@pytest.mark.parametrize("pid", ["russian-current", "ifc-knee"])
def test_carrier_dose_counts_cycles(pid):
    """The reported case: Russian and interferential dose tables said "pulses" where they count carrier cycles."""
    r = runner.invoke(app, ["check", pid])
    table = _dose_table(r.stdout)
    assert "pulse" not in table.lower(), table
    assert "carrier cycles in session" in table and "cycles/s" in table
    r = runner.invoke(app, ["check", pid, "--json"])
    for o in json.loads(r.stdout)["dose"]["outputs"]:
        assert o["counts"] == "carrier cycles"
        assert not [k for k in o if "pulse" in k], o
        assert {"cycle_count", "max_cycle_rate_hz", "max_net_charge_per_cycle_uc", "max_energy_per_cycle_mj"} <= set(o)


def test_pulsed_dose_still_counts_pulses():
    r = runner.invoke(app, ["check", "knee-oa-tens", "--json"])
    (o,) = json.loads(r.stdout)["dose"]["outputs"]
    assert o["counts"] == "pulses" and "pulse_count" in o and "max_energy_per_pulse_mj" in o
    assert "pulses in session" in _dose_table(runner.invoke(app, ["check", "knee-oa-tens"]).stdout)


_CARRIERS = st.one_of(
    st.builds(lambda carrier, rate, duty: {"shape": "sine-burst", "carrier_frequency_hz": carrier,
                                           "frequency_hz": rate, "burst_duty_percent": duty},
              st.sampled_from([1000.0, 2500.0, 5000.0]), st.sampled_from([10.0, 50.0, 100.0]),
              st.sampled_from([20.0, 50.0, 100.0])),
    st.builds(lambda carrier, beat, mode: {"shape": "interferential", "carrier_frequency_hz": carrier,
                                           "beat_frequency_hz": beat, "mode": mode},
              st.sampled_from([2000.0, 4000.0]), st.sampled_from([1.0, 100.0, 150.0]),
              st.sampled_from(["quadripolar", "premodulated"])),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(pulse=_CARRIERS)
def test_any_carrier_dose_counts_cycles(monkeypatch, pulse):
    from electrostim.cli._app import assessment_json

    modality = "interferential" if pulse["shape"] == "interferential" else "russian"
    a = es.assess(make_program(pulse, amplitude_ma=10.0, duration_s=2.0, modality=modality))
    table = _dose_table(_assessment_text(a, monkeypatch))
    assert "pulse" not in table.lower(), table
    for o in assessment_json(a)["dose"]["outputs"]:
        assert o["counts"] == "carrier cycles" and not [k for k in o if "pulse" in k]
        assert o["cycle_count"] > 0 and o["max_cycle_rate_hz"] >= 900


def test_mixed_outputs_say_both(monkeypatch):
    data = {
        "id": "mixed", "name": "mixed outputs", "modality": "russian", "session_duration_s": 2.0,
        "channels": [
            {"label": "sine", "electrodes": [{"site": "quadriceps", "width_cm": 5, "height_cm": 5}] * 2,
             "stimulus": {"pulse": {"shape": "sine-burst", "carrier_frequency_hz": 2500, "frequency_hz": 50},
                          "amplitude": {"default_ma": 10, "max_ma": 10}}},
            {"label": "pulsed", "electrodes": [{"site": "quadriceps", "width_cm": 5, "height_cm": 5}] * 2,
             "stimulus": {"pulse": {"shape": "symmetric-biphasic", "pulse_width_us": 200, "frequency_hz": 50},
                          "amplitude": {"default_ma": 10, "max_ma": 10}}},
        ],
    }
    from electrostim.cli._app import assessment_json

    a = es.assess(validate_program(data))
    table = _dose_table(_assessment_text(a, monkeypatch))
    assert "pulses (or carrier cycles) in session" in table
    counts = [o["counts"] for o in assessment_json(a)["dose"]["outputs"]]
    assert counts == ["carrier cycles", "pulses"]


# ---------------------------------------------------------------- a nominal rate within its frequency modulation


def test_a_rate_outside_its_sweep_is_refused(tmp_path):
    """The reported case: 50 Hz pulses under an 80-100 Hz frequency sweep were valid; the sweep set the rate and the
    50 Hz shown was never delivered."""
    text = KNEE.replace("frequency_hz = 100", "frequency_hz = 50") + (
        '\n[[stimulus.modulation]]\nkind = "frequency-sweep"\nlow_hz = 80\nhigh_hz = 100\nperiod_s = 6\n')
    with pytest.raises(ProgramError) as info:
        _load_text(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message
    assert "pulse.frequency_hz must lie within the frequency-sweep's low_hz-high_hz, 80-100 Hz" in message
    assert "given 50 Hz" in message


_RATED = {  # a stimulus, the field of its nominal rate, and that rate's key in it
    "pulse.frequency_hz": ({"shape": "symmetric-biphasic", "pulse_width_us": 50.0, "frequency_hz": 0.0}, {}, "tens"),
    "burst.burst_frequency_hz": ({"shape": "symmetric-biphasic", "pulse_width_us": 50.0, "frequency_hz": 1000.0},
                                 {"burst": {"pulses_per_burst": 3, "burst_frequency_hz": 0.0}}, "tens"),
    "pulse.beat_frequency_hz": ({"shape": "interferential", "mode": "premodulated", "carrier_frequency_hz": 4000.0,
                                 "beat_frequency_hz": 0.0}, {}, "interferential"),
}


@settings(max_examples=120, deadline=None)
@given(field=st.sampled_from(sorted(_RATED)), kind=st.sampled_from(["frequency-sweep", "random-frequency",
                                                                    "alternating-frequency"]),
       low=st.floats(2.0, 40.0), span=st.floats(1.0, 40.0), rate=st.floats(1.0, 100.0))
def test_property_a_nominal_rate_outside_its_frequency_modulation_is_refused(field, kind, low, span, rate):
    """A pulse, burst or beat rate outside the range of the frequency modulation that sets it is refused in one
    line naming the field, the range and the rate; inside it, the program is valid."""
    assume(not (field == "pulse.beat_frequency_hz" and kind == "random-frequency"))
    high = low + span
    assume(min(abs(rate - low), abs(rate - high)) > 1e-6 * high)
    pulse, extra, modality = _RATED[field]
    pulse, extra = dict(pulse), {k: dict(v) for k, v in extra.items()}
    if "burst" in extra:
        extra["burst"]["burst_frequency_hz"] = rate
    else:
        pulse["beat_frequency_hz" if pulse["shape"] == "interferential" else "frequency_hz"] = rate
    fm = ({"kind": kind, "frequencies_hz": [low, high], "dwell_s": 5.0} if kind == "alternating-frequency" else
          {"kind": kind, "low_hz": low, "high_hz": high, **({"period_s": 6.0} if kind == "frequency-sweep" else {})})
    pads = [{"site": "knee", "width_cm": 5, "height_cm": 5}] * 2
    data = {"id": "rated", "name": "rated", "modality": modality, "session_duration_s": 60.0,
            "channels": [{"label": "a", "electrodes": pads, "stimulus": {
                "pulse": pulse, "amplitude": {"default_ma": 5.0, "max_ma": 10.0}, "modulation": [fm], **extra}}]}
    if low <= rate <= high:
        validate_program(data)
        return
    with pytest.raises(ProgramError) as info:
        validate_program(data)
    message = str(info.value)
    assert "\n" not in message and f"{field} must lie within" in message, message
    assert f"{low:g}-{high:g} Hz" in message and f"given {rate:g} Hz" in message, message
