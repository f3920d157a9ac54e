"""REST endpoints for sources and their write keys: /api/v1/sources (scope `sources:write`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from siyu.api.auth import Caller, require_caller, runtime_of
from siyu.sources import service as sources
from siyu.sources.models import SOURCE_KINDS

router = APIRouter(tags=["sources"])
CallerDep = Annotated[Caller, Depends(require_caller)]
SourceId = Annotated[int, Path(ge=1, le=2**62, description="source id")]
Kind = Literal[SOURCE_KINDS]  # type: ignore[valid-type]  (typing flattens the tuple into the choices)


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(examples=["官网 (website)"])
    kind: Kind = Field("other", description="the touchpoint this source stands for")


class SourceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    kind: Kind | None = None
    enabled: bool | None = Field(None, description="a disabled source's write key is refused (401)")


@router.get("/sources", summary="Sources of the workspace (write keys are never shown again)")
def list_sources(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("sources:write")
    with runtime_of(request).db.session() as session:
        return {"sources": [sources.as_dict(s) for s in sources.list_sources(session, caller.workspace_id)]}


@router.post("/sources", status_code=201, summary="Create a source; its write key is shown once")
def create_source(request: Request, caller: CallerDep, body: SourceCreate) -> dict[str, Any]:
    caller.require("sources:write")
    with runtime_of(request).db.session() as session:
        issued = sources.create_source(session, caller.workspace_id, body.name, body.kind)
        return {**sources.as_dict(issued.source), "write_key": issued.write_key}


@router.get("/sources/{source_id}")
def get_source(request: Request, caller: CallerDep, source_id: SourceId) -> dict[str, Any]:
    caller.require("sources:write")
    with runtime_of(request).db.session() as session:
        return sources.as_dict(sources.get_source(session, caller.workspace_id, source_id))


@router.patch("/sources/{source_id}", summary="Rename, re-kind, enable or disable a source")
def update_source(request: Request, caller: CallerDep, source_id: SourceId, body: SourceUpdate) -> dict[str, Any]:
    caller.require("sources:write")
    with runtime_of(request).db.session() as session:
        source = sources.update_source(session, caller.workspace_id, source_id, body.model_dump(exclude_unset=True))
        return sources.as_dict(source)


@router.post("/sources/{source_id}/rotate-key", summary="Issue a new write key; the old one stops working")
def rotate_key(request: Request, caller: CallerDep, source_id: SourceId) -> dict[str, Any]:
    caller.require("sources:write")
    with runtime_of(request).db.session() as session:
        issued = sources.rotate_write_key(session, caller.workspace_id, source_id)
        return {**sources.as_dict(issued.source), "write_key": issued.write_key}
