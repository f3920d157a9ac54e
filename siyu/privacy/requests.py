"""Subject-rights requests against a running system: what the API, the console and the CLI call.

The work is in `siyu.privacy.service`; this adds what only the process owning the Runtime can do.
First it writes out the clicks and events still queued in memory and stitches everything stored
(`Runtime.stitch_now`), so an export or erasure sees all that was received until now. An erasure
then runs holding the stitcher's lock: no batch can hand the person new events while their rows
are deleted, and afterwards their identifiers are erased, so later events stay anonymous.
"""

from __future__ import annotations

from typing import Any

from siyu.privacy import service
from siyu.runtime import Runtime


def export(rt: Runtime, workspace_id: int, super_id: object, actor: str) -> dict[str, Any]:
    rt.stitch_now()
    with rt.db.session() as session:
        return service.export_person(session, rt.store, workspace_id, super_id, actor)


def preview(rt: Runtime, workspace_id: int, super_id: object) -> dict[str, Any]:
    rt.stitch_now()
    with rt.db.session() as session:
        return service.erasure_preview(session, rt.store, workspace_id, super_id)


def erase(rt: Runtime, workspace_id: int, super_id: object, actor: str) -> dict[str, Any]:
    with rt.stitcher.lock:
        rt.stitch_now()
        with rt.db.session() as session:
            return service.erase_person(session, rt.store, workspace_id, super_id, actor, rt.person_listeners)
