"""Traits of persons: apply observed values, combine two persons, rebuild, erase, read.

Every function takes the caller's session and never commits: the stitcher calls them inside the
transaction that moves the identity graph, so traits and graph never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.profiles.models import ProfileTrait
from siyu.profiles.strategies import MAX_KEY_LENGTH, Strategies, TraitValue, combine, start, strategies_for

Observation = tuple[int, str, TraitValue]  # (super ID, trait key, value with provenance)
CHUNK = 500


def observations_from(person_id: int, traits: Mapping[str, Any], value: TraitValue) -> Iterable[Observation]:
    """One observation per top-level trait of an event (`value` carries the event's provenance)."""
    for key, v in traits.items():
        if isinstance(key, str) and key and len(key) <= MAX_KEY_LENGTH:
            yield person_id, key, TraitValue(v, value.observed_at, value.source_id, value.event_id)


def _rows(session: Session, person_ids: Iterable[int]) -> dict[tuple[int, str], ProfileTrait]:
    ids = sorted(set(person_ids))
    out: dict[tuple[int, str], ProfileTrait] = {}
    for i in range(0, len(ids), CHUNK):
        for row in session.scalars(select(ProfileTrait).where(ProfileTrait.person_id.in_(ids[i : i + CHUNK]))):
            out[(row.person_id, row.key)] = row
    return out


def _current(row: ProfileTrait) -> TraitValue:
    return TraitValue(row.value, row.observed_at, row.source_id, row.event_id)


def search_text(value: Any) -> str | None:
    """What the console's search matches for a value: scalars only, lower-cased."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip().lower()
    return text[:255] or None


def _store(row: ProfileTrait, kept: TraitValue, strategy: str) -> None:
    row.value = kept.value
    row.strategy = strategy
    row.observed_at = kept.observed_at
    row.source_id = kept.source_id
    row.event_id = kept.event_id
    row.search_text = search_text(kept.value)
    row.updated_at = utcnow()


def apply(
    session: Session, workspace_id: int, observations: Iterable[Observation], strategies: Strategies | None = None
) -> int:
    """Fold observations (in any order) into the persons' traits; returns how many values changed."""
    batch = list(observations)
    if not batch:
        return 0
    strategies = strategies or strategies_for(session, workspace_id)
    rows = _rows(session, (p for p, _, _ in batch))
    changed = 0
    for person_id, key, incoming in batch:
        strategy = strategies[key]
        row = rows.get((person_id, key))
        if row is None:
            kept = start(strategy, incoming)
            if kept is None:
                continue
            row = rows[(person_id, key)] = ProfileTrait(workspace_id=workspace_id, person_id=person_id, key=key)
            session.add(row)
        else:
            current = _current(row)
            kept = combine(strategy, current, incoming)
            if kept is current:
                continue
        _store(row, kept, strategy)
        changed += 1
    session.flush()
    return changed


def merge(session: Session, workspace_id: int, survivor: int, absorbed: int) -> None:
    """Give `absorbed`'s traits to `survivor`; where both have a key, its strategy decides."""
    strategies = strategies_for(session, workspace_id)
    rows = _rows(session, (survivor, absorbed))
    for (person_id, key), row in rows.items():
        if person_id != absorbed:
            continue
        mine = rows.get((survivor, key))
        if mine is None:
            row.person_id = survivor
            continue
        current, strategy = _current(mine), strategies[key]
        kept = combine(strategy, current, _current(row))
        if kept is not current:
            _store(mine, kept, strategy)
        session.delete(row)
    session.flush()


def rebuild(session: Session, workspace_id: int, persons: Iterable[int], observations: Iterable[Observation]) -> None:
    """Replace the traits of `persons` with what `observations` (their whole history) give."""
    remove(session, workspace_id, persons)
    apply(session, workspace_id, observations)


def remove(session: Session, workspace_id: int, persons: Iterable[int]) -> None:
    ids = sorted(set(persons))
    for i in range(0, len(ids), CHUNK):
        session.execute(
            delete(ProfileTrait)
            .where(ProfileTrait.workspace_id == workspace_id, ProfileTrait.person_id.in_(ids[i : i + CHUNK]))
            .execution_options(synchronize_session=False)
        )
    session.expire_all()  # rows loaded earlier in this session are gone


def values(session: Session, person_id: int) -> dict[str, Any]:
    """key → value of a (checked) person's traits."""
    rows = session.execute(
        select(ProfileTrait.key, ProfileTrait.value)
        .where(ProfileTrait.person_id == person_id)
        .order_by(ProfileTrait.key)
    )
    return {k: v for k, v in rows}


_DETAILS = (
    select(
        ProfileTrait.key,
        ProfileTrait.value,
        ProfileTrait.strategy,
        ProfileTrait.source_id,
        ProfileTrait.event_id,
        ProfileTrait.observed_at,
        ProfileTrait.updated_at,
    )
    .where(ProfileTrait.person_id == bindparam("id"))  # a person is in one workspace: the caller checked which
    .order_by(ProfileTrait.key)
)
_DETAIL_NAMES = ("key", "value", "strategy", "source_id", "event_id", "observed_at", "updated_at")


def details(session: Session, person_id: int) -> list[dict[str, Any]]:
    """Each trait of a (checked) person with its strategy and provenance (source, event, time).

    Filtering on the person alone keeps PostgreSQL on the (person, key) index even before it has
    statistics: with the workspace too, a fresh table got a plan that read the whole workspace."""
    rows = session.execute(_DETAILS, {"id": person_id})
    return [dict(zip(_DETAIL_NAMES, row, strict=True)) for row in rows]
