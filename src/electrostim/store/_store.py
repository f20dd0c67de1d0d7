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

Reading and damage
------------------
``Store.open(url, readonly=True)`` reads without writing anything: no migration, no
``mark_interrupted``, no new file, no ``-wal``/``-shm`` beside the file (see
``_engine``), so it works on a read-only file, in a read-only folder and on a full
disk; every write method refuses with :class:`StoreReadOnlyError`. Both modes check
an SQLite file before using it (``_integrity``) and refuse a damaged one with
:class:`StoreDamagedError`; every row read is compared with its checksum, and a
session's events must run 1..``event_count`` without a gap. Opening for writing (and
``electrostim sessions list``) also compares the newest rows of every table with their
checksums first (:meth:`Store.verify_checksums`), so a store changed or damaged there
is never appended to. :meth:`Store.recover` copies what can still be read into a new file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shlex
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import ElectrostimError, InvalidInputError, OptionError, check_option, check_output_file
from ._engine import WRITE_OPTION, display_url, json_dumps, make_engine, make_parent, resolve_url
from ._errors import (
    RecordNotFoundError,
    SessionStateError,
    StoreDamagedError,
    StoreError,
    StoreReadOnlyError,
)
from ._integrity import check_sqlite_file, damage_hint, is_damage
from ._schemas import EventRecord, PatientRecord, PlanRecord, ProgramRecord, SessionDetail, SessionRecord
from ._tables import (
    CHECKSUM_COLUMN,
    END_STATES,
    EVENT_KINDS,
    PLAN_VERDICTS,
    SESSION_STATES,
    TABLES_IN_ORDER,
    EventRow,
    PatientRow,
    PlanRow,
    ProgramRow,
    SessionRow,
    row_checksum,
    row_values,
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
#: The integers SQLite (and PostgreSQL's bigint) can hold.
_INT64 = (-(2**63), 2**63 - 1)
#: :meth:`Store.verify_checksums` by default: the newest rows of each table it compares with their checksums
#: (events; every other table). A store no larger than this is checked whole.
QUICK_CHECK_EVENTS = 5000

_R = TypeVar("_R")  # a table row class
_M = TypeVar("_M", bound=BaseModel)  # the record it reads as
QUICK_CHECK_ROWS = 1000


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


def _ranges(numbers: list[int]) -> str:
    """Whole numbers in runs: ``[1, 2, 3, 7, 9, 10]`` as ``1-3, 7, 9-10``.

    Examples
    --------
    >>> _ranges([1, 2, 3, 7, 9, 10])
    '1-3, 7, 9-10'
    """
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _create_sqlite_store(cls: type[Store], path: Path) -> None:
    """Create a new SQLite store at ``path`` whole: schema built beside it, then linked into place.

    So a store file is never empty, not even when the process that creates it is
    killed (a 0-byte file is refused as damaged, never taken for a new store). If
    another process creates it first, theirs is kept.
    """
    make_parent(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".creating", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # SQLite creates it (mkstemp only reserved a free name)
    try:
        store = cls(tmp)
        try:
            store.migrate()
        finally:
            store.close()  # folds the WAL into the file and removes -wal and -shm
        if Path(f"{tmp}-wal").exists() and Path(f"{tmp}-wal").stat().st_size:
            raise StoreError(f"Cannot create the database {path}: SQLite left part of the new schema in {tmp}-wal.")
        try:
            os.link(tmp, path)  # never replaces a store another process created meanwhile
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not path.exists():
                os.rename(tmp, path)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    if os.name == "posix":  # make a new name in the folder durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` is either its old self or the whole new file, even after a crash.

    The folder must exist (nothing else is created); a failed write leaves no file behind.
    """
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
    _fsync_folder(path.parent)  # make the rename itself durable


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

    def __init__(self, url: str | os.PathLike[str] | URL | None = None, *, readonly: bool = False):
        self._url = resolve_url(url)
        self._where = display_url(self._url)
        self._readonly = bool(readonly)
        self._engine: Engine | None = make_engine(self._url, readonly=self._readonly)
        # a read is one snapshot: SQLite's read transactions are; PostgreSQL's default (read committed) is not
        read_engine = (self._engine.execution_options(isolation_level="REPEATABLE READ")
                       if self._url.get_backend_name() == "postgresql" else self._engine)
        self._read = sessionmaker(read_engine, expire_on_commit=False)
        self._write_engine = self._engine.execution_options(**{WRITE_OPTION: True})
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        # sessions this store started: monotonic clock at start, for elapsed_s
        self._clocks: dict[int, float] = {}
        # the SQLite file as it was when opened (to tell "changed while read" from "damaged")
        self._opened_stat = self._file_stat()

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, url: str | os.PathLike[str] | URL | None = None, *, migrate: bool = True,
             readonly: bool = False) -> Store:
        """Open the store, for writing (the default) or for reading only.

        Parameters
        ----------
        url : str, path or URL, optional
            A SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://user@host/db``)
            or a path to an SQLite file. Default: ``$ELECTROSTIM_DATABASE_URL``, else
            ``electrostim.db`` in the user's data folder.
        migrate : bool
            Writing: bring the schema to the newest revision first (default). With
            False the schema is used as it is. Ignored when reading.
        readonly : bool
            Read only: nothing is written (no migration, no new file, no files beside
            it), so a store on a read-only file, folder or medium, or on a full disk,
            can be read; every write method raises :class:`StoreReadOnlyError`. The
            schema must be the newest revision (a writing open upgrades it).

        Raises
        ------
        StoreNotFoundError
            Reading, and there is no SQLite file at that path (nothing is created).
        StoreDamagedError
            The SQLite file is empty, not SQLite, or fails SQLite's checks, or (writing)
            one of its newest rows does not match its checksum (:meth:`verify_checksums`):
            nothing is written to it, and the message names the recovery command.
        StoreError
            The database cannot be reached or read, or its schema is newer than this
            electrostim (or, reading, older).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> db = pathlib.Path(tempfile.mkdtemp()) / "log.db"
        >>> Store.open(db, readonly=True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        electrostim.store._errors.StoreNotFoundError: No database at .../log.db: reading needs an existing store ...
        >>> with Store.open(db) as store:  # writing creates it
        ...     _ = store.add_patient("P-1")
        >>> with Store.open(db, readonly=True) as store:
        ...     [p.id for p in store.list_patients()]
        ['P-1']
        """
        resolved = resolve_url(url)
        if resolved.get_backend_name() == "sqlite":
            path = Path(resolved.database or "")
            if not readonly and migrate and not path.exists():
                _create_sqlite_store(cls, path)
            check_sqlite_file(path, readonly=readonly)
        store = cls(resolved, readonly=readonly)
        try:
            store._ping()
            if readonly:
                store._check_revision_for_reading()
                store._check_columns()
            elif migrate:
                store.migrate()
                store._check_columns()
                store.verify_checksums()  # never append to a store whose newest rows were changed or damaged
        except BaseException:
            store.close()
            raise
        store._opened_stat = store._file_stat()
        return store

    @staticmethod
    def recover(source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> dict[str, dict[str, int | None]]:
        """Copy every row of the SQLite store ``source`` that can still be read into a new store ``dest``.

        ``source`` is opened read-only and never written. ``dest`` must not exist; it
        is created with the migrations, and gets each table's rows in id order, each
        checked against its checksum, parents before children. Where SQLite cannot
        read a range of rows, the range is narrowed down to the rows it cannot read,
        and they are counted as lost; so are rows that fail their checksum or the new
        store's constraints, and rows whose parent (a session's plan, an event's
        session) was lost. Each event lost from a recovered session is replaced by an
        ``error`` event that says it was lost (``{"lost_in_recovery": true, ...}``),
        so that the session's events still run 1, 2, 3, … and its hole shows.

        Parameters
        ----------
        source : str or path
            The damaged store (an SQLite file or ``sqlite:///`` URL).
        dest : str or path
            Where to write the new store; nothing may be there yet.

        Returns
        -------
        dict
            For each table (parents first): ``recovered`` and ``lost`` rows, and what
            the lost ones were: ``unreadable`` (SQLite could not read them),
            ``damaged`` (checksum or constraint) and ``orphaned`` (parent lost). A
            count is None where it cannot be known (nothing of the table could be read).

        Raises
        ------
        StoreNotFoundError
            There is no ``source``.
        OptionError
            ``dest`` exists.
        StoreDamagedError
            Nothing can be read at all (an empty file, a damaged first page).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> with Store.open(folder / "old.db") as store:
        ...     _ = store.add_patient("P-1")
        >>> report = Store.recover(folder / "old.db", folder / "new.db")
        >>> report["patients"]
        {'recovered': 1, 'lost': 0, 'unreadable': 0, 'damaged': 0, 'orphaned': 0}
        >>> with Store.open(folder / "new.db", readonly=True) as store:
        ...     [p.id for p in store.list_patients()]
        ['P-1']
        """
        from ._recover import recover

        return recover(source, dest, Store.open)

    @property
    def url(self) -> str:
        """The database URL (password hidden)."""
        return self._where

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._url.get_backend_name()

    @property
    def readonly(self) -> bool:
        """Whether the store was opened for reading only."""
        return self._readonly

    def __repr__(self) -> str:
        flags = (", readonly" if self._readonly else "") + (", closed" if self._engine is None else "")
        return f"Store({self._where!r}{flags})"

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

    def _file_stat(self) -> tuple[int, int, bool] | None:
        if self.backend != "sqlite":
            return None
        path = Path(self._url.database or "")
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, Path(f"{path}-wal").exists()

    def _damage_hint(self) -> str:
        if self.backend == "sqlite":
            return damage_hint(self._url.database or "")
        return "Nothing was written to it; restore the database from a backup."

    def _damaged(self, what: str) -> StoreDamagedError | StoreError:
        """The error for damage found while reading (or, reading without locks, for a file changed meanwhile)."""
        if self._readonly and self._file_stat() != self._opened_stat:
            return StoreError(
                f"The database {self._where} changed while it was being read ({what}): another process wrote to it. "
                f"Nothing was written; run the command again."
            )
        return StoreDamagedError(f"The database {self._where} is damaged: {what}. {self._damage_hint()}")

    @contextmanager
    def _errors(self, action: str, *, decoding: bool = False) -> Iterator[None]:
        """Turn database errors into StoreError naming the action, the database and the cause.

        With ``decoding``, values that cannot be turned back into what was written
        (bad JSON, a bad timestamp, a record that does not validate) mean damage too.
        """
        self._check_open()
        try:
            yield
        except ElectrostimError:
            raise
        except IntegrityError as exc:
            raise StoreError(f"Cannot {action} in {self._where}: the database refused it ({exc.orig}).") from exc
        except DBAPIError as exc:
            if is_damage(exc.orig):  # type: ignore[arg-type]
                if "file is not a database" in str(exc.orig):
                    raise StoreDamagedError(f"Cannot {action} in {self._where}: the file is not an SQLite database. "
                                            f"{self._damage_hint()}") from exc
                raise self._damaged(f"SQLite reports {str(exc.orig)!r} (while trying to {action})") from exc
            cause = str(exc.orig)
            reading = ("reading works (`electrostim sessions list|show|export`, Store.open(..., readonly=True)), "
                       "writing does not")
            if "readonly database" in cause or "unable to open database file" in cause:
                cause += f" (the file or its folder cannot be written here: read-only media or permissions? {reading})"
            elif "disk is full" in cause or "disk I/O error" in cause:
                cause += f" (is the disk full? {reading})"
            raise StoreError(f"Cannot {action} in {self._where}: {cause}.") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"Cannot {action} in {self._where}: {exc}.") from exc
        except OverflowError as exc:  # a Python int the database's integers cannot hold: bad input, nothing written
            raise OptionError(f"Cannot {action} in {self._where}: allowed whole numbers {_INT64[0]} to {_INT64[1]} "
                              f"(the database's integers), but a number given is outside them ({exc}).") from None
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            if not decoding:
                raise
            raise self._damaged(f"a stored value cannot be read back as written ({type(exc).__name__}: {exc}; "
                                f"while trying to {action})") from exc

    @contextmanager
    def _writing(self, action: str) -> Iterator[Session]:
        if self._readonly:
            self._check_open()
            raise StoreReadOnlyError(
                f"Cannot {action} in {self._where}: the store was opened read-only (readonly=True), which allows "
                f"reading only; open it with Store.open(url) to write."
            )
        with self._errors(action, decoding=True), self._write() as s, s.begin():
            yield s

    @contextmanager
    def _reading(self, action: str) -> Iterator[Session]:
        with self._errors(action, decoding=True), self._read() as s, s.begin():
            yield s

    def _ping(self) -> None:
        with self._reading("open the database") as s:
            if self.backend == "sqlite":
                s.execute(text("SELECT count(*) FROM sqlite_master"))  # reads the file's first page
            else:
                s.execute(text("SELECT 1"))

    def _verify(self, *rows: Any) -> None:
        """Refuse rows whose values do not match their checksum (changed outside electrostim, or damaged)."""
        for row in rows:
            if row is None:
                continue
            table = row.__table__
            if row.crc32 is None or row_checksum(table, row_values(row)) != row.crc32:
                key = ", ".join(f"{c.name}={getattr(row, c.key)!r}" for c in table.primary_key)
                raise self._damaged(f"the {table.name} row ({key}) does not match its checksum")

    def verify_checksums(self, *, newest_events: int | None = QUICK_CHECK_EVENTS,
                         newest_rows: int | None = QUICK_CHECK_ROWS) -> int:
        """Compare the newest rows of every table with their checksums; return how many were compared.

        A quick check for damage the file's structure does not show (a changed byte
        inside a stored value): :meth:`open` runs it before a store is written to,
        ``electrostim sessions list`` before it lists. It reads the newest
        ``newest_events`` events (by session, then sequence number) and the newest
        ``newest_rows`` rows of each other table (None: all of them), so its cost is
        bounded however large the store grows: about 0.15 s for 5 000 events (the
        default, with 1 000 rows of each other table) on this project's 2-core build
        machine, where comparing all 100 000 events of a large store takes 2.4 s. Rows
        read later (``get_session``, ``export_session``) are compared all the same.

        Raises
        ------
        StoreDamagedError
            A row does not match its checksum; the message names the row and the
            recovery command (``electrostim sessions recover``). Nothing was written.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as folder, Store.open(pathlib.Path(folder) / "log.db") as store:
        ...     _ = store.add_patient("P-1")
        ...     store.verify_checksums(), store.verify_checksums(newest_rows=0)
        (1, 0)
        """
        for name, n in (("newest_events", newest_events), ("newest_rows", newest_rows)):
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
                raise OptionError(f"Invalid value for {name!r}: allowed a whole number >= 0 or None, but got {n!r}.")
        checked = 0
        with self._reading("compare rows with their checksums") as s:
            for table in TABLES_IN_ORDER:
                n = newest_events if table is EventRow.__table__ else newest_rows
                if n == 0:
                    continue
                q = select(table).order_by(*(c.desc() for c in table.primary_key.columns))
                if n is not None:
                    q = q.limit(n)
                for row in s.execute(q):
                    values = row._mapping
                    if values[CHECKSUM_COLUMN] is None or row_checksum(table, values) != values[CHECKSUM_COLUMN]:
                        key = ", ".join(f"{c.name}={values[c.name]!r}" for c in table.primary_key.columns)
                        raise self._damaged(f"the {table.name} row ({key}) does not match its checksum")
                    checked += 1
        return checked

    # ------------------------------------------------------------------ schema

    def migrate(self) -> str:
        """Upgrade the schema to the newest revision (Alembic, packaged migrations); return that revision.

        Safe to call on an up-to-date database and from several processes at once.
        """
        from ._migrate import upgrade

        if self._readonly:
            self._check_open()
            raise StoreReadOnlyError(
                f"Cannot migrate the schema of {self._where}: the store was opened read-only (readonly=True); "
                f"open it with Store.open(url) to upgrade it."
            )
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

    def _check_columns(self) -> None:
        """SQLite, schema at the newest revision: every table has the columns the models read (else its schema is damaged)."""
        if self.backend != "sqlite":
            return
        with self._reading("check the schema") as s:
            for table in TABLES_IN_ORDER:
                present = {r[1] for r in s.execute(text(f'PRAGMA table_info("{table.name}")'))}
                missing = [c.name for c in table.columns if c.name not in present]
                if missing:
                    raise self._damaged(f"its schema says the table {table.name} has no column "
                                        f"{', '.join(missing)}, which the newest revision has")

    def _check_revision_for_reading(self) -> None:
        from ._migrate import check_known, head_revision

        current = self.schema_revision()
        head = head_revision()
        if current == head:
            return
        if current is None:
            raise StoreError(
                f"The database {self._where} has no electrostim schema (no alembic_version table): it is not a store, "
                f"or one that was never written. A store opened for reading does not create one; a writing command "
                f"(e.g. `electrostim run`) does."
            )
        check_known(current, self._where)
        upgrade_cmd = "electrostim sessions upgrade" + (f" --db {shlex.quote(self._url.database or '')}"
                                                        if self.backend == "sqlite" else "")
        raise StoreError(
            f"The database {self._where} is at schema revision {current!r}; this electrostim reads revision {head!r}, "
            f"and a store opened for reading does not upgrade it. Upgrade it once with `{upgrade_cmd}` (or any "
            f"writing command, e.g. `electrostim run`), then read it again."
        )

    def database_settings(self) -> dict[str, Any]:
        """The settings that make the log durable, as the database reports them.

        SQLite: ``journal_mode`` (``wal``), ``synchronous`` (``full``), ``foreign_keys``
        and ``busy_timeout_ms``; PostgreSQL: ``synchronous_commit``.
        """
        with self._reading("read the database settings") as s:
            if self.backend == "sqlite":
                sync: Any = s.execute(text("PRAGMA synchronous")).scalar_one()
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
            self._verify(row)
            return PatientRecord.model_validate(row)

    def get_patient(self, patient_id: str) -> PatientRecord:
        """The patient with this pseudonymous id."""
        return self._get_one(PatientRow, patient_id, "patient", PatientRecord)

    def _get_one(self, row_type: type[_R], key: Any, what: str, record_type: type[_M]) -> _M:
        """The record of one row by its key, checked; RecordNotFoundError naming ``what`` when there is none."""
        with self._reading(f"read {what} {key!r}") as s:
            row = s.get(row_type, key)
            if row is None:
                raise RecordNotFoundError(f"No {what} {key!r} in {self._where}.")
            self._verify(row)
            return record_type.model_validate(row)

    def list_patients(self) -> list[PatientRecord]:
        """Every patient, by id."""
        with self._reading("list patients") as s:
            rows = s.scalars(select(PatientRow).order_by(PatientRow.id)).all()
            self._verify(*rows)
            return [PatientRecord.model_validate(r) for r in rows]

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
            row = self._program_row(s, doc)
            self._verify(row)
            return ProgramRecord.model_validate(row)

    def get_program(self, ref: int) -> ProgramRecord:
        """A recorded program by the store's number for it."""
        return self._get_one(ProgramRow, ref, "program", ProgramRecord)

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
            self._verify(prog)
            if patient_id is not None:
                self._verify(self._patient_row(s, patient_id))
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
        found = s.execute(select(PlanRow, ProgramRow).join(ProgramRow, PlanRow.program_ref == ProgramRow.id)
                          .where(PlanRow.id == plan_id)).one_or_none()
        if found is None:
            raise RecordNotFoundError(f"No approved plan {plan_id} in {self._where}.")
        self._verify(*found)
        return self._plan_record(found[0], found[1].program_id)

    @staticmethod
    def _plan_record(row: PlanRow, program_id: str) -> PlanRecord:
        return PlanRecord(id=row.id, program_ref=row.program_ref, program_id=program_id, patient_id=row.patient_id,
                          device=row.device, verdict=row.verdict, reasons=row.reasons, warnings=row.warnings,
                          envelope=row.envelope, patient_profile=row.patient_profile, confirmed=row.confirmed,
                          confirmed_by=row.confirmed_by, approved_at=row.approved_at, recorded_at=row.recorded_at)

    # ------------------------------------------------------------------ sessions

    @staticmethod
    def _sessions_query():  # type: ignore[no-untyped-def]
        return (select(SessionRow, PlanRow, ProgramRow)
                .join(PlanRow, SessionRow.plan_id == PlanRow.id)
                .join(ProgramRow, PlanRow.program_ref == ProgramRow.id))

    def _session_records(self, found: Any) -> list[SessionRecord]:
        """Records from rows of :meth:`_sessions_query`, each row checked once."""
        checked: set[int] = set()
        records = []
        for row, plan, program in found:
            for r in (row, plan, program):
                if id(r) not in checked:
                    self._verify(r)
                    checked.add(id(r))
            records.append(SessionRecord(
                id=row.id, plan_id=row.plan_id, patient_id=plan.patient_id, program_id=program.program_id,
                verdict=plan.verdict, confirmed_by=plan.confirmed_by,
                device=row.device, state=row.state, started_at=row.started_at, ended_at=row.ended_at,
                summary=row.summary, event_count=row.event_count, host=row.host, pid=row.pid))
        return records

    def _session(self, s: Session, session_id: int) -> SessionRecord:
        found = s.execute(self._sessions_query().where(SessionRow.id == session_id)).all()
        if not found:
            raise self._no_session(s, session_id)
        return self._session_records(found)[0]

    def _no_session(self, s: Session, session_id: int) -> RecordNotFoundError:
        """The error for a session id that is not in the store: what ids there are, and the one given."""
        low, high, count = s.execute(select(func.min(SessionRow.id), func.max(SessionRow.id), func.count())
                                     .select_from(SessionRow)).one()
        there = ("the store holds no session yet" if not count else
                 f"allowed the id of a recorded session ({count} here, ids {low} to {high}: see `electrostim sessions list`)")
        return RecordNotFoundError(f"No session {session_id} in {self._where}: {there}, but got {session_id}.")

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
            self._insert_event(s, session_id=row.id, seq=1, at=started, elapsed_s=0.0, kind="state", output=None,
                               payload={"state": "running", "device": device, "plan_id": plan_id})
            record = self._session(s, row.id)
        self._clocks[record.id] = clock
        return record

    @staticmethod
    def _insert_event(s: Session, **values: Any) -> None:
        values["crc32"] = row_checksum(EventRow.__table__, values)  # type: ignore[arg-type]
        s.execute(insert(EventRow).values(**values))

    def _next_seq(self, s: Session, session_id: int, at: datetime, **changes: Any) -> tuple[int, float]:
        """Take the session's next sequence number (and apply ``changes``) if it is running; with elapsed_s.

        The row is locked (``FOR UPDATE`` on PostgreSQL; SQLite's write transaction
        holds the database lock already), checked against its checksum, and written
        back with its new count and checksum.
        """
        row = s.scalars(select(SessionRow).where(SessionRow.id == session_id).with_for_update()).one_or_none()
        if row is None:
            raise self._no_session(s, session_id)
        self._verify(row)
        if row.state != "running":
            raise SessionStateError(f"Session {session_id} has ended ({row.state}); events can be added only to a running session.")
        row.event_count += 1
        for key, value in changes.items():
            setattr(row, key, value)
        s.flush()
        clock = self._clocks.get(session_id)
        elapsed = time.monotonic() - clock if clock is not None else (at - row.started_at).total_seconds()
        return row.event_count, elapsed

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
            self._insert_event(s, session_id=session_id, seq=seq, at=at, elapsed_s=elapsed, kind=kind, output=out,
                               payload=data)
        return EventRecord(session_id=session_id, seq=seq, at=at, elapsed_s=elapsed, kind=kind, output=out, payload=data)

    def end_session(self, session_id: int, state: str, summary: Any = None, reason: str | None = None) -> SessionRecord:
        """End a running session as ``completed``, ``stopped`` or ``failed``, with a summary.

        The last event is the state it ended in, with ``reason`` (what ended it) when given.
        """
        state = check_option("state", state, END_STATES)
        data = _json_object(summary, "summary")
        ending: dict[str, Any] = {"state": state}
        if reason is not None:
            ending["reason"] = _text(str(reason), "reason", 2000)
        with self._writing(f"end session {session_id}") as s:
            at = _now()
            seq, elapsed = self._next_seq(s, session_id, at, state=state, ended_at=at, summary=data)
            self._insert_event(s, session_id=session_id, seq=seq, at=at, elapsed_s=elapsed, kind="state", output=None,
                               payload=ending)
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
            self._verify(*running)
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
                self._insert_event(
                    s, session_id=row.id, seq=seq, at=at, elapsed_s=(at - row.started_at).total_seconds(), kind="state",
                    output=None, payload={
                        "state": "interrupted",
                        "reason": f"the process that ran it (pid {row.pid} on {row.host}) ended without ending the session",
                        "last_event_seq": row.event_count,
                        "last_event_at": last_at.isoformat(),
                    })
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
            if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= _INT64[1]:
                raise OptionError(f"Invalid value for 'limit': allowed a whole number 1 <= x <= {_INT64[1]}, but got {limit!r}.")
            q = q.limit(limit)
        q = q.order_by(SessionRow.started_at.desc(), SessionRow.id.desc())
        with self._reading("list sessions") as s:
            return self._session_records(s.execute(q).all())

    def get_events(self, session_id: int, *, after_seq: int = 0) -> list[EventRecord]:
        """A session's events with ``seq > after_seq``, in order (for following a live session)."""
        with self._reading(f"read the events of session {session_id}") as s:
            row = s.get(SessionRow, session_id)
            if row is None:
                raise self._no_session(s, session_id)
            self._verify(row)
            return self._events(s, session_id, row.event_count, after_seq)

    def _events(self, s: Session, session_id: int, event_count: int, after_seq: int = 0) -> list[EventRecord]:
        """The events after ``after_seq``, checked: each against its checksum, all of them as 1.. ``event_count``."""
        rows = s.scalars(select(EventRow).where(EventRow.session_id == session_id, EventRow.seq > after_seq)
                         .order_by(EventRow.seq)).all()
        self._verify(*rows)
        seqs = [r.seq for r in rows]
        first = max(after_seq, 0) + 1
        if seqs != list(range(first, max(event_count, first - 1) + 1)) or any(r.session_id != session_id for r in rows):
            raise self._damaged(
                f"session {session_id} records {event_count} events, but its events read back as seq "
                f"{_ranges(seqs) or 'none'} (expected {_ranges(list(range(first, event_count + 1))) or 'none'})"
            )
        return [EventRecord.model_validate(r) for r in rows]

    def get_session(self, session_id: int) -> SessionDetail:
        """A session with its plan and all its events (one consistent snapshot)."""
        with self._reading(f"read session {session_id}") as s:
            record = self._session(s, session_id)
            plan = self._get_plan(s, record.plan_id)
            events = self._events(s, session_id, record.event_count)
        return SessionDetail(**record.model_dump(), plan=plan, events=events)

    def process_ended(self, session: SessionRecord) -> bool:
        """Whether ``session`` is ``running`` but the process that ran it has ended on this machine.

        What :meth:`mark_interrupted` would mark, told without writing (a reading
        store shows such sessions as they are; this says which they are). Sessions
        this store started, and those of other machines, count as not ended.
        """
        return (session.state == "running" and session.id not in self._clocks
                and session.host == socket.gethostname()[:255] and not _pid_alive(session.pid))

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

        Raises
        ------
        OptionError
            An unknown format, or ``path``'s folder does not exist (no folder is
            created) or ``path`` is a folder: nothing is read or written.
        """
        path = Path(path)
        fmt = check_option("format", (format or path.suffix.lstrip(".")).lower(), EXPORT_FORMATS)
        check_output_file("path", path)  # creates no folder
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
