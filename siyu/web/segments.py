"""Console pages for segments (人群): the list, the segment builder with its live count, a segment's
members and history, snapshots, and audience exports (人群包).

The builder (static/segment_builder.js) edits the rule tree as rows a non-engineer can read — "城市
等于 上海", "近 90 天 Order Completed 至少 2 次" — inside AND/OR groups with a NOT switch, and asks
`POST /console/segments/preview` for the count after every change; the rule travels as JSON in a
textarea, which is also what a browser without JavaScript edits. Reading needs `analytics:read`,
members `analytics:read` too (the console's readers see profiles), changes `segments:write`,
exports `audiences:export`.
"""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from siyu.consent.purposes import list_purposes
from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.errors_i18n import error_text
from siyu.i18n import register, t
from siyu.segments import audience, facts, rules, vocabulary
from siyu.segments import service as segments
from siyu.tags.definitions import list_tags
from siyu.web.context import Viewer, page, render, runtime_of
from siyu.web.formatting import fmt_datetime
from siyu.web.profiles import id_type_label

register(
    {
        "nav.segments": ("人群", "Segments"),
        "segments.title": ("人群", "Segments"),
        "segments.intro": (
            "按属性、标签、身份标识、授权和行为圈选用户，人群会定时更新；可保存快照、导出人群包用于广告投放。",
            "Select people by traits, tags, identifiers, consent and behaviour. Segments update on a schedule; "
            "snapshots freeze them and audience files go to ad platforms.",
        ),
        "segments.new": ("新建人群", "New segment"),
        "segments.empty": ("还没有人群：点击“新建人群”开始圈选", "No segments yet: click “New segment” to start"),
        "segments.col.name": ("人群", "Segment"),
        "segments.col.rule": ("条件", "Rule"),
        "segments.col.members": ("人数", "People"),
        "segments.col.coverage": ("占比", "Share"),
        "segments.col.computed": ("更新时间", "Updated"),
        "segments.col.version": ("版本", "Version"),
        "segments.never": ("尚未计算", "Not computed yet"),
        "segments.persons": ("共 {n} 位用户", "{n} people in all"),
        "segments.refreshed": ("数据更新于 {at}", "Data as of {at}"),
        "segments.refreshed_never": ("数据尚未计算", "Data not computed yet"),
        "segments.refresh": ("立即更新数据", "Update data now"),
        "segments.refresh_done": ("已更新：{n} 位用户，用时 {s} 秒", "Updated: {n} people in {s} s"),
        "segments.exports": ("导出记录", "Export log"),
        # builder
        "segments.builder": ("人群圈选", "Segment builder"),
        "segments.name": ("人群名称", "Name"),
        "segments.description": ("说明", "Description"),
        "segments.rule": ("圈选条件", "Rule"),
        "segments.rule_json": ("条件（JSON）", "Rule (JSON)"),
        "segments.save": ("保存并计算", "Save and compute"),
        "segments.cancel": ("取消", "Cancel"),
        "segments.live": ("预计人数", "Estimated people"),
        "segments.live_of": ("占全部 {persons} 人的 {share}", "{share} of {persons} people"),
        "segments.live_errors": ("条件有误：", "The rule has problems:"),
        "segments.live_wait": ("计算中…", "Counting…"),
        "segments.live_failed": ("暂时无法计算，请稍后再试", "Could not count; try again"),
        "segments.live_stale": ("按 {at} 的数据计算", "Counted on data as of {at}"),
        "b.all": ("满足全部条件", "Match all"),
        "b.any": ("满足任一条件", "Match any"),
        "b.not": ("排除（非）", "Exclude (NOT)"),
        "b.add": ("+ 条件", "+ Condition"),
        "b.add_group": ("+ 条件组", "+ Group"),
        "b.remove": ("删除", "Remove"),
        "b.type.trait": ("用户属性", "Trait"),
        "b.type.tag": ("标签", "Tag"),
        "b.type.identifier": ("身份标识", "Identifier"),
        "b.type.consent": ("授权", "Consent"),
        "b.type.event": ("行为", "Behaviour"),
        "b.op.eq": ("等于", "is"),
        "b.op.ne": ("不等于", "is not"),
        "b.op.in": ("属于", "is one of"),
        "b.op.not_in": ("不属于", "is none of"),
        "b.op.gt": ("大于", "more than"),
        "b.op.gte": ("至少", "at least"),
        "b.op.lt": ("少于", "less than"),
        "b.op.lte": ("至多", "at most"),
        "b.op.between": ("介于", "between"),
        "b.op.contains": ("包含", "contains"),
        "b.op.starts_with": ("开头是", "starts with"),
        "b.op.exists": ("有值", "is set"),
        "b.op.not_exists": ("无值", "is not set"),
        "b.op.has": ("有此标签", "has the tag"),
        "b.has_identifier": ("拥有", "has a"),
        "b.has_consent": ("已同意", "has consented to"),
        "b.event_any": ("任意行为", "any behaviour"),
        "b.within": ("近", "in the last"),
        "b.days": ("天", "days"),
        "b.all_time": ("（留空 = 不限时间）", "(empty = all time)"),
        "b.times": ("次", "times"),
        "b.amount": ("金额", "amount"),
        "b.count": ("次数", "count"),
        "b.link": ("短链", "Short link"),
        "b.link_tag": ("短链标签", "Link tag"),
        "b.any_link": ("任意短链", "any link"),
        "b.values_hint": ("多个值用逗号分隔", "separate values with commas"),
        "b.pick": ("请选择", "Choose"),
        "b.and_word": ("且", "and"),
        "b.or_word": ("或", "or"),
        # detail
        "segment.members": ("成员", "Members"),
        "segment.members_empty": ("目前没有成员", "No members at the moment"),
        "segment.history": ("进出记录", "Joined and left"),
        "segment.history_empty": ("还没有进出记录", "Nobody has joined or left yet"),
        "segment.joined": ("加入", "joined"),
        "segment.left": ("离开", "left"),
        "segment.edit": ("编辑", "Edit"),
        "segment.delete": ("删除人群", "Delete segment"),
        "segment.delete_confirm": ("确定删除这个人群？快照会保留。", "Delete this segment? Its snapshots stay."),
        "segment.recompute": ("重新计算", "Recompute"),
        "segment.recomputed": (
            "已重新计算：加入 {joined} 人，离开 {left} 人",
            "Recomputed: {joined} joined, {left} left",
        ),
        "segment.snapshot": ("保存快照", "Save a snapshot"),
        "segment.busy": (
            "数据正在更新，人群会随这次更新一起重新计算",
            "The data is being updated; the segment is recomputed with it",
        ),
        "segment.snapshot_hint": (
            "快照会固定当前成员（静态人群），之后不随数据变化。",
            "A snapshot freezes today's members (a static segment).",
        ),
        "segment.snapshot_done": ("已保存快照：{n} 人", "Snapshot saved: {n} people"),
        "segment.snapshots": ("快照（静态人群）", "Snapshots (static segments)"),
        "segment.snapshots_empty": ("还没有快照", "No snapshots yet"),
        "segment.versions": ("版本", "Versions"),
        "segment.export": ("导出人群包", "Export an audience file"),
        "segment.export_hint": (
            "仅导出已同意“数据共享（data_sharing）”的用户；手机号为 11 位号码，哈希为小写十六进制，每行一个。"
            "每次导出都会记录。",
            "Only people who consented to data sharing (data_sharing) are exported; phones as 11-digit numbers, "
            "hashes in lower-case hex, one per line. Every export is logged.",
        ),
        "segment.id_type": ("标识类型", "Identifier"),
        "segment.id_type.phone": ("手机号", "Phone"),
        "segment.id_type.device_id": ("设备 ID", "Device ID"),
        "segment.hash": ("哈希算法", "Hash"),
        "segment.export_button": ("导出", "Export"),
        "segment.not_found": ("找不到这个人群", "No such segment"),
        "exports.title": ("人群包导出记录", "Audience export log"),
        "exports.empty": ("还没有导出记录", "Nothing exported yet"),
        "exports.col.at": ("时间", "When"),
        "exports.col.what": ("人群", "Segment"),
        "exports.col.format": ("格式", "Format"),
        "exports.col.members": ("人群人数", "People"),
        "exports.col.refused": ("未授权（未导出）", "Without consent (left out)"),
        "exports.col.exported": ("已导出", "Exported"),
        "exports.col.rows": ("行数", "Lines"),
        "exports.col.actor": ("操作人", "By"),
        "settings.keys.scope.segments:write": ("管理标签与人群", "Manage tags and segments"),
        "settings.keys.scope.audiences:export": ("导出人群包", "Export audience files"),
    }
)
OP_WORDS = {op: f"b.op.{op}" for op in (*rules.TRAIT_OPS, "has")}
LIST_PAGE = 50


# --- a rule as a sentence ----------------------------------------------------------------------------------


def describe(rule: Any, locale: str, tag_names: dict[str, str] | None = None, depth: int = 0) -> str:
    """A stored rule tree in words ('城市 等于 上海 且 近 90 天 Order Completed 至少 2 次'); `tag_names` maps
    tag codes (and 'purpose:<code>') to what people call them (see `rule_names`)."""
    tag_names = tag_names or {}
    if not isinstance(rule, dict) or depth > rules.MAX_DEPTH:
        return "…"
    for key, word in (("and", "b.and_word"), ("or", "b.or_word")):
        if isinstance(rule.get(key), list):
            parts = [describe(c, locale, tag_names, depth + 1) for c in rule[key]]
            text = f" {t(word, locale)} ".join(parts)
            return f"({text})" if depth and len(parts) > 1 else text
    if "not" in rule:
        inner = describe(rule["not"], locale, tag_names, depth + 1)
        return f"非（{inner}）" if locale == "zh-CN" else f"not ({inner})"
    kind = rule.get("type")
    op = rule.get("op")
    value = rule.get("value")
    shown = ", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
    if kind == "trait":
        word = t(OP_WORDS.get(op, ""), locale) if op in OP_WORDS else str(op)
        return f"{rule.get('field')} {word} {shown}".strip()
    if kind == "tag":
        name = tag_names.get(rule.get("tag", ""), rule.get("tag", ""))
        if op in (None, "has"):
            return f"有标签「{name}」" if locale == "zh-CN" else f"has tag “{name}”"
        return f"「{name}」{t(OP_WORDS.get(op, ''), locale)} {shown}" if locale == "zh-CN" else f"“{name}” {op} {shown}"
    if kind == "identifier":
        return f"{t('b.has_identifier', locale)} {id_type_label(str(rule.get('id_type')), locale)}"
    if kind == "consent":
        purpose = str(rule.get("purpose"))
        return f"{t('b.has_consent', locale)} {tag_names.get('purpose:' + purpose, purpose)}"
    if kind == "event":
        event = t("b.event_any", locale) if rule.get("event") == rules.ANY_EVENT else str(rule.get("event"))
        where = [v for v in (rule.get("link"), rule.get("link_tag")) if v]
        if where:
            event += f"（{'/'.join(where)}）" if locale == "zh-CN" else f" ({'/'.join(where)})"
        days = rule.get("within_days")
        window = (f"近 {days} 天 " if locale == "zh-CN" else f"in the last {days} days ") if days else ""
        word = t(f"b.op.{op or 'gte'}", locale)
        if rule.get("measure") == "amount":
            return f"{window}{event} {t('b.amount', locale)} {word} {shown}"
        count = shown or "1"
        return (
            f"{window}{event} {word} {count} {t('b.times', locale)}"
            if locale == "zh-CN"
            else (f"{event} {word} {count} times {window}".strip())
        )
    return "…"


def rule_names(session: Any, workspace_id: int, locale: str) -> dict[str, str]:
    """Tag codes and 'purpose:<code>' -> their names in `locale`, for `describe`."""
    zh = locale == "zh-CN"
    names = {tag.code: tag.name if zh else tag.name_en for tag in list_tags(session, workspace_id)}
    names.update({f"purpose:{p.code}": p.label(locale) for p in list_purposes(session, workspace_id)})
    return names


def builder_labels(locale: str) -> dict[str, str]:
    """The builder's words in the viewer's language (the script has no catalogue of its own)."""
    return {k.removeprefix("b."): t(k, locale) for k in _BUILDER_KEYS}


_BUILDER_KEYS = (
    *(f"b.{k}" for k in ("all", "any", "not", "add", "add_group", "remove", "has_identifier", "has_consent")),
    *(f"b.type.{k}" for k in rules.TYPES),
    *(f"b.op.{k}" for k in (*rules.TRAIT_OPS, "has")),
    *(f"b.{k}" for k in ("event_any", "within", "days", "all_time", "times", "amount", "count", "link", "link_tag")),
    *(f"b.{k}" for k in ("any_link", "values_hint", "pick")),
)


def rule_errors(exc: InvalidInput, locale: str) -> list[dict[str, str]]:
    return [{"field": e.field, "message": error_text(e, locale)} for e in exc.errors]


def _schema(request: Request, viewer: Viewer) -> dict[str, Any]:
    rt = runtime_of(request)
    with rt.db.session() as session:
        return vocabulary.builder_schema(session, rt.store, viewer.workspace.id)


def builder_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    """What a page with the builder needs: the names, the words, where to ask for counts."""
    return {"builder": {"schema": _schema(request, viewer), "labels": builder_labels(viewer.locale)}}


# --- list ------------------------------------------------------------------------------------------------


def _overview(request: Request, viewer: Viewer) -> dict[str, Any]:
    rt = runtime_of(request)
    ws = viewer.workspace.id
    persons = segments.persons_count(rt.store, ws)
    with rt.db.session() as session:
        rows = [segments.segment_dict(s, persons) for s in segments.list_segments(session, ws)]
        names = rule_names(session, ws, viewer.locale)
    for row in rows:
        row["sentence"] = describe(row["rule"], viewer.locale, names)
    return {"rows": rows, "persons": persons, "refreshed_at": facts.refreshed_at(rt.store, ws)}


@page("analytics:read")
async def segments_page(request: Request, viewer: Viewer) -> Response:
    data = await anyio.to_thread.run_sync(_overview, request, viewer)
    done = request.query_params.get("refreshed")
    return render(request, "segments.html", viewer, **data, refreshed=done)


@page("segments:write")
async def refresh_now(request: Request, viewer: Viewer) -> Response:
    """Refresh the facts, compute every tag and segment of the workspace now, then go back."""
    rt = runtime_of(request)
    reports = await anyio.to_thread.run_sync(lambda: rt.tags.recompute(viewer.workspace.id, cause="manual"))
    form = await request.form()
    back = str(form.get("next") or "/console/segments")
    if not back.startswith("/console/"):
        back = "/console/segments"
    sep = "&" if "?" in back else "?"
    report = reports[0]
    return RedirectResponse(f"{back}{sep}refreshed={report.facts.persons}:{report.seconds:.1f}", status_code=303)


# --- builder -------------------------------------------------------------------------------------------------

EMPTY_RULE = {"and": [{"type": "event", "event": rules.ANY_EVENT, "within_days": 30, "op": "gte", "value": 1}]}


def _form_page(
    request: Request,
    viewer: Viewer,
    form: dict[str, Any],
    segment_id: int | None,
    errors: list[dict[str, str]],
    status: int,
) -> Response:
    return render(
        request,
        "segments_form.html",
        viewer,
        status,
        form=form,
        segment_id=segment_id,
        errors=errors,
        **builder_context(request, viewer),
    )


@page("segments:write")
async def new_segment(request: Request, viewer: Viewer) -> Response:
    form = {"name": "", "description": "", "rule": json.dumps(EMPTY_RULE, ensure_ascii=False)}
    return await anyio.to_thread.run_sync(_form_page, request, viewer, form, None, [], 200)


def _read_form(raw: Any) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, str]]]:
    """(values for the service, the form as typed, JSON errors) from a posted builder form."""
    text = str(raw.get("rule") or "")
    form = {"name": str(raw.get("name") or ""), "description": str(raw.get("description") or ""), "rule": text}
    try:
        rule = json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        return {}, form, [{"field": "rule", "message": f"JSON: {exc.msg} ({exc.lineno}:{exc.colno})"}]
    return {"name": form["name"], "description": form["description"], "rule": rule}, form, []


@page("segments:write")
async def create_segment(request: Request, viewer: Viewer) -> Response:
    values, form, errors = _read_form(await request.form())
    rt = runtime_of(request)
    if errors:
        return await anyio.to_thread.run_sync(_form_page, request, viewer, form, None, errors, 422)

    def run() -> int:
        with rt.db.session() as session:
            seg_id = segments.create_segment(session, viewer.workspace.id, values, viewer.user.email).id
        rt.tags.recompute_segments(viewer.workspace.id, [seg_id])
        return seg_id

    try:
        seg_id = await anyio.to_thread.run_sync(run)
    except InvalidInput as exc:
        return await anyio.to_thread.run_sync(
            _form_page, request, viewer, form, None, rule_errors(exc, viewer.locale), 422
        )
    except Conflict as exc:
        errs = [{"field": exc.field, "message": error_text(exc, viewer.locale)}]
        return await anyio.to_thread.run_sync(_form_page, request, viewer, form, None, errs, 409)
    return RedirectResponse(f"/console/segments/{seg_id}", status_code=303)


@page("segments:write")
async def edit_segment(request: Request, viewer: Viewer) -> Response:
    segment_id = request.path_params["segment_id"]
    rt = runtime_of(request)

    def load() -> dict[str, Any]:
        with rt.db.session() as session:
            seg = segments.get_segment(session, viewer.workspace.id, segment_id)
            return {"name": seg.name, "description": seg.description, "rule": json.dumps(seg.rule, ensure_ascii=False)}

    try:
        form = await anyio.to_thread.run_sync(load)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("segment.not_found"))
    return await anyio.to_thread.run_sync(_form_page, request, viewer, form, segment_id, [], 200)


@page("segments:write")
async def save_segment(request: Request, viewer: Viewer) -> Response:
    segment_id = request.path_params["segment_id"]
    values, form, errors = _read_form(await request.form())
    rt = runtime_of(request)
    if errors:
        return await anyio.to_thread.run_sync(_form_page, request, viewer, form, segment_id, errors, 422)

    def run() -> None:
        with rt.db.session() as session:
            segments.update_segment(session, viewer.workspace.id, segment_id, values, viewer.user.email)
        rt.tags.recompute_segments(viewer.workspace.id, [segment_id])

    try:
        await anyio.to_thread.run_sync(run)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("segment.not_found"))
    except InvalidInput as exc:
        errs = rule_errors(exc, viewer.locale)
        return await anyio.to_thread.run_sync(_form_page, request, viewer, form, segment_id, errs, 422)
    except Conflict as exc:
        errs = [{"field": exc.field, "message": error_text(exc, viewer.locale)}]
        return await anyio.to_thread.run_sync(_form_page, request, viewer, form, segment_id, errs, 409)
    return RedirectResponse(f"/console/segments/{segment_id}", status_code=303)


@page("analytics:read")
async def preview(request: Request, viewer: Viewer) -> Response:
    """The builder's live count: {count, persons, refreshed_at} or {errors: [{field, message}]}."""
    raw = await request.form()
    try:
        rule = json.loads(str(raw.get("rule") or ""))
    except json.JSONDecodeError as exc:
        return JSONResponse({"errors": [{"field": "rule", "message": f"JSON: {exc.msg}"}]}, status_code=422)
    rt = runtime_of(request)

    def run() -> dict[str, Any]:
        with rt.db.session() as session:
            return segments.preview(session, rt.store, viewer.workspace.id, rule)

    try:
        data = await anyio.to_thread.run_sync(run)
    except InvalidInput as exc:
        return JSONResponse({"errors": rule_errors(exc, viewer.locale)}, status_code=422)
    at = data["refreshed_at"]
    share = f"{data['count'] / data['persons']:.1%}" if data["persons"] else "—"
    return JSONResponse(
        {
            "count": data["count"],
            "persons": data["persons"],
            "share": share,
            "text": viewer.t("segments.live_of", persons=f"{data['persons']:,}", share=share),
            "refreshed": viewer.t("segments.live_stale", at=_when(at, viewer))
            if at
            else viewer.t("segments.refreshed_never"),
        }
    )


def _when(at: Any, viewer: Viewer) -> str:
    return fmt_datetime(at, viewer.locale)


# --- detail ------------------------------------------------------------------------------------------------------


def _detail(request: Request, viewer: Viewer, segment_id: int, page_no: int) -> dict[str, Any]:
    rt = runtime_of(request)
    ws = viewer.workspace.id
    persons = segments.persons_count(rt.store, ws)
    with rt.db.session() as session:
        seg = segments.get_segment(session, ws, segment_id)
        names = rule_names(session, ws, viewer.locale)
        data = segments.segment_dict(seg, persons)
        return {
            "seg": data,
            "sentence": describe(seg.rule, viewer.locale, names),
            "rule_json": json.dumps(seg.rule, ensure_ascii=False, indent=2),
            "members": segments.members(session, ws, seg.id, LIST_PAGE, (page_no - 1) * LIST_PAGE),
            "history": segments.history(session, ws, seg.id, 50, 0),
            "snapshots": segments.list_snapshots(session, ws, seg.id),
            "versions": segments.versions(session, seg),
            "persons": persons,
            "page_no": page_no,
        }


def _page_no(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1


@page("analytics:read")
async def segment_page(request: Request, viewer: Viewer) -> Response:
    segment_id = request.path_params["segment_id"]
    page_no = _page_no(request.query_params.get("page"))
    try:
        data = await anyio.to_thread.run_sync(_detail, request, viewer, segment_id, page_no)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("segment.not_found"))
    notice = None
    q = request.query_params
    if q.get("joined") is not None:
        notice = viewer.t("segment.recomputed", joined=q.get("joined"), left=q.get("left", "0"))
    elif q.get("snapshot") is not None:
        notice = viewer.t("segment.snapshot_done", n=q.get("snapshot"))
    elif q.get("busy"):
        notice = viewer.t("segment.busy")
    total = data["members"]["total"]
    base = f"/console/segments/{segment_id}"
    return render(
        request,
        "segments_detail.html",
        viewer,
        **data,
        notice=notice,
        prev_url=f"{base}?page={page_no - 1}#members" if page_no > 1 else None,
        next_url=f"{base}?page={page_no + 1}#members" if page_no * LIST_PAGE < total else None,
        id_types=audience.ID_TYPES,
        hashes=tuple(audience.HASHES),
    )


@page("segments:write")
async def recompute(request: Request, viewer: Viewer) -> Response:
    segment_id = request.path_params["segment_id"]
    rt = runtime_of(request)

    def run() -> segments.SegmentResult | None:
        with rt.db.session() as session:
            segments.get_segment(session, viewer.workspace.id, segment_id)
        done = rt.tags.recompute_segments(viewer.workspace.id, [segment_id], refresh=True)
        return done[0] if done else None

    try:
        result = await anyio.to_thread.run_sync(run)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("segment.not_found"))
    if result is None:  # a scheduled run is under way: it recomputes the segment too
        return RedirectResponse(f"/console/segments/{segment_id}?busy=1", status_code=303)
    return RedirectResponse(
        f"/console/segments/{segment_id}?joined={result.joined}&left={result.left}", status_code=303
    )


@page("segments:write")
async def snapshot(request: Request, viewer: Viewer) -> Response:
    segment_id = request.path_params["segment_id"]
    rt = runtime_of(request)

    def run() -> int:
        with rt.db.session() as session:
            return segments.create_snapshot(session, viewer.workspace.id, segment_id, viewer.user.email).member_count

    try:
        n = await anyio.to_thread.run_sync(run)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("segment.not_found"))
    return RedirectResponse(f"/console/segments/{segment_id}?snapshot={n}#snapshots", status_code=303)


@page("segments:write")
async def delete(request: Request, viewer: Viewer) -> Response:
    segment_id = request.path_params["segment_id"]
    rt = runtime_of(request)

    def run() -> None:
        with rt.db.session() as session:
            segments.delete_segment(session, viewer.workspace.id, segment_id)

    try:
        await anyio.to_thread.run_sync(run)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("segment.not_found"))
    return RedirectResponse("/console/segments", status_code=303)


async def _export(request: Request, viewer: Viewer, **target: int) -> Response:
    form = await request.form()
    id_type, algorithm = str(form.get("id_type") or "phone"), str(form.get("hash") or "md5")
    rt = runtime_of(request)

    def run() -> audience.Export:
        with rt.db.session() as session:
            return audience.export_audience(
                session, viewer.workspace.id, id_type=id_type, hash=algorithm, actor=viewer.user.email, **target
            )

    try:
        result = await anyio.to_thread.run_sync(run)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("segment.not_found"))
    except InvalidInput as exc:
        message = "; ".join(f"{e.field}: {error_text(e, viewer.locale)}" for e in exc.errors)
        return render(request, "error.html", viewer, 422, message=message)
    log = result.log
    return Response(
        result.text(),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="audience-{log["id"]}-{log["id_type"]}-{log["hash"]}.csv"',
            "x-siyu-refused": str(log["refused"]),
            "x-siyu-exported": str(log["exported"]),
            "cache-control": "no-store",
        },
    )


@page("audiences:export")
async def export_segment(request: Request, viewer: Viewer) -> Response:
    return await _export(request, viewer, segment_id=request.path_params["segment_id"])


@page("audiences:export")
async def export_snapshot(request: Request, viewer: Viewer) -> Response:
    return await _export(request, viewer, snapshot_id=request.path_params["snapshot_id"])


@page("analytics:read")
async def exports_page(request: Request, viewer: Viewer) -> Response:
    rt = runtime_of(request)

    def run() -> list[dict[str, Any]]:
        with rt.db.session() as session:
            return audience.export_log(session, viewer.workspace.id)

    rows = await anyio.to_thread.run_sync(run)
    return render(request, "segments_exports.html", viewer, rows=rows)


def routes() -> list[BaseRoute]:
    return [
        Route("/segments", segments_page, methods=["GET"]),
        Route("/segments/refresh", refresh_now, methods=["POST"]),
        Route("/segments/new", new_segment, methods=["GET"]),
        Route("/segments/new", create_segment, methods=["POST"]),
        Route("/segments/preview", preview, methods=["POST"]),
        Route("/segments/exports", exports_page, methods=["GET"]),
        Route("/segments/snapshots/{snapshot_id:int}/export", export_snapshot, methods=["POST"]),
        Route("/segments/{segment_id:int}", segment_page, methods=["GET"]),
        Route("/segments/{segment_id:int}/edit", edit_segment, methods=["GET"]),
        Route("/segments/{segment_id:int}/edit", save_segment, methods=["POST"]),
        Route("/segments/{segment_id:int}/recompute", recompute, methods=["POST"]),
        Route("/segments/{segment_id:int}/snapshot", snapshot, methods=["POST"]),
        Route("/segments/{segment_id:int}/delete", delete, methods=["POST"]),
        Route("/segments/{segment_id:int}/export", export_segment, methods=["POST"]),
    ]
