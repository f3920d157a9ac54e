"""Storage of the identity graph: persons (super IDs, 祖ID) and the identifiers (子ID) they hold.

An identifier row always points at the *current* super ID (`person_id`), so a lookup is one index
probe; `origin_person_id` remembers which person it first joined, which is what unmerge splits by.
The merge log and conflicts are history: plain ids, no foreign keys, never updated.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime, utcnow


class IdentityPerson(Base):
    """A super ID. Absorbed persons keep their row with `merged_into` set, so old ids still resolve."""

    __tablename__ = "identity_persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    merged_into: Mapped[int | None] = mapped_column(
        ForeignKey("identity_persons.id", ondelete="SET NULL"), nullable=True, index=True
    )
    first_event: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IdentityIdentifier(Base):
    """One (type, value) of a workspace, held by exactly one person."""

    __tablename__ = "identity_identifiers"
    __table_args__ = (UniqueConstraint("workspace_id", "id_type", "value", name="uq_identity_identifiers_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    id_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(255))
    person_id: Mapped[int] = mapped_column(ForeignKey("identity_persons.id", ondelete="CASCADE"), index=True)
    origin_person_id: Mapped[int] = mapped_column(ForeignKey("identity_persons.id", ondelete="CASCADE"), index=True)
    # Shared by too many people: still listed under its first owner, but it no longer links anyone.
    quarantined: Mapped[bool] = mapped_column(Boolean, default=False)
    first_event: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdentityMerge(Base):
    """Append-only log: `merged_id` was merged into (or, action 'unmerge', split back out of) `survivor_id`."""

    __tablename__ = "identity_merges"
    __table_args__ = (Index("ix_identity_merges_ws_merged", "workspace_id", "merged_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    survivor_id: Mapped[int] = mapped_column(Integer, index=True)
    merged_id: Mapped[int] = mapped_column(Integer)
    via_type: Mapped[str] = mapped_column(String(32), default="")
    via_value: Mapped[str] = mapped_column(String(255), default="")
    event_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    actor: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdentityConflict(Base):
    """A link that was refused: `via` would have joined `other_person_id` to `person_id`, but a guard rail said no.

    kind: 'unique' (two values of a unique type), 'cap' (too many values of a type), 'kept_apart'
    (the two were unmerged by hand), or 'split' (the record of such an unmerge). `other_person_id`
    is empty when the refused identifier was new (e.g. a second phone number for one person).
    """

    __tablename__ = "identity_conflicts"
    __table_args__ = (
        Index("ix_identity_conflicts_via", "workspace_id", "via_type", "via_value"),
        Index("ix_identity_conflicts_ws_kind", "workspace_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[int] = mapped_column(Integer, index=True)
    other_person_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    via_type: Mapped[str] = mapped_column(String(32))
    via_value: Mapped[str] = mapped_column(String(255))
    clash_type: Mapped[str] = mapped_column(String(32), default="")
    event_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdentityQuarantine(Base):
    """A value that touched more people than its type allows (a shop tablet, a family PC's cookie)."""

    __tablename__ = "identity_quarantine"
    __table_args__ = (UniqueConstraint("workspace_id", "id_type", "value", name="uq_identity_quarantine_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    id_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(255))
    people: Mapped[int] = mapped_column(Integer)
    event_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdentityErased(Base):
    """Identifiers of erased persons, kept only as a digest, so that they are never linked again."""

    __tablename__ = "identity_erased"
    __table_args__ = (UniqueConstraint("workspace_id", "digest", name="uq_identity_erased_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64), default="erasure")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdentityTypeConfig(Base):
    """A workspace's override of a default identifier type, or a custom type (e.g. 'crm_id')."""

    __tablename__ = "identity_type_config"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_identity_type_config_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer)
    is_unique: Mapped[bool] = mapped_column(Boolean, default=False)
    is_weak: Mapped[bool] = mapped_column(Boolean, default=False)
    max_values: Mapped[int] = mapped_column(Integer)
    max_people: Mapped[int] = mapped_column(Integer)
    blocked_values: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdentitySecret(Base):
    """A workspace's key for the digests of erased identifiers (`identity_erased`).

    A plain hash of a phone number is reversed by hashing every possible number; an HMAC under a
    random per-workspace key is not, unless the key leaks too."""

    __tablename__ = "identity_secrets"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))  # 32 random bytes, hex
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
