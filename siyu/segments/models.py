"""Storage of segments (人群): definitions and versions, members now, membership history, static
snapshots, and the log of audience exports (人群包).

Members and history hold plain super IDs (no foreign key to the identity graph); merges and erasures
are followed explicitly (siyu.tags.listener).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime, utcnow


class Segment(Base):
    """A dynamic segment: its rule tree is recomputed on the schedule and on demand."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_segments_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    rule: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentVersion(Base):
    __tablename__ = "segment_versions"
    __table_args__ = (UniqueConstraint("segment_id", "version", name="uq_segment_versions_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    rule: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentMember(Base):
    __tablename__ = "segment_members"
    __table_args__ = (
        UniqueConstraint("segment_id", "super_id", name="uq_segment_members_person"),
        Index("ix_segment_members_person", "workspace_id", "super_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    super_id: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentHistory(Base):
    """Append-only: a person joined or left a segment, and when."""

    __tablename__ = "segment_history"
    __table_args__ = (
        Index("ix_segment_history_segment", "segment_id", "id"),
        Index("ix_segment_history_person", "workspace_id", "super_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    super_id: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(8))  # joined | left
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentSnapshot(Base):
    """A static segment: the members of a segment at one moment, frozen (the rule is kept for the record)."""

    __tablename__ = "segment_snapshots"
    __table_args__ = (Index("ix_segment_snapshots_ws", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"), nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    rule: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SnapshotMember(Base):
    __tablename__ = "segment_snapshot_members"
    __table_args__ = (
        UniqueConstraint("snapshot_id", "super_id", name="uq_segment_snapshot_members_person"),
        Index("ix_segment_snapshot_members_person", "workspace_id", "super_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("segment_snapshots.id", ondelete="CASCADE"))
    super_id: Mapped[int] = mapped_column(Integer)


class AudienceExport(Base):
    """Every audience export (人群包): what, for whom, how hashed, how many people were left out for lack
    of data-sharing consent. The file itself is not kept."""

    __tablename__ = "audience_exports"
    __table_args__ = (Index("ix_audience_exports_ws", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    segment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    snapshot_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    id_type: Mapped[str] = mapped_column(String(32))  # phone | device_id
    hash: Mapped[str] = mapped_column(String(8))  # md5 | sha256
    members: Mapped[int] = mapped_column(Integer)  # people in the segment or snapshot
    refused: Mapped[int] = mapped_column(Integer)  # of them, without data-sharing consent: left out
    exported: Mapped[int] = mapped_column(Integer)  # people with at least one line in the file
    rows: Mapped[int] = mapped_column(Integer)  # lines (one per identifier)
    actor: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
