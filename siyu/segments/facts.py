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
`refresh` (siyu.segments.sql_facts). `facts_events` is the stitched behaviour (`event_persons` joined
with `events` and `clicks`): tracks under their name, pages and screens as 'page' / 'screen',
short-link clicks as 'Short Link Clicked' with their link; identify, group and alias calls are not
behaviour and are left out. Joining the whole event store costs tens of seconds at 20 million
events, so it is rebuilt in full only at first, when the identity log shows an unmerge or a graph
rebuild, or after `FULL_SECONDS`; in between, `refresh` appends what was stitched since (by
arrival time up to the stitcher's watermark, looking OVERLAP back for rows written late, as the
stitcher itself does) and re-points the persons merged since (from the identity merge log).

A row written more than OVERLAP after its own arrival time, or an anonymous click attributed to a
person later (when its cookie is identified), reaches `facts_events` at the next full rebuild.

Only the process that owns the store writes these tables (`store.writing()`), in bulk from Arrow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.events.store import CLICK_EVENT_NAME, EventStore
from siyu.identity.models import IdentityMerge, IdentityPerson
from siyu.segments import sql_facts

OVERLAP = timedelta(seconds=60)  # rows may be written this much later than their arrival time says
FULL_SECONDS = 3600.0  # the SQL copies and the behaviour are rebuilt whole at least this often
SKEW = timedelta(minutes=5)  # clocks of the processes that stamp SQL rows may differ this much
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
    "NOT EXISTS (SELECT 1 FROM facts_events f WHERE f.workspace_id = $ws AND f.ts >= $ts_min AND f.ts <= $ts_max "
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
    sql: str = "full"  # 'full' or '<n> changed' (persons whose SQL rows were read again)


# A rule's "at least N events" groups millions of rows by person. Super IDs of one installation are dense
# integers, so DuckDB can count into a plain array indexed by super ID ("perfect hash" aggregation)
# when their range fits in this many bits: 2^21 (2 million) counters, some 16 MB, about twice as fast
# as hashing. Wider ranges fall back to hashing by themselves.
PERFECT_HASH_BITS = 21


def create(store: EventStore) -> None:
    with store.writing() as cur:
        for sql in CREATE:
            cur.execute(sql)
        cur.execute(f"SET GLOBAL perfect_ht_threshold = {PERFECT_HASH_BITS}")


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


def rows_table(name: str, workspace_id: int, columns: dict[str, list[Any]]) -> pa.Table:
    """Rows for the facts table `name` (columns without workspace_id) as Arrow, shaped as the table."""
    schema = SCHEMAS[name]
    n = len(next(iter(columns.values())))
    arrays = [pa.array([workspace_id] * n, pa.int32())]
    arrays += [pa.array(columns[f.name], f.type) for f in schema if f.name != "workspace_id"]
    return pa.Table.from_arrays(arrays, schema=schema)


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


def _due(saved: dict[str, str], name: str, now: datetime, seconds: float) -> bool:
    at = saved.get(name)
    return not at or (now - _naive(datetime.fromisoformat(at))).total_seconds() > seconds


@dataclass
class Known:
    """What the runtime's listener saw change since the last refresh (siyu.tags.worker keeps it): persons
    whose traits or identifiers changed, and persons gone (merged away, erased). Without it, a
    refresh copies the SQL side whole."""

    touched: set[int] = field(default_factory=set)
    gone: set[int] = field(default_factory=set)


def refresh(
    db: Database,
    store: EventStore,
    workspace_id: int,
    full_events: bool = False,
    now: datetime | None = None,
    known: Known | None = None,
) -> Refreshed:
    """Bring the workspace's facts up to date. The SQL copies: whole without `known`, after an unmerge
    or a graph rebuild, every FULL_SECONDS, or when many persons changed; otherwise those of the persons
    that changed. The behaviour: appended, or rebuilt whole (`full_events`, and on the same occasions)."""
    now = _naive(now or datetime.now(UTC))
    create(store)
    ws = workspace_id
    saved = state(store, ws)
    upto = _stitched_upto(store)
    changed: list[int] | None = None
    with db.session() as session:
        sql_marks = sql_facts.marks(session)
        merges_mark = int(saved.get("merges", "-1"))
        repoints: list[tuple[int, int]] = []
        needs_full = full_events or merges_mark < 0 or _due(saved, "events_full_at", now, FULL_SECONDS)
        if not needs_full:
            repoints, needs_full, top = _merge_log(session, ws, merges_mark)
        else:
            top = merge_log_top(session)
        full_sql = known is None or needs_full or _due(saved, "sql_full_at", now, FULL_SECONDS)
        if not full_sql and known is not None:
            since = _naive(datetime.fromisoformat(saved["sql_at"])) - SKEW
            after = {k: int(saved.get(f"sql.{k}", "0")) for k in sql_marks}
            gone = known.gone | {old for old, _ in repoints}
            touched = (
                known.touched | {new for _, new in repoints} | sql_facts.changes(session, ws, since, after)
            ) - gone
            if len(touched) + len(gone) > max(10_000, int(saved.get("persons", "0")) // 5):
                full_sql = True
            else:
                changed = sorted(touched | gone)
        raw = sql_facts.read(session, ws, None if full_sql else sorted(touched))
    low = {k: (datetime.fromisoformat(saved[f"events.{k}"]) if saved.get(f"events.{k}") else None) for k in upto}
    # Only this package writes the facts tables, one refresh at a time (the worker's lock): the work runs in
    # its own DuckDB transaction without the store's write lock, so the event writers and the stitcher never
    # wait for it, and counts read the previous state until it commits.
    with store.writing(lock=False) as cur:
        sql_facts.load(cur, ws, raw, changed)
        persons = int(cur.execute("SELECT count(*) FROM facts_persons WHERE workspace_id = ?", [ws]).fetchall()[0][0])
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
        parts = []
        params: dict[str, Any] = {"ws": ws}
        for kind, sql, span in (("event", _EVENT_ROWS, _EVENT_SPAN), ("click", _CLICK_ROWS, _CLICK_SPAN)):
            high = upto[kind]
            if high is None:
                continue
            start = low[kind] - OVERLAP if low[kind] is not None else datetime(1970, 1, 1)
            window = {"low": start, "high": high}
            ts_low, ts_high = cur.execute(span, {"ws": ws, **window}).fetchall()[0]
            low[kind] = high if low[kind] is None else max(low[kind], high)
            if ts_low is None:
                continue
            names = {k: f"{k}_{kind}" for k in ("low", "high", "ts_low", "ts_high")}
            text = sql
            for k, name in names.items():
                text = text.replace(f"${k}", f"${name}")
            parts.append(text)
            params.update(
                {names["low"]: start, names["high"]: high, names["ts_low"]: ts_low, names["ts_high"]: ts_high}
            )
        if parts:
            rows = " UNION ALL ".join(parts)
            if needs_full:  # sorted by event and time: a condition reads only its event's row groups, in its window
                statement = f"INSERT INTO facts_events SELECT * FROM ({rows}) ORDER BY event, ts"
            else:
                span_all = (
                    min(v for k, v in params.items() if k.startswith("ts_low")),
                    max(v for k, v in params.items() if k.startswith("ts_high")),
                )
                params.update({"ts_min": span_all[0], "ts_max": span_all[1]})
                statement = f"INSERT INTO facts_events SELECT * FROM ({rows}) r WHERE {_NOT_STORED}"
            inserted = cur.execute(statement, params).fetchall()
            appended = int(inserted[0][0]) if inserted else 0
        else:
            appended = 0
        stamp = now.replace(tzinfo=UTC).isoformat()
        values = {
            "refreshed_at": stamp,
            "sql_at": stamp,
            "persons": str(persons),
            "merges": str(top),
            **{f"sql.{k}": str(v) for k, v in sql_marks.items()},
            **{f"events.{k}": v.isoformat() for k, v in low.items() if v is not None},
        }
        if needs_full:
            values["events_full_at"] = stamp
        if full_sql:
            values["sql_full_at"] = stamp
        for name, value in values.items():
            cur.execute("DELETE FROM facts_state WHERE workspace_id = ? AND name = ?", [ws, name])
            cur.execute("INSERT INTO facts_state VALUES (?, ?, ?)", [ws, name, value])
    return Refreshed(
        persons=persons,
        events="full" if needs_full else "incremental",
        appended=appended,
        repointed=len(repoints),
        at=now.replace(tzinfo=UTC),
        sql="full" if full_sql else f"{len(changed or [])} changed",
    )


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
