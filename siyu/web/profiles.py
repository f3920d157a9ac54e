"""Console pages for profiles: the searchable list (用户) and the profile 360 page (用户360).

The 360 page answers "who is this, and what have they done with us?": the person's identities
across touchpoints, what they told us (traits, with where each value came from), what they did
(computed attributes and a timeline with one sentence per event), and what they consented to.
Reading profiles needs `analytics:read`; trait strategies are workspace settings (`settings:write`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from siyu.consent.service import current_consents
from siyu.errors import InvalidInput, NotFound
from siyu.errors_i18n import error_text
from siyu.i18n import CATALOG, register, t
from siyu.profiles import service as profiles
from siyu.profiles import strategies
from siyu.profiles.timeline import money
from siyu.useragent import PLATFORMS
from siyu.web.context import Viewer, page, render, runtime_of

register(
    {
        "nav.profiles": ("用户", "Profiles"),
        "profiles.title": ("用户", "Profiles"),
        "profiles.count": ("共 {n} 人", "{n} people"),
        "profiles.count_capped": ("至少 {n} 人，请缩小搜索范围", "{n}+ people; narrow the search"),
        "profiles.search": ("搜索手机号、邮箱、会员号、昵称…", "Search phone, e-mail, member id, name…"),
        "profiles.search_button": ("搜索", "Search"),
        "profiles.reset": ("清除", "Reset"),
        "profiles.empty": (
            "还没有用户：事件接入并完成身份识别后会出现在这里",
            "No profiles yet: they appear once events are identified",
        ),
        "profiles.no_match": ("没有找到匹配“{q}”的用户", "Nobody matches “{q}”"),
        "profiles.col.person": ("用户", "Person"),
        "profiles.col.identities": ("身份标识", "Identities"),
        "profiles.col.traits": ("属性", "Traits"),
        "profiles.col.created": ("首次识别", "First identified"),
        "profiles.page_prev": ("上一页", "Previous"),
        "profiles.page_next": ("下一页", "Next"),
        "profiles.page_of": ("第 {page} 页", "Page {page}"),
        "profiles.strategies_link": ("属性合并策略", "Trait strategies"),
        "profiles.data_map_link": ("数据地图", "Data map"),
        "profiles.unnamed": ("（未命名）", "(unnamed)"),
        # the 360 page
        "profile.title": ("用户360", "Profile 360"),
        "profile.super_id": ("祖ID（Super ID）", "Super ID"),
        "profile.merged_ids": ("已合并的 ID", "Merged IDs"),
        "profile.merged_notice": (
            "ID {old} 已合并到 {new}，显示的是合并后的用户。",
            "ID {old} was merged into {new}; showing the merged person.",
        ),
        "profile.identity_graph": ("在 One ID 图谱中查看", "Open in the One ID graph"),
        "profile.identities": ("身份标识", "Identities"),
        "profile.id.type": ("类型", "Type"),
        "profile.id.value": ("值", "Value"),
        "profile.id.since": ("关联时间", "Linked"),
        "profile.id.quarantined": (
            "已隔离：被多人共用，不再用于合并",
            "Quarantined: shared by several people, no longer links",
        ),
        "profile.traits": ("属性", "Traits"),
        "profile.traits_empty": (
            "还没有属性：identify 事件带来的资料会显示在这里",
            "No traits yet: identify events bring them",
        ),
        "profile.trait.key": ("属性", "Trait"),
        "profile.trait.value": ("值", "Value"),
        "profile.trait.strategy": ("合并策略", "Strategy"),
        "profile.trait.from": ("来源", "From"),
        "profile.trait.at": ("事件时间", "Event time"),
        "profile.computed": ("行为概览", "Activity"),
        "profile.c.first_seen": ("首次出现", "First seen"),
        "profile.c.last_seen": ("最近出现", "Last seen"),
        "profile.c.events": ("事件数", "Events"),
        "profile.c.clicks": ("短链点击", "Short-link clicks"),
        "profile.c.orders": ("订单数", "Orders"),
        "profile.c.revenue": ("消费金额", "Revenue"),
        "profile.c.last_order": ("最近下单", "Last order"),
        "profile.c.sources": ("触点", "Touchpoints"),
        "profile.c.platforms": ("访问平台", "Platforms"),
        "profile.c.os": ("操作系统", "Operating systems"),
        "profile.never": ("—", "—"),
        "profile.timeline": ("时间线", "Timeline"),
        "profile.timeline_count": ("共 {n} 条", "{n} items"),
        "profile.timeline_empty": ("还没有事件或点击", "No events or clicks yet"),
        "profile.newer": ("较新", "Newer"),
        "profile.older": ("更早", "Older"),
        "profile.consents": ("授权", "Consents"),
        "profile.consent.purpose": ("用途", "Purpose"),
        "profile.consent.status": ("状态", "Status"),
        "profile.consent.none": ("未授权记录", "Not asked"),
        "profile.unknown_source": ("未知来源", "Unknown source"),
        "profile.not_found": ("找不到用户 {id}", "No person {id}"),
        # strategy labels
        "profile.strategy.latest": ("最新值", "Latest"),
        "profile.strategy.first": ("首次值", "First"),
        "profile.strategy.sum": ("累加", "Sum"),
        "profile.strategy_help.latest": (
            "事件时间最新的值生效（迟到的旧事件不会覆盖）",
            "The value of the most recent event wins (late old events never overwrite)",
        ),
        "profile.strategy_help.first": (
            "保留最早事件的值（如注册时间、首个渠道）",
            "Keeps the earliest event's value (sign-up date, first channel)",
        ),
        "profile.strategy_help.sum": (
            "数值累加，合并两人时相加（如积分增量）",
            "Adds numbers; a merge adds both persons' totals (points earned)",
        ),
        # source kinds
        "profile.kind.website": ("官网", "Website"),
        "profile.kind.mini_program": ("小程序", "Mini program"),
        "profile.kind.official_account": ("公众号", "Official account"),
        "profile.kind.store": ("门店", "Store"),
        "profile.kind.crm": ("CRM", "CRM"),
        "profile.kind.short_links": ("短链", "Short links"),
        "profile.kind.server": ("服务端", "Server"),
        "profile.kind.other": ("其他", "Other"),
        # identifier types
        "profile.idtype.member_id": ("会员号", "Member ID"),
        "profile.idtype.unionid": ("微信 UnionID", "WeChat UnionID"),
        "profile.idtype.openid": ("微信 OpenID", "WeChat OpenID"),
        "profile.idtype.phone": ("手机号", "Phone"),
        "profile.idtype.email": ("邮箱", "E-mail"),
        "profile.idtype.device_id": ("设备 ID", "Device ID"),
        "profile.idtype.visitor_cookie": ("访客 Cookie", "Visitor cookie"),
        # strategies page
        "strategies.title": ("属性合并策略", "Trait merge strategies"),
        "strategies.intro": (
            "同一属性收到多个值、或两个用户合并时，按策略决定保留哪个值。修改只影响之后的事件和合并。",
            "When a trait gets several values, or two people merge, its strategy decides what is kept. "
            "A change applies to the events and merges that come after it.",
        ),
        "strategies.key": ("属性名", "Trait"),
        "strategies.strategy": ("策略", "Strategy"),
        "strategies.default": ("默认", "Default"),
        "strategies.add": ("添加属性", "Add a trait"),
        "strategies.save": ("保存", "Save"),
        "strategies.saved": ("已保存", "Saved"),
        "strategies.remove": ("恢复默认", "Back to default"),
        "strategies.other_keys": ("其他属性默认使用“最新值”。", "Every other trait uses “Latest”."),
        "settings.keys.scope.profiles:read": ("读取用户画像", "Read profiles"),
        "settings.keys.scope.profiles:write": ("配置用户属性", "Configure profiles"),
    }
)

TEMPLATES = Path(__file__).parent / "templates"
LIST_PAGE = 50
TIMELINE_PAGE = 20


def kind_label(kind: str | None, locale: str) -> str:
    key = f"profile.kind.{kind}"
    return t(key, locale) if key in CATALOG else t("profile.unknown_source", locale)


def id_type_label(name: str, locale: str) -> str:
    key = f"profile.idtype.{name}"
    return t(key, locale) if key in CATALOG else name


def platform_label(code: str, locale: str) -> str:
    info = PLATFORMS.get(code)
    if info is None:
        return code
    return info.name_zh if locale == "zh-CN" else info.name_en


def shown(value: Any) -> str:
    """A trait value as text: JSON for objects and lists, as-is otherwise."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _page_no(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1


# --- list -------------------------------------------------------------------------------------------


@page("analytics:read")
async def profiles_page(request: Request, viewer: Viewer) -> Response:
    q = request.query_params.get("q", "")
    page_no = _page_no(request.query_params.get("page"))
    rt = runtime_of(request)

    def run() -> dict[str, Any]:
        with rt.db.session() as session:
            return profiles.search(session, viewer.workspace.id, q, LIST_PAGE, (page_no - 1) * LIST_PAGE)

    try:
        result = await anyio.to_thread.run_sync(run)
    except InvalidInput as exc:
        empty = {"q": q[:50], "total": 0, "capped": False, "items": []}
        return render(
            request,
            "profiles.html",
            viewer,
            422,
            result=empty,
            page_no=1,
            error=error_text(exc.errors[0], viewer.locale),
        )

    def url(n: int) -> str:
        return "/console/profiles?" + urlencode({k: v for k, v in (("q", q), ("page", n)) if v})

    return render(
        request,
        "profiles.html",
        viewer,
        result=result,
        page_no=page_no,
        prev_url=url(page_no - 1) if page_no > 1 else None,
        next_url=url(page_no + 1) if page_no * LIST_PAGE < result["total"] else None,
        id_type_label=id_type_label,
    )


# --- profile 360 -----------------------------------------------------------------------------------


def _load(request: Request, viewer: Viewer, super_id: int, offset: int) -> dict[str, Any]:
    rt = runtime_of(request)
    ws = viewer.workspace.id
    with rt.db.session() as session:
        profile = profiles.profile_of(session, rt.store, ws, super_id)
        root = profile["super_id"]
        timeline = profiles.timeline(session, rt.store, ws, root, TIMELINE_PAGE, offset, viewer.locale)
        consents = current_consents(session, ws, root)
        source_names = profiles.sources_of(session, ws)
    return {"profile": profile, "timeline": timeline, "consents": consents, "sources": source_names}


@page("analytics:read")
async def profile_page(request: Request, viewer: Viewer) -> Response:
    super_id = request.path_params["super_id"]
    tl_page = _page_no(request.query_params.get("tl"))
    offset = (tl_page - 1) * TIMELINE_PAGE
    try:
        if not 1 <= super_id <= 2**62:
            raise NotFound(str(super_id))
        data = await anyio.to_thread.run_sync(_load, request, viewer, super_id, offset)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("profile.not_found", id=super_id))
    total = data["timeline"]["total"]
    base = f"/console/profiles/{data['profile']['super_id']}"
    return render(
        request,
        "profile.html",
        viewer,
        **data,
        super_id=data["profile"]["super_id"],
        requested_id=super_id,
        newer_url=f"{base}?tl={tl_page - 1}#timeline" if tl_page > 1 else None,
        older_url=f"{base}?tl={tl_page + 1}#timeline" if offset + TIMELINE_PAGE < total else None,
        has_consent_partial=(TEMPLATES / "profile_consent.html").exists(),
        kind_label=kind_label,
        id_type_label=id_type_label,
        platform_label=platform_label,
        shown=shown,
        money=money,
    )


# --- trait strategies ------------------------------------------------------------------------------


def _strategies(request: Request, viewer: Viewer) -> list[dict[str, Any]]:
    with runtime_of(request).db.session() as session:
        return strategies.list_strategies(session, viewer.workspace.id)


@page("analytics:read")
async def strategies_page(request: Request, viewer: Viewer) -> Response:
    rows = await anyio.to_thread.run_sync(_strategies, request, viewer)
    return render(
        request,
        "profiles_strategies.html",
        viewer,
        rows=rows,
        choices=strategies.STRATEGIES,
        saved=bool(request.query_params.get("saved")),
        errors=[],
        form={},
    )


@page("settings:write")
async def save_strategies(request: Request, viewer: Viewer) -> Response:
    """The form posts `key` / `strategy` pairs (existing rows) and `new_key` / `new_strategy`."""
    form = await request.form()
    pairs = zip(form.getlist("key"), form.getlist("strategy"), strict=False)
    wanted: dict[str, Any] = {str(k): (str(v) or None) for k, v in pairs}  # "" = back to the default
    new_key = str(form.get("new_key") or "").strip()
    if new_key:
        wanted[new_key] = str(form.get("new_strategy") or "")
    rt = runtime_of(request)

    def run() -> None:
        with rt.db.session() as session:
            strategies.set_strategies(session, viewer.workspace.id, wanted, actor=viewer.user.email, replace=True)

    try:
        await anyio.to_thread.run_sync(run)
    except InvalidInput as exc:
        rows = await anyio.to_thread.run_sync(_strategies, request, viewer)
        return render(
            request,
            "profiles_strategies.html",
            viewer,
            422,
            rows=rows,
            choices=strategies.STRATEGIES,
            saved=False,
            errors=[f"{e.field.removeprefix('strategies.')}: {error_text(e, viewer.locale)}" for e in exc.errors],
            form={"new_key": new_key[:128], "new_strategy": str(form.get("new_strategy") or "")},
        )
    return RedirectResponse("/console/profiles/strategies?saved=1", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/profiles", profiles_page, methods=["GET"]),
        Route("/profiles/strategies", strategies_page, methods=["GET"]),
        Route("/profiles/strategies", save_strategies, methods=["POST"]),
        Route("/profiles/{super_id:int}", profile_page, methods=["GET"]),
    ]
