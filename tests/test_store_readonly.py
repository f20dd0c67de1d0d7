"""Reading never needs writing, and a damaged store is refused, never appended to.

The failing cases of the issue "records cannot be read when they cannot be written":
``sessions list|show|export`` on a read-only file, on read-only media and on a full
disk; a page of random bytes inside the database; a database truncated to 0 bytes;
and the recovery of what a damaged file still holds.

Tests run as root here, and root ignores file permissions, so read-only media are
made real where the system allows it: a read-only bind mount and a full tmpfs, each
inside a private mount namespace (``unshare -rm``), which vanishes with the test's
process. Where that is not possible those two tests are skipped; the others show
the same from the inside: the file's bytes, its modification time and its folder are
unchanged after reading, and a process that may not grow any file (``RLIMIT_FSIZE``
0, a stand-in for a full disk that needs no privileges) still reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import electrostim as es
from electrostim.cli import app
from electrostim.errors import InvalidInputError, OptionError
from electrostim.store import (
    Store,
    StoreDamagedError,
    StoreError,
    StoreNotFoundError,
    StoreReadOnlyError,
)

RECOVER = r"electrostim sessions recover .+ --to .+\.recovered\.db"
SESSIONS, EVENTS = 3, 20


# --------------------------------------------------------------------------- a store to read and to damage


@pytest.fixture(scope="module")
def plan():
    return es.assess(es.load_program("knee-oa-tens"), es.Patient(id="P-1")).approve()


def _fill(db: Path, plan, sessions: int = SESSIONS, events: int = EVENTS) -> None:
    """``sessions`` completed sessions of ``events`` intensity events each; event i of session s carries ``S{s}-E{i}``."""
    with Store.open(db) as store:
        plan_id = store.record_plan(plan).id
        store.add_patient("P-2")
        for _ in range(sessions):
            sid = store.start_session(plan_id, "simulated").id
            for i in range(events):
                store.append_event(sid, "intensity", {"amplitude_ma": 0.5 * i, "marker": f"S{sid}-E{i:02d}", "pad": "x" * 40},
                                   output="knee-1")
            store.end_session(sid, "completed", {"delivered_s": 1.0})


@pytest.fixture(scope="module")
def template(plan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("template") / "store.db"
    _fill(db, plan)
    return db


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template store (no -wal, no -shm: everything is in the file)."""
    path = tmp_path / "store.db"
    shutil.copy(template, path)
    return path


def _snapshot(store: Store) -> tuple:
    """Everything the store holds, as the public API reads it."""
    sessions = sorted(store.list_sessions(), key=lambda r: r.id)
    details = [store.get_session(s.id) for s in sessions]
    programs = sorted({d.plan.program_ref for d in details})
    return ([p.model_dump() for p in store.list_patients()], [s.model_dump() for s in sessions],
            [d.model_dump() for d in details], [store.get_program(ref).model_dump() for ref in programs])


@pytest.fixture(scope="module")
def expected(template: Path) -> tuple:
    with Store.open(template, readonly=True) as store:
        return _snapshot(store)


def _state(path: Path) -> tuple:
    """What reading must leave alone: the file's bytes and times, and the names in its folder."""
    st_ = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st_.st_mtime_ns, st_.st_size, sorted(os.listdir(path.parent))


def _page_of(db: Path, marker: bytes) -> int:
    data = db.read_bytes()
    page_size = int.from_bytes(data[16:18], "big")
    offset = data.index(marker)
    return offset // page_size


def _smash_page(db: Path, page: int, seed: int = 7) -> None:
    """Write a page of random bytes over page ``page`` (0-based) of the file."""
    data = bytearray(db.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    data[page * page_size:(page + 1) * page_size] = random.Random(seed).randbytes(page_size)
    db.write_bytes(bytes(data))


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def _one_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# --------------------------------------------------------------------------- reading writes nothing


def test_reading_creates_changes_and_leaves_nothing(db: Path, expected: tuple, tmp_path: Path):
    (tmp_path / "out").mkdir()  # export creates no folder
    before = _state(db)
    with Store.open(db, readonly=True) as store:
        assert store.readonly and "readonly" in repr(store)
        assert _snapshot(store) == expected
        store.export_session(1, tmp_path / "out" / "s1.csv")
    assert _state(db)[:3] == before[:3]  # bytes, mtime and size
    assert sorted(os.listdir(db.parent)) == ["out", "store.db"]  # no -wal, -shm or -journal appeared

    for args in (["list"], ["show", "1"], ["export", "2", "-o", str(tmp_path / "out" / "s2.json")]):
        r = cli("sessions", *args, "--db", str(db))
        assert r.exit_code == 0, r.output
    assert _state(db)[:3] == before[:3]
    assert sorted(os.listdir(db.parent)) == ["out", "store.db"]


WRITES = {
    "add_patient": lambda store, plan: store.add_patient("P-9"),
    "record_program": lambda store, plan: store.record_program({"id": "x", "name": "x"}),
    "record_plan": lambda store, plan: store.record_plan(plan),
    "start_session": lambda store, plan: store.start_session(1, "simulated"),
    "append_event": lambda store, plan: store.append_event(1, "note", {}),
    "end_session": lambda store, plan: store.end_session(1, "completed"),
    "mark_interrupted": lambda store, plan: store.mark_interrupted(),
    "migrate": lambda store, plan: store.migrate(),
}


@pytest.mark.parametrize("method", sorted(WRITES))
def test_a_reading_store_refuses_every_write(db: Path, method: str, plan):
    before = _state(db)
    with Store.open(db, readonly=True) as store:
        with pytest.raises(StoreReadOnlyError, match=r"^Cannot .* the store was opened read-only \(readonly=True\)"):
            WRITES[method](store, plan)
    assert _state(db)[:3] == before[:3]


def test_a_missing_database_is_not_created(tmp_path: Path):
    db = tmp_path / "no" / "such" / "store.db"
    with pytest.raises(StoreNotFoundError, match=r"No database at .*store\.db: reading needs an existing store .*nothing was created\."):
        Store.open(db, readonly=True)
    assert isinstance(StoreNotFoundError("x"), InvalidInputError)
    for args in (["list"], ["show", "1"], ["export", "1", "-o", str(tmp_path / "x.csv")]):
        r = cli("sessions", *args, "--db", str(db))
        assert r.exit_code == 2, r.output
        assert _one_line(r.output).startswith("error: No database at ")
    assert not (tmp_path / "no").exists() and not (tmp_path / "x.csv").exists()


def test_a_session_left_running_is_shown_as_it_is(db: Path):
    """Reading marks nothing interrupted: the session stays ``running`` and is shown as ``running (process ended)``."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with Store.open(db) as store:
        sid = store.start_session(1, "simulated").id
        store.append_event(sid, "note", {"n": 1})
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from electrostim.store._tables import SessionRow

    engine = create_engine(f"sqlite:///{db}")
    with Session(engine) as s, s.begin():  # as if a process that has ended had run it (the models keep the checksum)
        s.get(SessionRow, sid).pid = dead.pid
    engine.dispose()
    before = _state(db)

    r = cli("sessions", "list", "--db", str(db), "--json")
    assert r.exit_code == 0, r.output
    row = next(x for x in json.loads(r.stdout) if x["id"] == sid)
    assert row["state"] == "running" and row["process_ended"] is True
    r = CliRunner().invoke(app, ["sessions", "show", str(sid), "--db", str(db)], env={"COLUMNS": "160"})
    assert r.exit_code == 0 and "running (process ended)" in r.output
    assert _state(db)[:3] == before[:3]
    with Store.open(db, readonly=True) as store:
        assert store.get_session(sid).state == "running"
    with Store.open(db) as store:  # the next writing start marks it
        assert store.mark_interrupted() == [sid]


def test_reading_sees_what_a_live_writer_committed(db: Path):
    """A writer holds the database open (its log not yet folded into the file): a reader sees every committed event."""
    with Store.open(db) as writer:
        sid = writer.start_session(1, "simulated").id
        for i in range(5):
            writer.append_event(sid, "note", {"i": i})
        assert Path(f"{db}-wal").stat().st_size > 0
        with Store.open(db, readonly=True) as reader:
            assert [e.seq for e in reader.get_session(sid).events] == [1, 2, 3, 4, 5, 6]
            writer.append_event(sid, "note", {"i": 5})
            assert len(reader.get_events(sid)) == 7


def test_a_file_changed_under_a_reader_is_not_called_damaged(db: Path):
    with Store.open(db, readonly=True) as store:
        _smash_page(db, _page_of(db, b"S2-E05"))
        with pytest.raises(StoreError, match=r"changed while it was being read .*another process wrote to it\. "
                                             r"Nothing was written; run the command again\.") as info:
            store.get_session(2)
        assert not isinstance(info.value, StoreDamagedError)


# --------------------------------------------------------------------------- read-only media and full disks


def _unshare_works() -> bool:
    if sys.platform != "linux" or not shutil.which("unshare"):
        return False
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt 2>/dev/null || "
                               "mount -t tmpfs tmpfs /tmp"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


needs_mount_namespace = pytest.mark.skipif(not _unshare_works(), reason="needs `unshare -rm` (a private mount namespace) "
                                           "to make read-only and full file systems without touching the machine's")

#: Runs inside the namespace: the CLI's reading commands, then a writing open; one JSON line of results.
CHILD = textwrap.dedent(
    """
    import json, sys
    from typer.testing import CliRunner
    from electrostim.cli import app
    from electrostim.store import Store, StoreError

    out = {}
    for db, export_to in zip(sys.argv[1::2], sys.argv[2::2]):
        res = out[db] = {}
        for args in (["list", "--json"], ["show", "1", "--json"], ["export", "1", "-o", export_to]):
            r = CliRunner().invoke(app, ["sessions", *args, "--db", db])
            res[args[0]] = [r.exit_code, r.stdout if r.exit_code == 0 and args[0] != "export" else r.output]
        try:
            with Store.open(db) as store:
                store.start_session(1, "simulated")
            res["write"] = "ok"
        except StoreError as exc:
            res["write"] = str(exc)
    print(json.dumps(out))
    """
)


def _in_namespace(script: str, *args: str, child: Path) -> dict:
    """Run the shell ``script`` in a private mount namespace; ``$CHILD`` runs :data:`CHILD` with the arguments given."""
    child.write_text(CHILD)
    env = {**os.environ, "CHILD": f"{sys.executable} {child}"}
    proc = subprocess.run(["unshare", "-rm", "sh", "-ec", script, "sh", *args], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_mount_namespace
def test_reading_on_read_only_media(db: Path, template: Path, tmp_path: Path, expected: tuple):
    media = db.parent
    # a writer killed before it folded its log into the file: -wal (with content) and -shm are left
    killed = media / "killed.db"
    shutil.copy(template, killed)
    code = ("import os, sys\nfrom electrostim.store import Store\ns = Store.open(sys.argv[1], migrate=False)\n"
            "s.append_event(s.start_session(1, 'x').id, 'note', {'after': 'the last checkpoint'})\nos._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, str(killed)], check=True, timeout=60)
    assert Path(f"{killed}-wal").stat().st_size > 0 and Path(f"{killed}-shm").exists()
    # the same without its -shm: the log cannot be read in a folder that cannot be written
    no_shm = media / "no_shm.db"
    shutil.copy(killed, no_shm)
    shutil.copy(f"{killed}-wal", f"{no_shm}-wal")
    before = {p.name: _state(p)[:3] for p in media.iterdir() if p.is_file()}
    out = tmp_path.parent / f"{tmp_path.name}-exports"
    out.mkdir()

    script = 'mount --bind "$1" "$1"; mount -o remount,ro,bind "$1"; shift; $CHILD "$@"'
    res = _in_namespace(script, str(media), str(db), str(out / "a.csv"), str(killed), str(out / "b.csv"),
                        str(no_shm), str(out / "c.csv"), child=out / "child.py")

    plain = res[str(db)]
    assert plain["list"][0] == plain["show"][0] == plain["export"][0] == 0, plain
    assert [s["id"] for s in json.loads(plain["list"][1])] == [3, 2, 1]
    assert json.loads(plain["show"][1])["event_count"] == EVENTS + 2
    assert (out / "a.csv").read_text().count("\n") == EVENTS + 3
    assert "cannot be written here" in plain["write"] and "reading works" in plain["write"]

    after_kill = res[str(killed)]
    assert after_kill["list"][0] == 0 and [s["id"] for s in json.loads(after_kill["list"][1])] == [4, 3, 2, 1]
    assert json.loads(after_kill["list"][1])[0]["state"] == "running"  # shown as it is, nothing marked

    lost_shm = res[str(no_shm)]
    assert lost_shm["list"][0] == 1
    assert "has a write-ahead log (no_shm.db-wal" in lost_shm["list"][1] and "cannot read that log here" in lost_shm["list"][1]
    assert before == {p.name: _state(p)[:3] for p in media.iterdir() if p.is_file()}


@needs_mount_namespace
def test_reading_on_a_full_disk(template: Path, tmp_path: Path):
    disk = tmp_path / "disk"
    disk.mkdir()
    script = ('mount -t tmpfs -o size=1m tmpfs "$1"; cp "$2" "$1/store.db"; '
              'dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null || true; '
              'test "$(df -k "$1" | tail -1 | tr -s " " | cut -d" " -f4)" = 0; '  # not one block free
              '$CHILD "$1/store.db" "$3"')
    res = _in_namespace(script, str(disk), str(template), str(tmp_path / "s1.csv"), child=tmp_path / "child.py")
    full = res[f"{disk}/store.db"]
    assert full["list"][0] == full["show"][0] == full["export"][0] == 0, full
    assert len(json.loads(full["list"][1])) == SESSIONS
    assert (tmp_path / "s1.csv").read_text().count("\n") == EVENTS + 3
    assert "is the disk full?" in full["write"] and "reading works" in full["write"]


def test_reading_where_no_file_may_grow(db: Path):
    """A process that may not grow any file (``RLIMIT_FSIZE`` 0: what a full disk allows) reads, and cannot write."""
    code = textwrap.dedent(
        """
        import json, resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        from typer.testing import CliRunner
        from electrostim.cli import app
        from electrostim.store import Store, StoreError
        res = {}
        for args in (["list", "--json"], ["show", "2", "--json"]):
            r = CliRunner().invoke(app, ["sessions", *args, "--db", sys.argv[1]])
            res[args[0]] = [r.exit_code, r.stdout]
        try:
            Store.open(sys.argv[1]).start_session(1, "simulated")
            res["write"] = "ok"
        except StoreError as exc:
            res["write"] = str(exc)
        print(json.dumps(res))
        """
    )
    before = _state(db)
    proc = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["list"][0] == 0 and len(json.loads(res["list"][1])) == SESSIONS
    assert res["show"][0] == 0 and json.loads(res["show"][1])["id"] == 2
    assert res["write"] != "ok" and "reading works" in res["write"]
    assert _state(db)[:3] == before[:3]


# --------------------------------------------------------------------------- damage


def test_a_page_of_random_bytes_is_refused_for_reading_and_writing(db: Path, plan):
    _smash_page(db, _page_of(db, b"S2-E10"))
    before = _state(db)
    for readonly in (True, False):
        with pytest.raises(StoreDamagedError, match=r"The database .*store\.db is damaged: SQLite reports '.+' \(PRAGMA "
                                                    rf"quick_check\)\. Nothing was written to it\. .*{RECOVER}"):
            Store.open(db, readonly=readonly)
    for args in (["list"], ["show", "1"], ["export", "1", "-o", str(db.parent / "x.csv")]):
        r = cli("sessions", *args, "--db", str(db))
        assert r.exit_code == 1, r.output
        assert "recover" in _one_line(r.output)
    # what `electrostim run` does first: open for writing (and then append); it is refused, the file is left as it was
    r = cli("run", "knee-oa-tens", "--yes", "--duration-s", "1", "--speed", "1000", "--db", str(db))
    assert r.exit_code == 1 and "is damaged" in r.output and "electrostim sessions recover" in r.output, r.output
    assert _state(db) == before


def test_an_empty_file_is_refused_never_recreated(tmp_path: Path):
    db = tmp_path / "store.db"
    db.write_bytes(b"")
    for readonly in (True, False):
        with pytest.raises(StoreDamagedError, match=r"The database file .*store\.db is empty \(0 bytes\): it was truncated "
                                                    r"or is not a store; nothing was written\. "):
            Store.open(db, readonly=readonly)
    r = cli("sessions", "list", "--db", str(db))
    assert r.exit_code == 1 and "is empty (0 bytes)" in _one_line(r.output)
    assert db.stat().st_size == 0 and sorted(os.listdir(tmp_path)) == ["store.db"]


def test_a_new_store_is_never_an_empty_file(tmp_path: Path):
    db = tmp_path / "new" / "store.db"
    with Store.open(db) as store:
        assert store.list_sessions() == []
    assert db.stat().st_size > 0 and sorted(os.listdir(db.parent)) == ["store.db"]  # built beside it, then linked in


def test_a_truncated_file_is_refused(db: Path):
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    for readonly in (True, False):
        with pytest.raises(StoreDamagedError, match=RECOVER):
            Store.open(db, readonly=readonly)


def _change_a_value(db: Path) -> None:
    """One digit of one payload (event 7 of session 2), changed in the file: SQLite's checks pass."""
    data = db.read_bytes()
    at = data.index(b'"amplitude_ma":2.5,"marker":"S2-E05"')
    db.write_bytes(data[:at] + b'"amplitude_ma":9.5' + data[at + len(b'"amplitude_ma":2.5'):])


def test_a_changed_value_is_caught_by_its_checksum(db: Path):
    """One digit of one payload: SQLite's checks pass, the row's checksum does not."""
    _change_a_value(db)
    damaged = (r"the session_events row \(session_id=2, seq=7\) does not match its checksum\. Nothing was written to "
               rf"it\. .*{RECOVER}")
    with Store.open(db, readonly=True) as store:  # the file's structure is whole: reading reads what is intact
        assert store.get_session(1).event_count == EVENTS + 2
        with pytest.raises(StoreDamagedError, match=damaged):
            store.get_session(2)
    with pytest.raises(StoreDamagedError, match=damaged):  # never written to (Store.open's quick checksum check)
        Store.open(db)
    r = cli("sessions", "export", "2", "-o", str(db.parent / "s2.csv"), "--db", str(db))
    assert r.exit_code == 1 and "does not match its checksum" in _one_line(r.output)
    assert not (db.parent / "s2.csv").exists()


def test_an_event_that_vanished_is_noticed(db: Path):
    """A session's events must run 1..event_count: one that is missing is damage, not a shorter session."""
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM session_events WHERE session_id = 3 AND seq = 4")
    conn.commit()
    conn.close()
    with Store.open(db, readonly=True) as store:
        with pytest.raises(StoreDamagedError, match=r"session 3 records 22 events, but its events read back as seq "
                                                    r"1-3, 5-22 \(expected 1-22\)"):
            store.get_session(3)


def test_the_schema_revision_must_be_the_newest_to_read(db: Path):
    from alembic import command
    from sqlalchemy import create_engine

    from electrostim.store._migrate import alembic_config

    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    engine.dispose()
    with pytest.raises(StoreError, match=r"is at schema revision '0001'; this electrostim reads revision '0002', and a "
                                         r"store opened for reading does not upgrade it\. Upgrade it once with "
                                         r"`electrostim sessions upgrade --db .*store\.db`"):
        Store.open(db, readonly=True)
    r = cli("sessions", "upgrade", "--db", str(db))
    assert r.exit_code == 0 and "is at schema revision 0002" in r.output
    r = cli("sessions", "upgrade", "--db", str(db.parent / "absent.db"))
    assert r.exit_code == 2 and "No database at" in _one_line(r.output) and not (db.parent / "absent.db").exists()
    with Store.open(db, readonly=True) as store:  # the upgrade gave every row its checksum
        assert len(store.get_session(3).events) == EVENTS + 2


def test_an_sqlite_file_without_the_schema(tmp_path: Path):
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"has no electrostim schema \(no alembic_version table\)"):
        Store.open(db, readonly=True)


# --------------------------------------------------------------------------- recovery


def test_recover_keeps_the_intact_sessions(db: Path, expected: tuple, tmp_path: Path):
    _smash_page(db, _page_of(db, b"S2-E10"))
    before = _state(db)
    new = tmp_path / "recovered.db"
    r = cli("sessions", "recover", str(db), "--to", str(new), "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)["tables"]
    assert _state(db)[:3] == before[:3]  # the source is never written
    assert [report[t]["lost"] for t in ("patients", "programs", "approved_plans", "sessions")] == [0, 0, 0, 0]
    events = report["session_events"]
    total = SESSIONS * (EVENTS + 2)
    assert events["lost"] == events["unreadable"] > 0 and events["recovered"] + events["lost"] == total

    with Store.open(new, readonly=True) as store:
        got = _snapshot(store)
    _, sessions, details, programs = expected
    assert got[0] == expected[0] and got[1] == sessions and got[3] == programs
    assert got[2] != details  # the smashed page held events of session 2
    marks = 0
    for d, original in zip(got[2], details):  # every event as it was, or marked as lost where it was
        assert [e["seq"] for e in d["events"]] == [e["seq"] for e in original["events"]]
        for e, was in zip(d["events"], original["events"]):
            if e != was:
                assert e["kind"] == "error" and e["payload"]["lost_in_recovery"] is True and e["at"] <= was["at"]
                marks += 1
        assert {k: v for k, v in d.items() if k != "events"} == {k: v for k, v in original.items() if k != "events"}
    assert marks == events["lost"]

    r = cli("sessions", "recover", str(db), "--to", str(new))
    assert r.exit_code == 2 and "recovery never writes over a file" in _one_line(r.output)
    r = cli("sessions", "recover", str(tmp_path / "absent.db"), "--to", str(tmp_path / "x.db"))
    assert r.exit_code == 2 and "No database at" in _one_line(r.output)
    assert not (tmp_path / "x.db").exists()


def test_recover_refuses_what_sqlite_cannot_read(tmp_path: Path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(StoreDamagedError, match=r"is empty \(0 bytes\): there is nothing to recover"):
        Store.recover(empty, tmp_path / "a.db")
    notes = tmp_path / "notes.db"
    notes.write_bytes(b"not a database" * 500)
    with pytest.raises(StoreDamagedError, match=r"is not an SQLite database .*nothing can be recovered"):
        Store.recover(notes, tmp_path / "b.db")
    with pytest.raises(OptionError, match=r"allowed an SQLite file"):
        Store.recover("postgresql+psycopg://u@h/db", tmp_path / "c.db")
    assert sorted(os.listdir(tmp_path)) == ["empty.db", "notes.db"]


# --------------------------------------------------------------------------- the property


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), readonly=st.booleans())
def test_damage_is_refused_or_changes_nothing_that_is_read(template: Path, expected: tuple, tmp_path: Path,
                                                           data: st.DataObject, readonly: bool):
    """Random bytes anywhere in the data pages: opening refuses (StoreDamagedError), or reads back exactly what was written.

    Never a silent wrong answer, never an error that is not a StoreDamagedError.
    """
    raw = bytearray(template.read_bytes())
    page_size = int.from_bytes(raw[16:18], "big")
    start = data.draw(st.integers(page_size, len(raw) - 1), label="offset")  # page 1 holds the header and the schema
    most = min(page_size, len(raw) - start)
    length = data.draw(st.one_of(st.integers(1, min(8, most)), st.integers(1, most)), label="length")
    noise = st.integers(0, 2**32 - 1).map(lambda seed: random.Random(seed).randbytes(length))  # bytes of every value
    raw[start:start + length] = data.draw(st.one_of(noise, st.binary(min_size=length, max_size=length)), label="bytes")
    db = tmp_path / "prop.db"
    for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        leftover.unlink(missing_ok=True)
    db.write_bytes(bytes(raw))
    try:
        with Store.open(db, readonly=readonly) as store:
            got = _snapshot(store)
    except StoreDamagedError as exc:
        event("refused: " + ("checksum" if "checksum" in str(exc) else "SQLite's checks" if "SQLite reports" in str(exc)
                             else "other"))
        return
    event("read back")
    assert got == expected


# --------------------------------------------------------------------------- the quick checksum check: list and writing


def _files(folder: Path) -> dict[str, str]:
    """Every file in a folder and the hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_changed_event_is_reported_by_list_and_never_appended_to(db: Path):
    """`sessions list` and every writing open compare the newest rows with their checksums, not only `show`/`export`."""
    _change_a_value(db)
    before = _files(db.parent)
    r = cli("sessions", "list", "--db", str(db))
    assert r.exit_code == 1 and r.stdout == "", r.output
    line = _one_line(r.stderr)
    assert re.fullmatch(rf"error: The database .*store\.db is damaged: the session_events row \(session_id=2, seq=7\) "
                        rf"does not match its checksum\. Nothing was written to it\. .*{RECOVER}", line), line
    # what `electrostim run` does first: open for writing (then it appends); refused, and the file is as it was
    r = cli("run", "knee-oa-tens", "--yes", "--duration-s", "1", "--speed", "1000", "--db", str(db))
    assert r.exit_code == 1 and "session_events row (session_id=2, seq=7) does not match its checksum" in r.output, r.output
    assert "electrostim sessions recover" in r.output and "Traceback" not in r.output
    r = cli("sessions", "upgrade", "--db", str(db))
    assert r.exit_code == 1 and "does not match its checksum" in _one_line(r.output)
    assert _files(db.parent) == before  # no byte changed, no file left beside it
    r = cli("sessions", "show", "1", "--db", str(db))  # what is intact can still be read
    assert r.exit_code == 0, r.output
    with Store.open(db, readonly=True) as store:  # so can the list, through the library
        assert len(store.list_sessions()) == SESSIONS


_EVENT_COLUMNS = {  # a column of session_events, and values to write over it (bypassing the checksum)
    "payload": st.fixed_dictionaries({"amplitude_ma": st.floats(0, 100, allow_nan=False)}).map(json.dumps),
    "elapsed_s": st.floats(-1e6, 1e6, allow_nan=False),
    "kind": st.sampled_from(["state", "intensity", "threshold", "error", "dose", "note"]),
    "output": st.one_of(st.none(), st.text("abcdefgh-123", min_size=1, max_size=8)),
    "at": st.datetimes().map(lambda t: t.isoformat(sep=" ")),
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(session=st.integers(1, SESSIONS), seq=st.integers(1, EVENTS + 2), data=st.data())
def test_any_changed_event_is_reported_by_list_and_refused_for_writing(template: Path, tmp_path: Path, session: int,
                                                                       seq: int, data: st.DataObject):
    """Any value of any event changed outside electrostim: `list` reports that row, a writing open refuses the store."""
    db = tmp_path / "prop.db"
    for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copy(template, db)
    column = data.draw(st.sampled_from(sorted(_EVENT_COLUMNS)), label="column")
    value = data.draw(_EVENT_COLUMNS[column], label="value")
    conn = sqlite3.connect(db)
    old = conn.execute(f"SELECT {column} FROM session_events WHERE session_id = ? AND seq = ?", (session, seq)).fetchone()[0]
    conn.execute(f"UPDATE session_events SET {column} = ? WHERE session_id = ? AND seq = ?", (value, session, seq))
    conn.commit()
    conn.close()
    with Store.open(db, readonly=True) as store:
        try:  # the new value may read back as the old one (e.g. the same time, written another way)
            store.get_session(session)
        except StoreDamagedError:
            changed = True
        else:
            changed = False
    event("changed" if changed else f"same value ({column})")
    if not changed:
        return
    where = rf"the session_events row \(session_id={session}, seq={seq}\) does not match its checksum"
    r = cli("sessions", "list", "--db", str(db))
    assert r.exit_code == 1 and re.search(where + rf".*{RECOVER}", _one_line(r.stderr)), (old, value, r.output)
    with pytest.raises(StoreDamagedError, match=where):
        Store.open(db)


def _bulk_store(path: Path, template: Path, sessions: int) -> None:
    """A copy of the template with ``sessions`` sessions: the template's last one repeated, with good checksums."""
    from sqlalchemy import create_engine, insert, select

    from electrostim.store._tables import EventRow, SessionRow, row_checksum

    shutil.copy(template, path)
    st_, et = SessionRow.__table__, EventRow.__table__
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        last = dict(conn.execute(select(st_).where(st_.c.id == SESSIONS)).one()._mapping)
        events = [dict(r._mapping) for r in conn.execute(select(et).where(et.c.session_id == SESSIONS))]
        for sid in range(SESSIONS + 1, sessions + 1):
            row = dict(last, id=sid)
            conn.execute(insert(st_).values(**{**row, "crc32": row_checksum(st_, row)}))
            conn.execute(insert(et), [{**e, "session_id": sid, "crc32": row_checksum(et, {**e, "session_id": sid})}
                                      for e in events])
    engine.dispose()


def test_the_quick_check_is_quick_and_bounded(template: Path, tmp_path: Path):
    """A store of a few thousand events: `list`'s check compares them all, well under a second; a larger one, its newest."""
    from electrostim.store._store import QUICK_CHECK_EVENTS

    db = tmp_path / "big.db"
    _bulk_store(db, template, 150)  # 150 sessions, 3 300 events
    with Store.open(db, readonly=True) as store:
        t0 = time.perf_counter()
        checked = store.verify_checksums()
        took = time.perf_counter() - t0
    assert checked == 150 * (EVENTS + 2) + 150 + 1 + 1 + 2  # events, sessions, plan, program, patients
    assert took < 0.5, f"the quick check took {took:.2f} s"

    _bulk_store(db.with_name("bigger.db"), template, 300)  # 6 600 events: more than the quick check reads
    bigger = db.with_name("bigger.db")
    conn = sqlite3.connect(bigger)  # the oldest event, and the newest, changed outside electrostim
    conn.execute("UPDATE session_events SET elapsed_s = 99 WHERE session_id = 1 AND seq = 2")
    conn.commit()
    with Store.open(bigger, readonly=True) as store:
        assert store.verify_checksums() == QUICK_CHECK_EVENTS + 300 + 1 + 1 + 2  # the oldest is beyond its reach
        with pytest.raises(StoreDamagedError, match=r"session_events row \(session_id=1, seq=2\)"):
            store.verify_checksums(newest_events=None)  # the whole store
        with pytest.raises(OptionError, match=r"'newest_events': allowed a whole number >= 0 or None, but got -1"):
            store.verify_checksums(newest_events=-1)
    conn.execute("UPDATE session_events SET elapsed_s = 99 WHERE session_id = 300 AND seq = 22")
    conn.commit()
    conn.close()
    r = cli("sessions", "list", "--db", str(bigger))
    assert r.exit_code == 1 and "session_events row (session_id=300, seq=22) does not match" in _one_line(r.output)


# --------------------------------------------------------------------------- export creates nothing on bad input


def test_export_creates_no_folder(db: Path, tmp_path: Path):
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    target = tmp_path / "some" / "new" / "dir" / "s1.csv"
    r = cli("sessions", "export", "1", "-o", str(target), "--db", str(db))
    assert r.exit_code == 2 and r.stdout == "", r.output
    line = _one_line(r.stderr)
    assert line == (f"error: Invalid value for '--output': the folder {target.parent} does not exist; allowed a file in "
                    f"an existing folder (no folder is created), but got {target}. Nothing was written."), line
    r = cli("sessions", "export", "1", "-o", str(tmp_path), "--db", str(db))  # a folder, not a file
    assert r.exit_code == 2 and f"allowed a file, but {tmp_path} is a folder" in _one_line(r.stderr)
    (tmp_path / "plain").write_text("x")
    r = cli("sessions", "export", "1", "-o", str(tmp_path / "plain" / "s1.csv"), "--db", str(db))
    assert r.exit_code == 2 and f"the folder {tmp_path / 'plain'} is not a folder" in _one_line(r.stderr)
    with Store.open(db, readonly=True) as store:
        with pytest.raises(OptionError, match=r"Invalid value for 'path': the folder .* does not exist"):
            store.export_session(1, target)
    (tmp_path / "plain").unlink()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("fails", ["write", "fsync", "replace", "interrupt"])
def test_a_failed_export_leaves_no_file(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: str):
    """Whatever step of the write fails, the export is whole or absent: no partial file, no temporary file."""
    from electrostim.store import _store

    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.json").write_text("old")  # an earlier export: kept as it was

    def boom(*args, **kwargs):
        raise KeyboardInterrupt if fails == "interrupt" else OSError(28, "No space left on device")

    real_fdopen = os.fdopen

    class _Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[: len(data) // 2])  # half of it reached the disk
            boom()

    with Store.open(db, readonly=True) as store:
        if fails in ("write", "interrupt"):
            monkeypatch.setattr(_store.os, "fdopen", lambda *a, **k: _Full(real_fdopen(*a, **k)))
        else:
            monkeypatch.setattr(_store.os, fails, boom)
        for name in ("s2.csv", "kept.json"):
            with pytest.raises(KeyboardInterrupt if fails == "interrupt" else StoreError,
                               match=None if fails == "interrupt" else r"Cannot write the export of session 2 to .*No space"):
                store.export_session(2, out / name)
        monkeypatch.undo()
    assert sorted(os.listdir(out)) == ["kept.json"] and (out / "kept.json").read_text() == "old"
