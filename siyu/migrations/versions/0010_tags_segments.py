"""tags and segments (issue 5): tag definitions, versions, assignments and history; segments, their
versions, members, membership history, static snapshots; the audience export log

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 14:00:00.000000

Written by hand. New tables only, no change to existing ones, so it runs the same on SQLite and
PostgreSQL. Per-person facts for fast segment counts live in the event store (DuckDB), not here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}_workspace_id_workspaces"), ondelete="CASCADE"
    )


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _index(table: str, name: str, columns: list[str]) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(name, columns, unique=False)


def upgrade() -> None:
    op.create_table(
        "tag_definitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("streaming", sa.Boolean(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("computed_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("tag_definitions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_definitions")),
        sa.UniqueConstraint("workspace_id", "code", name="uq_tag_definitions_code"),
    )
    op.create_table(
        "tag_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        _fk("tag_versions", "tag_id", "tag_definitions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_versions")),
        sa.UniqueConstraint("tag_id", "version", name="uq_tag_versions_version"),
    )
    op.create_table(
        "tag_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("super_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("since", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("tag_assignments"),
        _fk("tag_assignments", "tag_id", "tag_definitions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_assignments")),
        sa.UniqueConstraint("tag_id", "super_id", name="uq_tag_assignments_person"),
    )
    _index("tag_assignments", "ix_tag_assignments_person", ["workspace_id", "super_id"])
    op.create_table(
        "tag_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("super_id", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=True),
        sa.Column("previous", sa.String(length=200), nullable=True),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("tag_history"),
        _fk("tag_history", "tag_id", "tag_definitions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_history")),
    )
    _index("tag_history", "ix_tag_history_person", ["workspace_id", "super_id", "id"])
    _index("tag_history", "ix_tag_history_tag", ["tag_id", "id"])

    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("computed_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("segments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("workspace_id", "name", name="uq_segments_name"),
    )
    op.create_table(
        "segment_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        _fk("segment_versions", "segment_id", "segments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_versions")),
        sa.UniqueConstraint("segment_id", "version", name="uq_segment_versions_version"),
    )
    op.create_table(
        "segment_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("super_id", sa.Integer(), nullable=False),
        sa.Column("since", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("segment_members"),
        _fk("segment_members", "segment_id", "segments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_members")),
        sa.UniqueConstraint("segment_id", "super_id", name="uq_segment_members_person"),
    )
    _index("segment_members", "ix_segment_members_person", ["workspace_id", "super_id"])
    op.create_table(
        "segment_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("super_id", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("segment_history"),
        _fk("segment_history", "segment_id", "segments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_history")),
    )
    _index("segment_history", "ix_segment_history_segment", ["segment_id", "id"])
    _index("segment_history", "ix_segment_history_person", ["workspace_id", "super_id"])
    op.create_table(
        "segment_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("segment_snapshots"),
        _fk("segment_snapshots", "segment_id", "segments", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_snapshots")),
    )
    _index("segment_snapshots", "ix_segment_snapshots_ws", ["workspace_id", "id"])
    op.create_table(
        "segment_snapshot_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("super_id", sa.Integer(), nullable=False),
        _workspace_fk("segment_snapshot_members"),
        _fk("segment_snapshot_members", "snapshot_id", "segment_snapshots"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_snapshot_members")),
        sa.UniqueConstraint("snapshot_id", "super_id", name="uq_segment_snapshot_members_person"),
    )
    _index("segment_snapshot_members", "ix_segment_snapshot_members_person", ["workspace_id", "super_id"])
    op.create_table(
        "audience_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("snapshot_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("id_type", sa.String(length=32), nullable=False),
        sa.Column("hash", sa.String(length=8), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("exported", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("audience_exports"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audience_exports")),
    )
    _index("audience_exports", "ix_audience_exports_ws", ["workspace_id", "id"])


def downgrade() -> None:
    for table, indexes in (
        ("audience_exports", ["ix_audience_exports_ws"]),
        ("segment_snapshot_members", ["ix_segment_snapshot_members_person"]),
        ("segment_snapshots", ["ix_segment_snapshots_ws"]),
        ("segment_history", ["ix_segment_history_person", "ix_segment_history_segment"]),
        ("segment_members", ["ix_segment_members_person"]),
        ("segment_versions", []),
        ("segments", []),
        ("tag_history", ["ix_tag_history_tag", "ix_tag_history_person"]),
        ("tag_assignments", ["ix_tag_assignments_person"]),
        ("tag_versions", []),
        ("tag_definitions", []),
    ):
        if indexes:
            with op.batch_alter_table(table, schema=None) as batch_op:
                for name in indexes:
                    batch_op.drop_index(name)
        op.drop_table(table)
