"""One translation mechanism for every page: zh-CN first, English second.

Catalogues are plain dicts (key -> text); `t(key, locale, **kw)` formats with str.format.
"""

from __future__ import annotations

from functools import lru_cache

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"

CATALOG: dict[str, dict[str, str]] = {}


def register(messages: dict[str, tuple[str, str]]) -> None:
    """Add messages as {key: (zh-CN text, English text)}; packages call this at import."""
    for key, (zh, en) in messages.items():
        CATALOG[key] = {"zh-CN": zh, "en": en}


def t(key: str, locale: str = DEFAULT_LOCALE, **kwargs: object) -> str:
    entry = CATALOG.get(key)
    text = key if entry is None else entry.get(locale) or entry[DEFAULT_LOCALE]
    return text.format(**kwargs) if kwargs else text


@lru_cache(maxsize=512)
def pick_locale(accept_language: str | None, explicit: str | None = None) -> str:
    """An explicit choice (cookie/param) wins; otherwise the browser's first zh or en preference."""
    if explicit in LOCALES:
        return explicit  # type: ignore[return-value]
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE
