"""The tables (SQLAlchemy 2 typed ORM). What callers get back are the schemas in ``_schemas``.

Five tables::

    patients ◄── approved_plans ──► programs
                      ▲
                   sessions ◄── session_events

Every timestamp is UTC (:class:`UTCDateTime`); every JSON column holds plain JSON
(objects, arrays, strings, finite numbers, booleans, null). The migration in
``migrations/versions`` must create exactly this metadata; a test compares them.

Checksums
---------
Every row carries ``crc32``: the CRC-32 of its values (:func:`row_checksum`), set
whenever it is written (ORM rows by the mapper events below, Core inserts and
updates by the store) and compared whenever it is read. SQLite's own checks (``PRAGMA
quick_check``) find damage to the file's structure but not to the bytes of a value
(a changed digit in an event's payload); the checksum finds that. A migration that
adds or changes a column must recompute it for every row.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    event,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, attributes, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "PatientRow",
    "ProgramRow",
    "PlanRow",
    "SessionRow",
    "EventRow",
    "UTCDateTime",
    "SESSION_STATES",
    "END_STATES",
    "EVENT_KINDS",
    "PLAN_VERDICTS",
    "CHECKSUM_COLUMN",
    "TABLES_IN_ORDER",
    "row_checksum",
    "row_values",
]

#: Every state a session can be in; ``running`` until it ends.
SESSION_STATES: tuple[str, ...] = ("running", "completed", "stopped", "failed", "interrupted")
#: The states :meth:`Store.end_session` accepts (``interrupted`` is set only by ``mark_interrupted``).
END_STATES: tuple[str, ...] = ("completed", "stopped", "failed")
#: The kinds of session event.
EVENT_KINDS: tuple[str, ...] = ("state", "intensity", "threshold", "error", "dose", "note")
#: The verdicts an approved plan can carry (a refused assessment cannot be approved).
PLAN_VERDICTS: tuple[str, ...] = ("ok", "needs_confirmation")

#: Constraint names are spelled out so that migrations (and SQLite batch migrations) can name them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamp with time zone``; SQLite, which has no time zones,
    stores the naive UTC time. Either way Python sees an aware ``datetime`` in UTC, and
    naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamps must be timezone-aware (UTC), but got the naive {value.isoformat()}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


#: The column that holds each row's checksum.
CHECKSUM_COLUMN = "crc32"


def _iso_utc(value: datetime) -> str:
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _converter(column_type: Any) -> Callable[[Any], Any] | None:
    """How a column's values look to the checksum: the same whether about to be written or just read."""
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl
    if isinstance(column_type, DateTime):
        return _iso_utc
    if isinstance(column_type, Boolean):
        return bool
    if isinstance(column_type, Float):
        return float
    if isinstance(column_type, Integer):  # BigInteger too
        return int
    return None  # text, and JSON (plain data)


@functools.lru_cache(maxsize=64)
def _checksum_plan(table: Table) -> tuple[tuple[str, str, Callable[[Any], Any] | None], ...]:
    return tuple((c.name, c.key, _converter(c.type)) for c in table.columns if c.name != CHECKSUM_COLUMN)


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def row_checksum(table: Table, values: Mapping[Any, Any]) -> int:
    """The CRC-32 of a row of ``table``: its table name and every value but the checksum's own, by column name.

    Parameters
    ----------
    table : sqlalchemy.Table
    values : mapping
        Column name to value, as Python sees it (aware datetimes, plain JSON data).

    Returns
    -------
    int
        0 <= crc < 2**32.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> t = PatientRow.__table__
    >>> a = row_checksum(t, {"id": "P-1", "created_at": datetime(2026, 1, 1, tzinfo=UTC)})
    >>> a == row_checksum(t, {"id": "P-1", "created_at": datetime(2026, 1, 1)})  # naive means UTC
    True
    >>> a == row_checksum(t, {"id": "P-2", "created_at": datetime(2026, 1, 1, tzinfo=UTC)})
    False
    """
    doc = {}
    for name, _, convert in _checksum_plan(table):
        value = values.get(name)
        doc[name] = value if value is None or convert is None else convert(value)
    return zlib.crc32(_ENCODER.encode([table.name, doc]).encode("utf-8", "surrogatepass"))


def row_values(row: Base) -> dict[str, Any]:
    """An ORM row's values by column name (what :func:`row_checksum` takes)."""
    loaded = row.__dict__
    return {name: loaded[key] if key in loaded else getattr(row, key)
            for name, key, _ in _checksum_plan(row.__table__)}


class PatientRow(Base):
    """A patient, known only by a pseudonymous id."""

    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    crc32: Mapped[int | None] = mapped_column(BigInteger)


class ProgramRow(Base):
    """A program as used, stored once per distinct content (``content_hash``)."""

    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    program_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_used_at: Mapped[datetime] = mapped_column(UTCDateTime())
    crc32: Mapped[int | None] = mapped_column(BigInteger)


class PlanRow(Base):
    """An approved plan: which program, for whom, on which device, and what the safety engine said."""

    __tablename__ = "approved_plans"
    __table_args__ = (CheckConstraint(_in("verdict", PLAN_VERDICTS), name="verdict"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_ref: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), index=True)
    device: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    warnings: Mapped[list[str]] = mapped_column(JSON)
    envelope: Mapped[dict[str, Any]] = mapped_column(JSON)
    patient_profile: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    confirmed: Mapped[bool] = mapped_column(Boolean)
    confirmed_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    crc32: Mapped[int | None] = mapped_column(BigInteger)


class SessionRow(Base):
    """One delivery of a plan. ``event_count`` is the last sequence number given out."""

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint(_in("state", SESSION_STATES), name="state"),
        CheckConstraint("event_count >= 0", name="event_count"),
        Index("ix_sessions_state", "state"),
        Index("ix_sessions_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("approved_plans.id"), index=True)
    device: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    event_count: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    crc32: Mapped[int | None] = mapped_column(BigInteger)


class EventRow(Base):
    """One session event; ``(session_id, seq)`` is its key and ``seq`` runs 1, 2, 3, … without gaps."""

    __tablename__ = "session_events"
    __table_args__ = (
        CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),
        CheckConstraint("seq >= 1", name="seq"),
    )

    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    elapsed_s: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(16))
    output: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    crc32: Mapped[int | None] = mapped_column(BigInteger)


#: The tables, parents before children (the order to copy them in).
TABLES_IN_ORDER: tuple[Table, ...] = tuple(
    row.__table__ for row in (PatientRow, ProgramRow, PlanRow, SessionRow, EventRow)  # type: ignore[misc]
)


@event.listens_for(Base, "before_insert", propagate=True)
def _checksum_before_insert(mapper: Any, connection: Any, target: Base) -> None:
    # rows whose id the database gives out get their checksum after the insert, when the id is known
    values = row_values(target)
    if all(values.get(c.name) is not None for c in target.__table__.primary_key):
        target.crc32 = row_checksum(target.__table__, values)  # type: ignore[attr-defined,arg-type]


@event.listens_for(Base, "after_insert", propagate=True)
def _checksum_after_insert(mapper: Any, connection: Any, target: Base) -> None:
    if target.crc32 is not None:  # type: ignore[attr-defined]
        return
    table: Table = target.__table__  # type: ignore[assignment]
    crc = row_checksum(table, row_values(target))
    connection.execute(update(table).where(*(c == getattr(target, c.key) for c in table.primary_key))
                       .values({CHECKSUM_COLUMN: crc}))
    attributes.set_committed_value(target, "crc32", crc)


@event.listens_for(Base, "before_update", propagate=True)
def _checksum_before_update(mapper: Any, connection: Any, target: Base) -> None:
    target.crc32 = row_checksum(target.__table__, row_values(target))  # type: ignore[attr-defined,arg-type]
