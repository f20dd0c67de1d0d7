"""``electrostim run`` and ``electrostim sessions`` on the command line: confirmation, what a session prints and
records, and bad input (a store that is not there or cannot be one, a session that is not there, a port that is
not a serial device) as one line with exit code 2, nothing created."""

from __future__ import annotations

import json
import os
import re
import socket
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import electrostim as es
from electrostim.cli import app
from electrostim.cli._run import MAX_CONFIRMER, check_confirmer, result_lines
from electrostim.errors import InvalidInputError
from electrostim.session import SessionResult
from electrostim.store import Store

RULES = ["p.impaired-sensation", "p.recent-surgery", "p.metal-implant"]
FAST = ["--duration-s", "2", "--speed", "1000"]


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def one_line_error(r, *needles: str) -> str:
    """Bad input: exit code 2, nothing on stdout, one line on stderr that starts with ``error:``; the line."""
    assert r.exit_code == 2, r.output
    assert r.stdout == "" and "Traceback" not in r.output, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def patient(tmp_path: Path) -> Path:
    """A patient with recent surgery, a metal implant and impaired sensation: three precautions on the quadriceps."""
    p = tmp_path / "patient.toml"
    p.write_text('id = "P-9"\nconditions = ["recent-surgery", "metal-implant", "impaired-sensation"]\n')
    return p


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --------------------------------------------------------------------------- confirmation


@pytest.mark.parametrize("extra", [["--yes"], ["--yes", "--json"], [], ["--json"]], ids=["yes", "yes-json", "none", "json"])
def test_precautions_are_never_accepted_without_a_name(tmp_path: Path, patient: Path, extra: list[str]):
    db = tmp_path / "s.db"
    r = cli("run", "nmes-quadriceps-tka", "--patient", str(patient), *extra, *FAST, "--db", str(db))
    line = one_line_error(r, "needs confirmation", "--confirmed-by", *RULES)
    assert "but --confirmed-by was not given" in line
    assert not db.exists()


def test_yes_with_a_name_shows_every_precaution_and_records_who_confirmed(tmp_path: Path, patient: Path):
    db = tmp_path / "s.db"
    r = cli("run", "nmes-quadriceps-tka", "--patient", str(patient), "--yes", "--confirmed-by", " Dr A. Lee ", *FAST,
            "--db", str(db))
    assert r.exit_code == 0, r.output
    shown = [line for line in r.stderr.splitlines() if line.startswith("precaution [")]
    assert [line.split("]")[0].removeprefix("precaution [") for line in shown] == RULES  # every one, one line each
    assert "recent surgery" in shown[1] and "source:" in shown[1]
    assert "confirmed by Dr A. Lee" in r.stderr
    text = " ".join(r.stdout.split())
    assert "verdict needs confirmation, confirmed by Dr A. Lee: 3 precautions (" + ", ".join(RULES) + ")" in text
    with Store.open(db, readonly=True) as store:
        (session,) = store.list_sessions()
        plan = store.get_plan(session.plan_id)
    assert (plan.verdict, plan.confirmed, plan.confirmed_by) == ("needs_confirmation", True, "Dr A. Lee")
    assert (session.confirmed_by, session.patient_id) == ("Dr A. Lee", "P-9")
    assert [x["rule"] for x in plan.reasons] == RULES


def test_json_carries_every_precaution_and_stderr_shows_them(tmp_path: Path, patient: Path):
    db = tmp_path / "s.db"
    r = cli("run", "nmes-quadriceps-tka", "--patient", str(patient), "--yes", "--json", "--confirmed-by", "physio-7",
            *FAST, "--db", str(db))
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert [x["rule"] for x in d["precautions"]] == RULES == [x["rule"] for x in d["assessment"]["reasons"]]
    assert d["confirmed_by"] == "physio-7" and d["session"]["state"] == "completed"
    assert sum(line.startswith("precaution [") for line in r.stderr.splitlines()) == 3


def test_an_ok_plan_runs_with_yes_alone(tmp_path: Path):
    r = cli("run", "knee-oa-tens", "--yes", "--json", *FAST, "--db", str(tmp_path / "s.db"))
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["precautions"] == [] and d["confirmed_by"] is None and r.stderr == ""


@pytest.mark.parametrize("name", ["", "   ", "Dr\nLee", "tab\there", "x" * (MAX_CONFIRMER + 1), "\x1b[31mred"])
def test_a_bad_name_is_one_line_and_nothing_is_created(tmp_path: Path, patient: Path, name: str):
    db = tmp_path / "s.db"
    r = cli("run", "nmes-quadriceps-tka", "--patient", str(patient), "--yes", "--confirmed-by", name, *FAST, "--db", str(db))
    one_line_error(r, "Invalid value for '--confirmed-by': allowed the name of the person who confirms the plan "
                      "(1 to 200 printable characters on one line), but got ")
    assert not db.exists()


@given(name=st.text(max_size=220))
def test_property_a_name_is_taken_as_one_printable_line_or_refused(name: str):
    text = name.strip()
    if text and len(text) <= MAX_CONFIRMER and text.isprintable():
        assert check_confirmer(name) == text
    else:
        with pytest.raises(InvalidInputError, match=r"^Invalid value for '--confirmed-by': allowed .* but got ") as e:
            check_confirmer(name)
        assert "\n" not in str(e.value) and "\r" not in str(e.value)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(alphabet=string.ascii_letters + string.digits + " .-'[]/éü", min_size=1, max_size=40)
       .filter(lambda s: s.strip()))
def test_property_the_name_given_is_the_name_recorded(tmp_path_factory, name: str):
    folder = tmp_path_factory.mktemp("named")
    p = folder / "patient.toml"
    p.write_text('id = "P-9"\nconditions = ["metal-implant"]\n')
    r = cli("run", "nmes-quadriceps-tka", "--patient", str(p), "--yes", "--confirmed-by", name, "--duration-s", "0.5",
            "--speed", "1000", "--db", str(folder / "s.db"))
    assert r.exit_code == 0, r.output
    with Store.open(folder / "s.db", readonly=True) as store:
        (session,) = store.list_sessions()
    assert session.confirmed_by == name.strip()
    assert f"confirmed by {name.strip()}" in r.stderr


# --------------------------------------------------------------------------- what a session prints and records


def test_run_prints_verdict_session_duration_charge_and_ending(tmp_path: Path):
    db = tmp_path / "s.db"
    r = CliRunner().invoke(app, ["run", "knee-oa-tens", "--yes", "--duration-s", "5", "--speed", "1000", "--db", str(db)],
                           env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    lines = [" ".join(line.split()) for line in r.stdout.splitlines()]
    assert lines[0] == "verdict ok"
    assert lines[1].startswith("session 1, recorded in sqlite:///") and f"electrostim sessions show 1 --db {db}" in lines[1]
    assert lines[2] == "ended completed"
    assert re.fullmatch(r"duration 5\.0 s delivered \(5\.0 s of session time, pauses included\) in [\d.]+ s "
                        r"\([\d.e+]+× real time\)", lines[3]), lines[3]  # faster than real time: the speed reached
    speed = float(re.search(r"\(([\d.e+]+)× real time", lines[3]).group(1))
    assert 1 < speed <= 1000 * 1.05
    assert lines[4].startswith("charge knee-1 ") and lines[4].endswith(" µC")
    assert lines[5].startswith("pulses ") and int(lines[5].split()[1]) > 0


def _result(end_state: str, **kw) -> SessionResult:
    summary = {"run_s": 12.5, "session_s": 14.0, "pulses_delivered": 1000, "charge_delivered_uc": {"quad": 812.4},
               **kw.pop("summary", {})}
    return SessionResult(program="p", device="sim", session_id=7, end_state=end_state, summary=summary, db="sqlite:///x",
                         **{"error": None, "signal": None, "record_error": None, **kw})


def test_how_a_session_ended_is_printed_with_its_cause():
    stopped = dict(result_lines(_result("stopped", summary={"reason": "stopped by the user"}), "ok"))
    assert stopped["ended"] == "stopped: stopped by the user"
    assert stopped["duration"] == "12.5 s delivered (14.0 s of session time, pauses included)"
    assert stopped["charge"] == "quad 812 µC" and stopped["pulses"] == "1000" and stopped["session"].startswith("7, ")
    failed = dict(result_lines(_result("failed", error="electrode error on 'quad'",
                                       summary={"reason": "electrode error on 'quad'"}), "ok"))
    assert failed["ended"] == "failed: electrode error on 'quad'" and "error" not in failed
    signalled = dict(result_lines(_result("stopped", signal="SIGTERM", summary={"reason": "signal SIGTERM"}), "ok"))
    assert signalled["ended"] == "stopped: signal SIGTERM (output zeroed first, then the record)"
    assert dict(result_lines(_result("completed", summary={"charge_delivered_uc": {}}), "ok"))["charge"] == \
        "not measured by this stimulator"


def test_sessions_list_and_show_name_program_patient_verdict_and_ending(tmp_path: Path, patient: Path):
    db = str(tmp_path / "s.db")
    assert cli("run", "knee-oa-tens", "--yes", *FAST, "--db", db).exit_code == 0
    assert cli("run", "nmes-quadriceps-tka", "--patient", str(patient), "--yes", "--confirmed-by", "Dr A. Lee",
               *FAST, "--db", db).exit_code == 0
    r = CliRunner().invoke(app, ["sessions", "list", "--db", db], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in r.stdout.splitlines() if line.startswith("│")]
    assert [row[2:6] for row in rows] == [["nmes-quadriceps-tka", "P-9", "needs confirmation, confirmed by Dr A. Lee",
                                           "completed"], ["knee-oa-tens", "—", "ok", "completed"]]
    r = CliRunner().invoke(app, ["sessions", "show", "2", "--db", db, "--tail", "0"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    head = {line.split("  ")[0]: " ".join(line.split("  ", 1)[1].split()) for line in r.stdout.splitlines()
            if "  " in line and not line.startswith(("┃", "┏", "┡", "└", "│"))}
    assert head["program"] == "nmes-quadriceps-tka" and head["patient"] == "P-9" and head["state"] == "completed"
    assert head["verdict"] == "needs confirmation, confirmed by Dr A. Lee"
    assert r.stdout.count("precaution") == 3 and all(f"[{rule}]" in r.stdout for rule in RULES)
    assert head["intensity quadriceps"] == "0 s: 0 mA → 0 s: 30 mA → 1 s: 30 mA → 2 s: 0 mA"
    r = cli("sessions", "show", "2", "--db", db, "--json")
    d = json.loads(r.stdout)
    assert d["verdict"] == "needs_confirmation" and d["confirmed_by"] == "Dr A. Lee"
    assert d["intensity"] == {"quadriceps": [[0.0, 0.0], [0.0, 30.0], [1.0, 30.0], [2.0, 0.0]]}


def test_a_stopped_session_shows_its_cause(tmp_path: Path):
    from electrostim.session import deliver

    plan = es.assess(es.load_program("knee-oa-tens")).approve()

    def stop(r):
        if r.t >= 1.0:
            r.emergency_stop("stopped by the user")

    db = tmp_path / "s.db"
    deliver(plan, "sim", db, duration_s=5.0, speed=float("inf"), on_tick=stop)
    r = CliRunner().invoke(app, ["sessions", "list", "--db", str(db)], env={"COLUMNS": "200"})
    assert "stopped: stopped by the user" in r.stdout
    r = CliRunner().invoke(app, ["sessions", "show", "1", "--db", str(db)], env={"COLUMNS": "200"})
    assert "stopped: stopped by the user" in r.stdout


# --------------------------------------------------------------------------- reading never creates a store


def read_commands(db: str, folder: Path) -> dict[str, list[str]]:
    return {
        "list": ["sessions", "list", "--db", db],
        "show": ["sessions", "show", "1", "--db", db],
        "export": ["sessions", "export", "1", "-o", str(folder / "out.csv"), "--db", db],
        "upgrade": ["sessions", "upgrade", "--db", db],
        "recover": ["sessions", "recover", db, "--to", str(folder / "new.db")],
    }


@pytest.mark.parametrize("command", ["list", "show", "export", "upgrade", "recover"])
def test_reading_a_store_that_is_not_there_creates_nothing(tmp_path: Path, command: str):
    db = tmp_path / "typo.db"
    before = files(tmp_path)
    r = cli(*read_commands(str(db), tmp_path)[command])
    one_line_error(r, str(db), "No database at")
    assert files(tmp_path) == before


# --------------------------------------------------------------------------- a --db that cannot be a store


def _bad_db(kind: str, folder: Path, content: bytes) -> str:
    if kind == "folder":
        (folder / "a-folder").mkdir(exist_ok=True)
        return str(folder / "a-folder")
    if kind == "file":
        (folder / "notes.txt").write_bytes(content)
        return str(folder / "notes.txt")
    if kind == "under-a-file":
        (folder / "notes.txt").write_bytes(content)
        return str(folder / "notes.txt" / "s.db")
    if kind == "missing-folder":
        return str(folder / "no-such-folder" / "s.db")
    return {"empty": "", "scheme": "mysql://host/db", "driver": "postgresql+nosuchdriver://u@h/db", "memory": "sqlite://",
            "not-a-url": "a b://c"}[kind]


BAD_DB = ["folder", "file", "under-a-file", "missing-folder", "empty", "scheme", "driver", "memory", "not-a-url"]
COMMANDS = ["list", "show", "export", "run"]


def _invoke_with_db(command: str, db: str, folder: Path):
    if command == "run":
        return cli("run", "knee-oa-tens", "--yes", *FAST, "--db", db)
    return cli(*read_commands(db, folder)[command])


@pytest.mark.parametrize(("kind", "command"), [(k, c) for k in BAD_DB for c in COMMANDS
                                                if k not in ("under-a-file", "missing-folder") or c == "run"])
# (reading a path that is not there: no database, above)
def test_a_db_that_cannot_be_a_store_is_one_line_exit_2(tmp_path: Path, kind: str, command: str):
    db = _bad_db(kind, tmp_path, b"my notes\n")
    before = files(tmp_path)
    one_line_error(_invoke_with_db(command, db, tmp_path))
    assert files(tmp_path) == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["folder", "file", "scheme", "driver", "memory"]), command=st.sampled_from(COMMANDS),
       content=st.binary(min_size=1, max_size=200).filter(lambda b: not b.startswith(b"SQLite format 3")),
       scheme=st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True).filter(lambda s: s not in ("sqlite", "postgresql")))
def test_property_any_db_that_cannot_be_a_store_is_one_line_exit_2(tmp_path_factory, kind, command, content, scheme):
    folder = tmp_path_factory.mktemp("bad-db")
    db = f"{scheme}://host/db" if kind == "scheme" else _bad_db(kind, folder, content)
    before = files(folder)
    one_line_error(_invoke_with_db(command, db, folder))
    assert files(folder) == before


# --------------------------------------------------------------------------- a session that is not there


@pytest.fixture
def one_session(tmp_path: Path) -> str:
    db = str(tmp_path / "s.db")
    assert cli("run", "knee-oa-tens", "--yes", *FAST, "--db", db).exit_code == 0
    return db


@pytest.mark.parametrize("command", ["show", "export"])
def test_a_session_that_is_not_there_is_one_line_exit_2(tmp_path: Path, one_session: str, command: str):
    args = {"show": ["sessions", "show"], "export": ["sessions", "export", "-o", str(tmp_path / "x.csv")]}[command]
    line = one_line_error(cli(*args, "9999", "--db", one_session), "No session 9999 in ", "(1 here, ids 1 to 1",
                          "but got 9999.")
    assert "sessions list" in line
    one_line_error(cli(*args, "--db", one_session, "--", str(10**23)),
                   f"Invalid value for 'SESSION_ID': allowed a whole number 1 <= x <= 2147483647, but got '{10**23}'.")
    assert not (tmp_path / "x.csv").exists()


# --------------------------------------------------------------------------- a port that is not a serial device


def _not_a_port(kind: str, folder: Path) -> str:
    path = folder / f"port-{kind}"
    if kind == "file":
        path.write_text("root:x:0:0\n")
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    elif kind == "link-to-file":
        (folder / "target").write_text("x")
        path.symlink_to(folder / "target")
    return str(path)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
@pytest.mark.parametrize("backend", ["rehastim2", "p24"])
def test_dev_null_is_not_a_serial_port(tmp_path: Path, backend: str):
    """A character device that is no terminal line: refused before the store is created."""
    db = tmp_path / "s.db"
    one_line_error(cli("run", "knee-oa-tens", "--device", f"{backend}:/dev/null", "--yes", "--db", str(db)),
                   "Invalid value for 'device': allowed a serial port", "is a character device that is not a serial line")
    assert not db.exists()


@pytest.mark.skipif(os.name != "posix", reason="character devices are a POSIX notion")
@pytest.mark.parametrize("backend", ["rehastim2", "p24"])
def test_etc_passwd_is_not_a_serial_port(tmp_path: Path, backend: str):
    db = tmp_path / "s.db"
    one_line_error(cli("run", "knee-oa-tens", "--device", f"{backend}:/etc/passwd", "--yes", "--db", str(db)),
                   "Invalid value for 'device': allowed a serial port", "'/etc/passwd' is a regular file",
                   f"(got '{backend}:/etc/passwd')")
    assert not db.exists()


@pytest.mark.skipif(os.name != "posix", reason="character devices are a POSIX notion")
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["file", "folder", "fifo", "socket", "link-to-file"]),
       backend=st.sampled_from(["rehastim2", "p24"]), json_=st.booleans())
def test_property_a_port_that_is_not_a_character_device_is_one_line_exit_2(tmp_path_factory, kind, backend, json_):
    folder = tmp_path_factory.mktemp("ports")
    port = _not_a_port(kind, folder)
    before = files(folder)
    r = cli("run", "knee-oa-tens", "--device", f"{backend}:{port}", "--yes", *(["--json"] if json_ else []),
            "--db", str(folder / "s.db"))
    one_line_error(r, "allowed a serial port", repr(port))
    assert files(folder) == before
