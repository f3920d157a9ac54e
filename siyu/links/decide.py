"""What happens to one visit of a short link: pure logic, no I/O, shared by redirect and previews.

Order: archived → expired (date, click count) → allowed platforms → 防红 guidance → password →
routing rules → A/B variants → default destination, then UTM and query forwarding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from siyu.links.rules import province_key
from siyu.links.urls import build_destination

REDIRECTED = "redirected"
GUIDANCE = "guidance"
NOT_ALLOWED = "not_allowed"
PASSWORD = "password"
EXPIRED = "expired"
NOT_FOUND = "not_found"
OUTCOMES = (REDIRECTED, GUIDANCE, NOT_ALLOWED, PASSWORD, EXPIRED, NOT_FOUND)
DESKTOP_WECHAT = ("windows", "macos", "linux")


@dataclass(frozen=True)
class CompiledLink:
    """An immutable snapshot of a link, shaped for the hot path (sets, precomputed weights)."""

    id: int
    workspace_id: int
    hostname: str
    slug: str
    destination_url: str
    redirect_status: int
    forward_query: bool
    utm: dict[str, str]
    expires_at: datetime | None
    max_clicks: int | None
    fallback_url: str | None
    password_hash: str | None
    rules: tuple[tuple[dict[str, frozenset[str]], str], ...]
    variants: tuple[tuple[str, int], ...]
    anti_block: frozenset[str]
    allowed: frozenset[str]
    blocked: frozenset[str]
    archived: bool
    person_ref: str | None
    title: str = ""
    needs_geo: bool = False
    pass_visitor_id: bool = False  # applied by the redirect after decide(), which never reads it

    @property
    def total_weight(self) -> int:
        return sum(w for _, w in self.variants)

    @classmethod
    def from_model(cls, link: Any) -> CompiledLink:
        rules = tuple(({k: frozenset(v) for k, v in r["when"].items()}, r["url"]) for r in (link.rules or []))
        return cls(
            id=link.id,
            workspace_id=link.workspace_id,
            hostname=link.hostname,
            slug=link.slug,
            destination_url=link.destination_url,
            redirect_status=link.redirect_status,
            forward_query=link.forward_query,
            pass_visitor_id=bool(getattr(link, "pass_visitor_id", False)),
            utm=dict(link.utm or {}),
            expires_at=link.expires_at,
            max_clicks=link.max_clicks,
            fallback_url=link.fallback_url,
            password_hash=link.password_hash,
            rules=rules,
            variants=tuple((v["url"], int(v["weight"])) for v in (link.variants or [])),
            anti_block=frozenset(link.anti_block_platforms or ()),
            allowed=frozenset(link.allowed_platforms or ()),
            blocked=frozenset(link.blocked_platforms or ()),
            archived=link.archived,
            person_ref=link.person_ref,
            title=link.title or "",
            needs_geo=any(("country" in w or "province" in w) for w, _ in rules),
        )


@dataclass
class Visitor:
    """What we know about the visitor at request time; geo is looked up only if a rule needs it."""

    platform: str
    os: str
    device: str
    visitor_id: str
    geo: Callable[[], tuple[str, str]] | None = None  # -> (country_code, province)
    _geo_value: tuple[str, str] | None = field(default=None, repr=False)

    def country_province(self) -> tuple[str, str]:
        if self._geo_value is None:
            self._geo_value = self.geo() if self.geo else ("", "")
        return self._geo_value

    def groups(self) -> set[str]:
        """Every word an allowed/blocked list may use that describes this visitor."""
        found = {self.platform, self.os, self.device}
        found.add("browser" if self.platform == "none" else "in_app")
        return found


@dataclass(frozen=True)
class Decision:
    outcome: str
    url: str | None = None  # the redirect target, for REDIRECTED (and EXPIRED with a fallback)
    status: int = 302
    variant: int | None = None


def decide(
    link: CompiledLink,
    visitor: Visitor,
    now: datetime,
    clicks_so_far: int = 0,
    query: str = "",
    password_ok: bool = False,
) -> Decision:
    if link.archived:
        return Decision(NOT_FOUND)
    if (link.expires_at is not None and now >= link.expires_at) or (
        link.max_clicks is not None and clicks_so_far >= link.max_clicks
    ):
        return Decision(EXPIRED, url=link.fallback_url, status=302)
    groups = visitor.groups()
    if (link.allowed and not (groups & link.allowed)) or (groups & link.blocked):
        return Decision(NOT_ALLOWED)
    if visitor.platform in link.anti_block:
        return Decision(GUIDANCE, url=final_url(link, link.destination_url, query))
    if link.password_hash and not password_ok:
        return Decision(PASSWORD)
    target, variant = choose_destination(link, visitor)
    return Decision(REDIRECTED, url=final_url(link, target, query), status=link.redirect_status, variant=variant)


def choose_destination(link: CompiledLink, visitor: Visitor) -> tuple[str, int | None]:
    for when, url in link.rules:
        if _matches(when, visitor):
            return url, None
    if link.variants:
        bucket = sticky_bucket(link.id, visitor.visitor_id, link.total_weight)
        for index, (url, weight) in enumerate(link.variants):
            if bucket < weight:
                return url, index
            bucket -= weight
    return link.destination_url, None


def sticky_bucket(link_id: int, visitor_id: str, total: int) -> int:
    """The same visitor lands in the same A/B bucket every time, without storing anything."""
    digest = hashlib.blake2b(f"{link_id}:{visitor_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % total


def _matches(when: dict[str, frozenset[str]], visitor: Visitor) -> bool:
    for key, values in when.items():
        if key == "os":
            ok = visitor.os in values
        elif key == "device":
            ok = visitor.device in values
        elif key == "platform":
            ok = visitor.platform in values
        elif key == "country":
            ok = visitor.country_province()[0].upper() in values
        else:  # province: compared as the rules store it ('广东省' and '广东' are the same place)
            ok = province_key(visitor.country_province()[1]) in values
        if not ok:
            return False
    return True


def final_url(link: CompiledLink, target: str, query: str) -> str:
    return build_destination(target, link.utm, query, link.forward_query)
