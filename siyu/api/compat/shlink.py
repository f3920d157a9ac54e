"""Shlink REST API v3 short URLs (list, create, get) with Shlink's field names and problem+json errors.

Authentication is the `X-Api-Key` header carrying a Siyu API key. Archived links are what Shlink
calls deleted: they leave the list. `domain` is null for the workspace's default domain, as
Shlink reports its default domain. Filters Siyu cannot honour exactly (date ranges, several tags,
visit ordering, a future validSince) are refused by name instead of being silently ignored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from siyu import __version__
from siyu.api.compat.common import (
    BadBody,
    Unauthenticated,
    Visits,
    actor,
    authenticate,
    field_reasons,
    in_thread,
    read_json_object,
    visits,
)
from siyu.errors import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied
from siyu.links import service as links
from siyu.links import slugs
from siyu.links.models import ShortLink
from siyu.links.urls import validate_url
from siyu.runtime import Runtime
from siyu.workspaces.service import default_domain, normalize_hostname

log = logging.getLogger("siyu.api.compat.shlink")
PROBLEM_TYPE = "https://shlink.io/api/error/"
FIELDS = {
    "destination_url": "longUrl",
    "slug": "customSlug",
    "tags": "tags",
    "title": "title",
    "domain": "domain",
    "expires_at": "validUntil",
    "max_clicks": "maxVisits",
    "forward_query": "forwardQuery",
    "rules": "deviceLongUrls",
}
ORDER_BY = {
    "dateCreated": "-created",
    "dateCreated-ASC": "-created",
    "dateCreated-DESC": "created",
    "title": "title",
    "title-ASC": "title",
    "shortCode": "slug",
    "shortCode-ASC": "slug",
}
DEVICE_RULES = {"android": {"os": ["android"]}, "ios": {"os": ["ios"]}, "desktop": {"device": ["desktop"]}}
MAX_PAGE_SIZE = 1000
CREATE_RETRIES = 5
Handler = Callable[[Request], Awaitable[Response]]


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_TYPE + code, "title": title, "detail": detail, "status": status, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def invalid_data(exc: InvalidInput) -> JSONResponse:
    reasons = field_reasons(exc, FIELDS)
    return problem(
        400,
        "invalid-data",
        "Invalid data",
        "Provided data is not valid",
        invalidElements=list(reasons),
        reasons=reasons,
    )


def render_error(exc: Exception) -> JSONResponse:
    if isinstance(exc, Unauthenticated) and exc.missing:
        detail = 'Expected one of the following authentication headers, ["X-Api-Key"], but none were provided'
        return problem(401, "missing-authentication", "Invalid authorization", detail, expectedTypes=["X-Api-Key"])
    if isinstance(exc, Unauthenticated):
        return problem(401, "invalid-api-key", "Invalid API key", "Provided API key does not exist or is invalid.")
    if isinstance(exc, PermissionDenied):
        return problem(403, "forbidden-operation", "Forbidden operation", str(exc))
    if isinstance(exc, BadBody):
        return problem(exc.status, "malformed-request-body", "Malformed request body", exc.reason)
    if isinstance(exc, InvalidInput):
        return invalid_data(exc)
    if isinstance(exc, NotFound):
        return problem(404, "short-url-not-found", "Short URL not found", str(exc))
    log.exception("unhandled error in the Shlink compatibility API")
    return problem(
        500, "internal-error", "Internal server error", "Something went wrong on our side; it has been logged."
    )


def guarded(fn: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except Exception as exc:  # every failure leaves as problem+json
            return render_error(exc)

    return endpoint


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def device_long_urls(link: ShortLink) -> dict[str, str | None]:
    out: dict[str, str | None] = dict.fromkeys(DEVICE_RULES)
    for rule in link.rules or []:
        for device, when in DEVICE_RULES.items():
            if rule.get("when") == when and out[device] is None:
                out[device] = rule.get("url")
    return out


def short_url_json(link: ShortLink, scheme: str, default_host: str, counted: Visits) -> dict[str, Any]:
    return {
        "shortCode": link.slug,
        "shortUrl": links.short_url(link, scheme),
        "longUrl": link.destination_url,
        "deviceLongUrls": device_long_urls(link),
        "dateCreated": iso(link.created_at),
        "visitsSummary": {"total": counted.total, "nonBots": counted.humans, "bots": counted.bots},
        "visitsCount": counted.total,
        "tags": [t.name for t in link.tags],
        "meta": {"validSince": None, "validUntil": iso(link.expires_at), "maxVisits": link.max_clicks},
        "domain": None if link.hostname == default_host else link.hostname,
        "title": link.title or None,
        "crawlable": False,
        "forwardQuery": link.forward_query,
    }


class ShlinkApi:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/rest/health", self.health, methods=["GET"]),
            Route("/rest/v3/short-urls", guarded(self.list), methods=["GET"]),
            Route("/rest/v3/short-urls", guarded(self.create), methods=["POST"]),
            Route("/rest/v3/short-urls/{shortCode}", guarded(self.get), methods=["GET"]),
        ]

    async def health(self, request: Request) -> Response:
        body = {"status": "pass", "version": __version__, "links": {"about": self.runtime.settings.base_url}}
        return JSONResponse(body, media_type="application/health+json")

    async def list(self, request: Request) -> Response:
        items = request.query_params.multi_items()
        return await in_thread(self._list, request.headers.get("x-api-key"), items)

    async def create(self, request: Request) -> Response:
        data = await read_json_object(request)
        return await in_thread(self._create, request.headers.get("x-api-key"), data)

    async def get(self, request: Request) -> Response:
        code = request.path_params["shortCode"]
        domain = request.query_params.get("domain")
        return await in_thread(self._get, request.headers.get("x-api-key"), code, domain)

    def _json(self, link: ShortLink, default_host: str) -> dict[str, Any]:
        return short_url_json(link, self.runtime.scheme, default_host, visits(self.runtime, link))

    def _list(self, secret: str | None, items: list[tuple[str, str]]) -> Response:
        caller = authenticate(self.runtime, secret)
        caller.require("links:read")
        query, page = list_query(items)
        with self.runtime.db.session() as session:
            default_host = default_domain(session, caller.workspace_id).hostname
            rows, total = links.list_links(session, caller.workspace_id, query)
            data = [self._json(link, default_host) for link in rows]
        pagination = {
            "currentPage": page,
            "pagesCount": math.ceil(total / query.limit),
            "itemsPerPage": query.limit,
            "itemsInCurrentPage": len(data),
            "totalItems": total,
        }
        return JSONResponse({"shortUrls": {"data": data, "pagination": pagination}})

    def _get(self, secret: str | None, code: str, domain: str | None) -> Response:
        caller = authenticate(self.runtime, secret)
        caller.require("links:read")
        with self.runtime.db.session() as session:
            default_host = default_domain(session, caller.workspace_id).hostname
            try:
                host = normalize_hostname(domain, "domain") if domain else default_host
                link = links.get_link_by_slug(session, caller.workspace_id, code[:64], host)
            except (NotFound, InvalidInput):
                return not_found(code, domain)
            return JSONResponse(self._json(link, default_host))

    def _create(self, secret: str | None, data: dict[str, Any]) -> Response:
        rt = self.runtime
        caller = authenticate(rt, secret)
        caller.require("links:write")
        changes, find_if_exists, code_length = create_changes(data)
        ctx = rt.link_context(caller.workspace_id, actor(caller))
        with rt.db.session() as session:
            default_host = default_domain(session, caller.workspace_id).hostname
            if find_if_exists:
                existing = find_matching(session, caller.workspace_id, changes)
                if existing is not None:
                    return JSONResponse(self._json(existing, default_host))
        for attempt in range(CREATE_RETRIES):
            if code_length and "slug" not in changes:
                attempt_changes = {**changes, "slug": slugs.random_slug(code_length)}
            else:
                attempt_changes = changes
            try:
                with rt.db.session() as session:
                    link = links.create_link(session, ctx, attempt_changes)
                    return JSONResponse(self._json(link, default_host))
            except Conflict:
                if attempt_changes is changes or attempt == CREATE_RETRIES - 1:
                    slug = str(attempt_changes.get("slug", ""))
                    domain = data.get("domain") if isinstance(data.get("domain"), str) else None
                    return non_unique_slug(slug, domain)
            except InvalidInput as exc:  # a random code can spell a reserved word: draw again
                if attempt_changes is changes or "slug" not in field_reasons(exc, {}) or attempt == CREATE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def not_found(code: str, domain: str | None) -> JSONResponse:
    suffix = f' for domain "{domain}"' if domain else ""
    extra: dict[str, Any] = {"shortCode": code[:100]}
    if domain:
        extra["domain"] = domain[:253]
    return problem(
        404,
        "short-url-not-found",
        "Short URL not found",
        f'No URL found with short code "{code[:100]}"{suffix}',
        **extra,
    )


def non_unique_slug(slug: str, domain: str | None) -> JSONResponse:
    suffix = f' for domain "{domain}"' if domain else ""
    extra: dict[str, Any] = {"customSlug": slug}
    if domain:
        extra["domain"] = domain
    return problem(
        400, "non-unique-slug", "Invalid custom slug", f'Provided slug "{slug}" is already in use{suffix}.', **extra
    )


def _typed(
    data: dict[str, Any], name: str, kind: type | tuple[type, ...], reason: str, errors: list[FieldError]
) -> Any:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        errors.append(FieldError(name, reason))
        return None
    return value


def create_changes(data: dict[str, Any]) -> tuple[dict[str, Any], bool, int | None]:
    """Shlink's create body -> link service changes, plus findIfExists and shortCodeLength."""
    errors: list[FieldError] = []
    changes: dict[str, Any] = {"destination_url": data.get("longUrl")}
    for ours, theirs in FIELDS.items():
        if theirs in data and theirs not in ("longUrl", "deviceLongUrls") and data[theirs] is not None:
            changes[ours] = data[theirs]
    for name in ("longUrl", "customSlug", "title", "domain", "validUntil"):
        _typed(data, name, str, "must be text", errors)
    _typed(data, "maxVisits", int, "must be a whole number of at least 1", errors)
    tags = _typed(data, "tags", list, "must be a list of tag names", errors)
    if tags and not all(isinstance(t, str) for t in tags):
        errors.append(FieldError("tags", "must be a list of tag names"))
    if (since := _typed(data, "validSince", str, "must be an ISO 8601 date-time", errors)) is not None:
        try:
            start = datetime.fromisoformat(since.replace("Z", "+00:00"))
            if (start if start.tzinfo else start.replace(tzinfo=UTC)) > datetime.now(UTC):
                errors.append(FieldError("validSince", "a start date in the future is not supported"))
        except ValueError:
            errors.append(FieldError("validSince", "must be an ISO 8601 date-time"))
    find = _typed(data, "findIfExists", bool, "must be true or false", errors) or False
    _typed(data, "crawlable", bool, "must be true or false", errors)
    _typed(data, "validateUrl", bool, "must be true or false", errors)
    length = _typed(data, "shortCodeLength", int, "must be a whole number from 4 to 64", errors)
    if length is not None and not 4 <= length <= slugs.MAX_CUSTOM_LENGTH:
        errors.append(FieldError("shortCodeLength", "must be a whole number from 4 to 64"))
    devices = _typed(data, "deviceLongUrls", dict, "must be an object with android, ios and desktop URLs", errors)
    if devices:
        unknown = [k for k in devices if k not in DEVICE_RULES]
        if unknown:
            errors.append(FieldError("deviceLongUrls", f"unknown device(s) {', '.join(map(str, unknown))}"))
        else:
            changes["rules"] = [{"when": DEVICE_RULES[k], "url": v} for k, v in devices.items() if v is not None]
    if errors:
        raise InvalidInput(errors)
    return changes, find, length


def find_matching(session, workspace_id: int, changes: dict[str, Any]) -> ShortLink | None:
    """findIfExists: a live link with this long URL and, where given, the same slug, domain, tags and limits."""
    found = links.find_by_destination(session, workspace_id, validate_url(changes["destination_url"], "longUrl"))
    if found is None:
        return None
    checks = {
        "slug": lambda v: found.slug.lower() == str(v).lower(),
        "domain": lambda v: found.hostname == normalize_hostname(v, "domain"),
        "tags": lambda v: isinstance(v, list) and sorted({str(t).strip() for t in v}) == [t.name for t in found.tags],
        "max_clicks": lambda v: found.max_clicks == v,
    }
    return found if all(check(changes[k]) for k, check in checks.items() if k in changes) else None


def list_query(items: list[tuple[str, str]]) -> tuple[links.LinkQuery, int]:
    """Shlink's list parameters -> a LinkQuery and the page number; unsupported filters are named errors."""
    params = dict(items)
    tags = [v for k, v in items if k in ("tags[]", "tags") and v]
    errors: list[FieldError] = []

    def number(name: str, default: int, low: int, high: int) -> int:
        raw = params.get(name, "")
        try:
            value = int(raw) if raw else default
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            errors.append(FieldError(name, f"must be a whole number from {low} to {high}"))
            return default
        return value

    page = number("page", 1, 1, 10**7)
    per_page = number("itemsPerPage", 10, -1, 10**6)
    per_page = MAX_PAGE_SIZE if per_page in (-1, 0) or per_page > MAX_PAGE_SIZE else per_page
    order = params.get("orderBy") or "dateCreated-DESC"
    if order not in ORDER_BY:
        errors.append(FieldError("orderBy", f"must be one of {', '.join(ORDER_BY)}"))
    if len(tags) > 1:
        errors.append(FieldError("tags", "filtering by more than one tag is not supported"))
    if params.get("tagsMode", "any") not in ("any", "all"):
        errors.append(FieldError("tagsMode", "must be any or all"))
    for name in ("startDate", "endDate"):
        if params.get(name):
            errors.append(FieldError(name, "filtering by creation date is not supported"))
    if params.get("excludeMaxVisitsReached") == "true":
        errors.append(FieldError("excludeMaxVisitsReached", "not supported"))
    search = params.get("searchTerm", "")
    if len(search) > 500:
        errors.append(FieldError("searchTerm", "at most 500 characters"))
    if errors:
        raise InvalidInput(errors)
    query = links.LinkQuery(
        search=search,
        tag=tags[0] if tags else None,
        domain=params.get("domain") or None,
        expired=False if params.get("excludePastValidUntil") == "true" else None,
        sort=ORDER_BY[order],
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    return query, page
