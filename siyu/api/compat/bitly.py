"""Bitly API v4 subset, enough for Bitly SDKs and pyshorteners: shorten, create, expand, get, clicks.

Authentication is `Authorization: Bearer <Siyu API key>`. A bitlink id is '<domain>/<slug>' as on
Bitly. Like Bitly, /v4/shorten answers 200 with the existing bitlink when the workspace already
shortened that long URL, and 201 for a new one. `group_guid` is accepted and ignored: the key
already names the workspace, so a group copied from a Bitly config cannot widen access.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from siyu.api.auth import key_from_request
from siyu.api.compat.common import (
    BadBody,
    Unauthenticated,
    actor,
    authenticate,
    field_reasons,
    find_link,
    in_thread,
    read_json_object,
)
from siyu.errors import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied
from siyu.events.store import ClickFilter
from siyu.links import service as links
from siyu.links.models import ShortLink
from siyu.links.urls import validate_url
from siyu.runtime import Runtime
from siyu.workspaces.service import normalize_hostname

log = logging.getLogger("siyu.api.compat.bitly")
FIELDS = {"destination_url": "long_url", "domain": "domain", "title": "title", "tags": "tags"}
UNITS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1), "month": timedelta(days=31)}
MAX_UNITS = 10_000
Handler = Callable[[Request], Awaitable[Response]]


def bitly_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S%z")


def bitlink_id(link: ShortLink) -> str:
    return f"{link.hostname}/{link.slug}"


def bitlink(link: ShortLink, scheme: str) -> dict[str, Any]:
    return {
        "created_at": bitly_time(link.created_at),
        "id": bitlink_id(link),
        "link": links.short_url(link, scheme),
        "custom_bitlinks": [],
        "long_url": link.destination_url,
        "title": link.title,
        "archived": link.archived,
        "created_by": link.created_by,
        "tags": [t.name for t in link.tags],
        "deeplinks": [],
        "references": {},
    }


def error(status: int, message: str, description: str, fields: dict[str, str] | None = None) -> JSONResponse:
    """Bitly's error body: an UPPER_CASE message, the resource, a description, per-field errors."""
    body: dict[str, Any] = {"message": message, "resource": "bitlinks", "description": description}
    if fields:
        body["errors"] = [{"field": f, "error_code": "invalid", "message": r} for f, r in fields.items()]
    return JSONResponse(body, status_code=status)


def render_error(exc: Exception) -> JSONResponse:
    if isinstance(exc, Unauthenticated | PermissionDenied):
        detail = (
            str(exc) if isinstance(exc, PermissionDenied) else "You are currently forbidden to access this resource."
        )
        return error(403, "FORBIDDEN", detail)
    if isinstance(exc, BadBody):
        return error(exc.status, "INVALID_BODY", exc.reason)
    if isinstance(exc, InvalidInput):
        fields = field_reasons(exc, FIELDS)
        first = next(iter(fields))
        return error(400, f"INVALID_ARG_{first.upper()}", str(exc), fields)
    if isinstance(exc, NotFound):
        return error(404, "NOT_FOUND", "What you are looking for cannot be found.")
    if isinstance(exc, Conflict):
        return error(409, "ALREADY_EXISTS", str(exc), {FIELDS.get(exc.field, exc.field): exc.reason})
    log.exception("unhandled error in the Bitly compatibility API")
    return error(500, "INTERNAL_ERROR", "Something went wrong on our side; it has been logged.")


def guarded(fn: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except Exception as exc:  # every failure leaves in Bitly's shape
            return render_error(exc)

    return endpoint


def _text(data: dict[str, Any], name: str, limit: int, errors: list[FieldError]) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        errors.append(FieldError(name, f"must be text of at most {limit} characters"))
        return None
    return value


class BitlyApi:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v4/shorten", guarded(self.shorten), methods=["POST"]),
            Route("/v4/bitlinks", guarded(self.create), methods=["POST"]),
            Route("/v4/expand", guarded(self.expand), methods=["POST"]),
            Route("/v4/bitlinks/{bitlink:path}", guarded(self.bitlink_get), methods=["GET"]),
        ]

    async def shorten(self, request: Request) -> Response:
        data = await read_json_object(request)
        return await in_thread(self._create, key_from_request(request), data, False)

    async def create(self, request: Request) -> Response:
        data = await read_json_object(request)
        return await in_thread(self._create, key_from_request(request), data, True)

    async def expand(self, request: Request) -> Response:
        data = await read_json_object(request)
        return await in_thread(self._expand, key_from_request(request), data)

    async def bitlink_get(self, request: Request) -> Response:
        """GET /v4/bitlinks/{id}, {id}/clicks and {id}/clicks/summary; ids contain a '/' themselves."""
        path = request.path_params["bitlink"]
        key = key_from_request(request)
        params = dict(request.query_params)
        for suffix, summary in (("/clicks/summary", True), ("/clicks", False)):
            ref = path.removesuffix(suffix)
            if ref != path and "/" in ref:
                return await in_thread(self._clicks, key, ref, params, summary)
        return await in_thread(self._get, key, path)

    def _create(self, secret: str, data: dict[str, Any], with_meta: bool) -> Response:
        rt = self.runtime
        caller = authenticate(rt, secret)
        caller.require("links:write")
        errors: list[FieldError] = []
        long_url = data.get("long_url")
        if not isinstance(long_url, str) or not long_url.strip():
            errors.append(FieldError("long_url", "a URL is required"))
        domain = _text(data, "domain", 253, errors)
        _text(data, "group_guid", 100, errors)
        changes: dict[str, Any] = {"destination_url": long_url}
        if domain:
            changes["domain"] = domain
        if with_meta:
            if (title := _text(data, "title", 500, errors)) is not None:
                changes["title"] = title
            if data.get("tags") is not None:
                changes["tags"] = data["tags"]
        if errors:
            raise InvalidInput(errors)
        with rt.db.session() as session:
            if not with_meta:
                existing = self._existing(session, caller.workspace_id, long_url, domain)  # type: ignore[arg-type]
                if existing is not None:
                    return JSONResponse(bitlink(existing, rt.scheme), status_code=200)
            link = links.create_link(session, rt.link_context(caller.workspace_id, actor(caller)), changes)
            return JSONResponse(bitlink(link, rt.scheme), status_code=201)

    @staticmethod
    def _existing(session, workspace_id: int, long_url: str, domain: str | None) -> ShortLink | None:
        found = links.find_by_destination(session, workspace_id, validate_url(long_url, "long_url"))
        if found is None or (domain and found.hostname != normalize_hostname(domain, "domain")):
            return None
        return found

    def _expand(self, secret: str, data: dict[str, Any]) -> Response:
        caller = authenticate(self.runtime, secret)
        caller.require("links:read")
        ref = data.get("bitlink_id")
        if not isinstance(ref, str) or not ref.strip() or len(ref) > 400:
            raise InvalidInput("bitlink_id", "must be a bitlink such as 'domain/slug'")
        with self.runtime.db.session() as session:
            link = find_link(session, caller.workspace_id, ref)
            body = bitlink(link, self.runtime.scheme)
            return JSONResponse({k: body[k] for k in ("created_at", "link", "id", "long_url")})

    def _get(self, secret: str, ref: str) -> Response:
        caller = authenticate(self.runtime, secret)
        caller.require("links:read")
        with self.runtime.db.session() as session:
            return JSONResponse(bitlink(find_link(session, caller.workspace_id, ref), self.runtime.scheme))

    def _clicks(self, secret: str, ref: str, params: dict[str, str], summary: bool) -> Response:
        """Non-bot clicks per unit, newest first; units=-1 (the default) means all time."""
        caller = authenticate(self.runtime, secret)
        caller.require("analytics:read")
        unit, units, reference = _clicks_window(params)
        with self.runtime.db.session() as session:
            link = find_link(session, caller.workspace_id, ref)
        since = None if units == -1 else reference - units * UNITS[unit]
        f = ClickFilter(caller.workspace_id, link.id, since, reference, include_bots=False)
        series = self.runtime.store.timeseries(f, unit)
        body: dict[str, Any] = {"units": units, "unit": unit, "unit_reference": bitly_time(reference)}
        if summary:
            body["total_clicks"] = sum(clicks for _, clicks, _ in series)
        else:
            body["link_clicks"] = [{"clicks": c, "date": bitly_time(t)} for t, c, _ in reversed(series)]
        return JSONResponse(body)


def _clicks_window(params: dict[str, str]) -> tuple[str, int, datetime]:
    unit = params.get("unit", "day")
    if unit not in UNITS:
        raise InvalidInput("unit", f"must be one of {', '.join(UNITS)}")
    try:
        units = int(params.get("units", "-1"))
    except ValueError:
        units = 0
    if units != -1 and not 1 <= units <= MAX_UNITS:
        raise InvalidInput("units", f"must be -1 (all time) or 1 to {MAX_UNITS}")
    raw = params.get("unit_reference")
    if not raw:
        return unit, units, datetime.now(UTC) + timedelta(seconds=1)
    try:
        reference = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput("unit_reference", "must be an ISO 8601 date-time such as 2026-01-31T00:00:00+0000") from exc
    return unit, units, reference if reference.tzinfo else reference.replace(tzinfo=UTC)
