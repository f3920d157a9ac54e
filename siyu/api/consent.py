"""REST endpoints for consent: purposes (scope `consent:write` to change) and each person's consent.

GET  /consent/purposes                      purposes, and consent the tracking API could not record
POST /consent/purposes                      add a purpose
PUT  /consent/purposes/{code}               rename, describe, disable or re-enable one
GET  /consent/persons/{super_id}            a person's current consent per purpose
POST /consent/persons/{super_id}            record a consent change (source `api`)
GET  /consent/persons/{super_id}/history    every record, newest first
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from siyu.api.auth import Caller, require_caller, runtime_of
from siyu.consent import issues, purposes
from siyu.consent import service as consent
from siyu.identity.service import current_super_id

router = APIRouter(prefix="/consent", tags=["consent"])
CallerDep = Annotated[Caller, Depends(require_caller)]
SuperId = Annotated[int, Path(ge=1, le=2**62, description="super ID (祖ID) of the person")]
Code = Annotated[str, Path(max_length=64, description="purpose code, e.g. marketing")]


class PurposeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(examples=["membership_sms"], description="lower-case letters, digits and '_'; never changes")
    name: str = Field(examples=["会员短信"], description="Chinese display name")
    name_en: str | None = Field(None, examples=["Member SMS"])
    description: str | None = None
    enabled: bool | None = None


class PurposeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    name_en: str | None = None
    description: str | None = None
    enabled: bool | None = Field(None, description="a disabled purpose takes no new consent; has_consent is false")


class ConsentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(examples=["marketing"])
    status: Literal["granted", "denied", "withdrawn"] = Field(
        description="'denied' after a grant is stored as 'withdrawn'; 'withdrawn' without a grant as 'denied'"
    )
    evidence: str = Field("", max_length=500, description="free text or a reference: a form id, a call id")
    recorded_at: datetime | None = Field(None, description="when the person said it (default: now)")


@router.get("/purposes", summary="Purposes of the workspace, and consent codes the tracking API could not record")
def list_purposes(request: Request, caller: CallerDep) -> dict[str, Any]:
    _read(caller)
    with runtime_of(request).db.session() as session:
        return {
            "purposes": [p.as_dict() for p in purposes.list_purposes(session, caller.workspace_id)],
            "issues": issues.list_issues(session, caller.workspace_id),
        }


@router.post("/purposes", status_code=201, summary="Add a purpose")
def add_purpose(request: Request, caller: CallerDep, body: PurposeCreate) -> dict[str, Any]:
    caller.require("consent:write")
    with runtime_of(request).db.session() as session:
        return purposes.add_purpose(session, caller.workspace_id, body.model_dump(exclude_none=True)).as_dict()


@router.put("/purposes/{code}", summary="Rename, describe, disable or re-enable a purpose")
def update_purpose(request: Request, caller: CallerDep, code: Code, body: PurposeUpdate) -> dict[str, Any]:
    caller.require("consent:write")
    with runtime_of(request).db.session() as session:
        changes = body.model_dump(exclude_none=True)
        return purposes.update_purpose(session, caller.workspace_id, code, changes).as_dict()


@router.get("/persons/{super_id}", summary="A person's current consent per purpose (status null: never asked)")
def person_consents(request: Request, caller: CallerDep, super_id: SuperId) -> dict[str, Any]:
    _read(caller)
    with runtime_of(request).db.session() as session:
        current = consent.current_consents(session, caller.workspace_id, super_id)
        return {"super_id": _root(session, caller, super_id), "consents": current}


@router.post("/persons/{super_id}", status_code=201, summary="Record a consent change for a person")
def record_consent(request: Request, caller: CallerDep, super_id: SuperId, body: ConsentChange) -> dict[str, Any]:
    caller.require("consent:write")
    with runtime_of(request).db.session() as session:
        return consent.record(
            session,
            caller.workspace_id,
            super_id,
            body.purpose,
            body.status,
            source="api",
            evidence=body.evidence,
            actor=f"key:{caller.key_name}"[:200],
            recorded_at=body.recorded_at,
        )


@router.get("/persons/{super_id}/history", summary="A person's consent records, newest first")
def consent_history(
    request: Request,
    caller: CallerDep,
    super_id: SuperId,
    purpose: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    _read(caller)
    with runtime_of(request).db.session() as session:
        rows = consent.history(session, caller.workspace_id, super_id, purpose, limit)
        return {"super_id": _root(session, caller, super_id), "history": rows}


def _read(caller: Caller) -> None:
    if "consent:write" not in caller.scopes:
        caller.require("consent:read")


def _root(session: Session, caller: Caller, super_id: int) -> int:
    return current_super_id(session, caller.workspace_id, super_id)
