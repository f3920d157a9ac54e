"""Click analytics reports, shaped once for the API, the CLI and the console."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from siyu.errors import InvalidInput
from siyu.events.store import DIMENSIONS, ClickFilter, EventStore

REPORT_DIMENSIONS = (
    "platform",
    "os",
    "device_type",
    "browser",
    "referrer_domain",
    "province",
    "city",
    "country",
    "trigger",
    "outcome",
)
BUCKETS = ("hour", "day", "week", "month")


def parse_range(since: str | None, until: str | None, default_days: int = 30) -> tuple[datetime, datetime]:
    def parse(value: str, field: str) -> datetime:
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
        except ValueError as exc:
            raise InvalidInput(field, "not an ISO 8601 date or date-time (e.g. 2026-11-01)") from exc
        except OverflowError as exc:  # e.g. 0001-01-01T00:00+08:00 is before year 1 in UTC
            raise InvalidInput(field, "out of the supported date range") from exc

    end = parse(until, "until") if until else datetime.now(UTC) + timedelta(seconds=1)
    if since:
        start = parse(since, "since")
    elif end - datetime.min.replace(tzinfo=UTC) <= timedelta(days=default_days):
        raise InvalidInput("until", "out of the supported date range")
    else:
        start = end - timedelta(days=default_days)
    if start >= end:
        raise InvalidInput("since", "must be before 'until'")
    if end - start > timedelta(days=3660):
        raise InvalidInput("since", "the range may span at most 10 years")
    return start, end


def report(
    store: EventStore, f: ClickFilter, bucket: str = "day", dimensions: tuple[str, ...] = REPORT_DIMENSIONS
) -> dict[str, Any]:
    if bucket not in BUCKETS:
        raise InvalidInput("bucket", f"must be one of {', '.join(BUCKETS)}")
    bad = [d for d in dimensions if d not in DIMENSIONS]
    if bad:
        raise InvalidInput("dimensions", f"unknown: {', '.join(bad)}; known: {', '.join(DIMENSIONS)}")
    summary = store.summary(f)
    return {
        "since": f.since.isoformat() if f.since else None,
        "until": f.until.isoformat() if f.until else None,
        "include_bots": f.include_bots,
        "clicks": summary.clicks,
        "unique_visitors": summary.unique_visitors,
        "bot_clicks": summary.bots,
        "timeseries": [
            {"time": t.isoformat(), "clicks": c, "unique_visitors": u} for t, c, u in store.timeseries(f, bucket)
        ],
        "breakdowns": {
            dim: [{"value": k, "clicks": c, "unique_visitors": u} for k, c, u in store.breakdown(f, dim)]
            for dim in dimensions
        },
    }


def export_csv(store: EventStore, f: ClickFilter) -> Iterator[str]:
    """CSV lines (header first), streamed so a large export never sits in memory."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in store.export(f):
        writer.writerow([_cell(v) for v in row])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


def _cell(value: object) -> object:
    """Dates as ISO text; visitor-controlled text that a spreadsheet would run as a formula is defused."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
