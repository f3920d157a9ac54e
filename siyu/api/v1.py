"""REST API v1: links, QR codes, analytics, domains, workspace settings and webhooks."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from fastapi.responses import Response, StreamingResponse

from siyu import qr
from siyu.api.auth import Caller, require_caller, runtime_of
from siyu.api.schemas import DomainCreate, LinkCreate, LinkUpdate, WebhookCreate, WorkspaceUpdate
from siyu.clicks import analytics
from siyu.errors import InvalidInput
from siyu.events.store import ClickFilter
from siyu.links import service as links
from siyu.links.rules import ACCESS_GROUPS
from siyu.useragent import PLATFORMS
from siyu.webhooks import service as webhooks
from siyu.workspaces import service as workspaces

router = APIRouter()
CallerDep = Annotated[Caller, Depends(require_caller)]
LinkId = Annotated[int, Path(ge=1, le=2**62, description="link id")]
WebhookId = Annotated[int, Path(ge=1, le=2**62)]


def _link_json(request: Request, link) -> dict[str, Any]:
    return links.link_as_dict(link, runtime_of(request).scheme)


@router.get("/platforms", tags=["links"], summary="Platform codes for 防红 and allowed-platform lists")
def list_platforms() -> dict[str, Any]:
    return {
        "platforms": [
            {"code": p.code, "name_zh": p.name_zh, "name_en": p.name_en, "in_app": p.in_app}
            for p in PLATFORMS.values()
            if p.code != "none"
        ],
        "groups": list(ACCESS_GROUPS),
    }


@router.get("/links", tags=["links"])
def list_links(
    request: Request,
    caller: CallerDep,
    search: str = "",
    tag: str | None = None,
    domain: str | None = None,
    archived: bool | None = False,
    expired: bool | None = None,
    sort: str = "created",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    caller.require("links:read")
    q = links.LinkQuery(
        search=search, tag=tag, domain=domain, archived=archived, expired=expired, sort=sort, limit=limit, offset=offset
    )
    with runtime_of(request).db.session() as session:
        rows, total = links.list_links(session, caller.workspace_id, q)
        return {"total": total, "limit": limit, "offset": offset, "links": [_link_json(request, r) for r in rows]}


@router.post("/links", tags=["links"], status_code=201)
def create_link(request: Request, caller: CallerDep, body: LinkCreate) -> dict[str, Any]:
    caller.require("links:write")
    rt = runtime_of(request)
    with rt.db.session() as session:
        link = links.create_link(
            session, rt.link_context(caller.workspace_id, f"key:{caller.key_name}"), body.changes()
        )
        return _link_json(request, link)


@router.get("/links/{link_id}", tags=["links"])
def get_link(request: Request, caller: CallerDep, link_id: LinkId) -> dict:
    caller.require("links:read")
    with runtime_of(request).db.session() as session:
        return _link_json(request, links.get_link(session, caller.workspace_id, link_id))


@router.patch("/links/{link_id}", tags=["links"])
def update_link(request: Request, caller: CallerDep, link_id: LinkId, body: LinkUpdate) -> dict[str, Any]:
    caller.require("links:write")
    rt = runtime_of(request)
    with rt.db.session() as session:
        link = links.update_link(session, rt.link_context(caller.workspace_id), _id(link_id), body.changes())
        return _link_json(request, link)


@router.delete("/links/{link_id}", tags=["links"], summary="Archive a link (links and clicks are never deleted)")
def archive_link(request: Request, caller: CallerDep, link_id: LinkId) -> dict[str, Any]:
    caller.require("links:write")
    rt = runtime_of(request)
    with rt.db.session() as session:
        return _link_json(request, links.archive_link(session, rt.link_context(caller.workspace_id), _id(link_id)))


def _id(value: int) -> int:
    if not 1 <= value <= 2**62:
        raise InvalidInput("link_id", "must be a positive link id")
    return value


@router.get("/links/{link_id}/qr.{fmt}", tags=["qr"], summary="The link's QR code (PNG or SVG)")
def link_qr(
    request: Request,
    caller: CallerDep,
    link_id: LinkId,
    fmt: str,
    size: int = 512,
    border: int = 4,
    dark: str = "#000000",
    light: str = "#ffffff",
    error: str = "m",
) -> Response:
    caller.require("links:read")
    if fmt not in ("png", "svg"):
        raise InvalidInput("fmt", "must be png or svg", code="qr_format")
    with runtime_of(request).db.session() as session:
        link = links.get_link(session, caller.workspace_id, _id(link_id))
        data = links.short_url(link, runtime_of(request).scheme) + "/q"
    opts = _qr_options(size=size, border=border, dark=dark, light=light, error=error)
    try:  # the size check needs the encoded symbol, so it can only fail while rendering
        if fmt == "png":
            return Response(qr.render_png(data, opts), media_type="image/png")
        return Response(qr.render_svg(data, opts), media_type="image/svg+xml")
    except qr.QrError as exc:
        raise InvalidInput(exc.field, exc.reason, code=exc.code, params=exc.params) from exc


def _qr_options(**kwargs: Any) -> qr.QrOptions:
    try:
        return qr.QrOptions(**kwargs)
    except qr.QrError as exc:
        raise InvalidInput(exc.field, exc.reason, code=exc.code, params=exc.params) from exc


@router.post("/qr/decode", tags=["qr"], summary="Decode an uploaded QR image; optionally re-issue it as short links")
async def decode_qr(
    request: Request,
    caller: CallerDep,
    image: Annotated[UploadFile, File(description="PNG, JPEG or WebP, at most 10 MB")],
    create: bool = False,
) -> dict[str, Any]:
    data = await image.read(qr.MAX_UPLOAD_BYTES + 1)
    try:
        codes = await anyio.to_thread.run_sync(qr.decode_image, data)
    except qr.QrError as exc:
        raise InvalidInput(exc.field, exc.reason, code=exc.code, params=exc.params) from exc
    results: list[dict[str, Any]] = []
    if create:
        caller.require("links:write")
    rt = runtime_of(request)
    for code in codes:
        url = qr.extract_url(code.text)
        item: dict[str, Any] = {"text": code.text, "format": code.format, "url": url, "link": None}
        if create and url:
            try:
                with rt.db.session() as session:
                    link = links.create_link(
                        session,
                        rt.link_context(caller.workspace_id, f"key:{caller.key_name}"),
                        {"destination_url": url, "title": "QR upload"},
                    )
                    item["link"] = _link_json(request, link)
            except InvalidInput as exc:
                item["error"] = {"fields": [e.as_dict() for e in exc.errors]}
        results.append(item)
    return {"codes": results}


def _filter(caller: Caller, link_id: int | None, since: str | None, until: str | None, bots: bool) -> ClickFilter:
    start, end = analytics.parse_range(since, until)
    return ClickFilter(caller.workspace_id, link_id, start, end, bots)


@router.get("/analytics", tags=["analytics"], summary="Workspace click analytics")
def workspace_analytics(
    request: Request,
    caller: CallerDep,
    since: str | None = None,
    until: str | None = None,
    bucket: str = "day",
    include_bots: bool = False,
) -> dict[str, Any]:
    caller.require("analytics:read")
    rt = runtime_of(request)
    f = _filter(caller, None, since, until, include_bots)
    result = analytics.report(rt.store, f, bucket)
    with rt.db.session() as session:
        top = rt.store.top_links(f)
        by_id = {lk.id: lk for lk in links.links_by_ids(session, caller.workspace_id, [i for i, _, _ in top])}
        result["top_links"] = [
            {"link_id": i, "slug": by_id[i].slug, "title": by_id[i].title, "clicks": c, "unique_visitors": u}
            for i, c, u in top
            if i in by_id
        ]
    return result


@router.get("/links/{link_id}/analytics", tags=["analytics"])
def link_analytics(
    request: Request,
    caller: CallerDep,
    link_id: LinkId,
    since: str | None = None,
    until: str | None = None,
    bucket: str = "day",
    include_bots: bool = False,
) -> dict[str, Any]:
    caller.require("analytics:read")
    rt = runtime_of(request)
    with rt.db.session() as session:
        links.get_link(session, caller.workspace_id, _id(link_id))
    return analytics.report(rt.store, _filter(caller, link_id, since, until, include_bots), bucket)


@router.get("/analytics/clicks.csv", tags=["analytics"], summary="Export clicks as CSV")
def export_clicks(
    request: Request,
    caller: CallerDep,
    link_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    since: str | None = None,
    until: str | None = None,
    include_bots: bool = False,
) -> StreamingResponse:
    caller.require("analytics:read")
    rt = runtime_of(request)
    if link_id is not None:
        with rt.db.session() as session:
            links.get_link(session, caller.workspace_id, _id(link_id))
    f = _filter(caller, link_id, since, until, include_bots)
    return StreamingResponse(
        analytics.export_csv(rt.store, f),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="clicks.csv"'},
    )


@router.get("/domains", tags=["workspace"])
def list_domains(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("links:read")
    with runtime_of(request).db.session() as session:
        return {
            "domains": [
                {"id": d.id, "hostname": d.hostname, "is_default": d.is_default}
                for d in workspaces.list_domains(session, caller.workspace_id)
            ]
        }


@router.post("/domains", tags=["workspace"], status_code=201)
def add_domain(request: Request, caller: CallerDep, body: DomainCreate) -> dict[str, Any]:
    caller.require("links:write")
    with runtime_of(request).db.session() as session:
        d = workspaces.add_domain(session, caller.workspace_id, body.hostname, body.is_default)
        return {"id": d.id, "hostname": d.hostname, "is_default": d.is_default}


@router.get("/workspace", tags=["workspace"])
def get_workspace(request: Request, caller: CallerDep) -> dict[str, Any]:
    with runtime_of(request).db.session() as session:
        ws = workspaces.get_workspace(session, caller.workspace_id)
        return {"id": ws.id, "slug": ws.slug, "name": ws.name, "ip_mode": ws.ip_mode}


@router.patch("/workspace", tags=["workspace"])
def update_workspace(request: Request, caller: CallerDep, body: WorkspaceUpdate) -> dict[str, Any]:
    caller.require("links:write")
    with runtime_of(request).db.session() as session:
        ws = workspaces.get_workspace(session, caller.workspace_id)
        if body.ip_mode is not None:
            workspaces.set_ip_mode(session, ws, body.ip_mode)
        if body.name is not None:
            if not body.name.strip() or len(body.name) > 200:
                raise InvalidInput("name", "must be 1 to 200 characters")
            ws.name = body.name.strip()
        return {"id": ws.id, "slug": ws.slug, "name": ws.name, "ip_mode": ws.ip_mode}


@router.get("/webhooks", tags=["webhooks"])
def list_webhooks(request: Request, caller: CallerDep) -> dict[str, Any]:
    caller.require("webhooks:write")
    with runtime_of(request).db.session() as session:
        return {"webhooks": [webhooks.as_dict(w) for w in webhooks.list_webhooks(session, caller.workspace_id)]}


@router.post("/webhooks", tags=["webhooks"], status_code=201, summary="Subscribe; the signing secret is shown once")
def create_webhook(request: Request, caller: CallerDep, body: WebhookCreate) -> dict[str, Any]:
    caller.require("webhooks:write")
    with runtime_of(request).db.session() as session:
        hook = webhooks.create_webhook(session, caller.workspace_id, body.url, body.events)
        return {**webhooks.as_dict(hook), "secret": hook.secret}


@router.delete("/webhooks/{webhook_id}", tags=["webhooks"])
def delete_webhook(request: Request, caller: CallerDep, webhook_id: WebhookId) -> dict[str, Any]:
    caller.require("webhooks:write")
    with runtime_of(request).db.session() as session:
        webhooks.deactivate(session, caller.workspace_id, webhook_id)
    return {"id": webhook_id, "active": False}
