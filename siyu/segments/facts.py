"""Per-person facts in the event store (DuckDB), so that a segment over a million people counts in well
under a second: every rule condition becomes one scan of a narrow, typed table.

    facts_persons      (workspace_id, super_id)                      live persons (not merged, not erased)
    facts_traits       (workspace_id, super_id, key, text, num)      scalar traits (an object's members as
                                                                     'address.city'): as text, and as a number
    facts_identifiers  (workspace_id, super_id, id_type)             identifier types held (quarantined: no)
    facts_consents     (workspace_id, super_id, purpose)             purposes granted now (enabled ones)
    facts_tags         (workspace_id, super_id, tag_id, value)       tags held now
    facts_events       (workspace_id, super_id, ts, event, link_id, amount, event_id)   behaviour, one row each
    facts_state        (workspace_id, name, value)                   when each part was refreshed, marks

The first five are copies of the operational database (SQL stays the truth), rebuilt whole by
`refresh`. `facts_events` is the stitched behaviour (`event_persons` ⋈ `events`/`clicks`): tracks under
their name, pages and screens as 'page' / 'screen', short-link clicks as 'Short Link Clicked' with
their link; identify, group and alias calls are not behaviour and are left out. Joining the whole
event store costs tens of seconds at 20 million events, so it is rebuilt in full only at first, when
the identity log shows an unmerge or a graph rebuild, or after `FULL_EVENTS_SECONDS`; in between,
`refresh` appends what was stitched since (by arrival time up to the stitcher's watermark, looking
OVERLAP back for rows written late, as the stitcher itself does) and re-points the persons merged
since (from the identity merge log).

A row written more than OVERLAP after its own arrival time, or an anonymous click attributed to a
person later (when its cookie is identified), reaches `facts_events` at the next full rebuild.

Only the process that owns the store writes these tables (`store.writing()`), in bulk from Arrow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.consent.models import ConsentRecord
from siyu.consent.purposes import list_purposes
from siyu.db import Database
from siyu.events.store import CLICK_EVENT_NAME, EventStore
from siyu.identity.models import IdentityIdentifier, IdentityMerge, IdentityPerson
from siyu.profiles.models import ProfileTrait
from siyu.segments.rules import scalar_text
from siyu.tags.models import TagAssignment

OVERLAP = timedelta(seconds=60)  # rows may be written this much later than their arrival time says
FULL_EVENTS_SECONDS = 3600.0
READ_CHUNK = 50_000
BEHAVIOUR_TYPES = ("track", "page", "screen")

SCHEMAS: dict[str, pa.Schema] = {
    "facts_persons": pa.schema([("workspace_id", pa.int32()), ("super_id", pa.int64())]),
    "facts_traits": pa.schema(
        [
            ("workspace_id", pa.int32()),
            ("super_id", pa.int64()),
            ("key", pa.string()),
            ("text", pa.string()),
            ("num", pa.float64()),
        ]
    ),
    "facts_identifiers": pa.schema([("workspace_id", pa.int32()), ("super_id", pa.int64()), ("id_type", pa.string())]),
    "facts_consents": pa.schema([("workspace_id", pa.int32()), ("super_id", pa.int64()), ("purpose", pa.string())]),
    "facts_tags": pa.schema(
        [("workspace_id", pa.int32()), ("super_id", pa.int64()), ("tag_id", pa.int32()), ("value", pa.string())]
    ),
}
CREATE = (
    "CREATE TABLE IF NOT EXISTS facts_persons (workspace_id INTEGER, super_id BIGINT)",
    "CREATE TABLE IF NOT EXISTS facts_traits (workspace_id INTEGER, super_id BIGINT, key VARCHAR, text VARCHAR, "
    "num DOUBLE)",
    "CREATE TABLE IF NOT EXISTS facts_identifiers (workspace_id INTEGER, super_id BIGINT, id_type VARCHAR)",
    "CREATE TABLE IF NOT EXISTS facts_consents (workspace_id INTEGER, super_id BIGINT, purpose VARCHAR)",
    "CREATE TABLE IF NOT EXISTS facts_tags (workspace_id INTEGER, super_id BIGINT, tag_id INTEGER, value VARCHAR)",
    "CREATE TABLE IF NOT EXISTS facts_events (workspace_id INTEGER, super_id BIGINT, ts TIMESTAMP, event VARCHAR, "
    "link_id BIGINT, amount DOUBLE, event_id VARCHAR)",
    "CREATE TABLE IF NOT EXISTS facts_state (workspace_id INTEGER, name VARCHAR, value VARCHAR)",
)
TABLES = (*SCHEMAS, "facts_events")

# The behaviour of stitched events and clicks with arrival time in (?, ?]: the same shape as facts_events.
_EVENT_ROWS = f"""
SELECT ep.workspace_id, ep.super_id, ep.ts, CASE WHEN e.type = 'track' THEN e.event ELSE e.type END AS event,
       NULL::BIGINT AS link_id,
       coalesce(TRY_CAST(e.properties->>'$.revenue' AS DOUBLE), TRY_CAST(e.properties->>'$.total' AS DOUBLE)) AS amount,
       ep.event_id
FROM event_persons ep JOIN events e ON e.workspace_id = ep.workspace_id AND e.message_id = ep.event_id
WHERE ep.workspace_id = $ws AND ep.kind = 'event' AND ep.super_id IS NOT NULL
  AND e.received_at > $low AND e.received_at <= $high AND e.type IN {BEHAVIOUR_TYPES}
  AND ep.ts >= $ts_low AND ep.ts <= $ts_high
"""
_CLICK_ROWS = f"""
SELECT ep.workspace_id, ep.super_id, ep.ts, '{CLICK_EVENT_NAME}' AS event, c.link_id, NULL::DOUBLE AS amount,
       ep.event_id
FROM event_persons ep JOIN clicks c ON c.workspace_id = ep.workspace_id AND c.click_id = ep.event_id
WHERE ep.workspace_id = $ws AND ep.kind = 'click' AND ep.super_id IS NOT NULL AND NOT c.is_bot
  AND c.ts > $low AND c.ts <= $high AND ep.ts >= $ts_low AND ep.ts <= $ts_high
"""
# Incremental runs look OVERLAP back: rows already in facts_events (same event, same time) are skipped.
_NOT_STORED = (
    "NOT EXISTS (SELECT 1 FROM facts_events f WHERE f.workspace_id = $ws AND f.ts >= $ts_low AND f.ts <= $ts_high "
    "AND f.event_id = r.event_id)"
)
# Event times of the rows that arrived in (low, high]: bounds on event_persons.ts let DuckDB skip row groups.
_EVENT_SPAN = f"""SELECT min("timestamp"), max("timestamp") FROM events
WHERE workspace_id = $ws AND received_at > $low AND received_at <= $high AND type IN {BEHAVIOUR_TYPES}"""
_CLICK_SPAN = "SELECT min(ts), max(ts) FROM clicks WHERE workspace_id = $ws AND ts > $low AND ts <= $high"


@dataclass
class Refreshed:
    """What a refresh did: people, and how facts_events was brought up to date."""

    persons: int
    events: str  # 'full' | 'incremental'
    appended: int
    repointed: int
    at: datetime


def create(store: EventStore) -> None:
    with store.writing() as cur:
        for sql in CREATE:
            cur.execute(sql)


def exists(store: EventStore) -> bool:
    rows = store.query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'facts_state'")
    return bool(rows[0][0])


def state(store: EventStore, workspace_id: int) -> dict[str, str]:
    if not exists(store):
        return {}
    return dict(store.query("SELECT name, value FROM facts_state WHERE workspace_id = ?", [workspace_id]))


def refreshed_at(store: EventStore, workspace_id: int) -> datetime | None:
    """When the facts of the workspace were last brought up to date (None: never)."""
    value = state(store, workspace_id).get("refreshed_at")
    return datetime.fromisoformat(value) if value else None


# --- reading the operational database --------------------------------------------------------------------


def _roots(session: Session, workspace_id: int) -> dict[int, int]:
    """Merged-away super ID -> the current one, for the workspace's merged persons."""
    parent = dict(
        session.execute(
            select(IdentityPerson.id, IdentityPerson.merged_into).where(
                IdentityPerson.workspace_id == workspace_id, IdentityPerson.merged_into.is_not(None)
            )
        ).all()
    )
    out: dict[int, int] = {}
    for start in parent:
        node, seen = start, 0
        while node in parent and seen < 10_000:
            node, seen = parent[node], seen + 1
        out[start] = node
    return out


def _chunks(session: Session, statement) -> Iterable[list[Any]]:
    result = session.execute(statement.execution_options(yield_per=READ_CHUNK))
    yield from result.partitions()


def _table(name: str, workspace_id: int, columns: dict[str, list[Any]]) -> pa.Table:
    schema = SCHEMAS[name]
    n = len(next(iter(columns.values())))
    arrays = [pa.array([workspace_id] * n, pa.int32())]
    arrays += [pa.array(columns[f.name], f.type) for f in schema if f.name != "workspace_id"]
    return pa.Table.from_arrays(arrays, schema=schema)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str) and 0 < len(value) <= 40:
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if number == number and abs(number) != float("inf") else None
    return None


def flat_trait(key: str, value: Any) -> list[tuple[str, Any]]:
    """A trait as rules name it: scalars as they are, an object's scalar members as 'key.member'
    (Segment's `address` trait gives 'address.city')."""
    if isinstance(value, dict):
        return [(f"{key}.{k}", v) for k, v in value.items() if isinstance(k, str) and not isinstance(v, dict | list)]
    return [(key, value)]


def read_sql_facts(session: Session, workspace_id: int) -> dict[str, pa.Table]:
    """The workspace's persons, traits, identifier types, granted purposes and tags, as Arrow tables."""
    ws = workspace_id
    P, I, T = IdentityPerson, IdentityIdentifier, ProfileTrait  # noqa: N806, E741
    persons: list[int] = []
    for chunk in _chunks(
        session, select(P.id).where(P.workspace_id == ws, P.merged_into.is_(None), P.erased_at.is_(None))
    ):
        persons.extend(r[0] for r in chunk)
    traits: dict[str, list[Any]] = {"super_id": [], "key": [], "text": [], "num": []}
    for chunk in _chunks(session, select(T.person_id, T.key, T.value).where(T.workspace_id == ws)):
        for person, key, value in chunk:
            for name, scalar in flat_trait(key, value):
                text = scalar_text(scalar)
                if text is not None:
                    traits["super_id"].append(person)
                    traits["key"].append(name)
                    traits["text"].append(text)
                    traits["num"].append(_number(scalar))
    identifiers: dict[str, list[Any]] = {"super_id": [], "id_type": []}
    seen: set[tuple[int, str]] = set()
    for chunk in _chunks(session, select(I.person_id, I.id_type).where(I.workspace_id == ws, I.quarantined.is_(False))):
        for pair in chunk:
            if (pair[0], pair[1]) not in seen:
                seen.add((pair[0], pair[1]))
                identifiers["super_id"].append(pair[0])
                identifiers["id_type"].append(pair[1])
    tags: dict[str, list[Any]] = {"super_id": [], "tag_id": [], "value": []}
    A = TagAssignment  # noqa: N806
    for chunk in _chunks(session, select(A.super_id, A.tag_id, A.value).where(A.workspace_id == ws)):
        for super_id, tag_id, value in chunk:
            tags["super_id"].append(super_id)
            tags["tag_id"].append(tag_id)
            tags["value"].append(value)
    return {
        "facts_persons": _table("facts_persons", ws, {"super_id": persons}),
        "facts_traits": _table("facts_traits", ws, traits),
        "facts_identifiers": _table("facts_identifiers", ws, identifiers),
        "facts_consents": _table("facts_consents", ws, granted_consents(session, ws)),
        "facts_tags": _table("facts_tags", ws, tags),
    }


def granted_consents(session: Session, workspace_id: int) -> dict[str, list[Any]]:
    """(super_id, purpose) columns of every current grant: per person (merged-away IDs count for their
    survivor) and enabled purpose, the latest record by (recorded_at, id) is a grant. The rule of
    siyu.consent.service.has_consent, for a whole workspace at once."""
    enabled = {p.code for p in list_purposes(session, workspace_id) if p.enabled}
    roots = _roots(session, workspace_id)
    latest: dict[tuple[int, str], tuple[datetime, int, str]] = {}
    C = ConsentRecord  # noqa: N806
    for chunk in _chunks(
        session,
        select(C.super_id, C.purpose, C.recorded_at, C.id, C.status).where(C.workspace_id == workspace_id),
    ):
        for super_id, purpose, at, rid, status in chunk:
            if purpose not in enabled:
                continue
            key = (roots.get(super_id, super_id), purpose)
            held = latest.get(key)
            if held is None or (at, rid) > held[:2]:
                latest[key] = (at, rid, status)
    granted = [key for key, (_, _, status) in latest.items() if status == "granted"]
    return {"super_id": [k[0] for k in granted], "purpose": [k[1] for k in granted]}


# --- refreshing --------------------------------------------------------------------------------------------


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _stitched_upto(store: EventStore) -> dict[str, datetime | None]:
    """Per kind, the arrival time up to which the stitcher has resolved what it found (its watermark)."""
    marks = store.stitch_state()
    out: dict[str, datetime | None] = {}
    for kind in ("event", "click"):
        text = marks.get(f"{kind}.watermark")
        out[kind] = _naive(datetime.fromisoformat(text)) if text else None
    return out


def _merge_log(session: Session, workspace_id: int, after: int) -> tuple[list[tuple[int, int]], bool, int]:
    """(absorbed -> current super ID pairs, whether an unmerge or rebuild happened, the last log id) since `after`."""
    M = IdentityMerge  # noqa: N806
    rows = session.execute(
        select(M.id, M.action, M.merged_id).where(M.workspace_id == workspace_id, M.id > after).order_by(M.id)
    ).all()
    top = rows[-1][0] if rows else after
    if any(action != "merge" for _, action, _ in rows):
        return [], True, top
    merged = {m for _, _, m in rows}
    roots = _roots(session, workspace_id)
    return [(m, roots[m]) for m in sorted(merged) if m in roots], False, top


def merge_log_top(session: Session) -> int:
    return session.scalar(select(func.coalesce(func.max(IdentityMerge.id), 0))) or 0


def refresh(
    db: Database, store: EventStore, workspace_id: int, full_events: bool = False, now: datetime | None = None
) -> Refreshed:
    """Bring the workspace's facts up to date: SQL copies whole, facts_events incrementally (or in full)."""
    now = _naive(now or datetime.now(UTC))
    create(store)
    ws = workspace_id
    saved = state(store, ws)
    upto = _stitched_upto(store)
    with db.session() as session:
        tables = read_sql_facts(session, ws)
        merges_mark = int(saved.get("merges", "-1"))
        repoints: list[tuple[int, int]] = []
        needs_full = full_events or merges_mark < 0
        if not needs_full:
            repoints, needs_full, top = _merge_log(session, ws, merges_mark)
        else:
            top = merge_log_top(session)
        full_at = saved.get("events_full_at")
        if full_at and (now - _naive(datetime.fromisoformat(full_at))).total_seconds() > FULL_EVENTS_SECONDS:
            needs_full = True
    low = {k: (datetime.fromisoformat(saved[f"events.{k}"]) if saved.get(f"events.{k}") else None) for k in upto}
    appended = 0
    with store.writing() as cur:
        for name, table in tables.items():
            cur.execute(f"DELETE FROM {name} WHERE workspace_id = ?", [ws])
            cur.register("incoming_facts", table)
            cur.execute(f"INSERT INTO {name} SELECT * FROM incoming_facts")
            cur.unregister("incoming_facts")
        if needs_full:
            cur.execute("DELETE FROM facts_events WHERE workspace_id = ?", [ws])
            low = dict.fromkeys(upto)
        elif repoints:
            cur.register(
                "repoints",
                pa.table(
                    {"old": pa.array([a for a, _ in repoints], pa.int64()), "new": pa.array([b for _, b in repoints])}
                ),
            )
            cur.execute(
                "UPDATE facts_events SET super_id = r.new FROM repoints r "
                "WHERE facts_events.workspace_id = ? AND facts_events.super_id = r.old",
                [ws],
            )
            cur.unregister("repoints")
        for kind, sql, span in (("event", _EVENT_ROWS, _EVENT_SPAN), ("click", _CLICK_ROWS, _CLICK_SPAN)):
            high = upto[kind]
            if high is None:
                continue
            start = low[kind] - OVERLAP if low[kind] is not None else datetime(1970, 1, 1)
            params = {"ws": ws, "low": start, "high": high}
            ts_low, ts_high = cur.execute(span, params).fetchone()
            if ts_low is not None:
                rows = sql if needs_full else f"SELECT * FROM ({sql}) r WHERE {_NOT_STORED}"
                inserted = cur.execute(
                    f"INSERT INTO facts_events {rows}", {**params, "ts_low": ts_low, "ts_high": ts_high}
                ).fetchone()
                appended += int(inserted[0]) if inserted else 0
            low[kind] = high if low[kind] is None else max(low[kind], high)
        values = {
            "refreshed_at": now.replace(tzinfo=UTC).isoformat(),
            "merges": str(top),
            **{f"events.{k}": v.isoformat() for k, v in low.items() if v is not None},
        }
        if needs_full:
            values["events_full_at"] = now.replace(tzinfo=UTC).isoformat()
        for name, value in values.items():
            cur.execute("DELETE FROM facts_state WHERE workspace_id = ? AND name = ?", [ws, name])
            cur.execute("INSERT INTO facts_state VALUES (?, ?, ?)", [ws, name, value])
    return Refreshed(
        persons=tables["facts_persons"].num_rows,
        events="full" if needs_full else "incremental",
        appended=appended,
        repointed=len(repoints),
        at=now.replace(tzinfo=UTC),
    )


def replace_tag_rows(cur: Any, workspace_id: int, tag_id: int, rows: pa.Table) -> None:
    """Inside `store.writing()`: the tag's facts_tags rows become `rows` (super_id, value)."""
    cur.execute("DELETE FROM facts_tags WHERE workspace_id = ? AND tag_id = ?", [workspace_id, tag_id])
    if rows.num_rows:
        cur.register("incoming_tag_rows", rows)
        cur.execute(
            "INSERT INTO facts_tags SELECT ?, super_id, ?, value FROM incoming_tag_rows", [workspace_id, tag_id]
        )
        cur.unregister("incoming_tag_rows")


def forget_person(store: EventStore, workspace_id: int, super_ids: Iterable[int]) -> None:
    """Drop erased persons from every facts table at once (their events are gone from the store too)."""
    ids = [int(s) for s in super_ids]
    if not ids or not exists(store):
        return
    with store.writing() as cur:
        for name in TABLES:
            cur.execute(
                f"DELETE FROM {name} WHERE workspace_id = ? AND list_contains(?, super_id)", [workspace_id, ids]
            )
