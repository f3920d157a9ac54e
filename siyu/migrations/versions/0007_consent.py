"""consent and subject-rights audit (issue 4)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 13:00:00.000000

Placeholder in the revision chain; filled in by the work that owns it.
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
