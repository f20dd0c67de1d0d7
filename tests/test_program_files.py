"""Program files that are broken in every way a person or a disk can break them.

Property: :func:`electrostim.program.load_program_file` either returns a valid
:class:`~electrostim.program.Program` or raises :class:`~electrostim.errors.ProgramError`
(``ProgramFileError`` is a subclass) whose message names the file, never any other
exception. The inputs are the preset files shipped with the package, truncated and
mutated. Explicit tests pin the wording of the messages (STYLE.md, item 8).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from electrostim.errors import InvalidInputError, ProgramError, ProgramFileError
from electrostim.program import Program, load_program_file, validate_program


def _preset_texts() -> dict[str, str]:
    folder = resources.files("electrostim.program").joinpath("presets")
    return {
        item.name: item.read_text(encoding="utf-8")
        for item in sorted(folder.iterdir(), key=lambda p: p.name)
        if item.name.endswith(".toml")
    }


PRESETS = _preset_texts()
PRESET_NAMES = sorted(PRESETS)

#: a file name with a space and a non-ASCII letter: the message must carry it intact
FILE_NAME = "my program é.toml"

#: ``key = <number>`` on one line
_NUMBER_LINE = re.compile(r"^(\s*[A-Za-z0-9_-]+\s*=\s*)([-+]?\d[\d_]*(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")
#: ``key = <anything>`` on one line (not a table header, not a continuation)
_VALUE_LINE = re.compile(r"^(\s*)([A-Za-z0-9_-]+)(\s*=\s*)(.+)$")

#: numbers a person (or a bad editor) might write, TOML spelling
SPECIAL_NUMBERS = (
    "0", "-0", "0.0", "-1", "-0.5", "1", "0.5", "nan", "+nan", "-nan", "inf", "+inf", "-inf",
    "1e308", "1e309", "-1e308", "5e-324", "1e-300", "1e-9", "500", "500.000001", "20000", "20001",
    "100000", "100001", "86400", "86401", "1_000_000", "9" * 40, "-" + "9" * 40,
)

#: values of other TOML types
OTHER_VALUES = (
    "true", "false", "[]", "[1, 2]", '["a"]', "{}", "{ a = 1 }", "1979-05-27", "07:32:00",
    "1979-05-27T07:32:00Z", '""', '" "', '"100"', '"knee"', '"symmetric-biphasic"', '"interferential"',
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("program files")


def _write(workdir: Path, content: str | bytes) -> Path:
    path = workdir / FILE_NAME
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def check_load(path: Path) -> Program | None:
    """Load ``path``; assert the outcome is a valid Program or a ProgramError that names the file."""
    try:
        program = load_program_file(path)
    except ProgramError as exc:
        message = str(exc)
        assert message.strip(), "empty error message"
        assert str(path) in message, f"message does not name the file {path}:\n{message}"
        if not isinstance(exc, ProgramFileError):
            # a validation error lists its problems
            assert exc.problems, f"no problems listed:\n{message}"
            for field, problem, _given in exc.problems:
                assert isinstance(field, str) and field
                assert isinstance(problem, str) and problem
        return None
    # anything else (AttributeError, OverflowError, pydantic's ValidationError, ...) fails the test
    assert isinstance(program, Program)
    # a program that loads is whole: it validates again from its own data, to the same value
    again = validate_program(program.model_dump(mode="python"), source="round trip")
    assert again == program
    return program


# --------------------------------------------------------------------------- the presets themselves


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_presets_load_from_files(workdir: Path, name: str):
    program = check_load(_write(workdir, PRESETS[name]))
    assert program is not None
    assert f"{program.id}.toml" == name


# --------------------------------------------------------------------------- mutations

def _toml_string(text: str) -> str:
    # a JSON string (non-ASCII kept, control characters escaped as \uXXXX) is a TOML basic string
    return json.dumps(text, ensure_ascii=False)


_numbers = st.one_of(
    st.sampled_from(SPECIAL_NUMBERS),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(repr),
)
_strings = st.one_of(
    st.sampled_from(["", " ", "knee", "KNEE", "knee ", "symmetric-biphasic", "quadripolar", "tens", "100", "nan", "x" * 200]),
    st.text(max_size=20),
).map(_toml_string)
_values = st.one_of(_numbers, _strings, st.sampled_from(OTHER_VALUES))
_keys = st.one_of(
    st.sampled_from(["site", "shape", "label", "id", "frequency_hz", "pulse_width_us", "max_ma", "default_ma",
                     "on_s", "off_s", "kind", "mode", "stimulus", "channels", "electrodes", "pulse", "amplitude",
                     "frequency_khz", "pulse_width_ms", "Site"]),
    st.from_regex(r"[a-z_][a-z0-9_-]{0,12}", fullmatch=True),
)


def _lines_matching(lines: list[str], pattern: re.Pattern[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if pattern.match(line)]


def _mutate(data: st.DataObject, text: str) -> str:
    """One random edit of a TOML text."""
    lines = text.split("\n")
    kind = data.draw(
        st.sampled_from(["number", "delete", "duplicate", "value", "rename", "insert-text", "swap"]), label="kind"
    )
    numeric = _lines_matching(lines, _NUMBER_LINE)
    valued = _lines_matching(lines, _VALUE_LINE)
    if kind == "number" and numeric:
        i = data.draw(st.sampled_from(numeric), label="line")
        m = _NUMBER_LINE.match(lines[i])
        assert m is not None
        lines[i] = m.group(1) + data.draw(_numbers, label="number")
    elif kind == "delete":
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        del lines[i]
    elif kind == "duplicate":
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        j = data.draw(st.integers(0, len(lines)), label="to")
        lines.insert(j, lines[i])
    elif kind == "value" and valued:
        i = data.draw(st.sampled_from(valued), label="line")
        m = _VALUE_LINE.match(lines[i])
        assert m is not None
        lines[i] = m.group(1) + m.group(2) + m.group(3) + data.draw(_values, label="value")
    elif kind == "rename" and valued:
        i = data.draw(st.sampled_from(valued), label="line")
        m = _VALUE_LINE.match(lines[i])
        assert m is not None
        lines[i] = m.group(1) + data.draw(_keys, label="key") + m.group(3) + m.group(4)
    elif kind == "insert-text":
        pos = data.draw(st.integers(0, len(text)), label="at")
        return text[:pos] + data.draw(st.text(min_size=1, max_size=12), label="text") + text[pos:]
    elif kind == "swap":
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        j = data.draw(st.integers(0, len(lines) - 1), label="with")
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def _insert_bytes(data: st.DataObject, raw: bytes) -> bytes:
    pos = data.draw(st.integers(0, len(raw)), label="byte at")
    junk = data.draw(
        st.one_of(
            st.binary(min_size=1, max_size=8),
            st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xef\xbb\xbf", b"\r", b"\r\n", b"\t", b"\x7f", b"\xe2\x80\xa8"]),
        ),
        label="bytes",
    )
    return raw[:pos] + junk + raw[pos:]


_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # randomness and the example database follow the profile loaded in conftest (derandomized on CI)


@pytest.mark.parametrize("name", PRESET_NAMES)
@_SETTINGS
@given(data=st.data())
def test_truncated_file_loads_or_raises_program_error(workdir: Path, name: str, data: st.DataObject):
    raw = PRESETS[name].encode("utf-8")
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    check_load(_write(workdir, raw[:cut]))  # may cut a multi-byte character in half


@pytest.mark.parametrize("name", PRESET_NAMES)
@_SETTINGS
@given(data=st.data())
def test_mutated_file_loads_or_raises_program_error(workdir: Path, name: str, data: st.DataObject):
    text = PRESETS[name]
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        text = _mutate(data, text)
    raw = text.encode("utf-8")
    if data.draw(st.booleans(), label="insert bytes"):
        raw = _insert_bytes(data, raw)
    check_load(_write(workdir, raw))


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_number_replaced_by_special_values(workdir: Path, name: str):
    """Deterministic sweep: each numeric field of the preset, each special number."""
    lines = PRESETS[name].split("\n")
    failures = []
    for i in _lines_matching(lines, _NUMBER_LINE):
        m = _NUMBER_LINE.match(lines[i])
        assert m is not None
        for value in SPECIAL_NUMBERS:
            edited = lines.copy()
            edited[i] = m.group(1) + value
            try:
                check_load(_write(workdir, "\n".join(edited)))
            except Exception as exc:  # collect them all, then report
                failures.append(f"line {i + 1}: {lines[i].strip()!r} -> {value}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------- unreadable files


def test_missing_file(workdir: Path):
    path = workdir / "no such program.toml"
    with pytest.raises(ProgramFileError, match=r"no such file") as info:
        load_program_file(path)
    assert str(path) in str(info.value)


def test_directory_instead_of_file(workdir: Path):
    folder = workdir / "a folder.toml"
    folder.mkdir(exist_ok=True)
    with pytest.raises(ProgramFileError, match=r"is a directory") as info:
        load_program_file(folder)
    assert str(folder) in str(info.value)


def test_not_utf8(workdir: Path):
    path = _write(workdir, PRESETS["knee-oa-tens.toml"].encode("utf-8").replace(b"knee-1", b"knee-\xff"))
    with pytest.raises(ProgramFileError, match=r"not UTF-8 text") as info:
        load_program_file(path)
    assert str(path) in str(info.value)


def test_not_toml(workdir: Path):
    path = _write(workdir, "this is = not = toml\n")
    with pytest.raises(ProgramFileError, match=r"not valid TOML") as info:
        load_program_file(path)
    assert str(path) in str(info.value)


def test_empty_file_lists_required_fields(workdir: Path):
    path = _write(workdir, "")
    with pytest.raises(ProgramError) as info:
        load_program_file(path)
    message = str(info.value)
    for field in ("id", "name", "modality", "session_duration_s", "channels"):
        assert f"  - {field}: required, but missing" in message


def test_error_hierarchy():
    assert issubclass(ProgramFileError, ProgramError)
    assert issubclass(ProgramError, InvalidInputError)
    assert issubclass(ProgramError, ValueError)


# --------------------------------------------------------------------------- message wording


def _edit(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, f"{old!r} not in the preset: the test needs updating"
    return text.replace(old, new, count)


def _load_text(workdir: Path, text: str) -> Program:
    return load_program_file(_write(workdir, text))


KNEE = PRESETS["knee-oa-tens.toml"]
IFC = PRESETS["ifc-knee.toml"]
RUSSIAN = PRESETS["russian-current.toml"]


def test_zero_pulse_width_message(workdir: Path):
    text = _edit(KNEE, "pulse_width_us = 100", "pulse_width_us = 0")
    with pytest.raises(ProgramError, match=r": stimulus\.pulse\.pulse_width_us: .*greater than 0.*; given 0$") as info:
        _load_text(workdir, text)
    assert str(workdir / FILE_NAME) in str(info.value)
    assert "\n" not in str(info.value)  # one problem, one line
    assert info.value.problems == [("stimulus.pulse.pulse_width_us",
                                    "should be greater than 0; allowed a finite number 0 < x <= 100000", 0)]


def test_nan_is_refused(workdir: Path):
    text = _edit(KNEE, "max_ma = 50", "max_ma = nan")
    with pytest.raises(ProgramError, match=r": stimulus\.amplitude\.max_ma: .*; given nan") as info:
        _load_text(workdir, text)
    (field, _problem, given_value), = info.value.problems
    assert field == "stimulus.amplitude.max_ma"
    assert math.isnan(given_value)


def test_unknown_site_message(workdir: Path):
    text = _edit(KNEE, 'site = "knee"', 'site = "kneee"')
    with pytest.raises(ProgramError, match=r"channels\[0\]\.electrodes\[0\]\.site: Unknown body site 'kneee': allowed sites are ") as info:
        _load_text(workdir, text)
    message = str(info.value)
    for site in ("knee", "vastus-medialis", "low-back", "forearm"):
        assert re.search(rf"\b{re.escape(site)}\b", message)


def test_unknown_shape_message(workdir: Path):
    text = _edit(KNEE, 'shape = "symmetric-biphasic"', 'shape = "square"')
    with pytest.raises(ProgramError, match=r": stimulus\.pulse\b.*'square'") as info:
        _load_text(workdir, text)
    message = str(info.value)
    for shape in ("symmetric-biphasic", "asymmetric-biphasic", "monophasic", "sine-burst", "interferential"):
        assert f"'{shape}'" in message


# one edit of the knee preset, and the one line that says what is wrong, what is allowed and what was given
_EDIT_MESSAGES = {
    "unknown pad shape": ('shape = "rectangle"', 'shape = "oval"',
                          r"channels\[0\]\.electrodes\[0\]\.shape: .*'rectangle'.*'disk'.*given 'oval'"),
    "unknown modality": ('modality = "tens"', 'modality = "magic"', r"modality: .*'tens'.*'interferential'.*given 'magic'"),
    "missing field": ("frequency_hz = 100\n", "", r": stimulus\.pulse\.frequency_hz: required, but missing"),
    "missing top-level field": ("session_duration_s = 2400\n", "",
                                r"\.toml: session_duration_s: required, but missing; allowed a finite number 0 < x <= 86400$"),
    "unknown field": ("frequency_hz = 100\n", "frequency_hz = 100\nfrequency_khz = 0.1\n",
                      r": stimulus\.pulse\.frequency_khz: unknown field; did you mean 'frequency_hz'\? given 0\.1$"),
    "unknown top-level field": ('modality = "tens"\n', 'modality = "tens"\nduration_min = 40\n',
                                r"\.toml: duration_min: unknown field \(not part of the schema\); allowed here: channels, "
                                r"citations, description, "),
    "default above max": ("default_ma = 15", "default_ma = 60",
                          r": stimulus\.amplitude: default_ma \(60\) must not exceed max_ma \(50\)"),
    # 2 x 100 µs + 20 µs gap = 220 µs per pulse; 5 kHz leaves 200 µs between pulse starts
    "overlapping pulses": ("frequency_hz = 100\n", "frequency_hz = 5000\n",
                           r"channels\[0\]\.stimulus: pulses overlap: a pulse lasts 220 µs but the rate reaches 5000 Hz"),
}


@pytest.mark.parametrize("case", sorted(_EDIT_MESSAGES))
def test_an_edit_gives_its_message(workdir: Path, case: str):
    old, new, message = _EDIT_MESSAGES[case]
    with pytest.raises(ProgramError, match=message):
        _load_text(workdir, _edit(KNEE, old, new))


def test_overlapping_sine_bursts_message(workdir: Path):
    # 100 % duty at the nominal 50 Hz fills each 20 ms period; a sweep up to 100 Hz makes bursts overlap
    text = _edit(RUSSIAN, "burst_duty_percent = 50", "burst_duty_percent = 100")
    _load_text(workdir, text)  # bursts just touch: allowed
    text = _edit(text, "[stimulus.amplitude]", "[[stimulus.modulation]]\nkind = \"frequency-sweep\"\nlow_hz = 40\nhigh_hz = 100\nperiod_s = 2\n\n[stimulus.amplitude]")
    with pytest.raises(ProgramError, match=r"channels\[0\]\.stimulus: bursts overlap: a burst of 50 carrier cycles lasts 20000 µs but bursts repeat at up to 100 Hz"):
        _load_text(workdir, text)


def test_quadripolar_interferential_needs_four_pads(workdir: Path):
    # keep the first two [[channels.electrodes]] tables, drop the other two
    first = IFC.index("[[channels.electrodes]]")
    third = IFC.index("[[channels.electrodes]]", IFC.index("[[channels.electrodes]]", first + 1) + 1)
    text = IFC[:third] + IFC[IFC.index("[[citations]]"):]
    with pytest.raises(ProgramError, match=r"channels\[0\]: quadripolar interferential current needs 4 electrodes, but 2 were given"):
        _load_text(workdir, text)


def test_premodulated_interferential_needs_two_pads(workdir: Path):
    text = _edit(IFC, 'mode = "quadripolar"', 'mode = "premodulated"')
    with pytest.raises(ProgramError, match=r"channels\[0\]: shape 'interferential' needs 2 electrodes, but 4 were given"):
        _load_text(workdir, text)


def test_duplicate_key_is_a_file_error(workdir: Path):
    text = _edit(KNEE, "frequency_hz = 100\n", "frequency_hz = 100\nfrequency_hz = 50\n")
    with pytest.raises(ProgramFileError, match=r"not valid TOML: .*line \d+"):
        _load_text(workdir, text)


def test_several_problems_are_all_listed(workdir: Path):
    text = _edit(KNEE, "pulse_width_us = 100", "pulse_width_us = -5")
    text = _edit(text, 'site = "knee"', 'site = "moon"')
    with pytest.raises(ProgramError, match=r"invalid \(2 problems\)") as info:
        _load_text(workdir, text)
    fields = sorted(p[0] for p in info.value.problems)
    assert fields == ["channels[0].electrodes[0].site", "stimulus.pulse.pulse_width_us"]


# --------------------------------------------------------------------------- inputs found to crash the loader

def test_channel_stimulus_that_is_not_a_table(workdir: Path):
    """A channel's ``stimulus`` written as a value, with a top-level ``[stimulus]`` table to merge into."""
    text = _edit(KNEE, 'label = "knee-1"\n', 'label = "knee-1"\nstimulus = "strong"\n')
    with pytest.raises(ProgramError, match=r"channels\[0\]\.stimulus"):
        _load_text(workdir, text)


def test_vanishing_burst_rate(workdir: Path):
    """Sine bursts at the smallest positive float: the carrier cycles per burst overflow."""
    text = _edit(RUSSIAN, "frequency_hz = 50\n", "frequency_hz = 5e-324\n")
    check_load(_write(workdir, text))


# --------------------------------------------------------------------------- the CLI


def test_cli_reports_a_broken_file_without_traceback(workdir: Path):
    path = _write(workdir, _edit(KNEE, "pulse_width_us = 100", "pulse_width_us = 0"))
    proc = subprocess.run(
        [sys.executable, "-m", "electrostim", "programs", "show", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0 and "No module named electrostim.__main__" in proc.stderr:
        pytest.xfail("CLI not yet available")
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    assert proc.returncode == 2, output
    assert "pulse_width_us" in output, output


def _minimal(**stimulus_pulse):
    return {
        "id": "x1", "name": "abc", "modality": "tens", "session_duration_s": 10,
        "channels": [{"label": "a", "electrodes": [{"site": "knee", "width_cm": 5, "height_cm": 5}] * 2,
                      "stimulus": {"pulse": stimulus_pulse, "amplitude": {"default_ma": 1, "max_ma": 2}}}],
    }


def test_pulse_shape_messages_name_the_shape_field():
    with pytest.raises(ProgramError, match=r"pulse\.shape: allowed 'symmetric-biphasic', .*; given 'square'"):
        validate_program(_minimal(shape="square", frequency_hz=5))
    with pytest.raises(ProgramError, match=r"pulse\.shape: required, but missing; allowed 'symmetric-biphasic'"):
        validate_program(_minimal(frequency_hz=5))


def test_top_level_stimulus_without_channels_reports_the_channels():
    with pytest.raises(ProgramError, match=r"channels: required, but missing") as info:
        validate_program({"id": "x1", "name": "abc", "modality": "tens", "session_duration_s": 10, "stimulus": {}})
    assert "unknown field" not in str(info.value)
