"""Storage of purposes and consent records (migration 0007).

Records hold plain super IDs, no foreign keys: like the identity merge log they are history, and an
erasure deletes them explicitly (siyu.privacy) rather than by cascade.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime, utcnow


class ConsentPurpose(Base):
    """A workspace's own purpose, or its override of a default one (renamed or disabled)."""

    __tablename__ = "consent_purposes"
    __table_args__ = (UniqueConstraint("workspace_id", "code", name="uq_consent_purposes_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentRecord(Base):
    """One statement of one person about one purpose. Never updated; deleted only by an erasure.

    `recorded_at` is when the person said it (an event's time for tracking), `created_at` when we
    stored it; the current state is the latest by (`recorded_at`, `id`). `event_id` names the
    tracked event that carried it, so replaying that event records nothing new.
    """

    __tablename__ = "consent_records"
    __table_args__ = (
        Index("ix_consent_records_person", "workspace_id", "super_id", "purpose"),
        Index("ix_consent_records_event", "workspace_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    super_id: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    evidence: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(200), default="")
    event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentIssue(Base):
    """Consent the tracking API could not record: an unknown or disabled purpose code, or a value that
    is not true/false. Counted per code, so SDK mistakes show up on the privacy page instead of
    inventing purposes nobody configured."""

    __tablename__ = "consent_issues"
    __table_args__ = (UniqueConstraint("workspace_id", "code", "problem", name="uq_consent_issues_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    problem: Mapped[str] = mapped_column(String(16))  # 'unknown' | 'disabled' | 'not_boolean'
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
