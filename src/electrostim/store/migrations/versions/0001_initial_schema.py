"""The initial schema: patients, programs, approved plans, sessions and their events.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Timestamps are ``DateTime(timezone=True)`` (the models wrap it in ``UTCDateTime``);
constraint names follow the models' naming convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
    )
    op.create_table(
        "programs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("first_used_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programs")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_programs_content_hash")),
    )
    op.create_index(op.f("ix_programs_program_id"), "programs", ["program_id"])
    op.create_table(
        "approved_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_ref", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column("patient_profile", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("confirmed_by", sa.String(length=200), nullable=True),
        sa.Column("approved_at", _UTC, nullable=False),
        sa.Column("recorded_at", _UTC, nullable=False),
        sa.CheckConstraint("verdict IN ('ok', 'needs_confirmation')", name=op.f("ck_approved_plans_verdict")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_approved_plans_patient_id_patients")),
        sa.ForeignKeyConstraint(["program_ref"], ["programs.id"], name=op.f("fk_approved_plans_program_ref_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approved_plans")),
    )
    op.create_index(op.f("ix_approved_plans_patient_id"), "approved_plans", ["patient_id"])
    op.create_index(op.f("ix_approved_plans_program_ref"), "approved_plans", ["program_ref"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", _UTC, nullable=False),
        sa.Column("ended_at", _UTC, nullable=True),
        sa.Column("summary", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "state IN ('running', 'completed', 'stopped', 'failed', 'interrupted')", name=op.f("ck_sessions_state")
        ),
        sa.CheckConstraint("event_count >= 0", name=op.f("ck_sessions_event_count")),
        sa.ForeignKeyConstraint(["plan_id"], ["approved_plans.id"], name=op.f("fk_sessions_plan_id_approved_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_index(op.f("ix_sessions_plan_id"), "sessions", ["plan_id"])
    op.create_index("ix_sessions_started_at", "sessions", ["started_at"])
    op.create_index("ix_sessions_state", "sessions", ["state"])
    op.create_table(
        "session_events",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", _UTC, nullable=False),
        sa.Column("elapsed_s", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("output", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('state', 'intensity', 'threshold', 'error', 'dose', 'note')", name=op.f("ck_session_events_kind")
        ),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_session_events_seq")),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name=op.f("fk_session_events_session_id_sessions")),
        sa.PrimaryKeyConstraint("session_id", "seq", name=op.f("pk_session_events")),
    )


def downgrade() -> None:
    op.drop_table("session_events")
    op.drop_index("ix_sessions_state", table_name="sessions")
    op.drop_index("ix_sessions_started_at", table_name="sessions")
    op.drop_index(op.f("ix_sessions_plan_id"), table_name="sessions")
    op.drop_table("sessions")
    op.drop_index(op.f("ix_approved_plans_program_ref"), table_name="approved_plans")
    op.drop_index(op.f("ix_approved_plans_patient_id"), table_name="approved_plans")
    op.drop_table("approved_plans")
    op.drop_index(op.f("ix_programs_program_id"), table_name="programs")
    op.drop_table("programs")
    op.drop_table("patients")
