"""The embedded event store on DuckDB: one process writes (the writer threads), by Arrow append."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from siyu.events import event_sql
from siyu.events.store import (
    CLICK_SCHEMA,
    DIMENSIONS,
    EVENT_COLUMNS,
    EVENT_INPUT_SCHEMA,
    JSON_COLUMNS,
    ClickFilter,
    EventFilter,
    Summary,
)

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.timestamp("us"): "TIMESTAMP",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
}
BUCKETS = {"hour": "hour", "day": "day", "week": "week", "month": "month"}


class StoreLocked(RuntimeError):
    """Another process (usually the running server) holds the event store."""


class DuckDBEventStore:
    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as exc:
            raise StoreLocked(
                f"the event store {self.path} is in use by another process (is the server running?)"
            ) from exc
        self._write_lock = threading.Lock()
        if not read_only:
            self._create()

    def _create(self) -> None:
        cols = ", ".join(f"{f.name} {_DUCK_TYPES[f.type]}" for f in CLICK_SCHEMA)
        self._con.execute(f"CREATE TABLE IF NOT EXISTS clicks ({cols})")
        self._con.execute(event_sql.CREATE_EVENTS)
        self._con.execute(event_sql.CREATE_ALL_EVENTS)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def append_clicks(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = table.select(CLICK_SCHEMA.names).cast(CLICK_SCHEMA)
        with self._write_lock:
            cur = self._cursor()
            try:
                cur.register("incoming_clicks", table)
                cur.execute("INSERT INTO clicks SELECT * FROM incoming_clicks")
                cur.unregister("incoming_clicks")
            finally:
                cur.close()

    def _where(self, f: ClickFilter) -> tuple[str, list[object]]:
        clauses = ["workspace_id = ?"]
        params: list[object] = [f.workspace_id]
        if f.link_id is not None:
            clauses.append("link_id = ?")
            params.append(f.link_id)
        if f.since is not None:
            clauses.append("ts >= ?")
            params.append(_naive_utc(f.since))
        if f.until is not None:
            clauses.append("ts < ?")
            params.append(_naive_utc(f.until))
        if not f.include_bots:
            clauses.append("NOT is_bot")
        return " AND ".join(clauses), params

    def _fetch(self, sql: str, params: list[object]) -> list[tuple]:
        cur = self._cursor()
        try:
            return cur.execute(sql, params).fetchall()
        finally:
            cur.close()

    def clicks_served(self, link_id: int) -> int:
        """Non-bot visits that were redirected: what a click-count expiry counts."""
        rows = self._fetch(
            "SELECT count(*) FROM clicks WHERE link_id = ? AND outcome = 'redirected' AND NOT is_bot", [link_id]
        )
        return int(rows[0][0])

    def summary(self, f: ClickFilter) -> Summary:
        where, params = self._where(ClickFilter(**{**f.__dict__, "include_bots": True}))
        bot_filter = "" if f.include_bots else "NOT is_bot"
        sql = (
            f"SELECT count(*) FILTER (WHERE {bot_filter or 'true'}), "
            f"count(DISTINCT visitor_id) FILTER (WHERE {bot_filter or 'true'}), "
            f"count(*) FILTER (WHERE is_bot) FROM clicks WHERE {where}"
        )
        clicks, unique, bots = self._fetch(sql, params)[0]
        return Summary(int(clicks), int(unique), int(bots))

    def timeseries(self, f: ClickFilter, bucket: str = "day") -> list[tuple[datetime, int, int]]:
        if bucket not in BUCKETS:
            raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
        where, params = self._where(f)
        sql = (
            f"SELECT date_trunc('{BUCKETS[bucket]}', ts) AS t, count(*), count(DISTINCT visitor_id) "
            f"FROM clicks WHERE {where} GROUP BY t ORDER BY t"
        )
        return [(t.replace(tzinfo=UTC), int(c), int(u)) for t, c, u in self._fetch(sql, params)]

    def breakdown(self, f: ClickFilter, dimension: str, limit: int = 20) -> list[tuple[str, int, int]]:
        if dimension not in DIMENSIONS:
            raise ValueError(f"dimension must be one of {', '.join(DIMENSIONS)}")
        where, params = self._where(f)
        sql = (
            f"SELECT coalesce(CAST({dimension} AS VARCHAR), '') AS k, count(*) AS c, count(DISTINCT visitor_id) "
            f"FROM clicks WHERE {where} GROUP BY k ORDER BY c DESC, k LIMIT ?"
        )
        return [(k, int(c), int(u)) for k, c, u in self._fetch(sql, [*params, limit])]

    def top_links(self, f: ClickFilter, limit: int = 10) -> list[tuple[int, int, int]]:
        where, params = self._where(f)
        sql = (
            f"SELECT link_id, count(*) AS c, count(DISTINCT visitor_id) FROM clicks WHERE {where} "
            "GROUP BY link_id ORDER BY c DESC, link_id LIMIT ?"
        )
        return [(int(i), int(c), int(u)) for i, c, u in self._fetch(sql, [*params, limit])]

    def export(self, f: ClickFilter) -> Iterator[tuple]:
        where, params = self._where(f)
        cols = [n for n in CLICK_SCHEMA.names if n not in ("user_agent",)] + ["user_agent"]
        cur = self._cursor()
        try:
            cur.execute(f"SELECT {', '.join(cols)} FROM clicks WHERE {where} ORDER BY ts", params)
            yield tuple(cols)
            while batch := cur.fetchmany(2000):
                yield from batch
        finally:
            cur.close()

    # -- tracked events -----------------------------------------------------------------------
    def append_events(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = table.select(EVENT_INPUT_SCHEMA.names).cast(EVENT_INPUT_SCHEMA)
        with self._write_lock:
            cur = self._cursor()
            try:
                cur.register("incoming_events", table)
                cur.execute(event_sql.INSERT_EVENTS)
                cur.unregister("incoming_events")
            finally:
                cur.close()

    def recent_message_ids(self, since: datetime) -> Iterator[tuple[int, str, datetime]]:
        cur = self._cursor()
        try:
            cur.execute(
                "SELECT workspace_id, message_id, received_at FROM events WHERE received_at >= ?",
                [_naive_utc(since)],
            )
            while batch := cur.fetchmany(10_000):
                yield from batch
        finally:
            cur.close()

    def _event_where(self, f: EventFilter) -> tuple[str, list[object]]:
        clauses = ["workspace_id = ?"]
        params: list[object] = [f.workspace_id]
        for column, value in (("source_id", f.source_id), ("type", f.type)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if f.since is not None:
            clauses.append("timestamp >= ?")
            params.append(_naive_utc(f.since))
        if f.until is not None:
            clauses.append("timestamp < ?")
            params.append(_naive_utc(f.until))
        return " AND ".join(clauses), params

    def list_events(self, f: EventFilter, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        where, params = self._event_where(f)
        source = "all_events" if f.include_clicks else "events"
        rows = self._fetch(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM {source} WHERE {where} "
            "ORDER BY timestamp, message_id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        out = []
        for row in rows:
            item = dict(zip(EVENT_COLUMNS, row, strict=True))
            for column in JSON_COLUMNS:
                if item[column] is not None:
                    item[column] = orjson.loads(item[column])
            out.append(item)
        return out

    def count_events(self, f: EventFilter) -> int:
        where, params = self._event_where(f)
        source = "all_events" if f.include_clicks else "events"
        return int(self._fetch(f"SELECT count(*) FROM {source} WHERE {where}", params)[0][0])

    def close(self) -> None:
        self._con.close()


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value
