"""The link service: create, update, archive, list and look up short links in a workspace.

Every write validates the whole input first (collecting every field error), bumps the link's
`change_seq` so redirect caches elsewhere drop it, and tells in-process listeners after commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.db import after_commit, utcnow
from siyu.errors import Conflict, FieldError, InvalidInput, NotFound
from siyu.links import slugs
from siyu.links.models import LinkTag, ShortLink, Tag
from siyu.links.rules import validate_platform_list, validate_rules, validate_variants
from siyu.links.urls import validate_url, validate_utm
from siyu.security import hash_password
from siyu.workspaces.models import Domain
from siyu.workspaces.service import all_hostnames, default_domain, normalize_hostname

REDIRECT_STATUSES = (301, 302, 307, 308)
MAX_TAGS = 20
EDITABLE = (
    "destination_url",
    "title",
    "notes",
    "redirect_status",
    "forward_query",
    "pass_visitor_id",
    "utm",
    "expires_at",
    "max_clicks",
    "fallback_url",
    "password",
    "rules",
    "variants",
    "anti_block_platforms",
    "allowed_platforms",
    "blocked_platforms",
    "tags",
    "person_ref",
    "archived",
)
CREATE_ONLY = ("slug", "domain")

# (event, link) listeners run inside the transaction (outbox writes) or after commit (cache eviction).
LinkListener = Callable[[Session, str, ShortLink], None]
in_transaction_listeners: list[LinkListener] = []
committed_listeners: list[Callable[[str, int, str, str], None]] = []


@dataclass
class Context:
    """Who is acting, and the hosts that count as ours (destinations may not loop back to them)."""

    workspace_id: int
    actor: str = ""
    base_host: str = ""


def _own_hosts(session: Session, ctx: Context) -> set[str]:
    hosts = all_hostnames(session)
    if ctx.base_host:
        hosts.add(ctx.base_host)
    return hosts


def _parse_datetime(raw: object, field: str) -> datetime | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(
                field, "not an ISO 8601 date-time (e.g. 2026-12-31T23:59:00+08:00)", code="datetime_format"
            ) from exc
    else:
        raise InvalidInput(field, "must be an ISO 8601 date-time string", code="datetime_type")
    if not 1970 <= value.year <= 9998:  # also keeps the UTC conversion clear of datetime's limits
        raise InvalidInput(
            field, "must be between the years 1970 and 9998", code="year_range", params={"min": 1970, "max": 9998}
        )
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _validate_tags(raw: object) -> list[str]:
    if raw in (None, ""):
        return []
    if isinstance(raw, str):
        raw = [t for t in raw.split(",")]
    if not isinstance(raw, list | tuple):
        raise InvalidInput("tags", "must be a list of tag names", code="tags_not_list")
    tags: list[str] = []
    for i, t in enumerate(raw):
        if not isinstance(t, str) or not t.strip() or len(t.strip()) > 64 or "\x00" in t:
            raise InvalidInput(
                f"tags[{i}]", "must be text of 1 to 64 characters, without NUL", code="tag_invalid", params={"max": 64}
            )
        if t.strip() not in tags:
            tags.append(t.strip())
    if len(tags) > MAX_TAGS:
        raise InvalidInput("tags", f"at most {MAX_TAGS} tags", code="tags_too_many", params={"max": MAX_TAGS})
    return tags


def validate_fields(session: Session, ctx: Context, raw: Mapping[str, Any], creating: bool) -> dict[str, Any]:
    """Normalise and check every given field; raise one InvalidInput listing all problems."""
    allowed = EDITABLE + (CREATE_ONLY if creating else ())
    errors: list[FieldError] = [
        FieldError(k, "unknown field", code="field_unknown")
        if k not in CREATE_ONLY
        else FieldError(k, "cannot be changed after creation", code="field_create_only")
        for k in raw
        if k not in allowed
    ]
    own = _own_hosts(session, ctx)
    out: dict[str, Any] = {}

    def check(name: str, fn: Callable[[Any], Any]) -> None:
        if name in raw:
            try:
                out[name] = fn(raw[name])
            except InvalidInput as exc:
                errors.extend(exc.errors)

    if creating and "destination_url" not in raw:
        errors.append(FieldError("destination_url", "a URL is required", code="url_required"))
    check("destination_url", lambda v: validate_url(v, "destination_url", own))
    check("title", lambda v: _text(v, "title", 500))
    check("notes", lambda v: _text(v, "notes", 5000))
    check("redirect_status", _redirect_status)
    check("forward_query", lambda v: _bool(v, "forward_query"))
    check("pass_visitor_id", lambda v: _bool(v, "pass_visitor_id"))
    check("archived", lambda v: _bool(v, "archived"))
    check("utm", validate_utm)
    check("expires_at", lambda v: _parse_datetime(v, "expires_at"))
    check("max_clicks", _max_clicks)
    check("fallback_url", lambda v: None if v in (None, "") else validate_url(v, "fallback_url", own))
    check("password", _password)
    check("rules", lambda v: validate_rules(v, own))
    check("variants", lambda v: validate_variants(v, own))
    check("anti_block_platforms", lambda v: validate_platform_list(v, "anti_block_platforms", False))
    check("allowed_platforms", lambda v: validate_platform_list(v, "allowed_platforms", True))
    check("blocked_platforms", lambda v: validate_platform_list(v, "blocked_platforms", True))
    check("tags", _validate_tags)
    check("person_ref", lambda v: None if v in (None, "") else _text(v, "person_ref", 200))
    if creating:
        check("slug", lambda v: None if v in (None, "") else slugs.validate_custom_slug(v))
        check("domain", lambda v: None if v in (None, "") else normalize_hostname(v, "domain"))
    if errors:
        raise InvalidInput(errors)
    return out


def _text(value: object, field: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be text", code="not_text")
    if len(value) > limit:
        raise InvalidInput(field, f"at most {limit} characters", code="max_length", params={"max": limit})
    if "\x00" in value:  # PostgreSQL refuses NUL in text; say so instead of failing on write
        raise InvalidInput(field, "must not contain NUL characters", code="text_nul")
    return value.strip()


def _bool(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    raise InvalidInput(field, "must be true or false", code="not_bool")


def _redirect_status(value: object) -> int:
    if isinstance(value, bool) or value not in REDIRECT_STATUSES:
        choices = ", ".join(map(str, REDIRECT_STATUSES))
        raise InvalidInput("redirect_status", f"must be one of {choices}", code="one_of", params={"choices": choices})
    return int(value)  # type: ignore[arg-type]


def _max_clicks(value: object) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**12:
        raise InvalidInput("max_clicks", "must be a whole number of at least 1", code="int_min", params={"min": 1})
    return value


def _password(value: object) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not 4 <= len(value) <= 200:
        raise InvalidInput(
            "password", "must be 4 to 200 characters", code="length_range", params={"min": 4, "max": 200}
        )
    return value


def _resolve_domain(session: Session, workspace_id: int, hostname: str | None) -> str:
    if hostname is None:
        return default_domain(session, workspace_id).hostname
    domain = session.scalar(select(Domain).where(Domain.hostname == hostname))
    if domain is None or domain.workspace_id != workspace_id:
        raise InvalidInput(
            "domain",
            f"'{hostname}' is not a domain of this workspace",
            code="domain_not_ours",
            params={"host": hostname},
        )
    return domain.hostname


def _next_seq(session: Session) -> int:
    return (session.scalar(select(func.max(ShortLink.change_seq))) or 0) + 1


def _slug_taken(session: Session, hostname: str, slug: str) -> bool:
    return (
        session.scalar(
            select(ShortLink.id).where(ShortLink.hostname == hostname, func.lower(ShortLink.slug) == slug.lower())
        )
        is not None
    )


def create_link(session: Session, ctx: Context, raw: Mapping[str, Any]) -> ShortLink:
    values = validate_fields(session, ctx, raw, creating=True)
    hostname = _resolve_domain(session, ctx.workspace_id, values.pop("domain", None))
    custom = values.pop("slug", None)
    tags = values.pop("tags", [])
    password = values.pop("password", None)
    link = ShortLink(workspace_id=ctx.workspace_id, hostname=hostname, created_by=ctx.actor, **values)
    link.password_hash = hash_password(password) if password else None
    link.change_seq = _next_seq(session)
    if custom:
        # Case-insensitive uniqueness: 'Sale' and 'sale' would confuse people reading a poster.
        if _slug_taken(session, hostname, custom):
            raise Conflict(
                "slug",
                f"'{custom}' is already used on {hostname}",
                code="slug_taken",
                params={"slug": custom, "host": hostname},
            )
        link.slug = custom
        _insert(session, link)
    else:
        for length in slugs.RANDOM_LENGTHS:
            link.slug = slugs.random_slug(length)
            if not _slug_taken(session, hostname, link.slug) and _insert(session, link, retry_ok=True):
                break
        else:  # pragma: no cover - needs ~56^8 links
            raise Conflict("slug", "could not find a free random slug; try a custom slug", code="slug_exhausted")
    _set_tags(session, link, tags)
    _notify(session, "link.created", link)
    return link


def _insert(session: Session, link: ShortLink, retry_ok: bool = False) -> bool:
    try:
        with session.begin_nested():
            session.add(link)
            session.flush()
        return True
    except IntegrityError as exc:
        if retry_ok:
            return False
        raise Conflict(
            "slug",
            f"'{link.slug}' is already used on {link.hostname}",
            code="slug_taken",
            params={"slug": link.slug, "host": link.hostname},
        ) from exc


def update_link(session: Session, ctx: Context, link_id: int, raw: Mapping[str, Any]) -> ShortLink:
    link = get_link(session, ctx.workspace_id, link_id)
    values = validate_fields(session, ctx, raw, creating=False)
    if "password" in values:
        password = values.pop("password")
        link.password_hash = hash_password(password) if password else None
    tags = values.pop("tags", None)
    for key, value in values.items():
        setattr(link, key, value)
    if tags is not None:
        _set_tags(session, link, tags)
    link.updated_at = utcnow()
    link.change_seq = _next_seq(session)
    session.flush()
    _notify(session, "link.updated", link)
    return link


def archive_link(session: Session, ctx: Context, link_id: int) -> ShortLink:
    return update_link(session, ctx, link_id, {"archived": True})


def _set_tags(session: Session, link: ShortLink, names: list[str]) -> None:
    existing = {
        t.name: t
        for t in session.scalars(select(Tag).where(Tag.workspace_id == link.workspace_id, Tag.name.in_(names)))
    }
    tags = []
    for name in names:
        tag = existing.get(name)
        if tag is None:
            tag = Tag(workspace_id=link.workspace_id, name=name)
            session.add(tag)
        tags.append(tag)
    link.tags = sorted(tags, key=lambda t: t.name)  # the order every later read returns (relationship order_by)
    session.flush()


def _notify(session: Session, event: str, link: ShortLink) -> None:
    for listener in in_transaction_listeners:
        listener(session, event, link)
    args = (event, link.id, link.hostname, link.slug)
    after_commit(session, lambda: [listener(*args) for listener in committed_listeners])


def get_link(session: Session, workspace_id: int, link_id: int) -> ShortLink:
    link = session.get(ShortLink, link_id)
    if link is None or link.workspace_id != workspace_id:
        raise NotFound(f"link {link_id} not found")
    return link


def get_link_by_slug(session: Session, workspace_id: int, slug: str, hostname: str | None = None) -> ShortLink:
    query = select(ShortLink).where(ShortLink.workspace_id == workspace_id, ShortLink.slug == slug)
    if hostname:
        query = query.where(ShortLink.hostname == hostname.lower())
    link = session.scalars(query.order_by(ShortLink.id)).first()
    if link is None:
        raise NotFound(f"link '{slug}' not found")
    return link


def links_by_ids(session: Session, workspace_id: int, ids: list[int]) -> list[ShortLink]:
    if not ids:
        return []
    return list(session.scalars(select(ShortLink).where(ShortLink.workspace_id == workspace_id, ShortLink.id.in_(ids))))


def find_for_redirect(
    session: Session, hostname: str, slug: str, primary_host: str | None = None
) -> ShortLink | None:
    """The link a visit means: the exact (host, slug) first, then the lookups people rely on —
    the slug typed in another case (slugs are unique regardless of case), the host without its
    port, and, for a host that is no registered domain at all (an IP address, an alias), the
    installation's primary domain."""
    hosts = [hostname]
    if ":" in hostname:
        hosts.append(hostname.rsplit(":", 1)[0])
    if (
        primary_host
        and primary_host not in hosts
        and session.scalar(select(Domain.id).where(Domain.hostname.in_(hosts))) is None
    ):
        hosts.append(primary_host)
    for host in hosts:
        link = session.scalar(select(ShortLink).where(ShortLink.hostname == host, ShortLink.slug == slug))
        if link is None:
            link = session.scalars(
                select(ShortLink)
                .where(ShortLink.hostname == host, func.lower(ShortLink.slug) == slug.lower())
                .order_by(ShortLink.id)
            ).first()
        if link is not None:
            return link
    return None


def find_by_destination(session: Session, workspace_id: int, url: str) -> ShortLink | None:
    return session.scalars(
        select(ShortLink)
        .where(ShortLink.workspace_id == workspace_id, ShortLink.destination_url == url, ~ShortLink.archived)
        .order_by(ShortLink.id)
    ).first()


SORTS = {
    "created": ShortLink.created_at.desc(),
    "-created": ShortLink.created_at.asc(),
    "title": ShortLink.title.asc(),
    "slug": ShortLink.slug.asc(),
}


@dataclass
class LinkQuery:
    search: str = ""
    tag: str | None = None
    domain: str | None = None
    created_by: str | None = None
    archived: bool | None = False
    expired: bool | None = None
    sort: str = "created"
    limit: int = 50
    offset: int = 0


def list_links(session: Session, workspace_id: int, q: LinkQuery) -> tuple[list[ShortLink], int]:
    if q.sort not in SORTS:
        choices = ", ".join(SORTS)
        raise InvalidInput("sort", f"must be one of {choices}", code="one_of", params={"choices": choices})
    if not 1 <= q.limit <= 1000:
        raise InvalidInput("limit", "must be between 1 and 1000", code="number_range", params={"min": 1, "max": 1000})
    if q.offset < 0:
        raise InvalidInput("offset", "must be 0 or more", code="not_negative")
    query: Select = select(ShortLink).where(ShortLink.workspace_id == workspace_id)
    if q.search:
        # '%' and '_' are searched for literally, not as LIKE wildcards ('spring_sale', '50%').
        text = q.search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{text}%"
        query = query.where(
            or_(
                func.lower(ShortLink.slug).like(like, escape="\\"),
                func.lower(ShortLink.title).like(like, escape="\\"),
                func.lower(ShortLink.destination_url).like(like, escape="\\"),
            )
        )
    if q.tag:
        query = query.where(
            ShortLink.id.in_(
                select(LinkTag.link_id).join(Tag).where(Tag.name == q.tag, Tag.workspace_id == workspace_id)
            )
        )
    if q.domain:
        query = query.where(ShortLink.hostname == q.domain.lower())
    if q.created_by:
        query = query.where(ShortLink.created_by == q.created_by)
    if q.archived is not None:
        query = query.where(ShortLink.archived == q.archived)
    if q.expired is not None:
        now = utcnow()
        is_expired = ShortLink.expires_at.is_not(None) & (ShortLink.expires_at <= now)
        query = query.where(is_expired if q.expired else ~is_expired)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(session.scalars(query.order_by(SORTS[q.sort], ShortLink.id.desc()).limit(q.limit).offset(q.offset)))
    return rows, total


def short_url(link: ShortLink, scheme: str = "https") -> str:
    return f"{scheme}://{link.hostname}/{link.slug}"


def changed_since(session: Session, seq: int) -> list[tuple[int, int, str, str]]:
    """(change_seq, link id, hostname, slug) of every link written after `seq`."""
    return [
        (row.change_seq, row.id, row.hostname, row.slug)
        for row in session.execute(
            select(ShortLink.change_seq, ShortLink.id, ShortLink.hostname, ShortLink.slug).where(
                ShortLink.change_seq > seq
            )
        )
    ]


def max_change_seq(session: Session) -> int:
    return session.scalar(select(func.max(ShortLink.change_seq))) or 0


def link_as_dict(link: ShortLink, scheme: str = "https") -> dict[str, Any]:
    return {
        "id": link.id,
        "short_url": short_url(link, scheme),
        "qr_url": short_url(link, scheme) + "/q",
        "domain": link.hostname,
        "slug": link.slug,
        "destination_url": link.destination_url,
        "title": link.title,
        "notes": link.notes,
        "tags": [t.name for t in link.tags],
        "redirect_status": link.redirect_status,
        "forward_query": link.forward_query,
        "pass_visitor_id": link.pass_visitor_id,
        "utm": link.utm or {},
        "expires_at": link.expires_at.isoformat() if link.expires_at else None,
        "max_clicks": link.max_clicks,
        "fallback_url": link.fallback_url,
        "has_password": bool(link.password_hash),
        "rules": link.rules or [],
        "variants": link.variants or [],
        "anti_block_platforms": link.anti_block_platforms or [],
        "allowed_platforms": link.allowed_platforms or [],
        "blocked_platforms": link.blocked_platforms or [],
        "person_ref": link.person_ref,
        "archived": link.archived,
        "created_by": link.created_by,
        "created_at": link.created_at.isoformat(),
        "updated_at": link.updated_at.isoformat(),
    }
