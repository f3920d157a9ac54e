"""Input hygiene shared by every classifier in this package.

User agents are attacker-controlled header values: they can be empty, huge, or contain lone
surrogates (from ``surrogateescape`` decoding) that crash the Rust-backed parser. Everything is
funnelled through :func:`normalize_ua` so the caches below are keyed on bounded, clean strings.
"""

from __future__ import annotations

#: Longest UA prefix we look at. Real UAs (even WeCom desktop's doubled one) stay under ~700
#: characters; the cap bounds both regex time and the memory held by the LRU caches when a client
#: floods us with unique multi-kilobyte UAs. Tokens beyond this prefix are ignored.
MAX_UA_LENGTH = 2048


def normalize_ua(ua: str | None) -> str:
    """Strip, truncate to :data:`MAX_UA_LENGTH` and drop characters UTF-8 cannot encode."""
    if not ua:
        return ""
    ua = ua[:MAX_UA_LENGTH].strip()
    if not ua.isascii():
        ua = ua.encode("utf-8", "replace").decode("utf-8")
    return ua
