"""Storage of traits: one row per person and trait key, plus per-workspace merge strategies.

A trait row always belongs to the person's *current* super ID: merges move or combine rows, so a
profile is one indexed read. `observed_at` is the timestamp of the event that set the value (not
its arrival), which is what the `latest` and `first` strategies compare.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime, utcnow


class ProfileTrait(Base):
    __tablename__ = "profile_traits"
    __table_args__ = (
        UniqueConstraint("person_id", "key", name="uq_profile_traits_person_key"),
        Index("ix_profile_traits_search", "workspace_id", "search_text"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("identity_persons.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    strategy: Mapped[str] = mapped_column(String(16))
    # Provenance: the source and event that set (or last added to) the value, and the event's time.
    source_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Lower-cased text of a scalar value, for the console's search ("who is 张伟?").
    search_text: Mapped[str | None] = mapped_column(String(255), nullable=True)


class ProfileTraitStrategy(Base):
    """A workspace's choice of merge strategy for one trait key (the defaults need no row)."""

    __tablename__ = "profile_trait_strategies"
    __table_args__ = (UniqueConstraint("workspace_id", "key", name="uq_profile_trait_strategies_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    strategy: Mapped[str] = mapped_column(String(16))
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
