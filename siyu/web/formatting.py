"""Dates and numbers for people: Asia/Shanghai by default, in the viewer's locale."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Asia/Shanghai"


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def fmt_datetime(value: datetime | None, locale: str, tz: str = DEFAULT_TZ) -> str:
    if value is None:
        return ""
    local = value.astimezone(zone(tz))
    if locale == "zh-CN":
        return local.strftime("%Y-%m-%d %H:%M")
    return local.strftime("%b %d, %Y %H:%M")


def fmt_date(value: datetime | None, locale: str, tz: str = DEFAULT_TZ) -> str:
    if value is None:
        return ""
    local = value.astimezone(zone(tz))
    return local.strftime("%Y-%m-%d") if locale == "zh-CN" else local.strftime("%b %d, %Y")


def fmt_number(value: int | float | None, locale: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"
