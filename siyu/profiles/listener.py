"""Keeps traits in step with the identity graph: the stitcher calls this `PersonListener`.

Stitched identify events add their traits, a merge combines the two persons' traits by each key's
strategy, a split rebuilds both persons from their own events (the event store knows which events
are whose once the stitcher has re-assigned them), and an erasure deletes everything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.orm import Session

from siyu.events.store import EventStore
from siyu.identity.listeners import StitchedEvent
from siyu.profiles import history, traits
from siyu.profiles.persons import family, roots
from siyu.profiles.strategies import TraitValue


class ProfileListener:
    def __init__(self, store: EventStore):
        self.store = store

    def events_stitched(self, session: Session, events: Sequence[StitchedEvent]) -> None:
        carrying = [e for e in events if e.super_id is not None and e.traits]
        if not carrying:
            return
        current = roots(session, (e.super_id for e in carrying))  # type: ignore[misc]
        by_workspace: dict[int, list[traits.Observation]] = defaultdict(list)
        for e in carrying:
            person = current.get(e.super_id)  # type: ignore[arg-type]
            if person is None:  # no such person (any more): nothing to keep traits on
                continue
            seen = TraitValue(None, e.timestamp, e.source_id, e.event_id)
            by_workspace[e.workspace_id].extend(traits.observations_from(person, e.traits, seen))
        for workspace_id, observations in by_workspace.items():
            traits.apply(session, workspace_id, observations)

    def persons_merged(self, session: Session, workspace_id: int, survivor: int, absorbed: int) -> None:
        traits.merge(session, workspace_id, survivor, absorbed)

    def person_split(self, session: Session, workspace_id: int, kept: int, restored: int) -> None:
        owner = {i: kept for i in family(session, kept)}
        owner.update({i: restored for i in family(session, restored)})
        observations = [
            obs
            for h in history.identifies(self.store, workspace_id, list(owner))
            for obs in traits.observations_from(
                owner[h.super_id], h.traits, TraitValue(None, h.timestamp, h.source_id, h.event_id)
            )
        ]
        traits.rebuild(session, workspace_id, (kept, restored), observations)

    def person_erased(self, session: Session, workspace_id: int, super_id: int) -> None:
        traits.remove(session, workspace_id, family(session, super_id))
