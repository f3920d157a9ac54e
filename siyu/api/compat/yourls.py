"""YOURLS `yourls-api.php`: shorturl, expand, url-stats, stats, db-stats and version, as YOURLS answers them.

Parameters come from the query string and the form body (POST wins, like PHP's $_REQUEST);
`format` is xml (the YOURLS default), json, jsonp or simple. Authentication follows YOURLS'
passwordless mode with the Siyu API key as `signature`, or `username` + `password` with the key
as password. Timestamped md5 signatures cannot work: keys are stored hashed.

Response shapes and statuses mirror YOURLS 1.7.10+: a taken keyword or an already shortened URL
is HTTP 200 with `status: fail` (and `code: error:url` carries the existing short URL); a missing
or malformed URL is HTTP 400 `error:nourl`; bad credentials are HTTP 403.
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from siyu import __version__
from siyu.api.auth import Caller
from siyu.api.compat.common import (
    BadBody,
    Unauthenticated,
    Visits,
    actor,
    authenticate,
    find_link,
    in_thread,
    read_body,
    visits,
)
from siyu.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from siyu.events.store import ClickFilter
from siyu.links import service as links
from siyu.links import slugs
from siyu.links.models import ShortLink
from siyu.links.urls import validate_url
from siyu.runtime import Runtime

log = logging.getLogger("siyu.api.compat.yourls")
MAX_FIELDS = 50
MAX_STATS_LIMIT = 1000
_CALLBACK = re.compile(r"^[A-Za-z_$][\w$.]{0,99}$")
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(?!\d)")


@dataclass
class Reply:
    """What one API call produced: the YOURLS payload, its HTTP status and the `format=simple` text."""

    payload: dict[str, Any]
    status: int = 200
    simple: str = field(default="")

    @classmethod
    def error(cls, status: int, message: str, **extra: Any) -> Reply:
        return cls({"message": message, "errorCode": status, **extra}, status, message)


def yourls_date(link: ShortLink) -> str:
    return link.created_at.strftime("%Y-%m-%d %H:%M:%S")


class YourlsApi:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def routes(self) -> list[BaseRoute]:
        return [Route("/yourls-api.php", self.endpoint, methods=["GET", "POST"])]

    async def endpoint(self, request: Request) -> Response:
        params: dict[str, str] = {}
        try:
            params = await request_params(request)
            reply = await in_thread(self.dispatch, params)
        except BadBody as exc:
            reply = Reply.error(exc.status, exc.reason)
        except Exception:  # every failure leaves in YOURLS' shape
            log.exception("unhandled error in the YOURLS compatibility API")
            reply = Reply.error(500, "Something went wrong on our side; it has been logged")
        return render(params, reply)

    def dispatch(self, params: dict[str, str]) -> Reply:
        try:
            caller = self._caller(params)
            action = params.get("action", "")
            handler = {
                "shorturl": self.shorturl,
                "expand": self.expand,
                "url-stats": self.url_stats,
                "stats": self.stats,
                "db-stats": self.db_stats,
                "version": lambda _c, _p: Reply({"version": __version__}, simple=__version__),
            }.get(action)
            if handler is None:
                return Reply.error(400, 'Unknown or missing "action" parameter')
            return handler(caller, params)
        except Unauthenticated as exc:
            return Reply.error(403, "Please log in" if exc.missing else "Invalid username or password")
        except PermissionDenied as exc:
            return Reply.error(403, str(exc))
        except NotFound:
            return Reply.error(404, "Error: short URL not found", keyword=params.get("shorturl", "")[:100])
        except InvalidInput as exc:
            return Reply.error(400, str(exc))

    def _caller(self, params: dict[str, str]) -> Caller:
        secret = params.get("signature") or (params.get("password") if params.get("username") else None)
        return authenticate(self.runtime, secret)

    def _url_info(self, link: ShortLink, with_clicks: bool) -> dict[str, Any]:
        info: dict[str, Any] = {
            "keyword": link.slug,
            "url": link.destination_url,
            "title": link.title or link.destination_url,
            "date": yourls_date(link),
            "ip": "",
        }
        if with_clicks:
            info["clicks"] = str(visits(self.runtime, link).humans)
        return info

    def shorturl(self, caller: Caller, params: dict[str, str]) -> Reply:
        caller.require("links:write")
        rt = self.runtime
        url = params.get("url", "").strip()
        if url and not _HAS_SCHEME.match(url):
            url = "http://" + url  # YOURLS assumes http for 'example.com/page'
        keyword = params.get("keyword", "").strip()
        title = params.get("title", "")
        try:
            normalized = validate_url(url, "url")
        except InvalidInput as exc:
            return _url_error(exc)
        with rt.db.session() as session:
            existing = links.find_by_destination(session, caller.workspace_id, normalized)
            if existing is not None:
                short = links.short_url(existing, rt.scheme)
                return Reply(
                    {
                        "status": "fail",
                        "code": "error:url",
                        "url": self._url_info(existing, with_clicks=True),
                        "message": f"{normalized} already exists in database",
                        "title": existing.title or existing.destination_url,
                        "shorturl": short,
                        "statusCode": 200,
                    },
                    simple=short,
                )
        if keyword.lower() in slugs.RESERVED:
            return _keyword_taken(keyword)
        changes: dict[str, Any] = {"destination_url": normalized, "title": title}
        if keyword:
            changes["slug"] = keyword
        try:
            with rt.db.session() as session:
                link = links.create_link(session, rt.link_context(caller.workspace_id, actor(caller)), changes)
                short = links.short_url(link, rt.scheme)
                payload = {
                    "url": self._url_info(link, with_clicks=False),
                    "status": "success",
                    "message": f"{link.destination_url} added to database",
                    "title": link.title or link.destination_url,
                    "shorturl": short,
                    "statusCode": 200,
                }
                return Reply(payload, simple=short)
        except Conflict:
            return _keyword_taken(keyword)
        except InvalidInput as exc:
            by_field = {e.field.split("[", 1)[0]: e.reason for e in exc.errors}
            if "destination_url" in by_field:
                return _url_error(exc)
            if "slug" in by_field:
                return _fail(
                    400, "error:keyword", f"Short URL keyword '{keyword[:100]}' is invalid: {by_field['slug']}"
                )
            name, reason = next(iter(by_field.items()))
            return _fail(400, f"error:{name}", f"{name}: {reason}")

    def expand(self, caller: Caller, params: dict[str, str]) -> Reply:
        caller.require("links:read")
        ref = params.get("shorturl", "")
        with self.runtime.db.session() as session:
            link = find_link(session, caller.workspace_id, ref)
            payload = {
                "keyword": link.slug,
                "shorturl": links.short_url(link, self.runtime.scheme),
                "longurl": link.destination_url,
                "title": link.title or link.destination_url,
                "message": "success",
                "statusCode": 200,
            }
            return Reply(payload, simple=link.destination_url)

    def url_stats(self, caller: Caller, params: dict[str, str]) -> Reply:
        caller.require("links:read")
        with self.runtime.db.session() as session:
            link = find_link(session, caller.workspace_id, params.get("shorturl", ""))
            return Reply(
                {"statusCode": 200, "message": "success", "link": self._link_stats(link, visits(self.runtime, link))},
                simple="Need either XML or JSON format for stats",
            )

    def _link_stats(self, link: ShortLink, counted: Visits) -> dict[str, Any]:
        return {
            "shorturl": links.short_url(link, self.runtime.scheme),
            "url": link.destination_url,
            "title": link.title or link.destination_url,
            "timestamp": yourls_date(link),
            "ip": "",
            "clicks": str(counted.humans),
        }

    def db_stats(self, caller: Caller, params: dict[str, str]) -> Reply:
        caller.require("links:read")
        return Reply(
            {"db-stats": self._totals(caller), "statusCode": 200, "message": "success"},
            simple="Need either XML or JSON format for stats",
        )

    def _totals(self, caller: Caller) -> dict[str, str]:
        with self.runtime.db.session() as session:
            _, total = links.list_links(session, caller.workspace_id, links.LinkQuery(archived=None, limit=1))
        clicks = self.runtime.store.summary(ClickFilter(caller.workspace_id)).clicks
        return {"total_links": str(total), "total_clicks": str(clicks)}

    def stats(self, caller: Caller, params: dict[str, str]) -> Reply:
        """top (most clicked, then newest), last (newest) or rand (from the newest 1000); not bottom."""
        caller.require("links:read")
        filter_ = {"random": "rand"}.get(params.get("filter", "top"), params.get("filter", "top"))
        limit, start = _int(params, "limit", 10, 1, MAX_STATS_LIMIT), _int(params, "start", 0, 0, 10**9)
        if filter_ not in ("top", "last", "rand"):
            return Reply.error(400, "filter must be one of top, last, rand (bottom is not supported)")
        rt = self.runtime
        ws = caller.workspace_id
        counts = {i: c for i, c, _ in rt.store.top_links(ClickFilter(ws), limit=start + limit)}
        with rt.db.session() as session:
            if filter_ == "last":
                rows, _ = links.list_links(session, ws, links.LinkQuery(archived=None, limit=limit, offset=start))
            else:
                recent, _ = links.list_links(session, ws, links.LinkQuery(archived=None, limit=MAX_STATS_LIMIT))
                if filter_ == "rand":
                    rows = random.sample(recent, min(limit, len(recent)))
                else:
                    by_id = {lk.id: lk for lk in links.links_by_ids(session, ws, list(counts))}
                    ranked = [by_id[i] for i in counts if i in by_id]
                    ranked += [lk for lk in recent if lk.id not in counts]
                    rows = ranked[start : start + limit]
            entries = {
                f"link_{n}": self._link_stats(link, Visits(counts.get(link.id, 0), 0))
                if filter_ == "top"
                else self._link_stats(link, visits(rt, link))
                for n, link in enumerate(rows, 1)
            }
        payload: dict[str, Any] = {"stats": self._totals(caller), "statusCode": 200, "message": "success"}
        if entries:
            payload["links"] = entries
        return Reply(payload, simple="Need either XML or JSON format for stats")


def _fail(status: int, code: str, message: str, **extra: Any) -> Reply:
    """YOURLS marks a refused but well-formed request `statusCode: 200`, a bad one `errorCode: "400"`."""
    outcome = {"statusCode": 200} if status == 200 else {"errorCode": str(status)}
    return Reply({"status": "fail", "code": code, "message": message, **extra, **outcome}, status)


def _keyword_taken(keyword: str) -> Reply:
    return _fail(200, "error:keyword", f"Short URL {keyword[:100]} already exists in database or is reserved")


def _url_error(exc: InvalidInput) -> Reply:
    reason = "; ".join(e.reason for e in exc.errors)
    if "redirect loop" in reason:
        return _fail(400, "error:noloop", "URL is a short URL")
    return _fail(400, "error:nourl", f"Missing or malformed URL (url: {reason})")


def _int(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInput(name, f"must be a whole number from {low} to {high}")
    return int(raw)


async def request_params(request: Request) -> dict[str, str]:
    """Query string plus form body, POST winning, at most MAX_FIELDS fields and 64 KB of body."""
    ctype = request.headers.get("content-type", "")
    try:
        params = dict(parse_qsl(request.url.query, keep_blank_values=True, max_num_fields=MAX_FIELDS))
        if request.method != "POST":
            return params
        if ctype.startswith("multipart/form-data"):
            form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=16 * 1024)
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        else:
            body = (await read_body(request)).decode("utf-8", errors="replace")
            params.update(parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except BadBody:
        raise
    except Exception as exc:  # malformed multipart, too many fields, file uploads
        raise BadBody(f"the request parameters could not be read ({exc})") from exc
    return params


def render(params: dict[str, str], reply: Reply) -> Response:
    payload = dict(reply.payload)
    fmt = params.get("format", "xml")
    if fmt == "json":
        return Response(json.dumps(payload), reply.status, media_type="application/json")
    if fmt == "jsonp":
        callback = params.get("callback", "")
        if not _CALLBACK.match(callback):
            return Response(
                json.dumps({"message": "format=jsonp needs a valid 'callback' name", "errorCode": 400}),
                400,
                media_type="application/json",
            )
        return Response(f"{callback}({json.dumps(payload)})", reply.status, media_type="application/javascript")
    if fmt == "xml":
        body = '<?xml version="1.0" encoding="UTF-8"?>\n<result>' + _xml(payload) + "</result>"
        return Response(body, reply.status, media_type="application/xml")
    return Response(reply.simple, reply.status, media_type="text/plain")


def _xml(value: Any) -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in value.items())
    if isinstance(value, bool):
        return "1" if value else ""
    return escape(str(value))
