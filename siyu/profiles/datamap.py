"""The data map (数据地图): how many users do I really have, and where?

Per source (touchpoint): the identifier types its events carry, its events per day over the last
30 days (Beijing days), how many profiles it reaches, and where the identity graph has gaps: the
share of its events that stay anonymous, the profiles only it has seen (islands no other touchpoint
joins), identifier types that are collected but never linked to anything. Short-link clicks are a
source of their own (`short_links`); bot clicks are not people and are left out.

Which identifier types a source carries is read from a sample of its latest events with the same
extraction the stitcher uses (`siyu.identity.extract`), so the map says what One ID actually sees.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.events.store import EventStore
from siyu.identity.extract import click_identifiers, event_identifiers, person_traits, usable_keys
from siyu.identity.models import IdentityIdentifier, IdentityPerson
from siyu.identity.rules import get_rules
from siyu.sources.models import Source

DAYS = 30
SAMPLE = 1000  # latest events per source read for the identifier types it carries
BEIJING = timedelta(hours=8)  # China has no daylight saving: a day is UTC+8 all year
DEVICE_TYPES = frozenset({"visitor_cookie", "device_id"})  # a browser or a phone, not yet a person
ANONYMOUS_GAP = 0.5  # a source with at least this share of anonymous events is a gap
ISLAND_GAP = 0.5  # ... or with at least this share of its profiles seen nowhere else
NO_SOURCE, SHORT_LINKS = 0, -1  # keys for events without a source, and for clicks

_VOLUME = """
SELECT coalesce(e.source_id, 0) AS src, count(*) AS n,
       count(*) FILTER (WHERE p.event_id IS NULL) AS pending,
       count(*) FILTER (WHERE p.event_id IS NOT NULL AND p.super_id IS NULL) AS anonymous,
       count(DISTINCT p.super_id) AS profiles
FROM events e
LEFT JOIN event_persons p ON p.workspace_id = e.workspace_id AND p.kind = 'event' AND p.event_id = e.message_id
WHERE e.workspace_id = $ws
GROUP BY src
UNION ALL
SELECT -1, count(*), count(*) FILTER (WHERE p.event_id IS NULL),
       count(*) FILTER (WHERE p.event_id IS NOT NULL AND p.super_id IS NULL), count(DISTINCT p.super_id)
FROM clicks c
LEFT JOIN event_persons p ON p.workspace_id = c.workspace_id AND p.kind = 'click' AND p.event_id = c.click_id
WHERE c.workspace_id = $ws AND NOT c.is_bot
HAVING count(*) > 0
"""

_DAILY = """
SELECT coalesce(source_id, 0), CAST("timestamp" + INTERVAL 8 HOUR AS DATE) AS d, count(*)
FROM events WHERE workspace_id = $ws AND "timestamp" >= $since GROUP BY ALL
UNION ALL
SELECT -1, CAST(ts + INTERVAL 8 HOUR AS DATE) AS d, count(*)
FROM clicks WHERE workspace_id = $ws AND ts >= $since AND NOT is_bot GROUP BY ALL
"""

# Per profile, the sources that have seen it; a profile with one source is an island of that source.
_REACH = """
WITH seen AS (
    SELECT p.super_id, coalesce(e.source_id, 0) AS src
    FROM event_persons p
    JOIN events e ON e.workspace_id = p.workspace_id AND e.message_id = p.event_id
    WHERE p.workspace_id = $ws AND p.kind = 'event' AND p.super_id IS NOT NULL
    UNION ALL
    SELECT super_id, -1 FROM event_persons
    WHERE workspace_id = $ws AND kind = 'click' AND super_id IS NOT NULL
),
per AS (SELECT super_id, count(DISTINCT src) AS k, min(src) AS src FROM seen GROUP BY super_id)
SELECT CASE WHEN k = 1 THEN src END AS only_src, count(*) FROM per GROUP BY only_src
"""

_SAMPLE = f"""
SELECT coalesce(source_id, 0), type, user_id, anonymous_id, previous_id, traits, context FROM events
WHERE workspace_id = $ws
QUALIFY row_number() OVER (PARTITION BY source_id ORDER BY received_at DESC) <= {SAMPLE}
"""
_CLICK_SAMPLE = f"""
SELECT person_ref, visitor_id FROM clicks WHERE workspace_id = $ws AND NOT is_bot
ORDER BY ts DESC LIMIT {SAMPLE}
"""


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _carried(session: Session, store: EventStore, workspace_id: int, kinds: dict[int, str]) -> dict[int, dict]:
    """Per source: how many sampled events, and per identifier type how many of them carry it."""
    rules = get_rules(session, workspace_id)
    sampled: dict[int, int] = Counter()
    carried: dict[int, Counter] = defaultdict(Counter)
    for src, type_, user_id, anonymous_id, previous_id, traits, context in store.query(_SAMPLE, {"ws": workspace_id}):
        context = _json(context)
        pairs = event_identifiers(
            type_=type_,
            user_id=user_id,
            anonymous_id=anonymous_id,
            previous_id=previous_id,
            traits=person_traits(type_, _json(traits), context),
            context=context,
            source_kind=kinds.get(src),
            known_types=rules.types,
        )
        sampled[src] += 1
        carried[src].update({t for t, _ in usable_keys(rules, pairs)})
    for person_ref, visitor_id in store.query(_CLICK_SAMPLE, {"ws": workspace_id}):
        resolving, looked_up = click_identifiers(person_ref, visitor_id)
        sampled[SHORT_LINKS] += 1
        carried[SHORT_LINKS].update({t for t, _ in usable_keys(rules, resolving + looked_up)})
    return {
        src: {"sampled": n, "types": [{"type": t, "share": round(c / n, 4)} for t, c in carried[src].most_common()]}
        for src, n in sampled.items()
    }


def _graph(session: Session, workspace_id: int) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Head counts of the identity graph and, per identifier type, how well it is linked."""
    rules = get_rules(session, workspace_id)
    P, I = IdentityPerson, IdentityIdentifier  # noqa: E741, N806
    live = (P.workspace_id == workspace_id) & P.merged_into.is_(None) & P.erased_at.is_(None)
    profiles = session.scalar(select(func.count()).select_from(P).where(live)) or 0
    personal = (
        session.scalar(
            select(func.count(func.distinct(I.person_id))).where(
                I.workspace_id == workspace_id, I.id_type.not_in(DEVICE_TYPES)
            )
        )
        or 0
    )
    per_type = {
        t: (n, people)
        for t, n, people in session.execute(
            select(I.id_type, func.count(), func.count(func.distinct(I.person_id)))
            .where(I.workspace_id == workspace_id)
            .group_by(I.id_type)
        )
    }
    alone_q = (
        select(func.min(I.id_type).label("t"))
        .where(I.workspace_id == workspace_id)
        .group_by(I.person_id)
        .having(func.count(func.distinct(I.id_type)) == 1)
        .subquery()
    )
    alone = {t: n for t, n in session.execute(select(alone_q.c.t, func.count()).group_by(alone_q.c.t))}
    types = []
    for name in rules.types:
        n, people = per_type.get(name, (0, 0))
        types.append(
            {
                "type": name,
                "identifiers": n,
                "profiles": people,
                "alone": alone.get(name, 0),  # profiles holding this type and no other
                "linked": people > alone.get(name, 0),
            }
        )
    return {"profiles": profiles, "personal": personal, "device_only": max(profiles - personal, 0)}, types


def _days(today: date) -> list[date]:
    return [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def data_map(session: Session, store: EventStore, workspace_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Everything the data map page shows, for one workspace."""
    now = now or datetime.now(UTC)
    days = _days((now.astimezone(UTC) + BEIJING).date())
    since = datetime.combine(days[0], datetime.min.time()) - BEIJING  # naive UTC, as the store keeps it
    rows = session.execute(
        select(Source.id, Source.name, Source.kind, Source.enabled)
        .where(Source.workspace_id == workspace_id)
        .order_by(Source.id)
    )
    entries: dict[int, dict[str, Any]] = {
        i: {"source_id": i, "name": n, "kind": k, "enabled": e} for i, n, k, e in rows
    }
    kinds = {i: e["kind"] for i, e in entries.items()}
    params = {"ws": workspace_id}

    volume = {int(src): (n, pending, anon, reached) for src, n, pending, anon, reached in store.query(_VOLUME, params)}
    for src in volume:
        if src not in entries:
            kind = "short_links" if src == SHORT_LINKS else None
            entries[src] = {"source_id": None, "name": None, "kind": kind, "enabled": True}
    daily: dict[int, dict[date, int]] = defaultdict(dict)
    for src, day, n in store.query(_DAILY, {**params, "since": since}):
        daily[int(src)][day] = int(n)
    islands: dict[int | None, int] = {
        (None if src is None else int(src)): int(n) for src, n in store.query(_REACH, params)
    }
    carried = _carried(session, store, workspace_id, kinds)

    sources = []
    for src, entry in entries.items():
        n, pending, anon, reached = volume.get(src, (0, 0, 0, 0))
        stitched = n - pending
        entry.update(
            {
                "events": int(n),
                "pending": int(pending),
                "anonymous": int(anon),
                "anonymous_share": round(anon / stitched, 4) if stitched else None,
                "profiles": int(reached),
                "only_here": islands.get(src, 0),
                "daily": [daily[src].get(d, 0) for d in days],
                "identifier_types": carried.get(src, {}).get("types", []),
                "sampled": carried.get(src, {}).get("sampled", 0),
            }
        )
        sources.append(entry)
    sources.sort(key=lambda s: (-s["events"], s["source_id"] or 0))

    heads, types = _graph(session, workspace_id)
    totals = {
        **heads,
        "events": sum(s["events"] for s in sources),
        "anonymous": sum(s["anonymous"] for s in sources),
        "pending": sum(s["pending"] for s in sources),
        "reached": sum(islands.values()),
        "single_source": sum(n for src, n in islands.items() if src is not None),
    }
    stitched = totals["events"] - totals["pending"]
    totals["anonymous_share"] = round(totals["anonymous"] / stitched, 4) if stitched else None
    return {
        "generated_at": now,
        "days": [d.isoformat() for d in days],
        "totals": totals,
        "sources": sources,
        "identifier_types": types,
        "gaps": gaps(sources, types, totals),
    }


def gaps(sources: list[dict[str, Any]], types: list[dict[str, Any]], totals: dict[str, Any]) -> list[dict[str, Any]]:
    """Where the graph has holes, most telling first; each names what and how much."""
    out: list[dict[str, Any]] = []
    for s in sources:
        ref = {"source_id": s["source_id"], "name": s["name"], "source_kind": s["kind"]}
        if s["events"] == 0:
            out.append({"kind": "silent_source", **ref})
            continue
        if s["anonymous_share"] is not None and s["anonymous_share"] >= ANONYMOUS_GAP:
            out.append({"kind": "anonymous_source", **ref, "share": s["anonymous_share"], "events": s["anonymous"]})
        if s["profiles"] and s["only_here"] / s["profiles"] >= ISLAND_GAP:
            out.append(
                {
                    "kind": "island_source",
                    **ref,
                    "share": round(s["only_here"] / s["profiles"], 4),
                    "profiles": s["only_here"],
                }
            )
        if s["sampled"] and not s["identifier_types"]:
            out.append({"kind": "no_identifiers", **ref})
    for t in types:
        if t["identifiers"] and not t["linked"]:
            out.append({"kind": "never_linked_type", "type": t["type"], "profiles": t["profiles"]})
    for t in types:
        if not t["identifiers"]:
            out.append({"kind": "unused_type", "type": t["type"]})
    if totals["pending"]:
        out.append({"kind": "pending", "events": totals["pending"]})
    return out
