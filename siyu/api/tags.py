"""REST endpoints for tags (标签): fact, rule and model tags, their computation, holders and history.

    GET    /tags                          definitions with member counts and coverage
    POST   /tags                          define a tag (fact: trait; rule: rule tree; model: values)
    POST   /tags/recompute                refresh facts, compute tags, recompute segments, now
    GET    /tags/persons/{super_id}       a person's tags and tag history
    GET    /tags/{code}                   definition, versions, counts per value, recent changes
    PUT    /tags/{code}                   change it (a new version)
    DELETE /tags/{code}                   delete it (refused while a segment or rule tag reads it)
    GET    /tags/{code}/members           who holds it
    PUT    /tags/{code}/values            a model tag's values: {"values": {"<super_id>": "high", ...}}

Definitions and counts need `analytics:read`; who holds a tag is personal (`profiles:read`);
changing anything needs `segments:write`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from siyu.api.auth import Caller, require_caller, runtime_of
from siyu.errors import InvalidInput
from siyu.segments.service import persons_count
from siyu.tags import compute, definitions, reading

router = APIRouter(tags=["tags"])
CallerDep = Annotated[Caller, Depends(require_caller)]
Code = Annotated[str, Path(max_length=64, description="tag code, e.g. coffee_lover")]
SuperId = Annotated[int, Path(ge=1, le=2**62, description="super ID (祖ID) of the person")]
Limit = Annotated[int, Query(ge=1, le=reading.MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


class TagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(examples=["coffee_lover"], description="lower-case letters, digits and '_'; never changes")
    name: str = Field(examples=["精品咖啡爱好者"])
    name_en: str | None = Field(None, examples=["Specialty coffee lover"])
    description: str | None = None
    kind: str = Field(description="fact | rule | model", examples=["rule"])
    enabled: bool | None = None
    trait: str | None = Field(
        None, description="fact tags: the trait whose value is the tag's value", examples=["city"]
    )
    rule: Any = Field(
        None,
        description="rule tags: a rule tree (docs/segments.md)",
        examples=[{"type": "event", "event": "Short Link Clicked", "link_tag": "咖啡", "within_days": 30, "value": 3}],
    )
    values: Any = Field(
        None,
        description="model tags: the values a model may write",
        examples=[[{"code": "high", "name": "高", "name_en": "High"}, {"code": "low", "name": "低", "name_en": "Low"}]],
    )


class TagUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    name_en: str | None = None
    description: str | None = None
    enabled: bool | None = None
    trait: str | None = None
    rule: Any = None
    values: Any = None


class ModelValues(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: dict[str, str | None] = Field(
        description="super ID → value code (null removes the tag)", examples=[{"1001": "high", "1002": "low"}]
    )
    replace: bool = Field(False, description="people not named lose the tag")


def _actor(caller: Caller) -> str:
    return f"key:{caller.key_name}"


@router.get("/tags", summary="Tags with their member counts and coverage")
def list_tags(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("analytics:read")
    rt = runtime_of(request)
    persons = persons_count(rt.store, caller.workspace_id)
    with rt.db.session() as session:
        tags = definitions.list_tags(session, caller.workspace_id)
        return {"persons": persons, "tags": [definitions.tag_dict(t, persons) for t in tags]}


@router.post("/tags", status_code=201, summary="Define a tag")
def create_tag(request: Request, caller: CallerDep, body: TagCreate) -> dict[str, Any]:
    caller.require("segments:write")
    with runtime_of(request).db.session() as session:
        tag = definitions.create_tag(session, caller.workspace_id, body.model_dump(exclude_none=True), _actor(caller))
        return definitions.tag_dict(tag)


@router.post("/tags/recompute", summary="Refresh the facts, compute every tag and segment now")
def recompute(
    request: Request,
    caller: CallerDep,
    full: Annotated[bool, Query(description="rebuild the behaviour facts from all events, not just new ones")] = False,
) -> dict[str, Any]:
    caller.require("segments:write")
    reports = runtime_of(request).tags.recompute(caller.workspace_id, full_events=full, cause="manual")
    return reports[0].as_dict()


@router.get("/tags/persons/{super_id}", summary="A person's tags, and what they gained and lost when")
def person_tags(
    request: Request, caller: CallerDep, super_id: SuperId, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    caller.require("profiles:read")
    with runtime_of(request).db.session() as session:
        return reading.person_tags(session, caller.workspace_id, super_id, limit, offset)


@router.get("/tags/{code}", summary="A tag: definition, versions, counts per value, recent changes")
def get_tag(request: Request, caller: CallerDep, code: Code) -> dict[str, Any]:
    caller.require("analytics:read")
    rt = runtime_of(request)
    persons = persons_count(rt.store, caller.workspace_id)
    with rt.db.session() as session:
        return reading.tag_detail(session, caller.workspace_id, code, persons)


@router.put("/tags/{code}", summary="Change a tag (a new version)")
def update_tag(request: Request, caller: CallerDep, code: Code, body: TagUpdate) -> dict[str, Any]:
    caller.require("segments:write")
    with runtime_of(request).db.session() as session:
        raw = body.model_dump(exclude_none=True)
        return definitions.tag_dict(definitions.update_tag(session, caller.workspace_id, code, raw, _actor(caller)))


@router.delete("/tags/{code}", status_code=204, summary="Delete a tag, its assignments and history")
def delete_tag(request: Request, caller: CallerDep, code: Code) -> None:
    caller.require("segments:write")
    with runtime_of(request).db.session() as session:
        definitions.delete_tag(session, caller.workspace_id, code)


@router.get("/tags/{code}/members", summary="Who holds a tag (and its value)")
def tag_members(
    request: Request,
    caller: CallerDep,
    code: Code,
    limit: Limit = 50,
    offset: Offset = 0,
    value: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    caller.require("profiles:read")
    with runtime_of(request).db.session() as session:
        return reading.members(session, caller.workspace_id, code, limit, offset, value)


@router.put("/tags/{code}/values", summary="Write a model tag's values (what a model predicted)")
def set_values(request: Request, caller: CallerDep, code: Code, body: ModelValues) -> dict[str, Any]:
    caller.require("segments:write")
    values: dict[int, str | None] = {}
    bad = [k for k in body.values if not k.isdigit() or len(k) > 19]
    if bad:
        raise InvalidInput(f"values.{bad[0][:20]}", "must be a super ID (a whole number)", code="whole_number")
    values = {int(k): v for k, v in body.values.items()}
    with runtime_of(request).db.session() as session:
        result = compute.set_model_tag_values(session, caller.workspace_id, code, values, replace=body.replace)
        return result.as_dict()
