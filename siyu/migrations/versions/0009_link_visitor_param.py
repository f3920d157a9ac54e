"""short links: pass the visitor id on to the destination (sy_vid), per link

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 13:40:00.000000

One boolean column with a server default, so existing links keep their behaviour (off).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("short_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pass_visitor_id", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("short_links", schema=None) as batch_op:
        batch_op.drop_column("pass_visitor_id")
