"""Checks on an SQLite store before it is used: is it there, is it SQLite, is it whole.

:func:`check_sqlite_file` runs at every :meth:`Store.open`, for reading and for
writing, before anything is written:

1. the file exists (reading never creates one: :class:`StoreNotFoundError`);
2. it is not empty: a 0-byte file with no write-ahead log is a truncated store (or no
   store at all), never silently made into a new empty one;
3. its header says SQLite and a valid page size;
4. ``PRAGMA quick_check`` finds nothing wrong with the structure of any table or
   index, and ``PRAGMA integrity_check`` finds nothing wrong with the small tables
   (patients, programs, plans, sessions), whose indexes it also compares with their
   rows (``quick_check`` does not, and ``list_sessions`` reads through them).

Cost, measured on a store of 100 sessions and 100 000 events (15 MB, file in the page
cache, this project's 2-core build machine): the whole check takes 35 ms (``quick_check``
32 ms, the small tables' ``integrity_check`` under 1 ms), and ``Store.open`` 41 ms
reading, 49 ms writing; a full ``integrity_check`` would take 71 ms. (An earlier run on
a similar file, the machine busier, gave 80 ms for ``quick_check`` and 270 ms for a
full ``integrity_check``: the numbers move with the load.)

The damage a check can miss, a changed byte inside a stored value, is found by the
rows' checksums when they are read (see ``_tables``). Either way the store raises
:class:`StoreDamagedError`, whose message quotes the problem, says nothing was
written, and names the recovery command (:func:`recovery_command`).
"""

from __future__ import annotations

import os
import shlex
import sqlite3
from pathlib import Path
from typing import Any

from ._engine import readonly_sqlite_connect
from ._errors import StoreDamagedError, StoreError, StoreLocationError, StoreNotADatabaseError, StoreNotFoundError

__all__ = ["check_sqlite_file", "check_location", "recovery_command", "damage_hint", "SMALL_TABLES", "SQLITE_MAGIC"]

#: The first 16 bytes of every SQLite 3 file.
SQLITE_MAGIC = b"SQLite format 3\x00"
#: Tables small enough to check completely (indexes against rows) at every open.
SMALL_TABLES: tuple[str, ...] = ("patients", "programs", "approved_plans", "sessions")
#: SQLite result codes that mean a damaged file.
_DAMAGE_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB


def recovery_command(path: str | os.PathLike[str]) -> str:
    """The command that copies what can still be read from ``path`` into a new file.

    Examples
    --------
    >>> recovery_command("/data/clinic.db")
    'electrostim sessions recover /data/clinic.db --to /data/clinic.recovered.db'
    >>> recovery_command("/my data/log")
    "electrostim sessions recover '/my data/log' --to '/my data/log.recovered.db'"
    """
    path = Path(path)
    dest = path.with_name(f"{path.stem}.recovered.db") if path.suffix else path.with_name(f"{path.name}.recovered.db")
    return f"electrostim sessions recover {shlex.quote(str(path))} --to {shlex.quote(str(dest))}"


def damage_hint(path: str | os.PathLike[str]) -> str:
    """The end of every damage message: nothing was written, and how to save what is left."""
    return (f"Nothing was written to it. Copy every row that can still be read into a new file with: "
            f"{recovery_command(path)}")


def is_damage(exc: BaseException) -> bool:
    """Whether an sqlite3 error means a damaged file (rather than e.g. a lock or a missing table)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and (code & 0xFF) in _DAMAGE_CODES:
        return True
    text = str(exc)
    return "malformed" in text or "file is not a database" in text or "Could not decode" in text


def _first_problem(rows: list[tuple[object, ...]]) -> str:
    lines = [str(r[0]) for r in rows]
    problems = [ln for ln in "\n".join(lines).splitlines() if ln.strip() and not ln.startswith("*** in database")]
    return problems[0] if problems else "; ".join(lines)


def check_sqlite_file(path: str | os.PathLike[str], *, readonly: bool, where: str | None = None) -> None:
    """Refuse a store file that is missing (when reading), empty, not SQLite or damaged; write nothing.

    Parameters
    ----------
    path : str or path
        The SQLite file.
    readonly : bool
        Reading: a missing file is an error. Writing: a missing file is fine (it
        will be created); an existing one is checked all the same.
    where : str, optional
        How to name the database in messages (default: the path).

    Raises
    ------
    StoreNotFoundError
        Reading, and there is no file.
    StoreDamagedError
        The file is empty, is not SQLite, or fails SQLite's checks.
    StoreError
        The file cannot be read (permissions, a log that cannot be read here).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> empty = pathlib.Path(tempfile.mkdtemp()) / "empty.db"
    >>> _ = empty.write_bytes(b"")
    >>> check_sqlite_file(empty, readonly=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    electrostim.store._errors.StoreDamagedError: The database file .../empty.db is empty (0 bytes): it was truncated or is not a store; nothing was written. ...
    >>> check_sqlite_file(empty.with_name("absent.db"), readonly=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    electrostim.store._errors.StoreNotFoundError: No database at .../absent.db: ...
    """
    path = Path(path)
    where = where or str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        if readonly:
            raise StoreNotFoundError(
                f"No database at {path}: reading needs an existing store (a writing command such as "
                f"`electrostim run` creates one), but nothing is there; nothing was created."
            ) from None
        return
    except OSError as exc:
        raise StoreError(f"Cannot read the database {where}: {exc.strerror or exc}.") from None
    if path.is_dir():
        raise StoreLocationError(f"The database path {path} is a folder: allowed an SQLite file (or a path where one "
                                 f"may be created), but got the folder {path}.")
    wal = Path(f"{path}-wal")
    if st.st_size == 0:
        if wal.exists() and wal.stat().st_size > 0:
            pass  # a new store whose first pages are still in its write-ahead log: SQLite reads them from there
        else:
            raise StoreDamagedError(
                f"The database file {path} is empty (0 bytes): it was truncated or is not a store; nothing was written. "
                f"A store is never empty (even a new one holds its schema), so it is not re-created over what may be a "
                f"lost one: restore it from a backup, or delete the file to start a new store."
            )
    else:
        try:
            with open(path, "rb") as fh:
                header = fh.read(100)
        except OSError as exc:
            raise StoreError(f"Cannot read the database {where}: {exc.strerror or exc}.") from None
        if header[:16] != SQLITE_MAGIC:
            raise StoreNotADatabaseError(
                f"Cannot open the database in {where}: the file is not an SQLite database. Allowed an electrostim store "
                f"(an SQLite file), but its first bytes are {header[:16]!r}. Nothing was written to it; if it was an "
                f"electrostim store, its first page is damaged and SQLite cannot read any of it: restore it from a backup."
            )
        page_size = 65536 if header[16:18] == b"\x00\x01" else int.from_bytes(header[16:18], "big")
        if len(header) < 100 or page_size < 512 or page_size & (page_size - 1):
            raise StoreDamagedError(
                f"The database {where} is damaged: its header is cut short or names no valid page size "
                f"({len(header)} header bytes, page size {page_size}). {damage_hint(path)}"
            )
    _quick_check(path, where)


def _quick_check(path: Path, where: str) -> None:
    try:
        conn = readonly_sqlite_connect(path)
    except sqlite3.Error as exc:  # pragma: no cover - connect is lazy; errors come with the first statement
        raise StoreError(f"Cannot read the database {where}: {exc}.") from None
    check = "reading its schema"
    try:
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            problem, check = _first_problem(conn.execute("PRAGMA quick_check(1)").fetchall()), "PRAGMA quick_check"
            for table in SMALL_TABLES if problem == "ok" else ():
                if table in tables:
                    check = f"PRAGMA integrity_check of the table {table}"
                    problem = _first_problem(conn.execute(f"PRAGMA integrity_check('{table}')").fetchall())
                    if problem != "ok":
                        break
        except UnicodeDecodeError as exc:  # SQLite's message quotes the damaged schema, which is not text
            problem = f"the schema cannot be parsed ({exc})"
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                wal = Path(f"{path}-wal")
                if "unable to open" in str(exc) and wal.exists():
                    raise StoreError(
                        f"Cannot read the database {where}: it has a write-ahead log ({wal.name}, {wal.stat().st_size} bytes) "
                        f"with changes not yet in the main file, and SQLite cannot read that log here without creating "
                        f"its index file {path.name}-shm (a read-only folder, read-only media or a full disk?). Open it "
                        f"once for writing where its folder can be written (e.g. `electrostim sessions upgrade --db "
                        f"{shlex.quote(str(path))}`), or copy the database and its -wal file to such a folder."
                    ) from None
                if "unsupported file format" in str(exc):
                    raise StoreError(
                        f"Cannot read the database {where}: its header names an SQLite file format that this SQLite "
                        f"({sqlite3.sqlite_version}) does not read: a newer SQLite wrote it, or the header is damaged. "
                        f"Nothing was written to it."
                    ) from None
                raise StoreError(f"Cannot read the database {where}: {exc}.") from None
            problem = str(exc)
    finally:
        conn.close()
    if problem != "ok":
        raise StoreDamagedError(f"The database {where} is damaged: SQLite reports {problem!r} ({check}). {damage_hint(path)}")


def check_location(url: Any = None, *, readonly: bool) -> None:
    """Refuse, before anything is opened or created, a database that cannot be read (or written) as a store.

    What a command runs first, so that a wrong ``--db`` is one clear error before any
    question is asked or anything is done: the URL is resolved (an unsupported kind of
    database is refused), and an SQLite file that is there is checked
    (:func:`check_sqlite_file`). Reading, a file that is not there is refused;
    writing, a path whose folder is a file, or (a path given, not the default) whose
    folder does not exist, is refused; so is an empty text. Nothing is created.

    Parameters
    ----------
    url : str, path or URL, optional
        As :meth:`Store.open` takes it (None: ``$ELECTROSTIM_DATABASE_URL`` or the default file).
    readonly : bool
        Whether the store will only be read.

    Raises
    ------
    StoreLocationError
        A folder, an unsupported database URL, an in-memory database, a path under a file.
    StoreNotADatabaseError
        A file that is not SQLite.
    StoreNotFoundError
        Reading, and there is no file.
    StoreDamagedError
        A damaged file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> check_location(folder / "new.db", readonly=False)  # writing creates it later
    >>> check_location(folder, readonly=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    electrostim.store._errors.StoreLocationError: The database path ... is a folder: ...
    """
    from ._engine import check_driver, resolve_url

    resolved = resolve_url(url)  # an empty text is refused there
    if resolved.get_backend_name() != "sqlite":
        check_driver(resolved)
        return
    path = Path(resolved.database or "")
    if not readonly and not path.exists():
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise StoreLocationError(f"Cannot use {path} for the database: {parent} is a file, not a folder; allowed a "
                                     f"path in a folder, but got {path}.")
        if url is not None and not path.parent.is_dir():  # a path given: its folder is not created for it
            raise StoreLocationError(f"Cannot use {path} for the database: the folder {path.parent} does not exist; "
                                     f"allowed a file in an existing folder (no folder is created), but got {path}.")
        return
    check_sqlite_file(path, readonly=readonly)
