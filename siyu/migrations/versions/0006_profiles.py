"""profiles: traits and computed attributes (issue 4)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 13:00:00.000000

Written by hand. Two new tables (traits per person, merge strategies per workspace); computed
attributes are read from the event store at query time and need no table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}_workspace_id_workspaces"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "profile_traits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("observed_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("search_text", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["identity_persons.id"],
            name=op.f("fk_profile_traits_person_id_identity_persons"),
            ondelete="CASCADE",
        ),
        _workspace_fk("profile_traits"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_traits")),
        sa.UniqueConstraint("person_id", "key", name="uq_profile_traits_person_key"),
    )
    with op.batch_alter_table("profile_traits", schema=None) as batch_op:
        batch_op.create_index("ix_profile_traits_search", ["workspace_id", "search_text"], unique=False)

    op.create_table(
        "profile_trait_strategies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("profile_trait_strategies"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_trait_strategies")),
        sa.UniqueConstraint("workspace_id", "key", name="uq_profile_trait_strategies_key"),
    )


def downgrade() -> None:
    op.drop_table("profile_trait_strategies")
    with op.batch_alter_table("profile_traits", schema=None) as batch_op:
        batch_op.drop_index("ix_profile_traits_search")
    op.drop_table("profile_traits")
