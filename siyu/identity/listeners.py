"""What the identity stitcher tells the rest of the system: events resolved to persons, merges, splits.

The stitcher (siyu.identity.stitch) resolves stored events to super IDs in the background and
calls every registered `PersonListener` inside its own SQL transaction, so that profiles (traits),
consent records and anything else keyed by person stay in step with the identity graph. The
Runtime registers the listeners; domain packages never import each other for this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class StitchedEvent:
    """One stored event (or short-link click) and the person it now belongs to.

    `event_id` is the event's message_id, or the click's click_id (kind 'click'); `super_id` is
    None for an anonymous event. `traits` are the identify traits merged over `context.traits`
    (empty for other types); `timestamp` is timezone-aware UTC.
    """

    workspace_id: int
    event_id: str
    kind: str  # 'event' | 'click'
    type: str  # identify / track / page / screen / group / alias (clicks: 'track')
    event: str | None  # a track's name ('Short Link Clicked' for clicks)
    timestamp: datetime
    super_id: int | None
    source_id: int | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


class PersonListener(Protocol):
    def events_stitched(self, session: Session, events: Sequence[StitchedEvent]) -> None:
        """A batch of events has been resolved (anonymous events included, with super_id None; clicks
        only when they belong to someone: an anonymous click carries nothing a listener keeps)."""

    def persons_merged(self, session: Session, workspace_id: int, survivor: int, absorbed: int) -> None:
        """`absorbed` was merged into `survivor` (the older super ID survives)."""

    def person_split(self, session: Session, workspace_id: int, kept: int, restored: int) -> None:
        """An unmerge split `restored` back out of `kept`; both persons' events are re-assigned first."""

    def person_erased(self, session: Session, workspace_id: int, super_id: int) -> None:
        """The person is being erased (PIPL): drop everything kept about them."""
