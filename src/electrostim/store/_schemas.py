"""What the store gives back: pydantic records, kept apart from the tables.

The records are frozen snapshots; changing one changes nothing in the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SessionState",
    "EventKind",
    "PatientRecord",
    "ProgramRecord",
    "PlanRecord",
    "SessionRecord",
    "EventRecord",
    "SessionDetail",
]

SessionState = Literal["running", "completed", "stopped", "failed", "interrupted"]
EventKind = Literal["state", "intensity", "threshold", "error", "dose", "note"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)


class PatientRecord(_Record):
    """A patient known by a pseudonymous id."""

    id: str
    created_at: datetime


class ProgramRecord(_Record):
    """A program as it was used; one record per distinct content.

    ``program_id`` is the program's own id (e.g. ``knee-oa-tens``); ``id`` is the
    store's number for this exact content, whose SHA-256 is ``content_hash``.
    """

    id: int
    content_hash: str
    program_id: str
    name: str
    document: dict[str, Any]
    first_used_at: datetime

    def to_program(self) -> Any:
        """The :class:`~electrostim.program.Program` again, validated."""
        from ..program import validate_program

        return validate_program(self.document, source=f"stored program {self.id} ({self.program_id})")


class PlanRecord(_Record):
    """An approved plan as recorded."""

    id: int
    program_ref: int
    program_id: str
    patient_id: str | None
    device: str
    verdict: Literal["ok", "needs_confirmation"]
    reasons: list[dict[str, Any]]
    warnings: list[str]
    envelope: dict[str, Any]
    patient_profile: dict[str, Any] | None
    confirmed: bool
    confirmed_by: str | None
    approved_at: datetime
    recorded_at: datetime


class SessionRecord(_Record):
    """A session without its events: who, what, where, when and how it ended.

    ``verdict`` is its plan's safety verdict (``ok`` or ``needs_confirmation``) and
    ``confirmed_by`` who confirmed a plan that needed it; ``event_count`` is the
    sequence number of its last event; ``host`` and ``pid`` name the process that ran it.
    """

    id: int
    plan_id: int
    patient_id: str | None
    program_id: str
    verdict: Literal["ok", "needs_confirmation"]
    confirmed_by: str | None
    device: str
    state: SessionState
    started_at: datetime
    ended_at: datetime | None
    summary: dict[str, Any] | None
    event_count: int
    host: str
    pid: int

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end; None while running."""
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()


class EventRecord(_Record):
    """One event of a session.

    ``seq`` counts 1, 2, 3, … within the session, without gaps; ``at`` is the UTC
    time it was recorded and ``elapsed_s`` the seconds since the session started.
    """

    session_id: int
    seq: int = Field(ge=1)
    at: datetime
    elapsed_s: float
    kind: EventKind
    output: str | None
    payload: dict[str, Any]


class SessionDetail(SessionRecord):
    """A session with its plan and every event, in order."""

    plan: PlanRecord
    events: list[EventRecord]
