"""Short links and their tags. A link is never deleted: it is archived, its clicks stay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from siyu.db import Base, UTCDateTime, utcnow


class ShortLink(Base):
    __tablename__ = "short_links"
    __table_args__ = (
        UniqueConstraint("hostname", "slug", name="uq_short_links_host_slug"),
        Index("ix_short_links_ws_created", "workspace_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    # The host it is served on (a Domain's hostname). Stored by value so the redirect needs one lookup.
    hostname: Mapped[str] = mapped_column(String(253))
    slug: Mapped[str] = mapped_column(String(64))
    destination_url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(String(500), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    redirect_status: Mapped[int] = mapped_column(Integer, default=302)
    forward_query: Mapped[bool] = mapped_column(Boolean, default=True)
    # Append the visitor id (sy_vid=...) to the destination, so the landing page or mini program
    # can report it (Segment `context.externalIds` type visitor_cookie) and One ID joins the click.
    pass_visitor_id: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    utm: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    max_clicks: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fallback_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    anti_block_platforms: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_platforms: Mapped[list[str]] = mapped_column(JSON, default=list)
    blocked_platforms: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A personal link, minted for one member for 1-to-1 outreach: clicks are attributed to them.
    person_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Monotonic change counter: redirect caches in other processes poll it to drop stale entries.
    change_seq: Mapped[int] = mapped_column(Integer, default=0, index=True)

    tags: Mapped[list[Tag]] = relationship(secondary="link_tags", lazy="selectin", order_by="Tag.name")


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))


class LinkTag(Base):
    __tablename__ = "link_tags"

    link_id: Mapped[int] = mapped_column(ForeignKey("short_links.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
