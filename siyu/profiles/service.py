"""Profiles for callers (REST, console, CLI, privacy export): read a person, find one, list, search.

A profile is the identity graph's view of a person (super ID, identifiers) plus traits (stored, with
provenance) plus computed attributes (read from the event store at query time). Every function
takes the caller's session and never commits. Unknown or erased super IDs raise NotFound naming
the id; a merged-away super ID answers with the person it was merged into.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.errors import FieldError, InvalidInput
from siyu.events.store import EventStore
from siyu.identity import service as ids
from siyu.identity.models import IdentityIdentifier, IdentityPerson
from siyu.identity.normalize import normalize_key
from siyu.profiles import history, persons, traits
from siyu.profiles.models import ProfileTrait
from siyu.profiles.timeline import timeline_item
from siyu.sources.models import Source

MAX_LIMIT = 200
MAX_OFFSET = 10**9
MAX_QUERY = 255
MAX_MATCHES = 1000  # a search lists at most this many people: narrow it down past that
NAME_TRAITS = ("name", "nickname", "username")


def sources_of(session: Session, workspace_id: int) -> dict[int, dict[str, Any]]:
    rows = session.execute(select(Source.id, Source.name, Source.kind).where(Source.workspace_id == workspace_id))
    return {i: {"id": i, "name": n, "kind": k} for i, n, k in rows}


def display_name(trait_values: dict[str, Any], identifiers: list[dict[str, Any]]) -> str:
    """What to call a person: a name trait, else first + last name, else the strongest identifier."""
    for key in NAME_TRAITS:
        value = trait_values.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    parts = [trait_values.get(k) for k in ("first_name", "last_name", "firstName", "lastName")]
    joined = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    if joined:
        return joined
    return identifiers[0]["value"] if identifiers else ""


def traits_of(session: Session, workspace_id: int, super_id: object) -> dict[str, Any]:
    """Every trait of the person, key → value (for exports such as a subject-access request)."""
    return traits.values(session, persons.load(session, workspace_id, super_id).super_id)


def profile_of(
    session: Session, store: EventStore, workspace_id: int, super_id: object, computed: bool = True
) -> dict[str, Any]:
    """Identifiers, traits with provenance, and (unless `computed` is False) computed attributes."""
    person = persons.load(session, workspace_id, super_id)
    details = traits.details(session, person.super_id)
    out = {
        "super_id": person.super_id,
        "requested_id": super_id,
        "created_at": person.created_at.isoformat(),
        "merged_ids": person.merged_ids,
        "name": display_name({d["key"]: d["value"] for d in details}, person.identifiers),
        "identifiers": person.identifiers,
        "traits": details,
    }
    if computed:
        out["computed"] = _computed(session, store, workspace_id, [person.super_id, *person.merged_ids])
    return out


def _computed(session: Session, store: EventStore, workspace_id: int, ids_: list[int]) -> dict[str, Any]:
    sources = sources_of(session, workspace_id)
    attributes = history.computed(store, workspace_id, ids_)
    for used in attributes["sources"]:
        known = sources.get(used["source_id"]) if used["source_id"] is not None else None
        used["name"] = known["name"] if known else None
        used["kind"] = known["kind"] if known else used["kind"]
    return attributes


def find_by_identifier(
    session: Session, store: EventStore, workspace_id: int, id_type: object, value: object, computed: bool = True
) -> dict[str, Any] | None:
    """The profile holding an identifier (normalised as the graph stores it), or None."""
    super_id = ids.lookup(session, workspace_id, id_type, value)
    return None if super_id is None else profile_of(session, store, workspace_id, super_id, computed)


def _page(limit: object, offset: object) -> tuple[int, int]:
    errors = []
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        errors.append(("limit", f"must be a whole number from 1 to {MAX_LIMIT}"))
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        errors.append(("offset", f"must be a whole number from 0 to {MAX_OFFSET}"))
    if errors:
        raise InvalidInput([FieldError(f, r) for f, r in errors])
    return limit, offset  # type: ignore[return-value]


def timeline(
    session: Session,
    store: EventStore,
    workspace_id: int,
    super_id: object,
    limit: int = 50,
    offset: int = 0,
    locale: str = "en",
) -> dict[str, Any]:
    """Events and clicks of the person, newest first, each with a one-line summary in `locale`."""
    limit, offset = _page(limit, offset)
    person = persons.load(session, workspace_id, super_id)
    root = person.super_id
    total, rows = history.timeline_rows(store, workspace_id, [root, *person.merged_ids], limit, offset)
    sources = sources_of(session, workspace_id)
    return {
        "super_id": root,
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [timeline_item(r, sources, locale) for r in rows],
    }


# --- search ---------------------------------------------------------------------------------------


def _prefix(column, text: str):
    """`column` starts with `text`, as a range the (workspace, column) index answers on both databases."""
    return (column >= text) & (column < text + "\U0010ffff")


def _matches(session: Session, workspace_id: int, q: str) -> list[int]:
    """Super IDs matching `q`, best first: an identifier equal to it (as normalised), then identifiers
    and trait values starting with it."""
    rules = persons.rules_of(session, workspace_id)
    found: dict[int, None] = {}
    I = IdentityIdentifier  # noqa: E741
    live = I.quarantined.is_(False)
    for name in rules.types:
        try:
            key = normalize_key(rules[name], q)
        except InvalidInput:
            key = None
        if key is not None:
            for pid in session.scalars(
                select(I.person_id).where(I.workspace_id == workspace_id, I.id_type == key[0], I.value == key[1], live)
            ):
                found.setdefault(pid)
    for name in rules.types:
        for text in dict.fromkeys((q, q.lower())):
            rows = session.scalars(
                select(I.person_id)
                .where(I.workspace_id == workspace_id, I.id_type == name, _prefix(I.value, text))
                .limit(MAX_MATCHES)
            )
            for pid in rows:
                found.setdefault(pid)
    rows = session.scalars(
        select(ProfileTrait.person_id)
        .where(ProfileTrait.workspace_id == workspace_id, _prefix(ProfileTrait.search_text, q.lower()))
        .limit(MAX_MATCHES)
    )
    for pid in rows:
        found.setdefault(pid)
    return list(found)[:MAX_MATCHES]


def _summaries(session: Session, workspace_id: int, person_ids: list[int]) -> list[dict[str, Any]]:
    if not person_ids:
        return []
    rules = persons.rules_of(session, workspace_id)
    idents: dict[int, list[dict[str, Any]]] = {p: [] for p in person_ids}
    for pid, t, v in session.execute(
        select(IdentityIdentifier.person_id, IdentityIdentifier.id_type, IdentityIdentifier.value).where(
            IdentityIdentifier.person_id.in_(person_ids)
        )
    ):
        idents[pid].append({"type": t, "value": v})
    for items in idents.values():
        items.sort(key=lambda i: rules.sort_key((i["type"], i["value"])) if i["type"] in rules else (10**9,))
    values: dict[int, dict[str, Any]] = {p: {} for p in person_ids}
    counts: dict[int, int] = dict.fromkeys(person_ids, 0)
    for pid, key, value in session.execute(
        select(ProfileTrait.person_id, ProfileTrait.key, ProfileTrait.value).where(
            ProfileTrait.person_id.in_(person_ids)
        )
    ):
        values[pid][key] = value
        counts[pid] += 1
    created = {
        pid: at
        for pid, at in session.execute(
            select(IdentityPerson.id, IdentityPerson.created_at).where(IdentityPerson.id.in_(person_ids))
        )
    }
    return [
        {
            "super_id": pid,
            "name": display_name(values[pid], idents[pid]),
            "identifiers": idents[pid],
            "trait_count": counts[pid],
            "created_at": created.get(pid),
        }
        for pid in person_ids
    ]


def search(session: Session, workspace_id: int, q: object = "", limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """People whose identifier or trait value matches `q` (all people, newest first, when empty).

    A phone number matches however it is typed ('138 0013 8000', '+86…'): `q` is normalised as each
    identifier type would store it. A search lists at most MAX_MATCHES people (`capped` says so).
    """
    limit, offset = _page(limit, offset)
    if q is None:
        q = ""
    if not isinstance(q, str) or len(q) > MAX_QUERY:
        raise InvalidInput(
            "q", f"must be text of at most {MAX_QUERY} characters", code="text_max_length", params={"max": MAX_QUERY}
        )
    if "\x00" in q:
        raise InvalidInput("q", "must not contain NUL characters", code="text_nul")
    q = q.strip()
    P = IdentityPerson  # noqa: N806
    alive = (P.workspace_id == workspace_id) & P.merged_into.is_(None) & P.erased_at.is_(None)
    if not q:
        total = session.scalar(select(func.count()).select_from(P).where(alive)) or 0
        page = list(session.scalars(select(P.id).where(alive).order_by(P.id.desc()).limit(limit).offset(offset)))
        capped = False
    else:
        matched = _matches(session, workspace_id, q)
        if matched:
            keep = set(session.scalars(select(P.id).where(alive, P.id.in_(matched))))
            matched = [p for p in matched if p in keep]
        total, capped = len(matched), len(matched) >= MAX_MATCHES
        page = matched[offset : offset + limit]
    return {
        "q": q,
        "total": total,
        "capped": capped,
        "limit": limit,
        "offset": offset,
        "items": _summaries(session, workspace_id, page),
    }
