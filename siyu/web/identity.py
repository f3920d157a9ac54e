"""Console page for One ID (身份识别): look a person up, recent merges with unmerge, conflicts,
quarantined values and the identifier types' guard rails.

Reading needs `analytics:read`; unmerging and changing identifier types are workspace settings
(`settings:write`). Profiles (用户360) are another page: this one links to `/console/profiles/{id}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from siyu.api.identity import person_json
from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.errors_i18n import error_text, field_label
from siyu.i18n import register
from siyu.identity import service
from siyu.identity.rules import DEFAULT_TYPES, configure_type, get_rules
from siyu.runtime import Runtime
from siyu.web.context import Viewer, page, render, runtime_of

register(
    {
        "nav.identity": ("One ID 身份", "One ID"),
        "identity.title": ("One ID 身份识别", "One ID"),
        "identity.intro": (
            "各触点的标识（子ID：手机号、会员号、unionid、openid、设备、访客 Cookie…）自动归并为一个祖ID（Super ID）。",
            "Identifiers from every touchpoint (phone, member id, unionid, openid, device, visitor cookie…) "
            "resolve to one super ID per person.",
        ),
        "identity.lookup": ("查找用户", "Look a person up"),
        "identity.lookup.type": ("标识类型", "Identifier type"),
        "identity.lookup.value": ("标识值", "Value"),
        "identity.lookup.submit": ("查找", "Look up"),
        "identity.lookup.none": ("没有用户持有这个标识", "No person holds this identifier"),
        "identity.person": ("祖ID {id}", "Super ID {id}"),
        "identity.person.profile": ("查看用户360", "Open profile 360"),
        "identity.person.merged_ids": ("并入的 ID：{ids}", "Merged into it: {ids}"),
        "identity.person.moved": ("ID {old} 已并入 {new}", "ID {old} was merged into {new}"),
        "identity.identifiers": ("身份标识", "Identifiers"),
        "identity.col.type": ("类型", "Type"),
        "identity.col.value": ("值", "Value"),
        "identity.col.since": ("首次出现", "First seen"),
        "identity.quarantined_flag": ("已隔离", "quarantined"),
        "identity.merges": ("最近的合并", "Recent merges"),
        "identity.merges.help": (
            "两个用户因共同的标识被合并时记录在此；较早的祖ID保留。误合并可以拆分，拆分后二者不会再因同一标识合并。",
            "Two persons merged because they shared an identifier; the older super ID survives. A wrong merge "
            "can be undone; the two are then never merged again by the same link.",
        ),
        "identity.col.when": ("时间", "When"),
        "identity.col.action": ("操作", "Action"),
        "identity.col.persons": ("用户", "Persons"),
        "identity.col.via": ("依据", "Via"),
        "identity.action.merge": ("合并", "merge"),
        "identity.action.unmerge": ("拆分", "unmerge"),
        "identity.merged_into": ("{merged} → {survivor}", "{merged} → {survivor}"),
        "identity.unmerge": ("拆分", "Unmerge"),
        "identity.unmerge.confirm": (
            "把 ID {id} 从合并中拆分出来？其标识和事件会回到它名下。",
            "Split ID {id} back out? Its identifiers and events go back to it.",
        ),
        "identity.conflicts": ("冲突", "Conflicts"),
        "identity.conflicts.help": (
            "安全规则拒绝的关联：例如两个不同的手机号（唯一类型）不会被合并到一个人。",
            "Links the guard rails refused, e.g. two different phone numbers (a unique type) are never one person.",
        ),
        "identity.col.kind": ("原因", "Reason"),
        "identity.conflict.unique": ("唯一类型冲突", "unique type"),
        "identity.conflict.cap": ("超出数量上限", "over the cap"),
        "identity.conflict.kept_apart": ("已手动拆分", "kept apart"),
        "identity.conflict.split": ("手动拆分记录", "split by hand"),
        "identity.conflict.new": ("（新标识）", "(new identifier)"),
        "identity.quarantine": ("已隔离的值", "Quarantined values"),
        "identity.quarantine.help": (
            "被太多人共用的值（门店平板、家庭电脑的 Cookie…）不再关联任何人。",
            "Values shared by too many people (a shop tablet, a family PC's cookie…) link no one any more.",
        ),
        "identity.col.people": ("涉及人数", "People"),
        "identity.types": ("标识类型与规则", "Identifier types and rules"),
        "identity.types.help": (
            "优先级数字越小越优先；唯一类型每人只能有一个值；弱类型（设备、Cookie）不会合并两个已识别的人。",
            "Lower priority numbers win; a unique type allows one value per person; a weak type (device, cookie) "
            "never merges two identified people.",
        ),
        "identity.col.priority": ("优先级", "Priority"),
        "identity.col.unique": ("唯一", "Unique"),
        "identity.col.max_values": ("每人上限", "Values per person"),
        "identity.col.max_people": ("隔离阈值（人）", "Quarantine after (people)"),
        "identity.col.weak": ("弱类型", "Weak"),
        "identity.col.blocked": ("屏蔽值", "Blocked values"),
        "identity.types.edit": ("修改或新增类型", "Change or add a type"),
        "identity.types.name": ("类型名（如 crm_id）", "Type name (e.g. crm_id)"),
        "identity.types.blocked_help": ("每行一个，视为垃圾值从不关联", "One per line; never linked"),
        "identity.types.save": ("保存", "Save"),
        "identity.types.change": ("修改", "Change"),
        "identity.yes": ("是", "yes"),
        "identity.no": ("否", "no"),
        "identity.none": ("暂无", "None yet"),
        "identity.done.unmerged": ("已拆分，事件已重新归属", "Unmerged; the events were re-assigned"),
        "identity.done.type": ("已保存标识类型", "Identifier type saved"),
        "identity.type.member_id": ("会员号", "Member id"),
        "identity.type.unionid": ("微信 unionid", "WeChat unionid"),
        "identity.type.phone": ("手机号", "Phone"),
        "identity.type.email": ("邮箱", "E-mail"),
        "identity.type.openid": ("微信 openid", "WeChat openid"),
        "identity.type.device_id": ("设备 ID", "Device id"),
        "identity.type.visitor_cookie": ("访客 Cookie", "Visitor cookie"),
        "settings.keys.scope.identity:read": ("读取 One ID 身份数据", "Read One ID identities"),
        "settings.keys.scope.identity:write": ("识别、拆分与配置 One ID", "Identify, unmerge, configure One ID"),
    }
)
_INT = re.compile(r"^\s*-?\d{1,9}\s*$")
DONE = ("unmerged", "type")


def type_label(viewer: Viewer, name: str) -> str:
    key = f"identity.type.{name}"
    label = viewer.t(key)
    return name if label == key else f"{label} ({name})"


def _load(rt: Runtime, viewer: Viewer, params: Mapping[str, str]) -> dict[str, Any]:
    """The page's data; `params` may ask for a person (`super_id`) or a lookup (`type`, `value`)."""
    ws = viewer.workspace.id
    data: dict[str, Any] = {"person": None, "not_found": False, "requested": None}
    with rt.db.session() as db:
        rules = get_rules(db, ws)
        lookup_type, lookup_value = params.get("type", ""), params.get("value", "")
        super_id = params.get("super_id", "")
        if lookup_type and lookup_value:
            found = service.lookup(db, ws, lookup_type, lookup_value[:1000])
            data["not_found"] = found is None
            if found is not None:
                data["person"] = person_json(db, ws, found)
        elif super_id.isdigit() and 0 < int(super_id) < 2**62:
            data["requested"] = int(super_id)
            try:
                data["person"] = person_json(db, ws, int(super_id))
            except NotFound:
                data["not_found"] = True
        data.update(
            types=rules.as_list(),
            merges=service.recent_merges(db, ws, 50),
            conflicts=service.list_conflicts(db, ws, 50),
            quarantined=service.quarantined(db, ws),
            lookup={"type": lookup_type or "phone", "value": lookup_value},
        )
    return data


async def _render_page(
    request: Request, viewer: Viewer, status: int = 200, errors: dict | None = None, values: dict | None = None
) -> Response:
    rt, params = runtime_of(request), dict(request.query_params)
    try:
        data = await anyio.to_thread.run_sync(_load, rt, viewer, params)
    except InvalidInput as exc:  # a lookup with an unknown type or a malformed value
        data = await anyio.to_thread.run_sync(_load, rt, viewer, {})
        data["lookup"] = {"type": params.get("type", ""), "value": params.get("value", "")}
        errors = {**(errors or {}), **{f"lookup_{e.field}": error_text(e, viewer.locale) for e in exc.errors}}
        status = 422
    editing = next((ty for ty in data["types"] if ty["name"] == params.get("edit")), None)
    if values is None and editing is not None:  # the form starts from the type's current rules
        values = {
            **{k: str(editing[k]) for k in ("name", "priority", "max_values", "max_people")},
            "unique": editing["unique"],
            "weak": editing["weak"],
            "blocked": "\n".join(editing["blocked_values"]),
        }
    done = request.query_params.get("done", "") if request.method == "GET" else ""
    return render(
        request,
        "identity.html",
        viewer,
        status,
        errors=errors or {},
        values=values or {},
        notice=viewer.t(f"identity.done.{done}") if done in DONE else "",
        type_label=lambda name: type_label(viewer, name),
        default_types=DEFAULT_TYPES,
        **data,
    )


@page("analytics:read")
async def identity_page(request: Request, viewer: Viewer) -> Response:
    return await _render_page(request, viewer)


@page("settings:write")
async def unmerge(request: Request, viewer: Viewer) -> Response:
    person_id = int(request.path_params["id"])
    if not 0 < person_id < 2**62:
        return render(request, "error.html", viewer, 404, message=viewer.t("error.not_found"))
    rt = runtime_of(request)
    try:
        split = await anyio.to_thread.run_sync(
            rt.stitcher.unmerge, viewer.workspace.id, person_id, f"console:{viewer.user.email}"
        )
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("error.not_found"))
    except Conflict as exc:
        return await _render_page(
            request, viewer, 409, errors={"unmerge": error_text(exc.field_error(), viewer.locale)}
        )
    query = urlencode({"super_id": split.restored, "done": "unmerged"})
    return RedirectResponse(f"/console/identity?{query}", status_code=303)


@page("settings:write")
async def save_type(request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, ""))[:20_000] for k in ("name", "priority", "max_values", "max_people", "blocked")}
    values.update(unique="unique" in form, weak="weak" in form)
    changes: dict[str, Any] = {"unique": values["unique"], "weak": values["weak"]}
    for key in ("priority", "max_values", "max_people"):
        if values[key].strip():
            changes[key] = int(values[key]) if _INT.match(values[key]) else values[key]
    changes["blocked_values"] = [line.strip() for line in values["blocked"].splitlines() if line.strip()]

    def run() -> None:
        with runtime_of(request).db.session() as db:
            configure_type(db, viewer.workspace.id, values["name"].strip(), changes)

    try:
        await anyio.to_thread.run_sync(run)
    except InvalidInput as exc:
        errors = {}
        for e in exc.errors:
            key = e.field.split("[")[0]
            key = "blocked" if key == "blocked_values" else key
            errors[key] = f"{field_label(e.field, viewer.locale)}: {error_text(e, viewer.locale)}"
        return await _render_page(request, viewer, 422, errors=errors, values=values)
    return RedirectResponse("/console/identity?done=type#types", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/identity", identity_page, methods=["GET"]),
        Route("/identity/persons/{id:int}/unmerge", unmerge, methods=["POST"]),
        Route("/identity/types", save_type, methods=["POST"]),
    ]
