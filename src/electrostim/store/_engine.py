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
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from ._errors import StoreError

__all__ = [
    "DATABASE_URL_ENV",
    "WRITE_OPTION",
    "BUSY_TIMEOUT_S",
    "default_database_path",
    "resolve_url",
    "make_engine",
    "display_url",
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
    electrostim.store._errors.StoreError: Unsupported database 'mysql' in mysql://host/db: allowed 'sqlite', 'postgresql'.
    """
    if url is None:
        url = os.environ.get(DATABASE_URL_ENV, "").strip() or None
        if url is None:
            return URL.create("sqlite", database=str(default_database_path()))
    if isinstance(url, URL):
        parsed = url
    elif isinstance(url, os.PathLike) or "://" not in str(url):
        return URL.create("sqlite", database=str(Path(os.fspath(url)).expanduser()))
    else:
        try:
            parsed = make_url(str(url))
        except ArgumentError:
            raise StoreError(f"Not a database URL: {url!r} (expected e.g. sqlite:///path/to/file.db or postgresql+psycopg://user@host/db).") from None
    backend = parsed.get_backend_name()
    if backend not in _BACKENDS:
        allowed = ", ".join(repr(b) for b in _BACKENDS)
        raise StoreError(f"Unsupported database {backend!r} in {display_url(parsed)}: allowed {allowed}.")
    if backend == "sqlite":
        db = parsed.database or ""
        if db in ("", ":memory:") or db.startswith("file::memory:") or parsed.query.get("mode") == "memory":
            raise StoreError(
                f"An in-memory SQLite database cannot keep a session log ({display_url(parsed)}): give a file path or URL."
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


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")


def make_engine(url: URL) -> Engine:
    """An engine for ``url`` with the store's settings; SQLite files get their folder created."""
    backend = url.get_backend_name()
    try:
        if backend == "sqlite":
            path = Path(url.database or "")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"Cannot create the folder for the database {path}: {exc.strerror}.") from None
            engine = create_engine(url, json_serializer=json_dumps, connect_args={"timeout": BUSY_TIMEOUT_S})
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(url, json_serializer=json_dumps, pool_pre_ping=True)
    except (ModuleNotFoundError, NoSuchModuleError) as exc:
        raise StoreError(
            f"No database driver for {display_url(url)} ({exc}); for PostgreSQL install psycopg: "
            f"pip install 'psycopg[binary]'."
        ) from None
    return engine
