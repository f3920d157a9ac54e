"""REST endpoints for segments (人群) and audience exports (人群包).

    GET    /segments                          segments with member counts
    POST   /segments                          define one: {name, description, rule}
    POST   /segments/preview                  the live count of a rule being edited (nothing saved)
    GET    /segments/schema                   names and operators a rule may use (for editors)
    GET    /segments/exports                  the audience export log
    GET    /segments/{id}                     definition, versions, snapshots
    PUT    /segments/{id}                     change it (a new version)
    DELETE /segments/{id}                     delete it (its snapshots stay)
    POST   /segments/{id}/recompute           recompute its members now
    GET    /segments/{id}/members             members now
    GET    /segments/{id}/history             who joined and left, when
    POST   /segments/{id}/snapshots           freeze today's members (a static segment)
    POST   /segments/{id}/export              hashed phones or device ids as a file (data-sharing consent only)
    POST   /segments/snapshots/{id}/export    the same for a snapshot

Definitions and counts need `analytics:read`; members and history `profiles:read`; changes
`segments:write`; exports `audiences:export`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from siyu.api.auth import Caller, require_caller, runtime_of
from siyu.segments import audience, vocabulary
from siyu.segments import service as segments

router = APIRouter(prefix="/segments", tags=["segments"])
CallerDep = Annotated[Caller, Depends(require_caller)]
SegmentId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=segments.MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
EXAMPLE_RULE = {
    "and": [
        {"type": "trait", "field": "city", "op": "eq", "value": "上海"},
        {"type": "event", "event": "Order Completed", "within_days": 90, "op": "gte", "value": 2},
        {"not": {"type": "event", "event": "*", "within_days": 30}},
    ]
}


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(examples=["上海复购但近期沉默"])
    description: str | None = None
    rule: Any = Field(description="a rule tree (docs/segments.md)", examples=[EXAMPLE_RULE])


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    description: str | None = None
    rule: Any = None


class Preview(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: Any = Field(examples=[EXAMPLE_RULE])


class SnapshotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, description="default: the segment's name and the time")
    recompute: bool = Field(True, description="recompute the segment first, so the snapshot is of now")


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id_type: Literal["phone", "device_id"] = Field("phone", description="phone: 11-digit mainland numbers")
    hash: Literal["md5", "sha256"] = "md5"


def _actor(caller: Caller) -> str:
    return f"key:{caller.key_name}"


@router.get("", summary="Segments with their member counts")
def list_segments(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("analytics:read")
    rt = runtime_of(request)
    persons = segments.persons_count(rt.store, caller.workspace_id)
    with rt.db.session() as session:
        return {
            "persons": persons,
            "segments": [
                segments.segment_dict(s, persons) for s in segments.list_segments(session, caller.workspace_id)
            ],
        }


@router.post("", status_code=201, summary="Define a segment (computed at once)")
def create_segment(request: Request, caller: CallerDep, body: SegmentCreate) -> dict[str, Any]:
    caller.require("segments:write")
    rt = runtime_of(request)
    with rt.db.session() as session:
        seg_id = segments.create_segment(
            session, caller.workspace_id, body.model_dump(exclude_none=True), _actor(caller)
        ).id
    return _recomputed(request, caller, seg_id)


def _recomputed(request: Request, caller: Caller, segment_id: int) -> dict[str, Any]:
    rt = runtime_of(request)
    result = rt.tags.recompute_segments(caller.workspace_id, [segment_id])  # None: a run is under way
    with rt.db.session() as session:
        out = segments.segment_dict(segments.get_segment(session, caller.workspace_id, segment_id))
    out["error"] = result[0].error if result else None
    return out


@router.post("/preview", summary="Count a rule while it is edited (nothing is saved)")
def preview(request: Request, caller: CallerDep, body: Preview) -> dict[str, Any]:
    caller.require("analytics:read")
    rt = runtime_of(request)
    with rt.db.session() as session:
        return segments.preview(session, rt.store, caller.workspace_id, body.rule)


@router.get("/schema", summary="What a rule may name: traits, tags, purposes, identifier types, links, events")
def schema(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("analytics:read")
    rt = runtime_of(request)
    with rt.db.session() as session:
        return vocabulary.builder_schema(session, rt.store, caller.workspace_id)


@router.get("/exports", summary="Every audience export: what, who, how hashed, how many refused")
def exports(request: Request, caller: CallerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    caller.require("analytics:read")
    with runtime_of(request).db.session() as session:
        return {"exports": audience.export_log(session, caller.workspace_id, limit)}


@router.post("/snapshots/{snapshot_id}/export", summary="A snapshot's audience file (人群包)")
def export_snapshot(request: Request, caller: CallerDep, snapshot_id: SegmentId, body: ExportRequest) -> Response:
    caller.require("audiences:export")
    return _export(request, caller, snapshot_id=snapshot_id, body=body)


@router.get("/{segment_id}", summary="A segment: definition, versions, snapshots")
def get_segment(request: Request, caller: CallerDep, segment_id: SegmentId) -> dict[str, Any]:
    caller.require("analytics:read")
    rt = runtime_of(request)
    persons = segments.persons_count(rt.store, caller.workspace_id)
    with rt.db.session() as session:
        seg = segments.get_segment(session, caller.workspace_id, segment_id)
        return {
            **segments.segment_dict(seg, persons),
            "versions": segments.versions(session, seg),
            "snapshots": segments.list_snapshots(session, caller.workspace_id, seg.id),
        }


@router.put("/{segment_id}", summary="Change a segment (a new version; recomputed at once)")
def update_segment(request: Request, caller: CallerDep, segment_id: SegmentId, body: SegmentUpdate) -> dict[str, Any]:
    caller.require("segments:write")
    with runtime_of(request).db.session() as session:
        segments.update_segment(
            session, caller.workspace_id, segment_id, body.model_dump(exclude_none=True), _actor(caller)
        )
    return _recomputed(request, caller, segment_id)


@router.delete("/{segment_id}", status_code=204, summary="Delete a segment (its snapshots stay)")
def delete_segment(request: Request, caller: CallerDep, segment_id: SegmentId) -> None:
    caller.require("segments:write")
    with runtime_of(request).db.session() as session:
        segments.delete_segment(session, caller.workspace_id, segment_id)


@router.post("/{segment_id}/recompute", summary="Recompute a segment's members from the facts now")
def recompute(request: Request, caller: CallerDep, segment_id: SegmentId) -> dict[str, Any]:
    caller.require("segments:write")
    with runtime_of(request).db.session() as session:
        segments.get_segment(session, caller.workspace_id, segment_id)
    return _recomputed(request, caller, segment_id)


@router.get("/{segment_id}/members", summary="A segment's members now")
def members(
    request: Request, caller: CallerDep, segment_id: SegmentId, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    caller.require("profiles:read")
    with runtime_of(request).db.session() as session:
        return segments.members(session, caller.workspace_id, segment_id, limit, offset)


@router.get("/{segment_id}/history", summary="Who joined and left the segment, newest first")
def history(
    request: Request,
    caller: CallerDep,
    segment_id: SegmentId,
    limit: Limit = 50,
    offset: Offset = 0,
    super_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> dict[str, Any]:
    caller.require("profiles:read")
    with runtime_of(request).db.session() as session:
        return segments.history(session, caller.workspace_id, segment_id, limit, offset, super_id)


@router.post("/{segment_id}/snapshots", status_code=201, summary="Freeze the members (a static segment)")
def snapshot(request: Request, caller: CallerDep, segment_id: SegmentId, body: SnapshotCreate) -> dict[str, Any]:
    caller.require("segments:write")
    rt = runtime_of(request)
    if body.recompute:
        recompute(request, caller, segment_id)
    with rt.db.session() as session:
        snap = segments.create_snapshot(session, caller.workspace_id, segment_id, _actor(caller), body.name)
        return segments.snapshot_dict(snap)


@router.post("/{segment_id}/export", summary="The segment's audience file (人群包): hashed, consented people only")
def export_segment(request: Request, caller: CallerDep, segment_id: SegmentId, body: ExportRequest) -> Response:
    caller.require("audiences:export")
    return _export(request, caller, segment_id=segment_id, body=body)


def _export(
    request: Request, caller: Caller, body: ExportRequest, segment_id: int | None = None, snapshot_id: int | None = None
) -> Response:
    with runtime_of(request).db.session() as session:
        result = audience.export_audience(
            session,
            caller.workspace_id,
            segment_id=segment_id,
            snapshot_id=snapshot_id,
            id_type=body.id_type,
            hash=body.hash,
            actor=_actor(caller),
        )
    log = result.log
    name = f"audience-{log['id']}-{body.id_type}-{body.hash}.csv"
    return Response(
        result.text(),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{name}"',
            "x-siyu-export-id": str(log["id"]),
            "x-siyu-members": str(log["members"]),
            "x-siyu-refused": str(log["refused"]),
            "x-siyu-exported": str(log["exported"]),
            "x-siyu-rows": str(log["rows"]),
        },
    )
