"""Segments (人群): definitions, the live count, recomputation with membership history, static snapshots.

A segment is a rule tree (siyu.segments.rules) over the per-person facts. Its members are kept in
SQL and recomputed on the schedule and on demand; whoever joins or leaves is recorded. A snapshot
freezes the members of the moment (a static segment, e.g. for an audience export that must not
change). Counting a rule while it is edited needs no saving: `preview` compiles and counts it.

Functions that take a session never commit; those that take the Database commit their own work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from siyu.db import Database, utcnow
from siyu.errors import Conflict, FieldError, InvalidInput, NotFound
from siyu.events.store import EventStore
from siyu.i18n import register
from siyu.identity.bulk import bulk_insert, db_value
from siyu.profiles.models import ProfileTrait
from siyu.profiles.service import NAME_TRAITS, display_name
from siyu.segments import facts, rules
from siyu.segments.compile import compile_rule, count_query, members_query
from siyu.segments.models import Segment, SegmentHistory, SegmentMember, SegmentSnapshot, SegmentVersion, SnapshotMember
from siyu.segments.vocabulary import vocabulary
from siyu.workspaces.models import Workspace

MAX_NAME = 100
MAX_DESCRIPTION = 500
MAX_SEGMENTS = 500
MAX_LIMIT = 200
SAMPLE = 10
CHUNK = 500
FIELDS = {"name", "description", "rule"}

register(
    {
        "error.segment_exists": ("人群“{name}”已存在", "a segment named '{name}' already exists"),
        "error.segment_limit": ("每个工作区最多 {max} 个人群", "a workspace may have at most {max} segments"),
        "error.segment_name": ("须为 1 到 {max} 个字符的文本", "must be text of 1 to {max} characters"),
    }
)


@dataclass
class SegmentResult:
    segment_id: int
    name: str
    members: int
    joined: int = 0
    left: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


# --- definitions ------------------------------------------------------------------------------------------------


def get_segment(session: Session, workspace_id: int, segment_id: object) -> Segment:
    if isinstance(segment_id, bool) or not isinstance(segment_id, int):
        raise NotFound("segment")
    seg = session.get(Segment, segment_id)
    if seg is None or seg.workspace_id != workspace_id:
        raise NotFound(f"segment {segment_id}")
    return seg


def list_segments(session: Session, workspace_id: int) -> list[Segment]:
    return list(session.scalars(select(Segment).where(Segment.workspace_id == workspace_id).order_by(Segment.id)))


def segment_dict(seg: Segment, persons: int | None = None) -> dict[str, Any]:
    return {
        "id": seg.id,
        "name": seg.name,
        "description": seg.description,
        "rule": seg.rule,
        "version": seg.version,
        "member_count": seg.member_count,
        "coverage": round(seg.member_count / persons, 4) if persons else None,
        "computed_at": seg.computed_at,
        "created_by": seg.created_by,
        "created_at": seg.created_at,
        "updated_at": seg.updated_at,
    }


def _checked(session: Session, workspace_id: int, raw: Mapping[str, Any], creating: bool) -> dict[str, Any]:
    errors = [FieldError(str(k)[:40], "unknown field", "field_unknown") for k in raw if k not in FIELDS]
    values: dict[str, Any] = {}
    name = raw.get("name")
    if name is not None or creating:
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME or "\x00" in name:
            errors.append(
                FieldError("name", f"must be text of 1 to {MAX_NAME} characters", "segment_name", {"max": MAX_NAME})
            )
        else:
            values["name"] = name.strip()
    description = raw.get("description")
    if description is not None:
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION or "\x00" in description:
            errors.append(
                FieldError(
                    "description",
                    f"must be text of at most {MAX_DESCRIPTION} characters",
                    "text_max_length",
                    {"max": MAX_DESCRIPTION},
                )
            )
        else:
            values["description"] = description.strip()
    if raw.get("rule") is not None or creating:
        try:
            rules.parse(raw.get("rule"), vocabulary(session, workspace_id))
            values["rule"] = raw.get("rule")
        except InvalidInput as exc:
            errors += exc.errors
    if errors:
        raise InvalidInput(errors)
    return values


def _name_free(session: Session, workspace_id: int, name: str, except_id: int | None = None) -> None:
    q = select(Segment.id).where(Segment.workspace_id == workspace_id, Segment.name == name)
    found = session.scalar(q)
    if found is not None and found != except_id:
        raise Conflict("name", f"a segment named '{name}' already exists", code="segment_exists", params={"name": name})


def create_segment(session: Session, workspace_id: int, raw: Mapping[str, Any], actor: str = "") -> Segment:
    if session.get(Workspace, workspace_id) is None:
        raise NotFound(f"workspace {workspace_id}")
    values = _checked(session, workspace_id, raw, creating=True)
    _name_free(session, workspace_id, values["name"])
    count = session.scalar(select(func.count()).select_from(Segment).where(Segment.workspace_id == workspace_id)) or 0
    if count >= MAX_SEGMENTS:
        raise InvalidInput(
            "name",
            f"a workspace may have at most {MAX_SEGMENTS} segments",
            code="segment_limit",
            params={"max": MAX_SEGMENTS},
        )
    now = utcnow()
    seg = Segment(
        workspace_id=workspace_id,
        name=values["name"],
        description=values.get("description", ""),
        rule=values["rule"],
        version=1,
        member_count=0,
        created_by=actor[:200],
        created_at=now,
        updated_at=now,
    )
    session.add(seg)
    session.flush()
    _record_version(session, seg, actor)
    return seg


def update_segment(
    session: Session, workspace_id: int, segment_id: object, raw: Mapping[str, Any], actor: str = ""
) -> Segment:
    seg = get_segment(session, workspace_id, segment_id)
    values = _checked(session, workspace_id, raw, creating=False)
    if "name" in values:
        _name_free(session, workspace_id, values["name"], seg.id)
    if not any(getattr(seg, k) != v for k, v in values.items()):
        return seg
    versioned = any(k in values and getattr(seg, k) != values[k] for k in ("name", "rule"))
    for key, value in values.items():
        setattr(seg, key, value)
    seg.updated_at = utcnow()
    if versioned:
        seg.version += 1
        session.flush()
        _record_version(session, seg, actor)
    session.flush()
    return seg


def delete_segment(session: Session, workspace_id: int, segment_id: object) -> None:
    """Delete a segment, its members and history (snapshots stay, as static segments)."""
    seg = get_segment(session, workspace_id, segment_id)
    session.delete(seg)
    session.flush()


def versions(session: Session, seg: Segment) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(SegmentVersion).where(SegmentVersion.segment_id == seg.id).order_by(SegmentVersion.version.desc())
    )
    return [
        {"version": v.version, "name": v.name, "rule": v.rule, "created_by": v.created_by, "created_at": v.created_at}
        for v in rows
    ]


def _record_version(session: Session, seg: Segment, actor: str) -> None:
    session.add(
        SegmentVersion(
            segment_id=seg.id,
            version=seg.version,
            name=seg.name,
            rule=seg.rule,
            created_by=actor[:200],
            created_at=utcnow(),
        )
    )
    session.flush()


# --- counting ---------------------------------------------------------------------------------------------------


def persons_count(store: EventStore, workspace_id: int) -> int:
    """Live persons in the facts (the denominator of coverage)."""
    if not facts.exists(store):
        return 0
    return int(store.query("SELECT count(*) FROM facts_persons WHERE workspace_id = ?", [workspace_id])[0][0])


def preview(
    session: Session, store: EventStore, workspace_id: int, rule: object, now: datetime | None = None
) -> dict[str, Any]:
    """The live count of a rule being edited: validated (errors name the node), compiled, counted over
    the facts as last refreshed (`refreshed_at`), with a few members as a sample."""
    node = rules.parse(rule, vocabulary(session, workspace_id))
    when = _naive(now or datetime.now(UTC))
    if not facts.exists(store):
        return {"count": 0, "persons": 0, "sample": [], "refreshed_at": None}
    compiled = compile_rule(node, workspace_id, when)
    sql, params = count_query(compiled, workspace_id)
    count = int(store.query(sql, params)[0][0])
    sample_sql, sample_params = members_query(compiled, workspace_id)
    sample = [int(r[0]) for r in store.query(f"{sample_sql} ORDER BY p.super_id DESC LIMIT {SAMPLE}", sample_params)]
    return {
        "count": count,
        "persons": persons_count(store, workspace_id),
        "sample": sample,
        "refreshed_at": facts.refreshed_at(store, workspace_id),
    }


def member_ids(store: EventStore, workspace_id: int, node: rules.Node, now: datetime) -> set[int]:
    sql, params = members_query(compile_rule(node, workspace_id, _naive(now)), workspace_id)
    return {int(r[0]) for r in store.query(sql, params)}


# --- recomputing ----------------------------------------------------------------------------------------------


def recompute_segments(
    db: Database,
    store: EventStore,
    workspace_id: int,
    segment_ids: Iterable[int] | None = None,
    now: datetime | None = None,
) -> list[SegmentResult]:
    """Recompute the members of the workspace's segments (or those named) from the facts (refreshed by
    the caller; built first if the workspace has none yet); joins and leaves are recorded. A segment
    that fails is reported and the rest go on."""
    now = _naive(now or datetime.now(UTC))
    wanted = set(segment_ids) if segment_ids is not None else None
    if facts.refreshed_at(store, workspace_id) is None:  # the workspace's first computation
        facts.refresh(db, store, workspace_id)
    with db.session() as session:
        vocab = vocabulary(session, workspace_id, strict_traits=False)
        segs = [
            (s.id, s.name, s.rule) for s in list_segments(session, workspace_id) if wanted is None or s.id in wanted
        ]
    results = []
    for seg_id, name, rule in segs:
        try:
            node = rules.parse(rule, vocab)
            members = member_ids(store, workspace_id, node, now)
            results.append(_store_members(db, workspace_id, seg_id, members, now.replace(tzinfo=UTC)))
        except InvalidInput as exc:
            results.append(SegmentResult(seg_id, name, 0, error=str(exc)))
    return results


def _store_members(db: Database, workspace_id: int, segment_id: int, members: set[int], at: datetime) -> SegmentResult:
    with db.session() as session:
        seg = session.get(Segment, segment_id)
        if seg is None:
            return SegmentResult(segment_id, "", 0)
        current = set(session.scalars(select(SegmentMember.super_id).where(SegmentMember.segment_id == segment_id)))
        joined, left = sorted(members - current), sorted(current - members)
        for i in range(0, len(left), CHUNK):
            session.execute(
                delete(SegmentMember)
                .where(SegmentMember.segment_id == segment_id, SegmentMember.super_id.in_(left[i : i + CHUNK]))
                .execution_options(synchronize_session=False)
            )
        table, history = SegmentMember.__table__, SegmentHistory.__table__
        since, when = db_value(session, table, "since", at), db_value(session, history, "at", at)
        bulk_insert(
            session,
            table,
            ("workspace_id", "segment_id", "super_id", "since"),
            ((workspace_id, segment_id, s, since) for s in joined),
        )
        bulk_insert(
            session,
            history,
            ("workspace_id", "segment_id", "super_id", "change", "version", "at"),
            [(workspace_id, segment_id, s, "joined", seg.version, when) for s in joined]
            + [(workspace_id, segment_id, s, "left", seg.version, when) for s in left],
        )
        seg.member_count = len(members)
        seg.computed_at = at
        return SegmentResult(segment_id, seg.name, len(members), len(joined), len(left))


# --- reading members and history ------------------------------------------------------------------------------------


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


def names_of(session: Session, person_ids: list[int]) -> dict[int, str]:
    """A display name per person (name traits only: a list shows many people at once)."""
    values: dict[int, dict[str, Any]] = {p: {} for p in person_ids}
    for i in range(0, len(person_ids), CHUNK):
        for pid, key, value in session.execute(
            select(ProfileTrait.person_id, ProfileTrait.key, ProfileTrait.value).where(
                ProfileTrait.person_id.in_(person_ids[i : i + CHUNK]),
                ProfileTrait.key.in_([*NAME_TRAITS, "first_name", "last_name", "firstName", "lastName"]),
            )
        ):
            values[pid][key] = value
    return {p: display_name(v, []) for p, v in values.items()}


def members(
    session: Session, workspace_id: int, segment_id: object, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    seg = get_segment(session, workspace_id, segment_id)
    limit, offset = _page(limit, offset)
    rows = session.execute(
        select(SegmentMember.super_id, SegmentMember.since)
        .where(SegmentMember.segment_id == seg.id)
        .order_by(SegmentMember.super_id)
        .limit(limit)
        .offset(offset)
    ).all()
    names = names_of(session, [r[0] for r in rows])
    return {
        "segment_id": seg.id,
        "total": seg.member_count,
        "limit": limit,
        "offset": offset,
        "items": [{"super_id": s, "name": names.get(s, ""), "since": since} for s, since in rows],
    }


def history(
    session: Session,
    workspace_id: int,
    segment_id: object,
    limit: int = 50,
    offset: int = 0,
    super_id: int | None = None,
) -> dict[str, Any]:
    """Who joined and left, newest first (optionally for one person)."""
    seg = get_segment(session, workspace_id, segment_id)
    limit, offset = _page(limit, offset)
    q = select(SegmentHistory).where(SegmentHistory.segment_id == seg.id)
    if super_id is not None:
        q = q.where(SegmentHistory.super_id == super_id)
    rows = list(session.scalars(q.order_by(SegmentHistory.id.desc()).limit(limit).offset(offset)))
    names = names_of(session, sorted({r.super_id for r in rows}))
    return {
        "segment_id": seg.id,
        "limit": limit,
        "offset": offset,
        "items": [
            {
                "super_id": r.super_id,
                "name": names.get(r.super_id, ""),
                "change": r.change,
                "version": r.version,
                "at": r.at,
            }
            for r in rows
        ],
    }


# --- snapshots (static segments) -------------------------------------------------------------------------------------


def create_snapshot(
    session: Session, workspace_id: int, segment_id: object, actor: str = "", name: str | None = None
) -> SegmentSnapshot:
    """Freeze the segment's members as of its last computation (`computed_at`)."""
    seg = get_segment(session, workspace_id, segment_id)
    label = (name or "").strip() or f"{seg.name} · {utcnow():%Y-%m-%d %H:%M}"
    if len(label) > MAX_NAME or "\x00" in label:
        raise InvalidInput(
            "name", f"must be text of 1 to {MAX_NAME} characters", code="segment_name", params={"max": MAX_NAME}
        )
    ids = list(session.scalars(select(SegmentMember.super_id).where(SegmentMember.segment_id == seg.id)))
    snap = SegmentSnapshot(
        workspace_id=workspace_id,
        segment_id=seg.id,
        name=label,
        rule=seg.rule,
        version=seg.version,
        member_count=len(ids),
        created_by=actor[:200],
        created_at=utcnow(),
    )
    session.add(snap)
    session.flush()
    bulk_insert(
        session,
        SnapshotMember.__table__,
        ("workspace_id", "snapshot_id", "super_id"),
        ((workspace_id, snap.id, s) for s in ids),
    )
    return snap


def get_snapshot(session: Session, workspace_id: int, snapshot_id: object) -> SegmentSnapshot:
    if isinstance(snapshot_id, bool) or not isinstance(snapshot_id, int):
        raise NotFound("snapshot")
    snap = session.get(SegmentSnapshot, snapshot_id)
    if snap is None or snap.workspace_id != workspace_id:
        raise NotFound(f"snapshot {snapshot_id}")
    return snap


def list_snapshots(session: Session, workspace_id: int, segment_id: int | None = None) -> list[dict[str, Any]]:
    q = select(SegmentSnapshot).where(SegmentSnapshot.workspace_id == workspace_id)
    if segment_id is not None:
        q = q.where(SegmentSnapshot.segment_id == segment_id)
    return [snapshot_dict(s) for s in session.scalars(q.order_by(SegmentSnapshot.id.desc()).limit(200))]


def snapshot_dict(snap: SegmentSnapshot) -> dict[str, Any]:
    return {
        "id": snap.id,
        "segment_id": snap.segment_id,
        "name": snap.name,
        "rule": snap.rule,
        "version": snap.version,
        "member_count": snap.member_count,
        "created_by": snap.created_by,
        "created_at": snap.created_at,
    }


def snapshot_members(session: Session, snapshot_id: int) -> list[int]:
    return list(session.scalars(select(SnapshotMember.super_id).where(SnapshotMember.snapshot_id == snapshot_id)))
