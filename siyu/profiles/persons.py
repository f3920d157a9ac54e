"""Reading persons for profiles: which super ID a request means, who was merged into it, its identifiers.

Profile lookups are hot (the target is < 5 ms at a million profiles, on PostgreSQL too, where
every query is a network round trip), so a person, whether anyone was merged into it and its
identifiers come back in one query built once at import; `siyu.identity.service` answers the same
questions with more round trips.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session, aliased

from siyu.errors import InvalidInput, NotFound
from siyu.identity.models import IdentityIdentifier, IdentityPerson
from siyu.identity.rules import Rules, get_rules
from siyu.identity.store import root_of

CHUNK = 500
_RULES = "siyu.profiles.rules"
P, I = IdentityPerson, IdentityIdentifier  # noqa: E741
_CHILD = aliased(IdentityPerson)

# Built once: composing a SQLAlchemy statement costs about as much as SQLite answering it.
_PERSON = (
    select(
        P.workspace_id,
        P.merged_into,
        P.erased_at,
        P.created_at,
        exists().where(_CHILD.merged_into == P.id).label("absorbed"),
        I.id_type,
        I.value,
        I.quarantined,
        I.first_event,
        I.created_at.label("linked_at"),
    )
    .outerjoin(I, I.person_id == P.id)
    .where(P.id == bindparam("id"))
)
# One index probe per generation of merges (a recursive CTE made PostgreSQL scan the whole table).
_MERGED_INTO = select(P.id).where(P.merged_into.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True)
class Person:
    super_id: int  # the current super ID
    created_at: datetime
    merged_ids: list[int]  # super IDs merged into it, directly or not
    identifiers: list[dict[str, Any]]  # strongest first


def rules_of(session: Session, workspace_id: int) -> Rules:
    """The workspace's identifier rules, read once per session."""
    cache = session.info.setdefault(_RULES, {})
    if workspace_id not in cache:
        cache[workspace_id] = get_rules(session, workspace_id)
    return cache[workspace_id]


def load(session: Session, workspace_id: int, super_id: object) -> Person:
    """A live person of the workspace; a merged-away ID answers with the person it was merged into.
    NotFound names the ID."""
    if isinstance(super_id, bool) or not isinstance(super_id, int):
        raise InvalidInput("super_id", "must be a whole number")
    rows = session.execute(_PERSON, {"id": super_id}).all()
    if not rows or rows[0].workspace_id != workspace_id or rows[0].erased_at is not None:
        raise NotFound(f"person {super_id}")
    root = super_id
    if rows[0].merged_into is not None:
        root = root_of(session, rows[0].merged_into)
        rows = session.execute(_PERSON, {"id": root}).all()
    rules = rules_of(session, workspace_id)
    idents = sorted(
        (r for r in rows if r.id_type is not None),
        key=lambda r: rules.sort_key((r.id_type, r.value)) if r.id_type in rules else (10**9, r.id_type, r.value),
    )
    return Person(
        super_id=root,
        created_at=rows[0].created_at,
        merged_ids=[i for i in family(session, root) if i != root] if rows[0].absorbed else [],
        identifiers=[
            {
                "type": r.id_type,
                "value": r.value,
                "quarantined": r.quarantined,
                "first_event": r.first_event,
                "created_at": r.linked_at.isoformat(),
            }
            for r in idents
        ],
    )


def family(session: Session, person_id: int) -> list[int]:
    """`person_id` and every super ID merged into it, directly or not."""
    members, frontier = {person_id}, [person_id]
    while frontier:
        frontier = [p for p in session.scalars(_MERGED_INTO, {"ids": frontier}) if p not in members]
        members.update(frontier)
    return sorted(members)


def roots(session: Session, person_ids: Iterable[int]) -> dict[int, int]:
    """The current super ID of each id (itself unless it was merged away)."""
    ids = sorted(set(person_ids))
    out: dict[int, int] = {}
    for i in range(0, len(ids), CHUNK):
        rows = session.execute(select(P.id, P.merged_into).where(P.id.in_(ids[i : i + CHUNK])))
        for pid, parent in rows:
            out[pid] = pid if parent is None else root_of(session, parent)
    return out
