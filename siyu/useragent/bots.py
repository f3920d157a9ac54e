"""Is this request a robot or a link-preview fetcher rather than a person?

Bot hits must not count as clicks, must not trigger conversions, and should get the plain redirect
(no interstitial) so previews render. :func:`looks_like_bot` is a handful of substring checks for
the hot path; :func:`is_bot` adds crawlerdetect's ~1,500-pattern regex and is the authority.
"""

from __future__ import annotations

import re
from functools import lru_cache

from crawlerdetect import CrawlerDetect

from siyu.useragent._text import normalize_ua

#: Lower-case markers checked before crawlerdetect: link-preview fetchers and scripted HTTP
#: clients. Most are in crawlerdetect too; listing them keeps the cheap path (and
#: ``device_class``) right for the traffic a short-link service actually sees. Deliberately no
#: bare "bot" — it would match "CUBOT" phones.
BOT_MARKERS: tuple[str, ...] = (
    "bot/",
    "bot;",
    "bot)",
    "bot-",
    "bot ",
    "spider",
    "crawler",
    "+http",
    "facebookexternalhit",
    "facebookcatalog",
    "whatsapp",
    "telegrambot",
    "slackbot",
    "slack-imgproxy",
    "twitterbot",
    "discordbot",
    "linkedinbot",
    "skypeuripreview",
    "preview/",
    "bingbot",
    "googlebot",
    "google-inspectiontool",
    "headlesschrome",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "httpx",
    "go-http-client",
    "okhttp",
    "java/",
    "libwww-perl",
    "node-fetch",
    "axios/",
    "scrapy",
    "postmanruntime",
)

#: ``"bot "`` would flag "CUBOT X30" phones; these words end in "bot " but are devices.
_NOT_BOT_WORDS: tuple[str, ...] = ("cubot",)

#: crawlerdetect costs ~17 µs per character (one huge alternation regex), and its
#: ``[a-z0-9\-_]*(bot|crawl|…)`` pattern is quadratic in the length of a single word: 2 KB of
#: "a1a1…" took ~500 ms. Real UAs are < 700 chars with short words, so we feed it a bounded
#: prefix with over-long words shortened to their head and tail (keeping a "…bot" suffix visible).
_CRAWLERDETECT_MAX_CHARS = 1024
_WORD_KEEP = 32
_LONG_WORD = re.compile(rf"[A-Za-z0-9_\-]{{{2 * _WORD_KEEP + 1},}}")

_detector: CrawlerDetect | None = None


def _crawlerdetect() -> CrawlerDetect:
    # Built lazily: importing this module must stay cheap for the redirect worker.
    global _detector
    if _detector is None:
        _detector = CrawlerDetect()
    return _detector


def _defused(ua: str) -> str:
    """Bound crawlerdetect's input so its regex runs in (near) linear, short time."""
    ua = ua[:_CRAWLERDETECT_MAX_CHARS]
    return _LONG_WORD.sub(lambda m: f"{m[0][:_WORD_KEEP]} {m[0][-_WORD_KEEP:]}", ua)


def _has_marker(low: str) -> bool:
    if not any(m in low for m in BOT_MARKERS):
        return False
    if any(w in low for w in _NOT_BOT_WORDS):
        # Re-check with the device words blanked out, so "CUBOT" alone is not a bot.
        for w in _NOT_BOT_WORDS:
            low = low.replace(w, "")
        return any(m in low for m in BOT_MARKERS)
    return True


@lru_cache(maxsize=4096)
def _looks_like_bot(ua: str) -> bool:
    return not ua or _has_marker(ua.lower())


@lru_cache(maxsize=4096)
def _is_bot_ua(ua: str) -> bool:
    # CrawlerDetect.is_crawler only mutates ``matches`` (unused here), so sharing one instance
    # across threads is fine.
    return _looks_like_bot(ua) or _crawlerdetect().is_crawler(_defused(ua))


def looks_like_bot(ua: str) -> bool:
    """Cheap check: empty UA, preview fetchers, HTTP libraries, "…bot/…", "spider", "+http…".

    May miss obscure crawlers that :func:`is_bot` catches; never flags what ``is_bot`` doesn't.
    """
    return _looks_like_bot(normalize_ua(ua))


def is_bot(ua: str, method: str = "GET") -> bool:
    """True for crawlers, link-preview fetchers and scripts.

    HEAD requests are always previews (WeChat, iMessage and Slack probe links with HEAD using a
    normal-looking UA), and an empty UA is never a real browser.
    """
    if method.upper() == "HEAD":
        return True
    return _is_bot_ua(normalize_ua(ua))
