"""Workspace settings: domains, visitor-IP privacy, webhooks, members and invitations, API keys.

One page with a section per topic; every change is its own small POST, checked for CSRF and for the role's
permission by `page(action)`. Secrets (webhook signing secret, API key, invitation link) are rendered into
the POST's response exactly once and never stored in clear, so they are never redirected to or listed.
The invitation acceptance page (`/invite/{token}`) is the one route here that needs no session.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from siyu.errors import Conflict, FieldError, InvalidInput, NotFound
from siyu.errors_i18n import error_text
from siyu.i18n import register, t
from siyu.security import verify_password
from siyu.web import sessions
from siyu.web.auth_views import sign_in_limiter
from siyu.web.context import Viewer, locale_of, page, render, runtime_of, set_session_cookie
from siyu.webhooks import service as webhooks
from siyu.webhooks.models import WEBHOOK_EVENTS
from siyu.workspaces import invitations
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import IP_MODES, ROLES, ApiKey, Membership, User

register(
    {
        "settings.title": ("设置", "Settings"),
        "settings.not_allowed": ("你的角色无权查看或修改此部分。", "Your role cannot view or change this section."),
        "settings.read_only": ("你的角色只能查看此部分。", "Your role can only view this section."),
        "settings.save": ("保存", "Save"),
        "settings.add": ("添加", "Add"),
        "settings.once": (
            "请立即复制并妥善保存，离开此页面后将无法再次查看。",
            "Copy it now and keep it safe: it will not be shown again.",
        ),
        "settings.copy": ("复制", "Copy"),
        "settings.created_at": ("创建时间", "Created"),
        "settings.actions": ("操作", "Actions"),
        "settings.none": ("暂无", "None yet"),
        # domains
        "settings.domains": ("短链域名", "Domains"),
        "settings.domains.help": (
            "短链使用的域名。添加前请先把域名解析（CNAME 或 A 记录）到本服务器。新建短链默认使用「默认」域名。",
            "Host names that serve short links. Point the name (CNAME or A record) at this server first. "
            "New links use the default domain.",
        ),
        "settings.domains.hostname": ("域名", "Host name"),
        "settings.domains.placeholder": ("例如 s.example.com", "e.g. s.example.com"),
        "settings.domains.make_default": ("设为默认", "Make default"),
        "settings.domains.default": ("默认", "Default"),
        "settings.domains.invalid": (
            "域名格式不正确：只填写主机名，不要包含 http:// 或路径，例如 s.example.com。",
            "Not a valid host name: give the host name only, without http:// or a path (e.g. s.example.com).",
        ),
        "settings.domains.taken": ("该域名已被使用。", "This domain is already in use."),
        # privacy
        "settings.privacy": ("隐私：访客 IP 保存方式", "Privacy: visitor IP storage"),
        "settings.privacy.help": (
            "地区统计在保存前完成，不受此设置影响。修改后几秒内对新点击生效，已有数据不变。",
            "Regions are resolved before storing, so they work in every mode. A change applies to new clicks "
            "within seconds; existing data is not changed.",
        ),
        "settings.privacy.full": ("完整保存", "Full"),
        "settings.privacy.full.help": (
            "保存完整的访客 IP。便于排查问题和识别刷量，但属于个人信息，需在隐私政策中说明。",
            "Keep the whole visitor IP. Handy for troubleshooting and spotting fake traffic, but it is "
            "personal data: say so in your privacy policy.",
        ),
        "settings.privacy.truncated": ("截断（推荐）", "Truncated (recommended)"),
        "settings.privacy.truncated.help": (
            "只保存网段：IPv4 抹去最后一段（1.2.3.4 → 1.2.3.0），IPv6 只保留前 48 位。无法定位到个人。",
            "Keep only the network: IPv4 loses its last part (1.2.3.4 → 1.2.3.0), IPv6 keeps its first 48 bits. "
            "It no longer points at one person.",
        ),
        "settings.privacy.hashed": ("加密散列", "Hashed"),
        "settings.privacy.hashed.help": (
            "保存用本工作区密钥加密散列后的值：能区分不同访客，但无法还原出 IP。",
            "Keep a keyed hash unique to this workspace: visitors can still be told apart, but the IP cannot be "
            "recovered.",
        ),
        "settings.privacy.none": ("不保存", "Not stored"),
        "settings.privacy.none.help": (
            "完全不保存 IP。点击、地区和平台统计照常。",
            "Store no IP at all. Clicks, regions and platforms are still counted.",
        ),
        "settings.privacy.invalid": ("请选择一种保存方式。", "Choose one of the modes."),
        # webhooks
        "settings.webhooks": ("Webhook", "Webhooks"),
        "settings.webhooks.help": (
            "事件发生时向你的服务器 POST 一条 JSON，并用签名密钥签名，失败会自动重试。",
            "We POST a signed JSON message to your server when an event happens, retrying on failure.",
        ),
        "settings.webhooks.url": ("接收地址（URL）", "Endpoint URL"),
        "settings.webhooks.events": ("事件", "Events"),
        "settings.webhooks.event.link.created": ("短链创建", "Link created"),
        "settings.webhooks.event.link.updated": ("短链修改", "Link updated"),
        "settings.webhooks.event.link.clicked": ("短链被点击", "Link clicked"),
        "settings.webhooks.status": ("状态", "Status"),
        "settings.webhooks.active": ("启用中", "Active"),
        "settings.webhooks.inactive": ("已停用", "Deactivated"),
        "settings.webhooks.deactivate": ("停用", "Deactivate"),
        "settings.webhooks.confirm_deactivate": (
            "确定停用这个 Webhook？停用后不再发送任何事件。",
            "Deactivate this webhook? No more events will be sent to it.",
        ),
        "settings.webhooks.bad_url": (
            "请输入以 http:// 或 https:// 开头的完整网址。",
            "Enter a full address starting with http:// or https://.",
        ),
        "settings.webhooks.bad_events": ("请至少选择一个事件。", "Choose at least one event."),
        "settings.webhooks.secret": ("签名密钥", "Signing secret"),
        "settings.webhooks.created": ("Webhook 已创建，签名密钥如下：", "Webhook created. Its signing secret:"),
        # members
        "settings.members": ("成员与角色", "Members and roles"),
        "settings.members.help": (
            "所有者：全部权限；管理员：短链与设置；运营：短链；分析师：只读。",
            "Owner: everything. Admin: links and settings. Operator: links. Analyst: read-only.",
        ),
        "settings.members.name": ("名字", "Name"),
        "settings.members.email": ("邮箱", "E-mail"),
        "settings.members.role": ("角色", "Role"),
        "settings.members.you": ("（你）", "(you)"),
        "settings.members.change": ("修改角色", "Change role"),
        "settings.members.remove": ("移除", "Remove"),
        "settings.members.confirm_remove": (
            "确定把该成员移出工作区？TA 将立即失去访问权限。",
            "Remove this member from the workspace? They lose access at once.",
        ),
        "settings.members.last_owner": (
            "工作区至少需要一位所有者：请先把另一位成员设为所有者。",
            "A workspace needs at least one owner: make someone else an owner first.",
        ),
        "settings.members.not_self": (
            "不能移除自己：请让另一位所有者操作。",
            "You cannot remove yourself; ask another owner.",
        ),
        "settings.members.bad_role": ("请选择有效的角色。", "Choose a valid role."),
        "settings.invite": ("邀请成员", "Invite a member"),
        "settings.invite.email": ("对方邮箱", "Their e-mail"),
        "settings.invite.submit": ("生成邀请链接", "Create invitation link"),
        "settings.invite.help": (
            "生成一次性邀请链接，7 天内有效。请通过微信、邮件等方式发给对方。",
            "Creates a one-time link, valid for 7 days. Send it to them by WeChat, e-mail or similar.",
        ),
        "settings.invite.created": (
            "邀请链接已生成（{email}，{role}）：",
            "Invitation link created ({email}, {role}):",
        ),
        "settings.invite.bad_email": ("邮箱格式不正确。", "Not a valid e-mail address."),
        "settings.invite.already_member": ("该邮箱已是本工作区成员。", "This e-mail is already a member."),
        "settings.invite.pending": ("待接受的邀请", "Pending invitations"),
        "settings.invite.expires": ("过期时间", "Expires"),
        "settings.invite.revoke": ("撤销", "Revoke"),
        "settings.invite.confirm_revoke": (
            "确定撤销这个邀请？链接将立即失效。",
            "Revoke this invitation? Its link stops working at once.",
        ),
        # API keys
        "settings.keys": ("API 密钥", "API keys"),
        "settings.keys.help": (
            "供程序调用 REST API（/api/v1，请求头 Authorization: Bearer 密钥）。只保存密钥的散列值。",
            "For programs calling the REST API (/api/v1, header Authorization: Bearer <key>). Only a hash is stored.",
        ),
        "settings.keys.name": ("名称", "Name"),
        "settings.keys.name_placeholder": ("例如：CRM 同步", "e.g. CRM sync"),
        "settings.keys.scopes": ("权限范围", "Scopes"),
        "settings.keys.scope.links:read": ("读取短链", "Read links"),
        "settings.keys.scope.links:write": ("创建/修改短链", "Create and edit links"),
        "settings.keys.scope.analytics:read": ("读取数据统计", "Read analytics"),
        "settings.keys.scope.webhooks:write": ("管理 Webhook", "Manage webhooks"),
        "settings.keys.scope.sources:write": ("管理事件来源", "Manage event sources"),
        "settings.keys.create": ("创建密钥", "Create key"),
        "settings.keys.prefix": ("前缀", "Prefix"),
        "settings.keys.last_used": ("最近使用", "Last used"),
        "settings.keys.never": ("从未", "Never"),
        "settings.keys.revoked": ("已撤销", "Revoked"),
        "settings.keys.revoke": ("撤销", "Revoke"),
        "settings.keys.confirm_revoke": (
            "确定撤销这个 API 密钥？使用它的程序将立即无法访问。",
            "Revoke this API key? Programs using it lose access at once.",
        ),
        "settings.keys.bad_scopes": ("请至少选择一个权限范围。", "Choose at least one scope."),
        "settings.keys.created": ("API 密钥已创建：", "API key created:"),
        "settings.keys.owner_only": ("只有所有者可以管理 API 密钥。", "Only owners can manage API keys."),
        "settings.members.owner_only": ("只有所有者可以管理成员。", "Only owners can manage members."),
        # notices after a redirect
        "settings.done.domain_added": ("域名已添加。", "Domain added."),
        "settings.done.domain_default": ("默认域名已更新。", "Default domain updated."),
        "settings.done.privacy": ("隐私设置已保存。", "Privacy setting saved."),
        "settings.done.webhook_off": ("Webhook 已停用。", "Webhook deactivated."),
        "settings.done.role": ("角色已修改。", "Role changed."),
        "settings.done.removed": ("成员已移除。", "Member removed."),
        "settings.done.invite_revoked": ("邀请已撤销。", "Invitation revoked."),
        "settings.done.key_revoked": ("API 密钥已撤销。", "API key revoked."),
        # invitation acceptance
        "settings.accept.title": ("接受邀请", "Accept invitation"),
        "settings.accept.intro": (
            "你被邀请以「{role}」身份加入工作区「{workspace}」。",
            "You are invited to join the workspace “{workspace}” as {role}.",
        ),
        "settings.accept.email": ("邮箱", "E-mail"),
        "settings.accept.name": ("你的名字", "Your name"),
        "settings.accept.password": ("设置密码（至少 8 位）", "Choose a password (at least 8 characters)"),
        "settings.accept.confirm": ("确认密码", "Confirm password"),
        "settings.accept.join": ("加入工作区", "Join the workspace"),
        "settings.accept.existing": (
            "该邮箱已有账户：输入密码登录并加入。",
            "This e-mail already has an account: enter its password to sign in and join.",
        ),
        "settings.accept.current_password": ("密码", "Password"),
        "settings.accept.signin_join": ("登录并加入", "Sign in and join"),
        "settings.accept.invalid": (
            "邀请链接无效、已使用或已过期。请联系工作区所有者重新邀请。",
            "This invitation link is invalid, used or expired. Ask the workspace owner for a new one.",
        ),
        "settings.accept.bad_name": ("请填写名字（最多 100 个字符）。", "Enter your name (at most 100 characters)."),
        "settings.accept.short_password": ("密码至少 8 位。", "The password needs at least 8 characters."),
        "settings.accept.mismatch": ("两次输入的密码不一致。", "The passwords do not match."),
        "settings.accept.wrong_password": ("密码不正确。", "Wrong password."),
        "settings.accept.expired_form": ("页面已过期，请重新打开邀请链接。", "This page expired; open the link again."),
    }
)

DONE = frozenset(
    {"domain_added", "domain_default", "privacy", "webhook_off", "role", "removed", "invite_revoked", "key_revoked"}
)
INVITE_COOKIE = "sy_invite"
MAX_ID = 2**62


@dataclass
class Outcome:
    """What one POST leaves for the re-rendered page: inline errors, entered values, one-time secrets."""

    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    once: dict[str, str] = field(default_factory=dict)


# --- the page ------------------------------------------------------------------------------------------


def _members(db: Session, workspace_id: int) -> list[dict[str, Any]]:
    rows = db.execute(
        select(User.id, User.email, User.display_name, Membership.role, Membership.created_at)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(Membership.id)
    ).all()
    return [{"id": r[0], "email": r[1], "name": r[2], "role": r[3], "joined": r[4]} for r in rows]


def _load(request: Request, viewer: Viewer) -> dict[str, Any]:
    ws = viewer.workspace.id
    with runtime_of(request).db.session() as db:
        data: dict[str, Any] = {
            "ip_mode": workspaces.get_workspace(db, ws).ip_mode,
            "domains": workspaces.list_domains(db, ws),
            "members": _members(db, ws),
            "webhooks": webhooks.list_webhooks(db, ws) if viewer.can("settings:write") else None,
            "invitations": invitations.pending_invitations(db, ws) if viewer.can("members:manage") else None,
            "keys": None,
        }
        if viewer.can("keys:manage"):
            active_first = (ApiKey.revoked_at.is_not(None), ApiKey.id)
            data["keys"] = list(db.scalars(select(ApiKey).where(ApiKey.workspace_id == ws).order_by(*active_first)))
    return data


async def _render_page(request: Request, viewer: Viewer, status: int = 200, outcome: Outcome | None = None) -> Response:
    data = await anyio.to_thread.run_sync(_load, request, viewer)
    outcome = outcome or Outcome()
    done = request.query_params.get("done", "") if request.method == "GET" else ""
    return render(
        request,
        "settings.html",
        viewer,
        status,
        errors=outcome.errors,
        values=outcome.values,
        once=outcome.once,
        notice=viewer.t(f"settings.done.{done}") if done in DONE else "",
        ip_modes=IP_MODES,
        roles=ROLES,
        scopes=workspaces.SCOPES,
        events=WEBHOOK_EVENTS,
        **data,
    )


@page()
async def settings_page(request: Request, viewer: Viewer) -> Response:
    return await _render_page(request, viewer)


def _done(key: str, anchor: str) -> Response:
    return RedirectResponse(f"/console/settings?done={key}#{anchor}", status_code=303)


def _path_id(request: Request) -> int:
    """The URL's object id; 0 (which matches nothing, so the change is a 404) when out of the database's range."""
    value = int(request.path_params["id"])
    return value if 0 < value < MAX_ID else 0


async def _apply(request: Request, viewer: Viewer, work: Callable[[Session], None], done: str, anchor: str) -> Response:
    """Run one change in its own transaction; a NotFound (wrong id, other workspace) is a 404 page."""

    def run() -> None:
        with runtime_of(request).db.session() as db:
            work(db)

    try:
        await anyio.to_thread.run_sync(run)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("error.not_found"))
    return _done(done, anchor)


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {k: form.getlist(k) if k in ("events", "scopes") else str(form.get(k, "")) for k in form}


# The page's own advice for the usual mistakes; any other domain error is shown as its (translated) reason.
GENERIC_HOSTNAME = frozenset({"hostname_not_text", "hostname_not_bare", "hostname_invalid"})
GENERIC_WEBHOOK = frozenset({"url_required", "url_scheme", "url_no_scheme", "events_choose"})


def _specific(viewer: Viewer, error: FieldError, advice_key: str, covered: frozenset[str]) -> str:
    return viewer.t(advice_key) if error.code is None or error.code in covered else error_text(error, viewer.locale)


# --- domains -------------------------------------------------------------------------------------------


@page("settings:write")
async def add_domain(request: Request, viewer: Viewer) -> Response:
    form = await _form(request)
    hostname = form.get("hostname", "")[:300]
    make_default = form.get("is_default") == "1"

    def run() -> None:
        with runtime_of(request).db.session() as db:
            workspaces.add_domain(db, viewer.workspace.id, hostname, is_default=make_default)

    try:
        await anyio.to_thread.run_sync(run)
    except InvalidInput as exc:
        error = _specific(viewer, exc.errors[0], "settings.domains.invalid", GENERIC_HOSTNAME)
    except Conflict:
        error = viewer.t("settings.domains.taken")
    else:
        return _done("domain_added", "domains")
    return await _render_page(request, viewer, 422, Outcome({"hostname": error}, {"hostname": hostname}))


@page("settings:write")
async def default_domain(request: Request, viewer: Viewer) -> Response:
    domain_id = _path_id(request)

    def work(db: Session) -> None:
        domains = workspaces.list_domains(db, viewer.workspace.id)
        if domain_id not in {d.id for d in domains}:
            raise NotFound("domain not found")
        for d in domains:  # exactly one default: new links without a domain go there
            d.is_default = d.id == domain_id

    return await _apply(request, viewer, work, "domain_default", "domains")


# --- privacy -------------------------------------------------------------------------------------------


@page("settings:write")
async def privacy(request: Request, viewer: Viewer) -> Response:
    mode = (await _form(request)).get("ip_mode", "")
    if mode not in IP_MODES:
        outcome = Outcome({"ip_mode": viewer.t("settings.privacy.invalid")})
        return await _render_page(request, viewer, 422, outcome)

    def work(db: Session) -> None:
        workspaces.set_ip_mode(db, workspaces.get_workspace(db, viewer.workspace.id), mode)

    return await _apply(request, viewer, work, "privacy", "privacy")


# --- webhooks ------------------------------------------------------------------------------------------


@page("settings:write")
async def add_webhook(request: Request, viewer: Viewer) -> Response:
    form = await _form(request)
    url = form.get("url", "")[:5000]
    events = [e for e in form.get("events", []) if isinstance(e, str)]

    def run() -> tuple[str, str]:
        with runtime_of(request).db.session() as db:
            hook = webhooks.create_webhook(db, viewer.workspace.id, url, events)
            return hook.url, hook.secret

    try:
        hook_url, secret = await anyio.to_thread.run_sync(run)
    except InvalidInput as exc:
        errors = {}
        for e in exc.errors:
            key = "events" if e.field == "events" else "url"
            errors[key] = _specific(viewer, e, f"settings.webhooks.bad_{key}", GENERIC_WEBHOOK)
        outcome = Outcome(errors, {"url": url, "events": events})
        return await _render_page(request, viewer, 422, outcome)
    once = {"webhook_secret": secret, "webhook_url": hook_url}
    return await _render_page(request, viewer, outcome=Outcome(once=once))


@page("settings:write")
async def deactivate_webhook(request: Request, viewer: Viewer) -> Response:
    hook_id = _path_id(request)
    return await _apply(
        request, viewer, lambda db: webhooks.deactivate(db, viewer.workspace.id, hook_id), "webhook_off", "webhooks"
    )


# --- members -------------------------------------------------------------------------------------------


class LastOwner(Exception):
    """The change would leave the workspace without an owner."""


def _membership(db: Session, workspace_id: int, user_id: int) -> Membership:
    member = db.scalar(select(Membership).where(Membership.workspace_id == workspace_id, Membership.user_id == user_id))
    if member is None:
        raise NotFound("member not found")
    return member


def _other_owners(db: Session, workspace_id: int, user_id: int) -> int:
    """Owners besides `user_id`, read with row locks (PostgreSQL) so two owners demoting each other at the
    same moment cannot both succeed; SQLite serialises writers anyway."""
    owners = db.scalars(
        select(Membership.user_id)
        .where(Membership.workspace_id == workspace_id, Membership.role == "owner")
        .with_for_update()
    ).all()
    return sum(1 for uid in owners if uid != user_id)


@page("members:manage")
async def change_role(request: Request, viewer: Viewer) -> Response:
    user_id = _path_id(request)
    role = (await _form(request)).get("role", "")
    if role not in ROLES:
        return await _render_page(request, viewer, 422, Outcome({"members": viewer.t("settings.members.bad_role")}))

    def work(db: Session) -> None:
        member = _membership(db, viewer.workspace.id, user_id)
        if member.role == "owner" and role != "owner" and _other_owners(db, viewer.workspace.id, user_id) == 0:
            raise LastOwner
        member.role = role

    try:
        return await _apply(request, viewer, work, "role", "members")
    except LastOwner:
        return await _render_page(request, viewer, 422, Outcome({"members": viewer.t("settings.members.last_owner")}))


@page("members:manage")
async def remove_member(request: Request, viewer: Viewer) -> Response:
    user_id = _path_id(request)
    if user_id == viewer.user.id:
        return await _render_page(request, viewer, 422, Outcome({"members": viewer.t("settings.members.not_self")}))

    def work(db: Session) -> None:
        member = _membership(db, viewer.workspace.id, user_id)
        if member.role == "owner" and _other_owners(db, viewer.workspace.id, user_id) == 0:
            raise LastOwner
        db.delete(member)

    try:
        return await _apply(request, viewer, work, "removed", "members")
    except LastOwner:
        return await _render_page(request, viewer, 422, Outcome({"members": viewer.t("settings.members.last_owner")}))


@page("members:manage")
async def invite(request: Request, viewer: Viewer) -> Response:
    form = await _form(request)
    email, role = form.get("email", "")[:300], form.get("role", "")
    rt = runtime_of(request)

    def run() -> str:
        with rt.db.session() as db:
            return invitations.create_invitation(db, viewer.workspace.id, email, role, viewer.user.id).token

    errors: dict[str, str] = {}
    try:
        token = await anyio.to_thread.run_sync(run)
    except InvalidInput as exc:
        for e in exc.errors:
            key = "settings.invite.bad_email" if e.field == "email" else "settings.members.bad_role"
            errors[e.field] = viewer.t(key)
    except Conflict:
        errors["email"] = viewer.t("settings.invite.already_member")
    if errors:
        outcome = Outcome({f"invite_{k}": v for k, v in errors.items()}, {"invite_email": email, "invite_role": role})
        return await _render_page(request, viewer, 422, outcome)
    once = {
        "invite_link": f"{rt.settings.base_url}/console/invite/{token}",
        "invite_email": email.strip().lower(),
        "invite_role": role,
    }
    return await _render_page(request, viewer, outcome=Outcome(once=once))


@page("members:manage")
async def revoke_invitation(request: Request, viewer: Viewer) -> Response:
    inv_id = _path_id(request)
    return await _apply(
        request,
        viewer,
        lambda db: invitations.revoke_invitation(db, viewer.workspace.id, inv_id),
        "invite_revoked",
        "members",
    )


# --- API keys ------------------------------------------------------------------------------------------


@page("keys:manage")
async def create_key(request: Request, viewer: Viewer) -> Response:
    form = await _form(request)
    name = form.get("name", "")[:200]
    scopes = [s for s in form.get("scopes", []) if isinstance(s, str)]
    if not scopes or any(s not in workspaces.SCOPES for s in scopes):
        outcome = Outcome({"scopes": viewer.t("settings.keys.bad_scopes")}, {"key_name": name, "scopes": scopes})
        return await _render_page(request, viewer, 422, outcome)

    def run() -> tuple[str, str]:
        with runtime_of(request).db.session() as db:
            issued = workspaces.create_api_key(db, viewer.workspace.id, name, scopes, created_by=viewer.user.id)
            return issued.key.name, issued.secret

    key_name, secret = await anyio.to_thread.run_sync(run)
    return await _render_page(request, viewer, outcome=Outcome(once={"api_key": secret, "api_key_name": key_name}))


@page("keys:manage")
async def revoke_key(request: Request, viewer: Viewer) -> Response:
    key_id = _path_id(request)
    return await _apply(
        request, viewer, lambda db: workspaces.revoke_api_key(db, viewer.workspace.id, key_id), "key_revoked", "keys"
    )


# --- accepting an invitation (no session needed) -------------------------------------------------------


@dataclass
class InviteState:
    email: str
    role: str
    workspace: str
    has_account: bool


def _invite_state(request: Request, token: str) -> InviteState | None:
    with runtime_of(request).db.session() as db:
        inv = invitations.find_open_invitation(db, token)
        if inv is None:
            return None
        has_account = db.scalar(select(func.count()).select_from(User).where(User.email == inv.email)) > 0
        return InviteState(inv.email, inv.role, workspaces.get_workspace(db, inv.workspace_id).name, has_account)


def _join(request: Request, token: str, password: str, name: str | None) -> tuple[User, int] | None:
    """Accept in one transaction: with a `name`, as a new account; without, as the existing account, whose
    password must match (None when it does not)."""
    with runtime_of(request).db.session() as db:
        inv = invitations.find_open_invitation(db, token)
        if inv is None:
            raise NotFound("invitation not found")
        user = db.scalar(select(User).where(User.email == inv.email))
        if name is not None:
            if user is not None:
                raise Conflict("email", "an account exists for this e-mail")
            user = workspaces.create_user(db, inv.email, password, name)
        elif user is None:
            raise NotFound("account not found")
        elif not verify_password(user.password_hash, password):
            return None
        invitations.accept_invitation(db, inv, user)
        return user, inv.workspace_id


def _invalid_invite(request: Request, locale: str) -> Response:
    return render(request, "settings_invite.html", status=404, state=None, error=t("settings.accept.invalid", locale))


async def accept_invite(request: Request) -> Response:
    token = request.path_params["token"]
    locale = locale_of(request)
    state = await anyio.to_thread.run_sync(_invite_state, request, token)
    if state is None:
        return _invalid_invite(request, locale)
    form_token = request.cookies.get(INVITE_COOKIE) or secrets.token_urlsafe(18)

    def show(status: int = 200, errors: dict[str, str] | None = None, name: str = "") -> Response:
        response = render(
            request,
            "settings_invite.html",
            status=status,
            state=state,
            errors=errors or {},
            name=name,
            form_token=form_token,
            error="",
        )
        response.set_cookie(
            INVITE_COOKIE, form_token, max_age=3600, httponly=True, samesite="strict", path="/console/invite"
        )
        return response

    if request.method == "GET":
        return show()
    form = await request.form()
    sent = str(form.get("form_token", ""))
    # Double-submit token: a cross-site page cannot read or send our strict cookie, so it cannot make a visitor's
    # browser join a workspace (or sign in to an account) chosen by someone else.
    if not request.cookies.get(INVITE_COOKIE) or not secrets.compare_digest(sent, request.cookies[INVITE_COOKIE]):
        return show(403, {"form": t("settings.accept.expired_form", locale)})
    password = str(form.get("password", ""))[:1000]
    if state.has_account:
        return await _accept_existing(request, token, state, password, show, locale)
    name = str(form.get("name", "")).strip()
    errors: dict[str, str] = {}
    if not name or len(name) > 100:
        errors["name"] = t("settings.accept.bad_name", locale)
    if len(password) < 8:
        errors["password"] = t("settings.accept.short_password", locale)
    elif password != str(form.get("confirm", ""))[:1000]:
        errors["confirm"] = t("settings.accept.mismatch", locale)
    if errors:
        return show(422, errors, name)
    try:
        joined = await anyio.to_thread.run_sync(_join, request, token, password, name)
    except NotFound:
        return _invalid_invite(request, locale)
    except (Conflict, InvalidInput):  # an account appeared meanwhile: offer to sign in instead
        state.has_account = True
        return show(409, {"form": t("settings.accept.existing", locale)})
    return _signed_in(request, joined)


async def _accept_existing(
    request: Request, token: str, state: InviteState, password: str, show: Callable[..., Response], locale: str
) -> Response:
    ip = request.client.host if request.client else ""
    keys = (("ip", ip), ("email", state.email))
    left = max(sign_in_limiter.locked_for(k) for k in keys)
    if left:
        return show(429, {"password": t("login.throttled", locale, minutes=left // 60 + 1)})
    try:
        joined = await anyio.to_thread.run_sync(_join, request, token, password, None)
    except NotFound:
        return _invalid_invite(request, locale)
    if joined is None:
        for k in keys:
            sign_in_limiter.fail(k)
        return show(401, {"password": t("settings.accept.wrong_password", locale)})
    for k in keys:
        sign_in_limiter.reset(k)
    return _signed_in(request, joined)


def _signed_in(request: Request, joined: tuple[User, int] | None) -> Response:
    assert joined is not None
    user, workspace_id = joined
    response = RedirectResponse("/console/", status_code=303)
    set_session_cookie(response, request, sessions.new_session(user.id, workspace_id, user.password_hash))
    response.delete_cookie(INVITE_COOKIE, path="/console/invite")
    return response


def routes() -> list[BaseRoute]:
    return [
        Route("/settings", settings_page, methods=["GET"]),
        Route("/settings/domains", add_domain, methods=["POST"]),
        Route("/settings/domains/{id:int}/default", default_domain, methods=["POST"]),
        Route("/settings/privacy", privacy, methods=["POST"]),
        Route("/settings/webhooks", add_webhook, methods=["POST"]),
        Route("/settings/webhooks/{id:int}/deactivate", deactivate_webhook, methods=["POST"]),
        Route("/settings/members/{id:int}/role", change_role, methods=["POST"]),
        Route("/settings/members/{id:int}/remove", remove_member, methods=["POST"]),
        Route("/settings/invitations", invite, methods=["POST"]),
        Route("/settings/invitations/{id:int}/revoke", revoke_invitation, methods=["POST"]),
        Route("/settings/keys", create_key, methods=["POST"]),
        Route("/settings/keys/{id:int}/revoke", revoke_key, methods=["POST"]),
        Route("/invite/{token}", accept_invite, methods=["GET", "POST"]),
    ]
