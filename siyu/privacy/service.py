"""Export and erase one person (PIPL art. 45 access/portability, art. 47 deletion), with an audit entry each.

A person is a super ID and everyone merged into it. Export gathers what every part of the system
keeps about them; erasure removes it everywhere: the events and clicks stitched to them (DuckDB),
their traits and anything else a `PersonListener` keeps, their consent records, and their
identifiers (kept only as digests, so the same phone number never rebuilds the person). The audit
entry names the super ID, the actor and the counts, nothing else.

Both take the caller's session and never commit; the event store is the one the calling process
owns (the server's Runtime). Erasure deletes from the event store inside the SQL transaction: if
that fails, nothing in SQL changes and the request can simply be repeated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.consent import service as consent
from siyu.consent.persons import families
from siyu.db import utcnow
from siyu.errors import FieldError, InvalidInput, NotFound
from siyu.events.store import EventStore
from siyu.identity import service as identity
from siyu.identity.listeners import PersonListener
from siyu.identity.store import lock_workspace
from siyu.privacy.models import PrivacyAudit
from siyu.profiles.service import traits_of

ACTIONS = ("export", "erase")
EXPORT_FORMAT = "siyu.person-export/1"
MAX_ACTOR = 200
ACTOR_RE = re.compile(r"^(user:\d+|key:.{1,190}|cli(:.{1,190})?)$")


def find_person(session: Session, workspace_id: int, ref: object) -> int:
    """The current super ID named by `ref`: a super ID ("1024") or an identifier ("phone:13800138000")."""
    text = str(ref).strip() if isinstance(ref, str | int) and not isinstance(ref, bool) else ""
    if text.isdigit() and len(text) < 19:
        return identity.current_super_id(session, workspace_id, int(text))
    id_type, sep, value = text.partition(":")
    if not sep or not id_type or not value:
        raise InvalidInput(
            "person",
            "give a super ID (e.g. 1024) or an identifier as type:value (e.g. phone:13800138000)",
            code="privacy_person_ref",
        )
    try:
        found = identity.lookup(session, workspace_id, id_type.strip(), value.strip())
    except InvalidInput as exc:
        raise InvalidInput([FieldError("person", e.reason, e.code, e.params) for e in exc.errors]) from exc
    if found is None:
        raise NotFound(f"no person holds {id_type.strip()}:{value.strip()}")
    return found


def export_person(
    session: Session, store: EventStore, workspace_id: int, super_id: object, actor: str
) -> dict[str, Any]:
    """Everything kept about a person, as JSON-ready values, and an audit entry saying it was exported."""
    _check_actor(actor)
    profile = identity.profile(session, workspace_id, super_id)
    root = profile["super_id"]
    members = sorted(families(session, workspace_id, [root]))
    rows = store.person_rows(workspace_id, members)
    traits = traits_of(session, workspace_id, root)
    data = {
        "format": EXPORT_FORMAT,
        "workspace_id": workspace_id,
        "super_id": root,
        "merged_ids": profile["merged_ids"],
        "exported_at": utcnow(),
        "identifiers": profile["identifiers"],
        "traits": traits,
        "consents": consent.current_consents(session, workspace_id, root),
        "consent_history": consent.history(session, workspace_id, root, limit=10_000),
        "events": rows["events"],
        "clicks": rows["clicks"],
        "merge_log": identity.merge_log(session, workspace_id, root),
    }
    counts = {
        "identifiers": len(profile["identifiers"]),
        "traits": len(traits),
        "consent_records": len(data["consent_history"]),
        "events": len(rows["events"]),
        "clicks": len(rows["clicks"]),
    }
    data["audit"] = _audit(session, workspace_id, "export", root, actor, counts)
    return jsonable(data)


def erasure_preview(session: Session, store: EventStore, workspace_id: int, super_id: object) -> dict[str, Any]:
    """What an erasure would remove (for the console's confirmation step); changes nothing."""
    root = identity.current_super_id(session, workspace_id, super_id)
    members = sorted(families(session, workspace_id, [root]))
    rows = store.person_rows(workspace_id, members)
    return {
        "super_id": root,
        "merged_ids": [m for m in members if m != root],
        "identifiers": len(identity.identifiers_of(session, workspace_id, root)),
        "traits": len(traits_of(session, workspace_id, root)),
        "consent_records": consent.count_records(session, workspace_id, members),
        "events": len(rows["events"]),
        "clicks": len(rows["clicks"]),
    }


def erase_person(
    session: Session,
    store: EventStore,
    workspace_id: int,
    super_id: object,
    actor: str,
    listeners: Iterable[PersonListener] = (),
) -> dict[str, Any]:
    """Erase a person everywhere and return the audit entry (with what was removed, as counts)."""
    _check_actor(actor)
    root = identity.current_super_id(session, workspace_id, super_id)
    lock_workspace(session, workspace_id)
    members = sorted(families(session, workspace_id, [root]))
    counts: dict[str, int] = {
        "persons": len(members),
        "traits": len(traits_of(session, workspace_id, root)),
        "consent_records": consent.count_records(session, workspace_id, members),
    }
    for listener in listeners:  # traits (profiles), consent and whatever else keeps data by person
        listener.person_erased(session, workspace_id, root)
    consent.erase_records(session, workspace_id, root)  # also when no consent listener is registered
    counts["identifiers"] = identity.erase(session, workspace_id, root)
    counts.update(store.erase_person_rows(workspace_id, members))
    return _audit(session, workspace_id, "erase", root, actor, counts)


def audit_log(
    session: Session,
    workspace_id: int,
    *,
    super_id: int | None = None,
    action: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Audit entries, newest first."""
    if action is not None and action not in ACTIONS:
        raise InvalidInput(
            "action", f"must be one of {', '.join(ACTIONS)}", code="one_of", params={"choices": ", ".join(ACTIONS)}
        )
    q = select(PrivacyAudit).where(PrivacyAudit.workspace_id == workspace_id)
    if super_id is not None:
        q = q.where(PrivacyAudit.super_id == super_id)
    if action is not None:
        q = q.where(PrivacyAudit.action == action)
    q = q.order_by(PrivacyAudit.id.desc()).limit(max(1, min(limit, 1000))).offset(max(0, offset))
    return [_audit_dict(r) for r in session.scalars(q)]


def _audit(session: Session, workspace_id: int, action: str, super_id: int, actor: str, counts: dict) -> dict[str, Any]:
    row = PrivacyAudit(
        workspace_id=workspace_id,
        action=action,
        super_id=super_id,
        actor=actor,
        counts={k: int(v) for k, v in counts.items()},
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _audit_dict(row)


def _audit_dict(row: PrivacyAudit) -> dict[str, Any]:
    return {
        "id": row.id,
        "action": row.action,
        "super_id": row.super_id,
        "actor": row.actor,
        "counts": dict(row.counts or {}),
        "at": row.created_at,
    }


def _check_actor(actor: object) -> None:
    """Actors are ids, never names or e-mails: the audit log outlives the people it mentions."""
    if not isinstance(actor, str) or len(actor) > MAX_ACTOR or not ACTOR_RE.match(actor):
        raise InvalidInput("actor", "must be user:<id>, key:<name> or cli", code="privacy_actor")


def jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601 text, recursively: the export is the same JSON from the API, console and CLI."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return value
