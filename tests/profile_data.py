"""Test data for profiles and the data map: events, clicks and the stitcher's `event_persons` rows.

Events and clicks go into the real DuckDB store through its public append methods, `event_persons`
rows through the stitcher's own `save_stitched`; a StitchedEvent is what the stitcher hands listeners
for the same event. Tests that use these helpers never start the runtime, so the background
stitcher does not race them (test_profiles_api.py runs the real pipeline instead).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from siyu.events.store import CLICK_SCHEMA, EVENT_INPUT_SCHEMA
from siyu.identity.extract import person_traits
from siyu.identity.listeners import StitchedEvent
from siyu.runtime import Runtime

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def event(
    ws: int,
    type: str = "track",
    ts: datetime = T0,
    source_id: int | None = None,
    event: str | None = None,
    traits: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    user_id: str | None = "u-1",
    message_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    raw: dict[str, Any] = {"type": type, "userId": user_id, **extra}
    if event is not None:
        raw["event"] = event
    if traits is not None:
        raw["traits"] = traits
    if properties is not None:
        raw["properties"] = properties
    if context is not None:
        raw["context"] = context
    return {
        "message_id": message_id or f"m-{uuid.uuid4().hex[:12]}",
        "workspace_id": ws,
        "source_id": source_id,
        "type": type,
        "timestamp": ts,
        "raw": raw,
    }


def click(ws: int, ts: datetime = T0, slug: str = "coffee", platform: str = "wechat", **extra: Any) -> dict[str, Any]:
    row = {name: None for name in CLICK_SCHEMA.names}
    row.update(
        click_id=f"c-{uuid.uuid4().hex[:12]}",
        ts=naive(ts),
        workspace_id=ws,
        link_id=1,
        hostname="sy.test",
        slug=slug,
        visitor_id="v-1",
        new_visitor=False,
        platform=platform,
        os="iOS",
        device_type="mobile",
        is_bot=False,
        trigger="link",
        outcome="redirected",
        destination="https://example.com/coffee",
    )
    row.update(extra)
    return row


def store_events(rt: Runtime, events: list[dict[str, Any]]) -> None:
    rows = [
        {
            "message_id": e["message_id"],
            "workspace_id": e["workspace_id"],
            "source_id": e["source_id"],
            "type": e["type"],
            "timestamp": naive(e["timestamp"]),
            "original_timestamp": naive(e["timestamp"]),
            "sent_at": None,
            "received_at": naive(e["timestamp"]),
            "ip": None,
            "batch_context": None,
            "raw": orjson.dumps(e["raw"]).decode(),
        }
        for e in events
    ]
    rt.store.append_events(pa.Table.from_pylist(rows, schema=EVENT_INPUT_SCHEMA))


def store_clicks(rt: Runtime, clicks: list[dict[str, Any]]) -> None:
    rt.store.append_clicks(pa.Table.from_pylist(clicks, schema=CLICK_SCHEMA))


def file_persons(rt: Runtime, rows: list[tuple[int, str, str, int | None, datetime]]) -> None:
    """(workspace_id, event_id, kind, super_id, ts) into `event_persons`, as the stitcher writes them."""
    table = pa.table(
        {
            "workspace_id": pa.array([r[0] for r in rows], pa.int32()),
            "event_id": pa.array([r[1] for r in rows], pa.string()),
            "kind": pa.array([r[2] for r in rows], pa.string()),
            "super_id": pa.array([r[3] for r in rows], pa.int64()),
            "ts": pa.array([naive(r[4]) for r in rows], pa.timestamp("us")),
        }
    )
    rt.store.save_stitched(table, {})  # what the stitcher writes after resolving a batch


def stitched(e: dict[str, Any], super_id: int | None) -> StitchedEvent:
    raw = e["raw"]
    return StitchedEvent(
        workspace_id=e["workspace_id"],
        event_id=e["message_id"],
        kind="event",
        type=e["type"],
        event=raw.get("event"),
        timestamp=e["timestamp"],
        super_id=super_id,
        source_id=e["source_id"],
        traits=person_traits(e["type"], raw.get("traits"), raw.get("context")),  # as the stitcher does
        properties=raw.get("properties") or {},
        context=raw.get("context") or {},
    )


def record(rt: Runtime, listener, events: list[dict[str, Any]], super_id: int | None, clicks=()) -> None:
    """Store events (and clicks) of one person, file them under `super_id` and tell the listener."""
    store_events(rt, events)
    if clicks:
        store_clicks(rt, list(clicks))
    file_persons(
        rt,
        [(e["workspace_id"], e["message_id"], "event", super_id, e["timestamp"]) for e in events]
        + [(c["workspace_id"], c["click_id"], "click", super_id, c["ts"].replace(tzinfo=UTC)) for c in clicks],
    )
    with rt.db.session() as session:
        listener.events_stitched(session, [stitched(e, super_id) for e in events])
