"""REST endpoints for profiles (用户画像) and the data map (数据地图).

    GET /api/v1/profiles?q=                      search by identifier or trait value (all, newest first)
    GET /api/v1/profiles/lookup?type=&value=     the profile holding one identifier
    GET /api/v1/profiles/{super_id}              identifiers, traits, computed attributes, consents
    GET /api/v1/profiles/{super_id}/timeline     events and clicks, newest first
    GET|PUT /api/v1/profiles/trait-strategies    how traits combine (latest / first / sum)
    GET /api/v1/data-map                         per source: identifiers, volume, reach, gaps

Profiles hold personal information, so they have their own scopes (`profiles:read`,
`profiles:write`); the data map is aggregate and needs `analytics:read`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from siyu.api.auth import Caller, require_caller, runtime_of
from siyu.consent.service import current_consents
from siyu.errors import NotFound
from siyu.profiles import datamap, strategies
from siyu.profiles import service as profiles

router = APIRouter(tags=["profiles"])
CallerDep = Annotated[Caller, Depends(require_caller)]
SuperId = Annotated[int, Path(ge=1, le=2**62, description="super ID (祖ID) of the person")]
Limit = Annotated[int, Query(ge=1, le=profiles.MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=profiles.MAX_OFFSET)]
Locale = Literal["en", "zh-CN"]


class StrategiesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strategies: dict[str, str | None] = Field(
        description="trait name → 'latest', 'first' or 'sum' (null: back to the default)",
        examples=[{"points_earned": "sum", "first_store": "first"}],
    )
    replace: bool = Field(False, description="keys not named go back to their defaults")


@router.get("/profiles", summary="Search profiles by identifier or trait value")
def search_profiles(
    request: Request,
    caller: CallerDep,
    q: Annotated[str, Query(max_length=profiles.MAX_QUERY, description="phone, e-mail, member id, name…")] = "",
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    caller.require("profiles:read")
    with runtime_of(request).db.session() as session:
        return profiles.search(session, caller.workspace_id, q, limit, offset)


@router.get("/profiles/lookup", summary="The profile holding an identifier (normalised as stored)")
def lookup_profile(
    request: Request,
    caller: CallerDep,
    type: Annotated[str, Query(max_length=32, description="identifier type, e.g. phone, email, member_id")],
    value: Annotated[str, Query(max_length=255)],
) -> dict[str, Any]:
    caller.require("profiles:read")
    rt = runtime_of(request)
    with rt.db.session() as session:
        found = profiles.find_by_identifier(session, rt.store, caller.workspace_id, type, value)
        if found is None:
            raise NotFound(f"no profile holds {type} '{value}'")
        return {**found, "consents": current_consents(session, caller.workspace_id, found["super_id"])}


@router.get("/profiles/trait-strategies", summary="How each trait combines: latest, first or sum")
def get_strategies(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("profiles:read")
    with runtime_of(request).db.session() as session:
        return {"strategies": strategies.list_strategies(session, caller.workspace_id)}


@router.put("/profiles/trait-strategies", summary="Configure trait strategies (applies to what comes next)")
def put_strategies(request: Request, caller: CallerDep, body: StrategiesUpdate) -> dict[str, Any]:
    caller.require("profiles:write")
    with runtime_of(request).db.session() as session:
        listed = strategies.set_strategies(
            session, caller.workspace_id, body.strategies, actor=f"key:{caller.key_name}", replace=body.replace
        )
        return {"strategies": listed}


@router.get("/profiles/{super_id}", summary="A profile: identifiers, traits, computed attributes, consents")
def get_profile(request: Request, caller: CallerDep, super_id: SuperId) -> dict[str, Any]:
    caller.require("profiles:read")
    rt = runtime_of(request)
    with rt.db.session() as session:
        found = profiles.profile_of(session, rt.store, caller.workspace_id, super_id)
        return {**found, "consents": current_consents(session, caller.workspace_id, found["super_id"])}


@router.get("/profiles/{super_id}/timeline", summary="Events and short-link clicks of a person, newest first")
def get_timeline(
    request: Request,
    caller: CallerDep,
    super_id: SuperId,
    limit: Limit = 50,
    offset: Offset = 0,
    locale: Locale = "en",
) -> dict[str, Any]:
    caller.require("profiles:read")
    rt = runtime_of(request)
    with rt.db.session() as session:
        return profiles.timeline(session, rt.store, caller.workspace_id, super_id, limit, offset, locale)


@router.get("/data-map", summary="Where your users are: per source identifiers, volume, reach and graph gaps")
def get_data_map(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("analytics:read")
    rt = runtime_of(request)
    with rt.db.session() as session:
        return datamap.data_map(session, rt.store, caller.workspace_id)
