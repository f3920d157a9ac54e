"""Storage of the customer-value results (客户价值): settings, runs, per-person values and what they rest on.

A run (siyu.value.service) recomputes everything for a workspace from the event store and replaces
the workspace's rows here in one SQL transaction, so every page, API call and CLI command reads one
consistent result without touching DuckDB — and the CLI can read them while the server holds the
event store. Rows hold plain super IDs (like tag assignments): they are about a person, derived, and
replaced by the next run; an erased person disappears from them then.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime, utcnow


class ValueSettings(Base):
    """Per workspace: the RFM window, pyramid method, value-score weights, KOC count and share landing page."""

    __tablename__ = "value_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    window_days: Mapped[int] = mapped_column(Integer, default=365)
    pyramid_method: Mapped[str] = mapped_column(String(16), default="revenue_share")
    commercial_weight: Mapped[float] = mapped_column(Float, default=0.3)
    social_weight: Mapped[float] = mapped_column(Float, default=0.7)
    koc_top: Mapped[int] = mapped_column(Integer, default=20)
    share_url: Mapped[str] = mapped_column(Text, default="")
    utc_offset_hours: Mapped[float] = mapped_column(Float, default=8.0)
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ValueRun(Base):
    """One computation: queued → running → succeeded | failed, with what it found (`summary`)."""

    __tablename__ = "value_runs"
    __table_args__ = (Index("ix_value_runs_workspace", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # queued | running | succeeded | failed
    cause: Mapped[str] = mapped_column(String(16))  # schedule | manual | demo
    requested_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    persons: Mapped[int] = mapped_column(Integer, default=0)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")


class ValuePerson(Base):
    """A person's value as of the workspace's last run. RFM columns are for the window (NULL when the
    person did not order in it); order/feature columns cover all history; CLV columns are NULL when
    the fit was not possible; social columns are 0 for people outside the referral graph."""

    __tablename__ = "value_persons"
    __table_args__ = (
        Index("ix_value_persons_segment", "workspace_id", "rfm_segment"),
        Index("ix_value_persons_score", "workspace_id", "value_score"),
    )

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    super_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # RFM in the window
    recency_days: Mapped[float | None] = mapped_column(Float, nullable=True)
    frequency: Mapped[int | None] = mapped_column(Integer, nullable=True)
    monetary: Mapped[float | None] = mapped_column(Float, nullable=True)
    r_score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    f_score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    m_score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rfm_segment: Mapped[str | None] = mapped_column(String(32), nullable=True)
    value_tier: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # all history (the features clusters and lookalike learn from)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    revenue: Mapped[float] = mapped_column(Float, default=0.0)
    average_order_value: Mapped[float] = mapped_column(Float, default=0.0)
    days_since_order: Mapped[float | None] = mapped_column(Float, nullable=True)
    tenure_days: Mapped[float | None] = mapped_column(Float, nullable=True)
    categories: Mapped[int] = mapped_column(Integer, default=0)
    active_days: Mapped[int] = mapped_column(Integer, default=0)
    # CLV (BG/NBD + Gamma-Gamma) and the model tags from it
    p_alive: Mapped[float | None] = mapped_column(Float, nullable=True)
    purchases_30d: Mapped[float | None] = mapped_column(Float, nullable=True)
    purchases_90d: Mapped[float | None] = mapped_column(Float, nullable=True)
    expected_order_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    clv: Mapped[float | None] = mapped_column(Float, nullable=True)
    churn_risk: Mapped[str | None] = mapped_column(String(16), nullable=True)
    predicted_value: Mapped[str | None] = mapped_column(String(16), nullable=True)
    purchase_intent: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # clusters and repurchase (the most pressing status over the person's categories)
    cluster: Mapped[int | None] = mapped_column(Integer, nullable=True)
    repurchase_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    next_purchase: Mapped[date | None] = mapped_column(Date, nullable=True)
    # social value: referral (fission) tree, PageRank influence, combined value score
    referrer: Mapped[int | None] = mapped_column(Integer, nullable=True)
    depth: Mapped[int | None] = mapped_column(Integer, nullable=True)
    direct_referrals: Mapped[int] = mapped_column(Integer, default=0)
    descendants: Mapped[int] = mapped_column(Integer, default=0)
    pagerank: Mapped[float] = mapped_column(Float, default=0.0)
    commercial_value: Mapped[float] = mapped_column(Float, default=0.0)
    commercial_score: Mapped[float] = mapped_column(Float, default=0.0)
    social_score: Mapped[float] = mapped_column(Float, default=0.0)
    value_score: Mapped[float] = mapped_column(Float, default=0.0)
    is_koc: Mapped[bool] = mapped_column(Boolean, default=False)


class ValueRepurchase(Base):
    """Repurchase cycle (复购周期) per person and product category."""

    __tablename__ = "value_repurchase"
    __table_args__ = (
        Index("ix_value_repurchase_status", "workspace_id", "status", "next_expected"),
        Index("ix_value_repurchase_person", "workspace_id", "super_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    super_id: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(200))
    purchases: Mapped[int] = mapped_column(Integer)
    last_purchase: Mapped[date] = mapped_column(Date)
    interval_days: Mapped[float | None] = mapped_column(Float, nullable=True)
    interval_source: Mapped[str | None] = mapped_column(String(16), nullable=True)  # person | category
    next_expected: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # not_yet | due | overdue | unknown


class ValueProduct(Base):
    """A product seen in order lines: its name and category for display, how many orders hold it."""

    __tablename__ = "value_products"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(200), default="")
    orders: Mapped[int] = mapped_column(Integer, default=0)


class ValueRule(Base):
    """An association rule (关联规则) {first[, second]} → consequent, best lift first (`rank`)."""

    __tablename__ = "value_rules"
    __table_args__ = (
        Index("ix_value_rules_rank", "workspace_id", "rank"),
        Index("ix_value_rules_first", "workspace_id", "first"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    first: Mapped[str] = mapped_column(String(200))
    second: Mapped[str | None] = mapped_column(String(200), nullable=True)
    consequent: Mapped[str] = mapped_column(String(200))
    orders: Mapped[int] = mapped_column(Integer)
    support: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    lift: Mapped[float] = mapped_column(Float)


class ValueRecommendation(Base):
    """Products a person has not bought, by the best confidence of a rule whose left side they bought."""

    __tablename__ = "value_recommendations"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    super_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    product_id: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)


class ShareLink(Base):
    """A person's personal share link (专属分享链接): whoever first arrives through it and later identifies
    was referred by the owner. A person has one active link; archived ones stay here, because the
    people who came through them were still referred."""

    __tablename__ = "value_share_links"
    __table_args__ = (
        UniqueConstraint("link_id", name="uq_value_share_links_link"),
        Index("ix_value_share_links_person", "workspace_id", "super_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    super_id: Mapped[int] = mapped_column(Integer)
    link_id: Mapped[int] = mapped_column(ForeignKey("short_links.id", ondelete="CASCADE"))
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Referral(Base):
    """A referral edge (推荐关系) referrer → referred, as of the last run: the referred person's first touch
    was a click on the referrer's share link (`at`)."""

    __tablename__ = "value_referrals"
    __table_args__ = (
        UniqueConstraint("workspace_id", "referred", name="uq_value_referrals_referred"),
        Index("ix_value_referrals_referrer", "workspace_id", "referrer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    referrer: Mapped[int] = mapped_column(Integer)
    referred: Mapped[int] = mapped_column(Integer)
    link_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Lookalike(Base):
    """A lookalike audience (相似人群) built from a seed segment, saved as a new segment."""

    __tablename__ = "value_lookalikes"
    __table_args__ = (Index("ix_value_lookalikes_workspace", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    seed_segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"), nullable=True)
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"), nullable=True)
    seed_name: Mapped[str] = mapped_column(String(100), default="")
    tag_code: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str] = mapped_column(String(16), default="logistic")
    top_n: Mapped[int | None] = mapped_column(Integer, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    seeds: Mapped[int] = mapped_column(Integer, default=0)
    candidates: Mapped[int] = mapped_column(Integer, default=0)
    audience: Mapped[int] = mapped_column(Integer, default=0)
    auc: Mapped[float] = mapped_column(Float, default=0.0)
    features: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
