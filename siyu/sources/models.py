"""A source belongs to a workspace and names one touchpoint; its write key authenticates tracking calls."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime, utcnow

SOURCE_KINDS = (
    "website",
    "mini_program",
    "official_account",
    "store",
    "crm",
    "short_links",
    "server",
    "other",
)
# Touchpoints that send from the visitor's own device: without `context.ip`, the request's address
# is the visitor's. Everything else sends from a server, whose address says nothing about anyone.
DEVICE_KINDS = frozenset({"website", "mini_program"})


class Source(Base):
    """Only a SHA-256 of the write key is stored (it is random and long); the prefix identifies it."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    write_key_prefix: Mapped[str] = mapped_column(String(16))
    write_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
