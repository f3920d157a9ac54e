"""consent and subject-rights audit (issue 4)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 13:00:00.000000

Written by hand. Four new tables, no change to existing ones: purposes (overrides of the defaults
and custom purposes), append-only consent records, consent the tracking API could not record, and
the subject-rights audit log.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}_workspace_id_workspaces"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "consent_purposes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("consent_purposes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_purposes")),
        sa.UniqueConstraint("workspace_id", "code", name="uq_consent_purposes_code"),
    )
    op.create_table(
        "consent_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("super_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("evidence", sa.String(length=500), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("consent_records"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_records")),
    )
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.create_index("ix_consent_records_person", ["workspace_id", "super_id", "purpose"], unique=False)
        batch_op.create_index("ix_consent_records_event", ["workspace_id", "event_id"], unique=False)

    op.create_table(
        "consent_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("problem", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_event_id", sa.String(length=200), nullable=True),
        sa.Column("first_seen", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("last_seen", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("consent_issues"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_issues")),
        sa.UniqueConstraint("workspace_id", "code", "problem", name="uq_consent_issues_code"),
    )
    op.create_table(
        "privacy_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("super_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("privacy_audit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_audit")),
    )
    with op.batch_alter_table("privacy_audit", schema=None) as batch_op:
        batch_op.create_index("ix_privacy_audit_ws", ["workspace_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("privacy_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_privacy_audit_ws")
    op.drop_table("privacy_audit")
    op.drop_table("consent_issues")
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_records_event")
        batch_op.drop_index("ix_consent_records_person")
    op.drop_table("consent_records")
    op.drop_table("consent_purposes")
