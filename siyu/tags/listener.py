"""Tags and segments follow the identity graph: the stitcher calls this `PersonListener`.

* events_stitched: persons whose new events a streaming tag counts are handed to the worker, after
  the stitcher's transaction commits (the worker decides them once the events are in `event_persons`).
* persons_merged: the absorbed person's tags move to the survivor (a tag both hold keeps the
  survivor's value; the move is recorded as 'gained', cause 'merge'); its segment memberships end,
  the next computation puts the survivor where it belongs.
* person_split: both persons are recomputed on the next run.

Every change is also reported to the worker (`changed`), so the next refresh of the per-person facts
reads again only the persons that changed.
* person_erased: every tag, tag history row, segment membership (current, past and in snapshots)
  and per-person fact of the person's family is deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from siyu.db import after_commit, utcnow
from siyu.identity.listeners import StitchedEvent
from siyu.profiles.persons import family
from siyu.segments.models import SegmentHistory, SegmentMember, SnapshotMember
from siyu.segments.rules import ANY_EVENT
from siyu.tags import definitions
from siyu.tags.compute import Change, apply_changes
from siyu.tags.models import TagAssignment, TagDefinition, TagHistory

BEHAVIOUR = ("track", "page", "screen")


def behaviour_name(e: StitchedEvent) -> str | None:
    """The event's name as rules see it (siyu.segments.facts), None for identify, group and alias."""
    if e.kind == "click":
        return e.event
    if e.type not in BEHAVIOUR:
        return None
    return e.event if e.type == "track" else e.type


class TagListener:
    def __init__(
        self,
        notify: Callable[[Mapping[int, set[int]]], None],
        forget: Callable[[int, list[int]], None],
        changed: Callable[..., None],
    ):
        self.notify = notify  # the worker's queue of persons to decide
        self.forget = forget  # drop erased persons from the facts
        self.changed = changed  # persons whose facts must be read again, or dropped, at the next refresh
        self._names: dict[int, tuple[int, frozenset[str]]] = {}

    def _streamed(self, session: Session, workspace_id: int) -> frozenset[str]:
        """Event names the workspace's streaming tags count ('*' for any behaviour), re-read after changes."""
        hit = self._names.get(workspace_id)
        if hit is not None and hit[0] == definitions.generation:
            return hit[1]
        specs = session.scalars(
            select(TagDefinition.spec).where(
                TagDefinition.workspace_id == workspace_id,
                TagDefinition.streaming.is_(True),
                TagDefinition.enabled.is_(True),
            )
        )
        names = frozenset(str((s or {}).get("rule", {}).get("event", ANY_EVENT)) for s in specs)
        self._names[workspace_id] = (definitions.generation, names)
        return names

    def events_stitched(self, session: Session, events: Sequence[StitchedEvent]) -> None:
        touched: dict[int, set[int]] = defaultdict(set)
        people: dict[int, set[int]] = defaultdict(set)
        for e in events:
            if e.super_id is None:
                continue
            people[e.workspace_id].add(e.super_id)  # their traits or identifiers may have changed
            name = behaviour_name(e)
            if name is None:
                continue
            names = self._streamed(session, e.workspace_id)
            if names and (name in names or ANY_EVENT in names):
                touched[e.workspace_id].add(e.super_id)
        for ws, ids in people.items():
            self.changed(ws, touched=ids)
        if touched:
            after_commit(session, lambda: self.notify(dict(touched)))

    def persons_merged(self, session: Session, workspace_id: int, survivor: int, absorbed: int) -> None:
        self.changed(workspace_id, touched=[survivor], gone=[absorbed])
        held = set(
            session.scalars(
                select(TagAssignment.tag_id).where(
                    TagAssignment.workspace_id == workspace_id, TagAssignment.super_id == survivor
                )
            )
        )
        moved: dict[int, Any] = {}
        for row in session.scalars(
            select(TagAssignment).where(TagAssignment.workspace_id == workspace_id, TagAssignment.super_id == absorbed)
        ):
            if row.tag_id in held:
                session.delete(row)
            else:
                moved[row.tag_id] = row.value
                session.delete(row)
        session.flush()
        at = utcnow()
        for tag_id, value in moved.items():
            tag = session.get(TagDefinition, tag_id)
            if tag is not None:
                apply_changes(session, tag, [Change(survivor, None, value, "gained")], "merge", at)
        session.execute(
            delete(SegmentMember)
            .where(SegmentMember.workspace_id == workspace_id, SegmentMember.super_id == absorbed)
            .execution_options(synchronize_session=False)
        )

    def person_split(self, session: Session, workspace_id: int, kept: int, restored: int) -> None:
        self.changed(workspace_id, touched=[kept, restored])

    def person_erased(self, session: Session, workspace_id: int, super_id: int) -> None:
        members = family(session, super_id)
        for model in (TagAssignment, TagHistory, SegmentMember, SegmentHistory, SnapshotMember):
            session.execute(
                delete(model)
                .where(model.workspace_id == workspace_id, model.super_id.in_(members))
                .execution_options(synchronize_session=False)
            )
        self.changed(workspace_id, gone=members)
        after_commit(session, lambda: self.forget(workspace_id, members))
