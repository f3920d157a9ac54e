"""identity stitching: keyed digests of erased identifiers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 13:00:00.000000

`identity_erased` kept a plain SHA-256 of (workspace, type, value): anyone holding the table could
find an erased phone number by hashing all of them. Digests are now an HMAC under a random key per
workspace (`identity_secrets`). The values are gone, so each existing digest d becomes HMAC(key, d);
the code computes HMAC(key, SHA-256(...)) for new ones, which is the same thing.

Downgrading cannot turn the HMACs back into plain digests: it is refused while any workspace has
erased identifiers (they would silently link again), and only drops the empty key table otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_secrets",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_identity_secrets_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_identity_secrets")),
    )
    conn = op.get_bind()
    erased = sa.table(
        "identity_erased",
        sa.column("id", sa.Integer),
        sa.column("workspace_id", sa.Integer),
        sa.column("digest", sa.String),
    )
    keys = sa.table(
        "identity_secrets",
        sa.column("workspace_id", sa.Integer),
        sa.column("secret", sa.String),
        sa.column("created_at", siyu.db.UTCDateTime()),
    )
    workspaces = [r[0] for r in conn.execute(sa.select(erased.c.workspace_id).distinct())]
    for ws in workspaces:
        key = secrets.token_hex(32)
        conn.execute(sa.insert(keys).values(workspace_id=ws, secret=key, created_at=siyu.db.utcnow()))
        rows = conn.execute(sa.select(erased.c.id, erased.c.digest).where(erased.c.workspace_id == ws)).all()
        for row_id, old in rows:
            new = hmac.new(bytes.fromhex(key), old.encode(), hashlib.sha256).hexdigest()
            conn.execute(sa.update(erased).where(erased.c.id == row_id).values(digest=new))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT 1 FROM identity_erased LIMIT 1")).first() is not None:
        raise RuntimeError(
            "cannot downgrade below 0005: identity_erased holds keyed digests that the older code cannot "
            "match, so erased people would be linked again"
        )
    op.drop_table("identity_secrets")
