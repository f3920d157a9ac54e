"""Reading tags for callers: a tag in detail (versions, counts per value, recent changes), who holds it,
and a person's tags with their history. Every function takes the caller's session and never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.errors import FieldError, InvalidInput
from siyu.identity.service import current_super_id
from siyu.segments.service import names_of
from siyu.tags.definitions import get_tag, tag_dict, versions
from siyu.tags.models import TagAssignment, TagDefinition, TagHistory

MAX_LIMIT = 200
TOP_VALUES = 50
RECENT = 20


def _page(limit: object, offset: object) -> tuple[int, int]:
    errors = []
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        errors.append(
            FieldError(
                "limit", f"must be a whole number from 1 to {MAX_LIMIT}", "int_range", {"min": 1, "max": MAX_LIMIT}
            )
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        errors.append(FieldError("offset", "must be a whole number of at least 0", "int_min", {"min": 0}))
    if errors:
        raise InvalidInput(errors)
    return limit, offset  # type: ignore[return-value]


def value_label(tag: TagDefinition, value: str | None, locale: str = "zh-CN") -> str:
    """A model tag's value as people read it ('高' for 'high'); other values as they are."""
    for v in tag.spec.get("values", []) if tag.kind == "model" else ():
        if v.get("code") == value:
            return v["name"] if locale.startswith("zh") else v.get("name_en") or v["name"]
    return value or ""


def value_counts(session: Session, tag: TagDefinition, limit: int = TOP_VALUES) -> list[dict[str, Any]]:
    rows = session.execute(
        select(TagAssignment.value, func.count().label("n"))
        .where(TagAssignment.tag_id == tag.id)
        .group_by(TagAssignment.value)
        .order_by(func.count().desc(), TagAssignment.value)
        .limit(limit)
    ).all()
    return [{"value": v, "count": int(n)} for v, n in rows]


def _history_items(session: Session, rows: list[TagHistory], tags: dict[int, TagDefinition]) -> list[dict[str, Any]]:
    names = names_of(session, sorted({r.super_id for r in rows}))
    return [
        {
            "tag": tags[r.tag_id].code if r.tag_id in tags else None,
            "super_id": r.super_id,
            "name": names.get(r.super_id, ""),
            "change": r.change,
            "value": r.value,
            "previous": r.previous,
            "cause": r.cause,
            "version": r.version,
            "at": r.at,
        }
        for r in rows
    ]


def tag_detail(session: Session, workspace_id: int, code: object, persons: int | None = None) -> dict[str, Any]:
    tag = get_tag(session, workspace_id, code)
    recent = list(
        session.scalars(
            select(TagHistory).where(TagHistory.tag_id == tag.id).order_by(TagHistory.id.desc()).limit(RECENT)
        )
    )
    return {
        **tag_dict(tag, persons),
        "versions": versions(session, tag),
        "value_counts": value_counts(session, tag) if tag.kind != "rule" else [],
        "recent_changes": _history_items(session, recent, {tag.id: tag}),
    }


def members(
    session: Session, workspace_id: int, code: object, limit: int = 50, offset: int = 0, value: str | None = None
) -> dict[str, Any]:
    tag = get_tag(session, workspace_id, code)
    limit, offset = _page(limit, offset)
    q = select(TagAssignment.super_id, TagAssignment.value, TagAssignment.since).where(TagAssignment.tag_id == tag.id)
    total_q = select(func.count()).select_from(TagAssignment).where(TagAssignment.tag_id == tag.id)
    if value is not None:
        q, total_q = q.where(TagAssignment.value == value), total_q.where(TagAssignment.value == value)
    rows = session.execute(q.order_by(TagAssignment.super_id).limit(limit).offset(offset)).all()
    names = names_of(session, [r[0] for r in rows])
    return {
        "tag": tag.code,
        "total": session.scalar(total_q) or 0,
        "limit": limit,
        "offset": offset,
        "items": [{"super_id": s, "name": names.get(s, ""), "value": v, "since": at} for s, v, at in rows],
    }


def person_tags(
    session: Session, workspace_id: int, super_id: object, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    """The tags a person holds now, and their tag history (newest first)."""
    root = current_super_id(session, workspace_id, super_id)
    limit, offset = _page(limit, offset)
    tags = {t.id: t for t in session.scalars(select(TagDefinition).where(TagDefinition.workspace_id == workspace_id))}
    held = session.execute(
        select(TagAssignment.tag_id, TagAssignment.value, TagAssignment.since, TagAssignment.version).where(
            TagAssignment.workspace_id == workspace_id, TagAssignment.super_id == root
        )
    ).all()
    history = list(
        session.scalars(
            select(TagHistory)
            .where(TagHistory.workspace_id == workspace_id, TagHistory.super_id == root)
            .order_by(TagHistory.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    return {
        "super_id": root,
        "tags": [
            {
                "tag": tags[t].code,
                "name": tags[t].name,
                "name_en": tags[t].name_en,
                "kind": tags[t].kind,
                "value": v,
                "value_label": value_label(tags[t], v),
                "since": since,
                "version": version,
            }
            for t, v, since, version in sorted(held, key=lambda r: (tags[r[0]].kind, tags[r[0]].code))
        ],
        "history": _history_items(session, history, tags),
    }
