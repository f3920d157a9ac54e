"""Which person each stored event and click belongs to: the `event_persons` table, kept by the stitcher.

    event_persons(workspace_id, event_id, kind, super_id, ts)

`event_id` is `events.message_id` (kind 'event') or `clicks.click_id` (kind 'click'); `super_id` is
NULL for an anonymous event; `ts` is the event's own (corrected) timestamp, so timelines read it
without a join. Only the stitcher (siyu.identity.stitch) appends here, and it finds what is new by
*arrival* time (`events.received_at`, `clicks.ts`), which the writers append in nearly ascending
order: everything after the watermark is new, and a short overlap before it is anti-joined
against `event_persons` for the few rows that were written late. `stitch_state` holds the
watermarks and how far the identity logs have been applied, written in the same DuckDB
transaction as the rows they describe.

A mixin of `DuckDBEventStore` (it uses its connection and write lock): the SQL of one concern lives
in one module.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from siyu.events.store import CLICK_EVENT_NAME

EVENT_PERSONS_SCHEMA = pa.schema(
    [
        ("workspace_id", pa.int32()),
        ("event_id", pa.string()),
        ("kind", pa.string()),
        ("super_id", pa.int64()),
        ("ts", pa.timestamp("us")),
    ]
)
REPOINT_SCHEMA = pa.schema([("workspace_id", pa.int32()), ("old", pa.int64()), ("new", pa.int64())])
COOKIE_SCHEMA = pa.schema([("workspace_id", pa.int32()), ("visitor_id", pa.string()), ("super_id", pa.int64())])
ASSIGN_SCHEMA = pa.schema([("kind", pa.string()), ("event_id", pa.string()), ("super_id", pa.int64())])

CREATE = (
    "CREATE TABLE IF NOT EXISTS event_persons "
    "(workspace_id INTEGER, event_id VARCHAR, kind VARCHAR, super_id BIGINT, ts TIMESTAMP)",
    "CREATE TABLE IF NOT EXISTS stitch_state (name VARCHAR, value VARCHAR)",
)

# kind -> (table, arrival column, id column, event-time column, the columns the stitcher reads)
_SOURCES = {
    "event": (
        "events",
        "received_at",
        "message_id",
        "timestamp",
        "message_id, workspace_id, source_id, type, event, user_id, anonymous_id, previous_id, "
        "timestamp, received_at, context, properties, traits",
    ),
    "click": (
        "clicks",
        "ts",
        "click_id",
        "ts",
        "click_id, workspace_id, ts, ts, visitor_id, person_ref, is_bot, new_visitor",
    ),
}
_EVENT_FIELDS = (
    "event_id",
    "workspace_id",
    "source_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "previous_id",
    "ts",
    "arrival",
    "context",
    "properties",
    "traits",
)
_CLICK_FIELDS = ("event_id", "workspace_id", "ts", "arrival", "visitor_id", "person_ref", "is_bot", "new_visitor")
_JSON = ("context", "properties", "traits")

# What identity needs of every stored event or click of a workspace (rebuild) or of some persons
# (unmerge): the fields identifiers are extracted from, in time order, with the current super ID.
_IDENTITY_EVENTS = """
SELECT 'event' AS kind, e.message_id, e.source_id, e.type, e.event, e.user_id, e.anonymous_id, e.previous_id,
       e.traits, e.context, e.properties, NULL AS person_ref, NULL AS visitor_id, false AS is_bot, e.timestamp,
       {super_id} AS super_id
FROM events e {join} WHERE e.workspace_id = ?
"""
_IDENTITY_CLICKS = """
SELECT 'click', c.click_id, NULL, 'track', '{click_event}', NULL, NULL, NULL, NULL, NULL, NULL, c.person_ref,
       c.visitor_id, c.is_bot, c.ts, {super_id}
FROM clicks c {join} WHERE c.workspace_id = ?
"""
IDENTITY_FIELDS = (
    "kind",
    "event_id",
    "source_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "previous_id",
    "traits",
    "context",
    "properties",
    "person_ref",
    "visitor_id",
    "is_bot",
    "ts",
    "super_id",
)


class EventPersonsStore:
    """`event_persons` and `stitch_state` on the store's DuckDB connection."""

    _con: duckdb.DuckDBPyConnection

    def _create_event_persons(self) -> None:
        for sql in CREATE:
            self._con.execute(sql)

    # -- reading what is new ------------------------------------------------------------------------
    def stitch_state(self) -> dict[str, str]:
        return dict(self._fetch("SELECT name, value FROM stitch_state", []))

    def click_arrivals(self, after: datetime | None, limit: int) -> pa.Table:
        """`arrivals_after('click', ...)` as an Arrow table (columns of _CLICK_FIELDS): the stitcher
        handles most clicks column-wise, without a Python object per click."""
        table, arrival, ident, time_col, columns = _SOURCES["click"]
        where, params = (f"WHERE {arrival} > ?", [after]) if after is not None else ("", [])
        return self._fetch_arrow(
            f"SELECT {columns} FROM {table} {where} ORDER BY {arrival}, {time_col}, {ident} LIMIT ?", [*params, limit]
        )

    def unstitched_clicks_between(self, low: datetime, high: datetime, limit: int) -> pa.Table:
        """`unstitched_between('click', ...)` as an Arrow table."""
        table, arrival, ident, time_col, columns = _SOURCES["click"]
        # Constant bounds on event_persons.ts let DuckDB skip the row groups of other times (a click's
        # ts is its arrival).
        return self._fetch_arrow(
            f"SELECT {columns} FROM {table} x WHERE x.{arrival} >= ? AND x.{arrival} <= ? AND NOT EXISTS ("
            "SELECT 1 FROM event_persons p WHERE p.kind = 'click' AND p.ts >= ? AND p.ts <= ? "
            f"AND p.workspace_id = x.workspace_id AND p.event_id = x.{ident}) "
            f"ORDER BY x.{arrival}, x.{time_col}, x.{ident} LIMIT ?",
            [low, high, low, high, limit],
        )

    def _fetch_arrow(self, sql: str, params: list[object]) -> pa.Table:
        cur = self._cursor()
        try:
            table = cur.sql(sql, params=params).to_arrow_table()
        finally:
            cur.close()
        return table.rename_columns(list(_CLICK_FIELDS))

    def arrivals_after(self, kind: str, after: datetime | None, limit: int) -> list[dict[str, Any]]:
        """Rows that arrived after `after` (all when None), oldest arrival first: none is stitched yet."""
        table, arrival, ident, time_col, columns = _SOURCES[kind]
        where, params = (f"WHERE {arrival} > ?", [after]) if after is not None else ("", [])
        rows = self._fetch(
            f"SELECT {columns} FROM {table} {where} ORDER BY {arrival}, {time_col}, {ident} LIMIT ?",
            [*params, limit],
        )
        return _as_dicts(kind, rows)

    def unstitched_between(self, kind: str, low: datetime, high: datetime, limit: int) -> list[dict[str, Any]]:
        """Rows that arrived in [low, high] and have no `event_persons` row (written late, or recovered)."""
        table, arrival, ident, time_col, columns = _SOURCES[kind]
        span = self._fetch(
            f"SELECT min(coalesce({time_col}, {arrival})), max(coalesce({time_col}, {arrival})) FROM {table} "
            f"WHERE {arrival} >= ? AND {arrival} <= ?",
            [low, high],
        )[0]
        if span[0] is None:
            return []
        # Constant bounds on event_persons.ts let DuckDB skip the row groups of other times.
        rows = self._fetch(
            f"SELECT {columns} FROM {table} x WHERE x.{arrival} >= ? AND x.{arrival} <= ? AND NOT EXISTS ("
            "SELECT 1 FROM event_persons p WHERE p.kind = ? AND p.ts >= ? AND p.ts <= ? "
            f"AND p.workspace_id = x.workspace_id AND p.event_id = x.{ident}) "
            f"ORDER BY x.{arrival}, x.{time_col}, x.{ident} LIMIT ?",
            [low, high, kind, span[0], span[1], limit],
        )
        return _as_dicts(kind, rows)

    def oldest_unstitched(self, kind: str, before: datetime) -> datetime | None:
        """The earliest arrival before `before` that was never stitched: one full pass, at start-up only
        (rows a previous run kept in its spill file arrive late, with their original times)."""
        table, arrival, ident, _, _ = _SOURCES[kind]
        row = self._fetch(
            f"SELECT min(x.{arrival}) FROM {table} x WHERE x.{arrival} < ? AND NOT EXISTS ("
            f"SELECT 1 FROM event_persons p WHERE p.kind = ? AND p.workspace_id = x.workspace_id "
            f"AND p.event_id = x.{ident})",
            [before, kind],
        )
        return row[0][0]

    def click_details(self, click_ids: Sequence[str], low: datetime, high: datetime) -> dict[str, tuple[Any, Any]]:
        """click_id -> (context, properties) as the `all_events` view shows the clicks as tracks."""
        if not click_ids:
            return {}
        ids = pa.table({"click_id": pa.array(list(click_ids), pa.string())})
        cur = self._cursor()
        try:
            cur.register("wanted_clicks", ids)
            rows = cur.execute(
                "SELECT message_id, context, properties FROM all_events WHERE source_id IS NULL "
                "AND received_at >= ? AND received_at <= ? AND message_id IN (SELECT click_id FROM wanted_clicks)",
                [low, high],
            ).fetchall()
            cur.unregister("wanted_clicks")
        finally:
            cur.close()
        return {i: (_json(c), _json(p)) for i, c, p in rows}

    # -- writing ------------------------------------------------------------------------------------
    def save_stitched(
        self,
        rows: pa.Table,
        state: dict[str, str],
        repoint: pa.Table | None = None,
        cookies: pa.Table | None = None,
    ) -> None:
        """Append stitched rows, re-point merged-away persons, attribute anonymous clicks of cookies that
        are now known, and record the progress: one DuckDB transaction."""
        with self._write_lock:
            cur = self._cursor()
            try:
                cur.begin()
                if rows.num_rows:
                    cur.register("incoming_persons", rows.select(EVENT_PERSONS_SCHEMA.names).cast(EVENT_PERSONS_SCHEMA))
                    cur.execute("INSERT INTO event_persons SELECT * FROM incoming_persons")
                    cur.unregister("incoming_persons")
                if repoint is not None and repoint.num_rows:
                    cur.register("repoint", repoint.cast(REPOINT_SCHEMA))
                    cur.execute(
                        "UPDATE event_persons SET super_id = r.new FROM repoint r "
                        "WHERE event_persons.workspace_id = r.workspace_id AND event_persons.super_id = r.old"
                    )
                    cur.unregister("repoint")
                if cookies is not None and cookies.num_rows:
                    cur.register("known_cookies", cookies.cast(COOKIE_SCHEMA))
                    cur.execute(
                        "UPDATE event_persons SET super_id = m.super_id FROM ("
                        "SELECT c.workspace_id, c.click_id, k.super_id FROM clicks c JOIN known_cookies k "
                        "ON c.workspace_id = k.workspace_id AND c.visitor_id = k.visitor_id WHERE NOT c.is_bot) m "
                        "WHERE event_persons.kind = 'click' AND event_persons.super_id IS NULL "
                        "AND event_persons.workspace_id = m.workspace_id AND event_persons.event_id = m.click_id"
                    )
                    cur.unregister("known_cookies")
                for name, value in state.items():
                    cur.execute("DELETE FROM stitch_state WHERE name = ?", [name])
                    cur.execute("INSERT INTO stitch_state VALUES (?, ?)", [name, value])
                cur.commit()
            except BaseException:
                cur.rollback()
                raise
            finally:
                cur.close()

    def assign_persons(self, workspace_id: int, assignments: pa.Table) -> int:
        """Set the super ID of given events (kind, event_id, super_id), e.g. after an unmerge."""
        if assignments.num_rows == 0:
            return 0
        with self._write_lock:
            cur = self._cursor()
            try:
                cur.register("assignments", assignments.cast(ASSIGN_SCHEMA))
                cur.execute(
                    "UPDATE event_persons SET super_id = a.super_id FROM assignments a "
                    "WHERE event_persons.workspace_id = ? AND event_persons.kind = a.kind "
                    "AND event_persons.event_id = a.event_id",
                    [workspace_id],
                )
                changed = cur.fetchone()
                cur.unregister("assignments")
            finally:
                cur.close()
        return int(changed[0]) if changed else 0

    def replace_event_persons(self, workspace_id: int, rows: pa.Table, state: dict[str, str]) -> None:
        """All of a workspace's rows at once (after a rebuild gave everyone new super IDs)."""
        with self._write_lock:
            cur = self._cursor()
            try:
                cur.begin()
                cur.execute("DELETE FROM event_persons WHERE workspace_id = ?", [workspace_id])
                cur.register("incoming_persons", rows.select(EVENT_PERSONS_SCHEMA.names).cast(EVENT_PERSONS_SCHEMA))
                cur.execute("INSERT INTO event_persons SELECT * FROM incoming_persons")
                cur.unregister("incoming_persons")
                for name, value in state.items():
                    cur.execute("DELETE FROM stitch_state WHERE name = ?", [name])
                    cur.execute("INSERT INTO stitch_state VALUES (?, ?)", [name, value])
                cur.commit()
            except BaseException:
                cur.rollback()
                raise
            finally:
                cur.close()

    # -- reading by person ----------------------------------------------------------------------------
    def event_ids_of(self, workspace_id: int, super_id: int) -> list[tuple[str, str]]:
        """(kind, event_id) of every event and click a person holds (by current super ID)."""
        rows = self._fetch(
            "SELECT kind, event_id FROM event_persons WHERE workspace_id = ? AND super_id = ? ORDER BY ts, event_id",
            [workspace_id, super_id],
        )
        return [(k, e) for k, e in rows]

    def delete_event_persons(self, workspace_id: int, super_id: int) -> int:
        """Forget which events were a person's (erasure: the events themselves are the caller's)."""
        with self._write_lock:
            cur = self._cursor()
            try:
                cur.execute(
                    "DELETE FROM event_persons WHERE workspace_id = ? AND super_id = ?", [workspace_id, super_id]
                )
                deleted = cur.fetchone()
            finally:
                cur.close()
        return int(deleted[0]) if deleted else 0

    def identity_rows(self, workspace_id: int, super_ids: Sequence[int] | None = None) -> Iterator[dict[str, Any]]:
        """Every event and click of a workspace (or of some current super IDs) with the fields identifiers
        come from, in time order; JSON columns parsed."""
        join, super_id = "", "NULL"
        if super_ids is not None:
            if not super_ids:
                return
            ids = ", ".join(str(int(s)) for s in super_ids)
            join = (
                "JOIN event_persons p ON p.workspace_id = {alias}.workspace_id AND p.event_id = {alias}.{ident} "
                f"AND p.kind = '{{kind}}' AND p.super_id IN ({ids})"
            )
            super_id = "p.super_id"
        events = _IDENTITY_EVENTS.format(
            join=join.format(alias="e", ident="message_id", kind="event"), super_id=super_id
        )
        clicks = _IDENTITY_CLICKS.format(
            join=join.format(alias="c", ident="click_id", kind="click"), super_id=super_id, click_event=CLICK_EVENT_NAME
        )
        cur = self._cursor()
        try:
            cur.execute(f"{events} UNION ALL {clicks} ORDER BY 15, 2", [workspace_id, workspace_id])
            while batch := cur.fetchmany(5000):
                for row in batch:
                    item = dict(zip(IDENTITY_FIELDS, row, strict=True))
                    for column in _JSON:
                        item[column] = _json(item[column])
                    yield item
        finally:
            cur.close()


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _as_dicts(kind: str, rows: list[tuple]) -> list[dict[str, Any]]:
    if kind == "click":
        return [dict(zip(_CLICK_FIELDS, row, strict=True)) for row in rows]
    out = []
    for row in rows:
        item = dict(zip(_EVENT_FIELDS, row, strict=True))
        for column in _JSON:
            item[column] = _json(item[column])
        out.append(item)
    return out
