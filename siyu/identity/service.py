"""One ID: resolve events' identifiers to a super ID (祖ID), look profiles up, unmerge, erase.

Every function takes the caller's session and never commits: resolving an event belongs to the
same unit of work as storing it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.errors import Conflict, FieldError, InvalidInput, NotFound
from siyu.identity.engine import Key, Outcome, resolve_keys
from siyu.identity.models import (
    IdentityConflict,
    IdentityErased,
    IdentityIdentifier,
    IdentityMerge,
    IdentityPerson,
    IdentityQuarantine,
    IdentitySecret,
)
from siyu.identity.normalize import check_ref, check_workspace, normalize_key, parse_identifiers
from siyu.identity.rules import Rules, get_rules
from siyu.identity.store import SqlGraph, key_filter, lock_workspace, root_of
from siyu.workspaces.models import Workspace

I = IdentityIdentifier  # noqa: E741
CACHE = "siyu.identity.context"


def resolve(
    session: Session, workspace_id: int, identifiers: Sequence[Any], event_ref: str | None = None
) -> int | None:
    """The super ID of the person these identifiers describe, creating or linking as needed.

    `identifiers` is `[(type, value), ...]`. Returns None when no identifier is usable (all blocked,
    erased or quarantined): such an event stays anonymous. Calling it again changes nothing.
    """
    return resolve_outcome(session, workspace_id, identifiers, event_ref).person


def resolve_outcome(
    session: Session, workspace_id: int, identifiers: Sequence[Any], event_ref: str | None = None
) -> Outcome:
    """`resolve` with what happened: persons merged away and links refused."""
    ws = check_workspace(workspace_id)
    ref = check_ref(event_ref, "event_ref")
    rules, has_erased, _ = _context(session, ws)
    keys = parse_identifiers(rules, identifiers)
    if has_erased:
        keys = _not_erased(session, ws, keys)
    if not keys:
        return Outcome(None)
    lock_workspace(session, ws)
    return resolve_keys(SqlGraph(session, ws), rules, keys, ref)


def lookup(session: Session, workspace_id: int, id_type: object, value: object) -> int | None:
    """The super ID holding an identifier, or None (unknown, blocked or quarantined). One index probe."""
    ws = check_workspace(workspace_id)
    key = _one_key(_context(session, ws)[0], id_type, value)
    if key is None:
        return None
    row = session.execute(
        select(I.person_id, I.quarantined).where(I.workspace_id == ws, I.id_type == key[0], I.value == key[1])
    ).first()
    return None if row is None or row.quarantined else row.person_id


def current_super_id(session: Session, workspace_id: int, super_id: object) -> int:
    """Where a (possibly merged-away) super ID lives now."""
    ws = check_workspace(workspace_id)
    if isinstance(super_id, bool) or not isinstance(super_id, int):
        raise InvalidInput("super_id", "must be a whole number")
    person = session.get(IdentityPerson, super_id)
    if person is None or person.workspace_id != ws or person.erased_at is not None:
        raise NotFound(f"person {super_id}")
    return root_of(session, super_id)


def identifiers_of(session: Session, workspace_id: int, super_id: object) -> list[dict[str, Any]]:
    """Every identifier of a person, strongest first (quarantined ones are listed, flagged)."""
    root = current_super_id(session, workspace_id, super_id)
    rules = _context(session, workspace_id)[0]
    rows = session.scalars(select(I).where(I.person_id == root))
    return [
        {
            "type": r.id_type,
            "value": r.value,
            "quarantined": r.quarantined,
            "first_event": r.first_event,
            "created_at": r.created_at.isoformat(),
        }
        for r in sorted(rows, key=lambda r: rules.sort_key((r.id_type, r.value)) if r.id_type in rules else (10**9,))
    ]


def profile(session: Session, workspace_id: int, super_id: object) -> dict[str, Any]:
    root = current_super_id(session, workspace_id, super_id)
    person = session.get(IdentityPerson, root)
    return {
        "super_id": root,
        "created_at": person.created_at.isoformat(),
        "merged_ids": sorted(_subtree(session, root) - {root}),
        "identifiers": identifiers_of(session, workspace_id, root),
    }


def find_profile(session: Session, workspace_id: int, id_type: object, value: object) -> dict[str, Any] | None:
    super_id = lookup(session, workspace_id, id_type, value)
    return None if super_id is None else profile(session, workspace_id, super_id)


def merge_log(session: Session, workspace_id: int, super_id: int | None = None) -> list[dict[str, Any]]:
    """The merge log, oldest first; for one super ID, the merges of everyone in it."""
    ws = check_workspace(workspace_id)
    q = select(IdentityMerge).where(IdentityMerge.workspace_id == ws).order_by(IdentityMerge.id)
    if super_id is not None:
        q = q.where(IdentityMerge.merged_id.in_(_subtree(session, current_super_id(session, ws, super_id))))
    return [
        {
            "action": m.action,
            "survivor_id": m.survivor_id,
            "merged_id": m.merged_id,
            "via": [m.via_type, m.via_value],
            "event_ref": m.event_ref,
            "actor": m.actor,
            "at": m.created_at.isoformat(),
        }
        for m in session.scalars(q)
    ]


def still_merged(session: Session, workspace_id: int, person_ids: Iterable[int]) -> set[int]:
    """Which of these persons are inside another one now, i.e. can be unmerged."""
    ids = sorted(set(person_ids))
    if not ids:
        return set()
    return set(
        session.scalars(
            select(IdentityPerson.id).where(
                IdentityPerson.workspace_id == check_workspace(workspace_id),
                IdentityPerson.id.in_(ids),
                IdentityPerson.merged_into.is_not(None),
                IdentityPerson.erased_at.is_(None),
            )
        )
    )


def recent_merges(session: Session, workspace_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The newest merges and unmerges; `can_unmerge` when the merged person is still inside another."""
    ws = check_workspace(workspace_id)
    q = (
        select(IdentityMerge, IdentityPerson.merged_into, IdentityPerson.erased_at)
        .outerjoin(IdentityPerson, IdentityPerson.id == IdentityMerge.merged_id)
        .where(IdentityMerge.workspace_id == ws, IdentityMerge.action.in_(("merge", "unmerge")))
        .order_by(IdentityMerge.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": m.id,
            "action": m.action,
            "survivor_id": m.survivor_id,
            "merged_id": m.merged_id,
            "via": [m.via_type, m.via_value],
            "event_ref": m.event_ref,
            "actor": m.actor,
            "at": m.created_at.isoformat(),
            "can_unmerge": m.action == "merge" and merged_into is not None and erased_at is None,
        }
        for m, merged_into, erased_at in session.execute(q)
    ]


def list_conflicts(session: Session, workspace_id: int, limit: int = 100) -> list[dict[str, Any]]:
    ws = check_workspace(workspace_id)
    q = (
        select(IdentityConflict)
        .where(IdentityConflict.workspace_id == ws)
        .order_by(IdentityConflict.id.desc())
        .limit(limit)
    )
    return [
        {
            "kind": c.kind,
            "person_id": c.person_id,
            "other_person_id": c.other_person_id,
            "via": [c.via_type, c.via_value],
            "clash_type": c.clash_type,
            "event_ref": c.event_ref,
        }
        for c in session.scalars(q)
    ]


def quarantined(session: Session, workspace_id: int) -> list[dict[str, Any]]:
    ws = check_workspace(workspace_id)
    q = select(IdentityQuarantine).where(IdentityQuarantine.workspace_id == ws).order_by(IdentityQuarantine.id)
    return [{"type": r.id_type, "value": r.value, "people": r.people} for r in session.scalars(q)]


@dataclass
class Unmerged:
    """What an unmerge moved: callers re-assign events of `restored` with `reassign_events`."""

    kept: int
    restored: int
    moved: list[Key]
    identifiers: dict[int, list[Key]] = field(default_factory=dict)


def unmerge(session: Session, workspace_id: int, person_id: object, actor: str = "") -> Unmerged:
    """Split `person_id` (and whoever had merged into it) back out of the person it was merged into.

    Identifiers go back to the person they first joined; ones that arrived after the merge stay with
    the survivor. The two are then kept apart: the link that joined them will not join them again.
    """
    ws = check_workspace(workspace_id)
    if isinstance(person_id, bool) or not isinstance(person_id, int):
        raise InvalidInput("person_id", "must be a whole number")
    lock_workspace(session, ws)
    person = session.get(IdentityPerson, person_id)
    if person is None or person.workspace_id != ws or person.erased_at is not None:
        raise NotFound(f"person {person_id}")
    if person.merged_into is None:
        raise Conflict("person_id", f"person {person_id} was not merged into anyone")
    kept = root_of(session, person.merged_into)
    family = _subtree(session, person_id)
    moving = select(I.id).where(I.person_id == kept, I.origin_person_id.in_(family))
    moved = [(t, v) for t, v in session.execute(select(I.id_type, I.value).where(I.id.in_(moving)))]
    session.execute(
        update(I).where(I.id.in_(moving)).values(person_id=person_id).execution_options(synchronize_session=False)
    )
    now = utcnow()
    person.merged_into = None
    person.updated_at = now
    session.add(
        IdentityMerge(
            workspace_id=ws, action="unmerge", survivor_id=kept, merged_id=person_id, actor=actor, created_at=now
        )
    )
    session.add(
        IdentityConflict(
            workspace_id=ws,
            kind="split",
            person_id=kept,
            other_person_id=person_id,
            via_type="",
            via_value="",
            clash_type="",
            created_at=now,
        )
    )
    session.flush()
    held = {
        p: [(t, v) for t, v in session.execute(select(I.id_type, I.value).where(I.person_id == p).order_by(I.id))]
        for p in (kept, person_id)
    }
    return Unmerged(kept, person_id, sorted(moved), held)


def reassign_events(session: Session, workspace_id: int, events: Iterable[Sequence[Any]]) -> list[int | None]:
    """The super ID each event belongs to now, from its identifiers (read-only: nothing is linked).

    Events live in another store; after an unmerge or a rebuild, callers pass each event's
    identifiers and write back the answers. An event goes to the owner of its highest-priority
    identifier that still links, as resolve() would have chosen.
    """
    ws = check_workspace(workspace_id)
    rules = _context(session, ws)[0]
    if isinstance(events, str | bytes | dict) or not isinstance(events, Iterable):
        raise InvalidInput("events", "must be a list of identifier lists")
    parsed = [parse_identifiers(rules, identifiers, f"events[{i}]") for i, identifiers in enumerate(events)]
    wanted = sorted({k for keys in parsed for k in keys})
    owner: dict[Key, int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(
            select(I.id_type, I.value, I.person_id).where(
                I.workspace_id == ws, I.quarantined.is_(False), key_filter(chunk)
            )
        )
        owner.update({(t, v): p for t, v, p in rows})
    wanted_set = set(wanted)
    owner = {k: p for k, p in owner.items() if k in wanted_set}
    return [next((owner[k] for k in keys if k in owner), None) for keys in parsed]


def resolve_click(
    session: Session, workspace_id: int, visitor_id: object, person_ref: object, event_ref: str | None = None
) -> int | None:
    """The super ID a short-link click belongs to, if any.

    A personal link (`person_ref`, a member id) attributes the click to that member directly. Its
    cookie is *not* linked to the member: personal links get forwarded in WeChat groups, and the
    forwardee's browser is not the member's. Otherwise the visitor cookie counts once that browser
    has identified itself (resolve() with its `visitor_cookie`); until then the click is anonymous.
    """
    errors = [
        FieldError(f, "must be text or empty")
        for f, v in (("visitor_id", visitor_id), ("person_ref", person_ref))
        if v is not None and not isinstance(v, str)
    ]
    if errors:
        raise InvalidInput(errors)
    if person_ref:
        try:
            person = resolve(session, workspace_id, [("member_id", person_ref)], event_ref)
        except InvalidInput as exc:
            raise InvalidInput([FieldError("person_ref", e.reason) for e in exc.errors]) from exc
        if person is not None:
            return person
    if visitor_id:
        try:
            return lookup(session, workspace_id, "visitor_cookie", visitor_id)
        except InvalidInput as exc:
            raise InvalidInput([FieldError("visitor_id", e.reason) for e in exc.errors]) from exc
    return None


def erase(session: Session, workspace_id: int, super_id: object, reason: str = "erasure") -> int:
    """Hook for erasure requests: drop a person's identifiers and never link them again.

    Only a digest of each identifier is kept (in `identity_erased`); the logs lose the values.
    Deleting the person's events and the wider PIPL workflow are for the caller.
    """
    root = current_super_id(session, workspace_id, super_id)
    ws = workspace_id
    lock_workspace(session, ws)
    keys = [(t, v) for t, v in session.execute(select(I.id_type, I.value).where(I.person_id == root))]
    by_type: dict[str, list[str]] = {}
    for t, v in keys:
        by_type.setdefault(t, []).append(v)
    for t, values in by_type.items():  # one exact, indexed statement per type and chunk
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            session.execute(delete(I).where(I.workspace_id == ws, I.id_type == t, I.value.in_(chunk)))
            session.execute(
                delete(IdentityQuarantine).where(
                    IdentityQuarantine.workspace_id == ws,
                    IdentityQuarantine.id_type == t,
                    IdentityQuarantine.value.in_(chunk),
                )
            )
            for model in (IdentityMerge, IdentityConflict):
                session.execute(
                    update(model)
                    .where(model.workspace_id == ws, model.via_type == t, model.via_value.in_(chunk))
                    .values(via_value="[erased]")
                    .execution_options(synchronize_session=False)
                )
    key = erased_secret(session, ws, create=True)
    assert key is not None
    digests = sorted({digest(key, ws, k) for k in keys})
    known: set[str] = set()
    for start in range(0, len(digests), 500):
        chunk = digests[start : start + 500]
        known.update(
            session.scalars(
                select(IdentityErased.digest).where(IdentityErased.workspace_id == ws, IdentityErased.digest.in_(chunk))
            )
        )
    now = utcnow()
    session.add_all(
        IdentityErased(workspace_id=ws, digest=d, reason=reason[:64], created_at=now) for d in digests if d not in known
    )
    session.execute(
        update(IdentityPerson)
        .where(IdentityPerson.id.in_(_subtree(session, root)))
        .values(erased_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    forget(session, ws)
    return len(keys)


def digest(secret: bytes, workspace_id: int, key: Key) -> str:
    """What `identity_erased` keeps of an erased identifier: an HMAC under the workspace's secret.

    (Of the SHA-256 of the identifier: digests stored before the HMAC were plain SHA-256, and
    migration 0005 turned each into this form without knowing the values.)"""
    inner = hashlib.sha256(f"{workspace_id}\x00{key[0]}\x00{key[1]}".encode()).hexdigest()
    return hmac.new(secret, inner.encode(), hashlib.sha256).hexdigest()


def erased_secret(session: Session, workspace_id: int, create: bool = False) -> bytes | None:
    """The workspace's digest key; created on first use when `create` (under the workspace lock)."""
    row = session.get(IdentitySecret, workspace_id)
    if row is None and create:
        row = IdentitySecret(workspace_id=workspace_id, secret=secrets.token_hex(32), created_at=utcnow())
        session.add(row)
        session.flush()
    return bytes.fromhex(row.secret) if row is not None else None


def erased_among(session: Session, workspace_id: int, keys: Sequence[Key]) -> set[Key]:
    """Which of these (normalised) keys belong to erased persons: resolve() drops them."""
    ws = check_workspace(workspace_id)
    if not keys or not _context(session, ws)[1]:
        return set()
    return set(keys) - set(_not_erased(session, ws, list(keys)))


def _context(session: Session, ws: int) -> tuple[Rules, bool, bytes | None]:
    """(rules, has erased identifiers, digest key) of a workspace, read once per session: resolve() is hot."""
    cache = session.info.setdefault(CACHE, {})
    if ws not in cache:
        if session.get(Workspace, ws) is None:
            raise NotFound(f"workspace {ws}")
        erased = session.scalar(select(IdentityErased.id).where(IdentityErased.workspace_id == ws).limit(1))
        cache[ws] = (get_rules(session, ws), erased is not None, erased_secret(session, ws) if erased else None)
    return cache[ws]


def forget(session: Session, ws: int) -> None:
    """Drop the session's cached rules of a workspace (after its configuration or erased list changed)."""
    session.info.get(CACHE, {}).pop(ws, None)


def _not_erased(session: Session, ws: int, keys: list[Key]) -> list[Key]:
    if not keys:
        return keys
    secret = _context(session, ws)[2]
    if secret is None:  # erased rows without a key cannot exist (erase creates it first); nothing matches
        return keys
    digests = {digest(secret, ws, k): k for k in keys}
    erased = set(
        session.scalars(
            select(IdentityErased.digest).where(
                IdentityErased.workspace_id == ws, IdentityErased.digest.in_(list(digests))
            )
        )
    )
    return [k for d, k in digests.items() if d not in erased]


def _one_key(rules: Rules, id_type: object, value: object) -> Key | None:
    if not isinstance(id_type, str) or id_type not in rules:
        raise InvalidInput("type", f"unknown identifier type '{str(id_type)[:40]}'")
    return normalize_key(rules[id_type], value)


def _subtree(session: Session, person_id: int) -> set[int]:
    """The person and everyone merged into it, directly or not."""
    family, frontier = {person_id}, [person_id]
    while frontier:
        frontier = [
            p
            for p in session.scalars(select(IdentityPerson.id).where(IdentityPerson.merged_into.in_(frontier)))
            if p not in family
        ]
        family.update(frontier)
    return family
