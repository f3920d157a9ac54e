"""The event store interface.

Analytics code talks to `EventStore`, never to DuckDB directly, so a ClickHouse implementation can
replace the embedded one without touching callers. Every query is parameterised.

Two kinds of rows live in the store: short-link clicks (`clicks`, written by the redirect's click
queue) and tracked events (`events`, written by the tracking API's event queue, Segment's spec).
The store also exposes clicks as events (`Short Link Clicked` tracks), so identity resolution and
journeys read one stream: `list_events(..., include_clicks=True)`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

# Column order of the clicks table; the ingester builds Arrow tables in exactly this shape.
CLICK_SCHEMA = pa.schema(
    [
        ("click_id", pa.string()),
        ("ts", pa.timestamp("us")),
        ("workspace_id", pa.int32()),
        ("link_id", pa.int64()),
        ("hostname", pa.string()),
        ("slug", pa.string()),
        ("visitor_id", pa.string()),
        ("new_visitor", pa.bool_()),
        ("person_ref", pa.string()),
        ("ip", pa.string()),
        ("user_agent", pa.string()),
        ("method", pa.string()),
        ("referrer", pa.string()),
        ("referrer_domain", pa.string()),
        ("trigger", pa.string()),
        ("outcome", pa.string()),
        ("destination", pa.string()),
        ("variant", pa.int16()),
        ("platform", pa.string()),
        ("browser", pa.string()),
        ("browser_version", pa.string()),
        ("os", pa.string()),
        ("os_version", pa.string()),
        ("device_type", pa.string()),
        ("device_brand", pa.string()),
        ("device_model", pa.string()),
        ("is_bot", pa.bool_()),
        ("country", pa.string()),
        ("country_code", pa.string()),
        ("province", pa.string()),
        ("city", pa.string()),
        ("isp", pa.string()),
        ("query", pa.string()),
        ("utm_source", pa.string()),
        ("utm_medium", pa.string()),
        ("utm_campaign", pa.string()),
        ("utm_term", pa.string()),
        ("utm_content", pa.string()),
    ]
)

# Dimensions a breakdown may group by (whitelisted: they become column names in SQL).
DIMENSIONS = (
    "platform",
    "os",
    "device_type",
    "browser",
    "referrer_domain",
    "country",
    "province",
    "city",
    "isp",
    "trigger",
    "outcome",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "destination",
    "variant",
)


# What the event writer appends: the ids and times the ingester settled (deduplicated messageId,
# clock-corrected timestamp, IP after the workspace's privacy mode) plus the message as received
# (`raw`, JSON text) and the batch-level context to merge into it; the store extracts the columns.
EVENT_INPUT_SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("workspace_id", pa.int32()),
        ("source_id", pa.int64()),
        ("type", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("original_timestamp", pa.timestamp("us")),
        ("sent_at", pa.timestamp("us")),
        ("received_at", pa.timestamp("us")),
        ("ip", pa.string()),
        ("batch_context", pa.string()),
        ("raw", pa.string()),
    ]
)

# Columns of a stored event, in order (`list_events` returns dicts with these keys; the JSON
# columns come back parsed).
EVENT_COLUMNS = (
    "message_id",
    "workspace_id",
    "source_id",
    "type",
    "event",
    "name",
    "user_id",
    "anonymous_id",
    "group_id",
    "previous_id",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "context",
    "properties",
    "traits",
    "integrations",
    "page_url",
    "page_path",
    "page_referrer",
    "page_title",
    "ip",
    "user_agent",
    "channel",
    "library_name",
    "library_version",
)
JSON_COLUMNS = frozenset({"context", "properties", "traits", "integrations"})
CLICK_EVENT_NAME = "Short Link Clicked"


@dataclass(frozen=True)
class EventFilter:
    workspace_id: int
    source_id: int | None = None
    type: str | None = None
    since: datetime | None = None  # on the corrected `timestamp`
    until: datetime | None = None
    include_clicks: bool = False  # also short-link clicks, as `Short Link Clicked` tracks


@dataclass(frozen=True)
class ClickFilter:
    workspace_id: int
    link_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_bots: bool = False


@dataclass(frozen=True)
class Summary:
    clicks: int
    unique_visitors: int
    bots: int


class EventStore(Protocol):
    def append_clicks(self, table: pa.Table) -> None: ...

    def clicks_served(self, link_id: int) -> int: ...

    def summary(self, f: ClickFilter) -> Summary: ...

    def timeseries(self, f: ClickFilter, bucket: str) -> list[tuple[datetime, int, int]]: ...

    def breakdown(self, f: ClickFilter, dimension: str, limit: int = 20) -> list[tuple[str, int, int]]: ...

    def top_links(self, f: ClickFilter, limit: int = 10) -> list[tuple[int, int, int]]: ...

    def export(self, f: ClickFilter) -> Iterator[tuple]: ...

    def append_events(self, table: pa.Table) -> None:
        """Append tracked events shaped as EVENT_INPUT_SCHEMA (one writer thread calls this)."""
        ...

    def stored_message_ids(self, workspace_id: int, message_ids: Sequence[str]) -> set[str]:
        """Which of these message ids are stored for the workspace, at any time (bulk imports skip them)."""
        ...

    def append_new_events(self, table: pa.Table) -> int:
        """Append, in one transaction, the rows whose (workspace_id, message_id) is not stored yet; how many."""
        ...

    def recent_message_ids(self, since: datetime) -> Iterator[tuple[int, str, datetime]]:
        """(workspace_id, message_id, received_at) of events received since `since`: warms the de-duplicator."""
        ...

    def list_events(self, f: EventFilter, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Events in timestamp order (then message_id), JSON columns parsed."""
        ...

    def count_events(self, f: EventFilter) -> int: ...

    def query(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list[tuple]:
        """A read-only, parameterised query in the store's SQL dialect (profiles and the data map own
        their SQL, over `events`, `clicks` and the stitcher's `event_persons`)."""
        ...

    def writing(self, lock: bool = True) -> AbstractContextManager[Any]:
        """A cursor in one transaction (under the store's write lock unless `lock` is False), for tables
        derived from the store (siyu.segments.facts keeps per-person facts). Only the store's owner may call it."""
        ...

    def reading(self) -> AbstractContextManager[Any]:
        """A read-only cursor of the store's SQL dialect with Arrow results (siyu.value.inputs)."""
        ...

    def person_rows(self, workspace_id: int, super_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
        """{'events': [...], 'clicks': [...]} stitched to any of `super_ids` (subject-rights export)."""
        ...

    def erase_person_rows(self, workspace_id: int, super_ids: Sequence[int]) -> dict[str, int]:
        """Delete the events, clicks and event_persons rows of `super_ids` (erasure); counts per table.
        Only the process that owns the store (the server's Runtime) may call it."""
        ...

    # event_persons (siyu.events.person_store), kept by the identity stitcher (siyu.identity.stitch)
    def event_ids_of(self, workspace_id: int, super_id: int) -> list[tuple[str, str]]:
        """(kind, event_id) of every event ('event') and click ('click') a current super ID holds."""
        ...

    def delete_event_persons(self, workspace_id: int, super_id: int) -> int:
        """Forget which events were a person's (their `event_persons` rows); how many rows."""
        ...

    def close(self) -> None: ...
