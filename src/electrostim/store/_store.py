"""The repositories: one :class:`Store` that records patients, programs, plans, sessions and events.

Durability
----------
Every event is its own committed transaction: when :meth:`Store.append_event`
returns, the event is in the database, and a process killed at any later moment
leaves it there. On SQLite (WAL mode, ``synchronous=FULL``) the commit has been
written and fsynced to the write-ahead log before the call returns, so the event
survives a killed process, an operating-system crash and a power cut; PostgreSQL
gives the same with its default ``synchronous_commit=on``.

Sequence numbers are handed out by the session row itself (``event_count``), in the
same transaction as the event: a rolled-back append gives back its number, so the
numbers run 1, 2, 3, … without gaps, and concurrent writers to one session are
serialised by the row lock (PostgreSQL) or the database write lock (SQLite).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import ElectrostimError, InvalidInputError, OptionError, check_option
from ._engine import WRITE_OPTION, display_url, json_dumps, make_engine, resolve_url
from ._errors import RecordNotFoundError, SessionStateError, StoreError
from ._schemas import EventRecord, PatientRecord, PlanRecord, ProgramRecord, SessionDetail, SessionRecord
from ._tables import (
    END_STATES,
    EVENT_KINDS,
    PLAN_VERDICTS,
    SESSION_STATES,
    EventRow,
    PatientRow,
    PlanRow,
    ProgramRow,
    SessionRow,
)

__all__ = ["Store", "EXPORT_FORMATS", "program_content_hash"]

log = logging.getLogger("electrostim.store")

#: Formats :meth:`Store.export_session` writes.
EXPORT_FORMATS: tuple[str, ...] = ("json", "csv")
#: Columns of a CSV export, one row per event.
CSV_COLUMNS: tuple[str, ...] = ("session_id", "seq", "at_utc", "elapsed_s", "kind", "output", "payload_json")

_MAX_OUTPUT = 64
_MAX_DEVICE = 200
_MAX_PATIENT_ID = 64


def _now() -> datetime:
    return datetime.now(UTC)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy scalars and arrays
        return obj.tolist()
    raise TypeError(f"a {type(obj).__name__} is not JSON")


def _plain_json(value: Any, what: str) -> Any:
    """``value`` as plain JSON data (what the database will give back), or OptionError."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        return json.loads(json.dumps(value, allow_nan=False, default=_json_default))
    except (TypeError, ValueError) as exc:
        raise OptionError(
            f"Invalid value for {what!r}: allowed plain JSON (objects, arrays, strings, finite numbers, "
            f"true/false/null), but {exc} in {value!r:.200}."
        ) from None


def _json_object(value: Any, what: str) -> dict[str, Any]:
    data = _plain_json({} if value is None else value, what)
    if not isinstance(data, dict):
        raise OptionError(f"Invalid value for {what!r}: allowed a JSON object (a dict), but got {value!r:.200}.")
    return data


def _text(value: Any, what: str, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise OptionError(f"Invalid value for {what!r}: allowed a non-empty text of at most {max_len} characters, but got {value!r:.100}.")
    return value


def _aware(value: datetime | None, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise OptionError(f"Invalid value for {what!r}: allowed a timezone-aware datetime (e.g. datetime.now(UTC)), but got {value!r}.")
    return value.astimezone(UTC)


def program_content_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a program's canonical JSON: keys sorted, no spaces, UTF-8.

    Examples
    --------
    >>> program_content_hash({"b": 1, "a": [1.5, "x"]}) == program_content_hash({"a": [1.5, "x"], "b": 1})
    True
    >>> len(program_content_hash({}))
    64
    """
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a zombie counts as ended)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    state = stat.rpartition(")")[2].split()[:1]
    return state not in (["Z"], ["X"])


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` is either its old self or the whole new file, even after a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if os.name == "posix":  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class Store:
    """The session log and everything it refers to, in SQLite (default) or PostgreSQL.

    Open one with :meth:`Store.open`; it is safe to share between threads. Every
    method is one transaction.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import electrostim as es
    >>> from electrostim.store import Store
    >>> plan = es.assess(es.load_program("knee-oa-tens"), es.Patient(id="P-7")).approve()
    >>> with tempfile.TemporaryDirectory() as folder, Store.open(pathlib.Path(folder) / "clinic.db") as store:
    ...     p = store.record_plan(plan)
    ...     s = store.start_session(p.id, device="simulated")
    ...     e = store.append_event(s.id, "intensity", {"amplitude_ma": 12.0}, output="knee-1")
    ...     done = store.end_session(s.id, "completed", {"delivered_s": 1.5})
    ...     log = store.get_session(s.id)
    >>> [(ev.seq, ev.kind) for ev in log.events]
    [(1, 'state'), (2, 'intensity'), (3, 'state')]
    >>> log.state, log.patient_id, log.program_id
    ('completed', 'P-7', 'knee-oa-tens')
    """

    def __init__(self, url: str | os.PathLike[str] | URL | None = None):
        self._url = resolve_url(url)
        self._where = display_url(self._url)
        self._engine: Engine | None = make_engine(self._url)
        self._read = sessionmaker(self._engine, expire_on_commit=False)
        self._write_engine = self._engine.execution_options(**{WRITE_OPTION: True})
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        # sessions this store started: monotonic clock at start, for elapsed_s
        self._clocks: dict[int, float] = {}

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, url: str | os.PathLike[str] | URL | None = None, *, migrate: bool = True) -> Store:
        """Open the store.

        Parameters
        ----------
        url : str, path or URL, optional
            A SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://user@host/db``)
            or a path to an SQLite file. Default: ``$ELECTROSTIM_DATABASE_URL``, else
            ``electrostim.db`` in the user's data folder.
        migrate : bool
            Bring the schema to the newest revision first (default). With False the
            schema is used as it is.

        Raises
        ------
        StoreError
            The database cannot be reached or read, or its schema is newer than this
            electrostim.
        """
        store = cls(url)
        try:
            store._ping()
            if migrate:
                store.migrate()
        except BaseException:
            store.close()
            raise
        return store

    @property
    def url(self) -> str:
        """The database URL (password hidden)."""
        return self._where

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._url.get_backend_name()

    def __repr__(self) -> str:
        return f"Store({self._where!r}{', closed' if self._engine is None else ''})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection. The store cannot be used afterwards; closing twice is harmless."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    def _check_open(self) -> None:
        if self._engine is None:
            raise StoreError(f"The store {self._where} is closed; open it again with Store.open().")

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn database errors into StoreError naming the action, the database and the cause."""
        self._check_open()
        try:
            yield
        except ElectrostimError:
            raise
        except IntegrityError as exc:
            raise StoreError(f"Cannot {action} in {self._where}: the database refused it ({exc.orig}).") from exc
        except DBAPIError as exc:
            cause = str(exc.orig)
            if "file is not a database" in cause:
                cause = "the file is not an SQLite database"
            raise StoreError(f"Cannot {action} in {self._where}: {cause}.") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"Cannot {action} in {self._where}: {exc}.") from exc

    @contextmanager
    def _writing(self, action: str) -> Iterator[Session]:
        with self._errors(action), self._write() as s, s.begin():
            yield s

    @contextmanager
    def _reading(self, action: str) -> Iterator[Session]:
        with self._errors(action), self._read() as s, s.begin():
            yield s

    def _ping(self) -> None:
        with self._reading("open the database") as s:
            s.execute(text("SELECT 1"))

    # ------------------------------------------------------------------ schema

    def migrate(self) -> str:
        """Upgrade the schema to the newest revision (Alembic, packaged migrations); return that revision.

        Safe to call on an up-to-date database and from several processes at once.
        """
        from ._migrate import upgrade

        with self._errors("migrate the schema"):
            assert self._engine is not None
            with self._write_engine.begin() as conn:
                return upgrade(conn, self._where)

    def schema_revision(self) -> str | None:
        """The schema revision the database is at (None: no electrostim schema yet)."""
        from ._migrate import current_revision

        with self._errors("read the schema revision"):
            assert self._engine is not None
            with self._engine.connect() as conn:
                return current_revision(conn)

    def database_settings(self) -> dict[str, Any]:
        """The settings that make the log durable, as the database reports them.

        SQLite: ``journal_mode`` (``wal``), ``synchronous`` (``full``), ``foreign_keys``
        and ``busy_timeout_ms``; PostgreSQL: ``synchronous_commit``.
        """
        with self._reading("read the database settings") as s:
            if self.backend == "sqlite":
                sync = s.execute(text("PRAGMA synchronous")).scalar_one()
                return {
                    "backend": "sqlite",
                    "path": self._url.database,
                    "journal_mode": str(s.execute(text("PRAGMA journal_mode")).scalar_one()).lower(),
                    "synchronous": {0: "off", 1: "normal", 2: "full", 3: "extra"}.get(sync, str(sync)),
                    "foreign_keys": bool(s.execute(text("PRAGMA foreign_keys")).scalar_one()),
                    "busy_timeout_ms": int(s.execute(text("PRAGMA busy_timeout")).scalar_one()),
                }
            return {
                "backend": self.backend,
                "synchronous_commit": s.execute(text("SHOW synchronous_commit")).scalar_one(),
            }

    # ------------------------------------------------------------------ patients

    def add_patient(self, patient: Any, *, exist_ok: bool = False) -> PatientRecord:
        """Add a patient by pseudonymous id (a string, or a :class:`~electrostim.program.Patient`).

        Raises
        ------
        StoreError
            The patient is already there and ``exist_ok`` is false.
        """
        pid = _text(patient if isinstance(patient, str) else getattr(patient, "id", patient), "patient id", _MAX_PATIENT_ID)
        with self._writing(f"add patient {pid!r}") as s:
            row = s.get(PatientRow, pid)
            if row is not None and not exist_ok:
                raise StoreError(f"Patient {pid!r} is already in {self._where}; pass exist_ok=True to use the existing record.")
            if row is None:
                row = self._patient_row(s, pid)
            return PatientRecord.model_validate(row)

    def get_patient(self, patient_id: str) -> PatientRecord:
        """The patient with this pseudonymous id."""
        with self._reading(f"read patient {patient_id!r}") as s:
            row = s.get(PatientRow, patient_id)
            if row is None:
                raise RecordNotFoundError(f"No patient {patient_id!r} in {self._where}.")
            return PatientRecord.model_validate(row)

    def list_patients(self) -> list[PatientRecord]:
        """Every patient, by id."""
        with self._reading("list patients") as s:
            return [PatientRecord.model_validate(r) for r in s.scalars(select(PatientRow).order_by(PatientRow.id))]

    @staticmethod
    def _patient_row(s: Session, pid: str) -> PatientRow:
        row = s.get(PatientRow, pid)
        if row is not None:
            return row
        try:
            with s.begin_nested():
                row = PatientRow(id=pid, created_at=_now())
                s.add(row)
            return row
        except IntegrityError:  # another writer added it meanwhile (PostgreSQL)
            return s.scalars(select(PatientRow).where(PatientRow.id == pid)).one()

    # ------------------------------------------------------------------ programs and plans

    def record_program(self, program: Any) -> ProgramRecord:
        """Record a program's content once; the same content again gives the same record.

        ``program`` is a :class:`~electrostim.program.Program` or its JSON form (a dict).
        """
        doc = self._program_document(program)
        with self._writing(f"record program {doc.get('id')!r}") as s:
            return ProgramRecord.model_validate(self._program_row(s, doc))

    def get_program(self, ref: int) -> ProgramRecord:
        """A recorded program by the store's number for it."""
        with self._reading(f"read program {ref}") as s:
            row = s.get(ProgramRow, ref)
            if row is None:
                raise RecordNotFoundError(f"No program {ref} in {self._where}.")
            return ProgramRecord.model_validate(row)

    @staticmethod
    def _program_document(program: Any) -> dict[str, Any]:
        doc = _json_object(program.model_dump(mode="json") if isinstance(program, BaseModel) else program, "program")
        for key in ("id", "name"):
            if not isinstance(doc.get(key), str):
                raise InvalidInputError(f"A program to record needs a text {key!r}, but got {doc.get(key)!r}.")
        return doc

    @staticmethod
    def _program_row(s: Session, doc: dict[str, Any]) -> ProgramRow:
        digest = program_content_hash(doc)
        found = select(ProgramRow).where(ProgramRow.content_hash == digest)
        row = s.scalars(found).one_or_none()
        if row is not None:
            return row
        try:
            with s.begin_nested():
                row = ProgramRow(content_hash=digest, program_id=doc["id"][:64], name=doc["name"][:200],
                                 document=doc, first_used_at=_now())
                s.add(row)
            return row
        except IntegrityError:  # another writer recorded the same content meanwhile (PostgreSQL)
            return s.scalars(found).one()

    def record_plan(self, plan: Any) -> PlanRecord:
        """Record an approved plan: its program (once per content), patient, device, verdict and envelope.

        Parameters
        ----------
        plan : ApprovedPlan
            From ``electrostim.assess(...).approve()``; read through its ``program``,
            ``patient``, ``device``, ``envelope``, ``assessment``, ``confirmed``,
            ``confirmed_by`` and ``approved_at``.
        """
        try:
            program, patient, device = plan.program, plan.patient, plan.device
            assessment, envelope = plan.assessment, plan.envelope
            confirmed, confirmed_by, approved_at = plan.confirmed, plan.confirmed_by, plan.approved_at
        except AttributeError as exc:
            raise InvalidInputError(
                f"record_plan needs an ApprovedPlan (from electrostim.assess(...).approve()), but the "
                f"{type(plan).__name__} given has no {exc.name!r}."
            ) from None
        doc = self._program_document(program)
        verdict = assessment.verdict
        if verdict not in PLAN_VERDICTS:
            raise InvalidInputError(
                f"Only approved plans can be recorded: allowed verdicts {', '.join(map(repr, PLAN_VERDICTS))}, but got {verdict!r}."
            )
        device_id = _text(str(getattr(device, "id", device)), "device", 64)
        patient_id = None if patient is None else _text(getattr(patient, "id", patient), "patient id", _MAX_PATIENT_ID)
        profile = None if patient is None or isinstance(patient, str) else _json_object(patient, "patient")
        reasons = _plain_json(list(assessment.reasons), "reasons")
        warnings = [str(w) for w in assessment.warnings]
        env = _json_object(envelope, "envelope")
        approved_at = _aware(approved_at, "approved_at")
        if confirmed_by is not None:
            confirmed_by = _text(confirmed_by, "confirmed_by", 200)
        with self._writing(f"record the plan for program {doc['id']!r}") as s:
            prog = self._program_row(s, doc)
            if patient_id is not None:
                self._patient_row(s, patient_id)
            row = PlanRow(program_ref=prog.id, patient_id=patient_id, device=device_id, verdict=verdict,
                          reasons=reasons, warnings=warnings, envelope=env, patient_profile=profile,
                          confirmed=bool(confirmed), confirmed_by=confirmed_by, approved_at=approved_at,
                          recorded_at=_now())
            s.add(row)
            s.flush()
            return self._plan_record(row, prog.program_id)

    def get_plan(self, plan_id: int) -> PlanRecord:
        """A recorded plan by id."""
        with self._reading(f"read plan {plan_id}") as s:
            return self._get_plan(s, plan_id)

    def _get_plan(self, s: Session, plan_id: int) -> PlanRecord:
        found = s.execute(select(PlanRow, ProgramRow.program_id).join(ProgramRow, PlanRow.program_ref == ProgramRow.id)
                          .where(PlanRow.id == plan_id)).one_or_none()
        if found is None:
            raise RecordNotFoundError(f"No approved plan {plan_id} in {self._where}.")
        return self._plan_record(found[0], found[1])

    @staticmethod
    def _plan_record(row: PlanRow, program_id: str) -> PlanRecord:
        return PlanRecord(id=row.id, program_ref=row.program_ref, program_id=program_id, patient_id=row.patient_id,
                          device=row.device, verdict=row.verdict, reasons=row.reasons, warnings=row.warnings,  # type: ignore[arg-type]
                          envelope=row.envelope, patient_profile=row.patient_profile, confirmed=row.confirmed,
                          confirmed_by=row.confirmed_by, approved_at=row.approved_at, recorded_at=row.recorded_at)

    # ------------------------------------------------------------------ sessions

    @staticmethod
    def _sessions_query():  # type: ignore[no-untyped-def]
        return (select(SessionRow, PlanRow.patient_id, ProgramRow.program_id)
                .join(PlanRow, SessionRow.plan_id == PlanRow.id)
                .join(ProgramRow, PlanRow.program_ref == ProgramRow.id))

    @staticmethod
    def _session_fields(row: SessionRow, patient_id: str | None, program_id: str) -> dict[str, Any]:
        return dict(id=row.id, plan_id=row.plan_id, patient_id=patient_id, program_id=program_id, device=row.device,
                    state=row.state, started_at=row.started_at, ended_at=row.ended_at, summary=row.summary,
                    event_count=row.event_count, host=row.host, pid=row.pid)

    def _session(self, s: Session, session_id: int) -> SessionRecord:
        found = s.execute(self._sessions_query().where(SessionRow.id == session_id)).one_or_none()
        if found is None:
            raise RecordNotFoundError(f"No session {session_id} in {self._where}.")
        return SessionRecord(**self._session_fields(*found))

    def start_session(self, plan_id: int, device: str) -> SessionRecord:
        """Start a session of a recorded plan on a device; its first event (seq 1) is the state ``running``.

        Parameters
        ----------
        plan_id : int
            From :meth:`record_plan`.
        device : str
            What delivers it, e.g. ``simulated`` or ``rehastim2:/dev/ttyUSB0``.
        """
        device = _text(device, "device", _MAX_DEVICE)
        with self._writing(f"start a session of plan {plan_id}") as s:
            if s.get(PlanRow, plan_id) is None:
                raise RecordNotFoundError(f"No approved plan {plan_id} in {self._where}: record it with record_plan() first.")
            started = _now()
            clock = time.monotonic()
            row = SessionRow(plan_id=plan_id, device=device, state="running", started_at=started, ended_at=None,
                             summary=None, event_count=1, host=socket.gethostname()[:255], pid=os.getpid())
            s.add(row)
            s.flush()
            s.execute(insert(EventRow).values(session_id=row.id, seq=1, at=started, elapsed_s=0.0, kind="state",
                                              output=None, payload={"state": "running", "device": device, "plan_id": plan_id}))
            record = self._session(s, row.id)
        self._clocks[record.id] = clock
        return record

    def _next_seq(self, s: Session, session_id: int, at: datetime, **changes: Any) -> tuple[int, float]:
        """Take the session's next sequence number (and apply ``changes``) if it is running; with elapsed_s."""
        res = s.execute(update(SessionRow)
                        .where(SessionRow.id == session_id, SessionRow.state == "running")
                        .values(event_count=SessionRow.event_count + 1, **changes)
                        .execution_options(synchronize_session=False))
        if res.rowcount != 1:  # type: ignore[attr-defined]
            state = s.scalar(select(SessionRow.state).where(SessionRow.id == session_id))
            if state is None:
                raise RecordNotFoundError(f"No session {session_id} in {self._where}.")
            raise SessionStateError(f"Session {session_id} has ended ({state}); events can be added only to a running session.")
        seq, started = s.execute(select(SessionRow.event_count, SessionRow.started_at).where(SessionRow.id == session_id)).one()
        clock = self._clocks.get(session_id)
        elapsed = time.monotonic() - clock if clock is not None else (at - started).total_seconds()
        return seq, elapsed

    def append_event(self, session_id: int, kind: str, payload: Any = None, output: int | str | None = None) -> EventRecord:
        """Append an event to a running session, durably: it is committed when this returns.

        Parameters
        ----------
        session_id : int
        kind : {"state", "intensity", "threshold", "error", "dose", "note"}
        payload : dict or pydantic model, optional
            Plain JSON data (numpy numbers are converted; NaN and infinity are refused).
        output : int or str, optional
            The output or channel it concerns (stored as text).

        Returns
        -------
        EventRecord
            With its sequence number: 1 + the previous one, never a gap.

        Raises
        ------
        SessionStateError
            The session has ended.
        """
        kind = check_option("kind", kind, EVENT_KINDS)
        data = _json_object(payload, "payload")
        out = None if output is None else _text(str(output), "output", _MAX_OUTPUT)
        with self._writing(f"append a {kind!r} event to session {session_id}") as s:
            at = _now()
            seq, elapsed = self._next_seq(s, session_id, at)
            s.execute(insert(EventRow).values(session_id=session_id, seq=seq, at=at, elapsed_s=elapsed,
                                              kind=kind, output=out, payload=data))
        return EventRecord(session_id=session_id, seq=seq, at=at, elapsed_s=elapsed, kind=kind, output=out, payload=data)  # type: ignore[arg-type]

    def end_session(self, session_id: int, state: str, summary: Any = None) -> SessionRecord:
        """End a running session as ``completed``, ``stopped`` or ``failed``, with a summary.

        The last event is the state it ended in.
        """
        state = check_option("state", state, END_STATES)
        data = _json_object(summary, "summary")
        with self._writing(f"end session {session_id}") as s:
            at = _now()
            seq, elapsed = self._next_seq(s, session_id, at, state=state, ended_at=at, summary=data)
            s.execute(insert(EventRow).values(session_id=session_id, seq=seq, at=at, elapsed_s=elapsed,
                                              kind="state", output=None, payload={"state": state}))
            record = self._session(s, session_id)
        self._clocks.pop(session_id, None)
        return record

    def mark_interrupted(self, *, include_other_hosts: bool = False) -> list[int]:
        """Mark every session left ``running`` by a process that has ended as ``interrupted``; return their ids.

        Run it at start-up. A session counts as abandoned when the process that
        started it (``host``, ``pid``) no longer runs on this machine. Sessions of live
        processes, and those this store started, are left alone. On PostgreSQL,
        sessions started on other machines are left alone too unless
        ``include_other_hosts`` is true (their processes cannot be checked from here);
        an SQLite database in WAL mode is only ever used from one machine.

        Each marked session gets a last ``state`` event ``interrupted``; its
        ``ended_at`` is the time of its last recorded event (the latest moment it is
        known to have run).
        """
        host = socket.gethostname()[:255]
        marked: list[int] = []
        with self._writing("mark interrupted sessions") as s:
            running = s.scalars(select(SessionRow).where(SessionRow.state == "running")
                                .order_by(SessionRow.id).with_for_update()).all()
            for row in running:
                if row.id in self._clocks:
                    continue
                if row.host == host:
                    if _pid_alive(row.pid):
                        continue
                elif not (include_other_hosts or self.backend == "sqlite"):
                    continue
                last_at = s.scalar(select(func.max(EventRow.at)).where(EventRow.session_id == row.id)) or row.started_at
                at = _now()
                seq = row.event_count + 1
                s.execute(insert(EventRow).values(
                    session_id=row.id, seq=seq, at=at, elapsed_s=(at - row.started_at).total_seconds(), kind="state",
                    output=None, payload={
                        "state": "interrupted",
                        "reason": f"the process that ran it (pid {row.pid} on {row.host}) ended without ending the session",
                        "last_event_seq": row.event_count,
                        "last_event_at": last_at.isoformat(),
                    }))
                row.event_count = seq
                row.state = "interrupted"
                row.ended_at = last_at
                row.summary = {"interrupted": True, "events_recorded": seq - 1, "marked_at": at.isoformat()}
                marked.append(row.id)
        if marked:
            log.warning("marked %d session(s) left running as interrupted: %s", len(marked), marked)
        return marked

    def list_sessions(
        self,
        *,
        patient_id: str | None = None,
        state: str | None = None,
        device: str | None = None,
        plan_id: int | None = None,
        program_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[SessionRecord]:
        """Sessions, newest first, optionally filtered (``since``/``until`` bound the start time)."""
        q = self._sessions_query()
        if patient_id is not None:
            q = q.where(PlanRow.patient_id == patient_id)
        if state is not None:
            q = q.where(SessionRow.state == check_option("state", state, SESSION_STATES))
        if device is not None:
            q = q.where(SessionRow.device == device)
        if plan_id is not None:
            q = q.where(SessionRow.plan_id == plan_id)
        if program_id is not None:
            q = q.where(ProgramRow.program_id == program_id)
        if (t0 := _aware(since, "since")) is not None:
            q = q.where(SessionRow.started_at >= t0)
        if (t1 := _aware(until, "until")) is not None:
            q = q.where(SessionRow.started_at < t1)
        if limit is not None:
            if not isinstance(limit, int) or limit < 1:
                raise OptionError(f"Invalid value for 'limit': allowed a whole number >= 1, but got {limit!r}.")
            q = q.limit(limit)
        q = q.order_by(SessionRow.started_at.desc(), SessionRow.id.desc())
        with self._reading("list sessions") as s:
            return [SessionRecord(**self._session_fields(*r)) for r in s.execute(q)]

    def get_events(self, session_id: int, *, after_seq: int = 0) -> list[EventRecord]:
        """A session's events with ``seq > after_seq``, in order (for following a live session)."""
        with self._reading(f"read the events of session {session_id}") as s:
            if s.get(SessionRow, session_id) is None:
                raise RecordNotFoundError(f"No session {session_id} in {self._where}.")
            return self._events(s, session_id, after_seq)

    @staticmethod
    def _events(s: Session, session_id: int, after_seq: int = 0) -> list[EventRecord]:
        rows = s.scalars(select(EventRow).where(EventRow.session_id == session_id, EventRow.seq > after_seq)
                         .order_by(EventRow.seq))
        return [EventRecord.model_validate(r) for r in rows]

    def get_session(self, session_id: int) -> SessionDetail:
        """A session with its plan and all its events (one consistent snapshot)."""
        with self._reading(f"read session {session_id}") as s:
            record = self._session(s, session_id)
            plan = self._get_plan(s, record.plan_id)
            events = self._events(s, session_id)
        return SessionDetail(**record.model_dump(), plan=plan, events=events)

    # ------------------------------------------------------------------ export

    def export_session(self, session_id: int, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Write a session to a file that appears only when complete.

        Parameters
        ----------
        session_id : int
        path : str or path
        format : {"json", "csv"}, optional
            Default: from the file's suffix. JSON holds the session, its plan, its
            program and its events; CSV holds one row per event with the columns
            ``session_id, seq, at_utc, elapsed_s, kind, output, payload_json``.

        Returns
        -------
        Path
        """
        path = Path(path)
        fmt = check_option("format", (format or path.suffix.lstrip(".")).lower(), EXPORT_FORMATS)
        detail = self.get_session(session_id)
        if fmt == "json":
            program = self.get_program(detail.plan.program_ref)
            doc = {
                "format": "electrostim-session",
                "format_version": 1,
                "session": detail.model_dump(mode="json", exclude={"plan", "events"}),
                "plan": detail.plan.model_dump(mode="json"),
                "program": {"ref": program.id, "content_hash": program.content_hash, "document": program.document},
                "events": [e.model_dump(mode="json") for e in detail.events],
            }
            data = (json.dumps(doc, ensure_ascii=False, allow_nan=False, indent=2) + "\n").encode("utf-8")
        else:
            buf = io.StringIO(newline="")
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            for e in detail.events:
                writer.writerow([e.session_id, e.seq, e.at.isoformat(), repr(e.elapsed_s), e.kind,
                                 "" if e.output is None else e.output, json_dumps(e.payload)])
            data = buf.getvalue().encode("utf-8")
        try:
            _atomic_write(path, data)
        except OSError as exc:
            raise StoreError(f"Cannot write the export of session {session_id} to {path}: {exc.strerror or exc}.") from None
        return path
