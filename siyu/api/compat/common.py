"""Plumbing shared by the compatibility APIs: bounded bodies, API-key callers, link lookups and visit counts.

Each API renders errors in its own shape, so nothing here builds a response; it raises and the
API module translates.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
from sqlalchemy.orm import Session
from starlette.requests import Request

from siyu.api.auth import Caller, caller_for_key
from siyu.errors import InvalidInput, NotFound
from siyu.events.store import ClickFilter
from siyu.links import service as links
from siyu.links.models import ShortLink
from siyu.runtime import Runtime

MAX_BODY_BYTES = 64 * 1024
T = TypeVar("T")


class BadBody(Exception):
    """The request body is too large, not JSON, or not the JSON object the endpoint expects."""

    def __init__(self, reason: str, status: int = 400):
        self.reason = reason
        self.status = status
        super().__init__(reason)


class Unauthenticated(Exception):
    """No API key was sent (`missing`), or the key is unknown or revoked."""

    def __init__(self, missing: bool):
        self.missing = missing
        super().__init__("no API key" if missing else "unknown or revoked API key")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refusing more than `limit` bytes even when no Content-Length was declared."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadBody(f"the request body is larger than {limit // 1024} KB", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadBody(f"the request body is larger than {limit // 1024} KB", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: Request) -> dict[str, Any]:
    body = await read_body(request)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadBody("the request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadBody("the request body must be a JSON object")
    return data


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Database and event-store calls block; keep them off the event loop."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args))


def authenticate(runtime: Runtime, secret: str | None) -> Caller:
    secret = (secret or "").strip()
    if not secret:
        raise Unauthenticated(missing=True)
    caller = caller_for_key(runtime, secret)
    if caller is None:
        raise Unauthenticated(missing=False)
    return caller


def actor(caller: Caller) -> str:
    return f"key:{caller.key_name}"


@dataclass(frozen=True)
class Visits:
    total: int
    bots: int

    @property
    def humans(self) -> int:
        return self.total - self.bots


def visits(runtime: Runtime, link: ShortLink) -> Visits:
    """Every recorded visit of the link, bots included, with the bot share split out."""
    summary = runtime.store.summary(ClickFilter(link.workspace_id, link.id, include_bots=True))
    return Visits(summary.clicks, summary.bots)


def split_short_ref(raw: str) -> tuple[str | None, str]:
    """'http://host/slug', 'host/slug' or 'slug' -> (host or None, slug)."""
    ref = raw.strip()
    if "://" in ref:
        try:
            parts = urlsplit(ref)
        except ValueError:  # e.g. an unclosed IPv6 bracket: no link can match
            return None, ""
        return (parts.netloc.lower() or None), parts.path.strip("/")
    host, sep, slug = ref.rpartition("/")
    return (host.lower() or None) if sep else None, slug


def find_link(session: Session, workspace_id: int, ref: str) -> ShortLink:
    """A link of this workspace by short URL, 'host/slug' or bare slug; NotFound for anyone else's."""
    host, slug = split_short_ref(ref)
    if not slug or len(slug) > 64 or "/" in slug or (host is not None and len(host) > 253):
        raise NotFound(f"short URL '{ref[:100]}' not found")
    return links.get_link_by_slug(session, workspace_id, slug, host)


def field_reasons(exc: InvalidInput, names: dict[str, str]) -> dict[str, str]:
    """Our field names (`rules[0].url`) -> the foreign API's names (`deviceLongUrls`), first reason each."""
    out: dict[str, str] = {}
    for error in exc.errors:
        base = error.field.split("[", 1)[0].split(".", 1)[0]
        out.setdefault(names.get(base, base), error.reason)
    return out
