"""Full user-agent parsing for the click ingester (off the redirect hot path).

Wraps ua-parser 1.x (``ua_parser.parse``), which automatically uses the ``ua-parser-rs`` Rust
resolver when installed (``ua_parser.BestAvailableResolver``), and folds in our own platform, OS
and bot classification so analytics and routing agree on the same codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import ua_parser

from siyu.useragent._text import normalize_ua
from siyu.useragent.bots import is_bot
from siyu.useragent.device import OsFamily, _device_class, _os_family
from siyu.useragent.platforms import detect_platform_details

#: ua-parser's display name per our OS code, used when ua-parser itself has no answer or reports
#: HarmonyOS as the Android it is compatible with.
_OS_DISPLAY: dict[str, str] = {
    "ios": "iOS",
    "android": "Android",
    "harmonyos": "HarmonyOS",
    "windows": "Windows",
    "macos": "Mac OS X",
    "linux": "Linux",
    "other": "Other",
}


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """Everything we store about a click's user agent.

    ``browser``/``os`` are ua-parser display names ("Other" if unknown) and may change with
    ua-parser's regex updates; ``os_family``, ``device_type`` and ``platform`` are our stable codes.
    """

    browser: str
    browser_version: str | None
    os: str
    os_version: str | None
    device_brand: str | None
    device_model: str | None
    device_type: str  # mobile | tablet | desktop | bot | other
    platform: str  # a key of siyu.useragent.platforms.PLATFORMS
    is_bot: bool
    os_family: OsFamily = "other"
    mini_program: bool = False
    desktop_client: bool = False


def _version(*parts: str | None) -> str | None:
    """Join leading non-empty version parts: ("8", "0", None) -> "8.0"."""
    out: list[str] = []
    for p in parts:
        if not p:
            break
        out.append(p)
    return ".".join(out) or None


def _openharmony_version(ua: str) -> str | None:
    """Version from "(Phone; OpenHarmony 5.0)"; ua-parser has no OpenHarmony rule yet."""
    i = ua.find("OpenHarmony ")
    if i < 0:
        return None
    j = k = i + len("OpenHarmony ")
    while k < len(ua) and (ua[k].isdigit() or ua[k] == "."):
        k += 1
    return ua[j:k].strip(".") or None


@lru_cache(maxsize=16384)
def _parse(ua: str) -> UserAgentInfo:
    result = ua_parser.parse(ua)
    browser = result.user_agent
    osr = result.os
    dev = result.device

    family = _os_family(ua)
    os_name = osr.family if osr else _OS_DISPLAY[family]
    os_version = _version(osr.major, osr.minor, osr.patch, osr.patch_minor) if osr else None
    if family == "harmonyos" and (osr is None or osr.family != "HarmonyOS"):
        # HarmonyOS 2-4 pose as "Android 10" (a version that says nothing about HarmonyOS);
        # NEXT's "OpenHarmony 5.0" has no ua-parser rule yet.
        os_name, os_version = "HarmonyOS", _openharmony_version(ua)

    bot = is_bot(ua) or (dev is not None and dev.family == "Spider")
    device_type = "bot" if bot else _device_class(ua)
    if device_type == "other" and dev is not None:
        if dev.family == "iPad":
            device_type = "tablet"
        elif dev.family in {"iPhone", "Generic Smartphone"}:
            device_type = "mobile"

    pm = detect_platform_details(ua)
    return UserAgentInfo(
        browser=browser.family if browser else "Other",
        browser_version=_version(browser.major, browser.minor, browser.patch) if browser else None,
        os=os_name,
        os_version=os_version,
        device_brand=dev.brand if dev else None,
        device_model=dev.model if dev else None,
        device_type=device_type,
        platform=pm.platform,
        is_bot=bot,
        os_family=family,
        mini_program=pm.mini_program,
        desktop_client=pm.desktop_client,
    )


def parse_user_agent(ua: str) -> UserAgentInfo:
    """Parse ``ua`` into a :class:`UserAgentInfo` (memoised; ~1 ms uncached with ua-parser-rs)."""
    return _parse(normalize_ua(ua))
