"""The redirect hot path: raw ASGI (tests, any ASGI server) and Granian's RSGI (`siyu serve`).

Under `siyu serve` a cached link is answered by Granian's own thread (`respond_now`, see
`siyu.rsgi.install_fast_path`); what must wait goes through the event loop (`respond`).

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
_REDIRECT_CACHE = "private, no-cache, no-store, max-age=0"
# `private`: the response sets a visitor cookie and can differ per visitor (rules, A/B, 防红), so only
# the visitor's own browser may keep it.
_PERMANENT_CACHE = f"private, max-age={PERMANENT_CACHE_SECONDS}"
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
        "pass_visitor_id",  # not read by decide(): the redirect appends the visitor id afterwards
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
def header_safe_url(url: str) -> str:
    """Location must be ASCII: percent-encode anything else, leave valid escapes alone."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~")


def with_visitor_id(url: str, visitor_id: str) -> str:
    """`url` with `sy_vid=<visitor id>` added to its query (before any #fragment); ids are URL-safe."""
    base, hash_mark, fragment = url.partition("#")
    return f"{base}{'&' if '?' in base else '?'}{VISITOR_COOKIE}={visitor_id}{hash_mark}{fragment}"


_visitor_ids: list[str] = []


def _new_visitor_id() -> str:
    """Same as ``secrets.token_urlsafe(12)`` (12 bytes of os.urandom, 16 URL-safe characters), but
    drawn from a batch: one urandom call and one base64 encoding per 256 new visitors. Safe when
    Granian's thread and the event loop both take ids (pop is atomic; an empty batch is refilled)."""
    while True:
        try:
            return _visitor_ids.pop()
        except IndexError:
            text = base64.urlsafe_b64encode(os.urandom(12 * _VISITOR_ID_BATCH)).decode("ascii")
            _visitor_ids.extend(text[i : i + 16] for i in range(0, 16 * _VISITOR_ID_BATCH, 16))


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


def _visitor_id(cookie: str) -> str | None:
    idx = cookie.find("sy_vid=")
    while idx > 0 and cookie[idx - 1] not in " ;":  # e.g. 'other_sy_vid=': keep looking
        idx = cookie.find("sy_vid=", idx + 7)
    if idx < 0:
        return None
    end = cookie.find(";", idx)
    value = cookie[idx + 7 : end if end >= 0 else None].strip()
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
        """ASGI (tests, uvicorn): the same `respond()` as the RSGI path `siyu serve` uses."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}  # last one wins
        client = scope.get("client")

        async def read_body(limit: int) -> bytes:
            return await _read_body(receive, limit)

        status, out, body = await self.respond(
            scope["method"],
            scope["path"],
            scope["query_string"].decode("latin-1"),
            headers.get,
            client[0] if client else "",
            read_body,
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    *((k.encode("latin-1"), v.encode("latin-1")) for k, v in out),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def rsgi(self, scope, proto) -> None:
        """Granian's RSGI (`siyu serve`): no ASGI messages, header lookups done in Rust, one call to reply.

        Measured under wrk, the ASGI header list and the two awaited `send`s were a quarter of
        the event loop's time per redirect."""
        headers = scope.headers

        async def read_body(limit: int) -> bytes:
            return await _read_rsgi_body(proto, headers, limit)

        _send_rsgi(
            proto,
            await self.respond(
                scope.method, scope.path, scope.query_string, headers.get, _client_ip(scope.client), read_body
            ),
        )

    async def respond(
        self,
        method: str,
        path: str,
        query: str,
        header: Callable[[str, str], str],
        client_ip: str,
        read_body: Callable[[int], Awaitable[bytes]],
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One visit: (status, headers, body). `header(name, default)` reads a request header."""
        found = link_path(path)
        assert found is not None, "dispatch only sends link paths here"
        slug, trigger = found
        hostname = header("host", "").lower()
        link = self.cache.peek(hostname, slug)
        if link is False:
            link = await self.cache.get(hostname, slug)
        password_ok = False
        if link is not None and method == "POST" and link.password_hash:
            ip = self._ip(header, client_ip)
            verdict = await self._check_password(link, ip, read_body)
            if verdict is not True:
                visitor_id, new_visitor = self._visitor(header)
                locale = pick_locale(header("accept-language", ""))
                return self._password_reply(locale, verdict, visitor_id, new_visitor)
            password_ok = True
        return self._answer(link, trigger, method, query, header, client_ip, password_ok)

    def respond_now(
        self, method: str, path: str, query: str, header: Callable[[str, str], str], client_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """`respond()` without waiting, or None when the visit has to wait: a link that is not cached
        yet (database), a password form post (body, hashing in a thread), or a link with a click
        limit (its counter is kept by the event loop alone). Used by the Granian fast path (see
        `siyu.rsgi.install_fast_path`), which may call it from Granian's own thread."""
        found = link_path(path)
        if found is None:
            return None
        slug, trigger = found
        link = self.cache.peek(header("host", "").lower(), slug)
        if link is False or (
            link is not None and (link.max_clicks is not None or (method == "POST" and link.password_hash))
        ):
            return None
        return self._answer(link, trigger, method, query, header, client_ip, False)

    def rsgi_now(self, scope, proto) -> bool:
        """`rsgi()` when the visit can be answered at once (see `respond_now`); False otherwise."""
        answer = self.respond_now(
            scope.method, scope.path, scope.query_string, scope.headers.get, _client_ip(scope.client)
        )
        if answer is None:
            return False
        _send_rsgi(proto, answer)
        return True

    def _ip(self, header: Callable[[str, str], str], client_ip: str) -> str:
        forwarded = header("x-forwarded-for", "") if self.trust_proxy else ""
        return forwarded.split(",")[0].strip() if forwarded else client_ip

    @staticmethod
    def _visitor(header: Callable[[str, str], str]) -> tuple[str, bool]:
        """(visitor id, new?): the sy_vid cookie's, or a new one."""
        cookie = header("cookie", "")
        visitor_id = _visitor_id(cookie) if cookie else None
        if visitor_id is None:
            return _new_visitor_id(), True
        return visitor_id, False

    def _answer(
        self,
        link: d.CompiledLink | None,
        trigger: str,
        method: str,
        query: str,
        header: Callable[[str, str], str],
        client_ip: str,
        password_ok: bool,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Decide, record the click, build the reply: nothing here waits."""
        ua_text = header("user-agent", "")
        locale = pick_locale(header("accept-language", ""))
        if link is None:
            return _html(404, _page(pages.message, locale, "not_found"))
        visitor_id, new_visitor = self._visitor(header)
        platform, os_name, device = _classify(ua_text)
        ip = self._ip(header, client_ip)
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
        # A plain tuple in RawClick's field order, not a RawClick: tuples of atoms drop out of the
        # cyclic GC at their first collection (namedtuple instances never do), and a queue of
        # tracked clicks made full collections frequent and slow (10-40 ms stalls under load).
        self.clicks.put(
            (
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
                header("referer", ""),
                trigger,
                outcome,
                query,
                decision.url or "",
                decision.variant,
                platform,
                link.person_ref,
            )
        )
        cookie_header = [("set-cookie", self._cookie(visitor_id))] if new_visitor else []
        if outcome == d.REDIRECTED or (outcome == d.EXPIRED and decision.url):
            status = 303 if password_ok else decision.status
            location = header_safe_url(decision.url or "")
            if link.pass_visitor_id and outcome == d.REDIRECTED:
                location = with_visitor_id(location, visitor_id)
            return (
                status,
                [
                    ("location", location),
                    ("cache-control", _PERMANENT_CACHE if status in (301, 308) else _REDIRECT_CACHE),
                    ("x-robots-tag", "noindex"),
                    ("referrer-policy", "no-referrer-when-downgrade"),
                    *cookie_header,
                ],
                b"",
            )
        if outcome == d.GUIDANCE:
            short_url = f"{self.scheme}://{link.hostname}/{link.slug}"
            # A password-protected destination is revealed only after the password, in the browser.
            shown = "" if link.password_hash else decision.url or ""
            return _html(200, _page(pages.guidance, locale, platform, os_name, shown, short_url), cookie_header)
        if outcome == d.NOT_ALLOWED:
            return _html(403, _page(pages.not_allowed, locale, platform, device), cookie_header)
        if outcome == d.PASSWORD:
            return _html(200, _page(pages.password, locale), cookie_header)
        if outcome == d.EXPIRED:
            return _html(410, _page(pages.message, locale, "expired"), cookie_header)
        return _html(404, _page(pages.message, locale, "not_found"), cookie_header)

    def _cookie(self, visitor_id: str) -> str:
        return (
            f"{VISITOR_COOKIE}={visitor_id}; Max-Age={VISITOR_MAX_AGE}; Path=/; SameSite=Lax; HttpOnly"
            f"{self._secure_cookie}"
        )

    async def _check_password(
        self, link: d.CompiledLink, ip: str, read_body: Callable[[int], Awaitable[bytes]]
    ) -> bool | str:
        """True when right; otherwise the error kind: 'wrong' or 'locked:<minutes>'."""
        key = (link.id, ip)
        left = self.password_limiter.locked_for(key)
        if left:
            return f"locked:{(left - 1) // 60 + 1}"
        body = await read_body(4096)
        given = (parse_qs(body.decode("utf-8", "replace")).get("password") or [""])[0]
        ok = bool(given) and await anyio.to_thread.run_sync(verify_password, link.password_hash or "", given)
        if ok:
            self.password_limiter.reset(key)
            return True
        locked = self.password_limiter.fail(key)
        return f"locked:{locked // 60}" if locked else "wrong"

    def _password_reply(
        self, locale: str, verdict: str, visitor_id: str, new: bool
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if verdict.startswith("locked:"):
            error = t("page.password.locked", locale, minutes=verdict.split(":")[1])
            status = 429
        else:
            error, status = t("page.password.wrong", locale), 401
        headers = [("set-cookie", self._cookie(visitor_id))] if new else []
        return _html(status, pages.password(locale, error).encode(), headers)


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


def _html(status: int, body: bytes, extra: list | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    return (
        status,
        [
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "private, no-store"),
            ("x-robots-tag", "noindex"),
            ("x-content-type-options", "nosniff"),
            *(extra or ()),
        ],
        body,
    )


def _send_rsgi(proto, answer: tuple[int, list[tuple[str, str]], bytes]) -> None:
    """One RSGI call answers: the body's bytes, or none (redirects)."""
    status, out, body = answer
    if body:
        proto.response_bytes(status, out, body)
    else:
        proto.response_empty(status, out)


def _client_ip(client: str) -> str:
    """RSGI gives the peer as 'host:port' ('[::1]:port' for IPv6)."""
    host, sep, port = client.rpartition(":")
    if not sep or not port.isdigit():
        return client
    return host.strip("[]")


async def _read_rsgi_body(proto, headers, limit: int) -> bytes:
    """The request body, or b'' when it is larger than `limit` (read no further than that)."""
    declared = headers.get("content-length", "")
    if declared and (not declared.isdigit() or int(declared) > limit):
        return b""
    body = b""
    async for chunk in proto:
        body += chunk
        if len(body) > limit:
            return b""
    return body
