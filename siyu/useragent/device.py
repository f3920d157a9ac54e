"""Cheap OS / device-class classification for routing in the redirect hot path.

Pure substring checks on the lower-cased UA (no regex, memoised), good enough to pick an App
Store vs. Play Store target or a mobile vs. desktop landing page. Use
:func:`siyu.useragent.parse.parse_user_agent` when you need versions, brand and model.

Known limitations:

* iPadOS 13+ Safari (and Chrome/Edge on iPad, by default) sends a *desktop* Mac UA
  ("Macintosh; Intel Mac OS X 10_15_7"), so such iPads classify as ``macos`` / ``desktop``. The
  UA alone cannot tell them apart; only client-side ``navigator.maxTouchPoints > 1`` can.
  In-app webviews on iPad (WeChat, QQ, …) usually still say "iPad" and are classified correctly.
* HarmonyOS 2–4 phones run Android apps; their in-app webviews often say only "Android", so
  those report ``android``. Only UAs mentioning HarmonyOS / OpenHarmony report ``harmonyos``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from siyu.useragent._text import normalize_ua
from siyu.useragent.bots import looks_like_bot

OsFamily = Literal["ios", "android", "harmonyos", "windows", "macos", "linux", "other"]
DeviceClass = Literal["mobile", "tablet", "desktop", "bot", "other"]


@lru_cache(maxsize=4096)
def _os_family(ua: str) -> OsFamily:
    low = ua.lower()
    # HarmonyOS 2-4 UAs also contain "Android"; HarmonyOS NEXT says "OpenHarmony".
    if "harmonyos" in low or "openharmony" in low:
        return "harmonyos"
    # "like Mac OS X" is iOS/iPadOS; a real Mac says "Mac OS X" without "like".
    if "iphone" in low or "ipad" in low or "ipod" in low or "like mac os x" in low:
        return "ios"
    if "android" in low:
        return "android"
    if "windows" in low:
        return "windows"
    if "macintosh" in low or "mac os x" in low:
        return "macos"
    # ChromeOS ("CrOS") is reported as linux: same routing (desktop, no app store we target).
    if "linux" in low or "x11" in low or "cros" in low:
        return "linux"
    return "other"


@lru_cache(maxsize=4096)
def _device_class(ua: str) -> DeviceClass:
    if looks_like_bot(ua):
        return "bot"
    low = ua.lower()
    if "ipad" in low or "(tablet;" in low or "tablet;" in low:
        return "tablet"
    if "iphone" in low or "ipod" in low or "(phone;" in low or "windows phone" in low:
        return "mobile"
    if "android" in low:
        # Google's convention: Android phones say "Mobile", tablets don't.
        return "mobile" if "mobile" in low else "tablet"
    if "openharmony" in low and "mobile" in low:
        return "mobile"
    if any(t in low for t in ("windows nt", "macintosh", "x11", "cros", "linux", "(pc;")):
        return "desktop"
    if "mobile" in low:
        return "mobile"
    return "other"


def os_family(ua: str) -> OsFamily:
    """Return ``ios``, ``android``, ``harmonyos``, ``windows``, ``macos``, ``linux`` or ``other``."""
    return _os_family(normalize_ua(ua))


def device_class(ua: str) -> DeviceClass:
    """Return ``mobile``, ``tablet``, ``desktop``, ``bot`` (cheap markers only — see
    :func:`siyu.useragent.bots.is_bot` for the authoritative check) or ``other`` (unrecognised)."""
    return _device_class(normalize_ua(ua))
