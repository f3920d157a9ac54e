"""Workspace invitations: an owner invites an e-mail address with a role; the invitee opens a one-time link.

Only a SHA-256 of the link's token is stored (like API keys), so a database dump cannot be used to join a
workspace. An invitation is good for one acceptance within `INVITATION_TTL`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from siyu.db import Base, UTCDateTime, utcnow
from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.security import hash_token, new_token
from siyu.workspaces.models import ROLES, Membership, User
from siyu.workspaces.service import add_member

INVITATION_TTL = timedelta(days=7)
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}$")


class Invitation(Base):
    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # goes into the link shown once; never stored


def normalize_email(raw: object) -> str:
    email = raw.strip().lower() if isinstance(raw, str) else ""
    if not _EMAIL_RE.match(email):
        raise InvalidInput("email", "not a valid e-mail address", code="email_invalid")
    return email


def create_invitation(
    session: Session, workspace_id: int, email: str, role: str, invited_by: int | None = None
) -> IssuedInvitation:
    """Invite `email`; an earlier open invitation for the same address is replaced (its link stops working)."""
    email = normalize_email(email)
    if role not in ROLES:
        roles = ", ".join(ROLES)
        raise InvalidInput("role", f"must be one of {roles}", code="one_of", params={"choices": roles})
    member = session.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.workspace_id == workspace_id, User.email == email)
    )
    if member is not None:
        raise Conflict("email", "this person is already a member of the workspace", code="already_member")
    now = utcnow()
    for old in pending_invitations(session, workspace_id):
        if old.email == email:
            old.revoked_at = now
    token = new_token(32)
    invitation = Invitation(
        workspace_id=workspace_id,
        email=email,
        role=role,
        token_hash=hash_token(token),
        invited_by=invited_by,
        created_at=now,
        expires_at=now + INVITATION_TTL,
    )
    session.add(invitation)
    session.flush()
    return IssuedInvitation(invitation, token)


def pending_invitations(session: Session, workspace_id: int) -> list[Invitation]:
    now = utcnow()
    return list(
        session.scalars(
            select(Invitation)
            .where(
                Invitation.workspace_id == workspace_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .order_by(Invitation.id)
        )
    )


def find_open_invitation(session: Session, token: str) -> Invitation | None:
    """The invitation behind a link's token, or None when unknown, used, revoked or expired (never say which)."""
    if not token or len(token) > 200:
        return None
    invitation = session.scalar(select(Invitation).where(Invitation.token_hash == hash_token(token)))
    if invitation is None or invitation.accepted_at or invitation.revoked_at or invitation.expires_at <= utcnow():
        return None
    return invitation


def accept_invitation(session: Session, invitation: Invitation, user: User) -> Membership:
    """Join the workspace. The conditional update makes the link single-use even under concurrent clicks."""
    if user.email != invitation.email:
        raise InvalidInput("email", "this invitation is for another e-mail address", code="invitation_other_email")
    used = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .values(accepted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        raise NotFound("invitation not found")
    existing = session.scalar(
        select(Membership).where(Membership.workspace_id == invitation.workspace_id, Membership.user_id == user.id)
    )
    if existing is not None:  # already joined meanwhile: keep that role, never demote an owner by accident
        return existing
    return add_member(session, invitation.workspace_id, user.id, invitation.role)


def revoke_invitation(session: Session, workspace_id: int, invitation_id: int) -> None:
    invitation = session.get(Invitation, invitation_id) if 0 < invitation_id < 2**62 else None
    if invitation is None or invitation.workspace_id != workspace_id:
        raise NotFound("invitation not found")
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
