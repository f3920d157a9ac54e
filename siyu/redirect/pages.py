"""Visitor-facing pages of the redirect: guidance (防红), not allowed, expired, password, not found."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

import siyu.redirect.messages  # noqa: F401  (registers the page texts)
from siyu.i18n import t
from siyu.useragent import PLATFORMS

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    auto_reload=False,
)


def platform_name(code: str, locale: str) -> str:
    info = PLATFORMS.get(code)
    if info is None or code == "none":
        return t("platform.browser", locale)
    return info.name_zh if locale == "zh-CN" else info.name_en


def guidance(locale: str, platform: str, os_family: str, destination: str, short_url: str) -> str:
    if os_family == "ios":
        step = t("page.guidance.ios", locale)
    elif os_family in ("android", "harmonyos"):
        step = t("page.guidance.android", locale)
    elif os_family in ("windows", "macos", "linux"):
        step = t("page.guidance.desktop", locale)
    else:
        step = t("page.guidance.other", locale)
    return _env.get_template("guidance.html").render(
        locale=locale,
        title=t("page.guidance.title", locale),
        lead=t("page.guidance.lead", locale, platform=platform_name(platform, locale)),
        step=step,
        destination_label=t("page.guidance.destination", locale),
        destination=destination,
        short_url=short_url,
        copy=t("page.guidance.copy", locale),
        copied=t("page.guidance.copied", locale),
        arrow=os_family in ("ios", "android", "harmonyos"),
    )


def message(locale: str, kind: str, hint: str = "") -> str:
    return _env.get_template("message.html").render(
        locale=locale, title=t(f"page.{kind}.title", locale), lead=t(f"page.{kind}.lead", locale), hint=hint
    )


def not_allowed(locale: str, platform: str, device: str) -> str:
    where = platform_name(platform, locale) if platform != "none" else t("platform.browser", locale)
    return message(locale, "not_allowed", t("page.not_allowed.hint", locale, platform=where))


def password(locale: str, error: str = "") -> str:
    return _env.get_template("password.html").render(
        locale=locale,
        title=t("page.password.title", locale),
        label=t("page.password.label", locale),
        submit=t("page.password.submit", locale),
        error=error,
    )
