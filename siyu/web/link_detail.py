"""The link detail page: what a link does (its rules in words), its QR code and its clicks.

Operators check a link here before printing it on a poster, and analysts read its numbers, so the
page says in plain words what every setting will do to a visitor. Dates are entered and shown in
Asia/Shanghai (the console's users think in Beijing time) while the event store keeps UTC.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from siyu import qr
from siyu.clicks.analytics import export_csv
from siyu.errors import NotFound
from siyu.errors_i18n import error_text
from siyu.events.store import ClickFilter, EventStore
from siyu.i18n import CATALOG, register, t
from siyu.links import service as links
from siyu.links.models import ShortLink
from siyu.qr.generate import TRANSPARENT
from siyu.redirect.pages import platform_name
from siyu.useragent import PLATFORMS
from siyu.web.context import Viewer, page, render, runtime_of
from siyu.web.formatting import fmt_datetime, fmt_number, zone

register(
    {
        "detail.title": ("短链详情", "Link details"),
        "detail.short_url": ("短链接", "Short link"),
        "detail.qr_url": ("二维码链接", "QR link"),
        "detail.copy": ("复制", "Copy"),
        "detail.destination": ("目标网址", "Destination"),
        "detail.link_title": ("标题", "Title"),
        "detail.tags": ("标签", "Tags"),
        "detail.notes": ("备注", "Notes"),
        "detail.created": ("创建", "Created"),
        "detail.updated": ("更新", "Updated"),
        "detail.by": ("{when}，{who}", "{when} by {who}"),
        "detail.status": ("状态", "Status"),
        "detail.status.active": ("生效中", "Active"),
        "detail.status.expired": ("已失效", "Expired"),
        "detail.status.archived": ("已归档", "Archived"),
        "detail.edit": ("编辑", "Edit"),
        "detail.archive": ("归档", "Archive"),
        "detail.archive_confirm": (
            "确定归档此短链？归档后访问者将看到“链接不存在”，点击数据会保留。",
            "Archive this link? Visitors will see “link not found”; its clicks are kept.",
        ),
        "detail.restore": ("恢复", "Restore"),
        "detail.archived_done": ("已归档", "Link archived"),
        "detail.restored_done": ("已恢复", "Link restored"),
        "detail.none": ("无", "None"),
        # the rules in words
        "detail.rules": ("访问规则", "What visitors get"),
        "detail.rule.anti_block": (
            "在{platforms}中显示防红引导页（提示在浏览器中打开）",
            "In {platforms}: show the open-in-browser guidance page",
        ),
        "detail.rule.allowed": ("仅允许：{platforms}", "Only allowed in: {platforms}"),
        "detail.rule.blocked": ("禁止访问：{platforms}", "Blocked in: {platforms}"),
        "detail.rule.route": ("{when} → {url}", "{when} → {url}"),
        "detail.rule.otherwise": ("其他访问 → {url}", "Everyone else → {url}"),
        "detail.rule.default": ("全部访问 → {url}", "Every visitor → {url}"),
        "detail.rule.and": (" 且 ", " and "),
        "detail.rule.sep": ("、", ", "),
        "detail.rule.country": ("国家/地区 {v}", "country {v}"),
        "detail.rule.province": ("省份 {v}", "province {v}"),
        "detail.rule.ab": ("A/B：{parts}", "A/B: {parts}"),
        "detail.rule.ab_sep": ("，", ", "),
        "detail.rule.expires": ("{when} 后失效（北京时间）", "Expires after {when} (Beijing time)"),
        "detail.rule.expired_at": ("已于 {when} 失效（北京时间）", "Expired at {when} (Beijing time)"),
        "detail.rule.then": ("，之后跳转到 {url}", "; then goes to {url}"),
        "detail.rule.max_clicks": ("最多 {n} 次点击后失效（已用 {used} 次）", "Expires after {n} clicks ({used} used)"),
        "detail.rule.max_clicks_fallback": (
            "最多 {n} 次点击后跳转到 {url}（已用 {used} 次）",
            "After {n} clicks, goes to {url} ({used} used)",
        ),
        "detail.rule.password": ("需要密码", "Password required"),
        "detail.rule.utm": ("附加 UTM 参数：{params}", "Adds UTM parameters: {params}"),
        "detail.rule.forward_query": ("转发访问链接上的查询参数", "Passes the visitor's query string on"),
        "detail.rule.pass_visitor_id": ("把访客 ID（sy_vid）带给目标网址", "Passes the visitor id (sy_vid) on"),
        "detail.rule.person": ("个人专属链接：{ref}", "Personal link of {ref}"),
        "detail.rule.status": ("跳转状态码 {code}（临时跳转）", "Redirect status {code} (temporary)"),
        "detail.rule.status_permanent": (
            "跳转状态码 {code}（永久跳转）：浏览器会缓存永久跳转，同一访客的重复点击不再经过短链，不会被统计",
            "Redirect status {code} (permanent): browsers cache it, so a visitor's repeat clicks skip the short"
            " link and are not counted",
        ),
        "detail.group.mobile": ("手机", "phones"),
        "detail.group.tablet": ("平板", "tablets"),
        "detail.group.desktop": ("电脑", "computers"),
        "detail.group.ios": ("iOS", "iOS"),
        "detail.group.android": ("Android", "Android"),
        "detail.group.harmonyos": ("鸿蒙", "HarmonyOS"),
        "detail.group.windows": ("Windows", "Windows"),
        "detail.group.macos": ("macOS", "macOS"),
        "detail.group.linux": ("Linux", "Linux"),
        "detail.group.other": ("其他系统", "other systems"),
        "detail.group.in_app": ("App 内置浏览器", "in-app browsers"),
        "detail.group.browser": ("普通浏览器", "regular browsers"),
        # QR
        "detail.qr": ("二维码", "QR code"),
        "detail.qr.size": ("尺寸（像素）", "Size (px)"),
        "detail.qr.border": ("边距（模块）", "Margin (modules)"),
        "detail.qr.dark": ("前景色", "Foreground"),
        "detail.qr.light": ("背景色", "Background"),
        "detail.qr.transparent": ("透明背景", "Transparent background"),
        "detail.qr.error": ("容错级别", "Error correction"),
        "detail.qr.logo": ("中间 Logo", "Logo"),
        "detail.qr.logo_note": (
            "可选，PNG/JPEG/WebP；带 Logo 时自动使用最高容错级别 H",
            "Optional, PNG/JPEG/WebP; a logo always uses the highest error correction, H",
        ),
        "detail.qr.data": ("内容", "Content"),
        "detail.qr.image": ("图片", "Image"),
        "detail.qr.preview": ("预览", "Preview"),
        "detail.qr.download_png": ("下载 PNG", "Download PNG"),
        "detail.qr.download_svg": ("下载 SVG", "Download SVG"),
        "detail.qr.invalid": ("{field}无效：{reason}", "Invalid {field}: {reason}"),
        "detail.qr.format": ("格式", "Format"),
        "detail.qr.scan_note": (
            "扫码访问会被记为“二维码”来源",
            "Scans are counted with the trigger “QR code”",
        ),
        # analytics
        "detail.analytics": ("访问数据", "Clicks"),
        "detail.since": ("开始日期", "From"),
        "detail.until": ("结束日期", "To"),
        "detail.bucket": ("粒度", "Interval"),
        "detail.bucket.hour": ("按小时", "Hourly"),
        "detail.bucket.day": ("按天", "Daily"),
        "detail.include_bots": ("包含机器人", "Include bots"),
        "detail.apply": ("查询", "Apply"),
        "detail.preset.today": ("今天", "Today"),
        "detail.preset.7d": ("7天", "7 days"),
        "detail.preset.30d": ("30天", "30 days"),
        "detail.preset.90d": ("90天", "90 days"),
        "detail.export": ("导出 CSV", "Export CSV"),
        "detail.tz_note": ("日期按北京时间", "Dates in Beijing time"),
        "detail.clicks": ("总点击", "Clicks"),
        "detail.unique": ("独立访客", "Unique visitors"),
        "detail.bots": ("机器人点击", "Bot clicks"),
        "detail.bots_note": ("机器人与链接预览不计入总点击", "not counted in clicks"),
        "detail.bots_included": ("已计入总点击", "counted in clicks"),
        "detail.trend": ("点击趋势", "Clicks over time"),
        "detail.empty": ("该时间段内没有点击", "No clicks in this period"),
        "detail.dim.platform": ("访问平台", "Platform"),
        "detail.dim.os": ("操作系统", "Operating system"),
        "detail.dim.device_type": ("设备类型", "Device"),
        "detail.dim.browser": ("浏览器", "Browser"),
        "detail.dim.referrer_domain": ("来源网站", "Referrer"),
        "detail.dim.province": ("省份排行", "Provinces"),
        "detail.dim.trigger": ("访问方式", "Opened via"),
        "detail.dim.outcome": ("访问结果", "Outcome"),
        "detail.share": ("占比", "Share"),
        "detail.province": ("省份", "Province"),
        "detail.unknown": ("未知", "Unknown"),
        "detail.direct": ("直接访问", "Direct / none"),
        "detail.other": ("其他", "Other"),
        "detail.device.mobile": ("手机", "Phone"),
        "detail.device.tablet": ("平板", "Tablet"),
        "detail.device.desktop": ("电脑", "Computer"),
        "detail.device.bot": ("机器人", "Bot"),
        "detail.device.other": ("其他", "Other"),
        "detail.trigger.link": ("点击短链", "Short link"),
        "detail.trigger.qr": ("扫描二维码", "QR code scan"),
        "detail.outcome.redirected": ("已跳转", "Redirected"),
        "detail.outcome.guidance": ("防红引导页", "Open-in-browser guidance"),
        "detail.outcome.not_allowed": ("不允许访问", "Not allowed"),
        "detail.outcome.password": ("等待输入密码", "Asked for password"),
        "detail.outcome.expired": ("已失效", "Expired"),
        "detail.outcome.not_found": ("已归档（不存在）", "Archived (not found)"),
        "detail.err.date": ("{field}不是有效日期（例如 2026-11-01）", "{field} is not a valid date (e.g. 2026-11-01)"),
        "detail.err.date_range": ("{field}超出支持的范围", "{field} is out of the supported range"),
        "detail.err.order": ("开始日期不能晚于结束日期", "The start date must not be after the end date"),
        "detail.err.span": ("时间范围最长 10 年", "The range may span at most 10 years"),
        "detail.err.bucket": ("粒度只能是按小时或按天", "The interval must be hourly or daily"),
        "detail.err.hourly_span": ("按小时查看时，范围最长 {days} 天", "Hourly view covers at most {days} days"),
    }
)

TZ = "Asia/Shanghai"
MAX_LINK_ID = 2**62
MAX_SPAN_DAYS = 3660  # the same 10-year limit as the analytics API
HOURLY_MAX_DAYS = 31
EXACT_DAYS_MAX = 93
"""Up to this many days, daily points are counted per Beijing-time day (one summary per day); the
store's own day buckets are UTC days, which would put 00:00–08:00 clicks on the previous day."""

QR_DEFAULTS = {"size": "512", "border": "4", "dark": "#000000", "light": "#ffffff", "error": "m"}
QR_FIELDS = ("size", "border", "dark", "light", "error")
DIMENSIONS: tuple[tuple[str, int], ...] = (
    ("platform", 12),
    ("os", 10),
    ("device_type", 6),
    ("browser", 10),
    ("referrer_domain", 10),
    ("province", 40),
    ("trigger", 2),
    ("outcome", 6),
)
_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9_-]")


class BadParam(Exception):
    """A query or form value the page reports inline (never a 500): the field and a message key."""

    def __init__(self, field: str, key: str, **kwargs: object) -> None:
        super().__init__(f"{field}: {key}")
        self.field = field
        self.key = key
        self.kwargs = kwargs

    def message(self, locale: str) -> str:
        return t(self.key, locale, field=t(f"detail.{self.field}", locale), **self.kwargs)


# --- the link -------------------------------------------------------------------------------------


def load_link(request: Request, viewer: Viewer, link_id: int) -> ShortLink:
    """The link if it belongs to the viewer's workspace; NotFound otherwise (we never say which)."""
    if not 1 <= link_id <= MAX_LINK_ID:
        raise NotFound(f"link {link_id} not found")
    with runtime_of(request).db.session() as db:
        return links.get_link(db, viewer.workspace.id, link_id)


def link_status(link: ShortLink, clicks_served: int, now: datetime) -> str:
    if link.archived:
        return "archived"
    if (link.expires_at is not None and now >= link.expires_at) or (
        link.max_clicks is not None and clicks_served >= link.max_clicks
    ):
        return "expired"
    return "active"


def _group_name(code: str, locale: str) -> str:
    """Platform codes and the access-group words allowed/blocked lists and rules may use."""
    if code in PLATFORMS and code != "none":
        return platform_name(code, locale)
    if code in ("none", "browser"):
        return t("detail.group.browser", locale)
    key = f"detail.group.{code}"
    return t(key, locale) if key in CATALOG else code


def rules_in_words(link: ShortLink, locale: str, clicks_served: int, now: datetime) -> list[str]:
    """Every setting as a sentence, in the order `siyu.links.decide` applies them."""

    def tr(key: str, **kw: object) -> str:
        return t(key, locale, **kw)

    def names(codes: list[str]) -> str:
        return tr("detail.rule.sep").join(_group_name(c, locale) for c in codes)

    out: list[str] = []
    then = tr("detail.rule.then", url=link.fallback_url) if link.fallback_url else ""
    if link.expires_at is not None:
        key = "detail.rule.expired_at" if now >= link.expires_at else "detail.rule.expires"
        out.append(tr(key, when=fmt_datetime(link.expires_at, locale, TZ)) + then)
    if link.max_clicks is not None:
        n, used = fmt_number(link.max_clicks, locale), fmt_number(clicks_served, locale)
        key = "detail.rule.max_clicks_fallback" if link.fallback_url else "detail.rule.max_clicks"
        out.append(tr(key, n=n, used=used, url=link.fallback_url))
    if link.allowed_platforms:
        out.append(tr("detail.rule.allowed", platforms=names(link.allowed_platforms)))
    if link.blocked_platforms:
        out.append(tr("detail.rule.blocked", platforms=names(link.blocked_platforms)))
    if link.anti_block_platforms:
        out.append(tr("detail.rule.anti_block", platforms=names(link.anti_block_platforms)))
    if link.password_hash:
        out.append(tr("detail.rule.password"))
    for rule in link.rules or []:
        out.append(tr("detail.rule.route", when=_conditions(rule["when"], locale), url=rule["url"]))
    if link.variants:
        total = sum(int(v["weight"]) for v in link.variants) or 1
        parts = [f"{_percent(int(v['weight']) / total)} → {v['url']}" for v in link.variants]
        out.append(tr("detail.rule.ab", parts=tr("detail.rule.ab_sep").join(parts)))
    elif link.rules:
        out.append(tr("detail.rule.otherwise", url=link.destination_url))
    if not link.rules and not link.variants:
        out.append(tr("detail.rule.default", url=link.destination_url))
    if link.utm:
        params = tr("detail.rule.sep").join(f"utm_{k}={v}" for k, v in link.utm.items())
        out.append(tr("detail.rule.utm", params=params))
    if link.forward_query:
        out.append(tr("detail.rule.forward_query"))
    if link.pass_visitor_id:
        out.append(tr("detail.rule.pass_visitor_id"))
    if link.person_ref:
        out.append(tr("detail.rule.person", ref=link.person_ref))
    permanent = link.redirect_status in (301, 308)
    out.append(tr("detail.rule.status_permanent" if permanent else "detail.rule.status", code=link.redirect_status))
    return out


def _conditions(when: Mapping[str, list[str]], locale: str) -> str:
    sep = t("detail.rule.sep", locale)
    parts = []
    for key, values in when.items():
        if key in ("os", "device", "platform"):
            parts.append(sep.join(_group_name(v, locale) for v in values))
        else:
            parts.append(t(f"detail.rule.{key}", locale, v=sep.join(values)))
    return t("detail.rule.and", locale).join(parts)


def _percent(share: float) -> str:
    value = round(share * 100, 1)
    return f"{value:g}%"


# --- QR code --------------------------------------------------------------------------------------


def qr_fields(params: Mapping[str, Any]) -> dict[str, str]:
    """The QR form's values as text (defaults filled in); a ticked 'transparent' box wins over `light`."""
    values = {k: str(params.get(k) or QR_DEFAULTS[k]).strip()[:32] for k in QR_FIELDS}
    if params.get("transparent"):
        values["light"] = TRANSPARENT
    return values


def qr_options(values: Mapping[str, str], logo: bytes | None = None) -> qr.QrOptions:
    """Build QrOptions from form text; raises QrError naming the field, like QrOptions itself."""
    numbers: dict[str, int] = {}
    for name in ("size", "border"):
        try:
            numbers[name] = int(values[name])
        except ValueError:
            raise qr.QrOptionError(name, "must be a whole number", "whole_number") from None
    return qr.QrOptions(
        size=numbers["size"],
        border=numbers["border"],
        dark=values["dark"],
        light=values["light"],
        error=values["error"].lower(),
        logo=logo,
    )


def qr_error_message(exc: qr.QrError, locale: str) -> str:
    field = t(f"detail.qr.{exc.field}", locale)
    return t("detail.qr.invalid", locale, field=field, reason=error_text(exc, locale))


def render_qr(data: str, fmt: str, opts: qr.QrOptions) -> bytes:
    return qr.render_png(data, opts) if fmt == "png" else qr.render_svg(data, opts)


def qr_data(request: Request, link: ShortLink) -> str:
    """What the code encodes: the short link's /q form, so scans are counted as trigger 'qr'."""
    return links.short_url(link, runtime_of(request).scheme) + "/q"


def _image_response(body: bytes, fmt: str, link: ShortLink, download: bool) -> Response:
    media = "image/png" if fmt == "png" else "image/svg+xml"
    headers = {"cache-control": "private, max-age=300", "x-content-type-options": "nosniff"}
    if fmt == "svg":  # an SVG opened directly must not be able to run anything
        headers["content-security-policy"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    if download:
        name = _SAFE_FILENAME.sub("_", link.slug)
        headers["content-disposition"] = f'attachment; filename="qr-{name}.{fmt}"'
    return Response(body, media_type=media, headers=headers)


def _qr_error_response(exc: qr.QrError, locale: str) -> JSONResponse:
    body = {"field": exc.field, "reason": exc.reason, "code": exc.code, "message": qr_error_message(exc, locale)}
    return JSONResponse(body, status_code=422, headers={"cache-control": "no-store"})


# --- analytics ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole Beijing-time days, both ends included."""

    first: date
    last: date
    bucket: str = "day"
    include_bots: bool = False

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, datetime.min.time(), zone(TZ))

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), datetime.min.time(), zone(TZ))

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def query(self, **extra: str) -> str:
        params = {"since": self.first.isoformat(), "until": self.last.isoformat(), "bucket": self.bucket}
        if self.include_bots:
            params["include_bots"] = "1"
        return urlencode({**params, **extra})


def today_local() -> date:
    return datetime.now(zone(TZ)).date()


def default_period(today: date) -> Period:
    return Period(today - timedelta(days=29), today)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "on", "yes")


def _parse_date(raw: str, field: str) -> date:
    try:
        value = date.fromisoformat(raw.strip())
    except ValueError:
        raise BadParam(field, "detail.err.date") from None
    if not 1970 <= value.year <= 9998:  # keeps the UTC conversion of both ends in range
        raise BadParam(field, "detail.err.date_range")
    return value


def parse_period(params: Mapping[str, str], today: date) -> Period:
    """since/until as dates (Beijing time, inclusive); 30 days up to today by default."""
    until_raw, since_raw = params.get("until") or "", params.get("since") or ""
    last = _parse_date(until_raw, "until") if until_raw.strip() else today
    first = _parse_date(since_raw, "since") if since_raw.strip() else last - timedelta(days=29)
    if first > last:
        raise BadParam("since", "detail.err.order")
    if (last - first).days >= MAX_SPAN_DAYS:
        raise BadParam("since", "detail.err.span")
    bucket = (params.get("bucket") or "").strip() or ("hour" if (last - first).days < 2 else "day")
    if bucket not in ("hour", "day"):
        raise BadParam("bucket", "detail.err.bucket")
    if bucket == "hour" and (last - first).days >= HOURLY_MAX_DAYS:
        raise BadParam("bucket", "detail.err.hourly_span", days=HOURLY_MAX_DAYS)
    return Period(first, last, bucket, _truthy(params.get("include_bots")))


def presets(today: date) -> list[tuple[str, date, date]]:
    return [
        ("detail.preset.today", today, today),
        ("detail.preset.7d", today - timedelta(days=6), today),
        ("detail.preset.30d", today - timedelta(days=29), today),
        ("detail.preset.90d", today - timedelta(days=89), today),
    ]


def timeseries(store: EventStore, f: ClickFilter, period: Period) -> dict[str, list[Any]]:
    """Points for every bucket in the period (zeros included), labelled in Beijing time."""
    tz = zone(TZ)
    x: list[str] = []
    clicks: list[int] = []
    unique: list[int] = []
    if period.bucket == "hour":
        rows = {ts: (c, u) for ts, c, u in store.timeseries(f, "hour")}
        at = period.start.astimezone(UTC)
        while at < period.end:
            c, u = rows.get(at, (0, 0))
            x.append(at.astimezone(tz).strftime("%m-%d %H:00"))
            clicks.append(c)
            unique.append(u)
            at += timedelta(hours=1)
    elif period.days <= EXACT_DAYS_MAX:
        for i in range(period.days):
            day = period.first + timedelta(days=i)
            start = datetime.combine(day, datetime.min.time(), tz)
            s = store.summary(replace(f, since=start, until=start + timedelta(days=1)))
            x.append(day.strftime("%m-%d") if period.first.year == period.last.year else day.isoformat())
            clicks.append(s.clicks)
            unique.append(s.unique_visitors)
    else:  # long ranges: the store's UTC days, labelled by the Beijing date of their start
        rows = {ts.astimezone(tz).date(): (c, u) for ts, c, u in store.timeseries(f, "day")}
        for i in range(period.days):
            day = period.first + timedelta(days=i)
            c, u = rows.get(day, (0, 0))
            x.append(day.isoformat())
            clicks.append(c)
            unique.append(u)
    return {"x": x, "clicks": clicks, "unique": unique}


def label(dimension: str, value: str, locale: str) -> str:
    """A breakdown value as people read it: platform names, translated codes, 'unknown' for blanks."""
    if dimension == "platform":
        if value in ("", "none"):
            return PLATFORMS["none"].name_zh if locale == "zh-CN" else PLATFORMS["none"].name_en
        return platform_name(value, locale) if value in PLATFORMS else value
    if dimension in ("device_type", "trigger", "outcome"):
        key = f"detail.{dimension.split('_')[0]}.{value}"
        return t(key, locale) if key in CATALOG else (value or t("detail.unknown", locale))
    if dimension == "referrer_domain" and not value:
        return t("detail.direct", locale)
    if dimension in ("os", "browser") and value == "Other":
        return t("detail.other", locale)
    return value or t("detail.unknown", locale)


def analytics_data(store: EventStore, workspace_id: int, link_id: int, period: Period, locale: str) -> dict[str, Any]:
    f = ClickFilter(workspace_id, link_id, since=period.start, until=period.end, include_bots=period.include_bots)
    summary = store.summary(f)
    breakdowns = {
        dim: [
            {"key": k, "label": label(dim, k, locale), "clicks": c, "unique": u}
            for k, c, u in store.breakdown(f, dim, limit)
        ]
        for dim, limit in DIMENSIONS
    }
    return {"summary": summary, "trend": timeseries(store, f, period), "breakdowns": breakdowns}


# --- pages ----------------------------------------------------------------------------------------


def _int_id(request: Request) -> int:
    return int(request.path_params["link_id"])


def _not_found(request: Request, viewer: Viewer) -> Response:
    return render(request, "error.html", viewer, 404, message=viewer.t("error.not_found"))


def page_context(
    request: Request, viewer: Viewer, link: ShortLink, params: Mapping[str, Any], qr_error: str = ""
) -> tuple[dict[str, Any], bool]:
    """Everything the template needs; the flag says whether some input was rejected (-> 422)."""
    rt = runtime_of(request)
    locale = viewer.locale
    now = datetime.now(UTC)
    served = rt.store.clicks_served(link.id)
    today = today_local()
    invalid = bool(qr_error)

    fields = qr_fields(params)
    preview = ""
    if not qr_error:
        try:
            qr.layout(qr_data(request, link), qr_options(fields))
            preview = urlencode(fields)
        except qr.QrError as exc:
            qr_error, invalid = qr_error_message(exc, locale), True

    period_error = ""
    try:
        period = parse_period(params, today)
    except BadParam as exc:
        period, period_error, invalid = default_period(today), exc.message(locale), True
    stats = None
    if viewer.can("analytics:read"):
        stats = analytics_data(rt.store, viewer.workspace.id, link.id, period, locale)

    short = links.short_url(link, rt.scheme)
    context = {
        "link": link,
        "short_url": short,
        "qr_url": short + "/q",
        "link_state": link_status(link, served, now),
        "rules": rules_in_words(link, locale, served, now),
        "qr_fields": fields,
        "qr_preview": preview,
        "qr_state": {k: v for k, v in fields.items() if v != QR_DEFAULTS[k]},
        "qr_error": qr_error,
        "period": period,
        "period_form": {k: str(params.get(k) or "") for k in ("since", "until", "bucket")} if period_error else None,
        "period_error": period_error,
        "presets": [(key, a.isoformat(), b.isoformat()) for key, a, b in presets(today)],
        "stats": stats,
        "done": str(params.get("done") or ""),
    }
    return context, invalid


async def _render_page(
    request: Request, viewer: Viewer, link: ShortLink, params: Mapping[str, Any], qr_error: str = ""
) -> Response:
    context, invalid = await anyio.to_thread.run_sync(page_context, request, viewer, link, params, qr_error)
    return render(request, "link_detail.html", viewer, 422 if invalid else 200, **context)


@page("links:read")
async def detail(request: Request, viewer: Viewer) -> Response:
    try:
        link = await anyio.to_thread.run_sync(load_link, request, viewer, _int_id(request))
    except NotFound:
        return _not_found(request, viewer)
    return await _render_page(request, viewer, link, request.query_params)


@page("links:read")
async def qr_image(request: Request, viewer: Viewer) -> Response:
    """GET preview/download without a logo: cacheable, no CSRF needed (it changes nothing)."""
    fmt = request.path_params["fmt"]
    try:
        if fmt not in ("png", "svg"):
            raise NotFound(fmt)
        link = await anyio.to_thread.run_sync(load_link, request, viewer, _int_id(request))
    except NotFound:
        return _not_found(request, viewer)
    try:
        opts = qr_options(qr_fields(request.query_params))
        body = await anyio.to_thread.run_sync(render_qr, qr_data(request, link), fmt, opts)
    except qr.QrError as exc:
        return _qr_error_response(exc, viewer.locale)
    return _image_response(body, fmt, link, _truthy(request.query_params.get("download")))


async def _read_logo(value: object) -> bytes | None:
    if not isinstance(value, UploadFile) or not value.filename:
        return None
    data = await value.read(qr.MAX_UPLOAD_BYTES + 1)
    return data or None


@page("links:read")
async def qr_with_logo(request: Request, viewer: Viewer) -> Response:
    """POST (multipart, CSRF-checked): the same options plus a logo; a download, or inline for preview."""
    try:
        link = await anyio.to_thread.run_sync(load_link, request, viewer, _int_id(request))
    except NotFound:
        return _not_found(request, viewer)
    form = await request.form()
    preview = _truthy(str(form.get("preview") or ""))
    fmt = str(form.get("format") or "png")
    try:
        if fmt not in ("png", "svg"):
            raise qr.QrOptionError("format", "must be png or svg", "qr_format")
        opts = await anyio.to_thread.run_sync(qr_options, qr_fields(form), await _read_logo(form.get("logo")))
        body = await anyio.to_thread.run_sync(render_qr, qr_data(request, link), fmt, opts)
    except qr.QrError as exc:
        if preview:
            return _qr_error_response(exc, viewer.locale)
        params = {**request.query_params, **{k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}}
        return await _render_page(request, viewer, link, params, qr_error_message(exc, viewer.locale))
    return _image_response(body, fmt, link, download=not preview)


@page("analytics:read")
async def clicks_csv(request: Request, viewer: Viewer) -> Response:
    """The link's clicks, streamed; a BOM first so Excel/WPS open the Chinese text as UTF-8."""
    try:
        link = await anyio.to_thread.run_sync(load_link, request, viewer, _int_id(request))
    except NotFound:
        return _not_found(request, viewer)
    try:
        period = parse_period(request.query_params, today_local())
    except BadParam as exc:
        return Response(exc.message(viewer.locale), status_code=422, media_type="text/plain; charset=utf-8")
    f = ClickFilter(viewer.workspace.id, link.id, period.start, period.end, period.include_bots)
    store = runtime_of(request).store

    def rows() -> Iterator[str]:
        yield "\ufeff"
        yield from export_csv(store, f)

    name = f"clicks-{_SAFE_FILENAME.sub('_', link.slug)}-{period.first:%Y%m%d}-{period.last:%Y%m%d}.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )


def _set_archived(request: Request, viewer: Viewer, link_id: int, archived: bool) -> None:
    rt = runtime_of(request)
    with rt.db.session() as db:
        links.update_link(db, rt.link_context(viewer.workspace.id, viewer.user.email), link_id, {"archived": archived})


def _archiver(archived: bool) -> Callable[[Request], Awaitable[Response]]:
    """Archive and restore are the same edit; both need links:write and a CSRF token."""

    @page("links:write")
    async def endpoint(request: Request, viewer: Viewer) -> Response:
        link_id = _int_id(request)
        try:
            if not 1 <= link_id <= MAX_LINK_ID:
                raise NotFound(str(link_id))
            await anyio.to_thread.run_sync(_set_archived, request, viewer, link_id, archived)
        except NotFound:
            return _not_found(request, viewer)
        done = "archived" if archived else "restored"
        return RedirectResponse(f"/console/links/{link_id}?done={done}", status_code=303)

    return endpoint


def routes() -> list[BaseRoute]:
    return [
        Route("/links/{link_id:int}", detail, methods=["GET"]),
        Route("/links/{link_id:int}/qr.{fmt}", qr_image, methods=["GET"]),
        Route("/links/{link_id:int}/qr", qr_with_logo, methods=["POST"]),
        Route("/links/{link_id:int}/clicks.csv", clicks_csv, methods=["GET"]),
        Route("/links/{link_id:int}/archive", _archiver(True), methods=["POST"]),
        Route("/links/{link_id:int}/restore", _archiver(False), methods=["POST"]),
    ]
