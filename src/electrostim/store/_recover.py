"""Recovery: copy every row of a damaged SQLite store that can still be read into a new store.

The source is opened read-only (:func:`~._engine.readonly_sqlite_connect`) and never
written. Each table is read in rowid order, parents before children, in ranges of
:data:`CHUNK` rowids; a range whose read fails (SQLite reports damage, or a value
cannot be decoded) is halved until the rows that cannot be read are single rowids,
which are counted as lost. A row that reads but does not match its checksum, or that
the new store's constraints refuse, is lost too, and so is a row whose parent (the
plan of a session, the session of an event) was lost: the new store keeps its
references whole. The rowids to look for run up to the highest one the table or
any of its indexes still knows (the store never deletes rows, so its rowids have no
gaps: every rowid in a range that cannot be read is a lost row).

Each event lost from a session that was recovered is replaced in the new store by an
``error`` event that says so (``{"lost_in_recovery": true, ...}``, at the time of the
event before it), so that the session's events still run 1, 2, 3, … and a reader
sees where the log has a hole, rather than the store taking the hole for damage.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ColumnClause, Table, between, insert, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..errors import OptionError
from ._engine import make_engine, readonly_sqlite_connect, resolve_url
from ._errors import StoreDamagedError, StoreError, StoreNotADatabaseError, StoreNotFoundError
from ._integrity import SQLITE_MAGIC, is_damage
from ._tables import CHECKSUM_COLUMN, TABLES_IN_ORDER, EventRow, SessionRow, row_checksum

__all__ = ["recover", "CHUNK"]

#: Rowids read at once; a failing range is halved down to single rowids.
CHUNK = 256
#: How many empty ranges past the highest known rowid end the search for more rows.
_EMPTY_RANGES_AFTER = 4
#: Which column of a child refers to which parent table (a child whose parent was lost is not copied).
_PARENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "approved_plans": (("program_ref", "programs"), ("patient_id", "patients")),
    "sessions": (("plan_id", "approved_plans"),),
    "session_events": (("session_id", "sessions"),),
}


class _Unreadable(Exception):
    pass


def _path_of(db: str | os.PathLike[str]) -> Path:
    url = resolve_url(db)
    if url.get_backend_name() != "sqlite":
        raise OptionError(f"Invalid database for recovery: allowed an SQLite file, but got {db!r} "
                          f"(a PostgreSQL database is restored from its backups).")
    return Path(url.database or "")


def recover(source: str | os.PathLike[str], dest: str | os.PathLike[str], open_store: Any) -> dict[str, dict[str, int | None]]:
    """Copy every row of ``source`` that can still be read into a new store at ``dest``.

    ``open_store`` opens the new store (``Store.open``: it creates the schema). See
    :meth:`Store.recover`.
    """
    src, dst = _path_of(source), _path_of(dest)
    if not src.is_file():
        raise StoreNotFoundError(f"No database at {src} to recover from: allowed an existing SQLite file; nothing was created.")
    for path in (dst, Path(f"{dst}-wal"), Path(f"{dst}-journal")):
        if path.exists():
            raise OptionError(
                f"Invalid value for the recovery's destination: allowed a path where no file exists yet (recovery "
                f"never writes over a file), but {path} exists."
            )
    with open(src, "rb") as fh:
        header = fh.read(100)
    if not header:
        raise StoreDamagedError(f"The database file {src} is empty (0 bytes): there is nothing to recover.")
    if header[:16] != SQLITE_MAGIC:
        raise StoreNotADatabaseError(f"The file {src} is not an SQLite database (its first page is damaged or it never was "
                                f"one): SQLite cannot read any of it, so nothing can be recovered; restore it from a backup.")

    probe = readonly_sqlite_connect(src)
    try:
        source_columns = _source_columns(probe, src)
        indexes = _indexes(probe)
    finally:
        probe.close()

    source_url = resolve_url(src)
    engine = make_engine(source_url, readonly=True)
    report: dict[str, dict[str, int | None]] = {}
    kept: dict[str, set[Any]] = {}
    try:
        with open_store(dst) as new, engine.connect() as conn, new._write_engine.begin() as out:
            for table in TABLES_IN_ORDER:
                report[table.name], kept[table.name] = _copy_table(
                    conn, out, table, source_columns.get(table.name), indexes.get(table.name, []), kept)
            _mark_lost_events(out, src)
    except BaseException:
        engine.dispose()
        raise
    engine.dispose()
    return report


def _source_columns(conn: sqlite3.Connection, src: Path) -> dict[str, set[str]]:
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name: {r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')} for name in names}
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        raise StoreDamagedError(
            f"The schema of {src} cannot be read (SQLite reports {str(exc)!r}): without it SQLite cannot find any table, "
            f"so nothing can be recovered; restore it from a backup."
        ) from None


def _indexes(conn: sqlite3.Connection) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    try:
        for name, table in conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"):
            found.setdefault(table, []).append(name)
    except (sqlite3.DatabaseError, UnicodeDecodeError):
        pass
    return found


def _max_rowid(conn: Connection, table: Table, indexes: list[str]) -> int:
    """The highest rowid the table, or any of its indexes, still knows (0 if none can say)."""
    best = 0
    queries = [f'SELECT max(rowid) FROM "{table.name}"']
    queries += [f'SELECT max(rowid) FROM "{table.name}" INDEXED BY "{ix}"' for ix in indexes]
    for q in queries:
        try:
            value = conn.exec_driver_sql(q).scalar()
        except DBAPIError:
            continue
        if isinstance(value, int):
            best = max(best, value)
    return best


def _read_range(conn: Connection, table: Table, columns: list[Any], lo: int, hi: int) -> list[dict[str, Any]]:
    rowid: ColumnClause[Any] = literal_column("rowid")
    stmt = (select(rowid.label("_rowid"), *columns).select_from(table)
            .where(between(rowid, lo, hi)).order_by(rowid))
    try:
        return [dict(r) for r in conn.execute(stmt).mappings().all()]
    except DBAPIError as exc:
        if is_damage(exc.orig):  # type: ignore[arg-type]
            raise _Unreadable from None
        raise StoreError(f"Cannot read {table.name} to recover it: {exc.orig}.") from None
    except (ValueError, TypeError, UnicodeDecodeError):
        raise _Unreadable from None


def _scan(conn: Connection, table: Table, columns: list[Any], lo: int, hi: int,
          lost: list[int]) -> Iterator[dict[str, Any]]:
    """The rows with rowid in [lo, hi] that can be read; the rowids that cannot are added to ``lost``."""
    try:
        yield from _read_range(conn, table, columns, lo, hi)
    except _Unreadable:
        if lo == hi:
            lost.append(lo)
            return
        mid = (lo + hi) // 2
        yield from _scan(conn, table, columns, lo, mid, lost)
        yield from _scan(conn, table, columns, mid + 1, hi, lost)


def _copy_table(conn: Connection, out: Connection, table: Table, present: set[str] | None, indexes: list[str],
                kept: dict[str, set[Any]]) -> tuple[dict[str, int | None], set[Any]]:
    counts: dict[str, int | None] = {"recovered": 0, "lost": 0, "unreadable": 0, "damaged": 0, "orphaned": 0}
    keys: set[Any] = set()
    if present is None:  # the table itself is gone from the schema
        counts["lost"] = None
        return counts, keys
    columns = [c for c in table.columns if c.name in present]
    checked = CHECKSUM_COLUMN in present
    pk = [c.name for c in table.primary_key]
    known_max = _max_rowid(conn, table, indexes)
    unreadable: list[int] = []
    highest_read = 0
    lo, empty_after = 1, 0
    batch: list[dict[str, Any]] = []
    while lo <= known_max or empty_after < _EMPTY_RANGES_AFTER:
        hi = lo + CHUNK - 1
        found = 0
        for row in _scan(conn, table, columns, lo, hi, unreadable):
            found += 1
            highest_read = max(highest_read, row.pop("_rowid"))
            values = {c.name: row.get(c.name) for c in table.columns if c.name != CHECKSUM_COLUMN}
            crc = row_checksum(table, values)
            if checked and row.get(CHECKSUM_COLUMN) != crc:
                counts["damaged"] += 1  # type: ignore[operator]
                continue
            if any(values[col] is not None and values[col] not in kept.get(parent, set())
                   for col, parent in _PARENTS.get(table.name, ())):
                counts["orphaned"] += 1  # type: ignore[operator]
                continue
            values[CHECKSUM_COLUMN] = crc
            batch.append(values)
            if len(batch) >= CHUNK:
                _insert(out, table, batch, counts, keys, pk)
                batch = []
        if lo > known_max:
            empty_after = 0 if found else empty_after + 1
        lo = hi + 1
    _insert(out, table, batch, counts, keys, pk)
    end = max(known_max, highest_read)
    counts["unreadable"] = sum(1 for r in unreadable if r <= end)
    counts["lost"] = counts["unreadable"] + counts["damaged"] + counts["orphaned"]  # type: ignore[operator]
    if end == 0 and counts["unreadable"] == 0 and unreadable:  # nothing at all could be read: how much was there is unknown
        counts["unreadable"] = counts["lost"] = None
    return counts, keys


def _mark_lost_events(out: Connection, src: Path) -> None:
    """Fill each recovered session's missing seqs with an ``error`` event saying the event was lost."""
    from datetime import UTC, datetime

    sessions = out.execute(select(SessionRow.id, SessionRow.event_count, SessionRow.started_at)).all()
    events = cast(Table, EventRow.__table__)
    recovered_at = datetime.now(UTC).isoformat()
    for session_id, event_count, started_at in sessions:
        have = {seq: (at, elapsed) for seq, at, elapsed in out.execute(
            select(EventRow.seq, EventRow.at, EventRow.elapsed_s).where(EventRow.session_id == session_id))}
        at, elapsed = started_at, 0.0
        rows = []
        for seq in range(1, event_count + 1):
            if seq in have:
                at, elapsed = have[seq]
                continue
            values = {"session_id": session_id, "seq": seq, "at": at, "elapsed_s": elapsed, "kind": "error", "output": None,
                      "payload": {"lost_in_recovery": True, "source": str(src), "recovered_at": recovered_at,
                                  "reason": "this event could not be read from the damaged store; its time is that "
                                            "of the event before it"}}
            values[CHECKSUM_COLUMN] = row_checksum(events, values)
            rows.append(values)
        if rows:
            out.execute(insert(events), rows)


def _key(values: dict[str, Any], pk: list[str]) -> Any:
    return values[pk[0]] if len(pk) == 1 else tuple(values[k] for k in pk)


def _insert(out: Connection, table: Table, rows: list[dict[str, Any]], counts: dict[str, int | None],
            keys: set[Any], pk: list[str]) -> None:
    if not rows:
        return
    try:
        with out.begin_nested():
            out.execute(insert(table), rows)
        good = rows
    except IntegrityError:  # one of them breaks a constraint: find which, one by one
        good = []
        for row in rows:
            try:
                with out.begin_nested():
                    out.execute(insert(table), [row])
                good.append(row)
            except IntegrityError:
                counts["damaged"] += 1  # type: ignore[operator]
    counts["recovered"] += len(good)  # type: ignore[operator]
    keys.update(_key(r, pk) for r in good)
