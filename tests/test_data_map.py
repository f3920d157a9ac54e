"""The data map: how many users there really are, where they come from, and where the graph has holes.

A small, fully known world: three touchpoints (website, CRM, a silent mini program) plus short-link
clicks, three people and some anonymous traffic, stored in the real DuckDB store and identity graph.
`event_persons` rows stand in for the stitcher (see profile_data.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from profile_data import click, event, file_persons, store_clicks, store_events

from siyu.identity import service as ids
from siyu.profiles import datamap
from siyu.sources import service as sources
from siyu.workspaces import service as workspaces

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Beijing


def days_ago(n: float, hour_utc: int = 4) -> datetime:
    return (NOW - timedelta(days=n)).replace(hour=hour_utc)


@pytest.fixture
def world(runtime):
    """Who is where:

    李雷 (member id + phone): website and CRM and a short-link click;
    a cookie-only visitor: website only;
    韩梅梅 (e-mail only): CRM only.
    The website also has 3 anonymous events and 1 not stitched yet; 2 clicks are anonymous.
    """
    with runtime.db.session() as s:
        ws = workspaces.create_workspace(s, "Coffee Co", slug="coffee").id
        web = sources.create_source(s, ws, "官网", "website").source.id
        crm = sources.create_source(s, ws, "CRM", "crm").source.id
        mini = sources.create_source(s, ws, "小程序", "mini_program").source.id
        li = ids.resolve(s, ws, [("member_id", "M1"), ("phone", "13800138001")])
        visitor = ids.resolve(s, ws, [("visitor_cookie", "cookie-9")])
        han = ids.resolve(s, ws, [("email", "han@example.com")])
        other_ws = workspaces.create_workspace(s, "Tea Co", slug="tea").id
        ids.resolve(s, other_ws, [("member_id", "T1")])

    def ev(source, when, user=None, anon=None, **kw):
        return event(ws, kw.pop("type", "track"), when, source, event="Viewed", user_id=user, anonymousId=anon, **kw)

    filed = [
        (ev(web, days_ago(0), "M1"), li),
        (ev(web, days_ago(1), anon="cookie-9"), visitor),
        (ev(web, days_ago(1), anon="anon-1"), None),
        (ev(web, days_ago(2), anon="anon-2"), None),
        (ev(web, days_ago(40), anon="anon-3"), None),  # older than the 30 days shown per day
        (ev(crm, days_ago(0), "M1", type="identify", traits={"phone": "13800138001"}), li),
        (ev(crm, days_ago(3), anon="crm-han", type="identify", traits={"email": "han@example.com"}), han),
    ]
    pending = ev(web, days_ago(0), anon="late-1")
    clicks = [
        (click(ws, days_ago(0), person_ref="M1"), li),
        (click(ws, days_ago(5), visitor_id="v-a"), None),
        (click(ws, days_ago(5), visitor_id="v-b"), None),
    ]
    bot = click(ws, days_ago(0), is_bot=True, platform="none")
    elsewhere = event(other_ws, "track", days_ago(0), None, event="Viewed", user_id="T1")
    store_events(runtime, [e for e, _ in filed] + [pending, elsewhere])
    store_clicks(runtime, [c for c, _ in clicks] + [bot])
    file_persons(
        runtime,
        [(ws, e["message_id"], "event", p, e["timestamp"]) for e, p in filed]
        + [(ws, c["click_id"], "click", p, c["ts"].replace(tzinfo=UTC)) for c, p in clicks]
        + [(ws, bot["click_id"], "click", None, NOW), (other_ws, elsewhere["message_id"], "event", 1, NOW)],
    )
    return {"ws": ws, "web": web, "crm": crm, "mini": mini, "li": li, "visitor": visitor, "han": han}


@pytest.fixture
def mapped(runtime, world):
    with runtime.db.session() as s:
        return datamap.data_map(s, runtime.store, world["ws"], now=NOW)


def by_source(mapped, source_id=None, kind=None):
    return next(s for s in mapped["sources"] if s["source_id"] == source_id and (kind is None or s["kind"] == kind))


def test_head_counts_say_how_many_people_and_how_well_known(mapped):
    assert mapped["totals"] == {
        "profiles": 3,
        "personal": 2,  # 李雷 (member id, phone) and 韩梅梅 (e-mail)
        "device_only": 1,  # the cookie-only visitor
        "events": 11,  # 8 website + 2 CRM events, 3 human clicks (the bot is not a person)
        "anonymous": 5,  # 3 website events and 2 clicks belong to nobody
        "pending": 1,  # stored, not stitched yet
        "reached": 3,
        "single_source": 2,  # the visitor (website) and 韩梅梅 (CRM); 李雷 is on three touchpoints
        "anonymous_share": 0.5,  # of the 10 stitched
    }


def test_per_source_volume_reach_islands_and_identifiers(mapped, world):
    web = by_source(mapped, world["web"])
    assert (web["name"], web["kind"], web["events"], web["pending"], web["anonymous"]) == ("官网", "website", 6, 1, 3)
    assert web["anonymous_share"] == 0.6
    assert (web["profiles"], web["only_here"]) == (2, 1)
    assert {t["type"]: t["share"] for t in web["identifier_types"]} == {
        "visitor_cookie": round(5 / 6, 4),
        "member_id": round(1 / 6, 4),
    }

    crm = by_source(mapped, world["crm"])
    assert (crm["events"], crm["anonymous_share"], crm["profiles"], crm["only_here"]) == (2, 0.0, 2, 1)
    assert {t["type"] for t in crm["identifier_types"]} == {"member_id", "phone", "email", "visitor_cookie"}

    links = by_source(mapped, None, "short_links")
    assert (links["events"], links["anonymous"], links["profiles"]) == (3, 2, 1)
    assert {t["type"] for t in links["identifier_types"]} == {"member_id", "visitor_cookie"}

    silent = by_source(mapped, world["mini"])
    assert (silent["events"], silent["anonymous_share"], silent["daily"]) == (0, None, [0] * 30)


def test_events_per_day_cover_the_last_30_beijing_days(mapped, world):
    assert mapped["days"][0] == "2026-10-22" and mapped["days"][-1] == "2026-11-20"
    web = by_source(mapped, world["web"])["daily"]
    assert web[-1] == 2 and web[-2] == 2 and web[-3] == 1  # today (+ the unstitched one), yesterday, the day before
    assert sum(web) == 5  # the event 40 days ago is outside the window
    assert by_source(mapped, None, "short_links")["daily"][-6] == 2


def test_a_late_evening_event_counts_on_the_next_beijing_day(runtime, world):
    late = event(world["ws"], "track", datetime(2026, 11, 19, 17, 30, tzinfo=UTC), world["mini"], event="Opened")
    store_events(runtime, [late])  # 01:30 on the 20th in Beijing
    with runtime.db.session() as s:
        mapped = datamap.data_map(s, runtime.store, world["ws"], now=NOW)
    assert by_source(mapped, world["mini"])["daily"][-1] == 1


def test_gaps_name_the_anonymous_touchpoints_islands_and_unlinked_types(mapped, world):
    gaps = mapped["gaps"]
    kinds = [(g["kind"], g.get("name") or g.get("type") or g.get("source_id")) for g in gaps]
    assert ("anonymous_source", "官网") in kinds
    assert ("anonymous_source", None) in kinds  # short links: 2 of 3 clicks anonymous
    assert ("island_source", "CRM") in kinds and ("island_source", "官网") in kinds
    assert ("silent_source", "小程序") in kinds
    assert ("never_linked_type", "email") in kinds and ("never_linked_type", "visitor_cookie") in kinds
    assert ("never_linked_type", "member_id") not in kinds  # joined to a phone
    assert {g["type"] for g in gaps if g["kind"] == "unused_type"} == {"unionid", "openid", "device_id"}
    assert {"kind": "pending", "events": 1} in gaps
    anonymous_web = next(g for g in gaps if g["kind"] == "anonymous_source" and g["name"] == "官网")
    assert (anonymous_web["share"], anonymous_web["events"]) == (0.6, 3)


def test_identifier_types_say_how_well_each_is_linked(mapped):
    types = {t["type"]: t for t in mapped["identifier_types"]}
    assert types["phone"] == {"type": "phone", "identifiers": 1, "profiles": 1, "alone": 0, "linked": True}
    assert types["email"] == {"type": "email", "identifiers": 1, "profiles": 1, "alone": 1, "linked": False}
    assert types["unionid"]["identifiers"] == 0


def test_an_empty_workspace_has_an_empty_map(runtime):
    with runtime.db.session() as s:
        ws = workspaces.create_workspace(s, "Empty", slug="empty").id
        mapped = datamap.data_map(s, runtime.store, ws, now=NOW)
    assert mapped["sources"] == [] and mapped["totals"]["profiles"] == 0
    assert mapped["totals"]["anonymous_share"] is None
    assert [g["kind"] for g in mapped["gaps"]] == ["unused_type"] * 7
