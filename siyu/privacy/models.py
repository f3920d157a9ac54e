"""The subject-rights audit log (migration 0007): who exported or erased which super ID, when, and how much.

It must outlive the data it talks about, so it holds no personal data beyond the super ID: actors are
`user:<id>`, `key:<name>` or `cli`, and `counts` are numbers only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime, utcnow


class PrivacyAudit(Base):
    __tablename__ = "privacy_audit"
    __table_args__ = (Index("ix_privacy_audit_ws", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))  # 'export' | 'erase'
    super_id: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
