"""Where the database is, and the engine that opens it with the durability settings.

SQLite (the default) is opened with::

    PRAGMA journal_mode = WAL     readers never block the writer, the writer never blocks readers
    PRAGMA synchronous  = FULL    every commit is fsynced to the WAL before it returns
    PRAGMA foreign_keys = ON      references are checked
    busy timeout 10 s             a writer waits for another writer instead of failing at once

and with SQLAlchemy, not the ``sqlite3`` module, emitting ``BEGIN``: ``BEGIN IMMEDIATE``
for the store's write transactions (the write lock is taken before anything is read,
so reading the last sequence number and writing the next one cannot interleave with
another writer) and a plain deferred ``BEGIN`` for reads (which in WAL mode never wait).

Reading only
------------
A store opened with ``readonly=True`` never writes: not the database, not its folder.
SQLite opens the file read-only (a ``file:`` URI, see :func:`readonly_sqlite_connect`)
and with ``PRAGMA query_only``; the journal mode is left as it is. A WAL database
needs its ``-shm`` file to be read with the usual locks, and SQLite creates it (and
an empty ``-wal``) if it can, even for a read-only connection; so:

- when a ``-wal`` file with content is there (a writer has the database open, or one
  was killed before it could fold its log back in), the file is opened with
  ``mode=ro``: SQLite reads the log through the ``-shm`` file that is there with it;
- when there is none (or an empty one: no transaction in it), the whole database is
  in the main file, and it is opened with ``mode=ro&immutable=1``: no lock, no
  ``-shm``, no ``-wal``, nothing created. This is what makes reading work in a
  read-only folder, on read-only media and on a full disk.
  (The one thing it cannot see is a writer that starts *and* ends, folding its log into
  the main file, during the milliseconds of one read; the store then reports that the
  file changed while it was read, and reading again is enough.)
- a ``-wal`` file with content but no ``-shm`` in a folder that cannot be written
  cannot be read safely (SQLite refuses; ``immutable`` would silently miss the log):
  the store says so.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from ._errors import StoreError, StoreLocationError

__all__ = [
    "DATABASE_URL_ENV",
    "WRITE_OPTION",
    "BUSY_TIMEOUT_S",
    "default_database_path",
    "resolve_url",
    "make_engine",
    "display_url",
    "readonly_sqlite_connect",
    "sqlite_header_is_wal",
    "make_parent",
    "check_driver",
]

log = logging.getLogger("electrostim.store")

#: Environment variable naming the database (any SQLAlchemy URL, or a path to an SQLite file).
DATABASE_URL_ENV = "ELECTROSTIM_DATABASE_URL"
#: Execution option that marks the store's write transactions (``BEGIN IMMEDIATE`` on SQLite).
WRITE_OPTION = "electrostim_write"
#: How long an SQLite writer waits for another writer's lock before giving up.
BUSY_TIMEOUT_S = 10.0

_BACKENDS = ("sqlite", "postgresql")

#: JSON as stored: compact, UTF-8, and never NaN/Infinity (which PostgreSQL and strict readers refuse).
json_dumps = functools.partial(json.dumps, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def default_database_path() -> Path:
    """The SQLite file used when no URL is given: ``electrostim.db`` in the user's data folder.

    Examples
    --------
    >>> default_database_path().name
    'electrostim.db'
    """
    import platformdirs

    return Path(platformdirs.user_data_dir("electrostim", appauthor=False)) / "electrostim.db"


def display_url(url: URL) -> str:
    """The URL as people may see it (password hidden)."""
    return url.render_as_string(hide_password=True)


def resolve_url(url: str | os.PathLike[str] | URL | None = None) -> URL:
    """The database URL: ``url`` if given, else ``$ELECTROSTIM_DATABASE_URL``, else the default SQLite file.

    A path (anything without ``://``) means an SQLite file at that path.

    Examples
    --------
    >>> resolve_url("sqlite:////tmp/x.db").get_backend_name()
    'sqlite'
    >>> resolve_url("/tmp/x.db").database
    '/tmp/x.db'
    >>> resolve_url("mysql://host/db")
    Traceback (most recent call last):
    ...
    electrostim.store._errors.StoreLocationError: Unsupported database 'mysql' in mysql://host/db: allowed 'sqlite', 'postgresql'.
    """
    if url is None:
        url = os.environ.get(DATABASE_URL_ENV, "").strip() or None
        if url is None:
            return URL.create("sqlite", database=str(default_database_path()))
    if isinstance(url, str) and not url.strip():
        raise StoreLocationError("Invalid database: allowed a database URL or an SQLite file path, but got an empty "
                                 f"text ({url!r}).")
    if isinstance(url, URL):
        parsed = url
    elif isinstance(url, os.PathLike) or "://" not in str(url):
        return URL.create("sqlite", database=str(Path(os.fspath(url)).expanduser()))
    else:
        try:
            parsed = make_url(str(url))
        except ArgumentError:
            raise StoreLocationError(f"Not a database URL: allowed e.g. sqlite:///path/to/file.db, "
                                     f"postgresql+psycopg://user@host/db or a file path, but got {url!r}.") from None
    backend = parsed.get_backend_name()
    if backend not in _BACKENDS:
        allowed = ", ".join(repr(b) for b in _BACKENDS)
        raise StoreLocationError(f"Unsupported database {backend!r} in {display_url(parsed)}: allowed {allowed}.")
    if backend == "sqlite":
        db = parsed.database or ""
        if db in ("", ":memory:") or db.startswith("file::memory:") or parsed.query.get("mode") == "memory":
            given = url if isinstance(url, str) else display_url(parsed)
            raise StoreLocationError(
                f"An in-memory SQLite database cannot keep a session log: allowed a file path or an sqlite:/// URL "
                f"naming a file, but got {given!r}."
            )
        parsed = parsed.set(database=str(Path(db).expanduser()))
    return parsed


def _sqlite_connect(dbapi_conn: Any, record: Any) -> None:
    # SQLAlchemy emits BEGIN itself (see _sqlite_begin); the sqlite3 module must not.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()
    if str(mode).lower() != "wal":
        log.warning("SQLite would not switch to WAL mode (journal_mode=%s); "
                    "commits stay durable but readers may wait for writers", mode)


def _sqlite_connect_readonly(dbapi_conn: Any, record: Any) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA query_only=ON")  # belt and braces: the file is open read-only already
    finally:
        cur.close()


def sqlite_header_is_wal(path: Path) -> bool:
    """Whether the SQLite file at ``path`` is in WAL mode (bytes 18 and 19 of its header are 2)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2 and header[19] == 2


def readonly_sqlite_connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open an SQLite file for reading only, creating nothing (see the module's notes on WAL).

    Parameters
    ----------
    path : str or path
        An existing SQLite file.

    Returns
    -------
    sqlite3.Connection
        In autocommit mode (``isolation_level=None``), usable from any thread.

    Examples
    --------
    >>> import tempfile, pathlib, sqlite3, os
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> w = sqlite3.connect(folder / "x.db"); _ = w.execute("PRAGMA journal_mode=WAL")
    >>> _ = w.execute("CREATE TABLE t (x)"); w.commit(); w.close()
    >>> r = readonly_sqlite_connect(folder / "x.db")
    >>> r.execute("SELECT count(*) FROM t").fetchone(), sorted(os.listdir(folder))
    ((0,), ['x.db'])
    >>> r.execute("INSERT INTO t VALUES (1)")
    Traceback (most recent call last):
    ...
    sqlite3.OperationalError: attempt to write a readonly database
    >>> r.close()
    """
    path = Path(path)
    query = "mode=ro"
    try:
        log_bytes = Path(f"{path}-wal").stat().st_size
    except OSError:
        log_bytes = 0
    if log_bytes == 0 and sqlite_header_is_wal(path):
        query = "mode=ro&immutable=1"
    uri = f"file:{urllib.parse.quote(os.fspath(path))}?{query}"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
    return conn


def make_parent(path: Path) -> None:
    """Create the folder of an SQLite file for writing: :class:`StoreLocationError` where a file is in the way,
    :class:`StoreError` where it cannot be created (permissions, a full disk)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.EEXIST):
            blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
            raise StoreLocationError(f"Cannot use {path} for the database: {blocker} is a file, not a folder; allowed "
                                     f"a path in a folder, but got {path}.") from None
        raise StoreError(f"Cannot create the folder for the database {path}: {exc.strerror}.") from None


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")


def make_engine(url: URL, *, readonly: bool = False) -> Engine:
    """An engine for ``url`` with the store's settings.

    Writing (the default), SQLite files get their folder created and WAL mode; with
    ``readonly`` nothing is created and every connection is read-only (SQLite:
    :func:`readonly_sqlite_connect`; PostgreSQL: read-only transactions).
    """
    backend = url.get_backend_name()
    try:
        if backend == "sqlite":
            path = Path(url.database or "")
            if readonly:
                engine = create_engine(url, json_serializer=json_dumps, creator=lambda: readonly_sqlite_connect(path))
                event.listen(engine, "connect", _sqlite_connect_readonly)
                event.listen(engine, "begin", _sqlite_begin)
                return engine
            make_parent(path)
            engine = create_engine(url, json_serializer=json_dumps, connect_args={"timeout": BUSY_TIMEOUT_S})
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(url, json_serializer=json_dumps, pool_pre_ping=True)
            if readonly:
                engine.update_execution_options(postgresql_readonly=True)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise _driver_error(url, exc) from None
    return engine


def _driver_error(url: URL, exc: Exception) -> StoreError:
    if isinstance(exc, NoSuchModuleError):  # a driver name SQLAlchemy does not know: a wrong URL
        return StoreLocationError(f"No database driver for {display_url(url)} ({exc}): allowed sqlite:///FILE or "
                                  f"postgresql+psycopg://USER@HOST/DB, but got {display_url(url)}.")
    return StoreError(f"No database driver for {display_url(url)} ({exc}); for PostgreSQL install psycopg: "
                      f"pip install 'psycopg[binary]'.")


def check_driver(url: URL) -> None:
    """Refuse a URL whose driver SQLAlchemy does not know (:class:`StoreLocationError`) or that is not installed
    (:class:`StoreError`), without connecting."""
    try:
        url.get_dialect()
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise _driver_error(url, exc) from None
