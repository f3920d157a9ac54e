"""The privacy page (隐私合规): consent purposes, subject-rights requests (look up, export, erase), the audit log;
and the consent panel of a profile (`profile_consent.html`) with its POST route.

Anyone in the workspace may look; changing purposes, exporting and erasing need `privacy:manage`
(owners and admins), recording a person's consent change needs `consent:write` (operators too).
Erasure has a confirmation step that shows what will be removed and asks for the super ID again.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import orjson
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from siyu.consent import issues, purposes
from siyu.consent import service as consent
from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.errors_i18n import error_text
from siyu.i18n import register
from siyu.identity import service as identity
from siyu.privacy import requests, service
from siyu.web.context import Viewer, page, render, runtime_of
from siyu.workspaces.models import Membership, User

register(
    {
        "nav.privacy": ("隐私合规", "Privacy"),
        "privacy.title": ("隐私合规", "Privacy"),
        "privacy.intro": (
            "按《个人信息保护法》管理同意与个人权利：为每个处理目的单独取得同意，响应查阅、复制与删除请求，并留存审计记录。",
            "Consent per purpose and subject rights under PIPL (个人信息保护法): separate consent for each "
            "purpose, access, copy and erasure requests, and an audit trail.",
        ),
        "privacy.read_only": ("你的角色只能查看此部分。", "Your role can only view this section."),
        # purposes
        "privacy.purposes": ("处理目的", "Purposes"),
        "privacy.purposes.help": (
            'SDK 在 context.consent.categoryPreferences 中按目的代码上报同意，例如 {"marketing": true}。'
            "代码创建后不能修改；停用的目的不再接受新的同意记录，也不视为已同意。",
            'SDKs report consent per purpose code in context.consent.categoryPreferences, e.g. {"marketing": '
            "true}. A code never changes once created; a disabled purpose takes no new records and never counts "
            "as consented.",
        ),
        "privacy.code": ("代码", "Code"),
        "privacy.name": ("名称", "Name"),
        "privacy.name_en": ("英文名称", "English name"),
        "privacy.description": ("说明", "Description"),
        "privacy.status": ("状态", "Status"),
        "privacy.enabled": ("启用", "Enabled"),
        "privacy.disabled": ("已停用", "Disabled"),
        "privacy.builtin": ("默认", "Default"),
        "privacy.save": ("保存", "Save"),
        "privacy.disable": ("停用", "Disable"),
        "privacy.enable": ("启用", "Enable"),
        "privacy.confirm_disable": (
            "停用后，该目的不再接受新的同意记录，所有人都视为未同意。确定停用？",
            "Once disabled, the purpose takes no new consent and counts as not consented for everyone. Disable it?",
        ),
        "privacy.add": ("添加目的", "Add a purpose"),
        "privacy.code_placeholder": ("例如 member_sms", "e.g. member_sms"),
        "privacy.issues": ("无法记录的同意", "Consent that could not be recorded"),
        "privacy.issues.help": (
            "以下代码出现在上报的事件中，但不是已启用的目的。请添加对应目的，或修正网站/小程序的同意弹窗。",
            "These codes arrived with tracked events but are not enabled purposes. Add the purpose, or fix the "
            "consent banner of the website or mini program.",
        ),
        "privacy.issue.unknown": ("未知代码", "Unknown code"),
        "privacy.issue.disabled": ("目的已停用", "Purpose disabled"),
        "privacy.issue.not_boolean": ("值不是 true/false", "Value not true/false"),
        "privacy.issue.count": ("次数", "Times"),
        "privacy.issue.last_seen": ("最近出现", "Last seen"),
        "privacy.issue.last_event": ("最近事件", "Last event"),
        # requests
        "privacy.requests": ("个人权利请求", "Subject-rights requests"),
        "privacy.requests.help": (
            "输入祖 ID（super ID），或标识 类型:值，例如 phone:13912345678、member_id:M1001。",
            "Enter a super ID (祖ID), or an identifier as type:value, e.g. phone:13912345678 or member_id:M1001.",
        ),
        "privacy.person": ("用户", "Person"),
        "privacy.lookup": ("查看", "Look up"),
        "privacy.export": ("导出数据（JSON）", "Export data (JSON)"),
        "privacy.erase": ("删除该用户…", "Erase this person…"),
        "privacy.person_card": ("用户 {id}", "Person {id}"),
        "privacy.open_profile": ("查看用户画像", "Open the profile"),
        "privacy.identifiers": ("标识", "Identifiers"),
        "privacy.not_found": ("找不到该用户（可能已被删除）。", "No such person (they may have been erased)."),
        # erasure confirmation
        "privacy.erase.title": ("确认删除用户 {id}", "Confirm erasing person {id}"),
        "privacy.erase.intro": (
            "将永久删除以下数据，无法恢复。标识只保留不可逆的摘要，以后带有相同手机号等标识的事件不会再关联到此人。"
            "审计日志只记录祖 ID、操作人和数量。",
            "The following is deleted for good. Identifiers are kept only as irreversible digests, so later events "
            "carrying the same phone number or other identifiers never link to this person again. The audit log "
            "keeps only the super ID, who did it and the counts.",
        ),
        "privacy.erase.type_id": ("请输入祖 ID {id} 以确认", "Type the super ID {id} to confirm"),
        "privacy.erase.mismatch": ("输入的祖 ID 不一致。", "The super ID you typed does not match."),
        "privacy.erase.submit": ("永久删除", "Erase for good"),
        "privacy.erase.cancel": ("取消", "Cancel"),
        "privacy.count.persons": ("祖 ID（含已合并）", "Super IDs (with merged ones)"),
        "privacy.count.identifiers": ("标识", "Identifiers"),
        "privacy.count.traits": ("画像属性", "Traits"),
        "privacy.count.consent_records": ("同意记录", "Consent records"),
        "privacy.count.events": ("事件", "Events"),
        "privacy.count.clicks": ("短链点击", "Short-link clicks"),
        "privacy.count.event_links": ("事件归属", "Event links"),
        # audit
        "privacy.audit": ("审计日志", "Audit log"),
        "privacy.audit.help": (
            "每次导出与删除都会记录。日志不含个人信息，只有祖 ID、操作人与数量。",
            "Every export and erasure is recorded. The log holds no personal data: only the super ID, who did it "
            "and the counts.",
        ),
        "privacy.audit.at": ("时间", "When"),
        "privacy.audit.action": ("操作", "Action"),
        "privacy.audit.actor": ("操作人", "By"),
        "privacy.audit.counts": ("数量", "Counts"),
        "privacy.audit.export": ("导出", "Export"),
        "privacy.audit.erase": ("删除", "Erasure"),
        "privacy.none": ("暂无", "None yet"),
        "privacy.done.purpose_added": ("目的已添加。", "Purpose added."),
        "privacy.done.purpose_saved": ("目的已保存。", "Purpose saved."),
        "privacy.done.erased": (
            "用户 {id} 已删除，审计日志已记录。",
            "Person {id} erased; the audit log has the entry.",
        ),
        # the consent panel of a profile
        "consent.title": ("同意记录", "Consent"),
        "consent.purpose": ("目的", "Purpose"),
        "consent.status": ("当前状态", "Status"),
        "consent.source": ("来源", "Source"),
        "consent.recorded_at": ("时间", "When"),
        "consent.evidence": ("凭证", "Evidence"),
        "consent.status.granted": ("已同意", "Granted"),
        "consent.status.denied": ("已拒绝", "Denied"),
        "consent.status.withdrawn": ("已撤回", "Withdrawn"),
        "consent.status.none": ("未询问", "Not asked"),
        "consent.source.tracking": ("埋点上报", "Tracking"),
        "consent.source.import": ("导入", "Import"),
        "consent.source.console": ("控制台", "Console"),
        "consent.source.api": ("API", "API"),
        "consent.change": ("记录同意变更", "Record a consent change"),
        "consent.grant": ("同意", "Granted"),
        "consent.deny": ("拒绝 / 撤回", "Denied / withdrawn"),
        "consent.evidence_placeholder": (
            "例如：客服电话 2026-11-20，工单 #1234",
            "e.g. phone call 2026-11-20, ticket #1234",
        ),
        "consent.record": ("记录", "Record"),
        "consent.recorded": ("同意记录已保存。", "Consent recorded."),
        "consent.disabled_purpose": ("（已停用）", "(disabled)"),
        "consent.error.purpose": ("请选择一个已启用的目的。", "Choose an enabled purpose."),
        "consent.error.status": ("请选择同意或拒绝。", "Choose granted or denied."),
        "consent.error.evidence": ("凭证最多 500 个字符。", "Evidence may be at most 500 characters."),
        # API key scopes (listed on the settings page)
        "settings.keys.scope.consent:read": ("读取同意记录", "Read consent"),
        "settings.keys.scope.consent:write": ("管理同意与处理目的", "Manage consent and purposes"),
        "settings.keys.scope.privacy:write": ("导出/删除个人数据", "Export and erase personal data"),
        # domain error codes of siyu.consent and siyu.privacy
        "error.consent_purpose_unknown": (
            "未知的目的「{code}」；已有目的：{known}",
            "unknown purpose '{code}'; known purposes: {known}",
        ),
        "error.consent_purpose_disabled": ("目的「{code}」已停用", "the purpose '{code}' is disabled"),
        "error.consent_purpose_code": (
            "2 到 32 个字符：以小写字母开头，只含小写字母、数字或下划线",
            "2 to 32 characters: a lower-case letter, then lower-case letters, digits or '_'",
        ),
        "error.consent_purpose_exists": ("目的「{code}」已存在", "the purpose '{code}' already exists"),
        "error.consent_name_required": ("不能为空", "must not be empty"),
        "error.consent_time": ("必须是日期时间", "must be a date-time"),
        "error.consent_time_future": ("不能是将来的时间", "must not be in the future"),
        "error.consent_event_seen": ("该事件已记录过这个目的", "this event already recorded this purpose"),
        "error.privacy_person_ref": (
            "请输入祖 ID（例如 1024）或 类型:值 形式的标识（例如 phone:13912345678）",
            "give a super ID (e.g. 1024) or an identifier as type:value (e.g. phone:13912345678)",
        ),
        "error.privacy_actor": ("必须是 user:<id>、key:<名称> 或 cli", "must be user:<id>, key:<name> or cli"),
    }
)

DONE = frozenset({"purpose_added", "purpose_saved", "erased"})
CONSENT_FIELDS = ("purpose", "status", "evidence")
MAX_REF = 300


def _actor(viewer: Viewer) -> str:
    return f"user:{viewer.user.id}"  # an id, never an e-mail: the audit log holds no personal data


# --- the page ----------------------------------------------------------------------------------------------


def _person(request: Request, viewer: Viewer, ref: str) -> dict[str, Any]:
    """The looked-up person's card: super ID, identifiers, consent (for the included consent panel)."""
    ws = viewer.workspace.id
    with runtime_of(request).db.session() as db:
        root = service.find_person(db, ws, ref)
        return {
            "super_id": root,
            "identifiers": identity.identifiers_of(db, ws, root),
            "consents": consent.current_consents(db, ws, root),
        }


def _load(request: Request, viewer: Viewer) -> dict[str, Any]:
    ws = viewer.workspace.id
    with runtime_of(request).db.session() as db:
        names = dict(
            db.execute(
                select(User.id, User.display_name)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.workspace_id == ws)
            ).all()
        )
        return {
            "purposes": purposes.list_purposes(db, ws),
            "issues": issues.list_issues(db, ws),
            "audit": service.audit_log(db, ws, limit=50),
            "member_names": {f"user:{k}": v for k, v in names.items()},
        }


async def _render_page(
    request: Request,
    viewer: Viewer,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    data = await anyio.to_thread.run_sync(_load, request, viewer)
    ref = (values or {}).get("person") or request.query_params.get("person", "")
    person, person_error = None, ""
    if ref and not errors:
        try:
            person = await anyio.to_thread.run_sync(_person, request, viewer, ref[:MAX_REF])
        except InvalidInput as exc:
            person_error = error_text(exc.errors[0], viewer.locale)
        except NotFound:
            person_error = viewer.t("privacy.not_found")
    done = request.query_params.get("done", "") if request.method == "GET" else ""
    notice = ""
    if done in DONE:
        notice = viewer.t(f"privacy.done.{done}", id=request.query_params.get("id", "")[:20])
    errors = dict(errors or {})
    if person_error:
        errors["person"] = person_error
    return render(
        request,
        "privacy.html",
        viewer,
        status,
        errors=errors,
        values={"person": ref, **(values or {})},
        notice=notice,
        person=person,
        **data,
    )


@page()
async def privacy_page(request: Request, viewer: Viewer) -> Response:
    return await _render_page(request, viewer)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(v)[:2000] for k, v in form.items() if isinstance(v, str)}


def _field_errors(viewer: Viewer, exc: InvalidInput | Conflict, prefix: str = "") -> dict[str, str]:
    errors = exc.errors if isinstance(exc, InvalidInput) else [exc.field_error()]
    out: dict[str, str] = {}
    for e in errors:
        out.setdefault(prefix + e.field, error_text(e, viewer.locale))
    return out


# --- purposes ----------------------------------------------------------------------------------------------


@page("privacy:manage")
async def add_purpose(request: Request, viewer: Viewer) -> Response:
    form = await _form(request)
    raw = {k: form.get(k, "") for k in ("code", "name", "name_en", "description")}
    raw["code"] = raw["code"].strip()

    def run() -> None:
        with runtime_of(request).db.session() as db:
            purposes.add_purpose(db, viewer.workspace.id, raw)

    try:
        await anyio.to_thread.run_sync(run)
    except (InvalidInput, Conflict) as exc:
        return await _render_page(request, viewer, 422, _field_errors(viewer, exc, "new_"), {"new": raw})
    return RedirectResponse("/console/privacy?done=purpose_added#purposes", status_code=303)


@page("privacy:manage")
async def update_purpose(request: Request, viewer: Viewer) -> Response:
    code = request.path_params["code"][:64]
    form = await _form(request)
    if "enabled" in form:
        changes: dict[str, Any] = {"enabled": form["enabled"] == "1"}
    else:
        changes = {k: form[k] for k in ("name", "name_en", "description") if k in form}

    def run() -> None:
        with runtime_of(request).db.session() as db:
            purposes.update_purpose(db, viewer.workspace.id, code, changes)

    try:
        await anyio.to_thread.run_sync(run)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("error.not_found"))
    except InvalidInput as exc:
        return await _render_page(request, viewer, 422, _field_errors(viewer, exc, f"{code}_"), {"edit": changes})
    return RedirectResponse("/console/privacy?done=purpose_saved#purposes", status_code=303)


# --- subject-rights requests -------------------------------------------------------------------------------


async def _resolve(request: Request, viewer: Viewer, ref: str) -> int:
    def run() -> int:
        with runtime_of(request).db.session() as db:
            return service.find_person(db, viewer.workspace.id, ref[:MAX_REF])

    return await anyio.to_thread.run_sync(run)


async def _person_error(request: Request, viewer: Viewer, ref: str, exc: Exception) -> Response:
    if isinstance(exc, InvalidInput):
        message = error_text(exc.errors[0], viewer.locale)
    else:
        message = viewer.t("privacy.not_found")
    return await _render_page(
        request, viewer, 422 if isinstance(exc, InvalidInput) else 404, {"person": message}, {"person": ref}
    )


@page("privacy:manage")
async def export_person(request: Request, viewer: Viewer) -> Response:
    ref = (await _form(request)).get("person", "").strip()
    rt = runtime_of(request)
    try:
        super_id = await _resolve(request, viewer, ref)
        data = await anyio.to_thread.run_sync(requests.export, rt, viewer.workspace.id, super_id, _actor(viewer))
    except (InvalidInput, NotFound) as exc:
        return await _person_error(request, viewer, ref, exc)
    return Response(
        orjson.dumps(data, option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={
            "content-disposition": f'attachment; filename="person-{super_id}.json"',
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
        },
    )


@page("privacy:manage")
async def erase_confirm_page(request: Request, viewer: Viewer) -> Response:
    """Step one: what an erasure would remove, and a field to type the super ID into."""
    ref = (await _form(request)).get("person", "").strip()
    return await _confirmation(request, viewer, ref)


async def _confirmation(request: Request, viewer: Viewer, ref: str, status: int = 200, error: str = "") -> Response:
    rt = runtime_of(request)
    try:
        super_id = await _resolve(request, viewer, ref)
        preview = await anyio.to_thread.run_sync(requests.preview, rt, viewer.workspace.id, super_id)
    except (InvalidInput, NotFound) as exc:
        return await _person_error(request, viewer, ref, exc)
    return render(request, "privacy_erase.html", viewer, status, preview=preview, error=error)


@page("privacy:manage")
async def erase_person(request: Request, viewer: Viewer) -> Response:
    """Step two: erase, once the typed super ID matches."""
    form = await _form(request)
    super_id, typed = form.get("super_id", "").strip(), form.get("confirm", "").strip()
    if not super_id.isdigit() or len(super_id) > 18:
        return render(request, "error.html", viewer, 404, message=viewer.t("privacy.not_found"))
    if typed != super_id:
        return await _confirmation(request, viewer, super_id, 422, viewer.t("privacy.erase.mismatch"))
    rt = runtime_of(request)
    try:
        entry = await anyio.to_thread.run_sync(requests.erase, rt, viewer.workspace.id, int(super_id), _actor(viewer))
    except (InvalidInput, NotFound):
        return render(request, "error.html", viewer, 404, message=viewer.t("privacy.not_found"))
    return RedirectResponse(f"/console/privacy?done=erased&id={entry['super_id']}#audit", status_code=303)


# --- the consent panel of a profile ------------------------------------------------------------------------


def _safe_next(value: str, super_id: int) -> str:
    """Back to where the form was (a console page of this site), by default the profile."""
    if value.startswith("/console/") and not value.startswith("//") and "\\" not in value and "\n" not in value:
        return value
    return f"/console/profiles/{super_id}"


@page("consent:write")
async def record_consent(request: Request, viewer: Viewer) -> Response:
    raw_id = request.path_params["super_id"]
    form = await _form(request)
    status = form.get("status", "")
    purpose, evidence = form.get("purpose", ""), form.get("evidence", "").strip()
    super_id = int(raw_id) if raw_id.isdigit() and len(raw_id) <= 18 else 0

    def run() -> None:
        with runtime_of(request).db.session() as db:
            consent.record(
                db,
                viewer.workspace.id,
                super_id,
                purpose,
                status,
                source="console",
                evidence=evidence,
                actor=_actor(viewer),
            )

    target = _safe_next(form.get("next", ""), super_id)
    anchor = "#consent"
    target, _, fragment = target.partition("#")
    anchor = f"#{fragment}" if fragment else anchor
    joiner = "&" if "?" in target else "?"
    try:
        await anyio.to_thread.run_sync(run)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("privacy.not_found"))
    except InvalidInput as exc:  # the form offers only valid choices: say which field, in the page's words
        field = exc.errors[0].field if exc.errors[0].field in CONSENT_FIELDS else "purpose"
        return RedirectResponse(f"{target}{joiner}consent_error={field}{anchor}", status_code=303)
    return RedirectResponse(f"{target}{joiner}consent_done=1{anchor}", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/privacy", privacy_page, methods=["GET"]),
        Route("/privacy/purposes", add_purpose, methods=["POST"]),
        Route("/privacy/purposes/{code}", update_purpose, methods=["POST"]),
        Route("/privacy/export", export_person, methods=["POST"]),
        Route("/privacy/erase", erase_confirm_page, methods=["POST"]),
        Route("/privacy/erase/confirm", erase_person, methods=["POST"]),
        Route("/profiles/{super_id}/consent", record_consent, methods=["POST"]),
    ]
