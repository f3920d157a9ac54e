"""Persons as consent sees them: a super ID's current root upwards, and its family downwards.

Consent records keep the super ID they were recorded for. Reading over the family (the person and
everyone merged into it) gives the survivor of a merge the most recent record of either without
rewriting anything, and an unmerge splits them back the way the identity graph does. Both
directions work on many persons at once: the tracking listener and segment exports ask in bulk.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.identity.models import IdentityPerson

CHUNK = 500
MAX_DEPTH = 10_000


def roots(session: Session, workspace_id: int, super_ids: Iterable[int]) -> dict[int, int | None]:
    """Each id's current super ID, or None when it is unknown, of another workspace, or erased."""
    found: dict[int, int | None] = {}
    parent: dict[int, int | None] = {}
    erased: set[int] = set()
    frontier = sorted(set(super_ids))
    depth = 0
    while frontier and depth < MAX_DEPTH:
        step: list[int] = []
        for start in range(0, len(frontier), CHUNK):
            rows = session.execute(
                select(IdentityPerson.id, IdentityPerson.merged_into, IdentityPerson.erased_at).where(
                    IdentityPerson.workspace_id == workspace_id, IdentityPerson.id.in_(frontier[start : start + CHUNK])
                )
            )
            for pid, merged_into, erased_at in rows:
                parent[pid] = merged_into
                if erased_at is not None:
                    erased.add(pid)
                if merged_into is not None and merged_into not in parent:
                    step.append(merged_into)
        frontier, depth = sorted(set(step)), depth + 1
    for sid in set(super_ids):
        node: int | None = sid if sid in parent else None
        hops = 0
        while node is not None and parent.get(node) is not None and hops < MAX_DEPTH:
            node, hops = parent[node], hops + 1
        found[sid] = None if node is None or node in erased else node
    return found


def families(session: Session, workspace_id: int, roots_: Iterable[int]) -> dict[int, int]:
    """member → root, for each root and everyone merged into it, directly or not."""
    owner = {r: r for r in roots_}
    frontier = sorted(owner)
    while frontier:
        step: list[int] = []
        for start in range(0, len(frontier), CHUNK):
            rows = session.execute(
                select(IdentityPerson.id, IdentityPerson.merged_into).where(
                    IdentityPerson.workspace_id == workspace_id,
                    IdentityPerson.merged_into.in_(frontier[start : start + CHUNK]),
                )
            )
            for pid, into in rows:
                if pid not in owner:
                    owner[pid] = owner[into]
                    step.append(pid)
        frontier = step
    return owner
