"""Row checksums: every row gets ``crc32``, the CRC-32 of its values, computed here for the rows already there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

SQLite checks the structure of its file but not the bytes of a value; the checksum
lets the store tell a damaged row from a good one when it reads it (see
``electrostim.store._tables``). The tables below are the 0001 schema as it was,
frozen here, so that this migration keeps working when the models change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from electrostim.store._tables import row_checksum

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)
_meta = sa.MetaData()
_TABLES = (
    sa.Table("patients", _meta, sa.Column("id", sa.String(64), primary_key=True), sa.Column("created_at", _UTC)),
    sa.Table("programs", _meta, sa.Column("id", sa.Integer(), primary_key=True), sa.Column("content_hash", sa.String(64)),
             sa.Column("program_id", sa.String(64)), sa.Column("name", sa.String(200)), sa.Column("document", sa.JSON()),
             sa.Column("first_used_at", _UTC)),
    sa.Table("approved_plans", _meta, sa.Column("id", sa.Integer(), primary_key=True), sa.Column("program_ref", sa.Integer()),
             sa.Column("patient_id", sa.String(64)), sa.Column("device", sa.String(64)), sa.Column("verdict", sa.String(32)),
             sa.Column("reasons", sa.JSON()), sa.Column("warnings", sa.JSON()), sa.Column("envelope", sa.JSON()),
             sa.Column("patient_profile", sa.JSON(none_as_null=True)), sa.Column("confirmed", sa.Boolean()),
             sa.Column("confirmed_by", sa.String(200)), sa.Column("approved_at", _UTC), sa.Column("recorded_at", _UTC)),
    sa.Table("sessions", _meta, sa.Column("id", sa.Integer(), primary_key=True), sa.Column("plan_id", sa.Integer()),
             sa.Column("device", sa.String(200)), sa.Column("state", sa.String(16)), sa.Column("started_at", _UTC),
             sa.Column("ended_at", _UTC), sa.Column("summary", sa.JSON(none_as_null=True)),
             sa.Column("event_count", sa.Integer()), sa.Column("host", sa.String(255)), sa.Column("pid", sa.Integer())),
    sa.Table("session_events", _meta, sa.Column("session_id", sa.Integer(), primary_key=True),
             sa.Column("seq", sa.Integer(), primary_key=True), sa.Column("at", _UTC), sa.Column("elapsed_s", sa.Float()),
             sa.Column("kind", sa.String(16)), sa.Column("output", sa.String(64)), sa.Column("payload", sa.JSON())),
)
_BATCH = 1000


def upgrade() -> None:
    conn = op.get_bind()
    for table in _TABLES:
        op.add_column(table.name, sa.Column("crc32", sa.BigInteger(), nullable=True))
        crc = sa.Table(table.name, sa.MetaData(), *(sa.Column(c.name, c.type, primary_key=c.primary_key) for c in table.columns),
                       sa.Column("crc32", sa.BigInteger()))
        pk = list(table.primary_key)
        stmt = sa.update(crc).where(*(crc.c[c.name] == sa.bindparam(f"pk_{c.name}") for c in pk)).values(crc32=sa.bindparam("crc"))
        batch: list[dict] = []
        for row in conn.execute(sa.select(table)).mappings().all():  # all first: no cursor open while updating
            batch.append({"crc": row_checksum(table, row), **{f"pk_{c.name}": row[c.name] for c in pk}})
            if len(batch) >= _BATCH:
                conn.execute(stmt, batch)
                batch = []
        if batch:
            conn.execute(stmt, batch)


def downgrade() -> None:
    for table in reversed(_TABLES):
        with op.batch_alter_table(table.name) as batch_op:
            batch_op.drop_column("crc32")
