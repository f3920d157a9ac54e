"""The redirect hot path as a raw ASGI callable.

Per request: split the path, one dict lookup (cache), a few memoised user-agent checks, the pure
`decide()`, one deque append for the click, and the response. No database, no file, no parsing
beyond that. Misses and password checks go to worker threads.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import parse_qs, quote

import anyio.to_thread

from siyu.clicks.record import RawClick
from siyu.clicks.writer import ClickQueue
from siyu.geo import default_lookup
from siyu.i18n import pick_locale, t
from siyu.links import decide as d
from siyu.links.rules import province_key
from siyu.links.slugs import CUSTOM_SLUG_RE, RESERVED
from siyu.redirect import pages
from siyu.redirect.cache import LinkCache
from siyu.security import verify_password
from siyu.useragent import detect_platform, device_class, is_bot, os_family

VISITOR_COOKIE = "sy_vid"
VISITOR_MAX_AGE = 2 * 365 * 24 * 3600
MAX_FAILED_PASSWORDS = 5
LOCKOUT_SECONDS = 15 * 60
PERMANENT_CACHE_SECONDS = 86_400
_VID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


@lru_cache(maxsize=65536)
def link_path(path: str) -> tuple[str, str] | None:
    """'/abc' -> ('abc', 'link'); '/abc/q' -> ('abc', 'qr'); anything else -> None (not ours)."""
    trigger = "link"
    slug = path[1:]
    if slug.endswith("/q"):
        slug, trigger = slug[:-2], "qr"
    if not slug or len(slug) > 64 or not CUSTOM_SLUG_RE.match(slug) or slug.lower() in RESERVED:
        return None
    return slug, trigger


@lru_cache(maxsize=8192)
def header_safe_url(url: str) -> bytes:
    """Location must be ASCII: percent-encode anything else, leave valid escapes alone."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~").encode("ascii")


def _visitor_id(cookie: bytes) -> str | None:
    idx = cookie.find(b"sy_vid=")
    if idx < 0 or (idx > 0 and cookie[idx - 1 : idx] not in (b" ", b";")):
        return None
    end = cookie.find(b";", idx)
    value = cookie[idx + 7 : end if end >= 0 else None].strip().decode("latin-1")
    if not 8 <= len(value) <= 40 or not _VID_CHARS.issuperset(value):
        return None
    return value


class RedirectApp:
    def __init__(self, cache: LinkCache, clicks: ClickQueue, scheme: str = "https", trust_proxy: bool = False):
        self.cache = cache
        self.clicks = clicks
        self.scheme = scheme
        self.trust_proxy = trust_proxy
        self.failures: dict[tuple[int, str], tuple[int, float]] = {}
        self._secure_cookie = "; Secure" if scheme == "https" else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = link_path(scope["path"])
        assert found is not None, "dispatch only sends link paths here"
        slug, trigger = found
        host = ua = cookie = referrer = accept_language = forwarded = b""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"user-agent":
                ua = value
            elif name == b"cookie":
                cookie = value
            elif name == b"referer":
                referrer = value
            elif name == b"accept-language":
                accept_language = value
            elif name == b"x-forwarded-for":
                forwarded = value
        hostname = host.decode("latin-1").lower()
        link = self.cache.peek(hostname, slug)
        if link is False:
            link = await self.cache.get(hostname, slug)
            if link is None and ":" in hostname:  # dev set-ups: a domain registered without its port
                link = await self.cache.get(hostname.rsplit(":", 1)[0], slug)
        ua_text = ua.decode("latin-1")
        locale = pick_locale(accept_language.decode("latin-1"))
        if link is None:
            await _html(send, 404, pages.message(locale, "not_found"))
            return
        visitor_id = _visitor_id(cookie) if cookie else None
        new_visitor = visitor_id is None
        if new_visitor:
            visitor_id = secrets.token_urlsafe(12)
        platform = detect_platform(ua_text)
        os_name = os_family(ua_text)
        device = device_class(ua_text)
        client = scope.get("client")
        ip = (
            forwarded.split(b",")[0].strip().decode("latin-1")
            if (self.trust_proxy and forwarded)
            else (client[0] if client else "")
        )
        visitor = d.Visitor(platform, os_name, device, visitor_id, _geo(ip) if link.needs_geo else None)
        method = scope["method"]
        query = scope["query_string"].decode("latin-1")
        password_ok = False
        if method == "POST" and link.password_hash:
            verdict = await self._check_password(link, ip, receive)
            if verdict is not True:
                await self._reply_password(send, locale, verdict, visitor_id, new_visitor)
                return
            password_ok = True
        served = self.cache.served.get(link.id, 0) if link.max_clicks is not None else 0
        decision = d.decide(link, visitor, datetime.now(UTC), served, query, password_ok)
        outcome = decision.outcome
        if outcome == d.REDIRECTED and link.max_clicks is not None and not is_bot(ua_text, method):
            self.cache.served[link.id] = served + 1
        self.clicks.put(
            RawClick(
                time.time(),
                link.id,
                link.workspace_id,
                link.hostname,
                link.slug,
                visitor_id,
                new_visitor,
                ip,
                ua_text,
                method,
                referrer.decode("latin-1"),
                trigger,
                outcome,
                query,
                decision.url or "",
                decision.variant,
                platform,
                link.person_ref,
            )
        )
        cookie_header = [(b"set-cookie", self._cookie(visitor_id))] if new_visitor else []
        if outcome == d.REDIRECTED or (outcome == d.EXPIRED and decision.url):
            status = 303 if password_ok else decision.status
            cache = (
                f"public, max-age={PERMANENT_CACHE_SECONDS}".encode()
                if status in (301, 308)
                else b"private, no-cache, no-store, max-age=0"
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"location", header_safe_url(decision.url or "")),
                        (b"cache-control", cache),
                        (b"content-length", b"0"),
                        (b"x-robots-tag", b"noindex"),
                        (b"referrer-policy", b"no-referrer-when-downgrade"),
                        *cookie_header,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if outcome == d.GUIDANCE:
            short_url = f"{self.scheme}://{link.hostname}/{link.slug}"
            body = pages.guidance(locale, platform, os_name, decision.url or "", short_url)
            await _html(send, 200, body, cookie_header)
        elif outcome == d.NOT_ALLOWED:
            await _html(send, 403, pages.not_allowed(locale, platform, device), cookie_header)
        elif outcome == d.PASSWORD:
            await _html(send, 200, pages.password(locale), cookie_header)
        elif outcome == d.EXPIRED:
            await _html(send, 410, pages.message(locale, "expired"), cookie_header)
        else:
            await _html(send, 404, pages.message(locale, "not_found"), cookie_header)

    def _cookie(self, visitor_id: str) -> bytes:
        return (
            f"{VISITOR_COOKIE}={visitor_id}; Max-Age={VISITOR_MAX_AGE}; Path=/; SameSite=Lax; HttpOnly"
            f"{self._secure_cookie}"
        ).encode()

    async def _check_password(self, link: d.CompiledLink, ip: str, receive: Receive) -> bool | str:
        """True when right; otherwise the error kind: 'wrong' or 'locked:<minutes>'."""
        key = (link.id, ip)
        count, until = self.failures.get(key, (0, 0.0))
        now = time.monotonic()
        if until > now:
            return f"locked:{int((until - now) // 60) + 1}"
        body = await _read_body(receive, 4096)
        given = (parse_qs(body.decode("utf-8", "replace")).get("password") or [""])[0]
        ok = bool(given) and await anyio.to_thread.run_sync(verify_password, link.password_hash or "", given)
        if ok:
            self.failures.pop(key, None)
            return True
        count += 1
        if count >= MAX_FAILED_PASSWORDS:
            self.failures[key] = (0, now + LOCKOUT_SECONDS)
            return f"locked:{LOCKOUT_SECONDS // 60}"
        self.failures[key] = (count, 0.0)
        if len(self.failures) > 100_000:
            self.failures.clear()
        return "wrong"

    async def _reply_password(self, send: Send, locale: str, verdict: str, visitor_id: str, new: bool) -> None:
        if verdict.startswith("locked:"):
            error = t("page.password.locked", locale, minutes=verdict.split(":")[1])
            status = 429
        else:
            error, status = t("page.password.wrong", locale), 401
        headers = [(b"set-cookie", self._cookie(visitor_id))] if new else []
        await _html(send, status, pages.password(locale, error), headers)


def _geo(ip: str) -> Callable[[], tuple[str, str]]:
    def lookup() -> tuple[str, str]:
        info = default_lookup().lookup(ip)
        return info.country_code, province_key(info.province)

    return lookup


async def _read_body(receive: Receive, limit: int) -> bytes:
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > limit:
            return b""
    return body


async def _html(send: Send, status: int, body: str, extra: list | None = None) -> None:
    data = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(data)).encode()),
                (b"cache-control", b"private, no-store"),
                (b"x-robots-tag", b"noindex"),
                (b"x-content-type-options", b"nosniff"),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
