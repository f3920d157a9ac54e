"""Which super IDs are current persons of a workspace, in bulk.

The event store names people by the super ID the stitcher knew; by the time a value run writes tags
some may have been merged (their survivor holds them now) or erased (they must not come back). Tag
writes refuse unknown IDs, so a run maps every ID to its current person first, a chunk of IDs per
query and one query per merge step, never one query per person.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.identity.models import IdentityPerson

CHUNK = 500
MAX_STEPS = 64  # merge chains are short: each merge adds one step


def current_persons(session: Session, workspace_id: int, ids: Iterable[int]) -> dict[int, int]:
    """{id: the current super ID holding it} for the IDs that are live persons of the workspace (directly
    or through merges); erased persons and IDs of other workspaces are left out."""
    wanted = sorted({int(i) for i in ids})
    parent: dict[int, int | None] = {}
    pending = wanted
    for _ in range(MAX_STEPS):
        if not pending:
            break
        found: list[int] = []
        for i in range(0, len(pending), CHUNK):
            rows = session.execute(
                select(IdentityPerson.id, IdentityPerson.merged_into, IdentityPerson.erased_at).where(
                    IdentityPerson.workspace_id == workspace_id, IdentityPerson.id.in_(pending[i : i + CHUNK])
                )
            )
            for pid, merged_into, erased in rows:
                if erased is None or merged_into is not None:
                    parent[pid] = merged_into
                    if merged_into is not None:
                        found.append(merged_into)
        pending = sorted({p for p in found if p not in parent})
    out: dict[int, int] = {}
    for pid in wanted:
        node, steps = pid, 0
        while node in parent and parent[node] is not None and steps < MAX_STEPS:
            node, steps = parent[node], steps + 1  # type: ignore[assignment]
        if node in parent and parent[node] is None:
            out[pid] = node
    return out
