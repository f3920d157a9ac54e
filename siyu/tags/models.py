"""Storage of tags (标签): definitions with their versions, who holds each tag now, and what changed when.

A tag assignment always names the person's *current* super ID (merges move them, see
siyu.tags.listener). Assignments and history hold plain super IDs, no foreign key to the identity
graph: like consent records they are about a person, and an erasure deletes them explicitly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime, utcnow


class TagDefinition(Base):
    """A tag of a workspace. `spec` is the current version's definition (see siyu.tags.definitions)."""

    __tablename__ = "tag_definitions"
    __table_args__ = (UniqueConstraint("workspace_id", "code", name="uq_tag_definitions_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    kind: Mapped[str] = mapped_column(String(8))  # fact | rule | model
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # A rule tag that is one event count (see siyu.tags.definitions.streaming_rule): kept current as events arrive.
    streaming: Mapped[bool] = mapped_column(Boolean, default=False)
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TagVersion(Base):
    """Every definition a tag has had: version 1 at creation, one more per change of its name or spec."""

    __tablename__ = "tag_versions"
    __table_args__ = (UniqueConstraint("tag_id", "version", name="uq_tag_versions_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag_definitions.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TagAssignment(Base):
    """A person holds a tag now, with a value (a fact or model tag's value; NULL for a rule tag)."""

    __tablename__ = "tag_assignments"
    __table_args__ = (
        UniqueConstraint("tag_id", "super_id", name="uq_tag_assignments_person"),
        Index("ix_tag_assignments_person", "workspace_id", "super_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag_definitions.id", ondelete="CASCADE"))
    super_id: Mapped[int] = mapped_column(Integer)
    value: Mapped[str | None] = mapped_column(String(200), nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TagHistory(Base):
    """Append-only: a person gained, lost or changed the value of a tag, when, and why."""

    __tablename__ = "tag_history"
    __table_args__ = (
        Index("ix_tag_history_person", "workspace_id", "super_id", "id"),
        Index("ix_tag_history_tag", "tag_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag_definitions.id", ondelete="CASCADE"))
    super_id: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(8))  # gained | lost | changed
    value: Mapped[str | None] = mapped_column(String(200), nullable=True)
    previous: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cause: Mapped[str] = mapped_column(String(16))  # schedule | manual | stream | model | merge
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
