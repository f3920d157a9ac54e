"""A record of every import run: who imported which file of which kind, when, and what came of it.

Rejected runs (errors found, nothing written) are kept too, so "why are these members missing?" has
an answer; dry runs are not recorded (they change nothing).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime, utcnow


class ImportRun(Base):
    __tablename__ = "import_runs"
    __table_args__ = (Index("ix_import_runs_workspace_id_id", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    file_name: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(8))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # completed | rejected
    rows: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
