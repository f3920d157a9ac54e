"""Computing tags: who holds each fact and rule tag now, what changed, and the values models write.

A computation reads the per-person facts (siyu.segments.facts, refreshed first), compares the result
with the tag's current holders (`facts_tags`, a copy of `tag_assignments`), and writes only the
difference to SQL: assignments inserted, deleted or changed, and one history row per change (gained,
lost, changed; with the cause and the tag's version). Then `facts_tags` takes the same difference,
so a rule tag that reads another tag sees its new holders.

Streaming: `stream` decides the simple event-count rule tags (siyu.tags.definitions.streaming_rule)
for the few persons a batch of stitched events touched, from the raw events, and writes their
changes the same way (cause 'stream').
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from siyu.db import Database, utcnow
from siyu.errors import FieldError, InvalidInput
from siyu.events.store import EventStore
from siyu.i18n import register
from siyu.identity.bulk import bulk_insert, db_value
from siyu.identity.models import IdentityPerson
from siyu.segments import facts, rules
from siyu.segments.compile import compile_rule, members_query
from siyu.segments.vocabulary import vocabulary
from siyu.tags.definitions import get_tag, list_tags, streaming_rule
from siyu.tags.models import TagAssignment, TagDefinition, TagHistory

log = logging.getLogger("siyu.tags")

CHUNK = 500
MAX_MODEL_VALUES = 1_000_000  # persons per set_model_tag_values call
CAUSES = ("schedule", "manual", "stream", "model", "merge")

register(
    {
        "error.tag_not_model": (
            "“{code}”是{kind}标签：只有模型标签可以写入值",
            "'{code}' is a {kind} tag: only model tags take values",
        ),
        "error.tag_unknown_persons": ("本工作区没有这些用户：{ids}", "unknown super IDs in this workspace: {ids}"),
    }
)


@dataclass
class Change:
    super_id: int
    previous: str | None
    value: str | None
    change: str  # gained | lost | changed


@dataclass
class TagResult:
    code: str
    members: int
    gained: int = 0
    lost: int = 0
    changed: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


# --- writing a difference -------------------------------------------------------------------------------------


def apply_changes(
    session: Session, tag: TagDefinition, changes: Sequence[Change], cause: str, at: datetime | None = None
) -> None:
    """Write a tag's changes to `tag_assignments` and `tag_history` (the caller commits)."""
    if not changes:
        return
    at = at or utcnow()
    ws, tag_id, version = tag.workspace_id, tag.id, tag.version
    gone = [c.super_id for c in changes if c.change == "lost"]
    for i in range(0, len(gone), CHUNK):
        session.execute(
            delete(TagAssignment)
            .where(TagAssignment.tag_id == tag_id, TagAssignment.super_id.in_(gone[i : i + CHUNK]))
            .execution_options(synchronize_session=False)
        )
    moved = [{"b_super": c.super_id, "b_value": c.value} for c in changes if c.change == "changed"]
    if moved:
        session.connection().execute(
            update(TagAssignment.__table__)
            .where(
                TagAssignment.__table__.c.tag_id == tag_id, TagAssignment.__table__.c.super_id == bindparam("b_super")
            )
            .values(value=bindparam("b_value"), version=version),
            moved,
        )
    table = TagAssignment.__table__
    since = db_value(session, table, "since", at)
    bulk_insert(
        session,
        table,
        ("workspace_id", "tag_id", "super_id", "value", "version", "since"),
        ((ws, tag_id, c.super_id, c.value, version, since) for c in changes if c.change == "gained"),
    )
    history = TagHistory.__table__
    when = db_value(session, history, "at", at)
    bulk_insert(
        session,
        history,
        ("workspace_id", "tag_id", "super_id", "change", "value", "previous", "cause", "version", "at"),
        ((ws, tag_id, c.super_id, c.change, c.value, c.previous, cause, version, when) for c in changes),
    )


def _facts_apply(store: EventStore, workspace_id: int, tag_id: int, changes: Sequence[Change]) -> None:
    """The same difference on `facts_tags` (one DuckDB transaction)."""
    if not changes:
        return
    drop = pa.table({"super_id": pa.array([c.super_id for c in changes if c.change != "gained"], pa.int64())})
    add = [c for c in changes if c.change != "lost"]
    rows = pa.table(
        {
            "super_id": pa.array([c.super_id for c in add], pa.int64()),
            "value": pa.array([c.value for c in add], pa.string()),
        }
    )
    with store.writing() as cur:
        if drop.num_rows:
            cur.register("dropped_tag_rows", drop)
            cur.execute(
                "DELETE FROM facts_tags WHERE workspace_id = ? AND tag_id = ? "
                "AND super_id IN (SELECT super_id FROM dropped_tag_rows)",
                [workspace_id, tag_id],
            )
            cur.unregister("dropped_tag_rows")
        if rows.num_rows:
            cur.register("added_tag_rows", rows)
            cur.execute(
                "INSERT INTO facts_tags SELECT ?, super_id, ?, value FROM added_tag_rows", [workspace_id, tag_id]
            )
            cur.unregister("added_tag_rows")


# --- computing fact and rule tags ----------------------------------------------------------------------------------

_DIFF = """
WITH n AS ({members}), o AS (SELECT super_id, value FROM facts_tags WHERE workspace_id = ? AND tag_id = ?)
SELECT coalesce(n.super_id, o.super_id), o.value, n.value,
       CASE WHEN o.super_id IS NULL THEN 'gained' WHEN n.super_id IS NULL THEN 'lost' ELSE 'changed' END
FROM n FULL OUTER JOIN o ON n.super_id = o.super_id
WHERE o.super_id IS NULL OR n.super_id IS NULL OR n.value IS DISTINCT FROM o.value
"""
_FACT_MEMBERS = (
    "SELECT t.super_id, left(t.text, 200) AS value FROM facts_traits t SEMI JOIN facts_persons p "
    "ON p.workspace_id = t.workspace_id AND p.super_id = t.super_id WHERE t.workspace_id = ? AND t.key = ?"
)


def _members_sql(tag: TagDefinition, node: rules.Node | None, now: datetime) -> tuple[str, list[Any]]:
    ws = tag.workspace_id
    if tag.kind == "fact":
        return _FACT_MEMBERS, [ws, tag.spec["trait"]]
    assert node is not None
    sql, params = members_query(compile_rule(node, ws, now), ws)
    return sql.replace("SELECT p.super_id FROM", "SELECT p.super_id, NULL::VARCHAR AS value FROM", 1), params


def _order(tags: list[TagDefinition], nodes: Mapping[int, rules.Node]) -> list[TagDefinition]:
    """Fact tags first, then rule tags after every tag they read (definitions refuse cycles)."""
    by_id = {t.id: t for t in tags}
    done: set[int] = set()
    out: list[TagDefinition] = []

    def visit(tag: TagDefinition, depth: int = 0) -> None:
        if tag.id in done or depth > len(tags):
            return
        for dep in sorted(rules.tag_ids(nodes[tag.id])) if tag.id in nodes else ():
            if dep in by_id:
                visit(by_id[dep], depth + 1)
        done.add(tag.id)
        out.append(tag)

    for tag in sorted(tags, key=lambda t: (t.kind != "fact", t.id)):
        visit(tag)
    return out


def compute_tags(
    db: Database,
    store: EventStore,
    workspace_id: int,
    *,
    cause: str = "manual",
    codes: Iterable[str] | None = None,
    now: datetime | None = None,
) -> list[TagResult]:
    """Recompute the workspace's enabled fact and rule tags (or those named) from its facts, which the
    caller has refreshed; write the differences. A tag that fails is reported and the rest go on."""
    now = _naive(now or datetime.now(UTC))
    wanted = set(codes) if codes is not None else None
    with db.session() as session:
        tags = [t for t in list_tags(session, workspace_id) if t.enabled and t.kind in ("fact", "rule")]
        vocab = vocabulary(session, workspace_id, strict_traits=False)
        for t in tags:
            session.expunge(t)
    nodes: dict[int, rules.Node] = {}
    results: list[TagResult] = []
    for tag in tags:
        if tag.kind == "rule":
            try:
                nodes[tag.id] = rules.parse(tag.spec.get("rule"), vocab)
            except InvalidInput as exc:
                if wanted is None or tag.code in wanted:
                    results.append(TagResult(tag.code, tag.member_count, error=str(exc)))
    for tag in _order([t for t in tags if t.kind == "fact" or t.id in nodes], nodes):
        if wanted is not None and tag.code not in wanted:
            continue
        try:
            results.append(_compute_one(db, store, tag, nodes.get(tag.id), cause, now))
        except Exception as exc:  # one broken tag must not stop the others
            log.exception("computing tag %s of workspace %s failed", tag.code, workspace_id)
            results.append(TagResult(tag.code, tag.member_count, error=str(exc)[:500]))
    return results


def _compute_one(
    db: Database, store: EventStore, tag: TagDefinition, node: rules.Node | None, cause: str, now: datetime
) -> TagResult:
    members, params = _members_sql(tag, node, now)
    rows = store.query(_DIFF.format(members=members), [*params, tag.workspace_id, tag.id])
    changes = [Change(int(s), old, new, change) for s, old, new, change in rows]
    at = now.replace(tzinfo=UTC)
    with db.session() as session:
        current = session.get(TagDefinition, tag.id)
        if current is None:  # deleted meanwhile
            return TagResult(tag.code, 0)
        apply_changes(session, current, changes, cause, at)
        held = store.query(
            "SELECT count(*) FROM facts_tags WHERE workspace_id = ? AND tag_id = ?", [tag.workspace_id, tag.id]
        )[0][0]
        counts = defaultdict(int)
        for c in changes:
            counts[c.change] += 1
        current.member_count = int(held) + counts["gained"] - counts["lost"]
        current.computed_at = at
        members_now = current.member_count
    _facts_apply(store, tag.workspace_id, tag.id, changes)
    return TagResult(tag.code, members_now, counts["gained"], counts["lost"], counts["changed"])


# --- model tags ---------------------------------------------------------------------------------------------------


def set_model_tag_values(
    session: Session,
    workspace_id: int,
    code: str,
    values: Mapping[int, str | None],
    *,
    replace: bool = False,
    at: datetime | None = None,
) -> TagResult:
    """Write a model tag's values: super ID -> value code (None removes the tag). With `replace`, people
    not named lose the tag. Values must be among the tag's declared values when it declares any.
    Merged-away super IDs are written to their current person; unknown or erased ones are an error.
    The caller commits; the facts follow at the next refresh."""
    tag = get_tag(session, workspace_id, code)
    if tag.kind != "model":
        raise InvalidInput(
            "code",
            f"'{code}' is a {tag.kind} tag: only model tags take values",
            code="tag_not_model",
            params={"code": code, "kind": tag.kind},
        )
    if len(values) > MAX_MODEL_VALUES:
        raise InvalidInput("values", f"at most {MAX_MODEL_VALUES} persons per call")
    declared = {v["code"] for v in tag.spec.get("values", [])}
    errors: list[FieldError] = []
    for super_id, value in values.items():
        if isinstance(super_id, bool) or not isinstance(super_id, int):
            errors.append(
                FieldError(f"values.{str(super_id)[:20]}", "must be a super ID (a whole number)", "whole_number")
            )
        elif value is not None and (not isinstance(value, str) or not value or len(value) > 200):
            errors.append(
                FieldError(
                    f"values.{super_id}", "must be text of at most 200 characters", "text_max_length", {"max": 200}
                )
            )
        elif value is not None and declared and value not in declared:
            shown = ", ".join(sorted(declared))
            errors.append(FieldError(f"values.{super_id}", f"must be one of {shown}", "one_of", {"choices": shown}))
        if len(errors) >= 20:
            break
    if errors:
        raise InvalidInput(errors)
    wanted = _current_persons(session, workspace_id, values)
    held = dict(
        session.execute(select(TagAssignment.super_id, TagAssignment.value).where(TagAssignment.tag_id == tag.id)).all()
    )
    changes: list[Change] = []
    for super_id, value in wanted.items():
        old = held.get(super_id, _MISSING)
        if value is None:
            if old is not _MISSING:
                changes.append(Change(super_id, old, None, "lost"))
        elif old is _MISSING:
            changes.append(Change(super_id, None, value, "gained"))
        elif old != value:
            changes.append(Change(super_id, old, value, "changed"))
    if replace:
        changes += [Change(s, v, None, "lost") for s, v in held.items() if s not in wanted]
    at = at or utcnow()
    apply_changes(session, tag, changes, "model", at)
    counts = defaultdict(int)
    for c in changes:
        counts[c.change] += 1
    tag.member_count = len(held) + counts["gained"] - counts["lost"]
    tag.computed_at = at
    session.flush()
    return TagResult(tag.code, tag.member_count, counts["gained"], counts["lost"], counts["changed"])


_MISSING = object()


def _current_persons(session: Session, workspace_id: int, values: Mapping[int, str | None]) -> dict[int, str | None]:
    """The values keyed by current super IDs (a merged-away ID writes to its survivor; the last one named wins)."""
    ids = sorted(values)
    found: dict[int, tuple[int | None, Any]] = {}
    for i in range(0, len(ids), CHUNK):
        for pid, ws, merged_into, erased in session.execute(
            select(
                IdentityPerson.id, IdentityPerson.workspace_id, IdentityPerson.merged_into, IdentityPerson.erased_at
            ).where(IdentityPerson.id.in_(ids[i : i + CHUNK]))
        ):
            if ws == workspace_id and erased is None:
                found[pid] = (merged_into, None)
    missing = [s for s in ids if s not in found]
    if missing:
        shown = ", ".join(str(s) for s in missing[:10])
        raise InvalidInput(
            "values", f"unknown super IDs in this workspace: {shown}", code="tag_unknown_persons", params={"ids": shown}
        )
    from siyu.identity.store import root_of

    out: dict[int, str | None] = {}
    for super_id in ids:
        merged_into = found[super_id][0]
        root = super_id if merged_into is None else root_of(session, merged_into)
        out[root] = values[super_id]
    return out


# --- streaming ------------------------------------------------------------------------------------------------------

_RECENT = """
SELECT ep.super_id, ep.ts, CASE WHEN e.type = 'track' THEN e.event ELSE e.type END, NULL::BIGINT
FROM event_persons ep JOIN events e ON e.workspace_id = ep.workspace_id AND e.message_id = ep.event_id
WHERE ep.workspace_id = $ws AND ep.kind = 'event' AND list_contains($ids, ep.super_id) AND ep.ts >= $since
  AND e.type IN ('track', 'page', 'screen')
UNION ALL
SELECT ep.super_id, ep.ts, '{click}', c.link_id
FROM event_persons ep JOIN clicks c ON c.workspace_id = ep.workspace_id AND c.click_id = ep.event_id
WHERE ep.workspace_id = $ws AND ep.kind = 'click' AND list_contains($ids, ep.super_id) AND ep.ts >= $since
  AND NOT c.is_bot
"""


def streaming_tags(session: Session, workspace_id: int) -> list[tuple[TagDefinition, rules.Event]]:
    """The workspace's enabled streaming tags with their event condition."""
    out = []
    candidates = [t for t in list_tags(session, workspace_id) if t.enabled and t.streaming and t.kind == "rule"]
    if not candidates:
        return out
    vocab = vocabulary(session, workspace_id, strict_traits=False)
    for tag in candidates:
        try:
            node = streaming_rule(rules.parse(tag.spec.get("rule"), vocab))
        except InvalidInput:
            continue
        if node is not None:
            out.append((tag, node))
    return out


def _holds(node: rules.Event, rows: list[tuple], now: datetime) -> bool:
    since = now - timedelta(days=node.within_days) if node.within_days is not None else None
    n = 0
    for _, ts, event, link_id in rows:
        if since is not None and ts < since:
            continue
        if node.event is not None and event != node.event:
            continue
        if node.link_ids is not None and link_id not in node.link_ids:
            continue
        n += 1
    return n > node.value if node.op == "gt" else n >= node.value


def stream(
    db: Database, store: EventStore, workspace_id: int, super_ids: Iterable[int], now: datetime | None = None
) -> list[TagResult]:
    """Decide the streaming tags for these persons (current super IDs) from their stored events."""
    now = _naive(now or datetime.now(UTC))
    ids = sorted({int(s) for s in super_ids})
    if not ids:
        return []
    with db.session() as session:
        tags = streaming_tags(session, workspace_id)
        if not tags:
            return []
        windows = [node.within_days for _, node in tags]
        since = datetime(1970, 1, 1) if None in windows else now - timedelta(days=max(windows))  # type: ignore[type-var]
        live = set(
            session.scalars(
                select(IdentityPerson.id).where(
                    IdentityPerson.id.in_(ids), IdentityPerson.merged_into.is_(None), IdentityPerson.erased_at.is_(None)
                )
            )
        )
        ids = [i for i in ids if i in live]
        if not ids:
            return []
        rows: dict[int, list[tuple]] = defaultdict(list)
        for row in store.query(
            _RECENT.format(click=rules.CLICK_EVENT_NAME), {"ws": workspace_id, "ids": ids, "since": since}
        ):
            rows[int(row[0])].append(row)
        results = []
        at = now.replace(tzinfo=UTC)
        applied: list[tuple[int, list[Change]]] = []
        for tag, node in tags:
            held = set(
                session.scalars(
                    select(TagAssignment.super_id).where(
                        TagAssignment.tag_id == tag.id, TagAssignment.super_id.in_(ids)
                    )
                )
            )
            changes = []
            for super_id in ids:
                holds = _holds(node, rows.get(super_id, []), now)
                if holds and super_id not in held:
                    changes.append(Change(super_id, None, None, "gained"))
                elif not holds and super_id in held:
                    changes.append(Change(super_id, None, None, "lost"))
            apply_changes(session, tag, changes, "stream", at)
            gained = sum(c.change == "gained" for c in changes)
            tag.member_count += gained - (len(changes) - gained)
            applied.append((tag.id, changes))
            results.append(TagResult(tag.code, tag.member_count, gained, len(changes) - gained))
    if facts.exists(store):
        for tag_id, changes in applied:
            _facts_apply(store, workspace_id, tag_id, changes)
    return results
