"""The embedded event store on DuckDB: one process writes (the writer threads), by Arrow append."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from siyu.events import event_sql
from siyu.events.person_store import EventPersonsStore
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


CHECKPOINT_THRESHOLD = "128MB"
log = logging.getLogger("siyu.events")


def store_threads() -> int:
    """DuckDB worker threads for the process that writes the store (the server): one fewer than the
    machine's cores, at least one, or `SIYU_DUCKDB_THREADS`.

    Measured on 2 cores under wrk: with DuckDB's default (one thread per core) each click append ran
    on both cores at once, taking CPU from Granian's thread and the event loop (append CPU ~7 µs a
    row; ~5 µs on one thread); with one thread, ~29-30 k redirects/s at p99 7-9 ms against
    26-28 k at 9-10 ms, alternating runs. Queries in that process run on the same threads."""
    configured = os.environ.get("SIYU_DUCKDB_THREADS", "").strip()
    default = max(1, (os.cpu_count() or 2) - 1)
    if not configured:
        return default
    if configured.isdigit() and int(configured) >= 1:
        return int(configured)
    log.warning("SIYU_DUCKDB_THREADS must be a whole number of at least 1, not %r; using %d", configured, default)
    return default


class StoreLocked(RuntimeError):
    """Another process (usually the running server) holds the event store."""


class DuckDBEventStore(EventPersonsStore):  # + event_persons, kept by the identity stitcher
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
            # DuckDB checkpoints the WAL into the file every 16 MB by default; with clicks appended
            # every half second that rewrote the open row groups over and over: measured 8.7 µs of
            # writer CPU per click, 4.8 µs at 64 MB and above. 128 MB keeps crash replay short.
            self._con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
            self._con.execute(f"SET threads = {store_threads()}")
            self._create()

    def _create(self) -> None:
        cols = ", ".join(f"{f.name} {_DUCK_TYPES[f.type]}" for f in CLICK_SCHEMA)
        self._con.execute(f"CREATE TABLE IF NOT EXISTS clicks ({cols})")
        self._con.execute(event_sql.CREATE_EVENTS)
        self._con.execute(event_sql.CREATE_ALL_EVENTS)
        self._create_event_persons()

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

    def stored_message_ids(self, workspace_id: int, message_ids: Sequence[str]) -> set[str]:
        """Which of these ids the events table already holds for the workspace, however long ago."""
        if not message_ids:
            return set()
        wanted = pa.table({"message_id": pa.array(list(message_ids), pa.string())})
        cur = self._cursor()
        try:
            cur.register("wanted_ids", wanted)
            rows = cur.execute(
                "SELECT DISTINCT e.message_id FROM events e SEMI JOIN wanted_ids w ON e.message_id = w.message_id "
                "WHERE e.workspace_id = ?",
                [workspace_id],
            ).fetchall()
            cur.unregister("wanted_ids")
        finally:
            cur.close()
        return {r[0] for r in rows}

    def append_new_events(self, table: pa.Table) -> int:
        """Append the rows whose (workspace, message id) is not stored yet, all in one transaction: all or
        nothing, and idempotent beyond the tracking API's 24-hour de-duplication window (bulk imports).
        Returns how many rows were appended."""
        if table.num_rows == 0:
            return 0
        table = table.select(EVENT_INPUT_SCHEMA.names).cast(EVENT_INPUT_SCHEMA)
        with self._write_lock:
            cur = self._cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                cur.register("candidate_events", table)
                fresh = cur.sql(
                    "SELECT c.* FROM candidate_events c ANTI JOIN events e "
                    "ON e.workspace_id = c.workspace_id AND e.message_id = c.message_id"
                ).to_arrow_table()
                cur.unregister("candidate_events")
                if fresh.num_rows:
                    cur.register("incoming_events", fresh)
                    cur.execute(event_sql.INSERT_EVENTS)
                    cur.unregister("incoming_events")
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()
        return fresh.num_rows

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

    def query(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list[tuple]:
        """A read-only, parameterised query (`?` or `$name`) for packages with their own SQL (profiles)."""
        cur = self._cursor()
        try:
            return cur.execute(sql, params).fetchall()
        finally:
            cur.close()

    # -- subject rights (siyu.privacy): a person's rows, found through the stitcher's event_persons -----------
    def person_rows(self, workspace_id: int, super_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
        """The events and clicks stitched to any of `super_ids` (a person and everyone merged into it)."""
        out: dict[str, list[dict[str, Any]]] = {"events": [], "clicks": []}
        if not super_ids or not self._has_table("event_persons"):
            return out
        ids = [int(s) for s in super_ids]
        for kind, table, key, columns, order in _PERSON_TABLES:
            rows = self._fetch(
                f"SELECT {', '.join(columns)} FROM {table} WHERE workspace_id = ? AND {key} IN "
                f"({_PERSON_IDS}) ORDER BY {order}",
                [workspace_id, workspace_id, kind, ids],
            )
            for row in rows:
                item = dict(zip(columns, row, strict=True))
                for column in JSON_COLUMNS & item.keys():
                    if item[column] is not None:
                        item[column] = orjson.loads(item[column])
                out[table].append(item)
        return out

    def erase_person_rows(self, workspace_id: int, super_ids: Sequence[int]) -> dict[str, int]:
        """Delete a person's events, clicks and event_persons rows in one DuckDB transaction; counts deleted."""
        counts = {"events": 0, "clicks": 0, "event_links": 0}
        if not super_ids or not self._has_table("event_persons"):
            return counts
        ids = [int(s) for s in super_ids]
        with self._write_lock:
            cur = self._cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                for kind, table, key, _, _ in _PERSON_TABLES:
                    deleted = cur.execute(
                        f"DELETE FROM {table} WHERE workspace_id = ? AND {key} IN ({_PERSON_IDS})",
                        [workspace_id, workspace_id, kind, ids],
                    ).fetchall()
                    counts[table] = int(deleted[0][0])
                deleted = cur.execute(
                    "DELETE FROM event_persons WHERE workspace_id = ? AND list_contains(?, super_id)",
                    [workspace_id, ids],
                ).fetchall()
                counts["event_links"] = int(deleted[0][0])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()
        return counts

    @contextmanager
    def writing(self, lock: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor in one DuckDB transaction for packages that keep tables derived from the store
        (siyu.segments.facts): committed when the block ends, rolled back on any error. Under the write
        lock, unless `lock` is False: a long job that writes only its own tables (DuckDB isolates it)
        need not stall the event writers."""
        with self._write_lock if lock else contextlib.nullcontext():
            cur = self._cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for read-only analytics that want Arrow results (siyu.value reads its
        model inputs with `cur.sql(...).to_arrow_table()`); it never takes the write lock."""
        cur = self._cursor()
        try:
            yield cur
        finally:
            cur.close()

    def _has_table(self, name: str) -> bool:
        return bool(self._fetch("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])[0][0])

    def close(self) -> None:
        self._con.close()


# (kind in event_persons, table, its id column, columns returned, order) for person_rows / erase_person_rows.
_PERSON_TABLES = (
    ("event", "events", "message_id", EVENT_COLUMNS, "timestamp, message_id"),
    ("click", "clicks", "click_id", tuple(CLICK_SCHEMA.names), "ts, click_id"),
)
_PERSON_IDS = "SELECT event_id FROM event_persons WHERE workspace_id = ? AND kind = ? AND list_contains(?, super_id)"


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value
