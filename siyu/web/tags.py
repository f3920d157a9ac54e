"""Console pages for tags (标签): the list with counts and coverage, defining a tag of each kind (a rule tag
with the same builder as segments), a tag's detail (values, versions, changes, holders) and a person's
tags with their history. Reading needs `analytics:read`; defining and computing `segments:write`.
"""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.errors_i18n import error_text
from siyu.i18n import register
from siyu.segments import facts
from siyu.segments.service import persons_count
from siyu.tags import definitions, reading
from siyu.web.context import Viewer, page, render, runtime_of
from siyu.web.segments import builder_context, describe, rule_errors, rule_names

register(
    {
        "nav.tags": ("标签", "Tags"),
        "tags.title": ("标签", "Tags"),
        "tags.intro": (
            "事实标签直接取自用户属性（如城市、会员等级）；"
            "规则标签按行为和属性条件计算（如近 30 天点击 3 次以上咖啡短链）；"
            "模型标签由模型写入（如流失风险、预测价值）。标签定时计算，也可立即计算；简单的行为次数标签随事件实时更新。",
            "Fact tags come straight from a trait (city, member level); rule tags are computed from conditions on "
            "behaviour and traits (clicked coffee links 3+ times in 30 days); model tags are written by a model (churn "
            "risk, predicted value). Tags are computed on a schedule or now; simple event-count tags update as events "
            "arrive.",
        ),
        "tags.new": ("新建标签", "New tag"),
        "tags.empty": ("还没有标签：点击“新建标签”开始", "No tags yet: click “New tag” to start"),
        "tags.col.name": ("标签", "Tag"),
        "tags.col.kind": ("类型", "Kind"),
        "tags.col.definition": ("定义", "Definition"),
        "tags.col.members": ("人数", "People"),
        "tags.col.coverage": ("覆盖率", "Coverage"),
        "tags.col.computed": ("计算时间", "Computed"),
        "tags.kind.fact": ("事实标签", "Fact"),
        "tags.kind.rule": ("规则标签", "Rule"),
        "tags.kind.model": ("模型标签", "Model"),
        "tags.kind_help.fact": ("取用户属性的值作为标签值", "The value of a trait is the tag's value"),
        "tags.kind_help.rule": ("满足条件的用户获得标签", "People who match the rule hold the tag"),
        "tags.kind_help.model": ("由模型（如 RFM、CLV）写入标签值", "A model (RFM, CLV…) writes the values"),
        "tags.streaming": ("实时", "Live"),
        "tags.streaming_help": ("随事件实时更新", "Updated as events arrive"),
        "tags.disabled": ("已停用", "Disabled"),
        "tags.code": ("标签代码", "Code"),
        "tags.code_help": (
            "小写字母开头，可含数字和“_”；创建后不可修改",
            "A lower-case letter, then letters, digits, '_'",
        ),
        "tags.name": ("名称", "Name"),
        "tags.name_en": ("英文名称", "English name"),
        "tags.description": ("说明", "Description"),
        "tags.enabled": ("启用", "Enabled"),
        "tags.trait": ("取值属性", "Trait"),
        "tags.rule": ("规则", "Rule"),
        "tags.values": ("可选值", "Values"),
        "tags.values_help": (
            "每行一个：代码,中文名,英文名（如 high,高,High）；留空表示不限",
            "One per line: code,Chinese name,English name (e.g. high,高,High); empty: any value",
        ),
        "tags.save": ("保存", "Save"),
        "tags.cancel": ("取消", "Cancel"),
        "tags.edit": ("编辑", "Edit"),
        "tags.delete": ("删除标签", "Delete tag"),
        "tags.delete_confirm": ("确定删除这个标签及其历史？", "Delete this tag and its history?"),
        "tags.version": ("版本", "Version"),
        "tags.versions": ("版本记录", "Versions"),
        "tags.values_count": ("取值分布", "Values"),
        "tags.changes": ("最近变化", "Recent changes"),
        "tags.changes_empty": ("还没有变化", "No changes yet"),
        "tags.holders": ("持有者", "Holders"),
        "tags.holders_empty": ("目前没有人持有此标签", "Nobody holds this tag at the moment"),
        "tags.change.gained": ("获得", "gained"),
        "tags.change.lost": ("失去", "lost"),
        "tags.change.changed": ("变更", "changed"),
        "tags.cause.schedule": ("定时", "schedule"),
        "tags.cause.manual": ("手动", "manual"),
        "tags.cause.stream": ("实时", "live"),
        "tags.cause.model": ("模型", "model"),
        "tags.cause.merge": ("合并", "merge"),
        "tags.not_found": ("找不到这个标签", "No such tag"),
        "tags.person": ("用户标签", "A person's tags"),
        "tags.person_none": ("此用户目前没有标签", "This person holds no tags"),
        "tags.person_history": ("标签历史", "Tag history"),
        "tags.person_profile": ("查看用户360", "Open the profile"),
        "tags.person_not_found": ("找不到用户 {id}", "No person {id}"),
        "tags.computed_never": ("尚未计算", "Not computed yet"),
    }
)
KINDS = definitions.KINDS


# --- list ----------------------------------------------------------------------------------------------------


def _overview(request: Request, viewer: Viewer) -> dict[str, Any]:
    rt = runtime_of(request)
    ws = viewer.workspace.id
    persons = persons_count(rt.store, ws)
    with rt.db.session() as session:
        tags = definitions.list_tags(session, ws)
        names = rule_names(session, ws, viewer.locale)
        rows = [definitions.tag_dict(t, persons) for t in tags]
    for row in rows:
        row["sentence"] = _definition_text(row, viewer.locale, names)
    return {"rows": rows, "persons": persons, "refreshed_at": facts.refreshed_at(rt.store, ws)}


def _definition_text(row: dict[str, Any], locale: str, names: dict[str, str]) -> str:
    if row["kind"] == "fact":
        return f"= {row['trait']}"
    if row["kind"] == "rule":
        return describe(row["rule"], locale, names)
    values = row.get("values") or []
    return " / ".join(v["name"] if locale == "zh-CN" else v["name_en"] for v in values)


@page("analytics:read")
async def tags_page(request: Request, viewer: Viewer) -> Response:
    data = await anyio.to_thread.run_sync(_overview, request, viewer)
    return render(request, "tags.html", viewer, **data, refreshed=request.query_params.get("refreshed"))


# --- defining -----------------------------------------------------------------------------------------------------


def _values_text(values: list[dict[str, str]]) -> str:
    return "\n".join(f"{v['code']},{v['name']},{v['name_en']}" for v in values)


def _values_from(text: str) -> list[dict[str, str]] | None:
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.replace("，", ",").split(",")]
        if not parts[0]:
            continue
        code = parts[0]
        name = parts[1] if len(parts) > 1 and parts[1] else code
        out.append({"code": code, "name": name, "name_en": parts[2] if len(parts) > 2 and parts[2] else name})
    return out or None


def _form_page(
    request: Request, viewer: Viewer, form: dict[str, Any], code: str | None, errors: list[dict[str, str]], status: int
) -> Response:
    return render(
        request,
        "tags_form.html",
        viewer,
        status,
        form=form,
        code=code,
        errors=errors,
        kinds=KINDS,
        **builder_context(request, viewer),
    )


EMPTY_RULE = {"type": "event", "event": "Short Link Clicked", "within_days": 30, "op": "gte", "value": 3}


@page("segments:write")
async def new_tag(request: Request, viewer: Viewer) -> Response:
    kind = request.query_params.get("kind", "rule")
    form = {
        "kind": kind if kind in KINDS else "rule",
        "code": "",
        "name": "",
        "name_en": "",
        "description": "",
        "trait": "",
        "rule": json.dumps(EMPTY_RULE, ensure_ascii=False),
        "values": "",
        "enabled": True,
    }
    return await anyio.to_thread.run_sync(_form_page, request, viewer, form, None, [], 200)


def _read_form(raw: Any, kind: str) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, str]]]:
    form = {
        k: str(raw.get(k) or "") for k in ("kind", "code", "name", "name_en", "description", "trait", "rule", "values")
    }
    form["kind"] = kind
    form["enabled"] = raw.get("enabled") is not None
    values: dict[str, Any] = {k: form[k] for k in ("code", "name", "name_en", "description")}
    values["enabled"] = form["enabled"]
    if kind == "fact":
        values["trait"] = form["trait"]
    elif kind == "rule":
        try:
            values["rule"] = json.loads(form["rule"])
        except json.JSONDecodeError as exc:
            return {}, form, [{"field": "rule", "message": f"JSON: {exc.msg} ({exc.lineno}:{exc.colno})"}]
    elif kind == "model":
        values["values"] = _values_from(form["values"])
    return values, form, []


def _save_errors(exc: Exception, locale: str) -> list[dict[str, str]]:
    if isinstance(exc, InvalidInput):
        return rule_errors(exc, locale)
    assert isinstance(exc, Conflict)
    return [{"field": exc.field, "message": error_text(exc, locale)}]


@page("segments:write")
async def create_tag(request: Request, viewer: Viewer) -> Response:
    raw = await request.form()
    kind = str(raw.get("kind") or "")
    values, form, errors = _read_form(raw, kind)
    if errors:
        return await anyio.to_thread.run_sync(_form_page, request, viewer, form, None, errors, 422)
    values["kind"] = kind
    rt = runtime_of(request)

    def run() -> str:
        with rt.db.session() as session:
            return definitions.create_tag(session, viewer.workspace.id, values, viewer.user.email).code

    try:
        code = await anyio.to_thread.run_sync(run)
    except (InvalidInput, Conflict) as exc:
        status = 409 if isinstance(exc, Conflict) else 422
        errs = _save_errors(exc, viewer.locale)
        return await anyio.to_thread.run_sync(_form_page, request, viewer, form, None, errs, status)
    return RedirectResponse(f"/console/tags/{code}", status_code=303)


@page("segments:write")
async def edit_tag(request: Request, viewer: Viewer) -> Response:
    code = request.path_params["code"]
    rt = runtime_of(request)

    def load() -> dict[str, Any]:
        with rt.db.session() as session:
            tag = definitions.get_tag(session, viewer.workspace.id, code)
            return {
                "kind": tag.kind,
                "code": tag.code,
                "name": tag.name,
                "name_en": tag.name_en,
                "description": tag.description,
                "trait": tag.spec.get("trait", ""),
                "rule": json.dumps(tag.spec.get("rule", EMPTY_RULE), ensure_ascii=False),
                "values": _values_text(tag.spec.get("values", [])),
                "enabled": tag.enabled,
            }

    try:
        form = await anyio.to_thread.run_sync(load)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("tags.not_found"))
    return await anyio.to_thread.run_sync(_form_page, request, viewer, form, code, [], 200)


@page("segments:write")
async def save_tag(request: Request, viewer: Viewer) -> Response:
    code = request.path_params["code"]
    rt = runtime_of(request)

    def kind_of() -> str:
        with rt.db.session() as session:
            return definitions.get_tag(session, viewer.workspace.id, code).kind

    try:
        kind = await anyio.to_thread.run_sync(kind_of)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("tags.not_found"))
    values, form, errors = _read_form(await request.form(), kind)
    form["code"] = code
    if errors:
        return await anyio.to_thread.run_sync(_form_page, request, viewer, form, code, errors, 422)
    values.pop("code", None)

    def run() -> None:
        with rt.db.session() as session:
            definitions.update_tag(session, viewer.workspace.id, code, values, viewer.user.email)

    try:
        await anyio.to_thread.run_sync(run)
    except (InvalidInput, Conflict) as exc:
        errs = _save_errors(exc, viewer.locale)
        return await anyio.to_thread.run_sync(_form_page, request, viewer, form, code, errs, 422)
    return RedirectResponse(f"/console/tags/{code}", status_code=303)


@page("segments:write")
async def delete_tag(request: Request, viewer: Viewer) -> Response:
    code = request.path_params["code"]
    rt = runtime_of(request)

    def run() -> None:
        with rt.db.session() as session:
            definitions.delete_tag(session, viewer.workspace.id, code)

    try:
        await anyio.to_thread.run_sync(run)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("tags.not_found"))
    except Conflict as exc:
        return render(request, "error.html", viewer, 409, message=error_text(exc, viewer.locale))
    return RedirectResponse("/console/tags", status_code=303)


# --- detail and person --------------------------------------------------------------------------------------------


@page("analytics:read")
async def tag_page(request: Request, viewer: Viewer) -> Response:
    code = request.path_params["code"]
    rt = runtime_of(request)

    def load() -> dict[str, Any]:
        ws = viewer.workspace.id
        persons = persons_count(rt.store, ws)
        with rt.db.session() as session:
            detail = reading.tag_detail(session, ws, code, persons)
            tag = definitions.get_tag(session, ws, code)
            names = rule_names(session, ws, viewer.locale)
            holders = reading.members(session, ws, code, 50, 0)
            labels = {v["value"]: reading.value_label(tag, v["value"], viewer.locale) for v in detail["value_counts"]}
        detail["sentence"] = _definition_text(detail, viewer.locale, names)
        for version in detail["versions"]:
            spec = {"trait": None, "rule": None, "values": None, **version["spec"]}
            version["sentence"] = _definition_text({"kind": detail["kind"], **spec}, viewer.locale, names)
        return {"tag": detail, "holders": holders, "labels": labels, "persons": persons}

    try:
        data = await anyio.to_thread.run_sync(load)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("tags.not_found"))
    return render(request, "tags_detail.html", viewer, **data)


@page("analytics:read")
async def person_page(request: Request, viewer: Viewer) -> Response:
    super_id = request.path_params["super_id"]
    rt = runtime_of(request)

    def load() -> dict[str, Any]:
        with rt.db.session() as session:
            return reading.person_tags(session, viewer.workspace.id, super_id, 100, 0)

    try:
        if not 1 <= super_id <= 2**62:
            raise NotFound(str(super_id))
        data = await anyio.to_thread.run_sync(load)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("tags.person_not_found", id=super_id))
    return render(request, "tags_person.html", viewer, data=data)


def routes() -> list[BaseRoute]:
    return [
        Route("/tags", tags_page, methods=["GET"]),
        Route("/tags/new", new_tag, methods=["GET"]),
        Route("/tags/new", create_tag, methods=["POST"]),
        Route("/tags/persons/{super_id:int}", person_page, methods=["GET"]),
        Route("/tags/{code}", tag_page, methods=["GET"]),
        Route("/tags/{code}/edit", edit_tag, methods=["GET"]),
        Route("/tags/{code}/edit", save_tag, methods=["POST"]),
        Route("/tags/{code}/delete", delete_tag, methods=["POST"]),
    ]
