"""The redirect hot path as a raw ASGI callable.

Per request: split the path, one dict lookup (cache), a few memoised user-agent checks, the pure
`decide()`, one deque append for the click, and the response. No database, no file, no parsing
beyond that. Misses and password checks go to worker threads.
"""

from __future__ import annotations

import base64
import dataclasses
import os
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
from siyu.throttle import FailureLimiter
from siyu.useragent import MAX_UA_LENGTH, detect_platform, device_class, is_bot, os_family

VISITOR_COOKIE = "sy_vid"
VISITOR_MAX_AGE = 2 * 365 * 24 * 3600
MAX_FAILED_PASSWORDS = 5
LOCKOUT_SECONDS = 15 * 60
PERMANENT_CACHE_SECONDS = 86_400
_VID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_REDIRECT_CACHE = b"private, no-cache, no-store, max-age=0"
# `private`: the response sets a visitor cookie and can differ per visitor (rules, A/B, 防红), so only
# the visitor's own browser may keep it.
_PERMANENT_CACHE = f"private, max-age={PERMANENT_CACHE_SECONDS}".encode()
_VISITOR_ID_BATCH = 256
_DECISION_MEMO_MAX = 50_000

# What `decide()` reads, as of this writing. A link qualifies for the decision memo only if its
# outcome can depend on nothing but (platform, OS, device, query): no A/B variants (visitor id), no
# geo rules, no expiry (time), no click limit, no password. If CompiledLink grows a field, the memo
# switches itself off until someone checks `decide()` again and extends this list.
_DECIDE_LINK_FIELDS = frozenset(
    {
        "id",
        "workspace_id",
        "hostname",
        "slug",
        "destination_url",
        "redirect_status",
        "forward_query",
        "utm",
        "expires_at",
        "max_clicks",
        "fallback_url",
        "password_hash",
        "rules",
        "variants",
        "anti_block",
        "allowed",
        "blocked",
        "archived",
        "person_ref",
        "title",
        "needs_geo",
    }
)
_VISITOR_ONLY_RULE_KEYS = frozenset({"os", "device", "platform"})
_DECISION_MEMO_ON = {f.name for f in dataclasses.fields(d.CompiledLink)} == _DECIDE_LINK_FIELDS


def _memoisable(link: d.CompiledLink) -> bool:
    """True when decide() for this link is a function of (platform, OS, device, query) alone."""
    return (
        _DECISION_MEMO_ON
        and not link.variants
        and not link.needs_geo
        and link.expires_at is None
        and link.max_clicks is None
        and not link.password_hash
        and all(_VISITOR_ONLY_RULE_KEYS.issuperset(when) for when, _ in link.rules)
    )


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


_visitor_ids: list[str] = []


def _new_visitor_id() -> str:
    """Same as ``secrets.token_urlsafe(12)`` (12 bytes of os.urandom, 16 URL-safe characters), but
    drawn from a batch: one urandom call and one base64 encoding per 256 new visitors."""
    if not _visitor_ids:
        text = base64.urlsafe_b64encode(os.urandom(12 * _VISITOR_ID_BATCH)).decode("ascii")
        _visitor_ids.extend(text[i : i + 16] for i in range(0, 16 * _VISITOR_ID_BATCH, 16))
    return _visitor_ids.pop()


@lru_cache(maxsize=4096)
def _classify_cached(ua: str) -> tuple[str, str, str]:
    return detect_platform(ua), os_family(ua), device_class(ua)


def _classify(ua: str) -> tuple[str, str, str]:
    """(platform, OS family, device class): one memo lookup instead of three normalise+lookup rounds."""
    if len(ua) > MAX_UA_LENGTH:  # don't let huge junk headers occupy (and bloat) the memo
        return detect_platform(ua), os_family(ua), device_class(ua)
    return _classify_cached(ua)


@lru_cache(maxsize=2048)
def _page(render: Callable[..., str], *args: str) -> bytes:
    """A rendered visitor page, encoded. Pages are pure functions of their arguments (locale,
    platform, destination…), and re-rendering a Jinja template per visit costs more than the rest
    of the redirect together (WeChat visits of a 防红 link all get the guidance page)."""
    return render(*args).encode()


def _visitor_id(cookie: bytes) -> str | None:
    idx = cookie.find(b"sy_vid=")
    while idx > 0 and cookie[idx - 1 : idx] not in (b" ", b";"):  # e.g. 'other_sy_vid=': keep looking
        idx = cookie.find(b"sy_vid=", idx + 7)
    if idx < 0:
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
        self.password_limiter = FailureLimiter(MAX_FAILED_PASSWORDS, LOCKOUT_SECONDS)
        self._secure_cookie = "; Secure" if scheme == "https" else ""
        # (id(link), platform, os, device, query) -> (link, decision); see _memoisable(). The link
        # is kept in the value and compared by identity: a reloaded link is a new object (and id).
        self._decisions: dict[tuple[int, str, str, str, str], tuple[d.CompiledLink, d.Decision]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = link_path(scope["path"])
        assert found is not None, "dispatch only sends link paths here"
        slug, trigger = found
        headers = dict(scope["headers"])  # like the old loop: the last of repeated headers wins
        host = headers.get(b"host", b"")
        ua = headers.get(b"user-agent", b"")
        cookie = headers.get(b"cookie", b"")
        referrer = headers.get(b"referer", b"")
        accept_language = headers.get(b"accept-language", b"")
        forwarded = headers.get(b"x-forwarded-for", b"")
        hostname = host.decode("latin-1").lower()
        link = self.cache.peek(hostname, slug)
        if link is False:
            link = await self.cache.get(hostname, slug)
        ua_text = ua.decode("latin-1")
        locale = pick_locale(accept_language.decode("latin-1"))
        if link is None:
            await _html(send, 404, _page(pages.message, locale, "not_found"))
            return
        visitor_id = _visitor_id(cookie) if cookie else None
        new_visitor = visitor_id is None
        if new_visitor:
            visitor_id = _new_visitor_id()
        platform, os_name, device = _classify(ua_text)
        client = scope.get("client")
        ip = (
            forwarded.split(b",")[0].strip().decode("latin-1")
            if (self.trust_proxy and forwarded)
            else (client[0] if client else "")
        )
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
        memo_key = (id(link), platform, os_name, device, query)
        memo = self._decisions.get(memo_key)
        if memo is not None and memo[0] is link:
            decision = memo[1]
        else:
            visitor = d.Visitor(platform, os_name, device, visitor_id, _geo(ip) if link.needs_geo else None)
            decision = d.decide(link, visitor, datetime.now(UTC), served, query, password_ok)
            if not password_ok and _memoisable(link):
                if len(self._decisions) >= _DECISION_MEMO_MAX:
                    self._decisions.clear()
                self._decisions[memo_key] = (link, decision)
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
            cache = _PERMANENT_CACHE if status in (301, 308) else _REDIRECT_CACHE
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
            # A password-protected destination is revealed only after the password, in the browser.
            shown = "" if link.password_hash else decision.url or ""
            body = _page(pages.guidance, locale, platform, os_name, shown, short_url)
            await _html(send, 200, body, cookie_header)
        elif outcome == d.NOT_ALLOWED:
            await _html(send, 403, _page(pages.not_allowed, locale, platform, device), cookie_header)
        elif outcome == d.PASSWORD:
            await _html(send, 200, _page(pages.password, locale), cookie_header)
        elif outcome == d.EXPIRED:
            await _html(send, 410, _page(pages.message, locale, "expired"), cookie_header)
        else:
            await _html(send, 404, _page(pages.message, locale, "not_found"), cookie_header)

    def _cookie(self, visitor_id: str) -> bytes:
        return (
            f"{VISITOR_COOKIE}={visitor_id}; Max-Age={VISITOR_MAX_AGE}; Path=/; SameSite=Lax; HttpOnly"
            f"{self._secure_cookie}"
        ).encode()

    async def _check_password(self, link: d.CompiledLink, ip: str, receive: Receive) -> bool | str:
        """True when right; otherwise the error kind: 'wrong' or 'locked:<minutes>'."""
        key = (link.id, ip)
        left = self.password_limiter.locked_for(key)
        if left:
            return f"locked:{(left - 1) // 60 + 1}"
        body = await _read_body(receive, 4096)
        given = (parse_qs(body.decode("utf-8", "replace")).get("password") or [""])[0]
        ok = bool(given) and await anyio.to_thread.run_sync(verify_password, link.password_hash or "", given)
        if ok:
            self.password_limiter.reset(key)
            return True
        locked = self.password_limiter.fail(key)
        return f"locked:{locked // 60}" if locked else "wrong"

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


async def _html(send: Send, status: int, body: str | bytes, extra: list | None = None) -> None:
    data = body if isinstance(body, bytes) else body.encode()
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
