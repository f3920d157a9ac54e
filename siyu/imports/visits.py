"""Store visits (到店) → 'Store Visited' tracks: who came to which store, when, for how long, served by whom.

The visitor is known by member_id (the userId), phone or unionid (in `context.traits`), at least one
of them. `duration` is in minutes. A visit is identified by store, time and visitor: importing the
same visit again changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from siyu.imports import values
from siyu.imports.plan import Cells, Issues, Kind, Planned, compact, digest, track
from siyu.imports.reader import Record

COLUMNS = ("store_id", "visited_at", "member_id", "phone", "unionid", "duration", "staff")


def build(records: list[Record], issues: Issues, now: datetime, fmt: str) -> list[Planned]:
    planned: list[Planned] = []
    for record in records:
        c = Cells(record.values, record.row, issues)
        store_id = c.get("store_id", values.ident, required=True)
        visited_at = c.get("visited_at", lambda v: values.moment(v, now), required=True)
        member_id = c.get("member_id", values.identifier)
        identifiers = compact({"phone": c.get("phone", values.phone), "unionid": c.get("unionid", values.identifier)})
        properties = compact(
            {"store_id": store_id, "duration_minutes": c.get("duration", values.minutes), "staff": c.get("staff")}
        )
        if member_id is None and not identifiers and c.ok:
            c.error("member_id", "give member_id, phone or unionid: who visited?", "import_visit_person")
        if not c.ok:
            continue
        assert visited_at is not None
        message = track("Store Visited", visited_at, properties, member_id, identifiers)
        key = "\x1f".join((str(store_id), values.iso(visited_at), member_id or "", *sorted(identifiers.values())))
        content = digest({"p": properties})
        planned.append(Planned(record.row, key, message, visited_at, content, key, [record.row]))
    return planned


SPEC = Kind(
    name="store-visits",
    source_kind="store",
    default_source="门店导入",
    columns=COLUMNS,
    required=("store_id", "visited_at"),
    build=build,
    key_column="store_id",
)
