"""A person's timeline: every event and short-link click, newest first, each with a sentence.

The sentence is what an operator reads in the profile 360 page ("点击短链 /coffee（微信）",
"完成订单 A1001，¥128.00"), in Chinese or English; the raw fields come along for programs.
"""

from __future__ import annotations

from typing import Any

from siyu.i18n import CATALOG, register, t
from siyu.useragent import PLATFORMS

register(
    {
        "profile.tl.click": ("点击短链 /{slug}", "Clicked short link /{slug}"),
        "profile.tl.click_in": ("点击短链 /{slug}（{platform}）", "Clicked short link /{slug} ({platform})"),
        "profile.tl.outcome.guidance": ("，显示防红引导页", "; shown the open-in-browser page"),
        "profile.tl.outcome.not_allowed": ("，不允许访问", "; not allowed here"),
        "profile.tl.outcome.password": ("，等待输入密码", "; asked for the password"),
        "profile.tl.outcome.expired": ("，链接已失效", "; the link had expired"),
        "profile.tl.outcome.not_found": ("，链接已归档", "; the link was archived"),
        "profile.tl.identify": ("更新资料：{keys}", "Profile updated: {keys}"),
        "profile.tl.identify_empty": ("识别身份", "Identified"),
        "profile.tl.page": ("浏览页面 {what}", "Viewed page {what}"),
        "profile.tl.screen": ("浏览屏幕 {what}", "Viewed screen {what}"),
        "profile.tl.group": ("加入群组 {what}", "Joined group {what}"),
        "profile.tl.alias": ("关联身份 {what}", "Linked identity {what}"),
        "profile.tl.track": ("事件：{what}", "Event: {what}"),
        "profile.tl.order": ("完成订单{order}", "Order{order} completed"),
        "profile.tl.amount": ("，{amount}", ": {amount}"),
        "profile.tl.Product Viewed": ("浏览商品 {name}", "Viewed product {name}"),
        "profile.tl.Product Added": ("加入购物车 {name}", "Added to cart: {name}"),
        "profile.tl.Checkout Started": ("开始结算", "Started checkout"),
        "profile.tl.Signed Up": ("注册", "Signed up"),
        "profile.tl.Signed In": ("登录", "Signed in"),
        "profile.tl.Coupon Applied": ("使用优惠券 {name}", "Applied coupon {name}"),
        "profile.tl.list_sep": ("、", ", "),
    }
)
CURRENCY_SIGNS = {"CNY": "¥", "RMB": "¥", "USD": "$", "EUR": "€", "HKD": "HK$", "JPY": "JP¥", "GBP": "£"}
MAX_KEYS_SHOWN = 6


def money(amount: Any, currency: Any) -> str:
    """¥128.00 (CNY is the default: Siyu's brands sell in China)."""
    code = currency.upper() if isinstance(currency, str) and currency else "CNY"
    sign = CURRENCY_SIGNS.get(code)
    return f"{sign}{amount:,.2f}" if sign else f"{amount:,.2f} {code}"


def _platform(code: str | None, locale: str) -> str | None:
    info = PLATFORMS.get(code or "")
    if info is None or not info.in_app:
        return None
    return info.name_zh if locale == "zh-CN" else info.name_en


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any, limit: int = 80) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarize(item: dict[str, Any], locale: str) -> str:
    """One sentence for a timeline row (see `history.timeline_rows` for its fields)."""

    def tr(key: str, **kw: Any) -> str:
        return t(key, locale, **kw)

    if item["kind"] == "click":
        platform = _platform(item.get("platform"), locale)
        slug = item.get("slug") or ""
        text = (
            tr("profile.tl.click_in", slug=slug, platform=platform) if platform else tr("profile.tl.click", slug=slug)
        )
        outcome = item.get("outcome")
        if outcome and f"profile.tl.outcome.{outcome}" in CATALOG:
            text += tr(f"profile.tl.outcome.{outcome}")
        return text
    kind = item.get("type")
    props = item.get("properties") or {}
    if kind == "identify":
        keys = sorted({**(item.get("context_traits") or {}), **(item.get("traits") or {})})
        if not keys:
            return tr("profile.tl.identify_empty")
        shown = tr("profile.tl.list_sep").join(keys[:MAX_KEYS_SHOWN]) + ("…" if len(keys) > MAX_KEYS_SHOWN else "")
        return tr("profile.tl.identify", keys=shown)
    if kind == "page":
        return tr("profile.tl.page", what=_text(item.get("page_title") or item.get("name") or item.get("page_path")))
    if kind == "screen":
        return tr("profile.tl.screen", what=_text(item.get("name")))
    if kind == "group":
        return tr("profile.tl.group", what=_text(item.get("group_id")))
    if kind == "alias":
        return tr("profile.tl.alias", what=_text(item.get("previous_id")))
    event = item.get("event") or ""
    if event == "Order Completed":
        order = _text(props.get("order_id"), 40)
        text = tr("profile.tl.order", order=f" {order}" if order else "")
        amount = _number(props.get("revenue"))
        amount = _number(props.get("total")) if amount is None else amount
        if amount is not None:
            text += tr("profile.tl.amount", amount=money(amount, props.get("currency")))
        return text
    if f"profile.tl.{event}" in CATALOG:
        return tr(f"profile.tl.{event}", name=_text(props.get("name") or props.get("coupon_name") or "")).strip()
    return tr("profile.tl.track", what=_text(event))


def timeline_item(row: dict[str, Any], sources: dict[int, dict[str, Any]], locale: str) -> dict[str, Any]:
    """A timeline row as the API and console show it: when, where from, what, in a sentence."""
    source = sources.get(row["source_id"]) if row.get("source_id") is not None else None
    if row["kind"] == "click":
        source_kind, source_name = "short_links", None
        details = {k: row.get(k) for k in ("slug", "hostname", "destination", "platform", "trigger", "outcome")}
        details["link_id"] = row.get("link_id")
    else:
        source_kind = source["kind"] if source else None
        source_name = source["name"] if source else None
        details = {
            "properties": row.get("properties") or {},
            "traits": {**(row.get("context_traits") or {}), **(row.get("traits") or {})},
            "page": {k: row.get(f"page_{k}") for k in ("path", "title", "url") if row.get(f"page_{k}")},
        }
    return {
        "kind": row["kind"],
        "event_id": row["event_id"],
        "timestamp": row["timestamp"],
        "type": row.get("type") or ("track" if row["kind"] == "click" else None),
        "event": row.get("event") or ("Short Link Clicked" if row["kind"] == "click" else None),
        "source_id": row.get("source_id"),
        "source_kind": source_kind,
        "source_name": source_name,
        "summary": summarize(row, locale),
        "details": details,
    }
