"""Sources and their write keys: create, list, update, rotate, authenticate.

A write key is shown once, when it is issued; only its SHA-256 and a short prefix are stored. It
is a public-ish secret by design (it ships inside web pages and mini programs), so it can only
add events to its own source, never read anything, and a source can be disabled or its key
rotated at any time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.db import after_commit
from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.security import hash_token, new_token
from siyu.sources.models import SOURCE_KINDS, Source

WRITE_KEY_PREFIX = "wk_"
_changes = itertools.count(1)
generation = 0  # bumped after every committed change, so key caches in this process drop at once


def _changed(session: Session) -> None:
    def bump() -> None:
        global generation
        generation = next(_changes)

    after_commit(session, bump)


@dataclass(frozen=True)
class IssuedSource:
    source: Source
    write_key: str  # shown once, never stored


def _name(raw: Any) -> str:
    name = raw.strip() if isinstance(raw, str) else ""
    if not name or len(name) > 200:
        raise InvalidInput("name", "must be 1 to 200 characters", code="length_range", params={"min": 1, "max": 200})
    return name


def _kind(raw: Any) -> str:
    if raw not in SOURCE_KINDS:
        shown = ", ".join(SOURCE_KINDS)
        raise InvalidInput("kind", f"must be one of {shown}", code="one_of", params={"choices": shown})
    return raw


def _unique_name(session: Session, workspace_id: int, name: str, exclude: int | None = None) -> None:
    query = select(Source.id).where(Source.workspace_id == workspace_id, Source.name == name)
    if exclude is not None:
        query = query.where(Source.id != exclude)
    if session.scalar(query):
        raise Conflict("name", f"a source named '{name}' already exists", code="source_exists", params={"name": name})


def _new_key() -> tuple[str, str, str]:
    key = WRITE_KEY_PREFIX + new_token(24)
    return key, key[:10], hash_token(key)


def create_source(session: Session, workspace_id: int, name: str, kind: str = "other") -> IssuedSource:
    name, kind = _name(name), _kind(kind)
    _unique_name(session, workspace_id, name)
    key, prefix, digest = _new_key()
    source = Source(
        workspace_id=workspace_id, name=name, kind=kind, write_key_prefix=prefix, write_key_hash=digest, enabled=True
    )
    session.add(source)
    session.flush()
    _changed(session)
    return IssuedSource(source, key)


def list_sources(session: Session, workspace_id: int) -> list[Source]:
    return list(session.scalars(select(Source).where(Source.workspace_id == workspace_id).order_by(Source.id)))


def get_source(session: Session, workspace_id: int, source_id: int) -> Source:
    source = session.get(Source, source_id) if 0 < source_id < 2**62 else None
    if source is None or source.workspace_id != workspace_id:
        raise NotFound(f"source {source_id} not found")
    return source


def update_source(session: Session, workspace_id: int, source_id: int, changes: dict[str, Any]) -> Source:
    """Rename, re-kind, enable or disable; a disabled source's key is refused at once (401)."""
    source = get_source(session, workspace_id, source_id)
    if "name" in changes and changes["name"] is not None:
        name = _name(changes["name"])
        _unique_name(session, workspace_id, name, exclude=source.id)
        source.name = name
    if "kind" in changes and changes["kind"] is not None:
        source.kind = _kind(changes["kind"])
    if "enabled" in changes and changes["enabled"] is not None:
        if not isinstance(changes["enabled"], bool):
            raise InvalidInput("enabled", "must be true or false")
        source.enabled = changes["enabled"]
    session.flush()
    _changed(session)
    return source


def rotate_write_key(session: Session, workspace_id: int, source_id: int) -> IssuedSource:
    """A new key for the source; the old one stops working when this commits."""
    source = get_source(session, workspace_id, source_id)
    key, source.write_key_prefix, source.write_key_hash = _new_key()
    session.flush()
    _changed(session)
    return IssuedSource(source, key)


def authenticate_write_key(session: Session, write_key: str) -> Source | None:
    """The source of this key, enabled or not (the caller refuses disabled ones); None if unknown."""
    if not write_key or len(write_key) > 200:
        return None
    return session.scalar(select(Source).where(Source.write_key_hash == hash_token(write_key)))


def as_dict(source: Source) -> dict[str, Any]:
    return {
        "id": source.id,
        "name": source.name,
        "kind": source.kind,
        "enabled": source.enabled,
        "write_key_prefix": source.write_key_prefix,
        "created_at": source.created_at.isoformat() if source.created_at else None,
    }
