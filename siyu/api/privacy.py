"""REST endpoints for subject rights (scope `privacy:write`): export a person, erase a person, the audit log.

POST /privacy/persons/{super_id}/export    everything kept about the person, as JSON (audited)
POST /privacy/persons/{super_id}/erase     erase the person everywhere; answers the audit entry
GET  /privacy/audit                        exports and erasures, newest first
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from siyu.api.auth import Caller, require_caller, runtime_of
from siyu.privacy import requests, service

router = APIRouter(prefix="/privacy", tags=["privacy"])
CallerDep = Annotated[Caller, Depends(require_caller)]
SuperId = Annotated[int, Path(ge=1, le=2**62, description="super ID (祖ID) of the person")]


def _actor(caller: Caller) -> str:
    return f"key:{caller.key_name}"[: service.MAX_ACTOR]


@router.post("/persons/{super_id}/export", summary="Export everything kept about a person (audited)")
def export_person(request: Request, caller: CallerDep, super_id: SuperId) -> dict[str, Any]:
    caller.require("privacy:write")
    return requests.export(runtime_of(request), caller.workspace_id, super_id, _actor(caller))


@router.post(
    "/persons/{super_id}/erase",
    summary="Erase a person: events, clicks, traits, consent records and identifiers (audited)",
)
def erase_person(request: Request, caller: CallerDep, super_id: SuperId) -> dict[str, Any]:
    caller.require("privacy:write")
    return requests.erase(runtime_of(request), caller.workspace_id, super_id, _actor(caller))


@router.get("/audit", summary="Exports and erasures, newest first (no personal data beyond the super ID)")
def audit(
    request: Request,
    caller: CallerDep,
    super_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    action: Literal["export", "erase"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    caller.require("privacy:write")
    with runtime_of(request).db.session() as session:
        rows = service.audit_log(
            session, caller.workspace_id, super_id=super_id, action=action, limit=limit, offset=offset
        )
    return {"audit": rows, "limit": limit, "offset": offset}
