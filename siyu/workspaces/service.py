"""Workspaces, domains, users and API keys: creation, lookup and authentication."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.errors import Conflict, FieldError, InvalidInput, NotFound
from siyu.security import hash_password, hash_token, new_token
from siyu.workspaces.models import IP_MODES, ROLES, ApiKey, Domain, Membership, User, Workspace

SCOPES = (
    "links:read",
    "links:write",
    "analytics:read",
    "webhooks:write",
    "sources:write",
    "consent:read",
    "consent:write",
    "privacy:write",
    "profiles:read",
    "profiles:write",
    "identity:read",
    "identity:write",
    "segments:write",  # tags and segments: define, recompute, write model tag values
    "audiences:export",  # hashed audience files (人群包) for ad platforms
)
_HOST_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_WS_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}$")


def normalize_hostname(raw: str, field: str = "hostname") -> str:
    if not isinstance(raw, str):
        raise InvalidInput(field, "must be a host name such as s.example.com", code="hostname_not_text")
    host = raw.strip().lower().rstrip(".")
    if "/" in host or "@" in host:  # a pasted URL: say so, rather than complain about its "port"
        raise InvalidInput(
            field, "give the host name only, without scheme or path (e.g. s.example.com)", code="hostname_not_bare"
        )
    port = ""
    if ":" in host:  # keep an explicit port (dev setups such as localhost:8000)
        name, _, port = host.rpartition(":")
        if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise InvalidInput(
                field, "port must be a number between 1 and 65535", code="hostname_port", params={"max": 65535}
            )
        host_only = name
    else:
        host_only = host
    try:
        host_only = host_only.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidInput(field, "not a valid host name", code="hostname_invalid") from exc
    if not _HOST_RE.match(host_only):
        raise InvalidInput(field, "not a valid host name", code="hostname_invalid")
    return f"{host_only}:{port}" if port else host_only


def _not_one_of(field: str, choices: tuple[str, ...]) -> NoReturn:
    shown = ", ".join(choices)
    raise InvalidInput(field, f"must be one of {shown}", code="one_of", params={"choices": shown})


def create_workspace(session: Session, name: str, slug: str | None = None, ip_mode: str = "truncated") -> Workspace:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("name", "must be 1 to 200 characters", code="length_range", params={"min": 1, "max": 200})
    slug = (slug or re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or f"ws-{secrets.token_hex(3)}")[:63]
    if not _WS_SLUG_RE.match(slug):
        raise InvalidInput("slug", "use lowercase letters, digits and '-'", code="workspace_slug")
    if ip_mode not in IP_MODES:
        _not_one_of("ip_mode", IP_MODES)
    if session.scalar(select(Workspace.id).where(Workspace.slug == slug)):
        raise Conflict("slug", f"workspace '{slug}' already exists", code="workspace_exists", params={"slug": slug})
    ws = Workspace(name=name, slug=slug, ip_mode=ip_mode, ip_salt=secrets.token_hex(16))
    session.add(ws)
    session.flush()
    return ws


def set_ip_mode(session: Session, workspace: Workspace, ip_mode: str) -> None:
    if ip_mode not in IP_MODES:
        _not_one_of("ip_mode", IP_MODES)
    workspace.ip_mode = ip_mode


def add_domain(session: Session, workspace_id: int, hostname: str, is_default: bool = False) -> Domain:
    host = normalize_hostname(hostname)
    if session.scalar(select(Domain.id).where(Domain.hostname == host)):
        raise Conflict("hostname", f"domain '{host}' is already registered", code="domain_taken", params={"host": host})
    if is_default:
        for d in session.scalars(select(Domain).where(Domain.workspace_id == workspace_id)):
            d.is_default = False
    elif not session.scalar(select(Domain.id).where(Domain.workspace_id == workspace_id)):
        is_default = True
    domain = Domain(workspace_id=workspace_id, hostname=host, is_default=is_default)
    session.add(domain)
    session.flush()
    return domain


def list_domains(session: Session, workspace_id: int) -> list[Domain]:
    return list(session.scalars(select(Domain).where(Domain.workspace_id == workspace_id).order_by(Domain.id)))


def default_domain(session: Session, workspace_id: int) -> Domain:
    domains = list_domains(session, workspace_id)
    if not domains:
        raise InvalidInput("domain", "this workspace has no domain yet: add one first", code="no_domain")
    return next((d for d in domains if d.is_default), domains[0])


def all_hostnames(session: Session) -> set[str]:
    return set(session.scalars(select(Domain.hostname)))


def create_user(session: Session, email: str, password: str, display_name: str = "") -> User:
    email = (email or "").strip().lower()
    errors = []
    if not _EMAIL_RE.match(email):
        errors.append(FieldError("email", "not a valid e-mail address", code="email_invalid"))
    if len(password or "") < 8:
        errors.append(FieldError("password", "must be at least 8 characters", code="min_length", params={"min": 8}))
    if errors:
        raise InvalidInput(errors)
    if session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("email", "a user with this e-mail already exists", code="email_taken")
    user = User(email=email, password_hash=hash_password(password), display_name=display_name or email)
    session.add(user)
    session.flush()
    return user


def add_member(session: Session, workspace_id: int, user_id: int, role: str) -> Membership:
    if role not in ROLES:
        _not_one_of("role", ROLES)
    existing = session.scalar(
        select(Membership).where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
    )
    if existing:
        existing.role = role
        return existing
    m = Membership(workspace_id=workspace_id, user_id=user_id, role=role)
    session.add(m)
    session.flush()
    return m


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once, never stored


def create_api_key(
    session: Session, workspace_id: int, name: str, scopes: list[str] | None = None, created_by: int | None = None
) -> IssuedKey:
    scopes = list(scopes) if scopes is not None else list(SCOPES)
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        shown, known = ", ".join(bad), ", ".join(SCOPES)
        raise InvalidInput(
            "scopes",
            f"unknown scope(s) {shown}; known: {known}",
            code="scopes_unknown",
            params={"scopes": shown, "known": known},
        )
    name = (name or "").strip() or "API key"
    secret = "sy_" + new_token(24)
    key = ApiKey(
        workspace_id=workspace_id,
        name=name[:200],
        prefix=secret[:10],
        key_hash=hash_token(secret),
        scopes=scopes,
        created_by=created_by,
    )
    session.add(key)
    session.flush()
    return IssuedKey(key, secret)


def authenticate_api_key(session: Session, secret: str) -> ApiKey | None:
    if not secret or len(secret) > 200:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_token(secret)))
    if key is None or key.revoked_at is not None:
        return None
    key.last_used_at = utcnow()
    return key


def revoke_api_key(session: Session, workspace_id: int, key_id: int) -> None:
    key = session.get(ApiKey, key_id)
    if key is None or key.workspace_id != workspace_id:
        raise NotFound("api key not found")
    key.revoked_at = utcnow()


def get_workspace(session: Session, workspace_id: int) -> Workspace:
    ws = session.get(Workspace, workspace_id)
    if ws is None:
        raise NotFound("workspace not found")
    return ws
