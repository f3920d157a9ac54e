"""REST endpoints for customer value (客户价值).

    POST /value/run                               recompute now: queued for the worker (202), or {"wait": true}
    GET  /value/status                            latest run, last successful run, pending?
    GET  /value/runs                              recent runs
    GET  /value/overview                          RFM grid, pyramid, CLV summary, notes
    GET  /value/rfm                               the eight RFM segments (grid) and the value pyramid
    GET  /value/clv                               CLV / churn distributions and the fitted models
    GET  /value/clusters                          clusters described in words
    GET  /value/people?segment=&tier=&…           people with their value (filters, sort, paging)
    GET  /value/people/{super_id}                 one person: scores, tags, repurchase, recommendations, referrals
    GET  /value/people/{super_id}/recommendations products to recommend
    POST /value/people/{super_id}/share-link      the person's share link, created on first call
    GET  /value/repurchase?status=due|overdue     who is due to rebuy which category
    GET  /value/basket/rules?product=             association rules
    GET  /value/basket/products                   products seen in orders
    GET  /value/basket/together?product=          bought together with a product
    GET  /value/kocs                              KOCs by value score
    GET  /value/referrals/trees                   the largest fission trees
    GET  /value/referrals/tree?root=              one fission tree
    GET|PUT /value/settings                       window, pyramid, weights (commercial / social), KOCs, share page
    POST /value/lookalike                         seed segment → new lookalike segment, AUC, features
    GET  /value/lookalikes                        lookalikes built so far

Aggregates need `analytics:read`; anything listing people `profiles:read`; changes and runs
`segments:write` (value results become tags and segments); a share link is a link (`links:write`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from siyu.api.auth import Caller, require_caller, runtime_of
from siyu.value import audiences, config, queries, service, share

router = APIRouter(prefix="/value", tags=["value"])
CallerDep = Annotated[Caller, Depends(require_caller)]
SuperId = Annotated[int, Path(ge=1, le=2**62, description="super ID (祖ID) of the person")]
Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wait: bool = Field(False, description="run in this request and answer with the finished run")


class ShareLinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    destination_url: str | None = Field(None, description="landing page (default: the workspace's share page)")


class SettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_days: Any = Field(None, description="RFM window in days (1–3650)", examples=[365])
    pyramid_method: Any = Field(None, description="revenue_share, customer_share or score")
    commercial_weight: Any = Field(None, description="weight of commercial value (≥ 0)", examples=[0.3])
    social_weight: Any = Field(None, description="weight of social value (≥ 0; with commercial > 0)", examples=[0.7])
    koc_top: Any = Field(None, description="how many KOCs to mark (0–1000)")
    share_url: Any = Field(None, description="landing page of personal share links")
    utc_offset_hours: Any = Field(None, description="the brand's UTC offset (China: 8)")


class LookalikeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed_segment_id: Any = Field(description="the seed segment's id", examples=[1])
    top_n: Any = Field(None, description="the N most similar people", examples=[100])
    threshold: Any = Field(None, description="everyone scoring at least this (0–1)")
    name: Any = Field(None, description="name of the new segment")
    model: Any = Field(None, description="logistic (default) or gbdt")


def _actor(caller: Caller) -> str:
    return f"key:{caller.key_name}"


@router.post("/run", summary="Recompute customer value now", status_code=202)
async def run_value(request: Request, caller: CallerDep, body: RunRequest | None = None) -> Any:
    caller.require("segments:write")
    worker = runtime_of(request).value
    if body is not None and body.wait:
        finished = await anyio.to_thread.run_sync(worker.run_now, caller.workspace_id, _actor(caller))
        return JSONResponse(_jsonable(finished), status_code=200)
    return await anyio.to_thread.run_sync(worker.request, caller.workspace_id, _actor(caller))


def _jsonable(data: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(data)


def _read(request: Request, fn, *args) -> Any:
    with runtime_of(request).db.session() as session:
        return fn(session, *args)


@router.get("/status", summary="The latest run, the last successful one, and whether one is pending")
def get_status(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("analytics:read")
    return _read(request, queries.status, caller.workspace_id)


@router.get("/runs", summary="Recent value runs, newest first")
def list_runs(request: Request, caller: CallerDep, limit: Limit = 20) -> list[dict[str, Any]]:
    caller.require("analytics:read")
    return _read(request, queries.runs, caller.workspace_id, limit)


@router.get("/overview", summary="RFM grid, value pyramid, CLV summary and notes of the last run")
def get_overview(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("analytics:read")
    return _read(request, queries.overview, caller.workspace_id)


@router.get("/rfm", summary="The eight RFM segments (RFM 八类客户) and the value pyramid")
def get_rfm(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("analytics:read")
    return _read(request, queries.rfm_grid, caller.workspace_id)


@router.get("/clv", summary="CLV and churn-risk distributions, fitted BG/NBD and Gamma-Gamma parameters")
def get_clv(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("analytics:read")
    return _read(request, queries.clv_summary, caller.workspace_id)


@router.get("/clusters", summary="Customer clusters described in words")
def get_clusters(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("analytics:read")
    return _read(request, queries.clusters, caller.workspace_id)


@router.get("/people", summary="People with their value: filter by segment, tier, tags, cluster, KOC")
def list_people(
    request: Request,
    caller: CallerDep,
    segment: str | None = None,
    tier: str | None = None,
    churn_risk: str | None = None,
    predicted_value: str | None = None,
    purchase_intent: str | None = None,
    repurchase: str | None = None,
    cluster: Annotated[int | None, Query(ge=0, le=99)] = None,
    koc: bool | None = None,
    sort: str = "value_score",
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    caller.require("profiles:read")
    filters = {
        "segment": segment,
        "tier": tier,
        "churn_risk": churn_risk,
        "predicted_value": predicted_value,
        "purchase_intent": purchase_intent,
        "repurchase": repurchase,
        "cluster": cluster,
        "koc": koc,
    }
    return _read(request, queries.people, caller.workspace_id, filters, sort, limit, offset)


@router.get("/people/{super_id}", summary="One person's value, repurchase cycles, recommendations, referrals")
def get_person(request: Request, caller: CallerDep, super_id: SuperId) -> dict[str, Any]:
    caller.require("profiles:read")
    return _read(request, queries.person, caller.workspace_id, super_id, runtime_of(request).scheme)


@router.get("/people/{super_id}/recommendations", summary="Products to recommend to a person (basket rules)")
def get_recommendations(request: Request, caller: CallerDep, super_id: SuperId) -> dict[str, Any]:
    caller.require("profiles:read")
    found = _read(request, queries.person, caller.workspace_id, super_id)
    return {"super_id": found["super_id"], "items": found["recommendations"]}


@router.post("/people/{super_id}/share-link", summary="The person's personal share link (created on first call)")
def share_link(
    request: Request, caller: CallerDep, super_id: SuperId, body: ShareLinkRequest | None = None
) -> JSONResponse:
    caller.require("links:write")
    rt = runtime_of(request)
    from siyu.links.service import link_as_dict

    with rt.db.session() as session:
        shared = share.get_or_create(
            session,
            rt.link_context(caller.workspace_id, _actor(caller)),
            super_id,
            body.destination_url if body else None,
        )
        data = {"super_id": shared.super_id, "created": shared.created, "link": link_as_dict(shared.link, rt.scheme)}
    return JSONResponse(_jsonable(data), status_code=201 if shared.created else 200)


@router.get("/repurchase", summary="People due (待复购) or overdue to rebuy a category")
def get_repurchase(
    request: Request,
    caller: CallerDep,
    status: Literal["due", "overdue"] = "due",
    category: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    caller.require("profiles:read")
    return _read(request, queries.repurchase_due, caller.workspace_id, status, category, limit, offset)


@router.get("/basket/rules", summary="Association rules over order line items, best lift first")
def get_rules(
    request: Request,
    caller: CallerDep,
    product: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    caller.require("analytics:read")
    return _read(request, queries.rules, caller.workspace_id, product, limit, offset)


@router.get("/basket/products", summary="Products seen in orders, most ordered first")
def get_products(request: Request, caller: CallerDep, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    caller.require("analytics:read")
    return _read(request, queries.products, caller.workspace_id, limit, offset)


@router.get("/basket/together", summary="Products bought together with a product")
def get_together(
    request: Request,
    caller: CallerDep,
    product: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict[str, Any]:
    caller.require("analytics:read")
    return _read(request, queries.bought_together, caller.workspace_id, product, limit)


@router.get("/kocs", summary="KOCs (关键意见消费者) by value score")
def get_kocs(request: Request, caller: CallerDep, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    caller.require("profiles:read")
    return _read(request, queries.kocs, caller.workspace_id, limit, offset)


@router.get("/referrals/trees", summary="The largest fission trees (裂变树)")
def get_trees(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("profiles:read")
    return _read(request, queries.trees, caller.workspace_id)


@router.get("/referrals/tree", summary="One fission tree below a person")
def get_tree(
    request: Request,
    caller: CallerDep,
    root: Annotated[int, Query(ge=1, le=2**62, description="super ID of the tree's root")],
    max_nodes: Annotated[int, Query(ge=1, le=5000)] = queries.MAX_TREE_NODES,
) -> dict[str, Any]:
    caller.require("profiles:read")
    return _read(request, queries.tree, caller.workspace_id, root, max_nodes)


@router.get("/settings", summary="Value settings: RFM window, pyramid, weights, KOCs, share page")
def get_settings(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("analytics:read")
    return _read(request, config.load, caller.workspace_id).as_dict()


@router.put("/settings", summary="Change value settings; new weights or KOC count rescore everyone at once")
def put_settings(request: Request, caller: CallerDep, body: SettingsUpdate) -> dict[str, Any]:
    caller.require("segments:write")
    changes = body.model_dump(exclude_unset=True)
    with runtime_of(request).db.session() as session:
        before = config.load(session, caller.workspace_id)
        after = config.save(session, caller.workspace_id, changes, actor=_actor(caller))
        rescored = None
        if (before.weights, before.koc_top) != (after.weights, after.koc_top):
            rescored = service.rescore(session, caller.workspace_id)
        return {**after.as_dict(), "rescored": rescored}


@router.post("/lookalike", summary="Lookalike audience from a seed segment, saved as a new segment", status_code=201)
async def post_lookalike(request: Request, caller: CallerDep, body: LookalikeRequest) -> dict[str, Any]:
    caller.require("segments:write")
    rt = runtime_of(request)
    raw = body.model_dump(exclude_unset=True)
    return await anyio.to_thread.run_sync(
        lambda: audiences.create(rt.db, caller.workspace_id, raw, _actor(caller), refresh=rt.tags.recompute)
    )


@router.get("/lookalikes", summary="Lookalike audiences built so far, newest first")
def get_lookalikes(request: Request, caller: CallerDep, limit: Limit = 50) -> list[dict[str, Any]]:
    caller.require("analytics:read")
    return _read(request, audiences.list_lookalikes, caller.workspace_id, limit)
