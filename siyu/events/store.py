"""The event store interface.

Analytics code talks to `EventStore`, never to DuckDB directly, so a ClickHouse implementation can
replace the embedded one without touching callers. Every query is parameterised.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

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

    def close(self) -> None: ...
