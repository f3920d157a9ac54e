"""REST endpoints for One ID: /api/v1/identity/... (scopes `identity:read`, `identity:write`).

Look a person up by any identifier, read a person with their identifiers and merge log, identify
server-side, unmerge, and read the guard rails' work (conflicts, quarantined values) and the
identifier types. Every bad input is a 422 naming its field.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from siyu.api.auth import Caller, require_caller, runtime_of
from siyu.errors import NotFound
from siyu.identity import service
from siyu.identity.rules import configure_type, get_rules

router = APIRouter(prefix="/identity", tags=["identity"])
CallerDep = Annotated[Caller, Depends(require_caller)]
PersonId = Annotated[int, Path(ge=1, le=2**62, description="super ID (祖ID)")]
Limit = Annotated[int, Query(ge=1, le=1000)]


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identifiers: list[Any] = Field(
        description='[{"type": "phone", "value": "13800138001"}, ...] or [["phone", "13800138001"], ...]',
        examples=[[{"type": "member_id", "value": "M-1001"}, {"type": "phone", "value": "139 1234 5678"}]],
    )
    event_ref: str | None = Field(None, description="what caused this link, kept in the merge log")


def _actor(caller: Caller) -> str:
    return f"key:{caller.key_name}"


def person_json(session, workspace_id: int, super_id: int) -> dict[str, Any]:
    """A person: identifiers strongest first, the merge log of everyone in it (with `can_unmerge`)."""
    person = service.profile(session, workspace_id, super_id)
    merges = service.merge_log(session, workspace_id, person["super_id"])
    movable = service.still_merged(session, workspace_id, [m["merged_id"] for m in merges])
    for m in merges:
        m["can_unmerge"] = m["action"] == "merge" and m["merged_id"] in movable
    return {**person, "merges": merges}


@router.get("/lookup", summary="The person holding an identifier (any type: phone, member_id, openid …)")
def lookup(
    request: Request,
    caller: CallerDep,
    type: Annotated[str, Query(max_length=64, description="identifier type, e.g. phone")],
    value: Annotated[str, Query(max_length=1000)],
) -> dict[str, Any]:
    caller.require("identity:read")
    with runtime_of(request).db.session() as session:
        super_id = service.lookup(session, caller.workspace_id, type, value)
        if super_id is None:
            raise NotFound(f"no person holds this {type}")
        return person_json(session, caller.workspace_id, super_id)


@router.get("/persons/{super_id}", summary="A person (a merged-away super ID answers with where it lives now)")
def get_person(request: Request, caller: CallerDep, super_id: PersonId) -> dict[str, Any]:
    caller.require("identity:read")
    rt = runtime_of(request)
    with rt.db.session() as session:
        person = person_json(session, caller.workspace_id, super_id)
    person["events"] = len(rt.store.event_ids_of(caller.workspace_id, person["super_id"]))
    return person


@router.post("/resolve", summary="Identify server-side: link a set of identifiers to one person")
def resolve(request: Request, caller: CallerDep, body: ResolveBody) -> dict[str, Any]:
    caller.require("identity:write")
    outcome = runtime_of(request).stitcher.identify(caller.workspace_id, body.identifiers, body.event_ref)
    return {
        "super_id": outcome.person,
        "merged": outcome.merged,
        "refused": [
            {"kind": r.kind, "via": list(r.via), "other_person_id": r.other, "clash_type": r.clash_type}
            for r in outcome.refused
        ],
    }


@router.post("/persons/{super_id}/unmerge", summary="Split a merged person back out; their events follow")
def unmerge(request: Request, caller: CallerDep, super_id: PersonId) -> dict[str, Any]:
    caller.require("identity:write")
    rt = runtime_of(request)
    split = rt.stitcher.unmerge(caller.workspace_id, super_id, _actor(caller))
    with rt.db.session() as session:
        return {
            "kept": person_json(session, caller.workspace_id, split.kept),
            "restored": person_json(session, caller.workspace_id, split.restored),
            "moved": [list(k) for k in split.moved],
        }


@router.get("/merges", summary="Recent merges and unmerges, newest first")
def merges(request: Request, caller: CallerDep, limit: Limit = 50) -> dict[str, Any]:
    caller.require("identity:read")
    with runtime_of(request).db.session() as session:
        return {"merges": service.recent_merges(session, caller.workspace_id, limit)}


@router.get("/conflicts", summary="Links the guard rails refused, newest first")
def conflicts(request: Request, caller: CallerDep, limit: Limit = 100) -> dict[str, Any]:
    caller.require("identity:read")
    with runtime_of(request).db.session() as session:
        return {"conflicts": service.list_conflicts(session, caller.workspace_id, limit)}


@router.get("/quarantine", summary="Values shared by too many people: they link no one")
def quarantine(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("identity:read")
    with runtime_of(request).db.session() as session:
        return {"quarantined": service.quarantined(session, caller.workspace_id)}


@router.get("/types", summary="Identifier types: priority, uniqueness, caps, blocked values")
def list_types(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("identity:read")
    with runtime_of(request).db.session() as session:
        return {"types": get_rules(session, caller.workspace_id).as_list()}


@router.put("/types/{name}", summary="Change a default identifier type or add a custom one (e.g. crm_id)")
def put_type(
    request: Request,
    caller: CallerDep,
    name: Annotated[str, Path(max_length=64)],
    body: dict[str, Any],
) -> dict[str, Any]:
    caller.require("identity:write")
    with runtime_of(request).db.session() as session:
        return configure_type(session, caller.workspace_id, name, body).as_dict()
