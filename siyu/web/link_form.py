"""Create and edit a link with every option, plus a live preview of what sample visitors will see.

The form posts plain fields; rule and variant rows are numbered (`rules-3-url`, `rules-3-key-0`,
`variants-1-weight`) so JS can add and remove rows without renumbering. `read_form` turns the post
into the service's input and, separately, into what the form shows again: a rejected form comes
back exactly as typed, with each domain FieldError next to its input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import anyio.to_thread
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from siyu.db import utcnow
from siyu.errors import Conflict, FieldError, InvalidInput, NotFound
from siyu.errors_i18n import error_text, field_label
from siyu.i18n import register
from siyu.links import decide as d
from siyu.links import service
from siyu.links.models import ShortLink
from siyu.links.rules import ACCESS_GROUPS, RULE_KEYS, platform_codes
from siyu.links.urls import UTM_KEYS, build_destination
from siyu.redirect import pages
from siyu.useragent import PLATFORMS, detect_platform, device_class, os_family
from siyu.web.context import Viewer, page, render, runtime_of
from siyu.web.formatting import DEFAULT_TZ, zone
from siyu.workspaces.service import list_domains

register(
    {
        "link_form.title_new": ("新建短链", "New link"),
        "link_form.title_edit": ("编辑短链", "Edit link"),
        "link_form.back": ("返回短链列表", "Back to links"),
        "link_form.errors_title": ("请修正下面标红的内容", "Please fix the fields marked below"),
        "link_form.section_basic": ("基本信息", "Basics"),
        "link_form.destination": ("目标网址", "Destination URL"),
        "link_form.destination_hint": ("以 http:// 或 https:// 开头", "Starts with http:// or https://"),
        "link_form.domain": ("域名", "Domain"),
        "link_form.slug": ("自定义后缀（可选）", "Custom slug (optional)"),
        "link_form.slug_hint": (
            "留空则随机生成；只能用字母、数字、_ 和 -，创建后不能修改",
            "Leave empty for a random one; letters, digits, _ and - only; cannot be changed later",
        ),
        "link_form.short_url": ("短链", "Short link"),
        "link_form.title": ("标题", "Title"),
        "link_form.notes": ("备注", "Notes"),
        "link_form.tags": ("标签", "Tags"),
        "link_form.tags_hint": ("多个标签用逗号分隔", "Separate tags with commas"),
        "link_form.section_redirect": ("跳转方式", "Redirect"),
        "link_form.redirect_status": ("跳转状态码", "Redirect status"),
        "link_form.status_302": ("302 临时跳转（推荐）", "302 Found (recommended)"),
        "link_form.status_301": ("301 永久跳转", "301 Moved permanently"),
        "link_form.status_307": ("307 临时跳转（保留请求方法）", "307 Temporary (keeps the method)"),
        "link_form.status_308": ("308 永久跳转（保留请求方法）", "308 Permanent (keeps the method)"),
        "link_form.redirect_hint": (
            "301 / 308 是永久跳转：浏览器会记住目标地址，同一访客再次点击不再经过短链，重复点击不会被统计，"
            "之后修改目标网址对他们也不生效。",
            "301 / 308 are permanent: browsers remember the target, so repeat clicks skip the short link and are "
            "not counted, and later changes to the destination do not reach those visitors.",
        ),
        "link_form.forward_query": (
            "把访问短链时带的参数（?后面的部分）转发给目标网址",
            "Forward the visitor's query string (?…) to the destination",
        ),
        "link_form.pass_visitor_id": (
            "把访客 ID 带给目标网址（sy_vid=…），落地页或小程序上报后即可与会员身份打通（One ID）",
            "Pass the visitor id on to the destination (sy_vid=…), so the landing page or mini program can report "
            "it and One ID joins the click to the member",
        ),
        "link_form.section_utm": ("UTM 参数", "UTM parameters"),
        "link_form.utm_source": ("来源 utm_source", "Source (utm_source)"),
        "link_form.utm_medium": ("媒介 utm_medium", "Medium (utm_medium)"),
        "link_form.utm_campaign": ("活动 utm_campaign", "Campaign (utm_campaign)"),
        "link_form.utm_term": ("关键词 utm_term", "Term (utm_term)"),
        "link_form.utm_content": ("内容 utm_content", "Content (utm_content)"),
        "link_form.utm_final": ("最终网址", "Final URL"),
        "link_form.section_limits": ("有效期与点击上限", "Expiry and click limit"),
        "link_form.expires_at": ("过期时间（北京时间）", "Expires at (China time, UTC+8)"),
        "link_form.max_clicks": ("最多点击次数", "Maximum clicks"),
        "link_form.fallback_url": ("失效后跳转到（可选）", "After expiry, redirect to (optional)"),
        "link_form.limits_hint": (
            "过期或达到点击上限后，访客会被带到备用网址；不填则显示「链接已失效」页面。",
            "After the date or the click limit, visitors go to the fallback URL, or see an “expired” page.",
        ),
        "link_form.section_password": ("访问密码", "Password"),
        "link_form.password_none": ("不设密码", "No password"),
        "link_form.password_keep": ("保留当前密码", "Keep the current password"),
        "link_form.password_set": ("设置新密码", "Set a new password"),
        "link_form.password_remove": ("移除密码", "Remove the password"),
        "link_form.password": ("密码（4 位以上）", "Password (4+ characters)"),
        "link_form.section_rules": ("设备 / 地区分流", "Device / region rules"),
        "link_form.rules_hint": (
            "按顺序匹配，第一条满足全部条件的规则决定跳转网址；都不满足时用目标网址。",
            "Rules are checked in order; the first whose conditions all match picks the URL. "
            "Otherwise the destination is used.",
        ),
        "link_form.rules_values_hint": (
            "取值用逗号分隔 — 操作系统：ios, android, harmonyos, windows, macos, linux；设备：mobile（手机）、"
            "tablet（平板）、desktop（电脑）；App：微信、QQ 等名称；国家/地区：CN 等两位代码；省份：广东、浙江等。",
            "Separate values with commas — OS: ios, android, harmonyos, windows, macos, linux; device: mobile, "
            "tablet, desktop; app: WeChat, QQ…; country: two-letter codes such as CN; province: Guangdong…",
        ),
        "link_form.rule": ("规则", "Rule"),
        "link_form.rule_url": ("跳转到", "Go to"),
        "link_form.rule_add": ("＋ 添加规则", "+ Add rule"),
        "link_form.cond_add": ("＋ 条件", "+ Condition"),
        "link_form.cond_values": ("取值", "Values"),
        "link_form.remove": ("删除", "Remove"),
        "link_form.cond.os": ("操作系统", "OS"),
        "link_form.cond.device": ("设备类型", "Device"),
        "link_form.cond.platform": ("App / 平台", "App / platform"),
        "link_form.cond.country": ("国家/地区", "Country"),
        "link_form.cond.province": ("省份", "Province"),
        "link_form.section_variants": ("A/B 测试", "A/B test"),
        "link_form.variants_hint": (
            "至少两个网址，按权重分配访客；同一访客每次都进入同一组。留空表示不做测试。",
            "Two or more URLs, visitors split by weight; a visitor always lands in the same group. "
            "Leave empty for no test.",
        ),
        "link_form.variant_url": ("网址", "URL"),
        "link_form.variant_weight": ("权重", "Weight"),
        "link_form.variant_add": ("＋ 添加网址", "+ Add URL"),
        "link_form.section_antiblock": ("防红", "Anti-block (防红)"),
        "link_form.antiblock_hint": (
            "在勾选的 App 内打开时不直接跳转，而是显示「请在浏览器中打开」引导页，避免链接被拦截。",
            "Inside the checked apps, visitors see an “open in your browser” page instead of a redirect, "
            "so the link is not blocked.",
        ),
        "link_form.section_access": ("访问限制", "Who may open it"),
        "link_form.allowed": ("仅允许在这些环境打开（都不勾选表示不限制）", "Only allow (none checked: everyone)"),
        "link_form.blocked": ("禁止在这些环境打开", "Block"),
        "link_form.access_groups": ("设备与环境", "Devices and environments"),
        "link_form.access_platforms": ("App", "Apps"),
        "link_form.group.mobile": ("手机", "Phones"),
        "link_form.group.tablet": ("平板", "Tablets"),
        "link_form.group.desktop": ("电脑", "Computers"),
        "link_form.group.ios": ("iOS", "iOS"),
        "link_form.group.android": ("安卓", "Android"),
        "link_form.group.harmonyos": ("鸿蒙", "HarmonyOS"),
        "link_form.group.in_app": ("任意 App 内", "Inside any app"),
        "link_form.group.browser": ("普通浏览器", "Regular browsers"),
        "link_form.section_more": ("更多", "More"),
        "link_form.person_ref": ("专属成员标识（一对一推广时填写）", "Member reference (for a personal link)"),
        "link_form.archived": ("已归档（停止跳转，显示「链接不存在」）", "Archived (stops redirecting)"),
        "link_form.save": ("保存", "Save"),
        "link_form.cancel": ("取消", "Cancel"),
        "link_form.preview": ("实时预览", "Live preview"),
        "link_form.preview_hint": (
            "按当前（尚未保存的）设置，模拟三类访客打开短链。",
            "What three sample visitors would get with the current, unsaved settings.",
        ),
        "link_form.preview_empty": ("填写目标网址后显示预览", "Enter a destination to see the preview"),
        "link_form.preview_invalid": ("设置有误，暂时无法预览：", "Fix these settings to see the preview:"),
        "link_form.preview_failed": ("预览加载失败，请刷新页面", "The preview could not load; reload the page"),
        "link_form.preview_geo": (
            "地区条件在预览中不会命中（样例访客没有地区信息）。",
            "Region conditions never match in the preview (sample visitors have no location).",
        ),
        "link_form.visitor.wechat_ios": ("微信（iPhone）", "WeChat (iPhone)"),
        "link_form.visitor.qq_android": ("QQ（安卓手机）", "QQ (Android phone)"),
        "link_form.visitor.desktop_chrome": ("电脑 Chrome 浏览器", "Desktop Chrome"),
        "link_form.outcome.redirected": ("跳转到（{status}）", "Redirects ({status}) to"),
        "link_form.outcome.guidance": ("显示防红引导页", "Shows the open-in-browser page"),
        "link_form.outcome.not_allowed": ("显示「此处无法访问」", "Shows “not available here”"),
        "link_form.outcome.password": ("先要求输入访问密码", "Asks for the password first"),
        "link_form.outcome.expired": ("显示「链接已失效」", "Shows “this link has expired”"),
        "link_form.outcome.expired_fallback": ("已失效，跳转到备用网址", "Expired: redirects to the fallback"),
        "link_form.outcome.not_found": ("已归档，显示「链接不存在」", "Archived: shows “link not found”"),
        "link_form.outcome.variant": ("A/B 测试第 {n} 组", "A/B group {n}"),
    }
)

PREVIEW_VISITORS = (
    (
        "wechat_ios",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN",
    ),
    (
        "qq_android",
        "Mozilla/5.0 (Linux; Android 12; M2012K11AC Build/SKQ1.211006.001; wv) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Version/4.0 Chrome/98.0.4758.102 MQQBrowser/6.2 TBS/046317 Mobile Safari/537.36 "
        "V1_AND_SQ_8.9.78_4548_YYB_D QQ/8.9.78.12275 NetType/WIFI WebP/0.3.0",
    ),
    (
        "desktop_chrome",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
    ),
)
REDIRECT_CHOICES = (302, 301, 307, 308)
LOCAL_INPUT = "%Y-%m-%dT%H:%M"
_SPLIT = re.compile(r"[,，、;；\n]+")
_INDEXED = re.compile(r"^(rules|variants)\[(\d+)\](?:\.(\w+))?")
# Words operators type for rule values, mapped to the codes the rules store.
_VALUE_ALIASES = {
    "os": {"苹果": "ios", "iphone": "ios", "安卓": "android", "鸿蒙": "harmonyos", "mac": "macos"},
    "device": {"手机": "mobile", "平板": "tablet", "电脑": "desktop", "pc": "desktop"},
}
FIELD_KEYS = frozenset(
    {
        "destination_url", "slug", "domain", "title", "notes", "tags", "redirect_status", "forward_query", "utm",
        "pass_visitor_id", "expires_at", "max_clicks", "fallback_url", "password", "rules", "variants",
        "anti_block_platforms", "allowed_platforms", "blocked_platforms", "person_ref", "archived",
    }
)  # fmt: skip


def platform_label(code: str, locale: str) -> str:
    info = PLATFORMS.get(code)
    if info is None:
        return code
    return info.name_zh if locale == "zh-CN" else info.name_en


def _platform_alias() -> dict[str, str]:
    names: dict[str, str] = {}
    for code in platform_codes():
        info = PLATFORMS[code]
        for word in (code, info.name_zh, info.name_en):
            names[word.strip().lower()] = code
    return names


_PLATFORM_ALIAS = _platform_alias()


@dataclass
class FormInput:
    """One reading of the form: what the service gets, what the page shows back, and local problems."""

    raw: dict[str, Any]
    values: dict[str, Any]
    errors: list[FieldError] = field(default_factory=list)


def _numbered(form: FormData, prefix: str) -> list[dict[str, str]]:
    """Group `prefix-<n>-<name>` fields by n, in numeric order (new JS rows get ever larger numbers)."""
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.multi_items():
        parts = key.split("-", 2)
        if len(parts) == 3 and parts[0] == prefix and parts[1].isdigit() and isinstance(value, str):
            rows.setdefault(int(parts[1]), {})[parts[2]] = value
    return [rows[i] for i in sorted(rows)]


def _rule_values(key: str, text: str) -> list[str]:
    words = [w.strip() for w in _SPLIT.split(text) if w.strip()]
    if key == "platform":
        return [_PLATFORM_ALIAS.get(w.lower(), w) for w in words]
    aliases = _VALUE_ALIASES.get(key, {})
    return [aliases.get(w.lower(), w) for w in words]


def _read_rules(form: FormData) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    raw_rules, shown = [], []
    for row in _numbered(form, "rules"):
        url = row.get("url", "").strip()
        numbers = sorted(int(n[4:]) for n in row if n.startswith("key-") and n[4:].isdigit())
        conds = [(row[f"key-{j}"], row.get(f"values-{j}", "").strip()) for j in numbers]
        conds = [(key, text) for key, text in conds if text]
        if not url and not conds:
            continue  # an untouched blank row
        when: dict[str, list[str]] = {}
        for key, text in conds:
            when.setdefault(key, []).extend(_rule_values(key, text))
        raw_rules.append({"when": when, "url": url})
        shown.append({"url": url, "when": conds})
    return raw_rules, shown


def _read_variants(form: FormData) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    raw_variants, shown = [], []
    for row in _numbered(form, "variants"):
        url, weight = row.get("url", "").strip(), row.get("weight", "").strip()
        if not url and not weight:
            continue
        item: dict[str, Any] = {"url": url}
        if weight:
            item["weight"] = int(weight) if weight.isdigit() and len(weight) < 7 else weight
        raw_variants.append(item)
        shown.append({"url": url, "weight": weight})
    return raw_variants, shown


def _local_datetime(text: str) -> datetime | str | None:
    """`datetime-local` has no zone: operators mean China time, whatever the server's zone is."""
    if not text:
        return None
    try:
        return datetime.strptime(text[:16], LOCAL_INPUT).replace(tzinfo=zone(DEFAULT_TZ))
    except ValueError:
        return text  # the service names the problem


def _int_or_text(text: str) -> int | str | None:
    if not text:
        return None
    return int(text) if text.isdigit() and len(text) < 13 else text


def read_form(form: FormData, creating: bool, has_password: bool) -> FormInput:
    def text(name: str) -> str:
        value = form.get(name, "")
        return value if isinstance(value, str) else ""

    def codes(name: str) -> list[str]:
        return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]

    rules, shown_rules = _read_rules(form)
    variants, shown_variants = _read_variants(form)
    utm = {k: text(f"utm_{k}").strip() for k in UTM_KEYS}
    tags = [w.strip() for w in re.split(r"[,，]", text("tags")) if w.strip()]
    status = text("redirect_status").strip() or "302"
    raw: dict[str, Any] = {
        "destination_url": text("destination_url").strip(),
        "title": text("title"),
        "notes": text("notes"),
        "tags": tags,
        "redirect_status": _int_or_text(status),
        "forward_query": bool(form.get("forward_query")),
        "pass_visitor_id": bool(form.get("pass_visitor_id")),
        "utm": {k: v for k, v in utm.items() if v},
        "expires_at": _local_datetime(text("expires_at").strip()),
        "max_clicks": _int_or_text(text("max_clicks").strip()),
        "fallback_url": text("fallback_url").strip() or None,
        "rules": rules,
        "variants": variants,
        "anti_block_platforms": codes("anti_block_platforms"),
        "allowed_platforms": codes("allowed_platforms"),
        "blocked_platforms": codes("blocked_platforms"),
        "person_ref": text("person_ref").strip() or None,
    }
    if creating:
        raw["slug"] = text("slug").strip()
        raw["domain"] = text("domain").strip()
    else:
        raw["archived"] = bool(form.get("archived"))
    errors: list[FieldError] = []
    mode = text("password_mode") or ("keep" if has_password else "none")
    if mode == "set":
        raw["password"] = text("password")
        if not raw["password"]:
            errors.append(FieldError("password", "Enter the new password", code="password_required"))
    elif mode == "remove" or (mode == "none" and has_password):
        raw["password"] = ""
    values = {
        **{k: text(k) for k in ("destination_url", "slug", "domain", "title", "notes", "tags", "expires_at")},
        **{k: text(k) for k in ("max_clicks", "fallback_url", "person_ref")},
        "redirect_status": status,
        "forward_query": raw["forward_query"],
        "pass_visitor_id": raw["pass_visitor_id"],
        "archived": bool(form.get("archived")),
        "utm": utm,
        "password_mode": mode,
        "rules": shown_rules,
        "variants": shown_variants,
        "anti_block_platforms": raw["anti_block_platforms"],
        "allowed_platforms": raw["allowed_platforms"],
        "blocked_platforms": raw["blocked_platforms"],
    }
    return FormInput(raw, values, errors)


def values_from_link(link: ShortLink | None, locale: str, default_domain: str = "") -> dict[str, Any]:
    """What the form shows for a saved link (or the defaults for a new one)."""
    if link is None:
        return {
            "destination_url": "", "slug": "", "domain": default_domain, "title": "", "notes": "", "tags": "",
            "expires_at": "", "max_clicks": "", "fallback_url": "", "person_ref": "", "redirect_status": "302",
            "forward_query": True, "pass_visitor_id": False, "archived": False, "utm": dict.fromkeys(UTM_KEYS, ""),
            "password_mode": "none",
            "rules": [], "variants": [], "anti_block_platforms": [], "allowed_platforms": [], "blocked_platforms": [],
        }  # fmt: skip

    def shown(key: str, values: list[str]) -> str:
        words = [platform_label(v, locale) for v in values] if key == "platform" else values
        return ", ".join(words)

    expires = link.expires_at.astimezone(zone(DEFAULT_TZ)).strftime(LOCAL_INPUT) if link.expires_at else ""
    return {
        "destination_url": link.destination_url,
        "slug": link.slug,
        "domain": link.hostname,
        "title": link.title or "",
        "notes": link.notes or "",
        "tags": ", ".join(t.name for t in link.tags),
        "expires_at": expires,
        "max_clicks": "" if link.max_clicks is None else str(link.max_clicks),
        "fallback_url": link.fallback_url or "",
        "person_ref": link.person_ref or "",
        "redirect_status": str(link.redirect_status),
        "forward_query": link.forward_query,
        "pass_visitor_id": link.pass_visitor_id,
        "archived": link.archived,
        "utm": {k: (link.utm or {}).get(k, "") for k in UTM_KEYS},
        "password_mode": "keep" if link.password_hash else "none",
        "rules": [
            {"url": r["url"], "when": [(k, shown(k, v)) for k, v in r["when"].items()]} for r in (link.rules or [])
        ],
        "variants": [{"url": v["url"], "weight": str(v["weight"])} for v in (link.variants or [])],
        "anti_block_platforms": list(link.anti_block_platforms or []),
        "allowed_platforms": list(link.allowed_platforms or []),
        "blocked_platforms": list(link.blocked_platforms or []),
    }


def error_key(name: str) -> str:
    """Where a FieldError shows: `rules[0].url` → the URL of rule row 0, `utm.source` → its input."""
    m = _INDEXED.match(name)
    if m:
        kind, index, sub = m.group(1), m.group(2), m.group(3) or ""
        allowed = ("url", "when") if kind == "rules" else ("url", "weight")
        return f"{kind}.{index}" + (f".{sub}" if sub in allowed else "")
    base = re.split(r"[\[.]", name, maxsplit=1)[0]
    if base == "utm" and "." in name:
        sub = name.split(".", 1)[1].split(".")[0].removeprefix("utm_")
        return f"utm_{sub}" if sub in UTM_KEYS else "utm"
    return base if base in FIELD_KEYS else "_general"


def errors_by_field(errors: list[FieldError], viewer: Viewer) -> dict[str, list[str]]:
    """Each error's translated sentence under the input it belongs to; the rest, named, at the top."""
    out: dict[str, list[str]] = {}
    for e in errors:
        key, text = error_key(e.field), error_text(e, viewer.locale)
        if key == "_general":
            text = f"{field_label(e.field, viewer.locale)}: {text}"
        out.setdefault(key, []).append(text)
    return out


# --- the live preview ---------------------------------------------------------------------------


def _preview_model(values: dict[str, Any], base: ShortLink | None, workspace_id: int, hostname: str) -> Any:
    """Something shaped like a ShortLink for CompiledLink.from_model, from validated, unsaved values."""
    fields: dict[str, Any] = {
        "id": base.id if base else 0,
        "workspace_id": workspace_id,
        "hostname": base.hostname if base else (values.get("domain") or hostname),
        "slug": base.slug if base else (values.get("slug") or "abc123"),
        "destination_url": base.destination_url if base else "",
        "redirect_status": base.redirect_status if base else 302,
        "forward_query": base.forward_query if base else True,
        "pass_visitor_id": base.pass_visitor_id if base else False,
        "utm": base.utm if base else {},
        "expires_at": base.expires_at if base else None,
        "max_clicks": base.max_clicks if base else None,
        "fallback_url": base.fallback_url if base else None,
        "password_hash": base.password_hash if base else None,
        "rules": base.rules if base else [],
        "variants": base.variants if base else [],
        "anti_block_platforms": base.anti_block_platforms if base else [],
        "allowed_platforms": base.allowed_platforms if base else [],
        "blocked_platforms": base.blocked_platforms if base else [],
        "archived": base.archived if base else False,
        "person_ref": base.person_ref if base else None,
        "title": base.title if base else "",
    }
    for key, value in values.items():
        if key == "password":
            fields["password_hash"] = "preview" if value else None
        elif key in fields and key not in ("domain", "slug"):
            fields[key] = value
    return SimpleNamespace(**fields)


def preview_results(link: d.CompiledLink, locale: str, scheme: str) -> list[dict[str, Any]]:
    """Run decide() for each sample visitor; pages are the real visitor pages, for an iframe srcdoc."""
    short = f"{scheme}://{link.hostname}/{link.slug}"
    now = utcnow()
    results = []
    for key, ua in PREVIEW_VISITORS:
        platform, os_name, device = detect_platform(ua), os_family(ua), device_class(ua)
        decision = d.decide(link, d.Visitor(platform, os_name, device, f"preview-{key}"), now)
        html = None
        if decision.outcome == d.GUIDANCE:
            shown = "" if link.password_hash else decision.url or ""
            html = pages.guidance(locale, platform, os_name, shown, short)
        elif decision.outcome == d.NOT_ALLOWED:
            html = pages.not_allowed(locale, platform, device)
        elif decision.outcome == d.PASSWORD:
            html = pages.password(locale)
        elif decision.outcome == d.EXPIRED and not decision.url:
            html = pages.message(locale, "expired")
        elif decision.outcome == d.NOT_FOUND:
            html = pages.message(locale, "not_found")
        outcome = "expired_fallback" if decision.outcome == d.EXPIRED and decision.url else decision.outcome
        results.append(
            {
                "key": key,
                "outcome": outcome,
                "url": decision.url if decision.outcome in (d.REDIRECTED, d.EXPIRED) else None,
                "status": decision.status,
                "variant": None if decision.variant is None else decision.variant + 1,
                "html": html,
            }
        )
    return results


def build_preview(request: Request, viewer: Viewer, form: FormData, link_id: int | None) -> dict[str, Any]:
    rt = runtime_of(request)
    ws = viewer.workspace.id
    with rt.db.session() as db:
        base = service.get_link(db, ws, link_id) if link_id else None
        given = read_form(form, creating=base is None, has_password=bool(base and base.password_hash))
        if base is None and not given.raw["destination_url"]:
            return {"state": "empty"}
        ctx = rt.link_context(ws, viewer.user.email)
        errors = list(given.errors)
        try:
            values = service.validate_fields(db, ctx, given.raw, creating=base is None)
        except InvalidInput as exc:
            errors.extend(exc.errors)
        if errors:
            problems = [(field_label(e.field, viewer.locale), error_text(e, viewer.locale)) for e in errors]
            return {"state": "invalid", "problems": problems}
        domains = list_domains(db, ws)
        hostname = next((x.hostname for x in domains if x.is_default), domains[0].hostname if domains else "")
        link = d.CompiledLink.from_model(_preview_model(values, base, ws, hostname))
    return saved_preview(link, viewer, rt.scheme)


def saved_preview(link: d.CompiledLink, viewer: Viewer, scheme: str) -> dict[str, Any]:
    return {"state": "ok", "results": preview_results(link, viewer.locale, scheme), "geo": link.needs_geo}


# --- pages --------------------------------------------------------------------------------------


def _choices(base: list[tuple[str, str]], selected: list[str]) -> list[tuple[str, str]]:
    """The checkboxes to show; a submitted code we do not know stays visible (and checked) to be fixed."""
    known = {code for code, _ in base}
    return base + [(code, code) for code in selected if code not in known]


def form_context(viewer: Viewer, values: dict[str, Any], domains: list[str]) -> dict[str, Any]:
    locale = viewer.locale
    in_app = [(c, platform_label(c, locale)) for c in platform_codes() if PLATFORMS[c].in_app]
    every = [(c, platform_label(c, locale)) for c in platform_codes()]
    groups = [(g, viewer.t(f"link_form.group.{g}")) for g in ACCESS_GROUPS]
    try:
        utm = {k: v for k, v in values["utm"].items() if v}
        final_url = build_destination(values["destination_url"], utm, "", False) if values["destination_url"] else ""
    except ValueError:
        final_url = values["destination_url"]
    selected_extra = [c for c in values["anti_block_platforms"] if c in PLATFORMS and c not in dict(in_app)]
    return {
        "values": values,
        "domains": domains,
        "redirect_choices": REDIRECT_CHOICES,
        "utm_keys": UTM_KEYS,
        "rule_keys": RULE_KEYS,
        "antiblock_choices": _choices(
            in_app + [(c, platform_label(c, locale)) for c in selected_extra], values["anti_block_platforms"]
        ),
        "allowed_groups": _choices(groups, [c for c in values["allowed_platforms"] if c not in PLATFORMS]),
        "blocked_groups": _choices(groups, [c for c in values["blocked_platforms"] if c not in PLATFORMS]),
        "platform_choices": every,
        "final_url": final_url,
    }


def _load(request: Request, viewer: Viewer, link_id: int | None) -> tuple[ShortLink | None, list[str]]:
    rt = runtime_of(request)
    with rt.db.session() as db:
        domains = list_domains(db, viewer.workspace.id)
        ordered = sorted(domains, key=lambda x: (not x.is_default, x.id))
        link = service.get_link(db, viewer.workspace.id, link_id) if link_id else None
        return link, [x.hostname for x in ordered]


def _save(request: Request, viewer: Viewer, given: FormInput, link_id: int | None) -> int:
    rt = runtime_of(request)
    ctx = rt.link_context(viewer.workspace.id, viewer.user.email)
    with rt.db.session() as db:
        if given.errors:  # report the form's own problems together with the domain's
            try:
                service.validate_fields(db, ctx, given.raw, creating=link_id is None)
            except InvalidInput as exc:
                raise InvalidInput(given.errors + exc.errors) from exc
            raise InvalidInput(given.errors)
        if link_id is None:
            return service.create_link(db, ctx, given.raw).id
        return service.update_link(db, ctx, link_id, given.raw).id


async def _form_page(request: Request, viewer: Viewer, link_id: int | None) -> Response:
    try:
        link, domains = await anyio.to_thread.run_sync(_load, request, viewer, link_id)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("error.not_found"))
    rt = runtime_of(request)
    status: int = 200
    errors: dict[str, list[str]] = {}
    preview_data: dict[str, Any] = {"state": "empty"}
    if request.method == "POST":
        form = await request.form()
        given = read_form(form, creating=link is None, has_password=bool(link and link.password_hash))
        try:
            saved = await anyio.to_thread.run_sync(_save, request, viewer, given, link_id)
        except InvalidInput as exc:
            errors = errors_by_field(exc.errors, viewer)
        except Conflict as exc:
            errors = errors_by_field([exc.field_error()], viewer)
        except NotFound:
            return render(request, "error.html", viewer, 404, message=viewer.t("error.not_found"))
        else:
            return RedirectResponse(f"/console/links/{saved}", status_code=303)
        status, values = 422, given.values
        preview_data = await anyio.to_thread.run_sync(build_preview, request, viewer, form, link_id)
    else:
        values = values_from_link(link, viewer.locale, domains[0] if domains else "")
        if link is not None:
            preview_data = saved_preview(d.CompiledLink.from_model(link), viewer, rt.scheme)
    return render(
        request,
        "link_form.html",
        viewer,
        status,
        link=link,
        has_password=bool(link and link.password_hash),
        short_url=service.short_url(link, rt.scheme) if link else "",
        errors=errors,
        preview=preview_data,
        **form_context(viewer, values, domains),
    )


@page("links:write")
async def new_link(request: Request, viewer: Viewer) -> Response:
    return await _form_page(request, viewer, None)


@page("links:write")
async def edit_link(request: Request, viewer: Viewer) -> Response:
    return await _form_page(request, viewer, request.path_params["link_id"])


@page("links:write")
async def preview(request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    raw_id = form.get("link_id", "")
    link_id = int(raw_id) if isinstance(raw_id, str) and raw_id.isdigit() else None
    try:
        data = await anyio.to_thread.run_sync(build_preview, request, viewer, form, link_id)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("error.not_found"))
    return render(request, "link_form_preview.html", viewer, preview=data)


def routes() -> list[BaseRoute]:
    return [
        Route("/links/new", new_link, methods=["GET", "POST"]),
        Route("/links/preview", preview, methods=["POST"]),
        Route("/links/{link_id:int}/edit", edit_link, methods=["GET", "POST"]),
    ]
