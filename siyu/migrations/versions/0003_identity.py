"""identity graph (One ID)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 11:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}_workspace_id_workspaces"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "identity_persons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.Column("first_event", sa.String(length=200), nullable=True),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("erased_at", siyu.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["merged_into"],
            ["identity_persons.id"],
            name=op.f("fk_identity_persons_merged_into_identity_persons"),
            ondelete="SET NULL",
        ),
        _workspace_fk("identity_persons"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_persons")),
    )
    with op.batch_alter_table("identity_persons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_persons_merged_into"), ["merged_into"], unique=False)
        batch_op.create_index(batch_op.f("ix_identity_persons_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "identity_identifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id_type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("origin_person_id", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Boolean(), nullable=False),
        sa.Column("first_event", sa.String(length=200), nullable=True),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["origin_person_id"],
            ["identity_persons.id"],
            name=op.f("fk_identity_identifiers_origin_person_id_identity_persons"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["identity_persons.id"],
            name=op.f("fk_identity_identifiers_person_id_identity_persons"),
            ondelete="CASCADE",
        ),
        _workspace_fk("identity_identifiers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_identifiers")),
        sa.UniqueConstraint("workspace_id", "id_type", "value", name="uq_identity_identifiers_key"),
    )
    with op.batch_alter_table("identity_identifiers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_identifiers_origin_person_id"), ["origin_person_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_identity_identifiers_person_id"), ["person_id"], unique=False)

    op.create_table(
        "identity_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("survivor_id", sa.Integer(), nullable=False),
        sa.Column("merged_id", sa.Integer(), nullable=False),
        sa.Column("via_type", sa.String(length=32), nullable=False),
        sa.Column("via_value", sa.String(length=255), nullable=False),
        sa.Column("event_ref", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("identity_merges"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_merges")),
    )
    with op.batch_alter_table("identity_merges", schema=None) as batch_op:
        batch_op.create_index("ix_identity_merges_ws_merged", ["workspace_id", "merged_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_identity_merges_survivor_id"), ["survivor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_identity_merges_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "identity_conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("other_person_id", sa.Integer(), nullable=True),
        sa.Column("via_type", sa.String(length=32), nullable=False),
        sa.Column("via_value", sa.String(length=255), nullable=False),
        sa.Column("clash_type", sa.String(length=32), nullable=False),
        sa.Column("event_ref", sa.String(length=200), nullable=True),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("identity_conflicts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_conflicts")),
    )
    with op.batch_alter_table("identity_conflicts", schema=None) as batch_op:
        batch_op.create_index("ix_identity_conflicts_via", ["workspace_id", "via_type", "via_value"], unique=False)
        batch_op.create_index("ix_identity_conflicts_ws_kind", ["workspace_id", "kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_identity_conflicts_person_id"), ["person_id"], unique=False)

    op.create_table(
        "identity_quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id_type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("event_ref", sa.String(length=200), nullable=True),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("identity_quarantine"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_quarantine")),
        sa.UniqueConstraint("workspace_id", "id_type", "value", name="uq_identity_quarantine_key"),
    )
    op.create_table(
        "identity_erased",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("identity_erased"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_erased")),
        sa.UniqueConstraint("workspace_id", "digest", name="uq_identity_erased_digest"),
    )
    op.create_table(
        "identity_type_config",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("is_unique", sa.Boolean(), nullable=False),
        sa.Column("is_weak", sa.Boolean(), nullable=False),
        sa.Column("max_values", sa.Integer(), nullable=False),
        sa.Column("max_people", sa.Integer(), nullable=False),
        sa.Column("blocked_values", sa.JSON(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("identity_type_config"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_type_config")),
        sa.UniqueConstraint("workspace_id", "name", name="uq_identity_type_config_name"),
    )


def downgrade() -> None:
    op.drop_table("identity_type_config")
    op.drop_table("identity_erased")
    op.drop_table("identity_quarantine")
    with op.batch_alter_table("identity_conflicts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_conflicts_person_id"))
        batch_op.drop_index("ix_identity_conflicts_ws_kind")
        batch_op.drop_index("ix_identity_conflicts_via")

    op.drop_table("identity_conflicts")
    with op.batch_alter_table("identity_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_merges_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_identity_merges_survivor_id"))
        batch_op.drop_index("ix_identity_merges_ws_merged")

    op.drop_table("identity_merges")
    with op.batch_alter_table("identity_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_identifiers_person_id"))
        batch_op.drop_index(batch_op.f("ix_identity_identifiers_origin_person_id"))

    op.drop_table("identity_identifiers")
    with op.batch_alter_table("identity_persons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_persons_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_identity_persons_merged_into"))

    op.drop_table("identity_persons")
