"""Profiles: traits kept per person with a merge strategy, computed attributes, the timeline, search.

The identity graph is the real one (`siyu.identity.service`), events and clicks live in the real
DuckDB store; `event_persons` rows and the listener calls stand in for the stitcher (see
profile_data.py), so each behaviour is checked on its own. test_profiles_api.py runs the real
pipeline end to end.
"""

from __future__ import annotations

import pytest
from profile_data import at, click, event, file_persons, record
from sqlalchemy import select

from siyu.db import Database
from siyu.errors import InvalidInput, NotFound
from siyu.identity import service as ids
from siyu.profiles import service as profiles
from siyu.profiles import strategies, traits
from siyu.profiles.listener import ProfileListener
from siyu.profiles.models import ProfileTrait
from siyu.sources import service as sources
from siyu.workspaces import service as workspaces


@pytest.fixture
def ws(runtime) -> int:
    with runtime.db.session() as s:
        return workspaces.create_workspace(s, "Coffee Co", slug="coffee").id


@pytest.fixture
def other_ws(runtime) -> int:
    with runtime.db.session() as s:
        return workspaces.create_workspace(s, "Tea Co", slug="tea").id


@pytest.fixture
def listener(runtime) -> ProfileListener:
    return ProfileListener(runtime.store)


@pytest.fixture
def crm(runtime, ws) -> int:
    with runtime.db.session() as s:
        return sources.create_source(s, ws, "CRM", "crm").source.id


@pytest.fixture
def shop(runtime, ws) -> int:
    with runtime.db.session() as s:
        return sources.create_source(s, ws, "官网", "website").source.id


def person(rt, ws: int, *identifiers: tuple[str, str]) -> int:
    with rt.db.session() as s:
        return ids.resolve(s, ws, list(identifiers))


def traits_of(rt, ws: int, super_id: int) -> dict:
    with rt.db.session() as s:
        return profiles.traits_of(s, ws, super_id)


def rows_of(rt, super_id: int) -> dict[str, ProfileTrait]:
    with rt.db.session() as s:
        return {r.key: r for r in s.scalars(select(ProfileTrait).where(ProfileTrait.person_id == super_id))}


def identify(ws: int, minutes: float, source_id: int | None = None, **traits_) -> dict:
    return event(ws, "identify", at(minutes), source_id, traits=traits_)


# --- merge strategies ------------------------------------------------------------------------------


def test_latest_wins_by_event_time_not_by_arrival(runtime, ws, listener, crm, shop):
    li = person(runtime, ws, ("member_id", "m-1"))
    newer = identify(ws, 60, crm, city="上海", tier="gold")
    older = identify(ws, 10, shop, city="北京", email="li@example.com")  # an offline upload, arriving late
    record(runtime, listener, [newer], li)
    record(runtime, listener, [older], li)

    assert traits_of(runtime, ws, li) == {"city": "上海", "email": "li@example.com", "tier": "gold"}
    city = rows_of(runtime, li)["city"]
    assert (city.strategy, city.source_id, city.event_id, city.observed_at) == (
        "latest",
        crm,
        newer["message_id"],
        at(60),
    )


def test_first_keeps_the_earliest_value_for_sign_up_keys_and_configured_ones(runtime, ws, listener):
    li = person(runtime, ws, ("member_id", "m-1"))
    with runtime.db.session() as s:
        strategies.set_strategies(s, ws, {"first_store": "first"}, actor="ops@example.com")
    record(runtime, listener, [identify(ws, 50, created_at="2026-10-05", first_store="静安店", tier="silver")], li)
    record(runtime, listener, [identify(ws, 20, created_at="2026-09-01", first_store="徐汇店", tier="bronze")], li)
    record(runtime, listener, [identify(ws, 90, created_at="2026-11-30", first_store="浦东店", tier="gold")], li)

    assert traits_of(runtime, ws, li) == {"created_at": "2026-09-01", "first_store": "徐汇店", "tier": "gold"}
    assert rows_of(runtime, li)["created_at"].strategy == "first"


def test_sum_adds_numbers_and_ignores_what_is_not_one(runtime, ws, listener):
    li = person(runtime, ws, ("member_id", "m-1"))
    with runtime.db.session() as s:
        strategies.set_strategies(s, ws, {"spend": "sum"})
    record(
        runtime,
        listener,
        [
            identify(ws, 1, points_earned=10, spend=0.1),
            identify(ws, 2, points_earned="lots", spend=0.2),  # not a number: ignored
            identify(ws, 3, points_earned=True),  # neither is a boolean
            identify(ws, 4, points_earned=5),
        ],
        li,
    )
    assert traits_of(runtime, ws, li) == {"points_earned": 15, "spend": 0.3}


def test_strategies_are_per_workspace_and_bad_names_are_field_errors(runtime, ws, other_ws):
    with runtime.db.session() as s:
        listed = strategies.set_strategies(s, ws, {"tier": "first", "points": "sum", "created_at": None})
        assert {"key": "tier", "strategy": "first", "default": "latest", "configured": True} in listed
        assert {"key": "created_at", "strategy": "first", "default": "first", "configured": False} in listed
        assert strategies.strategies_for(s, ws)["tier"] == "first"
        assert strategies.strategies_for(s, other_ws)["tier"] == "latest"
        assert strategies.strategies_for(s, ws)["anything_else"] == "latest"

        with pytest.raises(InvalidInput) as bad:
            strategies.set_strategies(s, ws, {"tier": "newest", "": "sum", "x" * 129: "sum"})
        assert [(e.field, e.reason) for e in bad.value.errors] == [
            ("strategies.tier", "must be one of latest, first, sum"),
            ("strategies", "must be a trait name (text)"),
            ("strategies", "must be at most 128 characters, without control characters"),
        ]
        with pytest.raises(InvalidInput, match="strategies: must be an object"):
            strategies.set_strategies(s, ws, ["tier", "first"])

        # replace: keys not named go back to their defaults; setting a default removes the row
        listed = strategies.set_strategies(s, ws, {"points": "sum"}, replace=True)
        assert [r["key"] for r in listed if r["configured"]] == ["points"]
        assert strategies.strategies_for(s, ws)["tier"] == "latest"


# --- the identity graph moves: merge, split, erase -------------------------------------------------


def test_a_merge_combines_traits_by_each_strategy(runtime, ws, listener):
    with runtime.db.session() as s:
        strategies.set_strategies(s, ws, {"points": "sum"})
    web = person(runtime, ws, ("visitor_cookie", "cookie-1"))
    member = person(runtime, ws, ("member_id", "m-1"))
    record(
        runtime, listener, [identify(ws, 10, city="北京", points=100, created_at="2026-01-01", nickname="小李")], web
    )
    record(runtime, listener, [identify(ws, 30, city="上海", points=20, created_at="2026-05-01", tier="gold")], member)

    with runtime.db.session() as s:
        outcome = ids.resolve_outcome(s, ws, [("member_id", "m-1"), ("visitor_cookie", "cookie-1")])
        survivor, [absorbed] = outcome.person, outcome.merged
        listener.persons_merged(s, ws, survivor, absorbed)

    assert {survivor, absorbed} == {web, member}
    assert traits_of(runtime, ws, survivor) == {
        "city": "上海",  # latest event wins
        "created_at": "2026-01-01",  # first
        "nickname": "小李",  # only the absorbed person had it: moved over
        "points": 120,  # sum
        "tier": "gold",
    }
    assert rows_of(runtime, absorbed) == {}
    assert traits_of(runtime, ws, absorbed) == traits_of(runtime, ws, survivor)  # the old id answers for the person


def test_a_split_rebuilds_both_persons_from_their_own_events(runtime, ws, listener):
    a = person(runtime, ws, ("member_id", "m-1"))
    b = person(runtime, ws, ("member_id", "m-2"))
    record(runtime, listener, [identify(ws, 10, city="北京", name="李雷")], a)
    coupon = event(ws, "track", at(25), event="Coupon Applied", context={"traits": {"vip": True}})
    record(runtime, listener, [identify(ws, 20, city="上海", name="韩梅梅", tier="gold"), coupon], b)
    with runtime.db.session() as s:
        listener.persons_merged(s, ws, a, b)  # a wrong merge (a shared tablet, say) ...
    assert traits_of(runtime, ws, a) == {"city": "上海", "name": "韩梅梅", "tier": "gold", "vip": True}

    with runtime.db.session() as s:  # ... undone: the stitcher has re-assigned both persons' events
        listener.person_split(s, ws, a, b)

    assert traits_of(runtime, ws, a) == {"city": "北京", "name": "李雷"}
    # context.traits of any event count, as the stitcher hands them over
    assert traits_of(runtime, ws, b) == {"city": "上海", "name": "韩梅梅", "tier": "gold", "vip": True}
    assert rows_of(runtime, b)["tier"].observed_at == at(20)


def test_an_erased_person_keeps_no_traits(runtime, ws, listener):
    li = person(runtime, ws, ("member_id", "m-1"))
    other = person(runtime, ws, ("member_id", "m-2"))
    record(runtime, listener, [identify(ws, 1, phone_note="call after 6pm")], li)
    record(runtime, listener, [identify(ws, 1, city="杭州")], other)
    with runtime.db.session() as s:
        listener.person_erased(s, ws, li)
        ids.erase(s, ws, li)
    assert rows_of(runtime, li) == {}
    assert traits_of(runtime, ws, other) == {"city": "杭州"}
    with runtime.db.session() as s, pytest.raises(NotFound, match=f"person {li}"):
        profiles.traits_of(s, ws, li)


def test_anonymous_events_and_events_without_traits_change_nothing(runtime, ws, listener):
    li = person(runtime, ws, ("member_id", "m-1"))
    record(runtime, listener, [identify(ws, 1, city="杭州")], None)
    record(runtime, listener, [event(ws, "track", at(2), event="Product Viewed", properties={"name": "拿铁"})], li)
    with runtime.db.session() as s:
        assert s.scalar(select(ProfileTrait.id)) is None
    assert traits_of(runtime, ws, li) == {}


def test_traits_live_on_sqlite_and_postgresql(database_url):
    """Apply, merge and erase on each backend (JSON values, unique person/key, UTC times)."""
    db = Database(database_url)
    db.migrate()
    try:
        with db.session() as s:
            ws = workspaces.create_workspace(s, "Coffee Co", slug="coffee").id
            a = ids.resolve(s, ws, [("member_id", "m-1")])
            b = ids.resolve(s, ws, [("member_id", "m-2")])
            strategies.set_strategies(s, ws, {"points": "sum"})
        with db.session() as s:
            value = strategies.TraitValue(None, at(5), None, "e1")
            traits.apply(s, ws, traits.observations_from(a, {"address": {"city": "上海"}, "points": 3}, value))
            traits.apply(s, ws, traits.observations_from(b, {"points": 4, "city": "Shanghai"}, value))
        with db.session() as s:
            traits.merge(s, ws, a, b)
        with db.session() as s:
            assert traits.values(s, a) == {"address": {"city": "上海"}, "city": "Shanghai", "points": 7}
            assert profiles.search(s, ws, "shang")["items"][0]["super_id"] == a
            traits.remove(s, ws, [a])
        with db.session() as s:
            assert traits.values(s, a) == {}
    finally:
        db.dispose()


# --- computed attributes and the timeline ---------------------------------------------------------


def test_computed_attributes_come_from_the_persons_events_and_clicks(runtime, ws, listener, shop, crm):
    li = person(runtime, ws, ("member_id", "m-1"))
    ios = {"os": {"name": "iOS"}}
    events = [
        event(ws, "page", at(5), shop, properties={"path": "/menu"}, context=ios),
        event(
            ws,
            "track",
            at(30),
            shop,
            "Order Completed",
            properties={"order_id": "A1", "revenue": 128, "currency": "CNY"},
        ),
        # the same order sent again by the CRM, later, with the final amount: counted once, at its last value
        event(ws, "track", at(40), crm, "Order Completed", properties={"order_id": "A1", "revenue": 120}),
        event(ws, "track", at(90), shop, "Order Completed", properties={"order_id": "A2", "total": "56.5"}),
    ]
    clicks = [
        click(ws, at(1), platform="wechat"),
        click(ws, at(2), platform="wechat"),
        click(ws, at(100), platform="qq"),
    ]
    record(runtime, listener, events, li, clicks)
    someone_else = person(runtime, ws, ("member_id", "m-2"))
    record(
        runtime,
        listener,
        [event(ws, "track", at(200), shop, "Order Completed", properties={"revenue": 999})],
        someone_else,
    )

    with runtime.db.session() as s:
        c = profiles.profile_of(s, runtime.store, ws, li)["computed"]
    assert (c["first_seen"], c["last_seen"]) == (at(1), at(100))
    assert (c["event_count"], c["click_count"]) == (4, 3)
    assert (c["order_count"], c["revenue"], c["last_order_at"], c["currency"]) == (2, 176.5, at(90), "CNY")
    assert [(u["kind"], u["name"], u["count"]) for u in c["sources"]] == [  # most used first
        ("short_links", None, 3),
        ("website", "官网", 3),
        ("crm", "CRM", 1),
    ]
    assert c["platforms"] == [{"name": "wechat", "count": 2}, {"name": "qq", "count": 1}]
    assert c["os"] == [{"name": "iOS", "count": 4}]


def test_a_person_with_no_events_yet_has_empty_computed_attributes(runtime, ws):
    li = person(runtime, ws, ("member_id", "m-1"))
    file_persons(runtime, [])  # the stitcher's table exists, with nothing of this person
    with runtime.db.session() as s:
        p = profiles.profile_of(s, runtime.store, ws, li)
    assert p["computed"]["event_count"] == 0 and p["computed"]["first_seen"] is None
    assert p["computed"]["revenue"] == 0.0 and p["computed"]["sources"] == []
    assert p["identifiers"][0]["value"] == "m-1" and p["name"] == "m-1"


def test_the_timeline_lists_events_and_clicks_newest_first_with_a_sentence_each(runtime, ws, listener, shop):
    li = person(runtime, ws, ("member_id", "m-1"))
    events = [
        identify(ws, 10, shop, name="李雷", email="li@example.com"),
        event(ws, "page", at(20), shop, properties={"title": "秋季菜单", "path": "/menu"}),
        event(ws, "track", at(30), shop, "Order Completed", properties={"order_id": "A1", "revenue": 128}),
        event(ws, "track", at(40), shop, "Product Viewed", properties={"name": "拿铁"}),
        event(ws, "track", at(50), shop, "Wishlist Shared"),
    ]
    clicks = [click(ws, at(5), slug="coffee", platform="wechat", outcome="guidance")]
    record(runtime, listener, events, li, clicks)

    with runtime.db.session() as s:
        zh = profiles.timeline(s, runtime.store, ws, li, limit=10, locale="zh-CN")
        en = profiles.timeline(s, runtime.store, ws, li, limit=4, offset=2, locale="en")
    assert zh["total"] == 6
    assert [i["summary"] for i in zh["items"]] == [
        "事件：Wishlist Shared",
        "浏览商品 拿铁",
        "完成订单 A1，¥128.00",
        "浏览页面 秋季菜单",
        "更新资料：email、name",
        "点击短链 /coffee（微信），显示防红引导页",
    ]
    assert [i["summary"] for i in en["items"]] == [
        "Order A1 completed: ¥128.00",
        "Viewed page 秋季菜单",
        "Profile updated: email, name",
        "Clicked short link /coffee (WeChat); shown the open-in-browser page",
    ]
    first = zh["items"][0]
    assert (first["source_kind"], first["source_name"], first["timestamp"]) == ("website", "官网", at(50))
    last = en["items"][-1]
    assert (last["kind"], last["source_kind"], last["details"]["slug"]) == ("click", "short_links", "coffee")


def test_a_merged_away_super_id_shows_the_whole_person(runtime, ws, listener):
    """Rows the stitcher filed under the absorbed id before the merge still count."""
    web = person(runtime, ws, ("visitor_cookie", "cookie-1"))
    record(runtime, listener, [event(ws, "page", at(1))], web, [click(ws, at(2))])
    member = person(runtime, ws, ("member_id", "m-1"))
    record(runtime, listener, [event(ws, "track", at(3), event="Signed Up")], member)
    with runtime.db.session() as s:
        outcome = ids.resolve_outcome(s, ws, [("member_id", "m-1"), ("visitor_cookie", "cookie-1")])
        listener.persons_merged(s, ws, outcome.person, outcome.merged[0])
    with runtime.db.session() as s:
        p = profiles.profile_of(s, runtime.store, ws, outcome.merged[0])
        tl = profiles.timeline(s, runtime.store, ws, outcome.merged[0])
    assert p["super_id"] == outcome.person and p["requested_id"] == outcome.merged[0]
    assert (p["computed"]["event_count"], p["computed"]["click_count"]) == (2, 1)
    assert [i["summary"] for i in tl["items"]] == ["Signed up", "Clicked short link /coffee (WeChat)", "Viewed page "]


# --- finding people -------------------------------------------------------------------------------


def test_find_by_any_identifier_however_it_is_typed(runtime, ws, listener):
    li = person(runtime, ws, ("member_id", "m-1"), ("phone", "13800138001"), ("email", "Li.Lei@Example.com"))
    file_persons(runtime, [])
    with runtime.db.session() as s:
        assert profiles.find_by_identifier(s, runtime.store, ws, "phone", "+86 138-0013-8001")["super_id"] == li
        assert profiles.find_by_identifier(s, runtime.store, ws, "email", "li.lei@example.com")["super_id"] == li
        assert profiles.find_by_identifier(s, runtime.store, ws, "email", "nobody@example.com") is None
        with pytest.raises(InvalidInput, match="type: unknown identifier type 'passport'"):
            profiles.find_by_identifier(s, runtime.store, ws, "passport", "E123")
        with pytest.raises(InvalidInput, match="value: "):
            profiles.find_by_identifier(s, runtime.store, ws, "phone", "call me")


def test_search_by_identifier_or_trait_lists_people_a_page_at_a_time(runtime, ws, listener):
    li = person(runtime, ws, ("member_id", "m-1"), ("phone", "13800138001"))
    han = person(runtime, ws, ("member_id", "m-2"), ("email", "han@example.com"))
    wang = person(runtime, ws, ("member_id", "m-3"))
    record(runtime, listener, [identify(ws, 1, name="李雷", city="Shanghai")], li)
    record(runtime, listener, [identify(ws, 1, name="韩梅梅", city="Shanghai")], han)

    with runtime.db.session() as s:
        assert [i["super_id"] for i in profiles.search(s, ws, "138 0013 8001")["items"]] == [li]
        assert [i["super_id"] for i in profiles.search(s, ws, "han@")["items"]] == [han]
        assert [i["name"] for i in profiles.search(s, ws, "韩")["items"]] == ["韩梅梅"]
        both = profiles.search(s, ws, "shanghai", limit=1)
        assert (both["total"], len(both["items"])) == (2, 1)
        assert (
            profiles.search(s, ws, "shanghai", limit=1, offset=1)["items"][0]["super_id"]
            != both["items"][0]["super_id"]
        )
        everyone = profiles.search(s, ws, "")
        assert [i["super_id"] for i in everyone["items"]] == [wang, han, li]  # newest first
        assert everyone["items"][1]["identifiers"] == [
            {"type": "member_id", "value": "m-2"},
            {"type": "email", "value": "han@example.com"},
        ]
        assert profiles.search(s, ws, "nobody")["total"] == 0

        bad_inputs = (
            ({"q": "x" * 256}, "q"),
            ({"q": 5}, "q"),
            ({"q": "a\x00b"}, "q"),
            ({"limit": 0}, "limit"),
            ({"limit": True}, "limit"),
            ({"offset": -1}, "offset"),
        )
        for bad, field in bad_inputs:
            with pytest.raises(InvalidInput) as exc:
                profiles.search(s, ws, **bad)
            assert exc.value.errors[0].field == field


def test_workspaces_never_see_each_others_people(runtime, ws, other_ws, listener):
    li = person(runtime, ws, ("member_id", "m-1"), ("phone", "13800138001"))
    record(runtime, listener, [identify(ws, 1, name="李雷")], li)
    with runtime.db.session() as s:
        with pytest.raises(NotFound, match=f"person {li}"):
            profiles.profile_of(s, runtime.store, other_ws, li)
        with pytest.raises(NotFound):
            profiles.timeline(s, runtime.store, other_ws, li)
        with pytest.raises(NotFound):
            profiles.traits_of(s, other_ws, li)
        assert profiles.find_by_identifier(s, runtime.store, other_ws, "phone", "13800138001") is None
        assert profiles.search(s, other_ws, "李")["total"] == 0
        assert profiles.search(s, other_ws, "")["total"] == 0


def test_unknown_and_malformed_super_ids_are_refused_by_name(runtime, ws):
    with runtime.db.session() as s:
        with pytest.raises(NotFound, match="person 999999"):
            profiles.profile_of(s, runtime.store, ws, 999999)
        with pytest.raises(InvalidInput, match="super_id: must be a whole number"):
            profiles.timeline(s, runtime.store, ws, "12")
        with pytest.raises(InvalidInput) as exc:
            profiles.timeline(s, runtime.store, ws, 1, limit=500)
        assert exc.value.errors[0].field == "limit"


def test_traits_are_applied_in_one_pass_per_batch_whatever_the_order(runtime, ws, listener):
    """A batch with several identifies of one person folds them by time, like separate batches."""
    li = person(runtime, ws, ("member_id", "m-1"))
    batch = [identify(ws, 30, tier="gold"), identify(ws, 10, tier="bronze"), identify(ws, 20, tier="silver")]
    record(runtime, listener, batch, li)
    assert traits_of(runtime, ws, li) == {"tier": "gold"}
