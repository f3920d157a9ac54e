"""What the event store knows about a person: computed attributes, timeline rows, identify history.

Everything is read at query time through the stitcher's `event_persons` table (event or click id →
super ID), so a merge or split shows at once without recomputing anything. A person is asked for
with all its super IDs (the survivor and those merged into it), so rows still filed under an
absorbed ID count too. DuckDB SQL, parameterised; `store.query` runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from siyu.events.store import EventStore
from siyu.identity.extract import person_traits

ORDER_EVENT = "Order Completed"  # Segment's e-commerce spec

_MINE = """
mine AS (
    SELECT DISTINCT event_id, kind, ts FROM event_persons
    WHERE workspace_id = $ws AND list_contains($ids, super_id)
),
ev AS (
    SELECT e.* FROM mine m JOIN events e
      ON m.kind = 'event' AND e.workspace_id = $ws AND e.message_id = m.event_id
),
cl AS (
    SELECT c.* FROM mine m JOIN clicks c
      ON m.kind = 'click' AND c.workspace_id = $ws AND c.click_id = m.event_id
)"""

# An order re-sent by a second source (the shop and the CRM) counts once: by order_id when it has one.
_COMPUTED = f"""
WITH {_MINE},
orders AS (
    SELECT coalesce(properties->>'$.order_id', message_id) AS order_key,
           arg_max(coalesce(TRY_CAST(properties->>'$.revenue' AS DOUBLE),
                            TRY_CAST(properties->>'$.total' AS DOUBLE)), "timestamp") AS amount,
           arg_max(properties->>'$.currency', "timestamp") AS currency,
           max("timestamp") AS placed_at
    FROM ev WHERE type = 'track' AND event = '{ORDER_EVENT}'
    GROUP BY order_key
)
SELECT (SELECT min(ts) FROM mine), (SELECT max(ts) FROM mine),
       (SELECT count(*) FROM mine WHERE kind = 'event'), (SELECT count(*) FROM mine WHERE kind = 'click'),
       (SELECT count(*) FROM orders), (SELECT sum(amount) FROM orders), (SELECT max(placed_at) FROM orders),
       (SELECT mode(currency) FROM orders)
"""

_SOURCES = f"""
WITH {_MINE}
SELECT source_id, count(*) AS n, max("timestamp") AS last FROM ev GROUP BY source_id
UNION ALL
SELECT -1, count(*), max(ts) FROM cl HAVING count(*) > 0
ORDER BY n DESC, source_id
"""

_PLATFORMS = f"""
WITH {_MINE}
SELECT 'platform' AS dim, platform AS v, count(*) AS n FROM cl WHERE platform IS NOT NULL GROUP BY v
UNION ALL
SELECT 'os', v, count(*) FROM (
    SELECT context->>'$.os.name' AS v FROM ev UNION ALL SELECT os FROM cl
) WHERE v IS NOT NULL AND v <> '' GROUP BY v
ORDER BY n DESC, v
"""

_TIMELINE = f"""
WITH {_MINE}
SELECT m.kind, m.event_id, m.ts, e.type, e.event, e.name, e.source_id, e.properties, e.traits,
       e.context->'$.traits', e.page_path, e.page_title, e.page_url, e.group_id, e.previous_id,
       c.slug, c.destination, c.platform, c.trigger, c.outcome, c.link_id, c.hostname
FROM (SELECT * FROM mine ORDER BY ts DESC, event_id DESC LIMIT $limit OFFSET $offset) m
LEFT JOIN events e ON m.kind = 'event' AND e.workspace_id = $ws AND e.message_id = m.event_id
LEFT JOIN clicks c ON m.kind = 'click' AND c.workspace_id = $ws AND c.click_id = m.event_id
ORDER BY m.ts DESC, m.event_id DESC
"""
_TIMELINE_COUNT = f"WITH {_MINE} SELECT count(*) FROM mine"
_TIMELINE_COLUMNS = (
    "kind",
    "event_id",
    "timestamp",
    "type",
    "event",
    "name",
    "source_id",
    "properties",
    "traits",
    "context_traits",
    "page_path",
    "page_title",
    "page_url",
    "group_id",
    "previous_id",
    "slug",
    "destination",
    "platform",
    "trigger",
    "outcome",
    "link_id",
    "hostname",
)

# The events of some persons that carry person traits, oldest first, for rebuilding traits after a
# split: identifies, and any event with `context.traits` (see siyu.identity.extract.person_traits).
_IDENTIFIES = """
SELECT ep.super_id, e.message_id, e.source_id, e."timestamp", e.type, e.traits, e.context
FROM (SELECT DISTINCT event_id, super_id FROM event_persons
      WHERE workspace_id = $ws AND kind = 'event' AND list_contains($ids, super_id)) ep
JOIN events e ON e.workspace_id = $ws AND e.message_id = ep.event_id
WHERE e.type = 'identify' OR (e.context->'$.traits') IS NOT NULL
ORDER BY e."timestamp", e.message_id
"""


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def computed(store: EventStore, workspace_id: int, ids: Sequence[int]) -> dict[str, Any]:
    """First/last seen, event and click counts, orders and revenue, sources and platforms."""
    params = {"ws": workspace_id, "ids": list(ids)}
    first, last, events, clicks, orders, revenue, last_order, currency = store.query(_COMPUTED, params)[0]
    platforms: dict[str, list[dict[str, Any]]] = {"platform": [], "os": []}
    for dim, value, n in store.query(_PLATFORMS, params):
        platforms[dim].append({"name": value, "count": int(n)})
    return {
        "first_seen": _utc(first),
        "last_seen": _utc(last),
        "event_count": int(events),
        "click_count": int(clicks),
        "order_count": int(orders),
        "revenue": round(float(revenue), 2) if revenue is not None else 0.0,
        "currency": currency,
        "last_order_at": _utc(last_order),
        "sources": [
            {
                "source_id": None if s is None or s == -1 else int(s),
                "kind": "short_links" if s == -1 else None,
                "count": int(n),
                "last_seen": _utc(t),
            }
            for s, n, t in store.query(_SOURCES, params)
        ],
        "platforms": platforms["platform"],
        "os": platforms["os"],
    }


def timeline_rows(
    store: EventStore, workspace_id: int, ids: Sequence[int], limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    params = {"ws": workspace_id, "ids": list(ids)}
    total = int(store.query(_TIMELINE_COUNT, params)[0][0])
    rows = store.query(_TIMELINE, {**params, "limit": limit, "offset": offset})
    out = []
    for row in rows:
        item = dict(zip(_TIMELINE_COLUMNS, row, strict=True))
        item["timestamp"] = _utc(item["timestamp"])
        for column in ("properties", "traits", "context_traits"):
            item[column] = _json(item[column])
        out.append(item)
    return total, out


@dataclass(frozen=True)
class Identify:
    super_id: int
    event_id: str
    source_id: int | None
    timestamp: datetime
    traits: dict[str, Any]


def identifies(store: EventStore, workspace_id: int, ids: Sequence[int]) -> list[Identify]:
    """The person traits each event of these persons carried, oldest first: what the stitcher handed
    listeners for them (`person_traits`: an identify's traits over `context.traits`)."""
    out = []
    for super_id, event_id, source_id, ts, type_, traits, context in store.query(
        _IDENTIFIES, {"ws": workspace_id, "ids": list(ids)}
    ):
        merged = person_traits(type_, _json(traits), _json(context))
        if merged:
            out.append(Identify(int(super_id), event_id, source_id, _utc(ts), merged))
    return out
